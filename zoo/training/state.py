"""A run's progress, as its checkpoints save it (`RunState`). Light on purpose (no Keras): the run folder's code
(rundir.py) and the tools that look into run folders (zoo reproduce's plan) read it without TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

__all__ = ["RunState"]


@dataclass
class RunState:
    """A run's progress: saved with each checkpoint, so a resumed run continues its history and clocks."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps completed
    history: list = field(default_factory=list)
    best_val_accuracy: Optional[float] = None
    best_epoch: Optional[int] = None  # the epoch of best_val_accuracy: its weights are the best checkpoint's
    train_seconds: float = 0.0  # time in training steps (no validation, no checkpointing)
    elapsed_seconds: float = 0.0  # wall time of the finished epochs, across resumptions
    images_seen: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunState":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
