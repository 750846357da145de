"""The inputs of ``deepgrad predict``: .npy arrays and image files, made into the model's input shape.

    x, names = read_inputs(["a.png", "b.jpg", "more/"], run.splits.input_shape)
    classes = run.predict(x).argmax(axis=1)

A ``.npy`` array is used as it is: (N,) + the training inputs' shape (one sample may come without the
batch axis), already scaled like the training data. An image file — PNG, JPEG, BMP, GIF, TIFF, WebP
or PGM/PPM/PNM (:data:`IMAGE_FORMATS`, read with Pillow, imported only when an image is read), of at
most :data:`deepgrad.data.limits.MAX_PIXELS` pixels — becomes one sample prepared the way deepgrad's
image data sets are:

- turned upright by its EXIF orientation; transparent parts laid over white;
- converted to grayscale when the model takes 1 channel, to RGB when it takes 3;
- resized to the training images' H×W (stretched, the aspect ratio is not kept: crop first;
  area-averaged when shrinking, bilinear otherwise);
- scaled to [0, 1]: 8-bit pixels / 255 (16-bit grayscale / 65535), as digits and MNIST are;
- flattened when the model takes flat inputs of H·H features (a square grayscale image).

The image must look like the training data: MNIST and the digits are light strokes on a black
background, so a dark-on-light drawing or scan needs ``invert=True`` (x -> 1 - x; only applied to
images, never to .npy arrays). For a model trained on your own arrays (``--data``), the images are
scaled to [0, 1] as above: that is right only when your training images were scaled so too.
Problems are :class:`ConfigError` naming the file and what was expected; NaN or infinite inputs
are refused, and so are inputs of no samples. A .npy header declaring more than
:data:`deepgrad.data.limits.MAX_BYTES`, or an image more than ``MAX_PIXELS``, is refused before
anything is allocated or decoded.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from . import limits
from .limits import check_file
from .npy import NPY_MAGIC, load_npy

if TYPE_CHECKING:
    from PIL import Image as PILImage

PathLike = str | os.PathLike[str]
CHANNEL_MODES = {1: "L", 3: "RGB"}
# the image formats read (Pillow's names): another format is refused before any of it is decoded
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
# the files of a directory that are read: .npy arrays and the suffixes of IMAGE_FORMATS
DIRECTORY_SUFFIXES = (".npy", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm")
FORMAT_NAMES = "PNG, JPEG, BMP, GIF, TIFF, WebP or PGM/PPM/PNM"
EXPECTED = f"a .npy array, an image file ({FORMAT_NAMES}) or a directory of them"


def load_inputs(paths: PathLike | Sequence[PathLike], input_shape: Sequence[int], invert: bool = False) -> np.ndarray:
    """The inputs in ``paths`` as one float32 array (N,) + ``input_shape``; see :func:`read_inputs`."""
    return read_inputs(paths, input_shape, invert=invert)[0]


def read_inputs(
    paths: PathLike | Sequence[PathLike], input_shape: Sequence[int], invert: bool = False
) -> tuple[np.ndarray, list[str]]:
    """(x, names): the inputs in ``paths`` — one path or a list of them, each a .npy array, an image
    file, or a directory (its image and .npy files, in name order; other files are skipped) — as
    one float32 array (N,) + ``input_shape``, and a name per sample for printing: an image's path,
    or ``path[i]`` for row i of an array. ``invert`` (x -> 1 - x) applies to the images. A
    directory's files are those with a suffix of :data:`DIRECTORY_SUFFIXES` (not its subdirectories)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    input_shape = tuple(int(d) for d in input_shape)
    parts: list[np.ndarray] = []
    names: list[str] = []
    for path in _expand(paths):
        if _is_npy(path):
            x = _read_npy(path, input_shape)
            parts.append(x)
            names += [f"{path}[{i}]" for i in range(len(x))]
        else:
            parts.append(_read_image(path, input_shape, invert)[None])
            names.append(path)
    if not parts:
        raise ConfigError("--input: no inputs given")
    return np.concatenate(parts), names


def _expand(paths: Sequence[PathLike]) -> list[str]:
    """The files of ``paths``: a directory's image and .npy files in name order, the others as given
    (each checked to be a regular file: not missing, a symlink loop, a pipe or a device)."""
    files = []
    for given in paths:
        path = os.fspath(given)
        if not os.path.isdir(path):
            check_file(path, ConfigError, EXPECTED)
            files.append(path)
            continue
        try:
            entries = sorted(os.listdir(path))
        except OSError as error:
            raise ConfigError(f"cannot read the --input directory {path}: {error.strerror or error}") from None
        found = [
            os.path.join(path, name)
            for name in entries
            if not name.startswith(".")
            and os.path.splitext(name)[1].lower() in DIRECTORY_SUFFIXES
            and os.path.isfile(os.path.join(path, name))
        ]
        if not found:
            raise ConfigError(
                f"--input directory {path} has no image files or .npy arrays (read: {', '.join(DIRECTORY_SUFFIXES)})"
            )
        files += found
    return files


def _is_npy(path: str) -> bool:
    """Whether ``path`` is meant as a .npy array: its suffix, or for other names its first bytes."""
    if path.lower().endswith(".npy"):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(len(NPY_MAGIC)) == NPY_MAGIC
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None


