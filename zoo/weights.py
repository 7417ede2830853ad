"""Import keras.applications ImageNet weights into zoo models.

Our VGG, ResNet and DenseNet variants use keras.applications' layer names, so weights map layer by layer, by
name. The one difference: keras' ResNet convs have biases and ours do not (BatchNorm follows every conv, and its
beta makes a bias redundant). A conv bias b followed by BatchNorm folds exactly into the moving mean:

    BN(Wx + b) = gamma * (Wx + b - mean) / sqrt(var + eps) + beta = BN'(Wx)  with  mean' = mean - b

which is exact at inference (training-mode BN uses the batch mean and ignores both b and the moving mean).

    import keras, zoo
    from zoo.weights import from_keras_applications
    twin = keras.applications.ResNet50(weights="resnet50_weights_tf_dim_ordering_tf_kernels.h5")
    model = from_keras_applications(zoo.build("resnet50"), twin)

or on the command line: `zoo convert resnet50 --keras-weights FILE --output resnet50.weights.h5`, then
`zoo.build("resnet50", weights="resnet50.weights.h5")`. Nothing here downloads anything.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from .errors import ZooError
from .registry import Registry, registry

__all__ = ["KERAS_APPLICATIONS", "WeightImportError", "from_keras_applications", "keras_twin", "convert_file",
           "WeightsLayout", "file_layout", "model_layout", "first_difference", "quiet_keras"]


def keras_twins(reg: Registry) -> dict[str, str]:
    """Registry name -> keras.applications constructor of the same network (same layers, same names): the
    entries' `keras_twin` in registry.yaml, in historic order (by the paper's year; VGG, ResNet, DenseNet)."""
    twinned = [name for name in reg.names() if reg.models[name].keras_twin]
    return {name: reg.models[name].keras_twin for name in sorted(twinned, key=lambda n: reg.models[n].paper.year)}


KERAS_APPLICATIONS = keras_twins(registry())  # read once, at import (zoo/bench.py imports it as KERAS_TWINS)


class WeightImportError(ZooError, ValueError):
    """keras.applications weights that do not fit a zoo model; the message names both and the first mismatch."""


# ---------------------------------------------------------------------------------------------------------------
# What a weights file holds, read with h5py before Keras loads it: a file of another model is one line naming both,
# not Keras' per-layer warning flood ("Skipping variable loading ...") and a message cut at its colon.


@dataclass
class WeightsLayout:
    """A weights file's weighted layers (name -> weight shapes, sorted) and the model name it records."""

    layers: dict
    model: Optional[str] = None

    def describe(self) -> str:
        names = list(self.layers)
        span = f", {names[0]!r} ... {names[-1]!r}" if names else ""
        return f"{len(names)} weighted layers{span}"


def _shapes(group) -> list:
    return sorted(tuple(group[key].shape) for key in group if hasattr(group[key], "shape"))


def _keras3_layout(f) -> WeightsLayout:
    """Keras 3's .weights.h5: layers/<path>/vars/<i>, each vars group naming its layer; nested layers (a layer
    made of layers) count as their top-level layer, as `layer.weights` does."""
    layers: dict = {}

    def visit(group, owner: Optional[str]):
        for key in group:
            sub = group[key]
            if not hasattr(sub, "keys"):
                continue
            name = owner or (sub["vars"].attrs.get("name") if "vars" in sub else None) or key
            shapes = _shapes(sub["vars"]) if "vars" in sub else []
            if shapes:
                layers[name] = sorted(layers.get(name, []) + shapes)
            if "layers" in sub:
                visit(sub["layers"], name)

    visit(f["layers"], None)
    model = f["vars"].attrs.get("name") if "vars" in f else None
    return WeightsLayout(layers, str(model) if model else None)


