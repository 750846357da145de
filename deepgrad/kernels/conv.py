"""Convolutions (groups 1) a sample at a time, their products on NumPy's own BLAS (see :mod:`deepgrad.kernels`).

NumPy's path (:mod:`deepgrad.ops.conv`) takes a convolution tap by tap over chunks of samples: a
matmul call for each tap's product, an add for its sum, the whole batch padded and the output
copied out as arrays of their own; a few hundred calls a layer, each taking the GIL between them,
so two threads' parts wait for each other (a 16-channel layer's halves took 1.35 times as long on
two threads as alone, where two processes run them at full speed). Here one call runs a part of the
batch without the GIL. At stride 1 (:func:`correlate`):

    z = x[s] moved by (top, left) into zeros (C, height + 1, width), flattened
    wide (O, Ho·width) = Σ_{u,v} W[u, v] (O, C) · z[:, u·dh·width + v·dw :][:, : Ho·width]
    out[s] = wide's first Wo columns of each row (+ b)

each sample padded into a buffer in cache, each tap's product added into ``wide`` by the GEMM
itself (C = A·B + C: no add of its own), and the rows copied out. The weight gradient
(:func:`weight_grad`) makes the same windows of x[s] padded again (nothing of the forward is kept
but x):

    dW[u, v] += g[s] (O, Ho·Wp, 0 in the junk columns) · (z[:, u·dh·Wp + v·dw :][:, : Ho·Wp])ᵀ

Any stride (:func:`convolve`, :func:`columns_weight_grad`): each sample's im2col columns
(C·kh·kw, Ho·Wo) made in cache, out[s] = W · columns, dW += g[s] · columnsᵀ, the columns made again
in the backward.

The GEMMs are NumPy's own (:mod:`deepgrad.kernels.blas`), passed in as a ctypes function; where
they cannot be found, the convolutions take NumPy's path.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .blas import NO_TRANS, ROW_MAJOR, TRANS, gemm_for

__all__ = ["columns_weight_grad", "convolve", "correlate", "gemm_for", "weight_grad"]


@njit(nogil=True, cache=True)
def _place(source, s, z, top, left):  # pragma: no cover (compiled)
    """z = zeros with source[s] (C, H, W) moved down ``top`` rows and right ``left`` columns (either
    may be negative: the rows or columns moved out of z are dropped)."""
    z[...] = 0
    _, h, w = source.shape[1:]
    _, rows, cols = z.shape
    i0, i1, j0, j1 = max(0, -top), min(h, rows - top), max(0, -left), min(w, cols - left)
    if i1 <= i0 or j1 <= j0:
        return
    for c in range(z.shape[0]):
        # views indexed from 0: numba then drops its negative-index wraparound and the copy vectorizes
        # (64 16-channel 28×28 samples: 0.55 → 0.29 ms)
        into, source_plane = z[c, i0 + top : i1 + top, j0 + left : j1 + left], source[s, c, i0:i1, j0:j1]
        for i in range(i1 - i0):
            for j in range(j1 - j0):
                into[i, j] = source_plane[i, j]


@njit(nogil=True, cache=True)
def _rows_out(product, width, bias, out, s):  # pragma: no cover (compiled)
    """out[s, k, i, j] = product[k, i·width + j] (+ bias[k] unless bias is empty): the first Wo of each
    ``width``-long row of a sample's (O, Ho·width) product."""
    ho, wo = out.shape[2], out.shape[3]
    for k in range(out.shape[1]):
        shift = bias[k] if bias.size else 0.0
        for i in range(ho):
            for j in range(wo):
                out[s, k, i, j] = product[k, i * width + j] + shift


@njit(nogil=True, cache=True)
def correlate(gemm, x, taps, top, left, dh, dw, kw, bias, out, first, stop):  # pragma: no cover (compiled)
    """out[s] = Σ_{u,v} taps[u·kw + v] ⋆ (x[s] moved by (top, left)) (+ bias) for samples first..stop−1:
    taps (kh·kw, O, C) C-contiguous, out (N, O, Ho, Wo), the windows (u·dh, v·dw) apart."""
    o, c = taps.shape[1], taps.shape[2]
    kh = taps.shape[0] // kw
    ho, wo = out.shape[2], out.shape[3]
    height, width = ho + dh * (kh - 1), wo + dw * (kw - 1)
    length = ho * width
    z = np.empty((c, height + 1, width), x.dtype)  # a spare row: the last tap's junk columns read it
    flat = z.reshape(c, (height + 1) * width)
    wide = np.empty((o, length), x.dtype)
    for s in range(first, stop):
        _place(x, s, z, top, left)
        for t in range(kh * kw):
            start = (t // kw) * dh * width + (t % kw) * dw
            beta = 0.0 if t == 0 else 1.0
            gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, o, length, c, 1.0, taps[t].ctypes, c, flat[:, start:].ctypes,
                 flat.shape[1], beta, wide.ctypes, length)  # fmt: skip
        _rows_out(wide, width, bias, out, s)


