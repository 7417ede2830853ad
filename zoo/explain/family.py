"""The structures each family is known for, measured on the real graph, its weights and this image's activations.

- LeNet-5: the C3 connection table (Table I of LeCun et al. 1998; the layer's own `table`), and per connection
  the mean contribution of input map i to output map o (the convolution of map i with kernel (i, o)): the
  contributions of an output map plus its bias are its pre-activation (the model's output for the linear C3).
- AlexNet: the two towers of each grouped convolution (which input and output channels each holds, its
  parameters, its share of the layer's activation, and which first-layer filters feed it, with how colour-specific
  they are: Krizhevsky et al. 2012, Fig. 3), and each LRN step over the whole map.
- GoogLeNet: per inception module, each branch's path, channels and share of the module's output activation.
- ResNet: per block, |F(x)| (the residual branch) against |x| (the shortcut: identity, projection or option A).
- DenseNet: per dense block, the source layer of each concatenated channel with its share of the activation,
  and the mean |w| each later layer puts on each source (Huang et al. 2017, Fig. 5).

Everything is found from the graph (layer kinds and connections), not from names, and every number is computed
from the layers' weights and the model's own outputs (`acts`: layer name -> output batch, first image used).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np

# per-channel layers: channel c of the output comes from channel c of the input (BN, activations, pooling, LRN
# keeps the index while mixing neighbours, which is how the towers' inputs are traced back through it)
CHANNEL_PRESERVING = {"BatchNormalization", "Activation", "ReLU", "Dropout", "MaxPooling2D", "AveragePooling2D",
                      "ZeroPadding2D", "LocalResponseNormalization", "TrainableSubsampling"}


def needed_layers(graph) -> list[str]:
    """The layer outputs the family views read (fetched in the page's one forward pass)."""
    names: list[str] = []
    for name, node in graph.nodes.items():
        layer = graph.layers[name]
        if node.kind == "PartialConv2D" or node.kind == "LocalResponseNormalization":
            names += [*node.inputs, name]
        elif node.kind == "Conv2D" and getattr(layer, "groups", 1) > 1:
            names.append(name)
        elif node.kind == "Add":
            names += list(node.inputs)
        elif node.kind == "Concatenate":
            names.append(name)
    second = _second_conv(graph)
    if second:
        names += [*graph.nodes[second].inputs, second]
    return list(dict.fromkeys(names))


def family_view(graph, acts: dict, family: str = "") -> dict:
    ancestry = Ancestry(graph)
    concats = [n for n, node in graph.nodes.items() if node.kind == "Concatenate"]
    dense = [n for n in concats if ancestry.chained(n)]
    return {"family": family,
            "connection_tables": connection_tables(graph, acts, family),
            "towers": towers(graph, acts),
            "lrn": lrn_steps(graph, acts),
            "inception": [inception_module(graph, acts, n, ancestry) for n in concats if n not in dense],
            "residual": [residual_block(graph, acts, n, ancestry) for n, node in graph.nodes.items()
                         if node.kind == "Add" and len(node.inputs) == 2],
            "dense": dense_blocks(graph, acts, dense)}


class Ancestry:
    """Which layers each layer depends on (itself included)."""

    def __init__(self, graph):
        self.graph = graph

        @lru_cache(maxsize=None)
        def of(name: str) -> frozenset:
            found = {name}
            for source in graph.nodes[name].inputs:
                found |= of(source)
            return frozenset(found)

        self.of = of
        for name in graph.nodes:  # in topological order: no deep recursion later
            of(name)

    def chained(self, concat: str) -> bool:
        """A dense concatenation: one input is computed from another (the new layer reads what it is joined to),
        where an inception module's branches are parallel."""
        inputs = self.graph.nodes[concat].inputs
        return any(a != b and a in self.of(b) for a in inputs for b in inputs)

    def own(self, name: str, other: str) -> frozenset:
        """The layers `name` depends on that `other` does not: the path of one branch since the fork."""
        return self.of(name) - self.of(other)


def _mean_abs(values: np.ndarray) -> float:
    return float(np.mean(np.abs(values)))


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values, dtype="float64"))))


# ---------------------------------------------------------------------------------------------------------------
# LeNet-5: connection tables


def _second_conv(graph) -> Optional[str]:
    """LeNet's second convolution (the one LeCun's C3 table thins out), for a LeNet without a PartialConv2D."""
    convs = [n for n, node in graph.nodes.items() if node.kind in ("Conv2D", "PartialConv2D")]
    if len(convs) < 2 or graph.nodes[convs[1]].kind == "PartialConv2D" or len(graph.nodes) > 20:
        return None
    return convs[1]


