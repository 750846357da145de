"""The IDX file format of MNIST-style data sets: reading, and checked downloads.

An IDX file is a big-endian header — two zero bytes, a type code (0x08 for
unsigned bytes), the number of dimensions — then one uint32 per dimension,
then the data, row-major.
"""

import gzip
import hashlib
import math
import os
import urllib.request
import uuid
import zlib

import numpy as np

from ..errors import DatasetError
from . import limits
from .limits import check_file, size_text


def read_idx(path: str) -> np.ndarray:
    """The array in an IDX file (gzipped or not), checked against its header. Only what the header
    promises is read (plus one byte to see that nothing follows), so a damaged header can neither
    make a huge allocation (more than ``limits.MAX_BYTES``, 4 GiB) nor pass with the wrong amount of data."""
    check_file(path, DatasetError, "an IDX file", missing=f"IDX file not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            magic = handle.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != 0x08:
                raise DatasetError(f"{path} is not an IDX file of unsigned bytes (bad magic number {magic.hex()})")
            dims = handle.read(4 * magic[3])
            if len(dims) < 4 * magic[3]:
                raise DatasetError(f"{path} is truncated: its header is incomplete")
            shape = tuple(int(v) for v in np.frombuffer(dims, dtype=">u4"))
            expected = math.prod(shape)  # Python's integers: a product of four uint32s cannot overflow
            if expected > limits.MAX_BYTES:
                raise DatasetError(
                    f"{path} has a damaged header: shape {shape} would be {expected} bytes, more "
                    f"than the {size_text(limits.MAX_BYTES)} deepgrad reads "
                    "(deepgrad.data.limits.MAX_BYTES)"
                )
            if opener is open and expected > os.fstat(handle.fileno()).st_size - handle.tell():
                # less than the header promises (reported below): read it without a buffer of the promised size
                data = handle.read()
            else:
                data = handle.read(expected + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"cannot read {path}: {error}") from None
    if len(data) != expected:
        raise DatasetError(
            f"{path} is truncated or corrupted: the header promises {expected} bytes of data for shape "
            f"{shape}, the file has {'more' if len(data) > expected else len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, path: str, expected_md5: str) -> None:
    """Fetch ``url`` to ``path`` atomically: written to a temporary file, MD5-checked, then renamed.

    On any failure no file is left at ``path`` (nor a partial temporary file).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # A fresh unique name opened exclusively (not mkstemp, whose files are private to the user):
    # the file gets the permissions of any other file the user creates.
    temporary = os.path.join(directory, f".download-{uuid.uuid4().hex}")
    try:
        with open(temporary, "xb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
        actual = md5(temporary)
        if actual != expected_md5:
            raise DatasetError(f"download of {url} has MD5 {actual}, expected {expected_md5}; not saved")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
