"""Elementwise arithmetic, matmul and the elementwise math functions.

Binary ops broadcast like NumPy; their backward sums each gradient back to
its input's shape (:func:`unbroadcast`). Python scalars are "weak": they take
the tensor's dtype, so ``x * 0.5`` stays float32. Tensors of different dtypes
meet as in PyTorch (:func:`promoted`), so float32 data never turns float64
by meeting integers.
"""

from __future__ import annotations

from typing import cast as typing_cast

import numpy as np

from .. import backend
from ..backend import Array, DTypeLike
from ..tensor import Function, Tensor, TensorLike, as_array
from .arguments import hyperparameter
from .linear import split_product, split_products


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, size in enumerate(shape) if size == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def as_operand(value: TensorLike, like: Tensor) -> Tensor:
    """``value`` as a Tensor to combine with ``like``, on its device; scalars take ``like``'s dtype."""
    if isinstance(value, Tensor):
        return value
    array = None
    if isinstance(value, (int, float, np.number, np.bool_)) or (isinstance(value, np.ndarray) and value.ndim == 0):
        if like.data.dtype.kind == "f":
            array = np.asarray(value, dtype=like.data.dtype)
        elif isinstance(value, (float, np.floating)):
            array = np.asarray(value, dtype=backend.get_default_dtype())
    if array is None:
        array = as_array(value, where="operand")
    if type(like.data) is not np.ndarray:  # constants follow the tensor to its device
        device = backend.device_of(like.data)
        if array.ndim == 0:  # filled in on the device: no host-to-device copy
            array = device.xp.full((), array[()], dtype=array.dtype)
        else:
            array = backend.to_device(array, device)
    return Tensor._wrap(array)


# ----------------------------------------------------------------------------
# Binary ops


class Add(Function):
    """out = a + b"""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, grad):
        sa, sb = self.shapes
        return unbroadcast(grad, sa), unbroadcast(grad, sb)


class Sub(Function):
    """out = a - b"""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, grad):
        sa, sb = self.shapes
        need_a, need_b = self.needs_input_grad
        return (
            unbroadcast(grad, sa) if need_a else None,
            unbroadcast(-grad, sb) if need_b else None,
        )


class Mul(Function):
    """out = a * b;  da = g * b,  db = g * a"""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        a, b = self.a, self.b
        need_a, need_b = self.needs_input_grad
        return (
            unbroadcast(grad * b, a.shape) if need_a else None,
            unbroadcast(grad * a, b.shape) if need_b else None,
        )


class Div(Function):
    """out = a / b;  da = g / b,  db = −g · (a/b)/b  (not a/b², whose b² overflows from |b| ≈ 1.8e19 in
    float32; PyTorch's order of operations)"""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        a, b = self.a, self.b
        need_a, need_b = self.needs_input_grad
        return (
            unbroadcast(grad / b, a.shape) if need_a else None,
            unbroadcast(-grad * (a / b / b), b.shape) if need_b else None,
        )


class Pow(Function):
    """out = a ** b;  da = g * b * a^(b-1),  db = g * out * log(a)

    As in PyTorch, da is 0 where b == 0 and db is 0 where a == 0 and b >= 0,
    so that x**0 and 0**y have finite gradients.
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a**b
        return self.out

    def backward(self, grad):
        a, b, out = self.a, self.b, self.out
        need_a, need_b = self.needs_input_grad
        da = db = None
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 and log 0, masked out below
            if need_a:
                local = np.where(b == 0, 0, b * a ** (b - 1))
                da = unbroadcast(grad * local, a.shape)
            if need_b:
                local = np.where((a == 0) & (b >= 0), 0, out * np.log(a))
                db = unbroadcast(grad * local, b.shape)
        return da, db


def scalar_power(x, p):
    """x ** p for a constant p as PyTorch computes it: x·x for 2, √x for 0.5 and 1/√x for −0.5, so
    that (−0.0) ** −0.5 is −inf and (−inf) ** −0.5 NaN (C's pow gives +inf and 0)."""
    if p == 2:
        return x * x
    if p == 0.5:
        return np.sqrt(x)
    if p == -0.5:
        return 1 / np.sqrt(x)
    return x**p


class PowScalar(Function):
    """out = x ** p for a constant p;  dx = g * p * x^(p-1)  (powers as :func:`scalar_power`)"""

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, x):
        self.x = x
        return scalar_power(x, self.exponent)

    def backward(self, grad):
        x, p = self.x, self.exponent
        if p == 0:
            return (np.zeros_like(grad),)
        if p == 2:
            return (grad * (2 * x),)
        return (grad * (p * scalar_power(x, p - 1)),)


