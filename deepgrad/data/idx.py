"""The IDX file format of MNIST-style data sets: reading, and checked downloads.

An IDX file is a big-endian header — two zero bytes, a type code (0x08 for
unsigned bytes), the number of dimensions — then one uint32 per dimension,
then the data, row-major.
"""

import gzip
import hashlib
import os
import urllib.request
import uuid

import numpy as np

from ..errors import DatasetError


def read_idx(path):
    """The array in an IDX file (gzipped or not), checked against its header."""
    if not os.path.exists(path):
        raise DatasetError(f"IDX file not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DatasetError(f"cannot read {path}: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated: its header is incomplete")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) if shape else 1
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path} is truncated or corrupted: the header promises {expected} bytes of data for shape "
            f"{shape}, the file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url, path, expected_md5):
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
