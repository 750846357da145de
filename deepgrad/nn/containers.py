"""Containers: Sequential, ModuleList, and Residual (a skip connection)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, overload

from .. import functional as F
from ..tensor import Tensor
from .activation import ReLU
from .conv import MaxPool2d
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d

if TYPE_CHECKING:
    from typing_extensions import Self

# A container's children are Modules (its constructor and append() put them there): the
# "type: ignore"s below are for Module._modules, which also allows None (a child slot set to None).


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Two layers in a row run as one op, bit for bit the two: a batch norm layer and a ReLU layer after
    it, ``relu(batch_norm(x))`` (``F.batch_norm``'s ``fuse_relu``), a ReLU layer and a max pooling
    layer after it, ``max_pool2d(relu(x))`` (``F.max_pool2d``'s ``relu_first``), and a
    :class:`Residual` and a ReLU layer after it, ``relu(block(x) + shortcut(x))`` (its sum and the
    ReLU by ``F.add_relu``); with the compiled kernels the ReLU makes no passes over memory of its
    own. Where either layer has a hook, or is of a subclass, each runs on its own.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {index} is a {type(module).__name__}, not a Module")
            setattr(self, str(index), module)

    def forward(self, x: Any) -> Any:
        modules: list[Module] = list(self._modules.values())  # type: ignore[arg-type]
        index = 0
        while index < len(modules):
            module = modules[index]
            fused = _FUSED.get(type(module))
            if fused is not None and _fuses_with_next(modules, index, fused[0]):
                x = fused[1](module, modules[index + 1], x)
                index += 2
            else:
                x = module(x)
                index += 1
        return x

    @overload
    def __getitem__(self, index: int) -> Module: ...
    @overload
    def __getitem__(self, index: slice) -> Sequential: ...
    def __getitem__(self, index: int | slice) -> Module | Sequential:
        modules: list[Module] = list(self._modules.values())  # type: ignore[arg-type]
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())  # type: ignore[arg-type]

    def append(self, module: Module) -> Self:
        setattr(self, str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (``forward`` is up to the owner)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> Self:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: cannot append a {type(module).__name__}, expected a Module")
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> Self:
        for module in modules:
            self.append(module)
        return self

    @overload
    def __getitem__(self, index: int) -> Module: ...
    @overload
    def __getitem__(self, index: slice) -> ModuleList: ...
    def __getitem__(self, index: int | slice) -> Module | ModuleList:
        modules: list[Module] = list(self._modules.values())  # type: ignore[arg-type]
        return ModuleList(modules[index]) if isinstance(index, slice) else modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())  # type: ignore[arg-type]


class Residual(Module):
    """out = block(x) + shortcut(x), the shortcut being the identity unless given.

    A ResNet basic block is then
    ``Sequential(Residual(Sequential(conv, bn, ReLU(), conv, bn)), ReLU())``.
    """

    block: Module
    shortcut: Module | None

    def __init__(self, block: Module, shortcut: Module | None = None) -> None:
        super().__init__()
        self.block = block
        self.shortcut = shortcut

    def forward(self, x: Tensor, fuse_relu: bool = False) -> Tensor:
        """block(x) + shortcut(x); with ``fuse_relu``, relu of it as one op (:func:`deepgrad.functional.add_relu`)."""
        out = self.block(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if out.shape != skip.shape:
            raise ValueError(
                f"Residual: the block's output {tuple(out.shape)} and the shortcut's {tuple(skip.shape)} "
                "differ; give a shortcut (e.g. a 1x1 Conv2d) that matches them"
            )
        if fuse_relu:
            return F.add_relu(out, skip) if out.dtype == skip.dtype else F.relu(out + skip)
        return out + skip


def _batch_norm_then_relu(batch_norm: Any, _: Module, x: Any) -> Any:
    return batch_norm.forward(x, fuse_relu=True)


def _relu_then_max_pool(_: Module, pool: Any, x: Any) -> Any:
    return pool.forward(x, relu_first=True)


def _residual_then_relu(residual: Any, _: Module, x: Any) -> Any:
    return residual.forward(x, fuse_relu=True)


# A layer's type: the type of the layer after it with which it runs as one op, and how
_FUSED: dict[type[Module], tuple[type[Module], Callable[[Module, Module, Any], Any]]] = {
    BatchNorm1d: (ReLU, _batch_norm_then_relu),
    BatchNorm2d: (ReLU, _batch_norm_then_relu),
    ReLU: (MaxPool2d, _relu_then_max_pool),
    Residual: (ReLU, _residual_then_relu),
}


def _fuses_with_next(modules: list[Module], index: int, next_type: type[Module]) -> bool:
    """Whether ``modules[index]`` and the next layer run as one op: the next is of ``next_type``, as
    the library has it, and neither has a hook."""
    if index + 1 == len(modules):
        return False
    after = modules[index + 1]
    return type(after) is next_type and not (modules[index].has_hooks() or after.has_hooks())
