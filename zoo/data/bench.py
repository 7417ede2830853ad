"""Throughput of the input pipeline alone (no model): images per second delivered by make_dataset."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional


@dataclass
class _PipelineSettings:
    """What was measured: the dataset split and the pipeline's settings (shared by both measurements)."""

    name: str
    split: str
    augment: str
    image_size: int
    channels: int
    batch_size: int
    threads: Optional[int]


@dataclass
class PipelineThroughput(_PipelineSettings):
    images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds


def measure(name: str = "fashion_mnist_sample", split: str = "train", *, augment: str = "none",
            image_size: int = 32, channels: int = 1, batch_size: int = 128, seconds: float = 5.0,
            warmup_batches: int = 50, threads: Optional[int] = 2, data_dir=None, seed: int = 0) -> PipelineThroughput:
    """Run the training pipeline (repeated, shuffled, augmented) for about `seconds` after `warmup_batches`
    (which also fills the cache) and count the images it delivers. `threads`: tf.data's private thread pool."""
    from .pipeline import make_dataset

    ds = make_dataset(name, split, image_size=image_size, channels=channels, batch_size=batch_size, training=True,
                      augment=augment, seed=seed, data_dir=data_dir, repeat=True, threads=threads)
    batches = iter(ds)
    for _ in range(warmup_batches):
        next(batches)
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        images += int(next(batches)[1].shape[0])
    return PipelineThroughput(name, split, augment, image_size, channels, batch_size, threads, images,
                              time.perf_counter() - start)


@dataclass
class EpochThroughput(_PipelineSettings):
    """Whole passes over a split (no repeat): images and seconds per epoch, the first (cold: file cache, any
    in-memory cache filled, graph traced) apart from the later ones, and the process's peak resident memory."""

    model: Optional[str]  # each batch also went through this model's forward pass; None: the pipeline alone
    epochs: list  # [(images, seconds)] per epoch
    peak_rss_mb: float

    def images_per_second(self, epoch: int) -> float:
        images, seconds = self.epochs[epoch]
        return images / seconds


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def measure_epochs(name: str, split: str = "train", *, epochs: int = 3, model: Optional[str] = None,
                   augment: str = "none", image_size: int = 32, channels: int = 1, batch_size: int = 128,
                   threads: Optional[int] = 2, data_dir=None, seed: int = 0) -> EpochThroughput:
    """`epochs` full passes of the training pipeline (shuffled, augmented, not repeated), timed one by one; with
    `model` (a registry name), each batch is also fed to that model (inference), as training would feed it."""
    from .pipeline import make_dataset

    ds = make_dataset(name, split, image_size=image_size, channels=channels, batch_size=batch_size, training=True,
                      augment=augment, seed=seed, data_dir=data_dir, threads=threads)
    forward = None
    if model is not None:
        import tensorflow as tf

        from ..models import build

        net = build(model, input_shape=(image_size, image_size, channels), classifier_activation=None)
        forward = tf.function(lambda x: net(x, training=False))
    timed = []
    for _ in range(epochs):
        images, start = 0, time.perf_counter()
        for x, y in ds:
            if forward is not None:
                forward(x)
            images += int(y.shape[0])
        timed.append((images, time.perf_counter() - start))
    return EpochThroughput(name, split, augment, image_size, channels, batch_size, threads, model, timed,
                           peak_rss_mb())
