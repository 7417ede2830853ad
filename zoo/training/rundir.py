"""A run's output folder: what is in it, and whether a new run, or a resumption, may use it.

    config.json        the resolved configuration (written when the run starts)
    history.csv        one row per finished epoch (rewritten whole, atomically, with each checkpoint)
    tensorboard/       Keras TensorBoard logs
    checkpoint/        epoch-NNNN.weights.h5 (model + optimizer state) and state.json (epoch, step, history,
                       clocks), the commit point: it names the weights file only once that file is complete
    model.weights.h5   the final weights, for `zoo eval --weights` (written at the end)
    metrics.json       the final record (written last, atomically): its presence means the run finished
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
from pathlib import Path
from typing import Optional

from ..results import write_json_atomic
from .callbacks import RunState
from .config import RunConfig, TrainError

__all__ = ["RunDir", "default_run_path", "latest_run_path"]


def default_run_path(model: str, dataset: str, root: str | os.PathLike = "runs") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{model}-{dataset}-{stamp}"


def latest_run_path(model: str, dataset: str, root: str | os.PathLike = "runs") -> Optional[Path]:
    """The newest runs/<model>-<dataset>-* folder with a checkpoint (for --resume without --output)."""
    candidates = sorted(Path(root).glob(f"{model}-{dataset}-*/checkpoint/state.json"))
    return candidates[-1].parent.parent if candidates else None


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.history_path = self.path / "history.csv"
        self.tensorboard = self.path / "tensorboard"
        self.checkpoint_dir = self.path / "checkpoint"
        self.state_path = self.checkpoint_dir / "state.json"
        self.weights_path = self.path / "model.weights.h5"
        self.metrics_path = self.path / "metrics.json"

    # -- what is there ------------------------------------------------------------------------------------------

    def saved_config(self) -> Optional[dict]:
        if not self.config_path.is_file():
            return None
        try:
            return json.loads(self.config_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise TrainError(f"{self.config_path} is unreadable ({e}); choose another --output") from None

    def has_checkpoint(self) -> bool:
        return self.state_path.is_file()

    def finished(self) -> bool:
        return self.metrics_path.is_file()

    def check_fresh_start(self, config: RunConfig) -> None:
        """A new run may use an empty or new folder, or one whose run died before its first checkpoint."""
        saved = self.saved_config()
        if saved is None:
            return
        theirs, ours = RunConfig.from_dict(saved).identity(), config.identity()
        if theirs != ours:
            key = next(k for k in ours if theirs.get(k) != ours[k])
            raise TrainError(f"{self.path} holds a different run ({key}: {theirs.get(key)!r} there, {ours[key]!r} "
                             f"now); choose another --output")
        if self.finished():
            raise TrainError(f"{self.path} already holds this run, finished; choose another --output")
        if self.has_checkpoint():
            raise TrainError(f"{self.path} holds an interrupted run of this configuration; add --resume to "
                             f"continue it, or choose another --output")

    def check_resumable(self) -> dict:
        """The saved config of an interrupted run with a checkpoint, or a one-line error saying why not."""
        saved = self.saved_config()
        if saved is None:
            raise TrainError(f"--resume: {self.path} holds no run (no config.json)")
        if self.finished():
            raise TrainError(f"--resume: the run in {self.path} has already finished")
        if not self.has_checkpoint():
            raise TrainError(f"--resume: no checkpoint in {self.path} (the run stopped before its first epoch "
                             f"ended); start it again without --resume")
        return saved

    # -- checkpoints --------------------------------------------------------------------------------------------

    def save_checkpoint(self, model, state: RunState) -> None:
        """Weights (with the optimizer's state) to a new file, then state.json naming it (the atomic commit),
        then the older weight files go; history.csv follows the committed state."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{state.epoch:04d}.weights.h5"
        partial = self.checkpoint_dir / f"partial-{os.getpid()}.weights.h5"  # Keras insists on .weights.h5
        model.save_weights(partial)
        os.replace(partial, self.checkpoint_dir / name)
        write_json_atomic(self.state_path, {"weights": name, **state.to_dict()})
        for old in self.checkpoint_dir.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)
        self.write_history(state.history)

    def load_checkpoint(self) -> tuple[RunState, Path]:
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise TrainError(f"--resume: {self.state_path} is unreadable ({e})") from None
        weights = self.checkpoint_dir / data.pop("weights")
        if not weights.is_file():
            raise TrainError(f"--resume: {weights} named by {self.state_path} is missing")
        return RunState.from_dict(data), weights

    def remove_checkpoint_weights(self) -> None:
        for path in self.checkpoint_dir.glob("*.weights.h5"):
            path.unlink(missing_ok=True)

    def write_history(self, history: list[dict]) -> None:
        columns: list[str] = []
        for row in history:
            columns += [k for k in row if k not in columns]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        tmp = self.history_path.with_name(f".history.csv.{os.getpid()}.tmp")
        tmp.write_text(text.getvalue())
        os.replace(tmp, self.history_path)
