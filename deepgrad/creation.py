"""Tensor factories: zeros, ones, full, arange, and random tensors from a seeded generator.

Each takes ``device=``: the array is made on the host and moved there, so
random tensors are the same on every device for a given generator state.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from . import backend
from .backend import Array, DeviceLike, DTypeLike
from .random import default_generator
from .tensor import Size, Tensor, _check_can_require_grad


def _shape(shape: tuple[Size, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return cast("tuple[int, ...]", tuple(shape))


def _leaf(data: Array, requires_grad: bool, device: DeviceLike | None = None) -> Tensor:
    if device is not None:
        data = backend.to_device(data, device)
    out = Tensor._wrap(data)
    if requires_grad:
        _check_can_require_grad(data.dtype, "factory")
        out.requires_grad = True
    return out


def _dtype(dtype: DTypeLike | None) -> np.dtype[Any]:
    return backend.get_default_dtype() if dtype is None else np.dtype(dtype)


def zeros(
    *shape: Size, dtype: DTypeLike | None = None, requires_grad: bool = False, device: DeviceLike | None = None
) -> Tensor:
    return _leaf(np.zeros(_shape(shape), dtype=_dtype(dtype)), requires_grad, device)


def ones(
    *shape: Size, dtype: DTypeLike | None = None, requires_grad: bool = False, device: DeviceLike | None = None
) -> Tensor:
    return _leaf(np.ones(_shape(shape), dtype=_dtype(dtype)), requires_grad, device)


def full(
    shape: Size,
    fill_value: float,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
    device: DeviceLike | None = None,
) -> Tensor:
    return _leaf(np.full(_shape((shape,)), fill_value, dtype=_dtype(dtype)), requires_grad, device)


def zeros_like(t: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``t``'s shape, on ``t``'s device."""
    return _leaf(np.zeros_like(t.data, dtype=dtype), requires_grad)


def ones_like(t: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Ones of ``t``'s shape, on ``t``'s device."""
    return _leaf(np.ones_like(t.data, dtype=dtype), requires_grad)


def arange(
    start: float,
    stop: float | None = None,
    step: float = 1,
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
) -> Tensor:
    """Like numpy.arange; integer arguments give int64, floats the default dtype."""
    if dtype is None and all(isinstance(v, int) for v in (start, stop or 0, step)):
        dtype = np.int64
    return _leaf(np.arange(start, stop, step, dtype=_dtype(dtype)), False, device)


def randn(
    *shape: Size,
    dtype: DTypeLike | None = None,
    generator: np.random.Generator | None = None,
    requires_grad: bool = False,
    device: DeviceLike | None = None,
) -> Tensor:
    """Standard normal samples from ``generator`` (the default generator if None)."""
    rng = generator or default_generator()
    return _leaf(rng.standard_normal(_shape(shape), dtype=_dtype(dtype)), requires_grad, device)


def rand(
    *shape: Size,
    dtype: DTypeLike | None = None,
    generator: np.random.Generator | None = None,
    requires_grad: bool = False,
    device: DeviceLike | None = None,
) -> Tensor:
    """Uniform samples in [0, 1) from ``generator`` (the default generator if None)."""
    rng = generator or default_generator()
    return _leaf(rng.random(_shape(shape), dtype=_dtype(dtype)), requires_grad, device)
