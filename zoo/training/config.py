"""A run's resolved configuration: the registry's defaults (model -> dataset -> recipe) plus the caller's
overrides, checked and turned into concrete numbers (image size, global batch, scaled lr, steps).

No TensorFlow here: every bad request is caught, with a one-line message, before anything heavy starts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from .. import registry as registry_module
from ..data import catalogue
from ..errors import ZooError

__all__ = ["TrainError", "RunConfig", "resolve", "resolve_image_size", "scaled_lr", "check_replicas",
           "overrides_conflict", "PRECISIONS", "STRATEGIES", "DEFAULTS", "MAX_UPSCALE"]

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")
# Resizing a dataset's images by more than this factor (28x28 Fashion-MNIST to 224x224 for VGG) costs 64x the
# compute for no information: refused unless the caller asks for that size explicitly.
MAX_UPSCALE = 4
# Speed knobs. xla None = auto: on with a GPU, off on a CPU, where XLA's convolutions are 2-4x slower than
# oneDNN's (measured on a 2-core AMD EPYC, LeNet-5 and ResNet-20 training, interleaved in one process).
DEFAULTS = {"precision": "float32", "xla": None, "steps_per_execution": 1, "strategy": "auto", "seed": 0}


class TrainError(ZooError, ValueError):
    """A training or evaluation request that cannot run as asked."""


@dataclass
class RunConfig:
    """Everything that defines a run (saved as config.json); `identity()` is what a resume must match."""

    model: str
    dataset: str
    recipe: str
    recipe_details: dict
    image_size: int
    classes: int
    train_split: str
    validation_split: Optional[str]
    holdout: Optional[int]
    eval_split: str
    train_examples: int
    batch_size: int
    lr: float
    lr_rule: str
    weight_decay: float
    weight_decay_mode: str
    epochs: float
    steps_per_epoch: int
    total_steps: int
    seed: int
    precision: str
    xla: Optional[bool]  # None until the run knows its device (auto)
    steps_per_execution: int
    strategy: str
    data_dir: Optional[str] = None
    notes: list = field(default_factory=list)

    # Speed and placement knobs may change between an interrupted run and its resumption; the rest may not.
    VOLATILE = ("xla", "steps_per_execution", "strategy", "data_dir", "notes")

    def identity(self) -> dict:
        return {k: v for k, v in self.to_dict().items() if k not in self.VOLATILE}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def scaled_lr(recipe_lr: float, recipe_batch: int, batch_size: int) -> float:
    """The linear scaling rule (Goyal et al. 2017): the recipe's lr is for its batch; k times the batch, k times
    the lr."""
    return recipe_lr * batch_size / recipe_batch


def check_replicas(batch_size: int, replicas: int) -> None:
    """The global batch is split evenly across the replicas (devices x workers)."""
    if batch_size % replicas:
        raise TrainError(f"batch size {batch_size} does not divide across {replicas} replicas; use a multiple of "
                         f"{replicas}")


def resolve_image_size(spec, recipe, image_shape, override: Optional[int] = None) -> tuple[int, Optional[str]]:
    """The square input side to train at, and a note when it is not the model's own size.

    `override` (the caller's) wins, then the recipe's `image_size`, then the model's input size; a model size far
    larger than the dataset's images (more than MAX_UPSCALE times) falls back to the smallest size the model
    accepts that holds the images (at least 32)."""
    name, native, smallest = spec.name, image_shape[0], spec.input.min_size
    if native and smallest > MAX_UPSCALE * native:
        raise TrainError(f"{name} needs at least {smallest}x{smallest} input, over {MAX_UPSCALE}x the "
                         f"{native}x{native} images of this dataset; train it on a dataset with larger images")
    size = override or recipe.image_size or spec.input.size
    note = None
    if override is None and recipe.image_size is None and native and size > MAX_UPSCALE * native:
        fallback = max(smallest, 32, -(-native // 16) * 16)
        note = (f"image size {fallback}: {name}'s {size}x{size} is over {MAX_UPSCALE}x the {native}x{native} "
                f"images (--image-size sets it)")
        size = fallback
    if size < smallest:
        raise TrainError(f"{name}: input {size}x{size} is too small; the minimum input size is "
                         f"{smallest}x{smallest}")
    return size, note


def _length(recipe, steps_per_epoch: int, epochs: Optional[float], max_steps: Optional[int]) -> tuple[float, int]:
    """(epochs, total steps): explicit max_steps, else explicit epochs, else the recipe's max_steps, else its
    epochs."""
    if max_steps is not None:
        steps = max_steps
    elif epochs is not None:
        steps = int(round(epochs * steps_per_epoch))
    elif recipe.max_steps is not None:
        steps = recipe.max_steps
    else:
        steps = int(round(recipe.epochs * steps_per_epoch))
    steps = max(1, steps)
    return steps / steps_per_epoch, steps


def _positive(name: str, value) -> None:
    if value is not None and value <= 0:
        raise TrainError(f"--{name.replace('_', '-')} must be positive, got {value}")


def resolve(name: str, dataset: Optional[str] = None, recipe: Optional[str] = None, *,
            epochs: Optional[float] = None, max_steps: Optional[int] = None,
            steps_per_epoch: Optional[int] = None, batch_size: Optional[int] = None, lr: Optional[float] = None,
            seed: Optional[int] = None, precision: Optional[str] = None, xla: Optional[bool] = None,
            steps_per_execution: Optional[int] = None, strategy: Optional[str] = None,
            image_size: Optional[int] = None, data_dir: Optional[str] = None) -> RunConfig:
    """The run's configuration from the registry and the overrides (None: the default)."""
    for key, value in [("epochs", epochs), ("max_steps", max_steps), ("steps_per_epoch", steps_per_epoch),
                       ("batch_size", batch_size), ("lr", lr), ("steps_per_execution", steps_per_execution),
                       ("image_size", image_size)]:
        _positive(key, value)
    reg = registry_module.registry()
    spec = reg.get(name)
    dataset = dataset or spec.dataset
    recipe_name = recipe or spec.recipe_for(dataset)
    rec = reg.recipe(recipe_name)
    info = catalogue.dataset_info(dataset, holdout=rec.validation)
    catalogue.require_ready(dataset, data_dir)  # now, not after the model is built
    precision = precision or DEFAULTS["precision"]
    if precision not in PRECISIONS:
        raise TrainError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    strategy = strategy or DEFAULTS["strategy"]
    if strategy not in STRATEGIES:
        raise TrainError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")

    size, size_note = resolve_image_size(spec, rec, info.image_shape, image_size)
    # A recipe that holds out validation images trains on the rest and validates every epoch; otherwise all
    # training images are used and the test split is touched only once, at the end.
    validate = bool(rec.validation)
    train_split = "train" if validate else "train_full"
    examples = info.num_examples[train_split]
    batch = batch_size or rec.batch_size
    if batch > examples:
        raise TrainError(f"batch size {batch} is larger than the {examples} training images of {dataset}")
    per_epoch = steps_per_epoch or examples // batch
    steps_per_execution = steps_per_execution or DEFAULTS["steps_per_execution"]
    if per_epoch % steps_per_execution:  # Keras runs whole executions: make an epoch a whole number of them
        per_epoch = -(-per_epoch // steps_per_execution) * steps_per_execution
    run_epochs, total = _length(rec, per_epoch, epochs, max_steps)

    if lr is not None:
        peak, rule = lr, f"--lr {lr:g} as given (no batch scaling)"
    else:
        peak = scaled_lr(rec.lr, rec.batch_size, batch)
        rule = f"recipe lr {rec.lr:g} at batch {rec.batch_size} x {batch}/{rec.batch_size}"
    if rec.weight_decay == 0:
        decay_mode = "none"
    elif rec.optimizer == "adamw":
        decay_mode = "decoupled"  # AdamW: w -= lr * wd * w, apart from the gradient (Loshchilov & Hutter)
    else:
        decay_mode = "l2"  # the papers' SGD weight decay: wd * w added to the gradient of every kernel

    return RunConfig(
        model=spec.name, dataset=dataset, recipe=recipe_name, recipe_details=rec.model_dump(exclude_none=True),
        image_size=size, classes=info.num_classes, train_split=train_split,
        validation_split="validation" if validate else None, holdout=info.validation_holdout if validate else None,
        eval_split=info.eval_split, train_examples=examples, batch_size=batch, lr=peak, lr_rule=rule,
        weight_decay=rec.weight_decay, weight_decay_mode=decay_mode, epochs=run_epochs,
        steps_per_epoch=per_epoch, total_steps=total,
        seed=DEFAULTS["seed"] if seed is None else seed, precision=precision,
        xla=DEFAULTS["xla"] if xla is None else bool(xla), steps_per_execution=steps_per_execution,
        strategy=strategy, data_dir=str(data_dir) if data_dir else None,
        notes=[size_note] if size_note else [])


def overrides_conflict(saved: RunConfig, given: dict[str, Any]) -> Optional[str]:
    """On --resume: the first explicitly given option that differs from the saved run's, as 'name: a vs b'."""
    mapping = {"dataset": "dataset", "recipe": "recipe", "batch_size": "batch_size", "seed": "seed",
               "precision": "precision", "image_size": "image_size", "steps_per_epoch": "steps_per_epoch"}
    for key, attr in mapping.items():
        value = given.get(key)
        if value is not None and value != getattr(saved, attr):
            return f"{key} {getattr(saved, attr)!r} there, {value!r} asked"
    if given.get("lr") is not None and not math.isclose(given["lr"], saved.lr, rel_tol=1e-9):
        return f"lr {saved.lr:g} there, {given['lr']:g} asked"
    if given.get("max_steps") is not None and given["max_steps"] != saved.total_steps:
        return f"max_steps {saved.total_steps} there, {given['max_steps']} asked"
    if given.get("epochs") is not None and not math.isclose(given["epochs"], saved.epochs, rel_tol=1e-9):
        return f"epochs {saved.epochs:g} there, {given['epochs']:g} asked"
    return None
