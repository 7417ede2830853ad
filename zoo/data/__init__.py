"""The data layer: the dataset catalogue, offline import of the official raw files, the embedded Fashion-MNIST
sample and the tf.data input pipelines.

    from zoo.data import make_dataset, dataset_info
    ds = make_dataset("fashion_mnist_sample", "train", image_size=32, channels=1, batch_size=128, training=True,
                      augment="pad_crop_flip", seed=0)

Importing `zoo.data` is cheap: the catalogue needs no TensorFlow; the pipeline and the importer load it on use.
"""

from __future__ import annotations

import importlib

from .catalogue import (DatasetError, DatasetInfo, DatasetNotReadyError, UnknownDatasetError,  # noqa: F401
                        dataset_info, load_catalogue, get_dataset, is_ready, list_datasets, prepared_dir,
                        require_ready, resolve_data_dir, size_on_disk)

# `pipeline` and `prepare` are not re-exported: they are also the names of the submodules that define them
# (`from zoo.data.pipeline import pipeline`, `from zoo.data.prepare import prepare`). The raw-file readers
# (sources.py) need numpy, so their errors are lazy too: `zoo list` imports this package and must stay fast.
_LAZY = {name: "zoo.data.pipeline" for name in
         ("make_dataset", "batch_augment", "mixup", "cutmix", "random_erasing", "AUGMENTS")}
_LAZY.update({name: "zoo.data.sources" for name in ("CorruptDataError", "RawFilesNotFoundError")})


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
