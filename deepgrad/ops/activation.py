"""Activation functions and (log-)softmax.

Each backward reuses what forward computed (the output, or a mask), so an
activation costs one pass forward and one pass back. Softmax subtracts the
maximum first, so inputs like ±1e4 neither overflow nor give NaN.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from .. import backend, kernels, parallel
from ..backend import Array
from ..tensor import Function, Tensor
from .arguments import hyperparameter, wrap_dim
from .arithmetic import as_floating


@functools.cache
def host_erf() -> Callable[[np.ndarray], np.ndarray]:
    """erf for host arrays: SciPy's vectorized C ufunc when SciPy is installed, else math.erf
    elementwise (exact, slower). SciPy is imported here, at the first GELU, not with deepgrad:
    importing it takes about a quarter of a second and changes the process's warning filters."""
    try:
        from scipy.special import erf
    except ImportError:
        erf_scalar = np.frompyfunc(math.erf, 1, 1)
        return lambda x: erf_scalar(x).astype(x.dtype)
    return erf


def _erf(x: Array) -> Array:
    """erf elementwise; CuPy arrays take CuPy's own (SciPy's ufunc does not dispatch to it)."""
    if type(x).__module__.startswith("cupy"):
        from cupyx.scipy.special import erf

        return erf(x)
    return host_erf()(x)


CLIP_MIN_SIZE = 1 << 16  # elements from which against_zero clips (measured crossover on float32)


def against_zero(ufunc: np.ufunc, x: Array) -> Array:
    """``ufunc(0, x)`` for np.maximum or np.minimum, elementwise: x where it wins or ties (so
    x's own zero, -0.0 included, as torch.relu(-0.0) = -0.0), 0 elsewhere, NaN kept.

    NumPy runs these against a scalar in a loop 2-3x slower than its SIMD
    loop for two arrays. From 2**16 elements on, np.clip with both bounds
    given (0 and ±inf) is faster still: its own SIMD loop, 2.5x the speed of
    the two-array loop on a conv layer's activations. Below, x (viewed as
    rows: of the largest power of two ≤ 16384 dividing the size, else x's
    own rows) meets a row of zeros, which takes the two-array loop.
    """
    size = x.size
    if size >= CLIP_MIN_SIZE:
        zero, inf = x.dtype.type(0), x.dtype.type(np.inf)
        low, high = (zero, inf) if ufunc is np.maximum else (-inf, zero)
        if not parallel.splits_elementwise(x):  # one pass here, without the split's calls (mlp-eval: 1.5 % of its step)
            return np.clip(x, low, high)
        return parallel.elementwise(lambda x, out: np.clip(x, low, high, out=out), x)
    row = min(size & -size, 16384)
    xp = backend.get_array_module(x)
    if row >= 64 and x.flags.c_contiguous:
        return ufunc(xp.zeros(row, dtype=x.dtype), x.reshape(-1, row)).reshape(x.shape)
    if x.ndim and x.shape[-1] >= 32:
        return ufunc(xp.zeros(x.shape[-1], dtype=x.dtype), x)
    return ufunc(0, x)


class ReLU(Function):
    """out = max(x, 0);  dx = g · [out ≠ 0]  (g at x > 0, and at NaN as PyTorch's kernel)"""

    def forward(self, x):
        out = against_zero(np.maximum, x)
        self.out = out
        return out

    def backward(self, grad):
        if parallel.splits_elementwise(self.out):
            return (parallel.elementwise(relu_grad, self.out, grad),)
        return (relu_grad(self.out, grad),)  # a small pass: without the split's calls (mlp-bn: 0.985 of its step)


class AddReLU(Function):
    """out = max(a + b, 0);  da = db = g · [out ≠ 0]: relu(a + b) as one op (a residual block's end),
    bit for bit the two ops. With numba (:mod:`deepgrad.kernels.elementwise`), one pass over a part
    of the arrays a thread, the sum never written out; else NumPy's sum, then the ReLU's op."""

    @property
    def name(self) -> str:
        """As graphs and error messages call it."""
        return "add+relu"

    def forward(self, a, b):
        self.relu = ReLU()  # keeps the output, for its gradient
        module = kernels.for_array("elementwise", a)
        same_layout = a.shape == b.shape and a.dtype == b.dtype and a.flags.c_contiguous and b.flags.c_contiguous
        if module is None or not same_layout:
            return self.relu.forward(a + b)
        out = np.empty_like(a)
        flat_a, flat_b, flat_out = a.reshape(-1), b.reshape(-1), out.reshape(-1)
        work = out.size // parallel.PASS_ELEMENTS_PER_ELEMENT
        parallel.map_parts(
            lambda part: module.add_relu(flat_a, flat_b, flat_out, part.start, part.stop),
            parallel.parts(flat_out, work) if parallel.splits_elementwise(out) else [slice(0, out.size)],
        )
        self.relu.out = out
        return out

    def backward(self, grad):
        (grad,) = self.relu.backward(grad)
        return grad, grad


