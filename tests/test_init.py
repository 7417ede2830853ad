"""The papers' initialisations (zoo.build(..., init="paper"), the default; zoo/models/init.py): the schemes the
registry holds are the papers' (checked against the values written out here), every conv and dense layer's initial
weights follow them (mean and variance per layer within sampling tolerance, biases exactly), init="keras" gives
Keras' initialisers, and ZFNet's filter renormalisation acts after a real optimizer step and survives a .keras file
loaded in a fresh process."""

import fnmatch
import functools
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import zoo
from zoo.models import family_of
from zoo.models.layers import FilterRMSNorm, PartialConv2D, TrainableSubsampling

# What each paper states, written out (the registry's data must say the same): kernel, its parameter, the biases.
ALEXNET_ONES = {"conv2": 1.0, "conv4": 1.0, "conv5": 1.0, "fc6": 1.0, "fc7": 1.0}
PAPERS = {
    "lenet5_original": dict(kernel="fan_in_uniform", scale=2.4, bias=0.0, biases={}),  # LeCun et al. App. A
    "alexnet": dict(kernel="normal", std=0.01, bias=0.0, biases=ALEXNET_ONES),  # Krizhevsky et al. sec. 5
    "zfnet": dict(kernel="normal", std=0.01, bias=0.0, biases={}, filter_rms=0.1),  # Zeiler & Fergus sec. 3
    "vgg11_bn": dict(kernel="glorot_uniform", bias=0.0, biases={}),  # Simonyan & Zisserman sec. 3.1 (Glorot)
    "googlenet": dict(kernel="lecun_uniform", bias=0.2, biases={"*predictions": 0.0}),  # BVLC train_val.prototxt
    "resnet20": dict(kernel="he_normal", mode="fan_in", bias=0.0, biases={}),  # He et al. sec. 3.4 -> [13]
    "densenet40_k12": dict(kernel="he_normal", mode="fan_in", bias=0.0, biases={}),  # Huang et al. sec. 4.2
}
# Small inputs (each the variant's smallest, or near it): the statistics do not depend on the input size.
SHAPES = {"alexnet": (67, 67, 3), "zfnet": (53, 53, 3), "vgg11_bn": (32, 32, 3), "googlenet": (32, 32, 3)}


