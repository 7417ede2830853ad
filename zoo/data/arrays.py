"""The numpy input path: a PipelineSpec served from in-memory arrays as a keras.utils.PyDataset, on any Keras
backend and without TensorFlow (the GPU machines lent here have JAX and no TensorFlow).

    spec = PipelineSpec(image_size=32, channels=1, batch_size=128, training=True, augment="pad_crop_flip", seed=0,
                        repeat=True, drop_remainder=True)
    data = batches("fashion_mnist", "train", spec)       # a keras.utils.PyDataset of (float32 images, int32 labels)
    model.fit(data, steps_per_epoch=..., epochs=...)

What it serves: the fixed-size datasets whose raw files numpy reads (zoo.data.sources): the embedded Fashion-MNIST
sample, MNIST and Fashion-MNIST from their IDX files, CIFAR-10/100 from the python pickles. The raw files are
looked for in `<data dir>/raw/<dataset>/` (the data dir as everywhere: --data-dir, $ZOO_DATA_DIR, else
~/tensorflow_datasets), with the names the catalogue lists under `raw.files`. Variable-size datasets (ImageNet),
the crop augmentations that resample (inception_crop_flip, scale_crop_flip) and the ImageNet eval protocol need
the tf.data pipeline (zoo/data/pipeline.py) and are refused here with a one-line error.

The same rules as the tf.data path, from the same code where it is pure Python (pipeline.resolve_split, the
normalisation constants, the pad/resize decision and the shift of pad_crop_flip): splits and holdouts, 28 -> 32 as a
centred zero pad on raw pixels, flip and pad-crop-flip on uint8 pixels, grey <-> RGB, (x - mean) / std last.
Resizes (other size changes) are done once per split with Pillow (antialiased) and kept as uint8 (the tf.data path
resizes per batch in float: the two differ by rounding, under 0.5 / 255).

Randomness: batch i's shuffle and augmentation come from numpy generators seeded by (seed, pass) and (seed, i): the
same seed gives the same batches, run after run, whatever the threads; each pass over the data is a new order.
Batches are computed ahead by a small thread pool (the GPU must not wait on data); each batch is a function of its
index only, so the threads do not change what is served.
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

import keras
import numpy as np

from . import sources
from .catalogue import DatasetEntry, DatasetError, DatasetNotReadyError, get_dataset, resolve_data_dir
from .holdout import stored_indices
from .pipeline import (GREY_WEIGHTS, PipelineSpec, _embedded_arrays, _pads, _shift_pad, normalisation_values,
                       resolve_split)

__all__ = ["SUPPORTED_AUGMENTS", "ArrayBatches", "batches", "raw_dir", "is_ready", "require_ready", "load_split",
           "pad_crop_flip"]

SUPPORTED_AUGMENTS = ("none", "flip", "pad_crop_flip")
_PIL_FILTERS = {"bilinear": "BILINEAR", "bicubic": "BICUBIC", "nearest": "NEAREST", "area": "BOX"}


# ---------------------------------------------------------------------------------------------------------------
# Sources: the raw files, read once


def raw_dir(name: str, data_dir=None) -> Path:
    """Where the numpy path looks for dataset `name`'s raw files: <data dir>/raw/<name>/."""
    return resolve_data_dir(data_dir) / "raw" / name


def _readable(entry: DatasetEntry) -> bool:
    return bool(entry.embedded) or (entry.raw is not None and entry.raw.format in ("idx", "cifar_pickle"))


def is_ready(name: str, data_dir=None) -> bool:
    """Embedded, or its raw files are in raw_dir(name): what the numpy path can serve."""
    entry = get_dataset(name)
    if entry.embedded:
        return True
    if not _readable(entry):
        return False
    folder = raw_dir(name, data_dir)
    try:
        if entry.raw.format == "idx":
            for split in ("train", "test"):
                sources.find_idx_files(folder, split)
            return True
        return folder.is_dir() and any(folder.iterdir())
    except sources.RawFilesNotFoundError:
        return False


def require_ready(name: str, data_dir=None) -> None:
    """A one-line error saying where to put the raw files, unless the numpy path can serve `name`."""
    entry = get_dataset(name)
    if not _readable(entry):
        raise DatasetError(f"dataset {name!r} (variable-size images) needs the tf.data pipeline, i.e. TensorFlow; "
                           "the numpy path serves the fixed-size datasets read from their raw files (MNIST, "
                           "Fashion-MNIST, CIFAR, the embedded sample)")
    if not is_ready(name, data_dir):
        note = f" ({entry.raw.note})" if entry.raw.note else ""
        raise DatasetNotReadyError(f"dataset {name!r}: no raw files in {raw_dir(name, data_dir)} for the numpy "
                                   f"input path (no TensorFlow): put {', '.join(entry.raw.files)} there{note}")


