"""The dataset catalogue: `catalogue.yaml` loaded, validated and indexed, plus where prepared data lives.

Light on purpose (no TensorFlow, no TFDS import): `zoo datasets` and the readiness check before any `tfds.load`
only read the catalogue and the file system.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, model_validator

from ..errors import ZooError
from ..schema import Strict, cached_by_mtime, load_yaml, validate

__all__ = ["DatasetError", "UnknownDatasetError", "DatasetNotReadyError", "DatasetEntry", "DatasetInfo",
           "load_catalogue", "get_dataset", "list_datasets", "dataset_info", "resolve_data_dir", "prepared_dir",
           "is_ready", "size_on_disk", "require_ready", "not_ready_message", "import_hint", "sample_dir",
           "effective_holdout", "SPLITS"]

HERE = Path(__file__).resolve().parent
CATALOGUE_PATH = HERE / "catalogue.yaml"
SPLITS = ("train", "validation", "test", "train_full")  # the pipeline's split names (plus TFDS slices)


class DatasetError(ZooError, ValueError):
    """A catalogue that cannot be used, or a bad split/dataset request; the message says which."""


class UnknownDatasetError(ZooError, KeyError):
    def __init__(self, name: str, known: list[str]):
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"
        super().__init__(f"unknown dataset {name!r}; {hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class DatasetNotReadyError(ZooError, FileNotFoundError):
    """The dataset is not prepared in the data dir; the message names both ways to get it."""

    def __str__(self) -> str:
        return self.args[0]


# ---------------------------------------------------------------------------------------------------------------
# Schema


class TfdsRef(Strict):
    name: str
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    config: Optional[str] = None

    @property
    def full_name(self) -> str:
        """'imagenette/320px-v2:1.0.0': what tfds.load accepts, pinned to the catalogue's version."""
        return f"{self.name}{'/' + self.config if self.config else ''}:{self.version}"

    @property
    def relative_dir(self) -> Path:
        """Where TFDS keeps it under the data dir: name[/config]/version."""
        return Path(self.name, *([self.config] if self.config else []), self.version)


class Obtain(Strict):
    method: Literal["download", "manual", "embedded", "folder"]  # folder: an image folder (zoo/data/folder.py)
    url: Optional[str] = Field(None, description="where to fetch the manual files")
    files: list[str] = []
    note: Optional[str] = None


class Raw(Strict):
    format: Literal["idx", "cifar_pickle", "image_folder"]
    files: list[str]
    note: Optional[str] = None


class DatasetEntry(Strict):
    name: str
    title: str
    tfds: Optional[TfdsRef] = None
    embedded: Optional[str] = Field(None, description="folder inside zoo/data with the gzipped IDX files")
    folder: Optional[str] = Field(None, description="an image folder on disk, one sub-folder per class")
    splits: dict[str, int]
    eval_split: str
    holdout: Optional[int] = Field(None, ge=0)
    holdout_note: Optional[str] = None
    image_shape: tuple[Optional[int], Optional[int], int]
    class_names: Optional[list[str]] = None
    class_names_file: Optional[str] = Field(None, description="file of names, relative to tensorflow_datasets/")
    coarse_class_names: Optional[list[str]] = None
    mean: list[float]
    std: list[float]
    license: str
    homepage: str
    citation: str
    obtain: Obtain
    raw: Optional[Raw] = None

    @model_validator(mode="after")
    def _consistent(self):
        if sum(source is not None for source in (self.tfds, self.embedded, self.folder)) != 1:
            raise ValueError("give exactly one of 'tfds', 'embedded' and 'folder'")
        if (self.class_names is None) == (self.class_names_file is None):
            raise ValueError("give exactly one of 'class_names' and 'class_names_file'")
        channels = self.image_shape[2]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean and std need {channels} values (one per channel)")
        if self.eval_split not in self.splits:
            raise ValueError(f"eval_split {self.eval_split!r} is not one of the splits")
        if self.holdout is not None and self.holdout >= self.splits.get("train", 0):
            raise ValueError("holdout must be smaller than the training split")
        if self.holdout and "validation" in self.splits:
            raise ValueError("a dataset with its own validation split takes no holdout")
        return self

    @property
    def fixed_size(self) -> bool:
        """All images have the same (known) height and width."""
        return None not in self.image_shape[:2]

    def names(self) -> list[str]:
        if self.class_names is not None:
            return list(self.class_names)
        return _read_names(self.class_names_file)

    @property
    def num_classes(self) -> int:
        return len(self.names())


@functools.lru_cache(maxsize=None)
def _read_names(relative: str) -> list[str]:
    """Class names from a file shipped with tensorflow_datasets, found without importing it (that is slow)."""
    spec = importlib.util.find_spec("tensorflow_datasets")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"tensorflow_datasets is not installed: cannot read the class names ({relative})")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        raise DatasetError(f"{path}: class-name file missing from tensorflow_datasets") from None


def _parse(path: Path) -> dict[str, DatasetEntry]:
    try:
        text = path.read_text()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the dataset catalogue: {e.strerror}") from None
    doc = load_yaml(text, str(path), DatasetError)
    if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), dict):
        raise DatasetError(f"{path}: expected a 'datasets' mapping")
    return {name: validate(DatasetEntry, {"name": name, **body} if isinstance(body, dict) else body,
                           f"{path}: dataset '{name}'", DatasetError)
            for name, body in doc["datasets"].items()}


_load = cached_by_mtime(_parse, DatasetError, "dataset catalogue")


def load_catalogue(path: str | os.PathLike | None = None) -> dict[str, DatasetEntry]:
    return _load(path or CATALOGUE_PATH)


