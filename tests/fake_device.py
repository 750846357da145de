"""A strict stand-in for a GPU, so device handling is tested on machines without one.

Arrays on the "fake" device are :class:`FakeArray`, an ndarray subclass that,
like a CuPy array, refuses to compute together with host NumPy arrays: a ufunc,
a NumPy function or an index given both raises TypeError. NumPy scalars and
Python numbers mix freely, and reductions return 0-d arrays rather than
scalars, as with CuPy. Moving to and from the device copies.

What it cannot catch: ``np.asarray(fake_array)`` silently gives a host view
(CuPy raises); the host array then fails at its first mix with device arrays.
"""

import numpy as np

from deepgrad import backend


class FakeArray(np.ndarray):
    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        args = _unwrap(inputs, ufunc.__name__)
        if out is not None:
            kwargs["out"] = tuple(_unwrap(out, ufunc.__name__, outputs=True))
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        args = _unwrap(args, func.__name__)
        kwargs = dict(zip(kwargs, _unwrap(list(kwargs.values()), func.__name__)))
        return _wrap(func(*args, **kwargs))

    def __getitem__(self, index):
        _refuse_host_index(index)
        return _wrap(self.view(np.ndarray)[_unwrap_index(index)])

    def __setitem__(self, index, value):
        _refuse_host_index(index)
        value = _unwrap([value], "__setitem__")[0]
        self.view(np.ndarray)[_unwrap_index(index)] = value


def _unwrap(values, where, outputs=False):
    """Host views of device arrays; TypeError for a host array mixed in (lists and tuples searched)."""
    unwrapped = []
    for value in values:
        if isinstance(value, FakeArray):
            unwrapped.append(value.view(np.ndarray))
        elif isinstance(value, np.ndarray):
            raise TypeError(
                f"fake device: {where} was given a host numpy.ndarray {value.shape} "
                f"{'as output' if outputs else 'among device arrays'}"
            )
        elif isinstance(value, (list, tuple)):
            unwrapped.append(type(value)(_unwrap(value, where, outputs)))
        else:
            unwrapped.append(value)
    return unwrapped


def _wrap(result):
    if isinstance(result, FakeArray):
        return result
    if isinstance(result, np.ndarray):
        return result.view(FakeArray)
    if isinstance(result, np.generic):  # CuPy returns 0-d arrays, not scalars
        return np.asarray(result).view(FakeArray)
    if isinstance(result, (list, tuple)):
        return type(result)(_wrap(r) for r in result)
    return result


def _refuse_host_index(index):
    for part in index if isinstance(index, tuple) else (index,):
        if isinstance(part, np.ndarray) and not isinstance(part, FakeArray):
            raise TypeError(f"fake device: indexed with a host numpy.ndarray {part.shape}")


def _unwrap_index(index):
    if isinstance(index, tuple):
        return tuple(p.view(np.ndarray) if isinstance(p, FakeArray) else p for p in index)
    return index.view(np.ndarray) if isinstance(index, FakeArray) else index


class _FakeModule:
    """The device's ``xp``: NumPy's functions, taking and giving device arrays."""

    def __getattr__(self, name):
        attribute = getattr(np, name)
        if not callable(attribute) or isinstance(attribute, type):
            return attribute

        def on_device(*args, **kwargs):
            args = _unwrap(args, name)
            kwargs = dict(zip(kwargs, _unwrap(list(kwargs.values()), name)))
            return _wrap(attribute(*args, **kwargs))

        return on_device


def _from_host(array):
    if isinstance(array, FakeArray):
        raise TypeError("fake device: from_host was given a device array")
    return np.array(array, copy=True).view(FakeArray)


def _to_host(array):
    return np.array(array.view(np.ndarray), copy=True)


def _as_strided(array, shape, strides):
    view = np.lib.stride_tricks.as_strided(array.view(np.ndarray), shape=shape, strides=strides, writeable=False)
    return view.view(FakeArray)


FAKE = backend.Device("fake", _FakeModule(), FakeArray, _from_host, _to_host, _as_strided)
