"""Devices, their array modules, and the dtype defaults.

An array lives on a device: NumPy arrays on "cpu", CuPy arrays on "cuda".
Every op computes with NumPy's API; a CuPy array passed to a NumPy function
dispatches to CuPy through NumPy's ``__array_ufunc__``/``__array_function__``
protocols, so ops written against ``numpy`` run on either device as long as
they create arrays from their inputs (``*_like``, arithmetic) and never mix
in a host array. The few places that create arrays from nothing, move them,
or view them with new strides ask this module (:func:`get_array_module`,
:func:`to_device`, :func:`to_device_of`, :func:`as_strided`), and a device may
draw random numbers itself (``Device.uniform``: dropout's masks) and copy batches
while it computes (``Device.upload``: from pinned memory, on a stream of its own, on CUDA).

The CuPy contract: ``cupy-cuda12x>=14,<15`` (or ``cupy-cuda13x``), whose scalars
promote by NEP 50 as NumPy 2's do. A CuPy array is no ``numpy.ndarray`` (tell
arrays apart with :func:`is_array`) and refuses ``np.asarray``; anything read
back to the host (``float()``, ``.item()``, :func:`to_host`) waits for the GPU.

Devices are :class:`Device` records in a small registry: "cpu" always,
"cuda" registered on first use when CuPy and a GPU are present. Tests
register a strict stand-in device to check that no op mixes host arrays into
device computations on machines without a GPU.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

#: A backend array: a NumPy ndarray on "cpu", the array type of another device's module (CuPy's
#: ndarray on "cuda") elsewhere. Typed as NumPy's: the other modules follow its API, and CuPy, which
#: has no type stubs, is Any to a type checker.
Array: TypeAlias = npt.NDArray[Any]
#: What NumPy accepts as a dtype (np.float32, "float64", np.dtype(...), ...), and so does deepgrad.
DTypeLike: TypeAlias = npt.DTypeLike

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_default_dtype: np.dtype[Any] = float32


def get_default_dtype() -> np.dtype[Any]:
    """The floating dtype given to Python floats and lists (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype: DTypeLike) -> None:
    """Set the floating dtype given to Python floats and lists; returns nothing."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default_dtype = dtype


@dataclasses.dataclass(frozen=True, repr=False)
class Device:
    """One place arrays live: its name, array module (``xp``) and array type, and the moves."""

    name: str
    xp: Any  # numpy, cupy, or a module-like namespace with NumPy's functions
    array_type: type
    from_host: Callable[[np.ndarray], Any]  # host (NumPy) array -> array on this device
    to_host: Callable[[Any], np.ndarray]  # array on this device -> NumPy array
    as_strided: Callable[[Any, tuple[int, ...], tuple[int, ...]], Any]  # (array, shape, strides) -> read-only view
    # (seed, shape, dtype) -> uniform [0, 1) draws made on this device (dropout's device masks); None: drawn
    # on the host and moved
    uniform: Callable[[int, tuple[int, ...], Any], Any] | None = None
    # host array -> (its copy on this device, queued without making the host wait and not to be read
    # yet; the call after which the work queued may read it): batches, one ahead; None: from_host
    upload: Callable[[np.ndarray], tuple[Any, Callable[[], None]]] | None = None

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"device({self.name!r})"


#: A device or its name: "cpu", "cuda" ("cuda:0"), or a registered stand-in's.
DeviceLike: TypeAlias = Device | str


def _numpy_as_strided(array: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    return np.lib.stride_tricks.as_strided(array, shape=shape, strides=strides, writeable=False)


CPU = Device("cpu", np, np.ndarray, np.asarray, np.asarray, _numpy_as_strided)
_devices = {"cpu": CPU}


def _cuda() -> Device:
    """The CuPy device; a clear error when CuPy or a GPU is missing."""
    try:
        import cupy
    except ImportError:
        raise RuntimeError(
            "device 'cuda' needs CuPy and an NVIDIA GPU: pip install 'cupy-cuda12x>=14,<15' "
            "(cupy-cuda13x for CUDA 13), or the deepgrad[cuda] extra"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver missing or broken
        raise RuntimeError(f"device 'cuda': CuPy cannot reach a GPU ({error})") from None
    if count == 0:
        raise RuntimeError("device 'cuda': CuPy found no GPU")

    def cupy_as_strided(array: Any, shape: tuple[int, ...], strides: tuple[int, ...]) -> Any:
        return cupy.lib.stride_tricks.as_strided(array, shape=shape, strides=strides)

    return Device(
        "cuda", cupy, cupy.ndarray, cupy.asarray, cupy.asnumpy, cupy_as_strided, _CupyUniform(cupy), _PinnedUpload(cupy)
    )


class _CupyUniform:
    """Uniform draws on the GPU from a seed: cuRAND's counter-based Philox generator (reseeding it
    costs no state set-up), made on first use."""

    def __init__(self, cupy: Any) -> None:
        self.cupy = cupy
        self.generator: Any = None

    def __call__(self, seed: int, shape: tuple[int, ...], dtype: Any) -> Any:
        if self.generator is None:
            self.generator = self.cupy.random.RandomState(method=self.cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
        self.generator.seed(np.uint64(seed))
        return self.generator.random_sample(shape, dtype)


class _PinnedUpload:
    """Host-to-GPU copies from pinned (page-locked) memory on a stream of their own, so that the copy
    of the next batch runs while the current one trains: a copy from pageable memory would make the
    host wait, and one on the compute stream would wait for its queued work.

    The copy's device memory comes from the compute stream's pool, where it may be memory that
    queued kernels still read: the copy waits for the work queued so far (the batches before the
    current one, whose work is not queued yet). The work that reads the copy waits for it from the
    call returned (the loader makes it when it hands the batch out). Each pinned buffer is kept
    until its copy is done."""

    def __init__(self, cupy: Any) -> None:
        import cupyx

        self.cupy, self.cupyx = cupy, cupyx
        self.stream: Any = None  # the copy stream, made on first use
        self.in_flight: collections.deque[tuple[Any, np.ndarray]] = collections.deque()

    def __call__(self, array: np.ndarray) -> tuple[Any, Callable[[], None]]:
        cuda = self.cupy.cuda
        while self.in_flight and self.in_flight[0][0].done:
            self.in_flight.popleft()
        if self.stream is None:
            self.stream = cuda.Stream(non_blocking=True)
        pinned = self.cupyx.empty_pinned(array.shape, array.dtype)
        pinned[...] = array
        out = self.cupy.empty(array.shape, array.dtype)
        self.stream.wait_event(cuda.get_current_stream().record())
        out.set(pinned, stream=self.stream)
        copied = self.stream.record()
        self.in_flight.append((copied, pinned))
        return out, lambda: cuda.get_current_stream().wait_event(copied)


def register_device(device: Device) -> Device:
    """Make ``device`` (a :class:`Device`) reachable by its name; returns it."""
    _devices[device.name] = device
    return device


def get_device(device: DeviceLike) -> Device:
    """The :class:`Device` named ``device`` ("cpu", "cuda", or "cuda:0" as PyTorch spells the
    first GPU), or ``device`` itself if it is one."""
    if isinstance(device, Device):
        return device
    if device == "cuda:0":
        device = "cuda"
    elif isinstance(device, str) and device.startswith("cuda:"):
        raise ValueError(f"device {device!r}: only one GPU is supported, 'cuda' (or 'cuda:0')")
    found = _devices.get(device)
    if found is not None:
        return found
    if device == "cuda":
        return register_device(_cuda())
    raise ValueError(f"unknown device {device!r}; expected one of {sorted(set(_devices) | {'cuda'})}")


def is_available(device: DeviceLike) -> bool:
    """Whether arrays can be put on ``device`` here (e.g. ``is_available("cuda")``)."""
    try:
        get_device(device)
    except (RuntimeError, ValueError):
        return False
    return True


def device_of(array: object) -> Device:
    """The :class:`Device` holding ``array`` (the CPU for NumPy arrays and scalars)."""
    if type(array) is np.ndarray:
        return CPU
    for device in _devices.values():
        if device is not CPU and isinstance(array, device.array_type):
            return device
    if type(array).__module__.startswith("cupy"):  # a CuPy array made before "cuda" was first asked for
        return get_device("cuda")
    return CPU


def is_array(value: object) -> bool:
    """Whether ``value`` is an array of some device (NumPy, CuPy, ...), not a scalar or object."""
    return isinstance(value, np.ndarray) or device_of(value) is not CPU


def get_array_module(array: object = None) -> Any:
    """The array module of ``array``: numpy, or e.g. cupy for a CuPy array."""
    return device_of(array).xp


def to_device(array: Array, device: DeviceLike) -> Array:
    """``array`` on ``device`` (the same array if it is there already)."""
    target, source = get_device(device), device_of(array)
    if target is source:
        return array
    host = source.to_host(array)
    return host if target is CPU else target.from_host(host)


def to_device_of(array: Array, like: Array) -> Array:
    """``array`` on the device holding the array ``like`` (the same array if it is there already)."""
    return to_device(array, device_of(like))


def to_host(array: Array) -> np.ndarray:
    """``array`` as a NumPy array (a copy only when it lives on another device)."""
    return device_of(array).to_host(array)


def as_strided(array: Array, shape: tuple[int, ...], strides: tuple[int, ...]) -> Array:
    """A read-only view of ``array`` with the given shape and byte strides, on its own device."""
    return device_of(array).as_strided(array, shape, strides)
