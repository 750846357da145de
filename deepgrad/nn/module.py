"""Module and Parameter: the containers that layers are made of.

Assigning a Parameter or a Module to an attribute registers it (no explicit
``add_parameter`` calls); arrays registered with :meth:`Module.register_buffer`
(BatchNorm's running statistics) travel with ``state_dict`` and ``to``.
Registered values also live in the instance ``__dict__``, so reading
``layer.weight`` in ``forward`` is a plain attribute access.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from .. import backend
from ..backend import Array, DeviceLike, DTypeLike
from ..ops.device import split_target
from ..tensor import RemovableHandle, Tensor, as_array
from .hooks import call_with_backward_hooks
from .summary import ModelSummary, summary

if TYPE_CHECKING:
    from typing_extensions import Self

# The hooks of a Module (see the register_*_hook methods); a non-None return replaces what they were given.
ForwardPreHook: TypeAlias = "Callable[[Module, tuple[Any, ...]], Any]"
ForwardHook: TypeAlias = "Callable[[Module, tuple[Any, ...], Any], Any]"
BackwardHook: TypeAlias = "Callable[[Module, tuple[Array | None, ...], tuple[Array, ...]], Any]"
BackwardPreHook: TypeAlias = "Callable[[Module, tuple[Array, ...]], Any]"


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` found missing in the state dict, and unexpected in it."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Parameter(Tensor):
    """A leaf tensor that a Module registers as trainable (requires_grad by default)."""

    __slots__ = ()

    def __init__(self, data: Tensor | npt.ArrayLike, requires_grad: bool = True) -> None:
        super().__init__(
            data.data if isinstance(data, Tensor) else as_array(data, where="Parameter"), requires_grad=requires_grad
        )

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model: subclass it and write ``forward``."""

    # Set in __init__ through __dict__ (so __setattr__ does not see them):
    training: bool
    _parameters: OrderedDict[str, Parameter | None]
    _buffers: OrderedDict[str, Array | None]
    _modules: OrderedDict[str, Module | None]
    _forward_hooks: OrderedDict[int, ForwardHook]
    _forward_pre_hooks: OrderedDict[int, ForwardPreHook]
    _backward_hooks: OrderedDict[int, BackwardHook]
    _backward_pre_hooks: OrderedDict[int, BackwardPreHook]

    def __init__(self) -> None:
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_backward_hooks"] = OrderedDict()
        d["_backward_pre_hooks"] = OrderedDict()

    # -- registration -------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() is called in {type(self).__name__}.__init__"
            )
        params, modules, buffers = d["_parameters"], d["_modules"], d["_buffers"]
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in buffers:
            buffers[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} to parameter {name!r} "
                    "(expected a Parameter or None)"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} to child module {name!r} "
                    "(expected a Module or None)"
                )
            modules[name] = None
        d[name] = value

    def __delattr__(self, name: str) -> None:
        for registry in ("_parameters", "_modules", "_buffers"):
            self.__dict__[registry].pop(name, None)
        del self.__dict__[name]

    def register_buffer(self, name: str, array: npt.ArrayLike | None) -> None:
        """Register a state array that is not trained (e.g. running_mean); None leaves a slot."""
        if array is not None:
            array = as_array(array, where=f"{type(self).__name__}.register_buffer")
        self.__dict__["_buffers"][name] = array
        self.__dict__[name] = array

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (a Parameter, or None for an absent optional one such as bias)."""
        if param is None:
            self.__dict__["_parameters"][name] = None
            self.__dict__[name] = None
        else:
            setattr(self, name, param)

    # -- calling ------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # has_hooks(), inlined: a method call more on every module of every step
        if not (self._forward_hooks or self._forward_pre_hooks or self._backward_hooks or self._backward_pre_hooks):
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            changed = hook(self, args)
            if changed is not None:
                args = changed if isinstance(changed, tuple) else (changed,)
        if self._backward_hooks or self._backward_pre_hooks:
            return call_with_backward_hooks(self, args, kwargs, self._forward_with_hooks)
        return self._forward_with_hooks(args, kwargs)

    def has_hooks(self) -> bool:
        """Whether a forward, forward pre-, backward or backward pre-hook is registered on this module."""
        return bool(self._forward_hooks or self._forward_pre_hooks or self._backward_hooks or self._backward_pre_hooks)

    def _forward_with_hooks(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            changed = hook(self, args, output)
            if changed is not None:
                output = changed
        return output

    def register_forward_hook(self, hook: ForwardHook) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every forward; a non-None return replaces the output."""
        return RemovableHandle.add(self._forward_hooks, hook)

    def register_forward_pre_hook(self, hook: ForwardPreHook) -> RemovableHandle:
        """Call ``hook(module, inputs)`` before every forward; a non-None return replaces the inputs."""
        return RemovableHandle.add(self._forward_pre_hooks, hook)

    def register_full_backward_hook(self, hook: BackwardHook) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` in each backward pass through this module, once
        the gradients w.r.t. its inputs are computed: tuples of backend arrays, one per positional
        input (None for one that needs no gradient) and for the output. A non-None return, a tuple
        like ``grad_input``, replaces the input gradients. The module's forward must return one
        Tensor. Returns a handle whose ``remove()`` unregisters the hook."""
        return RemovableHandle.add(self._backward_hooks, hook)

    def register_full_backward_pre_hook(self, hook: BackwardPreHook) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` in each backward pass when the gradient w.r.t. this module's
        output reaches it (a 1-tuple of a backend array), before it flows into the module; a non-None
        return replaces it. Returns a handle whose ``remove()`` unregisters the hook."""
        return RemovableHandle.add(self._backward_pre_hooks, hook)

    # -- traversal ----------------------------------------------------------
    def named_modules(self, prefix: str = "", memo: set[int] | None = None) -> Iterator[tuple[str, Module]]:
        """(name, module) for this module and every descendant, each module once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter), each parameter once even when shared."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Array]]:
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    def buffers(self, recurse: bool = True) -> Iterator[Array]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn: Callable[[Module], object]) -> Self:
        """Call ``fn(module)`` on every descendant, then on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- modes and gradients --------------------------------------------------
    def train(self, mode: bool = True) -> Self:
        for module in self.modules():
            module.__dict__["training"] = bool(mode)
        return self

    def eval(self) -> Self:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Self:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    # -- device and dtype -------------------------------------------------
    def to(self, *args: DeviceLike | DTypeLike, **kwargs: DeviceLike | DTypeLike) -> Self:
        """Move every parameter and buffer to a device and/or convert the floating ones to a
        floating dtype, in place: to("cuda"), to(dg.float64), to("cpu", dg.float32). Returns self.

        Create optimizers after moving a model: their state is made where the parameters are.
        """
        where = f"{type(self).__name__}.to"
        device, dtype = split_target(args, kwargs, where)
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"{where}: expected a floating dtype, got {dtype}")

        def convert(array):
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype, copy=False)
            return array if device is None else backend.to_device(array, device)

        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = convert(param.data)
                    if param.grad is not None:
                        param.grad = convert(param.grad)
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    module.register_buffer(name, convert(buffer))
        return self

    def cpu(self) -> Self:
        return self.to("cpu")

    def cuda(self) -> Self:
        return self.to("cuda")

    def double(self) -> Self:
        return self.to(np.float64)

    def float(self) -> Self:
        return self.to(np.float32)

    # -- state --------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, Array]:
        """Parameter and buffer arrays under PyTorch's dotted keys (the arrays themselves, not copies).

        A Linear's weight is column-major (see :class:`deepgrad.nn.Linear`). ``dg.save`` writes every
        array row by row; a writer that copies an array's raw memory needs ``np.ascontiguousarray``
        first (safetensors 0.8's own ``safetensors.numpy.save_file`` writes a column-major array's memory
        as if it were rows, and the values load back out of place).
        """
        state: OrderedDict[str, Array] = OrderedDict()
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None:
                    state[f"{module_name}.{name}" if module_name else name] = param.data
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    state[f"{module_name}.{name}" if module_name else name] = buffer
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (or Tensors) into the parameters and buffers; shapes must match.

        With ``strict`` (the default), missing or unexpected keys are an error.
        Nothing is modified unless every key and shape checks out.
        """
        own = self._state_slots()
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        updates = []
        for key, current in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = value.data if isinstance(value, Tensor) else value
            value = value if backend.is_array(value) else np.asarray(value)
            if value.dtype.kind not in "biuf":
                raise RuntimeError(
                    f"{type(self).__name__}.load_state_dict: {key!r} holds data of dtype {value.dtype}, "
                    "expected numbers"
                )
            if value.shape != current.shape:
                raise RuntimeError(
                    f"{type(self).__name__}.load_state_dict: size mismatch for {key!r}: "
                    f"the checkpoint has shape {value.shape}, the model has shape {current.shape}"
                )
            updates.append((current, value))
        for current, value in updates:
            current[...] = backend.to_device_of(value, current)
        return IncompatibleKeys(missing, unexpected)

    def _state_slots(self) -> OrderedDict[str, Array]:
        """The array behind each key of the state: a parameter's data or a buffer (loads copy into it)."""
        slots: OrderedDict[str, Array] = OrderedDict()
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None:
                    slots[f"{module_name}.{name}" if module_name else name] = param.data
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    slots[f"{module_name}.{name}" if module_name else name] = buffer
        return slots

    # -- repr ---------------------------------------------------------------
    def summary(self, example_input: Any = None) -> ModelSummary:
        """A row per layer: its type, output shape for ``example_input`` (batch first; inferred for
        an MLP when not given) and parameter count, and the totals (:mod:`deepgrad.nn.summary`)."""
        return summary(self, example_input)

    def _repr_html_(self) -> str:
        """The model in a notebook: :meth:`summary`'s table."""
        return self.summary()._repr_html_()

    def extra_repr(self) -> str:
        """The layer's own settings, shown inside its parentheses in repr."""
        return ""

    def __repr__(self) -> str:
        children = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children()]
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
