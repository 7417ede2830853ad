"""The user's image as pixels: decode a file or an upload (Pillow), downscale a huge one (said so), or take an
embedded sample. What the network is then fed is the weights' `zoo.preprocess.Preprocessing`, one place for
`zoo explain`, `zoo predict` and `zoo.build(weights=...)` alike."""

from __future__ import annotations

import io
import os
from typing import Optional

import numpy as np

from ..errors import ZooError

MAX_PIXELS = 4096 * 4096  # larger images are downscaled on load (said so on the page), never refused
MAX_DECODE_PIXELS = 20000 * 20000  # beyond this PIL refuses to decode (a decompression bomb)


class ImageError(ZooError, ValueError):
    """A file that is not an image (or cannot be read as one)."""


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
