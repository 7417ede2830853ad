"""DenseNet facts the registry-generated tests do not cover: keras.applications compatibility, growth and
compression of the channel counts, basic vs BC layers, the dropout option, and the arch data's own arithmetic."""

import numpy as np
import pytest

import zoo
from zoo.registry import registry

DENSENETS = registry().list(family="densenet")


def weighted_layers(model):
    """{layer name: [weight shapes]} for every layer that carries weights (what a by-name copy relies on)."""
    return {layer.name: [tuple(w.shape) for w in layer.weights] for layer in model.layers if layer.weights}


def channels(model, layer_name):
    return model.get_layer(layer_name).output.shape[-1]


@pytest.fixture(scope="module")
def keras_densenet121():
    import keras

    return keras.applications.DenseNet121(weights=None, classifier_activation=None)


@pytest.fixture(scope="module")
def densenet121():
    return zoo.build("densenet121", classifier_activation=None)


@pytest.fixture(scope="module")
def densenet40_k12():
    return zoo.build("densenet40_k12")


@pytest.fixture(scope="module")
def densenet_bc100_k12():
    return zoo.build("densenet_bc100_k12")


def test_weighted_layers_equal_keras_applications(keras_densenet121, densenet121):
    ours, theirs = weighted_layers(densenet121), weighted_layers(keras_densenet121)
    assert len(theirs) == 242  # 120 convs + 121 BNs + the classifier
    assert ours == theirs


def test_keras_weights_copied_by_name_give_keras_outputs(keras_densenet121, densenet121):
    import keras

    rng = np.random.default_rng(0)
    for layer in keras_densenet121.layers:  # non-trivial BN statistics; convs keep their random initialisation
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = (w.shape for w in layer.weights)
            layer.set_weights([rng.uniform(0.5, 1.5, gamma), rng.normal(0, 0.1, beta), rng.normal(0, 0.1, mean),
                               rng.uniform(0.5, 1.5, variance)])
    for layer in densenet121.layers:
        if layer.weights:
            layer.set_weights(keras_densenet121.get_layer(layer.name).get_weights())
    x = rng.normal(size=(1, 224, 224, 3)).astype("float32")
    expected = np.asarray(keras_densenet121(x, training=False))
    np.testing.assert_allclose(np.asarray(densenet121(x, training=False)), expected, rtol=1e-4, atol=1e-5)


def test_imagenet_growth_and_compression(densenet121):
    assert channels(densenet121, "conv1_conv") == 64
    assert channels(densenet121, "conv2_block1_concat") == 64 + 32  # each layer adds k = 32 maps
    assert channels(densenet121, "conv2_block1_1_conv") == 4 * 32  # bottleneck width 4k
    assert channels(densenet121, "conv2_block6_concat") == 64 + 6 * 32
    assert channels(densenet121, "pool2_conv") == 128  # theta = 0.5 halves the 256 maps
    assert densenet121.get_layer("pool2_pool").output.shape[1:3] == (28, 28)
    assert channels(densenet121, "pool4_conv") == 512  # (256 + 24 * 32) / 2
    assert channels(densenet121, "relu") == 1024  # 512 + 16 * 32
    assert densenet121.get_layer("relu").output.shape[1:3] == (7, 7)


def test_bc_cifar_first_conv_and_compression(densenet_bc100_k12):
    model = densenet_bc100_k12
    assert channels(model, "conv1_conv") == 2 * 12
    assert model.get_layer("conv1_conv").kernel_size == (3, 3)
    assert channels(model, "conv2_block16_concat") == 24 + 16 * 12
    assert channels(model, "pool2_conv") == 108  # floor(0.5 * 216)
    assert channels(model, "pool3_conv") == 150  # floor(0.5 * (108 + 192))
    assert channels(model, "relu") == 342
    assert channels(model, "conv3_block1_1_conv") == 4 * 12


def test_basic_cifar_has_no_bottleneck_and_no_compression(densenet40_k12):
    import keras

    model = densenet40_k12
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    block_convs = [c for c in convs if "_block" in c.name]
    assert len(block_convs) == 36 and all(c.kernel_size == (3, 3) for c in block_convs)
    assert not any(c.name.endswith("_1_conv") for c in convs)
    assert channels(model, "conv1_conv") == 16
    assert channels(model, "pool2_conv") == 16 + 12 * 12  # theta = 1 keeps every map
    assert channels(model, "relu") == 16 + 3 * 12 * 12
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)


def test_dropout_option_adds_dropout_after_each_conv_but_the_first():
    import keras

    model = zoo.build("densenet40_k12", dropout=0.2)
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(drops) == 36 + 2  # one per dense layer, one per transition
    assert {d.rate for d in drops} == {0.2}
    assert model.get_layer("conv2_block1_0_bn").input is model.get_layer("conv1_conv").output
    assert zoo.count_params(model) == 1019722  # dropout adds no weights
    x = np.ones((2, 32, 32, 3), "float32")
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), np.asarray(model(x, training=False)))


def test_bc_dropout_follows_both_convs_of_a_layer():
    model = zoo.build("densenet_bc100_k12", dropout=0.2, input_shape=(8, 8, 3))
    names = {layer.name for layer in model.layers}
    assert {"conv2_block1_1_dropout", "conv2_block1_2_dropout", "pool2_dropout", "pool3_dropout"} <= names


@pytest.mark.parametrize("name", DENSENETS)
def test_depth_is_the_arch_layer_count(name):
    """Weighted layers on the longest path: first conv, 1 or 2 convs per dense layer, transitions, classifier."""
    spec = registry().get(name)
    blocks, per_layer = spec.arch.blocks, 2 if spec.arch.bottleneck else 1
    counted = 1 + per_layer * sum(blocks) + (len(blocks) - 1) + 1
    assert counted == (265 if name == "densenet264" else spec.depth)  # Table 1's 264 has 265 by this count


@pytest.mark.parametrize("name", [n for n in DENSENETS if registry().get(n).arch.stem == "cifar"])
def test_cifar_block_sizes_follow_the_depth(name):
    spec = registry().get(name)
    per_block = (spec.depth - 4) // (6 if spec.arch.bottleneck else 3)
    assert spec.arch.blocks == [per_block] * 3
    assert spec.arch.initial_filters == (2 * spec.arch.growth_rate if spec.arch.bottleneck else 16)
    assert spec.arch.compression == (0.5 if spec.arch.bottleneck else 1.0)


def test_bad_arch_and_options_raise_clear_errors():
    """Bad arch values fail when the registry loads (tests/test_archs.py); a mapping given to the family directly
    fails the same way; the dropout option is checked when the model is built."""
    from zoo.models import densenet

    spec = registry().get("densenet40_k12")
    arch = spec.arch.model_dump()
    with pytest.raises(ValueError, match="bad: arch: field 'stem': Input should be 'imagenet' or 'cifar'"):
        densenet.FAMILY.build({**arch, "stem": "mnist"}, spec.input, name="bad")
    with pytest.raises(ValueError, match="bad: arch: field 'compression': Input should be greater than 0"):
        densenet.FAMILY.build({**arch, "compression": 0}, spec.input, name="bad")
    with pytest.raises(ValueError, match=r"^densenet40_k12: dropout must be in \[0, 1\), got 1.5$"):
        zoo.build("densenet40_k12", dropout=1.5)
