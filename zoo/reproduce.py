"""`zoo reproduce STUDY`: train every variant of a study (registry.yaml `studies:`) with its registry recipe, so a
results table can be built in pieces.

Each run has a fixed folder, `<runs>/<study>-<budget>/<model>`, so the plan is resumable and idempotent:
- a run whose record (same model, dataset, recipe, epochs) is already in the results store is skipped;
- a finished run folder whose record is missing from the store gets its record (metrics.json) added;
- an interrupted run (a checkpoint, no metrics.json) resumes from its last checkpoint;
- anything else starts fresh.
The results store then feeds `zoo table results --dataset D`.

Progress: each run is "run k of N", with the study's ETA from the registry's timing estimates (the study's
`seconds`, measured on `timed_on`, times the budget's epochs_scale; what an interrupted run has checkpointed is
taken off), rescaled by how this machine compares with them once a run has finished here. Planning reads the
registry, the results store and the run folders' JSON only: `--dry-run` imports no TensorFlow.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from . import results as results_store
from .errors import ZooError
from .formatting import duration
from .registry import registry

__all__ = ["PlannedRun", "plan", "reproduce", "remaining_seconds", "ReproduceError"]


class ReproduceError(ZooError, ValueError):
    pass


@dataclass
class PlannedRun:
    model: str
    family: str
    dataset: str
    recipe: str
    epochs: float
    output: Path
    status: str  # "done" (record in the store), "record" (finished folder, record missing), "resume", "new"
    estimate_s: Optional[float] = None  # the whole run's wall time from the registry's estimate; None: unknown
    done_epochs: float = 0.0  # what an interrupted run has checkpointed

    @property
    def remaining_s(self) -> Optional[float]:
        """Wall seconds still to train, from the estimate (0 for a run with nothing to train)."""
        if self.status in ("done", "record"):
            return 0.0
        if self.estimate_s is None:
            return None
        return self.estimate_s * max(0.0, 1.0 - self.done_epochs / self.epochs)


def study(name: str):
    reg = registry()
    try:
        return reg.studies[name]
    except KeyError:
        known = ", ".join(sorted(reg.studies)) or "none"
        raise ReproduceError(f"unknown study {name!r} (known: {known})") from None


def _selected(models: list[str], only: Optional[Iterable[str]]) -> list[str]:
    """Models of the plan picked by family or model name (`--families resnet,zfnet`)."""
    if not only:
        return models
    reg = registry()
    wanted = set(only)
    known = {reg.get(m).family for m in models} | set(models)
    unknown = sorted(wanted - known)
    if unknown:
        raise ReproduceError(f"--families: {', '.join(unknown)} not in this study (choose from "
                             f"{', '.join(sorted(known))})")
    return [m for m in models if m in wanted or reg.get(m).family in wanted]


def _recorded(store, model: str, dataset: str, recipe: str, epochs: float) -> bool:
    return any(r.get("status") == "finished" and r.get("recipe") == recipe and
               abs(float(r.get("epochs") or 0) - epochs) < 1e-6
               for r in results_store.load(dataset=dataset, model=model, store=store))


def plan(name: str, budget: str = "cpu", families: Optional[Iterable[str]] = None, runs_root="runs",
         results=None) -> list[PlannedRun]:
    """What `reproduce` would do, run by run, without doing it."""
    from .training.rundir import checkpoint_state  # light: JSON only

    reg, chosen = registry(), study(name)
    if budget not in chosen.budgets:
        raise ReproduceError(f"unknown budget {budget!r} for study {name!r} (choose from "
                             f"{', '.join(chosen.budgets)})")
    scale = chosen.budgets[budget].epochs_scale
    planned = []
    for model in _selected(chosen.models, families):
        spec = reg.get(model)
        recipe = spec.recipe_for(chosen.dataset)
        base = reg.recipe(recipe).epochs
        if base is None:
            raise ReproduceError(f"recipe {recipe!r} of {model} counts steps, not epochs: give it `epochs`")
        epochs = round(base * scale, 6)
        output = Path(runs_root) / f"{name}-{budget}" / model
        state = checkpoint_state(output)
        if _recorded(results, model, chosen.dataset, recipe, epochs):
            status = "done"
        elif (output / "metrics.json").is_file():
            status = "record"
        elif state is not None:
            status = "resume"
        else:
            status = "new"
        estimate = chosen.seconds[model] * scale if model in chosen.seconds else None
        done = float(state.get("epoch") or 0) if status == "resume" and isinstance(state, dict) else 0.0
        planned.append(PlannedRun(model, spec.family, chosen.dataset, recipe, epochs, output, status, estimate,
                                  done))
    return planned


def remaining_seconds(planned: list[PlannedRun], speed: float = 1.0) -> tuple[float, list[str]]:
    """The estimated wall seconds left over the plan (times `speed`, this machine against the estimates' one),
    and the models whose time is unknown (no estimate in the registry)."""
    unknown = [run.model for run in planned if run.remaining_s is None]
    return speed * sum(run.remaining_s or 0.0 for run in planned), unknown


def _eta(planned: list[PlannedRun], speed: float) -> str:
    seconds, unknown = remaining_seconds(planned, speed)
    ends = (datetime.datetime.now() + datetime.timedelta(seconds=seconds)).strftime("%a %H:%M")
    text = f"study ETA {duration(seconds)} (about {ends})" if seconds else "study ETA: nothing left to train"
    return text + (f", plus {', '.join(unknown)} (no estimate)" if unknown else "")


def _line(k: int, n: int, run: PlannedRun) -> str:
    left = run.remaining_s
    estimate = f", about {duration(left)}" if left else ", time unknown" if left is None else ""
    resumed = f" from epoch {run.done_epochs:g}" if run.status == "resume" else ""
    return (f"[{k}/{n}] {run.model} {run.status}{resumed}: recipe {run.recipe}, {run.epochs:g} epochs{estimate}, "
            f"{run.output}")


def reproduce(name: str, budget: str = "cpu", families: Optional[Iterable[str]] = None, runs_root="runs",
              results=None, data_dir=None, echo: Callable[[str], None] = print, dry_run: bool = False,
              **train_options) -> list[PlannedRun]:
    """Carry out the plan; returns it with each run's final status. `dry_run`: print the plan and the
    estimates only."""
    planned = plan(name, budget, families, runs_root, results)
    chosen, n = study(name), len(planned)
    todo = [run for run in planned if run.status in ("new", "resume")]
    echo(f"{name} ({budget}): {n} runs, {len(todo)} to train, {n - len(todo)} done or only to record; "
         f"{_eta(planned, 1.0)}")
    if chosen.timed_on:
        echo(f"  estimates: the registry's, measured on {chosen.timed_on}")
    for k, run in enumerate(planned, 1):
        echo(_line(k, n, run))
    if dry_run:
        return planned
    speed, measured, estimated = 1.0, 0.0, 0.0
    for k, run in enumerate(planned, 1):
        if run.status == "done":
            continue
        if run.status == "record":
            record = json.loads((run.output / "metrics.json").read_text())
            results_store.save(record, results)
            echo(f"run {k} of {n}: {run.model}: its finished folder's record added to the results store")
        else:
            from .training import train

            echo(f"run {k} of {n}: {run.model} ({run.status}); {_eta(planned[k - 1:], speed)}")
            started = time.perf_counter()
            train(run.model, dataset=run.dataset, recipe=run.recipe, epochs=run.epochs, output=run.output,
                  resume=run.status == "resume", results=results, data_dir=data_dir, **train_options)
            if run.remaining_s:  # how this machine compares with the estimates', for the runs after this one
                measured += time.perf_counter() - started
                estimated += run.remaining_s
                speed = measured / estimated
        run.status = "done"
    echo(f"{name} ({budget}): all {n} runs done" + (f" (this machine took {speed:.2f}x the estimates)"
                                                     if estimated else ""))
    return planned
