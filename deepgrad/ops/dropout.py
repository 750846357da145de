"""Dropout: zero each element with probability p.

Inverted dropout (PyTorch's): training multiplies kept elements by 1/(1−p),
evaluation is the identity. The classic variant (``scale_at_test=True``, as in
the original paper and the seed notes) keeps elements unscaled in training and
multiplies by (1−p) at test time; both have the same expected output.

Masks are drawn on the host from a NumPy generator and moved to the tensor's
device, so a seed gives the same masks on every device.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..random import default_generator
from ..tensor import Function, Tensor


class Dropout(Function):
    """out = x · m with m = keep/(1−p) (or keep);  dx = g · m"""

    def __init__(self, mask):
        self.mask = mask

    def forward(self, x):
        return x * self.mask

    def backward(self, grad):
        return (grad * self.mask,)


def check_probability(p: float, op: str) -> None:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability must be in [0, 1], got {p!r}")


def dropout(
    x: Tensor,
    p: float = 0.5,
    training: bool = True,
    scale_at_test: bool = False,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Zero elements with probability ``p`` using ``generator`` (the default one if None)."""
    check_probability(p, "dropout")
    if not training:
        return x * (1.0 - p) if scale_at_test and p else x
    if p == 0:
        return x
    dtype = x.data.dtype
    if p == 1:
        return Dropout(np.zeros_like(x.data))(x)
    rng = generator or default_generator()
    keep = rng.random(x.shape, dtype=dtype if dtype.kind == "f" else np.float64) >= p
    scale = 1.0 if scale_at_test else 1.0 / (1.0 - p)
    mask = keep * np.asarray(scale, dtype=dtype)
    return Dropout(backend.to_device_of(mask, x.data))(x)
