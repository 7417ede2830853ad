"""The papers' initialisations, applied to a built model: `zoo.build(name, init="paper")` (the default) or
`init="keras"` (Keras' own initialisers, as the layers were made: Glorot-uniform kernels, zero biases, and the
zoo's custom layers' defaults; what every model was built with before the option existed).

What each paper states is data: a `zoo.archs.Init` per family (the schema's default in zoo/archs.py), replaced by a
variant's `arch.init` in registry.yaml where its paper differs (ZFNet). `initialise` redraws every conv and dense
kernel (and LeNet-5's subsampling coefficients) and sets every bias as the scheme says, after the graph is built,
as torchvision's `_initialize_weights` does; it also sets the layers' initializer attributes, so a layer's config
names what was drawn. BatchNorm keeps gamma 1 and beta 0 (every paper's); LeNet-5's RBF prototypes stay fixed.

ZFNet's filter renormalisation becomes each conv kernel's constraint (zoo.models.layers.FilterRMSNorm): Keras'
optimizers apply it after every update, and a `.keras` file keeps it (the layer's config holds it).
"""

from __future__ import annotations

import fnmatch
from typing import Iterator

import keras
from keras import layers

from ..archs import INIT_NAMES, Init
from .layers import FanInUniform, FilterRMSNorm, PartialConv2D, TrainableSubsampling

__all__ = ["initialise", "check_init", "kernel_initializer", "bias_value", "weighted_layers"]


def check_init(init, model_name: str) -> None:
    if init not in INIT_NAMES:
        raise ValueError(f"{model_name}: init must be one of {', '.join(INIT_NAMES)}, got {init!r}")


def kernel_initializer(scheme: Init, fan_in=None) -> keras.initializers.Initializer:
    """A fresh initializer for one kernel (an unseeded Keras initializer called twice repeats its values, so each
    variable gets its own). `fan_in`: the units' fan-in where the shape does not tell it (C3, S2/S4)."""
    if scheme.kernel == "normal":
        return keras.initializers.RandomNormal(mean=0.0, stddev=scheme.std)
    if scheme.kernel == "fan_in_uniform":
        return FanInUniform(scheme.scale, fan_in=fan_in)
    if fan_in is not None:
        raise ValueError(f"init kernel {scheme.kernel!r} is not defined for LeNet-5's partial C3 connections and "
                         f"subsampling coefficients (use 'normal' or 'fan_in_uniform')")
    if scheme.kernel == "glorot_uniform":
        return keras.initializers.GlorotUniform()
    if scheme.kernel == "lecun_uniform":
        return keras.initializers.LecunUniform()
    # He et al.'s plain Gaussian; Keras' HeNormal is a truncated one
    return keras.initializers.VarianceScaling(2.0, mode=scheme.mode, distribution="untruncated_normal")


def bias_value(scheme: Init, layer_name: str) -> float:
    """The constant of a layer's biases: the first `biases` pattern that matches its name, else `bias`."""
    for pattern, value in scheme.biases.items():
        if fnmatch.fnmatchcase(layer_name, pattern):
            return value
    return scheme.bias


def weighted_layers(model) -> Iterator:
    """The layers whose weights a scheme draws, nested models included, in graph order."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from weighted_layers(layer)
        elif isinstance(layer, (layers.Conv2D, layers.Dense, PartialConv2D, TrainableSubsampling)):
            yield layer


def _connection_fan_ins(layer: PartialConv2D) -> list[float]:
    """The fan-in of the C3 map each kernel column feeds: kernel_size^2 times the S2 maps its row of Table I
    lists (the columns are ordered as PartialConv2D.build orders its connections)."""
    return [float(layer.kernel_size ** 2 * len(inputs)) for inputs in layer.table for _ in inputs]


def _draw(variable, initializer) -> None:
    variable.assign(initializer(tuple(variable.shape), dtype=variable.dtype))


def _initialise_layer(layer, scheme: Init, draw: bool) -> None:
    bias = bias_value(scheme, layer.name)
    if isinstance(layer, TrainableSubsampling):
        kernel, variable = kernel_initializer(scheme, fan_in=float(layer.pool_size ** 2)), layer.coefficient
    elif isinstance(layer, PartialConv2D):
        kernel, variable = kernel_initializer(scheme, fan_in=_connection_fan_ins(layer)), layer.kernel
    else:  # Keras' Conv2D (grouped too: its kernel holds one group's inputs) and Dense
        kernel, variable = kernel_initializer(scheme), layer.kernel
        layer.kernel_initializer = kernel
        if layer.bias is not None:
            layer.bias_initializer = keras.initializers.Constant(bias)
    if draw:
        _draw(variable, kernel)
        if getattr(layer, "bias", None) is not None:
            _draw(layer.bias, keras.initializers.Constant(bias))
    if scheme.filter_rms and isinstance(layer, layers.Conv2D):
        constraint = FilterRMSNorm(scheme.filter_rms)
        layer.kernel_constraint = constraint  # in the layer's config: a .keras file keeps it
        layer.kernel.constraint = constraint  # what the optimizer applies after each update


def initialise(model, scheme: Init, init: str = "paper", *, draw: bool = True):
    """Initialise `model` as `scheme` says when `init` is "paper" (init="keras": unchanged). `draw=False` (weights
    are about to be loaded) only attaches the scheme's constraints. Returns the model."""
    check_init(init, model.name)
    if init == "keras":
        return model
    for layer in weighted_layers(model):
        _initialise_layer(layer, scheme, draw)
    return model
