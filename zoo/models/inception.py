"""GoogLeNet (Szegedy et al. 2014, "Going Deeper with Convolutions"), Table 1 and Fig. 3, as in the paper:

- inception modules with a real 5x5 branch (torchvision's port uses 3x3 there, a known bug kept for its weights),
  conv biases and ReLU everywhere, no BatchNorm (BN arrived with Inception-v2);
- LRN in the stem, after the first max pool and after the 3x3 conv (Fig. 3);
- global average pooling, 40% dropout, one linear layer (Table 1);
- two auxiliary classifiers on inception 4a and 4d (sec. 5): avg pool 5x5/3, 1x1 conv 128, FC 1024, dropout 0.7,
  FC classes. They exist only for training: `build(..., aux_logits=True)` returns a model whose outputs are
  [predictions, aux1_predictions, aux2_predictions]; `inference_model` drops them, keeping the trained layers.

Paddings: conv1 pads 3 like the reference Caffe/torchvision ports; max pools use 'same' padding, which at 224
input equals Caffe's ceil-mode pooling and gives Table 1's 112-56-28-14-7 maps.
"""

from __future__ import annotations

import keras
from keras import layers

from . import common

STAGE_STRIDE = 16  # input pixels per map pixel at inception 4a-4d, where the auxiliary heads attach


def conv(x, filters: int, kernel: int, name: str, strides: int = 1):
    return layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu", name=name)(x)


def max_pool(x, name: str, strides: int = 2):
    return layers.MaxPooling2D(3, strides=strides, padding="same", name=name)(x)


def stem(x, arch):
    lrn = arch.get("lrn", {})
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(arch["stem"]["conv1"], 7, strides=2, activation="relu", name="conv1_7x7")(x)
    x = max_pool(x, "pool1")
    x = common.LocalResponseNormalization(**lrn, name="lrn1")(x)
    x = conv(x, arch["stem"]["conv2_reduce"], 1, "conv2_reduce")
    x = conv(x, arch["stem"]["conv2"], 3, "conv2_3x3")
    x = common.LocalResponseNormalization(**lrn, name="lrn2")(x)
    return max_pool(x, "pool2")


def inception(x, widths, name: str):
    """Four branches, concatenated: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3/1 max pool -> 1x1 (Fig. 2b)."""
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = widths
    branch1 = conv(x, n1x1, 1, f"{name}_1x1")
    branch3 = conv(conv(x, n3x3_reduce, 1, f"{name}_3x3_reduce"), n3x3, 3, f"{name}_3x3")
    branch5 = conv(conv(x, n5x5_reduce, 1, f"{name}_5x5_reduce"), n5x5, 5, f"{name}_5x5")
    pooled = conv(max_pool(x, f"{name}_pool", strides=1), pool_proj, 1, f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([branch1, branch3, branch5, pooled])


def aux_classifier(x, aux, classes: int, classifier_activation, name: str, where: str):
    """The side classifier of sec. 5, trained with weight 0.3 and discarded at inference."""
    height, width = x.shape[1:3]
    if any(side is not None and side < aux["pool"] for side in (height, width)):
        smallest = STAGE_STRIDE * (aux["pool"] - 1) + 1
        raise ValueError(f"aux_logits=True needs a {aux['pool']}x{aux['pool']} map after inception {where}, got "
                         f"{height}x{width}; use an input of at least {smallest}x{smallest}")
    x = layers.AveragePooling2D(aux["pool"], strides=aux["stride"], name=f"{name}_avg_pool")(x)
    x = conv(x, aux["conv"], 1, f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(aux["fc"], activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(aux["dropout"], name=f"{name}_dropout")(x)
    return common.predictions(x, classes, classifier_activation, name=f"{name}_predictions")


def build(arch, *, default_size, min_size, channels, include_top=True, weights=None, input_tensor=None,
          input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", name="googlenet",
          aux_logits=False):
    common.check_head_args(weights, pooling, classes, classifier_activation, name)
    if aux_logits and not include_top:
        raise ValueError(f"{name}: aux_logits=True needs include_top=True (the auxiliary heads are classifiers)")
    image, inputs = common.resolve_input(input_tensor, input_shape, default_size=default_size,
                                         min_size=min_size, channels=channels, model_name=name)
    x = stem(image, arch)
    aux_outputs, previous = [], None
    for stage_name, modules in arch["stages"].items():
        if previous is not None:  # a 3x3/2 max pool between stages, named after the stage before it (pool3, pool4)
            x = max_pool(x, f"pool{previous}")
        for module_name, widths in modules.items():
            where = f"{stage_name}{module_name}"
            x = inception(x, widths, f"inception_{where}")
            if aux_logits and where in arch["aux"]["after"]:
                aux_name = f"aux{len(aux_outputs) + 1}"
                aux_outputs.append(aux_classifier(x, arch["aux"], classes, classifier_activation, aux_name, where))
        previous = stage_name
    x = common.pooled_head(x, include_top=include_top, pooling=pooling, classes=classes,
                           classifier_activation=classifier_activation, dropout=arch["dropout"])
    outputs = [x, *aux_outputs] if aux_logits else x
    return common.finalize(inputs, outputs, name=name, weights=weights)


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
