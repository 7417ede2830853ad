"""Portable models: every variant saved with `model.save("x.keras")` loads in a FRESH Python process with only
`import zoo` and `keras.saving.load_model(path)`, and gives the same outputs.

The same-process round trip (tests/test_models.py) cannot see a missing registration: the builders imported the
custom layers' modules already. Here one child process per group loads every file, so a custom layer, activation
or schedule that registers only when its module happens to be imported fails the test.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import zoo
from zoo.registry import registry

from test_models import NAMES, is_heavy, small_input

LIGHT = [n for n in NAMES if not is_heavy(n)]
HEAVY = [n for n in NAMES if is_heavy(n)]

CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import zoo  # the only zoo import: it must be enough
    import keras

    folder = sys.argv[1]
    names = json.loads(open(f"{folder}/names.json").read())
    for name in names:
        model = keras.saving.load_model(f"{folder}/{name}.keras")
        x = np.load(f"{folder}/{name}.input.npy")
        np.save(f"{folder}/{name}.loaded.npy", np.asarray(model(x)))
    print("loaded", len(names))
""")


def save_all(names, folder):
    """Build each variant with random weights, save it and its output on a fixed input."""
    outputs = {}
    for name in names:
        spec = registry().get(name)
        size = small_input(spec)
        model = zoo.build(name, input_shape=(size, size, spec.input.channels), classes=5)
        x = np.random.default_rng(3).normal(size=(2, size, size, spec.input.channels)).astype("float32")
        model.save(folder / f"{name}.keras")
        np.save(folder / f"{name}.input.npy", x)
        outputs[name] = np.asarray(model(x))
    (folder / "names.json").write_text(json.dumps(names))
    return outputs


def load_in_fresh_process(folder):
    result = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True,
                            timeout=1800, env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: np.load(folder / f"{name}.loaded.npy") for name in json.loads((folder / "names.json").read_text())}


@pytest.fixture(scope="module")
def light_round_trip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("portable")
    saved = save_all(LIGHT, folder)
    return saved, load_in_fresh_process(folder)


@pytest.mark.parametrize("name", LIGHT)
def test_keras_file_loads_in_a_fresh_process(name, light_round_trip):
    saved, loaded = light_round_trip
    np.testing.assert_allclose(loaded[name], saved[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_heavy_keras_files_load_in_a_fresh_process(tmp_path):
    for name in HEAVY:  # one at a time: the files are hundreds of MB each
        saved = save_all([name], tmp_path)
        loaded = load_in_fresh_process(tmp_path)
        np.testing.assert_allclose(loaded[name], saved[name], rtol=1e-5, atol=1e-6, err_msg=name)
        for path in tmp_path.iterdir():
            path.unlink()


def test_import_zoo_stays_light():
    """The registration waits for Keras: `import zoo` alone imports neither Keras nor TensorFlow."""
    code = "import sys, zoo; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.split() == ["False", "False"]


def test_keras_imported_before_zoo_also_registers(tmp_path):
    saved = save_all(["lenet5_original"], tmp_path)
    code = ("import sys, numpy as np, keras, zoo\n"
            f"m = keras.saving.load_model(r'{tmp_path}/lenet5_original.keras')\n"
            f"np.save(r'{tmp_path}/out.npy', np.asarray(m(np.load(r'{tmp_path}/lenet5_original.input.npy'))))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), saved["lenet5_original"], rtol=1e-5, atol=1e-6)


def test_compiled_lenet5_original_keeps_its_eq9_loss_in_a_fresh_process(tmp_path):
    """A `.keras` file of lenet5_original compiled with its MAP criterion (eq. 9) loads with the loss restored."""
    from zoo.training.losses import MAPCriterion

    model = zoo.build("lenet5_original")
    model.compile(optimizer="sgd", loss=MAPCriterion(rubbish_penalty=0.25))
    path = tmp_path / "lenet5_original.compiled.keras"
    model.save(path)
    x = np.random.default_rng(4).normal(size=(3, 32, 32, 1)).astype("float32")
    y = np.array([0, 4, 9])
    expected = float(model.loss(y, model(x)))
    np.save(tmp_path / "x.npy", x)
    code = ("import json, numpy as np, zoo, keras\n"
            f"m = keras.saving.load_model(r'{path}')\n"
            f"x = np.load(r'{tmp_path}/x.npy')\n"
            "print(json.dumps([type(m.loss).__name__, m.loss.rubbish_penalty,"
            " float(m.loss(np.array([0, 4, 9]), m(x)))]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    name, penalty, loss = json.loads(result.stdout.strip().splitlines()[-1])
    assert (name, penalty) == ("MAPCriterion", 0.25)
    assert loss == pytest.approx(expected, rel=1e-5)
