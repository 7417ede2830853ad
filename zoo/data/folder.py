"""Image folders as datasets: `--dataset PATH` where PATH holds one sub-folder per class (the layout of
torchvision's ImageFolder and keras.utils.image_dataset_from_directory), optionally split into train/ and val/
(or validation/) and/or test/.

    entry = folder_entry("~/photos")            # a catalogue-like DatasetEntry: splits, class names, mean/std
    get_dataset("~/photos")                     # the same, through the catalogue (zoo/data/catalogue.py)
    ds = zoo.data.pipeline.batches("~/photos", "train", spec)   # streamed, decoded in tf.data

What a folder becomes (so the rest of the harness treats it as any catalogue dataset):
- name: the folder's base name ("photos"), or "folder_<name>" where that is a catalogue name; the run id, the
  results store and tables use it; the path stays in the entry (`entry.folder`) and in a run's config.json.
- class names: the class folders' names, sorted (label i is the i-th name); every split uses the train split's.
- splits: train/, val/ (or validation/), test/ as found. With no split folders at all, a stratified, seeded 10%
  of every class is held out as "validation" (the evaluation split); with train/ and test/ only, the same 10% of
  train is the catalogue-style holdout (the last images of train in stored order) and test is evaluated.
- images: JPEG, PNG, BMP (8, 24, 32 bits) and GIF (its first frame) of any size and mode, recognised by their
  first bytes (not their names); decoded in tf.data as RGB (grey copied, alpha dropped; grey models take the
  luma) and brought to the model's input by the variable-size geometry (zoo/data/pipeline.py: shorter side
  resized, centre crop, as the model's evaluation protocol says). Other files are skipped and counted
  (`scan.skipped`, a note in the run); a file that cannot be opened is an error naming it.
- mean/std: measured (per channel, 0-255 scale, on the RGB decode) over a seeded sample of SAMPLE_FOR_STATS
  training images, so a folder of digits on black is normalised as such, not as ImageNet photos.

The file list is scanned once per process (sorted by class then path, so stable across machines and runs) and
kept until a folder changes (the modification times of the root, split and class folders). Nothing here imports
TensorFlow: `get_dataset(PATH)` is as light as the catalogue; `stream()` builds the tf.data source.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .catalogue import DatasetEntry, DatasetError, Obtain, load_catalogue
from .holdout import HOLDOUT_SEED, holdout_mask

__all__ = ["FolderScan", "FolderError", "scan", "folder_entry", "find", "looks_like_path", "register", "register_run",
           "stream", "skipped_note", "damaged_images", "damaged_image_error", "naming_damaged_images",
           "is_decode_failure", "import_folder",
           "imported_entry", "look_in", "HOLDOUT_FRACTION", "SAMPLE_FOR_STATS", "SPLIT_FOLDERS"]

SPLIT_FOLDERS = {"train": ("train",), "validation": ("val", "validation", "valid"), "test": ("test",)}
HOLDOUT_FRACTION = 0.1  # of the training images, stratified, when the folder has no validation split of its own
SAMPLE_FOR_STATS = 256  # training images decoded (with Pillow) to measure mean/std
STATS_SIDE = 64  # each sampled image is reduced to at most this side first (fast, and the moments barely move)
_HEADER_BYTES = 32


class FolderError(DatasetError):
    """A folder that cannot be a dataset; the message names the folder or file and says what is expected."""


# ---------------------------------------------------------------------------------------------------------------
# Recognising images by their first bytes


def image_format(header: bytes) -> Optional[str]:
    """'jpeg', 'png', 'gif', 'bmp' for a file TensorFlow's decode_image reads, else None. BMPs below 8 bits per
    pixel (1- and 4-bit) are not decodable by TensorFlow, so they count as not images."""
    if header[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if header[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if header[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if header[:2] == b"BM" and len(header) >= 30:
        bits = int.from_bytes(header[28:30], "little")
        return "bmp" if bits in (8, 24, 32) else None
    return None


# ---------------------------------------------------------------------------------------------------------------
# The scan


@dataclass(frozen=True)
class FolderScan:
    """One folder, listed: the class names and, per stored split, the image paths and labels in stored order."""

    root: Path
    class_names: tuple[str, ...]
    paths: dict = field(repr=False, compare=False)  # stored split -> tuple of paths (str)
    labels: dict = field(repr=False, compare=False)  # stored split -> int32 array
    holdout: int  # the last `holdout` images of "train" are the stratified validation sample (train + test only)
    skipped: tuple[str, ...] = ()  # files that are not images (by their first bytes), in scan order
    layout: str = "classes"  # "classes" (root/<class>/) or "splits" (root/train/<class>/ ...)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    @property
    def sizes(self) -> dict[str, int]:
        return {split: len(paths) for split, paths in self.paths.items()}

    @property
    def eval_split(self) -> str:
        return "test" if "test" in self.paths else "validation"


def looks_like_path(name: str) -> bool:
    """A --dataset value meant as a folder (not a catalogue name): it has a separator, starts with ~ or ., or
    names an existing directory."""
    return os.sep in name or "/" in name or name.startswith(("~", ".")) or os.path.isdir(name)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if _visible(p) and p.is_dir())
    except OSError as e:
        raise FolderError(f"{folder}: cannot list it ({e.strerror})") from None


def _layout(root: Path) -> tuple[str, dict[str, Path]]:
    """("splits", {split: folder}) when root holds train/ (and val/, test/), else ("classes", {"all": root})."""
    found = {}
    for split, names in SPLIT_FOLDERS.items():
        for name in names:
            if (root / name).is_dir():
                found[split] = root / name
                break
    if not found:
        return "classes", {"all": root}
    if "train" not in found:
        raise FolderError(f"{root}: has {', '.join(p.name + '/' for p in found.values())} but no train/ folder; "
                          "put the training images in train/<class>/")
    others = [p.name for p in _subfolders(root) if p not in found.values()]
    if others:
        raise FolderError(f"{root}/{others[0]}: not a split folder; with train/ at the top, the other folders "
                          f"must be val/ (or validation/) and test/, each holding <class>/ folders")
    return "splits", found


def _images_in(class_dir: Path, skipped: list[str]) -> list[str]:
    """The images under one class folder (nested folders too, symlinks followed), sorted by path."""
    images = []
    for folder, dirs, files in os.walk(class_dir, followlinks=True, onerror=_raise_unlistable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(folder, name)
            (images if _is_image(path) else skipped).append(path)
    return images


def _raise_unlistable(error: OSError):
    raise FolderError(f"{error.filename}: cannot list it ({error.strerror})")


def _is_image(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return image_format(f.read(_HEADER_BYTES)) is not None
    except IsADirectoryError:
        return False
    except OSError as e:
        raise FolderError(f"{path}: cannot read it ({e.strerror}); fix its permissions or move it out of the "
                          "folder") from None


def _classes(folder: Path, skipped: list[str]) -> dict[str, list[str]]:
    """{class name: sorted image paths} of a folder of class folders; loose files beside them are skipped."""
    classes = {}
    for entry in sorted(folder.iterdir()):
        if not _visible(entry):
            continue
        if entry.is_dir():
            images = _images_in(entry, skipped)
            if not images:
                raise FolderError(f"{entry}: a class folder without images (JPEG, PNG, BMP or GIF); add images or "
                                  "remove the folder")
            classes[entry.name] = images
        else:
            skipped.append(str(entry))
    return classes


def _listing(root: Path) -> tuple[str, dict[str, Path], dict[str, dict[str, list[str]]], list[str]]:
    layout, folders = _layout(root)
    skipped: list[str] = []
    per_split = {split: _classes(folder, skipped) for split, folder in folders.items()}
    return layout, folders, per_split, skipped


def _check_classes(root: Path, folders: dict[str, Path], per_split: dict) -> tuple[str, ...]:
    first = "train" if "train" in per_split else "all"
    names = tuple(sorted(per_split[first]))
    where = folders[first]
    if not names:
        hint = ("expected train/<class>/<image> folders" if first == "train"
                else "expected one sub-folder of images per class (PATH/<class>/<image>), or train/ and val/")
        raise FolderError(f"{where}: no class folders; {hint}")
    if len(names) == 1:
        raise FolderError(f"{where}: only one class ({names[0]!r}); a classifier needs two or more class folders")
    for split, classes in per_split.items():
        extra = sorted(set(classes) - set(names))
        if extra:
            raise FolderError(f"{folders[split] / extra[0]}: not a class of {where} "
                              f"(its classes: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''})")
    return names


def _flatten(classes: dict[str, list[str]], names: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    index = {name: i for i, name in enumerate(names)}
    paths, labels = [], []
    for name in sorted(classes):
        paths += classes[name]
        labels += [index[name]] * len(classes[name])
    return paths, np.asarray(labels, np.int32)


def holdout_size(images: int) -> int:
    """The validation images held out of `images` training images: HOLDOUT_FRACTION of them, at least one."""
    return max(1, round(HOLDOUT_FRACTION * images))


def _stored_splits(layout: str, per_split: dict, names) -> tuple[dict, dict, int]:
    """(paths, labels, holdout) per stored split, each in stored order (class, then path). A folder without a
    validation split gets the catalogue's stratified, seeded holdout (zoo/data/holdout.py): with no split folders
    at all it is a stored split of its own ("validation", the evaluation split); with train/ and test/, the
    pipeline holds it out of train as for a catalogue dataset (`holdout`)."""
    paths, labels = {}, {}
    for split, classes in per_split.items():
        paths[split], labels[split] = _flatten(classes, names)
    if "validation" in paths:
        return paths, labels, 0
    if layout == "splits":
        return paths, labels, holdout_size(len(paths["train"]))
    everything, all_labels = paths.pop("all"), labels.pop("all")
    if len(everything) < 2:
        raise FolderError(f"{Path(everything[0]).parent.parent}: one image; a validation split needs two or more")
    held = holdout_mask(all_labels, holdout_size(len(everything)))
    paths["train"] = [p for p, h in zip(everything, held) if not h]
    paths["validation"] = [p for p, h in zip(everything, held) if h]
    labels["train"], labels["validation"] = all_labels[~held], all_labels[held]
    return paths, labels, 0


def _statistics(paths: list[str]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (0-255, RGB) over a seeded sample of the images, decoded with Pillow (reduced to
    STATS_SIDE first: JPEG's draft mode makes that nearly free)."""
    from PIL import Image

    rng = np.random.default_rng(HOLDOUT_SEED)
    chosen = rng.permutation(len(paths))[:SAMPLE_FOR_STATS]
    total, total_sq, count = np.zeros(3), np.zeros(3), 0
    for i in sorted(chosen):
        try:
            with Image.open(paths[i]) as image:
                image.draft("RGB", (STATS_SIDE, STATS_SIDE))
                image = image.convert("RGB")
                image.thumbnail((STATS_SIDE, STATS_SIDE))
                pixels = np.asarray(image, np.float64).reshape(-1, 3)
        except (OSError, ValueError, SyntaxError):  # a damaged image: the pipeline names it when it decodes it
            continue
        total += pixels.sum(0)
        total_sq += np.square(pixels).sum(0)
        count += len(pixels)
    if not count:
        raise FolderError(f"{Path(paths[0]).parent.parent}: none of {len(chosen)} sampled images could be decoded")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 1e-6))
    return tuple(round(float(m), 4) for m in mean), tuple(round(max(float(s), 1.0), 4) for s in std)