def _legacy_layout(f) -> WeightsLayout:
    """Keras 2's .h5 (keras.applications' downloads): a group per layer, `weight_names` listing its datasets."""
    layers = {}
    for raw in f.attrs["layer_names"]:
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        group = f[name]
        shapes = sorted(tuple(group[w.decode() if isinstance(w, bytes) else w].shape)
                        for w in group.attrs.get("weight_names", []))
        if shapes:
            layers[name] = shapes
    return WeightsLayout(layers)


def file_layout(path) -> Optional[WeightsLayout]:
    """The layout of an HDF5 weights file (Keras 3 or Keras 2 format); None when it is neither (Keras then gives
    its own error, which the callers turn into one line)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "layers" in f:
                layout = _keras3_layout(f)
            elif "layer_names" in f.attrs:
                layout = _legacy_layout(f)
            elif "model_weights" in f:
                layout = _legacy_layout(f["model_weights"])
            else:
                return None
    except (OSError, KeyError, ValueError):
        return None
    if layout.model is None:  # keras' own files are named after their model: resnet50_weights_tf_dim_...h5
        stem = Path(path).name.lower()
        layout.model = next((name for name in sorted(KERAS_APPLICATIONS, key=len, reverse=True)
                             if stem.startswith(name)), None)
    return layout


def model_layout(model) -> dict:
    return {layer.name: sorted(tuple(w.shape) for w in layer.weights) for layer in model.layers if layer.weights}


def first_difference(expected: dict, found: WeightsLayout) -> Optional[str]:
    """The first way the file's layers differ from the model's (names, then shapes), or None when they fit."""
    missing = [name for name in expected if name not in found.layers]
    extra = [name for name in found.layers if name not in expected]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        return f"layer {missing[0]!r}{more} is not in the file"
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        return f"the file's layer {extra[0]!r}{more} is not in the model"
    for name, shapes in expected.items():
        if found.layers[name] != shapes:
            return f"layer {name!r} has weights {found.layers[name]} in the file, {shapes} in the model"
    return None


def mismatch_line(path, model, found: WeightsLayout, difference: str) -> str:
    """'PATH holds weights of OTHER, not MODEL (first difference)', naming the other model when the file does."""
    if found.model and found.model != model.name:
        return f"{path} holds weights of {found.model}, not {model.name} ({difference})"
    return f"{path} does not fit {model.name}: {difference} (the file has {found.describe()})"


@contextlib.contextmanager
def quiet_keras() -> Iterator[None]:
    """Keras' Python warnings around a load (the file was checked first; what is left is noise)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def keras_twin(name: str, **kwargs):
    """The keras.applications model that has the same layers as registry variant `name`."""
    if name not in KERAS_APPLICATIONS:
        raise WeightImportError(f"{name} has no keras.applications twin; weights import for: "
                                f"{', '.join(KERAS_APPLICATIONS)}")
    import keras

    return getattr(keras.applications, KERAS_APPLICATIONS[name])(**kwargs)


def _weighted_layers(model) -> dict:
    return {layer.name: layer for layer in model.layers if layer.weights}


def _folds_bias(source, target) -> bool:
    """A keras conv with a bias whose zoo counterpart has none (ResNet): the bias goes into the next BN."""
    return getattr(source, "use_bias", False) and not getattr(target, "use_bias", True)


