"""Tests generated from the registry: every variant, checked the same way.

Heavy variants (by parameter count or MACs) and deeper repeats of a light variant's code path run their expensive
checks under the `slow` marker; every variant's exact parameter and MAC counts are checked in the default suite.
"""

import numpy as np
import pytest

import zoo
from zoo.registry import registry

NAMES = registry().names()
HEAVY_PARAMS, HEAVY_MACS = 15_000_000, 3_000_000_000


def is_heavy(name):
    spec = registry().get(name)
    return spec.params > HEAVY_PARAMS or spec.macs > HEAVY_MACS


# Deeper copies of a light variant's code path (same blocks, same stage table, more repeats): their per-variant
# checks add minutes and no new branch, so they run under `slow` with the heavy ones. Their exact parameter and
# MAC counts stay in the default suite (fidelity first).
REPEATS = {"resnet32", "resnet44", "resnet56", "resnet110", "resnet1202", "densenet100_k12"}


def by_weight(names, heavy_mark=pytest.mark.slow):
    return [pytest.param(n, marks=heavy_mark) if is_heavy(n) or n in REPEATS else n for n in names]


def small_input(spec):
    """The smallest sensible test input: the minimum size, but at least 32 px where the net allows."""
    return max(spec.input.min_size, min(32, spec.input.size))


@pytest.mark.parametrize("name", NAMES)
def test_exact_params_and_macs(name):
    spec = registry().get(name)
    model = zoo.build(name)
    assert zoo.count_params(model) == spec.params == spec.reference.params
    assert zoo.count_macs(model) == spec.macs
    assert model.name == name


@pytest.mark.parametrize("name", by_weight(NAMES))
def test_forward_default_size(name):
    spec = registry().get(name)
    model = zoo.build(name)
    x = np.random.default_rng(0).normal(size=(2, spec.input.size, spec.input.size, spec.input.channels))
    # An untrained ResNet-1202 at inference normalises nothing (BatchNorm still holds its initial statistics), so
    # its 600 residual additions overflow float32; with batch statistics, as in training, it stays finite.
    batch_statistics = (spec.depth or 0) > 1000
    y = np.asarray(model(x.astype("float32"), training=batch_statistics))
    assert y.shape == (2, spec.classes)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-4)  # softmax head


@pytest.mark.parametrize("name", by_weight(NAMES))
def test_train_step_reaches_every_weight(name):
    import tensorflow as tf

    spec = registry().get(name)
    size = small_input(spec)
    model = zoo.build(name, input_shape=(size, size, spec.input.channels), classes=3,
                      classifier_activation=None)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(4, size, size, spec.input.channels)).astype("float32"))
    y = tf.constant([0, 1, 2, 0])
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        loss = sum(tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, o, from_logits=True))
                   for o in outputs)
    grads = tape.gradient(loss, model.trainable_weights)
    dead = [w.path for w, g in zip(model.trainable_weights, grads)
            if g is None or not np.any(np.asarray(g))]
    assert not dead, f"weights without gradient: {dead[:5]}"


@pytest.mark.parametrize("name", by_weight(NAMES))
@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_headless_pooling(name, pooling):
    spec = registry().get(name)
    model = zoo.build(name, include_top=False, pooling=pooling)
    assert len(model.output.shape) == 2
    features = model.output.shape[-1]
    x = np.zeros((1, spec.input.size, spec.input.size, spec.input.channels), "float32")
    assert np.asarray(model(x)).shape == (1, features)


@pytest.mark.parametrize("name", by_weight(NAMES))
def test_custom_classes_and_input_tensor(name):
    import keras

    spec = registry().get(name)
    size = small_input(spec)
    tensor = keras.Input((size, size, spec.input.channels), name="my_input")
    model = zoo.build(name, input_tensor=tensor, classes=7)
    assert model.inputs[0] is tensor
    assert model.output.shape[-1] == 7


@pytest.mark.parametrize("name", by_weight(NAMES))
def test_minimum_input_size(name):
    spec = registry().get(name)
    m = spec.input.min_size
    model = zoo.build(name, include_top=False, pooling="avg", input_shape=(m, m, spec.input.channels))
    out = np.asarray(model(np.zeros((1, m, m, spec.input.channels), "float32")))
    assert np.isfinite(out).all()
    with pytest.raises(ValueError, match=rf"minimum input size is {m}x{m}"):
        zoo.build(name, input_shape=(m - 1, m - 1, spec.input.channels))


