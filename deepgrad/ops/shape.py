"""Shape ops: reshape, permute, expand, indexing, concatenation, padding.

They move or copy elements without arithmetic, so each backward is the
inverse movement of the gradient (with sums where elements were repeated).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..backend import Device
from ..tensor import Dims, Function, Index, Size, Tensor, TensorLike
from .arguments import wrap_dim
from .arithmetic import unbroadcast


def _shape_arg(shape: tuple[Any, ...], op: str) -> tuple[int, ...]:
    """Accept both f(2, 3) and f((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(s, (int, np.integer)) for s in shape):
        raise TypeError(f"{op}: expected integer sizes, got {shape!r}")
    return tuple(int(s) for s in shape)


class Reshape(Function):
    """out = x with a new shape (same elements in the same order)"""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, grad):
        return (grad.reshape(self.input_shape),)


class Permute(Function):
    """out = x with its axes reordered; the gradient is permuted back"""

    def __init__(self, dims):
        self.dims = dims

    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, grad):
        dims = self.dims  # the inverse permutation, as Python ints (a device array's transpose takes no host array)
        return (grad.transpose(sorted(range(len(dims)), key=dims.__getitem__)),)


class Expand(Function):
    """out = x broadcast to a larger shape (a view); dx = g summed over the broadcast axes"""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return np.broadcast_to(x, self.shape)

    def backward(self, grad):
        return (unbroadcast(grad, self.input_shape),)


class GetItem(Function):
    """out = x[index];  dx = g scattered into zeros (added where an index repeats)"""

    def __init__(self, index, advanced):
        self.index, self.advanced = index, advanced

    def forward(self, x):
        self.x_like = x
        return x[self.index]

    def backward(self, grad):
        dx = np.zeros_like(self.x_like, dtype=grad.dtype)
        if self.advanced:
            _add_at(dx, self.index, grad)
        else:
            dx[self.index] = grad
        return (dx,)


def _add_at(target, index, values):
    """target[index] += values, adding up repeated indices (CuPy spells np.add.at cupyx.scatter_add)."""
    if type(target).__module__.startswith("cupy"):
        import cupyx

        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


class Concatenate(Function):
    """out = inputs joined along ``axis``; each gradient is its slice of g"""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *arrays):
        self.bounds = np.cumsum([a.shape[self.axis] for a in arrays])[:-1].tolist()
        return np.concatenate(arrays, axis=self.axis)

    def backward(self, grad):
        return tuple(np.split(grad, self.bounds, axis=self.axis))


class Stack(Function):
    """out = inputs stacked along a new ``axis``; each gradient is its slice of g"""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *arrays):
        return np.stack(arrays, axis=self.axis)

    def backward(self, grad):
        return tuple(np.moveaxis(grad, self.axis, 0))


class Pad(Function):
    """out = x padded with a constant;  dx = g with the padding cut away"""

    def __init__(self, pad_width, value):
        self.pad_width, self.value = pad_width, value

    def forward(self, x):
        self.inner = tuple(slice(before, before + n) for (before, _), n in zip(self.pad_width, x.shape))
        return np.pad(x, self.pad_width, mode="constant", constant_values=self.value)

    def backward(self, grad):
        return (grad[self.inner],)


class PadFromInside(Function):
    """out = x padded with its own elements: along each padded axis, position i of the output holds
    x's element sources[axis][i] (reflect, replicate, circular; :func:`padding_sources`);
    dx = g added back, along each axis, to the positions its elements came from."""

    def __init__(self, sources):
        self.sources = sources

    def forward(self, x):
        self.input_shape = x.shape
        for axis, source in enumerate(self.sources):
            if source is not None:
                x = np.take(x, source, axis=axis)
        return x

    def backward(self, grad):
        for axis in reversed(range(len(self.sources))):
            source = self.sources[axis]
            if source is None:
                continue
            folded = np.zeros_like(grad, shape=grad.shape[:axis] + (self.input_shape[axis],) + grad.shape[axis + 1 :])
            _add_at(folded, (slice(None),) * axis + (source,), grad)
            grad = folded
        return (grad,)


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def padding_sources(size: int, before: int, after: int, mode: str, axis: int) -> np.ndarray:
    """For an axis of ``size`` padded by (before, after) in ``mode``, the index in x of each output
    position: its mirror image without the edge (reflect, PyTorch's: both widths under the size),
    the nearest edge (replicate), or the position modulo the size (circular: widths up to the size)."""
    positions = np.arange(-before, size + after)
    if mode == "replicate":
        if size == 0:
            raise ValueError(f"pad: mode 'replicate' has nothing to repeat on axis {axis} of size 0")
        return np.clip(positions, 0, size - 1)
    limit = size if mode == "circular" else size - 1
    if max(before, after) > limit:
        raise ValueError(
            f"pad: mode {mode!r} takes widths of at most {limit} on axis {axis} of size {size}, got ({before}, {after})"
        )
    if mode == "circular":
        return positions % size
    return (size - 1) - np.abs((size - 1) - np.abs(positions))  # reflect


