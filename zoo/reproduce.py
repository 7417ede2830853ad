"""`zoo reproduce STUDY`: train every variant of a study (registry.yaml `studies:`) with its registry recipe, so a
results table can be built in pieces.

Each run has a fixed folder, `<runs>/<study>-<budget>/<model>`, so the plan is resumable and idempotent:
- a run whose record (same model, dataset, recipe, epochs) is already in the results store is skipped;
- a finished run folder whose record is missing from the store gets its record (metrics.json) added;
- an interrupted run (a checkpoint, no metrics.json) resumes from its last checkpoint;
- anything else starts fresh.
The results store then feeds `zoo table results --dataset D`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from . import results as results_store
from .errors import ZooError
from .registry import registry

__all__ = ["PlannedRun", "plan", "reproduce", "ReproduceError"]


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
        metrics = output / "metrics.json"
        if _recorded(results, model, chosen.dataset, recipe, epochs):
            status = "done"
        elif metrics.is_file():
            status = "record"
        elif (output / "checkpoint" / "state.json").is_file():
            status = "resume"
        else:
            status = "new"
        planned.append(PlannedRun(model, spec.family, chosen.dataset, recipe, epochs, output, status))
    return planned


def reproduce(name: str, budget: str = "cpu", families: Optional[Iterable[str]] = None, runs_root="runs",
              results=None, data_dir=None, echo: Callable[[str], None] = print, dry_run: bool = False,
              **train_options) -> list[PlannedRun]:
    """Carry out the plan; returns it with each run's final status."""
    planned = plan(name, budget, families, runs_root, results)
    for run in planned:
        echo(f"[{run.model}] {run.status}: recipe {run.recipe}, {run.epochs:g} epochs, {run.output}")
        if dry_run or run.status == "done":
            continue
        if run.status == "record":
            record = json.loads((run.output / "metrics.json").read_text())
            results_store.save(record, results)
        else:
            from .training import train

            train(run.model, dataset=run.dataset, recipe=run.recipe, epochs=run.epochs, output=run.output,
                  resume=run.status == "resume", results=results, data_dir=data_dir, **train_options)
        run.status = "done"
    return planned