def relu_grad(y: Array, grad: Array, out: Array | None = None) -> Array:
    """out = g · [y ≠ 0] for ReLU's output y (0 or -0.0 where x ≤ 0, NaN where x is: PyTorch's
    kernel zeroes g where y ≤ 0, so NaN's g passes), through a float mask (float × bool would run
    NumPy's slower casting loop), into ``out`` or a new array. A new one is the comparison's bool
    mask cast (faster for a small array than the comparison writing floats; slower for a large one)."""
    if out is None:
        out = (y != 0).astype(grad.dtype)
    else:
        np.not_equal(y, 0, out=out)
    out *= grad
    return out


def stable_sigmoid(x: Array) -> Array:
    """σ(x) = e^min(x,0) / (1 + e^−|x|): no overflow for any x, full precision on both tails.

    Branch-free on purpose: np.where is ~20x slower than arithmetic on the
    random masks of activations.
    """
    return np.exp(against_zero(np.minimum, x)) / (1 + np.exp(-np.abs(x)))


def select(mask: Array, if_true: Array | np.generic, if_false: Array | np.generic) -> Array:
    """Elementwise ``if_true`` where mask else ``if_false``, exactly, by arithmetic (one term is 0):
    for finite values of both (0 times an infinite or NaN value left out is NaN)."""
    return mask * if_true + ~mask * if_false


class LeakyReLU(Function):
    """out = x if x > 0 else slope·x;  dx = g · (1 if x > 0 else slope)"""

    def __init__(self, negative_slope):
        self.negative_slope = negative_slope

    def forward(self, x):
        self.slope = select(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))
        return x * self.slope

    def backward(self, grad):
        return (grad * self.slope,)


class ELU(Function):
    """out = x if x > 0 else α(eˣ − 1);  dx = g if x > 0 else g · α·eˣ

    (α·eˣ rather than out + α, which cancels to zero for very negative x.)
    """

    def __init__(self, alpha):
        self.alpha = alpha

    def forward(self, x):
        self.positive = x > 0
        self.negative_part = against_zero(np.minimum, x)
        return against_zero(np.maximum, x) + self.alpha * np.expm1(self.negative_part)  # one of the terms is 0

    def backward(self, grad):
        slope = select(self.positive, grad.dtype.type(1), self.alpha * np.exp(self.negative_part))
        return (grad * slope,)


class Sigmoid(Function):
    """out = 1 / (1 + e⁻ˣ);  dx = g · out · (1 − out)"""

    def forward(self, x):
        self.out = stable_sigmoid(x)
        return self.out

    def backward(self, grad):
        out = self.out
        return (grad * out * (1 - out),)


class Tanh(Function):
    """out = tanh x;  dx = g · (1 − out²)"""

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, grad):
        out = self.out
        return (grad * (1 - out * out),)


class GELU(Function):
    """out = x·Φ(x) with Φ(x) = ½(1 + erf(x/√2));  dx = g · (Φ(x) + x·φ(x))

    With approximate="tanh": Φ(x) ≈ ½(1 + tanh(√(2/π)(x + 0.044715x³))).
    """

    def __init__(self, approximate):
        self.approximate = approximate

    def forward(self, x):
        self.x = x
        if self.approximate == "tanh":
            self.inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
            self.t = np.tanh(self.inner)
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + _erf(x * (1 / math.sqrt(2))))
        return x * self.cdf

    def backward(self, grad):
        x = self.x
        if self.approximate == "tanh":
            t = self.t
            d_inner = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
            return (grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner),)
        pdf = np.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return (grad * (self.cdf + x * pdf),)


