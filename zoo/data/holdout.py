"""The validation holdout: which training images a dataset without a validation split of its own sets aside.

Stratified and seeded: each class gives its share of the N held-out images (largest remainder, so the total is
exactly N and no class is left out by rounding), picked by one seeded permutation of the training split; the same
images for every run, machine and input path (tf.data and numpy), since the seed is the dataset's, not the run's
(validation numbers of two runs are then comparable). Both sides keep the stored order.

`resolve_split` (pipeline.py) still speaks in ranges: positions [0, train - N) are "train" and [train - N, train)
"validation". `holdout_order` is the order those positions index: the kept images first, then the held-out ones.
"train_full" is the stored order itself.

Light on purpose (numpy only): the numpy input path, tests and the catalogue's users import it without TensorFlow.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .catalogue import DatasetEntry, effective_holdout

__all__ = ["HOLDOUT_SEED", "class_quotas", "holdout_mask", "holdout_order", "applies", "stored_indices"]

HOLDOUT_SEED = 0  # a fact of the dataset's split, like its sizes: not the run's --seed


def class_quotas(counts: np.ndarray, n: int) -> np.ndarray:
    """How many of each class's `counts` images go to a holdout of `n`: proportional, floors first, the remaining
    images to the largest fractional parts (ties: the lower class index)."""
    counts = np.asarray(counts, dtype=np.int64)
    exact = n * counts / counts.sum()
    quotas = np.floor(exact).astype(np.int64)
    extra = n - int(quotas.sum())
    order = np.lexsort((np.arange(len(counts)), -(exact - quotas)))  # largest remainder first, then class index
    quotas[order[:extra]] += 1
    return quotas


def holdout_mask(labels: np.ndarray, n: int, seed: int = HOLDOUT_SEED) -> np.ndarray:
    """True for the `n` training images held out: per class its quota, the first of that class in one seeded
    permutation. RandomState: NumPy keeps its stream fixed across versions (Generator's may change)."""
    labels = np.asarray(labels)
    if not 0 < n < len(labels):
        raise ValueError(f"a holdout of {n} needs between 1 and {len(labels) - 1} of {len(labels)} images")
    classes, labels_index = np.unique(labels, return_inverse=True)
    rank = np.empty(len(labels), dtype=np.int64)
    rank[np.random.RandomState(seed).permutation(len(labels))] = np.arange(len(labels))
    quotas = class_quotas(np.bincount(labels_index, minlength=len(classes)), n)
    mask = np.zeros(len(labels), dtype=bool)
    for c, quota in enumerate(quotas):
        members = np.flatnonzero(labels_index == c)
        mask[members[np.argsort(rank[members], kind="stable")[:quota]]] = True
    return mask


def holdout_order(labels: np.ndarray, n: int, seed: int = HOLDOUT_SEED) -> np.ndarray:
    """The stored indices of the training split, the kept ones first and the `n` held-out ones last, each part in
    stored order: what resolve_split's "train" and "validation" ranges index."""
    mask = holdout_mask(labels, n, seed)
    return np.concatenate([np.flatnonzero(~mask), np.flatnonzero(mask)])


def applies(entry: DatasetEntry, split: str, holdout: Optional[int]) -> bool:
    """Whether a holdout picks the images of `split`: "train" and "validation" (sliced or not) of a dataset
    that holds images out."""
    return bool(effective_holdout(entry, holdout)) and split.strip().split("[")[0] in ("train", "validation")


def stored_indices(entry: DatasetEntry, split: str, start: int, stop: int, holdout: Optional[int],
                   labels: Callable[[], np.ndarray]) -> Optional[np.ndarray]:
    """The stored indices of resolve_split's range [start, stop) for `split`, when a holdout picks them
    (`applies`); None when the range is the stored order itself. `labels()` gives the stored training labels
    (read only when needed)."""
    if not applies(entry, split, holdout):
        return None
    return holdout_order(labels(), effective_holdout(entry, holdout))[start:stop]