@lru_cache(maxsize=8)
def _raw_splits(name: str, folder: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    entry = get_dataset(name)
    if entry.raw.format == "idx":
        height, width, _ = entry.image_shape
        return {split: sources.read_idx_split(*sources.find_idx_files(folder, split), image_size=(height, width),
                                              num_classes=entry.num_classes)
                for split in ("train", "test")}
    splits, _ = sources.read_cifar(folder, name, {"label": entry.num_classes})
    return {split: (images, labels["label"]) for split, (images, labels) in splits.items()}


def load_split(name: str, stored: str, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The whole stored split ('train' or 'test') as (uint8 images (N, H, W, C), int32 labels (N,)), read-only."""
    entry = get_dataset(name)
    if entry.embedded:
        return _embedded_arrays(name, stored)
    require_ready(name, data_dir)
    images, labels = _raw_splits(name, str(raw_dir(name, data_dir)))[stored]
    images.setflags(write=False)
    return images, labels.astype(np.int32)


def _sizes(name: str, data_dir) -> dict[str, int]:
    return {split: len(load_split(name, split, data_dir)[1]) for split in ("train", "test")}


# ---------------------------------------------------------------------------------------------------------------
# Geometry and augmentation on uint8 batches (B, H, W, C) of raw 0-255 pixels


def _grey(x: np.ndarray) -> np.ndarray:
    return np.tensordot(x.astype(np.float32), np.asarray(GREY_WEIGHTS, np.float32), axes=([-1], [0]))[..., None]


def _convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    have = x.shape[-1]
    if have == channels:
        return x
    if have == 1 and channels == 3:
        return np.repeat(x, 3, axis=-1)
    if have == 3 and channels == 1:
        return _grey(x)
    raise DatasetError(f"cannot turn {have}-channel images into {channels}-channel ones")


def _pad_to(x: np.ndarray, size: int) -> np.ndarray:
    dh, dw = size - x.shape[1], size - x.shape[2]
    return np.pad(x, [(0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2), (0, 0)])


def _resize_all(images: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    """Every image resized to size x size with Pillow (antialiased when shrinking), rounded back to uint8."""
    from PIL import Image

    method = getattr(Image.Resampling, _PIL_FILTERS[interpolation])
    out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
    for i, image in enumerate(images):
        planes = [np.asarray(Image.fromarray(image[..., c]).resize((size, size), method))
                  for c in range(image.shape[-1])]
        out[i] = np.stack(planes, axis=-1)
    return out


def pad_crop_flip(x: np.ndarray, size: int, pad: int, rng: np.random.Generator, flip: bool = True) -> np.ndarray:
    """Zero-pad by `pad`, take a random size x size crop of each image and mirror a random half of them
    (horizontally): one fancy-indexing gather of the padded batch, integer offsets, an exact pixel copy."""
    if pad:
        x = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    batch, height, width = x.shape[:3]
    top = rng.integers(0, height - size + 1, batch)
    left = rng.integers(0, width - size + 1, batch)
    rows = top[:, None] + np.arange(size)[None]
    cols = left[:, None] + np.arange(size)[None]
    if flip:
        mirrored = rng.random(batch) < 0.5
        cols = np.where(mirrored[:, None], cols[:, ::-1], cols)
    return x[np.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :]]


class _Geometry:
    """The split's images brought to what every batch needs before augmentation (the deterministic part, once),
    and the per-batch treatment: the training augmentation, channels, float, normalisation."""

    def __init__(self, images: np.ndarray, spec: PipelineSpec, mean, std):
        self.spec = spec
        size, have = spec.image_size, images.shape[1]
        if spec.channels < images.shape[-1]:  # fewer channels: convert first (less to move), as tf.data does
            images = np.clip(np.rint(_grey(images)), 0, 255).astype(np.uint8)
        square = images.shape[1] == images.shape[2]
        self.pad_first = 0  # a centred zero pad folded into pad_crop_flip's (28 -> 32, then the shift of 4)
        if spec.pad is not None:  # a weights' own geometry (evaluation): fit to size - 2 * pad, then zero-pad
            inner = size - 2 * spec.pad
            if images.shape[1:3] != (inner, inner):
                images = _resize_all(images, inner, spec.interpolation)
            images = _pad_to(images, size)
        elif have == size and square:
            pass
        elif square and _pads(have, size) and (size - have) % 2 == 0 and spec.augmenting:
            self.pad_first = (size - have) // 2
        elif square and _pads(have, size):
            images = _pad_to(images, size)
        else:
            images = _resize_all(images, size, spec.interpolation)
        self.images = images
        self.scale = (1.0 / np.asarray(std, np.float32)).astype(np.float32)
        self.shift = (-np.asarray(mean, np.float32) / np.asarray(std, np.float32)).astype(np.float32)

    def __call__(self, x: np.ndarray, rng: Optional[np.random.Generator]) -> np.ndarray:
        spec = self.spec
        if spec.augmenting:
            shift = _shift_pad(spec.augment, spec.image_size)
            x = pad_crop_flip(x, spec.image_size, self.pad_first + shift, rng, flip=True)
        x = _convert_channels(x, spec.channels).astype(np.float32)
        if spec.channel_order == "bgr":
            x = x[..., ::-1]
        return x * self.scale + self.shift


def _check(spec: PipelineSpec, entry: DatasetEntry) -> None:
    if spec.augment not in SUPPORTED_AUGMENTS:
        raise DatasetError(f"augment {spec.augment!r} needs the tf.data pipeline (TensorFlow); the numpy path "
                           f"does {', '.join(SUPPORTED_AUGMENTS)}")
    if spec.eval_resize or (spec.eval_crop and spec.eval_crop != spec.image_size):
        raise DatasetError("the ImageNet evaluation protocol (eval_resize / eval_crop) needs the tf.data pipeline")
    if None in tuple(entry.image_shape[:2]):
        raise DatasetError(f"dataset {entry.name!r} has variable-size images: it needs the tf.data pipeline")


# ---------------------------------------------------------------------------------------------------------------
# The dataset


class ArrayBatches(keras.utils.PyDataset):
    """Batches of one split under a PipelineSpec: (images float32 (B, size, size, channels), labels int32 (B,)),
    or `targets(labels)` when given (one-hot labels, one per output). Endless when spec.repeat (num_batches None;
    fit's steps_per_epoch makes the epochs), else one pass per epoch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, spec: PipelineSpec, *, mean, std, seed: int,
                 targets: Optional[Callable[[np.ndarray], object]] = None, prefetch: Optional[int] = None):
        super().__init__(workers=1, use_multiprocessing=False)  # the prefetching is ours, by index
        self.spec, self.labels, self.seed, self.targets = spec, labels, seed, targets
        self.geometry = _Geometry(images, spec, mean, std)
        self.size = len(labels)
        full, remainder = divmod(self.size, spec.batch_size)
        self.per_pass = full if (spec.drop_remainder or not remainder) else full + 1
        if self.per_pass == 0:
            raise DatasetError(f"batch size {spec.batch_size} is larger than the {self.size} images of the split "
                               "with drop_remainder")
        self._passes: dict[int, np.ndarray] = {}
        self._epoch = 0
        self._ahead = prefetch if prefetch is not None else min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self._ahead, thread_name_prefix="zoo-arrays") if self._ahead else None
        self._futures: dict[int, Future] = {}

    @property
    def num_batches(self) -> Optional[int]:
        return None if self.spec.repeat else self.per_pass

    def on_epoch_end(self):
        self._epoch += 1  # a finite training dataset reshuffles each epoch, as tf.data's reshuffle_each_iteration

    def _order(self, pass_index: int) -> np.ndarray:
        if not self.spec.training:
            return np.arange(self.size)
        if pass_index not in self._passes:
            self._passes = {pass_index: np.random.default_rng([self.seed, 0, pass_index]).permutation(self.size),
                            **{k: v for k, v in self._passes.items() if k >= pass_index - 1}}
        return self._passes[pass_index]

    def batch(self, index: int):
        """Batch `index` (counted from the start of the stream, across passes): a pure function of the index."""
        pass_index, position = divmod(index, self.per_pass)
        if not self.spec.repeat:
            pass_index = self._epoch
        start = position * self.spec.batch_size
        chosen = self._order(pass_index)[start:start + self.spec.batch_size]
        rng = np.random.default_rng([self.seed, 1, pass_index, position]) if self.spec.augmenting else None
        x = self.geometry(self.geometry.images[chosen], rng)
        y = self.labels[chosen]
        return x, (self.targets(y) if self.targets else y)

    def __getitem__(self, index: int):
        if self._pool is None:
            return self.batch(index)
        for stale in [i for i in self._futures if i < index]:
            self._futures.pop(stale).cancel()
        limit = index + self._ahead + 1
        if self.num_batches is not None:
            limit = min(limit, self.num_batches)
        for ahead in range(index, limit):
            if ahead not in self._futures:
                self._futures[ahead] = self._pool.submit(self.batch, ahead)
        future = self._futures.pop(index, None)
        return future.result() if future is not None else self.batch(index)


def batches(name: str, split: str, spec: PipelineSpec, *, data_dir=None,
            targets: Optional[Callable[[np.ndarray], object]] = None, prefetch: Optional[int] = None) -> ArrayBatches:
    """Batches of `split` of dataset `name` as `spec` says (the numpy twin of zoo.data.pipeline.batches)."""
    entry = get_dataset(name)
    _check(spec, entry)
    stored, start, stop = resolve_split(entry, split, _sizes(name, data_dir), spec.holdout)
    if stop == start:
        raise DatasetError(f"split {split!r} of {name!r} is empty")
    images, labels = load_split(name, stored, data_dir)
    held = stored_indices(entry, split, start, stop, spec.holdout, lambda: labels)  # stored == "train" when set
    mean, std = normalisation_values(entry, spec.channels, spec.mean, spec.std)
    seed = spec.seed if spec.seed is not None else 0 if spec.deterministic else secrets.randbits(31)
    chosen = slice(start, stop) if held is None else held
    return ArrayBatches(images[chosen], labels[chosen], spec, mean=mean, std=std, seed=seed,
                        targets=targets, prefetch=prefetch)

