"""Input pipelines: a catalogue dataset and split -> tf.data.Dataset of (images float32 (B,H,W,C), labels int32 (B,)).

    spec = PipelineSpec(image_size=32, channels=3, batch_size=128, training=True, augment="pad_crop_flip", seed=0)
    ds = batches("cifar10", "train", spec)
    ds = make_dataset("cifar10", "test", image_size=32, channels=3, batch_size=256, training=False)  # keywords

The data layer knows datasets, not models: what a model needs (its input size, channels, evaluation protocol, a
recipe's augmentation) is translated into a PipelineSpec by the training harness (zoo/training/inputs.py).

Splits: "train", "validation", "test", "train_full", and slices of them ("train[:1000]", "test[:10%]"). Where the
dataset has no validation split of its own, "validation" is `holdout` training images (catalogue or recipe),
stratified by class and seeded (zoo/data/holdout.py), and "train" the rest; "train_full" is always all of the
training split, in stored order.

Order of work (small, fixed-size datasets: MNIST, CIFAR, the sample): the split decoded once into one uint8 tensor
in memory (the cache, before any augmentation) -> shuffled indices (seeded) -> batches of indices -> one vectorised
map per batch (gather, grey<->RGB, geometry: pad / resize / crop, augmentation, to float, normalisation) ->
prefetch. Variable-size datasets (ImageNet) are streamed from the TFDS files with the images still encoded through
the shuffle buffer, and decoded, cropped and resized per image before batching.

Randomness comes only from stateless ops seeded per batch (or per image) from tf.data.Dataset.random(seed): the same
seed gives the same batches, epoch after epoch, run after run, whatever the parallelism; each epoch still differs
from the previous one.

Geometry: 28x28 -> 32x32 is zero padding (2 px each side, as LeCun padded MNIST for LeNet-5); other size changes
are resizes (`interpolation`); `eval_resize` resizes the shorter side then center-crops (ImageNet protocol).
Padding and augmentation happen on raw 0-255 pixels, so padded pixels are black (the background of (Fashion-)MNIST),
and normalisation ((x - mean) / std, 0-255 scale) comes last.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import backend


class _TensorFlowOnUse:
    """`tf`, imported on first use: the numpy path (zoo/data/arrays.py, Keras on JAX or PyTorch) shares this
    module's pure-Python parts (PipelineSpec, the split rules, the normalisation) without TensorFlow's import."""

    def __getattr__(self, name):
        import tensorflow

        return getattr(tensorflow, name)


tf = _TensorFlowOnUse()

from ..choices import AUGMENTS, CHANNEL_ORDERS, INTERPOLATIONS
from . import sources
from .holdout import applies as holdout_applies, stored_indices
from .catalogue import (SPLITS, DatasetEntry, DatasetError, DatasetInfo, dataset_info, effective_holdout,
                        get_dataset, prepared_dir, require_ready, resolve_data_dir, sample_dir)

__all__ = ["AUGMENTS", "INTERPOLATIONS", "PipelineSpec", "batches", "make_dataset", "dataset_info", "DatasetInfo",
           "mixup", "cutmix", "random_erasing", "batch_augment"]

AUTOTUNE = -1  # tf.data.AUTOTUNE
EVAL_CROP_FRACTION = 0.875  # variable-size images without eval_resize: shorter side to size / 0.875 (256 for 224)
SCALE_RANGE = (256, 480)  # scale augmentation: shorter side in [256, 480] for a 224 crop (VGG sec. 3.1, ResNet 3.4)
INCEPTION_AREA, INCEPTION_RATIO = (0.08, 1.0), (3 / 4, 4 / 3)  # Szegedy et al. 2015 (GoogLeNet), sec. 6
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # ITU-R 601 luma, as tf.image.rgb_to_grayscale
_SPLIT = re.compile(r"^(\w+)(?:\[(-?\d+%?)?:(-?\d+%?)?\])?$")


# ---------------------------------------------------------------------------------------------------------------
# Splits


def _slice_bound(text: Optional[str], length: int) -> Optional[int]:
    if not text:
        return None
    if text.endswith("%"):
        return round(int(text[:-1]) * length / 100)
    return int(text)


def resolve_split(entry: DatasetEntry, split: str, sizes: dict[str, int], holdout: Optional[int] = None):
    """A pipeline split -> (stored split, start, stop) in the stored order; `sizes` are the stored split sizes."""
    match = _SPLIT.fullmatch(split.strip())
    if not match or match.group(1) not in SPLITS:
        raise DatasetError(f"unknown split {split!r}: use train, validation, test or train_full, optionally sliced "
                           "like 'train[:1000]' or 'test[:10%]'")
    name, lo, hi = match.groups()
    n = effective_holdout(entry, holdout)
    train = sizes.get("train", 0)
    if n and n >= train:
        raise DatasetError(f"holdout {n} leaves no training images: {entry.name!r} has {train} in the data dir")
    if name == "train_full" or (name == "train" and not n):
        stored, start, stop = "train", 0, train
    elif name == "train":
        stored, start, stop = "train", 0, train - n
    elif name == "validation" and n:
        stored, start, stop = "train", train - n, train
    elif name in sizes:
        stored, start, stop = name, 0, sizes[name]
    else:
        hint = ("it has no validation split and no holdout: give a recipe with `validation: N`"
                if name == "validation" else f"its splits are {', '.join(sizes)}")
        raise DatasetError(f"dataset {entry.name!r} has no {name!r} split; {hint}")
    length = stop - start
    a, b, _ = slice(_slice_bound(lo, length), _slice_bound(hi, length)).indices(length)
    return stored, start + a, start + max(a, b)


# ---------------------------------------------------------------------------------------------------------------
# Sources: (image uint8 (H,W,C) or encoded bytes, label int32)


@lru_cache(maxsize=4)
def _embedded_arrays(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    entry = get_dataset(name)
    height, width, _ = entry.image_shape
    images, labels = sources.read_idx_split(*sources.find_idx_files(sample_dir(entry), split),
                                            image_size=(height, width), num_classes=entry.num_classes)
    images.setflags(write=False)
    return images, labels.astype(np.int32)


def _stored_sizes(entry: DatasetEntry, root) -> dict[str, int]:
    """Split sizes of what is actually in the data dir (read from TFDS's dataset_info.json, no TFDS call)."""
    if entry.embedded:
        return {split: len(_embedded_arrays(entry.name, split)[1]) for split in ("train", "test")}
    if entry.folder:  # scanned just now (zoo/data/folder.py): the entry's sizes are the folder's
        return dict(entry.splits)
    try:
        info = json.loads((prepared_dir(entry.name, root) / "dataset_info.json").read_text())
        sizes = {s["name"]: sum(int(n) for n in s.get("shardLengths", [])) for s in info.get("splits", [])}
    except (OSError, ValueError, KeyError):
        sizes = {}
    return sizes or dict(entry.splits)


def import_tfds():
    """tensorflow_datasets, its progress bars off when stderr is not a terminal (tqdm redraws them with escape
    codes: junk in a pipe or a log file). Every zoo path to TFDS (reading here, writing in prepare.py) takes it
    from here, so no command (train, eval, data bench, data prepare) prints them into a pipe."""
    import sys

    import tensorflow_datasets as tfds

    isatty = getattr(sys.stderr, "isatty", None)
    if not (isatty and isatty()):
        tfds.disable_progress_bar()
    return tfds


def _stream(entry: DatasetEntry, stored: str, start: int, stop: int, *, root, training: bool, seed: int,
            encoded: bool, indices: Optional[np.ndarray] = None) -> tf.data.Dataset:
    """The examples read from the TFDS files (images encoded, when `encoded`, to keep shuffle buffers small).
    `indices` (sorted stored indices: a holdout's side) are read in stored order and picked by position. An image
    folder's files are read by zoo/data/folder.py (always encoded; shuffled by file name when training)."""
    if entry.folder:
        from . import folder

        return folder.stream(entry, stored, start, stop, training=training, seed=seed, indices=indices)
    tfds = import_tfds()

    if indices is not None:
        start, stop, training = 0, int(indices[-1]) + 1, False  # positions must be the stored ones
    ds = tfds.load(entry.tfds.full_name, split=f"{stored}[{start}:{stop}]", data_dir=str(root),
                   as_supervised=True, download=False, shuffle_files=training,
                   decoders={"image": tfds.decode.SkipDecoding()} if encoded else None,
                   read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False))
    if indices is not None:
        wanted = np.zeros(stop, dtype=bool)
        wanted[indices] = True
        wanted = tf.constant(wanted)
        def chosen(i, example):  # named functions: two lambdas on one line make AutoGraph warn on stderr
            return tf.gather(wanted, i)

        def example_of(i, example):
            return example

        ds = ds.enumerate().filter(chosen).map(example_of)
    return ds.map(lambda image, label: (image, tf.cast(label, tf.int32)))


