"""What deepgrad's file readers accept: a regular file where a file is expected (:func:`check_file`),
and bounds on what a data file, an input array or an image may make deepgrad allocate. Each reader
checks what a file *declares* (an IDX or .npy header, a zip member's size, an image's width and
height) against these before it reads or decodes anything, so a damaged or hostile file is refused
in one line instead of exhausting the memory."""

from __future__ import annotations

import os
import stat

from ..errors import DeepgradError

# The arrays of one data file: an IDX file, a .npy array, or all the arrays of a .npz archive
# together. 4 GiB is about 20 times MNIST as float32 (its 70k images are 220 MB so, 55 MB as bytes) —
# more than a NumPy-on-the-CPU library trains on in reasonable time — and still allocatable on an
# ordinary machine; a header declaring more is a damaged or hostile file.
MAX_BYTES = 1 << 32

# The header of a .npy array (the Python literal describing its dtype and shape): NumPy's own
# limit for files it does not trust (numpy.load's max_header_size); np.save writes ~128 bytes.
MAX_HEADER_BYTES = 10_000

# The pixels (width x height) of one image file read by `deepgrad predict`: 2**26 = 8192 x 8192,
# a 48-megapixel photo fits. Decoded as RGBA it is 256 MiB (and its float32 planes as much again),
# so a small file declaring a huge image (a "decompression bomb") is refused before decoding.
MAX_PIXELS = 1 << 26


def size_text(count: int) -> str:
    """``count`` bytes for a message: "4 GiB", "1.5 TiB", "123 bytes"."""
    if count < 1024:
        return f"{count} bytes"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        value /= 1024
        if value < 1024 or unit == "EiB":
            break
    return f"{value:.3g} {unit}"


def check_file(path: str, error: type[DeepgradError], expected: str, missing: str | None = None) -> None:
    """Raise ``error`` unless ``path`` is a regular file (symlinks followed): missing (``missing``,
    or "cannot read PATH: No such file or directory"), a directory, a symlink loop, a device, pipe
    or socket (which would block or never end) — each naming ``path`` and what was ``expected``."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(missing or f"cannot read {path}: No such file or directory") from None
    except (OSError, ValueError) as problem:  # a symlink loop, no permission, a name too long or with NUL
        reason = getattr(problem, "strerror", None) or str(problem)
        raise error(f"cannot read {path}: {reason}; expected {expected}") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path} is a directory; expected {expected}")
    if not stat.S_ISREG(mode):
        raise error(f"{path} is not a regular file (a device, pipe or socket); expected {expected}")
