"""Pieces every family shares: input handling, heads and pooling per keras.applications' signature, weight
loading, conv-BN-ReLU blocks and Local Response Normalization. Written with `keras.layers` / `keras.ops` only."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import keras
from keras import layers

from .layers import LocalResponseNormalization  # noqa: F401 - the families' LRN, defined with the other custom layers

BN_EPSILON = 1.001e-5  # keras.applications' value, so its BatchNorm statistics map over unchanged


# ---------------------------------------------------------------------------------------------------------------
# Inputs


def resolve_input(input_tensor, input_shape: Optional[Sequence], *, default_size: int, min_size: int,
                  channels: int, model_name: str):
    """Return `(image_input, model_inputs)` from keras.applications-style arguments, checking the minimum size."""
    if input_tensor is not None:
        shape = tuple(input_tensor.shape[1:])
    elif input_shape is not None:
        shape = tuple(input_shape)
    else:
        shape = (default_size, default_size, channels)
    if len(shape) != 3:
        raise ValueError(f"{model_name}: input_shape must be (height, width, channels), got {shape}")
    height, width, depth = shape
    for side in (height, width):
        if side is not None and side < min_size:
            raise ValueError(f"{model_name}: input {height}x{width} is too small; the minimum input size is "
                             f"{min_size}x{min_size}")
    if depth is None:
        raise ValueError(f"{model_name}: the number of input channels must be known")

    if input_tensor is None:
        image = keras.Input(shape=shape, name="input")
        return image, image
    if not keras.backend.is_keras_tensor(input_tensor):
        image = keras.Input(tensor=input_tensor, shape=shape, name="input")
        return image, image
    return input_tensor, keras.utils.get_source_inputs(input_tensor)


def check_head_args(weights, pooling, classes: int, classifier_activation, model_name: str) -> None:
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"{model_name}: pooling must be None, 'avg' or 'max', got {pooling!r}")
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"{model_name}: classes must be a positive integer, got {classes!r}")
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"{model_name}: weights must be None or a path to a weights file, got {weights!r}")
    if isinstance(weights, str) and weights == "imagenet":
        raise ValueError(f"{model_name}: zoo downloads no weights; convert keras.applications weights you have "
                         f"with `zoo convert` and pass the file as weights=PATH")


# ---------------------------------------------------------------------------------------------------------------
# Heads


def prediction_dtype():
    # Under a mixed policy the logits/softmax stay float32, as Keras' mixed-precision guide advises.
    return "float32" if keras.config.dtype_policy().name.startswith("mixed") else None


def predictions(x, classes: int, classifier_activation, name: str = "predictions"):
    return layers.Dense(classes, activation=classifier_activation, dtype=prediction_dtype(), name=name)(x)


def pool_features(x, pooling: Optional[str]):
    """The include_top=False ending: None keeps the 4D feature map, 'avg'/'max' pool it globally."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def pooled_head(x, *, include_top: bool, pooling, classes: int, classifier_activation, dropout: float = 0.0):
    """Global-average-pooling classifier (ResNet, DenseNet, GoogLeNet) or the features when include_top=False."""
    if not include_top:
        return pool_features(x, pooling)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return predictions(x, classes, classifier_activation)


def dense_head(x, units: Sequence[int], *, include_top: bool, pooling, classes: int, classifier_activation,
               dropout: float = 0.0, activation="relu", dropout_first: bool = False, names=None):
    """Flatten + fully connected classifier (LeNet, AlexNet, ZFNet, VGG): keras VGG names fc1, fc2, predictions.

    `dropout_first` puts dropout before each hidden dense layer (AlexNet as in the paper and torchvision);
    otherwise after it (VGG).
    """
    if not include_top:
        return pool_features(x, pooling)
    names = list(names or [f"fc{i + 1}" for i in range(len(units))])
    x = layers.Flatten(name="flatten")(x)
    for i, (width, layer_name) in enumerate(zip(units, names)):
        if dropout and dropout_first:
            x = layers.Dropout(dropout, name=f"{layer_name}_dropout")(x)
        x = layers.Dense(width, activation=activation, name=layer_name)(x)
        if dropout and not dropout_first:
            x = layers.Dropout(dropout, name=f"{layer_name}_dropout")(x)
    return predictions(x, classes, classifier_activation)


# ---------------------------------------------------------------------------------------------------------------
# Model assembly and weights


def finalize(inputs, outputs, *, name: str, weights=None) -> keras.Model:
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: keras.Model, path) -> None:
    """Load a `.weights.h5` (model.save_weights) or `.keras` file into `model`, with one-line errors. An HDF5 file
    is checked layer by layer first, so a file of another model is one line naming both (no Keras warnings)."""
    from ..weights import file_layout, first_difference, mismatch_line, model_layout, quiet_keras

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    found = None if path.endswith(".keras") else file_layout(path)
    difference = first_difference(model_layout(model), found) if found else None
    if difference:
        raise ValueError(mismatch_line(path, model, found, difference))
    try:
        with quiet_keras():
            if path.endswith(".keras"):
                source = keras.saving.load_model(path, compile=False)
                model.set_weights(source.get_weights())
            else:
                model.load_weights(path)
    except Exception as e:  # h5py/zip/shape errors: say which file and why, in one line
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(f"cannot load weights from {path} into {model.name}: {reason}") from None


# ---------------------------------------------------------------------------------------------------------------
# Blocks


def conv_bn(x, filters: int, kernel_size, *, strides=1, padding="same", activation: Optional[str] = "relu",
            groups: int = 1, name: str):
    """Conv (no bias) -> BatchNorm -> activation, named `{name}_conv/_bn/_relu` as in keras.applications."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, groups=groups, use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def bn_relu_conv(x, filters: int, kernel_size, *, strides=1, padding="same", name: str, use_bias=False):
    """Pre-activation BatchNorm -> ReLU -> Conv (DenseNet), named `{name}_bn/_relu/_conv` like keras.applications."""
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
                         name=f"{name}_conv")(x)
