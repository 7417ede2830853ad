"""VGG (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image Recognition").

Configurations A, B, D, E of Table 1 (VGG-11/13/16/19) are one stage table in registry.yaml: `widths` (64, 128,
256, 512, 512) and per-config `depths`, the number of 3x3 convolutions in each of the five stages; every stage
ends in a 2x2/2 max pool. The head is fc 4096 - fc 4096 - classes with dropout 0.5 after each hidden layer
(sec. 3.1). Layer names are keras.applications' (block1_conv1 ... block5_pool, flatten, fc1, fc2, predictions),
so keras VGG16/VGG19 weights load by name.

`batch_norm: true` gives torchvision's vgg*_bn (not in the paper): each conv keeps its bias and is followed by
BatchNorm, then ReLU.
"""

from __future__ import annotations

from keras import layers

from . import common

TORCH_BN_EPSILON = 1e-5  # torchvision's BatchNorm2d default: its vgg*_bn statistics map over unchanged


def conv_unit(x, filters: int, name: str, batch_norm: bool):
    """3x3 conv + ReLU; with batch_norm: conv (with bias, as torchvision) -> BN -> ReLU."""
    if not batch_norm:
        return layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)
    x = layers.Conv2D(filters, 3, padding="same", name=name)(x)
    x = layers.BatchNormalization(epsilon=TORCH_BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def stage(x, filters: int, depth: int, index: int, batch_norm: bool):
    for i in range(1, depth + 1):
        x = conv_unit(x, filters, f"block{index}_conv{i}", batch_norm)
    return layers.MaxPooling2D(2, strides=2, name=f"block{index}_pool")(x)


def build(arch, *, default_size, min_size, channels, include_top=True, weights=None, input_tensor=None,
          input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", name="vgg16"):
    common.check_head_args(weights, pooling, classes, classifier_activation, name)
    if len(arch["depths"]) != len(arch["widths"]):
        raise ValueError(f"{name}: arch.depths and arch.widths must have one entry per stage, got "
                         f"{len(arch['depths'])} and {len(arch['widths'])}")
    image, inputs = common.resolve_input(input_tensor, input_shape, default_size=default_size,
                                         min_size=min_size, channels=channels, model_name=name)
    x = image
    for index, (depth, width) in enumerate(zip(arch["depths"], arch["widths"]), start=1):
        x = stage(x, width, depth, index, arch.get("batch_norm", False))
    x = common.dense_head(x, arch["dense"], include_top=include_top, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation, dropout=arch.get("dropout", 0.0))
    return common.finalize(inputs, x, name=name, weights=weights)
