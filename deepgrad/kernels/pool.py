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
over the whole batch, a few passes an offset; here one pass reads x once. 2×2 tiles (stride 2, no
padding or dilation) are compiled with every number a constant, 3×3 kernels with their size (the
offsets' loops unrolled: 2.5x faster than a size known only at run time; the tiles' constants take
1.9 → 1.5 ms a 100×30×24×24 batch); each more such loop adds about 1.5 s to the first compile
(the forward's six, with and without winners, take about 6 s). Each call takes the samples
first..stop−1, so the threads can share a batch by its samples.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def forward(x, kh, kw, sh, sw, ph, pw, dh, dw, relu, out, winner, first, stop):  # pragma: no cover (compiled)
    """out (N, C, Ho, Wo) = each window's maximum, and ``winner`` (the same shape) its offset k, for the
    samples first..stop−1; with ``relu``, of relu(x) (x's values below 0 read as 0). An empty
    ``winner`` records none (the loops compiled without the offsets)."""
    if winner.size > 0:
        _by_shape(x, kh, kw, sh, sw, ph, pw, dh, dw, relu, out, winner, True, first, stop)
    else:
        _by_shape(x, kh, kw, sh, sw, ph, pw, dh, dw, relu, out, winner, False, first, stop)


@njit(nogil=True, inline="always")
def _by_shape(x, kh, kw, sh, sw, ph, pw, dh, dw, relu, out, winner, record, first, stop):  # pragma: no cover
    """_forward with the numbers of 2×2 tiles, or a 3×3 kernel's size, as constants (their loops unrolled)."""
    if (kh, kw, sh, sw, ph, pw, dh, dw) == (2, 2, 2, 2, 0, 0, 1, 1):  # 2×2 tiles, every number a constant
        _forward(x, 2, 2, 2, 2, 0, 0, 1, 1, relu, out, winner, record, first, stop)
    elif kh == 3 and kw == 3:
        _forward(x, 3, 3, sh, sw, ph, pw, dh, dw, relu, out, winner, record, first, stop)
    else:
        _forward(x, kh, kw, sh, sw, ph, pw, dh, dw, relu, out, winner, record, first, stop)


@njit(nogil=True, inline="always")
def _forward(x, kh, kw, sh, sw, ph, pw, dh, dw, relu, out, winner, record, first, stop):  # pragma: no cover
    ho, wo, zero = out.shape[2], out.shape[3], x.dtype.type(0)
    i0, i1 = _inside(x.shape[2], kh, sh, ph, dh, ho)
    j0, j1 = _inside(x.shape[3], kw, sw, pw, dw, wo)
    for n in range(first, stop):
        for c in range(x.shape[1]):
            for i in range(ho):
                top = i * sh - ph
                a, b = (j0, j1) if i0 <= i < i1 else (wo, wo)  # the windows all inside x: [a, b)
                for j in range(a, b):
                    left = j * sw - pw
                    best, k = _relu_if(relu, x[n, c, top, left], zero), 0
                    for u in range(kh):
                        for v in range(kw):
                            value = _relu_if(relu, x[n, c, top + u * dh, left + v * dw], zero)
                            wins = (value > best) | (value != value)
                            best, k = (value, u * kw + v) if wins else (best, k)
                    out[n, c, i, j] = best
                    if record:
                        winner[n, c, i, j] = k
                for e in range(wo - (b - a)):  # the others: [0, a) and [b, wo)
                    j = e if e < a else e + b - a
                    best, k = _edge_window(x[n, c], top, j * sw - pw, kh, kw, dh, dw, relu)
                    out[n, c, i, j] = best
                    if record:
                        winner[n, c, i, j] = k


@njit(nogil=True, inline="always")
def _inside(size, kernel, stride, padding, dilation, count):  # pragma: no cover (compiled)
    """The windows [first, stop) of ``count`` along an axis that lie wholly inside the input."""
    first = min(count, (padding + stride - 1) // stride)
    stop = (size - 1 - (kernel - 1) * dilation + padding) // stride + 1
    return first, max(first, min(stop, count))


@njit(nogil=True, cache=True)
def _edge_window(plane, top, left, kh, kw, dh, dw, relu):  # pragma: no cover (compiled)
    """(the maximum, its offset k) of a window reaching past the plane (H, W): its offsets inside, from
    the first (a call of its own: the unrolled loops of the windows inside stay small)."""
    h, w, zero = plane.shape[0], plane.shape[1], plane.dtype.type(0)
    u0, u1 = max(0, (dh - 1 - top) // dh), min(kh, (h - 1 - top) // dh + 1)
    v0, v1 = max(0, (dw - 1 - left) // dw), min(kw, (w - 1 - left) // dw + 1)
    if u0 >= u1 or v0 >= v1:  # no element inside (dilated windows can miss a narrow plane): PyTorch's −inf
        return plane.dtype.type(-np.inf), u0 * kw + v0
    best, k = _relu_if(relu, plane[top + u0 * dh, left + v0 * dw], zero), u0 * kw + v0
    for u in range(u0, u1):
        for v in range(v0, v1):
            value = _relu_if(relu, plane[top + u * dh, left + v * dw], zero)
            if value > best or value != value:
                best, k = value, u * kw + v
    return best, k


@njit(nogil=True, inline="always")
def _relu_if(relu, value, zero):  # pragma: no cover (compiled)
    """relu(value) as ReLU's op makes it (-0.0 and NaN kept) with ``relu``, else value: a select."""
    return zero if relu & (value < zero) else value


@njit(nogil=True, cache=True)
def backward(grad, winner, relu_out, kh, kw, sh, sw, ph, pw, dh, dw, dx, first, stop):  # pragma: no cover
    """dx (N, C, H, W) of the samples first..stop−1 = zeros plus each window's gradient at its winner;
    a non-empty ``relu_out`` (the forward's out, of relu(x)) then takes ReLU's gradient, dx·[relu(x) ≠ 0]:
    a winner's relu(x) is its window's out."""
    ho, wo = grad.shape[2], grad.shape[3]
    relu = relu_out.size > 0
    tiles = (kh, kw) == (sh, sw) and (dh, dw) == (1, 1) and (ph, pw) == (0, 0)
    if tiles and ho * kh == dx.shape[2] and wo * kw == dx.shape[3]:  # each element in one window
        if kh == 2 and kw == 2:
            _spread(grad, winner, relu, relu_out, 2, 2, dx, first, stop)
        else:
            _spread(grad, winner, relu, relu_out, kh, kw, dx, first, stop)
        return
    zero, h, w = dx.dtype.type(0), dx.shape[2], dx.shape[3]
    for n in range(first, stop):
        dx[n] = zero
        for c in range(grad.shape[1]):
            for i in range(ho):
                for j in range(wo):
                    k = np.int64(winner[n, c, i, j])
                    r, q = i * sh - ph + (k // kw) * dh, j * sw - pw + (k % kw) * dw
                    if 0 <= r < h and 0 <= q < w:  # a window with no element inside sends its gradient nowhere
                        dx[n, c, r, q] += grad[n, c, i, j]
        if relu:  # ReLU's gradient after the sums, as the two ops: 0·(the sum) where relu(x) = 0
            for c in range(grad.shape[1]):
                for i in range(ho):
                    for j in range(wo):
                        k = np.int64(winner[n, c, i, j])
                        r, q = i * sh - ph + (k // kw) * dh, j * sw - pw + (k % kw) * dw
                        if relu_out[n, c, i, j] == 0 and 0 <= r < h and 0 <= q < w:
                            dx[n, c, r, q] *= zero


@njit(nogil=True, inline="always")
def _spread(grad, winner, relu, relu_out, kh, kw, dx, first, stop):  # pragma: no cover (compiled)
    """dx = 0 + g at each tile's winner (times 0 where ``relu`` and its relu(x) is 0), 0 at its other
    elements (tiles covering dx)."""
    zero = dx.dtype.type(0)
    for n in range(first, stop):
        for c in range(grad.shape[1]):
            for i in range(grad.shape[2]):
                for u in range(kh):
                    for j in range(grad.shape[3]):
                        g, k = zero + grad[n, c, i, j], winner[n, c, i, j]
                        g = g * zero if relu and relu_out[n, c, i, j] == 0 else g
                        for v in range(kw):
                            dx[n, c, i * kh + u, j * kw + v] = g if k == u * kw + v else zero
