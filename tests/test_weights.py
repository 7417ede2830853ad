"""keras.applications weight import (zoo.weights, `zoo convert`): our models must compute exactly what keras'
twins compute once the weights are copied, conv biases folded into BatchNorm included.

The twins get random weights *and* random BatchNorm statistics and biases, so a mis-mapped layer, a missing
bias fold or a wrong BN order shows up as a numerical difference; inputs are 64x64 to stay cheap.
"""

import collections

import numpy as np
import pytest

import zoo
from zoo.weights import KERAS_APPLICATIONS, WeightImportError, from_keras_applications, keras_twin

SIZE = 64
HEAVY = {"vgg19", "resnet152", "densenet201"}
PAIRS = [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in KERAS_APPLICATIONS]


def randomize(model, seed=0):
    """Random kernels (scaled by fan-in, so activations stay O(1)), biases, BN gamma/beta and statistics."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels))
            layer.beta.assign(rng.normal(0.0, 0.2, channels))
            layer.moving_mean.assign(rng.normal(0.0, 0.5, channels))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            fan_in = int(np.prod(layer.kernel.shape[:-1]))
            layer.kernel.assign(rng.normal(0.0, 1.0 / np.sqrt(fan_in), layer.kernel.shape))
            if layer.use_bias:
                layer.bias.assign(rng.normal(0.0, 0.5, layer.bias.shape))
    return model


def images(n=2, size=SIZE, seed=1):
    return np.random.default_rng(seed).normal(0.0, 1.0, (n, size, size, 3)).astype("float32")


def assert_same_outputs(ours, theirs, x):
    expected = np.asarray(theirs(x, training=False))
    got = np.asarray(ours(x, training=False))
    scale = float(np.abs(expected).max())
    assert scale > 0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
    return got


def operations(model) -> collections.Counter:
    """The work a model does, layer by layer, without names: the layer class and the settings that change the
    computation. Conv biases are left out (ours fold them into the next BN: less work), and so is the padding
    of 1x1 kernels ('same' and 'valid' are the same there)."""
    keys = ("filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "pool_size", "units",
            "axis", "epsilon", "activation", "rate")
    found = collections.Counter()
    for layer in model.layers:
        config = layer.get_config()
        if config.get("kernel_size") in ((1, 1), [1, 1]):
            config.pop("padding")
        if config.get("axis") == 3:  # keras' channel axis of NHWC images, spelt -1 by ours
            config["axis"] = -1
        found[(type(layer).__name__, repr({k: config[k] for k in keys if k in config}))] += 1
    return found


@pytest.mark.parametrize("name", PAIRS)
def test_headless_import_matches_keras(name, tmp_path):
    headless = dict(include_top=False, pooling="avg", input_shape=(SIZE, SIZE, 3))
    twin = randomize(keras_twin(name, weights=None, **headless))
    # The same operations as the twin (so a speed difference in `zoo bench --compare-keras` is noise, not design)
    assert operations(zoo.build(name, **headless)) == operations(twin)
    ours = from_keras_applications(zoo.build(name, **headless), twin)
    x = images()
    got = assert_same_outputs(ours, twin, x)

    path = tmp_path / f"{name}.weights.h5"
    ours.save_weights(path)
    again = zoo.build(name, weights=str(path), **headless)
    np.testing.assert_array_equal(np.asarray(again(x, training=False)), got)


FULL_HEAD = dict(input_shape=(SIZE, SIZE, 3), classes=1000, classifier_activation=None)


@pytest.fixture(scope="module")
def keras_resnet50():
    """keras' ResNet50 with its classifier (logits), randomized: shared by the ResNet checks below."""
    return randomize(keras_twin("resnet50", weights=None, **FULL_HEAD))


def test_full_head_import_matches_keras_vgg16():
    twin = randomize(keras_twin("vgg16", weights=None, **FULL_HEAD))
    ours = from_keras_applications(zoo.build("vgg16", **FULL_HEAD), twin)
    assert_same_outputs(ours, twin, images())


def test_full_head_import_matches_keras_resnet50(keras_resnet50):
    ours = from_keras_applications(zoo.build("resnet50", **FULL_HEAD), keras_resnet50)
    assert_same_outputs(ours, keras_resnet50, images())

    # every keras conv bias went into the BatchNorm after it; everything else was copied as is
    conv, bn = keras_resnet50.get_layer("conv3_block2_2_conv"), keras_resnet50.get_layer("conv3_block2_2_bn")
    assert conv.use_bias and not ours.get_layer("conv3_block2_2_conv").use_bias
    np.testing.assert_allclose(np.asarray(ours.get_layer("conv3_block2_2_bn").moving_mean),
                               np.asarray(bn.moving_mean) - np.asarray(conv.bias), rtol=1e-6)
    for weight in ("gamma", "beta", "moving_variance"):
        np.testing.assert_array_equal(np.asarray(getattr(ours.get_layer("conv3_block2_2_bn"), weight)),
                                      np.asarray(getattr(bn, weight)))


