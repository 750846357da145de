"""Convolution and pooling through im2col on strided views.

im2col: every (kh, kw) window of the padded input becomes one row of a
matrix, read through a strided view (no Python loop over pixels), so a
convolution is one GEMM:  out[n, o, i, j] = Σ_{c,u,v} W[o, c, u, v] · x[n, c, i·s + u·d, j·s + v·d] + b[o].
col2im, its adjoint, adds the rows back with one vectorized add per kernel
offset (kh·kw adds).
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..tensor import Function


def output_size(size, kernel, stride, padding, dilation):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def windows(x, kernel, stride, dilation, out_hw):
    """A read-only view (N, C, Ho, Wo, kh, kw) of the windows of padded x (N, C, H, W)."""
    n, c = x.shape[:2]
    sn, sc, sh, sw = x.strides
    (kh, kw), (s_h, s_w), (d_h, d_w), (ho, wo) = kernel, stride, dilation, out_hw
    return as_strided(
        x,
        shape=(n, c, ho, wo, kh, kw),
        strides=(sn, sc, sh * s_h, sw * s_w, sh * d_h, sw * d_w),
        writeable=False,
    )


def col2im(cols, padded_shape, kernel, stride, dilation, out_hw):
    """Adjoint of :func:`windows`: add cols (N, C, Ho, Wo, kh, kw) back into an array of padded_shape."""
    out = np.zeros(padded_shape, dtype=cols.dtype)
    (kh, kw), (s_h, s_w), (d_h, d_w), (ho, wo) = kernel, stride, dilation, out_hw
    for u in range(kh):
        for v in range(kw):
            out[:, :, u * d_h : u * d_h + s_h * ho : s_h, v * d_w : v * d_w + s_w * wo : s_w] += cols[..., u, v]
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
    """out = W ⋆ x + b by im2col + GEMM;  dW = gᵀ·cols,  db = Σ g,  dx = col2im(g·W)"""

    def __init__(self, stride, padding, dilation, out_hw):
        self.stride, self.padding, self.dilation, self.out_hw = stride, padding, dilation, out_hw

    def forward(self, x, weight, bias=None):
        o, c, kh, kw = weight.shape
        n = x.shape[0]
        ho, wo = self.out_hw
        padded = pad_hw(x, self.padding)
        self.padded_shape = padded.shape
        # (N, Ho, Wo, C, kh, kw) rows: one copy of the windows, contiguous for the GEMM
        cols = windows(padded, (kh, kw), self.stride, self.dilation, self.out_hw).transpose(0, 2, 3, 1, 4, 5)
        self.cols = cols.reshape(n * ho * wo, c * kh * kw)
        self.weight = weight
        out = self.cols @ weight.reshape(o, -1).T
        if bias is not None:
            out += bias
        return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)

    def backward(self, grad):
        weight = self.weight
        o, c, kh, kw = weight.shape
        n = grad.shape[0]
        ho, wo = self.out_hw
        g = grad.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)
        needs = self.needs_input_grad
        dx = dweight = dbias = None
        if needs[0]:
            dcols = (g @ weight.reshape(o, -1)).reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
            dpadded = col2im(dcols, self.padded_shape, (kh, kw), self.stride, self.dilation, self.out_hw)
            dx = unpad_hw(dpadded, self.padding)
        if needs[1]:
            dweight = (g.T @ self.cols).reshape(weight.shape)
        if len(needs) > 2 and needs[2]:
            dbias = g.sum(axis=0)
        return dx, dweight, dbias


class MaxPool2d(Function):
    """out = max over each window;  dx = g routed to the (first) maximum of its window"""

    def __init__(self, kernel, stride, padding, dilation, out_hw):
        self.kernel, self.stride, self.padding, self.dilation, self.out_hw = kernel, stride, padding, dilation, out_hw

    def forward(self, x):
        padded = pad_hw(x, self.padding, value=-np.inf)
        self.padded_shape = padded.shape
        kh, kw = self.kernel
        view = windows(padded, self.kernel, self.stride, self.dilation, self.out_hw)
        flat = view.reshape(view.shape[:4] + (kh * kw,))
        self.argmax = flat.argmax(axis=-1)
        return np.take_along_axis(flat, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, grad):
        kh, kw = self.kernel
        offsets = np.arange(kh * kw).reshape(kh, kw)
        routed = (self.argmax[..., None, None] == offsets) * grad[..., None, None]
        dpadded = col2im(routed, self.padded_shape, self.kernel, self.stride, self.dilation, self.out_hw)
        return (unpad_hw(dpadded, self.padding),)


class AvgPool2d(Function):
    """out = mean over each window (zero padding counted);  dx = g / (kh·kw) spread over the window"""

    def __init__(self, kernel, stride, padding, out_hw):
        self.kernel, self.stride, self.padding, self.out_hw = kernel, stride, padding, out_hw

    def forward(self, x):
        padded = pad_hw(x, self.padding)
        self.padded_shape = padded.shape
        view = windows(padded, self.kernel, self.stride, (1, 1), self.out_hw)
        return view.mean(axis=(4, 5))

    def backward(self, grad):
        kh, kw = self.kernel
        spread = np.broadcast_to((grad / (kh * kw))[..., None, None], grad.shape + (kh, kw))
        dpadded = col2im(spread, self.padded_shape, self.kernel, self.stride, (1, 1), self.out_hw)
        return (unpad_hw(dpadded, self.padding),)
