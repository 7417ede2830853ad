"""AlexNet/ZFNet, VGG and GoogLeNet: the family facts tests/test_models.py does not check (grouped kernels, LRN
placement, feature-map sizes, keras.applications names, auxiliary classifiers). Big nets are built once per module.
"""

import numpy as np
import pytest

import zoo
from zoo.registry import registry


def source(model, layer_name):
    """The layer whose output feeds `layer_name` (single-input layers)."""
    tensor = model.get_layer(layer_name).input
    return next(layer.name for layer in model.layers if layer.output is tensor)


def spatial(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape[1:3])


def weighted_names(model):
    return [layer.name for layer in model.layers if layer.weights]


# ---------------------------------------------------------------------------------------------------------------
# AlexNet and ZFNet


@pytest.fixture(scope="module")
def alexnet():
    return zoo.build("alexnet")


def test_alexnet_two_towers_are_grouped_convolutions(alexnet):
    kernels = {f"conv{i}": tuple(alexnet.get_layer(f"conv{i}").kernel.shape) for i in range(1, 6)}
    assert kernels == {"conv1": (11, 11, 3, 96), "conv2": (5, 5, 48, 256), "conv3": (3, 3, 256, 384),
                       "conv4": (3, 3, 192, 384), "conv5": (3, 3, 192, 256)}
    assert [alexnet.get_layer(f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]


def test_alexnet_lrn_before_overlapping_pools(alexnet):
    assert [source(alexnet, n) for n in ("lrn1", "pool1", "lrn2", "pool2", "pool5")] == [
        "conv1", "lrn1", "conv2", "lrn2", "conv5"]
    lrn = alexnet.get_layer("lrn1")
    assert (lrn.size, lrn.k, lrn.alpha, lrn.beta) == (5, 2.0, 1e-4, 0.75)
    pool = alexnet.get_layer("pool1")
    assert (pool.pool_size, pool.strides) == ((3, 3), (2, 2))
    sizes = [spatial(alexnet, n)[0] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv5", "pool5")]
    assert sizes == [55, 27, 27, 13, 13, 13, 6]


def test_alexnet_dropout_on_fc6_fc7_outputs(alexnet):
    assert [source(alexnet, n) for n in ("fc6_dropout", "fc7", "fc7_dropout", "predictions")] == [
        "fc6", "fc6_dropout", "fc7", "fc7_dropout"]
    assert alexnet.get_layer("fc6").kernel.shape == (6 * 6 * 256, 4096)


def test_alexnet_owt_is_torchvisions_single_tower():
    model = zoo.build("alexnet_owt")
    assert [model.get_layer(f"conv{i}").filters for i in range(1, 6)] == [64, 192, 384, 256, 256]
    assert {model.get_layer(f"conv{i}").groups for i in range(1, 6)} == {1}
    assert not [layer.name for layer in model.layers if "lrn" in layer.name]
    assert spatial(model, "conv1") == (55, 55) and spatial(model, "pool5") == (6, 6)
    # torchvision: Dropout -> Linear -> ReLU -> Dropout -> Linear -> ReLU -> Linear
    assert [source(model, n) for n in ("fc6_dropout", "fc6", "fc7_dropout", "fc7")] == [
        "flatten", "fc6_dropout", "fc6", "fc7_dropout"]


def test_zfnet_feature_maps_match_fig3():
    model = zoo.build("zfnet", include_top=False)
    layers = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"]
    sizes = [spatial(model, n)[0] for n in layers]
    assert sizes == [110, 55, 26, 13, 13, 13, 13, 6]  # Fig. 3: 110, 55, 26, 13, 13, 13, 6
    kernels = [tuple(model.get_layer(f"conv{i}").kernel.shape) for i in range(1, 6)]
    assert kernels == [(7, 7, 3, 96), (5, 5, 96, 256), (3, 3, 256, 384), (3, 3, 384, 384), (3, 3, 384, 256)]
    assert [model.get_layer(n).strides for n in ("conv1", "conv2")] == [(2, 2), (2, 2)]
    # Fig. 3 caption: rectify, pool, then normalize
    assert [source(model, n) for n in ("pool1", "lrn1", "conv2", "pool2", "lrn2", "conv3")] == [
        "conv1", "pool1", "lrn1", "conv2", "pool2", "lrn2"]


def test_alexnet_builder_rejects_unknown_norm_order():
    """At load time (tests/test_archs.py) and for a mapping given to the family directly."""
    from zoo.models.alexnet_zfnet import FAMILY

    spec = registry().get("alexnet")
    arch = {**spec.arch.model_dump(), "norm": "sideways"}
    with pytest.raises(ValueError, match="alexnet: arch: field 'norm': Input should be 'before_pool' or 'after_pool'"):
        FAMILY.build(arch, spec.input)


# ---------------------------------------------------------------------------------------------------------------
# VGG


@pytest.fixture(scope="module")
def vgg16():
    return zoo.build("vgg16")


def test_vgg16_names_and_shapes_match_keras_applications(vgg16):
    import keras

    reference = keras.applications.VGG16(weights=None)
    assert weighted_names(vgg16) == weighted_names(reference)
    assert [tuple(w.shape) for w in vgg16.weights] == [tuple(w.shape) for w in reference.weights]
    assert [layer.name for layer in vgg16.layers if "pool" in layer.name] == [
        f"block{i}_pool" for i in range(1, 6)]
    assert [source(vgg16, n) for n in ("fc1", "fc1_dropout", "fc2", "fc2_dropout", "predictions")] == [
        "flatten", "fc1", "fc1_dropout", "fc2", "fc2_dropout"]


def test_vgg16_macs(vgg16):
    macs = zoo.count_macs(vgg16)
    assert macs == registry().get("vgg16").macs == 15_470_264_320  # torchvision lists 15.47 GFLOPS (MACs)


def test_vgg19_conv_names_match_keras_applications():
    import keras

    reference = keras.applications.VGG19(weights=None, include_top=False)
    assert weighted_names(zoo.build("vgg19", include_top=False)) == weighted_names(reference)


@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19"])
def test_vgg_stage_table_gives_paper_depth(name):
    model = zoo.build(name, include_top=False)
    convs = [layer for layer in model.layers if layer.name.split("_")[-1].startswith("conv")]
    assert len(convs) + 3 == registry().get(name).depth  # + fc1, fc2, predictions
    assert {tuple(c.kernel.shape[:2]) for c in convs} == {(3, 3)}
    assert not [layer for layer in model.layers if "bn" in layer.name]


def test_vgg_bn_has_batchnorm_after_every_conv():
    import keras

    model = zoo.build("vgg16_bn", include_top=False)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 13
    for conv in convs:
        assert conv.use_bias and conv.activation is keras.activations.linear
        assert source(model, f"{conv.name}_bn") == conv.name
        assert source(model, f"{conv.name}_relu") == f"{conv.name}_bn"
        assert isinstance(model.get_layer(f"{conv.name}_bn"), keras.layers.BatchNormalization)
    assert source(model, "block1_pool") == "block1_conv2_relu"


def test_vgg_builder_rejects_mismatched_stage_table():
    """At load time (tests/test_archs.py) and for a mapping given to the family directly."""
    from zoo.models.vgg import FAMILY

    with pytest.raises(ValueError, match="vgg: arch: field 'depths': 2 entries, but widths has 1: one entry per stage"):
        FAMILY.build({"depths": [1, 1], "widths": [64], "dense": [4096, 4096]}, registry().get("vgg11").input)


# ---------------------------------------------------------------------------------------------------------------
# GoogLeNet

TABLE1_CHANNELS = {"3a": 256, "3b": 480, "4a": 512, "4b": 512, "4c": 512, "4d": 528, "4e": 832, "5a": 832,
                   "5b": 1024}


@pytest.fixture(scope="module")
def googlenet_aux():
    return zoo.build("googlenet", aux_logits=True)


def test_googlenet_aux_heads(googlenet_aux):
    model = googlenet_aux
    heads = [model.get_layer(n).output for n in ("predictions", "aux1_predictions", "aux2_predictions")]
    assert len(model.outputs) == 3 and all(out is head for out, head in zip(model.outputs, heads))
    assert zoo.count_params(model) == 13_378_280
    assert source(model, "aux1_avg_pool") == "inception_4a_concat"
    assert source(model, "aux2_avg_pool") == "inception_4d_concat"
    assert model.get_layer("aux1_avg_pool").output.shape[1:] == (4, 4, 512)
    assert model.get_layer("aux2_avg_pool").output.shape[1:] == (4, 4, 528)
    assert model.get_layer("aux1_fc").kernel.shape == (4 * 4 * 128, 1024)
    assert model.get_layer("aux1_dropout").rate == 0.7


def test_googlenet_inference_model_shares_layers(googlenet_aux):
    from zoo.models.inception import inference_model

    inference = inference_model(googlenet_aux)
    assert len(inference.outputs) == 1
    assert zoo.count_params(inference) == 6_998_552 == registry().get("googlenet").params
    assert not [layer.name for layer in inference.layers if layer.name.startswith("aux")]
    assert inference.get_layer("conv1_7x7") is googlenet_aux.get_layer("conv1_7x7")
    x = np.random.default_rng(0).normal(size=(2, 224, 224, 3)).astype("float32")
    main, aux1, aux2 = googlenet_aux(x, training=False)
    np.testing.assert_allclose(np.asarray(inference(x, training=False)), np.asarray(main), rtol=1e-5, atol=1e-7)
    assert np.asarray(aux1).shape == np.asarray(aux2).shape == (2, 1000)
    assert inference_model(inference) is inference


def test_googlenet_table1_shapes_and_real_5x5(googlenet_aux):
    import keras

    model = googlenet_aux
    for module, channels in TABLE1_CHANNELS.items():
        assert model.get_layer(f"inception_{module}_concat").output.shape[-1] == channels
        kernel = model.get_layer(f"inception_{module}_5x5").kernel
        assert tuple(kernel.shape[:2]) == (5, 5)
    assert model.get_layer("inception_3a_5x5").kernel.shape == (5, 5, 16, 32)
    sizes = [spatial(model, n)[0] for n in ("conv1_7x7", "pool1", "conv2_3x3", "pool2", "inception_3b_concat",
                                            "pool3", "inception_4e_concat", "pool4", "inception_5b_concat")]
    assert sizes == [112, 56, 56, 28, 28, 14, 14, 7, 7]
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 57 + 2 and all(conv.use_bias for conv in convs)  # 3 stem + 9 x 6 inception + 2 aux


def test_googlenet_lrn_in_stem(googlenet_aux):
    assert [source(googlenet_aux, n) for n in ("lrn1", "conv2_reduce", "lrn2", "pool2")] == [
        "pool1", "lrn1", "conv2_3x3", "lrn2"]
    assert source(googlenet_aux, "dropout") == "avg_pool"
    assert googlenet_aux.get_layer("dropout").rate == 0.4


def test_googlenet_aux_needs_top_and_room():
    with pytest.raises(ValueError, match="aux_logits=True needs include_top=True"):
        zoo.build("googlenet", aux_logits=True, include_top=False)
    with pytest.raises(ValueError, match="use an input of at least 65x65"):
        zoo.build("googlenet", aux_logits=True, input_shape=(64, 64, 3))
    model = zoo.build("googlenet", aux_logits=True, input_shape=(65, 65, 3), classes=3)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 3)] * 3
