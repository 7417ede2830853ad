"""Readers of the datasets' official raw formats: IDX (MNIST, Fashion-MNIST), the CIFAR-10/100 python pickles,
and ImageNet-style folders of class sub-directories.

NumPy only (no TensorFlow): the readers validate everything they read and raise CorruptDataError naming the file,
so that `zoo data prepare --from` fails before it writes anything.
"""

from __future__ import annotations

import gzip
import io
import pickle
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ZooError

__all__ = ["CorruptDataError", "RawFilesNotFoundError", "read_idx", "find_idx_files", "read_idx_split",
           "read_cifar", "list_image_folder", "IMAGE_SUFFIXES"]


class CorruptDataError(ZooError, ValueError):
    """A raw data file that cannot be read as what it should be; the message names the file."""


class RawFilesNotFoundError(ZooError, FileNotFoundError):
    """`--from DIR` does not hold the raw files the format needs; the message lists what was looked for."""


# ---------------------------------------------------------------------------------------------------------------
# IDX (http://yann.lecun.com/exdb/mnist/): a big-endian header, then the raw array.
# magic = 0x00 0x00 <type code> <number of dimensions>; then one uint32 size per dimension.

_IDX_UBYTE = 0x08
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # ubyte with 3 dimensions (N, rows, cols) and 1 dimension (N,)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (detected by content, not by name)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RawFilesNotFoundError(f"{path}: cannot read: {e.strerror}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as e:
            raise CorruptDataError(f"{path}: corrupt or truncated gzip file ({e})") from None
    return data


