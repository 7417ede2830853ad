"""`zoo bench`: throughput of variants (and their keras.applications twins) on synthetic data; see zoo/bench.py."""

from __future__ import annotations

import shlex
import sys

import click

from ..choices import BENCH_MODES, PRECISIONS
from ..errors import ZooError
from ..results import write_text_atomic

BOTH_MODES = "both"  # every one of BENCH_MODES, in order


def resolve_names(patterns) -> list[str]:
    """Names and fnmatch patterns ('resnet*') -> registry names, in the order given, without repeats."""
    from ..registry import registry

    reg, names = registry(), []
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            matched = reg.list(pattern)
            if not matched:
                raise ZooError(f"no model matches {pattern!r}; `zoo list` shows them all")
        else:
            matched = [reg.get(pattern).name]
        names += [n for n in matched if n not in names]
    return names


def canonical_command(names, mode, batch_size, image_size, precision, xla, warmup, iters, compare_keras,
                      markdown) -> str:
    """The command line that reproduces a run, spelled out in full (written into docs/benchmarks.md)."""
    words = ["zoo", "bench", *names, "--mode", mode, "--batch-size", str(batch_size)]
    if image_size:
        words += ["--image-size", str(image_size)]
    words += ["--precision", precision]
    if xla is not None:
        words.append("--xla" if xla else "--no-xla")
    words += ["--warmup", str(warmup), "--iters", str(iters)]
    if compare_keras:
        words.append("--compare-keras")
    if markdown:
        words += ["--markdown", markdown]
    return shlex.join(words)


def show(records) -> None:
    """The settings line, then the records through the same columns as the --markdown report's table."""
    from rich.console import Console

    from .. import bench as bench_module
    from ..formatting import fixed
    from ..tables import rich_table

    console = Console(width=None if sys.stdout.isatty() else 200, soft_wrap=False)
    first = records[0]
    console.print(f"{first.device}; {bench_module.software_line(first)}; precision "
                  f"{first.precision}, XLA {'on' if first.jit else 'off'}; matmul peak "
                  f"{fixed(first.peak_gflops_per_s)} GFLOP/s ({first.peak_dtype})", markup=False)
    console.print(rich_table(bench_module.record_rows(records), bench_module.RECORD_COLUMNS))


@click.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME|PATTERN...")
@click.option("--mode", type=click.Choice([*BENCH_MODES, BOTH_MODES]), default="infer", show_default=True,
              help="Inference, a training step, or both.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Batch size (halved automatically on out-of-memory).")
@click.option("--image-size", type=click.IntRange(min=1), help="Input height = width (default: the registry's).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="float32", show_default=True,
              help="Keras dtype policy.")
@click.option("--xla/--no-xla", default=None, help="jit_compile the step (default: on with a GPU, off on CPU).")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed steps first.")
@click.option("--iters", type=click.IntRange(min=1), default=10, show_default=True, help="Timed steps.")
@click.option("--compare-keras", is_flag=True,
              help="Also time the keras.applications twin (the registry's `keras_twin`: `zoo info NAME`), "
                   "interleaved with ours, and print our/their images/s ratio.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the records as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write the records as CSV.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False),
              help="Write a Markdown report (command, machine, versions, date, table), e.g. docs/benchmarks.md.")
def bench(names, mode, batch_size, image_size, precision, xla, warmup, iters, compare_keras, json_path, csv_path,
          markdown_path):
    """Benchmark throughput (images/s), GFLOP/s, MFU and peak memory of NAME(s) on synthetic data.

    PATTERN: fnmatch wildcards, e.g. 'resnet*'. Example: zoo bench resnet50 --mode both --batch-size 16
    --compare-keras
    """
    from .. import bench as bench_module

    models = resolve_names(names)
    modes = list(BENCH_MODES) if mode == BOTH_MODES else [mode]

    def progress(message: str) -> None:
        click.echo(f"zoo bench: {message}", err=True)

    records = []
    for name in models:
        twin = compare_keras and name in bench_module.KERAS_TWINS
        if compare_keras and not twin:
            progress(f"{name} has no keras.applications twin: benchmarking it alone")
        for m in modes:
            progress(f"{name} {m} at batch {batch_size}" + (" interleaved with its keras twin" if twin else ""))
            options = dict(mode=m, batch_size=batch_size, image_size=image_size, precision=precision, xla=xla,
                           warmup=warmup, iters=iters, on_retry=progress)
            if twin:
                records += bench_module.compare_keras(name, **options)
            else:
                records.append(bench_module.measure(name, **options))
    bench_module.rescale_to_best_peak(records)
    show(records)
    if json_path:
        bench_module.write_json(records, json_path)
    if csv_path:
        bench_module.write_csv(records, csv_path)
    if markdown_path:
        command = canonical_command(names, mode, batch_size, image_size, precision, xla, warmup, iters,
                                    compare_keras, markdown_path)
        write_text_atomic(markdown_path, bench_module.markdown_report(records, command))
    for path in filter(None, (json_path, csv_path, markdown_path)):
        progress(f"wrote {path}")


COMMANDS = [bench]
