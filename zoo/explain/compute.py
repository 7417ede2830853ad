"""Every number the explainer shows, from the real Keras graph.

- `Graph`: the functional model's layers in order with their inbound and outbound layers, so the page can draw
  inception branches, residual additions and dense concatenations as the blocks they are.
- `feature_maps`: the layers' outputs, from one keras.Model(model.input, [layer outputs]).
- `unit_trace`: one unit recomputed in numpy (float64) from its layer's weights and its real input, beside the
  model's own activation: the multiply-accumulate of a convolution with its partial sums, bias and activation;
  BatchNorm; activations; pooling windows; LRN; additions; concatenations; LeNet-5's partial C3 and trainable
  subsampling; dense units. `unit_chain` follows a unit through the elementwise layers after it (BN, ReLU).
- `receptive_fields`: per layer, analytically from kernels, strides and paddings (TF's 'same' padding puts the
  odd pixel at the bottom/right); `gradient_support` is the check: where d(unit)/d(input) is non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

# Layers that map each position and channel to the same position and channel (the receptive field passes through).
ELEMENTWISE = {"BatchNormalization", "Activation", "ReLU", "Dropout", "LocalResponseNormalization", "Add",
               "Concatenate", "Multiply", "Average", "Maximum", "Subtract", "LayerNormalization", "Rescaling",
               "Normalization", "SpatialDropout2D", "GaussianNoise", "Identity"}
GLOBAL = {"Flatten", "Dense", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "EuclideanRBF", "Reshape"}


class LayerNotFoundError(KeyError):
    def __init__(self, name: str, known: list[str]):
        import difflib

        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"{len(known)} layers, e.g. {', '.join(known[:5])}"
        super().__init__(f"--layers: no layer {name!r} in the model; {hint}")

    def __str__(self) -> str:
        return self.args[0]


# ---------------------------------------------------------------------------------------------------------------
# The graph


@dataclass(frozen=True)
class Node:
    name: str
    kind: str  # the layer's class name
    inputs: tuple[str, ...]
    output_shape: tuple


class Graph:
    """A functional model's layers (topological order) with inbound and outbound layer names."""

    def __init__(self, model):
        self.model = model
        self.layers = {layer.name: layer for layer in model.layers}
        self.nodes: dict[str, Node] = {}
        for layer in model.layers:
            inbound = []
            if layer._inbound_nodes:
                for tensor in layer._inbound_nodes[0].input_tensors:
                    inbound.append(tensor._keras_history.operation.name)
            shape = tuple(layer.output.shape) if hasattr(layer, "output") else ()
            self.nodes[layer.name] = Node(layer.name, type(layer).__name__, tuple(inbound), shape)
        self.consumers: dict[str, list[str]] = {name: [] for name in self.nodes}
        for node in self.nodes.values():
            for source in node.inputs:
                self.consumers.setdefault(source, []).append(node.name)
        self.input_name = model.layers[0].name

    def names(self) -> list[str]:
        return list(self.nodes)

    def layer(self, name: str):
        if name not in self.layers:
            raise LayerNotFoundError(name, self.names())
        return self.layers[name]

    def spatial(self, name: str) -> bool:
        return len(self.nodes[name].output_shape) == 4


