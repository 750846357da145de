"""Tensor, the define-by-run graph, and reverse-mode differentiation.

A :class:`Function` is one node of the graph: ``forward`` maps input arrays to
one output array and may keep what its ``backward`` needs on ``self``;
``backward`` maps the gradient of the output to one gradient per input.
Both work on raw backend arrays, never on Tensors, so building and walking
the graph costs a few attribute writes per op.

This module knows nothing of concrete ops: ``deepgrad.ops`` defines them. Tensor
declares its operators and methods (``+``, ``@``, ``.sum()``, ...) here, each a
one-line call of the op function that does the work; those functions are bound
by the import at the end of this module (see there why it comes last).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from . import backend
from .backend import Array, Device, DeviceLike, DTypeLike

if TYPE_CHECKING:
    from typing_extensions import Self


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph."""
    return _GradMode.enabled


class no_grad(contextlib.ContextDecorator):
    """Build no graph inside the block (or the decorated function)."""

    mode = False

    def __init__(self) -> None:
        self._previous: list[bool] = []  # a stack, so one decorated function may recurse

    def __enter__(self) -> Self:
        self._previous.append(_GradMode.enabled)
        _GradMode.enabled = self.mode
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        _GradMode.enabled = self._previous.pop()
        return False


class enable_grad(no_grad):
    """Record the graph inside the block, even within ``no_grad``."""

    mode = True


class set_grad_enabled:
    """Turn graph recording on or off: as a call, or as a ``with`` block that restores it."""

    def __init__(self, mode: bool) -> None:
        self._previous = _GradMode.enabled
        _GradMode.enabled = bool(mode)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        _GradMode.enabled = self._previous
        return False


# ----------------------------------------------------------------------------
# Conversion of user data


def as_array(data: TensorLike, dtype: DTypeLike | None = None, copy: bool = False, where: str = "tensor") -> Array:
    """Convert user data to a backend array following deepgrad's dtype rules.

    NumPy arrays keep a floating dtype (float64 stays float64); Python floats
    and lists of them take the default dtype; integers become int64; bools stay
    bool. Anything else (strings, objects, complex) is refused.
    """
    array: Any  # a backend array or NumPy scalar until the end
    if isinstance(data, Tensor):
        array = data.data
    elif backend.is_array(data) or isinstance(data, np.generic):
        array = data
    else:
        try:
            array = np.asarray(data)
        except TypeError:  # a list of another device's arrays: NumPy may not convert them (CuPy refuses)
            first = _first_device_array(data)
            if first is None:
                raise
            array = _device_list(data, backend.device_of(first), where)
        if array.dtype.kind == "f" and dtype is None:
            array = array.astype(backend.get_default_dtype())
    kind = array.dtype.kind
    if dtype is not None:
        dtype = np.dtype(dtype)
        if kind not in "biuf":
            raise TypeError(f"{where}: cannot convert data of dtype {array.dtype} to {dtype}")
        array = array.astype(dtype, copy=copy)
    elif kind in "iu" and array.dtype != backend.int64:
        array = array.astype(backend.int64)
    elif kind not in "biuf":
        raise TypeError(f"{where}: unsupported data of dtype {array.dtype}; expected floating, integer or bool data")
    elif copy:
        array = array.copy()
    if isinstance(array, np.generic):
        array = np.asarray(array)
    return array


def _device_list(data: Any, device: Device, where: str) -> Array:
    """A (nested) list or tuple of equally shaped arrays of ``device`` (CuPy's 0-d results, say) as one
    array there, made by that device's module."""
    try:
        return device.xp.asarray(data)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{where}: a list holding arrays of device '{device}' must hold only such arrays, of one shape ({error})"
        ) from None


def _first_device_array(data: Any) -> Any:
    if isinstance(data, (list, tuple)):
        for item in data:
            found = _first_device_array(item)
            if found is not None:
                return found
        return None
    return data if backend.is_array(data) and backend.device_of(data) is not backend.CPU else None


def _check_can_require_grad(dtype: np.dtype[Any], where: str) -> None:
    if dtype.kind != "f":
        raise TypeError(f"{where}: only floating-point tensors can require gradients, got dtype {dtype}")


