"""`Preprocessing`: what a set of weights expects its images to look like, as data, and the function that makes
them so.

    prep = Preprocessing(size=224, channels=3, resize=256, crop=224, mode="caffe")   # keras' VGG/ResNet weights
    x = prep(images)           # uint8 or float 0-255 images, numpy or tensors, one (H, W[, C]) or a batch, any size
    ds = ds.map(lambda x, y: (prep(x), y))                                          # the same object in tf.data

Order of work, the training pipeline's (zoo/data/pipeline.py) for evaluation: channels (grey <-> RGB: luma weights
down, copies up; fewer channels first so grey is resized once), geometry (shorter side to `resize`, center crop
`crop`, resize to `size`; without `resize`: fit to size - 2 * pad and zero-pad, as LeNet-5's 28 -> 32), channel
order (keras' "caffe" weights want BGR), then (x - mean) / std on the 0-255 scale. Keras' three `preprocess_input`
modes are these numbers:

    caffe  BGR, mean (103.939, 116.779, 123.68), std 1        (VGG16/19, ResNet50/101/152)
    torch  RGB, (x / 255 - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)
           ==  (x - 255 * mean) / (255 * std)                 (DenseNet121/169/201)
    tf     RGB, x / 127.5 - 1                                 ==  (x - 127.5) / 127.5

The schema is light (pydantic, no TensorFlow): the registry validates every weights entry's preprocessing at load;
TensorFlow is imported only when images are prepared.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, Optional

from pydantic import Field, model_validator

from .choices import ChannelOrder, Interpolation, KerasPreprocessMode
from .schema import Strict

__all__ = ["Preprocessing", "Step", "KERAS_MODES", "GREY_WEIGHTS"]

GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # ITU-R 601 luma, as tf.image.rgb_to_grayscale and the data pipeline

# keras.applications.imagenet_utils.preprocess_input's modes as (channel order, mean, std) on the 0-255 scale.
KERAS_MODES: dict[str, tuple[str, list[float], list[float]]] = {
    "caffe": ("bgr", [103.939, 116.779, 123.68], [1.0, 1.0, 1.0]),
    "torch": ("rgb", [0.485 * 255, 0.456 * 255, 0.406 * 255], [0.229 * 255, 0.224 * 255, 0.225 * 255]),
    "tf": ("rgb", [127.5, 127.5, 127.5], [127.5, 127.5, 127.5]),
}


class Preprocessing(Strict):
    """Images in (any size, grey or colour, 0-255), the model's input out. See the module docstring."""

    size: int = Field(gt=0, description="the model's input side (height = width)")
    channels: Literal[1, 3]
    resize: Optional[int] = Field(None, gt=0, description="shorter side resized to this, then the center crop")
    crop: Optional[int] = Field(None, gt=0, description="center crop side after `resize` (default: size)")
    pad: int = Field(0, ge=0, description="without `resize`: the image is fitted to size - 2*pad, then zero-padded "
                                          "by `pad` pixels each side (Fashion-MNIST's 28x28 -> LeNet's 32x32)")
    interpolation: Interpolation = "bilinear"
    mode: Optional[KerasPreprocessMode] = Field(None, description="keras' preprocess_input mode these weights "
                                                "expect; it sets channel_order, mean and std")
    channel_order: ChannelOrder = "rgb"
    mean: list[float] = Field(description="per channel (in channel_order), 0-255 scale; one value for all")
    std: list[float] = Field(description="per channel (in channel_order), 0-255 scale; one value for all")

    @model_validator(mode="before")
    @classmethod
    def _keras_mode(cls, data: Any):
        if isinstance(data, dict) and data.get("mode") in KERAS_MODES:
            order, mean, std = KERAS_MODES[data["mode"]]
            for key, value in (("channel_order", order), ("mean", mean), ("std", std)):
                if key in data and data[key] != value:
                    raise ValueError(f"{key} {data[key]} contradicts mode {data['mode']!r} ({value})")
            data = {**data, "channel_order": order, "mean": mean, "std": std}
        return data

    @model_validator(mode="after")
    def _consistent(self):
        for what, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, self.channels):
                raise ValueError(f"{what} has {len(values)} values; expected 1 or {self.channels}")
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        if self.resize is None and self.crop is not None:
            raise ValueError("crop needs resize (the shorter side the crop is taken from)")
        if self.resize is not None and self.pad:
            raise ValueError("pad applies without resize only")
        if 2 * self.pad >= self.size:
            raise ValueError(f"pad {self.pad} leaves no image in a {self.size}x{self.size} input")
        if self.channels == 1 and self.channel_order == "bgr":
            raise ValueError("a grey input has no channel order")
        return self

    # -- description ------------------------------------------------------------------------------------------

    def describe(self) -> str:
        """One line: 'shorter side 256, center crop 224, BGR, mean 103.939/116.779/123.68, std 1 (keras caffe)'."""
        if self.resize:
            geometry = f"shorter side {self.resize}, center crop {self.crop or self.size}"
            geometry += f", resized to {self.size}" if (self.crop or self.size) != self.size else ""
        elif self.pad:
            geometry = f"{self.size - 2 * self.pad}x{self.size - 2 * self.pad} padded by {self.pad} to {self.size}"
        else:
            geometry = f"resized to {self.size}x{self.size}"
        colour = "grey" if self.channels == 1 else self.channel_order.upper()
        numbers = "/".join(f"{v:g}" for v in self.mean), "/".join(f"{v:g}" for v in self.std)
        mode = f" (keras {self.mode})" if self.mode else ""
        return f"{geometry}, {colour}, (x - {numbers[0]}) / {numbers[1]} on 0-255{mode}"

    def short(self) -> str:
        """A few words for a table column: 'resize 256 crop 224, keras caffe', 'pad 2, mean/std'."""
        geometry = (f"resize {self.resize} crop {self.crop or self.size}" if self.resize
                    else f"pad {self.pad}" if self.pad else f"resize {self.size}")
        return f"{geometry}, {f'keras {self.mode}' if self.mode else 'mean/std'}"

    # -- the steps, one at a time (zoo explain's first view) --------------------------------------------------

    def steps(self, image) -> tuple[Any, list[Step]]:
        """One image (H, W) or (H, W, C), 0-255 -> (the model input (size, size, channels) as numpy float32, the
        steps that made it, each with the image as it stands after it). The operations and their order are
        __call__'s, taken one at a time (tests/test_explain.py checks that the input is __call__'s, bit for bit)."""
        import numpy as np
        import tensorflow as tf

        x = tf.convert_to_tensor(np.asarray(image))
        x = x[..., None] if x.shape.rank == 2 else x
        if x.shape.rank != 3:
            raise ValueError(f"expected one image (H, W[, C]), got shape {x.shape}")
        x = tf.cast(x, tf.float32)[None]
        steps = [Step("original", f"{x.shape[2]}x{x.shape[1]}, {x.shape[3]} channel(s)", _shown(x))]
        if x.shape[-1] == 4:
            x = x[..., :3]
            steps.append(Step("drop alpha", "RGBA -> RGB: the alpha channel is not used", _shown(x)))
        if self.channels < x.shape[-1]:
            x = self._convert_channels(x)
            steps.append(Step("grey", "RGB -> luma: 0.2989 R + 0.5870 G + 0.1140 B", _shown(x)))
        x = self._geometry_steps(x, steps)
        if self.channels > x.shape[-1]:
            x = self._convert_channels(x)
            steps.append(Step("RGB", "grey copied into 3 channels", _shown(x)))
        if self.channel_order == "bgr":
            x = x[..., ::-1]
            steps.append(Step("BGR", "channels reversed to B, G, R (what these weights were trained on)", _shown(x)))
        x = (x - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)
        numbers = "/".join(f"{v:g}" for v in self.mean), "/".join(f"{v:g}" for v in self.std)
        low, high = float(tf.reduce_min(x)), float(tf.reduce_max(x))
        steps.append(Step("normalise", f"(x - {numbers[0]}) / {numbers[1]} per channel on 0-255: values "
                          f"{low:.3g} .. {high:.3g} (shown stretched to black .. white)", _shown(x, stretch=True)))
        return x[0].numpy(), steps

    def _geometry_steps(self, x, steps: list[Step]):
        """_geometry, recording each step that changes the image."""
        import tensorflow as tf

        how = f"{self.interpolation}, antialiased"
        height, width = x.shape[1], x.shape[2]
        if self.resize is None:
            inner = self.size - 2 * self.pad
            x = self._resize(x, inner, inner)
            if (height, width) != (inner, inner):
                steps.append(Step("resize", f"{width}x{height} -> {inner}x{inner} ({how})", _shown(x)))
            if self.pad:
                x = tf.pad(x, [[0, 0], [self.pad, self.pad], [self.pad, self.pad], [0, 0]])
                steps.append(Step("zero pad", f"{inner}x{inner} -> {self.size}x{self.size}: {self.pad} black pixels "
                                  "each side", _shown(x)))
            return x
        x = self._shorter_side_to(x, self.resize)
        if (x.shape[1], x.shape[2]) != (height, width):
            steps.append(Step("resize", f"shorter side {min(height, width)} -> {self.resize}: {width}x{height} -> "
                              f"{x.shape[2]}x{x.shape[1]} ({how})", _shown(x)))
        crop = self.crop or self.size
        top, left = (x.shape[1] - crop) // 2, (x.shape[2] - crop) // 2
        x = x[:, top:top + crop, left:left + crop, :]
        steps.append(Step("center crop", f"{crop}x{crop} from ({left}, {top})", _shown(x)))
        if crop != self.size:
            x = self._resize(x, self.size, self.size)
            steps.append(Step("resize", f"{crop}x{crop} -> {self.size}x{self.size} ({how})", _shown(x)))
        return x

    # -- the work ---------------------------------------------------------------------------------------------

    def __call__(self, images):
        """The model input for `images`: one image (H, W) or (H, W, C), a batch (B, H, W, C) or of grey images
        (B, H, W) (a 3-D array is one image when it ends in 1, 3 or 4 channels), or a list of images of any
        sizes; uint8 or float on the 0-255 scale. numpy (or a list) in: a numpy float32 batch out;
        a tensor in (eager or inside tf.data): a float32 tensor out."""
        import numpy as np
        import tensorflow as tf

        if isinstance(images, (list, tuple)):
            return np.stack([self._one(tf.convert_to_tensor(np.asarray(image)))[0].numpy() for image in images])
        if isinstance(images, np.ndarray):
            return self._one(tf.convert_to_tensor(images)).numpy()
        return self._one(tf.convert_to_tensor(images))

    def _one(self, x):
        """An image or a batch as a tensor -> the batch the model takes."""
        import tensorflow as tf

        if x.shape.rank == 2 or (x.shape.rank == 3 and x.shape[-1] not in (1, 3, 4)):
            x = x[..., None]  # one grey image (H, W), or a batch of them (B, H, W): no 1-, 3- or 4-channel end
        if x.shape.rank == 3:
            x = x[None]
        if x.shape.rank != 4:
            raise ValueError(f"expected an image (H, W[, C]) or a batch (B, H, W, C), got shape {x.shape}")
        x = tf.cast(x, tf.float32)
        if x.shape[-1] == 4:  # RGBA: the colour, without the alpha channel
            x = x[..., :3]
        if self.channels < x.shape[-1]:
            x = self._convert_channels(x)
        x = self._geometry(x)
        x = self._convert_channels(x)
        if self.channel_order == "bgr":
            x = x[..., ::-1]
        mean = tf.constant(self.mean, tf.float32)
        std = tf.constant(self.std, tf.float32)
        return tf.ensure_shape((x - mean) / std, [None, self.size, self.size, self.channels])

    def _convert_channels(self, x):
        import tensorflow as tf

        have = x.shape[-1]
        if have == self.channels:
            return x
        if have == 1:
            return tf.repeat(x, self.channels, axis=-1)
        if have == 3 and self.channels == 1:
            return tf.reduce_sum(x * tf.constant(GREY_WEIGHTS, tf.float32), axis=-1, keepdims=True)
        raise ValueError(f"cannot turn {have}-channel images into {self.channels}-channel ones")

    def _resize(self, x, height, width):
        import tensorflow as tf

        if x.shape[1] == height and x.shape[2] == width:  # already that size: untouched (an exact no-op)
            return x
        return tf.image.resize(x, [height, width], method=self.interpolation, antialias=True)

    def _geometry(self, x):
        import tensorflow as tf

        if self.resize is None:
            inner = self.size - 2 * self.pad
            x = self._resize(x, inner, inner)
            return tf.pad(x, [[0, 0], [self.pad, self.pad], [self.pad, self.pad], [0, 0]]) if self.pad else x
        x = self._shorter_side_to(x, self.resize)
        crop = self.crop or self.size
        top, left = (tf.shape(x)[1] - crop) // 2, (tf.shape(x)[2] - crop) // 2
        x = x[:, top:top + crop, left:left + crop, :]
        x = tf.ensure_shape(x, [None, crop, crop, x.shape[-1]])
        return self._resize(x, self.size, self.size)

    def _shorter_side_to(self, x, side: int):
        import tensorflow as tf

        height, width = x.shape[1], x.shape[2]
        if height is not None and width is not None:  # static sizes (eager, fixed-size data): exact arithmetic
            if min(height, width) == side:
                return x
            scale = side / min(height, width)
            return self._resize(x, round(height * scale), round(width * scale))
        h, w = tf.cast(tf.shape(x)[1], tf.float32), tf.cast(tf.shape(x)[2], tf.float32)
        scale = side / tf.minimum(h, w)
        size = tf.cast(tf.round(tf.stack([h * scale, w * scale])), tf.int32)
        return tf.image.resize(x, size, method=self.interpolation, antialias=True)


class Step(NamedTuple):
    """One step of `Preprocessing.steps`: its name, what it did, and the image after it (uint8 H x W x C, for a
    person to look at)."""

    name: str
    detail: str
    image: Any


def _shown(x, stretch: bool = False):
    """The first image of a float batch as uint8 for display: 0-255 clipped, or stretched min..max (normalised
    values)."""
    import numpy as np

    values = np.asarray(x[0], dtype=np.float64)
    if stretch:
        low, high = values.min(), values.max()
        values = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
    return np.clip(np.round(values), 0, 255).astype(np.uint8)
