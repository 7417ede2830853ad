"""A run's output folder: what is in it, who holds it, and whether a new run, or a resumption, may use it.

    .lock              an OS lock (fcntl.flock) held by the one process training in the folder, for its whole life;
                       it names that process ("pid N since T"); the kernel drops it when the process dies
    config.json        the resolved configuration (written when the run starts)
    history.csv        one row per finished epoch (rewritten whole, atomically, with each checkpoint)
    tensorboard/       TensorBoard logs: train/ and validation/ scalars side by side, the run's hyperparameters
                       (HParams) and its test scores, so runs under one --logdir compare
    checkpoints/       while it trains, the last two checkpoints: epoch-NNNN.weights.h5 (model + optimizer
                       state) beside epoch-NNNN.json (epoch, step, history, clocks, the best checkpoint's file),
                       best-epoch-NNNN.weights.h5 (the weights of the best validation accuracy so far, no
                       optimizer), and state.json, the commit point: a copy of the newest epoch's, written only
                       once the files it names are complete. Gone once the run is finished (state.json first,
                       so it never names a missing file). Runs of the older layout kept them in checkpoint/, the
                       name of TensorFlow's checkpoint-state file (TensorBoard failed on it); the next process
                       that takes the folder renames it.
    diverged.json      where the loss became NaN/inf and the last good checkpoint (until a resumed run, which may
                       change --lr, commits a checkpoint of its own)
    model.weights.h5   the last epoch's weights (written at the end)
    best.weights.h5    the best validation epoch's weights, which the test split evaluated (written at the end,
                       when the run validated): what `zoo eval --weights RUN_DIR` loads
    metrics.json       the final record, written after the results store's copy: its presence means finished

Every file is written through zoo.io: a temporary file beside it, fsync, rename; what a killed writer leaves
(`.partial-*`) is removed when the next process takes the lock.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import secrets
from pathlib import Path
from typing import Optional

from ..io import FolderLock, PARTIAL_PREFIX, atomic_path, remove_partials, write_json_atomic, write_text_atomic
from .state import RunState
from .config import RunConfig, TrainError

__all__ = ["RunDir", "Checkpoint", "default_run_path", "latest_run_path", "new_run_id", "KEEP_CHECKPOINTS",
           "CHECKPOINTS", "LEGACY_CHECKPOINTS", "checkpoint_folder", "checkpoint_state"]

KEEP_CHECKPOINTS = 2  # the newest may be cut short by a crash of the disk or the machine; the one before survives


def new_run_id(model: str, dataset: str) -> str:
    """<model>-<dataset>-<time>-<8 hex>: the random part keeps two runs started in the same second apart."""
    now = datetime.datetime.now()
    return f"{model}-{dataset}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


def default_run_path(run_id: str, root: str | os.PathLike = "runs") -> Path:
    """runs/<run_id>, created here with an exclusive mkdir, so two runs can never be handed the same folder."""
    path = Path(root) / run_id
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir()  # FileExistsError only if the random part collided too: the caller draws another id
    return path


CHECKPOINTS, LEGACY_CHECKPOINTS = "checkpoints", "checkpoint"  # the folder's name; the older layout's


def checkpoint_folder(run_path: str | os.PathLike) -> Path:
    """The folder of a run's checkpoints: checkpoints/, or checkpoint/ in a run of the older layout not yet
    renamed."""
    path = Path(run_path)
    new, legacy = path / CHECKPOINTS, path / LEGACY_CHECKPOINTS
    return legacy if legacy.is_dir() and not new.is_dir() else new


def checkpoint_state(run_path: str | os.PathLike) -> Optional[dict]:
    """The committed state.json of a run folder's newest checkpoint, or None (no checkpoint, unreadable)."""
    try:
        return json.loads((checkpoint_folder(run_path) / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def latest_run_path(model: str, dataset: str, root: str | os.PathLike = "runs") -> Optional[Path]:
    """The newest runs/<model>-<dataset>-* folder with a checkpoint (for --resume without --output)."""
    candidates = sorted(path for folder in (CHECKPOINTS, LEGACY_CHECKPOINTS)
                        for path in Path(root).glob(f"{model}-{dataset}-*/{folder}/state.json"))
    return candidates[-1].parent.parent if candidates else None


class Checkpoint:
    """One saved epoch: its state, its weights file (model + optimizer) and the best-validation weights file it
    names (None: the run does not validate, or no epoch has yet)."""

    def __init__(self, state: RunState, weights: Path, best: Optional[Path] = None):
        self.state, self.weights, self.best = state, weights, best

    def __repr__(self) -> str:
        return f"Checkpoint(epoch {self.state.epoch}, {self.weights.name})"


def _best_name(epoch: int) -> str:
    return f"best-epoch-{epoch:04d}.weights.h5"


def _epoch_of(state_file: Path) -> int:
    """N of checkpoint/epoch-NNNN.json."""
    return int(state_file.stem.split("-")[1])


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.history_path = self.path / "history.csv"
        self.tensorboard = self.path / "tensorboard"
        self.weights_path = self.path / "model.weights.h5"
        self.best_weights_path = self.path / "best.weights.h5"
        self.metrics_path = self.path / "metrics.json"
        self.diverged_path = self.path / "diverged.json"
        self._lock = FolderLock(self.path)
        self.created = False  # whether this process made the folder (it goes again if the run never started)
        self.renamed_legacy = False  # whether lock() moved an older run's checkpoint/ to checkpoints/

    @property
    def checkpoint_dir(self) -> Path:
        return checkpoint_folder(self.path)

    @property
    def state_path(self) -> Path:
        return self.checkpoint_dir / "state.json"

    # -- who holds it -------------------------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the folder for this process (LockedError naming the holder if another live one has it), then
        clear what killed writers left."""
        self.created = self.created or not self.path.exists()
        self._lock.acquire()
        legacy = self.path / LEGACY_CHECKPOINTS
        if legacy.is_dir() and not (self.path / CHECKPOINTS).exists():  # the older layout: one atomic rename
            os.rename(legacy, self.path / CHECKPOINTS)
            self.renamed_legacy = True
        remove_partials(self.path)
        remove_partials(self.checkpoint_dir)
        if self.finished():  # killed between metrics.json and the checkpoints' removal: of no use now
            self.remove_checkpoints()

    def unlock(self) -> None:
        """Release the folder; one this process made and never wrote a config to goes again."""
        self._lock.release()
        if self.created and not self.config_path.exists():
            self._lock.path.unlink(missing_ok=True)
            try:
                self.path.rmdir()
            except OSError:
                pass

    # -- what is there ------------------------------------------------------------------------------------------

    def saved_config(self) -> Optional[dict]:
        if not self.config_path.is_file():
            return None
        try:
            return json.loads(self.config_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise TrainError(f"{self.config_path} is unreadable ({e}); choose another --output") from None

    def has_checkpoint(self) -> bool:
        return self.state_path.is_file() or bool(self._epoch_states())

    def finished(self) -> bool:
        return self.metrics_path.is_file()

    def foreign_files(self) -> list[str]:
        """What a folder without a run holds (the lock and temporary files aside)."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir()
                      if p.name != FolderLock.NAME and not p.name.startswith(PARTIAL_PREFIX))

    def check_fresh_start(self, config: RunConfig, force: bool = False) -> None:
        """A new run may use an empty or new folder, or one whose run died before its first checkpoint; a folder
        with other files only with `force`."""
        saved = self.saved_config()
        if saved is None:
            foreign = self.foreign_files()
            if foreign and not force:
                shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
                raise TrainError(f"{self.path} is not empty and holds no run ({shown}); choose another --output, "
                                 f"or add --force to write the run into it")
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
        """The saved config of an interrupted run with a checkpoint, or a one-line error saying why not (a
        finished run is the caller's to handle: its record may still be missing from the store)."""
        saved = self.saved_config()
        if saved is None:
            raise TrainError(f"--resume: {self.path} holds no run (no config.json)")
        if not self.finished() and not self.has_checkpoint():
            raise TrainError(f"--resume: no checkpoint in {self.path} (the run stopped before its first epoch "
                             f"ended); start it again without --resume")
        return saved

    def finished_record(self) -> dict:
        try:
            return json.loads(self.metrics_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise TrainError(f"--resume: {self.metrics_path} is unreadable ({e})") from None

    # -- divergence -----------------------------------------------------------------------------------------------

    def mark_diverged(self, where: dict) -> None:
        """`where`: epoch, step, loss, lr, and resume_from, the epoch of the last good checkpoint (0: none)."""
        write_json_atomic(self.diverged_path, where)

    def divergence(self) -> Optional[dict]:
        try:
            return json.loads(self.diverged_path.read_text()) if self.diverged_path.is_file() else None
        except (OSError, json.JSONDecodeError):
            return {}

    def clear_divergence(self) -> None:
        self.diverged_path.unlink(missing_ok=True)

    # -- checkpoints --------------------------------------------------------------------------------------------

    def _epoch_states(self) -> list[Path]:
        """epoch-NNNN.json files, newest first."""
        if not self.checkpoint_dir.is_dir():
            return []
        return sorted(self.checkpoint_dir.glob("epoch-[0-9]*.json"), reverse=True)

    def newest_checkpoint_bytes(self) -> Optional[int]:
        files = sorted(self.checkpoint_dir.glob("epoch-[0-9]*.weights.h5")) if self.checkpoint_dir.is_dir() else []
        return files[-1].stat().st_size if files else None

    def save_checkpoint(self, model, state: RunState, needed: Optional[int] = None, best=None) -> None:
        """Weights (with the optimizer's state) to a new file, its state beside it, then state.json naming it (the
        commit), then all but the newest KEEP_CHECKPOINTS go; history.csv follows the committed state. `needed`:
        the bytes the weights will take, checked against the free space before HDF5 starts writing. `best`: when
        this epoch is the best so far, a model sharing the run's layers without its optimizer, saved first as
        best-epoch-NNNN.weights.h5; every checkpoint's state names the best file of its time."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        if best is not None:
            with atomic_path(self.checkpoint_dir / _best_name(state.epoch), needed=needed) as tmp:
                best.save_weights(tmp)
        stem = f"epoch-{state.epoch:04d}"
        weights = self.checkpoint_dir / f"{stem}.weights.h5"
        with atomic_path(weights, needed=needed) as tmp:
            model.save_weights(tmp)
        entry = {"weights": weights.name, "best_weights": _best_name(state.best_epoch) if state.best_epoch else None,
                 **state.to_dict()}
        write_json_atomic(self.checkpoint_dir / f"{stem}.json", entry)
        write_json_atomic(self.state_path, entry)
        # A checkpoint committed after a divergence supersedes it: the resumed run (its new --lr in config.json)
        # is past the last good point, and the diverged trajectory's later checkpoints go in the prune.
        self.clear_divergence()
        self._prune(keep=KEEP_CHECKPOINTS, newest=state.epoch)
        self._prune_best()
        self.write_history(state.history)

    def _prune_best(self) -> None:
        """Best-weights files no kept checkpoint names go (a resumption may fall back to the previous checkpoint,
        so its best file stays while it does)."""
        named = set()
        for path in [self.state_path] + self._epoch_states():
            try:
                named.add(json.loads(path.read_text()).get("best_weights"))
            except (OSError, json.JSONDecodeError):
                continue
        for best in self.checkpoint_dir.glob("best-epoch-*.weights.h5"):
            if best.name not in named:
                best.unlink(missing_ok=True)

    def _prune(self, keep: int, newest: int) -> None:
        for later in self._epoch_states():  # from an abandoned trajectory (a diverged run resumed further back)
            if _epoch_of(later) > newest:
                (self.checkpoint_dir / f"{later.stem}.weights.h5").unlink(missing_ok=True)
                later.unlink(missing_ok=True)
        for old in self._epoch_states()[keep:]:
            (self.checkpoint_dir / f"{old.stem}.weights.h5").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
        for stray in self.checkpoint_dir.glob("epoch-*.weights.h5"):  # a weights file whose state never landed
            if not (self.checkpoint_dir / stray.name.replace(".weights.h5", ".json")).is_file():
                stray.unlink(missing_ok=True)

    def checkpoints(self) -> list[Checkpoint]:
        """The saved checkpoints, newest first: state.json's (the commit point), then the epoch files (the
        previous one, and the newest again when state.json itself is unreadable)."""
        found, seen = [], set()
        for path in [self.state_path] + self._epoch_states():
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            name, best = data.pop("weights", None), data.pop("best_weights", None)
            if not name or name in seen:
                continue
            seen.add(name)
            found.append(Checkpoint(RunState.from_dict(data), self.checkpoint_dir / name,
                                    self.checkpoint_dir / best if best else None))
        found.sort(key=lambda c: c.state.epoch, reverse=True)
        if not found:
            raise TrainError(f"--resume: no readable checkpoint in {self.checkpoint_dir}; start the run again "
                             f"without --resume")
        return found

    def sound_checkpoints(self) -> list[Checkpoint]:
        """The checkpoints a resumption may start from, newest first: after a divergence none later than the last
        good one it named (a later one holds weights the diverging step already wrecked); [] when that is the
        initial weights, which the run's seed rebuilds."""
        found = self.checkpoints()
        limit = (self.divergence() or {}).get("resume_from")
        return found if limit is None else [c for c in found if c.state.epoch <= limit]

    def best_checkpoint(self, epoch: int) -> Path:
        """The best-validation weights file a checkpoint names for `epoch` (no optimizer state)."""
        return self.checkpoint_dir / _best_name(epoch)

    def remove_checkpoints(self) -> None:
        """A finished run's checkpoints go: state.json first, then the epoch states, then the files they name, then
        the folder; at no moment does a state name a missing file."""
        folder = self.checkpoint_dir
        if not folder.is_dir():
            return
        self.state_path.unlink(missing_ok=True)
        for state_file in self._epoch_states():
            state_file.unlink(missing_ok=True)
        for path in folder.glob("*.weights.h5"):
            path.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:  # something else in it (a user's file): left as it is
            pass

    def write_history(self, history: list[dict]) -> None:
        columns: list[str] = []
        for row in history:
            columns += [k for k in row if k not in columns]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        write_text_atomic(self.history_path, text.getvalue())

    def write_weights(self, model, needed: Optional[int] = None, path: Optional[Path] = None) -> None:
        """The final weights, atomically: an existing model.weights.h5 (or `path`: best.weights.h5) is replaced
        only by a complete one."""
        with atomic_path(path or self.weights_path, needed=needed) as tmp:
            model.save_weights(tmp)

    def eval_weights(self) -> tuple[Path, str]:
        """The weights file `zoo eval --weights RUN_DIR` loads and why: the best validation epoch's, else (a run
        that did not validate) the last; a folder without a finished run is a one-line error."""
        record = {}
        if self.metrics_path.is_file():
            try:
                record = json.loads(self.metrics_path.read_text())
            except (OSError, json.JSONDecodeError):
                record = {}
        if self.best_weights_path.is_file():
            epoch, accuracy = record.get("best_epoch"), record.get("best_val_accuracy")
            detail = (f": epoch {epoch} of {record.get('epochs', 0):g}" if epoch else "") + (
                f", validation accuracy {100 * accuracy:.2f}%" if accuracy is not None else "")
            return self.best_weights_path, f"the best-validation checkpoint{detail}"
        if self.weights_path.is_file():
            return self.weights_path, "the last epoch's weights (the run did not validate)"
        state = " (an interrupted run: continue it with zoo train --resume)" if self.has_checkpoint() else ""
        raise TrainError(f"{self.path} holds no finished run's weights (no best.weights.h5 or model.weights.h5)"
                         f"{state}")

