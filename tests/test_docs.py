"""The docs check: every `zoo ...` command shown in the README and docs/ names real commands and options, and the
cheap ones run for real."""

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Commands cheap enough to run for real here (no TensorFlow training, no network).
RUN_FOR_REAL = {"list", "info", "datasets", "table"}


def documented_commands():
    found = []
    for path in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for part in line.split("&&"):
                    words = shlex.split(part, comments=True)
                    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
                        words = words[1:]  # environment assignments before the command
                    if words and Path(words[0]).name == "zoo":
                        found.append(pytest.param(words[1:], id=f"{path.name}: {' '.join(words)}"))
    return found


COMMANDS = documented_commands()


def test_docs_show_commands():
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("args", COMMANDS)
def test_documented_command_parses(args):
    """With --help appended, click still rejects an unknown command or option, then prints the usage."""
    result = CliRunner().invoke(cli.cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


@pytest.mark.parametrize("args", [c for c in COMMANDS if c.values[0] and c.values[0][0] in RUN_FOR_REAL])
def test_cheap_documented_commands_run(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a command writes by default lands here, not in the repo
    monkeypatch.setenv("ZOO_RESULTS_DIR", str(ROOT / "docs" / "runs"))  # the committed store, read only
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "data"))
    args = [a if not a.startswith("docs/") else str(tmp_path / a) for a in args]
    result = CliRunner().invoke(cli.cli, args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
