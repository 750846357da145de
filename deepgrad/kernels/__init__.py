"""Compiled loops for passes that NumPy makes as several sweeps over memory (optional: numba).

NumPy makes each step of a formula a pass over the whole array: batch norm's forward over a
64×16×28×28 activation reads or writes 3 MB five times, and a training step holds far more than
the cache, so every pass goes to memory. A kernel here makes the same passes a piece at a time
(batch norm: a channel; a depthwise convolution: a sample's channel; a stride-1 convolution: a
sample, its products on NumPy's own BLAS, :mod:`deepgrad.kernels.blas`; max pooling: a window), in
loops numba compiles:
a piece's values (200 KB there) come from memory once and from the cache after, and a part of the
batch is one call without the GIL. The loops are the formula written out; the NumPy path beside
each is the reference, and the tests check both against PyTorch.

numba is optional (``pip install "deepgrad[fast]"``). Without it, or with ``DEEPGRAD_KERNELS=0`` in
the environment when deepgrad is imported, every op takes its NumPy path. numba is imported at the
first call that uses a kernel (about 0.3 s), and each kernel is compiled for a dtype at its first
call (about 0.5 s; numba keeps the machine code on disk, so later processes load it). A numba that
is installed but fails to import (one built for another NumPy, say) turns the kernels off with a
warning, once: the ops take their NumPy paths, and ``dg.config()["kernels"]`` says why.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from types import ModuleType

import numpy as np

ENABLED = os.environ.get("DEEPGRAD_KERNELS", "1") != "0"

_loaded: dict[str, ModuleType | None] = {}
_failure: str | None = None  # why the kernels could not be imported, once they could not


def numba_installed() -> bool:
    """Whether numba can be imported (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def load(name: str) -> ModuleType | None:
    """The kernel module ``deepgrad.kernels.<name>``, imported at the first call; None when kernels
    are off (``DEEPGRAD_KERNELS=0``) or numba is not installed."""
    if not ENABLED or _failure is not None:
        return None
    if name not in _loaded:
        _loaded[name] = _import(name) if numba_installed() else None
    return _loaded[name]


def for_array(name: str, x: object) -> ModuleType | None:
    """:func:`load`'s kernel module for a NumPy array ``x`` of float32 or float64; None for anything
    else (arrays on a device, other dtypes), where the op takes its NumPy path."""
    if type(x) is not np.ndarray or x.dtype not in DTYPES:
        return None
    return load(name)


DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what the kernels are compiled for


def _import(name: str) -> ModuleType | None:
    """``deepgrad.kernels.<name>``, or None (and one warning) when numba is installed but fails to import."""
    global _failure
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except Exception as error:  # numba raises ImportError, or others, for a NumPy or LLVM it does not support
        _failure = f"{type(error).__name__}: {error}"
        warnings.warn(
            f"deepgrad's compiled kernels are off: numba is installed but failed to import ({_failure}); "
            "the ops take their NumPy paths (DEEPGRAD_KERNELS=0 turns the kernels off without this warning)",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def describe() -> str:
    """What :func:`load` gives, in words (for ``dg.config()``)."""
    if not ENABLED:
        return "off (DEEPGRAD_KERNELS=0)"
    if not numba_installed():
        return 'off (numba is not installed: pip install "deepgrad[fast]")'
    if _failure is not None:
        return f"off (numba failed to import: {_failure})"
    from importlib.metadata import version

    from .blas import gemm_for

    if gemm_for(np.dtype(np.float32)) is None:
        return f"numba {version('numba')} (NumPy's OpenBLAS not found: convolutions on NumPy's paths)"
    return f"numba {version('numba')}"
