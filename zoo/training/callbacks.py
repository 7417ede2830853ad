"""The harness's Keras callbacks: step bookkeeping (step limit, non-finite loss, timing), the per-epoch record and
checkpoint, and the console progress lines.

Order matters and `run.py` keeps it: StepMonitor first (it stops a diverged run before anything is saved),
then EpochRecorder (history and checkpoint of each good epoch), then Progress (prints what was recorded).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import keras

from ..formatting import duration

__all__ = ["RunState", "StepMonitor", "EpochRecorder", "Progress", "main_metrics"]


@dataclass
class RunState:
    """A run's progress: saved with each checkpoint, so a resumed run continues its history and clocks."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps completed
    history: list = field(default_factory=list)
    best_val_accuracy: Optional[float] = None
    train_seconds: float = 0.0  # time in training steps (no validation, no checkpointing)
    elapsed_seconds: float = 0.0  # wall time of the finished epochs, across resumptions
    images_seen: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunState":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def main_metrics(logs: dict) -> dict:
    """Keras logs as plain floats, named for the main output: a multi-output model (GoogLeNet with auxiliary
    heads) logs `predictions_accuracy`; the aux heads' own entries are dropped (their weighted losses are part of
    `loss`)."""
    out = {}
    for key, value in (logs or {}).items():
        prefix = "val_" if key.startswith("val_") else ""
        bare = key[len(prefix):]
        if bare.startswith("aux") or bare == "predictions_loss":  # per-output losses: `loss` is their total
            continue
        if bare.startswith("predictions_"):
            bare = bare[len("predictions_"):]
        out[prefix + bare] = float(value)
    return out


class StepMonitor(keras.callbacks.Callback):
    """Counts optimizer steps, stops at `total_steps`, stops on a non-finite loss (before the epoch's checkpoint,
    so the last good one survives) and times the training steps of each epoch."""

    def __init__(self, state: RunState, steps_per_epoch: int, total_steps: int, batch_size: int):
        super().__init__()
        self.state, self.steps_per_epoch, self.total_steps = state, steps_per_epoch, total_steps
        self.batch_size = batch_size
        self.diverged: Optional[dict] = None
        self.epoch = 0
        self.epoch_start = self.last_batch_end = time.perf_counter()
        self.epoch_steps = 0

    @property
    def step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.epoch_steps

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_steps = epoch, 0
        self.epoch_start = self.last_batch_end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.epoch_steps = batch + 1  # with steps_per_execution > 1, Keras reports the last step of the execution
        self.last_batch_end = time.perf_counter()
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            self.diverged = {"epoch": self.epoch + 1, "step": self.step, "loss": loss}
            self.model.stop_training = True
        elif self.step >= self.total_steps:
            self.model.stop_training = True

    @property
    def epoch_train_seconds(self) -> float:
        return self.last_batch_end - self.epoch_start


class EpochRecorder(keras.callbacks.Callback):
    """After each good epoch: append its record to the history and hand the state to `save` (the checkpoint)."""

    def __init__(self, state: RunState, monitor: StepMonitor, save: Optional[Callable[[], None]] = None):
        super().__init__()
        self.state, self.monitor, self.save = state, monitor, save
        self.wall_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.wall_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor.diverged:
            return
        metrics = main_metrics(logs)
        steps = self.monitor.epoch_steps
        seconds = self.monitor.epoch_train_seconds
        images = steps * self.monitor.batch_size
        record = {"epoch": epoch + 1, "step": self.monitor.step, **metrics,
                  "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                  "images_per_s": images / seconds if seconds > 0 else None,
                  "train_time_s": seconds, "epoch_time_s": time.perf_counter() - self.wall_start}
        state = self.state
        state.history.append(record)
        state.epoch, state.step = epoch + 1, self.monitor.step
        state.train_seconds += seconds
        state.elapsed_seconds += record["epoch_time_s"]
        state.images_seen += images
        if "val_accuracy" in metrics:
            state.best_val_accuracy = max(metrics["val_accuracy"], state.best_val_accuracy or 0.0)
        if self.save is not None:
            self.save()


class Progress(keras.callbacks.Callback):
    """One line per epoch (loss, accuracy, validation, lr, images/s, time, ETA) and, in long epochs, a status
    line every `interval` seconds, so a run in a log file shows it is alive."""

    def __init__(self, state: RunState, monitor: StepMonitor, total_epochs: int, echo: Callable[[str], None] = print,
                 interval: float = 30.0):
        super().__init__()
        self.state, self.monitor, self.total_epochs, self.echo = state, monitor, total_epochs, echo
        self.interval = interval
        self.start = time.perf_counter()
        self.start_step = state.step
        self.last_print = self.start

    def _eta(self) -> str:
        done = self.monitor.step - self.start_step
        if done <= 0:
            return "?"
        per_step = (time.perf_counter() - self.start) / done
        return duration(per_step * (self.monitor.total_steps - self.monitor.step))

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self.last_print < self.interval:
            return
        self.last_print = now
        m, mon = main_metrics(logs), self.monitor
        rate = mon.epoch_steps * mon.batch_size / max(mon.epoch_train_seconds, 1e-9)
        self.echo(f"  epoch {mon.epoch + 1} step {mon.epoch_steps}/{mon.steps_per_epoch}  "
                  f"loss {m.get('loss', float('nan')):.4f}  acc {m.get('accuracy', float('nan')):.4f}  "
                  f"{rate:,.0f} img/s  ETA {self._eta()}")

    def on_epoch_end(self, epoch, logs=None):
        self.last_print = time.perf_counter()
        if self.monitor.diverged or not self.state.history:
            return
        r = self.state.history[-1]
        width = len(str(self.total_epochs))
        parts = [f"epoch {r['epoch']:{width}d}/{self.total_epochs}", f"loss {r.get('loss', float('nan')):.4f}",
                 f"acc {r.get('accuracy', float('nan')):.4f}"]
        if "val_accuracy" in r:
            parts.append(f"val_acc {r['val_accuracy']:.4f}")
        parts += [f"lr {r['lr']:.3g}", f"{r['images_per_s'] or 0:,.0f} img/s", duration(r["epoch_time_s"]),
                  f"ETA {self._eta()}"]
        self.echo("  ".join(parts))
