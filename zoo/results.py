"""The results store: one JSON file per finished training run, in one folder.

Where: `store` if given (the CLI's --results), else $ZOO_RESULTS_DIR, else ~/.zoo/results. Each run writes its own
file `<run_id>.json` through a temporary file and an atomic rename, so concurrent runs never see or leave a half
written record and never contend for a shared file. `load()` reads them all back (the tables and plots read these).

Light on purpose: no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .errors import ZooError
from .io import write_json_atomic, write_text_atomic  # noqa: F401 - re-exported: their historic home

__all__ = ["RunRecord", "FIELDS", "store_dir", "save", "load", "remove", "is_complete", "UnknownRunError",
           "write_json_atomic", "write_text_atomic"]


@dataclass(frozen=True)
class RunRecord:
    """One finished run, as the store (and the run folder's metrics.json) keeps it: these fields, in this order.
    Readers (zoo/tables.py, zoo/plot.py, docs/runs/*.json) rely on the names."""

    run_id: str
    model: str
    dataset: str
    recipe: str
    epochs: float
    steps: int
    batch_size: int
    lr: float
    precision: str
    xla: Optional[bool]
    strategy: str
    replicas: int
    device: str
    seed: int
    test_accuracy: float
    test_top5: Optional[float]
    test_loss: float
    best_val_accuracy: Optional[float]
    wall_time_s: float
    train_images_per_s: Optional[float]
    params: int
    macs: int
    image_size: int
    started: str
    finished: str
    zoo_version: str
    tf_version: str
    keras_version: str
    hostname: str
    output_dir: str
    init: Optional[str] = None  # the weight initialisation (zoo.archs.INIT_NAMES); None: an older record (keras)
    protocol: Optional[str] = "center"  # test_accuracy's test protocol (zoo.choices.EVAL_PROTOCOLS): a run tests one
    #   centre crop; `zoo eval --protocol P --record` adds the run's record under P. None: an older record (centre)
    status: str = "finished"
    eval_split: Optional[str] = None
    train_split: Optional[str] = None
    notes: Optional[list] = None  # the config's notes: a fallback image size, a clamp, an --lr set on --resume
    complete: Optional[bool] = None  # False: shorter than its recipe (--epochs, --max-steps); None: an older record
    best_epoch: Optional[int] = None  # the epoch whose weights the test numbers are of (best validation); None: last
    warnings: Optional[list] = None  # what the summary warned of (BatchNorm statistics not settled, ...)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The record's field names, in order (what `save` writes first).
FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))


def store_dir(store: str | os.PathLike | None = None) -> Path:
    """The results folder: `store`, else $ZOO_RESULTS_DIR, else ~/.zoo/results."""
    chosen = store or os.environ.get("ZOO_RESULTS_DIR") or Path.home() / ".zoo" / "results"
    return Path(chosen).expanduser()


def save(record: dict | RunRecord, store: str | os.PathLike | None = None) -> Path:
    """Add one run's record to the store; returns the file written. The record needs at least `run_id`."""
    if isinstance(record, RunRecord):
        record = record.to_dict()
    missing = [f for f in ("run_id", "model", "dataset") if not record.get(f)]
    if missing:
        raise ValueError(f"a results record needs {', '.join(missing)}")
    run_id = str(record["run_id"])
    if "/" in run_id or run_id.startswith("."):
        raise ValueError(f"run_id must be a plain file name, got {run_id!r}")
    ordered = {f: record.get(f) for f in FIELDS}
    ordered.update({k: v for k, v in record.items() if k not in ordered})  # extra fields are kept, after
    return write_json_atomic(store_dir(store) / f"{run_id}.json", ordered)


def load(dataset: Optional[str] = None, model: Optional[str] = None,
         store: str | os.PathLike | None = None) -> list[dict]:
    """All records in the store (optionally of one dataset and/or model), oldest finished first. Files that are
    not valid records (a stray file, a record from a newer format) are skipped with a warning."""
    folder = store_dir(store)
    if not folder.is_dir():
        return []
    records = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue  # a temporary file of a write in progress
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            continue  # removed (`zoo runs rm`) between the listing and the read
        except (OSError, json.JSONDecodeError) as e:
            warnings.warn(f"skipping unreadable results file {path}: {e}", stacklevel=2)
            continue
        if not isinstance(record, dict) or not record.get("model") or not record.get("dataset"):
            warnings.warn(f"skipping {path}: not a run record", stacklevel=2)
            continue
        if (dataset is None or record["dataset"] == dataset) and (model is None or record["model"] == model):
            records.append(record)
    return sorted(records, key=lambda r: (str(r.get("finished") or ""), str(r.get("run_id"))))


class UnknownRunError(ZooError, KeyError):
    """No record with that run id in the store; the message names the closest ids."""


def remove(run_id: str, store: str | os.PathLike | None = None) -> Path:
    """Remove one record from the store (one unlink: readers see the record or nothing); returns the file removed.
    An unknown id is an UnknownRunError naming the closest ids. The run's folder is not touched."""
    folder = store_dir(store)
    path = folder / f"{run_id}.json"
    if "/" in run_id or run_id.startswith(".") or not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []
        close = [k for k in known if run_id and k.startswith(run_id)][:3] or difflib.get_close_matches(run_id, known, 3)
        hint = f"; did you mean {', '.join(close)}?" if close else (f"; `zoo runs --results {folder}` lists them"
                                                                     if known else " (the store is empty)")
        raise UnknownRunError(f"no run {run_id!r} in the results store {folder}{hint}")
    path.unlink()
    return path


def is_complete(record: dict) -> bool:
    """Whether a record's run did all its recipe asked: its `complete` flag; an older record without one counts
    as complete when it ran the registry recipe's epochs (or max_steps), or when the recipe is not known here."""
    flag = record.get("complete")
    if isinstance(flag, bool):
        return flag
    from .registry import registry  # light (no TensorFlow); only older records need it

    try:
        recipe = registry().recipe(record.get("recipe") or "")
    except (ZooError, KeyError):
        return True
    if recipe.max_steps is not None:
        return int(record.get("steps") or 0) >= recipe.max_steps
    return float(record.get("epochs") or 0) >= recipe.epochs - 1e-6
