"""A run's input streams, and the translation from the registry's terms (a model's input and evaluation protocol,
a recipe's augmentation and holdout) into the data layer's (a PipelineSpec). zoo/data knows datasets only; what
a model wants from them is decided here.

    spec = pipeline_spec(run.spec, run.recipe, run.data, training=True, batch_size=128, seed=0)
    ds = zoo.data.pipeline.batches(run.config.dataset, "train", spec)

Two input paths serve the same PipelineSpec (zoo.backend.input_path): tf.data (zoo/data/pipeline.py) under the
TensorFlow backend, and numpy (zoo/data/arrays.py, a keras.utils.PyDataset) under JAX or PyTorch, where there may
be no TensorFlow at all. The streams below dispatch; the harness does not need to know which one it got.
"""

from __future__ import annotations

from typing import Optional

from .. import backend
from ..data import catalogue
from ..data.catalogue import DatasetInfo
from ..registry import Recipe, Spec
from .config import Run, TrainError

__all__ = ["pipeline_spec", "weights_pipeline_spec", "eval_geometry", "train_stream", "eval_stream", "require_data",
           "input_path"]


def input_path() -> str:
    """'tf.data' or 'numpy': which pipeline serves this process's runs (zoo.backend.input_path)."""
    return backend.input_path()


def require_data(dataset: str, data_dir=None) -> None:
    """A one-line error unless this process's input path can serve `dataset`: prepared for TFDS (tf.data), or its
    raw files in <data dir>/raw/<dataset>/ (numpy); embedded datasets are always ready."""
    if input_path() == "numpy":
        from ..data import arrays

        arrays.require_ready(dataset, data_dir)
    else:
        catalogue.require_ready(dataset, data_dir)


def eval_geometry(spec: Spec, info: DatasetInfo, image_size: Optional[int] = None) -> dict:
    """The model's evaluation resize and crop where they apply: on variable-size datasets (ImageNet-like: the
    protocol is defined on them), scaled when the input size differs from the spec's (256/224 stays 256/224). On
    small fixed-size ones (CIFAR, MNIST) the images are padded/resized to the input size: nothing to add."""
    if info.fixed_size:
        return {}
    size = image_size or spec.input.size
    resize, crop = spec.eval.resize, spec.eval.crop or spec.input.size
    if size != spec.input.size:
        resize, crop = (round(resize * size / crop) if resize else None), size
    return {"eval_resize": resize, "eval_crop": crop}


def pipeline_spec(spec: Spec, recipe: Optional[Recipe], info: DatasetInfo, *, training: bool, batch_size: int,
                  seed: Optional[int] = None, **overrides):
    """The PipelineSpec that serves model `spec` (trained with `recipe`) from the dataset `info` describes: the
    model's input size and channels and evaluation protocol, the recipe's augmentation (training only) and
    validation holdout. The model's eval mean/std apply on its own dataset only (a protocol's statistics belong to
    the data it was defined on), or on every dataset when they are a fixed scaling (`eval.fixed`: LeNet-5's);
    elsewhere, and when None, the dataset's statistics are used. `overrides` set any PipelineSpec field (a None
    value counts as not given: image_size=None keeps the spec's size). Batch-level augmentation
    (recipe.mixup/cutmix/random_erasing) is the stream's: see train_stream."""
    from ..data.pipeline import PipelineSpec

    mean, std = spec.eval.normalisation(info.name, spec.dataset)
    fields = dict(image_size=spec.input.size, channels=spec.input.channels, batch_size=batch_size,
                  training=training, seed=seed, interpolation=spec.eval.interpolation,
                  augment=recipe.augment if (training and recipe is not None) else "none",
                  mean=mean, std=std,
                  holdout=recipe.validation if recipe is not None else None,
                  **eval_geometry(spec, info, overrides.get("image_size")))
    fields.update({key: value for key, value in overrides.items() if value is not None})  # None: not given
    return PipelineSpec(**fields)


def weights_pipeline_spec(preprocessing, *, batch_size: int, holdout: Optional[int] = None):
    """The evaluation PipelineSpec that feeds a set of weights what they expect (a zoo.preprocess.Preprocessing:
    size, resize and crop or fit-and-pad, channel order, mean/std, interpolation), whatever the model's registry
    protocol says: named weights are evaluated on their own preprocessing, never another convention's."""
    from ..data.pipeline import PipelineSpec

    prep = preprocessing
    return PipelineSpec(image_size=prep.size, channels=prep.channels, batch_size=batch_size, training=False,
                        deterministic=True, eval_resize=prep.resize, eval_crop=prep.crop,
                        pad=None if prep.resize else prep.pad, channel_order=prep.channel_order,
                        mean=tuple(prep.mean), std=tuple(prep.std), interpolation=prep.interpolation,
                        holdout=holdout)


