"""Throughput of the input pipeline alone (no model): images per second delivered by make_dataset."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional


@dataclass
class PipelineThroughput:
    name: str
    split: str
    augment: str
    image_size: int
    channels: int
    batch_size: int
    threads: Optional[int]
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