def _state(root: Path) -> tuple:
    """What the scan's cache is keyed on: the modification times of the root, its split and class folders (a
    file added to or removed from a class folder changes that folder's time)."""
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return -1.0

    folders = [root]
    for sub in _subfolders(root):
        folders.append(sub)
        if sub.name in {n for names in SPLIT_FOLDERS.values() for n in names}:
            folders += _subfolders(sub)
    return tuple((str(p), mtime(p)) for p in folders)


@functools.lru_cache(maxsize=8)
def _scan(root: str, state: tuple) -> FolderScan:
    del state  # the cache key: a changed folder is scanned again
    path = Path(root)
    layout, folders, per_split, skipped = _listing(path)
    names = _check_classes(path, folders, per_split)
    paths, labels, holdout = _stored_splits(layout, per_split, names)
    mean, std = _statistics(paths["train"])
    return FolderScan(path, names, {k: tuple(v) for k, v in paths.items()}, labels, holdout, tuple(skipped),
                      layout, mean, std)


def scan(path: str | os.PathLike) -> FolderScan:
    """The folder at `path`, listed and checked (cached until it changes); FolderError says what is wrong."""
    root = Path(os.path.expanduser(os.fspath(path)))
    if not root.exists():
        raise FolderError(f"{path}: no such folder (a dataset folder holds one sub-folder of images per class)")
    if not root.is_dir():
        raise FolderError(f"{path}: is a file; a dataset folder holds one sub-folder of images per class")
    root = root.resolve()
    return _scan(str(root), _state(root))


