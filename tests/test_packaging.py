"""A non-editable install carries cli.py and registry.yaml, and `zoo list` works from anywhere."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(root)],
                   check=True, capture_output=True)
    (path,) = out.glob("zoo-*.whl")
    return path


def test_wheel_contains_cli_and_registry(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "cli.py" in names
    assert "zoo/registry.yaml" in names
    assert "zoo/models/lenet.py" in names
    assert not any(n.startswith("tests/") for n in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "zoo = cli:main" in entry_points


def test_installed_wheel_runs_zoo_list_from_root(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True)
    code = ("import sys, cli, zoo.registry as r; assert cli.__file__.startswith(sys.argv[1]), cli.__file__; "
            "assert str(r.registry_path()).startswith(sys.argv[1]); sys.exit(cli.main(['list', 'lenet*']))")
    proc = subprocess.run([sys.executable, "-c", code, str(target)], cwd="/", capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(target)})
    assert proc.returncode == 0, proc.stderr
    assert "lenet5_original" in proc.stdout
