"""Dropout layer."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..ops.dropout import check_probability
from ..tensor import Tensor
from .module import Module


class Dropout(Module):
    """Zero each element with probability p in training.

    Inverted by default (kept elements scaled by 1/(1−p); identity in eval).
    ``scale_at_test=True`` is the classic form: no scaling in training,
    multiply by (1−p) in eval. ``generator`` (a NumPy generator) makes the masks
    reproducible and the same on every device: they are drawn on the host. Without
    one, masks come from the default generator (``dg.manual_seed``) on the CPU and
    are drawn on the device, seeded from it, on a GPU; ``deepgrad.ops.dropout.host_masks``
    draws every layer's on the host instead (the CPU's masks on a GPU).
    """

    def __init__(
        self, p: float = 0.5, scale_at_test: bool = False, generator: np.random.Generator | None = None
    ) -> None:
        super().__init__()
        check_probability(p, "Dropout")
        self.p, self.scale_at_test, self.generator = p, scale_at_test, generator

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.scale_at_test, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", scale_at_test=True" if self.scale_at_test else "")