@pytest.mark.parametrize("name", by_weight(NAMES))
def test_keras_save_load_round_trip(name, tmp_path):
    import keras

    spec = registry().get(name)
    size = small_input(spec)
    model = zoo.build(name, input_shape=(size, size, spec.input.channels), classes=5)
    x = np.random.default_rng(2).normal(size=(2, size, size, spec.input.channels)).astype("float32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]


def test_weights_path_round_trip(tmp_path):
    model = zoo.build("lenet5")
    path = tmp_path / "lenet5.weights.h5"
    model.save_weights(path)
    again = zoo.build("lenet5", weights=str(path))
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        zoo.build("lenet5", weights=str(tmp_path / "missing.weights.h5"))
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not an h5 file")
    with pytest.raises(ValueError, match="cannot load weights from"):
        zoo.build("lenet5", weights=str(bad))
    with pytest.raises(KeyError, match="unknown weights 'imagenet' for lenet5 \\(available: fashion_mnist\\)"):
        zoo.build("lenet5", weights="imagenet")  # named weights (issue 12): lenet5 has no ImageNet weights


def test_variants_importable_by_name():
    from zoo.models import lenet5, lenet5_original  # noqa: F401

    assert zoo.count_params(lenet5()) == 61706
    with pytest.raises(ImportError):
        from zoo.models import lenet6  # noqa: F401


def test_no_family_module_shadows_a_variant():
    """Importing zoo.models.<module> binds <module> on the package: no module may be named like a variant."""
    import pkgutil

    import zoo.models

    modules = {m.name for m in pkgutil.iter_modules(zoo.models.__path__)}
    assert not modules & set(NAMES)
    for family in registry().families:
        registry().builder(family)  # imports every family module
    from zoo.models import alexnet, googlenet

    assert callable(alexnet) and alexnet.__name__ == "alexnet"
    assert googlenet.__name__ == "googlenet"


# ---------------------------------------------------------------------------------------------------------------
# The family contract (zoo/models/family.py): one FAMILY per family module, read by zoo.build and the harness


@pytest.mark.parametrize("family", sorted(registry().families))
def test_every_family_exports_its_contract(family):
    from zoo.archs import SCHEMAS
    from zoo.models import family_of
    from zoo.models.family import Family

    contracts = {family_of(n) for n in registry().list(family=family)}
    assert len(contracts) == 1
    contract = contracts.pop()
    assert isinstance(contract, Family) and contract.name == family and contract.schema is SCHEMAS[family]
    assert all(option.help and option.name.isidentifier() for option in contract.options)


def test_declared_options():
    from zoo.models import family_of

    options = {family: {o.name: o.default for o in family_of(registry().list(family=family)[0]).options}
               for family in registry().families}
    assert options == {"lenet": {}, "alexnet": {}, "vgg": {}, "googlenet": {"aux_logits": False},
                       "resnet": {}, "densenet": {"dropout": None}}


def test_unknown_option_is_one_line():
    from zoo.models.family import UnknownOptionError

    with pytest.raises(TypeError, match=r"^resnet20: unknown option 'aux_logits' \(options of resnet models: "
                                        r"none\)$"):
        zoo.build("resnet20", aux_logits=True)
    with pytest.raises(UnknownOptionError, match=r"^densenet40_k12: unknown option 'aux_logit' \(options of "
                                                 r"densenet models: dropout\)$"):
        zoo.build("densenet40_k12", aux_logit=True)


@pytest.mark.parametrize("name", by_weight(NAMES))
def test_feature_stages_are_layers_at_their_stride(name):
    """Each stage names a layer of the built model; its map is input/stride (up to the valid convs' borders)."""
    from zoo.models import family_of

    spec = registry().get(name)
    stages = family_of(spec).feature_stages(spec.arch)
    model = zoo.build(name, include_top=False)
    strides = [stage.stride for stage in stages]
    assert strides == sorted(strides) and len(set(strides)) == len(strides)
    for stage in stages:
        height = model.get_layer(stage.name).output.shape[1]
        assert spec.input.size / (2 * stage.stride) < height <= -(-spec.input.size // stage.stride), stage


@pytest.mark.parametrize("name", [n for n in NAMES if registry().get(n).family != "googlenet"][:3])
def test_inference_model_is_the_model_without_training_heads(name):
    from zoo.models import family_of

    model = zoo.build(name)
    assert family_of(name).inference_model(model) is model
