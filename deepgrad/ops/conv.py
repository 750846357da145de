"""Convolution and pooling through im2col on strided views.

im2col: the (kh, kw) windows of the padded input, read through a strided
view (no Python loop over pixels), become the columns of one matrix per
sample, (C·kh·kw, Ho·Wo), so a convolution is one batched GEMM whose result
is already in NCHW order:
    out[n, o, i, j] = Σ_{c,u,v} W[o, c, u, v] · x[n, c, i·s + u·d, j·s + v·d] + b[o].
col2im, its adjoint, adds the columns back with one vectorized add per kernel
offset (kh·kw adds). Pooling loops over the same kernel offsets.
"""

import numpy as np
from .. import backend
from ..tensor import Function
from .spread import spread


def output_size(size, kernel, stride, padding, dilation):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def windows(x, kernel, stride, dilation, out_hw):
    """A read-only view (N, C, kh, kw, Ho, Wo) of padded x: [n, c, u, v, i, j] = x[n, c, i·s + u·d, j·s + v·d]."""
    n, c = x.shape[:2]
    sn, sc, sh, sw = x.strides
    (kh, kw), (s_h, s_w), (d_h, d_w), (ho, wo) = kernel, stride, dilation, out_hw
    return backend.as_strided(
        x, (n, c, kh, kw, ho, wo), (sn, sc, sh * d_h, sw * d_w, sh * s_h, sw * s_w)
    )


def window_offsets(kernel, stride, dilation, out_hw):
    """For each kernel offset (u, v): u, v and the slices of the padded input it sees in every window."""
    (kh, kw), (s_h, s_w), (d_h, d_w), (ho, wo) = kernel, stride, dilation, out_hw
    for u in range(kh):
        for v in range(kw):
            yield u, v, (slice(None), slice(None), slice(u * d_h, u * d_h + s_h * (ho - 1) + 1, s_h),
                         slice(v * d_w, v * d_w + s_w * (wo - 1) + 1, s_w))


def col2im(cols, padded_shape, kernel, stride, dilation, out_hw):
    """Adjoint of :func:`windows`: add cols (N, C, kh, kw, Ho, Wo) back into zeros of ``padded_shape``."""
    out = np.zeros_like(cols, shape=padded_shape)
    for u, v, where in window_offsets(kernel, stride, dilation, out_hw):
        out[where] += cols[:, :, u, v]
    return out


def pad_hw(x, padding, value=0.0):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=value)


def unpad_hw(x, padding):
    ph, pw = padding
    return x[:, :, ph : x.shape[2] - ph, pw : x.shape[3] - pw]


class Conv2d(Function):
    """out = W ⋆ x + b by im2col + batched GEMM;  dW = Σₙ gₙ·colsₙᵀ,  db = Σ g,  dx = col2im(Wᵀ·g)"""

    def __init__(self, stride, padding, dilation, out_hw):
        self.stride, self.padding, self.dilation, self.out_hw = stride, padding, dilation, out_hw

    def forward(self, x, weight, bias=None):
        o, c, kh, kw = weight.shape
        n = x.shape[0]
        ho, wo = self.out_hw
        padded = pad_hw(x, self.padding)
        self.padded_shape = padded.shape
        # (N, C·kh·kw, Ho·Wo): the one copy of the windows
        view = windows(padded, (kh, kw), self.stride, self.dilation, self.out_hw)
        self.cols = view.reshape(n, c * kh * kw, ho * wo)
        self.weight = weight
        out = np.matmul(weight.reshape(o, -1), self.cols)
        if bias is not None:
            out += spread(bias[:, None], out.shape[1:])
        return out.reshape(n, o, ho, wo)

    def backward(self, grad):
        weight = self.weight
        o, c, kh, kw = weight.shape
        n = grad.shape[0]
        ho, wo = self.out_hw
        g = grad.reshape(n, o, ho * wo)
        needs = self.needs_input_grad
        dx = dweight = dbias = None
        if needs[0]:
            dx = self._input_gradient(grad, weight)
        if needs[1]:
            dweight = np.matmul(g, self.cols.transpose(0, 2, 1)).reshape((n,) + weight.shape).sum(axis=0)
        if len(needs) > 2 and needs[2]:
            dbias = g.sum(axis=(0, 2))
        return dx, dweight, dbias


    def _input_gradient(self, grad, weight):
        """dx = col2im(Wᵀ·g); for stride 1, the same as the correlation of g, padded by
        d(k−1)−p, with the flipped kernel — one im2col copy and one GEMM instead of kh·kw
        scattered adds (about 2x faster)."""
        o, c, kh, kw = weight.shape
        n = grad.shape[0]
        ho, wo = self.out_hw
        (ph, pw), (dh, dw) = self.padding, self.dilation
        full_h, full_w = dh * (kh - 1) - ph, dw * (kw - 1) - pw
        if self.stride != (1, 1) or full_h < 0 or full_w < 0:
            dcols = np.matmul(weight.reshape(o, -1).T, grad.reshape(n, o, ho * wo)).reshape(n, c, kh, kw, ho, wo)
            dpadded = col2im(dcols, self.padded_shape, (kh, kw), self.stride, self.dilation, self.out_hw)
            return unpad_hw(dpadded, self.padding)
        h, w = self.padded_shape[2] - 2 * ph, self.padded_shape[3] - 2 * pw
        padded_grad = pad_hw(grad, (full_h, full_w))
        cols = windows(padded_grad, (kh, kw), (1, 1), self.dilation, (h, w)).reshape(n, o * kh * kw, h * w)
        flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(c, o * kh * kw)
        return np.matmul(flipped, cols).reshape(n, c, h, w)


