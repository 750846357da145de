"""Optimizer base: parameter groups, per-parameter state, zero_grad, state_dict.

A subclass implements ``update(param, grad, state, group)``, which changes
``param.data`` in place; state arrays are allocated once, in the parameter's
dtype, and updated with ``out=`` so a step allocates no new parameter-sized
arrays beyond the few temporaries NumPy needs.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias, TypeVar

import numpy as np

from .. import backend
from ..backend import Array
from ..ops.arguments import hyperparameter
from ..tensor import Tensor, enable_grad

#: A parameter group: "params" (a list of Tensors) and the group's hyperparameters ("lr", ...).
ParamGroup: TypeAlias = dict[str, Any]
#: What an optimizer is given: the parameters, or parameter groups (dicts with "params" and the
#: hyperparameters that differ from the optimizer's defaults).
Params: TypeAlias = "Iterable[Tensor] | Iterable[Mapping[str, Any]]"
#: The state of one parameter: "step" and the optimizer's arrays (momentum buffers, moments, ...).
ParamState: TypeAlias = dict[str, Any]

_Loss = TypeVar("_Loss")


def check_hyperparameter(
    value: float, name: str, optimizer: str, low: float = 0.0, high: float = math.inf, high_open: bool = False
) -> None:
    """Raise a clear ValueError unless low <= value <= high (or < high)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{optimizer}: {name} must be a number, got {value!r}")
    if not (low <= value and (value < high if high_open else value <= high)):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"{optimizer}: invalid {name} {value!r}; expected a value in {bound}")


class Optimizer:
    """Holds parameter groups (dicts with "params" and hyperparameters) and per-parameter state."""

    def __init__(self, params: Params, defaults: Mapping[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor) or not hasattr(params, "__iter__"):
            raise TypeError(
                f"{name}: params must be an iterable of Parameters or of dicts, got {type(params).__name__}"
            )
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups: list[ParamGroup] = []
        self.state: dict[Tensor, ParamState] = {}
        # work buffers by (shape, dtype, index): reused every step, not part of the state
        self._scratch: dict[tuple[Any, ...], Array] = {}
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a dict with "params" and any hyperparameters that differ from the defaults."""
        name = type(self).__name__
        group = dict(group)
        if "params" not in group:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry, got keys {sorted(group)}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors/Parameters, got {type(p).__name__}")
            if p.data.dtype.kind != "f":
                raise TypeError(f"{name}: can only optimize floating tensors, got dtype {p.dtype}")
            if id(p) in seen:
                raise ValueError(f"{name}: a parameter appears more than once (shape {tuple(p.shape)})")
            seen.add(id(p))
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        for key, value in group.items():  # NumPy scalars as Python numbers: float32 updates stay float32
            if key != "params":
                many = isinstance(value, (tuple, list))
                group[key] = type(value)(map(hyperparameter, value)) if many else hyperparameter(value)
        self.validate(group)
        self.param_groups.append(group)

    def validate(self, group: ParamGroup) -> None:
        """Check a group's hyperparameters (subclasses extend this)."""
        check_hyperparameter(group["lr"], "learning rate", type(self).__name__)
        check_hyperparameter(group.get("weight_decay", 0.0), "weight_decay", type(self).__name__)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], _Loss] | None = None) -> _Loss | None:
        """Update every parameter that has a gradient; returns ``closure()``'s loss if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = self.init_state(p, group)
                self.update(p, p.grad, state, group)
        return loss

    def scratch_buffer(self, param: Tensor, index: int = 0) -> Array:
        """Work array ``index`` of the parameter's shape, dtype and device, for temporary results
        within one update: kept between steps and shared by the parameters of one shape (so an
        update allocates nothing). Index 0 is the weight-decayed gradient's (:func:`decayed_gradient`)."""
        data = param.data
        key = (data.shape, data.dtype, index)
        buffer = self._scratch.get(key)
        if buffer is None or type(buffer) is not type(data):
            buffer = self._scratch[key] = np.empty_like(data)
        return buffer

    def init_state(self, param: Tensor, group: ParamGroup) -> ParamState:
        """The state of a parameter before its first update."""
        return {}

    def update(self, param: Tensor, grad: Array, state: ParamState, group: ParamGroup) -> None:
        raise NotImplementedError

    # -- state --------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"optimizer": class name, "state": {index: {...}}, "param_groups": [...]} with params as indices."""
        index: dict[int, int] = {}  # id of a parameter -> its index in the state dict
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {
            index[id(p)]: {k: (v.copy() if backend.is_array(v) else v) for k, v in s.items()}
            for p, s in self.state.items()
        }
        return {"optimizer": type(self).__name__, "state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` of the same optimizer type and parameter layout."""
        name = type(self).__name__
        saved_type = state_dict.get("optimizer")
        if saved_type != name:
            raise ValueError(f"{name}.load_state_dict: the state was saved by {saved_type!r}, not {name!r}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups) or any(
            len(s["params"]) != len(g["params"]) for s, g in zip(saved_groups, self.param_groups)
        ):
            raise ValueError(f"{name}.load_state_dict: the saved parameter groups do not match this optimizer's")
        params = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for i, p in zip(saved["params"], group["params"]):
                params[i] = p
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, saved_state in state_dict["state"].items():
            p = params[int(i)]
            restored = {}
            for key, value in saved_state.items():
                if backend.is_array(value):
                    if value.shape != p.shape and value.ndim:
                        raise ValueError(
                            f"{name}.load_state_dict: state {key!r} has shape {value.shape}, "
                            f"its parameter {tuple(p.shape)}"
                        )
                    # a copy in the parameter's memory order (empty_like keeps it; a Linear's weight is
                    # column-major), so that the update's passes read the state and the parameter alike
                    array = backend.get_array_module(p.data).empty_like(
                        p.data, shape=value.shape, dtype=p.dtype if value.dtype.kind == "f" else value.dtype
                    )
                    array[...] = backend.to_device_of(value, p.data)
                    value = array
                restored[key] = value
            self.state[p] = restored

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join(lines + [")"])
