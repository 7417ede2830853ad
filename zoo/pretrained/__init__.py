"""Named weights: a registry variant's `weights:` entries (zoo/pretrained/entry.py), the files this folder ships,
and keras.applications' ImageNet files read from Keras' own cache.

    w = zoo.get_weights("lenet5.fashion_mnist")     # the metadata, the sha256-checked file, the preprocessing
    model = w.build()                               # == zoo.build("lenet5", weights="fashion_mnist")
    top = w.decode(model.predict(w.preprocess(images)), top=3)

    zoo.build("resnet50", weights="imagenet")       # $KERAS_HOME/models/resnet50_weights_tf_dim_ordering_tf_kernels.h5
    zoo.build("lenet5", weights="runs/x/model.weights.h5")   # a path, with the metadata of the run it came from

`resolve(spec, weights)` turns what a caller passes (a tag, a path, "imagenet") into a `Weights`; zoo.models.build
calls it, so every entry point (Python, `zoo predict`, `zoo export`) loads weights one way. Nothing downloads.
This module imports no TensorFlow until weights are loaded into a model or images prepared.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from .. import registry as registry_module
from ..errors import ZooError
from ..preprocess import GREY_WEIGHTS, Preprocessing
from .entry import Measured, WeightsEntry

__all__ = ["Weights", "WeightsEntry", "Measured", "Prediction", "resolve", "get_weights", "WeightsError",
           "UnknownWeightsError", "ChecksumError", "PRETRAINED_DIR", "keras_models_dir", "pipeline_preprocessing",
           "sha256_of", "class_order", "SAME_ORDER"]

PRETRAINED_DIR = Path(__file__).resolve().parent  # the shipped .weights.h5 files live beside this module
IMAGENET = "imagenet"
KERAS_CLASS_INDEX = "imagenet_class_index.json"  # what keras.applications' decode_predictions caches


class WeightsError(ZooError, ValueError):
    """Weights that cannot be used as asked; the message names the weights, the file and the model."""


class UnknownWeightsError(ZooError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ChecksumError(WeightsError):
    """A shipped file whose sha256 is not the registry's (a damaged or replaced file)."""


class WeightsNotFoundError(ZooError, FileNotFoundError):
    pass


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    probability: float

    def as_dict(self) -> dict:
        return {"label": self.label, "index": self.index, "probability": self.probability}


@dataclass(frozen=True)
class Weights:
    """Weights ready to load: the file, and what the model needs to use them (classes, preprocessing)."""

    model: str  # the registry variant
    tag: Optional[str]  # None: a file that is not a registry entry
    path: Path
    dataset: str
    preprocessing: Preprocessing
    classes: int
    entry: Optional[WeightsEntry] = None
    include_top: bool = True
    classes_known: bool = True  # False: a bare file without a run folder (its class count is the model's guess)
    guessed: bool = False  # a bare file (no run folder, no shipped file's sha256): its dataset, classes and
    #                        preprocessing are the model's defaults, not facts about the file
    recorded_names: Optional[tuple[str, ...]] = None  # a run's own class names (a run on an image folder)

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}" if self.tag else f"{self.model} ({self.path})"

    @property
    def keras_mapped(self) -> bool:
        """keras.applications' file: built into Keras' twin, mapped in memory (zoo.weights)."""
        return self.entry is not None and self.entry.source == "keras_applications"

    @property
    def class_names(self) -> list[str]:
        if self.recorded_names and len(self.recorded_names) == self.classes:
            return list(self.recorded_names)
        return class_names(self.dataset, self.classes)

    @property
    def accuracy(self) -> list[Measured]:
        return list(self.entry.accuracy) if self.entry else []

    def preprocess(self, images):
        """uint8 or float 0-255 images (numpy or tensors, any size, grey or colour) -> the model's input."""
        return self.preprocessing(images)

    def decode(self, probabilities, top: int = 5) -> list[list[Prediction]]:
        """The `top` most probable classes of each row of `probabilities` (B, classes) or (classes,), best first;
        `top` above the class count gives them all."""
        import numpy as np

        scores = np.asarray(probabilities, dtype=np.float64)
        scores = scores[None] if scores.ndim == 1 else scores
        if scores.ndim != 2 or scores.shape[1] != self.classes:
            raise WeightsError(f"{self.name}: expected probabilities of shape (batch, {self.classes}), got "
                               f"{np.shape(probabilities)}")
        names, k = self.class_names, max(1, min(int(top), self.classes))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [[Prediction(names[i], int(i), float(row[i])) for i in best] for row, best in zip(scores, order)]

    def head_classes(self, include_top: bool, asked: Optional[int]) -> Optional[int]:
        """The classifier width to build for these weights: theirs; a different one asked for is an error."""
        if not include_top or not self.classes_known:
            return asked if asked is not None else self.classes
        if asked is not None and asked != self.classes:
            raise WeightsError(f"{self.name} has {self.classes} classes ({self.dataset}); the model was asked for "
                               f"{asked} (build with classes={self.classes}, or include_top=False)")
        return self.classes

    def build(self, **kwargs):
        """The model with these weights loaded (keyword arguments as zoo.build's). `features_only=True` (with
        `out_indices`) builds the features model of these weights: the classifier's body with its stage outputs,
        the body's layers loaded from the same file (its head skipped)."""
        from ..models import build_spec

        features = kwargs.get("features_only") or "out_indices" in kwargs
        # a features model has no head: these weights' include_top is for the classifier build only
        defaults = {} if features else {"include_top": self.include_top}
        return build_spec(registry_module.get_spec(self.model), **{**defaults, **kwargs, "weights": self})

    def load_into(self, model) -> None:
        """Load the weights into `model` (built by zoo.build for this variant), with one-line errors."""
        if self.keras_mapped:
            _map_keras_applications(self, model)
            return
        from ..models.common import load_weights

        load_weights(model, self.path)


