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

from . import common

NORM_ORDERS = ("before_pool", "after_pool")


def conv_layer(x, layer, index: int):
    """conv{i} with ReLU; explicit zero padding unless it is the 'same' padding of a stride-1 conv."""
    kernel, stride, pad = layer["kernel"], layer.get("stride", 1), layer.get("pad", 0)
    if stride == 1 and 2 * pad == kernel - 1:
        padding = "same"
    else:
        padding = "valid"
        if pad:
            x = layers.ZeroPadding2D(pad, name=f"conv{index}_pad")(x)
    return layers.Conv2D(layer["filters"], kernel, strides=stride, padding=padding, groups=layer.get("groups", 1),
                         activation="relu", name=f"conv{index}")(x)


def response_norm(x, arch, index: int):
    return common.LocalResponseNormalization(**arch.get("lrn", {}), name=f"lrn{index}")(x)


def max_pool(x, arch, padding: str, index: int):
    pool = arch["pool"]
    return layers.MaxPooling2D(pool["size"], strides=pool["stride"], padding=padding, name=f"pool{index}")(x)


def normalize_and_pool(x, layer, index: int, arch):
    """LRN and max pooling after a conv, in the paper's order: AlexNet normalizes first, ZFNet pools first."""
    lrn_first = arch.get("norm", "before_pool") == "before_pool"
    if layer.get("lrn") and lrn_first:
        x = response_norm(x, arch, index)
    if layer.get("pool"):
        x = max_pool(x, arch, layer["pool"], index)
    if layer.get("lrn") and not lrn_first:
        x = response_norm(x, arch, index)
    return x


def features(x, arch):
    for index, layer in enumerate(arch["conv"], start=1):
        x = conv_layer(x, layer, index)
        x = normalize_and_pool(x, layer, index, arch)
    return x


def build(arch, *, default_size, min_size, channels, include_top=True, weights=None, input_tensor=None,
          input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", name="alexnet"):
    common.check_head_args(weights, pooling, classes, classifier_activation, name)
    if arch.get("norm", "before_pool") not in NORM_ORDERS:
        raise ValueError(f"{name}: arch.norm must be one of {', '.join(NORM_ORDERS)}, got {arch['norm']!r}")
    image, inputs = common.resolve_input(input_tensor, input_shape, default_size=default_size,
                                         min_size=min_size, channels=channels, model_name=name)
    x = features(image, arch)
    # The dense layers keep the papers' layer numbering: fc6, fc7, then the classifier (layer 8).
    dense_names = [f"fc{len(arch['conv']) + i}" for i in range(1, len(arch["dense"]) + 1)]
    x = common.dense_head(x, arch["dense"], include_top=include_top, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation, dropout=arch.get("dropout", 0.0),
                          dropout_first=arch.get("dropout_first", False), names=dense_names)
    return common.finalize(inputs, x, name=name, weights=weights)
