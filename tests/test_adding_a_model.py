"""docs/adding-a-model.md, followed literally: its YAML entry, added under `models:` in a copy of registry.yaml,
loads; `zoo summary` prints the counts the page says to fill in; with them filled in, `pytest -k <name>` runs the
registry-generated tests of tests/test_models.py for the new entry, and they pass."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.archs import ResNetArch
from zoo.registry import Registry, registry_path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "adding-a-model.md"


def page_entry() -> tuple[str, str]:
    """The page's one YAML block and the variant name it defines."""
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) == 1, "the page shows one registry entry"
    return blocks[0], re.match(r"  ([a-z0-9_]+):\n", blocks[0]).group(1)


def registry_with(tmp_path: Path, entry: str) -> Path:
    text = registry_path().read_text()
    assert text.count("\nmodels:\n") == 1
    path = tmp_path / "registry.yaml"
    path.write_text(text.replace("\nmodels:\n", "\nmodels:\n" + entry, 1))
    return path


def run(args: list[str], registry: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ZOO_REGISTRY": str(registry), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)


def test_the_pages_example_loads_builds_and_passes_the_generated_tests(tmp_path):
    entry, name = page_entry()
    path = registry_with(tmp_path, entry)
    spec = Registry.from_file(path).get(name)
    assert isinstance(spec.arch, ResNetArch) and spec.arch.depths == [4, 4, 4]
    assert spec.params == spec.macs == 0  # to fill in, as the page says

    summary = run(["-c", "import sys, cli; sys.exit(cli.main())", "summary", name], path)
    assert summary.returncode == 0, summary.stderr
    counts = re.search(rf"^{name}: ([\d,]+) trainable parameters, ([\d,]+) MACs", summary.stdout, re.M)
    params, macs = (int(group.replace(",", "")) for group in counts.groups())
    assert params > 0 and macs > 0

    filled = entry.replace("params: 0 ", f"params: {params} ", 1).replace("macs: 0\n", f"macs: {macs}\n", 1)
    path = registry_with(tmp_path, filled)
    spec = Registry.from_file(path).get(name)
    assert (spec.params, spec.macs, spec.reference.params) == (params, macs, params)

    tests = run(["-m", "pytest", "tests/test_models.py", "-k", name, "-q", "-p", "no:cacheprovider"], path)
    assert tests.returncode == 0, tests.stdout[-3000:]
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed and int(passed.group(1)) >= 8 and "failed" not in tests.stdout  # a light net: all checks run


def test_the_pages_error_example_is_what_the_loader_says(tmp_path):
    entry, name = page_entry()
    message = re.search(r"`(registry\.yaml: model .*?)`", PAGE.read_text()).group(1)
    broken = entry.replace("depths: [4, 4, 4]", "depths: [4, 4]", 1)
    with pytest.raises(ValueError) as error:
        Registry.from_text(registry_with(tmp_path, broken).read_text(), Path("registry.yaml"))
    assert str(error.value) == message
