"""The GPU acceptance run in its CPU smoke mode (the same code paths with tiny iterations, Keras on JAX, TensorFlow
blocked as on the GPU machines), and the carry kit's offline half. The smoke run is what keeps the prepared GPU
run from rotting between the rare minutes a GPU is lent: it must stay in the default suite and under 2 minutes."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_kit  # noqa: E402

# Imported by parts of the zoo that the GPU run does not use (the tf.data path and its TensorBoard HParams, export
# backends) or present there.
NOT_CARRIED = {"tensorflow", "tensorflow_datasets", "tensorboard", "torch", "onnx", "onnxruntime", "tf2onnx",
               "ai_edge_litert", "wrapt", "zoo"}


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e '.[test]')")
def test_smoke_run_exercises_every_step(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_acceptance.py"), "--smoke", "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    [raw] = (tmp_path / "runs" / "gpu").glob("smoke-*.json")
    data = json.loads(raw.read_text())
    steps = data["steps"]
    assert set(steps) == {"device", "bench", "resnet20", "lenet5", "precision"}
    assert all(step["status"] == "ok" for step in steps.values()), {n: s.get("error") for n, s in steps.items()}
    device = steps["device"]
    assert device["versions"]["backend"] == "jax" and device["tensorflow_importable"] is False
    assert device["input_path"] == "numpy"
    rows = steps["bench"]["rows"]
    assert {(r["mode"], r["backend"], r["jit"]) for r in rows} == {("infer", "jax", True), ("train", "jax", True)}
    assert all(r["images_per_s"] > 0 and 0 < r["mfu"] < 1.5 and r["tf_version"] is None for r in rows)
    assert steps["resnet20"]["steps"] == 4 and 0 <= steps["resnet20"]["test_accuracy"] <= 1
    lenet = steps["lenet5"]
    assert lenet["pipeline_images_per_s"] > lenet["train_images_per_s"] > 0
    precision = steps["precision"]
    assert len(precision["fp32_losses"]) == len(precision["bf16_losses"]) == 8
    assert precision["within_tolerance"], precision["max_relative_gap"]
    report = (tmp_path / "gpu.md").read_text()
    for heading in ("## Targets", "## Benchmarks", "## ResNet-20 on Fashion-MNIST", "## LeNet-5 throughput",
                    "## Mixed precision"):
        assert heading in report
    assert "TensorFlow importable: False" in report and "--smoke" in report


def test_smoke_needs_an_output_folder():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_acceptance.py"), "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--out" in done.stderr.splitlines()[-1]


def test_kit_install_without_wheels_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_kit, "WHEELS", tmp_path / "wheels")
    monkeypatch.setattr(gpu_kit, "SITE", tmp_path / "site")
    with pytest.raises(gpu_kit.KitError, match="no wheels in .*gpu_kit.py build"):
        gpu_kit.install()


def test_kit_environment_points_at_the_kit():
    env = gpu_kit.environment()
    assert env["KERAS_BACKEND"] == "jax"
    assert env["PYTHONPATH"].split(":")[:2] == [str(gpu_kit.SITE), str(ROOT)]
    assert env["ZOO_DATA_DIR"] == str(gpu_kit.DATA)


def test_kit_carries_every_third_party_import_of_the_zoo():
    """What zoo/ imports is stdlib, carried, or assumed present on the GPU machine (or off the GPU run's path)."""
    imported = set()
    for path in (ROOT / "zoo").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names}
    known = set(gpu_kit.CARRIED.values()) | set(gpu_kit.ASSUMED.values()) | NOT_CARRIED
    assert third_party <= known, f"add to scripts/gpu_kit.py CARRIED or ASSUMED: {sorted(third_party - known)}"


def test_kit_fits_beside_the_tree():
    """The wheels are small; the data and the tree leave room under the 64 MiB that travel."""
    data = sum((Path("/usr/share/datasets/fashion-mnist") / n).stat().st_size for n in gpu_kit.FASHION_MNIST
               if (Path("/usr/share/datasets/fashion-mnist") / n).is_file())
    assert (gpu_kit.tree_size() + data) / 2 ** 20 < gpu_kit.LIMIT_MB - 10  # ~6 MiB of wheels and a margin
