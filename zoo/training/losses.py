"""The training criteria a model's outputs are made for: softmax cross-entropy on the logits, or LeNet-5's MAP
criterion on its RBF penalties (LeCun et al. 1998, sec. II.C, eq. 9).

Which one a run uses is the variant's (`arch.loss` of the original LeNet-5; every other variant: cross-entropy),
resolved without Keras by zoo.training.config and recorded in config.json as `loss`, so a resumed run keeps it.
"""

from __future__ import annotations

from typing import Optional

import keras
from keras import ops

from .options import TrainError

__all__ = ["MAPCriterion", "training_loss"]

CROSSENTROPY = {"name": "crossentropy"}


@keras.saving.register_keras_serializable(package="zoo")
class MAPCriterion(keras.losses.Loss):
    """Eq. 9 of LeCun et al. 1998, the maximum a posteriori criterion of the RBF outputs:

        E = mean over samples p of  y_D(p) + log(e^-j + sum_i e^-y_i(p))

    y_i the penalty (squared distance to prototype i) of class i, D the sample's class, j > 0 the penalty of a
    "rubbish" class that no sample belongs to: once a wrong class' penalty is well above j its e^-y_i no longer
    counts beside e^-j, so it is not pushed further up. Without the e^-j term this is softmax cross-entropy on
    -y_i; the zoo's LeNet-5 outputs those logits, -y_i (zoo.models.layers.EuclideanRBF), which is what this takes.

    Labels are class indices, or one-hot/soft rows (then y_D is the labels' weighted sum of the penalties).
    dE/d(-y_i) = q_i - [i = D], q_i = e^-y_i / (e^-j + sum_k e^-y_k): the gradient tests/test_lenet.py checks.
    """

    def __init__(self, rubbish_penalty: float = 0.1, name: str = "map_criterion", **kwargs):
        super().__init__(name=name, **kwargs)
        if not rubbish_penalty > 0:
            raise ValueError(f"the rubbish penalty j of eq. 9 must be positive, got {rubbish_penalty}")
        self.rubbish_penalty = float(rubbish_penalty)

    def call(self, y_true, y_pred):
        logits = ops.convert_to_tensor(y_pred)  # -y_i
        if len(y_true.shape) == len(logits.shape):  # one-hot or soft labels
            target = ops.sum(ops.cast(y_true, logits.dtype) * logits, axis=-1)
        else:
            labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
            target = ops.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
        rubbish = ops.full_like(logits[:, :1], -self.rubbish_penalty)  # the log of e^-j
        return -target + ops.logsumexp(ops.concatenate([rubbish, logits], axis=-1), axis=-1)

    def get_config(self):
        return {**super().get_config(), "rubbish_penalty": self.rubbish_penalty}


def training_loss(loss: Optional[dict], *, soft_labels: bool, label_smoothing: float = 0.0):
    """The Keras loss of a run's config (`loss`; None, a config from before the field: cross-entropy)."""
    loss = loss or CROSSENTROPY
    if loss["name"] == "map":
        if label_smoothing:
            raise TrainError("label smoothing is defined for cross-entropy, not for eq. 9's MAP criterion; use a "
                             "recipe without label_smoothing")
        return MAPCriterion(loss["rubbish_penalty"])
    if soft_labels:
        return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