# ----------------------------------------------------------------------------
# Hooks


class RemovableHandle:
    """Returned by the ``register_*hook`` methods; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict[int, Any]) -> None:
        self.hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    @classmethod
    def add(cls, hooks: dict[int, Any], hook: Callable[..., Any]) -> RemovableHandle:
        """Put ``hook`` into the dict ``hooks`` under a new handle's id; returns the handle."""
        handle = cls(hooks)
        hooks[handle.id] = hook
        return handle

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class GradientHooks:
    """What backward does with one tensor's gradient besides passing it on: the hooks registered
    with :meth:`Tensor.register_hook` (id -> fn), then keeping it in ``.grad`` (``retain_grad``)."""

    __slots__ = ("hooks", "retains")

    def __init__(self) -> None:
        self.hooks: dict[int, GradientHook] = {}
        self.retains = False

    def apply(self, tensor: Tensor, grad: Array) -> Array:
        """``grad`` after every hook, each given the previous one's result; a hook returns None (keep it)
        or a replacement of the same shape (an array or a Tensor)."""
        for hook in list(self.hooks.values()):
            try:
                result = hook(grad)
            except Exception as error:
                raise RuntimeError(
                    f"gradient hook {hook_name(hook)} of a tensor of shape {tuple(tensor.shape)} raised "
                    f"{type(error).__name__}: {error}"
                ) from error
            if result is None:
                continue
            result = result.data if isinstance(result, Tensor) else result
            if getattr(result, "shape", None) != grad.shape:
                raise RuntimeError(
                    f"gradient hook {hook_name(hook)} returned {getattr(result, 'shape', type(result))} "
                    f"for a gradient of shape {grad.shape}; return None or an array of that shape"
                )
            grad = result
        return grad


def hook_name(hook: object) -> str:
    """How an error names a hook: its qualified name, or its repr."""
    return getattr(hook, "__qualname__", None) or repr(hook)


# ----------------------------------------------------------------------------
# Tensor


