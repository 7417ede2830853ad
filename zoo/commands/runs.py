"""`zoo runs`: the results store, one row per recorded run; `zoo runs rm ID` removes a record.

Reads JSON files only (zoo/results.py): no TensorFlow, no Keras.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import formatting
from ..errors import ZooError

RESULTS_HELP = "Results store directory (default: $ZOO_RESULTS_DIR, else ~/.zoo/results)."


def run_row(record: dict) -> dict:
    """One record as `zoo runs` lists it (the JSON keys; the table shows the same values as text)."""
    from ..results import is_complete

    accuracy = record.get("test_accuracy")
    folder = record.get("output_dir")
    return {"id": record.get("run_id"), "model": record.get("model"), "dataset": record.get("dataset"),
            "recipe": record.get("recipe"), "complete": is_complete(record),
            "accuracy": None if accuracy is None else 100 * float(accuracy),
            "date": record.get("finished") or record.get("started"), "folder": folder,
            "folder_exists": bool(folder) and Path(folder).is_dir()}


def _columns():
    from ..tables import Column

    return [Column("id", "id"), Column("model", "model"), Column("dataset", "dataset"), Column("recipe", "recipe"),
            Column("complete", "complete", lambda done: "yes" if done else "partial"),
            Column("accuracy", "test acc. %", formatting.percent, "right"),
            Column("date", "date", lambda text: str(text)[:16].replace("T", " ")),
            Column("folder", "folder", cell=lambda row: row["folder"] + ("" if row["folder_exists"] else
                                                                          " (gone)"))]


def _store(ctx: click.Context, store):
    """--results given to `zoo runs rm` or, before it, to `zoo runs`."""
    return store or (ctx.obj or {}).get("store")


@click.group(invoke_without_command=True)
@click.option("--dataset", help="Only runs on this dataset.")
@click.option("--model", help="Only runs of this model.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a list of objects).")
@click.option("--results", "store", type=click.Path(file_okay=False), help=RESULTS_HELP)
@click.pass_context
def runs(ctx, dataset, model, as_json, store):
    """The runs in the results store: id, model, dataset, recipe, complete (or partial: shorter than its recipe),
    test accuracy, date and run folder, oldest first. `zoo runs rm ID` removes one."""
    ctx.obj = {"store": store}
    if ctx.invoked_subcommand:
        return
    from .. import results as results_store

    folder = results_store.store_dir(store)
    if not folder.is_dir():
        raise ZooError(f"results store {folder} does not exist (train something with `zoo train`, or pass "
                       f"--results DIR)")
    rows = [run_row(r) for r in results_store.load(dataset=dataset, model=model, store=folder)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        which = " ".join(part for part in (f"of {model}" if model else "", f"on {dataset}" if dataset else "") if part)
        click.echo(f"zoo: no runs {which + ' ' if which else ''}in the results store {folder}", err=True)
        return
    import sys

    from rich.console import Console

    from ..tables import rich_table

    # a pipe or a file gets the whole rows (no squeezing to 80 columns), a terminal its own width
    Console(width=None if sys.stdout.isatty() else 250, soft_wrap=False).print(rich_table(rows, _columns()))


@runs.command("rm")
@click.argument("run_id")
@click.option("--results", "store", type=click.Path(file_okay=False), help=RESULTS_HELP)
@click.pass_context
def remove(ctx, run_id, store):
    """Remove the record RUN_ID from the results store (the run's folder is left as it is)."""
    from .. import results as results_store

    path = results_store.remove(run_id, _store(ctx, store))
    click.echo(f"removed {run_id} from the results store ({path}); its run folder, if any, is untouched")


COMMANDS = [runs]
