"""`zoo.evaluate`: top-1/top-5 accuracy and loss of weights, fed the images those weights expect.

    zoo.evaluate("lenet5", "fashion_mnist", dataset="fashion_mnist_sample")   # a tag: the shipped weights
    zoo.evaluate("resnet50", "imagenet")              # keras.applications' file, its caffe preprocessing (BGR)
    zoo.evaluate("lenet5", "runs/x/model.weights.h5")  # a run's file: exactly what the run reported

The weights are resolved as zoo.build and `zoo predict` resolve them (zoo.pretrained.resolve: a tag, MODEL.TAG,
"imagenet", a path; a run folder holding model.weights.h5 as well), and the evaluation stream is made from their
Preprocessing (size, resize and crop or fit-and-pad, channel order, mean/std), never from another convention's:
named weights bring theirs, a run's file the one its training pipeline used (its config.json; the run's recipe
and input size too). Only a bare file, which says nothing about itself, is fed the registry's evaluation
protocol on the dataset asked for, as `zoo train` would.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..data.folder import naming_damaged_images
from ..io import quiet_stderr
from ..registry import get_spec
from . import config as config_module
from .config import Run, RunConfig, TrainError
from .options import OptionError, RunOptions

__all__ = ["evaluate", "EvalResult", "Evaluation", "prepare"]

# What a run folder given as --weights stands for: its best-validation checkpoint, else (a run that did not
# validate) its last epoch's weights (rundir.RunDir.eval_weights says which, for the CLI's line)
RUN_WEIGHTS = ("best.weights.h5", "model.weights.h5", "model.keras")


@dataclass
class EvalResult:
    model: str
    dataset: str
    split: str
    weights: str
    top1: float
    top5: Optional[float]
    loss: float
    examples: int
    image_size: int
    seconds: float
    images_per_s: float
    preprocessing: str = ""  # how the images were prepared (Preprocessing.describe(), or the registry protocol)
    committed_top1: Optional[float] = None  # the weights entry's measured top-1 (percent) on this split, if any
    protocol: str = "center"  # the test protocol (zoo/training/protocols.py) and its views per image
    views: int = 1
    mean: str = "channel"  # what was subtracted: the per-channel mean, or the training images' mean image
    classes: str = ""  # how the weights' classes met the dataset's labels, where they are not simply the same list


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation reads and feeds: the run (model, dataset, recipe, input size), the resolved weights,
    the split and its size, and the Preprocessing the batches are made with (None: the registry's protocol)."""

    run: Run
    weights: object  # zoo.pretrained.Weights
    split: str
    examples: int
    preprocessing: object = None  # zoo.preprocess.Preprocessing
    protocol: str = "center"  # zoo.choices.EVAL_PROTOCOLS, checked against the run and preprocessing
    mean: str = "channel"  # zoo.choices.MEAN_SUBTRACTIONS
    class_order: Optional[tuple[int, ...]] = None  # the weights' output for each dataset label, where they differ
    classes_note: str = ""  # EvalResult.classes

    def single_view(self):
        """The Preprocessing of one view: the weights', else the registry protocol's (the pipeline's own)."""
        from ..pretrained import pipeline_preprocessing

        config = self.run.config
        return self.preprocessing or pipeline_preprocessing(self.run.spec, config.dataset, config.image_size)

    def stream(self, batch_size: Optional[int] = None):
        """One deterministic pass over the split, as the weights expect (tf.data or numpy, by backend)."""
        from . import inputs

        return inputs.eval_stream(self.run, self.split, batch_size=batch_size or self.run.config.batch_size,
                                  preprocessing=self.preprocessing)

    def described(self) -> str:
        if self.preprocessing is not None:
            return self.preprocessing.describe()
        return "the registry's evaluation protocol (a bare file says nothing of its preprocessing)"

    def committed_top1(self) -> Optional[float]:
        """The registry's measured top-1 of these named weights on exactly this dataset, split and image count."""
        config = self.run.config
        for measured in self.weights.accuracy if self.weights.tag else []:
            if (measured.dataset, measured.split, measured.examples) == (config.dataset, self.split, self.examples):
                return measured.top1
        return None


def _run_config(weights: Path) -> Optional[dict]:
    path = weights.parent / "config.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def _check_counts(**counts) -> None:
    """`zoo eval`'s counts: None (not given) or a positive whole number; 0 or -1 is a mistake, not 'all'."""
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError(f"--{name.replace('_', '-')} must be a positive whole number, got {value!r}")