scan.cache_clear = _scan.cache_clear  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------------------
# The catalogue-like entry, and the names a process has seen


_REGISTERED: dict[str, str] = {}  # dataset name -> folder path, for every folder resolved in this process


def _name_for(root: Path) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.name).strip("._-") or "folder"
    name = f"folder_{base}" if base in load_catalogue() else base
    taken = _REGISTERED.get(name)
    if taken is not None and taken != str(root):  # another folder of the same name in this process
        name = f"{name}_{sum(1 for n in _REGISTERED if n.startswith(name)) + 1}"
    return name


def register(name: str, path: str | os.PathLike) -> None:
    """Let `name` stand for the folder at `path` in this process (a run's config.json records both)."""
    _REGISTERED[name] = str(Path(os.path.expanduser(os.fspath(path))).resolve())


def register_run(weights: str | os.PathLike) -> Optional[str]:
    """When `weights` is a run folder, or a file in one, of a run on an image folder (its config.json records the
    folder's name and path), let that name stand for the folder in this process; returns the name, else None (a
    tag, or any other file)."""
    import json

    path = Path(os.fspath(weights))
    config = path / "config.json" if path.is_dir() else path.parent / "config.json"
    try:
        saved = json.loads(config.read_text()) if config.is_file() else {}
    except (OSError, ValueError):
        return None
    if not (isinstance(saved, dict) and saved.get("dataset_path") and saved.get("dataset")):
        return None
    register(saved["dataset"], saved["dataset_path"])
    return saved["dataset"]