class Tensor:
    """An array that remembers the op that made it, so gradients can flow back.

    ``data`` is the backend array; ``grad`` is ``None`` until a backward pass
    reaches this tensor, then an array of the same shape and dtype, summed over
    backward passes until zeroed.

    The operators and the op methods (``+``, ``@``, ``<``, ``.sum()``, ``.reshape()``, ...) are
    each one call of the op function in ``deepgrad.ops`` that does the work and documents it.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_hooks", "__weakref__")
    # Make NumPy defer to Tensor's reflected operators (ndarray + Tensor -> Tensor).
    __array_ufunc__ = None

    data: Array
    grad: Array | None
    requires_grad: bool
    _ctx: Function | None
    _hooks: GradientHooks | None

    def __init__(self, data: TensorLike, requires_grad: bool = False, dtype: DTypeLike | None = None) -> None:
        self.data = as_array(data, dtype=dtype, where="Tensor")
        if requires_grad:
            _check_can_require_grad(self.data.dtype, "Tensor")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._hooks = None  # a GradientHooks once a hook is registered or retain_grad() called

    # -- properties ---------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def device(self) -> Device:
        """The device holding the data."""
        return backend.device_of(self.data)

    @property
    def T(self) -> Tensor:
        """All axes reversed."""
        return _T(self)

    def numel(self) -> int:
        return self.data.size

    def dim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an op that records grad."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Function | None:
        """The Function that produced this tensor, or None for a leaf."""
        return self._ctx

    # -- conversion ---------------------------------------------------------
    def item(self) -> int | float:
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a Python scalar, got shape {self.shape}")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory with the tensor); CPU tensors only."""
        if backend.device_of(self.data) is not backend.CPU:
            raise TypeError(
                f"numpy: the tensor is on device '{backend.device_of(self.data)}'; "
                "use .cpu().numpy() to copy it to the host first"
            )
        return self.data

    def tolist(self) -> Any:
        """The data as nested Python lists (a Python scalar for a 0-d tensor)."""
        return self.data.tolist()

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        """NumPy's view of the tensor (a host copy for tensors on another device)."""
        data = backend.to_host(self.data)
        if dtype is not None and dtype != data.dtype:
            return data.astype(dtype)
        return data.copy() if copy and data is self.data else data

    def detach(self) -> Tensor:
        """A tensor sharing the data, cut from the graph."""
        return Tensor._wrap(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Self:
        if requires_grad:
            _check_can_require_grad(self.data.dtype, "requires_grad_")
        elif self._ctx is not None:
            raise RuntimeError("requires_grad_: cannot turn off gradients of a non-leaf tensor; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> Self:
        """Keep ``.grad`` for this non-leaf tensor in the next backward pass (after its hooks)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        self._gradient_hooks().retains = True
        return self

    def register_hook(self, hook: GradientHook) -> RemovableHandle:
        """Call ``hook(grad)`` whenever backward computes this tensor's gradient: a backend array of the
        tensor's shape, like ``.grad`` — for a non-leaf the total over all its uses, before it flows
        on to its inputs; for a leaf, before it is added to ``.grad``. A non-None return (an array or
        Tensor of the same shape) replaces the gradient. Returns a handle whose ``remove()``
        unregisters the hook."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
        return RemovableHandle.add(self._gradient_hooks().hooks, hook)

    def _gradient_hooks(self) -> GradientHooks:
        if self._hooks is None:
            self._hooks = GradientHooks()
        return self._hooks

    @staticmethod
    def _wrap(data: Array) -> Tensor:
        """A tensor around an existing array (no copy, no checks): the op fast path."""
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out.requires_grad = False
        out._ctx = None
        out._hooks = None
        return out

    # -- python protocol ----------------------------------------------------
    __hash__ = object.__hash__  # by identity: defining __eq__ (elementwise) must not make tensors unhashable

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; use .any() or .all()"
            )
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        body = np.array2string(backend.to_host(self.data), separator=", ", prefix="tensor(")
        extras = []
        device = backend.device_of(self.data)
        if device is not backend.CPU:
            extras.append(f"device='{device}'")
        if self.data.dtype not in (backend.get_default_dtype(), backend.int64, backend.bool_):
            extras.append(f"dtype={self.data.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # -- operators and op methods ----------------------------------------------
    # Each calls the op function that does the work (one Python call more than calling it directly); a
    # method's arguments are the function's after its first, names and defaults included.
    def __add__(self, other: TensorLike) -> Tensor:
        return _add(self, other)

    def __radd__(self, other: TensorLike) -> Tensor:
        return _add(other, self)

    def __sub__(self, other: TensorLike) -> Tensor:
        return _sub(self, other)

    def __rsub__(self, other: TensorLike) -> Tensor:
        return _sub(other, self)

    def __mul__(self, other: TensorLike) -> Tensor:
        return _mul(self, other)

    def __rmul__(self, other: TensorLike) -> Tensor:
        return _mul(other, self)

    def __truediv__(self, other: TensorLike) -> Tensor:
        return _div(self, other)

    def __rtruediv__(self, other: TensorLike) -> Tensor:
        return _div(other, self)

    def __pow__(self, exponent: TensorLike) -> Tensor:
        return _pow(self, exponent)

    def __rpow__(self, base: TensorLike) -> Tensor:
        return _pow(base, self)

    def __matmul__(self, other: TensorLike) -> Tensor:
        return _matmul(self, other)

    def __rmatmul__(self, other: TensorLike) -> Tensor:
        return _matmul(other, self)

    def __neg__(self) -> Tensor:
        return _neg(self)

    def __getitem__(self, index: Index) -> Tensor:
        return _getitem(self, index)

    # Comparisons give a bool tensor around the raw result, outside the graph.
    def __lt__(self, other: TensorLike) -> Tensor:
        return _compare(self, other, np.less)

    def __le__(self, other: TensorLike) -> Tensor:
        return _compare(self, other, np.less_equal)

    def __gt__(self, other: TensorLike) -> Tensor:
        return _compare(self, other, np.greater)

    def __ge__(self, other: TensorLike) -> Tensor:
        return _compare(self, other, np.greater_equal)

    def __eq__(self, other: TensorLike) -> Tensor:  # type: ignore[override]  # elementwise, as in NumPy and PyTorch
        return _compare(self, other, np.equal)

    def __ne__(self, other: TensorLike) -> Tensor:  # type: ignore[override]
        return _compare(self, other, np.not_equal)

    # -- elementwise math (ops/arithmetic.py) ---------------------------------
    def exp(self) -> Tensor:
        return _exp(self)

    def log(self) -> Tensor:
        return _log(self)

    def sqrt(self) -> Tensor:
        return _sqrt(self)

    def abs(self) -> Tensor:
        return _abs(self)

    __abs__ = abs

    def clamp(self, min: float | Tensor | None = None, max: float | Tensor | None = None) -> Tensor:  # noqa: A002
        return _clamp(self, min, max)

    clip = clamp

    def maximum(self, b: TensorLike) -> Tensor:
        return _maximum(self, b)

    def minimum(self, b: TensorLike) -> Tensor:
        return _minimum(self, b)

    def matmul(self, b: TensorLike) -> Tensor:
        return _matmul(self, b)

    def pow(self, b: TensorLike) -> Tensor:
        return _pow(self, b)

    # -- reductions (ops/reduction.py) ------------------------------------------
    def sum(
        self, dim: Dims | None = None, keepdim: bool = False, *, axis: Dims | None = None, keepdims: bool | None = None
    ) -> Tensor:
        return _sum(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mean(
        self, dim: Dims | None = None, keepdim: bool = False, *, axis: Dims | None = None, keepdims: bool | None = None
    ) -> Tensor:
        return _mean(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def max(
        self, dim: Dims | None = None, keepdim: bool = False, *, axis: Dims | None = None, keepdims: bool | None = None
    ) -> Tensor:
        return _max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(
        self, dim: Dims | None = None, keepdim: bool = False, *, axis: Dims | None = None, keepdims: bool | None = None
    ) -> Tensor:
        return _min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(
        self,
        dim: Dims | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
        unbiased: bool | None = None,
        axis: Dims | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        return _var(self, dim, keepdim, correction=correction, unbiased=unbiased, axis=axis, keepdims=keepdims)

    def std(
        self,
        dim: Dims | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
        unbiased: bool | None = None,
        axis: Dims | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        return _std(self, dim, keepdim, correction=correction, unbiased=unbiased, axis=axis, keepdims=keepdims)

    def argmax(
        self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None, keepdims: bool | None = None
    ) -> Tensor:
        return _argmax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmin(
        self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None, keepdims: bool | None = None
    ) -> Tensor:
        return _argmin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    # -- shape (ops/shape.py) ---------------------------------------------------
    def reshape(self, *shape: Size) -> Tensor:
        return _reshape_sizes(self, shape)

    view = reshape

    def permute(self, *dims: Size) -> Tensor:
        return _permute(self, *dims)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return _transpose(self, dim0, dim1)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _flatten(self, start_dim, end_dim)

    def expand(self, *sizes: Size) -> Tensor:
        return _expand(self, *sizes)

    def broadcast_to(self, shape: Size) -> Tensor:
        return _broadcast_to(self, shape)

    def squeeze(self, dim: Dims | None = None) -> Tensor:
        return _squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        return _unsqueeze(self, dim)

    # -- activations (ops/activation.py) ----------------------------------------
    def relu(self) -> Tensor:
        return _relu(self)

    def sigmoid(self) -> Tensor:
        return _sigmoid(self)

    def tanh(self) -> Tensor:
        return _tanh(self)

    def softmax(self, dim: int = -1) -> Tensor:
        return _softmax(self, dim)

    def log_softmax(self, dim: int = -1) -> Tensor:
        return _log_softmax(self, dim)

    # -- device and dtype (ops/device.py, ops/arithmetic.py) ---------------------
    def to(self, *args: DeviceLike | DTypeLike, **kwargs: DeviceLike | DTypeLike) -> Tensor:
        return _to(self, *args, **kwargs)

    def cpu(self) -> Tensor:
        return _cpu(self)

    def cuda(self) -> Tensor:
        return _cuda(self)

    def astype(self, dtype: DTypeLike) -> Tensor:
        return _cast(self, dtype)

    # Last in the class: after them, ``float`` in this class body names the method, not the type.
    def float(self) -> Tensor:
        return _cast(self, np.float32)

    def double(self) -> Tensor:
        return _cast(self, np.float64)

    # -- autograd -----------------------------------------------------------
    def backward(self, grad: TensorLike | None = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` is the gradient of some scalar with respect to ``self``; it may
        be omitted only when ``self`` holds one element. The graph is freed
        afterwards unless ``retain_graph`` is true.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: the tensor does not require grad and has no grad_fn; "
                "did you create the inputs with requires_grad=True, or run inside no_grad()?"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for a one-element output, "
                    f"got shape {self.shape}; pass grad= of that shape"
                )
            grad_array = np.ones_like(self.data)
        else:
            grad_array = as_array(grad, dtype=self.data.dtype, copy=True, where="backward")
            grad_array = backend.to_device_of(grad_array, self.data)
            if grad_array.shape != self.data.shape:
                raise ValueError(
                    f"backward: grad has shape {grad_array.shape}, expected the tensor's shape {self.shape}"
                )
        run_backward(self, grad_array, retain_graph)


#: A Tensor, or what one can be made of: a backend array, a Python or NumPy scalar, nested lists. Ops take
#: these wherever a constant may stand for a tensor (either side of ``+``, a loss's target).
TensorLike: TypeAlias = Tensor | npt.ArrayLike
#: One dim, or several (PyTorch's ``dim``, NumPy's ``axis``).
Dims: TypeAlias = int | Sequence[int]
#: One size of ``reshape(2, 3)``, or the whole shape as in ``reshape((2, 3))``.
Size: TypeAlias = int | Sequence[int]
#: What ``tensor[index]`` takes, as NumPy does: ints, slices, ``None``, ``...``, index arrays (or Tensors,
#: lists) of ints or bools, and tuples of those.
IndexPart: TypeAlias = int | np.integer[Any] | slice | EllipsisType | None | Tensor | Array | list[Any]
Index: TypeAlias = IndexPart | tuple[IndexPart, ...]
#: A hook of :meth:`Tensor.register_hook`: the gradient in, None (keep it) or a replacement out.
GradientHook: TypeAlias = Callable[[Array], Array | Tensor | None]


# ----------------------------------------------------------------------------
# Function and the backward pass


# Anomaly mode: every op's forward output and every gradient of backward checked for NaN/Inf. The switch is
# this module-level boolean, read by Function.__call__ on every op (one global load and test while off) and
# by run_backward once per pass; set_anomaly_detection flips it (deepgrad.diagnostics.detect_anomaly is the
# user's way).
_anomaly_enabled = False


class AnomalyMode:
    """Where anomaly mode's messages say an op ran: ``where``, a callable naming the module being run
    (set by ``detect_anomaly(model)``, which tracks it), or None."""

    where: Callable[[], str | None] | None = None


def is_anomaly_enabled() -> bool:
    """Whether ops and gradients are being checked for NaN/Inf (see :func:`set_anomaly_detection`)."""
    return _anomaly_enabled


def set_anomaly_detection(enabled: bool) -> None:
    """Check every op's forward output and backward gradients for NaN/Inf from now on (or stop)."""
    global _anomaly_enabled
    _anomaly_enabled = bool(enabled)


class Function:
    """One differentiable operation.

    Subclasses implement ``forward(*arrays) -> array`` and
    ``backward(grad) -> tuple`` (one gradient or None per input, each of its
    input's shape). ``backward`` must not modify ``grad`` in place and must not
    return an array it saved (return a new array or a view of ``grad``).
    ``self.needs_input_grad`` tells, during forward and backward, which inputs
    want a gradient, so work for the others can be skipped.
    """

    inputs: tuple[Tensor, ...] | None = None  # the input Tensors; None again once the graph is freed
    needs_input_grad: tuple[bool, ...] = ()
    anomaly_where: str | None = None  # in anomaly mode: the module the op ran in, when known

    def __call__(self, *inputs: Tensor) -> Tensor:
        if _GradMode.enabled:
            needs = tuple([t.requires_grad for t in inputs])
            record = True in needs
            if record:
                self.needs_input_grad = needs
        else:
            record = False
        try:
            data = self.forward(*[t.data for t in inputs])
        except (ValueError, TypeError, IndexError) as error:
            raise _op_error(self, inputs, error) from None
        if isinstance(data, np.generic):  # NumPy returns scalars from 0-d computations
            data = np.asarray(data)
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out._hooks = None
        if record:
            self.inputs = inputs
            out.requires_grad = True
            out._ctx = self
        else:
            out.requires_grad = False
            out._ctx = None
        if _anomaly_enabled:
            _check_forward(self, inputs, out)
        return out

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    def forward(self, *arrays: Any) -> Array:
        """The op on its inputs' arrays (a subclass names them: ``forward(self, x, weight)``)."""
        raise NotImplementedError

    def backward(self, grad: Array) -> tuple[Array | None, ...]:
        """One gradient (or None) per input, each of its input's shape, from the output's ``grad``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _check_forward(fn: Function, inputs: tuple[Tensor, ...], out: Tensor) -> None:
    """In anomaly mode, after each op: its output must be finite. Remembers the module the op ran in
    for the backward's check."""
    fn.anomaly_where = AnomalyMode.where() if AnomalyMode.where else None
    if not _all_finite(out.data):
        received = [i for i, t in enumerate(inputs) if not _all_finite(t.data)]
        story = (
            f"received non-finite input {received[0]} (from outside any op: the data or a parameter?)"
            if received
            else "produced it from finite inputs"
        )
        raise _anomaly(
            f"the forward of op '{fn.name}'{_in(fn)} gave {_count_bad(out.data)} of output "
            f"{tuple(out.shape)}: it {story}"
        )


def _all_finite(array):
    return array.dtype.kind != "f" or bool(np.isfinite(array).all())


def _count_bad(array):
    nan = int(np.isnan(array).sum())
    inf = int(np.isinf(array).sum())
    return (
        ", ".join(part for part in (f"{nan} NaN" if nan else "", f"{inf} Inf" if inf else "") if part)
        + f" in {array.size} values"
    )


def _in(fn):
    where = getattr(fn, "anomaly_where", None)
    return f" (in module {where})" if where else ""


def _anomaly(message):
    from .errors import AnomalyDetected

    return AnomalyDetected(f"detect_anomaly: {message}")


def _check_gradients(fn, out_grad, input_grads):
    """In anomaly mode: the first gradient ``fn.backward`` returned with NaN/Inf is an error."""
    for i, g in enumerate(input_grads):
        if g is not None and not _all_finite(g):
            story = (
                "from an incoming gradient that was already non-finite"
                if not _all_finite(out_grad)
                else "from a finite incoming gradient"
            )
            raise _anomaly(
                f"the backward of op '{fn.name}'{_in(fn)} gave {_count_bad(g)} of the gradient of its "
                f"input {i} {tuple(g.shape)}, {story}"
            )


def _op_error(fn, inputs, error):
    devices = [backend.device_of(t.data) for t in inputs]
    if len(set(devices)) > 1:
        described = ", ".join(f"{tuple(t.shape)} on {d}" for t, d in zip(inputs, devices))
        return RuntimeError(
            f"{fn.name}: expected all tensors on one device, got {described}; move them with .to(device)"
        )
    described = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in inputs)
    return type(error)(f"{fn.name}: {error} (inputs: {described})")


def run_backward(root: Tensor, grad: Array, retain_graph: bool = False) -> None:
    """Propagate ``grad`` from ``root`` to every leaf that requires grad.

    Functions are visited in topological order (Kahn's algorithm on consumer
    counts), iteratively, so graph depth is unlimited and a node reused many
    times is differentiated once with the sum of its gradients. A None
    gradient from a backward counts as zero; a Function whose consumers all
    gave None is skipped. A tensor with hooks (or retain_grad) gets its total
    gradient: a non-leaf's when its Function is reached, a leaf's at the end.
    """
    claimed: set[int] = set()  # ids of arrays now owned by some leaf's .grad
    assigned: set[int] = set()  # ids of leaves whose .grad was created in this pass
    if root._hooks is not None:
        grad = _hooked(root, grad, claimed, assigned)
    root_fn = root._ctx
    if root_fn is None:
        _accumulate_leaf(root, grad, claimed, assigned)
        return

    # Pass 1: how many consumers inside this graph each Function's output has, and which outputs have hooks.
    pending = {root_fn: 0}
    hooked: dict[Function, Tensor] = {}  # Function -> its output tensor, where that tensor has hooks
    stack = [root_fn]
    while stack:
        fn = stack.pop()
        inputs = fn.inputs
        if inputs is None:
            raise RuntimeError(
                "backward: trying to backward through the graph a second time (its saved "
                "arrays were freed after the first backward); pass retain_graph=True to the "
                f"first backward call (at {fn.name})"
            )
        for t in inputs:
            f = t._ctx
            if f is not None:
                if f in pending:
                    pending[f] += 1
                else:
                    pending[f] = 1
                    stack.append(f)
                    if t._hooks is not None:
                        hooked[f] = t

    # Pass 2: differentiate each Function once all its consumers are done.
    check = _anomaly_enabled
    grads = {root_fn: grad}
    hooked_leaves: dict[Tensor, Array] = {}  # leaf -> the sum of its gradients so far, where the leaf has hooks
    ready = [root_fn]
    while ready:
        fn = ready.pop()
        inputs = fn.inputs
        assert inputs is not None  # pass 1 saw every Function's inputs
        out_grad = grads.pop(fn, None)
        if hooked and out_grad is not None and fn in hooked:
            out_grad = _hooked(hooked[fn], out_grad, claimed, assigned)
        input_grads = (None,) * len(inputs) if out_grad is None else fn.backward(out_grad)
        if check and out_grad is not None:
            _check_gradients(fn, out_grad, input_grads)
        for t, g in zip(inputs, input_grads):
            if not t.requires_grad:
                continue
            f = t._ctx
            if f is None:  # a leaf
                if g is not None:
                    if t._hooks is None:
                        _accumulate_leaf(t, g, claimed, assigned)
                    else:
                        hooked_leaves[t] = hooked_leaves[t] + g if t in hooked_leaves else g
                continue
            if g is not None:
                if f in grads:
                    grads[f] = grads[f] + g
                else:
                    grads[f] = g
            count = pending[f] - 1
            if count:
                pending[f] = count
            else:
                ready.append(f)
        if not retain_graph:
            fn.__dict__.clear()  # drop what fn saved for backward; fn.inputs reads None again
    for leaf, g in hooked_leaves.items():
        _accumulate_leaf(leaf, _hooked(leaf, g, claimed, assigned), claimed, assigned)


def _hooked(t, grad, claimed, assigned):
    """``t``'s total gradient through its hooks, kept in ``t.grad`` when a non-leaf retains it."""
    grad = t._hooks.apply(t, grad)
    if t._hooks.retains and t._ctx is not None:
        _accumulate_leaf(t, grad, claimed, assigned)
    return grad


def _accumulate_leaf(t, g, claimed, assigned):
    """Add ``g`` into ``t.grad``, making sure ``t.grad`` owns its memory.

    Backward functions may return views of their incoming gradient or the same
    array for two inputs; a leaf's .grad is accumulated in place later, so it
    must never alias another array of the graph or another leaf's grad.
    """
    if g.shape != t.data.shape:
        raise RuntimeError(f"backward: internal error, gradient of shape {g.shape} for a tensor of shape {t.shape}")
    if g.dtype != t.data.dtype:
        g = g.astype(t.data.dtype)
    current = t.grad
    if current is None:
        if isinstance(g, np.generic):
            g = np.array(g)  # a 0-d array rather than a NumPy scalar
        elif g.base is not None or id(g) in claimed or not getattr(g.flags, "writeable", True):
            g = g.copy()
        t.grad = g
        claimed.add(id(g))
        assigned.add(id(t))
    elif id(t) in assigned:
        # created in this pass: it may still be referenced by pending gradients
        total = current + g
        t.grad = np.array(total) if isinstance(total, np.generic) else total
        claimed.add(id(t.grad))
    else:
        current += g


# ----------------------------------------------------------------------------
# Factories


def tensor(
    data: TensorLike, requires_grad: bool = False, dtype: DTypeLike | None = None, device: DeviceLike | None = None
) -> Tensor:
    """A new leaf tensor holding a copy of ``data``, on ``device`` (default: where ``data`` is).

    NumPy float arrays keep their dtype; Python floats/lists take the default
    dtype (float32); integer data becomes int64.
    """
    array = as_array(data, dtype=dtype, copy=True, where="tensor")
    if device is not None:
        array = backend.to_device(array, device)
    out = Tensor._wrap(array)
    if requires_grad:
        _check_can_require_grad(out.data.dtype, "tensor")
        out.requires_grad = True
    return out


# ----------------------------------------------------------------------------
# The op functions behind Tensor's operators and methods.
#
# Imported last, on purpose: every module of deepgrad.ops imports Function and Tensor from this module,
# so the ops can only be imported once those exist, and this is the one import of this module that goes
# up the layers. Placed at the end, it runs when everything above is defined, whichever module of
# deepgrad is imported first; it binds each name once, so a method call costs one Python call more than
# calling the op function, and nothing per call (no lookup in a table, no import).
from .ops.activation import log_softmax as _log_softmax  # noqa: E402
from .ops.activation import relu as _relu  # noqa: E402
from .ops.activation import sigmoid as _sigmoid  # noqa: E402
from .ops.activation import softmax as _softmax  # noqa: E402
from .ops.activation import tanh as _tanh  # noqa: E402
from .ops.arithmetic import abs as _abs  # noqa: E402
from .ops.arithmetic import add as _add  # noqa: E402
from .ops.arithmetic import cast as _cast  # noqa: E402
from .ops.arithmetic import clamp as _clamp  # noqa: E402
from .ops.arithmetic import compare as _compare  # noqa: E402
from .ops.arithmetic import div as _div  # noqa: E402
from .ops.arithmetic import exp as _exp  # noqa: E402
from .ops.arithmetic import log as _log  # noqa: E402
from .ops.arithmetic import matmul as _matmul  # noqa: E402
from .ops.arithmetic import maximum as _maximum  # noqa: E402
from .ops.arithmetic import minimum as _minimum  # noqa: E402
from .ops.arithmetic import mul as _mul  # noqa: E402
from .ops.arithmetic import neg as _neg  # noqa: E402
from .ops.arithmetic import pow as _pow  # noqa: E402
from .ops.arithmetic import sqrt as _sqrt  # noqa: E402
from .ops.arithmetic import sub as _sub  # noqa: E402
from .ops.device import cpu as _cpu  # noqa: E402
from .ops.device import cuda as _cuda  # noqa: E402
from .ops.device import to as _to  # noqa: E402
from .ops.reduction import argmax as _argmax  # noqa: E402
from .ops.reduction import argmin as _argmin  # noqa: E402
from .ops.reduction import max as _max  # noqa: E402
from .ops.reduction import mean as _mean  # noqa: E402
from .ops.reduction import min as _min  # noqa: E402
from .ops.reduction import std as _std  # noqa: E402
from .ops.reduction import sum as _sum  # noqa: E402
from .ops.reduction import var as _var  # noqa: E402
from .ops.shape import T as _T  # noqa: E402
from .ops.shape import broadcast_to as _broadcast_to  # noqa: E402
from .ops.shape import expand as _expand  # noqa: E402
from .ops.shape import flatten as _flatten  # noqa: E402
from .ops.shape import getitem as _getitem  # noqa: E402
from .ops.shape import permute as _permute  # noqa: E402
from .ops.shape import reshape_sizes as _reshape_sizes  # noqa: E402
from .ops.shape import squeeze as _squeeze  # noqa: E402
from .ops.shape import transpose as _transpose  # noqa: E402
from .ops.shape import unsqueeze as _unsqueeze  # noqa: E402
