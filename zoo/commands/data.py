"""`zoo datasets` and `zoo data prepare|bench`: the dataset catalogue, offline import, pipeline throughput.

Only click and the light catalogue are imported here; TensorFlow/TFDS are imported inside the commands that need
them, so `zoo datasets` stays quick.
"""

from __future__ import annotations

import json
import sys

import click

from ..data import catalogue as cat


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 150, soft_wrap=False)


def _size(n: int) -> str:
    if not n:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def _shape(entry: cat.DatasetEntry) -> str:
    return "x".join(str(d) for d in entry.image_shape) if entry.fixed_size else f"HxWx{entry.image_shape[2]}"


def _count(n: int) -> str:
    """60000 -> 60k, 1281167 -> 1.28M, 9469 -> 9,469: splits fit on one line."""
    if n >= 1_000_000:
        return f"{n / 1e6:.3g}M"
    return f"{n / 1000:.3g}k" if n >= 10_000 else f"{n:,}"


def _row(entry: cat.DatasetEntry, data_dir) -> dict:
    ready = cat.is_ready(entry.name, data_dir)
    where = cat.sample_dir(entry) if entry.embedded else cat.prepared_dir(entry.name, data_dir)
    return {
        "name": entry.name, "title": entry.title,
        "tfds": entry.tfds.full_name if entry.tfds else None,
        "splits": entry.splits, "eval_split": entry.eval_split, "holdout": entry.holdout,
        "image_shape": list(entry.image_shape), "num_classes": entry.num_classes,
        "mean": entry.mean, "std": entry.std, "license": entry.license,
        "obtain": entry.obtain.method, "raw_format": entry.raw.format if entry.raw else None,
        "ready": ready, "path": str(where), "size_bytes": cat.size_on_disk(entry.name, data_dir),
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="TFDS data dir (default: $ZOO_DATA_DIR, "
              "else TFDS's default, ~/tensorflow_datasets).")
def datasets(as_json, data_dir):
    """The datasets the zoo knows, and whether each is ready in the data dir."""
    rows = [_row(cat.get_dataset(n), data_dir) for n in cat.list_datasets()]
    if as_json:
        click.echo(json.dumps({"data_dir": str(cat.resolve_data_dir(data_dir)), "datasets": rows}, indent=2))
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold", title=f"data dir: {cat.resolve_data_dir(data_dir)}",
                  title_justify="left")
    for column, justify in [("name", "left"), ("tfds", "left"), ("splits", "left"), ("image", "right"),
                            ("classes", "right"), ("ready", "left"), ("size", "right"), ("get it", "left")]:
        table.add_column(column, justify=justify, no_wrap=True)
    for row in rows:
        splits = ", ".join(f"{'val' if k == 'validation' else k} {_count(v)}" for k, v in row["splits"].items())
        ready = "embedded" if row["obtain"] == "embedded" else ("yes" if row["ready"] else "no")
        table.add_row(row["name"], row["tfds"] or "-", splits, _shape(cat.get_dataset(row["name"])),
                      str(row["num_classes"]), ready, _size(row["size_bytes"]), row["obtain"])
    _console().print(table)


@click.group()
def data():
    """Prepare datasets (online or from the official raw files) and measure the input pipeline."""


@data.command()
@click.argument("name", required=False)
@click.option("--from", "from_dir", type=click.Path(exists=True), help="Import the official raw files from here "
              "(IDX for MNIST/Fashion-MNIST, the python pickles for CIFAR, train/ and val/ class folders for "
              "ImageNet-style data) instead of downloading; with --name, any image folder.")