def folder_entry(path: str | os.PathLike) -> DatasetEntry:
    """The DatasetEntry of an image folder (scanned, or from the cache), registered under its name."""
    found = scan(path)
    existing = next((n for n, p in _REGISTERED.items() if p == str(found.root)), None)
    name = existing or _name_for(found.root)
    _REGISTERED[name] = str(found.root)
    return _entry(name, found)


def _entry(name: str, found: FolderScan) -> DatasetEntry:
    return DatasetEntry(
        name=name, title=f"image folder {found.root}", folder=str(found.root), splits=found.sizes,
        eval_split=found.eval_split, holdout=found.holdout or None,
        holdout_note=(f"a stratified, seeded {HOLDOUT_FRACTION:.0%} of the training images (zoo/data/holdout.py)"
                      if found.holdout or found.layout == "classes" else None),
        image_shape=(None, None, 3), class_names=list(found.class_names), mean=list(found.mean),
        std=list(found.std), license="unknown (a local folder)", homepage=found.root.as_uri(), citation="",
        obtain=Obtain(method="folder", note=skipped_note(found)))


def find(name: str) -> Optional[DatasetEntry]:
    """The entry `name` stands for when it is not a catalogue name: a folder path, or the name of a folder seen
    in this process, or a folder imported into the data dir (`zoo data prepare --from PATH --name NAME`); None
    when it is none of these (the caller says 'unknown dataset')."""
    if name in _REGISTERED:
        return folder_entry(_REGISTERED[name])
    if looks_like_path(name):
        return folder_entry(name)
    return imported_entry(name)