def _plan(zoo_model, keras_model):
    """Check that the models correspond, layer by layer; return the copies and bias folds to make."""
    problem = f"cannot import keras.applications {keras_model.name} into zoo {zoo_model.name}"
    sources, targets = _weighted_layers(keras_model), _weighted_layers(zoo_model)
    copies, folds = [], []
    for name, source in sources.items():
        target = targets.get(name)
        if target is None:
            raise WeightImportError(f"{problem}: keras layer {name!r} has no counterpart in the zoo model")
        if type(source) is not type(target):
            raise WeightImportError(f"{problem}: layer {name!r} is a {type(source).__name__} in keras, a "
                                    f"{type(target).__name__} in zoo")
        values = source.get_weights()
        if _folds_bias(source, target):
            bn_name = name.removesuffix("_conv") + "_bn"
            bn = targets.get(bn_name)
            if not name.endswith("_conv") or bn is None or bn_name not in sources:
                raise WeightImportError(f"{problem}: the bias of keras conv {name!r} has no BatchNorm "
                                        f"{bn_name!r} to fold into")
            folds.append((bn, values.pop(1)))  # Conv2D weights are [kernel, bias]
        expected = [tuple(w.shape) for w in target.weights]
        found = [tuple(v.shape) for v in values]
        if found != expected:
            raise WeightImportError(f"{problem}: layer {name!r} has weight shapes {found} in keras, {expected} "
                                    f"in zoo")
        if tuple(getattr(source, "strides", ())) != tuple(getattr(target, "strides", ())):
            raise WeightImportError(f"{problem}: conv {name!r} has strides {source.strides} in keras, "
                                    f"{target.strides} in zoo")
        if getattr(source, "epsilon", None) != getattr(target, "epsilon", None):
            raise WeightImportError(f"{problem}: BatchNorm {name!r} has epsilon {source.epsilon} in keras, "
                                    f"{target.epsilon} in zoo")
        copies.append((target, values))
    extra = [name for name in targets if name not in sources]
    if extra:
        raise WeightImportError(f"{problem}: zoo layer {extra[0]!r} has no counterpart in the keras model")
    return copies, folds


def from_keras_applications(zoo_model, keras_model):
    """Copy `keras_model`'s weights into `zoo_model` (in place) and return it.

    Layers are matched by name; every weighted layer must have a counterpart with the same weight shapes (conv
    biases aside, which fold into the following BatchNorm's moving mean) and strides, or WeightImportError
    names the first that does not. Nothing is copied unless everything fits.
    """
    copies, folds = _plan(zoo_model, keras_model)
    for target, values in copies:
        target.set_weights(values)
    for bn, bias in folds:  # after the copies: the BN's keras statistics are in place
        bn.moving_mean.assign(bn.moving_mean.numpy() - bias)
    return zoo_model


def convert_file(name: str, keras_weights, output, *, include_top: bool = True):
    """Build `name`'s keras.applications twin from the weights file `keras_weights` (one you have: keras' own
    ImageNet files or a model.save_weights), convert, and save ours to `output` (a .weights.h5 file), atomically:
    an existing `output` is replaced only by a complete file. `include_top=False` converts a headless (`*_notop`)
    file into the headless zoo model."""
    import zoo
    from .io import atomic_path

    output = os.fspath(output)
    if not output.endswith(".weights.h5"):
        raise WeightImportError(f"the output file name must end in .weights.h5 (Keras' weights format), got "
                                f"{output}")
    if not os.path.isfile(keras_weights):
        raise FileNotFoundError(f"keras weights file not found: {keras_weights}")
    twin = keras_twin(name, weights=None, include_top=include_top)
    problem = (f"cannot load {keras_weights} into keras.applications.{KERAS_APPLICATIONS[name]}"
               f"(include_top={include_top})")
    hint = "; for a *_notop file use include_top=False (--no-include-top)" if include_top else ""
    found = file_layout(keras_weights)
    difference = first_difference(model_layout(twin), found) if found else None
    if difference:
        other = f"it holds weights of {found.model}, not {name}: " if found.model and found.model != name else ""
        notop = hint if include_top and "'predictions'" in difference and not other else ""
        raise WeightImportError(f"{problem}: {other}{difference}{notop}")
    try:
        with quiet_keras():
            twin.load_weights(os.fspath(keras_weights))
    except Exception as e:  # h5/shape errors from keras: one line, with the likely fix
        reason = " ".join(str(e).split()) or type(e).__name__
        raise WeightImportError(f"{problem}: {reason}{hint}") from None
    model = from_keras_applications(zoo.build(name, include_top=include_top), twin)
    with atomic_path(output) as tmp:
        model.save_weights(tmp)
    return model
