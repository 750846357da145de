"""Embedding: a table of learned vectors, one row per index."""

from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import Array, DTypeLike
from ..ops.embedding import embedding, padding_row
from ..tensor import Tensor
from . import init as initializers
from .module import Module, Parameter


class Embedding(Module):
    """out = weight[input] for integer input of any shape: shape input.shape + (embedding_dim,).

    As PyTorch's: weight (num_embeddings, embedding_dim) starts N(0, 1), with the ``padding_idx``
    row (if given) at zero and never given a gradient; ``max_norm`` scales picked rows longer than
    it down to it, in place, at each forward; ``scale_grad_by_freq`` divides each row's gradient by
    how often the batch picked it.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        dtype: DTypeLike | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_row(padding_idx, num_embeddings, "Embedding")
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype or backend.get_default_dtype()))
        initializers.normal_(self.weight, generator=generator)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor | Array,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding whose table is a copy of the 2-D ``embeddings`` (its padding row kept as it
        is), trained only when not ``freeze``."""
        table = embeddings.data if isinstance(embeddings, Tensor) else embeddings
        table = backend.to_device(table if backend.is_array(table) else np.asarray(table), "cpu")
        if table.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: expected a 2-D table, got shape {tuple(table.shape)}")
        rows, dim = table.shape
        layer = cls(rows, dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, dtype=table.dtype)
        layer.weight.data[...] = table
        layer.weight.requires_grad_(not freeze)
        return layer

    def forward(self, input: Tensor | Array) -> Tensor:
        return embedding(
            input, self.weight, self.padding_idx, self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse
        )

    def extra_repr(self) -> str:
        options = [f"{self.num_embeddings}, {self.embedding_dim}"]
        options += [f"padding_idx={self.padding_idx}"] if self.padding_idx is not None else []
        options += [f"max_norm={self.max_norm}"] if self.max_norm is not None else []
        options += ["scale_grad_by_freq=True"] if self.scale_grad_by_freq else []
        return ", ".join(options)