def skipped_note(found: FolderScan) -> Optional[str]:
    """'skipped 3 files that are not images (e.g. cats/notes.txt)', or None."""
    if not found.skipped:
        return None
    example = os.path.relpath(found.skipped[0], found.root)
    return (f"skipped {len(found.skipped)} file{'s' if len(found.skipped) > 1 else ''} in {found.root} that "
            f"{'are' if len(found.skipped) > 1 else 'is'} not a JPEG, PNG, BMP or GIF image (e.g. {example})")


# ---------------------------------------------------------------------------------------------------------------
# tf.data


def stream(entry: DatasetEntry, stored: str, start: int, stop: int, *, training: bool, seed: int,
           indices: Optional[np.ndarray] = None):
    """(encoded image bytes, int32 label) of stored split `stored`[start:stop] (or of the stored `indices`: a
    holdout's side), read file by file in parallel. In training the file names are shuffled whole (seeded, a new
    order each epoch) before any file is read, so no shuffle buffer of encoded images is needed."""
    import tensorflow as tf

    found = scan(entry.folder)
    chosen = slice(start, stop) if indices is None else np.asarray(indices)
    paths = np.asarray(found.paths[stored], dtype=object)[chosen].tolist()
    labels = found.labels[stored][chosen]
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string), tf.constant(labels, tf.int32)))
    if training:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    return ds.map(lambda path, label: (tf.io.read_file(path), label), num_parallel_calls=tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------------------------------
# A damaged image met mid-stream, named after the fact

# TensorFlow's decode ops name neither the file nor the element: a folder stream that hits a damaged image stops
# with an InvalidArgumentError from node decode_image/DecodeImage. Decoding every image up front would make a big
# folder slow to start, so the culprit is found post mortem, on failure only.
_DECODE_FAILURE = re.compile(r"Decode(Image|Png|Jpeg|Bmp|Gif)|decode_image|Invalid (PNG|JPEG|GIF|BMP)|"
                             r"Unknown image file format|jpeg::Uncompress")


def is_decode_failure(error: BaseException) -> bool:
    """Whether `error` is TensorFlow's failure to decode an image (an InvalidArgumentError from a decode op)."""
    return type(error).__name__ == "InvalidArgumentError" and bool(_DECODE_FAILURE.search(str(error)))


def damaged_images(root: str | os.PathLike) -> list[str]:
    """The images of the folder at `root` (every stored split) that TensorFlow cannot decode as the pipeline
    does (decode_image, RGB, first frame), in stored order: read and decoded in parallel in tf.data, the
    failures dropped by ignore_errors and told apart from the rest by their index."""
    import tensorflow as tf

    found = scan(root)
    paths = [path for split in found.paths.values() for path in split]

    def decodes(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return index, tf.shape(image)[0]

    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(paths)), tf.constant(paths, tf.string)))
    ds = ds.map(decodes, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False).ignore_errors()
    good = np.zeros(len(paths), bool)
    for indices, _ in ds.batch(1024).as_numpy_iterator():
        good[indices] = True
    return [path for path, ok in zip(paths, good) if not ok]