@lru_cache(maxsize=8)
def _stored_train_labels(name: str, root: str, size: int) -> np.ndarray:
    """The labels of the stored training split, in stored order (what the holdout is stratified on); `size`
    keys the cache to what is in the data dir now."""
    entry = get_dataset(name)
    if entry.embedded:
        return _embedded_arrays(name, "train")[1]
    if entry.folder:  # known from the folder's listing: no file is read
        from . import folder

        return folder.scan(entry.folder).labels["train"]
    ds = _stream(entry, "train", 0, size, root=root, training=False, seed=0, encoded=True)
    return np.concatenate([labels for _, labels in ds.map(lambda image, label: (0, label)).batch(65536)
                           .as_numpy_iterator()] or [np.zeros(0, np.int32)])


def _in_memory(entry: DatasetEntry, stored: str, start: int, stop: int, *, root,
               indices: Optional[np.ndarray] = None) -> tuple[tf.Tensor, tf.Tensor]:
    """The whole (sliced) split decoded into two tensors: the cache of small fixed-size datasets. `indices`:
    these stored images (a holdout's side) instead of the range."""
    if entry.embedded:
        images, labels = _embedded_arrays(entry.name, stored)
        chosen = slice(start, stop) if indices is None else indices
        return tf.constant(images[chosen]), tf.constant(labels[chosen])
    stream = _stream(entry, stored, start, stop, root=root, training=False, seed=0, encoded=False, indices=indices)
    images, labels = next(iter(stream.batch(max(1, stop - start))), (None, None))
    if images is None:
        raise DatasetError(f"split {stored}[{start}:{stop}] of {entry.name!r} is empty")
    return images, labels


