"""The features API: zoo.feature_info (no TensorFlow) and zoo.build(name, features_only=True, out_indices=...).

The shapes are checked on real forward passes at two input sizes, H x W and W x H with W = H + 32: each stage's map
must have feature_info's channels, and grow by exactly 32 / stride rows and columns between the two, whatever the
padding (valid convolutions drop a fixed border, which cancels out)."""

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo.models.features import DOCS_COMMAND, DOCS_END, DOCS_START, STAGES, FeaturesError, stages_markdown
from zoo.registry import registry

ROOT = Path(__file__).resolve().parents[1]
GROWTH = 32  # the second input is this much larger: a multiple of every stride, so each map grows by 32 / stride
# one or two small variants per family and regime (the CIFAR ResNets and DenseNets, both LeNet-5s, VGG with BN)
SHAPE_CASES = ["lenet5", "lenet5_original", "alexnet", "zfnet", "vgg11", "vgg11_bn", "googlenet", "resnet18",
               "resnet50", "resnet20", "densenet121", "densenet40_k12"]


def test_the_cases_cover_every_family_and_regime():
    covered = {(registry().get(name).family, getattr(registry().get(name).arch, "stem", None)) for name in SHAPE_CASES}
    every = {(spec.family, getattr(spec.arch, "stem", None)) for spec in registry().models.values()}
    assert covered == every


@functools.lru_cache(maxsize=None)
def any_size_model(name):
    """The features model of `name` for inputs of any height and width."""
    return zoo.build(name, features_only=True, input_shape=(None, None, registry().get(name).input.channels))


def images(height, width, channels, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (1, height, width, channels)).astype("float32")


def as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