class Maximum(Function):
    """out = max(a, b) elementwise; ties split the gradient in half, and where a or b is NaN
    both get all of it (as PyTorch)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, grad):
        return _split_between(grad, self.a, self.b, np.less, self.needs_input_grad)


class Minimum(Function):
    """out = min(a, b) elementwise; ties split the gradient in half, and where a or b is NaN
    both get all of it (as PyTorch)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.minimum(a, b)

    def backward(self, grad):
        return _split_between(grad, self.a, self.b, np.greater, self.needs_input_grad)


def _split_between(grad, a, b, loses, needs):
    """Each input's share of g: 0 where it ``loses`` to the other, ½ at ties, else 1 (so 1 for both
    where either is NaN: PyTorch's where(a == b, g/2, g) with the loser's share filled with 0)."""
    tie = 0.5 * (a == b)
    need_a, need_b = needs
    share_a = (1 - loses(a, b) - tie).astype(grad.dtype, copy=False) if need_a else None
    share_b = (1 - loses(b, a) - tie).astype(grad.dtype, copy=False) if need_b else None
    return (
        unbroadcast(grad * share_a, a.shape) if need_a else None,
        unbroadcast(grad * share_b, b.shape) if need_b else None,
    )


class MatMul(Function):
    """out = a @ b (NumPy's matmul: 1-d, 2-d and broadcast batches);
    da = g @ bᵀ,  db = aᵀ @ g"""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("both operands must have at least one dimension")
        k_a = a.shape[-1]
        k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if k_a != k_b:
            raise ValueError(
                f"shapes {a.shape} and {b.shape} cannot be multiplied: "
                f"expected a.shape[-1] == b.shape[-2] ({k_a} != {k_b})"
            )
        self.a, self.b = a, b
        if a.ndim == 2 and b.ndim == 2:  # rows split over deepgrad's threads when large
            return split_product(a, b)
        try:
            return a @ b
        except ValueError:  # the matrix sizes fit, so the batch dimensions do not
            raise ValueError(
                f"batch dimensions {a.shape[:-2]} of {a.shape} and {b.shape[:-2]} of {b.shape} do not broadcast"
            ) from None

    def backward(self, grad):
        a, b = self.a, self.b
        need_a, need_b = self.needs_input_grad
        # Treat vectors as matrices: a (k,) as (1, k), b (k,) as (k, 1).
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if b.ndim == 1:
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = g2[..., None, :]
        da = db = None
        if a.ndim == 2 and b.ndim == 2:
            if need_a and need_b:
                return tuple(split_products((grad, b.T), (a.T, grad)))
            return (split_product(grad, b.T) if need_a else None), (split_product(a.T, grad) if need_b else None)
        if need_a:
            da = g2 @ b2.swapaxes(-1, -2)
            da = unbroadcast(da, a2.shape).reshape(a.shape)
        if need_b:
            db = a2.swapaxes(-1, -2) @ g2
            db = unbroadcast(db, b2.shape).reshape(b.shape)
        return da, db


class Where(Function):
    """out = a where cond else b;  da = g·cond,  db = g·¬cond"""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return np.where(self.condition, a, b)

    def backward(self, grad):
        sa, sb = self.shapes
        zero = np.zeros_like(grad, shape=())
        need_a, need_b = self.needs_input_grad
        cond = self.condition
        return (
            unbroadcast(np.where(cond, grad, zero), sa) if need_a else None,
            unbroadcast(np.where(cond, zero, grad), sb) if need_b else None,
        )


# ----------------------------------------------------------------------------
# Unary ops


class Neg(Function):
    """out = -x"""

    def forward(self, x):
        return -x

    def backward(self, grad):
        return (-grad,)


class Exp(Function):
    """out = eˣ;  dx = g · out"""

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, grad):
        return (grad * self.out,)


class Log(Function):
    """out = ln x;  dx = g / x"""

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, grad):
        return (grad / self.x,)


class Sqrt(Function):
    """out = √x;  dx = g / (2·out)"""

    def forward(self, x):
        self.out = np.sqrt(x)
        return self.out

    def backward(self, grad):
        return (grad / (2 * self.out),)


class Abs(Function):
    """out = |x|;  dx = g · sign(x), sign(x) = [x > 0] − [x < 0]  (0 at x = 0 and at NaN, as PyTorch)"""

    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, grad):
        x = self.x
        return (grad * ((x > 0).astype(grad.dtype) - (x < 0)),)


class Clamp(Function):
    """out = min(max(x, low), high);  dx = g where low ≤ x ≤ high, else 0"""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, x):
        self.x = x
        return np.clip(x, self.low, self.high)

    def backward(self, grad):
        x, low, high = self.x, self.low, self.high
        if low is None:
            inside = x <= high
        elif high is None:
            inside = x >= low
        else:
            inside = (x >= low) & (x <= high)
        return (grad * inside,)


