"""Linear (fully connected) layer, Identity and Flatten."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np

from .. import backend
from .. import functional as F
from ..backend import DTypeLike
from ..tensor import Tensor
from . import init as initializers
from .module import Module, Parameter

#: The ``init=`` of Linear and Conv2d: a name of :data:`WEIGHT_INITS`, or a function filling the weight in place.
WeightInit: TypeAlias = "str | Callable[[Parameter], object]"

# The ``init=`` choices of Linear and Conv2d: name -> function filling the weight.
WEIGHT_INITS: dict[str, Callable[..., Any]] = {
    "xavier_normal": initializers.xavier_normal_,
    "xavier_uniform": initializers.xavier_uniform_,
    "kaiming_normal": lambda w, generator: initializers.kaiming_normal_(w, nonlinearity="relu", generator=generator),
    "kaiming_uniform": lambda w, generator: initializers.kaiming_uniform_(w, nonlinearity="relu", generator=generator),
    "he": lambda w, generator: initializers.kaiming_normal_(w, nonlinearity="relu", generator=generator),
    "lecun_normal": initializers.lecun_normal_,
}


def init_weight_and_bias(
    weight: Parameter, bias: Parameter | None, init: WeightInit | None, generator: np.random.Generator | None
) -> None:
    """PyTorch's default (U(±1/√fan_in) for both) unless ``init`` names another weight init
    (then the bias starts at zero)."""
    fan_in, _ = initializers.calculate_fan_in_and_fan_out(weight)
    if init is None:
        initializers.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        if bias is not None:
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            initializers.uniform_(bias, -bound, bound, generator)
        return
    if callable(init):
        init(weight)
    elif init in WEIGHT_INITS:
        WEIGHT_INITS[init](weight, generator=generator)
    else:
        raise ValueError(f"unknown init {init!r}; expected one of {sorted(WEIGHT_INITS)} or a function")
    if bias is not None:
        initializers.zeros_(bias)


class Linear(Module):
    """y = x Wᵀ + b with W of shape (out_features, in_features).

    W is stored column-major (``weight.data.flags.f_contiguous``), so that Wᵀ is a row-major matrix and
    the forward a GEMM of two row-major operands: OpenBLAS takes a transposed second operand 10-25 %
    slower (128×784 by 784×512: 1.15 against 1.03 ms; 100×100 by 100×100: 24 against 19 µs). The
    backward's g W takes the transposed form instead, and W's gradient comes column-major too
    (:func:`deepgrad.ops.linear.weight_grad_operands`), so the optimizer reads both in one order. On
    one thread, paired against row-major weights: the benchmark MLPs' inference 0.87-0.89 of its
    time, their training steps 0.98-0.99 (a first layer needs no input gradient), simple-cnn's 1.025
    (its 4320→100 layer's input gradient). State dicts and checkpoints hold W as PyTorch's (out, in)
    matrix, and a weight of any other layout assigned to ``weight.data`` works the same.
    """

    bias: Parameter | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: WeightInit | None = None,
        dtype: DTypeLike | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        dtype = dtype or backend.get_default_dtype()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype, order="F"))
        self.register_parameter("bias", Parameter(np.empty(out_features, dtype=dtype)) if bias else None)
        init_weight_and_bias(self.weight, self.bias, init, generator)

    def forward(self, x: Tensor) -> Tensor:
        if not x.shape or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.in_features}) or (..., {self.in_features}), "
                f"got {tuple(x.shape)}" + (" (flatten images first, e.g. with nn.Flatten())" if x.ndim > 2 else "")
            )
        return F.linear(x, self.weight, self.bias, check=False)  # its own weight and bias fit by construction

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Merge dims start_dim..end_dim (by default all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
