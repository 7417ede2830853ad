"""Input pipelines: a catalogue dataset and split -> tf.data.Dataset of (images float32 (B,H,W,C), labels int32 (B,)).

    ds = make_dataset("cifar10", "train", image_size=32, channels=3, batch_size=128, training=True,
                      augment="pad_crop_flip", seed=0)
    ds = pipeline("cifar10", "test", zoo.get_spec("resnet20"), batch_size=256, training=False)

Splits: "train", "validation", "test", "train_full", and slices of them ("train[:1000]", "test[:10%]"). Where the
dataset has no validation split of its own, "validation" is the last `holdout` training images (catalogue or
recipe) and "train" the rest; "train_full" is always all of the training split.

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
from functools import lru_cache
from typing import Optional

import numpy as np
import tensorflow as tf

from . import sources
from .catalogue import (SPLITS, DatasetEntry, DatasetError, DatasetInfo, dataset_info, effective_holdout,
                        get_dataset, prepared_dir, require_ready, resolve_data_dir, sample_dir)

__all__ = ["AUGMENTS", "make_dataset", "pipeline", "dataset_info", "DatasetInfo", "mixup", "cutmix",
           "random_erasing", "batch_augment"]

AUTOTUNE = tf.data.AUTOTUNE
AUGMENTS = ("none", "flip", "pad_crop_flip", "inception_crop_flip", "scale_crop_flip")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area")
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
    try:
        info = json.loads((prepared_dir(entry.name, root) / "dataset_info.json").read_text())
        sizes = {s["name"]: sum(int(n) for n in s.get("shardLengths", [])) for s in info.get("splits", [])}
    except (OSError, ValueError, KeyError):
        sizes = {}
    return sizes or dict(entry.splits)


def _stream(entry: DatasetEntry, stored: str, start: int, stop: int, *, root, training: bool, seed: int,
            encoded: bool) -> tf.data.Dataset:
    """The examples read from the TFDS files (images encoded, when `encoded`, to keep shuffle buffers small)."""
    import tensorflow_datasets as tfds

    ds = tfds.load(entry.tfds.full_name, split=f"{stored}[{start}:{stop}]", data_dir=str(root),
                   as_supervised=True, download=False, shuffle_files=training,
                   decoders={"image": tfds.decode.SkipDecoding()} if encoded else None,
                   read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False))
    return ds.map(lambda image, label: (image, tf.cast(label, tf.int32)))


def _in_memory(entry: DatasetEntry, stored: str, start: int, stop: int, *, root) -> tuple[tf.Tensor, tf.Tensor]:
    """The whole (sliced) split decoded into two tensors: the cache of small fixed-size datasets."""
    if entry.embedded:
        images, labels = _embedded_arrays(entry.name, stored)
        return tf.constant(images[start:stop]), tf.constant(labels[start:stop])
    stream = _stream(entry, stored, start, stop, root=root, training=False, seed=0, encoded=False)
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


def _base_geometry(x, size: int, eval_resize: Optional[int], crop: int, interpolation: str, fixed: bool):
    """The deterministic geometry of evaluation (and of training without crop augmentation)."""
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


def _normalisation(info: DatasetInfo, channels: int, mean, std):
    have = info.image_shape[2]
    mean = list(info.mean if mean is None else mean)
    std = list(info.std if std is None else std)
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
    return tf.constant(mean, tf.float32), tf.constant(std, tf.float32)


# ---------------------------------------------------------------------------------------------------------------
# The pipeline


def make_dataset(name: str, split: str, *, image_size: int, channels: int, batch_size: int, training: bool,
                 augment: str = "none", seed: Optional[int] = None, data_dir=None, eval_resize: Optional[int] = None,
                 mean=None, std=None, shuffle_buffer: Optional[int] = None, drop_remainder: bool = False,
                 deterministic: bool = False, cache: bool = True, repeat: bool = False,
                 interpolation: str = "bilinear", holdout: Optional[int] = None,
                 eval_crop: Optional[int] = None, threads: Optional[int] = None) -> tf.data.Dataset:
    """Batches (images float32 (B, image_size, image_size, channels), labels int32 (B,)) of `split` of `name`.

    training: shuffle (seeded) and apply `augment` (one of AUGMENTS); evaluation is deterministic.
    seed: makes the pipeline reproducible (shuffle, augmentation, file order, order-preserving parallelism).
      deterministic=True: the same without a seed (seed 0). Without either, a training pipeline is random and its
      parallel stages may reorder; evaluation (training=False) always keeps the stored order.
    eval_resize / eval_crop: shorter side resized to eval_resize, center crop of eval_crop (default image_size).
    mean / std: per channel, 0-255 scale; None: the dataset's (catalogue).
    holdout: training images held out as "validation" (None: the catalogue's).
    cache: hold the decoded split of a fixed-size dataset (MNIST, CIFAR) in memory, decoded once, before any
      augmentation (the embedded sample always is); False streams it from the TFDS files each epoch.
      Variable-size datasets (ImageNet) are always streamed.
    threads: size of a private tf.data thread pool (None: TensorFlow's default).
    """
    if augment not in AUGMENTS:
        raise DatasetError(f"unknown augment {augment!r}; choose from {', '.join(AUGMENTS)}")
    if interpolation not in INTERPOLATIONS:
        raise DatasetError(f"unknown interpolation {interpolation!r}; choose from {', '.join(INTERPOLATIONS)}")
    if image_size <= 0 or batch_size <= 0 or channels not in (1, 3):
        raise DatasetError(f"need image_size > 0, batch_size > 0 and 1 or 3 channels (got {image_size}, "
                           f"{batch_size}, {channels})")
    entry = get_dataset(name)
    info = dataset_info(name, holdout)
    root = resolve_data_dir(data_dir)
    if entry.tfds:
        require_ready(name, root)  # before any TFDS call: never a download attempt, never a hang
    if deterministic and seed is None:
        seed = 0
    ordered = deterministic or seed is not None or not training  # evaluation keeps the stored order
    if seed is None:
        seed = secrets.randbits(31)
    crop = eval_crop or image_size
    mean_t, std_t = _normalisation(info, channels, mean, std)
    scale, shift = 1.0 / std_t, -mean_t / std_t  # (x - mean) / std as one multiply-add
    fixed = entry.fixed_size
    augmenting = training and augment != "none"

    stored, start, stop = resolve_split(entry, split, _stored_sizes(entry, root), holdout)
    size = stop - start
    if size == 0:
        raise DatasetError(f"split {split!r} of {name!r} is empty")
    in_memory = fixed and (cache or entry.embedded)
    if in_memory:  # shuffle indices, gather whole batches: no per-image work at all in tf.data
        images_t, labels_t = _in_memory(entry, stored, start, stop, root=root)
        ds = tf.data.Dataset.range(int(images_t.shape[0]))
    else:
        ds = _stream(entry, stored, start, stop, root=root, training=training, seed=seed, encoded=not fixed)
    if training:
        buffer = shuffle_buffer or (size if fixed else 10_000)
        ds = ds.shuffle(max(1, min(buffer, size)), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def randoms():  # one [2] seed per element or batch: new values each epoch, the same in every run
        return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).map(
            lambda r: tf.stack([r, tf.constant(seed, tf.int64)]))

    if not fixed:  # decode, crop and resize each image before batching
        def per_image(encoded, label, image_seed=None):
            image = tf.io.decode_image(encoded, channels=entry.image_shape[2], expand_animations=False)
            if augmenting:
                image = _augment_image(image, augment, image_size, image_seed, eval_resize, crop, interpolation)
            else:
                image = _base_geometry(tf.cast(image, tf.float32)[None], image_size, eval_resize, crop,
                                       interpolation, fixed=False)[0]
            return image, label

        if augmenting:
            ds = tf.data.Dataset.zip((ds, randoms())).map(lambda pair, s: per_image(*pair, s),
                                                            num_parallel_calls=AUTOTUNE, deterministic=ordered)
        else:
            ds = ds.map(per_image, num_parallel_calls=AUTOTUNE, deterministic=ordered)

    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def per_batch(*batch):
        if in_memory:
            index, *batch = batch
            batch = [tf.gather(images_t, index), tf.gather(labels_t, index), *batch]
        images, labels, batch_seed = (*batch, None)[:3]
        # Pads, crops and flips move uint8 pixels (4x less memory traffic than float32); resizes output float32.
        # Fewer channels: convert first (less to resize); more channels: convert last (grey is resized once).
        x = images
        if channels < x.shape[-1]:
            x = _convert_channels(tf.cast(x, tf.float32), channels)
        if fixed:
            if augmenting:
                x = _augment_batch(x, augment, image_size, batch_seed, eval_resize, crop, interpolation)
            else:
                x = _base_geometry(x, image_size, eval_resize, crop, interpolation, fixed=True)
        x = _convert_channels(tf.cast(x, tf.float32), channels)
        x = x * scale + shift
        x = tf.ensure_shape(x, [None, image_size, image_size, channels])
        return x, labels

    if augmenting and fixed:
        ds = tf.data.Dataset.zip((ds, randoms())).map(
            lambda batch, s: per_batch(*(batch if isinstance(batch, tuple) else (batch,)), s),
            num_parallel_calls=AUTOTUNE, deterministic=ordered)
    else:
        ds = ds.map(per_batch, num_parallel_calls=AUTOTUNE, deterministic=ordered)
    ds = ds.prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = ordered
    if threads:
        options.threading.private_threadpool_size = threads
    return ds.with_options(options)


def pipeline(dataset: str, split: str, spec, recipe=None, *, batch_size: int, training: bool,
             seed: Optional[int] = None, data_dir=None, **kw) -> tf.data.Dataset:
    """make_dataset for a registry Spec (and Recipe): the model's input size and channels; its evaluation protocol
    (spec.eval) where it applies; the recipe's augmentation (training only) and validation holdout. `kw` overrides
    any make_dataset argument (a None value counts as not given: image_size=None keeps the spec's size).

    spec.eval.resize/crop apply to variable-size datasets (ImageNet-like: the protocol is defined on them), scaled
    when image_size differs from the spec's; on small fixed-size ones (CIFAR, MNIST) the images are padded/resized
    to the input size. spec.eval.mean/std apply
    when `dataset` is the spec's own dataset; otherwise (and when None) the dataset's statistics are used.
    Batch-level augmentation (recipe.mixup/cutmix/random_erasing) is left to the harness: see batch_augment().
    """
    entry = get_dataset(dataset)
    own = dataset == spec.dataset
    args = dict(image_size=spec.input.size, channels=spec.input.channels, batch_size=batch_size,
                training=training, seed=seed, data_dir=data_dir, interpolation=spec.eval.interpolation,
                augment=recipe.augment if (training and recipe is not None) else "none",
                mean=spec.eval.mean if own else None, std=spec.eval.std if own else None,
                holdout=recipe.validation if recipe is not None else None)
    if not entry.fixed_size:
        size = kw.get("image_size") or spec.input.size
        resize, crop = spec.eval.resize, spec.eval.crop or spec.input.size
        if size != spec.input.size:  # another input size: the protocol scaled to it (256/224 stays 256/224)
            resize, crop = (round(resize * size / crop) if resize else None), size
        args.update(eval_resize=resize, eval_crop=crop)
    args.update({key: value for key, value in kw.items() if value is not None})  # None: not given
    return make_dataset(dataset, split, **args)


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