def _in_run_folder(weights):
    """A run folder given as the weights: its best.weights.h5, else model.weights.h5, else model.keras; anything
    else as it is."""
    if isinstance(weights, (str, os.PathLike)) and os.path.isdir(weights):
        found = next((Path(weights) / name for name in RUN_WEIGHTS if (Path(weights) / name).is_file()), None)
        if found is None and (Path(weights) / "config.json").is_file():  # a run folder, not finished
            from .rundir import RunDir

            RunDir(weights).eval_weights()  # the one-line error: no finished run's weights, how to go on
        return found or weights  # zoo.pretrained says a folder is not a weights file
    return weights


def _saved_run(spec, weights, dataset, image_size, data_dir, precision, xla) -> Optional[Run]:
    """The run a file came from (its folder's config.json, with the placement options given now), when it is a
    run of this model on the dataset asked for (or none asked)."""
    saved = _run_config(weights.path)
    if not (saved and saved.get("model") == spec.name and dataset in (None, saved.get("dataset"))):
        return None
    config = RunConfig.from_dict(saved)
    if image_size:
        config.image_size = image_size
    if data_dir:
        config.data_dir = str(data_dir)
    if precision:
        config.precision = precision
    if xla is not None:
        config.xla = xla
    from .inputs import require_data

    require_data(config.dataset, config.data_dir)
    return config_module.run_of(config, spec)


def _preprocessing(spec, weights, asked_size: Optional[int]):
    """What the batches are made with: the weights' Preprocessing (None for a bare file: the registry's protocol).
    Named weights are for their input size only; a run's file at another size gets the preprocessing its training
    pipeline would apply at that size."""
    from ..pretrained import pipeline_preprocessing

    if weights.guessed:
        return None
    prep = weights.preprocessing
    if not asked_size or asked_size == prep.size:
        return prep
    if weights.tag:
        raise OptionError(f"--image-size {asked_size}: {weights.name} expects {prep.size}x{prep.size} inputs (its "
                          f"preprocessing: {prep.describe()})")
    return pipeline_preprocessing(spec, weights.dataset, asked_size)


def _check_classes(weights, dataset: str) -> None:
    """Before any data is looked for: weights with N classes are evaluated on a dataset of N classes."""
    from ..data.catalogue import get_dataset

    classes = get_dataset(dataset).num_classes
    if weights.classes_known and weights.classes != classes:
        raise TrainError(f"{weights.name} has {weights.classes} classes ({weights.dataset}); {dataset} has "
                         f"{classes}: evaluate it on a dataset with its classes")


def prepare(name: str, weights, dataset: Optional[str] = None, split: Optional[str] = None,
            batch_size: Optional[int] = None, data_dir=None, image_size: Optional[int] = None,
            recipe: Optional[str] = None, precision: Optional[str] = None, xla: Optional[bool] = None,
            limit: Optional[int] = None, protocol: str = "center", mean: str = "channel") -> Evaluation:
    """Resolve what evaluate() evaluates (no model built, no TensorFlow needed): the weights, the run, the split
    and the preprocessing, and check the test protocol applies. Arguments as evaluate()'s."""
    from ..pretrained import resolve

    _check_counts(batch_size=batch_size, image_size=image_size, limit=limit)
    spec = get_spec(name)
    resolved = resolve(spec, _in_run_folder(weights))
    prep = _preprocessing(spec, resolved, image_size)
    size = prep.size if prep is not None else image_size
    _check_classes(resolved, dataset or (spec.dataset if resolved.guessed else resolved.dataset))
    run = None if resolved.tag else _saved_run(spec, resolved, dataset, size, data_dir, precision, xla)
    if run is None:
        own = None if resolved.guessed else resolved.dataset  # named weights: their dataset by default
        options = RunOptions.of(dataset=dataset or own, recipe=recipe, image_size=size, batch_size=batch_size,
                                data_dir=data_dir, precision=precision, xla=xla, max_steps=1)
        run = config_module.resolve_run(spec, options, evaluating=True)
    split = split or run.config.eval_split
    examples = run.data.num_examples.get(split.split("[")[0])
    if limit:
        split, examples = f"{split}[:{limit}]", min(limit, examples or limit)
    order, note = match_classes(resolved, run.data)
    evaluation = Evaluation(run, resolved, split, int(examples or 0), prep, protocol, mean, order, note)
    _check_protocol(evaluation)
    return evaluation


