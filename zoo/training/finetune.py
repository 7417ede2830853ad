"""Fine-tuning: a run that starts from weights instead of a random initialisation.

    zoo train lenet5 --dataset ./digits --weights fashion_mnist                  # the shipped Fashion-MNIST weights
    zoo train lenet5 --dataset ./digits --weights fashion_mnist --freeze-backbone   # train the new head only
    zoo train lenet5 --dataset ./digits --weights fashion_mnist --head-epochs 3     # head alone, then everything
    zoo train resnet50 --dataset ./photos --weights imagenet --classes 5

What happens (the `finetune` recipe of registry.yaml unless --recipe says otherwise):
- The weights (a tag of the model's named weights, "imagenet", or a .weights.h5 / .keras file, a run's or not)
  are resolved by zoo.pretrained, as everywhere, and read layer by layer.
- The backbone is what the family contract builds without its head (`include_top=False`: Family.body); every one
  of its layers must be in the weights with the same shapes, else one line names the weights, the model and the
  first layer that differs. The head is the rest (the contract's `head`: the classifier and any dense layers
  before it, GoogLeNet's auxiliary classifiers). It is kept when the weights were trained for the run's classes
  (same count and names: continuing on the same dataset); otherwise every head layer starts afresh, and the
  run's notes (config.json) name them.
- --freeze-backbone: the backbone's layers are not trainable (BatchNorm in inference mode), for the whole run.
- --head-epochs N (or a recipe's `head_epochs`, e.g. registry.yaml's finetune_two_phase; the option wins): the
  two-phase schedule. The backbone's learning rate is 0 for the first N epochs (the head
  learns alone, the backbone's optimizer moments still accumulate, so phase two starts with warm statistics);
  from then on every layer follows the recipe's schedule. One optimizer, one run: checkpoints and --resume work
  at any step. BatchNorm statistics of the backbone keep updating in phase one (unlike --freeze-backbone).
"""

from __future__ import annotations

import functools
import os
from typing import Optional

from .options import RunOptions, TrainError

__all__ = ["FINETUNE_RECIPE", "FinetuneError", "check_options", "head_epochs_of", "recipe_head_note",
           "resolve_weights", "head_classes",
           "backbone_layer_names", "kept_head_order", "start_from", "freeze", "head_first"]

FINETUNE_RECIPE = "finetune"  # registry.yaml: the recipe a run with --weights uses unless --recipe is given


class FinetuneError(TrainError):
    """Weights that cannot start this run; the message names the weights and the model."""


# ---------------------------------------------------------------------------------------------------------------
# Checked when the run is resolved (no TensorFlow)


def check_options(options: RunOptions, epochs: float, recipe=None) -> None:
    """The fine-tuning options fit together and with the run's length; a recipe's `head_epochs` (used with
    --weights, unless --head-epochs is given) is checked as the option is, naming the recipe."""
    if options.weights is None:
        for given, flag in ((options.freeze_backbone, "--freeze-backbone"), (options.head_epochs, "--head-epochs")):
            if given:
                raise FinetuneError(f"{flag} needs --weights (the backbone to start from)")
        return
    head_epochs, source = head_epochs_of(options, recipe)
    if options.freeze_backbone and head_epochs:
        raise FinetuneError(f"--freeze-backbone and {source} exclude each other: --freeze-backbone trains the "
                            "head alone for the whole run, head epochs for its first epochs"
                            + ("" if options.head_epochs else "; choose another --recipe"))
    if head_epochs and head_epochs >= epochs:
        raise FinetuneError(f"{source} leaves nothing of the {epochs:g}-epoch run for the second phase (every "
                            "layer); give fewer --head-epochs or more --epochs")


def head_epochs_of(options: RunOptions, recipe=None) -> tuple[Optional[float], str]:
    """(the run's head epochs, where they come from): --head-epochs, else the recipe's `head_epochs` when the run
    starts from --weights (a run from scratch has no backbone to hold: every layer trains from the start)."""
    if options.head_epochs:
        return options.head_epochs, f"--head-epochs {options.head_epochs:g}"
    if options.weights and recipe is not None and recipe.head_epochs:
        return recipe.head_epochs, f"recipe {recipe.name!r}'s head_epochs {recipe.head_epochs:g}"
    return None, ""


