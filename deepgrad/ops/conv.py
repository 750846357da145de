"""Convolution and pooling through im2col on strided views.

im2col: the (kh, kw) windows of the padded input, read through a strided
view (no Python loop over pixels), become the columns of one matrix per
sample, (C·kh·kw, Ho·Wo), so a convolution is one batched GEMM whose result
is already in NCHW order:
    out[n, o, i, j] = Σ_{c,u,v} W[o, c, u, v] · x[n, c, i·s + u·d, j·s + v·d] + b[o].
col2im, its adjoint, adds the columns back with one vectorized add per kernel
offset (kh·kw adds). Pooling loops over the same kernel offsets.

At stride 1 with TAP_MIN_CHANNELS input channels or more no columns are built:
the padded input, flattened per channel to Hp·Wp, holds each kernel offset's
windows of all output rows as one contiguous run (:func:`tap_offsets`), so the
correlation is a sum of kh·kw GEMMs of (O, C) tap matrices with shifted views of
the input itself, accumulated chunk of samples by chunk while they are in cache;
with few channels, a kernel row's kw shifted views are stacked first, one GEMM
of depth kw·C a row (:func:`correlate_rows_into`). Columns j ≥ Wo of each output row are junk
(windows that wrap around the row's end): they are dropped, and gradients give
them zero weight. A 16- or 32-channel 3×3 layer runs 25-30 % faster than through
copied columns (the copy moved 9 times the input through memory for a GEMM that
reads it once per output channel). A strided convolution's input gradient is such
a correlation too, one for each phase of the input's rows and columns
(:func:`input_grad_by_phases`). With numba, the compiled kernels
(:mod:`deepgrad.kernels.conv`) make the same products a sample at a time, without
the GIL: NumPy's calls here are the reference, and the path without numba.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import numpy as np

from .. import backend, kernels, parallel
from ..backend import Array
from ..tensor import Function, Tensor
from .activation import ReLU
from .arguments import IntPair, check_shape, int_pair
from .reduction import sum_over
from .spread import spread

# Taps are used at stride 1 from this many input channels on: below, a tap's GEMM is too thin (its K is
# the channel count) and the window copy is faster (measured: the 1-channel stems of the presets).
TAP_MIN_CHANNELS = 8
# On the CPU, taps are accumulated for this many bytes' worth of samples' outputs at a time (two arrays of
# them: the sum and the tap being added), which stay in cache; other devices take the whole batch. Smaller
# chunks mean more Python between GEMMs: at 256 KiB, two threads queue on the GIL and gain nothing.
TAP_CHUNK_BYTES = 1 << 20
# A kernel row's taps are stacked into one GEMM (:func:`correlate_rows_into`) up to this depth
# (kw·C). One thread, paired runs: a 16-channel 28×28 3×3 layer's forward takes 0.87 of its time
# with them stacked (depth 48); a 32-channel 14×14 one 1.04 (depth 96), and the input gradient of
# resnet-small's 16→32 stride-2 layer, whose phases have rows of 2 taps, 1.05 (depth 64): one
# tap's GEMM of 32 channels is deep enough already.
STACKED_MAX_DEPTH = 48
# A strided convolution's input gradient is made phase by phase (by taps) from this many elements
# of it on: below, the phases' Python costs more than the scatter-adds it saves (64×8×8×8: 0.32
# against 0.25 ms; 64×16×28×28: 3.2 against 4.6 ms).
PHASES_MIN_ELEMENTS = 1 << 16


def output_size(size, kernel, stride, padding, dilation, ceil_mode=False):
    """How many windows fit along an axis: ⌊(size + 2p − d(k−1) − 1)/s⌋ + 1, or with ``ceil_mode``
    (pooling) ⌈…⌉ + 1 less a last window that would start past the input and its left padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    count = -(-span // stride) + 1
    return count - 1 if (count - 1) * stride >= size + padding else count


def overhang(size, kernel, stride, padding, dilation, count):
    """How far ``count`` windows reach past the padded input's end (a ceil_mode pooling's last
    window may), 0 when they do not."""
    return max(0, (count - 1) * stride + dilation * (kernel - 1) + 1 - (size + 2 * padding))


def windows(x, kernel, stride, dilation, out_hw):
    """A read-only view (N, C, kh, kw, Ho, Wo) of padded x: [n, c, u, v, i, j] = x[n, c, i·s + u·d, j·s + v·d]."""
    n, c = x.shape[:2]
    sn, sc, sh, sw = x.strides
    (kh, kw), (s_h, s_w), (d_h, d_w), (ho, wo) = kernel, stride, dilation, out_hw
    return backend.as_strided(x, (n, c, kh, kw, ho, wo), (sn, sc, sh * d_h, sw * d_w, sh * s_h, sw * s_w))


def tap_offsets(kernel, dilation, width):
    """Where each kernel offset (u, v)'s windows start in a padded input flattened to rows of
    ``width``: u·dh·width + v·dw, in (u, v) row-major order. From there, Ho·width consecutive
    elements are the windows of all Ho output rows (and the junk columns at each row's end)."""
    (kh, kw), (d_h, d_w) = kernel, dilation
    return [u * d_h * width + v * d_w for u in range(kh) for v in range(kw)]


def row_matrices(matrix, channels, kernel):
    """For each kernel row u, the (O, kw·C) slice of an (O, C·kh·kw) weight matrix, its columns in
    (v, c) order: the weights of the row's kw taps side by side."""
    (kh, kw), o = kernel, matrix.shape[0]
    per_tap = matrix.reshape(o, channels, kh, kw)
    return [per_tap[:, :, u, :].transpose(0, 2, 1).reshape(o, kw * channels) for u in range(kh)]


def sample_chunks(array, bytes_per_sample):
    """Consecutive slices of ``array``'s samples, TAP_CHUNK_BYTES' worth each on the CPU (the whole
    batch on other devices)."""
    n = len(array)
    size = n
    if backend.device_of(array) is backend.CPU:
        size = max(1, min(n, TAP_CHUNK_BYTES // bytes_per_sample))
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def correlate_rows_into(out, flat, rows, row_offsets, shifts):
    """out[n, o, l] = Σ_u (rows[u] · stacked[n, :, row_offsets[u] + l])[o] for out of shape (N, O, L)
    and a padded input flattened to (N, C, Hp·Wp), where stacked[n, (v, c), m] = flat[n, c, m +
    shifts[v]]: a kernel row's kw taps side by side along the channels, so each row is one GEMM of
    depth kw·C (OpenBLAS runs a 16-channel layer's depth-48 GEMMs 10-15 % faster than nine of
    depth 16), chunk of samples by chunk, the rows' products summed in cache."""
    n, o, length = out.shape
    c = flat.shape[1]
    if len(shifts) * c > STACKED_MAX_DEPTH:  # each tap its own GEMM of depth C
        rows = [row[:, v * c : (v + 1) * c] for row in rows for v in range(len(shifts))]
        row_offsets = [offset + shift for offset in row_offsets for shift in shifts]
        shifts = [0]
    kw = len(shifts)
    span = row_offsets[-1] + length
    chunks = sample_chunks(out, (2 * o * length + kw * c * span) * out.itemsize)
    size = chunks[0].stop if chunks else 0
    scratch = np.empty_like(out, shape=(size, o, length))
    stacked = None if kw == 1 else np.empty_like(out, shape=(size, kw * c, span))
    for chunk in chunks:
        b = chunk.stop - chunk.start
        if stacked is None:  # one tap a row: the input itself
            taps = flat[chunk]
        else:
            taps = stacked[:b]
            for v, shift in enumerate(shifts):
                taps[:, v * c : (v + 1) * c] = flat[chunk, :, shift : shift + span]
        total, term = out[chunk], scratch[:b]
        for u, (row, offset) in enumerate(zip(rows, row_offsets)):
            np.matmul(row, taps[:, :, offset : offset + length], out=total if u == 0 else term)
            if u:
                total += term


def tap_weight_grad(padded, grad, weight_shape, dilation, with_bias, spread=None):
    """dW[o, c, u, v] = Σ_{n,i,j} g[n, o, i, j] · padded[n, c, i + u·dh, j + v·dw] (stride 1): for
    each tap, a GEMM of g (written out to the Ho·Wp columns, 0 in the junk) with the input's shifted
    view, chunk by chunk; each part of the batch sums its own, and the parts' sums are added in order.
    Returns (dW, db), db = Σ_{n,i,j} g[n, o, i, j] summed the same way ``with_bias`` (else None).
    ``spread``: g so written out already (N, O, Ho·Wp), a view of the input gradient's padded g."""
    n, o, ho, wo = grad.shape
    c, wp = padded.shape[1], padded.shape[3]
    length = ho * wp
    offsets = tap_offsets(weight_shape[2:], dilation, wp)
    flat = padded.reshape(n, c, padded.shape[2] * wp)

    def part_sum(rows):
        if spread is not None:
            spread_grad = spread[rows]
        else:
            spread_grad = np.empty_like(grad, shape=(len(flat[rows]), o, ho, wp), order="C")
            spread_grad[..., :wo] = grad[rows]
            spread_grad[..., wo:] = 0  # the junk columns
            spread_grad = spread_grad.reshape(len(spread_grad), o, length)
        total = np.zeros_like(grad, shape=(len(offsets), o, c))
        for chunk in sample_chunks(spread_grad, (o + c) * length * grad.itemsize):
            g, x = spread_grad[chunk], flat[rows][chunk]
            for k, offset in enumerate(offsets):
                total[k] += np.matmul(g, x[:, :, offset : offset + length].transpose(0, 2, 1)).sum(axis=0)
        return total, (sum_over((0, 2, 3), grad[rows]) if with_bias else None)

    total, dbias = part_sums(parallel.map_parts(part_sum, parallel.parts(padded, n * (o + c) * length)))
    return total.transpose(1, 2, 0).copy().reshape(weight_shape), dbias


def tap_weight_grad_by_kernels(compiled, x, grad, weight_shape, padding, dilation, with_bias):
    """:func:`tap_weight_grad` of x itself by the ``compiled`` kernels (:func:`convolution_kernels`),
    which pad x sample by sample again: each tap's (O, C) sum in the data's dtype, by the GEMMs' own
    accumulation, over x's samples."""
    module, gemm = compiled
    o, c, kh, kw = weight_shape
    sums = np.zeros_like(x, shape=(kh * kw, o, c))
    module.weight_grad(gemm, x, grad.astype(x.dtype, copy=False), *padding, *dilation, kh, kw, sums, 0, len(x))
    dweight = sums.reshape(kh, kw, o, c).transpose(2, 3, 0, 1).copy()
    return dweight, (sum_over((0, 2, 3), grad) if with_bias else None)


def part_sums(sums):
    """The batch parts' (dW, db or None) sums, each added up in the parts' order."""
    return tuple(None if terms[0] is None else parallel.ordered_sum(terms) for terms in zip(*sums))


def window_offsets(kernel, stride, dilation, out_hw):
    """For each kernel offset (u, v): u, v and the slices of the padded input it sees in every window."""
    (kh, kw), (s_h, s_w), (d_h, d_w), (ho, wo) = kernel, stride, dilation, out_hw
    for u in range(kh):
        for v in range(kw):
            yield (
                u,
                v,
                (
                    slice(None),
                    slice(None),
                    slice(u * d_h, u * d_h + s_h * (ho - 1) + 1, s_h),
                    slice(v * d_w, v * d_w + s_w * (wo - 1) + 1, s_w),
                ),
            )


def col2im(cols, out, kernel, stride, dilation, out_hw):
    """Adjoint of :func:`windows`: add cols (N, C, kh, kw, Ho, Wo) into the padded input's ``out``."""
    for u, v, where in window_offsets(kernel, stride, dilation, out_hw):
        out[where] += cols[:, :, u, v]


def pad_hw(x, padding, value=0.0, extra=(0, 0)):
    """x with (ph, pw) rows and columns of ``value`` on each side of H and W and ``extra`` (eh, ew)
    more at the bottom and the right; x itself when there is nothing to add."""
    (ph, pw), (eh, ew) = padding, extra
    if not (ph or pw or eh or ew):
        return x
    n, c, h, w = x.shape
    # C order whatever x's layout: the taps read (and their gradients write) it through flat views
    out = np.full_like(x, value, shape=(n, c, h + 2 * ph + eh, w + 2 * pw + ew), order="C")
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def place_in_zeros(z, x, top, left, rows, cols):
    """z = zeros with x's first ``rows`` × ``cols`` at (top, left): each batch part writes the zeros
    around its own samples (not a whole-array memset first, then the copy)."""
    z[:, :, :top] = 0
    z[:, :, top + rows :] = 0
    z[:, :, top : top + rows, :left] = 0
    z[:, :, top : top + rows, left + cols :] = 0
    z[:, :, top : top + rows, left : left + cols] = x[:, :, :rows, :cols]


def unpad_hw(x, padding, extra=(0, 0)):
    """The inverse of :func:`pad_hw`: x's rows and columns inside the padding."""
    (ph, pw), (eh, ew) = padding, extra
    return x[:, :, ph : x.shape[2] - ph - eh, pw : x.shape[3] - pw - ew]


def convolution_kernels(x, *arrays):
    """The compiled convolution kernels (:mod:`deepgrad.kernels.conv`) and their GEMM for x and
    ``arrays`` (None or arrays of x's dtype), or None where NumPy's path serves: kernels off or numba
    missing, arrays on a device or of other dtypes, or NumPy's BLAS not found."""
    module = kernels.for_array("conv", x)
    if module is None or any(a is not None and a.dtype != x.dtype for a in arrays):
        return None
    gemm = module.gemm_for(x.dtype)
    return None if gemm is None else (module, gemm)


def correlate(x, matrix, kernel, dilation, out_hw, offset, bias=None, into=None):
    """out[n, o, i, j] = Σ_{c,u,v} matrix[o, (c, u, v)] · z[n, c, i + u·dh, j + v·dw] (+ bias[o]) (stride
    1) into ``into`` (N, O, Ho, Wo), or a new array; returns (out, z), where z is x moved down and
    right by ``offset`` (a negative offset drops x's first rows or columns) in zeros of the size the
    windows read. Taps from TAP_MIN_CHANNELS channels on (z then has a spare row at the bottom, for
    the last tap's junk columns; ``into`` may then be a strided view), else the window copy (whose
    GEMM writes a C-contiguous ``into``). The batch is split in parts, each written out, multiplied
    and given its bias on its own thread. With taps and the compiled kernels
    (:func:`convolution_kernels`), each part is one call that pads sample by sample in cache: z is None."""
    n, c = x.shape[:2]
    o, depth = matrix.shape
    (kh, kw), (d_h, d_w), (ho, wo), (top, left) = kernel, dilation, out_hw, offset
    height, width = ho + d_h * (kh - 1), wo + d_w * (kw - 1)
    by_taps = c >= TAP_MIN_CHANNELS
    compiled = convolution_kernels(x, matrix, bias, into) if by_taps else None
    if compiled is not None:  # a part of the batch a call, without the GIL; nothing padded is kept
        module, gemm = compiled
        taps = np.ascontiguousarray(matrix.reshape(o, c, kh, kw).transpose(2, 3, 0, 1)).reshape(kh * kw, o, c)
        out = np.empty_like(x, shape=(n, o, ho, wo), order="C") if into is None else into
        shift = np.empty(0, x.dtype) if bias is None else bias
        parallel.map_parts(
            lambda part: module.correlate(gemm, x, taps, top, left, d_h, d_w, kw, shift, out, part.start, part.stop),
            parallel.parts(x, n * depth * ho * width),
        )
        return out, None
    if not (into is None or by_taps or into.flags.c_contiguous):
        raise ValueError(f"correlate: a strided output view needs taps ({c} channels, {TAP_MIN_CHANNELS} at least)")
    z = np.empty_like(x, shape=(n, c, height + by_taps, width), order="C")
    x = x[:, :, max(0, -top) :, max(0, -left) :]
    top, left = max(0, top), max(0, left)
    rows, cols = min(x.shape[2], height - top), min(x.shape[3], width - left)
    out = np.empty_like(x, shape=(n, o, ho, wo), order="C") if into is None else into
    sample_bias = None if bias is None else spread(bias[:, None, None], (o, ho, wo))
    if by_taps:
        rows_of_taps = row_matrices(matrix, c, kernel)
        row_offsets, shifts = [u * d_h * width for u in range(kh)], [v * d_w for v in range(kw)]

    def correlate_part(part):
        z_part, out_part = z[part], out[part]
        b = len(z_part)
        place_in_zeros(z_part, x[part], top, left, rows, cols)
        if by_taps:
            wide = np.empty_like(out_part, shape=(b, o, ho * width))
            correlate_rows_into(wide, z_part.reshape(b, c, (height + 1) * width), rows_of_taps, row_offsets, shifts)
            out_part[...] = wide.reshape(b, o, ho, width)[..., :wo]
        else:
            columns = windows(z_part, kernel, (1, 1), dilation, out_hw).reshape(b, depth, ho * wo)
            np.matmul(matrix, columns, out=out_part.reshape(b, o, ho * wo))  # a view: out is contiguous here
        if sample_bias is not None:
            out_part += sample_bias

    parallel.map_parts(correlate_part, parallel.parts(x, n * depth * ho * width))
    return out, z


def spread_view(padded_grad, grad_shape, width):
    """g written out Wp wide, 0 in the junk columns (N, O, Ho·Wp), as a view of ``padded_grad``
    (z, offset) where the input gradient's z has rows of that width; else None."""
    if padded_grad is None or padded_grad[0] is None:  # or the kernels made the correlation
        return None
    z, (top, left) = padded_grad
    n, o, ho, wo = grad_shape
    if z.shape[3] != width or top < 0 or left < 0 or left + wo > width or top + ho >= z.shape[2]:
        return None  # rows of another width, or g not all in z with zeros after it
    start = top * width + left
    return z.reshape(n, o, z.shape[2] * width)[:, :, start : start + ho * width]


class Conv2d(Function):
    """out = W ⋆ x + b by im2col + batched GEMM;  dW = Σₙ gₙ·colsₙᵀ,  db = Σ g,  dx = col2im(Wᵀ·g)

    At stride 1 from TAP_MIN_CHANNELS input channels on, no columns are built: each pass sums one
    GEMM a kernel offset over shifted views of the padded input (kept for the backward). Every pass
    splits the batch in parts (:mod:`deepgrad.parallel`); the weight gradient adds the parts' sums.
    With ``groups`` G, the channels form G groups, each group of outputs seeing only its own group
    of inputs: every product is G products at once (:func:`by_groups`), through the columns.
    With numba (:mod:`deepgrad.kernels.conv`, :func:`convolution_kernels`), groups = 1 passes take a part of
    the batch a compiled call, a sample at a time in cache, without the GIL: the taps or the
    columns made again in the backward from x, nothing padded or copied kept. A 1×1 kernel without
    padding (groups 1) needs no windows: out[n] = W·x[n]'s pixels, a batched GEMM on x itself.
    """

    def __init__(self, stride, padding, dilation, out_hw, groups=1):
        self.stride, self.padding, self.dilation, self.out_hw, self.groups = stride, padding, dilation, out_hw, groups

    def forward(self, x, weight, bias=None):
        o, c, kh, kw = weight.shape
        n = x.shape[0]
        ho, wo = self.out_hw
        self.weight = weight
        self.input_shape = x.shape
        matrix = weight.reshape(o, -1)
        self.pointwise = (kh, kw) == (1, 1) and self.padding == (0, 0) and self.groups == 1
        if self.pointwise:
            self.x = x
            return self._pointwise_forward(x, matrix, bias).reshape(n, o, ho, wo)
        self.by_taps = self.stride == (1, 1) and c >= TAP_MIN_CHANNELS and self.groups == 1
        # the kernels (as correlate finds them) make the padded input or the columns again in the backward
        self.x, self.compiled = x, (convolution_kernels(x, matrix, bias) if self.groups == 1 else None)
        if self.by_taps:  # the backward reads the padded input again (the kernels pad x again: padded is None)
            out, self.padded = correlate(x, matrix, (kh, kw), self.dilation, self.out_hw, self.padding, bias)
        elif self.compiled is not None:
            self.cols = None
            out = self._convolve_by_kernels(x, matrix, bias, *self.compiled)
        else:
            out = self._im2col_forward(x, matrix, bias)
        return out.reshape(n, o, ho, wo)

    def _sampled(self, x):
        """The pixels of x (N, C, H, W) a 1×1 kernel reads, (N, C, Ho, Wo): every sh-th row's every sw-th
        pixel, as far as the output reaches (x itself at stride 1 with an output of x's size; else a view)."""
        (sh, sw), (ho, wo) = self.stride, self.out_hw
        return x if self._reads_every_pixel() else x[:, :, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw]

    def _reads_every_pixel(self):
        return self.stride == (1, 1) and self.out_hw == tuple(self.input_shape[2:])

    def _pointwise_forward(self, x, matrix, bias):
        """A 1×1 convolution without padding: out[n] = W (O, C) · x[n]'s pixels (C, Ho·Wo) (+ b), one
        batched GEMM a part of the batch on x itself (strided: on a copy of its sampled pixels)."""
        n, c = x.shape[:2]
        out = np.empty_like(x, shape=(n, len(matrix), self.out_hw[0] * self.out_hw[1]), order="C")
        sample_bias = None if bias is None else bias[:, None]

        def forward_part(part):
            np.matmul(matrix, self._sampled(x[part]).reshape(-1, c, out.shape[2]), out=out[part])
            if sample_bias is not None:
                out[part] += sample_bias

        parallel.map_parts(forward_part, parallel.parts(x, out.size * c // parallel.MULTIPLY_ADDS_PER_ELEMENT))
        return out

    def _pointwise_backward(self, grad):
        """dx[n] = Wᵀ · g[n] at the pixels the forward read (zeros between them when strided),
        dW = Σₙ g[n] · (x[n]'s pixels)ᵀ, db = Σ g: each part its samples' dx and its sums."""
        weight, needs = self.weight, self.needs_input_grad
        n, o, c = len(grad), weight.shape[0], weight.shape[1]
        g = grad.reshape(n, o, -1)
        matrix_t = weight.reshape(o, c).T
        with_bias = len(needs) > 2 and needs[2]
        dx = None
        if needs[0]:
            dx = (np.empty_like if self._reads_every_pixel() else np.zeros_like)(
                grad, shape=self.input_shape, order="C"
            )

        def backward_part(part):
            if dx is not None:
                products = np.matmul(matrix_t, g[part])
                self._sampled(dx[part])[...] = products.reshape(self._sampled(dx[part]).shape)
            dweight = None
            if needs[1]:
                pixels = self._sampled(self.x[part]).reshape(-1, c, g.shape[2])
                dweight = np.matmul(g[part], pixels.transpose(0, 2, 1)).sum(axis=0)
            return dweight, (sum_over((0, 2), g[part]) if with_bias else None)

        work = grad.size * c * (1 + needs[0]) // parallel.MULTIPLY_ADDS_PER_ELEMENT
        dweight, dbias = part_sums(parallel.map_parts(backward_part, parallel.parts(grad, work)))
        return dx, (None if dweight is None else dweight.reshape(weight.shape)), dbias

    def _convolve_by_kernels(self, x, matrix, bias, module, gemm):
        """W·cols (+ bias) by the compiled kernels, each sample's columns made in cache, none kept."""
        n, o, (ho, wo), (kh, kw) = len(x), len(matrix), self.out_hw, self.weight.shape[2:]
        out = np.empty_like(x, shape=(n, o, ho, wo), order="C")
        options = (kh, kw, *self.stride, *self.padding, *self.dilation)
        shift = np.empty(0, x.dtype) if bias is None else bias
        matrix = np.ascontiguousarray(matrix)
        parallel.map_parts(
            lambda part: module.convolve(gemm, x, matrix, *options, shift, out, part.start, part.stop),
            parallel.parts(x, n * matrix.shape[1] * ho * wo),
        )
        return out

    def _im2col_forward(self, x, matrix, bias):
        """W·cols (+ bias), keeping cols (N, C·kh·kw, Ho·Wo), the one copy of the windows, for the
        backward. Each part of the batch pads its own samples, then copies their windows."""
        n, c, h, w = x.shape
        (ph, pw), (ho, wo), (kh, kw) = self.padding, self.out_hw, self.weight.shape[2:]
        self.cols = np.empty_like(x, shape=(n, c * kh * kw, ho * wo))
        out = np.empty_like(x, shape=(n, matrix.shape[0], ho * wo))
        grouped_matrix = by_groups(matrix, self.groups)
        sample_bias = None if bias is None else spread(bias[:, None], out.shape[1:])

        def forward_part(part):
            padded = x[part]
            if ph or pw:
                padded = np.empty_like(x, shape=(len(padded), c, h + 2 * ph, w + 2 * pw), order="C")
                place_in_zeros(padded, x[part], ph, pw, h, w)
            view = windows(padded, self.weight.shape[2:], self.stride, self.dilation, self.out_hw)
            np.copyto(self.cols[part].reshape(view.shape), view)
            np.matmul(grouped_matrix, by_groups(self.cols[part], self.groups), out=by_groups(out[part], self.groups))
            if sample_bias is not None:
                out[part] += sample_bias

        parallel.map_parts(forward_part, parallel.parts(x, self.cols.size))
        return out

    def backward(self, grad):
        """dx and dW in one pass over the batch's parts: each part makes its samples' dx, then its sum
        of dW (and db) while its gradient is in cache (one handoff, where two passes took two)."""
        if self.pointwise:
            return self._pointwise_backward(grad)
        weight, needs = self.weight, self.needs_input_grad
        n, c, (kh, kw), (ho, wo) = grad.shape[0], self.input_shape[1], weight.shape[2:], self.out_hw
        with_bias = len(needs) > 2 and needs[2]
        dx = np.empty_like(grad, shape=self.input_shape, order="C") if needs[0] else None
        if not needs[1]:
            if dx is not None:
                self._input_gradient(grad, weight, dx)
            return dx, None, (sum_over((0, 2, 3), grad) if with_bias else None)
        columns = n * c * kh * kw * ho * wo  # the elements the weight gradient's products read, as many as dx's

        def backward_part(rows):
            padded_grad = None
            if dx is not None:
                padded_grad = self._input_gradient(grad[rows], weight, dx[rows])
            return self._weight_gradient(rows, grad[rows], with_bias, padded_grad)

        parts = parallel.parts(grad, columns * (1 + needs[0]))
        dweight, dbias = part_sums(parallel.map_parts(backward_part, parts))
        return dx, dweight, dbias

    def _weight_gradient(self, rows, grad, with_bias, padded_grad=None):
        """(Σ over the samples ``rows`` (whose gradient is ``grad``) of dW, and of db ``with_bias``).
        ``padded_grad``: g as the input gradient's correlation padded it, or None."""
        if self.by_taps and self.padded is None:  # the kernels made the correlation: they pad x again
            return tap_weight_grad_by_kernels(
                self.compiled, self.x[rows], grad, self.weight.shape, self.padding, self.dilation, with_bias
            )
        if self.by_taps:
            spread = spread_view(padded_grad, grad.shape, self.padded.shape[3])
            return tap_weight_grad(self.padded[rows], grad, self.weight.shape, self.dilation, with_bias, spread)
        if self.cols is None:  # the kernels made the columns: they make them again
            module, gemm = self.compiled
            sums = np.zeros_like(self.x, shape=(len(self.weight), self.weight[0].size))
            options = (*self.weight.shape[2:], *self.stride, *self.padding, *self.dilation)
            module.columns_weight_grad(
                gemm, self.x[rows], grad.astype(self.x.dtype, copy=False), *options, sums, 0, len(grad)
            )
            return sums.reshape(self.weight.shape), (sum_over((0, 2, 3), grad) if with_bias else None)
        g = grad.reshape(len(grad), grad.shape[1], grad.shape[2] * grad.shape[3])
        products = np.matmul(by_groups(g, self.groups), by_groups(self.cols[rows], self.groups).transpose(0, 1, 3, 2))
        return products.sum(axis=0).reshape(self.weight.shape), (sum_over((0, 2), g) if with_bias else None)

    def _input_gradient(self, grad, weight, dx):
        """dx = col2im(Wᵀ·g), written to ``dx``; at stride 1, the same as the correlation of g, moved
        by d(k−1)−p, with the flipped kernel: one im2col copy and one GEMM instead of kh·kw scattered
        adds (about 2x faster); strided, that correlation phase by phase (:func:`input_grad_by_phases`)
        where every phase has taps and g channels enough for them, and dx is not small. Returns the
        stride-1 correlation's padded g and where g sits in it (:func:`spread_view`), else None."""
        o, c, kh, kw = weight.shape
        ho, wo = self.out_hw
        (ph, pw), (dh, dw), (sh, sw) = self.padding, self.dilation, self.stride
        h, w = dx.shape[2:]
        if self.groups > 1:
            self._input_gradient_by_columns(grad, weight, dx)
            return
        if self.stride == (1, 1):
            flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(c, o * kh * kw)
            offset = (dh * (kh - 1) - ph, dw * (kw - 1) - pw)
            return correlate(grad, flipped, (kh, kw), self.dilation, (h, w), offset, into=dx)[1], offset
        by_phases = self.dilation == (1, 1) and kh >= sh and kw >= sw and o >= TAP_MIN_CHANNELS
        if by_phases and dx.size >= PHASES_MIN_ELEMENTS:
            input_grad_by_phases(grad, weight, self.stride, self.padding, dx)
            return
        self._input_gradient_by_columns(grad, weight, dx)

    def _input_gradient_by_columns(self, grad, weight, dx):
        """dx = col2im(Wᵀ·g) (each group's Wᵀ with its own outputs' g), written to ``dx``."""
        o, (kh, kw), (ho, wo), (ph, pw) = weight.shape[0], weight.shape[2:], self.out_hw, self.padding
        c, h, w = dx.shape[1:]
        matrix_t = by_groups(weight.reshape(o, -1), self.groups).transpose(0, 2, 1)
        g = by_groups(grad.reshape(len(grad), o, ho * wo), self.groups)
        dpadded = np.empty_like(grad, shape=(len(grad), c, h + 2 * ph, w + 2 * pw), order="C") if ph or pw else dx

        def input_part(part):
            dcols = np.matmul(matrix_t, g[part]).reshape(len(g[part]), c, kh, kw, ho, wo)
            dpadded[part] = 0  # each part zeroes its own samples (not a whole-array memset first)
            col2im(dcols, dpadded[part], (kh, kw), self.stride, self.dilation, self.out_hw)
            if dpadded is not dx:
                dx[part] = unpad_hw(dpadded[part], self.padding)

        parallel.map_parts(input_part, parallel.parts(grad, len(grad) * c * kh * kw * ho * wo))


class DepthwiseConv2d(Function):
    """A depthwise convolution (groups = C) at stride 1 with one filter a channel (O = C) as a multiply-add
    a tap over the zero-padded input z, with no columns and no GEMMs (its products would be only
    kh·kw deep):

        out[n, c, i, j] = Σ_{u,v} w[c, 0, u, v] · z[n, c, i + u·dh, j + v·dw]  (+ b)
        dz[n, c, tap (u, v)'s window] += w[c, 0, u, v] · g[n, c],  dW[c, 0, u, v] = Σ_{n,i,j} g · z-window

    z is flattened per channel with a spare row (:func:`tap_offsets`): a tap's windows of all output
    rows are one run of Ho·Wp values, so every pass is over contiguous rows; the output is made Wp
    wide (junk columns, then dropped) and g written out that wide with zeros. A chunk of samples at a
    time, while it is in cache; the batch split over the threads, the parts' dW added in order.
    With numba, compiled loops (:mod:`deepgrad.kernels.depthwise`) take a plane at a time instead:
    padded in a buffer in cache, all its taps added up in another, the result copied out (x kept for
    the backward, which pads each plane again; about a third of the time); they also take strided
    layers and several filters a channel, which NumPy's path leaves to the columns' GEMMs
    (:func:`conv2d` sends them here only with the kernels).
    """

    def __init__(self, padding, dilation, out_hw, stride=(1, 1)):
        self.padding, self.dilation, self.out_hw, self.stride = padding, dilation, out_hw, stride

    def forward(self, x, weight, bias=None):
        n, c = x.shape[:2]
        kh, kw = weight.shape[2:]
        self.weight, self.kernels = weight, kernels.for_array("depthwise", x)
        if self.kernels is not None:  # the kernels pad each plane in cache, and again in the backward
            self.x, out = x, np.empty_like(x, shape=(n, len(weight)) + self.out_hw, order="C")
            options = self.padding, self.stride, self.dilation
            parallel.map_parts(
                lambda part: self.kernels.forward(x, weight, *options, out, part.start, part.stop),
                parallel.parts(x, out.size * kh * kw),
            )
            return out if bias is None else out + spread(bias[:, None, None], out.shape[1:])
        if self.stride != (1, 1) or len(weight) != c:
            raise ValueError("DepthwiseConv2d: strides and several filters a channel need the compiled kernels")
        self.padded = pad_hw(x, self.padding, extra=(1, 0))
        wide = np.empty_like(x, shape=(n, c, self.out_hw[0], self.padded.shape[3]), order="C")
        weights = self._tap_weights(wide.shape[1:])

        def forward_part(part):
            for chunk in sample_chunks(wide[part], 3 * wide[0].nbytes):
                total = wide[part][chunk]
                scratch = np.empty_like(total)
                for k, (window, tap_weights) in enumerate(zip(self._windows(self.padded[part][chunk]), weights)):
                    np.multiply(window, tap_weights, out=total if k == 0 else scratch)
                    if k:
                        total += scratch

        parallel.map_parts(forward_part, parallel.parts(x, wide.size * kh * kw))
        out = wide[..., : self.out_hw[1]].copy()
        if bias is not None:
            out += spread(bias[:, None, None], out.shape[1:])
        return out

    def _tap_weights(self, shape):
        """Each tap's weights (C,) written out to a sample's ``shape`` (C, Ho, Wp)."""
        kh, kw = self.weight.shape[2:]
        return [spread(self.weight[:, 0, u, v, None, None], shape) for u in range(kh) for v in range(kw)]

    def _windows(self, padded):
        """Each tap's windows of all output rows in ``padded`` (N, C, Hp + 1, Wp), as (N, C, Ho, Wp)
        views of its contiguous runs."""
        n, c, hp, wp = padded.shape
        flat, ho = padded.reshape(n, c, hp * wp), self.out_hw[0]
        return [
            flat[:, :, start : start + ho * wp].reshape(n, c, ho, wp)
            for start in tap_offsets(self.weight.shape[2:], self.dilation, wp)
        ]

    def backward(self, grad):
        if self.kernels is not None:
            return self._backward_by_kernels(grad)
        needs, (kh, kw), wo = self.needs_input_grad, self.weight.shape[2:], self.out_hw[1]
        g = np.empty_like(grad, shape=grad.shape[:3] + self.padded.shape[3:], order="C")  # Wp wide, 0 in the junk
        g[..., :wo], g[..., wo:] = grad, 0
        dpadded = np.zeros_like(self.padded) if needs[0] else None
        weights = self._tap_weights(g.shape[1:]) if needs[0] else None
        with_bias = len(needs) > 2 and needs[2]

        def backward_part(part):
            dweight = np.zeros_like(self.weight, shape=(kh * kw, grad.shape[1])) if needs[1] else None
            for chunk in sample_chunks(g[part], 3 * g[0].nbytes):
                g_chunk = g[part][chunk]
                if dpadded is not None:
                    for window, tap_weights in zip(self._windows(dpadded[part][chunk]), weights):
                        window += g_chunk * tap_weights
                if dweight is not None:  # each sample's sum, then theirs
                    for k, window in enumerate(self._windows(self.padded[part][chunk])):
                        dweight[k] += np.einsum("ncij,ncij->nc", g_chunk, window).sum(axis=0)
            return dweight, (sum_over((0, 2, 3), grad[part]) if with_bias else None)

        dweight, dbias = part_sums(parallel.map_parts(backward_part, parallel.parts(grad, grad.size * kh * kw)))
        dx = None if dpadded is None else unpad_hw(dpadded, self.padding, (1, 0))
        dw = None if dweight is None else dweight.T.reshape(self.weight.shape)
        return dx, dw, dbias

    def _backward_by_kernels(self, grad):
        """dx, dW and db by the compiled loops, each part of the batch its own samples' dx and float64
        sums of dW, the parts' sums added in order."""
        needs, weight, x = self.needs_input_grad, self.weight, self.x
        dx = np.empty_like(x, order="C") if needs[0] else np.empty_like(x, shape=(0,) * 4)
        with_bias = len(needs) > 2 and needs[2]

        def backward_part(part):
            sums = np.zeros(weight.shape[:1] + weight.shape[2:] if needs[1] else (0, 0, 0))
            options = self.padding, self.stride, self.dilation
            self.kernels.backward(grad, x, weight, *options, dx, sums, part.start, part.stop)
            return (sums if needs[1] else None), (sum_over((0, 2, 3), grad[part]) if with_bias else None)

        parts = parallel.parts(grad, grad.size * weight.shape[2] * weight.shape[3])
        sums, dbias = part_sums(parallel.map_parts(backward_part, parts))
        dweight = None if sums is None else sums.astype(weight.dtype).reshape(weight.shape)
        return (dx if needs[0] else None), dweight, dbias


class ConvTranspose2d(Function):
    """The adjoint of a convolution: out = col2im(Wᵀ·x) (+ b), where the convolution with the same
    stride, padding, dilation, groups and weight maps out's shape back to x's (W: (C_in, C_out/G,
    kh, kw));  dx = W ⋆ g (that convolution),  dW = its weight gradient of input g and gradient x,
    db = Σ g. Each direction is :class:`Conv2d`'s other one, on its paths and threads."""

    def __init__(self, stride, padding, dilation, groups, out_shape):
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.out_shape = out_shape

    def _convolution(self, x_hw):
        """The convolution this transposes: from out's shape to x's (H, W)."""
        return Conv2d(self.stride, self.padding, self.dilation, x_hw, self.groups)

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        convolution = self._convolution(x.shape[2:])
        convolution.input_shape = self.out_shape
        out = np.empty_like(x, shape=self.out_shape, order="C")
        convolution._input_gradient(x, weight, out)
        if bias is not None:
            out += spread(bias[:, None, None], out.shape[1:])
        return out

    def backward(self, grad):
        needs = self.needs_input_grad
        dx = dweight = None
        if needs[0] or needs[1]:
            convolution = self._convolution(self.x.shape[2:])
            dx = convolution.forward(grad, self.weight)
            if needs[1]:
                convolution.needs_input_grad = (False, True)
                dweight = convolution.backward(self.x)[1]
        dbias = sum_over((0, 2, 3), grad) if len(needs) > 2 and needs[2] else None
        return (dx if needs[0] else None, dweight, dbias)


def by_groups(array, groups):
    """A weight matrix (O, K) as (G, O/G, K), or a batch's (N, R, L) rows as (N, G, R/G, L): each group's
    rows together, so that one broadcast matmul makes every group's product (a grouped
    convolution's output channels, and its columns' rows, come group by group)."""
    if array.ndim == 2:
        return array.reshape(groups, array.shape[0] // groups, array.shape[1])
    return array.reshape(array.shape[0], groups, array.shape[1] // groups, array.shape[2])


def phases(kernel, stride, padding, size):
    """Along one axis of a strided convolution's input (dilation 1): for each phase a < stride, the
    padded positions p ≡ a (mod stride), which only the taps u ≡ a see: (the phase's taps as a
    slice of the kernel, its first unpadded position h0, how many there are, and how far g must
    move for the phase's correlation with those taps flipped). The k-th of them, p = h0 + padding +
    stride·k, gets Σ_t W[a + stride·t]·g[P0 + k − t], P0 = (h0 + padding − a)/stride."""
    for a in range(stride):
        first = (a - padding) % stride
        count = len(range(first, size, stride))
        taps = len(range(a, kernel, stride))
        if count:
            yield slice(a, None, stride), first, count, taps - 1 - (first + padding - a) // stride


def input_grad_by_phases(grad, weight, stride, padding, dx):
    """dx, written to ``dx``, of a strided convolution (dilation 1, kernel ≥ stride): each phase of
    the input's rows and columns (:func:`phases`) sees only its own taps, so its dx is a stride-1
    correlation of g with those taps flipped, written straight to the phase's rows and columns:
    kh·kw GEMMs of the channels' (C, O) tap matrices in all, instead of a (C·kh·kw, O) GEMM and
    kh·kw strided scatter-adds (resnet-small's 16→32 3×3 stride-2 layer: 4.5 → 3.3 ms on one thread)."""
    c, (h, w) = weight.shape[1], dx.shape[2:]
    for row_taps, top, rows, down in phases(weight.shape[2], stride[0], padding[0], h):
        for col_taps, left, cols, right in phases(weight.shape[3], stride[1], padding[1], w):
            taps = weight[:, :, row_taps, col_taps][:, :, ::-1, ::-1]
            matrix = taps.transpose(1, 0, 2, 3).reshape(c, -1)
            phase = dx[:, :, top :: stride[0], left :: stride[1]]
            correlate(grad, matrix, taps.shape[2:], (1, 1), (rows, cols), (down, right), into=phase)


def tile_maxima(x, kernel, out):
    """out = the maximum of each (kh, kw) tile of x (N, C, Ho·kh, Wo·kw), one axis at a time: the
    maximum of the kw columns of each tile's rows, then of those kh rows (contiguous rows of Wo
    values, where a window at a time reads every kw-th element)."""
    (kh, kw), (n, c, ho, wo) = kernel, out.shape
    columns = x.reshape(n * c * ho * kh, wo, kw)
    rows = columns[..., 0] if kw == 1 else np.maximum(columns[..., 0], columns[..., 1])
    for v in range(2, kw):
        np.maximum(rows, columns[..., v], out=rows)
    rows = rows.reshape(n * c * ho, kh, wo)
    flat_out = out.reshape(n * c * ho, wo)
    if kh == 1:
        np.copyto(flat_out, rows[:, 0])
    else:
        np.maximum(rows[:, 0], rows[:, 1], out=flat_out)
    for u in range(2, kh):
        np.maximum(flat_out, rows[:, u], out=flat_out)


def tile_winners(x, kernel, maxima, winner):
    """winner = the offset k = u·kw + v (row-major) of each (kh, kw) tile's first element equal to its
    maximum, for x (N, C, Ho·kh, Wo·kw) and its tile ``maxima``: Σ_j Π_{i≤j} [x_i ≠ max] over the first
    kh·kw − 1 offsets (the number of offsets before the first equal one)."""
    (kh, kw), (n, c, ho, wo) = kernel, maxima.shape
    tiles = x.reshape(n, c, ho, kh, wo, kw)
    winner[...] = 0
    before = None  # [no offset so far equals the maximum]
    for k in range(kh * kw - 1):
        differs = tiles[:, :, :, k // kw, :, k % kw] != maxima
        before = differs if before is None else np.logical_and(before, differs, out=before)
        # as bytes where the winners are: uint8 + bool would take NumPy's slower casting loop
        winner += before.view(np.uint8) if winner.dtype == np.uint8 else before


def last_nan_winners(padded, maxima, winner, offsets):
    """Where a window holds NaN (its maximum is NaN), make its winner its last NaN, as PyTorch's kernel
    picks (a NaN beats every value, and each later NaN the one before). On the CPU, a pass over
    ``maxima`` when none does; a device makes every pass rather than send that answer back."""
    nan_windows = np.isnan(maxima)
    if backend.device_of(maxima) is backend.CPU and not nan_windows.any():
        return
    for k, (_, _, where) in enumerate(offsets):
        np.copyto(winner, k, where=nan_windows & np.isnan(padded[where]))


def first_inside(out_size, stride, padding, dilation):
    """For each window along one axis, the kernel offset of its first element inside the input (past
    the left padding): ⌈(padding − i·stride)/dilation⌉ where the window starts in the padding, else 0."""
    start = np.arange(out_size) * stride - padding
    return np.maximum(0, (dilation - 1 - start) // dilation)


class MaxPool2d(Function):
    """out = max over each window;  dx = g routed to the first maximum of its window (its last NaN, where
    it holds NaN, as PyTorch)

    Both directions loop over the kh·kw kernel offsets, each a vectorized operation on a strided
    slice (no window array is materialized); forward records which offset holds each window's first
    maximum: for tiling windows, by comparing each offset with the tiles' maxima (:func:`tile_winners`).
    The input is padded with −inf, ``extra`` rows and columns more at the bottom and right where the
    last windows reach past it (ceil_mode); a window whose maximum is −inf routes to its first element
    inside the input, as PyTorch's. ``record_winners`` keeps the winners without a backward to come, for
    :meth:`indices`. Where the winners are recorded, with numba (:mod:`deepgrad.kernels.pool`), both
    directions are one compiled pass a part of the batch, a window at a time (the same winners).

    With ``relu``, it is the ReLU before it and max pooling as one op, out = max over each window of
    relu(x) and dx = (g routed)·[relu(x) ≠ 0], bit for bit the two ops: the kernels read x as relu(x)
    (no pass of its own, no array of relu(x)) and take a winner's relu(x) from out; NumPy's passes
    call the ReLU's op.
    """

    def __init__(self, kernel, stride, padding, dilation, out_hw, extra=(0, 0), record_winners=False, relu=False):
        self.kernel, self.stride, self.padding, self.dilation, self.out_hw = kernel, stride, padding, dilation, out_hw
        self.extra, self.record_winners = extra, record_winners
        self.relu = ReLU() if relu else None  # its output, for its gradient: relu(x), or out with the kernels

    @property
    def name(self) -> str:
        """As graphs and error messages call it: "maxpool2d", or "relu+maxpool2d" fused."""
        return "maxpool2d" if self.relu is None else "relu+maxpool2d"

    def _offsets(self):
        return window_offsets(self.kernel, self.stride, self.dilation, self.out_hw)

    def forward(self, x):
        out = np.empty_like(x, shape=x.shape[:2] + self.out_hw, order="C")
        index_type = np.uint8 if self.kernel[0] * self.kernel[1] <= 256 else np.int32
        # which offset holds each window's first maximum; None with no backward to come (no_grad, or
        # x needs no gradient)
        recorded = self.needs_input_grad or self.record_winners
        winner = np.empty_like(out, dtype=index_type) if recorded else None
        # the kernels where the winners are recorded or a ReLU is fused (without either, NumPy's maxima of
        # tiles are as fast)
        compiled = recorded or self.relu is not None
        self.input_shape, self.compiled = x.shape, (kernels.for_array("pool", x) if compiled else None)
        if self.compiled is not None:
            self._forward_by_kernels(x, out, np.empty((0, 0, 0, 0), index_type) if winner is None else winner)
            self.winner = winner
            if self.relu is not None:
                self.relu.out = out
            return out
        if self.relu is not None:
            x = self.relu.forward(x)
        padded = pad_hw(x, self.padding, -np.inf, self.extra)
        self.padded_shape = padded.shape
        by_tiles = self._tiles() and self._covers_input()

        def forward_part(part):
            maxima = out[part]
            if by_tiles:
                tile_maxima(padded[part], self.kernel, maxima)
                if winner is not None:
                    tile_winners(padded[part], self.kernel, maxima, winner[part])
            else:
                self._running_maxima(padded[part], maxima, None if winner is None else winner[part])
            if winner is not None:
                last_nan_winners(padded[part], maxima, winner[part], self._offsets())
                if self.padding != (0, 0) or self.extra != (0, 0):
                    self._first_inside_where_lowest(maxima, winner[part])

        parallel.map_parts(forward_part, parallel.parts(padded, padded.size))
        self.winner = winner
        return out

    def _forward_by_kernels(self, x, out, winner):
        """out and winner by the compiled kernel, a window at a time."""
        options = (*self.kernel, *self.stride, *self.padding, *self.dilation, self.relu is not None)
        parallel.map_parts(
            lambda part: self.compiled.forward(x, *options, out, winner, part.start, part.stop),
            parallel.parts(x, x.size),
        )

    def _first_inside_where_lowest(self, maxima, winner):
        """Where a window's maximum is −inf (every element inside it is), make its winner its first
        element inside the input, as PyTorch's: the first offset equal to −inf may be padding. On the
        CPU, a pass over ``maxima`` when no window's is."""
        lowest = maxima == -np.inf
        if backend.device_of(maxima) is backend.CPU and not lowest.any():
            return
        (_, kw), (ho, wo) = self.kernel, self.out_hw
        rows, cols = (first_inside(self.out_hw[i], self.stride[i], self.padding[i], self.dilation[i]) for i in range(2))
        first = (rows[:, None] * kw + cols[None, :]).astype(winner.dtype).reshape(1, 1, ho, wo)
        np.copyto(winner, backend.to_device_of(first, winner), where=lowest)

    def indices(self, input_hw):
        """Each window's winner as PyTorch's ``return_indices`` gives it: its flat index h·W + w in its
        (H, W) input plane (int64)."""
        (_, kw), (ho, wo), width = self.kernel, self.out_hw, input_hw[1]
        xp = backend.get_array_module(self.winner)
        offset = self.winner.astype(np.int64)
        rows = (xp.arange(ho) * self.stride[0] - self.padding[0])[:, None] + (offset // kw) * self.dilation[0]
        cols = (xp.arange(wo) * self.stride[1] - self.padding[1]) + (offset % kw) * self.dilation[1]
        return rows * width + cols

    def _running_maxima(self, padded, maxima, winner):
        """maxima (and winner, unless None) by a running maximum over the kernel offsets."""
        for k, (_, _, where) in enumerate(self._offsets()):
            candidate = padded[where]
            if k == 0:
                np.copyto(maxima, candidate)
                if winner is not None:
                    winner[...] = 0
                continue
            if winner is not None:
                # k only grows, so max(winner, k·[candidate > max]) is k exactly where a new maximum starts
                # (branch-free: a masked assignment is ~50x slower on random masks)
                np.maximum(winner, np.multiply(candidate > maxima, k, dtype=winner.dtype), out=winner)
            np.maximum(maxima, candidate, out=maxima)

    def backward(self, grad):
        if self.compiled is not None:
            dx = np.empty_like(grad, shape=self.input_shape, order="C")
            relu_out = np.empty_like(grad, shape=(0, 0, 0, 0)) if self.relu is None else self.relu.out
            options = (*self.kernel, *self.stride, *self.padding, *self.dilation)
            parallel.map_parts(
                lambda part: self.compiled.backward(grad, self.winner, relu_out, *options, dx, part.start, part.stop),
                parallel.parts(dx, dx.size),
            )
            return (dx,)
        tiles = self._tiles()
        dpadded = (np.empty_like if tiles and self._covers_input() else np.zeros_like)(grad, shape=self.padded_shape)

        def backward_part(part):
            grad_part, winner, dpart = grad[part], self.winner[part], dpadded[part]
            for k, (_, _, where) in enumerate(self._offsets()):
                routed = np.multiply(grad_part, winner == k, out=dpart[where] if tiles else None)
                if not tiles:
                    dpart[where] += routed

        parallel.map_parts(backward_part, parallel.parts(dpadded, dpadded.size))
        dx = unpad_hw(dpadded, self.padding, self.extra)
        return (dx,) if self.relu is None else self.relu.backward(dx)

    def _tiles(self):
        """Whether the windows tile the input: each element in one window at most."""
        return self.stride == self.kernel and self.dilation == (1, 1)

    def _covers_input(self):
        (kh, kw), (ho, wo), (_, _, h, w) = self.kernel, self.out_hw, self.padded_shape
        return ho * kh == h and wo * kw == w


class MaxUnpool2d(Function):
    """out = zeros (N, C, Ho, Wo) with each x at its flat index h·Wo + w of its (Ho, Wo) plane (where two
    share an index, the later one in x's order);  dx = g at each x's index (a gather)."""

    def __init__(self, indices, out_hw):
        n, c = indices.shape[:2]
        self.out_hw = out_hw
        xp = backend.get_array_module(indices)
        self.planes = xp.arange(n * c)[:, None]
        self.flat_indices = indices.reshape(n * c, -1)

    def forward(self, x):
        n, c, h, w = self.input_shape = x.shape
        out = np.zeros_like(x, shape=(n * c, self.out_hw[0] * self.out_hw[1]))
        out[self.planes, self.flat_indices] = x.reshape(n * c, h * w)
        return out.reshape((n, c) + self.out_hw)

    def backward(self, grad):
        n, c = grad.shape[:2]
        return (grad.reshape(n * c, -1)[self.planes, self.flat_indices].reshape(self.input_shape),)


class AvgPool2d(Function):
    """out = Σ over each window / its divisor;  dx = g / divisor spread over the window

    The divisor is kh·kw, or per window (PyTorch's rules, :func:`window_divisors`) where windows
    reach past the padded input (ceil_mode) or the padding is not counted; ``extra`` zero rows and
    columns at the bottom and right hold what the last windows reach past it.
    """

    def __init__(self, kernel, stride, padding, out_hw, extra=(0, 0), divisor=None):
        self.kernel, self.stride, self.padding, self.out_hw, self.extra = kernel, stride, padding, out_hw, extra
        self.divisor = kernel[0] * kernel[1] if divisor is None else divisor

    def _offsets(self):
        return window_offsets(self.kernel, self.stride, (1, 1), self.out_hw)

    def forward(self, x):
        padded = pad_hw(x, self.padding, extra=self.extra)
        self.padded_shape = padded.shape
        total = None
        for _, _, where in self._offsets():
            total = padded[where].copy() if total is None else np.add(total, padded[where], out=total)
        total /= self.divisor
        return total

    def backward(self, grad):
        share = grad / self.divisor
        dpadded = np.zeros_like(grad, shape=self.padded_shape, order="C")
        for _, _, where in self._offsets():
            dpadded[where] += share
        return (unpad_hw(dpadded, self.padding, self.extra),)


def window_divisors(size, kernel, stride, padding, count, count_include_pad):
    """Along one axis, what each of ``count`` average-pooling windows divides by, as PyTorch: the
    window's length within the input and its padding (count_include_pad), or within the input alone.
    A 2-D window's divisor is the product of its two axes'."""
    starts = np.arange(count) * stride - padding
    ends = np.minimum(starts + kernel, size + padding)
    if count_include_pad:
        return ends - starts
    return np.minimum(ends, size) - np.maximum(starts, 0)


class AdaptiveAvgPool2d(Function):
    """out = A_h · x · A_wᵀ per sample and channel;  dx = A_hᵀ · g · A_w

    A (out × in) averages each output's window along an axis: window i spans ⌊i·in/out⌋ to
    ⌈(i+1)·in/out⌉ (PyTorch's), its row holds 1/length there. For sizes that do not divide; the
    windows may overlap.
    """

    def __init__(self, rows, columns):
        self.rows, self.columns = rows, columns

    def forward(self, x):
        xp = backend.get_array_module(x)
        rows, columns = (xp.asarray(m, dtype=x.dtype) for m in (self.rows, self.columns))
        self.matrices = rows, columns
        return np.matmul(rows, np.matmul(x, columns.T))

    def backward(self, grad):
        rows, columns = self.matrices
        return (np.matmul(rows.T, np.matmul(grad, columns)),)


def averaging_matrix(size, count):
    """(count, size): row i averages adaptive pooling's window i of an axis of ``size`` (see
    :class:`AdaptiveAvgPool2d`)."""
    windows = np.arange(count)
    starts, stops = windows * size // count, -(-(windows + 1) * size // count)
    positions = np.arange(size)
    inside = (positions >= starts[:, None]) & (positions < stops[:, None])
    return inside / (stops - starts)[:, None]


# ----------------------------------------------------------------------------
# Public functions


def _check_nchw(input, op):
    if input.ndim != 4:
        raise ValueError(f"{op}: expected input of shape (N, C, H, W), got {tuple(input.shape)}")


def _out_hw(input, kernel, stride, padding, dilation, op, ceil_mode=False):
    """(Ho, Wo) of the windows over ``input``; an error when the padded input is smaller than one window."""
    hw = tuple(
        output_size(input.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i], ceil_mode) for i in range(2)
    )
    if min(hw) < 1:
        raise ValueError(
            f"{op}: input of shape {tuple(input.shape)} is too small for kernel {kernel} "
            f"with padding {padding} and dilation {dilation}"
        )
    return hw


def check_groups(groups: int, op: str) -> None:
    """A convolution's ``groups`` must be a positive int (an error naming ``op`` otherwise)."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    check: bool = True,
) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) input with (O, C/groups, kh, kw) weight. With ``groups``
    G, input and output channels form G groups in order, output group g seeing input group g alone
    (G = C: a depthwise convolution).

    ``check=False`` skips the checks of the input's layout, of the weight's and bias's shapes and of
    the groups, and takes ``stride``, ``padding`` and ``dilation`` as pairs of ints already: for a
    caller that made sure of them (a Conv2d layer checks its input and keeps them as pairs). That
    the input is at least one window large is always checked.
    """
    op = "conv2d"
    if check:
        _check_nchw(input, op)
        check_groups(groups, op)
        channels = input.shape[1]
        if weight.ndim != 4 or weight.shape[1] * groups != channels or weight.shape[0] % groups:
            expected = "?" if weight.ndim != 4 else weight.shape[1] * groups
            raise ValueError(
                f"{op}: weight of shape {tuple(weight.shape)} with groups={groups} expects input with "
                f"{expected} channels and output channels divisible by {groups}, got input of shape "
                f"{tuple(input.shape)}"
            )
        check_shape(op, "bias", bias, weight.shape[:1], input)
        stride, padding, dilation = (
            int_pair(stride, "stride", op),
            int_pair(padding, "padding", op),
            int_pair(dilation, "dilation", op),
        )
    out_hw = _out_hw(input, weight.shape[2:], stride, padding, dilation, op)
    if 1 < groups == input.shape[1] and (
        (groups == weight.shape[0] and stride == (1, 1)) or kernels.for_array("depthwise", input.data) is not None
    ):  # NumPy's depthwise path takes stride 1 and a filter a channel; the kernels any
        fn: Function = DepthwiseConv2d(padding, dilation, out_hw, stride)
    else:
        fn = Conv2d(stride, padding, dilation, out_hw, int(groups))
    return fn(input, weight) if bias is None else fn(input, weight, bias)


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
) -> Tensor:
    """The transposed convolution of (N, C_in, H, W) input with (C_in, C_out/groups, kh, kw) weight:
    the adjoint of :func:`conv2d` with these stride, padding, dilation and groups (its input
    gradient), as PyTorch's. Output size along each axis: (H − 1)·s − 2p + d(k − 1) +
    output_padding + 1; ``output_padding`` (less than the stride or the dilation) picks among the
    sizes that the convolution maps to H."""
    op = "conv_transpose2d"
    _check_nchw(input, op)
    check_groups(groups, op)
    channels = input.shape[1]
    if weight.ndim != 4 or weight.shape[0] != channels or channels % groups:
        raise ValueError(
            f"{op}: weight of shape {tuple(weight.shape)} with groups={groups} expects input with "
            f"{weight.shape[0] if weight.ndim == 4 else '?'} channels, divisible by {groups}; got input of shape "
            f"{tuple(input.shape)}"
        )
    out_channels = weight.shape[1] * groups
    check_shape(op, "bias", bias, (out_channels,), input)
    stride, padding = int_pair(stride, "stride", op), int_pair(padding, "padding", op)
    dilation, output_padding = int_pair(dilation, "dilation", op), int_pair(output_padding, "output_padding", op)
    if any(extra >= max(s, d) for extra, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(
            f"{op}: output_padding {output_padding} must be smaller than the stride {stride} or the dilation {dilation}"
        )
    out_hw = tuple(
        (input.shape[2 + i] - 1) * stride[i]
        - 2 * padding[i]
        + dilation[i] * (weight.shape[2 + i] - 1)
        + output_padding[i]
        + 1
        for i in range(2)
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"{op}: input of shape {tuple(input.shape)} gives an output of size {out_hw} with kernel "
            f"{tuple(weight.shape[2:])}, stride {stride}, padding {padding} and dilation {dilation}"
        )
    fn = ConvTranspose2d(stride, padding, dilation, int(groups), (input.shape[0], out_channels) + out_hw)
    return fn(input, weight) if bias is None else fn(input, weight, bias)


def _pool_windows(input, kernel_size, stride, padding, dilation, ceil_mode, op):
    """A pooling's kernel, stride, padding and dilation as pairs, its (Ho, Wo) and the rows and columns
    its last windows reach past the padded input (ceil_mode); checks them as PyTorch does."""
    _check_nchw(input, op)
    kernel = int_pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None else int_pair(stride, "stride", op)
    padding, dilation = int_pair(padding, "padding", op), int_pair(dilation, "dilation", op)
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise ValueError(f"{op}: padding {padding} should be at most half of kernel_size {kernel}")
    out_hw = _out_hw(input, kernel, stride, padding, dilation, op, ceil_mode)
    extra = tuple(
        overhang(input.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i], out_hw[i]) for i in range(2)
    )
    return kernel, stride, padding, dilation, out_hw, extra


@overload
def max_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: Literal[False] = False,
    *,
    relu_first: bool = False,
) -> Tensor: ...


@overload
def max_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    relu_first: bool = False,
) -> Tensor | tuple[Tensor, Tensor]: ...


def max_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    relu_first: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """The maximum of each (kh, kw) window of (N, C, H, W) input; ``stride`` defaults to the kernel size.
    ``ceil_mode``: as many windows as start inside the input or its left padding, the last ones reaching
    past it (PyTorch's), rather than only those that fit. ``return_indices``: also each maximum's flat
    index h·W + w in its input plane (int64, PyTorch's; what :func:`max_unpool2d` takes).

    ``relu_first=True`` gives ``max_pool2d(relu(input), ...)``, bit for bit, as one op (with the
    compiled kernels, the ReLU costs no pass of its own): :class:`deepgrad.nn.Sequential` calls it for
    a ReLU layer followed by a max pooling layer."""
    op = "max_pool2d"
    kernel, strides, pads, dilations, out_hw, extra = _pool_windows(
        input, kernel_size, stride, padding, dilation, ceil_mode, op
    )
    fn = MaxPool2d(kernel, strides, pads, dilations, out_hw, extra, bool(return_indices), relu_first)
    out = fn(input)
    if not return_indices:
        return out
    return out, Tensor._wrap(fn.indices(input.shape[2:]))


def max_unpool2d(
    input: Tensor,
    indices: Tensor | Array,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """The inverse of :func:`max_pool2d` as far as it goes: zeros of the pooling's input size (or
    ``output_size``, (H, W) or (N, C, H, W)) with each value of ``input`` at its flat index h·W + w from
    ``max_pool2d(..., return_indices=True)``; the gradient of each value is the gradient at its index."""
    op = "max_unpool2d"
    _check_nchw(input, op)
    kernel = int_pair(kernel_size, "kernel_size", op)
    strides = kernel if stride is None else int_pair(stride, "stride", op)
    pads = int_pair(padding, "padding", op)
    index_array = backend.to_device_of(indices.data if isinstance(indices, Tensor) else indices, input.data)
    if tuple(index_array.shape) != tuple(input.shape) or np.dtype(index_array.dtype).kind not in "iu":
        raise ValueError(
            f"{op}: expected integer indices of the input's shape {tuple(input.shape)}, got "
            f"{np.dtype(index_array.dtype)} of shape {tuple(index_array.shape)}"
        )
    out_hw = _unpool_size(input.shape[2:], kernel, strides, pads, output_size, op)
    if index_array.size:
        low, high = int(index_array.min()), int(index_array.max())
        if low < 0 or high >= out_hw[0] * out_hw[1]:
            bad = low if low < 0 else high
            raise ValueError(f"{op}: index {bad} is outside an output plane of {out_hw[0]}x{out_hw[1]}")
    return MaxUnpool2d(index_array, out_hw)(input)


def _unpool_size(input_hw, kernel, stride, padding, output_size, op):
    """(Ho, Wo) of an unpooling: (H − 1)·stride − 2·padding + kernel, or ``output_size`` ((H, W) or
    (N, C, H, W)) where it lies within a stride of that, as PyTorch checks it."""
    default = tuple((input_hw[i] - 1) * stride[i] - 2 * padding[i] + kernel[i] for i in range(2))
    if output_size is None:
        size = default
    else:
        size = tuple(int(d) for d in output_size)
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2:
            raise ValueError(f"{op}: output_size should have 2 or 4 elements, got {tuple(output_size)}")
        for i in range(2):
            if not default[i] - stride[i] < size[i] < default[i] + stride[i]:
                raise ValueError(
                    f"{op}: invalid output_size {tuple(output_size)} (dim {i} must be between "
                    f"{default[i] - stride[i]} and {default[i] + stride[i]}, exclusive)"
                )
    if min(size) <= 0:
        raise ValueError(f"{op}: output size {size} is too small for input of spatial size {tuple(input_hw)}")
    return size


def avg_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """The mean of each (kh, kw) window of (N, C, H, W) input; ``stride`` defaults to the kernel size.

    As PyTorch: each window's sum is divided by its size within the input and the zero padding
    (``count_include_pad``, the default) or within the input alone, or by ``divisor_override``;
    ``ceil_mode`` as in :func:`max_pool2d` (what a last window reaches past the padding is not
    counted).
    """
    op = "avg_pool2d"
    if divisor_override is not None and (isinstance(divisor_override, bool) or divisor_override == 0):
        raise ValueError(f"{op}: divisor_override must be a non-zero int, got {divisor_override!r}")
    kernel, strides, pads, _, out_hw, extra = _pool_windows(input, kernel_size, stride, padding, 1, ceil_mode, op)
    divisor: float | Array | None = divisor_override
    if divisor is None and (extra != (0, 0) or not count_include_pad):
        h, w = input.shape[2:]
        along_h, along_w = (
            window_divisors(size, kernel[i], strides[i], pads[i], out_hw[i], count_include_pad)
            for i, size in enumerate((h, w))
        )
        divisors = along_h[:, None] * along_w[None, :]
        if not (divisors == kernel[0] * kernel[1]).all():
            divisor = backend.to_device_of(divisors.astype(input.dtype), input.data)
    return AvgPool2d(kernel, strides, pads, out_hw, extra, divisor)(input)


def adaptive_avg_pool2d(input: Tensor, output_size: IntPair) -> Tensor:
    """Average-pool (N, C, H, W) input to ``output_size``: output (i, j) averages rows ⌊i·H/Ho⌋ to
    ⌈(i+1)·H/Ho⌉ and the columns likewise (PyTorch's windows; they overlap where the sizes do not
    divide)."""
    op = "adaptive_avg_pool2d"
    _check_nchw(input, op)
    oh, ow = int_pair(output_size, "output_size", op)
    h, w = input.shape[2:]
    if oh == 1 and ow == 1:
        return input.mean(dim=(2, 3), keepdim=True)
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(input, (h // oh, w // ow))
    return AdaptiveAvgPool2d(averaging_matrix(h, oh), averaging_matrix(w, ow))(input)
