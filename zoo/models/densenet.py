"""DenseNet (Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks", CVPR 2017).

Every layer of a dense block gets the concatenated feature maps of all the layers before it in the block and
adds `growth_rate` (k) maps of its own. One generic builder covers the paper's nets; a variant is data
(registry.yaml `arch`):

    stem             'imagenet': 7x7/2 conv -> BN -> ReLU -> 3x3/2 max pool (Table 1);
                     'cifar': one 3x3 conv (sec. 3, "Implementation Details")
    initial_filters  maps of the stem conv (64 on ImageNet; 16, or 2k for DenseNet-BC, on CIFAR)
    growth_rate      k
    blocks           layers per dense block, e.g. [6, 12, 24, 16] for DenseNet-121
    bottleneck       True: BN-ReLU-Conv(1x1, 4k) before the BN-ReLU-Conv(3x3, k) of each layer ("-B")
    compression      theta: a transition keeps floor(theta * m) of its m input maps ("-C" when < 1)
    dropout          optional: dropout rate after each conv in the blocks and transitions (the paper's 0.2,
                     used only on CIFAR/SVHN without data augmentation); the `dropout` build argument overrides

Layer names are keras.applications' (conv1_conv, conv2_block1_0_bn, ..., pool2_conv, bn, predictions), so the
weights of keras' DenseNet121/169/201 map onto the ImageNet variants by name.
"""

from __future__ import annotations

from keras import layers

from ..archs import DenseNetArch
from . import common
from .family import Family, Option, pooled_head
from .features import densenet_stages


def conv_block(x, growth_rate: int, *, bottleneck: bool, dropout: float, name: str):
    """One layer of a dense block: [BN-ReLU-Conv1x1(4k)] -> BN-ReLU-Conv3x3(k), concatenated to its input.

    Names follow keras.applications (`_0_bn`, `_0_relu`, `_1_conv`, `_1_bn`, `_1_relu`, `_2_conv`), whose
    indices do not fit common.bn_relu_conv's single prefix; a layer without bottleneck keeps the `_0` BN-ReLU
    and the `_2` 3x3 conv, so a name always says what the layer is.
    """
    y = layers.BatchNormalization(epsilon=common.BN_EPSILON, name=f"{name}_0_bn")(x)
    y = layers.Activation("relu", name=f"{name}_0_relu")(y)
    if bottleneck:
        y = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(y)
        y = _dropout(y, dropout, f"{name}_1_dropout")
        y = layers.BatchNormalization(epsilon=common.BN_EPSILON, name=f"{name}_1_bn")(y)
        y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = _dropout(y, dropout, f"{name}_2_dropout")
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def dense_block(x, layer_count: int, growth_rate: int, *, bottleneck: bool, dropout: float, name: str):
    for i in range(layer_count):
        x = conv_block(x, growth_rate, bottleneck=bottleneck, dropout=dropout, name=f"{name}_block{i + 1}")
    return x


def transition_block(x, compression: float, *, dropout: float, name: str):
    """BN-ReLU-Conv1x1 keeping floor(theta * m) maps, then 2x2/2 average pooling (sec. 3, "Compression")."""
    x = common.bn_relu_conv(x, int(x.shape[-1] * compression), 1, name=name)
    x = _dropout(x, dropout, f"{name}_dropout")
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def _dropout(x, rate: float, name: str):
    return layers.Dropout(rate, name=name)(x) if rate else x


def stem(x, kind: str, filters: int):
    if kind == "imagenet":
        # Explicit padding as keras.applications does (3 then 1): same output sizes as torchvision's padding.
        x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
        x = common.conv_bn(x, filters, 7, strides=2, padding="valid", name="conv1")
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        return layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    # CIFAR: a plain conv; the first dense layer's BN-ReLU follows it (pre-activation).
    return layers.Conv2D(filters, 3, padding="same", use_bias=False, name="conv1_conv")(x)


def check_dropout(rate) -> None:
    if rate is not None and not 0 <= float(rate) < 1:
        raise ValueError(f"dropout must be in [0, 1), got {float(rate)}")


def body(x, arch: DenseNetArch, head, *, dropout=None):
    rate = arch.dropout if dropout is None else float(dropout)
    x = stem(x, arch.stem, arch.initial_filters)
    for i, layer_count in enumerate(arch.blocks):
        # keras.applications' numbering: dense blocks conv2..conv5, the transition after block convN is poolN.
        x = dense_block(x, layer_count, arch.growth_rate, bottleneck=arch.bottleneck, dropout=rate,
                        name=f"conv{i + 2}")
        if i < len(arch.blocks) - 1:
            x = transition_block(x, arch.compression, dropout=rate, name=f"pool{i + 2}")
    x = layers.BatchNormalization(epsilon=common.BN_EPSILON, name="bn")(x)
    return layers.Activation("relu", name="relu")(x)


DROPOUT = Option("dropout", None, "dropout rate after each conv in the blocks and transitions (the paper's 0.2 "
                                  "without augmentation); None: the arch's", check=check_dropout)

FAMILY = Family("densenet", DenseNetArch, body=body, head=pooled_head, stages=densenet_stages, options=(DROPOUT,))
