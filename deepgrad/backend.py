"""The array module and the dtype defaults.

Every op computes with NumPy's API. A CuPy array passed to a NumPy function
dispatches to CuPy through NumPy's ``__array_ufunc__``/``__array_function__``
protocols, so ops written against ``numpy`` (creating arrays with ``*_like``
from their inputs, never from a bare shape) run on either backend; only code
that creates arrays from nothing asks :func:`get_array_module`.
"""

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_default_dtype = float32


def get_default_dtype():
    """The floating dtype given to Python floats and lists (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype):
    """Set the floating dtype given to Python floats and lists; returns nothing."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default_dtype = dtype


def get_array_module(array=None):
    """The array module of ``array`` (``numpy`` for anything that is not a CuPy array)."""
    module = type(array).__module__
    if module.startswith("cupy"):
        import cupy

        return cupy
    return np


def tune_allocator():
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the OS.

    A training step frees and reallocates the same large activation and
    gradient arrays every time. By default glibc serves arrays above a
    (dynamic) threshold with fresh mmap()s and returns freed memory at the top
    of the heap, so each step pays for munmap and page faults again: about
    half the time of a small CNN step on NumPy. Raising the mmap threshold to
    its maximum (32 MiB) and disabling trimming keeps that memory in the heap;
    the process's memory then stays at its high-water mark, as with PyTorch's
    caching allocators. Called once when deepgrad is imported; set
    DEEPGRAD_TUNE_MALLOC=0 to leave the allocator alone. Returns whether the
    settings were applied (False off glibc).
    """
    import ctypes
    import os

    if os.environ.get("DEEPGRAD_TUNE_MALLOC", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not Linux/glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 * 1024 * 1024)) and bool(mallopt(m_trim_threshold, 1 << 30))
