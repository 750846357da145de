"""Containers: Sequential, ModuleList, and Residual (a skip connection)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, overload

from ..tensor import Tensor
from .module import Module

if TYPE_CHECKING:
    from typing_extensions import Self

# A container's children are Modules (its constructor and append() put them there): the
# "type: ignore"s below are for Module._modules, which also allows None (a child slot set to None).


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {index} is a {type(module).__name__}, not a Module")
            setattr(self, str(index), module)

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)  # type: ignore[misc]
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

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if out.shape != skip.shape:
            raise ValueError(
                f"Residual: the block's output {tuple(out.shape)} and the shortcut's {tuple(skip.shape)} "
                "differ; give a shortcut (e.g. a 1x1 Conv2d) that matches them"
            )
        return out + skip
