"""Embedding lookup: rows of a weight table picked by integer indices.

    out[..., :] = W[index[...], :]
    dW[i] = Σ_{positions p with index[p] = i} g[p]   (÷ the count of i in the batch with
            scale_grad_by_freq; 0 for the padding row)

A lookup is indexing, but with PyTorch's options: a padding row whose gradient is always zero, a
gradient scaled down by how often each row was picked, and rows renormalized in place before the
lookup (``max_norm``).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import Array
from ..tensor import Function, Tensor
from .shape import _add_at


class Embedding(Function):
    """out = W[index];  dW = g added into zeros at the picked rows (see the module's formula)"""

    def __init__(self, index, padding_idx, scale_grad_by_freq):
        self.index, self.padding_idx, self.scale_grad_by_freq = index, padding_idx, scale_grad_by_freq

    def forward(self, weight):
        self.weight_shape = weight.shape
        return weight[self.index]

    def backward(self, grad):
        rows = self.index.reshape(-1)
        grad = grad.reshape(len(rows), -1)
        if self.scale_grad_by_freq:
            counts = backend.get_array_module(rows).bincount(rows, minlength=self.weight_shape[0])
            grad = grad / counts[rows, None].astype(grad.dtype)
        dweight = np.zeros_like(grad, shape=self.weight_shape)
        _add_at(dweight, rows, grad)
        if self.padding_idx is not None:
            dweight[self.padding_idx] = 0
        return (dweight,)


def padding_row(padding_idx: int | None, num_embeddings: int, op: str) -> int | None:
    """``padding_idx`` as a row of a table of ``num_embeddings`` (a negative one counts from the end)."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"{op}: padding_idx must be an int, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{op}: padding_idx {padding_idx} is outside the {num_embeddings} rows of the table")
    return int(padding_idx) % num_embeddings


def renorm_rows_(weight: Tensor, index: Array, max_norm: float, norm_type: float) -> None:
    """Scale, in place and outside the graph, each row of ``weight`` picked by ``index`` whose
    p-norm exceeds ``max_norm`` down to it: w ← w · max_norm / (‖w‖_p + 1e-7) (PyTorch's)."""
    xp = backend.get_array_module(weight.data)
    rows = xp.unique(index)
    picked = weight.data[rows]
    norms = xp.linalg.norm(picked, ord=norm_type, axis=1)
    over = norms > max_norm
    weight.data[rows[over]] = picked[over] * (max_norm / (norms[over] + 1e-7))[:, None]


def embedding(
    input: Tensor | Array,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """The rows of ``weight`` (num_embeddings, dim) that the integer ``input`` picks: shape
    input.shape + (dim,). ``padding_idx``: that row gets no gradient; ``max_norm``: picked rows longer
    than it (in the ``norm_type``-norm) are first scaled down to it, in place; ``scale_grad_by_freq``:
    each row's gradient is divided by how often the batch picked it. As PyTorch; ``sparse``
    gradients do not exist in deepgrad."""
    op = "embedding"
    if sparse:
        raise NotImplementedError(f"{op}: sparse gradients are not supported; leave sparse=False")
    if weight.ndim != 2:
        raise ValueError(f"{op}: expected a weight of shape (num_embeddings, embedding_dim), got {tuple(weight.shape)}")
    index = input.data if isinstance(input, Tensor) else input
    if not backend.is_array(index):
        index = np.asarray(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer indices, got {index.dtype} of shape {tuple(index.shape)}")
    num_embeddings = weight.shape[0]
    if index.size and (int(index.min()) < 0 or int(index.max()) >= num_embeddings):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise IndexError(f"{op}: index {bad} is out of range for a table of {num_embeddings} rows")
    row = padding_row(padding_idx, num_embeddings, op)
    index = backend.to_device_of(index, weight.data)
    if max_norm is not None:
        renorm_rows_(weight, index, float(max_norm), float(norm_type))
    return Embedding(index, row, bool(scale_grad_by_freq))(weight)
