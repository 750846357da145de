"""Reading .npy arrays and .npz archives of them within bounds: the user's files of ``--data``
(:mod:`deepgrad.data.arrays`) and of ``deepgrad predict --input`` (:mod:`deepgrad.data.inputs`).

``np.load`` trusts what a file says: it allocates whatever shape a .npy header declares before
reading a byte of data, and returns a .npz member that is not a .npy file as its raw bytes, however
far they decompress. Here every header is read and checked first — against the file's size and
:data:`deepgrad.data.limits.MAX_BYTES` — and only then does NumPy read the data
(``allow_pickle=False``: an object array is refused, never unpickled). Every problem is the
caller's error type (``error``: DatasetError for ``--data``, ConfigError for ``--input``) naming
the file.
"""

from __future__ import annotations

import io
import math
import os
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterable
from types import TracebackType
from typing import IO, NamedTuple

import numpy as np

from ..errors import DeepgradError
from . import limits
from .limits import check_file, size_text

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip (as np.load tells them)

# The most a zip member's data can expand, by compression method: stored, none; deflated, 258
# bytes from one code of 2 bits (zlib's "1032:1" limit). A member declaring more is damaged.
MAX_EXPANSION = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}

# What reading a damaged file raises in NumPy, zipfile and zlib (a one-line message is made of it)
READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, struct.error, NotImplementedError)


def _limit() -> str:
    return f"{size_text(limits.MAX_BYTES)} (deepgrad.data.limits.MAX_BYTES)"


class NpyHeader(NamedTuple):
    """What a .npy header declares: shape, dtype, order, and where the data starts."""

    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    offset: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)  # Python's integers: no overflow

    @property
    def nbytes(self) -> int:
        return self.elements * self.dtype.itemsize

    def describe(self) -> str:
        return f"shape {self.shape} of {self.dtype} ({size_text(self.nbytes)})"


def read_header(handle: IO[bytes]) -> NpyHeader:
    """The header of the .npy data at ``handle``'s position, read and checked without reading more
    than the header: a ValueError saying what is wrong when it is not a .npy header, declares a
    header longer than :data:`MAX_HEADER_BYTES`, an object dtype (pickled data), a negative
    dimension, or more than :data:`MAX_BYTES` of data."""
    version = np.lib.format.read_magic(handle)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f"unknown .npy format version {version[0]}.{version[1]} (NumPy writes 1.0, 2.0 and 3.0)")
    length_format = "<H" if version == (1, 0) else "<I"
    length_bytes = handle.read(struct.calcsize(length_format))
    if len(length_bytes) < struct.calcsize(length_format):
        raise ValueError("its header is truncated")
    (length,) = struct.unpack(length_format, length_bytes)
    if length > limits.MAX_HEADER_BYTES:
        raise ValueError(
            f"its header declares {length} bytes, more than the {limits.MAX_HEADER_BYTES} of a .npy "
            "header (deepgrad.data.limits.MAX_HEADER_BYTES)"
        )
    text = handle.read(length)
    if len(text) < length:
        raise ValueError(f"its header is truncated ({len(text)} of {length} bytes)")
    offset = len(NPY_MAGIC) + 2 + len(length_bytes) + length
    if version == (3, 0):  # UTF-8 (structured dtypes' field names); 2.0 reads it when it is Latin-1 too
        text = text.decode("utf-8").encode("latin-1")
    if version == (1, 0):
        reader, prefix = np.lib.format.read_array_header_1_0, length_bytes
    else:
        reader, prefix = np.lib.format.read_array_header_2_0, struct.pack("<I", len(text))
    try:
        shape, fortran_order, dtype = reader(io.BytesIO(prefix + text), max_header_size=limits.MAX_HEADER_BYTES)
    # what NumPy's parsing of a damaged header raises besides ValueError (tokenize's TokenError: from
    # its fallback for headers written by Python 2)
    except (
        TypeError,
        KeyError,
        IndexError,
        OverflowError,
        SyntaxError,
        RecursionError,
        tokenize.TokenError,
    ) as problem:
        raise ValueError(f"its header is not a valid .npy header: {problem}") from None
    header = NpyHeader(tuple(shape), bool(fortran_order), dtype, offset)
    if dtype.hasobject:
        raise ValueError(
            f"it holds Python objects ({dtype}): pickled data, which deepgrad never unpickles; save "
            "numbers (or strings) instead"
        )
    if any(d < 0 for d in header.shape):
        raise ValueError(f"its header declares shape {header.shape}: a negative dimension")
    if header.nbytes > limits.MAX_BYTES:
        raise ValueError(f"its header declares {header.describe()}, more than the {_limit()} deepgrad reads")
    # the product of the dimensions that are not 0: NumPy computes it in 64 bits (and overflows, or
    # fails for a dimension beyond them) even when a 0 makes the array empty; and elements of no
    # size (a dtype of 0 bytes) still cost NumPy their count
    if math.prod(max(d, 1) for d in header.shape) > limits.MAX_BYTES:
        raise ValueError(
            f"its header declares shape {header.shape}: more than {limits.MAX_BYTES} elements "
            "(deepgrad.data.limits.MAX_BYTES)"
        )
    return header


