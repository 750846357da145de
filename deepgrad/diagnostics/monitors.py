"""Trainer callbacks that watch a run every few steps: gradient flow and activation statistics,
one JSON line per sample in ``diagnostics.jsonl``, and one clear warning per kind of trouble.

    trainer = Trainer(model, opt, F.cross_entropy, callbacks=standard_monitors("runs/x", every=10))
    # deepgrad train --monitor does the same for its run directory

A sampled step (the 1st, then every ``every``-th) costs a copy of the weights and a few norms
(gradients) or a histogram per watched layer (activations); the other steps cost nothing. A
logger takes what was measured as named numbers and histograms (:meth:`Monitor.take_samples`,
:class:`Sample`) without knowing the records' format.

The monitors are callbacks by their methods (the Trainer calls the events an object has); this
package does not import the training system, which builds them for ``--monitor``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .. import io
from .activations import ActivationStats, select_layers
from .gradients import GradientFlow

if TYPE_CHECKING:
    from ..train.trainer import Trainer

DIAGNOSTICS_FILE = "diagnostics.jsonl"
VANISHING_RATIO = 1e-3  # first/last layer gradient-norm ratio below this: the first layers barely learn
EXPLODING_NORM = 1e3  # a total gradient norm above this: exploding
MOSTLY = 0.5  # more than this fraction of a layer's units dead, or of its outputs saturated


@dataclass(frozen=True)
class Histogram:
    """Counts of values between consecutive ``edges`` (one more edge than counts), and the values'
    extremes (``low``, ``high``), sum (``total``) and sum of squares (``squares``)."""

    edges: list[float]
    counts: list[int]
    low: float
    high: float
    total: float
    squares: float


@dataclass(frozen=True)
class Sample:
    """What a monitor measured at optimizer step ``step`` (from 1): named numbers (None: not
    measurable then) and named histograms."""

    step: int
    scalars: dict[str, float | None]
    histograms: dict[str, Histogram]


class Monitor:
    """Samples every ``every`` steps; keeps its ``records`` (and appends each as a JSON line to
    ``path`` when given) and the ``warnings`` it printed (each kind once, to ``stream``)."""

    kind = ""

    def __init__(self, every: int = 10, path: str | None = None, stream: TextIO | None = None):
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"{type(self).__name__}: every must be a whole number of steps >= 1, got {every!r}")
        self.every, self.path, self.stream = every, path, stream
        self.records: list[dict[str, Any]] = []
        self.warnings: list[tuple[str, str]] = []
        self._warned: set[str] = set()
        self._taken = 0

    def due(self, trainer: Trainer) -> bool:
        """Whether the step about to be taken is sampled (steps 1, every + 1, 2·every + 1, ...)."""
        return trainer.global_step % self.every == 0

    def on_fit_start(self, trainer: Trainer) -> None:
        self._taken = len(self.records)
        if self.path and trainer.global_step and os.path.exists(self.path):
            keep_until(self.path, trainer.global_step)

    def write(self, trainer: Trainer, step: int, record: dict[str, Any]) -> None:
        """Keep ``record`` of optimizer step ``step`` (counting from 1) of the current epoch."""
        record = {"kind": self.kind, "epoch": trainer.epoch + 1, "step": step, **record}
        self.records.append(record)
        if self.path:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def take_samples(self) -> list[Sample]:
        """The samples recorded since the last call (or since fit started), as named values."""
        samples = [self.sample(record) for record in self.records[self._taken :]]
        self._taken = len(self.records)
        return samples

    def sample(self, record: dict[str, Any]) -> Sample:
        """One of this monitor's records as a :class:`Sample`."""
        raise NotImplementedError

    def warn(self, kind: str, message: str) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        self.warnings.append((kind, message))
        print(f"deepgrad: warning: {message}", file=self.stream or sys.stderr)


def keep_until(path: str, step: int) -> None:
    """Rewrite the JSON-lines file at ``path`` keeping the records of steps up to ``step`` (a resumed
    run trains the later ones again); a torn last line (a crash while writing) is dropped."""
    kept = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            recorded = record.get("step") if isinstance(record, dict) else None
            if isinstance(recorded, int) and recorded <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    io.write_text(path, "".join(kept))


