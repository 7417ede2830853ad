"""Learning-rate schedules from a recipe's `schedule:` block, as one Keras LearningRateSchedule.

The optimizer calls the schedule with its update counter: `step` 0 is the first update. Every schedule is per
step (no staircase for cosine/linear); step decay changes at the first step of the boundary epoch, as the papers'
"divide by 10 at epoch 30" does. Warm-up ramps linearly up to the peak: lr * (step + 1) / warmup_steps, so the
first update already moves (PyTorch/timm style), and the decay that follows starts where warm-up ends.

Units: `unit: epochs` values are multiplied by the steps per epoch; `boundaries` below 1 are fractions of the
whole run (DenseNet's "50% and 75% of the epochs") in either unit.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
from keras import ops

from ..choices import SCHEDULE_KINDS

__all__ = ["RecipeSchedule", "from_recipe", "to_steps"]


@keras.saving.register_keras_serializable(package="zoo")
class RecipeSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `lr`, then constant / step (times `gamma` at each boundary) / cosine / linear decay to
    `min_lr` at `total_steps`. All lengths are in optimizer steps."""

    def __init__(self, lr: float, total_steps: int, kind: str = "constant", boundaries: Sequence[int] = (),
                 gamma: float = 0.1, warmup_steps: int = 0, min_lr: float = 0.0):
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"schedule type must be one of {', '.join(SCHEDULE_KINDS)}, got {kind!r}")
        if total_steps < 1:
            raise ValueError(f"a schedule needs at least one step, got total_steps={total_steps}")
        if warmup_steps >= total_steps and kind in ("cosine", "linear"):
            raise ValueError(f"warm-up ({warmup_steps} steps) leaves no room to decay in {total_steps} steps")
        self.lr, self.total_steps, self.kind = float(lr), int(total_steps), kind
        self.boundaries = sorted(int(b) for b in boundaries)
        self.gamma, self.warmup_steps, self.min_lr = float(gamma), int(warmup_steps), float(min_lr)

    def decayed(self, step):
        """The rate after warm-up, at float step `step` (counted from 0, like the optimizer)."""
        if self.kind == "constant":
            return ops.convert_to_tensor(self.lr, "float32") + 0.0 * step
        if self.kind == "step":
            passed = sum(ops.cast(step >= b, "float32") for b in self.boundaries) if self.boundaries else 0.0 * step
            return self.lr * ops.power(self.gamma, passed)
        span = float(self.total_steps - self.warmup_steps)
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.kind == "cosine":
            return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return self.lr - (self.lr - self.min_lr) * progress  # linear

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rate = self.decayed(step)
        if self.warmup_steps:
            ramp = self.lr * (step + 1.0) / self.warmup_steps
            rate = ops.where(step < self.warmup_steps, ramp, rate)
        return ops.cast(rate, "float32")

    def get_config(self):
        return {"lr": self.lr, "total_steps": self.total_steps, "kind": self.kind, "boundaries": self.boundaries,
                "gamma": self.gamma, "warmup_steps": self.warmup_steps, "min_lr": self.min_lr}


def to_steps(value: float, unit: str, steps_per_epoch: int, total_steps: int, *, fraction: bool) -> int:
    """A length in the recipe's unit as optimizer steps; with `fraction`, values below 1 are shares of the run."""
    if fraction and 0 < value < 1:
        return int(round(value * total_steps))
    return int(round(value * steps_per_epoch)) if unit == "epochs" else int(round(value))


def from_recipe(schedule, lr: float, steps_per_epoch: int, total_steps: int) -> RecipeSchedule:
    """The RecipeSchedule for a recipe's `schedule` (zoo.registry.Schedule) at the run's actual lengths. A warm-up
    longer than half the run (a short test run of a long recipe) is cut to half of it."""
    convert = dict(unit=schedule.unit, steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    warmup = min(to_steps(schedule.warmup, fraction=False, **convert), total_steps // 2)
    return RecipeSchedule(
        lr=lr, total_steps=total_steps, kind=schedule.type,
        boundaries=[to_steps(b, fraction=True, **convert) for b in schedule.boundaries],
        gamma=schedule.gamma, warmup_steps=warmup, min_lr=schedule.min_lr)
