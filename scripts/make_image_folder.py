#!/usr/bin/env python
"""Make image-folder datasets (one sub-folder per class) from real data on this machine, for the image-folder
measurements and the fine-tuning evidence (docs/datasets.md, docs/training.md).

    # 10,000 Fashion-MNIST training images as PNGs of three sizes (28, 40 and 56 px), 1,000 per class
    python scripts/make_image_folder.py fashion OUT --count 10000
    # the same with train/ and val/ (10% of each class in val/), and mixed formats (PNG, JPEG, BMP, GIF)
    python scripts/make_image_folder.py fashion OUT --count 10000 --val 0.1 --formats png,jpeg,bmp,gif
    # real handwritten digits (UCI optdigits as scikit-learn ships them: digits.csv.gz, 1,797 8x8 images):
    # 30 per class in train/, the rest in test/, upscaled to 28x28 like MNIST
    python scripts/make_image_folder.py digits OUT --digits-csv digits.csv.gz --train-per-class 30
    # a folder of 100,000 images for the memory check: symlinks to the images of an existing folder
    python scripts/make_image_folder.py links OUT --from-folder FOLDER --count 100000

Sources: Fashion-MNIST's IDX files (default /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist);
scikit-learn's digits.csv.gz (inside any scikit-learn wheel: sklearn/datasets/data/digits.csv.gz; a .whl is read
directly, nothing needs installing). Images are chosen per class with a fixed seed, so the same command makes the
same folder. Written as OUT/<class>/<index>.<ext> (OUT/train/<class>/... with --val or --train-per-class).
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo.data import sources  # noqa: E402
from zoo.data.catalogue import get_dataset  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
SIZES = (28, 40, 56)  # Fashion-MNIST images are resized to these sides in turn: a folder of several sizes
DIGITS_MEMBER = "sklearn/datasets/data/digits.csv.gz"
EXTENSIONS = {"png": "png", "jpeg": "jpg", "bmp": "bmp", "gif": "gif"}


def folder_name(name: str) -> str:
    """A class name as a folder name ('T-shirt/top' -> 'T-shirt_top')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def per_class(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` indices, as even across the classes as they go, drawn without replacement; in class order."""
    classes = np.unique(labels)
    share = [count // len(classes) + (i < count % len(classes)) for i in range(len(classes))]
    return np.concatenate([np.sort(rng.choice(np.flatnonzero(labels == c), size=n, replace=False))
                           for c, n in zip(classes, share)])


def save(image: np.ndarray, path: Path, fmt: str) -> None:
    from PIL import Image

    picture = Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image)
    picture.save(path, format={"jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "gif": "GIF"}[fmt])


def write(out: Path, images: np.ndarray, labels: np.ndarray, names: list[str], *, sizes, formats,
          split_of) -> dict:
    """Each image resized to sizes[i % len(sizes)] and saved as formats[i % len(formats)] under
    out/<split>/<class>/; returns {split: count}."""
    from PIL import Image

    counts: dict[str, int] = {}
    for i, (image, label) in enumerate(zip(images, labels)):
        side = sizes[i % len(sizes)]
        if image.shape[0] != side:
            resized = Image.fromarray(image.squeeze(-1)).resize((side, side), Image.Resampling.BILINEAR)
            image = np.asarray(resized)[..., None]
        fmt = formats[i % len(formats)]
        split = split_of(i)
        folder = out / split / folder_name(names[label]) if split else out / folder_name(names[label])
        folder.mkdir(parents=True, exist_ok=True)
        save(image, folder / f"{i:06d}.{EXTENSIONS[fmt]}", fmt)
        counts[split or "all"] = counts.get(split or "all", 0) + 1
    return counts


def fashion(args) -> dict:
    rng = np.random.default_rng(args.seed)
    images, labels = sources.read_idx_split(*sources.find_idx_files(args.source, "train"), image_size=(28, 28),
                                            num_classes=10)
    chosen = per_class(labels, args.count, rng)
    held = np.zeros(len(chosen), bool)
    if args.val:
        for c in np.unique(labels[chosen]):
            members = np.flatnonzero(labels[chosen] == c)
            held[rng.choice(members, size=max(1, round(args.val * len(members))), replace=False)] = True
    names = get_dataset("fashion_mnist").names()
    return write(args.out, images[chosen], labels[chosen], names, sizes=args.sizes, formats=args.formats,
                 split_of=lambda i: ("val" if held[i] else "train") if args.val else "")


def read_digits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits.csv.gz (from the file, or from inside a scikit-learn wheel): 64 pixels 0-16 and
    the label per row."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            data = wheel.read(DIGITS_MEMBER)
    else:
        data = path.read_bytes()
    rows = np.loadtxt(io.StringIO(gzip.decompress(data).decode()), delimiter=",")
    pixels = np.clip(np.rint(rows[:, :64] * 255 / 16), 0, 255).astype(np.uint8).reshape(-1, 8, 8, 1)
    return pixels, rows[:, 64].astype(np.int64)


def digits(args) -> dict:
    from PIL import Image

    if args.digits_csv is None:
        raise SystemExit("digits: pass --digits-csv (digits.csv.gz, or a scikit-learn .whl holding it)")
    images, labels = read_digits(args.digits_csv)
    # 8x8 -> 20x20 (bicubic) centred in 28x28, as MNIST centres its 20x20 digits: the shape of the shipped weights'
    big = np.stack([np.asarray(Image.fromarray(x.squeeze(-1)).resize((20, 20), Image.Resampling.BICUBIC))
                    for x in images])
    images = np.pad(big, [(0, 0), (4, 4), (4, 4)])[..., None]
    rng = np.random.default_rng(args.seed)
    train = per_class(labels, args.train_per_class * 10, rng)
    in_train = np.zeros(len(labels), bool)
    in_train[train] = True
    names = [str(d) for d in range(10)]
    return write(args.out, images, labels, names, sizes=(28,), formats=args.formats,
                 split_of=lambda i: "train" if in_train[i] else "test")


def links(args) -> dict:
    """args.count symlinks to the images of --from-folder (round robin), spread over its class folders."""
    if args.from_folder is None:
        raise SystemExit("links: pass --from-folder FOLDER (a folder of class folders)")
    classes = sorted(p for p in args.from_folder.iterdir() if p.is_dir())
    files = {c.name: sorted(p for p in c.iterdir() if p.is_file()) for c in classes}
    made = 0
    for i in range(args.count):
        name = classes[i % len(classes)].name
        target = files[name][(i // len(classes)) % len(files[name])]
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(target.resolve(), folder / f"{i:07d}{target.suffix}")
        made += 1
    return {"all": made}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("fashion", "digits", "links"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--val", type=float, default=0.0, help="fashion: fraction of each class put in val/")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="fashion: image sides, in turn")
    parser.add_argument("--formats", default="png", help="png,jpeg,bmp,gif in turn")
    parser.add_argument("--source", type=Path, default=FASHION, help="fashion: the IDX files' folder")
    parser.add_argument("--digits-csv", type=Path, help="digits: digits.csv.gz or a scikit-learn wheel")
    parser.add_argument("--train-per-class", type=int, default=30, help="digits: images per class in train/")
    parser.add_argument("--from-folder", type=Path, help="links: the folder whose images are linked")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.sizes = tuple(int(s) for s in args.sizes.split(","))
    args.formats = tuple(args.formats.split(","))
    unknown = set(args.formats) - set(EXTENSIONS)
    if unknown:
        raise SystemExit(f"--formats: unknown {', '.join(sorted(unknown))}; choose from {', '.join(EXTENSIONS)}")
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out}: not empty; give a new folder")
    counts = {"fashion": fashion, "digits": digits, "links": links}[args.kind](args)
    print(f"{args.out}: " + ", ".join(f"{split} {n:,}" for split, n in counts.items()))


if __name__ == "__main__":
    main()