def load_npy(path: str, error: type[DeepgradError], expected: str = "a .npy array") -> np.ndarray:
    """The array of the .npy file at ``path``: its header checked (see :func:`read_header`) against
    the bounds and the file's size before NumPy allocates anything. Problems are ``error`` naming
    the file."""
    check_file(path, error, expected)
    try:
        with open(path, "rb") as handle:
            if handle.read(4) in ZIP_MAGICS:
                raise error(f"cannot read {path} as a .npy array: it is a .npz archive (a zip); expected {expected}")
            handle.seek(0)
            header = read_header(handle)
            size = os.fstat(handle.fileno()).st_size
            if header.offset + header.nbytes > size:
                raise error(
                    f"cannot read {path} as a .npy array: it is truncated: its header declares "
                    f"{header.describe()}, the file holds {size_text(max(size - header.offset, 0))} of data"
                )
            handle.seek(0)
            return np.lib.format.read_array(handle, allow_pickle=False)
    except DeepgradError:
        raise
    except READ_ERRORS as problem:
        raise error(f"cannot read {path} as a .npy array: {problem}") from None


class NpzArchive:
    """A .npz archive opened for reading its arrays within bounds:

        with NpzArchive(path, DatasetError) as archive:
            arrays = archive.read(archive.keys)

    ``keys`` are the arrays' names (a member "x.npy" is the key "x"; a member that is no .npy keeps
    its name and is refused when read). :meth:`read` checks every member's header first, and the
    size of them all together against :data:`MAX_BYTES`, before reading the data of any."""

    def __init__(
        self,
        path: str,
        error: type[DeepgradError],
        expected: str = "a .npz archive of arrays",
        missing: str | None = None,
    ):
        self.path, self.error, self.expected = path, error, expected
        check_file(path, error, expected, missing)
        try:
            with open(path, "rb") as handle:
                start = handle.read(len(NPY_MAGIC))
            if start == NPY_MAGIC:
                raise error(f"{path} holds a single .npy array; expected {expected}")
            if start[:4] not in ZIP_MAGICS:
                raise error(f"cannot read {path}: it is not a .npz file (a zip archive); expected {expected}")
            self.zip = zipfile.ZipFile(path)
            self.size = os.path.getsize(path)
        except DeepgradError:
            raise
        except READ_ERRORS as problem:
            raise error(f"cannot read {path}: {problem}; expected {expected}") from None
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            key = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else info.filename
            if key in self.members:
                self.zip.close()
                raise error(
                    f"{path}: holds {key!r} twice ({self.members[key].filename} and {info.filename}); "
                    "each array needs its own name"
                )
            self.members[key] = info

    @property
    def keys(self) -> list[str]:
        return list(self.members)

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.zip.close()

    def header(self, key: str) -> NpyHeader:
        """The checked header of the array ``key``; ``error`` naming the file and the key when the
        member is not a .npy array, is encrypted, or declares too much or more than it holds."""
        info = self.members[key]
        if not info.filename.endswith(".npy"):
            raise self.error(
                f"{self.path}: {key!r} is not an array (not a .npy member); a .npz holds arrays: "
                "np.savez(FILE, x=..., y=...)"
            )
        problem = self._member_problem(info)
        if problem:
            raise self.error(f"{self.path}: cannot read key {key!r}: {problem}")
        try:
            with self.zip.open(info) as handle:
                header = read_header(handle)
        except READ_ERRORS as problem:
            raise self.error(f"{self.path}: cannot read key {key!r}: {problem}") from None
        if header.offset + header.nbytes > info.file_size:
            raise self.error(
                f"{self.path}: cannot read key {key!r}: it is truncated: its header declares "
                f"{header.describe()}, the member holds "
                f"{size_text(max(info.file_size - header.offset, 0))} of data"
            )
        return header

    def _member_problem(self, info: zipfile.ZipInfo) -> str | None:
        """What is wrong with the zip entry ``info`` before it is opened: encrypted, compressed other
        than NumPy's way, or declaring more than it can hold or than deepgrad reads."""
        if info.flag_bits & 0x1:
            return "it is encrypted"
        if info.compress_type not in MAX_EXPANSION:
            return (
                f"it is compressed with zip method {info.compress_type}; deepgrad reads members stored or "
                "deflated, as np.savez and np.savez_compressed write them"
            )
        if info.compress_size > self.size:
            return (
                f"the archive is truncated: the member declares {size_text(info.compress_size)} of compressed "
                f"data, the whole file has {size_text(self.size)}"
            )
        if info.file_size > info.compress_size * MAX_EXPANSION[info.compress_type] + 1024:
            return (
                f"it declares {size_text(info.file_size)} uncompressed from {size_text(info.compress_size)}: "
                "more than its compression can hold (a damaged archive)"
            )
        if info.file_size > limits.MAX_BYTES + limits.MAX_HEADER_BYTES + 64:
            return f"it declares {size_text(info.file_size)} uncompressed, more than the {_limit()} deepgrad reads"
        return None

    def read(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """{key: array} of ``keys``: every header checked first, and their sizes together against
        :data:`MAX_BYTES`, then the data read."""
        keys = list(keys)
        headers = {key: self.header(key) for key in keys}
        total = sum(header.nbytes for header in headers.values())
        if total > limits.MAX_BYTES:
            declared = "; ".join(f"{key}: {header.describe()}" for key, header in headers.items())
            raise self.error(
                f"{self.path}: its arrays declare {size_text(total)} in all ({declared}), more than the "
                f"{_limit()} deepgrad reads from a data file"
            )
        arrays = {}
        for key in keys:
            try:
                with self.zip.open(self.members[key]) as handle:
                    arrays[key] = np.lib.format.read_array(handle, allow_pickle=False)
            except READ_ERRORS as problem:
                raise self.error(f"{self.path}: cannot read key {key!r}: {problem}") from None
        return arrays