def list_datasets() -> list[str]:
    return list(load_catalogue())


def get_dataset(name: str) -> DatasetEntry:
    """The catalogue's entry `name`; else, for a folder path (or the name of a folder seen in this process), the
    folder's entry (zoo/data/folder.py), or the entry `zoo data prepare --from PATH --name NAME` wrote."""
    entries = load_catalogue()
    if name in entries:
        return entries[name]
    from . import folder  # light (no TensorFlow); imported here: it builds on this module

    entry = folder.find(name)
    if entry is None:
        raise UnknownDatasetError(name, list(entries))
    return entry


def sample_dir(entry: DatasetEntry | str = "fashion_mnist_sample") -> Path:
    entry = get_dataset(entry) if isinstance(entry, str) else entry
    return HERE / entry.embedded


# ---------------------------------------------------------------------------------------------------------------
# Split sizes after the holdout: what the pipeline serves


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_examples: dict[str, int]  # pipeline split -> size ("train" after the holdout, "train_full", ...)
    entry: "DatasetEntry" = field(repr=False, compare=False)
    image_shape: tuple
    mean: tuple[float, ...]
    std: tuple[float, ...]
    validation_holdout: Optional[int]
    eval_split: str

    # Read on demand: ImageNet's names come from a file inside tensorflow_datasets, which a machine without
    # TensorFlow (the GPU machine) lacks, and the geometry of a pipeline does not need them.
    @property
    def class_names(self) -> list[str]:
        return self.entry.names()

    @property
    def num_classes(self) -> int:
        return self.entry.num_classes

    @property
    def fixed_size(self) -> bool:
        """All images have the same (known) height and width (MNIST, CIFAR; not ImageNet)."""
        return None not in self.image_shape[:2]


def effective_holdout(entry: DatasetEntry, holdout: Optional[int] = None) -> int:
    """The training images held out as "validation": `holdout` if given (a recipe's), else the catalogue's; none
    where the dataset has a validation split of its own (ImageNet: it wins over a recipe's holdout)."""
    if "validation" in entry.splits:
        return 0
    n = entry.holdout if holdout is None else holdout
    if n and n >= entry.splits["train"]:
        raise DatasetError(f"holdout {n} leaves no training images in {entry.name!r} "
                           f"({entry.splits['train']} in all)")
    return n or 0


def dataset_info(name: str, holdout: Optional[int] = None) -> DatasetInfo:
    entry = get_dataset(name)
    n = effective_holdout(entry, holdout)
    sizes = dict(entry.splits)
    sizes["train_full"] = entry.splits["train"]
    if n:
        sizes["train"], sizes["validation"] = entry.splits["train"] - n, n
    return DatasetInfo(name=entry.name, num_examples=sizes, entry=entry,  # a folder's name, not its path
                       image_shape=tuple(entry.image_shape), mean=tuple(entry.mean), std=tuple(entry.std),
                       validation_holdout=n or None, eval_split=entry.eval_split)


# ---------------------------------------------------------------------------------------------------------------
# The data dir and readiness (file system only: never TFDS, never the network)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`data_dir` if given, else $ZOO_DATA_DIR, else TFDS's default ($TFDS_DATA_DIR or ~/tensorflow_datasets)."""
    chosen = data_dir or os.environ.get("ZOO_DATA_DIR") or os.environ.get("TFDS_DATA_DIR")
    return Path(chosen).expanduser() if chosen else Path.home() / "tensorflow_datasets"


def prepared_dir(name: str, data_dir: str | os.PathLike | None = None) -> Optional[Path]:
    """The folder `tfds.load` reads the dataset from (None for embedded datasets)."""
    entry = get_dataset(name)
    return resolve_data_dir(data_dir) / entry.tfds.relative_dir if entry.tfds else None


def is_ready(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Prepared (dataset_info.json in the version folder, which TFDS and `zoo data prepare` move into place
    whole), or embedded."""
    entry = get_dataset(name)
    if entry.embedded:
        return sample_dir(entry).is_dir()
    if entry.folder:
        return Path(entry.folder).is_dir()
    return (prepared_dir(name, data_dir) / "dataset_info.json").is_file()


def size_on_disk(name: str, data_dir: str | os.PathLike | None = None) -> int:
    """Bytes the prepared (or embedded) dataset takes; 0 when not prepared."""
    entry = get_dataset(name)
    folder = (sample_dir(entry) if entry.embedded else Path(entry.folder) if entry.folder
              else prepared_dir(name, data_dir))
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def import_hint(entry: DatasetEntry) -> Optional[str]:
    """How to import the raw files offline, in words (None if the dataset has no raw format)."""
    if entry.raw is None:
        return None
    holding = ("train/<class>/ and val/<class>/ image folders" if entry.raw.format == "image_folder"
               else ", ".join(entry.raw.files))
    return f"`zoo data prepare {entry.name} --from DIR` with DIR holding {holding}"


def not_ready_message(name: str, data_dir: str | os.PathLike | None = None) -> str:
    entry = get_dataset(name)
    root = resolve_data_dir(data_dir)
    where = f"dataset {name!r} is not prepared in {root}"
    raw = import_hint(entry)
    if entry.obtain.method == "manual":
        manual = root / "downloads" / "manual"
        online = f"put {' and '.join(entry.obtain.files)} in {manual}/ and run `zoo data prepare {name}`"
    else:
        online = f"run `zoo data prepare {name}` (downloads it)"
    return f"{where}: {online}" + (f", or {raw}" if raw else "")


def require_ready(name: str, data_dir: str | os.PathLike | None = None) -> None:
    if not is_ready(name, data_dir):
        raise DatasetNotReadyError(not_ready_message(name, data_dir))
