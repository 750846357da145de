"""Tensor factories: zeros, ones, full, arange, and random tensors from a seeded generator."""

import numpy as np

from . import backend
from .random import default_generator
from .tensor import Tensor, _check_can_require_grad


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _leaf(data, requires_grad):
    out = Tensor._wrap(data)
    if requires_grad:
        _check_can_require_grad(data.dtype, "factory")
        out.requires_grad = True
    return out


def _dtype(dtype):
    return backend.get_default_dtype() if dtype is None else np.dtype(dtype)


def zeros(*shape, dtype=None, requires_grad=False):
    return _leaf(np.zeros(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    return _leaf(np.ones(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False):
    return _leaf(np.full(_shape((shape,)), fill_value, dtype=_dtype(dtype)), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return _leaf(np.zeros_like(t.data, dtype=dtype), requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return _leaf(np.ones_like(t.data, dtype=dtype), requires_grad)


def arange(start, stop=None, step=1, dtype=None):
    """Like numpy.arange; integer arguments give int64, floats the default dtype."""
    if dtype is None and all(isinstance(v, int) for v in (start, stop or 0, step)):
        dtype = np.int64
    return Tensor._wrap(np.arange(start, stop, step, dtype=_dtype(dtype)))


def randn(*shape, dtype=None, generator=None, requires_grad=False):
    """Standard normal samples from ``generator`` (the default generator if None)."""
    rng = generator or default_generator()
    return _leaf(rng.standard_normal(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def rand(*shape, dtype=None, generator=None, requires_grad=False):
    """Uniform samples in [0, 1) from ``generator`` (the default generator if None)."""
    rng = generator or default_generator()
    return _leaf(rng.random(_shape(shape), dtype=_dtype(dtype)), requires_grad)