def per_connection(x: np.ndarray, kernel: np.ndarray, stride: tuple[int, int] = (1, 1),
                   pad: tuple[int, int, int, int] = (0, 0, 0, 0)) -> np.ndarray:
    """Each input map's contribution to each output map: (h, w, in, out), summing over `in` gives the convolution
    (without bias). x: (H, W, in), kernel: (kh, kw, in, out); pad: top, bottom, left, right zeros."""
    kh, kw = kernel.shape[:2]
    x = np.pad(x.astype("float64"), [(pad[0], pad[1]), (pad[2], pad[3]), (0, 0)])
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))[::stride[0], ::stride[1]]
    return np.einsum("hwcij,ijco->hwco", windows, kernel.astype("float64"), optimize=True)


def _padding(layer, x_shape) -> tuple[int, int, int, int]:
    from .compute import same_padding

    if getattr(layer, "padding", "valid") == "valid":
        return 0, 0, 0, 0
    kernel, stride = tuple(layer.kernel_size), tuple(layer.strides)
    top, left = same_padding("same", x_shape[:2], kernel, stride)
    out = [-(-n // s) for n, s in zip(x_shape[:2], stride)]
    total = [max((o - 1) * s + k - n, 0) for o, s, k, n in zip(out, stride, kernel, x_shape[:2])]
    return top, total[0] - top, left, total[1] - left


def connection_table(graph, acts: dict, name: str) -> dict:
    layer, node = graph.layers[name], graph.nodes[name]
    x = acts[node.inputs[0]][0]
    partial = node.kind == "PartialConv2D"
    kernel = np.asarray(layer.dense_kernel() if partial else layer.kernel, "float64")
    table = layer.table if partial else [list(range(kernel.shape[2]))] * kernel.shape[3]
    stride = (1, 1) if partial else tuple(layer.strides)
    contributions = per_connection(x, kernel, stride, (0, 0, 0, 0) if partial else _padding(layer, x.shape))
    means, mean_abs = contributions.mean(axis=(0, 1)), np.abs(contributions).mean(axis=(0, 1))
    bias = np.asarray(layer.bias, "float64") if getattr(layer, "bias", None) is not None else np.zeros(len(table))
    output = acts[name][0]
    rows = []
    for o, inputs in enumerate(table):
        connected = {int(i): {"mean": float(means[i, o]), "mean_abs": float(mean_abs[i, o])} for i in inputs}
        rows.append({"output": o, "inputs": sorted(connected), "contributions": connected, "bias": float(bias[o]),
                     "pre_activation_mean": float(sum(c["mean"] for c in connected.values()) + bias[o]),
                     "model_mean": float(output[..., o].mean())})
    activation = getattr(getattr(layer, "activation", None), "__name__", "linear")
    return {"layer": name, "input": node.inputs[0], "in_maps": int(kernel.shape[2]), "out_maps": len(table),
            "full": not partial, "activation": activation, "kernel_size": list(kernel.shape[:2]),
            "connections": sum(len(r) for r in table), "rows": rows}


def connection_tables(graph, acts: dict, family: str) -> list[dict]:
    names = [n for n, node in graph.nodes.items() if node.kind == "PartialConv2D"]
    if not names and family == "lenet" and _second_conv(graph):
        names = [_second_conv(graph)]
    return [connection_table(graph, acts, n) for n in names if n in acts and graph.nodes[n].inputs[0] in acts]


# ---------------------------------------------------------------------------------------------------------------
# AlexNet: towers and LRN


def producer(graph, name: str) -> Optional[str]:
    """The convolution whose output channels reach `name`'s input through channel-preserving layers only."""
    current = graph.nodes[name].inputs[0] if graph.nodes[name].inputs else None
    while current is not None:
        node = graph.nodes[current]
        if node.kind in ("Conv2D", "PartialConv2D"):
            return current
        if node.kind not in CHANNEL_PRESERVING or len(node.inputs) != 1:
            return None
        current = node.inputs[0]
    return None


def colour_specificity(kernel: np.ndarray) -> np.ndarray:
    """Per filter of an RGB kernel (kh, kw, 3, F): the spread of the weights across R, G, B relative to their
    size (0: the same weights on each channel, a colour-agnostic filter)."""
    spread = kernel.std(axis=2).mean(axis=(0, 1))
    size = np.abs(kernel).mean(axis=(0, 1, 2))
    return spread / np.where(size > 0, size, 1.0)


def towers(graph, acts: dict) -> list[dict]:
    found = []
    for name, node in graph.nodes.items():
        layer = graph.layers[name]
        if node.kind != "Conv2D" or getattr(layer, "groups", 1) <= 1 or name not in acts:
            continue
        groups, kernel = int(layer.groups), np.asarray(layer.kernel)
        per_in, per_out = kernel.shape[2], kernel.shape[3] // groups
        a = acts[name][0]
        total = float(np.abs(a).sum()) or 1.0
        source = producer(graph, name)
        source_kernel = np.asarray(graph.layers[source].kernel, "float64") if source else None
        colour = (colour_specificity(source_kernel) if source_kernel is not None and source_kernel.ndim == 4
                  and source_kernel.shape[2] == 3 else None)
        parts = []
        for g in range(groups):
            out = slice(g * per_out, (g + 1) * per_out)
            part = {"tower": g, "in_channels": [g * per_in, (g + 1) * per_in],
                    "out_channels": [out.start, out.stop],
                    "params": int(kernel[..., out].size + (per_out if layer.use_bias else 0)),
                    "mean": float(a[..., out].mean()), "share": float(np.abs(a[..., out]).sum()) / total}
            if colour is not None:
                part["source_colour_specificity"] = float(colour[g * per_in:(g + 1) * per_in].mean())
            parts.append(part)
        found.append({"layer": name, "groups": groups, "filters": int(layer.filters), "source": source,
                      "kernel": list(kernel.shape), "towers": parts,
                      "first_layer": source == _first_conv(graph)})
    return found


def _first_conv(graph) -> Optional[str]:
    return next((n for n, node in graph.nodes.items() if node.kind in ("Conv2D", "PartialConv2D")), None)


def lrn_map(layer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The LRN over a whole map in numpy: (output, denominator) for x (H, W, C)."""
    x = x.astype("float64")
    radius = layer.size // 2
    padded = np.pad(np.square(x), [(0, 0), (0, 0), (radius, radius)])
    window = sum(padded[..., offset:offset + x.shape[-1]] for offset in range(layer.size))
    denominator = (layer.k + layer.alpha * window) ** layer.beta
    return x / denominator, denominator


def lrn_steps(graph, acts: dict) -> list[dict]:
    found = []
    for name, node in graph.nodes.items():
        if node.kind != "LocalResponseNormalization" or name not in acts or node.inputs[0] not in acts:
            continue
        layer, x = graph.layers[name], acts[node.inputs[0]][0]
        ours, denominator = lrn_map(layer, x)
        found.append({"layer": name, "input": node.inputs[0], "size": layer.size, "k": layer.k,
                      "alpha": layer.alpha, "beta": layer.beta, "mean_abs_before": _mean_abs(x),
                      "mean_abs_after": _mean_abs(acts[name][0]), "denominator_mean": float(denominator.mean()),
                      "denominator_max": float(denominator.max()),
                      "max_difference": float(np.abs(ours - acts[name][0]).max())})
    return found


# ---------------------------------------------------------------------------------------------------------------
# GoogLeNet: branches of an inception module


def branch_path(graph, ancestry: Ancestry, name: str, siblings) -> list[str]:
    """The layers of one branch, in order, from just after the fork to the branch's output."""
    shared = frozenset().union(*(ancestry.of(s) for s in siblings if s != name))
    own = ancestry.of(name) - shared
    return [n for n in graph.nodes if n in own]


def inception_module(graph, acts: dict, name: str, ancestry: Ancestry) -> dict:
    inputs = graph.nodes[name].inputs
    a = acts[name][0] if name in acts else None
    total = (float(np.abs(a).sum()) or 1.0) if a is not None else 1.0
    width = graph.nodes[name].output_shape[-1]
    branches, offset = [], 0
    for source in inputs:
        channels = graph.nodes[source].output_shape[-1]
        path = branch_path(graph, ancestry, source, inputs)
        branch = {"output": source, "path": path, "kinds": [graph.nodes[p].kind for p in path],
                  "channels": [offset, offset + channels], "channel_share": channels / width}
        if a is not None:
            part = a[..., offset:offset + channels]
            branch.update(share=float(np.abs(part).sum()) / total, mean=float(part.mean()))
        branches.append(branch)
        offset += channels
    first = branches[0]["path"]
    fork = graph.nodes[first[0]].inputs[0] if first and graph.nodes[first[0]].inputs else None
    return {"layer": name, "fork": fork, "channels": width, "branches": branches}


# ---------------------------------------------------------------------------------------------------------------
# ResNet: |F(x)| against |x|


def residual_block(graph, acts: dict, name: str, ancestry: Ancestry) -> dict:
    """The residual branch F(x) is the input with more convolutions since the fork; the other is the shortcut."""
    a, b = graph.nodes[name].inputs

    def convs(own):
        return sum(graph.nodes[n].kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D") for n in own)

    own = {a: ancestry.own(a, b), b: ancestry.own(b, a)}
    residual, shortcut = (a, b) if convs(own[a]) > convs(own[b]) else (b, a)
    kinds = {graph.nodes[n].kind for n in own[shortcut]}
    kind = ("projection" if kinds & {"Conv2D"} else "option A (subsample, zero channels)"
            if "ZeroPadShortcut" in kinds else "identity")
    view = {"layer": name, "residual": residual, "shortcut": shortcut, "shortcut_kind": kind,
            "residual_path": [n for n in graph.nodes if n in own[residual]]}
    if residual in acts and shortcut in acts:
        f, x = acts[residual][0], acts[shortcut][0]
        view.update(f_rms=_rms(f), x_rms=_rms(x), f_mean_abs=_mean_abs(f), x_mean_abs=_mean_abs(x),
                    ratio=_rms(f) / (_rms(x) or 1.0))
    return view


# ---------------------------------------------------------------------------------------------------------------
# DenseNet: source layers of the concatenated channels


def segments(graph, name: str) -> list[dict]:
    """The channels of a concatenation by the layer that made them, unrolling nested concatenations:
    [{"source", "channels": [lo, hi]}]."""
    out, offset = [], 0
    for source in graph.nodes[name].inputs:
        if graph.nodes[source].kind == "Concatenate":
            inner = segments(graph, source)
        else:
            inner = [{"source": source, "channels": [0, graph.nodes[source].output_shape[-1]]}]
        for s in inner:
            out.append({"source": s["source"], "channels": [s["channels"][0] + offset, s["channels"][1] + offset]})
        offset += graph.nodes[source].output_shape[-1]
    return out


def origin(graph, name: str, channel: int) -> tuple[str, int]:
    """The layer (and its channel) that made channel `channel` of a (nested) concatenation."""
    for s in segments(graph, name):
        lo, hi = s["channels"]
        if lo <= channel < hi:
            return s["source"], channel - lo
    raise IndexError(f"{name}: channel {channel} beyond its {graph.nodes[name].output_shape[-1]} channels")


def reader(graph, name: str) -> Optional[tuple[str, str]]:
    """The convolution (or the classifier after global pooling) that reads `name`'s channels through
    channel-preserving layers, and how ('conv' or 'dense'); None if it branches or mixes channels first."""
    current, pooled = name, False
    while True:
        after = graph.consumers.get(current, [])
        after = [n for n in after if graph.nodes[n].kind != "Concatenate"]
        if len(after) != 1:
            return None
        current = after[0]
        kind = graph.nodes[current].kind
        if kind == "Conv2D" and not pooled:
            return current, "conv"
        if kind == "Dense" and pooled:
            return current, "dense"
        if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            pooled = True
        elif kind not in CHANNEL_PRESERVING:
            return None


def weight_on_sources(graph, name: str, parts: list[dict]) -> Optional[dict]:
    """Mean |w| the layer reading concatenation `name` puts on each source's channels (Huang et al. Fig. 5)."""
    found = reader(graph, name)
    if found is None:
        return None
    target, how = found
    kernel = np.abs(np.asarray(graph.layers[target].kernel, "float64"))
    per_channel = kernel.mean(axis=(0, 1, 3)) if how == "conv" else kernel.mean(axis=1)
    return {"layer": target, "reads": name,
            "mean_abs_w": [float(per_channel[p["channels"][0]:p["channels"][1]].mean()) for p in parts]}


def dense_blocks(graph, acts: dict, dense: list[str]) -> list[dict]:
    """One entry per dense block: its last concatenation's channels by source, and the weight matrix."""
    finals = [n for n in dense if not any(graph.nodes[c].kind == "Concatenate" and c in dense
                                          for c in graph.consumers.get(n, []))]
    blocks = []
    for final in finals:
        parts = segments(graph, final)
        chain = concat_chain(graph, final)
        a = acts.get(final)
        if a is not None:
            a = a[0]
            total = float(np.abs(a).sum()) or 1.0
            for p in parts:
                values = a[..., p["channels"][0]:p["channels"][1]]
                p.update(mean=float(values.mean()), share=float(np.abs(values).sum()) / total)
        readers = [(parts[0]["source"], parts[:1])] + [(n, segments(graph, n)) for n in chain]
        rows = [row for row in (weight_on_sources(graph, n, p) for n, p in readers) if row]
        blocks.append({"layer": final, "channels": graph.nodes[final].output_shape[-1], "sources": parts,
                       "concats": chain, "weights": rows})
    return blocks


def concat_chain(graph, final: str) -> list[str]:
    """The concatenations of one dense block, first to `final` (each one the first input of the next)."""
    chain, current = [], final
    while graph.nodes[current].kind == "Concatenate":
        chain.append(current)
        current = graph.nodes[current].inputs[0]
    return chain[::-1]
