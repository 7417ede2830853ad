"""Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network", arXiv
1503.02531): a recipe's `distill` trains the run's model, the student, on its labels and on a trained teacher's
softened outputs,

    loss = CE(labels, s) + weight * T^2 * KL(softmax(t / T) || softmax(s / T))

s and t the student's and the teacher's logits, T the temperature. The T^2 keeps the soft term's gradients the
size of the hard term's whatever T is (the paper's sec. 2).

    distill: {teacher: resnet20.fashion_mnist, temperature: 4, weight: 1}     # registry.yaml, a recipe's field

- The teacher is a named weights entry (`zoo list --weights`), frozen and in inference mode. It sees each training
  batch as the student does (after the augmentation), so it must expect the same input: the same size, geometry
  (pad / resize and crop) and the run's classes. Its normalisation may differ: the batch is converted exactly from
  the run's mean/std to the teacher's (input_conversion); a grey student's batch reaches a colour teacher as three
  equal channels, as the pipeline feeds a colour net from grey images. All of it is checked when the run is
  resolved, before TensorFlow starts (`check`), with one line naming what differs.
- Only the training loss changes. The training model is the student's own layers (`DistillingModel`, a functional
  model over them), so its checkpoints, weights files, validation and test are the student's alone; the teacher is
  not part of what is saved. Validation and test losses are the cross-entropy without the soft term.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Optional

from ..registry import Distill, Recipe, Spec
from .options import TrainError

__all__ = ["DistillError", "check", "teacher_weights", "preprocessing_difference", "Teacher", "distilling_model",
           "is_distilling", "student_of", "soft_loss"]


class DistillError(TrainError):
    """A teacher that cannot teach this run; the message names the recipe, the teacher and what differs."""


# ---------------------------------------------------------------------------------------------------------------
# Checked when the run is resolved (no TensorFlow)


def teacher_weights(recipe: Recipe):
    """The recipe's teacher as zoo.pretrained.Weights (sha256-checked); a bad name is one line naming the recipe."""
    from .. import pretrained
    from ..errors import ZooError

    try:
        return pretrained.get_weights(recipe.distill.teacher)
    except ZooError as e:  # an unknown model or tag, a file not shipped, a damaged one (its sha256)
        raise DistillError(f"recipe {recipe.name!r}: distill.teacher: {_message(e)}") from None


def _message(error: Exception) -> str:
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def check(spec: Spec, recipe: Recipe, dataset: str, class_names: list, image_size: int) -> Optional[str]:
    """None without distillation; else the note for config.json, once the teacher is known to fit the run: its
    classes are the dataset's (by name, in order) and its preprocessing is what the run's pipeline produces."""
    if recipe.distill is None:
        return None
    from ..pretrained import pipeline_preprocessing

    if recipe.aux_weight:
        raise DistillError(f"recipe {recipe.name!r} trains auxiliary classifiers and distils: the soft term is "
                           f"defined for one output; drop aux_weight or distill")
    weights = teacher_weights(recipe)
    where = f"recipe {recipe.name!r}: teacher {weights.name}"
    if list(weights.class_names) != list(class_names):
        raise DistillError(f"{where} predicts the {weights.classes} classes of {weights.dataset}; the run's "
                           f"dataset {dataset} has {len(class_names)} others: its soft targets would be for the "
                           f"wrong classes")
    difference = preprocessing_difference(weights.preprocessing, pipeline_preprocessing(spec, dataset, image_size))
    if difference:
        raise DistillError(f"{where} expects {difference}: it would see the batches {spec.name} is trained on "
                           f"prepared for another input")
    distill = recipe.distill
    return (f"distilled from {weights.name} (temperature {distill.temperature:g}, soft-term weight "
            f"{distill.weight:g})")


def preprocessing_difference(teacher, student) -> Optional[str]:
    """What the teacher's input (a zoo.preprocess.Preprocessing) wants that the student's batches cannot be made
    into, in a few words; None when they can (grey copied to three channels; mean/std converted, input_conversion)."""
    for field in ("size", "resize", "crop", "pad"):
        theirs, ours = getattr(teacher, field), getattr(student, field)
        if theirs != ours:
            return f"{field} {theirs} where the run's pipeline has {ours}"
    if teacher.resize and teacher.interpolation != student.interpolation:
        return f"{teacher.interpolation} resizing where the run's pipeline resizes {student.interpolation}"
    if teacher.channels < student.channels:
        return f"{teacher.channels} channel(s) where the run's batches have {student.channels}"
    if teacher.channels == student.channels == 3 and teacher.channel_order != student.channel_order:
        return f"{teacher.channel_order.upper()} channels where the run's are {student.channel_order.upper()}"
    return None