def _weights_eval_stream(run: Run, split: str, batch_size: int, preprocessing):
    config = run.config
    spec = weights_pipeline_spec(preprocessing, batch_size=batch_size, holdout=run.recipe.validation)
    if input_path() == "numpy":
        from ..data import arrays

        return arrays.batches(config.dataset, split, spec, data_dir=config.data_dir,
                              targets=_numpy_targets(run, training=False))
    from ..data.pipeline import batches

    ds = batches(config.dataset, split, spec, data_dir=config.data_dir)
    return _distributable(_label_structure(ds, run, training=False))


def _batches(run: Run, split: str, **settings):
    from ..data.pipeline import batches

    config = run.config
    spec = pipeline_spec(run.spec, run.recipe, run.data, image_size=config.image_size, **settings)
    return batches(config.dataset, split, spec, data_dir=config.data_dir)


def _numpy_targets(run: Run, training: bool):
    """The numpy path's label structure (as _label_structure's): one-hot where the loss wants it, one label per
    output for the auxiliary heads; None when the labels go as they are."""
    import numpy as np

    from .setup import soft_labels, uses_aux

    recipe, classes = run.recipe, run.config.classes
    one_hot = soft_labels(recipe)
    heads = 3 if (training and uses_aux(recipe)) else 1
    if not one_hot and heads == 1:
        return None
    eye = np.eye(classes, dtype=np.float32)

    def targets(y):
        y = eye[y] if one_hot else y
        return (y,) * heads if heads > 1 else y

    return targets


def _array_batches(run: Run, split: str, *, training: bool, **settings):
    from ..data import arrays

    recipe, config = run.recipe, run.config
    if training and (recipe.mixup or recipe.cutmix or recipe.random_erasing):
        raise TrainError(f"recipe {recipe.name!r} uses mixup/cutmix/random erasing, which only the tf.data "
                         f"pipeline does (TensorFlow backend); under {backend.name()} use a recipe without them")
    spec = pipeline_spec(run.spec, recipe, run.data, image_size=config.image_size, training=training, **settings)
    return arrays.batches(config.dataset, split, spec, data_dir=config.data_dir,
                          targets=_numpy_targets(run, training))


def _distributable(ds):
    """Shard by element across workers: the sources are in-memory tensors or TFDS files fewer than workers."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _label_structure(ds, run: Run, training: bool):
    """One-hot labels where the loss wants them, and one label per output for the auxiliary heads."""
    import tensorflow as tf

    from .setup import soft_labels, uses_aux

    recipe, classes = run.recipe, run.config.classes
    if soft_labels(recipe) and not (training and (recipe.mixup or recipe.cutmix)):
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, classes)), num_parallel_calls=tf.data.AUTOTUNE)
    if training and uses_aux(recipe):
        ds = ds.map(lambda x, y: (x, (y, y, y)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds


def train_stream(run: Run, seed: int):
    """The endless, shuffled, augmented training batches (an epoch is `steps_per_epoch` of them)."""
    from ..data.pipeline import batch_augment

    config, recipe = run.config, run.recipe
    if input_path() == "numpy":
        return _array_batches(run, config.train_split, training=True, batch_size=config.batch_size, seed=seed,
                              repeat=True, drop_remainder=True)
    ds = _batches(run, config.train_split, batch_size=config.batch_size, training=True, seed=seed, repeat=True,
                  drop_remainder=True)
    ds = batch_augment(ds, num_classes=config.classes, mixup_alpha=recipe.mixup, cutmix_alpha=recipe.cutmix,
                       erasing=recipe.random_erasing, seed=seed)
    return _distributable(_label_structure(ds, run, training=True))


def eval_stream(run: Run, split: str, batch_size: Optional[int] = None, preprocessing=None):
    """One deterministic pass over `split` under the model's evaluation protocol, or, given `preprocessing` (the
    weights' zoo.preprocess.Preprocessing), prepared as those weights expect."""
    if preprocessing is not None:
        return _weights_eval_stream(run, split, batch_size or run.config.batch_size, preprocessing)
    if input_path() == "numpy":
        return _array_batches(run, split, training=False, batch_size=batch_size or run.config.batch_size,
                              deterministic=True)
    ds = _batches(run, split, batch_size=batch_size or run.config.batch_size, training=False, deterministic=True)
    return _distributable(_label_structure(ds, run, training=False))
