"""Max pooling's two passes, a window at a time (see :mod:`deepgrad.kernels`).

For input x (N, C, H, W), kernel (kh, kw), stride (sh, sw), padding (ph, pw) and dilation (dh, dw),
window (i, j) sees x[n, c, i·sh − ph + u·dh, j·sw − pw + v·dw] for the offsets k = u·kw + v whose
element lies inside x (the padding is never read, nor made):

    out[n, c, i, j] = x at the window's winner k,  dx[n, c, its element] += g[n, c, i, j]

The winner is PyTorch's: its kernel's loop over the elements inside, taking an element that is
greater than the maximum so far, or NaN (so the first maximum wins a tie, and a window holding NaN
gives its last NaN); a window of −inf keeps its first element inside. The backward adds each window's
gradient onto zeros in the windows' row-major order, as PyTorch's; windows that tile x write each
element once (0 + g, or 0). NumPy's path (:class:`deepgrad.ops.conv.MaxPool2d`) takes each offset
over the whole batch, a few passes an offset; here one pass reads x once. 2×2 and 3×3 kernels are
compiled with their size as a constant (the offsets' loops unrolled: 2.5x faster than a size known
only at run time). Each call takes the samples first..stop−1, so the threads can share a batch by
its samples.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def forward(x, kh, kw, sh, sw, ph, pw, dh, dw, out, winner, first, stop):  # pragma: no cover (compiled)
    """out (N, C, Ho, Wo) = each window's maximum, and ``winner`` (the same shape) its offset k, for the
    samples first..stop−1."""
    if kh == 2 and kw == 2:
        _forward(x, 2, 2, sh, sw, ph, pw, dh, dw, out, winner, first, stop)
    elif kh == 3 and kw == 3:
        _forward(x, 3, 3, sh, sw, ph, pw, dh, dw, out, winner, first, stop)
    else:
        _forward(x, kh, kw, sh, sw, ph, pw, dh, dw, out, winner, first, stop)


@njit(nogil=True, inline="always")
def _forward(x, kh, kw, sh, sw, ph, pw, dh, dw, out, winner, first, stop):  # pragma: no cover (compiled)
    ho, wo = out.shape[2], out.shape[3]
    i0, i1 = _inside(x.shape[2], kh, sh, ph, dh, ho)
    j0, j1 = _inside(x.shape[3], kw, sw, pw, dw, wo)
    for n in range(first, stop):
        for c in range(x.shape[1]):
            for i in range(ho):
                top = i * sh - ph
                a, b = (j0, j1) if i0 <= i < i1 else (wo, wo)  # the windows all inside x: [a, b)
                for j in range(a, b):
                    left = j * sw - pw
                    best, k = x[n, c, top, left], 0
                    for u in range(kh):
                        for v in range(kw):
                            value = x[n, c, top + u * dh, left + v * dw]
                            wins = (value > best) | (value != value)
                            best, k = (value, u * kw + v) if wins else (best, k)
                    out[n, c, i, j], winner[n, c, i, j] = best, k
                for e in range(wo - (b - a)):  # the others: [0, a) and [b, wo)
                    j = e if e < a else e + b - a
                    best, k = _edge_window(x[n, c], top, j * sw - pw, kh, kw, dh, dw)
                    out[n, c, i, j], winner[n, c, i, j] = best, k


@njit(nogil=True, inline="always")
def _inside(size, kernel, stride, padding, dilation, count):  # pragma: no cover (compiled)
    """The windows [first, stop) of ``count`` along an axis that lie wholly inside the input."""
    first = min(count, (padding + stride - 1) // stride)
    stop = (size - 1 - (kernel - 1) * dilation + padding) // stride + 1
    return first, max(first, min(stop, count))


@njit(nogil=True, cache=True)
def _edge_window(plane, top, left, kh, kw, dh, dw):  # pragma: no cover (compiled)
    """(the maximum, its offset k) of a window reaching past the plane (H, W): its offsets inside, from
    the first (a call of its own: the unrolled loops of the windows inside stay small)."""
    h, w = plane.shape
    u0, u1 = max(0, (dh - 1 - top) // dh), min(kh, (h - 1 - top) // dh + 1)
    v0, v1 = max(0, (dw - 1 - left) // dw), min(kw, (w - 1 - left) // dw + 1)
    best, k = plane[top + u0 * dh, left + v0 * dw], u0 * kw + v0
    for u in range(u0, u1):
        for v in range(v0, v1):
            value = plane[top + u * dh, left + v * dw]
            if value > best or value != value:
                best, k = value, u * kw + v
    return best, k


@njit(nogil=True, cache=True)
def backward(grad, winner, kh, kw, sh, sw, ph, pw, dh, dw, dx, first, stop):  # pragma: no cover (compiled)
    """dx (N, C, H, W) of the samples first..stop−1 = zeros plus each window's gradient at its winner."""
    ho, wo = grad.shape[2], grad.shape[3]
    tiles = (kh, kw) == (sh, sw) and (dh, dw) == (1, 1) and (ph, pw) == (0, 0)
    if tiles and ho * kh == dx.shape[2] and wo * kw == dx.shape[3]:  # each element in one window
        if kh == 2 and kw == 2:
            _spread(grad, winner, 2, 2, dx, first, stop)
        else:
            _spread(grad, winner, kh, kw, dx, first, stop)
        return
    zero = dx.dtype.type(0)
    for n in range(first, stop):
        dx[n] = zero
        for c in range(grad.shape[1]):
            for i in range(ho):
                for j in range(wo):
                    k = np.int64(winner[n, c, i, j])
                    dx[n, c, i * sh - ph + (k // kw) * dh, j * sw - pw + (k % kw) * dw] += grad[n, c, i, j]


@njit(nogil=True, inline="always")
def _spread(grad, winner, kh, kw, dx, first, stop):  # pragma: no cover (compiled)
    """dx = 0 + g at each tile's winner, 0 at its other elements (tiles covering dx)."""
    zero = dx.dtype.type(0)
    for n in range(first, stop):
        for c in range(grad.shape[1]):
            for i in range(grad.shape[2]):
                for u in range(kh):
                    for j in range(grad.shape[3]):
                        g, k = grad[n, c, i, j], winner[n, c, i, j]
                        for v in range(kw):
                            dx[n, c, i * kh + u, j * kw + v] = (zero + g) if k == u * kw + v else zero