@pytest.mark.parametrize("name", SHAPE_CASES)
def test_maps_have_feature_infos_channels_and_strides_at_two_sizes(name):
    spec, info = registry().get(name), zoo.feature_info(name)
    model = any_size_model(name)
    assert model.output_names == [stage.layer for stage in info]
    small = max(spec.input.min_size, 32)
    large = small + GROWTH
    first = as_list(model(images(small, large, spec.input.channels), training=False))
    second = as_list(model(images(large, small, spec.input.channels), training=False))
    assert len(first) == len(second) == len(info)
    for stage, a, b in zip(info, first, second):
        assert a.shape[-1] == b.shape[-1] == stage.channels, stage
        growth = GROWTH // stage.stride
        assert (b.shape[1] - a.shape[1], a.shape[2] - b.shape[2]) == (growth, growth), (stage, a.shape, b.shape)
        assert a.shape[1] <= -(-small // stage.stride) and a.shape[2] <= -(-large // stage.stride), stage
        assert np.isfinite(np.asarray(a)).all()


def test_strides_are_the_documented_pyramids():
    """LeNet-5 subsamples twice; the CIFAR nets keep the input resolution in their first stage; the ImageNet nets
    reach 32, from 1 (VGG's first conv block), 2 or 4 (AlexNet's stride-4 first conv)."""
    strides = {name: [stage.stride for stage in zoo.feature_info(name)] for name in zoo.list_models()}
    for name, found in strides.items():
        spec = registry().get(name)
        stem = getattr(spec.arch, "stem", None)
        expected = {"lenet": [1, 2, 4], "alexnet": [4, 8, 16, 32] if name != "zfnet" else [2, 4, 8, 16, 32],
                    "vgg": [1, 2, 4, 8, 16, 32], "googlenet": [2, 4, 8, 16, 32]}.get(spec.family)
        if stem == "cifar":
            expected = [1, 2, 4]
        elif stem == "imagenet":
            expected = [2, 4, 8, 16, 32]
        assert found == expected, name


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.list_models())
def test_every_variants_stages_at_its_default_size(name):
    """Every variant, at its default input: the stage layers exist with feature_info's channels, at input/stride
    (up to the border valid convolutions drop)."""
    spec = registry().get(name)
    model = zoo.build(name, features_only=True)
    size = spec.input.size
    for stage, output in zip(zoo.feature_info(name), model.outputs):
        assert output.shape[-1] == stage.channels, stage
        assert size / (2 * stage.stride) < output.shape[1] <= -(-size // stage.stride), stage


def test_family_contracts_use_the_tf_free_stage_functions():
    from zoo.models import family_of

    for family in registry().families:
        name = next(n for n in zoo.list_models() if registry().get(n).family == family)
        assert family_of(name).stages is STAGES[family]


def test_feature_info_and_zoo_info_import_no_tensorflow():
    code = ("import json, sys, zoo, cli\n"
            "info = {name: [s.as_dict() for s in zoo.feature_info(name)] for name in zoo.list_models()}\n"
            "assert cli.main(['info', 'resnet50']) == 0\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n"
            "print(json.dumps(info))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.splitlines()[-1])
    assert "feature stages" in proc.stdout and "conv5_block3_out" in proc.stdout
    assert info["resnet50"][-1] == {"index": 4, "layer": "conv5_block3_out", "channels": 2048, "stride": 32}
    assert set(info) == set(zoo.list_models())


def test_zoo_info_json_lists_the_stages():
    from click.testing import CliRunner

    import cli

    result = CliRunner().invoke(cli.cli, ["info", "densenet121", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["feature_stages"] == [s.as_dict() for s in zoo.feature_info("densenet121")]


# ---------------------------------------------------------------------------------------------------------------
# out_indices


def test_out_indices_select_in_stage_order_negative_ones_from_the_end():
    info = zoo.feature_info("resnet50")
    assert zoo.feature_info("resnet50", (-1, 1)) == (info[1], info[4])
    assert [s.reduction for s in zoo.feature_info("resnet50", [4, 3])] == [16, 32]
    assert zoo.feature_info("resnet50", np.array([0, -2])) == (info[0], info[3])  # numpy integers too
    model = zoo.build("resnet20", features_only=True, out_indices=(-1, 0))
    assert model.output_names == ["conv2_block3_out", "conv4_block3_out"]


def test_layers_after_the_deepest_stage_are_left_out():
    first = zoo.build("resnet20", features_only=True, out_indices=(0,), weights="fashion_mnist")
    names = {layer.name for layer in first.layers}
    assert "conv2_block3_out" in names and not any(name.startswith(("conv3", "conv4")) for name in names)
    full = zoo.build("resnet20", features_only=True, weights="fashion_mnist")
    x = images(32, 32, 3)
    np.testing.assert_array_equal(np.asarray(first(x)), np.asarray(full(x)[0]))  # one stage: the map itself


LISTING = ("the 3 feature stages of resnet20 are 0 conv2_block3_out (16 ch, stride 1), 1 conv3_block3_out (32 ch, "
           "stride 2), 2 conv4_block3_out (64 ch, stride 4)")


@pytest.mark.parametrize("out_indices, message", [
    ((3,), "resnet20: out_indices (3,) out of range (0..2, or -3..-1 from the end); "),
    ((0, -4, 7), "resnet20: out_indices (-4, 7) out of range (0..2, or -3..-1 from the end); "),
    ((0, -3), "resnet20: out_indices (0, -3) name a stage twice; "),
    ((1.0,), "resnet20: out_indices must be whole numbers, got 1.0; "),
    ((True,), "resnet20: out_indices must be whole numbers, got True; "),
    ((), "resnet20: out_indices must be a non-empty tuple of stage indices, got (); "),
    (2, "resnet20: out_indices must be a non-empty tuple of stage indices, got 2; "),
    ("12", "resnet20: out_indices must be a non-empty tuple of stage indices, got '12'; "),
])
def test_bad_out_indices_are_one_line_listing_the_stages(out_indices, message):
    for call in (lambda: zoo.feature_info("resnet20", out_indices),
                 lambda: zoo.build("resnet20", features_only=True, out_indices=out_indices)):
        with pytest.raises(FeaturesError) as error:
            call()
        assert str(error.value) == message + LISTING


@pytest.mark.parametrize("kwargs, message", [
    ({"out_indices": (1,)}, r"^resnet20: out_indices needs features_only=True$"),
    ({"features_only": True, "include_top": True}, r"^resnet20: features_only=True builds no classifier; leave out "
                                                   r"include_top=True$"),
    ({"features_only": True, "pooling": "avg"}, r"^resnet20: features_only=True returns the feature maps unpooled; "
                                                r"leave out pooling='avg'$"),
    ({"features_only": True, "classes": 3}, r"^resnet20: features_only=True builds no classifier; leave out classes$"),
])
def test_head_arguments_with_features_only_are_one_line(kwargs, message):
    with pytest.raises(FeaturesError, match=message):
        zoo.build("resnet20", **kwargs)


def test_googlenet_aux_heads_need_the_classifier():
    with pytest.raises(ValueError, match=r"^googlenet: aux_logits=True needs include_top=True"):
        zoo.build("googlenet", features_only=True, aux_logits=True)


def test_unknown_model():
    with pytest.raises(zoo.UnknownModelError, match="resnet20"):
        zoo.feature_info("resnet21")


# ---------------------------------------------------------------------------------------------------------------
# Weights: the classifier's, its head skipped


def assert_same_weights(features, classifier):
    weighted = [layer for layer in features.layers if layer.weights]
    assert weighted
    for layer in weighted:
        other = classifier.get_layer(layer.name)
        assert type(other) is type(layer)
        for a, b in zip(layer.get_weights(), other.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=layer.name)


def assert_same_maps(features, classifier, name, x):
    import keras

    layers = [stage.layer for stage in zoo.feature_info(name)]
    inner = keras.Model(classifier.input, [classifier.get_layer(layer).output for layer in layers])
    for ours, theirs in zip(as_list(features(x)), as_list(inner(x))):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.parametrize("name", ["lenet5", "lenet5_original", "resnet20"])
def test_named_weights_load_into_both_the_same(name):
    classifier = zoo.build(name, weights="fashion_mnist")
    features = zoo.build(name, features_only=True, weights="fashion_mnist")
    assert_same_weights(features, classifier)
    assert_same_maps(features, classifier, name, images(32, 32, classifier.input_shape[-1]))


def test_a_classifier_file_loads_at_another_input_size(tmp_path):
    """The dense head is skipped, so a file made at 32x32 fits a features model of any size."""
    weights = zoo.get_weights("lenet5.fashion_mnist").path
    classifier = zoo.build("lenet5", weights=weights)
    features = zoo.build("lenet5", features_only=True, weights=weights, input_shape=(64, 48, 1))
    assert_same_weights(features, classifier)
    assert [tuple(output.shape[1:]) for output in features.outputs] == [(60, 44, 6), (26, 18, 16), (13, 9, 16)]


@pytest.mark.parametrize("name, suffix", [("lenet5_original", ".weights.h5"), ("lenet5_harley", ".keras")])
def test_a_saved_classifier_loads_by_path(tmp_path, name, suffix):
    classifier = zoo.build(name, classes=7)
    path = tmp_path / f"model{suffix}"
    classifier.save(path) if suffix == ".keras" else classifier.save_weights(path)
    features = zoo.build(name, features_only=True, weights=str(path))
    assert_same_weights(features, classifier)
    assert_same_maps(features, classifier, name, images(32, 32, classifier.input_shape[-1], seed=1))


def test_a_headless_file_loads_too(tmp_path):
    headless = zoo.build("lenet5", include_top=False)
    path = tmp_path / "notop.weights.h5"
    headless.save_weights(path)
    assert_same_weights(zoo.build("lenet5", features_only=True, weights=str(path)), headless)


def test_a_file_of_another_model_names_both(tmp_path):
    path = tmp_path / "other.weights.h5"
    zoo.build("lenet5").save_weights(path)
    with pytest.raises(ValueError) as error:
        zoo.build("resnet20", features_only=True, weights=str(path))
    assert re.fullmatch(rf"{re.escape(str(path))} holds weights of lenet5, not resnet20 \(.*\)", str(error.value))


def test_a_deeper_relatives_file_is_refused(tmp_path):
    """resnet32's file holds every layer of resnet20 with the same shapes, and more blocks: not a head, refused."""
    path = tmp_path / "resnet32.weights.h5"
    zoo.build("resnet32").save_weights(path)
    with pytest.raises(ValueError) as error:
        zoo.build("resnet20", features_only=True, weights=str(path))
    message = str(error.value)
    assert message.startswith(f"{path} holds weights of resnet32, not resnet20 (the file's layer 'conv")
    assert "is not in the model" in message and "\n" not in message


# ---------------------------------------------------------------------------------------------------------------
# docs/features.md


def test_docs_table_is_generated_from_feature_info():
    text = (ROOT / "docs" / "features.md").read_text()
    table = text[text.index(DOCS_START) + len(DOCS_START):text.index(DOCS_END)]
    assert table == "\n" + stages_markdown(), f"docs/features.md is stale: regenerate it with `{DOCS_COMMAND}`"
    assert "features.md" in (ROOT / "docs" / "index.md").read_text()


@pytest.mark.slow
def test_imagenet_weights_come_from_keras_headless_file(tmp_path, monkeypatch):
    """keras.applications' `_notop` file (random weights here, in Keras' own layout and name): each stage equals
    the keras twin's layer of the same name (the conv biases folded into BatchNorm, so up to float rounding)."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from zoo.pretrained import keras_file_name
    from zoo.weights import keras_twin

    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    rng = np.random.default_rng(4)
    twin = keras_twin("resnet50", weights=None, include_top=False, input_shape=(64, 64, 3))
    for layer in twin.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n),
                               rng.uniform(0.5, 1.5, n)])
        elif isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.05, bias.shape)])
    with h5py.File(models / keras_file_name(registry().get("resnet50").weights["imagenet"], False), "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, twin)
    features = zoo.build("resnet50", features_only=True, weights="imagenet", input_shape=(64, 64, 3))
    x = images(64, 64, 3) * 255 - 120
    names = [stage.layer for stage in zoo.feature_info("resnet50")]
    expected = keras.Model(twin.input, [twin.get_layer(name).output for name in names])(x)
    for ours, theirs, name in zip(features(x), expected, names):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-3, atol=1e-3, err_msg=name)


def test_weights_build_features_only_shares_the_classifiers_weights():
    """Weights.build(features_only=True): the features model of the shipped fashion_mnist weights; its stage
    outputs are the classifier's intermediate layers (same weights, same maps)."""
    weights = zoo.get_weights("lenet5.fashion_mnist")
    classifier = weights.build()
    features = weights.build(features_only=True)
    assert_same_weights(features, classifier)
    assert_same_maps(features, classifier, "lenet5", images(32, 32, 1, seed=2))
    last = weights.build(features_only=True, out_indices=(-1,))
    assert last.output_shape == classifier.get_layer(zoo.feature_info("lenet5")[-1].layer).output.shape
