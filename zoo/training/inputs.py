"""A run's input streams, and the translation from the registry's terms (a model's input and evaluation protocol,
a recipe's augmentation and holdout) into the data layer's (a PipelineSpec). zoo/data knows datasets only; what
a model wants from them is decided here.

    spec = pipeline_spec(run.spec, run.recipe, run.data, training=True, batch_size=128, seed=0)
    ds = zoo.data.pipeline.batches(run.config.dataset, "train", spec)
"""

from __future__ import annotations

from typing import Optional

from ..data.catalogue import DatasetInfo
from ..registry import Recipe, Spec
from .config import Run

__all__ = ["pipeline_spec", "eval_geometry", "train_stream", "eval_stream"]


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
    the data it was defined on); elsewhere, and when None, the dataset's statistics are used. `overrides` set any
    PipelineSpec field (a None value counts as not given: image_size=None keeps the spec's size). Batch-level
    augmentation (recipe.mixup/cutmix/random_erasing) is the stream's: see train_stream."""
    from ..data.pipeline import PipelineSpec

    own = info.name == spec.dataset
    fields = dict(image_size=spec.input.size, channels=spec.input.channels, batch_size=batch_size,
                  training=training, seed=seed, interpolation=spec.eval.interpolation,
                  augment=recipe.augment if (training and recipe is not None) else "none",
                  mean=spec.eval.mean if own else None, std=spec.eval.std if own else None,
                  holdout=recipe.validation if recipe is not None else None,
                  **eval_geometry(spec, info, overrides.get("image_size")))
    fields.update({key: value for key, value in overrides.items() if value is not None})  # None: not given
    return PipelineSpec(**fields)


def _batches(run: Run, split: str, **settings):
    from ..data.pipeline import batches

    config = run.config
    spec = pipeline_spec(run.spec, run.recipe, run.data, image_size=config.image_size, **settings)
    return batches(config.dataset, split, spec, data_dir=config.data_dir)


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
    ds = _batches(run, config.train_split, batch_size=config.batch_size, training=True, seed=seed, repeat=True,
                  drop_remainder=True)
    ds = batch_augment(ds, num_classes=config.classes, mixup_alpha=recipe.mixup, cutmix_alpha=recipe.cutmix,
                       erasing=recipe.random_erasing, seed=seed)
    return _distributable(_label_structure(ds, run, training=True))


def eval_stream(run: Run, split: str, batch_size: Optional[int] = None):
    """One deterministic pass over `split` under the model's evaluation protocol."""
    ds = _batches(run, split, batch_size=batch_size or run.config.batch_size, training=False, deterministic=True)
    return _distributable(_label_structure(ds, run, training=False))