# ---------------------------------------------------------------------------------------------------------------
# Resolving what the caller passed


def get_weights(reference: str, *, include_top: bool = True) -> Weights:
    """`zoo.get_weights("lenet5.fashion_mnist")`: MODEL.TAG (or MODEL.imagenet) -> Weights."""
    model, dot, tag = str(reference).partition(".")
    if not dot or not tag:
        raise UnknownWeightsError(f"weights {reference!r}: expected MODEL.TAG, e.g. 'lenet5.fashion_mnist' "
                                  f"(`zoo list --weights` lists them)")
    return resolve(registry_module.get_spec(model), tag, include_top=include_top)


def resolve(spec, weights, *, include_top: bool = True) -> Weights:
    """What `weights=` names -> Weights: a Weights (as is), a tag of `spec` ("fashion_mnist", "imagenet") or
    MODEL.TAG, or a path to a .weights.h5 / .keras file (a shipped file is its entry, found by sha256; a run's
    file takes its run folder's config.json: dataset, classes, the preprocessing that run's pipeline fed it)."""
    spec = registry_module.get_spec(spec) if isinstance(spec, str) else spec
    if isinstance(weights, Weights):
        if weights.include_top == include_top:
            return weights
        if weights.tag is None:
            return replace(weights, include_top=include_top)
        weights = weights.tag  # the headless file of keras' weights is another file
    if not isinstance(weights, (str, os.PathLike)):
        raise WeightsError(f"{spec.name}: weights must be None, a tag ({_tags(spec)}) or a path to a weights file, "
                           f"got {weights!r}")
    text = os.fspath(weights)
    if text in spec.weights:
        return _named(spec, text, spec.weights[text], include_top)
    if os.path.isdir(text):
        return _from_path(spec, _run_folder_weights(Path(text), spec), include_top)
    if os.path.isfile(text):
        return _from_path(spec, Path(text), include_top)
    if _looks_like_path(text):
        raise WeightsNotFoundError(f"weights file not found: {text}")
    model, dot, tag = text.partition(".")
    if dot and model == spec.name and tag in spec.weights:
        return _named(spec, tag, spec.weights[tag], include_top)
    if dot and model != spec.name and model in registry_module.registry().models:
        raise WeightsError(f"{text} are weights of {model}, not {spec.name} (weights of {spec.name}: "
                           f"{_tags(spec)})")
    raise UnknownWeightsError(f"unknown weights {text!r} for {spec.name} (available: {_tags(spec)})")


def _tags(spec) -> str:
    return ", ".join(spec.weights) or "none; pass a weights file"


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith((".h5", ".keras"))


