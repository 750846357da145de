"""A strict stand-in for a GPU that fails where CuPy fails, so device handling is tested without one.

Arrays on the "fake" device are :class:`FakeArray`: a NEP-18 duck array that wraps a host
``numpy.ndarray`` and is *not* an ndarray subclass, as CuPy's ndarray is not. NumPy functions and
ufuncs given one dispatch to it (``__array_function__``/``__array_ufunc__``) and compute with
NumPy's own code, so results are bit-identical to the CPU's; what CuPy (the pinned range,
``cupy-cuda12x>=14,<15``) does differently, the stand-in does too:

* ``np.asarray(fake)`` / ``__array__`` raises TypeError, as CuPy refuses implicit conversion to
  the host; so does any NumPy function that converts rather than dispatches
  (``np.ascontiguousarray``, ``np.asarray([fake_0d, ...])``).
* A host ``numpy.ndarray`` mixed into a ufunc, a NumPy function, an index or an assignment raises
  TypeError (CuPy: "Unsupported type"); Python and NumPy scalars mix freely.
* ``isinstance(fake, np.ndarray)`` is False: code that tells arrays apart by that test treats a
  device array as a scalar or a list, as it would a CuPy array (use ``backend.is_array``).
* Reductions and scalar-producing functions return 0-d arrays, not NumPy scalars.
* ``x[idx] = v`` with repeated integer indices keeps the *first* value written (NumPy keeps the
  last; CuPy keeps an arbitrary one): a gradient that needs the sum must scatter-add.
* Out-of-range integer-array indices wrap around (CuPy does not raise; NumPy does).
* A batch's upload (``Device.upload``: a copy stream on CUDA) lands only when the work that reads
  it is made to wait for it; read before, it holds NaN and -1.
* Scalars promote as in CuPy 14, which follows NEP 50 like NumPy 2 (a Python float is "weak":
  float32 data stays float32; a NumPy float64 scalar or 0-d array is not). CuPy 13 promoted NumPy
  scalars the NumPy-1 way; it is outside the pinned range.

Every host synchronization a CuPy array would force is recorded in :data:`SYNCS`: an attempt at
``__array__``, ``.item()``, ``.tolist()``, ``float()``, ``int()``, ``bool()``, ``operator.index``,
``repr``/``format``, and each copy to the host (``backend.to_host``). :func:`count_syncs` counts
them over a block of code.
"""

from __future__ import annotations

import contextlib
import copy as _copy

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from deepgrad import backend

#: Every host synchronization seen, as (what, shape): "__array__", "item", "float", ... in order.
SYNCS: list[tuple[str, tuple[int, ...]]] = []


def _sync(what, host):
    SYNCS.append((what, tuple(host.shape)))


@contextlib.contextmanager
def count_syncs():
    """``with count_syncs() as syncs:`` — ``syncs`` lists the synchronizations inside the block."""
    start = len(SYNCS)
    seen: list[tuple[str, tuple[int, ...]]] = []
    try:
        yield seen
    finally:
        seen.extend(SYNCS[start:])


class _Flags:
    """CuPy's flags: contiguity and ownership, no ``writeable``."""

    def __init__(self, host):
        self.c_contiguous = host.flags.c_contiguous
        self.f_contiguous = host.flags.f_contiguous
        self.owndata = host.flags.owndata

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous, "OWNDATA": self.owndata}[key]


