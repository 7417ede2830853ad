"""The wheel: distribution historic-cnn-zoo, the package `zoo` only (no top-level `cli` module), with its data
(registry.yaml, the shipped weights, the embedded sample, the explain page's static files); installed outside
the checkout it answers `zoo predict lenet5 --weights fashion_mnist IMAGE`."""

from __future__ import annotations

import email
import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST = "historic_cnn_zoo"  # the wheel's spelling of historic-cnn-zoo


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built offline from the checkout with the venv's hatchling (no isolated build environment to download)."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out),
                           str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob(f"{DIST}-*.whl")
    return path


def shipped_files() -> set[str]:
    from zoo.registry import registry

    return {f"zoo/pretrained/{entry.file}" for spec in registry().models.values()
            for entry in spec.weights.values() if entry.source == "shipped"}


def checkout_files(folder: str) -> set[str]:
    return {str(p.relative_to(ROOT)) for p in (ROOT / folder).iterdir() if p.is_file()}


def test_wheel_holds_the_package_and_its_data_only(wheel):
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    dist_info = {n for n in names if n.startswith(f"{DIST}-")}
    assert {n for n in names - dist_info if not n.startswith("zoo/")} == set()  # no cli.py, tests/, scripts/
    assert "zoo/cli.py" in names and "zoo/registry.yaml" in names and "zoo/models/lenet.py" in names
    assert shipped_files() and shipped_files() <= names
    assert checkout_files("zoo/data/sample") - {"zoo/data/sample/.gitkeep"} <= names
    assert checkout_files("zoo/explain/static") and checkout_files("zoo/explain/static") <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    entry_points = archive.read(next(n for n in dist_info if n.endswith("entry_points.txt"))).decode()
    assert "zoo = zoo.cli:main" in entry_points
    metadata = email.message_from_bytes(archive.read(next(n for n in dist_info if n.endswith("METADATA"))))
    assert metadata["Name"] == "historic-cnn-zoo"
    registry_yaml = archive.read("zoo/registry.yaml").decode()
    assert registry_yaml == (ROOT / "registry.yaml").read_text()


def test_the_package_does_not_import_the_cli_or_tensorflow():
    """Data flows down: `import zoo` (and the registry) never loads zoo.cli, nor TensorFlow; the CLI's start-up
    imports no TensorFlow either."""
    code = ("import sys, zoo, zoo.registry; zoo.registry.registry()\n"
            "assert 'zoo.cli' not in sys.modules, 'import zoo imported the CLI'\n"
            "import zoo.cli\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def sample_png(folder: Path) -> tuple[Path, str]:
    """The embedded sample's first test image as a PNG, and its class name."""
    from PIL import Image

    from zoo.data.catalogue import get_dataset, sample_dir

    with gzip.open(sample_dir() / "t10k-images-idx3-ubyte.gz") as f:
        image = np.frombuffer(f.read(), np.uint8, offset=16)[:28 * 28].reshape(28, 28)
    with gzip.open(sample_dir() / "t10k-labels-idx1-ubyte.gz") as f:
        label = np.frombuffer(f.read(), np.uint8, offset=8)[0]
    path = folder / "shoe.png"
    Image.fromarray(image).save(path)
    return path, get_dataset("fashion_mnist").names()[label]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, Path, dict]:
    """`pip install --no-deps --target DIR` (the dependencies come from this venv, zoo from the wheel): DIR, a
    working folder outside the checkout, and the environment that puts DIR first on sys.path."""
    target, work = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("work")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True)
    return target, work, {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}


# The editable install's .pth puts the checkout on sys.path: the child takes it off before importing zoo.
OFF_CHECKOUT = (f"import sys; from pathlib import Path; "
                f"sys.path = [p for p in sys.path if p and Path(p).resolve() != Path({str(ROOT)!r})]; ")


def test_installed_wheel_is_what_runs_outside_the_checkout(installed):
    target, work, env = installed
    assert not (target / "cli.py").exists() and (target / "zoo" / "cli.py").is_file()
    where = (OFF_CHECKOUT + "import importlib.util, zoo, zoo.registry; "
             "assert zoo.__file__.startswith(sys.argv[1]), zoo.__file__; "
             "assert str(zoo.registry.registry_path()).startswith(sys.argv[1]); "
             "assert importlib.util.find_spec('cli') is None, 'a top-level cli module is importable'")
    proc = subprocess.run([sys.executable, "-c", where, str(target)], cwd=work, capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([str(target / "bin" / "zoo"), "list", "lenet*"], cwd=work, capture_output=True,
                          text=True, env=env)  # the console script pip wrote: zoo.cli:main (no TensorFlow)
    assert proc.returncode == 0 and "lenet5_original" in proc.stdout, proc.stderr


@pytest.mark.slow  # two processes that import TensorFlow: 35 s on the shared 2-core machine
def test_installed_wheel_predicts_with_its_shipped_weights(installed):
    target, work, env = installed
    image, truth = sample_png(work)
    predict = (OFF_CHECKOUT + "import runpy; sys.argv = ['zoo', *sys.argv[1:]]; "
               "import zoo; assert zoo.__file__.startswith(sys.argv[-1]), zoo.__file__; sys.argv.pop(); "
               "runpy.run_module('zoo.cli', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", predict, "predict", "lenet5", "--weights", "fashion_mnist",
                           str(image), "--json", str(target)], cwd=work, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    (answer,) = json.loads(proc.stdout)
    assert answer["image"] == str(image) and answer["top"][0]["label"] == truth
    proc = subprocess.run([str(target / "bin" / "zoo"), "predict", "lenet5", str(image), "--top-k", "1"],
                          cwd=work, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert truth in proc.stdout