def test_mismatched_models_are_refused_with_the_first_difference(keras_resnet50):
    prefix = "cannot import keras.applications resnet50 into zoo "
    # v1.5 has v1's weight shapes but its stride in the 3x3 conv: only the strides tell them apart
    v1_5 = zoo.build("resnet50_v1_5", **FULL_HEAD)
    before = [np.array(w) for w in v1_5.get_weights()]
    with pytest.raises(WeightImportError, match=prefix + r"resnet50_v1_5: conv 'conv3_block1_1_conv' has "
                                                         r"strides \(2, 2\) in keras, \(1, 1\) in zoo$"):
        from_keras_applications(v1_5, keras_resnet50)
    for a, b in zip(before, v1_5.get_weights()):  # a refused import copies nothing
        np.testing.assert_array_equal(a, b)

    with pytest.raises(WeightImportError, match=prefix + r"resnet50: layer 'predictions' has weight shapes "
                                                         r"\[\(2048, 1000\), \(1000,\)\] in keras, "
                                                         r"\[\(2048, 10\), \(10,\)\] in zoo$"):
        from_keras_applications(zoo.build("resnet50", **{**FULL_HEAD, "classes": 10}), keras_resnet50)
    with pytest.raises(WeightImportError, match=prefix + "resnet50: keras layer 'predictions' has no "
                                                         "counterpart in the zoo model$"):
        from_keras_applications(zoo.build("resnet50", include_top=False, input_shape=(SIZE, SIZE, 3)),
                                keras_resnet50)
    with pytest.raises(WeightImportError, match=prefix + "resnet101: zoo layer 'conv4_block7_1_conv' has no "
                                                         "counterpart in the keras model$"):
        from_keras_applications(zoo.build("resnet101", **FULL_HEAD), keras_resnet50)
    with pytest.raises(WeightImportError, match="resnet18 has no keras.applications twin; weights import for: "
                                                "vgg16, vgg19, resnet50"):
        keras_twin("resnet18")


def test_zoo_convert_command_end_to_end(tmp_path):
    from click.testing import CliRunner

    from zoo import cli

    twin = randomize(keras_twin("resnet50", weights=None, classifier_activation=None))
    keras_file, output = tmp_path / "keras_resnet50.weights.h5", tmp_path / "resnet50.weights.h5"
    twin.save_weights(keras_file)

    result = CliRunner().invoke(cli.cli, ["convert", "resnet50", "--keras-weights", str(keras_file),
                                          "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert f"load it with zoo.build('resnet50', weights='{output}')" in result.output

    ours = zoo.build("resnet50", weights=str(output), classifier_activation=None)
    assert_same_outputs(ours, twin, images(n=1, size=224))


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # keras, on the headless file
def test_zoo_convert_errors(tmp_path):
    from click.testing import CliRunner

    from zoo import cli

    keras_file = tmp_path / "keras.weights.h5"
    keras_twin("resnet50", weights=None, include_top=False).save_weights(keras_file)
    runner = CliRunner()

    wrong_suffix = runner.invoke(cli.cli, ["convert", "resnet50", "--keras-weights", str(keras_file),
                                           "--output", str(tmp_path / "out.h5")])
    assert wrong_suffix.exit_code != 0
    assert "must end in .weights.h5" in str(wrong_suffix.exception)

    headless_file = runner.invoke(cli.cli, ["convert", "resnet50", "--keras-weights", str(keras_file),
                                            "--output", str(tmp_path / "out.weights.h5")])
    assert isinstance(headless_file.exception, WeightImportError)
    message = str(headless_file.exception)
    assert message.startswith(f"cannot load {keras_file} into keras.applications.ResNet50(include_top=True)")
    assert message.endswith("--no-include-top)") and "\n" not in message

    ok = runner.invoke(cli.cli, ["convert", "resnet50", "--keras-weights", str(keras_file), "--no-include-top",
                                 "--output", str(tmp_path / "notop.weights.h5")])
    assert ok.exit_code == 0, ok.output
    assert zoo.build("resnet50", include_top=False, weights=str(tmp_path / "notop.weights.h5")).output.shape[-1] \
        == 2048
