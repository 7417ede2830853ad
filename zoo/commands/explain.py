"""`zoo explain` (one self-contained page of a model on an image) and `zoo serve` (the same page, interactive)."""

from __future__ import annotations

import click

from ..explain.report import METHODS  # no TensorFlow: report imports it inside its functions


def _methods(value: str) -> tuple[str, ...]:
    if value in ("all", ""):
        return METHODS
    chosen = tuple(m.strip() for m in value.split(",") if m.strip())
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)} (choose from {', '.join(METHODS)} or all)")
    return chosen


def _target(value: str):
    if value == "top":
        return "top"
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"expected 'top' or a class index, got {value!r}") from None


def resolve_weights(spec, value: str):
    """--weights through zoo.pretrained.resolve (the path zoo.build and zoo predict take): a tag, MODEL.TAG, imagenet,
    a weights file or a run's folder -> zoo.pretrained.Weights; none -> None (random initialisation). Errors are one
    line."""
    if value in (None, "none"):
        return None
    from ..pretrained import resolve

    return resolve(spec, value)


def random_weights_note(spec) -> str:
    """Said when the page shows random weights although trained ones exist."""
    tags = [tag for tag, entry in spec.weights.items() if entry.source == "shipped"]
    return (f"{spec.name}: random weights (seed 0); trained ones: --weights {tags[0]}" if tags else
            f"{spec.name}: random weights (seed 0)")


def request_for(name, image, weights, target, methods, layers, top_channels):
    from ..explain.images import load_image, sample_image
    from ..explain.report import Request
    from ..registry import get_spec

    spec = get_spec(name)
    resolved = resolve_weights(spec, weights)
    if image:
        array, note = load_image(image)
        source = image
    else:
        (array, source), note = sample_image(), None
    return Request(spec=spec, image=array, image_source=source, image_note=note, weights=resolved,
                   target=_target(target), methods=_methods(methods),
                   layers=[n.strip() for n in layers.split(",") if n.strip()] if layers else None,
                   top_channels=top_channels)


def common_options(f):
    options = [
        click.option("--image", type=click.Path(dir_okay=False), help="The image (PNG, JPEG, ...); default: an "
                     "embedded Fashion-MNIST test image."),
        click.option("--weights", default="none", show_default=True, metavar="TAG|PATH|imagenet|none",
                     help="MODEL's named weights (`zoo list --weights`: e.g. fashion_mnist, imagenet), a "
                     ".weights.h5/.keras file, or none (random initialisation); the page uses their preprocessing."),
        click.option("--class", "target", default="top", show_default=True, metavar="top|K",
                     help="The class the attribution maps explain (top: the top-5 predicted)."),
        click.option("--methods", default="all", show_default=True,
                     help=f"Comma-separated: {', '.join(METHODS)}."),
        click.option("--layers", help="Comma-separated layers for the overview (default: the model's blocks)."),
        click.option("--top-channels", default=8, show_default=True, type=click.IntRange(1, 64),
                     help="Feature maps shown per layer (the most active)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command()
@click.argument("name")
@common_options
@click.option("--output", "-o", default=None, type=click.Path(file_okay=False),
              help="Folder for index.html, explain.json and png/ (default: explain-NAME).")
def explain(name, image, weights, target, methods, layers, top_channels, output):
    """Look inside NAME on an image: one self-contained index.html (no network request, opens from file://)
    with the input steps, feature maps, unit arithmetic, filters, head, saliency, SmoothGrad, Grad-CAM,
    occlusion, deconvnet and a randomised-weights sanity check; explain.json holds every number shown."""
    from ..explain import report

    request = request_for(name, image, weights, target, methods, layers, top_channels)
    if request.image_note:
        click.echo(request.image_note, err=True)
    result = report.explain(request)
    folder = output or f"explain-{request.spec.name}"
    page = report.write(result, folder)
    skipped = result.data["attribution"]["not_applicable"]
    for method, why in skipped.items():
        click.echo(f"{method}: {why}", err=True)
    if request.weights is None:  # said once the page is made (a bad option stays a one-line error)
        click.echo(random_weights_note(request.spec), err=True)
    size = page.stat().st_size
    click.echo(f"{request.spec.name}: {page} ({size / 1e6:.1f} MB), {folder}/explain.json, "
               f"{len(result.pngs)} PNGs in {folder}/png; {result.data['timings_s']['total']:.1f} s")


@click.command()
@click.argument("name")
@common_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (127.0.0.1: this machine).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--max-upload-mb", default=10.0, show_default=True, type=click.FloatRange(0.01, 200))
def serve(name, image, weights, target, methods, layers, top_channels, host, port, max_upload_mb):
    """Serve NAME's explainer page locally: upload images (a drawing pad for the 32x32 nets), switch classes,
    and any unit's arithmetic computed on demand by the same functions as `zoo explain`."""
    from ..explain.serve import Explainer, make_server

    request = request_for(name, image, weights, target, methods, layers, top_channels)
    explainer = Explainer(request, max_upload=int(max_upload_mb * 1e6))
    server = make_server(explainer, host, port)
    click.echo(f"zoo serve: {request.spec.name} at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


COMMANDS = [explain, serve]
