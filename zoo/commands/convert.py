"""`zoo convert`: keras.applications ImageNet weights (a file you have) -> a zoo weights file; see zoo/weights.py."""

from __future__ import annotations

import click


@click.command()
@click.argument("name")
@click.option("--keras-weights", "keras_weights", required=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False),
              help="keras.applications weights for NAME's twin (keras' .h5 file or a model.save_weights file).")
@click.option("--output", "-o", required=True, metavar="OUT.weights.h5", type=click.Path(dir_okay=False),
              help="Where to save the converted weights (Keras .weights.h5 format).")
@click.option("--include-top/--no-include-top", default=True, show_default=True,
              help="Whether FILE holds the classifier; keras' *_notop files do not.")
def convert(name, keras_weights, output, include_top):
    """Convert keras.applications weights for NAME (vgg16/19, resnet50/101/152, densenet121/169/201).

    Builds keras' twin of NAME with weights=FILE, copies them into the zoo model by layer name (folding keras'
    ResNet conv biases into the BatchNorm means) and saves it. Load the result with
    zoo.build(NAME, weights=OUT).
    """
    from ..registry import get_spec
    from ..weights import convert_file

    spec = get_spec(name)
    convert_file(spec.name, keras_weights, output, include_top=include_top)
    headless = "" if include_top else ", include_top=False"
    click.echo(f"{spec.name}: converted {keras_weights} -> {output}; load it with "
               f"zoo.build({spec.name!r}{headless}, weights={output!r})")


COMMANDS = [convert]