def feature_maps(model, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """The outputs of the named layers for input batch `x`, from one forward pass of the real graph."""
    import keras

    graph_layers = {layer.name: layer for layer in model.layers}
    outputs = [graph_layers[name].output for name in names]
    probe = keras.Model(model.input, outputs)
    values = probe(x, training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    return {name: np.asarray(value) for name, value in zip(names, values)}


def needed_for_units(graph: Graph, names: list[str]) -> list[str]:
    """The layers whose outputs a unit trace of `names` reads: each layer and its inputs."""
    needed = []
    for name in names:
        for other in (*graph.nodes[name].inputs, name):
            if other not in needed:
                needed.append(other)
    return needed


# ---------------------------------------------------------------------------------------------------------------
# Receptive fields


@dataclass(frozen=True)
class Field:
    """Unit (i, j) of a layer sees input rows start[0] + i*jump[0] .. + size[0] - 1 (and columns likewise)."""

    jump: tuple[int, int]
    size: tuple[int, int]
    start: tuple[int, int]
    whole: bool = False  # a unit after Flatten/Dense/global pooling sees the whole input

    def box(self, row: int, col: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right), inclusive, clipped to the image."""
        if self.whole:
            return 0, 0, height - 1, width - 1
        top, left = self.start[0] + row * self.jump[0], self.start[1] + col * self.jump[1]
        return (max(0, top), max(0, left), min(height - 1, top + self.size[0] - 1),
                min(width - 1, left + self.size[1] - 1))

    def as_dict(self) -> dict:
        return {"jump": list(self.jump), "size": list(self.size), "start": list(self.start), "whole": self.whole}


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if np.isscalar(value) else (int(value[0]), int(value[1]))


def window_of(layer, input_shape: tuple) -> Optional[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]]:
    """(kernel, stride, padding before) per axis of a windowed layer; None for elementwise layers."""
    kind = type(layer).__name__
    if kind == "ZeroPadding2D":
        (top, _), (left, _) = layer.padding
        return (1, 1), (1, 1), (top, left)
    if kind == "PartialConv2D":
        return _pair(layer.kernel_size), (1, 1), (0, 0)
    if kind == "TrainableSubsampling":
        return _pair(layer.pool_size), _pair(layer.pool_size), (0, 0)
    if kind == "ZeroPadShortcut":
        return (1, 1), _pair(layer.strides), (0, 0)
    if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D"):
        kernel = _pair(getattr(layer, "kernel_size", None) or layer.pool_size)
        stride = _pair(layer.strides)
        if _pair(getattr(layer, "dilation_rate", 1)) != (1, 1):
            raise NotImplementedError(f"{layer.name}: dilated windows are not handled")
        return kernel, stride, same_padding(layer.padding, input_shape[1:3], kernel, stride)
    return None


def same_padding(padding: str, size, kernel, stride) -> tuple[int, int]:
    """Pixels TF pads before (top, left): 'same' pads (out - 1) * s + k - n in all, the odd one after."""
    if padding == "valid":
        return 0, 0
    before = []
    for n, k, s in zip(size, kernel, stride):
        out = -(-n // s)
        before.append(max((out - 1) * s + k - n, 0) // 2)
    return tuple(before)


def receptive_fields(graph: Graph) -> dict[str, Field]:
    """Analytic receptive field of every layer, in input pixels."""
    fields: dict[str, Field] = {}
    for name, node in graph.nodes.items():
        if not node.inputs:
            fields[name] = Field((1, 1), (1, 1), (0, 0))
            continue
        sources = [fields[source] for source in node.inputs]
        if any(s.whole for s in sources) or node.kind in GLOBAL or len(node.output_shape) != 4:
            fields[name] = Field((1, 1), (0, 0), (0, 0), whole=True)
            continue
        merged = _merge(sources, name)
        input_shape = graph.nodes[node.inputs[0]].output_shape
        window = window_of(graph.layers[name], input_shape)
        if window is None:
            fields[name] = merged
            continue
        fields[name] = _grow(merged, window)
    return fields


def _grow(field: Field, window) -> Field:
    """The field after a window of `kernel` pixels moved by `stride`, with `pad` pixels padded before."""
    kernel, stride, pad = window
    return Field(jump=tuple(j * s for j, s in zip(field.jump, stride)),
                 size=tuple(r + (k - 1) * j for r, k, j in zip(field.size, kernel, field.jump)),
                 start=tuple(st - p * j for st, p, j in zip(field.start, pad, field.jump)))


PER_CHANNEL = {"BatchNormalization", "Activation", "ReLU", "Dropout", "MaxPooling2D", "AveragePooling2D",
               "ZeroPadding2D", "TrainableSubsampling"}


def unit_field(graph: Graph, fields: dict[str, Field], name: str, channel: int) -> Field:
    """The field of one channel's units: narrower than the layer's where the channel comes from one branch of a
    concatenation (an inception module's pool projection sees less than its 5x5 branch) and flows through
    per-channel layers (BatchNorm, ReLU, pooling) or additions since."""
    node = graph.nodes[name]
    if node.kind == "Concatenate":
        offset = 0
        for source in node.inputs:
            width = graph.nodes[source].output_shape[-1]
            if channel < offset + width:
                return unit_field(graph, fields, source, channel - offset)
            offset += width
    if node.kind == "Add":
        return _merge([unit_field(graph, fields, source, channel) for source in node.inputs], name)
    if node.kind in PER_CHANNEL and len(node.inputs) == 1 and not fields[name].whole:
        inner = unit_field(graph, fields, node.inputs[0], channel)
        window = window_of(graph.layers[name], graph.nodes[node.inputs[0]].output_shape)
        return inner if window is None else _grow(inner, window)
    return fields[name]


def _merge(sources: list[Field], name: str) -> Field:
    """The union of aligned inputs' fields (an addition or concatenation of maps of one resolution)."""
    if len({s.jump for s in sources}) != 1:
        raise ValueError(f"{name}: inputs of different strides {[s.jump for s in sources]}")
    start = tuple(min(s.start[a] for s in sources) for a in range(2))
    end = tuple(max(s.start[a] + s.size[a] for s in sources) for a in range(2))
    return Field(sources[0].jump, tuple(e - s for e, s in zip(end, start)), start)


def gradient_support(model, layer_name: str, unit: tuple[int, int, int], inputs: np.ndarray) -> np.ndarray:
    """Boolean HxW map: where d(unit)/d(input) is non-zero for any of the input images (a batch)."""
    import keras
    import tensorflow as tf

    probe = keras.Model(model.input, model.get_layer(layer_name).output)
    x = tf.constant(inputs)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = probe(x, training=False)
        value = tf.reduce_sum(out[:, unit[0], unit[1], unit[2]])
    grad = tape.gradient(value, x).numpy()
    return np.any(np.abs(grad) > 0, axis=(0, 3))


# ---------------------------------------------------------------------------------------------------------------
# Unit arithmetic: one unit of one layer recomputed in numpy from the layer's weights and its real input


def unit_trace(graph: Graph, name: str, index: tuple[int, ...], acts: dict[str, np.ndarray]) -> dict:
    """The arithmetic of `index` ((row, col, channel) or (unit,)) of layer `name` for the first image in `acts`
    (which must hold the layer's output and its inputs' outputs). `value` is ours, `model_value` the model's."""
    node = graph.nodes[name]
    layer = graph.layers[name]
    inputs = [acts[source][0].astype("float64") for source in node.inputs]
    model_value = float(acts[name][(0, *index)])
    compute = TRACES.get(node.kind, _not_recomputed)
    trace = compute(layer, inputs, tuple(int(i) for i in index))
    trace.update({"layer": name, "kind": node.kind, "index": list(map(int, index)), "model_value": model_value,
                  "inputs": list(node.inputs)})
    if trace.get("value") is not None:
        trace["difference"] = abs(float(trace["value"]) - model_value)
    if node.kind == "Concatenate":  # through nested concatenations to the layer that made it (DenseNet)
        from .family import origin

        source, channel = origin(graph, name, int(index[-1]))
        trace["origin"] = {"layer": source, "channel": channel}
    return trace


def unit_chain(graph: Graph, name: str, index: tuple[int, ...], acts: dict[str, np.ndarray]) -> list[dict]:
    """The unit's trace, then the same position through each single elementwise layer after it (BN, ReLU, LRN),
    as far as the layer outputs in `acts` go."""
    chain = [unit_trace(graph, name, index, acts)]
    current = name
    while True:
        after = graph.consumers.get(current, [])
        if len(after) != 1:
            break
        nxt = after[0]
        if graph.nodes[nxt].kind not in ("BatchNormalization", "Activation", "ReLU", "LocalResponseNormalization",
                                         "Dropout") or nxt not in acts:
            break
        chain.append(unit_trace(graph, nxt, index, acts))
        current = nxt
    return chain


def activation_function(layer):
    """The layer's activation as a numpy function, and its name."""
    if type(layer).__name__ == "ReLU":
        return (lambda z: np.maximum(z, 0.0)), "relu"
    fn = getattr(layer, "activation", None)
    name = getattr(fn, "__name__", "linear") if fn is not None else "linear"
    if name == "linear":
        return (lambda z: z), name
    if name == "relu":
        return (lambda z: np.maximum(z, 0.0)), name
    if name == "tanh":
        return np.tanh, name
    if name == "sigmoid":
        return (lambda z: 1.0 / (1.0 + np.exp(-z))), name
    if name == "scaled_tanh":
        from ..models.lenet import A, S

        return (lambda z: A * np.tanh(S * z)), name
    if name == "softmax":
        return None, name  # needs every unit: handled by the dense/activation traces
    return (lambda z: np.asarray(fn(np.asarray(z, "float32")), "float64")), name  # the layer's own function


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _window(x: np.ndarray, top: int, left: int, kh: int, kw: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """x[top:top+kh, left:left+kw, :] with out-of-range positions set to `fill`, and the in-range mask."""
    h, w, c = x.shape
    patch = np.full((kh, kw, c), fill, dtype="float64")
    inside = np.zeros((kh, kw), dtype=bool)
    rows = range(max(top, 0), min(top + kh, h))
    cols = range(max(left, 0), min(left + kw, w))
    if rows and cols:
        patch[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left] = \
            x[rows.start:rows.stop, cols.start:cols.stop]
        inside[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left] = True
    return patch, inside


SHOWN_CHANNELS = 8  # input channels whose patch and kernel a trace keeps (the sums cover every channel)


def _strongest(channel_sums: np.ndarray) -> np.ndarray:
    """The input channels a trace shows: all of a few, else the SHOWN_CHANNELS largest |sum of products| (the
    ones that made the value), strongest first."""
    if len(channel_sums) <= SHOWN_CHANNELS:
        return np.arange(len(channel_sums))
    return np.argsort(-np.abs(channel_sums), kind="stable")[:SHOWN_CHANNELS]


def conv_trace(layer, inputs, index) -> dict:
    """out = act(sum over the window and the group's input channels of patch * kernel + bias)."""
    (x,), (row, col, ch) = inputs, index
    kernel = np.asarray(layer.kernel, "float64")
    kh, kw, per_group, filters = kernel.shape
    groups = int(getattr(layer, "groups", 1))
    group = ch // (filters // groups)
    lo = group * per_group
    kernel_size, stride = (kh, kw), _pair(layer.strides)
    pad = same_padding(layer.padding, x.shape[:2], kernel_size, stride)
    top, left = row * stride[0] - pad[0], col * stride[1] - pad[1]
    patch, inside = _window(x[..., lo:lo + per_group], top, left, kh, kw, 0.0)
    weights = kernel[..., ch]
    products = patch * weights
    channel_sums = products.sum(axis=(0, 1))
    bias = float(np.asarray(layer.bias)[ch]) if layer.use_bias else 0.0
    z = float(channel_sums.sum() + bias)
    act, act_name = activation_function(layer)
    shown = _strongest(channel_sums)
    return {"op": "conv", "kernel_size": list(kernel_size), "stride": list(stride), "padding": layer.padding,
            "pad_before": list(pad), "groups": groups, "group": group, "in_channels": [lo, lo + per_group],
            "window": {"top": top, "left": left}, "inside": inside.astype(int).tolist(),
            "shown_channels": (lo + shown).tolist(), "patch": patch[..., shown].tolist(),
            "kernel": weights[..., shown].tolist(), "shown_sums": channel_sums[shown].tolist(),
            "channel_sums": channel_sums.tolist(), "partial_sums": np.cumsum(channel_sums).tolist(), "bias": bias,
            "pre_activation": z, "activation": act_name, "value": float(act(z))}


def partial_conv_trace(layer, inputs, index) -> dict:
    """LeNet-5's C3: only the S2 maps of the connection table row (Table I) enter the sum."""
    (x,), (row, col, ch) = inputs, index
    kernel = np.asarray(layer.dense_kernel(), "float64")[..., ch]
    k = layer.kernel_size
    maps = list(layer.table[ch])
    patch = x[row:row + k, col:col + k][..., maps]
    products = patch * kernel[..., maps]
    channel_sums = products.sum(axis=(0, 1))
    bias = float(np.asarray(layer.bias)[ch])
    z = float(channel_sums.sum() + bias)
    return {"op": "partial_conv", "kernel_size": [k, k], "stride": [1, 1], "connected_maps": maps,
            "window": {"top": row, "left": col}, "shown_channels": maps, "patch": patch.tolist(),
            "kernel": kernel[..., maps].tolist(), "shown_sums": channel_sums.tolist(),
            "channel_sums": channel_sums.tolist(), "partial_sums": np.cumsum(channel_sums).tolist(), "bias": bias,
            "pre_activation": z, "activation": "linear", "value": z}


def dense_trace(layer, inputs, index, keep: int = 1024) -> dict:
    (x,), (unit,) = inputs, index
    kernel = np.asarray(layer.kernel, "float64")
    products = x * kernel[:, unit]
    bias = float(np.asarray(layer.bias)[unit]) if layer.use_bias else 0.0
    z = float(products.sum() + bias)
    act, act_name = activation_function(layer)
    if act_name == "softmax":
        logits = x @ kernel + (np.asarray(layer.bias, "float64") if layer.use_bias else 0.0)
        value = float(_softmax(logits)[unit])
    else:
        value = float(act(z))
    trace = {"op": "dense", "fan_in": int(x.size), "bias": bias, "pre_activation": z, "activation": act_name,
             "value": value}
    if x.size <= keep:
        trace.update(inputs_values=x.tolist(), weights=kernel[:, unit].tolist(),
                     partial_sums=np.cumsum(products).tolist())
    else:  # the largest contributions; the sum is still over all of them
        top = np.argsort(-np.abs(products))[:64]
        trace.update(top_contributions=[{"input": int(i), "x": float(x[i]), "w": float(kernel[i, unit]),
                                         "product": float(products[i])} for i in top])
    return trace


def batchnorm_trace(layer, inputs, index) -> dict:
    (x,), ch = inputs, index[-1]
    value_in = float(x[index])
    mean = float(np.asarray(layer.moving_mean)[ch])
    var = float(np.asarray(layer.moving_variance)[ch])
    gamma = float(np.asarray(layer.gamma)[ch]) if layer.scale else 1.0
    beta = float(np.asarray(layer.beta)[ch]) if layer.center else 0.0
    value = gamma * (value_in - mean) / np.sqrt(var + layer.epsilon) + beta
    return {"op": "batchnorm", "x": value_in, "mean": mean, "variance": var, "epsilon": float(layer.epsilon),
            "gamma": gamma, "beta": beta, "value": float(value)}


def activation_trace(layer, inputs, index) -> dict:
    (x,) = inputs
    act, name = activation_function(layer)
    if name == "softmax":
        flat = x.reshape(-1)
        return {"op": "softmax", "x": float(x[index]), "value": float(_softmax(flat)[np.ravel_multi_index(
            index, x.shape)]), "activation": name}
    return {"op": "activation", "activation": name, "x": float(x[index]), "value": float(act(float(x[index])))}


def pool_trace(layer, inputs, index) -> dict:
    """The pooling window; TF's 'same' max pool ignores the padding, its 'same' average counts only real pixels."""
    (x,), (row, col, ch) = inputs, index
    kernel, stride = _pair(layer.pool_size), _pair(layer.strides)
    pad = same_padding(layer.padding, x.shape[:2], kernel, stride)
    top, left = row * stride[0] - pad[0], col * stride[1] - pad[1]
    patch, inside = _window(x[..., ch:ch + 1], top, left, *kernel, np.nan)
    window = patch[..., 0]
    is_max = type(layer).__name__ == "MaxPooling2D"
    value = float(np.nanmax(window)) if is_max else float(np.nanmean(window))
    trace = {"op": "max_pool" if is_max else "avg_pool", "kernel_size": list(kernel), "stride": list(stride),
             "padding": layer.padding, "window": {"top": top, "left": left}, "inside": inside.astype(int).tolist(),
             "values": np.where(inside, window, 0.0).tolist(), "value": value}
    if is_max:
        r, c = np.unravel_index(np.nanargmax(window), window.shape)
        trace["argmax"] = [int(r), int(c)]
    return trace


def global_pool_trace(layer, inputs, index) -> dict:
    (x,), (ch,) = inputs, index
    is_max = "Max" in type(layer).__name__
    values = x[..., ch]
    return {"op": "global_max_pool" if is_max else "global_avg_pool", "count": int(values.size),
            "sum": float(values.sum()), "value": float(values.max() if is_max else values.mean())}


def lrn_trace(layer, inputs, index) -> dict:
    """b_c = a_c / (k + alpha * sum of a_j^2 over the n channels around c) ^ beta."""
    (x,), (row, col, ch) = inputs, index
    radius = layer.size // 2
    lo, hi = max(0, ch - radius), min(x.shape[-1], ch + radius + 1)
    neighbours = x[row, col, lo:hi]
    square_sum = float(np.sum(neighbours ** 2))
    denominator = (layer.k + layer.alpha * square_sum) ** layer.beta
    return {"op": "lrn", "x": float(x[row, col, ch]), "channels": [lo, hi], "neighbours": neighbours.tolist(),
            "square_sum": square_sum, "k": layer.k, "alpha": layer.alpha, "beta": layer.beta, "size": layer.size,
            "denominator": float(denominator), "value": float(x[row, col, ch] / denominator)}


def add_trace(layer, inputs, index) -> dict:
    terms = [float(x[index]) for x in inputs]
    return {"op": "add", "terms": terms, "value": float(sum(terms))}


def concat_trace(layer, inputs, index) -> dict:
    """Which input (and which of its channels) the concatenated channel comes from (DenseNet's source layer)."""
    ch, offset = index[-1], 0
    for position, x in enumerate(inputs):
        if ch < offset + x.shape[-1]:
            local = (*index[:-1], ch - offset)
            return {"op": "concat", "source": position, "source_channel": ch - offset,
                    "channel_offset": offset, "value": float(x[local])}
        offset += x.shape[-1]
    raise IndexError(f"{layer.name}: channel {ch} beyond {offset}")


def zero_padding_trace(layer, inputs, index) -> dict:
    (x,), (row, col, ch) = inputs, index
    (top, _), (left, _) = layer.padding
    r, c = row - top, col - left
    inside = 0 <= r < x.shape[0] and 0 <= c < x.shape[1]
    return {"op": "zero_pad", "source": [r, c, ch] if inside else None,
            "value": float(x[r, c, ch]) if inside else 0.0}


def subsampling_trace(layer, inputs, index) -> dict:
    """LeNet-5's S2/S4: (sum of the 2x2 window) * coefficient + bias."""
    (x,), (row, col, ch) = inputs, index
    p = layer.pool_size
    window = x[row * p:(row + 1) * p, col * p:(col + 1) * p, ch]
    coefficient = float(np.asarray(layer.coefficient)[ch])
    bias = float(np.asarray(layer.bias)[ch])
    return {"op": "subsampling", "window": {"top": row * p, "left": col * p}, "values": window.tolist(),
            "sum": float(window.sum()), "coefficient": coefficient, "bias": bias,
            "value": float(window.sum() * coefficient + bias)}


def shortcut_trace(layer, inputs, index) -> dict:
    """ResNet option A: pixel (s*row, s*col) of the block input, zero for the appended channels."""
    (x,), (row, col, ch) = inputs, index
    s = layer.strides
    inside = ch < x.shape[-1]
    return {"op": "zero_pad_shortcut", "source": [row * s, col * s, ch] if inside else None,
            "value": float(x[row * s, col * s, ch]) if inside else 0.0}


def flatten_trace(layer, inputs, index) -> dict:
    (x,), (unit,) = inputs, index
    source = np.unravel_index(unit, x.shape)
    return {"op": "flatten", "source": [int(i) for i in source], "value": float(x[source])}


def identity_trace(layer, inputs, index) -> dict:
    (x,) = inputs
    return {"op": "identity", "note": "inactive at inference", "value": float(x[index])}


def rbf_trace(layer, inputs, index) -> dict:
    (x,), (unit,) = inputs, index
    prototype = np.asarray(layer.prototypes, "float64")[unit]
    return {"op": "rbf", "value": float(-np.sum((x - prototype) ** 2)), "note": "minus the squared distance"}


def _not_recomputed(layer, inputs, index) -> dict:
    return {"op": "other", "value": None, "note": f"{type(layer).__name__}: shown as the model computes it"}


TRACES = {"Conv2D": conv_trace, "PartialConv2D": partial_conv_trace, "Dense": dense_trace,
          "BatchNormalization": batchnorm_trace, "Activation": activation_trace, "ReLU": activation_trace,
          "MaxPooling2D": pool_trace, "AveragePooling2D": pool_trace, "GlobalAveragePooling2D": global_pool_trace,
          "GlobalMaxPooling2D": global_pool_trace, "LocalResponseNormalization": lrn_trace, "Add": add_trace,
          "Concatenate": concat_trace, "ZeroPadding2D": zero_padding_trace,
          "TrainableSubsampling": subsampling_trace, "ZeroPadShortcut": shortcut_trace, "Flatten": flatten_trace,
          "Dropout": identity_trace, "EuclideanRBF": rbf_trace}
