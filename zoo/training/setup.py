"""The Keras pieces of a run, made from its config and recipe: the model, the optimizer with its schedule and
weight decay, the loss and metrics. (The input streams are inputs.py.)"""

from __future__ import annotations

from typing import Optional

import keras

from ..registry import Recipe
from . import schedules
from .config import Run, RunConfig, TrainError

__all__ = ["uses_aux", "build_model", "inference_model", "make_optimizer", "compile_model", "soft_labels"]


def uses_aux(recipe: Recipe) -> bool:
    return recipe.aux_weight > 0


def soft_labels(recipe: Recipe) -> bool:
    """Mixup/cutmix make soft labels and label smoothing wants one-hot ones: then the categorical losses."""
    return bool(recipe.mixup or recipe.cutmix or recipe.label_smoothing)


def build_model(run: Run, *, for_training: bool = True):
    """The run's model at its input and classes, returning logits (the softmax is folded into the loss, which is
    the numerically stable form); with the auxiliary heads when the recipe trains them. The family contract says
    which options the model has."""
    from ..models import build_spec, family_of

    config, recipe, spec = run.config, run.recipe, run.spec
    family = family_of(spec)
    kwargs = dict(input_shape=(config.image_size, config.image_size, run.channels), classes=config.classes,
                  classifier_activation=None, init=config.init)
    if for_training and uses_aux(recipe):
        if not family.has_option("aux_logits"):
            raise TrainError(f"recipe {recipe.name!r} trains auxiliary classifiers (aux_weight "
                             f"{recipe.aux_weight:g}), but {spec.name} has none")
        kwargs["aux_logits"] = True
    if recipe.dropout is not None:
        # A family with a `dropout` option (DenseNet) takes the recipe's; elsewhere dropout is part of the
        # architecture (VGG's fc layers, GoogLeNet's head) and the recipe's value only restates the paper's.
        fixed = getattr(spec.arch, "dropout", recipe.dropout)
        if family.has_option("dropout"):
            kwargs["dropout"] = recipe.dropout
        elif fixed != recipe.dropout:
            raise TrainError(f"recipe {recipe.name!r} sets dropout {recipe.dropout:g}, but {spec.name}'s "
                             f"architecture fixes it at {fixed:g}")
    model = build_spec(spec, **kwargs)
    if for_training and recipe.distill is not None:
        from .distill import distilling_model

        model = distilling_model(model, run)
    if for_training and config.weights:  # fine-tuning (finetune.py): the notes go into config.json
        from . import finetune

        config.notes = [*config.notes, *finetune.start_from(model, run)]
        if config.freeze_backbone:
            config.notes = [*config.notes, *finetune.freeze(model, run)]
    return model


def inference_model(model, run: Run):
    """The model to evaluate and save: without auxiliary heads (GoogLeNet drops them after training), without the
    teacher of a distilled run."""
    from .distill import is_distilling, student_of

    if is_distilling(model):
        return student_of(model)
    if not uses_aux(run.recipe):
        return model
    from ..models import family_of

    return family_of(run.spec).inference_model(model)


def _add_l2(model, weight_decay: float) -> None:
    """SGD weight decay as the papers apply it: wd * w added to the gradient of every kernel (conv and dense), i.e.
    an L2 penalty wd/2 * |w|^2 in the loss; biases and BatchNorm parameters are not decayed."""
    penalty = keras.regularizers.L2(weight_decay / 2)
    for variable in model.trainable_variables:
        if variable.name.endswith("kernel"):
            variable.regularizer = penalty


def make_optimizer(config: RunConfig, recipe: Recipe, model):
    """The recipe's optimizer with its schedule and weight decay; with head epochs (--head-epochs, or the recipe's
    `head_epochs` when fine-tuning), the backbone's learning rate held at 0 for the first epochs
    (finetune.head_first)."""
    schedule = schedules.from_recipe(recipe.schedule, config.lr, config.steps_per_epoch, config.total_steps)
    if config.weight_decay_mode == "l2":
        _add_l2(model, config.weight_decay)
    if recipe.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=recipe.momentum, nesterov=recipe.nesterov)
    elif recipe.optimizer == "adam":
        optimizer = keras.optimizers.Adam(schedule)
    elif recipe.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
        optimizer.exclude_from_weight_decay(
            var_list=[v for v in model.trainable_variables if not v.name.endswith("kernel")])
    else:
        optimizer = keras.optimizers.RMSprop(schedule, momentum=recipe.momentum)
    if config.head_epochs:
        from . import finetune

        config.notes = [*config.notes, *finetune.head_first(optimizer, model, config)]
    if config.precision == "mixed_float16":  # fp16 gradients underflow without dynamic loss scaling
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _losses_and_metrics(config: RunConfig, recipe: Recipe, *, training: bool):
    """The run's criterion (config.loss: cross-entropy, or LeNet-5's eq. 9) and metrics; `xent`, the test loss the
    record reports, is cross-entropy whatever the criterion, so runs compare."""
    from .losses import training_loss

    loss = training_loss(config.loss, soft_labels=soft_labels(recipe), label_smoothing=recipe.label_smoothing)
    if soft_labels(recipe):
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        if config.classes > 5:
            metrics.append(keras.metrics.TopKCategoricalAccuracy(5, name="top5"))
        metrics.append(keras.metrics.CategoricalCrossentropy(from_logits=True, name="xent"))
    else:
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if config.classes > 5:
            metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"))
        metrics.append(keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="xent"))
    if training and uses_aux(recipe):  # the main loss plus aux_weight times each auxiliary head's loss
        heads = 3
        return dict(loss=[loss] * heads, loss_weights=[1.0] + [recipe.aux_weight] * (heads - 1),
                    metrics=[metrics] + [[] for _ in range(heads - 1)])
    return dict(loss=loss, metrics=metrics)


def compile_model(model, config: RunConfig, recipe: Recipe, optimizer=None, *, training: bool = True):
    """Compile for training (the recipe's losses) or evaluation (one output, no optimizer state needed)."""
    model.compile(optimizer=optimizer or keras.optimizers.SGD(), jit_compile=config.xla,
                  steps_per_execution=config.steps_per_execution if training else 1,
                  **_losses_and_metrics(config, recipe, training=training))
    return model
