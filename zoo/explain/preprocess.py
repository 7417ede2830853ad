"""The image as the network sees it: load a user's file, then the model's evaluation protocol, step by step.

One place (`Preprocessing.for_spec`) turns a registry entry into the protocol, so that the Preprocessing object of
the weights issue can replace it: the geometry follows zoo.data.pipeline's evaluation geometry (a square image
without an eval resize is kept, zero padded for a small enlargement such as 28 -> 32, or resized; otherwise the
shorter side is resized and the centre cropped), then channels, then (x - mean) / std with the dataset's
statistics from zoo/data/catalogue.yaml (or the entry's own eval mean/std where it states them).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import ZooError

MAX_PIXELS = 4096 * 4096  # larger images are downscaled on load (said so in the steps), never refused
MAX_DECODE_PIXELS = 20000 * 20000  # beyond this PIL refuses to decode (a decompression bomb)
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # ITU-R 601 luma, as zoo.data.pipeline and tf.image.rgb_to_grayscale
EVAL_CROP_FRACTION = 0.875  # zoo.data.pipeline's: shorter side to size / 0.875 when no eval resize is given


class ImageError(ZooError, ValueError):
    """A file that is not an image (or cannot be read as one)."""


@dataclass(frozen=True)
class Step:
    """One preprocessing step: what it did and the image after it (uint8, HxWxC, for display)."""

    name: str
    detail: str
    image: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Preprocessing:
    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: Optional[int] = None
    crop: Optional[int] = None
    interpolation: str = "bilinear"
    dataset: str = ""

    @classmethod
    def for_spec(cls, spec, size: Optional[int] = None) -> "Preprocessing":
        """The registry entry's evaluation protocol with its dataset's statistics (the catalogue's)."""
        from ..data.catalogue import get_dataset

        entry = get_dataset(spec.dataset)
        mean = spec.eval.mean or entry.mean
        std = spec.eval.std or entry.std
        return cls(size=size or spec.input.size, channels=spec.input.channels, mean=tuple(mean), std=tuple(std),
                   resize=spec.eval.resize, crop=spec.eval.crop, interpolation=spec.eval.interpolation,
                   dataset=spec.dataset)

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """mean and std with one value per model channel (RGB statistics for a grey model: their luma)."""
        mean, std = np.asarray(self.mean, "float64"), np.asarray(self.std, "float64")
        if len(mean) == 3 and self.channels == 1:
            mean, std = np.array([mean @ GREY_WEIGHTS]), np.array([std @ GREY_WEIGHTS])
        if len(mean) == 1 and self.channels == 3:
            mean, std = np.repeat(mean, 3), np.repeat(std, 3)
        return mean, std

    def describe(self) -> dict:
        mean, std = self.statistics()
        return {"size": self.size, "channels": self.channels, "resize": self.resize, "crop": self.crop,
                "interpolation": self.interpolation, "dataset": self.dataset, "mean": mean.tolist(),
                "std": std.tolist(), "scale": "0-255"}

    def apply(self, image: np.ndarray) -> tuple[np.ndarray, list[Step]]:
        """uint8 HxWxC -> the model input (float32, size x size x channels) and the steps that made it."""
        steps = [Step("original", f"{image.shape[1]}x{image.shape[0]}, {image.shape[2]} channel(s)", image)]
        x = self._geometry(image.astype("float32"), steps)
        x = self._channels(x, steps)
        mean, std = self.statistics()
        normalised = ((x - mean) / std).astype("float32")
        steps.append(Step("normalise", "(x - mean) / std per channel, 0-255 scale: mean "
                          + ", ".join(f"{m:.4g}" for m in mean) + "; std " + ", ".join(f"{s:.4g}" for s in std),
                          _display(x)))
        return normalised, steps

    def _geometry(self, x: np.ndarray, steps: list[Step]) -> np.ndarray:
        h, w = x.shape[:2]
        size = self.size
        if self.resize is None and h == w:
            if h == size:
                return x
            if 0 < size - h <= h // 4:  # zoo.data.pipeline._pads: 28 -> 32 is zero padding, as LeCun padded MNIST
                before = (size - h) // 2
                x = np.pad(x, [(before, size - h - before), (before, size - h - before), (0, 0)])
                steps.append(Step("zero pad", f"{h}x{w} -> {size}x{size} (black border, as in training)",
                                  _display(x)))
                return x
            x = _resize(x, size, size, self.interpolation)
            steps.append(Step("resize", f"{h}x{w} -> {size}x{size} ({self.interpolation}, antialiased)",
                              _display(x)))
            return x
        crop = self.crop or size
        side = self.resize or round(crop / EVAL_CROP_FRACTION)
        scale = side / min(h, w)
        new_h, new_w = round(h * scale), round(w * scale)
        x = _resize(x, new_h, new_w, self.interpolation)
        steps.append(Step("resize", f"shorter side {min(h, w)} -> {side}: {w}x{h} -> {new_w}x{new_h} "
                          f"({self.interpolation}, antialiased)", _display(x)))
        top, left = (new_h - crop) // 2, (new_w - crop) // 2
        x = x[top:top + crop, left:left + crop]
        steps.append(Step("center crop", f"{crop}x{crop} from ({left}, {top})", _display(x)))
        if crop != size:
            x = _resize(x, size, size, self.interpolation)
            steps.append(Step("resize", f"{crop}x{crop} -> {size}x{size}", _display(x)))
        return x

    def _channels(self, x: np.ndarray, steps: list[Step]) -> np.ndarray:
        have = x.shape[-1]
        if have == self.channels:
            return x
        if have == 3 and self.channels == 1:
            x = (x @ np.asarray(GREY_WEIGHTS, "float32"))[..., None]
            steps.append(Step("grey", "RGB -> luma 0.2989 R + 0.5870 G + 0.1140 B", _display(x)))
            return x
        x = np.repeat(x, 3, axis=-1)
        steps.append(Step("RGB", "grey repeated into 3 channels", _display(x)))
        return x


def _resize(x: np.ndarray, height: int, width: int, interpolation: str) -> np.ndarray:
    """tf.image.resize with antialiasing, as zoo.data.pipeline resizes."""
    import tensorflow as tf

    return tf.image.resize(x[None], [height, width], method=interpolation, antialias=True)[0].numpy()


def _display(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype("uint8")


def decode_image(data: bytes, source: str = "image") -> tuple[np.ndarray, Optional[str]]:
    """Bytes of a PNG/JPEG/GIF/BMP/... -> uint8 HxWx{1,3} and a note when it was downscaled (None otherwise).

    Not an image -> ImageError naming `source`. Alpha is composited on white; palettes and 16-bit greys are
    converted by Pillow. Images over MAX_PIXELS are downscaled (aspect kept) before anything else.
    """
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_DECODE_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            note = None
            if img.width * img.height > MAX_PIXELS:
                scale = (MAX_PIXELS / (img.width * img.height)) ** 0.5
                size = (max(1, int(img.width * scale)), max(1, int(img.height * scale)))
                note = f"{source}: {img.width}x{img.height} is over {MAX_PIXELS:,} pixels; downscaled to " \
                       f"{size[0]}x{size[1]}"
                img = img.resize(size, Image.BILINEAR)
            grey = img.mode in ("1", "L", "I", "I;16", "F") or (img.mode == "P" and _palette_is_grey(img))
            if img.mode in ("RGBA", "LA", "P") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            if img.mode in ("I", "I;16", "F"):
                array = np.asarray(img, dtype="float64")
                top = 65535.0 if array.max() > 255 else 255.0
                array = np.clip(array / top * 255.0, 0, 255).astype("uint8")[..., None]
                return array, note
            array = np.asarray(img.convert("L" if grey else "RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{source}: not an image Pillow can read ({str(e).splitlines()[0] if str(e) else e!r})") \
            from None
    except Image.DecompressionBombError:
        raise ImageError(f"{source}: over {MAX_DECODE_PIXELS:,} pixels, refused (a decompression bomb?)") from None
    if array.ndim == 2:
        array = array[..., None]
    return array, note


def _palette_is_grey(img) -> bool:
    palette = img.getpalette() or []
    triples = [palette[i:i + 3] for i in range(0, len(palette), 3)]
    return all(r == g == b for r, g, b in triples)


def load_image(path: str | os.PathLike) -> tuple[np.ndarray, Optional[str]]:
    """A user's image file -> uint8 HxWxC and a downscaling note; one-line errors for a missing/non-image file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--image: no such file: {path}")
    with open(path, "rb") as f:
        return decode_image(f.read(), path)


def sample_image(index: int = 0) -> tuple[np.ndarray, str]:
    """An image to explain when none is given: test image `index` of the embedded Fashion-MNIST sample
    (in the package: nothing is downloaded)."""
    from ..data.catalogue import sample_dir
    from ..data.sources import read_idx

    images = read_idx(sample_dir() / "t10k-images-idx3-ubyte.gz")
    return images[index][..., None].astype("uint8"), f"Fashion-MNIST sample test image {index} (embedded)"