# ---------------------------------------------------------------------------------------------------------------
# Geometry and augmentation on batches (B, H, W, C) of raw 0-255 pixels, uint8 or float. `seed`: a [2] int tensor.


def _seeds(seed, n: int):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def _convert_channels(x, channels: int):
    have = x.shape[-1]
    if have == channels:
        return x
    if have == 1 and channels == 3:
        return tf.repeat(x, 3, axis=-1)
    if have == 3 and channels == 1:
        return tf.reduce_sum(x * tf.constant(GREY_WEIGHTS, x.dtype), axis=-1, keepdims=True)
    raise DatasetError(f"cannot turn {have}-channel images into {channels}-channel ones")


def _pads(have: int, want: int) -> bool:
    """Small enlargements are zero padding (28 -> 32 as for LeNet-5); larger ones are resizes."""
    return 0 < want - have <= have // 4


def _pad_to(x, size: int):
    dh, dw = size - tf.shape(x)[1], size - tf.shape(x)[2]
    return tf.pad(x, [[0, 0], [dh // 2, dh - dh // 2], [dw // 2, dw - dw // 2], [0, 0]])


def _resize(x, height, width, interpolation: str):
    return tf.image.resize(x, [height, width], method=interpolation, antialias=True)


def _center_crop(x, size: int):
    top, left = (tf.shape(x)[-3] - size) // 2, (tf.shape(x)[-2] - size) // 2
    return x[..., top:top + size, left:left + size, :]


def _shorter_side_to(x, side: int, interpolation: str):
    height, width = tf.cast(tf.shape(x)[-3], tf.float32), tf.cast(tf.shape(x)[-2], tf.float32)
    scale = side / tf.minimum(height, width)
    new_h = tf.cast(tf.round(height * scale), tf.int32)
    new_w = tf.cast(tf.round(width * scale), tf.int32)
    return _resize(x, new_h, new_w, interpolation)


def _base_geometry(x, size: int, eval_resize: Optional[int], crop: int, interpolation: str, fixed: bool,
                   pad: Optional[int] = None):
    """The deterministic geometry of evaluation (and of training without crop augmentation). `pad` (evaluation
    only, without eval_resize): fit to size - 2 * pad and zero-pad, whatever the images' size (a weights' own
    geometry, zoo.preprocess.Preprocessing's), instead of the rule below."""
    if pad is not None and eval_resize is None:
        inner = size - 2 * pad
        if not (x.shape[-3] == inner and x.shape[-2] == inner):
            x = _resize(x, inner, inner, interpolation)
        return tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) if pad else x
    if eval_resize is None and fixed:
        have = x.shape[-3]
        if have == size and x.shape[-2] == size:
            return x
        if have is not None and _pads(have, size) and x.shape[-2] == have:
            return _pad_to(x, size)
        return _resize(x, size, size, interpolation)
    side = eval_resize or round(crop / EVAL_CROP_FRACTION)
    x = _center_crop(_shorter_side_to(x, side, interpolation), crop)
    return x if crop == size else _resize(x, size, size, interpolation)


def _flip_columns(cols, seed):
    """Column indices (B, W) reversed for a random half of the images: a horizontal flip done by the gather."""
    flip = tf.random.stateless_uniform([tf.shape(cols)[0]], seed) < 0.5
    return tf.where(flip[:, None], tf.reverse(cols, axis=[1]), cols)


def _pad_crop_flip(x, size: int, pad: int, seed):
    """Zero-pad by `pad`, take a random size x size crop per image and flip half of them: one gather of pixels
    from the flattened batch (integer offsets: an exact pixel copy; 1.6x faster than gathering rows then columns)."""
    x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    rows_seed, cols_seed, flip_seed = _seeds(seed, 3)
    top = tf.random.stateless_uniform([batch], rows_seed, 0, height - size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], cols_seed, 0, width - size + 1, dtype=tf.int32)
    rows = top[:, None] + tf.range(size)[None]
    cols = _flip_columns(left[:, None] + tf.range(size)[None], flip_seed)
    pixel = (tf.range(batch) * height * width)[:, None, None] + rows[:, :, None] * width + cols[:, None, :]
    return tf.gather(tf.reshape(x, [-1, x.shape[-1]]), pixel)


def inception_boxes(batch, height, width, seed, attempts: int = 10):
    """Random-resized-crop boxes [y0, x0, y1, x1] (fractions): area 8%-100% of the image, aspect 3/4-4/3 (log-
    uniform); the first of `attempts` draws that fits, else the whole image (as torchvision does)."""
    area_seed, ratio_seed, y_seed, x_seed = _seeds(seed, 4)
    area = tf.random.stateless_uniform([batch, attempts], area_seed, *INCEPTION_AREA)
    log_ratio = tf.random.stateless_uniform([batch, attempts], ratio_seed, math.log(INCEPTION_RATIO[0]),
                                            math.log(INCEPTION_RATIO[1]))
    ratio = tf.exp(log_ratio)
    aspect = tf.cast(width, tf.float32) / tf.cast(height, tf.float32)  # w/h of the image
    h = tf.sqrt(area / ratio * aspect)  # crop height as a fraction of the image height
    w = tf.sqrt(area * ratio / aspect)
    fits = (h <= 1.0) & (w <= 1.0)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    any_fit = tf.reduce_any(fits, axis=1)
    h = tf.where(any_fit, tf.gather(h, first, batch_dims=1), 1.0)
    w = tf.where(any_fit, tf.gather(w, first, batch_dims=1), 1.0)
    return _place(h, w, y_seed, x_seed)


def scale_boxes(batch, height, width, size: int, seed):
    """Scale augmentation: shorter side resized to S in [256, 480] * size / 224 (uniform integer), then a random
    size x size crop: as a box of the original image."""
    s_seed, y_seed, x_seed = _seeds(seed, 3)
    low, high = (round(s * size / 224) for s in SCALE_RANGE)
    scale = tf.cast(tf.random.stateless_uniform([batch], s_seed, low, high + 1, dtype=tf.int32), tf.float32)
    height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    shorter = tf.minimum(height, width)
    side = size * shorter / scale  # the crop's side in original pixels
    return _place(tf.minimum(side / height, 1.0), tf.minimum(side / width, 1.0), y_seed, x_seed)


def _place(h, w, y_seed, x_seed):
    y0 = tf.random.stateless_uniform(tf.shape(h), y_seed) * (1.0 - h)
    x0 = tf.random.stateless_uniform(tf.shape(w), x_seed) * (1.0 - w)
    return tf.stack([y0, x0, y0 + h, x0 + w], axis=1)


def _sample_points(lo, hi, side, size: int):
    """crop_and_resize's coordinates for resampling the extent [lo, hi] (fractions of `side` pixels) to `size`
    pixels with half-pixel centres, as tf.image.resize does: it wants the first and last sampling positions in
    pixel-centre units divided by (side - 1); positions are clamped to the image (edge pixels repeat)."""
    side = tf.cast(side, tf.float32)
    step = (hi - lo) * side / size
    first = lo * side + 0.5 * step - 0.5
    last = first + (size - 1) * step
    top = side - 1.0

    def scaled(position):
        return tf.clip_by_value(position, 0.0, top) / tf.maximum(top, 1.0)

    return scaled(first), scaled(last)


def _crop_boxes_batch(x, boxes, size: int, interpolation: str):
    """Crop each image of a fixed-size batch to its box (fractions [y0, x0, y1, x1]) and resize it to size x size:
    one vectorised op for the whole batch."""
    y0, y1 = _sample_points(boxes[:, 0], boxes[:, 2], tf.shape(x)[1], size)
    x0, x1 = _sample_points(boxes[:, 1], boxes[:, 3], tf.shape(x)[2], size)
    method = "nearest" if interpolation == "nearest" else "bilinear"
    return tf.image.crop_and_resize(x, tf.stack([y0, x0, y1, x1], axis=1), tf.range(tf.shape(x)[0]), [size, size],
                                    method=method)


def _shift_pad(augment: str, size: int) -> int:
    """pad_crop_flip pads by size / 8 (4 px at 32, ResNet sec. 4.2) and crops back; flip alone moves nothing."""
    return max(1, size // 8) if augment == "pad_crop_flip" else 0


def _augment_batch(x, augment: str, size: int, seed, eval_resize, crop, interpolation):
    """Training geometry of a fixed-size batch."""
    if augment in ("inception_crop_flip", "scale_crop_flip"):
        geometry_seed, flip_seed = _seeds(seed, 2)
        batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        boxes = (inception_boxes(batch, height, width, geometry_seed) if augment == "inception_crop_flip"
                 else scale_boxes(batch, height, width, size, geometry_seed))
        return _pad_crop_flip(_crop_boxes_batch(x, boxes, size, interpolation), size, 0, flip_seed)
    have = x.shape[1]
    if (augment != "none" and eval_resize is None and have is not None and x.shape[2] == have
            and (have == size or _pads(have, size)) and (size - have) % 2 == 0):
        # the base geometry is a centred zero pad (28 -> 32): fold it into the shift's pad, one pad instead of two
        return _pad_crop_flip(x, size, (size - have) // 2 + _shift_pad(augment, size), seed)
    x = _base_geometry(x, size, eval_resize, crop, interpolation, fixed=True)
    return x if augment == "none" else _pad_crop_flip(x, size, _shift_pad(augment, size), seed)


def _augment_image(image, augment: str, size: int, seed, eval_resize, crop, interpolation):
    """Training geometry of one variable-size image (crop in integer pixels, then an antialiased resize)."""
    if augment in ("inception_crop_flip", "scale_crop_flip"):
        geometry_seed, flip_seed = _seeds(seed, 2)
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        boxes = (inception_boxes(1, height, width, geometry_seed) if augment == "inception_crop_flip"
                 else scale_boxes(1, height, width, size, geometry_seed))
        box = boxes[0] * tf.cast(tf.stack([height, width, height, width]), tf.float32)
        top, left = tf.cast(tf.round(box[0]), tf.int32), tf.cast(tf.round(box[1]), tf.int32)
        h = tf.clip_by_value(tf.cast(tf.round(box[2] - box[0]), tf.int32), 1, height - top)
        w = tf.clip_by_value(tf.cast(tf.round(box[3] - box[1]), tf.int32), 1, width - left)
        x = _resize(image[top:top + h, left:left + w][None], size, size, interpolation)
        return _pad_crop_flip(x, size, 0, flip_seed)[0]
    x = _base_geometry(tf.cast(image, tf.float32)[None], size, eval_resize, crop, interpolation, fixed=False)
    return x[0] if augment == "none" else _pad_crop_flip(x, size, _shift_pad(augment, size), seed)[0]


# ---------------------------------------------------------------------------------------------------------------
# Normalisation constants


def _normalisation(entry: DatasetEntry, channels: int, mean, std):
    mean, std = normalisation_values(entry, channels, mean, std)
    return tf.constant(mean, tf.float32), tf.constant(std, tf.float32)


def normalisation_values(entry: DatasetEntry, channels: int, mean, std) -> tuple[list, list]:
    """Per-channel mean and std (0-255 scale) for `channels`-channel batches of `entry`: the given ones or the
    catalogue's, adapted to the channel count."""
    have = entry.image_shape[2]
    mean = list(entry.mean if mean is None else mean)
    std = list(entry.std if std is None else std)
    for what, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, have, channels):
            raise DatasetError(f"{what} has {len(values)} values; expected {channels} (one per channel)")
    if len(mean) != channels or len(std) != channels:
        if channels == 3:  # grey statistics for RGB copies of grey images
            mean, std = mean * 3 if len(mean) == 1 else mean, std * 3 if len(std) == 1 else std
        else:  # RGB statistics for grey images made from RGB ones (luma of the mean; the std approximately)
            mean = [sum(w * m for w, m in zip(GREY_WEIGHTS, mean))] if len(mean) == 3 else mean
            std = [sum(w * s for w, s in zip(GREY_WEIGHTS, std))] if len(std) == 3 else std
    if min(std) <= 0:
        raise DatasetError(f"std must be positive, got {std}")
    return mean, std


# ---------------------------------------------------------------------------------------------------------------
# The pipeline: one frozen PipelineSpec, a split resolved against the catalogue, then one of two paths


@dataclass(frozen=True)
class PipelineSpec:
    """What a pipeline serves, in the data layer's own terms (no model registry): the batches' geometry, the
    training treatment and the speed knobs. Checked when made, so a bad request fails before any TensorFlow work.

    training: shuffle (seeded) and apply `augment` (one of AUGMENTS); evaluation is deterministic.
    seed: makes the pipeline reproducible (shuffle, augmentation, file order, order-preserving parallelism).
      deterministic=True: the same without a seed (seed 0). Without either, a training pipeline is random and its
      parallel stages may reorder; evaluation (training=False) always keeps the stored order.
    eval_resize / eval_crop: shorter side resized to eval_resize, center crop of eval_crop (default image_size).
    pad: evaluation without eval_resize: every image fitted to image_size - 2 * pad (resized when it is another
      size) and zero-padded by `pad` each side (0: resized to image_size); None: the rule above (small
      enlargements of fixed-size images are zero padding, 28 -> 32; other size changes are resizes).
    channel_order: "bgr" reverses the channels after the geometry, before normalisation (Keras' caffe weights).
    mean / std: per channel (in channel_order), 0-255 scale; None: the dataset's (catalogue).
    holdout: training images held out as "validation" (None: the catalogue's).
    cache: hold the decoded split of a fixed-size dataset (MNIST, CIFAR) in memory, decoded once, before any
      augmentation (the embedded sample always is); False streams it from the TFDS files each epoch.
      Variable-size datasets (ImageNet) are always streamed.
    threads: size of a private tf.data thread pool (None: TensorFlow's default).
    """

    image_size: int
    channels: int
    batch_size: int
    training: bool
    augment: str = "none"
    seed: Optional[int] = None
    deterministic: bool = False
    eval_resize: Optional[int] = None
    eval_crop: Optional[int] = None
    pad: Optional[int] = None
    channel_order: str = "rgb"
    mean: Optional[Sequence[float]] = None
    std: Optional[Sequence[float]] = None
    interpolation: str = "bilinear"
    holdout: Optional[int] = None
    shuffle_buffer: Optional[int] = None
    drop_remainder: bool = False
    cache: bool = True
    repeat: bool = False
    threads: Optional[int] = None

    def __post_init__(self):
        if self.augment not in AUGMENTS:
            raise DatasetError(f"unknown augment {self.augment!r}; choose from {', '.join(AUGMENTS)}")
        if self.interpolation not in INTERPOLATIONS:
            raise DatasetError(f"unknown interpolation {self.interpolation!r}; choose from "
                               f"{', '.join(INTERPOLATIONS)}")
        if self.image_size <= 0 or self.batch_size <= 0 or self.channels not in (1, 3):
            raise DatasetError(f"need image_size > 0, batch_size > 0 and 1 or 3 channels (got {self.image_size}, "
                               f"{self.batch_size}, {self.channels})")
        if self.channel_order not in CHANNEL_ORDERS or (self.channel_order == "bgr" and self.channels != 3):
            raise DatasetError(f"channel_order {self.channel_order!r}: choose from {', '.join(CHANNEL_ORDERS)} "
                               "(bgr needs 3 channels)")
        if self.pad is not None and (self.training or self.eval_resize or not 0 <= self.pad < self.image_size / 2):
            raise DatasetError(f"pad {self.pad}: an evaluation geometry without eval_resize, 0 <= pad < "
                               f"image_size / 2 (image_size {self.image_size})")

    @property
    def crop(self) -> int:
        return self.eval_crop or self.image_size

    @property
    def augmenting(self) -> bool:
        return self.training and self.augment != "none"

    @property
    def ordered(self) -> bool:
        """Whether parallel stages keep the order: a seeded or deterministic pipeline, and every evaluation."""
        return self.deterministic or self.seed is not None or not self.training


@dataclass(frozen=True)
class _Source:
    """A split resolved against the catalogue and the data dir, with the constants its batches need."""

    entry: DatasetEntry
    root: Path
    stored: str  # the stored split the examples come from, and their range in its order
    start: int
    stop: int
    seed: int  # the pipeline's seed, drawn when none was given
    ordered: bool
    scale: tf.Tensor  # (x - mean) / std as x * scale + shift
    shift: tf.Tensor
    indices: Optional[np.ndarray] = None  # the stored images of a holdout's side (zoo/data/holdout.py), else None

    @property
    def size(self) -> int:
        return self.stop - self.start

    def stream(self, *, training: bool, encoded: bool) -> tf.data.Dataset:
        return _stream(self.entry, self.stored, self.start, self.stop, root=self.root, training=training,
                       seed=self.seed, encoded=encoded, indices=self.indices)


def _resolve(name: str, split: str, spec: PipelineSpec, data_dir) -> _Source:
    entry = get_dataset(name)
    root = resolve_data_dir(data_dir)
    if entry.tfds:
        require_ready(name, root)  # before any TFDS call: never a download attempt, never a hang
    seed = spec.seed if spec.seed is not None else 0 if spec.deterministic else secrets.randbits(31)
    mean, std = _normalisation(entry, spec.channels, spec.mean, spec.std)
    sizes = _stored_sizes(entry, root)
    labels = lambda: _stored_train_labels(entry.name, str(root), sizes.get("train", 0))  # noqa: E731
    if holdout_applies(entry, split, spec.holdout):
        sizes = {**sizes, "train": len(labels())}  # a holdout reads the labels anyway: their count is the truth
    stored, start, stop = resolve_split(entry, split, sizes, spec.holdout)
    if stop == start:
        raise DatasetError(f"split {split!r} of {name!r} is empty")
    indices = stored_indices(entry, split, start, stop, spec.holdout, labels)
    return _Source(entry, root, stored, start, stop, seed, spec.ordered, 1.0 / std, -mean / std, indices)


def _shuffled_and_repeated(ds, spec: PipelineSpec, source: _Source, buffer: int) -> tf.data.Dataset:
    if spec.training:
        buffer = spec.shuffle_buffer or buffer
        ds = ds.shuffle(max(1, min(buffer, source.size)), seed=source.seed, reshuffle_each_iteration=True)
    return ds.repeat() if spec.repeat else ds


def _randoms(seed: int) -> tf.data.Dataset:
    """One [2] seed per element or batch: new values each epoch, the same in every run."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).map(
        lambda r: tf.stack([r, tf.constant(seed, tf.int64)]))


def _map(ds, fn, source: _Source, *, seeded: bool) -> tf.data.Dataset:
    """`fn(element)` over the elements, or `fn(element, seed)` with a stateless seed per element when `seeded`."""
    if seeded:
        ds = tf.data.Dataset.zip((ds, _randoms(source.seed)))
        return ds.map(fn, num_parallel_calls=AUTOTUNE, deterministic=source.ordered)
    return ds.map(lambda *element: fn(element if len(element) > 1 else element[0]), num_parallel_calls=AUTOTUNE,
                  deterministic=source.ordered)


def _model_input(x, spec: PipelineSpec, source: _Source, geometry=None):
    """A batch of raw pixels -> the model's input: channels, `geometry` (fixed-size batches), float, normalised.
    Pads, crops and flips move uint8 pixels (4x less memory traffic than float32); resizes output float32.
    Fewer channels: convert first (less to resize); more channels: convert last (grey is resized once)."""
    if spec.channels < x.shape[-1]:
        x = _convert_channels(tf.cast(x, tf.float32), spec.channels)
    if geometry is not None:
        x = geometry(x)
    x = _convert_channels(tf.cast(x, tf.float32), spec.channels)
    if spec.channel_order == "bgr":
        x = x[..., ::-1]
    x = x * source.scale + source.shift
    return tf.ensure_shape(x, [None, spec.image_size, spec.image_size, spec.channels])


def _fixed_size_batches(source: _Source, spec: PipelineSpec) -> tf.data.Dataset:
    """Fixed-size images (MNIST, CIFAR, the sample): whole batches, geometry and augmentation vectorised per batch.
    Cached: the decoded split is one tensor in memory; shuffled indices are batched and gathered (no per-image
    work in tf.data at all). Otherwise the decoded examples are streamed from the TFDS files and batched."""
    in_memory = spec.cache or bool(source.entry.embedded)
    if in_memory:
        images, labels = _in_memory(source.entry, source.stored, source.start, source.stop, root=source.root,
                                    indices=source.indices)
        ds = tf.data.Dataset.range(int(images.shape[0]))
    else:
        ds = source.stream(training=spec.training, encoded=False)
    ds = _shuffled_and_repeated(ds, spec, source, buffer=source.size)
    ds = ds.batch(spec.batch_size, drop_remainder=spec.drop_remainder)

    def per_batch(batch, batch_seed=None):
        x, y = (tf.gather(images, batch), tf.gather(labels, batch)) if in_memory else batch
        if spec.augmenting:
            def geometry(x):
                return _augment_batch(x, spec.augment, spec.image_size, batch_seed, spec.eval_resize, spec.crop,
                                      spec.interpolation)
        else:
            def geometry(x):
                return _base_geometry(x, spec.image_size, spec.eval_resize, spec.crop, spec.interpolation,
                                      fixed=True, pad=spec.pad)
        return _model_input(x, spec, source, geometry), y

    return _map(ds, per_batch, source, seeded=spec.augmenting)


def _variable_size_batches(source: _Source, spec: PipelineSpec) -> tf.data.Dataset:
    """Variable-size images (ImageNet): streamed still encoded through the shuffle buffer (small buffers), each
    image decoded, cropped and resized to the input size, then batched."""
    ds = source.stream(training=spec.training, encoded=True)
    if source.entry.folder:  # its file names were shuffled whole (folder.stream): no buffer of encoded images
        ds = ds.repeat() if spec.repeat else ds
    else:
        ds = _shuffled_and_repeated(ds, spec, source, buffer=10_000)
    stored_channels = source.entry.image_shape[2]

    def per_image(example, image_seed=None):
        encoded, label = example
        image = tf.io.decode_image(encoded, channels=stored_channels, expand_animations=False)
        if spec.augmenting:
            image = _augment_image(image, spec.augment, spec.image_size, image_seed, spec.eval_resize, spec.crop,
                                   spec.interpolation)
        else:
            image = _base_geometry(tf.cast(image, tf.float32)[None], spec.image_size, spec.eval_resize, spec.crop,
                                   spec.interpolation, fixed=False, pad=spec.pad)[0]
        return image, label

    ds = _map(ds, per_image, source, seeded=spec.augmenting)
    ds = ds.batch(spec.batch_size, drop_remainder=spec.drop_remainder)
    return _map(ds, lambda batch: (_model_input(batch[0], spec, source), batch[1]), source, seeded=False)


def batches(name: str, split: str, spec: PipelineSpec, *, data_dir=None) -> tf.data.Dataset:
    """Batches (images float32 (B, image_size, image_size, channels), labels int32 (B,)) of `split` of dataset
    `name`, as `spec` says."""
    if not backend.tensorflow_available():
        raise DatasetError("the tf.data pipeline needs TensorFlow, which is not installed; without it the fixed-"
                           "size datasets are served by zoo.data.arrays (Keras' JAX or PyTorch backend)")
    source = _resolve(name, split, spec, data_dir)
    path = _fixed_size_batches if source.entry.fixed_size else _variable_size_batches
    ds = path(source, spec).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = source.ordered
    if spec.threads:
        options.threading.private_threadpool_size = spec.threads
    return ds.with_options(options)


def make_dataset(name: str, split: str, *, data_dir=None, **settings) -> tf.data.Dataset:
    """`batches(name, split, PipelineSpec(**settings))`: the keyword form (image_size=, channels=, batch_size=,
    training=, augment=, seed=, ...; see PipelineSpec)."""
    return batches(name, split, PipelineSpec(**settings), data_dir=data_dir)


# ---------------------------------------------------------------------------------------------------------------
# Batch-level augmentation for the harness: labels become soft (B, num_classes) with mixup/cutmix.


def _one_hot(labels, num_classes: int):
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 2:
        return tf.cast(labels, tf.float32)
    return tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)


def _beta(alpha: float, seed):
    a_seed, b_seed = _seeds(seed, 2)
    a = tf.random.stateless_gamma([], a_seed, alpha)
    b = tf.random.stateless_gamma([], b_seed, alpha)
    return a / (a + b)


def mixup(images, labels, alpha: float, *, num_classes: int, seed):
    """mixup (Zhang et al. 2018): each image blended with its partner in the reversed batch, lambda ~ Beta(a, a)."""
    lam = _beta(alpha, seed)
    y = _one_hot(labels, num_classes)
    return lam * images + (1 - lam) * tf.reverse(images, [0]), lam * y + (1 - lam) * tf.reverse(y, [0])


def cutmix(images, labels, alpha: float, *, num_classes: int, seed):
    """CutMix (Yun et al. 2019): a box of area (1 - lambda) pasted from the reversed batch; labels mixed by the
    box's actual (clipped) area."""
    lam_seed, y_seed, x_seed = _seeds(seed, 3)
    lam = _beta(alpha, lam_seed)
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    hf, wf = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    cut = tf.sqrt(1.0 - lam)
    cy = tf.random.stateless_uniform([], y_seed) * hf
    cx = tf.random.stateless_uniform([], x_seed) * wf
    y0 = tf.cast(tf.clip_by_value(tf.round(cy - cut * hf / 2), 0, hf), tf.int32)
    y1 = tf.cast(tf.clip_by_value(tf.round(cy + cut * hf / 2), 0, hf), tf.int32)
    x0 = tf.cast(tf.clip_by_value(tf.round(cx - cut * wf / 2), 0, wf), tf.int32)
    x1 = tf.cast(tf.clip_by_value(tf.round(cx + cut * wf / 2), 0, wf), tf.int32)
    rows, cols = tf.range(height)[:, None], tf.range(width)[None, :]
    inside = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
    mixed = tf.where(inside[None, :, :, None], tf.reverse(images, [0]), images)
    kept = 1.0 - tf.cast((y1 - y0) * (x1 - x0), tf.float32) / (hf * wf)
    y = _one_hot(labels, num_classes)
    return mixed, kept * y + (1 - kept) * tf.reverse(y, [0])


def random_erasing(images, probability: float, *, seed, area=(0.02, 1 / 3), ratio=(0.3, 1 / 0.3)):
    """Random Erasing (Zhong et al. 2020): with `probability`, a rectangle of each (normalised) image, of area
    2%-33% and aspect 0.3-3.3, is replaced by standard-normal noise."""
    p_seed, a_seed, r_seed, y_seed, x_seed, n_seed = _seeds(seed, 6)
    batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    hf, wf = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    erase = tf.random.stateless_uniform([batch], p_seed) < probability
    target = tf.random.stateless_uniform([batch], a_seed, *area) * hf * wf
    aspect = tf.exp(tf.random.stateless_uniform([batch], r_seed, math.log(ratio[0]), math.log(ratio[1])))
    h = tf.minimum(tf.round(tf.sqrt(target * aspect)), hf)
    w = tf.minimum(tf.round(tf.sqrt(target / aspect)), wf)
    top = tf.floor(tf.random.stateless_uniform([batch], y_seed) * (hf - h + 1))
    left = tf.floor(tf.random.stateless_uniform([batch], x_seed) * (wf - w + 1))
    rows = tf.range(hf)[None, :, None]
    cols = tf.range(wf)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + h)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + w)[:, None, None]) & erase[:, None, None])
    noise = tf.random.stateless_normal(tf.shape(images), n_seed)
    return tf.where(inside[..., None], noise, images)