@functools.lru_cache(maxsize=None)
def built(name: str, init: str = "paper", seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    kwargs = {"input_shape": SHAPES[name]} if name in SHAPES else {}
    return zoo.build(name, classes=10, init=init, **kwargs)


def fans(shape) -> tuple[int, int]:
    """Keras' fan-in and fan-out of a kernel shape (dense: inputs, outputs; conv: kh * kw * maps)."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def expected_variance(paper: dict, shape, fan_in=None) -> float:
    fan_in_shape, fan_out = fans(shape)
    fan_in = fan_in_shape if fan_in is None else fan_in
    kind = paper["kernel"]
    if kind == "normal":
        return paper["std"] ** 2
    if kind == "fan_in_uniform":
        return (paper["scale"] / fan_in) ** 2 / 3  # U(-a, a) has variance a^2 / 3
    if kind == "glorot_uniform":
        return 2.0 / (fan_in + fan_out)
    if kind == "lecun_uniform":
        return 1.0 / fan_in
    return 2.0 / (fan_in if paper["mode"] == "fan_in" else fan_out)  # he_normal


def assert_drawn_like(values: np.ndarray, variance: float, what: str) -> None:
    """Mean and variance within six standard errors of the stated distribution's (0 and `variance`)."""
    n = values.size
    assert abs(values.mean()) < 6 * np.sqrt(variance / n), what
    assert values.var() == pytest.approx(variance, rel=6 * np.sqrt(2.0 / n)), what


def kernels(model):
    """(layer, kernel values, fan-ins or None) for every drawn kernel of `model`."""
    for layer in model.layers:
        if isinstance(layer, PartialConv2D):
            fan_ins = np.array([25.0 * len(inputs) for inputs in layer.table for _ in inputs])  # per connection
            yield layer, np.asarray(layer.kernel), fan_ins
        elif isinstance(layer, TrainableSubsampling):
            yield layer, np.asarray(layer.coefficient), np.full(layer.coefficient.shape, 4.0)
        elif hasattr(layer, "kernel") and layer.__class__.__name__ in ("Conv2D", "Dense"):
            yield layer, np.asarray(layer.kernel), None


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_the_registry_holds_each_papers_initialisation(name):
    init = zoo.get_spec(name).arch.init
    for key, value in PAPERS[name].items():
        assert getattr(init, key) == value, (name, key)
    assert init.filter_rms == PAPERS[name].get("filter_rms")
    assert init.source and init.describe()


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_initial_weights_follow_the_paper(name):
    paper, model = PAPERS[name], built(name)
    checked = 0
    for layer, values, fan_ins in kernels(model):
        if fan_ins is None:
            assert_drawn_like(values, expected_variance(paper, values.shape), f"{name}: {layer.name}")
        elif isinstance(layer, TrainableSubsampling):  # 6 or 16 coefficients: their bound, not their variance
            assert np.abs(values).max() <= paper["scale"] / 4 and np.ptp(values) > 0.1, layer.name
        else:  # C3: each map's columns by their own fan-in (75, 100 or 150)
            for fan_in in np.unique(fan_ins):
                column = values[..., fan_ins == fan_in]
                assert_drawn_like(column, expected_variance(paper, values.shape, fan_in), f"C3 fan-in {fan_in}")
        bias = getattr(layer, "bias", None)
        if bias is not None:
            wanted = next((v for p, v in paper["biases"].items() if fnmatch.fnmatchcase(layer.name, p)),
                          paper["bias"])
            assert np.all(np.asarray(bias) == np.float32(wanted)), (name, layer.name)
        checked += 1
    assert checked >= 3
    for layer in model.layers:  # BatchNorm as every paper has it
        if layer.__class__.__name__ == "BatchNormalization":
            assert np.all(np.asarray(layer.gamma) == 1) and np.all(np.asarray(layer.beta) == 0)


def test_the_layer_configs_name_what_was_drawn():
    conv1 = built("alexnet").get_layer("conv1").get_config()
    assert conv1["kernel_initializer"]["class_name"] == "RandomNormal"
    assert conv1["kernel_initializer"]["config"]["stddev"] == 0.01
    assert built("alexnet").get_layer("conv2").get_config()["bias_initializer"]["config"]["value"] == 1.0
    assert built("resnet20").get_layer("conv1_conv").get_config()["kernel_initializer"]["config"]["distribution"] \
        == "untruncated_normal"
    assert built("lenet5_original").get_layer("C1").get_config()["kernel_initializer"]["class_name"] == "FanInUniform"


def test_keras_init_is_keras_defaults():
    model = built("lenet5_original", "keras")
    c1 = np.asarray(model.get_layer("C1").kernel)
    assert_drawn_like(c1, 2.0 / (25 + 150), "C1: Glorot uniform")
    assert np.all(np.asarray(model.get_layer("S2").coefficient) == 1.0)  # the layer's own start
    c3 = model.get_layer("C3")
    assert np.abs(np.asarray(c3.kernel)).max() <= np.sqrt(3.0 / (25 * 60 / 16))  # its LeCun-uniform, mean fan-in
    alexnet = built("alexnet", "keras")
    assert np.all(np.asarray(alexnet.get_layer("conv2").bias) == 0)
    assert alexnet.get_layer("conv1").get_config()["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert built("zfnet", "keras").get_layer("conv1").kernel_constraint is None


def test_the_same_seed_draws_the_same_weights():
    a, b = built("resnet20", seed=3), built("resnet20", "paper", 4)
    import keras

    keras.utils.set_random_seed(3)
    again = zoo.build("resnet20", classes=10)
    np.testing.assert_array_equal(a.get_layer("conv1_conv").kernel, again.get_layer("conv1_conv").kernel)
    assert not np.array_equal(a.get_layer("conv1_conv").kernel, b.get_layer("conv1_conv").kernel)


def test_a_bad_init_is_one_line():
    with pytest.raises(ValueError, match=r"^lenet5: init must be one of paper, keras, got 'glorot'$"):
        zoo.build("lenet5", init="glorot")
    from zoo.training.options import OptionError, RunOptions

    with pytest.raises(OptionError, match="init must be one of paper, keras"):
        RunOptions.of(init="he")


def big_step(model, lr: float = 1.0) -> None:
    """One SGD update of every conv kernel by a standard-normal gradient (one filter of conv1 left alone): the
    filters' RMS goes from about 0.01 to about 1, ten times ZFNet's radius."""
    import keras

    rng = np.random.default_rng(0)
    pairs = []
    for layer in model.layers:
        if layer.__class__.__name__ == "Conv2D":
            gradient = rng.normal(size=tuple(layer.kernel.shape)).astype("float32")
            if layer.name == "conv1":
                gradient[..., 0] = 0.0
            pairs.append((gradient, layer.kernel))
    keras.optimizers.SGD(learning_rate=lr).apply_gradients(pairs)


def filter_rms(kernel) -> np.ndarray:
    k = np.asarray(kernel)
    return np.sqrt((k ** 2).reshape(-1, k.shape[-1]).mean(axis=0))


def test_zfnet_renormalises_filters_after_a_large_step():
    import keras

    keras.utils.set_random_seed(0)
    constrained = zoo.build("zfnet", input_shape=SHAPES["zfnet"], classes=10)  # a model of its own: it is changed
    free = zoo.build("zfnet", input_shape=SHAPES["zfnet"], classes=10, init="keras")
    before = filter_rms(constrained.get_layer("conv1").kernel)[0]
    big_step(constrained)
    big_step(free)
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        rms, unconstrained = filter_rms(constrained.get_layer(name).kernel), filter_rms(free.get_layer(name).kernel)
        moved = slice(1, None) if name == "conv1" else slice(None)
        assert unconstrained[moved].min() > 0.5, name  # the step would leave them far outside the radius
        np.testing.assert_allclose(rms[moved], 0.1, rtol=1e-5, err_msg=name)  # renormalised to it
    assert filter_rms(constrained.get_layer("conv1").kernel)[0] == pytest.approx(before)  # within: untouched
    assert constrained.get_layer("fc6").kernel_constraint is None  # the conv layers only


def test_filter_rms_norm_leaves_small_filters_alone():
    w = np.random.default_rng(0).normal(scale=0.5, size=(3, 3, 4, 6)).astype("float32")
    w[..., :2] *= 0.01
    out = np.asarray(FilterRMSNorm(0.1)(w))
    np.testing.assert_array_equal(out[..., :2], w[..., :2])
    np.testing.assert_allclose(filter_rms(out)[2:], 0.1, rtol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        FilterRMSNorm(0)


LOAD_AND_STEP = """
import json, sys
import numpy as np
import keras
import zoo  # registers the zoo's custom objects: FilterRMSNorm among them
from test_init import big_step, filter_rms  # (run from tests/)

model = keras.saving.load_model(sys.argv[1])
conv = model.get_layer("conv1")
big_step(model)
print(json.dumps({"constraint": type(conv.kernel.constraint).__name__, "radius": conv.kernel_constraint.radius,
                  "rms": filter_rms(conv.kernel).tolist()}))
"""


def test_the_constraint_survives_a_keras_file_in_a_fresh_process(tmp_path):
    """A small AlexNet-family net with ZFNet's initialisation (the registry's), saved and loaded elsewhere."""
    arch = {"conv": [{"filters": 8, "kernel": 3, "stride": 2, "lrn": True, "pool": "valid"},
                     {"filters": 16, "kernel": 3, "pad": 1}],
            "norm": "after_pool", "pool": {"size": 3, "stride": 2}, "dense": [32],
            "init": zoo.get_spec("zfnet").arch.init.model_dump()}
    model = family_of("zfnet").build(arch, SimpleNamespace(size=32, min_size=8, channels=3), classes=4,
                                     name="small_zfnet")
    path = tmp_path / "small_zfnet.keras"
    model.save(path)
    proc = subprocess.run([sys.executable, "-c", LOAD_AND_STEP, str(path)], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["constraint"] == "FilterRMSNorm" and found["radius"] == 0.1
    np.testing.assert_allclose(found["rms"][1:], 0.1, rtol=1e-5)
    assert found["rms"][0] < 0.1


def test_weights_replace_the_draw_and_keep_the_constraint(tmp_path):
    arch = {"conv": [{"filters": 4, "kernel": 3, "pool": "valid"}], "pool": {"size": 3, "stride": 2},
            "dense": [8], "init": zoo.get_spec("zfnet").arch.init.model_dump()}
    facts = SimpleNamespace(size=16, min_size=8, channels=1)
    source = family_of("zfnet").build(arch, facts, classes=3, init="keras")
    path = tmp_path / "w.weights.h5"
    source.save_weights(path)
    loaded = family_of("zfnet").build(arch, facts, classes=3, weights=path)
    np.testing.assert_array_equal(loaded.get_layer("conv1").kernel, source.get_layer("conv1").kernel)
    assert isinstance(loaded.get_layer("conv1").kernel.constraint, FilterRMSNorm)


def test_zoo_train_records_the_init(tmp_path):
    from zoo.training.config import RunConfig, resolve

    assert resolve("resnet20", dataset="fashion_mnist_sample").init == "paper"
    assert resolve("resnet20", dataset="fashion_mnist_sample", init="keras").init == "keras"
    old = {k: v for k, v in resolve("lenet5").to_dict().items() if k not in ("init", "loss")}
    assert RunConfig.from_dict(old).init == "keras"  # a config.json from before the option: Keras' initialisers
    from zoo import results

    result = zoo.train("lenet5", max_steps=2, init="keras", output=tmp_path / "run", results=tmp_path / "store",
                       verbose=False)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["init"] == "keras"
    assert result.run.config.init == "keras"
    [record] = results.load(store=tmp_path / "store")  # the results record, and metrics.json, say it too
    assert record["init"] == "keras" == json.loads((tmp_path / "run" / "metrics.json").read_text())["init"]