class GradientFlowMonitor(Monitor):
    """Per sampled step: gradient norms per parameter and layer, the first/last layer ratio (before
    any clipping) and the update-to-weight ratios of the step. Warns when gradients vanish (ratio
    below ``vanishing_ratio``), explode (total norm above ``exploding_norm``) or are not finite."""

    kind = "gradients"

    def __init__(
        self,
        every: int = 10,
        path: str | None = None,
        stream: TextIO | None = None,
        vanishing_ratio: float = VANISHING_RATIO,
        exploding_norm: float = EXPLODING_NORM,
    ):
        super().__init__(every, path, stream)
        self.vanishing_ratio, self.exploding_norm = vanishing_ratio, exploding_norm
        self.flow: GradientFlow | None = None
        self.kinds: dict[str, str] = {}  # module name -> its type's name
        self.pending: dict[str, Any] | None = None
        self.step: int | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        super().on_fit_start(trainer)
        self.flow = GradientFlow(trainer.model)
        self.kinds = {name: type(module).__name__ for name, module in trainer.model.named_modules()}

    def sample(self, record: dict[str, Any]) -> Sample:
        """``gradient_norm/<layer>.<Type>`` and ``/total``, ``gradient_flow/first_last_ratio``,
        ``update_ratio/<layer>.<Type>.<parameter>`` (``1.Linear.weight``): a layer's tag says what it is."""
        scalars = {f"gradient_norm/{self._named(layer)}": norm for layer, norm in record["layers"].items()}
        scalars.update(
            {"gradient_norm/total": record["total"], "gradient_flow/first_last_ratio": record["first_last_ratio"]}
        )
        for name, ratio in record["update_ratios"].items():
            layer, _, parameter = name.rpartition(".")
            scalars[f"update_ratio/{self._named(layer)}.{parameter}"] = ratio
        return Sample(record["step"], scalars, {})

    def _named(self, layer: str) -> str:
        kind = self.kinds.get(layer)
        return f"{layer}.{kind}" if kind else layer

    def on_after_backward(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if self.due(trainer):
            assert self.flow is not None, "on_fit_start made it"
            self.step = trainer.global_step + 1
            self.pending = {"loss": float(logs["loss"]), **self.flow.gradients()}
            self.flow.snapshot()
            self._check(self.step, self.pending)

    def on_step_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if self.pending is not None and self.flow is not None and self.step is not None:
            self.write(trainer, self.step, {**self.pending, "update_ratios": self.flow.update_ratios()})
            self.pending = None

    def _check(self, step: int, gradients: dict[str, Any]) -> None:
        total, ratio = gradients["total"], gradients["first_last_ratio"]
        if total is not None and not math.isfinite(total):
            self.warn(
                "non-finite",
                f"the gradients are not finite at step {step} (total norm {total}): the "
                "loss or a layer overflowed; lower the learning rate or clip gradients",
            )
        elif total is not None and total > self.exploding_norm:
            self.warn(
                "exploding",
                f"the gradients explode: total norm {total:.3g} at step {step} (above "
                f"{self.exploding_norm:g}); lower the learning rate or clip the gradient norm",
            )
        if ratio is not None and ratio < self.vanishing_ratio and self.flow is not None:
            first, last = self.flow.weighted[0], self.flow.weighted[-1]
            self.warn(
                "vanishing",
                f"the gradients vanish: layer {first}'s gradient norm is {ratio:.2g} of layer "
                f"{last}'s at step {step} (below {self.vanishing_ratio:g}): the first layers "
                "barely learn; try ReLU with He initialization, batch norm or residual "
                "connections",
            )


class ActivationMonitor(Monitor):
    """Per sampled step: each watched layer's :class:`~deepgrad.diagnostics.activations.LayerActivations`
    (default: the activation layers). Warns when most of a layer's units are dead or most of its
    outputs saturated (more than ``mostly``)."""

    kind = "activations"

    def __init__(
        self,
        every: int = 10,
        path: str | None = None,
        stream: TextIO | None = None,
        layers: list[str] | None = None,
        mostly: float = MOSTLY,
    ):
        super().__init__(every, path, stream)
        self.layers, self.mostly = layers, mostly
        self.stats: ActivationStats | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        super().on_fit_start(trainer)
        select_layers(trainer.model, self.layers)  # a bad layer name fails now, not at the first sample

    def sample(self, record: dict[str, Any]) -> Sample:
        """Per layer, ``activations/<layer>.<Type>/mean``, ``std``, ``dead_fraction``,
        ``saturated_fraction`` and the histogram ``activations/<layer>.<Type>`` (the monitor's bins,
        which span every value)."""
        scalars: dict[str, float | None] = {}
        histograms = {}
        for layer, stats in record["layers"].items():
            tag, mean, std = f"activations/{layer}.{stats['kind']}", stats["mean"], stats["std"]
            scalars.update(
                {
                    f"{tag}/mean": mean,
                    f"{tag}/std": std,
                    f"{tag}/dead_fraction": stats["dead"],
                    f"{tag}/saturated_fraction": stats["saturated"],
                }
            )
            count, edges = sum(stats["histogram"]), stats["edges"]
            if count:
                histograms[tag] = Histogram(
                    edges, stats["histogram"], edges[0], edges[-1], mean * count, count * (std**2 + mean**2)
                )
        return Sample(record["step"], scalars, histograms)

    def on_batch_start(self, trainer: Trainer, batch: int) -> None:
        if self.due(trainer):
            self.stats = ActivationStats(trainer.model, self.layers)

    def on_after_backward(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if self.stats is None:
            return
        self.stats.remove()
        results = {name: stats.to_dict() for name, stats in self.stats.results.items()}
        self.stats = None
        step = trainer.global_step + 1
        self.write(trainer, step, {"layers": results})
        for name, stats in results.items():
            if stats["dead"] > self.mostly:
                self.warn(
                    "dead",
                    f"{stats['dead']:.0%} of layer {name}'s units ({stats['kind']}) are dead at step "
                    f"{step}: they output 0 for every sample and stop learning; try a lower "
                    "learning rate, He initialization or LeakyReLU",
                )
            if stats["saturated"] is not None and stats["saturated"] > self.mostly:
                self.warn(
                    "saturated",
                    f"{stats['saturated']:.0%} of layer {name}'s outputs ({stats['kind']}) are "
                    f"saturated at step {step}: gradients through it vanish; try smaller "
                    "initial weights (Xavier), batch norm or ReLU",
                )

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.stats is not None:  # a fit interrupted between the forward and the backward
            self.stats.remove()
            self.stats = None


def standard_monitors(directory: str | None = None, every: int = 10, stream: TextIO | None = None) -> list[Monitor]:
    """A GradientFlowMonitor and an ActivationMonitor sampling every ``every`` steps, writing to
    ``directory/diagnostics.jsonl`` (keeping their records in memory only when ``directory`` is
    None): what ``deepgrad train --monitor`` adds to a run."""
    path = None if directory is None else os.path.join(directory, DIAGNOSTICS_FILE)
    return [GradientFlowMonitor(every, path, stream), ActivationMonitor(every, path, stream)]
