"""Early stopping of hopeless trials: asynchronous successive halving (ASHA; Li et al., 2020).

Rungs stand at epochs r, r·η, r·η², …; when a trial reports its score at a rung, it goes on only if
that score is among the best ⌈n/η⌉ of the n scores reported at that rung so far (its own included),
so the first trials to arrive go on and later ones must beat the field. No trial waits for others.
"""

from __future__ import annotations

import math

from ..errors import ConfigError


class TrialPruned(Exception):
    """Raised by ``report`` when the scheduler stops a trial; the search records it as pruned."""

    normal_ending = True  # a stop the search asked for, not a failure (a trial's TensorBoard status: SUCCESS)


class ASHA:
    """The rung bookkeeping of ASHA: ``min_epochs`` r, ``reduction`` η, rungs up to ``max_epochs``.
    A search scheduler (:class:`deepgrad.search.runner.Scheduler`) whose decisions depend on every
    trial's reports, so an executor running trials in several processes serves one ASHA they all ask."""

    shares_state = True

    def __init__(self, min_epochs: int = 1, reduction: float = 3, max_epochs: int | None = None, mode: str = "max"):
        if not isinstance(min_epochs, int) or min_epochs < 1:
            raise ConfigError(f"ASHA: min_epochs must be a whole number >= 1, got {min_epochs!r}")
        if not reduction > 1:
            raise ConfigError(f"ASHA: reduction must be > 1, got {reduction!r}")
        if mode not in ("max", "min"):
            raise ConfigError(f"ASHA: mode must be 'max' or 'min', got {mode!r}")
        self.min_epochs, self.reduction, self.max_epochs, self.mode = min_epochs, reduction, max_epochs, mode
        self.rungs: dict[int, list[float]] = {}  # epoch -> scores reported there

    def is_rung(self, epoch: int) -> bool:
        if epoch < self.min_epochs or (self.max_epochs is not None and epoch >= self.max_epochs):
            return False
        k = math.log(epoch / self.min_epochs, self.reduction)
        return abs(k - round(k)) < 1e-9

    def should_stop(self, epoch: int, score: float) -> bool:
        """Record ``score`` at ``epoch`` if it is a rung; True when the trial should stop there."""
        if not self.is_rung(epoch):
            return False
        recorded = self.rungs.setdefault(epoch, [])
        recorded.append(score)
        keep = math.ceil(len(recorded) / self.reduction)
        ranked = sorted((s for s in recorded if s == s), reverse=self.mode == "max")  # NaN never survives
        return score != score or ranked.index(score) >= keep
