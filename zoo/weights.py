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

import os

from .errors import ZooError
from .registry import Registry, registry

__all__ = ["KERAS_APPLICATIONS", "WeightImportError", "from_keras_applications", "keras_twin", "convert_file"]


def keras_twins(reg: Registry) -> dict[str, str]:
    """Registry name -> keras.applications constructor of the same network (same layers, same names): the
    entries' `keras_twin` in registry.yaml, in historic order (by the paper's year; VGG, ResNet, DenseNet)."""
    twinned = [name for name in reg.names() if reg.models[name].keras_twin]
    return {name: reg.models[name].keras_twin for name in sorted(twinned, key=lambda n: reg.models[n].paper.year)}


KERAS_APPLICATIONS = keras_twins(registry())  # read once, at import (zoo/bench.py imports it as KERAS_TWINS)


class WeightImportError(ZooError, ValueError):
    """keras.applications weights that do not fit a zoo model; the message names both and the first mismatch."""


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
    ImageNet files or a model.save_weights), convert, and save ours to `output` (a .weights.h5 file).
    `include_top=False` converts a headless (`*_notop`) file into the headless zoo model."""
    import zoo

    output = os.fspath(output)
    if not output.endswith(".weights.h5"):
        raise WeightImportError(f"the output file name must end in .weights.h5 (Keras' weights format), got "
                                f"{output}")
    if not os.path.isfile(keras_weights):
        raise FileNotFoundError(f"keras weights file not found: {keras_weights}")
    try:
        twin = keras_twin(name, weights=os.fspath(keras_weights), include_top=include_top)
    except WeightImportError:
        raise
    except Exception as e:  # h5/shape errors from keras: one line, with the likely fix
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        hint = "; for a *_notop file use include_top=False (--no-include-top)" if include_top else ""
        raise WeightImportError(f"cannot load {keras_weights} into keras.applications."
                                f"{KERAS_APPLICATIONS[name]}(include_top={include_top}): {reason}{hint}") from None
    model = from_keras_applications(zoo.build(name, include_top=include_top), twin)
    model.save_weights(output)
    return model