class Softplus(Function):
    """out = log(1 + e^(βx)) / β, or x where βx > threshold;  dx = g · σ(βx)"""

    def __init__(self, beta, threshold):
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        self.bx = x * self.beta
        self.linear = self.bx > self.threshold
        soft = np.logaddexp(0, self.bx) / self.beta
        # np.where, not select: x = +inf or -inf in the other branch would make select's 0·x NaN
        # (where is slow on random masks only; this one is nearly all False)
        return np.where(self.linear, x, soft)

    def backward(self, grad):
        return (grad * select(self.linear, grad.dtype.type(1), stable_sigmoid(self.bx)),)


class Softmax(Function):
    """out = e^(x − max) / Σ e^(x − max);  dx = out · (g − Σ g·out)"""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        e /= e.sum(axis=self.axis, keepdims=True)
        self.out = e
        return e

    def backward(self, grad):
        out = self.out
        return (out * (grad - (grad * out).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    """out = x − max − log Σ e^(x − max);  dx = g − softmax · Σ g"""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        self.out = log_softmax_array(x, self.axis)
        return self.out

    def backward(self, grad):
        return (grad - np.exp(self.out) * grad.sum(axis=self.axis, keepdims=True),)


def log_softmax_array(x: Array, axis: int | None) -> Array:
    """Stable log-softmax of an array (shared with the fused cross-entropy)."""
    shifted = x - x.max(axis=axis, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted


# ----------------------------------------------------------------------------
# Public functions


def _floating(x: Tensor, op: str) -> None:
    if x.data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating tensor, got dtype {x.dtype}")


def _axis(x: Tensor, dim: int, op: str) -> int | None:
    """``dim`` as an axis of ``x``; None for a 0-d tensor (its one element is the whole distribution)."""
    axis = wrap_dim(dim, x.data.shape, op, wrap_scalar=True)
    return axis if x.data.ndim else None


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise."""
    _floating(x, "relu")
    return ReLU()(x)


def add_relu(a: Tensor, b: Tensor) -> Tensor:
    """relu(a + b) for tensors of one shape, bit for bit, as one op (with the compiled kernels, one
    pass: the sum is never written out): :class:`deepgrad.nn.Sequential` calls it for a
    :class:`deepgrad.nn.Residual` followed by a ReLU layer."""
    _floating(a, "add_relu")
    _floating(b, "add_relu")
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(
            f"add_relu: expected a and b of one shape and dtype, got {tuple(a.shape)} {a.dtype} "
            f"and {tuple(b.shape)} {b.dtype}"
        )
    return AddReLU()(a, b)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope · x."""
    _floating(x, "leaky_relu")
    return LeakyReLU(hyperparameter(negative_slope))(x)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha · (eˣ − 1)."""
    _floating(x, "elu")
    return ELU(hyperparameter(alpha))(x)


def sigmoid(x: Tensor) -> Tensor:
    """σ(x); integer and bool tensors give the default float dtype, as in PyTorch."""
    return Sigmoid()(as_floating(x))


def tanh(x: Tensor) -> Tensor:
    """tanh(x); integer and bool tensors give the default float dtype, as in PyTorch."""
    return Tanh()(as_floating(x))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x · Φ(x) with the exact erf form of Φ, or its tanh approximation (``approximate="tanh"``)."""
    _floating(x, "gelu")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU(approximate)(x)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(βx)) / β, and x itself where βx > threshold."""
    _floating(x, "softplus")
    return Softplus(hyperparameter(beta), hyperparameter(threshold))(x)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """e^x / Σ e^x along ``dim`` (the maximum subtracted first)."""
    _floating(x, "softmax")
    return Softmax(_axis(x, dim, "softmax"))(x)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """x − log Σ e^x along ``dim`` (the maximum subtracted first)."""
    _floating(x, "log_softmax")
    return LogSoftmax(_axis(x, dim, "log_softmax"))(x)


def hardmax(x: Tensor, dim: int = -1) -> Tensor:
    """One-hot of the argmax along ``dim`` (first maximum on ties); has no gradient."""
    axis = _axis(x, dim, "hardmax")
    data = x.data
    if axis is None:  # a 0-d tensor is a single class: its own argmax
        return Tensor._wrap(np.ones_like(data))
    winner = np.expand_dims(data.argmax(axis=axis), axis)
    classes = np.arange(data.shape[axis]).reshape([-1 if a == axis else 1 for a in range(data.ndim)])
    return Tensor._wrap((winner == backend.to_device_of(classes, data)).astype(data.dtype))
