"""The papers' test protocols: which views of each test image a model sees, and how their scores are combined.

    zoo eval alexnet --weights W --protocol 10crop           # the 4 corners, the centre and their mirror images
    PROTOCOLS["10crop"].views                               # 10
    PROTOCOLS["10crop"].make_views(canvas, geometry)       # the views of a whole batch, (B, 10, h, w, C)

One `Protocol` per name of zoo.choices.EVAL_PROTOCOLS (the names `zoo eval --protocol`, a run record's `protocol`
and a published result's `eval_protocol` use): the paper it follows, the views it makes per image, the canvas the
data layer serves it (`canvas`), and `make_views(canvas, geometry)`, TF ops on a whole batch at once. Every
protocol combines the same way, as the papers did: each view's class scores through the softmax, the posteriors
averaged over the views (AlexNet sec. 4.1, GoogLeNet sec. 7, VGG sec. 3.2); the dense ones first average each
view's class-score map over its positions (VGG sec. 3.2: "spatially averaged"), in the fully convolutional form
of the model (`dense_form`: its Dense layers as convolutions, the same weights).

Sizes. The papers' pixel sizes are for 224 crops of images whose shorter side is 256; they scale with the model's
evaluation geometry (`Geometry.scaled`: AlexNet's 227 crops keep the 256 canvas; a ResNet-50 evaluated at 64 px
takes 10 crops of 64 from 73). On fixed-size datasets (MNIST, CIFAR, Fashion-MNIST: 28x28 padded to 32) there is no
larger image to crop from: 10crop pads the model-size image by size // 8 black pixels (4 at 32, the shift the
CIFAR recipes train with) and takes the corners, centre and flips of that; `dense` is the image and its mirror
image (the whole image at its one training scale); the multi-scale and 144-crop protocols are refused there.

`--batch-size` counts model inputs per call (views x images): images per batch = max(1, batch // views), so a
protocol needs the memory the centre crop does. Needs the tf.data pipeline (TensorFlow backend).

Where the protocols differ from the papers, or the papers leave a choice open:
- Dense views are the centre Q x Q square of the image rescaled to shorter side Q, where VGG (sec. 3.2) and ResNet
  (sec. 3.4, "the fully-convolutional form as in [VGG]") apply the net "to the whole (uncropped) image": images of
  different shapes do not batch. On a 4:3 image the square leaves out the sides; a multi-scale protocol's smaller
  scales are resized from its largest scale's square.
- VGG's multi-crop evaluation (Table 5: 50 crops per scale, a 5 x 5 grid and 2 flips, over 3 scales, 150 crops;
  alone and combined with dense) has no protocol here; its numbers carry no `eval_protocol`.
- GoogLeNet's Table 3 counts "10 crops" without saying which: 10crop takes AlexNet's (sec. 4.1). ResNet's
  "standard 10-crop testing [AlexNet]" is the same. DenseNet's Table 3 says "10-crop" only; the fb.resnet.torch
  code it trains with (TenCrop after Scale(256)) takes the corners of the whole resized image, not of its centre
  square: the same views on square images, corners further out on others (not batchable here).
- ResNet's multi-scale test (sec. 3.4) says nothing of flips: dense_5scale takes none.
- 144crop is GoogLeNet's sec. 7 as written (4 x 3 x 6 x 2): each square spans the shorter side, so it is the same
  region at every scale. The posteriors are averaged over the crops as the paper says ("over all the individual
  classifiers" is its 7-model ensemble, which one set of weights does not have).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Optional

from ..choices import EVAL_PROTOCOLS, MEAN_SUBTRACTIONS
from .options import OptionError

__all__ = ["Protocol", "Geometry", "Canvas", "PROTOCOLS", "ProtocolError", "get_protocol", "views_of", "check",
           "geometry_of", "ten_crop", "flipped", "five_crop_offsets", "three_squares", "fixed_pad", "posteriors",
           "dense_form", "canvas_prep", "canvas_stream", "evaluate_views", "mean_image", "mean_image_path",
           "record_source", "protocol_record", "PAPER_CANVAS", "GOOGLENET_SIDES"]

PAPER_CANVAS = 256  # the shorter side the papers' 224 crops come from: the base their pixel sizes scale with


class ProtocolError(OptionError):
    """A protocol that does not exist, or that does not apply to this model, dataset or preprocessing."""


# ---------------------------------------------------------------------------------------------------------------
# Geometry: where the views come from, in the model's terms


@dataclass(frozen=True)
class Geometry:
    """The single view's geometry (the weights' Preprocessing, or the registry protocol), that views derive from.

    size: the model's input side. crop / resize: the centre crop (canvas pixels) of the image whose shorter side
    is `resize` (224 of 256); on fixed-size data resize is None and crop = size. fill: a black pixel after
    normalisation, per channel (what padding adds). interpolation: the preprocessing's resize method."""

    size: int
    crop: int
    resize: Optional[int]
    fill: tuple[float, ...]
    interpolation: str = "bilinear"

    @property
    def fixed(self) -> bool:
        """A fixed-size dataset: the canvas is the model-size image itself."""
        return self.resize is None

    @property
    def zoom(self) -> float:
        """Model pixels per canvas pixel (1 unless the crop is resized to the input, e.g. 224 -> 64)."""
        return self.size / self.crop

    def scaled(self, paper_pixels: int) -> int:
        """A paper's pixel size (for 224 crops of 256) at this geometry, in model pixels: 256 -> 73 at 64 px."""
        if self.fixed:
            return round(paper_pixels * self.size / 224)
        return round(paper_pixels * self.resize / PAPER_CANVAS * self.zoom)

    def source_pixels(self, paper_pixels: int) -> int:
        """The same size in the image's own pixels (the shorter side to resize it to)."""
        return round(paper_pixels * self.resize / PAPER_CANVAS)