class ClampBetween(Function):
    """out = min(max(x, low), high) for Tensor bounds, either left out (``has_low``, ``has_high`` tell
    which are among the inputs), broadcasting; each input's gradient as PyTorch's:
    dx = g where low ≤ x ≤ high,  dlow = g where x < low < high,  dhigh = g where x > high or high < low
    (a NaN anywhere gives none of them g there)."""

    def __init__(self, has_low, has_high):
        self.has_low, self.has_high = has_low, has_high

    def forward(self, x, *bounds):
        low = bounds[0] if self.has_low else None
        high = bounds[-1] if self.has_high else None
        self.x, self.low, self.high = x, low, high
        out = x if low is None else np.maximum(x, low)
        return out if high is None else np.minimum(out, high)

    def backward(self, grad):
        x, low, high, needs = self.x, self.low, self.high, self.needs_input_grad
        grads = []
        if needs[0]:
            inside = (x <= high) if low is None else (x >= low) if high is None else (x >= low) & (x <= high)
            grads.append(unbroadcast(grad * inside, x.shape))
        else:
            grads.append(None)
        if low is not None:
            below = x < low if high is None else (x < low) & (low < high)
            grads.append(unbroadcast(grad * below, low.shape) if needs[1] else None)
        if high is not None:
            above = x > high if low is None else (x > high) | (high < low)
            grads.append(unbroadcast(grad * above, high.shape) if needs[-1] else None)
        return tuple(grads)


class Cast(Function):
    """out = x converted to another dtype; the gradient is converted back."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.input_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, grad):
        return (grad.astype(self.input_dtype),)


# ----------------------------------------------------------------------------
# Public functions (Tensor's operators and methods call them)


def _operands(a: TensorLike, b: TensorLike) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors of dtypes that meet as in PyTorch: a Python scalar takes the
    other's dtype rules (an integer or bool tensor meeting a float scalar becomes floating, the
    default dtype; NumPy alone would give float64), and two tensors are :func:`promoted`."""
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            a = Tensor._wrap(as_array(a, where="operand"))
        else:
            if isinstance(a, (float, np.floating)):
                b = as_floating(b)
            return promoted(as_operand(a, b), b)
    if isinstance(b, (float, np.floating)):
        a = as_floating(a)
    return promoted(a, as_operand(b, a))


