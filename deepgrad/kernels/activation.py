"""Activations' passes in one loop (see :mod:`deepgrad.kernels`)."""

from __future__ import annotations

from numba import njit


@njit(nogil=True, cache=True)
def relu_grad(y, grad, out):  # pragma: no cover (compiled)
    """out = g · [y ≠ 0] over flat arrays, in one pass where NumPy makes two (the mask, then the
    product): the same bits, g times 1 or 0."""
    one, zero = y.dtype.type(1), y.dtype.type(0)
    for k in range(y.size):
        out[k] = grad[k] * (one if y[k] != 0 else zero)
