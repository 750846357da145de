"""Moving tensors between devices (and dtypes) as a differentiable op."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..backend import Device, DeviceLike, DTypeLike
from ..tensor import Function, Tensor
from .arithmetic import cast


class ToDevice(Function):
    """out = x copied to another device; the gradient is copied back to x's device."""

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.source = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, grad):
        return (backend.to_device(grad, self.source),)


def split_target(
    args: tuple[Any, ...], kwargs: dict[str, Any], where: str
) -> tuple[Device | None, np.dtype[Any] | None]:
    """(device or None, dtype or None) from ``to``'s arguments: to(device), to(dtype), to(device, dtype)."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"{where}: unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, backend.Device) or (isinstance(arg, str) and _names_device(arg)):
            if device is not None:
                raise TypeError(f"{where}: two devices given ({device!r} and {arg!r})")
            device = arg
        else:
            if dtype is not None:
                raise TypeError(f"{where}: two dtypes given ({dtype!r} and {arg!r})")
            dtype = arg
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{where}: expected a device ('cpu', 'cuda') or a dtype, got {dtype!r}") from None
    return (None if device is None else backend.get_device(device)), dtype


def _names_device(name: str) -> bool:
    try:
        np.dtype(name)
    except TypeError:
        return True  # not a dtype, so a device name (get_device says whether it exists)
    return False


def to(x: Tensor, *args: DeviceLike | DTypeLike, **kwargs: DeviceLike | DTypeLike) -> Tensor:
    """``x`` on another device and/or with another dtype: to("cuda"), to(dg.float64), to("cpu", "float32").

    Differentiable; returns ``x`` itself when nothing changes, as PyTorch.
    """
    device, dtype = split_target(args, kwargs, "to")
    if dtype is not None:
        x = cast(x, dtype)
    if device is not None and device is not backend.device_of(x.data):
        x = ToDevice(device)(x)
    return x


def cpu(x: Tensor) -> Tensor:
    """``x`` on the host (``x`` itself if it is there already)."""
    return to(x, backend.CPU)


def cuda(x: Tensor) -> Tensor:
    """``x`` on the GPU (``x`` itself if it is there already)."""
    return to(x, "cuda")
