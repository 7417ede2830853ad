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

from ..archs import VGGArch
from . import common
from .family import Family, Head
from .features import vgg_stages

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


def body(x, arch: VGGArch, head: Head):
    for index, (depth, width) in enumerate(zip(arch.depths, arch.widths), start=1):
        x = stage(x, width, depth, index, arch.batch_norm)
    return x


def classifier(x, arch: VGGArch, head: Head):
    """fc 4096 - fc 4096 - classes, dropout after each hidden layer (keras names fc1, fc2, predictions)."""
    return common.dense_head(x, arch.dense, include_top=head.include_top, pooling=head.pooling,
                             classes=head.classes, classifier_activation=head.classifier_activation,
                             dropout=arch.dropout)


FAMILY = Family("vgg", VGGArch, body=body, head=classifier, stages=vgg_stages)
