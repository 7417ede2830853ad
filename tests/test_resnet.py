"""ResNet family facts the registry-generated tests do not cover: keras.applications layer names, where v1 and
v1.5 put the stride, the option-A shortcut, CIFAR stage shapes, the paper's depth count and ResNet-1202."""

import sys

import numpy as np
import pytest

import zoo
from zoo.models import resnet
from zoo.registry import registry

RESNETS = registry().list(family="resnet")
HEAVY_PARAMS = 15_000_000


def by_weight(names):
    return [pytest.param(n, marks=pytest.mark.slow) if registry().get(n).params > HEAVY_PARAMS else n
            for n in names]


def weighted_layers(model, drop_conv_bias=False):
    """[(name, weight shapes)] in graph order; keras' conv biases left out on request."""
    import keras

    rows = []
    for layer in model.layers:
        shapes = [tuple(w.shape) for w in layer.weights]
        if drop_conv_bias and isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            shapes = shapes[:1]
        if shapes:
            rows.append((layer.name, shapes))
    return rows


def test_resnet50_layers_are_keras_applications_layers():
    import keras

    theirs = keras.applications.ResNet50(weights=None)
    ours = zoo.build("resnet50")
    assert weighted_layers(ours) == weighted_layers(theirs, drop_conv_bias=True)
    # the unweighted layers too (padding, pooling, add, relu): the whole graph has keras' names, in keras' order
    assert [layer.name for layer in ours.layers[1:]] == [layer.name for layer in theirs.layers[1:]]
    assert len(ours.layers) == len(theirs.layers) == 177
    assert not any(getattr(layer, "use_bias", False) for layer in ours.layers if "conv" in layer.name)


@pytest.mark.parametrize("stage", [3, 4, 5])
def test_v1_strides_in_the_1x1_conv_and_v1_5_in_the_3x3(stage):
    v1, v1_5 = zoo.build("resnet50", input_shape=(64, 64, 3)), zoo.build("resnet50_v1_5", input_shape=(64, 64, 3))
    block = f"conv{stage}_block1"
    strides = {name: (v1.get_layer(f"{block}_{i}_conv").strides, v1_5.get_layer(f"{block}_{i}_conv").strides)
               for i, name in [(0, "shortcut"), (1, "1x1"), (2, "3x3"), (3, "expand")]}
    assert strides == {"shortcut": ((2, 2), (2, 2)), "1x1": ((2, 2), (1, 1)), "3x3": ((1, 1), (2, 2)),
                       "expand": ((1, 1), (1, 1))}
    # the strided 3x3 pads one pixel on every side (torchvision), not TF's bottom/right-only 'same'
    pad = v1_5.get_layer(f"{block}_2_pad")
    assert tuple(map(tuple, pad.padding)) == ((1, 1), (1, 1))
    assert v1_5.get_layer(f"{block}_2_conv").padding == "valid"
    assert f"{block}_2_pad" not in [layer.name for layer in v1.layers]
    # later blocks are not strided in either
    assert v1.get_layer(f"conv{stage}_block2_1_conv").strides == v1_5.get_layer(f"conv{stage}_block2_2_conv").strides \
        == (1, 1)
    # same weights, same output size
    assert v1.output.shape == v1_5.output.shape
    assert v1.get_layer(f"{block}_out").output.shape == v1_5.get_layer(f"{block}_out").output.shape


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels():
    layer = resnet.ZeroPadShortcut(5, strides=2)
    x = np.arange(1 * 5 * 5 * 2, dtype="float32").reshape(1, 5, 5, 2) + 1.0
    y = np.asarray(layer(x))
    assert y.shape == (1, 3, 3, 5) == layer.compute_output_shape((1, 5, 5, 2))
    np.testing.assert_array_equal(y[..., :2], x[:, ::2, ::2, :])  # pixels (0, 2, 4) x (0, 2, 4)
    np.testing.assert_array_equal(y[0, 1, 2, :2], x[0, 2, 4])
    np.testing.assert_array_equal(y[..., 2:], 0.0)
    assert layer.weights == []
    assert resnet.ZeroPadShortcut(4, strides=1)(np.ones((1, 3, 3, 4), "float32")).shape == (1, 3, 3, 4)
    with pytest.raises(ValueError, match="cannot zero-pad 8 channels down to 4"):
        resnet.ZeroPadShortcut(4)(np.ones((1, 4, 4, 8), "float32"))


def test_zero_pad_shortcut_serializes():
    import keras

    layer = resnet.ZeroPadShortcut(32, strides=2, name="conv3_block1_0_shortcut")
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(again, resnet.ZeroPadShortcut)
    assert (again.filters, again.strides, again.name) == (32, 2, "conv3_block1_0_shortcut")


