"""Reductions: sum, mean, max/min (amax semantics), var/std, argmax/argmin.

Each takes PyTorch's ``dim``/``keepdim`` and NumPy's ``axis``/``keepdims``
as aliases. Backward broadcasts the gradient back over the reduced axes.
"""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from ..backend import Array
from ..tensor import Dims, Function, Tensor
from .arguments import wrap_dim


def sum_over(axes: tuple[int, ...], *arrays: Array, keepdims: bool = False) -> Array:
    """Σ over ``axes`` of the elementwise product of ``arrays`` (of one array: its sum).

    For the per-channel sums of fused ops (batch norm statistics and gradients, conv biases).
    ndarray.sum is fast when the last axis is kept (rows added to rows) but runs at a third of
    np.einsum's speed when the reduced axes include the contiguous last ones (Σ over N, H, W of NCHW
    data); einsum also sums a product without storing it. Its float32 rounding is that of a
    vectorized running sum (as torch.sum's) rather than NumPy's pairwise summation. One host array
    summed over the batch axis and every axis after the channels (a batch norm's or a bias's
    gradient) takes :func:`batch_sum` instead.
    """
    x = arrays[0]
    if len(arrays) == 1 and axes == _BATCH_AXES[: x.ndim - 1] and len(x):
        return batch_sum(x, keepdims)
    if len(arrays) == 1 and x.ndim - 1 not in axes:
        return x.sum(axis=axes, keepdims=keepdims)
    subscripts, kept_shape = _einsum_plan(x.shape, axes, len(arrays), keepdims)
    total = np.einsum(subscripts, *arrays)
    return total if kept_shape is None else total.reshape(kept_shape)


_BATCH_AXES = (0,) + tuple(range(2, 32))  # axes 0, 2, 3, ...: all but the channels' axis 1


def batch_sum(x: Array, keepdims: bool = False) -> Array:
    """Σ over every axis of (N, C, ...) x but the channels': first over the batch, as a GEMV with a
    vector of ones (the BLAS: about 4x faster than NumPy's column sum), then over each channel's row."""
    n = len(x)
    ones = host_ones(n, x.dtype) if type(x) is np.ndarray else backend.get_array_module(x).ones(n, dtype=x.dtype)
    total = ones @ x.reshape(n, -1)
    if x.ndim > 2:
        total = total.reshape(x.shape[1], -1).sum(axis=1)
    return total.reshape((1, x.shape[1]) + (1,) * (x.ndim - 2)) if keepdims else total