def _per_channel(values: list, channels: int) -> list:
    return list(values) * channels if len(values) == 1 else list(values)


def input_conversion(teacher, student) -> tuple[list, list]:
    """(scale, shift) per teacher channel that turn the student's normalised batch into the teacher's: both
    normalise the same 0-255 pixels last ((x - mean) / std, after padding and augmentation, zoo/data/pipeline.py),
    so x_teacher = x_student * std_s / std_t + (mean_s - mean_t) / std_t exactly. A grey student's single
    statistics stand for each of the three copies."""
    channels = teacher.channels
    mean_s, std_s = _per_channel(student.mean, channels), _per_channel(student.std, channels)
    mean_t, std_t = _per_channel(teacher.mean, channels), _per_channel(teacher.std, channels)
    return ([s / t for s, t in zip(std_s, std_t)], [(ms - mt) / t for ms, mt, t in zip(mean_s, mean_t, std_t)])


# ---------------------------------------------------------------------------------------------------------------
# The training model (Keras)


@dataclass(frozen=True)
class Teacher:
    """The frozen teacher and how its outputs enter the loss. Not a Keras layer on purpose: the training model does
    not track it, so no checkpoint or weights file holds its variables."""

    model: Any  # keras.Model returning logits
    distill: Distill
    repeat: int  # 3: a grey batch copied to the colour teacher's three channels
    scale: tuple  # per teacher channel: the student's normalisation turned into the teacher's (input_conversion)
    shift: tuple

    @classmethod
    def load(cls, recipe: Recipe, student_preprocessing) -> "Teacher":
        """The recipe's teacher, built with its weights (call it under the run's dtype policy and strategy), for
        batches prepared as `student_preprocessing` (a zoo.preprocess.Preprocessing) says."""
        weights = teacher_weights(recipe)
        model = weights.build(classifier_activation=None)
        model.trainable = False
        scale, shift = input_conversion(weights.preprocessing, student_preprocessing)
        repeat = weights.preprocessing.channels // student_preprocessing.channels
        return cls(model, recipe.distill, repeat, tuple(scale), tuple(shift))

    def logits(self, x):
        from keras import ops

        x = ops.repeat(x, self.repeat, axis=-1) if self.repeat > 1 else x
        x = x * ops.convert_to_tensor(self.scale, x.dtype) + ops.convert_to_tensor(self.shift, x.dtype)
        return self.model(x, training=False)


def soft_loss(teacher_logits, student_logits, temperature: float):
    """T^2 KL(softmax(t/T) || softmax(s/T)), the batch mean: the soft term before its weight. In float32 whatever
    the dtype policy (bfloat16 logs of small probabilities are too coarse)."""
    from keras import ops

    t = ops.cast(teacher_logits, "float32") / temperature
    s = ops.cast(student_logits, "float32") / temperature
    log_p = ops.log_softmax(t, axis=-1)
    kl = ops.sum(ops.exp(log_p) * (log_p - ops.log_softmax(s, axis=-1)), axis=-1)
    return temperature ** 2 * ops.mean(kl)


def _per_replica(value):
    """The loss of one replica's batch, as Keras scales its own compiled loss under tf.distribute (the gradients
    of the replicas are summed)."""
    from .. import backend

    if backend.name() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            value = value / replicas
    return value


@functools.cache
def _model_class():
    import keras

    class DistillingModel(keras.Model):
        """The student's functional graph (its layers, shared) with the distillation loss in training."""

        def __init__(self, student, teacher: Teacher):
            super().__init__(inputs=student.inputs, outputs=student.outputs, name=student.name)
            self.teacher = teacher  # a plain object: not tracked, not saved (see Teacher)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
            if not training:  # validation and test: the student's cross-entropy alone
                return loss
            soft = soft_loss(self.teacher.logits(x), y_pred, self.teacher.distill.temperature)
            return loss + _per_replica(self.teacher.distill.weight * soft)

    return DistillingModel


def distilling_model(student, run):
    """The training model of distilled `run` (a zoo.training.config.Run): `student`'s layers, trained against the
    recipe's teacher, which is fed the run's batches converted to its own normalisation."""
    from ..pretrained import pipeline_preprocessing

    config = run.config
    prepared = pipeline_preprocessing(run.spec, config.dataset, config.image_size)
    return _model_class()(student, Teacher.load(run.recipe, prepared))


def is_distilling(model) -> bool:
    return isinstance(getattr(model, "teacher", None), Teacher)


def student_of(model):
    """The plain functional model over a distilling model's layers: what is saved and evaluated (it has no
    teacher, and a .keras file of it loads without this module)."""
    import keras

    return keras.Model(model.inputs, model.outputs, name=model.name)
