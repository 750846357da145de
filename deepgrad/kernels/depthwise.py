"""A depthwise convolution's passes (see :mod:`deepgrad.kernels`): groups = input channels, m filters
a channel (output channel o = c·m + k sees input channel c alone).

For input x (N, C, H, W) zero-padded by (ph, pw) to z, weight w (C·m, 1, kh, kw), stride (sh, sw)
and dilation (dh, dw):

    out[n, o, i, j] = Σ_{u,v} w[o, 0, u, v] · z[n, o // m, i·sh + u·dh, j·sw + v·dw]
    dz[n, c, i·sh + u·dh, j·sw + v·dw] += w[o, 0, u, v] · g[n, o, i, j]  (o of c),  dx = dz inside the padding
    dw[o, 0, u, v] = Σ_{n,i,j} g[n, o, i, j] · z[n, o // m, i·sh + u·dh, j·sw + v·dw]

One plane (a sample's input channel) at a time, padded into a buffer in the core's cache, with
its m output planes and their gradients: the padded input and its gradient are never written
out. At stride 1 a tap reads its windows of all output rows as one run of the padded plane
flattened (Ho·Wp values from u·dh·Wp + v·dw, junk columns between the rows), as NumPy's path
does; strided, a row at a time. Each call takes the samples first..stop−1, so the threads can
share a batch by its samples.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .batch_norm import FASTMATH


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def forward(x, weight, padding, stride, dilation, out, first, stop):  # pragma: no cover (compiled)
    """out[n] (N, C·m, Ho, Wo) for the samples first..stop−1."""
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    _, channels, height, width = x.shape
    outputs, ho, wo = out.shape[1], out.shape[2], out.shape[3]
    kh, kw, wp = weight.shape[2], weight.shape[3], width + 2 * pw
    padded = np.zeros((height + 2 * ph + 1, wp), x.dtype)  # its borders stay 0; a spare row for the runs
    flat = padded.ravel()
    by_runs = sh == 1 and sw == 1
    length = ho * wp if by_runs else wo
    total = np.empty(length, out.dtype)  # an output plane Wp wide (by runs), or an output row
    m = outputs // channels
    for n in range(first, stop):
        for c in range(channels):
            padded[ph : ph + height, pw : pw + width] = x[n, c]
            for o in range(c * m, c * m + m):
                if by_runs:
                    total[:] = 0
                    for u in range(kh):
                        for v in range(kw):
                            tap, start = weight[o, 0, u, v], u * dh * wp + v * dw
                            window = flat[start : start + length]
                            for t in range(length):
                                total[t] += tap * window[t]
                    for i in range(ho):
                        out[n, o, i, :] = total[i * wp : i * wp + wo]
                    continue
                for i in range(ho):
                    total[:] = 0
                    for u in range(kh):
                        row = padded[i * sh + u * dh]
                        for v in range(kw):
                            tap, shift = weight[o, 0, u, v], v * dw
                            for j in range(wo):
                                total[j] += tap * row[shift + j * sw]
                    out[n, o, i, :] = total


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def backward(grad, x, weight, padding, stride, dilation, dx, sums, first, stop):  # pragma: no cover (compiled)
    """For the samples first..stop−1: dx[n] (N, C, H, W) unless dx has no elements, and Σ g·z-window
    added to sums[o, u, v] (float64, (C·m, kh, kw)) unless it has none; each plane's products are
    summed in the data's dtype, the planes' sums in float64."""
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    _, channels, height, width = x.shape
    outputs, ho, wo = grad.shape[1], grad.shape[2], grad.shape[3]
    kh, kw, wp = weight.shape[2], weight.shape[3], width + 2 * pw
    padded = np.zeros((height + 2 * ph + 1, wp), x.dtype)  # the plane, its borders 0
    flat = padded.ravel()
    dpadded = np.empty_like(padded)  # the padded plane's gradient
    dflat = dpadded.ravel()
    by_runs = sh == 1 and sw == 1
    length = ho * wp
    spread = np.zeros(length, grad.dtype)  # an output plane's g Wp wide, 0 in the junk columns (by runs)
    zero = grad.dtype.type(0)
    m = outputs // channels
    for n in range(first, stop):
        for c in range(channels):
            if sums.size:
                padded[ph : ph + height, pw : pw + width] = x[n, c]
            if dx.size:
                dpadded[:, :] = 0
            for o in range(c * m, c * m + m):
                g = grad[n, o]
                if by_runs:
                    for i in range(ho):
                        spread[i * wp : i * wp + wo] = g[i]
                for u in range(kh):
                    for v in range(kw):
                        tap, start, shift, dot = weight[o, 0, u, v], u * dh * wp + v * dw, v * dw, zero
                        if by_runs:
                            if sums.size:
                                window = flat[start : start + length]
                                for t in range(length):
                                    dot += spread[t] * window[t]
                            if dx.size:
                                target = dflat[start : start + length]
                                for t in range(length):
                                    target[t] += tap * spread[t]
                        else:  # a row at a time, both sums in one pass
                            for i in range(ho):
                                row, drow = padded[i * sh + u * dh], dpadded[i * sh + u * dh]
                                for j in range(wo):
                                    if sums.size:
                                        dot += g[i, j] * row[shift + j * sw]
                                    if dx.size:
                                        drow[shift + j * sw] += tap * g[i, j]
                        if sums.size:
                            sums[o, u, v] += dot
            if dx.size:
                dx[n, c] = dpadded[ph : ph + height, pw : pw + width]
