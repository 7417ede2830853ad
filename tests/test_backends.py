"""Backend portability: the zoo's models run unchanged on Keras 3's JAX and PyTorch backends, and the light parts
(registry, `zoo list`, `zoo info`) work on a machine without TensorFlow.

Each backend runs in a fresh subprocess (Keras fixes its backend at import): TensorFlow builds every variant at a
small input, saves its random weights (.weights.h5) and its outputs on a fixed input; JAX and PyTorch build the same
variant, load that file and must give the same outputs. Tolerance: max |output - TF's| <= TOLERANCE x (1 + max
|TF's output|), float32 on the CPU (the three backends' convolution kernels sum in different orders).

Default suite: the small variants and one per family (every family must be covered); `-m slow`: every variant.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import zoo
from zoo import backend
from zoo.registry import registry

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5
# The small variants and one per family; test_every_family_is_covered keeps it so as families are added.
DEFAULT_VARIANTS = ["lenet5", "lenet5_original", "lenet5_harley", "alexnet", "vgg11_bn", "googlenet", "resnet20",
                    "resnet18", "densenet40_k12"]
ALL_VARIANTS = registry().names()
CLASSES = 10  # small heads keep the weights files small; the bodies are the registry's

# Run in the subprocess: argv = backend role ("write" or "check"), a JSON list of variants, the folder.
WORKER = r'''
import json, sys
from pathlib import Path
import numpy as np
import keras
import zoo
from zoo.registry import registry

role, names, folder = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
report = {"backend": keras.backend.backend(), "variants": {}}
for name in names:
    spec = registry().get(name)
    size = max(32, spec.input.min_size)
    shape = (size, size, spec.input.channels)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    weights = folder / f"{name}.weights.h5"
    if role == "write":
        keras.utils.set_random_seed(0)
        model = zoo.build(name, input_shape=shape, classes=10, classifier_activation=None)
        model.save_weights(weights)
    else:
        model = zoo.build(name, input_shape=shape, classes=10, classifier_activation=None, weights=weights)
    y = np.asarray(model.predict_on_batch(x), dtype="float64")  # compiled as the backend compiles
    np.save(folder / f"{name}.{report['backend']}.npy", y)
    report["variants"][name] = {"params": zoo.count_params(model), "macs": zoo.count_macs(model)}
    keras.backend.clear_session()
print(json.dumps(report))
'''


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_backend(kind: str, role: str, names: list[str], folder: Path, *, block_tf: bool = False,
                timeout: int = 900) -> dict:
    env = dict(os.environ, KERAS_BACKEND=kind, TF_CPP_MIN_LOG_LEVEL="3")
    if kind == "jax":
        # Under JAX every distinct kernel shape compiles its own random initialiser (1-2 s each on 2 CPU cores:
        # DenseNet's growing inputs make ~40); unoptimised XLA compiles twice as fast, and the weights are loaded
        # from the file anyway.
        env["XLA_FLAGS"] = " ".join(filter(None, [env.get("XLA_FLAGS"), "--xla_backend_optimization_level=0"]))
    if block_tf:
        env = backend.block_tensorflow(folder / "no-tf", env)
    done = subprocess.run([sys.executable, "-c", WORKER, role, json.dumps(names), str(folder)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{kind} {role} failed:\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["backend"] == kind
    return report


def compare(names: list[str], folder: Path, kind: str) -> None:
    import numpy as np

    for name in names:
        reference = np.load(folder / f"{name}.tensorflow.npy")
        got = np.load(folder / f"{name}.{kind}.npy")
        assert got.shape == reference.shape == (2, CLASSES), name
        scale = 1.0 + np.abs(reference).max()
        worst = np.abs(got - reference).max()
        assert worst <= TOLERANCE * scale, f"{name} on {kind}: max |diff| {worst:.3g} (scale {scale:.3g})"


def portability(names: list[str], folder: Path) -> None:
    """TF writes weights and outputs; JAX (with TensorFlow blocked: the GPU machine has none) and PyTorch load the
    same files and must agree, with the same parameter and MAC counts."""
    written = run_backend("tensorflow", "write", names, folder)
    kinds = ["jax"] + (["torch"] if _installed("torch") else [])
    for kind in kinds:
        checked = run_backend(kind, "check", names, folder, block_tf=(kind == "jax"))
        assert checked["variants"] == written["variants"], f"{kind}: params/MACs differ from TensorFlow's"
        compare(names, folder, kind)


def test_every_family_is_covered():
    assert {registry().get(n).family for n in DEFAULT_VARIANTS} == set(registry().families)
    assert set(DEFAULT_VARIANTS) <= set(ALL_VARIANTS)


@pytest.mark.skipif(not _installed("jax"), reason="jax is not installed (pip install -e '.[test]')")
def test_default_variants_agree_across_backends(tmp_path):
    portability(DEFAULT_VARIANTS, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not _installed("jax"), reason="jax is not installed (pip install -e '.[test]')")
def test_every_variant_agrees_across_backends(tmp_path):
    portability(ALL_VARIANTS, tmp_path)


def test_registry_and_light_commands_without_tensorflow(tmp_path):
    """`zoo list`, `zoo info` and the registry on a machine where `import tensorflow` fails."""
    env = backend.block_tensorflow(tmp_path / "no-tf", dict(os.environ, KERAS_BACKEND="jax"))
    script = ("import sys, zoo, zoo.backend as b\n"
              "assert not b.tensorflow_available() and b.input_path() == 'numpy'\n"
              "assert zoo.list_models('resnet*') and zoo.get_spec('resnet50').params == 25557032\n"
              "import cli\n"
              "assert cli.main(['list']) == 0 and cli.main(['info', 'googlenet']) == 0\n"
              "assert cli.main(['list', '--json']) == 0\n"
              "assert 'tensorflow' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resnet50" in done.stdout and "googlenet" in done.stdout
    blocked = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert blocked.returncode != 0 and "No module named 'tensorflow'" in blocked.stderr  # the block is real


def test_backend_facts_here():
    """This process (the test suite) runs TensorFlow: the tf.data path."""
    assert backend.name() == "tensorflow" and backend.tensorflow_available()
    assert backend.input_path() == "tf.data"
    assert zoo.__version__
