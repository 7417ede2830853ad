"""`zoo reproduce`: train a study's variants (registry.yaml `studies:`), resumable, skipping finished runs."""

import click


@click.command()
@click.argument("study")
@click.option("--families", help="Comma-separated families or models of the study to run (default: all).")
@click.option("--budget", default="cpu", show_default=True, help="Budget from the study (cpu, full).")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Root of the run folders (<runs>/<study>-<budget>/<model>).")
@click.option("--results", type=click.Path(file_okay=False),
              help="Results store (default $ZOO_RESULTS_DIR, else ~/.zoo/results).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Prepared datasets (default $ZOO_DATA_DIR).")
@click.option("--dry-run", is_flag=True, help="Print the plan (done / record / resume / new) with each run's "
              "estimated time and the study's ETA, and stop (no TensorFlow).")
@click.option("-q", "--quiet", is_flag=True, help="Only each run's final summary.")
def reproduce(study, families, budget, runs_root, results, data_dir, dry_run, quiet):
    """Train each variant of STUDY (e.g. fashion_mnist) with its registry recipe.

    Runs live in fixed folders, so an interrupted reproduction resumes where it stopped and finished runs are
    skipped: a long table can be built in pieces. Each run is announced as "run k of N" with the study's ETA
    (the registry's timing estimates, rescaled once a run has finished on this machine). `zoo table results
    --dataset D` renders the outcome.
    """
    from zoo.reproduce import reproduce as run_plan

    chosen = [f.strip() for f in families.split(",") if f.strip()] if families else None
    options = {} if dry_run else {"verbose": not quiet}
    run_plan(study, budget=budget, families=chosen, runs_root=runs_root, results=results, data_dir=data_dir,
             echo=click.echo, dry_run=dry_run, **options)


COMMANDS = [reproduce]