# Kinds of dtype in PyTorch's order of categories: bool < integer < floating.
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def promoted(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Tensors ``a`` and ``b`` converted where PyTorch's type promotion differs from NumPy's: the
    operand of the lower category takes the other's dtype (float32 with int64 gives float32, where
    NumPy gives float64), and within one category a 0-d tensor does not widen a tensor with
    dimensions (float32 data with a float64 0-d tensor stays float32). Otherwise NumPy's rules hold
    (float32 with float64 data gives float64, as in PyTorch)."""
    dtype_a, dtype_b = a.data.dtype, b.data.dtype
    if dtype_a is dtype_b or dtype_a == dtype_b:
        return a, b
    category_a, category_b = _CATEGORY[dtype_a.kind], _CATEGORY[dtype_b.kind]
    if category_a != category_b:
        return (a, cast(b, dtype_a)) if category_a > category_b else (cast(a, dtype_b), b)
    if a.data.ndim == 0 and b.data.ndim:
        return cast(a, dtype_b), b
    if b.data.ndim == 0 and a.data.ndim:
        return a, cast(b, dtype_a)
    return a, b


def add(a: TensorLike, b: TensorLike) -> Tensor:
    """a + b, broadcasting like NumPy; either side may be a Tensor, array or scalar."""
    return Add()(*_operands(a, b))


def sub(a: TensorLike, b: TensorLike) -> Tensor:
    """a − b, broadcasting like NumPy; either side may be a Tensor, array or scalar."""
    return Sub()(*_operands(a, b))


def mul(a: TensorLike, b: TensorLike) -> Tensor:
    """a · b, broadcasting like NumPy; either side may be a Tensor, array or scalar."""
    return Mul()(*_operands(a, b))


def div(a: TensorLike, b: TensorLike) -> Tensor:
    """a / b, broadcasting like NumPy; either side may be a Tensor, array or scalar. True division:
    integer operands give the default float dtype, as in PyTorch."""
    a, b = _operands(a, b)
    if a.data.dtype.kind in "biu" and b.data.dtype.kind in "biu":
        a, b = cast(a, backend.get_default_dtype()), cast(b, backend.get_default_dtype())
    return Div()(a, b)


def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    """a @ b (NumPy's matmul semantics), broadcasting like NumPy; either side may be a Tensor, array or scalar."""
    return MatMul()(*_operands(a, b))


def maximum(a: TensorLike, b: TensorLike) -> Tensor:
    """max(a, b) elementwise, broadcasting like NumPy; either side may be a Tensor, array or scalar."""
    return Maximum()(*_operands(a, b))


def minimum(a: TensorLike, b: TensorLike) -> Tensor:
    """min(a, b) elementwise, broadcasting like NumPy; either side may be a Tensor, array or scalar."""
    return Minimum()(*_operands(a, b))


def compare(x: Tensor, other: TensorLike, ufunc: np.ufunc) -> Tensor:
    """``ufunc(x, other)`` for a comparison ufunc (np.less, np.equal, ...): a bool tensor around the
    raw result, outside the graph (Tensor's ``<``, ``==``, ...)."""
    theirs_data = as_operand(other, x).data  # constants follow x to its device
    mine, theirs = backend.device_of(x.data), backend.device_of(theirs_data)
    if mine is not theirs:
        raise RuntimeError(
            f"{ufunc.__name__}: expected all tensors on one device, got {x.shape} on {mine}, "
            f"{theirs_data.shape} on {theirs}; move them with .to(device)"
        )
    return Tensor._wrap(ufunc(x.data, theirs_data))


def pow(a: TensorLike, b: TensorLike) -> Tensor:  # noqa: A001 - mirrors torch.pow
    """a ** b; a constant Python exponent uses the cheaper PowScalar (an integer tensor to a
    float power becomes floating, the default dtype, as in PyTorch)."""
    if not isinstance(a, Tensor):
        a = as_operand(a, typing_cast(Tensor, b))  # one of them is a Tensor
    if isinstance(b, int) and not isinstance(b, bool):
        return PowScalar(b)(a)
    if isinstance(b, float):
        return PowScalar(float(b))(as_floating(a))  # float(): a np.float64 would promote float32
    return Pow()(*promoted(a, as_operand(b, a)))


def where(condition: TensorLike, a: TensorLike, b: TensorLike) -> Tensor:
    """Elementwise ``a if condition else b``; ``condition`` is a bool array or Tensor."""
    mask: Array
    if isinstance(condition, Tensor):
        mask = condition.data
    elif backend.is_array(condition):  # an array of any device stays where it is (np.asarray refuses CuPy's)
        mask = typing_cast(Array, condition)
    else:
        mask = np.asarray(condition)
    if mask.dtype != np.bool_:
        raise TypeError(f"where: condition must be boolean, got dtype {mask.dtype}")
    if not isinstance(a, Tensor):
        a = as_operand(a, b) if isinstance(b, Tensor) else Tensor._wrap(as_array(a))
    mask = backend.to_device_of(mask, a.data)
    return Where(mask)(*promoted(a, as_operand(b, a)))


def neg(x: Tensor) -> Tensor:
    """−x"""
    return Neg()(x)


def as_floating(x: Tensor) -> Tensor:
    """``x``, converted to the default float dtype if it holds integers or bools: the input of
    exp, log, sqrt and float powers, as in PyTorch (NumPy alone would give float64)."""
    return cast(x, backend.get_default_dtype()) if x.data.dtype.kind in "biu" else x


def exp(x: Tensor) -> Tensor:
    """eˣ elementwise; integer and bool tensors give the default float dtype, as in PyTorch."""
    return Exp()(as_floating(x))


def log(x: Tensor) -> Tensor:
    """ln x elementwise; integer and bool tensors give the default float dtype, as in PyTorch."""
    return Log()(as_floating(x))


def sqrt(x: Tensor) -> Tensor:
    """√x elementwise; integer and bool tensors give the default float dtype, as in PyTorch."""
    return Sqrt()(as_floating(x))


def abs(x: Tensor) -> Tensor:  # noqa: A001 - mirrors torch.abs
    """|x| elementwise."""
    return Abs()(x)


def clamp(x: Tensor, min: float | Tensor | None = None, max: float | Tensor | None = None) -> Tensor:  # noqa: A002
    """Limit ``x`` to [min, max]; either bound may be None. Bounds are numbers, or Tensors (then any
    number beside one is a Tensor too) that broadcast with ``x`` and get gradients as in PyTorch
    (:class:`ClampBetween`); a bound above the other wins: min(max(x, min), max)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds = []
        for bound in (min, max):
            if bound is not None:
                x, bound = _operands(x, bound)
                bounds.append(bound)
        return ClampBetween(min is not None, max is not None)(x, *bounds)
    return Clamp(hyperparameter(min), hyperparameter(max))(x)


def clip(x: Tensor, min: float | Tensor | None = None, max: float | Tensor | None = None) -> Tensor:  # noqa: A002
    """Alias of :func:`clamp`."""
    return clamp(x, min, max)


def cast(x: Tensor, dtype: DTypeLike) -> Tensor:
    """``x`` converted to ``dtype`` (differentiable; a no-op when the dtype matches)."""
    dtype = np.dtype(dtype)
    if dtype == x.data.dtype:
        return x
    if x.requires_grad and dtype.kind != "f":
        return Tensor._wrap(x.data.astype(dtype))
    return Cast(dtype)(x)
