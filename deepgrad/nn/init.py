"""Weight initializers, following ``torch.nn.init`` exactly.

All fill a tensor in place (keeping its dtype), draw from ``generator`` (the
default generator if None) and return the tensor. The seed notes' "Xavier"
(std 1/√n_in) is :func:`lecun_normal_`; Glorot's is :func:`xavier_normal_`.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

from .. import backend
from ..random import default_generator
from ..tensor import Tensor

TensorT = TypeVar("TensorT", bound=Tensor)  # an initializer returns the tensor it filled (a Parameter stays one)
FanMode = Literal["fan_in", "fan_out"]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity``: relu √2, tanh 5/3, leaky_relu √(2/(1+slope²)), linear 1, ..."""
    linear = (
        "linear",
        "identity",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    )
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """fan_in = shape[1]·receptive field, fan_out = shape[0]·receptive field (PyTorch's convention)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"init: fan in and fan out need a tensor with at least 2 dims, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor: TensorT, values: npt.NDArray[np.floating] | float) -> TensorT:
    """Write ``values`` (drawn on the host, or a number) into the tensor, on its device."""
    if isinstance(values, np.ndarray):
        values = backend.to_device_of(values, tensor.data)
    tensor.data[...] = values
    return tensor


def _rng(generator: np.random.Generator | None) -> np.random.Generator:
    return generator or default_generator()


def uniform_(tensor: TensorT, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None) -> TensorT:
    """Fill with U(a, b)."""
    return _fill(tensor, _rng(generator).uniform(a, b, tensor.shape))


def normal_(
    tensor: TensorT, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None
) -> TensorT:
    """Fill with N(mean, std²)."""
    return _fill(tensor, _rng(generator).normal(mean, std, tensor.shape))


def constant_(tensor: TensorT, val: float) -> TensorT:
    return _fill(tensor, val)


def zeros_(tensor: TensorT) -> TensorT:
    return _fill(tensor, 0)


def ones_(tensor: TensorT) -> TensorT:
    return _fill(tensor, 1)


def xavier_uniform_(tensor: TensorT, gain: float = 1.0, generator: np.random.Generator | None = None) -> TensorT:
    """U(−a, a) with a = gain·√(6 / (fan_in + fan_out)) (Glorot & Bengio)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: TensorT, gain: float = 1.0, generator: np.random.Generator | None = None) -> TensorT:
    """N(0, std²) with std = gain·√(2 / (fan_in + fan_out)) (Glorot & Bengio)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor: Tensor, a: float, mode: FanMode, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: TensorT,
    a: float = 0.0,
    mode: FanMode = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> TensorT:
    """U(−b, b) with b = √3·gain/√fan (He et al.); gain from ``nonlinearity`` and slope ``a``."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: TensorT,
    a: float = 0.0,
    mode: FanMode = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> TensorT:
    """N(0, std²) with std = gain/√fan (He et al.): √(2/n_in) for ReLU."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def lecun_normal_(tensor: TensorT, generator: np.random.Generator | None = None) -> TensorT:
    """N(0, 1/fan_in): the seed notes' "Xavier" initialization."""
    fan_in, _ = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, 1.0 / math.sqrt(fan_in), generator)


def sparse_(
    tensor: TensorT,
    sparsity: float | None = None,
    std: float = 0.01,
    *,
    k: int | None = None,
    generator: np.random.Generator | None = None,
) -> TensorT:
    """Sparse N(0, std²) weights for a 2-D (out, in) tensor.

    ``sparsity`` (PyTorch's form): in every column, ⌈sparsity·rows⌉ entries are zero.
    ``k`` (the seed notes' form): every row (output unit) has exactly k non-zero
    incoming weights.
    """
    if tensor.ndim != 2:
        raise ValueError(f"sparse_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    if (sparsity is None) == (k is None):
        raise ValueError("sparse_: give exactly one of sparsity (fraction of zeros per column) or k")
    rng = _rng(generator)
    rows, cols = tensor.shape
    values = rng.normal(0.0, std, (rows, cols))
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k <= cols:
            raise ValueError(f"sparse_: k={k!r} must be an integer between 0 and the fan-in {cols}")
        order = np.argsort(rng.random((rows, cols)), axis=1)
        keep = np.zeros((rows, cols), dtype=bool)
        np.put_along_axis(keep, order[:, :k], True, axis=1)
    elif sparsity is not None:  # always, k being None (checked above)
        if not 0.0 <= sparsity <= 1.0:
            raise ValueError(f"sparse_: sparsity must be in [0, 1], got {sparsity}")
        zeros_per_column = int(math.ceil(sparsity * rows))
        order = np.argsort(rng.random((rows, cols)), axis=0)
        keep = np.ones((rows, cols), dtype=bool)
        np.put_along_axis(keep, order[:zeros_per_column, :], False, axis=0)
    return _fill(tensor, values * keep)
