"""Elementwise passes that NumPy makes as several (see :mod:`deepgrad.kernels`).

``add_relu``: out = max(a + b, 0), the sum and the ReLU in one pass (NumPy's path: the sum written
out, then read again for the ReLU), a residual block's end. Each call takes the flat elements
first..stop−1, so the threads can share the arrays.
"""

from __future__ import annotations

from numba import njit


@njit(nogil=True, cache=True)
def add_relu(a, b, out, first, stop):  # pragma: no cover (compiled)
    """out[i] = a[i] + b[i], or 0 where that is below 0 (ReLU's op: -0.0 and NaN kept), for the flat
    (1-D) arrays' elements first..stop−1."""
    zero = out.dtype.type(0)
    a, b, out = a[first:stop], b[first:stop], out[first:stop]
    for i in range(out.size):  # indices from 0: numba drops negative-index wraparound, and the loop vectorizes
        total = a[i] + b[i]
        out[i] = zero if total < zero else total
