"""The harness's Keras callbacks: step bookkeeping (step limit, non-finite loss, timing), the per-epoch record and
checkpoint, and the console progress lines.

Order matters and `run.py` keeps it: StepMonitor first (it stops a diverged run before anything is saved),
then EpochRecorder (history and checkpoint of each good epoch), then Progress (prints what was recorded).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Optional

import keras

from ..formatting import duration
from .state import RunState  # noqa: F401 - re-exported: its historic home

__all__ = ["RunState", "StepMonitor", "EpochRecorder", "Progress", "main_metrics"]


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
    """After each good epoch: append its record to the history, note a new best validation accuracy (and call
    `on_best`, which keeps those weights), then hand the state to `save` (the checkpoint). Ties keep the earlier
    epoch."""

    def __init__(self, state: RunState, monitor: StepMonitor, save: Optional[Callable[[], None]] = None,
                 on_best: Optional[Callable[[], None]] = None):
        super().__init__()
        self.state, self.monitor, self.save, self.on_best = state, monitor, save, on_best
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
        if "val_accuracy" in metrics and (state.best_val_accuracy is None
                                          or metrics["val_accuracy"] > state.best_val_accuracy):
            state.best_val_accuracy, state.best_epoch = metrics["val_accuracy"], epoch + 1
            if self.on_best is not None:
                self.on_best()
        if self.save is not None:
            self.save()


class Progress(keras.callbacks.Callback):
    """One line per epoch (loss, accuracy, validation, lr, images/s, time, ETA) and, inside each epoch, what a
    person can watch: on a terminal (`live`), a progress bar (rich: steps, images/s, loss, the epoch's and the
    run's ETA; then the validation pass); in a log file or a pipe, a status line every `interval` seconds, so a
    run there shows it is alive. While the bar is up, the lines go to the terminal through it (above the bar);
    call `close()` when fit ends, however it ends (an exception skips on_train_end)."""

    def __init__(self, state: RunState, monitor: StepMonitor, total_epochs: int, echo: Callable[[str], None] = print,
                 interval: float = 30.0, live: bool = False, validation_steps: Optional[int] = None):
        super().__init__()
        self.state, self.monitor, self.total_epochs, self.echo = state, monitor, total_epochs, echo
        self.interval, self.live, self.validation_steps = interval, live, validation_steps
        self.start = time.perf_counter()
        self.start_step = state.step
        self.last_print = self.start
        self.bar = None  # the rich Progress while fit runs on a terminal
        self.task = self.validation_task = None

    def _eta(self) -> str:
        done = self.monitor.step - self.start_step
        if done <= 0:
            return "?"
        per_step = (time.perf_counter() - self.start) / done
        return duration(per_step * (self.monitor.total_steps - self.monitor.step))

    def _say(self, line: str) -> None:
        if self.bar is not None:
            from rich.text import Text

            self.bar.refresh()  # the live display redraws its last frame under a printed line: make it current
            self.bar.console.print(Text(line))
        else:
            self.echo(line)

    # -- the bar ----------------------------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if not self.live:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                       TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[loss]}"), TimeRemainingColumn(),
                       TextColumn("{task.fields[eta]}"), transient=True, refresh_per_second=4)
        self.bar.start()

    def on_epoch_begin(self, epoch, logs=None):
        if self.bar is not None:
            width = len(str(self.total_epochs))
            self.task = self.bar.add_task(f"epoch {epoch + 1:{width}d}/{self.total_epochs}",
                                          total=self.monitor.steps_per_epoch, rate="", loss="", eta="")

    def on_test_begin(self, logs=None):
        if self.bar is not None and self.task is not None:
            self.validation_task = self.bar.add_task("  validation", total=self.validation_steps, rate="", loss="",
                                                     eta="")

    def on_test_batch_end(self, batch, logs=None):
        if self.validation_task is not None:
            self.bar.update(self.validation_task, completed=batch + 1)

    def on_test_end(self, logs=None):
        if self.validation_task is not None:
            self.bar.remove_task(self.validation_task)
            self.validation_task = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def on_train_end(self, logs=None):
        self.close()

    # -- each step, each epoch --------------------------------------------------------------------------------------

    def on_train_batch_end(self, batch, logs=None):
        mon = self.monitor
        if self.bar is not None:
            rate = mon.epoch_steps * mon.batch_size / max(mon.epoch_train_seconds, 1e-9)
            loss = main_metrics(logs).get("loss", float("nan"))
            self.bar.update(self.task, completed=mon.epoch_steps, rate=f"{rate:,.0f} img/s",
                            loss=f"loss {loss:.4f}", eta=f"run ETA {self._eta()}")
            return
        now = time.perf_counter()
        if now - self.last_print < self.interval:
            return
        self.last_print = now
        m = main_metrics(logs)
        rate = mon.epoch_steps * mon.batch_size / max(mon.epoch_train_seconds, 1e-9)
        self.echo(f"  epoch {mon.epoch + 1} step {mon.epoch_steps}/{mon.steps_per_epoch}  "
                  f"loss {m.get('loss', float('nan')):.4f}  acc {m.get('accuracy', float('nan')):.4f}  "
                  f"{rate:,.0f} img/s  ETA {self._eta()}")

    def on_epoch_end(self, epoch, logs=None):
        self.last_print = time.perf_counter()
        if self.bar is not None and self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        if self.monitor.diverged or not self.state.history:
            return
        r = self.state.history[-1]
        width = len(str(self.total_epochs))
        parts = [f"epoch {r['epoch']:{width}d}/{self.total_epochs}", f"loss {r.get('loss', float('nan')):.4f}",
                 f"acc {r.get('accuracy', float('nan')):.4f}"]
        if "val_accuracy" in r:
            best = " *" if self.state.best_epoch == r["epoch"] else ""  # the best-validation checkpoint so far
            parts.append(f"val_loss {r.get('val_loss', float('nan')):.4f}  val_acc {r['val_accuracy']:.4f}{best}")
        parts += [f"lr {r['lr']:.3g}", f"{r['images_per_s'] or 0:,.0f} img/s", duration(r["epoch_time_s"]),
                  f"ETA {self._eta()}"]
        self._say("  ".join(parts))


# ---------------------------------------------------------------------------------------------------------------
# TensorBoard: what Keras' callback does not write. Keras writes train/ and validation/ scalars (epoch_loss,
# epoch_accuracy, ...) under the log folder; the run's hyperparameters (HParams plugin) and its test scores go in
# the log folder itself, so `tensorboard --logdir runs/` lists every run as a session, comparable by them.

HPARAM_METRICS = (("epoch_accuracy", "validation", "val accuracy"), ("epoch_loss", "validation", "val loss"),
                  ("epoch_accuracy", "train", "train accuracy"), ("epoch_loss", "train", "train loss"),
                  ("test_accuracy", None, "test accuracy"))


def write_hparams(log_dir, hparams: dict, trial_id: str) -> None:
    """The run's hyperparameters as one HParams session (values: str, int, float, bool; None left out)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    values = {k: v for k, v in hparams.items() if v is not None}
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hp.hparams_config(hparams=[hp.HParam(k) for k in values],
                          metrics=[hp.Metric(tag, group=group, display_name=name)
                                   for tag, group, name in HPARAM_METRICS])
        hp.hparams(values, trial_id=trial_id)
    writer.close()


def write_test_scalars(log_dir, test: dict, step: int) -> None:
    """The test split's scores (once, at the end) beside the hyperparameters: test_accuracy, test_xent, ..."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for key, value in main_metrics(test).items():
            tf.summary.scalar(f"test_{key}", value, step=step)
    writer.close()