@dataclass(frozen=True)
class Canvas:
    """What the data layer serves a protocol, per image.

    single: the single view itself (the centre crop, or a fixed-size image at the model size).
    square: the image's shorter side resized to `resize`, its centre square of that side, resized to `side`.
    squares: GoogLeNet's: the left, centre and right squares (top, centre, bottom for portrait images) of the
      image, each resized to every side in `sides` (a tuple of (B, 3, side, side, C) batches)."""

    kind: str
    side: int = 0
    resize: Optional[int] = None
    sides: tuple[int, ...] = ()


# ---------------------------------------------------------------------------------------------------------------
# Views: batched TF ops. A canvas batch (B, H, W, C) in, view groups (B, V, h, w, C) out; the views of a group
# have one size (one model call), image-major so that the model's (B * V, K) output reshapes to (B, V, K).


def _tf():
    import tensorflow as tf

    return tf


def five_crop_offsets(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """(top, left) of the four corner crops and the centre crop, in AlexNet's order: top-left, top-right,
    bottom-left, bottom-right, centre."""
    if size > min(height, width):
        raise ProtocolError(f"a {size}x{size} crop does not fit in a {height}x{width} image")
    bottom, right = height - size, width - size
    return [(0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2)]


def _crops(x, size: int, offsets):
    return _tf().stack([x[:, top:top + size, left:left + size, :] for top, left in offsets], axis=1)


def flipped(views):
    """(B, V, h, w, C) -> (B, 2V, h, w, C): the views, then their horizontal reflections."""
    tf = _tf()
    return tf.concat([views, tf.reverse(views, axis=[3])], axis=1)


def ten_crop(x, size: int):
    """(B, H, W, C) -> (B, 10, size, size, C): the 4 corner crops and the centre crop, then their mirror images."""
    return flipped(_crops(x, size, five_crop_offsets(x.shape[1], x.shape[2], size)))


def _resize(x, side: int, interpolation: str):
    return _tf().image.resize(x, [side, side], method=interpolation, antialias=True)


def _resize_views(views, side: int, interpolation: str):
    """(B, V, h, w, C) -> (B, V, side, side, C)."""
    tf = _tf()
    if views.shape[2] == side and views.shape[3] == side:
        return views
    count = views.shape[1]
    flat = tf.reshape(views, [-1, views.shape[2], views.shape[3], views.shape[4]])
    return tf.reshape(_resize(flat, side, interpolation), [-1, count, side, side, views.shape[4]])


def _pad(x, pad: int, fill):
    """Pad by `pad` pixels each side with `fill` (a black pixel, normalised), channel by channel."""
    tf = _tf()
    channels = [tf.pad(x[..., c:c + 1], [[0, 0], [pad, pad], [pad, pad], [0, 0]], constant_values=value)
                for c, value in enumerate(fill)]
    return tf.concat(channels, axis=-1)


def _center_views(canvas, g: Geometry):
    return [canvas[:, None]]


def fixed_pad(size: int) -> int:
    """10crop's pad on fixed-size data: the shift pad_crop_flip trains with (size / 8: 4 px at 32)."""
    return max(1, size // 8)


def _ten_crop_views(canvas, g: Geometry):
    if g.fixed:
        return [ten_crop(_pad(canvas, fixed_pad(g.size), g.fill), g.size)]
    return [ten_crop(canvas, g.size)]


GOOGLENET_SIDES = (256, 288, 320, 352)  # GoogLeNet sec. 7: the shorter side at 4 scales


def three_squares(image):
    """(H, W, C) -> (3, s, s, C), s = min(H, W): the left, centre and right squares of a landscape image (top,
    centre and bottom of a portrait one), GoogLeNet sec. 7. Each square spans the whole shorter side, so it is the
    same region of the image at every scale."""
    tf = _tf()
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side, longer = tf.minimum(height, width), tf.maximum(height, width)
    offsets = tf.stack([0, (longer - side) // 2, longer - side])
    portrait = height > width
    tops, lefts = tf.where(portrait, offsets, 0), tf.where(portrait, 0, offsets)
    return tf.stack([image[tops[i]:tops[i] + side, lefts[i]:lefts[i] + side] for i in range(3)])


def _googlenet_views(canvas, g: Geometry):
    """Per scale: each of the 3 squares -> its 4 corner and centre crops and the square resized to the crop size,
    and their 6 mirror images: 36 views; 144 over the 4 scales (GoogLeNet sec. 7)."""
    tf = _tf()
    per_scale = []
    for squares in canvas:  # (B, 3, q, q, C) at each scale
        side, channels = squares.shape[2], squares.shape[4]
        flat = tf.reshape(squares, [-1, side, side, channels])  # (B * 3, q, q, C)
        crops = _crops(flat, g.size, five_crop_offsets(side, side, g.size))
        whole = _resize(flat, g.size, g.interpolation)[:, None]
        views = flipped(tf.concat([crops, whole], axis=1))  # (B * 3, 12, size, size, C)
        per_scale.append(tf.reshape(views, [-1, 36, g.size, g.size, channels]))
    return [tf.concat(per_scale, axis=1)]


def _dense_views(scales: tuple[int, ...], flips: bool) -> Callable:
    """The whole canvas at each scale Q (and its mirror image): one group per scale, the dense model's input."""

    def views(canvas, g: Geometry):
        groups = []
        for q in (g.size,) if g.fixed else tuple(g.scaled(s) for s in scales):
            view = _resize(canvas, q, g.interpolation)[:, None] if canvas.shape[1] != q else canvas[:, None]
            groups.append(flipped(view) if flips else view)
        return groups

    return views


# ---------------------------------------------------------------------------------------------------------------
# The declarations


@dataclass(frozen=True)
class Protocol:
    """One test protocol. `views`: per image. `scales`: the dense protocols' test scales Q (paper pixels).
    `fixed_size`: None where the protocol applies to fixed-size datasets (as the module docstring says), else why
    it does not."""

    name: str
    description: str
    paper: str
    views: int
    make_views: Callable
    dense: bool = False
    scales: tuple[int, ...] = ()
    fixed_size: Optional[str] = None
    combine: str = "softmax posteriors averaged over the views"

    def canvas(self, g: Geometry) -> Canvas:
        if self.name == "center" or g.fixed:
            return Canvas("single")
        if self.name == "144crop":
            return Canvas("squares", sides=tuple(g.scaled(s) for s in GOOGLENET_SIDES))
        paper_side = max(self.scales) if self.dense else PAPER_CANVAS
        side = g.scaled(paper_side) if self.dense else round(g.resize * g.zoom)
        return Canvas("square", side=side, resize=g.source_pixels(paper_side) if self.dense else g.resize)

    def images_per_batch(self, batch_size: int) -> int:
        """Images per model call for a batch of `batch_size` model inputs."""
        return max(1, batch_size // self.views)


_NOT_FIXED = ("{name} resizes and crops larger images; {dataset}'s {shape} images have one size (use center, "
              "10crop or dense there)")

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in [
    Protocol("center", "one centre crop (or, on fixed-size data, the image at the model size)",
             "torchvision/Keras' single-crop protocol; the papers' '1 crop' rows", 1, _center_views),
    Protocol("10crop", "the 4 corner crops and the centre crop of the image's centre square (shorter side 256), "
             "and their horizontal reflections", "AlexNet (Krizhevsky et al. 2012, sec. 4.1); ZFNet, GoogLeNet "
             "Table 3, ResNet Tables 2-3, DenseNet Table 3", 10, _ten_crop_views),
    Protocol("144crop", "shorter side 256, 288, 320, 352; at each, the left, centre and right squares (top, "
             "centre, bottom for portrait images); of each, the 4 corner and the centre 224 crops and the square "
             "resized to 224; and the mirror images of all", "GoogLeNet (Szegedy et al. 2014, sec. 7, Table 3)",
             144, _googlenet_views, fixed_size=_NOT_FIXED),
    Protocol("dense", "the fully convolutional net on the centre square at Q = 256 and its mirror image",
             "VGG (Simonyan & Zisserman 2014, sec. 3.2; Table 3, nets trained at S = 256)", 2,
             _dense_views((256,), True), dense=True, scales=(256,)),
    Protocol("dense_multiscale", "dense at Q = 224, 256, 288 (S - 32, S, S + 32) and the mirror images",
             "VGG, Table 4 (nets trained at S = 256)", 6, _dense_views((224, 256, 288), True), dense=True,
             scales=(224, 256, 288), fixed_size=_NOT_FIXED),
    Protocol("dense_384", "dense at Q = 384 (0.5 (Smin + Smax)) and the mirror image",
             "VGG, Table 3 (nets trained with S in [256; 512])", 2, _dense_views((384,), True), dense=True,
             scales=(384,), fixed_size=_NOT_FIXED),
    Protocol("dense_multiscale_jittered", "dense at Q = 256, 384, 512 and the mirror images",
             "VGG, Tables 4-5 (nets trained with S in [256; 512])", 6, _dense_views((256, 384, 512), True),
             dense=True, scales=(256, 384, 512), fixed_size=_NOT_FIXED),
    Protocol("dense_5scale", "the fully convolutional net at shorter side 224, 256, 384, 480, 640 (the centre "
             "square of each), scores averaged, no flips", "ResNet (He et al. 2015, sec. 3.4, Table 4)", 5,
             _dense_views((224, 256, 384, 480, 640), False), dense=True, scales=(224, 256, 384, 480, 640),
             fixed_size=_NOT_FIXED),
]}
assert tuple(PROTOCOLS) == EVAL_PROTOCOLS, "zoo.choices.EvalProtocol and PROTOCOLS must name the same protocols"


def get_protocol(name: str) -> Protocol:
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    close = difflib.get_close_matches(str(name), EVAL_PROTOCOLS, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ProtocolError(f"unknown protocol {name!r}: {hint}(choose from {', '.join(EVAL_PROTOCOLS)})")


# ---------------------------------------------------------------------------------------------------------------
# Applicability (no TensorFlow: checked before any model is built)


def geometry_of(prep) -> Geometry:
    """The single view's geometry from a zoo.preprocess.Preprocessing."""
    channels = prep.channels
    mean = list(prep.mean) * channels if len(prep.mean) == 1 else list(prep.mean)
    std = list(prep.std) * channels if len(prep.std) == 1 else list(prep.std)
    fill = tuple(-m / s for m, s in zip(mean, std))
    return Geometry(size=prep.size, crop=(prep.crop or prep.size) if prep.resize else prep.size, resize=prep.resize,
                    fill=fill, interpolation=prep.interpolation)


def check(name: str, *, model: str, dataset: str, fixed_size: bool, prep, image_shape=None,
          numpy_input: bool = False, mean: str = "channel") -> Protocol:
    """The protocol `name` for `model` on `dataset` with the single-view Preprocessing `prep` (and `mean`
    subtraction), or a one-line ProtocolError saying why it does not apply."""
    protocol = get_protocol(name)
    if mean not in MEAN_SUBTRACTIONS:
        raise ProtocolError(f"unknown mean subtraction {mean!r}: choose from {', '.join(MEAN_SUBTRACTIONS)}")
    if mean == "pixel" and name == "144crop":
        raise ProtocolError("--mean pixel: 144crop's squares at four scales have no one mean image; use it with "
                            "center, 10crop or a dense protocol")
    if name == "center" and not (mean == "pixel" and numpy_input):
        return protocol
    if numpy_input:
        if name == "center":
            raise ProtocolError("--mean pixel is applied with TensorFlow ops; this process serves data without "
                                "TensorFlow (the numpy path): use --mean channel, or the TensorFlow backend")
        raise ProtocolError(f"--protocol {name} cuts its views with TensorFlow ops in the tf.data pipeline; this "
                            "process serves data without TensorFlow (the numpy path): use center, or the "
                            "TensorFlow backend")
    if fixed_size and protocol.fixed_size:
        shape = "x".join(str(n) for n in (image_shape or ())[:2]) or "fixed-size"
        raise ProtocolError(protocol.fixed_size.format(name=name, dataset=dataset, shape=shape))
    if not fixed_size and not prep.resize:
        raise ProtocolError(f"--protocol {name} crops from a resized image; these weights' preprocessing "
                            f"({prep.describe()}) has no resize-and-crop geometry: use center")
    geometry = geometry_of(prep)
    if protocol.dense and not fixed_size and min(geometry.scaled(s) for s in protocol.scales) < geometry.size:
        raise ProtocolError(f"--protocol {name}: its smallest scale ({geometry.scaled(min(protocol.scales))} px) is "
                            f"below {model}'s {geometry.size}x{geometry.size} input, which its dense form needs")
    return protocol


# ---------------------------------------------------------------------------------------------------------------
# The dense (fully convolutional) form of a model


def dense_form(model, spec, channels: int):
    """`model` as a fully convolutional net on images of any size (at least its own): the convolutional body
    rebuilt at input (None, None, channels) with `model`'s weights (copied by layer name), each Dense layer as a
    convolution with the same weights (the first after Flatten as an h x w convolution over the map it flattened,
    the others 1 x 1), Dropout left out, and the class-score map averaged over its positions: logits (B, K). At the
    model's own input size the map is 1 x 1 and the logits are the model's (tests/test_protocols.py). A global-
    average-pool head (ResNet, DenseNet, GoogLeNet) is linear after the pool, so averaging its scores equals
    pooling first: the same net at another size."""
    import keras
    from keras import layers

    from ..models import build_spec

    body = build_spec(spec, include_top=False, input_shape=(None, None, channels), classes=model.output_shape[-1])
    for layer in body.layers:
        if layer.weights:
            layer.set_weights(_layer(model, layer.name, spec.name).get_weights())
    names = {layer.name for layer in body.layers}
    head = [layer for layer in model.layers if layer.name not in names and not isinstance(layer, layers.InputLayer)]
    x, window, pooled = body.output, None, False
    for layer in head:
        if isinstance(layer, layers.Dropout):
            continue
        if isinstance(layer, layers.Flatten):
            window = tuple(layer.input.shape[1:3])
        elif isinstance(layer, layers.GlobalAveragePooling2D):
            pooled = True
        elif isinstance(layer, layers.Dense):
            linear = layer.activation in (None, keras.activations.linear)
            if pooled and not linear:
                raise ProtocolError(f"{spec.name}: {layer.name} is not linear after the global pool; its scores "
                                    "cannot be averaged over positions instead (no dense form)")
            x = _as_convolution(layer, x, window or (1, 1))
            window = None
        else:
            raise ProtocolError(f"{spec.name} has no dense form: its head's layer {layer.name} "
                                f"({type(layer).__name__}) is not Dense, Flatten, global pooling or Dropout")
    scores = layers.GlobalAveragePooling2D(name="score_average", dtype="float32")(x)
    return keras.Model(body.input, scores, name=f"{spec.name}_dense")


def _layer(model, name: str, model_name: str):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ProtocolError(f"{model_name}: the dense form's layer {name!r} is not in the model") from None


def _as_convolution(dense, x, window: tuple[int, int]):
    """A Dense layer over a flattened (h, w, c) map (window (h, w)) or over channels (1, 1) as a Conv2D."""
    from keras import layers

    weights = dense.get_weights()
    kernel = weights[0].reshape(*window, -1, dense.units)  # Flatten's order is (h, w, c): channels last
    conv = layers.Conv2D(dense.units, window, activation=dense.activation, use_bias=dense.use_bias,
                         dtype=dense.dtype_policy, name=f"{dense.name}_conv")
    y = conv(x)
    conv.set_weights([kernel, *weights[1:]])
    return y


# ---------------------------------------------------------------------------------------------------------------
# Scores


def posteriors(forward, groups):
    """The combined class posteriors (B, K): each view's logits through the softmax, averaged over all views of
    all groups. `forward`: model inputs (N, h, w, C) -> logits (N, K)."""
    tf = _tf()
    probabilities = []
    for views in groups:
        count = views.shape[1]
        logits = forward(tf.reshape(views, [-1, *views.shape[2:]]))
        probabilities.append(tf.reshape(tf.nn.softmax(tf.cast(logits, tf.float32)), [-1, count, logits.shape[-1]]))
    return tf.reduce_mean(tf.concat(probabilities, axis=1), axis=1)


def _squares_stream(dataset: str, split: str, prep, sides: tuple[int, ...], images: int, *, data_dir, holdout):
    """GoogLeNet's canvas: per image its 3 squares resized to each of `sides`, channels and normalisation as
    `prep` says; batches of `images` ((B, 3, side, side, C) per side, labels). Built on the data layer's split
    resolution and TFDS stream (zoo/data/pipeline.py has no public per-image hook: these two calls are it)."""
    import tensorflow as tf

    from ..data import pipeline

    spec = pipeline.PipelineSpec(image_size=prep.size, channels=prep.channels, batch_size=images, training=False,
                                 deterministic=True, holdout=holdout)
    source = pipeline._resolve(dataset, split, spec, data_dir)
    stored_channels = source.entry.image_shape[2]
    order = prep.channel_order
    mean, std = tf.constant(prep.mean, tf.float32), tf.constant(prep.std, tf.float32)

    def per_image(encoded, label):
        image = tf.cast(tf.io.decode_image(encoded, channels=stored_channels, expand_animations=False), tf.float32)
        if prep.channels < stored_channels:
            image = pipeline._convert_channels(image, prep.channels)
        squares = three_squares(image)
        return tuple(_resize(squares, side, prep.interpolation) for side in sides), label

    def normalised(scales, labels):
        out = []
        for x in scales:
            x = pipeline._convert_channels(x, prep.channels)
            x = x[..., ::-1] if order == "bgr" else x
            out.append((x - mean) / std)
        return tuple(out), labels

    ds = source.stream(training=False, encoded=True).map(per_image, num_parallel_calls=pipeline.AUTOTUNE,
                                                         deterministic=True)
    return ds.batch(images).map(normalised, num_parallel_calls=pipeline.AUTOTUNE).prefetch(pipeline.AUTOTUNE)


def canvas_prep(protocol: Protocol, geometry: Geometry, base_prep):
    """The Preprocessing of `protocol`'s canvas (the single view's, with the canvas' geometry); None for GoogLeNet's
    squares, which no one Preprocessing describes."""
    canvas = protocol.canvas(geometry)
    if canvas.kind == "single":
        return base_prep
    if canvas.kind == "squares":
        return None
    return base_prep.model_copy(update={"size": canvas.side, "resize": canvas.resize, "crop": canvas.resize})


def _batches(evaluation, prep, split: str, images: int):
    from ..data.pipeline import batches
    from .inputs import weights_pipeline_spec

    run = evaluation.run
    spec = weights_pipeline_spec(prep, batch_size=images, holdout=run.recipe.validation)
    return batches(run.config.dataset, split, spec, data_dir=run.config.data_dir)


def canvas_stream(evaluation, protocol: Protocol, geometry: Geometry, images: int, base_prep):
    """The batches (canvas, labels) `protocol` cuts its views from, `images` images per batch, prepared as the
    single view is (`base_prep`: channel order, mean/std, interpolation)."""
    run = evaluation.run
    config = run.config
    canvas = protocol.canvas(geometry)
    if canvas.kind == "single":
        return evaluation.stream(images)
    if canvas.kind == "squares":
        return _squares_stream(config.dataset, evaluation.split, base_prep, canvas.sides, images,
                               data_dir=config.data_dir, holdout=run.recipe.validation)
    return _batches(evaluation, canvas_prep(protocol, geometry, base_prep), evaluation.split, images)


# ---------------------------------------------------------------------------------------------------------------
# Per-pixel mean subtraction: AlexNet (sec. 2) and ZFNet (sec. 3.1) subtract the training set's mean image


def mean_image_path(evaluation, prep):
    """Where the mean image of the run's training images at `prep`'s geometry is cached: the data dir's
    mean_images/ folder, one .npy per dataset, training split and geometry."""
    from ..data.catalogue import resolve_data_dir

    config = evaluation.run.config
    geometry = (f"{prep.size}x{prep.size}x{prep.channels}-resize{prep.resize or 0}-crop{prep.crop or 0}-pad{prep.pad}"
                f"-{prep.channel_order}-{prep.interpolation}")
    name = f"{config.dataset}-{config.train_split}-holdout{config.holdout or 0}-{geometry}.npy"
    return resolve_data_dir(config.data_dir) / "mean_images" / name


def mean_image(evaluation, prep, batch_size: int = 500):
    """The per-pixel mean (H, W, C), 0-255 and in `prep`'s channel order, of the images the run trained on (its
    training split) prepared with `prep`'s geometry: one pass over the split, then read from the cache."""
    import numpy as np

    from ..io import atomic_path

    path = mean_image_path(evaluation, prep)
    if path.is_file():
        return np.load(path)
    raw = prep.model_copy(update={"mean": [0.0], "std": [1.0]})
    total, count = np.zeros((prep.size, prep.size, prep.channels)), 0
    for images, _ in _batches(evaluation, raw, evaluation.run.config.train_split, batch_size):
        total += images.numpy().sum(axis=0, dtype=np.float64)
        count += int(images.shape[0])
    mean = (total / max(count, 1)).astype(np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, mean)
    return mean


def _pixel_shift(evaluation, prep):
    """(M - m) / s: what turns a batch normalised with the per-channel mean m into one with the mean image M
    subtracted instead ((x - M) / s), the std s kept."""
    import numpy as np

    channels = prep.channels
    mean = np.array(list(prep.mean) * channels if len(prep.mean) == 1 else prep.mean, np.float32)
    std = np.array(list(prep.std) * channels if len(prep.std) == 1 else prep.std, np.float32)
    return (mean_image(evaluation, prep) - mean) / std


def evaluate_views(model, evaluation, name: str, batch_size: Optional[int], base_prep, mean: str = "channel") -> dict:
    """Top-1, top-5 (more than 5 classes) and the cross-entropy of the combined posteriors (`xent`) of `model`
    (logits) under protocol `name`, over the evaluation's split: model.evaluate's keys. `mean="pixel"`: the
    training images' mean image is subtracted instead of the per-channel mean (zoo.choices.MEAN_SUBTRACTIONS)."""
    import numpy as np
    import tensorflow as tf

    from . import devices

    run = evaluation.run
    protocol, geometry = get_protocol(name), geometry_of(base_prep)
    forward = model
    if protocol.dense:
        with devices.dtype_policy(run.config.precision):
            forward = dense_form(model, run.spec, base_prep.channels)

    @tf.function(reduce_retracing=True)
    def combined(canvas):
        return posteriors(lambda x: forward(x, training=False), protocol.make_views(canvas, geometry))

    stream = canvas_stream(evaluation, protocol, geometry,
                           protocol.images_per_batch(batch_size or run.config.batch_size), base_prep)
    shift = None if mean != "pixel" else tf.constant(_pixel_shift(evaluation, canvas_prep(protocol, geometry,
                                                                                          base_prep)))
    top1 = top5 = nll = 0.0
    count = 0
    for canvas, labels in stream:
        labels = tf.argmax(labels, axis=-1, output_type=tf.int32) if labels.shape.rank == 2 else labels
        p = combined(canvas if shift is None else canvas - shift)
        labels = tf.cast(labels, tf.int32)
        top1 += float(tf.reduce_sum(tf.cast(tf.equal(tf.argmax(p, axis=-1, output_type=tf.int32), labels),
                                            tf.float64)))
        top5 += float(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, p, 5), tf.float64)))
        picked = tf.gather(p, labels, batch_dims=1)
        nll += float(tf.reduce_sum(-tf.math.log(tf.maximum(tf.cast(picked, tf.float64), np.finfo(np.float32).tiny))))
        count += int(labels.shape[0])
    if not count:
        raise ProtocolError(f"split {evaluation.split!r} of {run.config.dataset} is empty")
    scores = {"accuracy": top1 / count, "xent": nll / count}
    if run.config.classes > 5:
        scores["top5"] = top5 / count
    return scores


def views_of(name: str) -> int:
    """How many views of each image protocol `name` makes."""
    return get_protocol(name).views


# ---------------------------------------------------------------------------------------------------------------
# `zoo eval --record`: the run's record under another protocol, for `zoo table results`


def record_source(weights, name: str, *, limit: Optional[int] = None, split: Optional[str] = None,
                  mean: str = "channel") -> dict:
    """The results-store record of the run whose weights `zoo eval --protocol NAME --record` evaluates (its
    folder's metrics.json), checked before the evaluation: one line when there is none, or when the numbers would
    not stand for the run (a slice or another split; the centre crop, which the run's own record has)."""
    import json
    from pathlib import Path

    get_protocol(name)
    if name == "center":
        raise ProtocolError("--record adds a run's record under another protocol; its centre-crop record is the "
                            "one zoo train wrote")
    if limit or split:
        raise ProtocolError("--record stands for the run on its whole evaluation split: drop --limit and --split")
    if mean != "channel":
        raise ProtocolError("--record stands for the run as it was trained (its per-channel mean): drop --mean")
    path = Path(weights)
    metrics = (path if path.is_dir() else path.parent) / "metrics.json"
    if not metrics.is_file():
        raise ProtocolError(f"--record needs a run's weights (a zoo train run folder or its model.weights.h5): "
                            f"{weights} has no metrics.json beside it")
    try:
        record = json.loads(metrics.read_text())
    except (OSError, ValueError) as e:
        raise ProtocolError(f"--record: cannot read {metrics}: {' '.join(str(e).split())}") from None
    if not isinstance(record, dict) or not record.get("run_id") or not record.get("model"):
        raise ProtocolError(f"--record: {metrics} is not a run record (no run_id/model)")
    return record


def protocol_record(source: dict, result) -> dict:
    """The run's record with `result`'s test numbers (a zoo.training.evaluate.EvalResult) under its protocol:
    run id '<run id>-<protocol>', the training facts unchanged, a note saying what was measured."""
    if result.model != source.get("model") or result.dataset != source.get("dataset"):
        raise ProtocolError(f"--record: the run is {source.get('model')} on {source.get('dataset')}, the "
                            f"evaluation {result.model} on {result.dataset}")
    note = (f"test numbers: zoo eval --protocol {result.protocol} ({result.views} views per image) of run "
            f"{source['run_id']}'s weights")
    return {**source, "run_id": f"{source['run_id']}-{result.protocol}", "protocol": result.protocol,
            "test_accuracy": result.top1, "test_top5": result.top5, "test_loss": result.loss,
            "eval_split": result.split, "notes": list(source.get("notes") or []) + [note]}