def _read_npy(path: str, input_shape: tuple[int, ...]) -> np.ndarray:
    """The .npy array at ``path`` as float32 inputs (N,) + ``input_shape``, N > 0."""
    x = load_npy(path, ConfigError, "a .npy array of inputs, or image files")
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"{path} holds {x.dtype} values; expected numbers")
    if x.shape == input_shape:
        x = x[None]
    if x.shape[1:] != input_shape:
        raise ConfigError(
            f"--input has shape {x.shape}; expected (N,) + {input_shape} like the training data (in {path})"
        )
    if len(x) == 0:
        raise ConfigError(f"{path} holds no samples (shape {x.shape}); expected at least one input")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ConfigError(
            f"{path} holds NaN or infinite values (first at index {np.argwhere(~np.isfinite(x))[0].tolist()})"
        )
    return x


def _image_layout(input_shape: tuple[int, ...], path: str) -> tuple[int, int, int, bool]:
    """(channels, height, width, flat) of the model's inputs for an image; a ConfigError naming
    ``path`` when they are not images."""
    if len(input_shape) == 3 and input_shape[0] in CHANNEL_MODES:
        channels, height, width = input_shape
        return channels, height, width, False
    if len(input_shape) == 1:
        side = int(round(input_shape[0] ** 0.5))
        if side * side == input_shape[0]:
            return 1, side, side, True
    if len(input_shape) == 3:
        expected = f"images of {input_shape[0]} channels"
    elif len(input_shape) == 1:
        expected = f"flat inputs of {input_shape[0]} features (not a square image flattened)"
    else:
        expected = f"inputs of shape {input_shape}"
    raise ConfigError(
        f"{path}: an image file cannot be the model's input: it takes {expected}; image files fit a "
        "model trained on 1-channel (grayscale) or 3-channel (RGB) images (C, H, W), or on square "
        "grayscale images flattened; give a .npy array instead"
    )


def _pillow(path: str) -> tuple[Any, Any]:
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ConfigError(
            f"reading the image {path} needs Pillow: pip install 'deepgrad[train]' (or pip install pillow)"
        ) from None
    return Image, ImageOps


def _read_image(path: str, input_shape: tuple[int, ...], invert: bool) -> np.ndarray:
    """The image file at ``path`` as one float32 sample of ``input_shape``, in [0, 1]. Only the
    formats of :data:`IMAGE_FORMATS` are opened, and an image of more than ``limits.MAX_PIXELS``
    pixels is refused from its header, before it is decoded."""
    channels, height, width, flat = _image_layout(input_shape, path)
    Image, ImageOps = _pillow(path)
    try:
        with warnings.catch_warnings():  # Pillow's own bomb warning: the bound below is deepgrad's
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path, formats=IMAGE_FORMATS)
        with opened:
            _check_pixels(path, opened.width, opened.height)
            image = ImageOps.exif_transpose(opened)
            image.load()
            planes = _planes(image, channels, Image)
    except Image.DecompressionBombError:  # beyond Pillow's own bound (MAX_IMAGE_PIXELS), which is checked first
        raise ConfigError(
            f"{path}: the image is more than the {limits.MAX_PIXELS} pixels deepgrad reads "
            "(deepgrad.data.limits.MAX_PIXELS); scale it down first"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(
            f"cannot read {path} as an image (expected a .npy array or an image file: {FORMAT_NAMES}): {error}"
        ) from None
    if planes[0].shape != (height, width):
        resample = getattr(Image, "Resampling", Image)
        shrinking = planes[0].shape[0] >= height and planes[0].shape[1] >= width
        planes = [
            np.asarray(
                Image.fromarray(plane).resize((width, height), resample.BOX if shrinking else resample.BILINEAR),
                dtype=np.float32,
            )
            for plane in planes
        ]
    x = np.clip(np.stack(planes), 0.0, 1.0)
    if invert:
        x = 1.0 - x
    return x.reshape(-1) if flat else x


def _check_pixels(path: str, width: int, height: int) -> None:
    """A ConfigError naming ``path`` when a ``width`` x ``height`` image is more than ``limits.MAX_PIXELS``."""
    if width * height > limits.MAX_PIXELS:
        raise ConfigError(
            f"{path}: the image is {width}x{height} = {width * height} pixels, more than the "
            f"{limits.MAX_PIXELS} pixels deepgrad reads (deepgrad.data.limits.MAX_PIXELS); scale it "
            "down first"
        )


def _planes(image: PILImage.Image, channels: int, Image: Any) -> list[np.ndarray]:
    """The image's ``channels`` planes as float32 (H, W) arrays in [0, 1]."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit grayscale (older Pillow: "I")
        pixels = np.asarray(image, dtype=np.float32)
        if image.mode == "I" and (pixels.min() < 0 or pixels.max() > 65535):
            raise ValueError(
                f"32-bit integer pixels ({pixels.min():.0f}..{pixels.max():.0f}) have no fixed range; "
                "save the image with 8 or 16 bits"
            )
        return [pixels / np.float32(65535)] * channels
    if image.mode == "F":
        raise ValueError(
            "floating-point pixels have no fixed range; save the image with 8 or 16 bits, or give "
            "a .npy array scaled like the training data"
        )
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    pixels = np.asarray(image.convert(CHANNEL_MODES[channels]), dtype=np.float32) / np.float32(255)
    return [pixels] if channels == 1 else [pixels[:, :, c] for c in range(channels)]