def batch_augment(dataset: tf.data.Dataset, *, num_classes: int, mixup_alpha: float = 0.0,
                  cutmix_alpha: float = 0.0, erasing: float = 0.0, seed: Optional[int] = None) -> tf.data.Dataset:
    """Apply random erasing, then mixup or cutmix (one of the two per batch, with even odds, when both are on) to a
    batched (images, labels) dataset. With mixup/cutmix the labels become soft (B, num_classes) float32."""
    if not (mixup_alpha or cutmix_alpha or erasing):
        return dataset
    seed = secrets.randbits(31) if seed is None else seed

    def apply(pair, r):
        images, labels = pair
        batch_seed = tf.stack([r, tf.constant(seed, tf.int64)])
        erase_seed, choice_seed, mix_seed = _seeds(batch_seed, 3)
        if erasing:
            images = random_erasing(images, erasing, seed=erase_seed)
        if mixup_alpha and cutmix_alpha:
            use_cutmix = tf.random.stateless_uniform([], choice_seed) < 0.5
            return tf.cond(use_cutmix,
                           lambda: cutmix(images, labels, cutmix_alpha, num_classes=num_classes, seed=mix_seed),
                           lambda: mixup(images, labels, mixup_alpha, num_classes=num_classes, seed=mix_seed))
        if cutmix_alpha:
            return cutmix(images, labels, cutmix_alpha, num_classes=num_classes, seed=mix_seed)
        if mixup_alpha:
            return mixup(images, labels, mixup_alpha, num_classes=num_classes, seed=mix_seed)
        return images, labels

    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((dataset, randoms)).map(apply, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
