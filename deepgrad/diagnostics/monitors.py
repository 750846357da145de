"""Trainer callbacks that watch a run every few steps: gradient flow and activation statistics,
one JSON line per sample in ``diagnostics.jsonl``, and one clear warning per kind of trouble.

    trainer = Trainer(model, opt, F.cross_entropy, callbacks=standard_monitors("runs/x", every=10))
    # deepgrad train --monitor does the same for its run directory

A sampled step (the 1st, then every ``every``-th) costs a copy of the weights and a few norms
(gradients) or a histogram per watched layer (activations); the other steps cost nothing.
"""

import json
import math
import os
import sys

from .. import io
from ..train.callbacks import Callback
from .activations import ActivationStats, select_layers
from .gradients import GradientFlow

DIAGNOSTICS_FILE = "diagnostics.jsonl"
VANISHING_RATIO = 1e-3   # first/last layer gradient-norm ratio below this: the first layers barely learn
EXPLODING_NORM = 1e3     # a total gradient norm above this: exploding
MOSTLY = 0.5             # more than this fraction of a layer's units dead, or of its outputs saturated


class Monitor(Callback):
    """Samples every ``every`` steps; keeps its ``records`` (and appends each as a JSON line to
    ``path`` when given) and the ``warnings`` it printed (each kind once, to ``stream``)."""

    kind = None

    def __init__(self, every=10, path=None, stream=None):
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"{type(self).__name__}: every must be a whole number of steps >= 1, got {every!r}")
        self.every, self.path, self.stream = every, path, stream
        self.records, self.warnings = [], []
        self._warned = set()

    def due(self, trainer):
        """Whether the step about to be taken is sampled (steps 1, every + 1, 2·every + 1, ...)."""
        return trainer.global_step % self.every == 0

    def on_fit_start(self, trainer):
        if self.path and trainer.global_step and os.path.exists(self.path):
            keep_until(self.path, trainer.global_step)

    def write(self, trainer, step, record):
        """Keep ``record`` of optimizer step ``step`` (counting from 1) of the current epoch."""
        record = {"kind": self.kind, "epoch": trainer.epoch + 1, "step": step, **record}
        self.records.append(record)
        if self.path:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def warn(self, kind, message):
        if kind in self._warned:
            return
        self._warned.add(kind)
        self.warnings.append((kind, message))
        print(f"deepgrad: warning: {message}", file=self.stream or sys.stderr)


def keep_until(path, step):
    """Rewrite the JSON-lines file at ``path`` keeping the records of steps up to ``step`` (a resumed
    run trains the later ones again); a torn last line (a crash while writing) is dropped."""
    kept = []
    with open(path) as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step", 0) <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    io.write_text(path, "".join(kept))


class GradientFlowMonitor(Monitor):
    """Per sampled step: gradient norms per parameter and layer, the first/last layer ratio (before
    any clipping) and the update-to-weight ratios of the step. Warns when gradients vanish (ratio
    below ``vanishing_ratio``), explode (total norm above ``exploding_norm``) or are not finite."""

    kind = "gradients"
    order = -1  # before GradientClipping (10) and the NaN guard's verdict: the raw gradients

    def __init__(self, every=10, path=None, stream=None, vanishing_ratio=VANISHING_RATIO,
                 exploding_norm=EXPLODING_NORM):
        super().__init__(every, path, stream)
        self.vanishing_ratio, self.exploding_norm = vanishing_ratio, exploding_norm
        self.flow = self.pending = self.step = None

    def on_fit_start(self, trainer):
        super().on_fit_start(trainer)
        self.flow = GradientFlow(trainer.model)

    def on_after_backward(self, trainer, logs):
        if self.due(trainer):
            self.step = trainer.global_step + 1
            self.pending = {"loss": logs["loss"], **self.flow.gradients()}
            self.flow.snapshot()
            self._check(self.step, self.pending)

    def on_step_end(self, trainer, logs):
        if self.pending is not None:
            self.write(trainer, self.step, {**self.pending, "update_ratios": self.flow.update_ratios()})
            self.pending = None

    def _check(self, step, gradients):
        total, ratio = gradients["total"], gradients["first_last_ratio"]
        if total is not None and not math.isfinite(total):
            self.warn("non-finite", f"the gradients are not finite at step {step} (total norm {total}): the "
                                    "loss or a layer overflowed; lower the learning rate or clip gradients")
        elif total is not None and total > self.exploding_norm:
            self.warn("exploding", f"the gradients explode: total norm {total:.3g} at step {step} (above "
                                   f"{self.exploding_norm:g}); lower the learning rate or clip the gradient norm")
        if ratio is not None and ratio < self.vanishing_ratio:
            first, last = self.flow.weighted[0], self.flow.weighted[-1]
            self.warn("vanishing", f"the gradients vanish: layer {first}'s gradient norm is {ratio:.2g} of layer "
                                   f"{last}'s at step {step} (below {self.vanishing_ratio:g}): the first layers "
                                   "barely learn; try ReLU with He initialization, batch norm or residual "
                                   "connections")


class ActivationMonitor(Monitor):
    """Per sampled step: each watched layer's :class:`~deepgrad.diagnostics.activations.LayerActivations`
    (default: the activation layers). Warns when most of a layer's units are dead or most of its
    outputs saturated (more than ``mostly``)."""

    kind = "activations"

    def __init__(self, every=10, path=None, stream=None, layers=None, mostly=MOSTLY):
        super().__init__(every, path, stream)
        self.layers, self.mostly = layers, mostly
        self.stats = None

    def on_fit_start(self, trainer):
        super().on_fit_start(trainer)
        select_layers(trainer.model, self.layers)  # a bad layer name fails now, not at the first sample

    def on_batch_start(self, trainer, batch):
        if self.due(trainer):
            self.stats = ActivationStats(trainer.model, self.layers)

    def on_after_backward(self, trainer, logs):
        if self.stats is None:
            return
        self.stats.remove()
        results = {name: stats.to_dict() for name, stats in self.stats.results.items()}
        self.stats = None
        step = trainer.global_step + 1
        self.write(trainer, step, {"layers": results})
        for name, stats in results.items():
            if stats["dead"] > self.mostly:
                self.warn("dead", f"{stats['dead']:.0%} of layer {name}'s units ({stats['kind']}) are dead at step "
                                  f"{step}: they output 0 for every sample and stop learning; try a lower "
                                  "learning rate, He initialization or LeakyReLU")
            if stats["saturated"] is not None and stats["saturated"] > self.mostly:
                self.warn("saturated", f"{stats['saturated']:.0%} of layer {name}'s outputs ({stats['kind']}) are "
                                       f"saturated at step {step}: gradients through it vanish; try smaller "
                                       "initial weights (Xavier), batch norm or ReLU")

    def on_fit_end(self, trainer):
        if self.stats is not None:  # a fit interrupted between the forward and the backward
            self.stats.remove()
            self.stats = None


def standard_monitors(directory=None, every=10, stream=None):
    """A GradientFlowMonitor and an ActivationMonitor sampling every ``every`` steps, writing to
    ``directory/diagnostics.jsonl`` (keeping their records in memory only when ``directory`` is
    None): what ``deepgrad train --monitor`` adds to a run."""
    path = None if directory is None else os.path.join(directory, DIAGNOSTICS_FILE)
    return [GradientFlowMonitor(every, path, stream), ActivationMonitor(every, path, stream)]