# ----------------------------------------------------------------------------
# Public functions


def reshape(x: Tensor, *shape: Size) -> Tensor:
    """The same elements in a new shape: reshape(x, 2, 3) or reshape(x, (2, 3)); -1 infers one size."""
    return reshape_sizes(x, shape)


def reshape_sizes(x: Tensor, sizes: tuple[Size, ...]) -> Tensor:
    """:func:`reshape` with the sizes after ``x`` as one tuple, ``(2, 3)`` or ``((2, 3),)``: what
    Tensor.reshape passes on (unpacking ``*shape`` into another call costs more than the call)."""
    shape = _shape_arg(sizes, "reshape")
    if shape == x.data.shape:
        return x
    return Reshape(shape)(x)


def permute(x: Tensor, *dims: Size) -> Tensor:
    """The axes reordered: permute(x, 2, 0, 1) or permute(x, (2, 0, 1))."""
    dims = _shape_arg(dims, "permute")
    ndim = x.data.ndim
    if not all(-ndim <= d < ndim for d in dims) or sorted(d % ndim for d in dims) != list(range(ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {ndim} axes of shape {x.shape}")
    dims = tuple(d % ndim for d in dims)
    return Permute(dims)(x)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two axes (PyTorch's transpose)."""
    shape = x.data.shape
    dims = list(range(len(shape)))
    a, b = wrap_dim(dim0, shape, "transpose"), wrap_dim(dim1, shape, "transpose")
    dims[a], dims[b] = dims[b], dims[a]
    return Permute(tuple(dims))(x)


def T(x: Tensor) -> Tensor:
    """All axes reversed."""
    return Permute(tuple(reversed(range(x.data.ndim))))(x)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge the axes start_dim..end_dim into one."""
    shape = x.data.shape
    if not shape:
        return reshape_sizes(x, (1,))
    start, end = wrap_dim(start_dim, shape, "flatten"), wrap_dim(end_dim, shape, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    if start == end:  # nothing to merge: x itself, as PyTorch
        return x
    merged = math.prod(shape[start : end + 1])
    return reshape_sizes(x, shape[:start] + (merged,) + shape[end + 1 :])


def expand(x: Tensor, *sizes: Size) -> Tensor:
    """Broadcast to ``sizes`` (new axes in front; -1 keeps an axis), as PyTorch's expand."""
    sizes = _shape_arg(sizes, "expand")
    shape = x.data.shape
    lead = len(sizes) - len(shape)
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {shape} to fewer dims {sizes}")
    target = tuple(shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    return broadcast_to(x, target)


def broadcast_to(x: Tensor, shape: Size) -> Tensor:
    """Broadcast to ``shape`` by NumPy's rules (a view; the gradient is summed back)."""
    shape = _shape_arg((shape,), "broadcast_to")
    if shape == x.data.shape:
        return x
    try:
        fits = np.broadcast_shapes(x.data.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}")
    return Expand(shape)(x)


def squeeze(x: Tensor, dim: Dims | None = None) -> Tensor:
    """Drop axes of size 1 (all of them, or those in ``dim`` that have size 1)."""
    shape = x.data.shape
    dims: Iterable[int]
    if dim is None:
        dims = range(len(shape))
    else:
        dims = [wrap_dim(d, shape, "squeeze") for d in ((dim,) if isinstance(dim, int) else dim)]
    drop = {d for d in dims if shape[d] == 1}
    return reshape_sizes(x, tuple(s for i, s in enumerate(shape) if i not in drop))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert an axis of size 1 at ``dim``."""
    shape = x.data.shape
    d = wrap_dim(dim, shape, "unsqueeze", new_axis=True)
    return reshape_sizes(x, shape[:d] + (1,) + shape[d:])


def _plain_index(index: Index, device: Device) -> tuple[Any, bool]:
    """Replace Tensors by their arrays and lists by arrays, index arrays on ``device``; tell
    whether NumPy's advanced indexing (which can repeat elements) is involved: an index array of
    any device (``backend.is_array``: a CuPy array is no ndarray) other than a 0-d integer one,
    which indexes like an integer."""
    parts = index if isinstance(index, tuple) else (index,)
    plain: list[Any] = []
    advanced = False
    part: Any
    for part in parts:
        if isinstance(part, Tensor):
            part = part.data
        elif isinstance(part, list):
            part = np.asarray(part)
        if part is not None and not isinstance(part, (int, slice)) and part is not Ellipsis and backend.is_array(part):
            if part.dtype.kind not in "biu":
                raise IndexError(f"getitem: index arrays must be integer or bool, got dtype {part.dtype}")
            part = backend.to_device(part, device)
            advanced = advanced or not (part.ndim == 0 and part.dtype.kind in "iu")
        plain.append(part)
    # A single boolean mask selects each element at most once: plain assignment suffices.
    repeats = advanced and not (len(plain) == 1 and plain[0].dtype == np.bool_)
    return (tuple(plain) if isinstance(index, tuple) else plain[0]), repeats


def getitem(x: Tensor, index: Index) -> Tensor:
    """``x[index]`` with NumPy's basic and advanced indexing (Tensors and lists as index arrays)."""
    index, repeats = _plain_index(index, backend.device_of(x.data))
    return GetItem(index, repeats)(x)


def concatenate(tensors: Iterable[TensorLike], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = _tensor_list(tensors, "concatenate")
    axis = dim if axis is None else axis
    ndim = tensors[0].data.ndim
    a = wrap_dim(axis, tensors[0].data.shape, "concatenate")
    for t in tensors[1:]:
        if t.data.ndim != ndim or t.shape[:a] + t.shape[a + 1 :] != tensors[0].shape[:a] + tensors[0].shape[a + 1 :]:
            raise ValueError(f"concatenate: shapes {[tuple(t.shape) for t in tensors]} differ outside dim {axis}")
    return Concatenate(a)(*tensors)


def stack(tensors: Iterable[TensorLike], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    tensors = _tensor_list(tensors, "stack")
    axis = dim if axis is None else axis
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack: expected tensors of equal shape, got {[tuple(t.shape) for t in tensors]}")
    return Stack(wrap_dim(axis, tensors[0].data.shape, "stack", new_axis=True))(*tensors)


def _tensor_list(tensors: Iterable[TensorLike], op: str) -> list[Tensor]:
    """Tensors as given, other arrays as Tensors on the device of the first Tensor among them."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    device = backend.CPU if first is None else backend.device_of(first.data)
    return [t if isinstance(t, Tensor) else Tensor._wrap(backend.to_device(Tensor(t).data, device)) for t in tensors]


def pad(
    x: Tensor, pad_width: int | Sequence[int] | Sequence[Sequence[int]], value: float = 0, mode: str = "constant"
) -> Tensor:
    """Padding with NumPy-style widths: an int, (before, after), or one pair per axis. ``mode``:
    "constant" (``value``), or PyTorch's "reflect" (the mirror image without the edge), "replicate"
    (the edge repeated) or "circular" (the other end's elements)."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}, got {mode!r}")
    ndim = x.data.ndim
    if ndim == 0:
        raise ValueError("pad: a 0-d tensor has no axis to pad; reshape it to 1-d first")
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (ndim, 2))
    except ValueError:
        raise ValueError(
            f"pad: pad_width {pad_width!r} does not fit a {ndim}-d tensor; expected an int, "
            f"a (before, after) pair or {ndim} pairs"
        ) from None
    if (widths < 0).any():
        raise ValueError(f"pad: pad widths must be non-negative, got {pad_width!r}")
    pairs = tuple(map(tuple, widths.tolist()))
    if mode == "constant":
        return Pad(pairs, value)(x)
    sources = tuple(
        None if before == after == 0 else padding_sources(size, before, after, mode, axis)
        for axis, (size, (before, after)) in enumerate(zip(x.shape, pairs))
    )
    return PadFromInside(tuple(None if s is None else backend.to_device_of(s, x.data) for s in sources))(x)


_pad_per_axis = pad  # reachable in pad_last_dims, whose argument ``pad`` (PyTorch's name) hides it


def pad_last_dims(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Padding with PyTorch's flat tuple, last dim first: (left, right, top, bottom, ...), in ``mode``
    (see :func:`pad`; ``value``, 0 by default, for "constant"); ``F.pad``, the same op as :func:`pad`."""
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expected an even number of at most {2 * input.ndim} widths, got {pad!r}")
    pairs = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        pairs[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return _pad_per_axis(input, pairs, 0.0 if value is None else value, mode)
