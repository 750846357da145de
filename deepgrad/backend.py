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
