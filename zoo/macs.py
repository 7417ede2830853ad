"""Analytic multiply-accumulate (MAC) and parameter counts of a built Keras model.

Convention (the one the papers and torchvision's "GFLOPS" column use, despite the name): one MAC is one
multiply plus one add of a weighted layer, per image. Counted: convolutions (incl. grouped, depthwise,
separable, transposed) and dense layers, from their input/output shapes; layers of our own that carry weights
expose `count_macs(input_shape, output_shape)`. Not counted: biases, BatchNorm, activations, pooling, LRN,
additions, concatenations. FLOPs ~= 2 x MACs. Works on any Keras backend: it reads shapes, runs nothing.
"""

from __future__ import annotations

import math

import keras
from keras import layers

__all__ = ["count_macs", "count_params", "layer_macs"]


def _prod(values) -> int:
    return math.prod(int(v) for v in values)


def _shape(tensors):
    tensor = tensors[0] if isinstance(tensors, (list, tuple)) else tensors
    return tuple(tensor.shape)


def _check_known(shape, layer):
    if any(d is None for d in shape[1:]):
        raise ValueError(f"count_macs needs a fixed input size; layer {layer.name!r} has shape {shape}")


_CONV = (layers.Conv1D, layers.Conv2D, layers.Conv3D)
_DEPTHWISE = (layers.DepthwiseConv1D, layers.DepthwiseConv2D)
_SEPARABLE = (layers.SeparableConv1D, layers.SeparableConv2D)
_TRANSPOSED = (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)


def layer_macs(layer, input_shape, output_shape) -> int:
    """MACs of one call of `layer` for a single example with these (batched) shapes."""
    if hasattr(layer, "count_macs"):
        return int(layer.count_macs(input_shape, output_shape))
    weighted = _CONV + _DEPTHWISE + _SEPARABLE + _TRANSPOSED + (layers.Dense,)
    if not isinstance(layer, weighted):
        if isinstance(layer, layers.EinsumDense):
            raise NotImplementedError(f"count_macs: EinsumDense layer {layer.name!r} is not supported")
        return 0
    _check_known(input_shape, layer)
    _check_known(output_shape, layer)
    kernel = _prod(getattr(layer, "kernel_size", ()))
    if isinstance(layer, _DEPTHWISE):
        return _prod(output_shape[1:]) * kernel
    if isinstance(layer, _SEPARABLE):
        depthwise_outputs = _prod(output_shape[1:-1]) * input_shape[-1] * layer.depth_multiplier
        return depthwise_outputs * kernel + depthwise_outputs * output_shape[-1]
    if isinstance(layer, _TRANSPOSED):  # every input pixel scatters a kernel into every output channel
        return _prod(input_shape[1:]) * kernel * output_shape[-1]
    if isinstance(layer, _CONV):
        return _prod(output_shape[1:]) * kernel * input_shape[-1] // layer.groups
    return _prod(input_shape[1:]) * layer.units  # Dense, applied to the last axis of any rank


def count_macs(model: keras.Model) -> int:
    """Total MACs per image of every call of every weighted layer in `model` (nested models included)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        for node in layer._inbound_nodes:
            if not node.input_tensors:
                continue
            total += layer_macs(layer, _shape(node.input_tensors), _shape(node.output_tensors))
    return total


def count_params(model: keras.Model, trainable: bool = True) -> int:
    weights = model.trainable_weights if trainable else model.non_trainable_weights
    return sum(_prod(w.shape) for w in weights)
