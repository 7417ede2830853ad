#!/usr/bin/env python
"""Make the embedded `fashion_mnist_sample` (zoo/data/sample/) from the official Fashion-MNIST IDX files.

A stratified subset: PER_CLASS_TRAIN training and PER_CLASS_TEST test images of every class, drawn without
replacement with a fixed seed. The training images are ordered so that the last VALIDATION_PER_CLASS * 10 of them
(the catalogue's holdout) hold exactly VALIDATION_PER_CLASS per class; each part is shuffled. Written as gzipped
IDX files (the same reader loads them) with a README.md giving provenance, sha256s, license and class counts.

    python scripts/make_sample.py [--source /usr/share/datasets/fashion-mnist] [--out zoo/data/sample] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo.data import sources  # noqa: E402
from zoo.data.catalogue import get_dataset  # noqa: E402

PER_CLASS_TRAIN, PER_CLASS_TEST, VALIDATION_PER_CLASS = 600, 100, 100
FILES = {("train", "images"): "train-images-idx3-ubyte.gz", ("train", "labels"): "train-labels-idx1-ubyte.gz",
         ("test", "images"): "t10k-images-idx3-ubyte.gz", ("test", "labels"): "t10k-labels-idx1-ubyte.gz"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """IDX: magic, one big-endian uint32 per dimension, the bytes; gzip with no name and mtime 0 (reproducible)."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> list[np.ndarray]:
    """For each class, `per_class` indices drawn without replacement (in drawing order)."""
    return [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in range(10)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--out", type=Path, default=ROOT / "zoo" / "data" / "sample")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    found = {split: sources.find_idx_files(args.source, split) for split in ("train", "test")}
    data = {split: sources.read_idx_split(*paths, image_size=(28, 28), num_classes=10)
            for split, paths in found.items()}

    train_images, train_labels = data["train"]
    picks = stratified(train_labels, PER_CLASS_TRAIN, rng)
    fit = np.concatenate([p[:-VALIDATION_PER_CLASS] for p in picks])
    held = np.concatenate([p[-VALIDATION_PER_CLASS:] for p in picks])
    train_index = np.concatenate([rng.permutation(fit), rng.permutation(held)])
    test_images, test_labels = data["test"]
    test_index = rng.permutation(np.concatenate(stratified(test_labels, PER_CLASS_TEST, rng)))

    args.out.mkdir(parents=True, exist_ok=True)
    chosen = {"train": (train_images[train_index], train_labels[train_index]),
              "test": (test_images[test_index], test_labels[test_index])}
    for split, (images, labels) in chosen.items():
        write_idx(args.out / FILES[split, "images"], images[..., 0], sources.IMAGES_MAGIC)
        write_idx(args.out / FILES[split, "labels"], labels, sources.LABELS_MAGIC)

    pixels = chosen["train"][0].astype(np.float64)
    mean, std = pixels.mean(), pixels.std()
    names = get_dataset("fashion_mnist").names()
    counts = {split: np.bincount(labels, minlength=10) for split, (_, labels) in chosen.items()}
    holdout_counts = np.bincount(chosen["train"][1][-10 * VALIDATION_PER_CLASS:], minlength=10)
    write_readme(args, found, names, counts, holdout_counts, mean, std)
    total = sum(p.stat().st_size for p in args.out.glob("*.gz"))
    print(f"wrote {args.out}: {len(train_index)} train + {len(test_index)} test images, {total / 1e6:.2f} MB; "
          f"train mean {mean:.4f} std {std:.4f} (0-255)")


def write_readme(args, found, names, counts, holdout_counts, mean, std) -> None:
    out = args.out
    rows = "\n".join(f"| {c} | {name} | {counts['train'][c]} | {holdout_counts[c]} | {counts['test'][c]} |"
                     for c, name in enumerate(names))
    sources_table = "\n".join(f"| `{p.name}` | `{sha256(p)}` |" for paths in found.values() for p in paths)
    made = "\n".join(f"| `{name}` | `{sha256(out / name)}` |" for name in FILES.values())
    try:
        script = Path(__file__).resolve().relative_to(ROOT)
    except ValueError:
        script = Path(__file__).name
    (out / "README.md").write_text(f"""# fashion_mnist_sample

A stratified sample of [Fashion-MNIST](https://github.com/zalandoresearch/fashion-mnist) embedded in the package,
so that `zoo train lenet5` works with no download and no preparation. The files are gzipped IDX files in the
official Fashion-MNIST layout; `zoo.data.sources.read_idx` reads them and the pipeline serves the splits `train`,
`validation`, `train_full` and `test` directly from them.

- **Training split**: {PER_CLASS_TRAIN} images per class ({10 * PER_CLASS_TRAIN} in all), drawn from the 60,000 \
official training images. Its last {10 * VALIDATION_PER_CLASS} images hold exactly {VALIDATION_PER_CLASS} per class: \
the catalogue's validation holdout (`train` = the first {10 * (PER_CLASS_TRAIN - VALIDATION_PER_CLASS)}, \
`validation` = the last {10 * VALIDATION_PER_CLASS}).
- **Test split**: {PER_CLASS_TEST} images per class ({10 * PER_CLASS_TEST} in all), drawn from the 10,000 official \
test images.
- Pixel statistics of the {10 * PER_CLASS_TRAIN} training images (0-255 scale): mean {mean:.4f}, std {std:.4f}.

## Provenance

Made by `{script}` with seed {args.seed} (`numpy.random.default_rng({args.seed})`: for each class in order, the
training picks, then the permutations of the two training parts, then the test picks and their permutation), from
the Fashion-MNIST files of the Debian package `dataset-fashion-mnist` ({args.source}):

| source file | sha256 |
|---|---|
{sources_table}

(Their sha256s differ from those of the files on the Fashion-MNIST site, whose gzip headers also record the file
name: the sizes differ by exactly that name's length.) Generated files:

| file | sha256 |
|---|---|
{made}

## Class counts

| label | class | train | of which validation | test |
|---|---|---|---|---|
{rows}

## License

Fashion-MNIST is Copyright (c) 2017 Zalando SE, released under the MIT License
(https://github.com/zalandoresearch/fashion-mnist/blob/master/LICENSE); this sample is a subset of it under the same
license. Cite: Han Xiao, Kashif Rasul, Roland Vollgraf, *Fashion-MNIST: a Novel Image Dataset for Benchmarking
Machine Learning Algorithms*, arXiv:1708.07747, 2017.
""")


if __name__ == "__main__":
    main()