def _named(spec, tag: str, entry: WeightsEntry, include_top: bool) -> Weights:
    if entry.source == "shipped":
        path = _checked(PRETRAINED_DIR / entry.file, entry, f"{spec.name}.{tag}")
    elif entry.source == "keras_applications":
        path = _keras_file(spec, entry, include_top)
    else:
        raise WeightsNotFoundError(f"{spec.name}.{tag} is not shipped (its file is over the package's size "
                                   f"limit); make it with `{entry.train_command}` and pass the run's "
                                   f"model.weights.h5 as weights=PATH")
    return Weights(spec.name, tag, path, entry.dataset, entry.preprocessing, entry.classes, entry, include_top)


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked(path: Path, entry: WeightsEntry, name: str) -> Path:
    if not path.is_file():
        raise WeightsNotFoundError(f"{name}: the shipped file {path} is missing (a broken install? reinstall the "
                                   f"package)")
    found = sha256_of(path)
    if found != entry.sha256:
        raise ChecksumError(f"{path}: sha256 {found} is not {name}'s {entry.sha256} (a damaged or replaced file)")
    return path


# -- keras.applications' cache

def keras_models_dir() -> Path:
    """Where keras.utils.get_file caches keras.applications' weights: $KERAS_HOME/models, default ~/.keras/models."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def keras_file_name(entry: WeightsEntry, include_top: bool) -> str:
    """Keras' file name: the entry's, or its headless `*_notop.h5` (keras' own naming)."""
    return entry.file if include_top else entry.file.removesuffix(".h5") + "_notop.h5"


def _keras_file(spec, entry: WeightsEntry, include_top: bool) -> Path:
    path = keras_models_dir() / keras_file_name(entry, include_top)
    if not path.is_file():
        call = f"keras.applications.{spec.keras_twin}(weights='imagenet'{'' if include_top else ', include_top=False'})"
        raise WeightsNotFoundError(f"{spec.name}.imagenet needs {path} (Keras' own file; zoo downloads nothing): "
                                   f"on a machine online run `python -c \"import keras; {call}\"` and copy "
                                   f"~/.keras/models/{path.name} to {path.parent}/")
    return path


def _map_keras_applications(weights: Weights, model) -> None:
    """Keras' file into Keras' twin (layout checked first: one line naming both models), then into `model` by
    layer name with the conv biases folded into BatchNorm (zoo.weights.from_keras_applications)."""
    from ..weights import (WeightImportError, file_layout, first_difference, from_keras_applications, keras_twin,
                           model_layout, quiet_keras)

    shape = tuple(model.input_shape[1:])
    twin = keras_twin(weights.model, weights=None, include_top=weights.include_top,
                      **({} if weights.include_top else {"input_shape": shape}))
    found = file_layout(weights.path)
    difference = first_difference(model_layout(twin), found) if found else None
    if difference:
        raise WeightsError(f"{weights.path} does not fit keras.applications.{twin.name} "
                           f"(include_top={weights.include_top}): {difference}")
    try:
        with quiet_keras():
            twin.load_weights(os.fspath(weights.path))
        from_keras_applications(model, twin)
    except WeightImportError:
        raise
    except Exception as e:  # h5py errors (a truncated download): the file and the reason, one line
        raise WeightsError(f"cannot read {weights.path}: {' '.join(str(e).split()) or type(e).__name__}") from None


# -- a file the caller has

def _run_config(path: Path) -> dict:
    config = path.parent / "config.json"
    try:
        return json.loads(config.read_text()) if config.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _from_path(spec, path: Path, include_top: bool) -> Weights:
    """A file: a shipped entry's (same size and sha256: those named weights, wherever the copy is); a run's (its
    folder's config.json: dataset, classes, and the preprocessing that run's training pipeline fed it, e.g. the
    embedded sample's own statistics); else a bare file, `guessed`: the entry for the model's default dataset,
    else the training pipeline's preprocessing on that dataset."""
    shipped = _shipped_as(path)
    if shipped is not None:
        model, tag, entry = shipped
        if model != spec.name:
            raise WeightsError(f"{path} holds {model}.{tag} (its sha256): weights of {model}, not {spec.name}")
        return Weights(spec.name, tag, path, entry.dataset, entry.preprocessing, entry.classes, entry, include_top)
    config = _run_config(path)
    if config.get("model") not in (None, spec.name):
        raise WeightsError(f"{path} comes from a run of {config['model']} (its config.json), not {spec.name}")
    if config.get("dataset_path") and config.get("dataset"):
        return _from_folder_run(spec, path, config, include_top)
    if config.get("dataset"):
        dataset = config["dataset"]
        prep = pipeline_preprocessing(spec, dataset, config.get("image_size"))
        classes = int(config.get("classes") or _dataset_entry(dataset).num_classes)
        return Weights(spec.name, None, path, dataset, prep, classes, None, include_top)
    for tag, entry in spec.weights.items():
        if entry.dataset == spec.dataset and entry.source != "keras_applications":
            return Weights(spec.name, None, path, entry.dataset, entry.preprocessing, entry.classes, entry,
                           include_top, guessed=True)
    prep = pipeline_preprocessing(spec, spec.dataset)
    return Weights(spec.name, None, path, spec.dataset, prep, spec.classes, None, include_top, classes_known=False,
                   guessed=True)


def _run_folder_weights(folder: Path, spec) -> Path:
    """The weights file of a run folder (`--weights RUN_DIR`), as `zoo eval --weights RUN_DIR` picks it: the best
    validation epoch's (best.weights.h5), else the last (model.weights.h5)."""
    if not (folder / "config.json").is_file():
        raise WeightsError(f"{folder} is a folder; weights must be a .weights.h5 or .keras file (or a tag: "
                           f"{_tags(spec)})")
    for name in ("best.weights.h5", "model.weights.h5"):
        if (folder / name).is_file():
            return folder / name
    raise WeightsError(f"{folder} is a run folder without best.weights.h5 or model.weights.h5 (an unfinished "
                       f"run?); pass a finished run's folder or a weights file")


_RECORDED_NAMES: dict[str, list[str]] = {}  # an image folder's name -> the class names its run recorded


def _from_folder_run(spec, path: Path, config: dict, include_top: bool) -> Weights:
    """Weights of a run on an image folder: its config.json names the folder (`dataset` its name, `dataset_path`
    its path), the class names in label order and the preprocessing the run's evaluation pipeline applied; those
    stand even when the folder has moved or changed since. The folder, where it still is, is registered under its
    name (zoo eval, explain's class names find it)."""
    from ..data import folder

    dataset, where = config["dataset"], config["dataset_path"]
    if os.path.isdir(where):
        folder.register(dataset, where)
    names = config.get("class_names")
    if isinstance(names, list) and names:
        _RECORDED_NAMES[dataset] = [str(n) for n in names]
    if config.get("preprocessing"):
        try:
            prep = Preprocessing.model_validate(config["preprocessing"])
        except ValueError as e:
            raise WeightsError(f"{path.parent / 'config.json'}: unreadable preprocessing "
                               f"({' '.join(str(e).split())[:120]})") from None
    elif os.path.isdir(where):  # a run from before runs recorded it: the folder's, measured again
        prep = pipeline_preprocessing(spec, dataset, config.get("image_size"))
    else:
        raise WeightsError(f"{path}: its run trained on the image folder {where}, which is gone, and its "
                           f"config.json does not record the preprocessing (a run from before runs recorded it); "
                           f"put the folder back at {where}")
    classes = int(config.get("classes") or len(_RECORDED_NAMES.get(dataset, [])) or spec.classes)
    return Weights(spec.name, None, path, dataset, prep, classes, None, include_top,
                   recorded_names=tuple(names) if isinstance(names, list) and names else None)


def _shipped_as(path: Path) -> Optional[tuple[str, str, WeightsEntry]]:
    """(model, tag, entry) of the shipped weights `path` is a copy of: the same size, then the same sha256 (only
    files of a shipped entry's size are hashed)."""
    size = path.stat().st_size
    candidates = [(name, tag, entry) for name, spec in registry_module.registry().models.items()
                  for tag, entry in spec.weights.items() if entry.source == "shipped" and entry.size_bytes == size]
    if not candidates:
        return None
    digest = sha256_of(path)
    return next((found for found in candidates if found[2].sha256 == digest), None)


def _dataset_entry(name: str):
    from ..data.catalogue import get_dataset

    return get_dataset(name)


def pipeline_preprocessing(spec, dataset: str, image_size: Optional[int] = None) -> Preprocessing:
    """The preprocessing zoo's evaluation pipeline applies for `spec` on `dataset` (zoo.training.inputs and
    zoo.data.pipeline): fixed-size data padded (small enlargements, 28 -> 32) or resized to the input size,
    variable-size data through the model's resize-and-crop protocol; the model's eval mean/std on its own
    dataset (on every dataset when they are a fixed scaling, `eval.fixed`), the dataset's elsewhere.
    tests/test_pretrained.py checks it against the pipeline's batches."""
    entry = _dataset_entry(dataset)
    size, channels = image_size or spec.input.size, spec.input.channels
    mean, std = spec.eval.normalisation(dataset, spec.dataset)
    mean, std = list(mean or entry.mean), list(std or entry.std)
    if channels == 1 and len(mean) == 3:  # RGB statistics for grey copies: the luma of the mean (as the pipeline)
        mean = [sum(w * m for w, m in zip(GREY_WEIGHTS, mean))]
        std = [sum(w * s for w, s in zip(GREY_WEIGHTS, std))]
    geometry: dict = {}
    if entry.fixed_size:
        have = entry.image_shape[0]
        if 0 < size - have <= have // 4 and (size - have) % 2 == 0:  # the pipeline pads small enlargements
            geometry = {"pad": (size - have) // 2}
    else:
        from ..data.catalogue import dataset_info
        from ..data.pipeline import EVAL_CROP_FRACTION
        from ..training.inputs import eval_geometry

        found = eval_geometry(spec, dataset_info(dataset), image_size)
        geometry = {"resize": found["eval_resize"], "crop": found["eval_crop"]}
        geometry = {key: value for key, value in geometry.items() if value}
        if "crop" in geometry and "resize" not in geometry:  # no resize: the pipeline's crop fraction
            geometry["resize"] = round(geometry["crop"] / EVAL_CROP_FRACTION)
    return Preprocessing(size=size, channels=channels, interpolation=spec.eval.interpolation, mean=mean, std=std,
                         **geometry)


# ---------------------------------------------------------------------------------------------------------------
# Class names


SAME_ORDER = ()  # class_order's answer when the two lists name the same classes in the same order


def _class_key(name: str) -> str:
    """A class name as a folder can spell it: 'T-shirt/top' is the folder 'T-shirt_top' (no '/' in a name)."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def class_order(weights_names: list[str], dataset_names: list[str]) -> Optional[tuple[int, ...]]:
    """How a set of weights' outputs line up with a dataset's labels, names compared as a folder can spell them:
    SAME_ORDER when they are the same list; the weights' output index for each dataset label when they are the same
    classes in another order (an image folder's labels are its sorted folder names: Fashion-MNIST's 'T-shirt/top'
    is label 0, its folder 'T-shirt_top' sorts after 'Sandal'); None when they are other classes."""
    ours, theirs = [_class_key(n) for n in weights_names], [_class_key(n) for n in dataset_names]
    if ours == theirs:
        return SAME_ORDER
    index = {key: i for i, key in enumerate(ours)}
    if len(index) == len(ours) == len(theirs) and all(key in index for key in theirs):
        return tuple(index[key] for key in theirs)
    return None


def class_names(dataset: str, classes: int) -> list[str]:
    """The dataset's class names (the catalogue's); ImageNet's readable names where Keras cached its
    imagenet_class_index.json (decode_predictions' file), else the catalogue's WordNet ids."""
    names = _RECORDED_NAMES.get(dataset)  # a folder run's, as its config.json recorded them
    if names is None and dataset.startswith("imagenet") and classes == 1000:
        names = _keras_imagenet_names()
    names = names or _dataset_entry(dataset).names()
    if len(names) != classes:
        return [str(i) for i in range(classes)]  # weights with another head: indices are the honest labels
    return names


def _keras_imagenet_names() -> Optional[list[str]]:
    path = keras_models_dir() / KERAS_CLASS_INDEX
    try:
        index = json.loads(path.read_text())
        return [index[str(i)][1] for i in range(1000)]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None

