"""`zoo data prepare`: turn a dataset into a TFDS dataset in the data dir, online or from the official raw files.

Offline (`from_dir`), the raw files are read and checked in full first (zoo.data.sources), then written by a
subclass of the official TFDS builder whose only change is where the examples come from: same name, version,
features and example keys, so a plain `tfds.load(NAME, data_dir=...)` reads the result like a downloaded copy.

Atomic: everything is written under a temporary folder inside the data dir and the finished version folder is
renamed into place at the end; a failure or Ctrl-C removes the temporary folder, so no half-written dataset can
ever load as if whole.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from . import sources
from .catalogue import (DatasetEntry, DatasetError, DatasetNotReadyError, get_dataset, import_hint, is_ready,
                        prepared_dir, resolve_data_dir)
from ..errors import ZooError
from ..io import FolderLock, LockedError
from .pipeline import import_tfds

__all__ = ["PrepareError", "PrepareResult", "prepare", "read_raw"]


class PrepareError(ZooError, RuntimeError):
    """Preparing failed (download, or writing the TFDS files); the message says how to get the data instead."""


@dataclass
class PrepareResult:
    name: str
    path: Path
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    already: bool = False
    source: str = "download"


# A split's examples: a function returning an iterator of (key, example dict), as TFDS builders yield them.
SplitExamples = dict[str, Callable[[], Iterator[tuple]]]


# ---------------------------------------------------------------------------------------------------------------
# Raw formats -> examples with the official builders' features and keys


def _encode_pngs(images: np.ndarray) -> list[bytes]:
    """PNG-encode a stack of uint8 images in parallel. TFDS would encode them one by one, eagerly: this halves
    the import time of Fashion-MNIST (16 s instead of 35 s on 2 cores); TFDS stores the bytes as given."""
    import tensorflow as tf

    encoded = tf.data.Dataset.from_tensor_slices(images).map(
        tf.io.encode_png, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return [png for batch in encoded.batch(4096).as_numpy_iterator() for png in batch]


def _idx_examples(entry: DatasetEntry, source: Path) -> tuple[SplitExamples, dict]:
    height, width, _ = entry.image_shape
    splits = {split: sources.read_idx_split(*sources.find_idx_files(source, split), image_size=(height, width),
                                            num_classes=entry.num_classes)
              for split in ("train", "test")}

    def generate(pngs, labels):
        for i, (png, label) in enumerate(zip(pngs, labels)):
            yield i, {"image": png, "label": int(label)}  # keyed by index, as the official builder does

    # Encoded only now that every file has been read and checked: corrupt input fails before any work is done.
    return {split: functools.partial(generate, _encode_pngs(images), labels)
            for split, (images, labels) in splits.items()}, {}


def _cifar_examples(entry: DatasetEntry, source: Path) -> tuple[SplitExamples, dict]:
    num_classes = {"label": entry.num_classes}
    if entry.coarse_class_names:
        num_classes["coarse_label"] = len(entry.coarse_class_names)
    splits, names = sources.read_cifar(source, entry.name, num_classes)

    def generate(split, pngs, labels):
        for i, png in enumerate(pngs):
            example = {"id": f"{split}_{i:05d}", "image": png}  # the official builder's ids and keys
            example.update({f: int(v[i]) for f, v in labels.items()})
            yield i, example

    examples = {split: functools.partial(generate, split, _encode_pngs(images), labels)
                for split, (images, labels) in splits.items()}
    return examples, names


def _folder_examples(entry: DatasetEntry, source: Path) -> tuple[SplitExamples, dict]:
    listing = sources.list_image_folder(source, entry.names())

    def generate(items, with_file_name):
        for path, label in items:
            example = {"image": _jpeg_bytes(path), "label": label}
            if with_file_name:
                example["file_name"] = path.name
            yield path.name, example  # the official builders key examples by file name

    with_file_name = entry.tfds.name == "imagenet2012"
    return {split: functools.partial(generate, items, with_file_name) for split, items in listing.items()}, {}


def _jpeg_bytes(path: Path) -> bytes:
    """The file's bytes as a JPEG: a PNG disguised as .JPEG (ImageNet has one) is re-encoded."""
    data = path.read_bytes()
    if data[:3] == b"\xff\xd8\xff":
        return data
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        import tensorflow as tf

        return tf.io.encode_jpeg(tf.io.decode_png(data, channels=3), quality=95).numpy()
    raise sources.CorruptDataError(f"{path}: neither a JPEG nor a PNG image")


