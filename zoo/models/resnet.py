"""ResNet (He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", 2015, arXiv 1512.03385).

One generic builder covers the ImageNet nets of Table 1 and the CIFAR-10 nets of sec. 4.2. A variant is data
(registry.yaml `arch`):

    stem           'imagenet': 7x7/2 conv -> BN -> ReLU -> 3x3/2 max pool (Table 1, conv1 and conv2_x);
                   'cifar': one 3x3 conv -> BN -> ReLU (sec. 4.2). Either is as wide as the first stage.
    block          'basic' (two 3x3 convs, Fig. 5 left) or 'bottleneck' (1x1 -> 3x3 -> 1x1, Fig. 5 right)
    depths         residual blocks per stage, e.g. [3, 4, 6, 3] for ResNet-50
    widths         filters per stage (a bottleneck block outputs `expansion` times its width)
    expansion      output/width ratio of a bottleneck block (4 in the paper)
    shortcut       where the shape changes: 'projection' (1x1 conv + BN, the paper's option B) or 'zero_pad'
                   (identity with zero-filled extra channels and spatial subsampling, option A: no parameters)
    stride_in_1x1  bottleneck only: True puts a stage's stride 2 in the first 1x1 conv, as the paper's Caffe
                   models and keras.applications do ("v1"); False puts it in the 3x3 conv, as torchvision and
                   NVIDIA do ("v1.5": slightly more MACs, better accuracy). Same weights shapes either way.

The first stage keeps the resolution (the ImageNet stem already pooled it); every later stage halves it in its
first block. BatchNorm follows every conv and the convs have no biases (BN's beta makes them redundant), so the
parameter counts equal torchvision's. Layer names are keras.applications' (conv1_pad, conv1_conv, conv1_bn,
conv1_relu, pool1_pad, pool1_pool, conv2_block1_0_conv, ..., conv2_block1_add, conv2_block1_out, avg_pool,
predictions), so keras' ResNet50/101/152 weights map onto ours by name (zoo.weights).
"""

from __future__ import annotations

from keras import layers

from ..archs import ResNetArch
from . import common
from .layers import ZeroPadShortcut  # noqa: F401 - option A shortcut, with the other custom layers
from .family import DEEP_GRAPH_RECURSION_LIMIT, Family, allow_deep_graphs, pooled_head  # noqa: F401
from .features import resnet_stages

DEEP_GRAPH_BLOCKS = 100  # nets with more residual blocks than this raise the recursion limit (ResNet-152: 50)


def conv3x3_bn(x, filters: int, *, strides: int = 1, activation="relu", name: str):
    """3x3 conv-BN(-ReLU). Strided, it pads one pixel on every side as the paper's and torchvision's convs do
    ('same' in TF would pad only bottom/right and shift the sampling grid by half a pixel)."""
    if strides == 1:
        return common.conv_bn(x, filters, 3, activation=activation, name=name)
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return common.conv_bn(x, filters, 3, strides=strides, padding="valid", activation=activation, name=name)


def shortcut(x, filters: int, *, strides: int, kind: str, name: str):
    """Identity where the shape is kept; else option B (projection) or A (zero padding), named `{name}_0_*`."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    if kind == "projection":
        return common.conv_bn(x, filters, 1, strides=strides, activation=None, name=f"{name}_0")
    return ZeroPadShortcut(filters, strides, name=f"{name}_0_shortcut")(x)


def add_relu(residual, x, name: str):
    x = layers.Add(name=f"{name}_add")([residual, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def basic_block(x, width: int, *, strides: int, shortcut_kind: str, name: str):
    """Two 3x3 convs (Fig. 5 left), the first one strided; named `_1` and `_2`."""
    residual = shortcut(x, width, strides=strides, kind=shortcut_kind, name=name)
    x = conv3x3_bn(x, width, strides=strides, name=f"{name}_1")
    x = conv3x3_bn(x, width, activation=None, name=f"{name}_2")
    return add_relu(residual, x, name)


def bottleneck_block(x, width: int, *, strides: int, shortcut_kind: str, expansion: int, stride_in_1x1: bool,
                     name: str):
    """1x1 (reduce) -> 3x3 -> 1x1 (expand to `expansion * width`), Fig. 5 right; named `_1`, `_2`, `_3`."""
    filters = expansion * width
    residual = shortcut(x, filters, strides=strides, kind=shortcut_kind, name=name)
    stride_1x1, stride_3x3 = (strides, 1) if stride_in_1x1 else (1, strides)
    x = common.conv_bn(x, width, 1, strides=stride_1x1, name=f"{name}_1")
    x = conv3x3_bn(x, width, strides=stride_3x3, name=f"{name}_2")
    x = common.conv_bn(x, filters, 1, activation=None, name=f"{name}_3")
    return add_relu(residual, x, name)


def stem(x, kind: str, filters: int):
    if kind == "imagenet":
        # Explicit padding (3, then 1) as keras.applications does: the paper's/torchvision's output sizes.
        x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
        x = common.conv_bn(x, filters, 7, strides=2, padding="valid", name="conv1")
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)  # after the ReLU (>= 0): zero padding changes no max
        return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    return common.conv_bn(x, filters, 3, name="conv1")


def stage(x, arch: ResNetArch, index: int):
    """Stage `index` (0-based) of `depths[index]` blocks, named conv{index + 2}_block{j} as keras does."""
    width, name = arch.widths[index], f"conv{index + 2}"
    for j in range(arch.depths[index]):
        strides = 2 if index > 0 and j == 0 else 1
        block_name = f"{name}_block{j + 1}"
        if arch.block == "basic":
            x = basic_block(x, width, strides=strides, shortcut_kind=arch.shortcut, name=block_name)
        else:
            x = bottleneck_block(x, width, strides=strides, shortcut_kind=arch.shortcut, expansion=arch.expansion,
                                 stride_in_1x1=arch.stride_in_1x1, name=block_name)
    return x


def body(x, arch: ResNetArch, head):
    x = stem(x, arch.stem, arch.widths[0])
    for index in range(len(arch.depths)):
        x = stage(x, arch, index)
    return x


def deep_graph(arch: ResNetArch) -> bool:
    return sum(arch.depths) > DEEP_GRAPH_BLOCKS


FAMILY = Family("resnet", ResNetArch, body=body, head=pooled_head, stages=resnet_stages, deep_graph=deep_graph)
