"""Gradient clipping, parameter vectors and weight normalization."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from .. import backend
from ..backend import Array
from ..ops.arguments import hyperparameter
from ..ops.shape import concatenate
from ..tensor import Tensor
from .module import Module, Parameter

ModuleT = TypeVar("ModuleT", bound=Module)


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Array]:
    """The gradients of the parameters that have one (the arrays themselves: changing them changes .grad)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> Tensor:
    """Scale all gradients by min(1, max_norm / (total_norm + 1e-6)), in place (PyTorch's formula).

    total_norm is the ``norm_type``-norm of all gradients together (``inf`` for
    the largest absolute value), computed as PyTorch does: each gradient's norm in
    its own dtype, then the norm of those. As in PyTorch, an infinite total_norm
    gives the coefficient 0 and a NaN one NaN (unless ``error_if_nonfinite`` raises).
    Returns total_norm as a 0-d Tensor on the gradients' device.

    On a GPU nothing here waits for the device: the norm, the coefficient and the
    scaling stay there (the gradients are always multiplied, by 1 when nothing is
    clipped, as in PyTorch); only ``error_if_nonfinite=True`` reads the norm on the host.
    """
    grads = _grads(parameters)
    if not grads:
        return Tensor(0.0)
    max_norm, norm_type = float(max_norm), float(norm_type)  # Python floats: computed in the gradients' dtype
    total = _total_norm(grads, norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):  # the host reads the norm: asked for
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {float(total)}; "
            "set error_if_nonfinite=False to clip anyway"
        )
    coefficient = max_norm / (total + 1e-6)
    if isinstance(grads[0], np.ndarray):  # on the host: no pass over the gradients when nothing is clipped
        if not coefficient >= 1:  # NaN included
            for g in grads:
                g *= coefficient
        return Tensor._wrap(np.asarray(total))
    coefficient = np.minimum(coefficient, 1.0)  # NaN stays NaN
    for g in grads:
        g *= coefficient
    return Tensor._wrap(total)


def _total_norm(grads: list[Array], norm_type: float) -> Any:
    """The ``norm_type``-norm of all gradients together: one reduction per gradient, and one over
    those, on the gradients' device (a NumPy scalar on the host, a 0-d array elsewhere)."""
    if norm_type == math.inf:
        return np.stack([np.abs(g).max() for g in grads]).max()  # max propagates NaN
    if norm_type == 2.0:
        # ravel("K"): a view of any contiguous gradient (a Linear's weight is column-major)
        return np.sqrt(np.stack([np.dot(flat, flat) for flat in (g.ravel("K") for g in grads)]).sum())
    if norm_type == 1.0:
        return np.stack([np.abs(g).sum() for g in grads]).sum()
    return np.stack([(np.abs(g) ** norm_type).sum() for g in grads]).sum() ** (1.0 / norm_type)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element to [−clip_value, clip_value], in place."""
    clip_value = hyperparameter(clip_value)  # a Python number: the gradients' dtype on every device
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and joined into one (differentiable) vector."""
    return concatenate([p.reshape(-1) for p in parameters])


def vector_to_parameters(vector: Tensor | npt.ArrayLike, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D ``vector`` into the parameters' data.

    The vector's size must equal the parameters' total size; nothing is
    modified otherwise.
    """
    value = vector.data if isinstance(vector, Tensor) else vector
    data = cast(Array, value) if backend.is_array(value) else np.asarray(value)  # NumPy's, or a device's array
    parameters = list(parameters)
    total = sum(p.data.size for p in parameters)
    if data.ndim != 1 or data.size != total:
        raise ValueError(
            f"vector_to_parameters: expected a 1-D vector of {total} elements (the parameters' total size), "
            f"got shape {data.shape}"
        )
    offset = 0
    for p in parameters:
        n = p.data.size
        p.data[...] = backend.to_device_of(data[offset : offset + n].reshape(p.shape), p.data)
        offset += n


def _norm_except_dim(v: Tensor, dim: int | None) -> Tensor:
    """‖v‖₂ over every axis but ``dim`` (keeping dims); over all axes when dim is None."""
    axes = None if dim is None else tuple(i for i in range(v.ndim) if i != dim % v.ndim)
    return (v * v).sum(dim=axes, keepdim=dim is not None).sqrt()


class _WeightNorm:
    """Forward pre-hook recomputing ``module.<name> = g · v / ‖v‖`` from the ``_g`` and ``_v`` parameters."""

    def __init__(self, name: str, dim: int | None) -> None:
        self.name, self.dim = name, dim

    def compute(self, module: Module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / _norm_except_dim(v, self.dim))

    def __call__(self, module: Module, inputs: tuple[Any, ...]) -> None:
        setattr(module, self.name, self.compute(module))


def weight_norm(module: ModuleT, name: str = "weight", dim: int | None = 0) -> ModuleT:
    """Reparametrize ``module.<name>`` as w = g · v / ‖v‖ (Salimans & Kingma).

    Registers parameters ``<name>_g`` (the norms, shape keeps ``dim``) and
    ``<name>_v`` (the direction); w is recomputed before every forward. With
    ``dim=None`` — or ``dim=-1``, which PyTorch treats the same way — the norm
    is over the whole tensor.
    """
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
    if any(isinstance(h, _WeightNorm) and h.name == name for h in module._forward_pre_hooks.values()):
        raise RuntimeError(f"weight_norm: {name!r} of {type(module).__name__} is already weight-normalized")
    dim = None if dim == -1 else dim
    fn = _WeightNorm(name, dim)
    del module._parameters[name]
    delattr(module, name)
    module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight.detach(), dim).data.copy()))
    module.register_parameter(name + "_v", Parameter(weight.data))
    setattr(module, name, fn.compute(module))
    module.register_forward_pre_hook(fn)
    return module


def remove_weight_norm(module: ModuleT, name: str = "weight") -> ModuleT:
    """Fold g and v back into a plain parameter ``<name>``."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, _WeightNorm) and hook.name == name:
            weight = hook.compute(module).data
            del module._forward_pre_hooks[key]
            delattr(module, name + "_g")
            delattr(module, name + "_v")
            setattr(module, name, Parameter(weight))
            return module
    raise ValueError(f"remove_weight_norm: weight_norm of {name!r} not found in {type(module).__name__}")
