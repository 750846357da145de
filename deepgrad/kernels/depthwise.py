"""A depthwise convolution's passes at stride 1, one filter a channel (see :mod:`deepgrad.kernels`).

For input x (N, C, H, W) zero-padded by (ph, pw) to z, weight w (C, 1, kh, kw) and dilation (dh, dw):

    out[n, c, i, j] = Σ_{u,v} w[c, 0, u, v] · z[n, c, i + u·dh, j + v·dw]
    dz[n, c, i + u·dh, j + v·dw] += w[c, 0, u, v] · g[n, c, i, j],  dx = dz inside the padding
    dw[c, 0, u, v] = Σ_{n,i,j} g[n, c, i, j] · z[n, c, i + u·dh, j + v·dw]

One plane (n, c) at a time, everything in buffers the size of a plane, in the core's cache: the
plane padded (with a spare row), each tap's windows of all output rows read as one run of its
flattened rows (Ho·Wp values from u·dh·Wp + v·dw, junk columns between the rows), as the NumPy
path does over the whole batch. Neither the padded input nor its gradient is ever written out.
Each call takes the samples first..stop−1, so the threads can share a batch by its samples.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .batch_norm import FASTMATH


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def forward(x, weight, ph, pw, dh, dw, out, first, stop):  # pragma: no cover (compiled)
    """out[n] (N, C, Ho, Wo) for the samples first..stop−1."""
    _, channels, height, width = x.shape
    ho, wo = out.shape[2], out.shape[3]
    kh, kw = weight.shape[2], weight.shape[3]
    wp = wo + dw * (kw - 1)
    padded = np.zeros((ho + dh * (kh - 1) + 1, wp), x.dtype)  # the borders stay 0
    flat = padded.ravel()
    length = ho * wp
    total = np.empty(length, out.dtype)  # the plane's output, Wp wide
    for n in range(first, stop):
        for c in range(channels):
            padded[ph : ph + height, pw : pw + width] = x[n, c]
            total[:] = 0
            for u in range(kh):
                for v in range(kw):
                    tap, start = weight[c, 0, u, v], u * dh * wp + v * dw
                    window = flat[start : start + length]
                    for m in range(length):
                        total[m] += tap * window[m]
            for i in range(ho):
                out[n, c, i, :] = total[i * wp : i * wp + wo]


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def backward(grad, x, weight, ph, pw, dh, dw, dx, sums, first, stop):  # pragma: no cover (compiled)
    """For the samples first..stop−1: dx[n] (N, C, H, W) unless dx has no elements, and Σ g·z-window
    added to sums[c, u, v] (float64, (C, kh, kw)) unless it has none; each plane's products are
    summed in the data's dtype, the planes' sums in float64."""
    _, channels, height, width = x.shape
    ho, wo = grad.shape[2], grad.shape[3]
    kh, kw = weight.shape[2], weight.shape[3]
    wp = wo + dw * (kw - 1)
    padded = np.zeros((ho + dh * (kh - 1) + 1, wp), x.dtype)  # the plane, its borders 0
    flat = padded.ravel()
    dpadded = np.empty_like(padded)  # the padded plane's gradient
    dflat = dpadded.ravel()
    length = ho * wp
    spread = np.zeros(length, grad.dtype)  # the plane's g, Wp wide: 0 in the junk columns
    zero = grad.dtype.type(0)
    for n in range(first, stop):
        for c in range(channels):
            for i in range(ho):
                spread[i * wp : i * wp + wo] = grad[n, c, i, :]
            if sums.size:
                padded[ph : ph + height, pw : pw + width] = x[n, c]
                for u in range(kh):
                    for v in range(kw):
                        start = u * dh * wp + v * dw
                        window = flat[start : start + length]
                        dot = zero
                        for m in range(length):
                            dot += spread[m] * window[m]
                        sums[c, u, v] += dot
            if dx.size:
                dpadded[:, :] = 0
                for u in range(kh):
                    for v in range(kw):
                        tap, start = weight[c, 0, u, v], u * dh * wp + v * dw
                        window = dflat[start : start + length]
                        for m in range(length):
                            window[m] += tap * spread[m]
                dx[n, c] = dpadded[ph : ph + height, pw : pw + width]