def damaged_image_error(error: BaseException) -> Optional[FolderError]:
    """The one-line FolderError naming the damaged image behind `error` (TensorFlow's decode failure, which names
    no file) in the image folders this process has read, and how many others are damaged; None when `error` is
    not a decode failure or no folder image fails to decode (then the error is another one)."""
    if not is_decode_failure(error):
        return None
    for root in dict.fromkeys(_REGISTERED.values()):
        try:
            damaged = damaged_images(root)
        except FolderError:  # the folder has gone or changed into something else since: not this one
            continue
        if damaged:
            return _damaged_error(Path(root), damaged)
    return None


@contextlib.contextmanager
def naming_damaged_images():
    """Inside it, TensorFlow's failure to decode an image of a folder (which names no file) comes out as the
    one-line FolderError naming the image (damaged_image_error), the original chained; every other error as it
    was. zoo.train and zoo.evaluate run in it, so Python callers read what the CLI prints."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - re-raised unchanged unless it is a decode failure
        named = damaged_image_error(error)
        if named is None:
            raise
        raise named from error


def _damaged_error(root: Path, damaged: list[str]) -> FolderError:
    try:
        _check_image(damaged[0])
        reason = f"{damaged[0]}: not a decodable image"  # failed in the stream only: still named
    except FolderError as e:
        reason = str(e)
    others = len(damaged) - 1
    more = (f"; {others} other image{'s' if others > 1 else ''} of {root} cannot be decoded either (e.g. "
            f"{os.path.relpath(damaged[1], root)})" if others else "")
    return FolderError(f"{reason}{more}")


# ---------------------------------------------------------------------------------------------------------------
# `zoo data prepare --from PATH --name NAME`: the folder imported once into TFDS (TFRecord shards in the data dir)

IMPORT_VERSION = "1.0.0"
ENTRY_FILE = "zoo_entry.json"  # beside TFDS's dataset_info.json: what get_dataset(NAME) reads back
_NAME = re.compile(r"[a-z][a-z0-9_]*")


_DATA_DIRS: list = []  # data dirs given in this process (--data-dir): imported folders are looked up there too


def look_in(data_dir) -> None:
    """Let imported folders be found in `data_dir` too (a run's or a command's --data-dir), not only in the
    default one ($ZOO_DATA_DIR, else ~/tensorflow_datasets)."""
    if data_dir is not None and str(data_dir) not in _DATA_DIRS:
        _DATA_DIRS.append(str(data_dir))


def imported_entry(name: str, data_dir=None) -> Optional[DatasetEntry]:
    """The entry `zoo data prepare --from PATH --name NAME` wrote into the data dir (`data_dir`, any given to
    look_in, else the default one), or None."""
    import json

    from .catalogue import resolve_data_dir

    if not _NAME.fullmatch(name):
        return None
    candidates = [resolve_data_dir(d) / name / IMPORT_VERSION / ENTRY_FILE
                  for d in ([data_dir] if data_dir else []) + _DATA_DIRS + [None]]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        return None
    try:
        return DatasetEntry.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError) as e:
        raise FolderError(f"{path}: unreadable dataset entry ({' '.join(str(e).split())[:120]}); import the "
                          f"folder again with `zoo data prepare --from PATH --name {name} --force`") from None


def _check_image(path: str) -> None:
    """Decode the image once (TensorFlow, as the pipeline will): a damaged file is named now, not mid-epoch."""
    import tensorflow as tf

    try:
        tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
        raise FolderError(f"{path}: not a decodable image ({_tf_reason(e)}); repair or remove it") from None


def _tf_reason(error) -> str:
    """TensorFlow's message without its op decorations ('{{function_node ...}}', '[Op:DecodeImage]')."""
    text = str(getattr(error, "message", error)).split("\n")[0]
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:\w+\]|\s+name:\s*\S*$", "", text).strip().rstrip(".").strip()
    return text[:120] or "unknown format"