@functools.lru_cache(maxsize=64)
def host_ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only NumPy vector of n ones of ``dtype``, made once: :func:`batch_sum`'s GEMV operand
    (a new one each call cost a third of a small batch norm's sum)."""
    vector = np.ones(n, dtype=dtype)
    vector.flags.writeable = False
    return vector


@functools.lru_cache(maxsize=256)
def _einsum_plan(shape, axes, operands, keepdims):
    """(einsum subscripts summing ``operands`` arrays of ``shape`` over ``axes``, e.g. "ab,ab->b";
    the result's shape with the summed axes kept as 1, or None without keepdims)."""
    letters = "abcdefghijklmnopqrstuvwxyz"[: len(shape)]
    kept = "".join(letter for i, letter in enumerate(letters) if i not in axes)
    kept_shape = tuple(1 if i in axes else size for i, size in enumerate(shape)) if keepdims else None
    return ",".join([letters] * operands) + "->" + kept, kept_shape


def reduction_axes(
    x: Tensor | Array, dim: Dims | None, keepdim: bool, axis: Dims | None, keepdims: bool | None, op: str
) -> tuple[tuple[int, ...] | None, bool]:
    """Resolve the dim/axis aliases to (a tuple of axes or None, keepdim)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: pass either dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    if dim is None:
        return None, bool(keepdim)
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    axes = [wrap_dim(d, x.shape, op, wrap_scalar=True) for d in dims]  # a 0-d tensor takes 0 and -1, as PyTorch
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: dim {dim!r} names an axis twice")
    if x.ndim == 0:
        return None, bool(keepdim)
    return tuple(axes), bool(keepdim)


def expand_reduced(grad: Array, shape: tuple[int, ...], axes: tuple[int, ...] | None, keepdim: bool) -> Array:
    """Broadcast the gradient of a reduction back to the input ``shape`` (a read-only view)."""
    if not keepdim and axes is not None:
        grad = np.expand_dims(grad, axes)
    return np.broadcast_to(grad, shape)


def _count(shape, axes):
    if axes is None:
        return math.prod(shape)
    return math.prod([shape[a] for a in axes])


class Sum(Function):
    """out = Σ x over axes;  dx = g broadcast back"""

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x):
        self.shape = x.shape
        return np.sum(x, axis=self.axes, keepdims=self.keepdim)

    def backward(self, grad):
        return (expand_reduced(grad, self.shape, self.axes, self.keepdim),)


class Mean(Function):
    """out = Σ x / n over axes;  dx = g / n broadcast back"""

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x):
        self.shape = x.shape
        return np.mean(x, axis=self.axes, keepdims=self.keepdim)

    def backward(self, grad):
        n = _count(self.shape, self.axes)
        return (expand_reduced(grad / n, self.shape, self.axes, self.keepdim),)


class Extremum(Function):
    """out = max (or min) over axes; the gradient is shared evenly between tied
    extremal elements (PyTorch's amax/amin)."""

    def __init__(self, axes, keepdim, reduce):
        self.axes, self.keepdim, self.reduce = axes, keepdim, reduce

    def forward(self, x):
        if x.size == 0:
            raise ValueError("cannot reduce an empty tensor")
        self.x = x
        self.out = self.reduce(x, axis=self.axes, keepdims=True)
        if self.keepdim:
            return self.out
        if self.axes is None:
            return self.out.reshape(())
        return np.squeeze(self.out, axis=self.axes)

    def backward(self, grad):
        hit = self.x == self.out
        count = np.sum(hit, axis=self.axes, keepdims=True, dtype=grad.dtype)  # an int count would promote float32
        if not self.keepdim:
            grad = np.expand_dims(grad, self.axes) if self.axes is not None else grad.reshape(count.shape)
        return (hit * (grad / count),)


class Var(Function):
    """out = Σ (x − mean)² / (n − correction);  dx = g · 2 (x − mean) / (n − correction)"""

    def __init__(self, axes, keepdim, correction):
        self.axes, self.keepdim, self.correction = axes, keepdim, correction

    def forward(self, x):
        self.shape = x.shape
        self.centered = x - np.mean(x, axis=self.axes, keepdims=True)
        self.dof = builtins.max(_count(x.shape, self.axes) - self.correction, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(self.centered * self.centered, axis=self.axes, keepdims=self.keepdim) / self.dof

    def backward(self, grad):
        grad = expand_reduced(grad, self.shape, self.axes, self.keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (grad * self.centered * (2 / self.dof if self.dof else np.inf),)


class Std(Var):
    """out = √var;  dx = var's dx of g / (2·out), with 0 where out = 0 (as PyTorch: the standard
    deviation of constant values has a zero gradient, not √'s infinite one times 0 = NaN)"""

    def forward(self, x):
        self.out = np.sqrt(super().forward(x))
        return self.out

    def backward(self, grad):
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_var = grad / (2 * self.out)
        return super().backward(np.where(self.out == 0, 0, grad_var))


# ----------------------------------------------------------------------------
# Public functions


def sum(
    x: Tensor,
    dim: Dims | None = None,
    keepdim: bool = False,
    *,
    axis: Dims | None = None,  # noqa: A001
    keepdims: bool | None = None,
) -> Tensor:
    axes, keepdim = reduction_axes(x, dim, keepdim, axis, keepdims, "sum")
    return Sum(axes, keepdim)(x)


def mean(
    x: Tensor, dim: Dims | None = None, keepdim: bool = False, *, axis: Dims | None = None, keepdims: bool | None = None
) -> Tensor:
    if x.data.dtype.kind != "f":
        raise TypeError(f"mean: expected a floating tensor, got dtype {x.dtype}")
    axes, keepdim = reduction_axes(x, dim, keepdim, axis, keepdims, "mean")
    return Mean(axes, keepdim)(x)


def max(
    x: Tensor,
    dim: Dims | None = None,
    keepdim: bool = False,
    *,
    axis: Dims | None = None,  # noqa: A001
    keepdims: bool | None = None,
) -> Tensor:
    """Largest value over ``dim`` (all elements by default); ties share the gradient."""
    axes, keepdim = reduction_axes(x, dim, keepdim, axis, keepdims, "max")
    return Extremum(axes, keepdim, np.max)(x)


def min(
    x: Tensor,
    dim: Dims | None = None,
    keepdim: bool = False,
    *,
    axis: Dims | None = None,  # noqa: A001
    keepdims: bool | None = None,
) -> Tensor:
    """Smallest value over ``dim`` (all elements by default); ties share the gradient."""
    axes, keepdim = reduction_axes(x, dim, keepdim, axis, keepdims, "min")
    return Extremum(axes, keepdim, np.min)(x)


def _correction(correction: float | None, unbiased: bool | None, op: str) -> float:
    if correction is not None and unbiased is not None:
        raise TypeError(f"{op}: pass either correction or unbiased, not both")
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1 if correction is None else correction


def var(
    x: Tensor,
    dim: Dims | None = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
    unbiased: bool | None = None,
    axis: Dims | None = None,
    keepdims: bool | None = None,
) -> Tensor:
    """Variance over ``dim``; unbiased (correction=1) by default, as PyTorch."""
    return _variance(x, dim, keepdim, correction, unbiased, axis, keepdims, "var")


def std(
    x: Tensor,
    dim: Dims | None = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
    unbiased: bool | None = None,
    axis: Dims | None = None,
    keepdims: bool | None = None,
) -> Tensor:
    """Standard deviation: √var with the same arguments (a zero gradient where it is 0, as PyTorch)."""
    return _variance(x, dim, keepdim, correction, unbiased, axis, keepdims, "std")


def _variance(
    x: Tensor,
    dim: Dims | None,
    keepdim: bool,
    correction: float | None,
    unbiased: bool | None,
    axis: Dims | None,
    keepdims: bool | None,
    op: str,
) -> Tensor:
    """The Var (or Std) op for ``var`` and ``std`` (``op``, the function the user called, named in
    errors)."""
    if x.data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating tensor, got dtype {x.dtype}")
    axes, keepdim = reduction_axes(x, dim, keepdim, axis, keepdims, op)
    return (Std if op == "std" else Var)(axes, keepdim, _correction(correction, unbiased, op))(x)


def argmax(
    x: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None, keepdims: bool | None = None
) -> Tensor:
    """Index of the largest value (flattened when ``dim`` is None); not differentiable."""
    return _arg(np.argmax, x, dim, keepdim, axis, keepdims, "argmax")


def argmin(
    x: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None, keepdims: bool | None = None
) -> Tensor:
    """Index of the smallest value (flattened when ``dim`` is None); not differentiable."""
    return _arg(np.argmin, x, dim, keepdim, axis, keepdims, "argmin")


def _arg(
    reduce: Callable[..., Any],
    x: Tensor,
    dim: int | None,
    keepdim: bool,
    axis: int | None,
    keepdims: bool | None,
    op: str,
) -> Tensor:
    axes, keepdim = reduction_axes(x, dim, keepdim, axis, keepdims, op)
    if axes is not None and len(axes) != 1:
        raise ValueError(f"{op}: expected a single dim, got {axes}")
    data = x.data if isinstance(x, Tensor) else x
    out = reduce(data, axis=None if axes is None else axes[0], keepdims=keepdim)
    out = np.asarray(out) if isinstance(out, np.generic) else out
    return Tensor._wrap(out.astype(np.int64, copy=False))
