"""Gradient flow per layer: how large each layer's gradients are, how much a step changes its
weights, and the first/last ratio that makes vanishing (≪ 1) and exploding gradients a number —
the course notes' deep sigmoid network whose first layer learns about 100× slower than its last.

    flow = GradientFlow(model)
    loss.backward()
    flow.gradients()      # {"parameters": {"0.weight": ‖g‖, ...}, "layers": {"0": ‖g‖, ...},
                          #  "total": ..., "first_last_ratio": ...}
    flow.snapshot(); optimizer.step()
    flow.update_ratios()  # {"0.weight": ‖Δw‖/‖w‖, ...}: about 1e-3 is a healthy learning rate
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend import Array

if TYPE_CHECKING:
    from ..nn import Module, Parameter


def norm(array: Array) -> float:
    """The L2 norm of all of ``array``'s elements, as a float, summed in float64 (on the array's own
    device): float32 squares overflow from norms of about 1e19, which exploding gradients reach."""
    flat = array.reshape(-1).astype(np.float64, copy=False)
    # einsum, not dot: BLAS's dot on two threads took milliseconds when a core was busy
    return float(np.sqrt(np.einsum("i,i->", flat, flat)))


class GradientFlow:
    """Gradient norms per parameter and per layer of ``model``, and update-to-weight ratios.

    A layer is a module that owns parameters, named as in ``model.named_modules()``; its gradient
    norm is the L2 norm of all its parameters' gradients together. The first/last ratio compares
    the first and last layers with a weight matrix or kernel (Linear, Conv2d: not the norms'
    γ and β) in parameter order.
    """

    def __init__(self, model: Module) -> None:
        self.parameters: list[tuple[str, Parameter]] = list(model.named_parameters())
        if not self.parameters:
            raise ValueError(f"GradientFlow: {type(model).__name__} has no parameters")
        self.layers: dict[str, list[tuple[str, Parameter]]] = {}
        for name, p in self.parameters:
            layer = name.rpartition(".")[0] or type(model).__name__
            self.layers.setdefault(layer, []).append((name, p))
        self.weighted = [layer for layer, params in self.layers.items() if any(p.ndim >= 2 for _, p in params)]
        self._before: list[Array] | None = None

    def gradients(self) -> dict[str, Any]:
        """Norms of the current ``.grad``s: per parameter and per layer (None where no gradient was
        computed), their total, and the first/last layer ratio (None when undefined)."""
        parameters = {name: None if p.grad is None else norm(p.grad) for name, p in self.parameters}
        layers: dict[str, float | None] = {}
        for layer, params in self.layers.items():
            norms = [n for n in (parameters[name] for name, _ in params) if n is not None]
            layers[layer] = math.sqrt(sum(n * n for n in norms)) if norms else None
        present = [n for n in parameters.values() if n is not None]
        total = math.sqrt(sum(n * n for n in present)) if present else None
        ratio = None
        if len(self.weighted) >= 2:
            first, last = layers[self.weighted[0]], layers[self.weighted[-1]]
            if first is not None and last:
                ratio = first / last
        return {"parameters": parameters, "layers": layers, "total": total, "first_last_ratio": ratio}

    def snapshot(self) -> None:
        """Remember the weights now (call before the optimizer's step)."""
        self._before = [p.data.copy() for _, p in self.parameters]

    def update_ratios(self) -> dict[str, float | None]:
        """‖Δw‖/‖w‖ per parameter since :meth:`snapshot` (‖w‖ before the step; None where it is 0)."""
        if self._before is None:
            raise RuntimeError("GradientFlow.update_ratios: call snapshot() before the optimizer step")
        ratios = {}
        for (name, p), before in zip(self.parameters, self._before):
            size = norm(before)
            ratios[name] = norm(p.data - before) / size if size else None
        self._before = None
        return ratios