def recipe_head_note(options: RunOptions, recipe) -> Optional[str]:
    """Why a recipe's head_epochs do not apply to this run, when they do not."""
    if recipe.head_epochs and not options.weights:
        return (f"recipe {recipe.name!r}'s head_epochs ({recipe.head_epochs:g}) apply when fine-tuning (--weights); "
                "from scratch every layer trains from the start")
    return None


def resolve_weights(spec, reference: str):
    """zoo.pretrained.Weights for what --weights names (a tag, imagenet, a file): the one-line errors of
    zoo.pretrained (unknown tag, missing file, weights of another model)."""
    from ..data import folder
    from ..pretrained import resolve

    if os.path.isfile(reference):
        folder.register_run(reference)  # a run on an image folder: its dataset name stands for the folder again
    return resolve(spec, reference)


def head_classes(options: RunOptions, dataset_classes: int, dataset: str) -> int:
    """The new head's width: --classes (not fewer than the dataset's classes), else the dataset's."""
    if options.classes is None:
        return dataset_classes
    if options.classes < dataset_classes:
        raise FinetuneError(f"--classes {options.classes} is fewer than the {dataset_classes} classes of {dataset}")
    return options.classes


# ---------------------------------------------------------------------------------------------------------------
# The backbone, by the family contract


@functools.lru_cache(maxsize=16)
def _backbone(model: str, input_shape: tuple) -> frozenset:
    from ..models import build_spec
    from ..registry import get_spec

    headless = build_spec(get_spec(model), include_top=False, input_shape=input_shape)
    return frozenset(layer.name for layer in headless.layers)


def backbone_layer_names(model_name: str, model) -> frozenset:
    """The names of the backbone's layers of `model` (a build of registry variant `model_name`): those of the
    variant built without its head at the same input shape (Family.build with include_top=False runs the
    family's body alone)."""
    return _backbone(model_name, tuple(model.input_shape[1:]))


# ---------------------------------------------------------------------------------------------------------------
# Reading the weights layer by layer


def _h5_layers(path: str) -> Optional[dict]:
    """{layer name: [arrays in the layer's own order]} of a Keras 3 .weights.h5 file (layers/<key>/vars/<i>, each
    vars group naming its layer; nested layers count as their top-level layer); None for any other file."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError:
        return None
    with f:
        if "layers" not in f:
            return None
        found: dict = {}

        def visit(group, owner):
            for key in group:
                sub = group[key]
                if not hasattr(sub, "keys"):
                    continue
                name = owner or (sub["vars"].attrs.get("name") if "vars" in sub else None) or key
                if "vars" in sub and len(sub["vars"]):
                    variables = sub["vars"]
                    found.setdefault(str(name), []).extend(variables[str(i)][()] for i in range(len(variables)))
                if "layers" in sub:
                    visit(sub["layers"], name)

        visit(f["layers"], None)
        return found


def _layers_of(model) -> dict:
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def _weights_by_layer(weights, run, same_head: bool) -> dict:
    """The weights' arrays by layer name. A Keras 3 .weights.h5 is read as it is (no model needed, whatever its
    head); keras.applications' files are mapped through a model of the variant (headless unless the head is kept);
    .keras files are loaded whole."""
    import keras

    path = os.fspath(weights.path)
    if not weights.keras_mapped and path.endswith(".h5"):
        found = _h5_layers(path)
        if found is not None:
            return found
    if path.endswith(".keras"):
        try:
            return _layers_of(keras.saving.load_model(path, compile=False))
        except Exception as e:  # noqa: BLE001 - a zip or deserialisation error: the file is unusable either way
            raise FinetuneError(f"cannot read {path}: {' '.join(str(e).split())[:200]}") from None
    from ..pretrained import resolve

    top = same_head or not weights.keras_mapped
    source = resolve(run.spec, weights, include_top=top)
    size = weights.preprocessing.size
    model = source.build(input_shape=(size, size, run.channels), classifier_activation=None)
    return _layers_of(model)


def _shapes(arrays) -> list:
    return [tuple(a.shape) for a in arrays]


def kept_head_order(weights, config, dataset_names) -> Optional[tuple[int, ...]]:
    """Whether the weights' head can stay, and how: None when it cannot (it was trained for other classes: another
    count, or other names where both are known), else pretrained.class_order's answer: SAME_ORDER, or the weights'
    output for each of the run's labels (the same classes in another order, an image folder's sorted names), which
    the classifier's columns are then put in. A new head for another dataset: fine-tuning LeNet-5 from
    Fashion-MNIST onto digits, re-initialising fc1 and fc2 with the classifier gains 9 points (docs/training.md),
    and a head kept for another dataset's classes starts from confident wrong answers."""
    from ..pretrained import SAME_ORDER, class_order

    if weights.classes != config.classes:
        return None
    if not weights.classes_known:
        return SAME_ORDER
    return class_order(list(weights.class_names), list(dataset_names))


