"""Full backward hooks of a Module: PyTorch's ``register_full_backward_hook`` and
``register_full_backward_pre_hook``, built from identity Functions.

When a module with backward hooks is called, its output passes through
:class:`OutputGradient` and each of its positional input tensors that requires
grad through :class:`InputGradient`, both identities in the forward pass. In the
backward pass the first gives the gradient w.r.t. the output to the pre-hooks
(which may replace it); the others collect the gradients w.r.t. the inputs and,
when the last has arrived, give them with the output's to the hooks (which may
replace them). Hooks see backend arrays, like ``.grad``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..tensor import Function, Tensor, hook_name, is_grad_enabled

if TYPE_CHECKING:
    from ..backend import Array
    from .module import Module


class OutputGradient(Function):
    """out = x; the gradient reaching the module's output goes through the pre-hooks."""

    def __init__(self, call: BackwardHookCall) -> None:
        self.call = call

    def forward(self, x: Array) -> Array:
        return x

    def backward(self, grad: Array) -> tuple[Array]:
        return (self.call.output_gradient(grad),)


class InputGradient(Function):
    """out = x; the gradient leaving the module by input ``index`` goes through the hooks."""

    def __init__(self, call: BackwardHookCall, index: int) -> None:
        self.call, self.index = call, index

    def forward(self, x: Array) -> Array:
        return x

    def backward(self, grad: Array) -> tuple[Array | None]:
        return (self.call.input_gradient(self.index, grad),)


class BackwardHookCall:
    """One call of a module that has backward hooks: what its backward pass has seen so far."""

    def __init__(self, module: Module, args: tuple[Any, ...]) -> None:
        self.module = module
        self.grad_input: list[Array | None] = [None] * len(args)
        self.waiting = {i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad}
        self.grad_output: tuple[Array] | None = None

    def wrap_inputs(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(InputGradient(self, i)(a) if i in self.waiting else a for i, a in enumerate(args))

    def wrap_output(self, output: Any) -> Tensor:
        if not isinstance(output, Tensor):
            raise NotImplementedError(
                f"{self.module!r}: full backward hooks need a forward that returns one Tensor, "
                f"got {type(output).__name__}"
            )
        return OutputGradient(self)(output) if output.requires_grad else output

    def output_gradient(self, grad: Array) -> Array:
        for hook in list(self.module._backward_pre_hooks.values()):
            replaced = self._call(hook, "backward pre-hook", (grad,))
            if replaced is not None:
                grad = _array(_single(replaced, hook), hook, grad.shape)
        self.grad_output = (grad,)
        if not self.waiting:  # no input needs a gradient: the hooks see only the output's
            self._run_hooks()
        return grad

    def input_gradient(self, index: int, grad: Array) -> Array | None:
        self.grad_input[index] = grad
        self.waiting.discard(index)
        if self.waiting:
            return grad
        final = self._run_hooks()
        for i, (before, after) in enumerate(zip(self.grad_input, final)):
            if i != index and after is not before:
                raise RuntimeError(
                    f"{self.module!r}: a full backward hook replaced the gradient of input {i}, which had "
                    "already flowed on (with several inputs needing gradients, only the last input's can "
                    "be replaced)"
                )
        return final[index]

    def _run_hooks(self) -> tuple[Array | None, ...]:
        grad_input = tuple(self.grad_input)
        for hook in list(self.module._backward_hooks.values()):
            replaced = self._call(hook, "backward hook", grad_input, self.grad_output)
            if replaced is not None:
                replaced = replaced if isinstance(replaced, (tuple, list)) else (replaced,)
                if len(replaced) != len(grad_input):
                    raise RuntimeError(
                        f"{self.module!r}: backward hook {hook_name(hook)} returned {len(replaced)} "
                        f"gradients for {len(grad_input)} inputs"
                    )
                grad_input = tuple(
                    None if new is None or old is None else _array(new, hook, old.shape)
                    for new, old in zip(replaced, grad_input)
                )
        return grad_input

    def _call(self, hook: Callable[..., Any], kind: str, *args: Any) -> Any:
        try:
            return hook(self.module, *args)
        except Exception as error:
            raise RuntimeError(
                f"{kind} {hook_name(hook)} of {self.module!r} raised {type(error).__name__}: {error}"
            ) from error


def call_with_backward_hooks(
    module: Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    forward: Callable[[tuple[Any, ...], dict[str, Any]], Any],
) -> Any:
    """``forward(args, kwargs)`` (the module's forward with its forward hooks) with the backward
    hooks attached to its inputs and output; without grad recording, just the forward."""
    if not is_grad_enabled():
        return forward(args, kwargs)
    call = BackwardHookCall(module, args)
    return call.wrap_output(forward(call.wrap_inputs(args), kwargs))


def _single(value: Any, hook: Callable[..., Any]) -> Any:
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise RuntimeError(f"backward pre-hook {hook_name(hook)} returned {len(value)} gradients for one output")
        return value[0]
    return value


def _array(value: Any, hook: Callable[..., Any], shape: tuple[int, ...]) -> Array:
    value = value.data if isinstance(value, Tensor) else value
    if getattr(value, "shape", None) != shape:
        raise RuntimeError(
            f"hook {hook_name(hook)} returned a gradient of shape {getattr(value, 'shape', None)}, expected {shape}"
        )
    return value
