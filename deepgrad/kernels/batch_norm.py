"""Batch norm's training passes, one channel at a time (see :mod:`deepgrad.kernels`).

For x of shape (N, C, L) (an image batch has L = H·W), channel c's n = N·L values:

    μ = Σ x / n,  σ² = Σ (x − μ)² / n,  σ̂ = √(σ² + ε),  out = (x − μ)·(γ/σ̂) + β
    dx = (γ/σ̂)·(g − Σg/n − (x − μ)·Σ(g·(x − μ))/(n·σ̂²))

With ``relu``, the ReLU after it is made in the same loops: out = max(out, 0) (as ReLU's op: -0.0 and
NaN kept), and the backward takes its gradient g·[out ≠ 0] for g, from the output it is given.

Each sample's row is summed in the data's dtype, in an order the compiler may regroup (``reassoc``:
it adds several lanes at once), and the rows' sums in float64. Each call takes the channels
first..stop−1, so the threads can share a batch by its channels; a channel's results do not depend
on how the channels were shared.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Let the compiler regroup sums (vectorized reductions) and fuse multiply-adds; NaN and infinity
# keep their meaning (no "nnan"/"ninf").
FASTMATH = {"reassoc", "contract"}


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def forward(x, weight, bias, eps, relu, out, mean, var, inv_std, first, stop):  # pragma: no cover (compiled)
    """out = (x − μ)·(γ/σ̂) + β, then max(out, 0) with ``relu``, for channels first..stop−1 of x (N, C,
    L); writes μ, σ² (biased) and 1/σ̂ of each into ``mean``, ``var`` and ``inv_std`` (C,)."""
    n, _, length = x.shape
    count = n * length
    zero = x.dtype.type(0)
    for c in range(first, stop):
        total = 0.0
        for i in range(n):
            row = zero
            for j in range(length):
                row += x[i, c, j]
            total += row
        m = x.dtype.type(total / count)
        squares = 0.0
        for i in range(n):
            row = zero
            for j in range(length):
                d = x[i, c, j] - m
                row += d * d
            squares += row
        v = squares / count
        inv = 1.0 / np.sqrt(v + eps)
        scale, shift = x.dtype.type(weight[c] * inv), bias[c]
        for i in range(n):
            for j in range(length):
                y = (x[i, c, j] - m) * scale + shift
                out[i, c, j] = zero if relu and y < zero else y
        mean[c], var[c], inv_std[c] = m, v, inv


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def backward(grad, x, mean, inv_std, weight, out, dx, sum_grad, sum_grad_centered, first, stop):  # pragma: no cover
    """Σg and Σ(g·(x − μ)) of channels first..stop−1 into ``sum_grad`` and ``sum_grad_centered`` (C,),
    and their dx into ``dx`` (N, C, L) unless it has no elements. Given the ReLU's ``out`` (N, C, L)
    (not an empty array), g is the ReLU's gradient g·[out ≠ 0] throughout."""
    n, _, length = x.shape
    count = n * length
    zero = x.dtype.type(0)
    relu = out.size > 0
    for c in range(first, stop):
        m = mean[c]
        total, total_centered = 0.0, 0.0
        for i in range(n):
            row, row_centered = zero, zero
            for j in range(length):
                g = grad[i, c, j] if not relu or out[i, c, j] != zero else grad[i, c, j] * zero
                row += g
                row_centered += g * (x[i, c, j] - m)
            total += row
            total_centered += row_centered
        sum_grad[c], sum_grad_centered[c] = total, total_centered
        if dx.size:
            inv = inv_std[c]
            dtype = x.dtype.type
            scale = dtype(weight[c] * inv)
            k_centered, k_mean = dtype(total_centered * inv * inv / count), dtype(total / count)
            for i in range(n):
                for j in range(length):
                    g = grad[i, c, j] if not relu or out[i, c, j] != zero else grad[i, c, j] * zero
                    dx[i, c, j] = (g - (x[i, c, j] - m) * k_centered - k_mean) * scale