def match_classes(weights, data) -> tuple[Optional[tuple[int, ...]], str]:
    """(the weights' output index for each of the dataset's labels, or None where they are the same list; a note).
    The same names in another order (an image folder's sorted folder names, pretrained.class_order) are matched by
    name, so the accuracy is the weights' real one; other names are compared by index, said."""
    from ..pretrained import SAME_ORDER, class_order

    if not weights.classes_known:
        return None, ""
    ours, theirs = list(weights.class_names), list(data.class_names)
    order = class_order(ours, theirs)
    if order == SAME_ORDER:
        return None, ""
    if order is not None:
        return order, f"matched by name: the weights' classes in {data.name}'s label order"
    return None, (f"compared by index: {data.name}'s classes ({', '.join(theirs[:3])}, ...) are not the weights' "
                  f"({', '.join(ours[:3])}, ...)")


def _in_label_order(model, order: tuple[int, ...]):
    """`model` with its class outputs taken in the dataset's label order (a permutation of a softmax is one)."""
    import keras

    return keras.Model(model.inputs, keras.ops.take(model.outputs[0], list(order), axis=-1), name=model.name)


def _check_protocol(evaluation: Evaluation) -> None:
    """A one-line error, before any model is built, for a protocol that does not apply here."""
    from . import protocols
    from .inputs import input_path

    if (evaluation.protocol, evaluation.mean) == ("center", "channel"):
        return
    run = evaluation.run
    protocols.check(evaluation.protocol, model=run.spec.name, dataset=run.config.dataset,
                    fixed_size=run.data.fixed_size, prep=evaluation.single_view(), image_shape=run.data.image_shape,
                    numpy_input=input_path() == "numpy", mean=evaluation.mean)


@naming_damaged_images()
def evaluate(name: str, weights, dataset: Optional[str] = None, split: Optional[str] = None,
             batch_size: Optional[int] = None, data_dir=None, image_size: Optional[int] = None,
             recipe: Optional[str] = None, precision: Optional[str] = None, xla: Optional[bool] = None,
             limit: Optional[int] = None, protocol: str = "center", mean: str = "channel") -> EvalResult:
    """Evaluate registry model `name` with `weights` (a tag such as "fashion_mnist" or "imagenet", MODEL.TAG, a
    .weights.h5 / .keras file, a run folder, or a zoo.pretrained.Weights) on `split` (default: the dataset's
    evaluation split, e.g. test) of `dataset` (default: the weights' own, a run's, else the model's), with the
    preprocessing the weights expect. `limit`: only the first N images (a quick check). `protocol`: the test
    protocol (zoo.choices.EVAL_PROTOCOLS: center, 10crop, 144crop, dense, ...; zoo/training/protocols.py); with
    several views per image, `batch_size` counts the model's inputs (views x images). `mean="pixel"`: subtract
    the mean image of the run's training images (cached in the data dir) instead of the per-channel mean."""
    evaluation = prepare(name, weights, dataset=dataset, split=split, batch_size=batch_size, data_dir=data_dir,
                         image_size=image_size, recipe=recipe, precision=precision, xla=xla, limit=limit,
                         protocol=protocol, mean=mean)
    run, config = evaluation.run, evaluation.run.config
    from . import devices, setup

    if config.xla is None:
        with quiet_stderr():  # the first device query prints CUDA's 'failed call to cuInit' on CPU-only machines
            config.xla = devices.default_xla()
    with devices.dtype_policy(config.precision):
        model = setup.build_model(run, for_training=False)
        evaluation.weights.load_into(model)
        if evaluation.class_order is not None:
            model = _in_label_order(model, evaluation.class_order)
        setup.compile_model(model, config, run.recipe, training=False)
    from . import protocols

    start = time.perf_counter()
    if (evaluation.protocol, evaluation.mean) == ("center", "channel"):
        result = model.evaluate(evaluation.stream(batch_size), verbose=0, return_dict=True)
    else:
        result = protocols.evaluate_views(model, evaluation, evaluation.protocol, batch_size, evaluation.single_view(),
                                          mean=evaluation.mean)
    seconds = time.perf_counter() - start
    examples = evaluation.examples
    return EvalResult(model=run.spec.name, dataset=config.dataset, split=evaluation.split,
                      weights=evaluation.weights.name if evaluation.weights.tag else str(evaluation.weights.path),
                      top1=float(result["accuracy"]), top5=float(result["top5"]) if "top5" in result else None,
                      loss=float(result["xent"]), examples=examples, image_size=config.image_size,
                      seconds=seconds, images_per_s=examples / seconds if seconds else 0.0,
                      preprocessing=evaluation.described(), protocol=evaluation.protocol,
                      views=protocols.views_of(evaluation.protocol), mean=evaluation.mean,
                      classes=evaluation.classes_note,
                      committed_top1=evaluation.committed_top1()
                      if (evaluation.protocol, evaluation.mean) == ("center", "channel") else None)
