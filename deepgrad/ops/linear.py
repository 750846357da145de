"""The affine map of a fully connected layer: z = x Wᵀ + b, and its backward in three GEMMs.

Each GEMM is split over deepgrad's threads (:mod:`deepgrad.parallel`) when it is large, along the
axis :func:`cut_axis` picks: its inner one (the partial products then added in order) when it is
the longest, else the columns or the rows. The backward's dx and dW share the threads and run at
once, each cut by its own rows (dx by the batch's, dW by the output features), so no part adds to
another's. While the BLAS has the threads (until an op has split other work over deepgrad's pool:
:func:`deepgrad.threads.products_by_blas`), each GEMM is NumPy's own, split by the BLAS.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import parallel, threads
from ..tensor import Function, Tensor
from .arguments import check_shape


def never_split(multiply_adds):
    """Whether a product of this many multiply-adds is too small to split (its work is under
    2·MIN_WORK: :func:`deepgrad.parallel.parts` makes one part). A layer then makes NumPy's own
    products, without the checks and calls of a split: they cost a 100×100 layer's step 3-4 µs,
    2.5 % of the benchmark mlp-bn's step."""
    return multiply_adds < 2 * parallel.MIN_WORK * parallel.MULTIPLY_ADDS_PER_ELEMENT


def product_into(a, out, *, b, shift=None):
    """out = a @ b (+ shift): one part of a split product."""
    shifted(np.matmul(a, b, out=out), shift)


def product_output(a, b):
    """A new C-contiguous array for a @ b (a of shape (..., k), b a matrix), of their result dtype."""
    return np.empty_like(a, shape=a.shape[:-1] + b.shape[-1:], dtype=np.result_type(a.dtype, b.dtype), order="C")


def shifted(out, shift):
    """out (+= shift, where there is one)."""
    if shift is not None:
        out += shift
    return out


def cut_axis(a, b):
    """Which of a @ b's axes to cut over the threads, for a of shape (n, ..., k) and a matrix b:
    "inner" (k) when it is at least as long as the rows and the columns, each part then packing
    only its share of both operands and the parts' (small) products added up; else "columns" when
    b's columns outnumber a's rows (each thread packs its share of b, where cut by rows every thread
    packs all of it), else "rows". On two threads: simple-cnn's linear layer (100×4320 by 4320×100)
    0.60 ms by its inner axis, 0.72 by columns, 0.74 by rows, 0.90 on one thread; the benchmark
    MLP's first layer (128×784 by 784×512) 0.61, 0.63, 0.72 and 0.87. A vector a has no rows."""
    rows = a.size // max(a.shape[-1], 1) if a.ndim >= 2 else 0
    inner, columns = b.shape
    if inner >= max(rows, columns):
        return "inner"
    return "columns" if columns > rows else "rows"


def split_product(a, b, shift=None, out=None):
    """a @ b (+ shift) for a of shape (n, ..., k) and a matrix b, split over the threads along the
    axis :func:`cut_axis` picks (the inner one's partial products added in the parts' order);
    into ``out`` (C-contiguous) where given."""
    work = a.size * b.shape[-1] // parallel.MULTIPLY_ADDS_PER_ELEMENT
    if work < 2 * parallel.MIN_WORK or threads.products_by_blas() or parallel.threads_for(a) < 2:
        return shifted(np.matmul(a, b, out=out), shift)  # NumPy's own product, split or not by the BLAS
    axis = cut_axis(a, b)
    slices = parallel.parts({"rows": a, "columns": b.T, "inner": b}[axis], work)
    if len(slices) == 1:
        return shifted(np.matmul(a, b, out=out), shift)
    if axis == "inner":
        total = parallel.ordered_sum(parallel.map_parts(lambda part: a[..., part] @ b[part], slices))
        if out is not None:
            out[...] = total
        return shifted(total if out is None else out, shift)
    if out is None:
        out = product_output(a, b)
    if axis == "columns":
        parallel.map_parts(functools.partial(columns_into, a, b, shift, out), slices)
    else:
        parallel.map_batches(product_into, slices, a, out, b=b, shift=shift)
    return out


def columns_into(a, b, shift, out, part):
    """out[..., part] = a @ b[:, part] (+ shift[part]): one part of a product split by b's columns."""
    product_into(a, out[..., part], b=b[:, part], shift=None if shift is None else shift[part])