_READERS = {"idx": _idx_examples, "cifar_pickle": _cifar_examples, "image_folder": _folder_examples}


def read_raw(name: str, source: str | os.PathLike) -> tuple[SplitExamples, dict]:
    """The examples of every split found in `source`, read and validated, and any class names it defines."""
    entry = get_dataset(name)
    source = Path(source).expanduser()
    if not source.exists():
        raise sources.RawFilesNotFoundError(f"{source}: no such file or directory")
    if entry.raw is None:
        raise DatasetError(f"dataset {name!r} has no raw format to import from")
    return _READERS[entry.raw.format](entry, source)


def _holds_official_archives(entry: DatasetEntry, source: Path) -> bool:
    """`--from DIR` with the manually downloaded archives (ImageNet's tars): the official builder reads those."""
    return (entry.obtain.method == "manual" and source.is_dir()
            and all((source / f).is_file() for f in entry.obtain.files))


# ---------------------------------------------------------------------------------------------------------------
# Writing


@functools.lru_cache(maxsize=None)
def _import_builder_cls(tfds_name: str):
    """The official builder with its examples taken from `split_examples` instead of the network."""
    tfds = import_tfds()

    official = tfds.builder_cls(tfds_name)

    class ImportBuilder(official, skip_registration=True):
        name = official.name

        def __init__(self, *, split_examples: SplitExamples, class_names: dict, **kwargs):
            self._split_examples, self._class_names = split_examples, class_names
            super().__init__(**kwargs)

        def _split_generators(self, dl_manager):
            del dl_manager  # nothing to download
            for feature, names in self._class_names.items():
                self.info.features[feature].names = names
            return {split: examples() for split, examples in self._split_examples.items()}

    # Recorded in dataset_info.json as the official builder's module, as a downloaded copy would record it.
    ImportBuilder.__module__ = official.__module__
    return ImportBuilder


def _unreachable_host(tfds_name: str, timeout: float = 5.0) -> Optional[str]:
    """The first download host (from TFDS's checksum list) that cannot be reached within `timeout` seconds, or
    None. Without this, TFDS retries a dead network with back-off for minutes before it fails."""
    import concurrent.futures
    import socket
    from urllib.parse import urlsplit

    tfds = import_tfds()

    hosts = {}
    for url in tfds.builder_cls(tfds_name).url_infos or {}:
        parts = urlsplit(url)
        hosts.setdefault(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))

    def connect(host, port):
        socket.create_connection((host, port), timeout=timeout).close()

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(hosts)))
    try:
        for host, port in hosts.items():
            try:  # in a thread: name resolution itself has no timeout
                pool.submit(connect, host, port).result(timeout=timeout + 1)
            except (OSError, concurrent.futures.TimeoutError):
                return host
    finally:
        pool.shutdown(wait=False)
    return None


def _manual_files_missing(entry: DatasetEntry, manual_dir: Path) -> list[str]:
    return [f for f in entry.obtain.files if not (manual_dir / f).is_file()]


def _write(entry: DatasetEntry, staging: Path, root: Path, split_examples: Optional[SplitExamples],
           class_names: dict, manual_dir: Optional[Path]) -> None:
    tfds = import_tfds()  # progress bars only on a terminal

    kwargs = dict(data_dir=str(staging), config=entry.tfds.config, version=entry.tfds.version)
    download_config = tfds.download.DownloadConfig(manual_dir=str(manual_dir) if manual_dir else None)
    if split_examples is None:  # the official builder: downloads (or reads manual_dir)
        builder = tfds.builder(entry.tfds.name, **kwargs)
        builder.download_and_prepare(download_dir=str(root / "downloads"), download_config=download_config)
    else:
        builder = _import_builder_cls(entry.tfds.name)(split_examples=split_examples, class_names=class_names,
                                                      **kwargs)
        builder.download_and_prepare(download_dir=str(staging / "downloads"), download_config=download_config)