class FakeArray(NDArrayOperatorsMixin):
    """An array on the "fake" device: a host ndarray behind CuPy's interface (see the module)."""

    __slots__ = ("_host",)

    def __init__(self, host):
        assert type(host) is np.ndarray, type(host)
        self._host = host

    # -- the protocols -------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        _sync("__array__", self._host)
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed (fake device, as CuPy). "
            "Use backend.to_host() to copy it to the host explicitly."
        )

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        where = f"{ufunc.__name__}.{method}" if method != "__call__" else ufunc.__name__
        if method == "at":  # ufunc.at(target, index[, values]): the index wraps as in any indexing
            target, index, *rest = inputs
            if not all(_mixes(value) for value in (target, *rest)):
                return NotImplemented
            host_target = _operand(target, where, output=True)
            host_index = _host_index(index, host_target.shape, where)
            ufunc.at(host_target, host_index, *[_operand(value, where) for value in rest])
            return None
        if not all(_mixes(value) for value in inputs):
            return NotImplemented
        args = [_operand(value, where) for value in inputs]
        if out is not None:
            kwargs["out"] = tuple(_operand(value, where, output=True) for value in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result, inputs)

    def __array_function__(self, func, types, args, kwargs):
        if not all(issubclass(t, (FakeArray, np.ndarray)) for t in types):
            return NotImplemented
        where = func.__name__
        host_args = _unwrap(args, where)
        host_kwargs = dict(zip(kwargs, _unwrap(list(kwargs.values()), where)))
        return _wrap(func(*host_args, **host_kwargs), args)

    # -- attributes ------------------------------------------------------------------------
    shape = property(lambda self: self._host.shape)
    dtype = property(lambda self: self._host.dtype)
    ndim = property(lambda self: self._host.ndim)
    size = property(lambda self: self._host.size)
    itemsize = property(lambda self: self._host.itemsize)
    nbytes = property(lambda self: self._host.nbytes)
    strides = property(lambda self: self._host.strides)
    flags = property(lambda self: _Flags(self._host))
    T = property(lambda self: FakeArray(self._host.T))
    mT = property(lambda self: FakeArray(self._host.mT))
    real = property(lambda self: _wrap(self._host.real, (self,)))
    imag = property(lambda self: _wrap(self._host.imag, (self,)))

    @property
    def base(self):
        base = self._host.base
        return FakeArray(base) if type(base) is np.ndarray else base

    # -- indexing --------------------------------------------------------------------------
    def __getitem__(self, index):
        return _wrap(self._host[_host_index(index, self._host.shape, "__getitem__")], (self,))

    def __setitem__(self, index, value):
        host_index = _host_index(index, self._host.shape, "__setitem__")
        value = _operand(value, "__setitem__")
        if _has_integer_array(host_index):
            _assign_first_wins(self._host, host_index, value)
        else:
            self._host[host_index] = value

    def __len__(self):
        return len(self._host)

    def __iter__(self):
        return (FakeArray(row) if type(row) is np.ndarray else _wrap(row, ()) for row in self._host)

    # -- synchronizing conversions -------------------------------------------------------------
    def item(self, *args):
        _sync("item", self._host)
        return self._host.item(*args)

    def tolist(self):
        _sync("tolist", self._host)
        return self._host.tolist()

    def get(self):
        """A host copy (CuPy's ``.get()``)."""
        return _to_host(self)

    def __float__(self):
        _sync("float", self._host)
        return float(self._host)

    def __int__(self):
        _sync("int", self._host)
        return int(self._host)

    def __index__(self):
        _sync("index", self._host)
        return self._host.__index__()

    def __bool__(self):
        _sync("bool", self._host)
        return bool(self._host)

    def __complex__(self):
        _sync("complex", self._host)
        return complex(self._host)

    def __repr__(self):
        _sync("repr", self._host)
        return repr(self._host)

    __str__ = __repr__

    def __format__(self, spec):
        _sync("format", self._host)
        return format(self._host if self._host.ndim else self._host[()], spec)

    # -- copies ----------------------------------------------------------------------------
    def __copy__(self):
        return FakeArray(self._host.copy())

    def __deepcopy__(self, memo):
        return FakeArray(self._host.copy())

    def __reduce__(self):  # pickles (and deep-copies) through a host copy, as CuPy's arrays do
        return (_from_host, (_copy.copy(self._host),))


def _delegate(name):
    def method(self, *args, **kwargs):
        host_args = _unwrap(args, name)
        host_kwargs = dict(zip(kwargs, _unwrap(list(kwargs.values()), name)))
        return _wrap(getattr(self._host, name)(*host_args, **host_kwargs), (self,))

    method.__name__ = method.__qualname__ = name
    return method


#: The ndarray methods CuPy's ndarray has too (those deepgrad may call), computed on the host copy.
_METHODS = (
    "all any argmax argmin argsort astype choose clip conj copy cumprod cumsum diagonal dot fill "
    "flatten max mean min nonzero prod ravel repeat reshape round sort squeeze std sum swapaxes take "
    "trace transpose var view"
).split()
for _name in _METHODS:
    setattr(FakeArray, _name, _delegate(_name))


# ----------------------------------------------------------------------------
# Crossing between the wrapper and the host arrays behind it


def _mixes(value):
    """Whether a ufunc operand is something CuPy computes with (else NotImplemented: a Tensor)."""
    return isinstance(value, (FakeArray, np.ndarray, np.generic, int, float, complex, list, tuple)) or value is None


def _operand(value, where, output=False):
    """The host array behind a device operand; TypeError for a host array (or a list) mixed in."""
    if isinstance(value, FakeArray):
        return value._host
    if isinstance(value, (np.ndarray, list, tuple)):
        what = f"a host numpy.ndarray {value.shape}" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
        raise TypeError(
            f"fake device: {where} was given {what} {'as output' if output else 'among device arrays'} "
            "(CuPy: Unsupported type); move it with backend.to_device first"
        )
    return value


def _unwrap(values, where):
    """Host views of device arrays in (nested lists and tuples of) arguments; TypeError for host arrays."""
    unwrapped = []
    for value in values:
        if isinstance(value, FakeArray):
            unwrapped.append(value._host)
        elif isinstance(value, np.ndarray):
            raise TypeError(
                f"fake device: {where} was given a host numpy.ndarray {value.shape} among device arrays "
                "(CuPy: Unsupported type); move it with backend.to_device first"
            )
        elif isinstance(value, (list, tuple)):
            unwrapped.append(type(value)(_unwrap(value, where)))
        else:
            unwrapped.append(value)
    return unwrapped


