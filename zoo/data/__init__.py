"""The data layer: the dataset catalogue, offline import of the official raw files, the embedded Fashion-MNIST
sample and the tf.data input pipelines.

    from zoo.data import PipelineSpec, batches, make_dataset, dataset_info
    spec = PipelineSpec(image_size=32, channels=1, batch_size=128, training=True, augment="pad_crop_flip", seed=0)
    ds = batches("fashion_mnist_sample", "train", spec)        # or make_dataset(name, split, **the same keywords)

The data layer knows datasets, not models: it imports nothing of the registry; the training harness translates a
model's input and evaluation protocol and a recipe's augmentation into a PipelineSpec (zoo/training/inputs.py).

Importing `zoo.data` is cheap: the catalogue needs no TensorFlow; the pipeline and the importer load it on use.
"""

from __future__ import annotations

import importlib

from .catalogue import (DatasetError, DatasetInfo, DatasetNotReadyError, UnknownDatasetError,  # noqa: F401
                        dataset_info, load_catalogue, get_dataset, is_ready, list_datasets, prepared_dir,
                        require_ready, resolve_data_dir, size_on_disk)

# `prepare` is not re-exported: it is also the name of the submodule that defines it
# (`from zoo.data.prepare import prepare`). The raw-file readers
# (sources.py) need numpy, so their errors are lazy too: `zoo list` imports this package and must stay fast.
_LAZY = {name: "zoo.data.pipeline" for name in
         ("PipelineSpec", "batches", "make_dataset", "batch_augment", "mixup", "cutmix", "random_erasing",
          "AUGMENTS")}
_LAZY.update({name: "zoo.data.sources" for name in ("CorruptDataError", "RawFilesNotFoundError")})


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
