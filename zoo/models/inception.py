"""GoogLeNet (Szegedy et al. 2014, "Going Deeper with Convolutions"), Table 1 and Fig. 3, as in the paper:

- inception modules with a real 5x5 branch (torchvision's port uses 3x3 there, a known bug kept for its weights),
  conv biases and ReLU everywhere, no BatchNorm (BN arrived with Inception-v2);
- LRN in the stem, after the first max pool and after the 3x3 conv (Fig. 3);
- global average pooling, 40% dropout, one linear layer (Table 1);
- two auxiliary classifiers on inception 4a and 4d (sec. 5): avg pool 5x5/3, 1x1 conv 128, FC 1024, dropout 0.7,
  FC classes. They exist only for training: `zoo.build("googlenet", aux_logits=True)` returns a model whose outputs
  are [predictions, aux1_predictions, aux2_predictions]; `inference_model` (the family's inference model) drops
  them, keeping the trained layers.

Paddings: conv1 pads 3 like the reference Caffe/torchvision ports; max pools use 'same' padding, which at 224
input equals Caffe's ceil-mode pooling and gives Table 1's 112-56-28-14-7 maps.
"""

from __future__ import annotations

import keras
from keras import layers

from ..archs import AuxHeads, GoogLeNetArch
from . import common
from .family import Body, Family, Head, Option, pooled_head
from .features import googlenet_stages, inception_stage_stride


def conv(x, filters: int, kernel: int, name: str, strides: int = 1):
    return layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu", name=name)(x)


def max_pool(x, name: str, strides: int = 2):
    return layers.MaxPooling2D(3, strides=strides, padding="same", name=name)(x)


def stem(x, arch: GoogLeNetArch):
    lrn = arch.lrn
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(arch.stem.conv1, 7, strides=2, activation="relu", name="conv1_7x7")(x)
    x = max_pool(x, "pool1")
    x = common.LocalResponseNormalization(lrn.size, lrn.alpha, lrn.beta, lrn.k, name="lrn1")(x)
    x = conv(x, arch.stem.conv2_reduce, 1, "conv2_reduce")
    x = conv(x, arch.stem.conv2, 3, "conv2_3x3")
    x = common.LocalResponseNormalization(lrn.size, lrn.alpha, lrn.beta, lrn.k, name="lrn2")(x)
    return max_pool(x, "pool2")


def inception(x, widths, name: str):
    """Four branches, concatenated: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3/1 max pool -> 1x1 (Fig. 2b)."""
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = widths
    branch1 = conv(x, n1x1, 1, f"{name}_1x1")
    branch3 = conv(conv(x, n3x3_reduce, 1, f"{name}_3x3_reduce"), n3x3, 3, f"{name}_3x3")
    branch5 = conv(conv(x, n5x5_reduce, 1, f"{name}_5x5_reduce"), n5x5, 5, f"{name}_5x5")
    pooled = conv(max_pool(x, f"{name}_pool", strides=1), pool_proj, 1, f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([branch1, branch3, branch5, pooled])


def aux_classifier(x, aux: AuxHeads, head: Head, name: str, where: str, stride: int):
    """The side classifier of sec. 5, trained with weight 0.3 and discarded at inference."""
    height, width = x.shape[1:3]
    if any(side is not None and side < aux.pool for side in (height, width)):
        smallest = stride * (aux.pool - 1) + 1
        raise ValueError(f"{head.model_name}: aux_logits=True needs a {aux.pool}x{aux.pool} map after inception "
                         f"{where}, got {height}x{width}; use an input of at least {smallest}x{smallest}")
    x = layers.AveragePooling2D(aux.pool, strides=aux.stride, name=f"{name}_avg_pool")(x)
    x = conv(x, aux.conv, 1, f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(aux.fc, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(aux.dropout, name=f"{name}_dropout")(x)
    return common.predictions(x, head.classes, head.classifier_activation, name=f"{name}_predictions")


def body(x, arch: GoogLeNetArch, head: Head, *, aux_logits: bool = False):
    if aux_logits and not head.include_top:
        raise ValueError(f"{head.model_name}: aux_logits=True needs include_top=True (the auxiliary heads are "
                         f"classifiers)")
    x = stem(x, arch)
    aux_outputs, previous = [], None
    for index, (stage_name, modules) in enumerate(arch.stages.items()):
        if previous is not None:  # a 3x3/2 max pool between stages, named after the stage before it (pool3, pool4)
            x = max_pool(x, f"pool{previous}")
        for module_name, widths in modules.items():
            where = f"{stage_name}{module_name}"
            x = inception(x, widths, f"inception_{where}")
            if aux_logits and where in arch.aux.after:
                aux_name = f"aux{len(aux_outputs) + 1}"
                stride = inception_stage_stride(index)
                aux_outputs.append(aux_classifier(x, arch.aux, head, aux_name, where, stride))
        previous = stage_name
    return Body(x, aux_outputs)


def classifier(x, arch: GoogLeNetArch, head: Head):
    """Global average pooling, 40% dropout, one linear layer (Table 1)."""
    return pooled_head(x, arch, head, dropout=arch.dropout)


def inference_model(model: keras.Model) -> keras.Model:
    """The model without its auxiliary classifiers: same input, the main `predictions` output, shared layers."""
    if len(model.outputs) == 1:
        return model
    try:
        main = model.get_layer("predictions").output
    except ValueError:
        raise ValueError(f"{model.name}: no 'predictions' layer; inference_model expects a GoogLeNet with "
                         f"include_top=True") from None
    return keras.Model(model.input, main, name=model.name)


AUX_LOGITS = Option("aux_logits", False, "also output the auxiliary classifiers of sec. 5 (for training; "
                                         "inference_model drops them)")

FAMILY = Family("googlenet", GoogLeNetArch, body=body, head=classifier, stages=googlenet_stages,
                options=(AUX_LOGITS,), inference=inference_model)