@click.option("--name", "import_as", help="Import the image folder --from (one sub-folder per class, optionally "
              "in train/ val/ test/) as this dataset: TFRecords in the data dir, then --dataset NAME.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="TFDS data dir to write to (default: "
              "$ZOO_DATA_DIR, else ~/tensorflow_datasets).")
@click.option("--force", is_flag=True, help="Rebuild even if the dataset is already prepared.")
def prepare(name, from_dir, import_as, data_dir, force):
    """Make dataset NAME loadable offline with tfds.load(NAME, data_dir=...); or, with --from FOLDER --name NAME,
    import an image folder once."""
    from ..data.prepare import prepare as run_prepare

    if import_as or name is None:
        _import_folder(name, from_dir, import_as, data_dir, force)
        return
    entry = cat.get_dataset(name)
    result = run_prepare(name, from_dir, data_dir, force=force)
    counts = ", ".join(f"{split} {n:,}" for split, n in result.counts.items())
    if result.already:
        click.echo(f"{name} is already prepared in {result.path} ({counts}); --force rebuilds it")
        return
    click.echo(f"{name} {entry.tfds.version} prepared in {result.path} ({counts}) from {result.source} "
               f"in {result.seconds:.1f} s")
    official = {k: v for k, v in entry.splits.items() if k in result.counts}
    if official != result.counts:
        click.echo(f"note: the official release has {', '.join(f'{k} {v:,}' for k, v in entry.splits.items())}")


def _import_folder(name, from_dir, import_as, data_dir, force):
    from ..data.folder import import_folder

    if not import_as or not from_dir or (name and name != import_as):
        raise click.UsageError("give NAME (a catalogue dataset), or --from FOLDER --name NAME (an image folder)")
    result = import_folder(from_dir, import_as, data_dir, force=force)
    counts = ", ".join(f"{split} {n:,}" for split, n in result.counts.items())
    if result.already:
        click.echo(f"{import_as} is already prepared in {result.path} ({counts}); --force imports it again")
        return
    click.echo(f"{import_as} imported from {result.source} into {result.path} ({counts}) in {result.seconds:.1f} s; "
               f"train with --dataset {import_as}")


@data.command()
@click.argument("name", default="fashion_mnist_sample")
@click.option("--split", default="train", show_default=True)
@click.option("--augment", "augments", multiple=True, help="Augmentation(s) to measure (repeatable; default: none "
              "and pad_crop_flip).")
@click.option("--image-size", default=32, show_default=True)
@click.option("--channels", default=1, show_default=True)
@click.option("--batch-size", default=128, show_default=True)
@click.option("--seconds", default=5.0, show_default=True, help="Measuring time per augmentation.")
@click.option("--threads", default=2, show_default=True, help="tf.data private thread pool size (0: default).")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--epochs", type=click.IntRange(min=1), help="Time this many whole passes instead (the first apart "
              "from the later ones), with the peak memory.")
@click.option("--model", help="With --epochs: feed each batch to this registry model too (its input size and "
              "channels), as training would.")
@click.option("--json", "as_json", is_flag=True)
def bench(name, split, augments, image_size, channels, batch_size, seconds, threads, data_dir, epochs, model,
          as_json):
    """Images per second the training input pipeline of NAME (a catalogue dataset, an image folder's path, or a
    folder imported with --name) delivers (no model; with --epochs and --model, into the model)."""
    from ..data.bench import measure

    if model and not epochs:
        raise click.UsageError("--model needs --epochs (whole passes into the model)")
    from ..data.folder import look_in

    look_in(data_dir)  # a folder imported into --data-dir is found by its name
    entry = cat.get_dataset(name)
    if entry.obtain.method == "folder" and entry.obtain.note and entry.folder:
        click.echo(f"note: {entry.obtain.note}", err=True)
    if epochs:
        _bench_epochs(name, split, augments, image_size, channels, batch_size, threads, data_dir, epochs, model,
                      as_json)
        return
    results = [measure(name, split, augment=a, image_size=image_size, channels=channels, batch_size=batch_size,
                       seconds=seconds, threads=threads or None, data_dir=data_dir)
               for a in (augments or ("none", "pad_crop_flip"))]
    if as_json:
        click.echo(json.dumps([{**r.__dict__, "images_per_second": r.images_per_second} for r in results],
                              indent=2))
        return
    for r in results:
        click.echo(f"{r.name} {r.split} {r.image_size}x{r.image_size}x{r.channels} batch {r.batch_size} "
                   f"augment={r.augment}: {r.images_per_second:,.0f} images/s ({r.threads or 'default'} threads)")


def _bench_epochs(name, split, augments, image_size, channels, batch_size, threads, data_dir, epochs, model,
                  as_json):
    from ..data.bench import measure_epochs

    if model:
        from ..registry import get_spec

        spec = get_spec(model)
        image_size, channels = spec.input.size, spec.input.channels
    results = [measure_epochs(name, split, epochs=epochs, model=model, augment=a, image_size=image_size,
                              channels=channels, batch_size=batch_size, threads=threads or None, data_dir=data_dir)
               for a in (augments or ("none",))]
    if as_json:
        click.echo(json.dumps([{**r.__dict__, "images_per_second": [r.images_per_second(i) for i in range(epochs)]}
                               for r in results], indent=2))
        return
    for r in results:
        into = f" into {r.model}" if r.model else ""
        rates = ", ".join(f"{r.images_per_second(i):,.0f}" for i in range(epochs))
        click.echo(f"{r.name} {r.split} {r.image_size}x{r.image_size}x{r.channels} batch {r.batch_size} "
                   f"augment={r.augment}{into}: images/s by epoch {rates} ({r.epochs[0][0]:,} images each); "
                   f"peak RSS {r.peak_rss_mb:,.0f} MB")


COMMANDS = [datasets, data]
