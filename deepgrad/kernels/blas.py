"""The GEMMs of the BLAS NumPy links, as ctypes functions the compiled kernels call without the GIL.

NumPy's wheels carry OpenBLAS (``libscipy_openblas64_``, symbols ``scipy_cblas_sgemm64_`` and the
like, 64-bit integers). threadpoolctl finds the library NumPy loaded (and sets its threads, as
:mod:`deepgrad.threads` does); its ``cblas_sgemm`` and ``cblas_dgemm`` are looked up under the
prefixes and suffixes OpenBLAS builds use, their integers as wide as its configuration says. Any
other BLAS (MKL, Accelerate), or no threadpoolctl: :func:`gemm_for` gives None, and the ops that
would call it take NumPy's path. Only ctypes and threadpoolctl: no numba here.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any

import numpy as np

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS's enums


def _numpy_openblas() -> tuple[ctypes.CDLL, str, str] | None:
    """The OpenBLAS library NumPy links, and its symbols' prefix and suffix ("scipy_", "64_" for the
    wheels' ILP64 build), or None."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    # NumPy's own copy: in numpy.libs (Linux, Windows) or numpy/.dylibs (macOS) beside numpy itself
    numpy_files = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(np.__file__))), "numpy")
    for library in threadpool_info():
        path = os.path.realpath(library.get("filepath") or "")
        if library.get("internal_api") != "openblas" or not path.startswith(numpy_files):
            continue
        handle = ctypes.CDLL(path)
        for prefix in ("scipy_", ""):
            for suffix in ("64_", ""):
                if hasattr(handle, f"{prefix}cblas_sgemm{suffix}"):
                    return handle, prefix, suffix
    return None


@functools.cache
def _gemms() -> dict[np.dtype, Any]:
    """cblas_sgemm and cblas_dgemm of NumPy's OpenBLAS as ctypes functions, by dtype (empty without it)."""
    found = _numpy_openblas()
    if found is None:
        return {}
    handle, prefix, suffix = found
    get_config = getattr(handle, f"{prefix}openblas_get_config{suffix}", None)
    if get_config is None:
        return {}
    get_config.restype = ctypes.c_char_p
    integer = ctypes.c_int64 if b"USE64BITINT" in get_config() else ctypes.c_int32
    gemms = {}
    for dtype, letter, scalar in ((np.float32, "s", ctypes.c_float), (np.float64, "d", ctypes.c_double)):
        signature = ctypes.CFUNCTYPE(
            None,
            *(ctypes.c_int,) * 3,  # order, transpose A, transpose B
            *(integer,) * 3,  # M, N, K
            scalar,  # alpha
            ctypes.c_void_p,
            integer,  # A, lda
            ctypes.c_void_p,
            integer,  # B, ldb
            scalar,  # beta
            ctypes.c_void_p,
            integer,  # C, ldc
        )
        gemms[np.dtype(dtype)] = signature((f"{prefix}cblas_{letter}gemm{suffix}", handle))
    return gemms


def gemm_for(dtype: np.dtype | type) -> Any:
    """NumPy's BLAS's GEMM for arrays of ``dtype`` (float32 or float64): a ctypes function
    gemm(order, transpose A, transpose B, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) computing
    C = alpha·op(A)·op(B) + beta·C; None where NumPy's OpenBLAS cannot be found."""
    return _gemms().get(np.dtype(dtype))
