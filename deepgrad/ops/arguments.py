"""Arguments the ops share: a dim, an int-or-pair size, a per-feature array's shape, a hyperparameter.

Each check raises the error a user should see, naming the op, what was given
and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np

from ..backend import Array
from ..tensor import Tensor

#: A size of height and width: one int for both, or a pair.
IntPair: TypeAlias = int | Sequence[int]


def wrap_dim(dim: object, shape: Sequence[int], op: str, *, new_axis: bool = False, wrap_scalar: bool = False) -> int:
    """``dim`` as an axis index of a tensor of ``shape``, negative dims counting from the end (PyTorch's
    maybe_wrap_dim). ``new_axis``: the position of an axis to insert (one more position than dims).
    ``wrap_scalar``: a 0-d tensor takes dim 0 and −1, as if it were 1-d (0 is returned)."""
    bound = len(shape) + new_axis
    if wrap_scalar:
        bound = max(bound, 1)
    if not isinstance(dim, (int, np.integer)) or not -bound <= dim < bound:
        expected = f"expected an integer in [{-bound}, {bound - 1}]" if bound else "it has no dims"
        raise IndexError(f"{op}: dim {dim!r} is out of range for a tensor of shape {tuple(shape)} ({expected})")
    return int(dim) % bound


def int_pair(value: IntPair, name: str, op: str) -> tuple[int, int]:
    """``value`` (an int, or a pair of ints for height and width) as a pair of Python ints."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    height, width = pair
    return int(height), int(width)


def check_shape(op: str, name: str, array: Tensor | Array | None, shape: Sequence[int], input: Tensor | Array) -> None:
    """A per-feature array (bias, γ, β, running statistics) has exactly ``shape``, or is None: no silent
    broadcast."""
    if array is not None and tuple(array.shape) != tuple(shape):
        raise ValueError(
            f"{op}: {name} of shape {tuple(array.shape)} does not fit input of shape {tuple(input.shape)}: "
            f"expected {tuple(shape)}"
        )


def hyperparameter(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds; anything else as given. Where a hyperparameter
    (a slope, a bound, an eps, a momentum) meets arrays, a Python number is "weak" under NEP 50
    (NumPy 2 and CuPy 14 alike): the arrays keep their dtype, so float32 data computes in float32
    on every device, where a NumPy float64 would widen it to float64."""
    return value.item() if isinstance(value, np.generic) else value