def _import_builder(name: str, found: FolderScan):
    """A TFDS builder writing the folder's stored splits as they are (the image files' bytes, untouched)."""
    import tensorflow_datasets as tfds

    builder_name = name  # TFDS names a builder by its class attribute `name`

    class FolderImport(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version(IMPORT_VERSION)
        name = builder_name

        def _info(self):
            features = tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "label": tfds.features.ClassLabel(names=list(found.class_names)),
                "file_name": tfds.features.Text()})
            return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("image", "label"),
                                         description=f"image folder {found.root}, imported by zoo data prepare")

        def _split_generators(self, dl_manager):
            del dl_manager  # nothing to download
            return {split: self._generate_examples(split) for split in found.paths}

        def _generate_examples(self, split):
            for i, (path, label) in enumerate(zip(found.paths[split], found.labels[split])):
                _check_image(path)
                with open(path, "rb") as f:
                    yield i, {"image": f.read(), "label": int(label),
                              "file_name": os.path.relpath(path, found.root)}

    return FolderImport


def _imported(name: str, found: FolderScan) -> DatasetEntry:
    from .catalogue import TfdsRef

    entry = _entry(name, found)
    return entry.model_copy(update={"folder": None, "tfds": TfdsRef(name=name, version=IMPORT_VERSION),
                                    "title": f"{name}: image folder {found.root}, imported",
                                    "obtain": Obtain(method="folder", note=f"imported from {found.root} by "
                                                     f"`zoo data prepare --from {found.root} --name {name}`")})


def import_folder(path, name: str, data_dir=None, *, force: bool = False):
    """Write the folder at `path` as TFDS dataset `name` (version IMPORT_VERSION) into the data dir, atomically
    (staged, then renamed into place, as zoo.data.prepare does), with its entry beside it; `--dataset NAME` then
    streams it from TFRecord shards. Every image is decoded once on the way: a damaged one is named."""
    import json
    import shutil
    import sys
    import tempfile
    import time

    from ..io import FolderLock, write_text_atomic
    from .catalogue import resolve_data_dir
    from .prepare import STAGING_PREFIX, PrepareError, PrepareResult, _move_into_place, remove_stale_staging

    if not _NAME.fullmatch(name):
        raise FolderError(f"--name {name!r}: lower-case letters, digits and '_', starting with a letter (a TFDS "
                          "dataset name)")
    if name in load_catalogue():
        raise FolderError(f"--name {name!r} is a catalogue dataset; choose another name")
    found = scan(path)
    root = resolve_data_dir(data_dir)
    target = root / name / IMPORT_VERSION
    if (target / ENTRY_FILE).is_file() and not force:
        counts = imported_entry(name, data_dir).splits
        return PrepareResult(name, target, counts, already=True, source="already prepared")
    start = time.perf_counter()
    import tensorflow_datasets as tfds

    if not sys.stderr.isatty():  # tqdm's bars redraw with escape codes: junk in a log file or a pipe
        tfds.disable_progress_bar()
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(root)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{name}-", dir=root))
    lock = FolderLock(staging).acquire()
    try:
        builder = _import_builder(name, found)(data_dir=str(staging))
        try:
            builder.download_and_prepare(download_dir=str(staging / "downloads"),
                                         download_config=tfds.download.DownloadConfig())
        except FolderError:
            raise
        except Exception as e:  # noqa: BLE001 - TFDS's writing errors: one line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise PrepareError(f"importing {found.root} as {name} failed: {type(e).__name__}: {first}") from e
        staged = staging / name / IMPORT_VERSION
        write_text_atomic(staged / ENTRY_FILE, json.dumps(_imported(name, found).model_dump(mode="json"),
                                                          indent=1))
        _move_into_place(staged, target, force)
    finally:
        lock.release()
        shutil.rmtree(staging, ignore_errors=True)
    return PrepareResult(name, target, found.sizes, seconds=time.perf_counter() - start, source=str(found.root))
