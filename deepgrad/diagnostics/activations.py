"""Activation statistics per layer: the distribution of each layer's outputs, and how much of it
is saturated or dead — the course notes' histograms of sigmoid outputs piling up at 0 and 1
(std 1) or collapsing to 0.5 (std 0.01), and of ReLU units that never fire.

    stats = ActivationStats(model)             # every activation layer (ReLU, sigmoid, tanh, ...)
    model(x)
    stats.results["1"]                         # LayerActivations(kind="Sigmoid", mean=..., std=..., ...)
    stats.remove()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

import numpy as np

from .. import backend, nn
from ..backend import Array
from ..tensor import RemovableHandle, Tensor

SATURATION_MARGIN = 0.02  # a sigmoid/tanh output this close to one of its bounds is saturated
BOUNDS = {nn.Sigmoid: (0.0, 1.0), nn.Tanh: (-1.0, 1.0)}  # the layers that saturate at their bounds
ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Softplus)
BINS = 40
RANGES = {**BOUNDS, nn.ReLU: (0.0, 4.0)}  # the histogram's range per layer type
OTHER_RANGE = (-1.0, 4.0)  # ... and for the others (leaky ReLU and kin, custom layers)
LOG_SPAN = 100  # values beyond this many times the range's top get log-spaced bins

#: A layer to watch: its name (as in ``model.named_modules()``), a module type, or the module itself.
LayerChoice: TypeAlias = str | type[nn.Module] | nn.Module


@dataclass
class LayerActivations:
    """One layer's outputs over one batch.

    ``histogram``: counts in ``BINS`` bins between ``edges[0]`` and ``edges[-1]``: a bounded layer's
    bounds; for the others [0, 4] (ReLU) or OTHER_RANGE, widened to hold every finite value, with
    log-spaced bins when the values reach beyond ``LOG_SPAN`` times that range (a layer blowing up
    shows where its values went, not a spike at the range's end); ``saturated``:
    fraction of outputs within SATURATION_MARGIN of a sigmoid's/tanh's bounds (None for other
    layers); ``dead``: fraction of units (one output position of a sample) that are exactly 0 for
    every sample of the batch.
    """

    kind: str
    mean: float
    std: float
    edges: list[float]
    histogram: list[int]
    saturated: float | None
    dead: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def layer_activations(module: nn.Module, output: Tensor | Array) -> LayerActivations:
    """The :class:`LayerActivations` of ``output`` (a batch-first array or Tensor) of ``module``."""
    array = output.data if isinstance(output, Tensor) else output
    values = backend.to_host(array).astype(np.float64, copy=False)
    low, high = RANGES.get(type(module), OTHER_RANGE)
    edges = histogram_edges(values, low, high, bounded=type(module) in BOUNDS)
    counts = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0]
    saturated = None
    if type(module) in BOUNDS:
        saturated = float(np.mean((values < low + SATURATION_MARGIN) | (values > high - SATURATION_MARGIN)))
    per_unit = values.reshape(len(values), -1) if values.ndim > 1 else values.reshape(-1, 1)
    dead = float(np.mean(np.all(per_unit == 0, axis=0))) if per_unit.size else 0.0
    return LayerActivations(
        type(module).__name__,
        float(values.mean()),
        float(values.std()),
        [round(float(e), 6) for e in edges],
        counts.tolist(),
        saturated,
        dead,
    )


def histogram_edges(values: np.ndarray, low: float, high: float, bounded: bool) -> np.ndarray:
    """The ``BINS + 1`` edges of a layer's histogram: [low, high] for a bounded layer; else that
    range widened to the finite values' extremes, log-spaced above ``high`` when they reach beyond
    ``LOG_SPAN`` times it."""
    finite = values[np.isfinite(values)]
    if bounded or not finite.size:
        return np.linspace(low, high, BINS + 1)
    low, top = min(low, float(finite.min())), max(high, float(finite.max()))
    if top <= LOG_SPAN * high:
        return np.linspace(low, top, BINS + 1)
    linear = BINS // 4  # [low, high] keeps a quarter of the bins; the decades above it the rest
    return np.concatenate([np.linspace(low, high, linear + 1), np.geomspace(high, top, BINS - linear + 1)[1:]])


def select_layers(model: nn.Module, layers: Sequence[LayerChoice] | None = None) -> list[tuple[str, nn.Module]]:
    """(name, module) pairs of ``model`` to watch: ``layers`` as names, module types or modules, or by
    default every activation layer."""
    named = list(model.named_modules())
    chosen: list[tuple[str, nn.Module]]
    if layers is None:
        chosen = [(name, m) for name, m in named if isinstance(m, ACTIVATIONS)]
    else:
        known = [name for name, _ in named]
        missing = [w for w in layers if isinstance(w, str) and w not in known]
        if missing:
            raise ValueError(f"ActivationStats: no layers named {missing} in the model; its layers: {known[1:]}")
        chosen = [
            (name, m)
            for name, m in named
            if any(w == name or w is m or (isinstance(w, type) and isinstance(m, w)) for w in layers)
        ]
    if not chosen:
        raise ValueError(
            f"ActivationStats: no layer of the model to watch (asked for {layers!r}; "
            f"default: the activation layers {[t.__name__ for t in ACTIVATIONS]})"
        )
    return [(name or type(module).__name__, module) for name, module in chosen]


class ActivationStats:
    """Record :class:`LayerActivations` of the chosen layers at every forward while attached.

    ``results`` maps each layer's name (as in ``model.named_modules()``) to its statistics of the
    latest forward. ``remove()`` (or leaving a ``with`` block) detaches the forward hooks; a model
    without them runs at full speed.
    """

    def __init__(self, model: nn.Module, layers: Sequence[LayerChoice] | None = None) -> None:
        self.layers = select_layers(model, layers)
        self.results: dict[str, LayerActivations] = {}
        self._handles: list[RemovableHandle] = [
            module.register_forward_hook(self._recorder(name)) for name, module in self.layers
        ]

    def _recorder(self, name: str) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def record(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            self.results[name] = layer_activations(module, output)

        return record

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> ActivationStats:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