def _columns_in_label_order(arrays: list, order: tuple[int, ...]) -> list:
    """A classifier's kernel and bias with its class outputs (their last axis) in the run's label order."""
    return [a[..., list(order)] for a in arrays] if order else arrays


def start_from(model, run) -> list[str]:
    """Load the run's --weights into `model` (the run's freshly built training model): the backbone whole; the
    head too when it is the run's (kept_head_order; its classifier's outputs put in the run's label order where the
    same classes come in another), else every head layer keeps its fresh initialisation. Returns the notes for
    config.json."""
    config = run.config
    weights = resolve_weights(run.spec, config.weights)
    order = kept_head_order(weights, config, run.data.class_names)
    keep_head = order is not None
    stored = _weights_by_layer(weights, run, keep_head)
    backbone = backbone_layer_names(run.spec.name, model)
    classifiers = set(model.output_names)  # the layers whose outputs are the classes (GoogLeNet's aux ones too)
    fresh, loaded = [], 0
    for layer in model.layers:
        if not layer.weights:
            continue
        ours = [tuple(w.shape) for w in layer.weights]
        theirs = stored.get(layer.name)
        fits = theirs is not None and _shapes(theirs) == ours
        if layer.name in backbone and not fits:
            there = _shapes(theirs) if theirs is not None else "no such layer"
            raise FinetuneError(f"{weights.name}: its backbone does not fit {run.spec.name} at "
                                f"{config.image_size}x{config.image_size}x{run.channels}: layer {layer.name!r} has "
                                f"{there} in the weights, {ours} in the model")
        if layer.name in backbone:
            layer.set_weights(theirs)
            loaded += 1
        elif keep_head and fits:
            layer.set_weights(_columns_in_label_order(theirs, order) if layer.name in classifiers else theirs)
            loaded += 1
        else:
            fresh.append(layer.name)
    why = ("its head is for the run's classes" + (", its outputs put in the run's label order by class name"
                                                   if order else "") if keep_head else
           f"its head ({weights.classes} classes of {weights.dataset}) replaced by a new one for {config.classes}")
    head = f": {', '.join(fresh)} initialised afresh" if fresh else ""
    return [f"started from {weights.name}: {loaded} layers loaded; {why}{head}"]


def freeze(model, run) -> list[str]:
    """--freeze-backbone: the backbone's layers are not trainable (BatchNorm layers then run in inference mode)."""
    backbone = backbone_layer_names(run.spec.name, model)
    frozen = [layer for layer in model.layers if layer.name in backbone and layer.weights]
    for layer in frozen:
        layer.trainable = False
    return [f"backbone frozen ({len(frozen)} layers): only the head trains"]


def head_first(optimizer, model, config):
    """--head-epochs N: the optimizer's learning rate is 0 for the backbone's variables until step N * steps per
    epoch (its moments still accumulate), then the schedule's for every variable. The optimizer's class is
    swapped for a subclass of itself that gates `update_step`, so nothing else (checkpoints, loss scaling, the
    schedule) changes."""
    from keras import ops

    backbone = backbone_layer_names(config.model, model)
    variables = [v for layer in model.layers if layer.name in backbone for v in layer.trainable_weights]
    switch = int(round(config.head_epochs * config.steps_per_epoch))
    base = type(optimizer)

    class HeadFirst(base):
        def update_step(self, gradient, variable, learning_rate):
            keys = self.__dict__.get("_zoo_backbone_keys")
            if keys is None:
                keys = self.__dict__["_zoo_backbone_keys"] = {self._var_key(v) for v in variables}
            if self._var_key(variable) in keys:  # decided once, when the step is traced
                learning_rate = learning_rate * ops.cast(ops.greater_equal(self.iterations, switch),
                                                         learning_rate.dtype)
            return super().update_step(gradient, variable, learning_rate)

    HeadFirst.__name__ = HeadFirst.__qualname__ = f"HeadFirst{base.__name__}"
    optimizer.__class__ = HeadFirst
    return [f"two phases: the head alone for {config.head_epochs:g} epochs ({switch} steps), then every layer"]