@njit(nogil=True, cache=True)
def weight_grad(gemm, x, grad, top, left, dh, dw, kh, kw, sums, first, stop):  # pragma: no cover (compiled)
    """sums[u·kw + v] (O, C) += Σ_s g[s] · (the window (u·dh, v·dw) of x[s] padded by (top, left))ᵀ over
    samples first..stop−1, for the stride-1 convolution of x (N, C, H, W) whose output's gradient is
    grad (N, O, Ho, Wo)."""
    c, o = x.shape[1], grad.shape[1]
    ho, wo = grad.shape[2], grad.shape[3]
    height, width = ho + dh * (kh - 1), wo + dw * (kw - 1)
    length = ho * width
    z = np.empty((c, height + 1, width), x.dtype)
    flat = z.reshape(c, (height + 1) * width)
    spread = np.zeros((o, ho, width), x.dtype)  # g written out ``width`` wide: 0 in the junk columns
    spread_flat = spread.reshape(o, length)
    for s in range(first, stop):
        _place(x, s, z, top, left)
        for k in range(o):
            for i in range(ho):
                for j in range(wo):
                    spread[k, i, j] = grad[s, k, i, j]
        for t in range(kh * kw):
            start = (t // kw) * dh * width + (t % kw) * dw
            gemm(ROW_MAJOR, NO_TRANS, TRANS, o, c, length, 1.0, spread_flat.ctypes, length, flat[:, start:].ctypes,
                 flat.shape[1], 1.0, sums[t].ctypes, c)  # fmt: skip


@njit(nogil=True, cache=True)
def _columns(x, s, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, cols):  # pragma: no cover (compiled)
    """cols[(c, u, v), (i, j)] = x[s, c, i·sh + u·dh − ph, j·sw + v·dw − pw], 0 outside x: sample s's
    windows as im2col's columns (C·kh·kw, Ho·Wo)."""
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    for k in range(c):
        for u in range(kh):
            for v in range(kw):
                row = (k * kh + u) * kw + v
                for i in range(ho):
                    r = i * sh + u * dh - ph
                    for j in range(wo):
                        q = j * sw + v * dw - pw
                        cols[row, i * wo + j] = x[s, k, r, q] if 0 <= r < h and 0 <= q < w else 0.0


@njit(nogil=True, cache=True)
def convolve(gemm, x, matrix, kh, kw, sh, sw, ph, pw, dh, dw, bias, out, first, stop):  # pragma: no cover (compiled)
    """out[s] (O, Ho, Wo) = matrix (O, C·kh·kw) · sample s's columns (+ bias) for samples first..stop−1:
    any stride, padding and dilation, the columns made in cache and never kept."""
    o, depth = matrix.shape
    ho, wo = out.shape[2], out.shape[3]
    length = ho * wo
    cols = np.empty((depth, length), x.dtype)
    product = np.empty((o, length), x.dtype)
    for s in range(first, stop):
        _columns(x, s, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, cols)
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, o, length, depth, 1.0, matrix.ctypes, depth, cols.ctypes, length, 0.0,
             product.ctypes, length)  # fmt: skip
        _rows_out(product, wo, bias, out, s)


@njit(nogil=True, cache=True)
def columns_weight_grad(gemm, x, grad, kh, kw, sh, sw, ph, pw, dh, dw, sums, first, stop):  # pragma: no cover
    """sums (O, C·kh·kw) += Σ_s g[s] (O, Ho·Wo) · (sample s's columns)ᵀ over samples first..stop−1,
    the columns made again in cache."""
    o, depth = sums.shape
    ho, wo = grad.shape[2], grad.shape[3]
    length = ho * wo
    cols = np.empty((depth, length), x.dtype)
    g = np.empty((o, length), x.dtype)
    for s in range(first, stop):
        _columns(x, s, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, cols)
        for k in range(o):
            for i in range(ho):
                for j in range(wo):
                    g[k, i * wo + j] = grad[s, k, i, j]
        gemm(ROW_MAJOR, NO_TRANS, TRANS, o, depth, length, 1.0, g.ctypes, length, cols.ctypes, length, 1.0,
             sums.ctypes, depth)  # fmt: skip