def read_idx(path: str | Path, *, expect_magic: int | None = None) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array, after checking its magic number and exact length."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise CorruptDataError(f"{path}: truncated IDX file ({len(data)} bytes, no header)")
    magic = int.from_bytes(data[:4], "big")
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or type_code != _IDX_UBYTE or not 1 <= ndim <= 4:
        raise CorruptDataError(f"{path}: not an unsigned-byte IDX file (magic number {magic:#010x})")
    if expect_magic is not None and magic != expect_magic:
        raise CorruptDataError(f"{path}: wrong magic number {magic} (expected {expect_magic}: "
                               f"{'images' if expect_magic == IMAGES_MAGIC else 'labels'})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptDataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise CorruptDataError(f"{path}: {what}: {len(data)} bytes for an array of shape {shape} "
                               f"({expected} expected)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


_IDX_NAMES = {  # official names: MNIST's site unzips to 'train-images.idx3-ubyte', the .gz files use a dash
    ("train", "images"): "train-images?idx3-ubyte", ("train", "labels"): "train-labels?idx1-ubyte",
    ("test", "images"): "t10k-images?idx3-ubyte", ("test", "labels"): "t10k-labels?idx1-ubyte",
}


def find_idx_files(directory: str | Path, split: str) -> tuple[Path, Path]:
    """The (images, labels) IDX files of `split` ('train' or 'test') in `directory`, gzipped or not."""
    directory = Path(directory)
    found = []
    for kind in ("images", "labels"):
        pattern = re.compile(_IDX_NAMES[split, kind].replace("?", "[-.]") + r"(\.gz)?")
        matches = sorted(p for p in directory.iterdir() if pattern.fullmatch(p.name)) if directory.is_dir() else []
        if not matches:
            wanted = _IDX_NAMES[split, kind].replace("?", "-")
            raise RawFilesNotFoundError(f"{directory}: no {wanted}.gz (or {wanted}) found")
        found.append(matches[0])
    return found[0], found[1]


def read_idx_split(images_path: str | Path, labels_path: str | Path, *, image_size: tuple[int, int],
                   num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, 1) and labels (N,) of one split, checked against each other and the expected sizes."""
    images = read_idx(images_path, expect_magic=IMAGES_MAGIC)
    labels = read_idx(labels_path, expect_magic=LABELS_MAGIC)
    if images.shape[1:] != tuple(image_size):
        raise CorruptDataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, "
                               f"expected {image_size[0]}x{image_size[1]}")
    if len(images) != len(labels):
        raise CorruptDataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}")
    if len(labels) and labels.max() >= num_classes:
        raise CorruptDataError(f"{labels_path}: label {labels.max()} out of range (expected 0..{num_classes - 1})")
    return images[..., None], labels


# ---------------------------------------------------------------------------------------------------------------
# CIFAR python pickles (https://www.cs.toronto.edu/~kriz/cifar.html). Batches are dicts with bytes keys:
# b'data' uint8 (N, 3072) channel-planar rows, b'labels' (CIFAR-10) or b'fine_labels'/b'coarse_labels' (CIFAR-100).


@dataclass(frozen=True)
class CifarLayout:
    folder: str
    archive: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_keys: dict[str, str]  # feature name -> pickle key
    names_keys: dict[str, str]  # feature name -> key of its class names in the meta pickle


CIFAR_LAYOUTS = {
    "cifar10": CifarLayout("cifar-10-batches-py", "cifar-10-python.tar.gz",
                           tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta",
                           {"label": "labels"}, {"label": "label_names"}),
    "cifar100": CifarLayout("cifar-100-python", "cifar-100-python.tar.gz", ("train",), ("test",), "meta",
                            {"label": "fine_labels", "coarse_label": "coarse_labels"},
                            {"label": "fine_label_names", "coarse_label": "coarse_label_names"}),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain data and NumPy arrays only: a pickle is a program, and --from may point anywhere."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
                ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(data: bytes, where: str) -> dict:
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any failure means the same thing: not a CIFAR pickle
        raise CorruptDataError(f"{where}: not a readable CIFAR pickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise CorruptDataError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


class _CifarFiles:
    """Members of a CIFAR release read from its folder, from a folder holding it, or from its .tar.gz."""

    def __init__(self, source: Path, layout: CifarLayout):
        self.layout = layout
        self.tar = None
        candidates = [source, source / layout.folder]
        self.folder = next((c for c in candidates if (c / layout.test[0]).is_file()), None)
        archive = source if source.is_file() else source / layout.archive
        if self.folder is None and archive.is_file():
            try:
                self.tar = tarfile.open(archive, "r:*")
                self.members = {Path(m.name).name: m for m in self.tar.getmembers() if m.isfile()}
            except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
                raise CorruptDataError(f"{archive}: not a readable tar archive ({e})") from None
            self.where = archive
        elif self.folder is None:
            raise RawFilesNotFoundError(
                f"{source}: no {layout.folder}/ folder (with {', '.join(layout.train + layout.test)}) "
                f"and no {layout.archive}")

    def read(self, name: str) -> tuple[bytes, str]:
        if self.tar is None:
            path = self.folder / name
            if not path.is_file():
                raise RawFilesNotFoundError(f"{path}: missing")
            return path.read_bytes(), str(path)
        where = f"{self.where}:{self.layout.folder}/{name}"
        if name not in self.members:
            raise RawFilesNotFoundError(f"{where}: missing from the archive")
        try:
            return self.tar.extractfile(self.members[name]).read(), where
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise CorruptDataError(f"{where}: cannot be extracted ({e})") from None


def _cifar_batch(data: bytes, where: str, layout: CifarLayout, num_classes: dict[str, int]):
    batch = _unpickle(data, where)
    missing = [k for k in ["data", *layout.label_keys.values()] if k not in batch]
    if missing:
        raise CorruptDataError(f"{where}: no {missing[0]!r} entry (not a {layout.folder} batch)")
    images = np.asarray(batch["data"])
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
        raise CorruptDataError(f"{where}: 'data' is {images.dtype} {images.shape}, expected uint8 (N, 3072) "
                               "(32x32 RGB images)")
    labels = {}
    for feature, key in layout.label_keys.items():
        values = np.asarray(batch[key], dtype=np.int64)
        if values.shape != (len(images),):
            raise CorruptDataError(f"{where}: {len(values)} {key} for {len(images)} images")
        if len(values) and not 0 <= values.min() <= values.max() < num_classes[feature]:
            raise CorruptDataError(f"{where}: {key} out of range 0..{num_classes[feature] - 1}")
        labels[feature] = values
    # rows are channel-planar (1024 red, 1024 green, 1024 blue): to (N, 32, 32, 3)
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar(source: str | Path, name: str, num_classes: dict[str, int]):
    """CIFAR-10/100 from the python release: {'train'|'test': (images (N,32,32,3), {feature: labels})} and
    {feature: class names} from the meta pickle."""
    layout = CIFAR_LAYOUTS[name]
    files = _CifarFiles(Path(source), layout)
    splits = {}
    for split, members in (("train", layout.train), ("test", layout.test)):
        parts = [_cifar_batch(*files.read(m), layout, num_classes) for m in members]
        images = np.concatenate([p[0] for p in parts])
        labels = {f: np.concatenate([p[1][f] for p in parts]) for f in layout.label_keys}
        splits[split] = (images, labels)
    meta_bytes, where = files.read(layout.meta)
    meta = _unpickle(meta_bytes, where)
    names = {}
    for feature, key in layout.names_keys.items():
        values = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(key, [])]
        if len(values) != num_classes[feature]:
            raise CorruptDataError(f"{where}: {len(values)} {key}, expected {num_classes[feature]}")
        names[feature] = values
    return splits, names


# ---------------------------------------------------------------------------------------------------------------
# ImageNet-style folders: <root>/<split>/<class>/<image>.

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
SPLIT_FOLDERS = {"train": ("train",), "validation": ("val", "validation")}


def list_image_folder(root: str | Path, class_names: list[str]) -> dict[str, list[tuple[Path, str]]]:
    """{split: [(image path, class name)]} for root/train/<class>/* and root/val/<class>/*, sorted; every
    class folder must be one of `class_names`."""
    root = Path(root)
    known = set(class_names)
    splits = {}
    for split, folders in SPLIT_FOLDERS.items():
        folder = next((root / f for f in folders if (root / f).is_dir()), None)
        if folder is None:
            continue
        items = []
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if class_dir.name not in known:
                raise CorruptDataError(f"{class_dir}: {class_dir.name!r} is not a class of this dataset "
                                       f"(expected names like {class_names[0]!r})")
            items += [(p, class_dir.name) for p in sorted(class_dir.iterdir())
                      if p.suffix.lower() in IMAGE_SUFFIXES]
        if not items:
            raise CorruptDataError(f"{folder}: no images in class sub-folders")
        splits[split] = items
    if "train" not in splits:
        raise RawFilesNotFoundError(f"{root}: no train/<class>/ image folders")
    return splits