def test_loading_a_cifar_resnet_makes_room_for_deep_graphs():
    import keras

    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(1000)
        keras.layers.deserialize(keras.layers.serialize(resnet.ZeroPadShortcut(32)))
        assert sys.getrecursionlimit() == resnet.DEEP_GRAPH_RECURSION_LIMIT == 20_000
    finally:
        sys.setrecursionlimit(max(limit, resnet.DEEP_GRAPH_RECURSION_LIMIT))


def test_resnet20_stages_and_option_a_shortcuts():
    model = zoo.build("resnet20")
    shapes = [tuple(model.get_layer(f"conv{s}_block3_out").output.shape) for s in (2, 3, 4)]
    assert shapes == [(None, 32, 32, 16), (None, 16, 16, 32), (None, 8, 8, 64)]
    assert tuple(model.get_layer("conv1_relu").output.shape) == (None, 32, 32, 16)
    assert tuple(model.output.shape) == (None, 10)
    shortcuts = [layer for layer in model.layers if isinstance(layer, resnet.ZeroPadShortcut)]
    assert [s.name for s in shortcuts] == ["conv3_block1_0_shortcut", "conv4_block1_0_shortcut"]
    assert all(s.weights == [] for s in shortcuts)
    assert not [layer.name for layer in model.layers if layer.name.endswith("_0_conv")]  # no projections
    # the shortcut lines up with the strided conv of the block it bypasses
    assert shortcuts[0].output.shape == model.get_layer("conv3_block1_1_conv").output.shape


def test_resnet20_shortcut_passes_the_input_through():
    """With the residual branch zeroed, a CIFAR block is relu(shortcut(x)): the option-A shortcut, end to end."""
    import keras

    model = zoo.build("resnet20", include_top=False)
    block_in = model.get_layer("conv2_block3_out").output
    block_out = model.get_layer("conv3_block1_out").output
    block = keras.Model(model.input, [block_in, block_out])
    model.get_layer("conv3_block1_2_bn").gamma.assign(np.zeros(32))  # residual branch -> beta = 0
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype("float32")
    before, after = (np.asarray(t) for t in block(x))
    np.testing.assert_allclose(after[..., :16], before[:, ::2, ::2, :], rtol=1e-6)
    np.testing.assert_array_equal(after[..., 16:], 0.0)


@pytest.mark.parametrize("name", by_weight(n for n in RESNETS if n != "resnet1202"))  # 1202: its own test
def test_depth_counts_the_papers_weighted_layers(name):
    """Depth = convs on the main path + the classifier (projection shortcuts are not counted), as Table 1."""
    import keras

    spec = registry().get(name)
    model = zoo.build(name)
    main_path = [layer for layer in model.layers
                 if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and not layer.name.endswith("_0_conv")]
    assert len(main_path) == spec.depth
    blocks = [layer for layer in model.layers if layer.name.endswith("_add")]
    per_block = 2 if spec.arch.block == "basic" else 3
    assert len(blocks) == sum(spec.arch.depths) == (spec.depth - 2) // per_block


def test_arch_errors_are_one_line():
    """A mapping built outside the registry is validated by the same schema, with the same one-line errors (the
    registry's load-time errors are in tests/test_archs.py)."""
    arch = registry().get("resnet20").arch.model_dump()
    common = dict(input=registry().get("resnet20").input, name="mynet")
    with pytest.raises(ValueError, match=r"^mynet: arch: field 'width': unknown key \(did you mean 'widths'\?\)$"):
        resnet.FAMILY.build({**arch, "width": 3}, **common)
    with pytest.raises(ValueError, match="mynet: arch: field 'block': Input should be 'basic' or 'bottleneck'"):
        resnet.FAMILY.build({**arch, "block": "dense"}, **common)
    with pytest.raises(ValueError, match="mynet: arch: field 'depths': 2 entries, but widths has 3"):
        resnet.FAMILY.build({**arch, "depths": [3, 3]}, **common)
    model = resnet.FAMILY.build({**arch, "depths": [1, 1, 1]}, **common)
    assert model.name == "mynet" and zoo.count_params(model) < registry().get("resnet20").params


@pytest.mark.slow
def test_resnet1202_builds_with_exact_params_and_trains():
    import tensorflow as tf

    model = zoo.build("resnet1202")
    assert zoo.count_params(model) == 19_421_274
    assert sum(1 for layer in model.layers if layer.name.endswith("_add")) == 600
    assert sum(1 for layer in model.layers if layer.name.endswith("_conv")) + 1 == 1202  # + the classifier
    assert sys.getrecursionlimit() >= resnet.DEEP_GRAPH_RECURSION_LIMIT
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32"))
    # training mode: BatchNorm normalises, so 600 residual additions stay finite (see registry notes)
    assert np.isfinite(np.asarray(model(x, training=True))).all()
