"""`zoo predict MODEL IMAGE...`: the top classes of image files, with the preprocessing of the weights loaded.

Each file is decoded by TensorFlow (JPEG, PNG, BMP, GIF: its first frame; grey, colour or with alpha; any size) and
prepared by the weights' `Preprocessing` (zoo/preprocess.py), never by another convention's. A file that cannot be
read or is not an image is one line on stderr naming it; the others are still answered and the exit code is 1.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from typing import Optional

import click

from ..errors import ZooError

__all__ = ["predict", "predict_files", "ImageError", "read_image"]


class ImageError(ZooError, ValueError):
    """A file that is not a readable image; the message names it."""


@dataclass
class Answer:
    image: str
    top: list  # zoo.pretrained.Prediction, best first

    def as_dict(self) -> dict:
        return {"image": self.image, "top": [p.as_dict() for p in self.top]}


def read_image(path: str):
    """The file's pixels as a uint8 array (H, W, C), or ImageError naming the file and why."""
    import numpy as np
    import tensorflow as tf

    if os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not an image file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ImageError(f"{path}: cannot read it ({e.strerror})") from None
    if not data:
        raise ImageError(f"{path}: empty file, not an image")
    try:
        image = tf.io.decode_image(data, expand_animations=False, dtype=tf.uint8)
    except (tf.errors.InvalidArgumentError, ValueError) as e:
        reason = _tf_reason(e)
        raise ImageError(f"{path}: not a JPEG, PNG, BMP or GIF image ({reason})") from None
    return np.asarray(image)


def _tf_reason(error) -> str:
    """TensorFlow's message without its op decorations ('{{function_node ...}}', '[Op:DecodeImage]')."""
    text = str(getattr(error, "message", error)).split("\n")[0]
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:\w+\]", "", text).strip()
    return text.rstrip(".") or "unknown format"


def default_weights(spec) -> str:
    """Without --weights: the variant's shipped weights (the first, if several), else its first named ones."""
    shipped = [tag for tag, entry in spec.weights.items() if entry.source == "shipped"]
    if shipped or spec.weights:
        return (shipped or list(spec.weights))[0]
    raise click.UsageError(f"{spec.name} has no named weights: pass --weights PATH (a .weights.h5 or .keras file)")


def predict_files(weights, model, paths: list[str], top: int, on_error) -> list[Answer]:
    """Top-`top` classes for each readable image in `paths`; `on_error(message)` for each one that is not."""
    import numpy as np

    readable, batch = [], []
    for path in paths:
        try:
            batch.append(weights.preprocess(read_image(path))[0])
            readable.append(path)
        except (ImageError, ValueError) as e:
            on_error(str(e) if isinstance(e, ImageError) else f"{path}: {e}")
    if not batch:
        return []
    probabilities = model.predict(np.stack(batch), verbose=0, batch_size=32)
    return [Answer(path, top_k) for path, top_k in zip(readable, weights.decode(probabilities, top=top))]


def recorded_names(weights: Optional[str]) -> Optional[list[str]]:
    """The class names a run on an image folder recorded in its config.json (label i is the i-th): the labels of
    its weights even when the folder has changed since."""
    config = os.path.join(os.path.dirname(os.fspath(weights)), "config.json") if weights else ""
    if not os.path.isfile(config):
        return None
    try:
        with open(config) as f:
            names = json.load(f).get("class_names")
    except (OSError, ValueError, AttributeError):
        return None
    return list(names) if isinstance(names, list) else None


def relabelled(answers: list[Answer], names: Optional[list[str]]) -> list[Answer]:
    if not names:
        return answers
    return [Answer(a.image, [replace(p, label=names[p.index]) if p.index < len(names) else p for p in a.top])
            for a in answers]


def render(answers: list[Answer]) -> list[str]:
    width = max((len(p.label) for a in answers for p in a.top), default=0)
    lines = []
    for answer in answers:
        lines.append(f"{answer.image}:")
        lines += [f"  {100 * p.probability:6.2f}%  {p.label:<{width}}  ({p.index})" for p in answer.top]
    return lines


@click.command()
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--weights", help="A tag of NAME's named weights (`zoo list --weights`), imagenet, or a .weights.h5 / "
              ".keras file (default: NAME's shipped weights).")
@click.option("--top-k", "top_k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Classes to show per image (at most the class count).")
@click.option("--json", "as_json", is_flag=True, help='A list of {"image", "top": [{"label", "index", '
              '"probability"}]}.')
def predict(name, images, weights, top_k, as_json):
    """The top classes of each IMAGE (JPEG, PNG, BMP, GIF; grey or colour; any size) under NAME with its weights,
    each image prepared as those weights expect."""
    from ..models import family_of
    from ..pretrained import resolve
    from ..registry import get_spec

    spec = get_spec(name)
    if weights and os.path.isfile(weights):
        from ..data import folder

        folder.register_run(weights)  # a run on an image folder: its dataset name stands for the folder again
    resolved = resolve(spec, weights or default_weights(spec))
    if top_k > resolved.classes:
        click.echo(f"zoo: note: --top-k {top_k} is more than the {resolved.classes} classes of {resolved.name}: "
                   f"showing {resolved.classes}", err=True)
    model = family_of(spec).inference_model(resolved.build())
    failed: list[str] = []

    def on_error(message: str) -> None:
        failed.append(message)
        click.echo(f"zoo: error: {message}", err=True)

    answers = relabelled(predict_files(resolved, model, list(images), top_k, on_error), recorded_names(weights))
    if as_json:
        click.echo(json.dumps([a.as_dict() for a in answers], indent=2))
    else:
        for line in render(answers):
            click.echo(line)
    if failed:
        # exit code 1 (click's Exit would be swallowed by cli.main's standalone_mode=False): one summary line
        raise ImageError(f"{len(failed)} of {len(images)} files not answered (each named above)")


COMMANDS = [predict]