class MaxPool2d(Function):
    """out = max over each window;  dx = g routed to the first maximum of its window

    Both directions loop over the kh·kw kernel offsets, each a vectorized
    operation on a strided slice (no window array is materialized); forward
    records which offset holds each window's first maximum.
    """

    def __init__(self, kernel, stride, padding, dilation, out_hw):
        self.kernel, self.stride, self.padding, self.dilation, self.out_hw = kernel, stride, padding, dilation, out_hw

    def _offsets(self):
        return window_offsets(self.kernel, self.stride, self.dilation, self.out_hw)

    def forward(self, x):
        padded = pad_hw(x, self.padding, value=-np.inf)
        self.padded_shape = padded.shape
        index_type = np.uint8 if self.kernel[0] * self.kernel[1] <= 256 else np.int32
        out = winner = None
        for k, (_, _, where) in enumerate(self._offsets()):
            candidate = padded[where]
            if out is None:
                out, winner = candidate.copy(), np.zeros_like(candidate, dtype=index_type)
                continue
            # k only grows, so max(winner, k·[candidate > out]) is k exactly where a new maximum starts
            # (branch-free: a masked assignment is ~50x slower on random masks)
            np.maximum(winner, np.multiply(candidate > out, k, dtype=index_type), out=winner)
            np.maximum(out, candidate, out=out)
        self.winner = winner
        return out

    def backward(self, grad):
        (kh, kw), (s_h, s_w), dilation = self.kernel, self.stride, self.dilation
        tiles = (s_h, s_w) == (kh, kw) and dilation == (1, 1)  # windows tile the input: each element in one
        dpadded = (np.empty_like if tiles and self._covers_input() else np.zeros_like)(grad, shape=self.padded_shape)
        for k, (_, _, where) in enumerate(self._offsets()):
            routed = np.multiply(grad, self.winner == k, out=dpadded[where] if tiles else None)
            if not tiles:
                dpadded[where] += routed
        return (unpad_hw(dpadded, self.padding),)

    def _covers_input(self):
        (kh, kw), (ho, wo), (_, _, h, w) = self.kernel, self.out_hw, self.padded_shape
        return ho * kh == h and wo * kw == w


class AvgPool2d(Function):
    """out = mean over each window (zero padding counted);  dx = g / (kh·kw) spread over the window"""

    def __init__(self, kernel, stride, padding, out_hw):
        self.kernel, self.stride, self.padding, self.out_hw = kernel, stride, padding, out_hw

    def _offsets(self):
        return window_offsets(self.kernel, self.stride, (1, 1), self.out_hw)

    def forward(self, x):
        padded = pad_hw(x, self.padding)
        self.padded_shape = padded.shape
        total = None
        for _, _, where in self._offsets():
            total = padded[where].copy() if total is None else np.add(total, padded[where], out=total)
        total *= 1.0 / (self.kernel[0] * self.kernel[1])
        return total

    def backward(self, grad):
        share = grad * (1.0 / (self.kernel[0] * self.kernel[1]))
        dpadded = np.zeros_like(grad, shape=self.padded_shape)
        for _, _, where in self._offsets():
            dpadded[where] += share
        return (unpad_hw(dpadded, self.padding),)
