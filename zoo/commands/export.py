"""`zoo export MODEL --format savedmodel|onnx|litert --output PATH`: see zoo/export.py."""

from __future__ import annotations

import click

from ..choices import EXPORT_FORMATS


@click.command("export")
@click.argument("name")
@click.option("--weights", help="A tag of NAME's named weights (`zoo list --weights`), imagenet, a .weights.h5 / "
              ".keras file, or a run's folder (default: none, the initial weights).")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True,
              help="savedmodel (a folder), onnx (.onnx) or litert (.tflite).")
@click.option("--output", "-o", required=True, type=click.Path(), help="Where to write the artifact.")
@click.option("--include-preprocessing", is_flag=True,
              help="Put the weights' padding, channel order and mean/std in the graph: it takes 0-255 pixels at the "
                   "input size less the padding (28x28 for the LeNets).")
@click.option("--images", type=click.IntRange(min=1), default=2, show_default=True,
              help="Images in the batch the artifact is checked on.")
def export(name, weights, fmt, output, include_preprocessing, images):
    """Export NAME (SavedModel and LiteRT through Keras' model.export; ONNX through tf2onnx, as Keras converts, in
    bounded memory), run the artifact in its own runtime (TensorFlow, onnxruntime, the LiteRT interpreter) on a
    batch, print the largest absolute difference from Keras, and keep it only if that is at most 1e-4 (the file is
    written atomically: a failed export leaves nothing)."""
    from ..export import example_batch, export_model, with_preprocessing
    from ..models import build_spec, family_of
    from ..pretrained import pipeline_preprocessing, resolve
    from ..registry import get_spec

    spec = get_spec(name)
    if weights:
        resolved = resolve(spec, weights)
        model, preprocessing = resolved.build(), resolved.preprocessing
    else:
        model, preprocessing = build_spec(spec), pipeline_preprocessing(spec, spec.dataset)
    model = family_of(spec).inference_model(model)
    if include_preprocessing:
        model = with_preprocessing(model, preprocessing)
    batch = example_batch(preprocessing, images, raw=include_preprocessing)
    result = export_model(model, output, fmt, batch)
    grouped = f"; {result.grouped_convs} grouped convolutions as split/concat" if result.grouped_convs else ""
    source = weights or "initial weights"
    click.echo(f"{spec.name} ({source}) -> {result.path} ({fmt}{grouped}): max |{result.runtime} - Keras| = "
               f"{result.max_abs_diff:.2e} on {result.images} images (limit 1e-4)")


COMMANDS = [export]
