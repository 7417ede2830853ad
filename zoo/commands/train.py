"""`zoo train` and `zoo eval`: the training harness (zoo/training/) on the command line."""

from __future__ import annotations

import os

import click

from ..choices import EVAL_PROTOCOLS, MEAN_SUBTRACTIONS
from ..training.options import click_options


class ProtocolChoice(click.Choice):
    """click's Choice of the test protocols; an unknown name is one line naming the close ones first."""

    def convert(self, value, param, ctx):
        if value in self.choices:
            return value
        from ..training.protocols import ProtocolError, get_protocol

        try:
            return get_protocol(value).name
        except ProtocolError as e:
            self.fail(str(e), param, ctx)


@click.command()
@click.argument("name")
@click_options
@click.option("--output", type=click.Path(file_okay=False), help="Run folder (default runs/<model>-<dataset>-<time>).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --output (or the newest in runs/); a "
              "finished run whose record is missing from the results store gets it.")
@click.option("--force", is_flag=True, help="Write the run into an --output folder that holds other files (no run).")
@click.option("--results", type=click.Path(file_okay=False),
              help="Results store (default $ZOO_RESULTS_DIR, else ~/.zoo/results).")
@click.option("--no-record", is_flag=True, help="Do not add the run to the results store.")
@click.option("-q", "--quiet", is_flag=True, help="Only the final summary.")
def train(name, output, resume, force, results, no_record, quiet, **options):
    """Train NAME with its registry recipe; prints progress and a summary beside the published number.

    With only NAME it trains on the embedded Fashion-MNIST sample (no data to prepare). Each run validates every
    epoch on held-out training images and writes config.json, history.csv (train and validation columns),
    tensorboard/ (curves side by side, HParams), checkpoints/ while it trains, model.weights.h5 (the last epoch),
    best.weights.h5 (the best validation epoch, which the test split measures once) and metrics.json to its
    folder, and one record to the results store (partial when shorter than the recipe). A NaN/inf loss stops it (exit code 3), keeping the last good checkpoint (--resume --lr X continues it
    with a lower learning rate). The folder is locked while the run trains; SIGTERM and Ctrl-C stop it with the
    last checkpoint kept (exit 143, 130).

    The training options (--dataset ... --data-dir) are zoo.training.RunOptions' fields."""
    from ..training import run

    if no_record and results:
        raise click.UsageError("--no-record and --results exclude each other: --results says where the record goes")
    from ..errors import Interrupted, Stopped

    try:
        result = run.train(name, output=output, resume=resume, force=force, results=results, record=not no_record,
                           verbose=not quiet, echo=click.echo, **options)
    except Interrupted as e:
        raise Stopped(e) from None
    if quiet:
        for line in run.summary_lines(result):
            click.echo(line)


@click.command("eval")
@click.argument("name")
@click.option("--weights", required=True,
              help="A tag of NAME's named weights (fashion_mnist, imagenet; `zoo list --weights`), a .weights.h5 / "
              ".keras file, or a run folder.")
@click.option("--dataset", help="Dataset (default: the weights' own, a run's, else the model's).")
@click.option("--split", help="Split (default: the dataset's evaluation split, e.g. test).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Batch size (default: the recipe's).")
@click.option("--image-size", type=click.IntRange(min=1),
              help="Input side (default: the run's, else the recipe's or the model's).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N images of the split.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Prepared datasets (default $ZOO_DATA_DIR).")
@click.option("--protocol", type=ProtocolChoice(EVAL_PROTOCOLS), default="center", show_default=True,
              help="The test protocol: the views of each image and how their scores combine (center; AlexNet's "
              "10crop; GoogLeNet's 144crop; VGG's dense, dense_multiscale, dense_384, dense_multiscale_jittered; "
              "ResNet's dense_5scale). --batch-size then counts views. See docs/reproducing.md.")
@click.option("--mean", type=click.Choice(MEAN_SUBTRACTIONS), default="channel", show_default=True,
              help="What is subtracted before the std division: the per-channel mean the weights were trained "
              "with, or the training images' mean image (AlexNet's and ZFNet's input; computed once, cached in the "
              "data dir).")
@click.option("--record", is_flag=True, help="Add the result to the results store as the run's record under "
              "--protocol (a run's weights, the whole evaluation split), for `zoo table results`.")
@click.option("--results", type=click.Path(file_okay=False),
              help="Results store for --record (default $ZOO_RESULTS_DIR, else ~/.zoo/results).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate(name, weights, dataset, split, batch_size, image_size, limit, data_dir, protocol, mean, record,
             results, as_json):
    """Top-1/top-5 accuracy and loss of NAME with WEIGHTS, each image prepared as those weights expect (named
    weights: their preprocessing, e.g. Keras' caffe mode for imagenet; a run's file: its training pipeline's; a
    bare file: the registry's evaluation protocol)."""
    import dataclasses
    import json

    from ..data.folder import register_run
    from ..training.evaluate import evaluate as evaluate_weights
    from ..training.run import published

    register_run(weights)  # a run on an image folder: its dataset name stands for the folder again

    if results and not record:
        raise click.UsageError("--results says where --record writes: give --record too")
    if record:
        from ..training import protocols

        source = protocols.record_source(weights, protocol, limit=limit, split=split, mean=mean)
    r = evaluate_weights(name, weights, dataset=dataset, split=split, batch_size=batch_size,
                            image_size=image_size, data_dir=data_dir, limit=limit, protocol=protocol, mean=mean)
    if record:
        from .. import results as results_store

        path = results_store.save(protocols.protocol_record(source, r), results)
        click.echo(f"zoo: recorded {path}", err=True)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(r), indent=2))
        return
    top5 = f"   top-5 {100 * r.top5:.2f}%" if r.top5 is not None else ""
    click.echo(f"{r.model} on {r.dataset} {r.split} ({r.examples:,} images at {r.image_size}x{r.image_size}): "
               f"top-1 {100 * r.top1:.2f}%{top5}   loss {r.loss:.4f}   ({r.images_per_s:,.0f} images/s)")
    click.echo(f"  weights: {r.weights}; images: {r.preprocessing}")
    if os.path.isdir(weights):  # a run folder: which of its weights files, and why
        from ..training.rundir import RunDir

        click.echo(f"  {os.path.basename(r.weights)} of the run folder: {RunDir(weights).eval_weights()[1]}")
    if r.protocol != "center":
        click.echo(f"  protocol: {r.protocol}, {r.views} views per image, softmax averaged")
    if r.mean == "pixel":
        click.echo("  mean: the training images' mean image subtracted (not the per-channel mean)")
    if r.classes:
        click.echo(f"  classes: {r.classes}")
    if r.committed_top1 is not None:
        click.echo(f"  committed: top-1 {r.committed_top1:.2f}% (registry.yaml, the weights' measured accuracy)")
    from ..registry import get_spec

    same = {(x.metric, x.value) for x in get_spec(r.model).published(r.dataset) if x.eval_protocol == r.protocol}
    for p in published(r.model, r.dataset):
        mark = f"  <- {r.protocol}, as here" if (p["metric"], p["value"]) in same else ""
        click.echo(f"  published: {p['accuracy']:.2f}% ({p['metric']} {p['value']:g}%, "
                   f"{p['protocol'] or p['split']}; {p['source']}){mark}")


COMMANDS = [train, evaluate]
