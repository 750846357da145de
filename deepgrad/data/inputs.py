"""The inputs of ``deepgrad predict``: .npy arrays and image files, made into the model's input shape.

    x, names = read_inputs(["a.png", "b.jpg", "more/"], run.splits.input_shape)
    classes = run.predict(x).argmax(axis=1)

A ``.npy`` array is used as it is: (N,) + the training inputs' shape (one sample may come without the
batch axis), already scaled like the training data. An image file (PNG, JPEG, BMP, GIF, TIFF, WebP,
... — whatever Pillow reads; Pillow is imported only when an image is read) becomes one sample
prepared the way deepgrad's image data sets are:

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
are refused.
"""

import os
import struct
import zlib

import numpy as np

from ..errors import ConfigError

NPY_MAGIC = b"\x93NUMPY"
CHANNEL_MODES = {1: "L", 3: "RGB"}
# the files of a directory that are read (explicitly named files may be any format Pillow reads)
DIRECTORY_SUFFIXES = (".npy", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm",
                      ".pnm")


def load_inputs(paths, input_shape, invert=False):
    """The inputs in ``paths`` as one float32 array (N,) + ``input_shape``; see :func:`read_inputs`."""
    return read_inputs(paths, input_shape, invert=invert)[0]


def read_inputs(paths, input_shape, invert=False):
    """(x, names): the inputs in ``paths`` — one path or a list of them, each a .npy array, an image
    file, or a directory (its image and .npy files, in name order; other files are skipped) — as
    one float32 array (N,) + ``input_shape``, and a name per sample for printing: an image's path,
    or ``path[i]`` for row i of an array. ``invert`` (x -> 1 - x) applies to the images. A
    directory's files are those with a suffix of :data:`DIRECTORY_SUFFIXES` (not its subdirectories)."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    input_shape = tuple(int(d) for d in input_shape)
    parts, names = [], []
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


def _expand(paths):
    """The files of ``paths``: a directory's image and .npy files in name order, the others as given."""
    files = []
    for path in paths:
        path = os.fspath(path)
        if not os.path.isdir(path):
            files.append(path)
            continue
        found = [os.path.join(path, name) for name in sorted(os.listdir(path))
                 if not name.startswith(".") and os.path.splitext(name)[1].lower() in DIRECTORY_SUFFIXES
                 and os.path.isfile(os.path.join(path, name))]
        if not found:
            raise ConfigError(f"--input directory {path} has no image files or .npy arrays (read: "
                              f"{', '.join(DIRECTORY_SUFFIXES)})")
        files += found
    return files


def _is_npy(path):
    """Whether ``path`` is meant as a .npy array: its suffix, or for other names its first bytes."""
    if path.lower().endswith(".npy"):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(len(NPY_MAGIC)) == NPY_MAGIC
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None


def _read_npy(path, input_shape):
    """The .npy array at ``path`` as float32 inputs (N,) + ``input_shape``."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ConfigError(f"cannot read {path} as a .npy array: {error}") from None
    if not isinstance(x, np.ndarray):
        raise ConfigError(f"cannot read {path} as a .npy array: it is a .npz archive; give the inputs as a .npy "
                          "array or image files")
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"{path} holds {x.dtype} values; expected numbers")
    if x.shape == input_shape:
        x = x[None]
    if x.shape[1:] != input_shape:
        raise ConfigError(f"--input has shape {x.shape}; expected (N,) + {input_shape} like the training data "
                          f"(in {path})")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ConfigError(f"{path} holds NaN or infinite values (first at index "
                          f"{np.argwhere(~np.isfinite(x))[0].tolist()})")
    return x


def _image_layout(input_shape, path):
    """(channels, height, width, flat) of the model's inputs for an image; a ConfigError naming
    ``path`` when they are not images."""
    if len(input_shape) == 3 and input_shape[0] in CHANNEL_MODES:
        return input_shape + (False,)
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
    raise ConfigError(f"{path}: an image file cannot be the model's input: it takes {expected}; image files fit a "
                      "model trained on 1-channel (grayscale) or 3-channel (RGB) images (C, H, W), or on square "
                      "grayscale images flattened; give a .npy array instead")


def _pillow(path):
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ConfigError(f"reading the image {path} needs Pillow: pip install 'deepgrad[train]' (or pip install "
                          "pillow)") from None
    return Image, ImageOps


def _read_image(path, input_shape, invert):
    """The image file at ``path`` as one float32 sample of ``input_shape``, in [0, 1]."""
    channels, height, width, flat = _image_layout(input_shape, path)
    Image, ImageOps = _pillow(path)
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
            planes = _planes(image, channels, Image)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError) as error:
        raise ConfigError(f"cannot read {path} as an image (expected a .npy array or an image file Pillow reads: "
                          f"PNG, JPEG, ...): {error}") from None
    if planes[0].shape != (height, width):
        resample = getattr(Image, "Resampling", Image)
        shrinking = planes[0].shape[0] >= height and planes[0].shape[1] >= width
        planes = [np.asarray(Image.fromarray(plane).resize(
            (width, height), resample.BOX if shrinking else resample.BILINEAR), dtype=np.float32)
            for plane in planes]
    x = np.clip(np.stack(planes), 0.0, 1.0)
    if invert:
        x = 1.0 - x
    return x.reshape(-1) if flat else x


def _planes(image, channels, Image):
    """The image's ``channels`` planes as float32 (H, W) arrays in [0, 1]."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):   # 16-bit grayscale (older Pillow: "I")
        pixels = np.asarray(image, dtype=np.float32)
        if image.mode == "I" and (pixels.min() < 0 or pixels.max() > 65535):
            raise ValueError(f"32-bit integer pixels ({pixels.min():.0f}..{pixels.max():.0f}) have no fixed range; "
                             "save the image with 8 or 16 bits")
        return [pixels / np.float32(65535)] * channels
    if image.mode == "F":
        raise ValueError("floating-point pixels have no fixed range; save the image with 8 or 16 bits, or give "
                         "a .npy array scaled like the training data")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    pixels = np.asarray(image.convert(CHANNEL_MODES[channels]), dtype=np.float32) / np.float32(255)
    return [pixels] if channels == 1 else [pixels[:, :, c] for c in range(channels)]