def _wrap(result, inputs=()):
    """Device arrays of a host result: the input itself where NumPy returned the input's array (so
    ``x.astype(x.dtype, copy=False) is x`` holds as on CuPy), 0-d arrays for NumPy scalars."""
    if type(result) is np.ndarray:
        for value in inputs:
            if isinstance(value, FakeArray) and value._host is result:
                return value
        return FakeArray(result)
    if isinstance(result, np.generic):  # CuPy returns 0-d arrays, not scalars
        return FakeArray(np.asarray(result))
    if isinstance(result, (list, tuple)):
        return type(result)(_wrap(r, inputs) for r in result)
    return result


def _host_index(index, shape, where):
    """``index`` for the host array: device index arrays unwrapped (host ndarrays refused, as
    before), and every integer index array wrapped into its axis's range, as CuPy does."""
    parts = index if isinstance(index, tuple) else (index,)
    plain = []
    for part in parts:
        if isinstance(part, FakeArray):
            part = part._host
        elif isinstance(part, np.ndarray):
            raise TypeError(f"fake device: {where} was given a host numpy.ndarray index {part.shape}")
        elif isinstance(part, list):  # CuPy copies a list index to the device
            part = np.asarray(part)
        plain.append(part)
    consumed = sum(
        p.ndim if isinstance(p, np.ndarray) and p.dtype == np.bool_ else 1
        for p in plain
        if p is not None and p is not Ellipsis
    )
    axis, wrapped = 0, []
    for part in plain:
        if part is None:
            wrapped.append(part)
            continue
        if part is Ellipsis:
            axis += len(shape) - consumed
            wrapped.append(part)
            continue
        if isinstance(part, np.ndarray) and part.dtype == np.bool_:
            axis += part.ndim
        else:
            if isinstance(part, np.ndarray) and part.dtype.kind in "iu" and axis < len(shape) and shape[axis]:
                part = np.mod(part, shape[axis])
            axis += 1
        wrapped.append(part)
    return tuple(wrapped) if isinstance(index, tuple) else wrapped[0]


def _has_integer_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, np.ndarray) and p.dtype.kind in "iu" and p.ndim for p in parts)


def _assign_first_wins(host, index, value):
    """``host[index] = value`` where a repeated position keeps the first value written to it."""
    positions = np.arange(host.size).reshape(host.shape)[index]
    value = np.asarray(value, dtype=host.dtype)
    while value.ndim > positions.ndim and value.shape[0] == 1:  # NumPy drops leading length-1 axes
        value = value[0]
    values = np.broadcast_to(value, positions.shape).ravel()
    unique, first = np.unique(positions.ravel(), return_index=True)
    host[np.unravel_index(unique, host.shape)] = values[first]


# ----------------------------------------------------------------------------
# The device


class _FakeModule:
    """The device's ``xp``: NumPy's functions, taking and giving device arrays."""

    def asarray(self, obj, dtype=None):
        """As ``cupy.asarray``: a device array as it is; a (nested) list of equally shaped device arrays
        joined on the device; anything else converted on the host (which refuses device arrays in it)."""
        if isinstance(obj, FakeArray):
            return obj if dtype is None else obj.astype(dtype, copy=False)
        flat = _flatten(obj) if isinstance(obj, (list, tuple)) else None
        if flat and all(isinstance(a, FakeArray) for a in flat) and len({a.shape for a in flat}) == 1:
            return FakeArray(np.asarray(_unwrap([obj], "asarray")[0], dtype=dtype))
        return FakeArray(np.array(obj, dtype=dtype))

    def __getattr__(self, name):
        attribute = getattr(np, name)
        if not callable(attribute) or isinstance(attribute, type):
            return attribute

        def on_device(*args, **kwargs):
            args = _unwrap(args, name)
            kwargs = dict(zip(kwargs, _unwrap(list(kwargs.values()), name)))
            return _wrap(attribute(*args, **kwargs))

        return on_device


def _flatten(values):
    return [leaf for value in values for leaf in (_flatten(value) if isinstance(value, (list, tuple)) else [value])]


def _from_host(array):
    if isinstance(array, FakeArray):
        raise TypeError("fake device: from_host was given a device array")
    return FakeArray(np.array(array, copy=True))


def _to_host(array):
    _sync("to_host", array._host)
    return np.array(array._host, copy=True)


def _as_strided(array, shape, strides):
    return FakeArray(np.lib.stride_tricks.as_strided(array._host, shape=shape, strides=strides, writeable=False))


def _uniform(seed, shape, dtype):
    """Uniform [0, 1) draws made on the device from ``seed`` (CUDA: cuRAND's Philox)."""
    return FakeArray(np.random.default_rng(seed).random(shape, dtype=dtype))


def _upload(array):
    """A batch's copy on a copy stream (CUDA: ``backend._PinnedUpload``): the device array holds
    garbage (all bits set: NaN, -1) until the call returned is made, as memory a copy stream has not
    yet written would for work that did not wait for it."""
    if isinstance(array, FakeArray):
        raise TypeError("fake device: upload was given a device array")
    sent = np.array(array, copy=True)  # the pinned buffer's copy of the host array, taken now
    landing = np.empty_like(sent)
    landing.view(np.uint8)[...] = 0xFF

    def wait():
        landing[...] = sent

    return FakeArray(landing), wait


FAKE = backend.Device("fake", _FakeModule(), FakeArray, _from_host, _to_host, _as_strided, _uniform, _upload)