def _move_into_place(staged: Path, target: Path, force: bool) -> None:
    """Rename the finished version folder to its final place (atomic on one file system)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        if not force:
            raise PrepareError(f"{target} already exists; use --force to replace it")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    try:
        staged.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _counts(entry: DatasetEntry, root: Path) -> dict[str, int]:
    """Examples per split, read back through a plain TFDS builder (proves `tfds.load` will find it)."""
    tfds = import_tfds()

    builder = tfds.builder(entry.tfds.full_name.split(":")[0], data_dir=str(root), version=entry.tfds.version)
    if not builder.is_prepared():
        raise PrepareError(f"{prepared_dir(entry.name, root)}: written but TFDS does not see it as prepared")
    return {split: info.num_examples for split, info in builder.info.splits.items()}


STAGING_PREFIX = ".zoo-prepare-"
STALE_AFTER_S = 10.0  # a staging folder younger than this may be one whose creator has not locked it yet


def remove_stale_staging(root: Path) -> list[Path]:
    """Remove what killed prepares left in the data dir: staging folders nobody holds the lock of, and the old
    copies a --force replacement had set aside."""
    removed = []
    now = time.time()
    for path in sorted(root.glob(f"{STAGING_PREFIX}*")):
        if not path.is_dir() or now - path.stat().st_mtime < STALE_AFTER_S:
            continue
        try:
            with FolderLock(path):
                shutil.rmtree(path, ignore_errors=True)
        except (LockedError, OSError):
            continue  # a prepare in progress, or not ours to remove
        removed.append(path)
    for old in [*root.glob("*/.*.old-*"), *root.glob("*/*/.*.old-*")]:  # <name>[/<config>]/.<version>.old-<pid>
        replaced = old.with_name(old.name[1:].rsplit(".old-", 1)[0])
        if old.is_dir() and replaced.is_dir():  # the replacement landed: the set-aside copy is garbage
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old)
    return removed


def prepare(name: str, from_dir: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None, *,
            force: bool = False) -> PrepareResult:
    """Make `name` loadable with `tfds.load(name, data_dir=...)`: from the raw files in `from_dir`, or else
    with TFDS's own download (manual files for ImageNet, in <data_dir>/downloads/manual/)."""
    entry = get_dataset(name)
    if entry.embedded:
        raise DatasetError(f"dataset {name!r} is embedded in the package: it needs no preparing")
    root = resolve_data_dir(data_dir)
    target = prepared_dir(name, root)
    if is_ready(name, root) and not force:
        return PrepareResult(name, target, _counts(entry, root), already=True, source="already prepared")

    start = time.perf_counter()
    manual_dir = root / "downloads" / "manual" if entry.obtain.method == "manual" else None
    split_examples, class_names = None, {}
    if from_dir is not None and _holds_official_archives(entry, Path(from_dir).expanduser()):
        manual_dir = Path(from_dir).expanduser()
    elif from_dir is not None:
        split_examples, class_names = read_raw(name, from_dir)
    if split_examples is None and manual_dir is not None:
        missing = _manual_files_missing(entry, manual_dir)
        if missing:
            raise DatasetNotReadyError(
                f"{name} needs a manual download from {entry.obtain.url or entry.homepage}: put "
                f"{' and '.join(missing)} in {manual_dir}/ and run this again, or use {import_hint(entry)}")

    if split_examples is None and manual_dir is None:
        host = _unreachable_host(entry.tfds.name)
        if host:
            how = f"use {import_hint(entry)}" if entry.raw else "try again online"
            raise PrepareError(f"cannot download {name}: {host} is unreachable (offline?); {how}")

    root.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(root)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{name}-", dir=root))
    lock = FolderLock(staging).acquire()  # marks it live: another prepare's clean-up leaves it alone
    try:
        try:
            _write(entry, staging, root, split_examples, class_names, manual_dir)
        except ZooError:
            raise
        except Exception as e:  # noqa: BLE001 - TFDS/network failures: one line and the way around them
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            how = f"; offline, use {import_hint(entry)}" if from_dir is None and entry.raw else ""
            raise PrepareError(f"preparing {name} failed: {type(e).__name__}: {first}{how}") from e
        staged = staging / entry.tfds.relative_dir
        _move_into_place(staged, target, force)
        config_meta = staging / entry.tfds.name / ".config"  # default-config marker of multi-config datasets
        if config_meta.is_dir() and not (root / entry.tfds.name / ".config").exists():
            config_meta.rename(root / entry.tfds.name / ".config")
    finally:
        lock.release()
        shutil.rmtree(staging, ignore_errors=True)
    return PrepareResult(name, target, _counts(entry, root), seconds=time.perf_counter() - start,
                         source=str(from_dir) if from_dir is not None else "download")
