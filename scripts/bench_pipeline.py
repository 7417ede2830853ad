#!/usr/bin/env python
"""Is the input pipeline fast enough? Images/s of the Fashion-MNIST 32x32 training pipeline (augment none and
pad_crop_flip, tf.data limited to 2 threads) next to the images/s LeNet-5 trains at on the same machine.

    python scripts/bench_pipeline.py [--dataset fashion_mnist_sample] [--seconds 5] [--threads 2]

The pipeline should deliver at least 10x what the model consumes, so that training is never input-bound.
(`zoo data bench NAME` measures any dataset's pipeline alone.)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def lenet5_training_rate(batch_size: int, seconds: float) -> float:
    """Images/s of LeNet-5 training steps (Adam, sparse cross-entropy) on one in-memory batch: the model alone."""
    import keras
    import numpy as np

    import zoo

    model = zoo.build("lenet5")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size, 32, 32, 1)).astype("float32")
    y = rng.integers(0, 10, batch_size)
    for _ in range(20):  # compile and warm up
        model.train_on_batch(x, y)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.train_on_batch(x, y)
        steps += 1
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist_sample", help="fashion_mnist once prepared, or the sample")
    parser.add_argument("--data-dir")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from zoo.data.bench import measure

    rates = {}
    for augment in ("none", "pad_crop_flip"):
        result = measure(args.dataset, "train", augment=augment, image_size=32, channels=1,
                         batch_size=args.batch_size, seconds=args.seconds, threads=args.threads,
                         data_dir=args.data_dir)
        rates[augment] = result.images_per_second
        print(f"pipeline {args.dataset} train 32x32x1 batch {args.batch_size} augment={augment}: "
              f"{result.images_per_second:,.0f} images/s ({args.threads} threads)")
    model_rate = lenet5_training_rate(args.batch_size, args.seconds)
    print(f"lenet5 training steps, batch {args.batch_size}: {model_rate:,.0f} images/s")
    slowest = min(rates.values())
    print(f"slowest pipeline / training = {slowest / model_rate:.1f}x "
          f"({'ok' if slowest >= 10 * model_rate else 'BELOW the 10x target'})")


if __name__ == "__main__":
    main()