def split_products(*pairs, outs=None):
    """[a @ b for a, b in pairs], as :func:`split_product` each, but with the threads shared between
    the products: when each is large, every product is cut into its share of the parts and all the
    parts run at once (a backward's dx and dW on two threads: one handoff, and each GEMM whole).
    ``outs``: an output for each product (None: a new array)."""
    outs = list(outs or [None] * len(pairs))
    works = [a.size * b.shape[-1] // parallel.MULTIPLY_ADDS_PER_ELEMENT for a, b in pairs]
    share = parallel.threads_for(pairs[0][0]) // len(pairs) if max(works) >= parallel.MIN_WORK else 0
    if share < 1 or threads.products_by_blas():  # one after the other, NumPy's own (split by the BLAS or not)
        return [np.matmul(a, b, out=out) for (a, b), out in zip(pairs, outs)]
    if min(works) < parallel.MIN_WORK or any(a.ndim < 2 for a, _ in pairs):  # a vector has no rows
        return [split_product(a, b, out=out) for (a, b), out in zip(pairs, outs)]
    calls = []
    for i, ((a, b), work) in enumerate(zip(pairs, works)):
        if outs[i] is None:
            outs[i] = product_output(a, b)
        out = outs[i]
        calls += [functools.partial(product_into, a[part], out[part], b=b) for part in parallel.parts(a, work, share)]
    parallel.together(calls)
    return outs


def weight_grad_operands(dweight, rows, x_rows):
    """(a, b, out) such that ``np.matmul(a, b, out=out)`` writes dW = gᵀx into ``dweight``: gᵀ, x and
    dW itself for a row-major dW, xᵀ, g and dWᵀ (row-major) for a column-major one (as nn.Linear stores
    its weight: see there), so that the GEMM always writes rows and dW matches the weight's layout."""
    if dweight.flags.c_contiguous:
        return rows.T, x_rows, dweight
    return x_rows.T, rows, dweight.T


class Linear(Function):
    """out = x Wᵀ + b (x: (..., in), W: (out, in));  dx = g W,  dW = gᵀ x,  db = Σ g"""

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        if never_split(x.size * len(weight)):
            out = x @ weight.T
            if bias is not None:
                out += bias
            return out
        return split_product(x, weight.T, bias)

    def backward(self, grad):
        x, weight = self.x, self.weight
        needs = self.needs_input_grad
        dx = dweight = dbias = None
        rows = grad if grad.ndim == 2 else grad.reshape(-1, grad.shape[-1])
        x_rows = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        if needs[1]:
            # in the weight's memory order (np.empty_like keeps it), so the optimizer's passes read both alike
            dweight = np.empty_like(weight, dtype=np.result_type(rows.dtype, x_rows.dtype))
            a, b, out = weight_grad_operands(dweight, rows, x_rows)
        if never_split(grad.size * x.shape[-1]):  # dx's multiply-adds, and dW's
            if needs[0]:
                dx = grad @ weight
            if needs[1]:
                np.matmul(a, b, out=out)
        elif needs[0] and needs[1]:
            dx, _ = split_products((grad, weight), (a, b), outs=(None, out))
        elif needs[0]:
            dx = split_product(grad, weight)
        elif needs[1]:
            split_product(a, b, out=out)
        if len(needs) > 2 and needs[2]:
            dbias = rows.sum(axis=0)
        return dx, dweight, dbias


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None, *, check: bool = True) -> Tensor:
    """x Wᵀ + b with W of shape (out_features, in_features), as PyTorch.

    ``check=False`` skips the shape checks, for a caller that made sure of them (a Linear layer checks
    its input's last dim; its own weight and bias fit by construction).
    """
    if check:
        x_shape, w_shape = input.shape, weight.shape
        if len(w_shape) != 2 or not x_shape or x_shape[-1] != w_shape[1]:
            raise ValueError(
                f"linear: input of shape {tuple(x_shape)} does not match weight {tuple(w_shape)}: "
                f"expected input (..., {w_shape[-1]})"
            )
        check_shape("linear", "bias", bias, w_shape[:1], input)
    return Linear()(input, weight) if bias is None else Linear()(input, weight, bias)
