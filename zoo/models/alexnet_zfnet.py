"""AlexNet (Krizhevsky, Sutskever, Hinton 2012) and ZFNet (Zeiler & Fergus 2013): five convolutions, three dense
layers. One builder; the variants are configurations in registry.yaml (`arch`):

- `alexnet`: the paper's net (sec. 3, Fig. 2). Its two GPU towers are one graph here: conv2, conv4 and conv5 see
  only their own tower's maps, which is exactly a grouped convolution with groups=2; conv3 and the dense layers
  connect across towers. Local Response Normalization follows conv1 and conv2, *before* their overlapping 3x3/2
  max pools (sec. 3.3-3.5). Input 227x227: the paper says 224, but only 227 gives its 55x55 first maps.
- `alexnet_owt`: the single-tower "one weird trick" layout torchvision ships (64-192-384-256-256, no LRN).
- `zfnet`: Fig. 3 of Zeiler & Fergus: 7x7/2 first layer, 5x5/2 second layer, no groups, contrast normalization
  *after* the pools of layers 1-2 (Fig. 3 caption). Paddings are chosen to reproduce the figure's map sizes.

Each entry of `arch.conv` is one layer: filters, kernel, stride (1), pad (0; zeros added on every side, as in
the papers and torchvision), groups (1), lrn (false), pool (null, 'valid' or 'same': a 3x3/2 max pool after it).
"""

from __future__ import annotations

from keras import layers

from ..archs import AlexNetArch, ConvLayer
from . import common
from .family import Family, Head
from .features import alexnet_stages


def conv_layer(x, layer: ConvLayer, index: int):
    """conv{i} with ReLU; explicit zero padding unless it is the 'same' padding of a stride-1 conv."""
    if layer.stride == 1 and 2 * layer.pad == layer.kernel - 1:
        padding = "same"
    else:
        padding = "valid"
        if layer.pad:
            x = layers.ZeroPadding2D(layer.pad, name=f"conv{index}_pad")(x)
    return layers.Conv2D(layer.filters, layer.kernel, strides=layer.stride, padding=padding, groups=layer.groups,
                         activation="relu", name=f"conv{index}")(x)


def response_norm(x, arch: AlexNetArch, index: int):
    lrn = arch.lrn
    return common.LocalResponseNormalization(lrn.size, lrn.alpha, lrn.beta, lrn.k, name=f"lrn{index}")(x)


def max_pool(x, arch: AlexNetArch, padding: str, index: int):
    return layers.MaxPooling2D(arch.pool.size, strides=arch.pool.stride, padding=padding, name=f"pool{index}")(x)


def normalize_and_pool(x, layer: ConvLayer, index: int, arch: AlexNetArch):
    """LRN and max pooling after a conv, in the paper's order: AlexNet normalizes first, ZFNet pools first."""
    lrn_first = arch.norm == "before_pool"
    if layer.lrn and lrn_first:
        x = response_norm(x, arch, index)
    if layer.pool:
        x = max_pool(x, arch, layer.pool, index)
    if layer.lrn and not lrn_first:
        x = response_norm(x, arch, index)
    return x


def body(x, arch: AlexNetArch, head: Head):
    for index, layer in enumerate(arch.conv, start=1):
        x = conv_layer(x, layer, index)
        x = normalize_and_pool(x, layer, index, arch)
    return x


def classifier(x, arch: AlexNetArch, head: Head):
    # The dense layers keep the papers' layer numbering: fc6, fc7, then the classifier (layer 8).
    names = [f"fc{len(arch.conv) + i}" for i in range(1, len(arch.dense) + 1)]
    return common.dense_head(x, arch.dense, include_top=head.include_top, pooling=head.pooling,
                             classes=head.classes, classifier_activation=head.classifier_activation,
                             dropout=arch.dropout, dropout_first=arch.dropout_first, names=names)


FAMILY = Family("alexnet", AlexNetArch, body=body, head=classifier, stages=alexnet_stages)
