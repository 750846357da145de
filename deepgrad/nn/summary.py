"""A model's summary, as Keras's ``model.summary()`` shows it: a row per layer with its type, the
shape of its output for an example input and its parameter count, and the totals. ``str()`` is the
text table; in a notebook the summary (and any Module, through ``Module._repr_html_``) shows as an
HTML table.

    model.summary(x[:1])        # output shapes for the input x[:1]
    model.summary()             # the input inferred when the first layer with weights is a Linear

The output shapes come from one forward pass in eval mode, without a graph, watched by forward
hooks that are removed afterwards; the model's modes and running statistics are left as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import backend
from ..markup import Markup, element, join, table
from ..tensor import Tensor, no_grad, tensor

if TYPE_CHECKING:
    from .module import Module


@dataclass(frozen=True)
class LayerRow:
    """One module of the model: its dotted name, type, output shape (None: not measured), the
    number of parameters in it and below it, and how deep it is nested (0: a child of the model)."""

    name: str
    kind: str
    output_shape: tuple[int, ...] | None
    parameters: int
    depth: int


@dataclass(frozen=True)
class ModelSummary:
    """The rows of :func:`summary`, the totals (each shared parameter counted once) and the input the
    output shapes are for (None: no shapes, and ``note`` says why)."""

    model: str
    rows: tuple[LayerRow, ...]
    total: int
    trainable: int
    input_shape: tuple[int, ...] | None
    note: str = ""

    def __str__(self) -> str:
        lines = [f"{'layer':<28} {'type':<14} {'output shape':<18} {'parameters':>11}"]
        for row in self.rows:
            name = "  " * row.depth + row.name.rsplit(".", 1)[-1]
            lines.append(f"{name:<28} {row.kind:<14} {_shape(row.output_shape):<18} {row.parameters:>11,}")
        lines += [self._totals(), self._input_line()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [
            [
                join([Markup("&#160;&#160;" * row.depth), element("code", row.name)]),
                row.kind,
                _shape(row.output_shape),
                f"{row.parameters:,}",
            ]
            for row in self.rows
        ]
        return join(
            [
                table(["layer", "type", "output shape", "parameters"], rows, caption=self.model),
                element("p", self._totals()),
                element("p", self._input_line()),
            ]
        )

    def _totals(self) -> str:
        return f"total parameters: {self.total:,} ({self.trainable:,} trainable, {self.total - self.trainable:,} not)"

    def _input_line(self) -> str:
        if self.input_shape is None:
            return f"output shapes: {self.note}"
        return f"output shapes for an input of shape {_shape(self.input_shape)}"


def summary(model: Module, example_input: Any = None) -> ModelSummary:
    """The :class:`ModelSummary` of ``model``. ``example_input`` (a Tensor or an array, batch first)
    gives the output shapes; without it, a zero input of shape (1, in_features) is used when the
    model's first layer with weights is a Linear (an MLP, after a Flatten or not), and the shapes
    are left out otherwise."""
    note = ""
    if example_input is None:
        example_input, note = _inferred_input(model)
    elif not isinstance(example_input, Tensor):
        example_input = _on_model_device(model, tensor(example_input))
    shapes: dict[str, tuple[int, ...]] = {}
    if example_input is not None:
        shapes, failure = _output_shapes(model, example_input)
        if failure:
            example_input, note = None, f"the example input failed in the forward pass ({failure})"
    modules = [(name, module) for name, module in model.named_modules() if name] or [("", model)]
    rows = tuple(
        LayerRow(
            name or type(module).__name__,
            type(module).__name__,
            shapes.get(name),
            sum(int(p.data.size) for p in module.parameters()),
            name.count("."),
        )
        for name, module in modules
    )
    parameters = list(model.parameters())
    return ModelSummary(
        type(model).__name__,
        rows,
        sum(int(p.data.size) for p in parameters),
        sum(int(p.data.size) for p in parameters if p.requires_grad),
        None if example_input is None else tuple(example_input.shape),
        note,
    )


def _inferred_input(model: Module) -> tuple[Tensor | None, str]:
    """A zero input of one sample for a model whose first layer with weights is a Linear."""
    first = next((module for module in model.modules() if module._parameters), None)
    in_features = getattr(first, "in_features", None)
    if first is None or not isinstance(in_features, int):
        return None, "not measured; pass an example input, as in model.summary(x[:1])"
    weight = next(first.parameters())
    return Tensor(np.zeros_like(weight.data, shape=(1, in_features))), ""


def _on_model_device(model: Module, example: Tensor) -> Tensor:
    """``example`` where the model's parameters are (a model moved to a GPU takes its input there)."""
    first = next(model.parameters(), None)
    return example if first is None else Tensor(backend.to_device_of(example.data, first.data))


def _output_shapes(model: Module, example_input: Tensor) -> tuple[dict[str, tuple[int, ...]], str]:
    """{module name: the shape of its output} for one forward pass of ``example_input`` in eval mode
    (the modes are restored), or the error that stopped the pass."""
    shapes: dict[str, tuple[int, ...]] = {}
    modes = {module: module.training for module in model.modules()}
    handles = [module.register_forward_hook(_recorder(shapes, name)) for name, module in model.named_modules()]
    try:
        model.eval()
        with no_grad():
            model(example_input)
    except Exception as error:  # a summary says what it could not measure, and shows the rest
        return {}, f"{type(error).__name__}: {error}"
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes.items():
            module.__dict__["training"] = mode
    return shapes, ""


def _recorder(shapes: dict[str, tuple[int, ...]], name: str) -> Callable[[Module, Any, Any], None]:
    """A forward hook keeping the shape of module ``name``'s output in ``shapes``."""

    def record(module: Module, inputs: Any, output: Any) -> None:
        if isinstance(output, Tensor):
            shapes[name] = tuple(output.shape)

    return record


def _shape(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "–"
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
