"""Containers: Sequential, ModuleList, and Residual (a skip connection)."""

from .module import Module


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``."""

    def __init__(self, *modules):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {index} is a {type(module).__name__}, not a Module")
            setattr(self, str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        setattr(self, str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (``forward`` is up to the owner)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: cannot append a {type(module).__name__}, expected a Module")
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        modules = list(self._modules.values())
        return ModuleList(modules[index]) if isinstance(index, slice) else modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Residual(Module):
    """out = block(x) + shortcut(x), the shortcut being the identity unless given.

    A ResNet basic block is then
    ``Sequential(Residual(Sequential(conv, bn, ReLU(), conv, bn)), ReLU())``.
    """

    def __init__(self, block, shortcut=None):
        super().__init__()
        self.block = block
        self.shortcut = shortcut

    def forward(self, x):
        out = self.block(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if out.shape != skip.shape:
            raise ValueError(
                f"Residual: the block's output {tuple(out.shape)} and the shortcut's {tuple(skip.shape)} "
                "differ; give a shortcut (e.g. a 1x1 Conv2d) that matches them"
            )
        return out + skip
