"""The policies of a training step: what the Trainer does to the step itself, read in
:meth:`~deepgrad.train.Trainer.train_step` in the order they act.

- :class:`DivergenceGuard`: the loss must be finite (checked before the backward), a loss that
  explodes while staying finite is warned about once (or stops the run), and weights that became
  non-finite stop the run at the epoch's end before anything saves them;
- gradient clipping (``clip_grad_norm``: :func:`deepgrad.nn.utils.clip_grad_norm_`, in the step);
- :class:`LearningRate`: the rate of each optimizer step as a function of the step,
  lr(t) = warm-up(t) · schedule(t), set once per step, as nanoGPT's ``get_lr(it)``; a plateau
  schedule changes its rate at an epoch's end, from the validation loss.

Observers (logging, checkpoints, early stopping) are callbacks (:mod:`deepgrad.train.callbacks`);
nothing here is one.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import numpy as np

from .. import backend
from ..errors import TrainingDiverged
from ..optim.optimizer import Optimizer

INTERVALS = ("epoch", "batch")


class LearningRate:
    """The learning rate of every optimizer step: lr(t) = warm-up(t) · schedule(t).

    ``base_lrs``: each parameter group's base rate. ``scheduler``: a schedule of
    :mod:`deepgrad.optim.lr_scheduler` (its closed form ``lr_at(k, base)``; its own ``step()`` is
    never called), or a ReduceLROnPlateau, or None for a constant rate. ``interval``: the schedule's
    k counts optimizer steps ("batch") or epochs ("epoch"). ``until``: the k the schedule was planned
    for; past it the rate stays where the schedule ended (a resumed run given more epochs goes on at
    the final rate). ``warmup_steps`` W: step t < W (from 0) uses (t + 1)/W of the scheduled rate.
    ``monitor``: the metric a plateau schedule follows (default: val_loss, train_loss without
    validation).

    A plateau schedule's rates change at epoch ends only; they are the one piece of state, saved in
    checkpoints with the plan (``until``).
    """

    checkpoint_key = "scheduler"

    def __init__(
        self,
        base_lrs: list[float],
        scheduler: Any = None,
        interval: str = "epoch",
        until: int | None = None,
        warmup_steps: int = 0,
        monitor: str | None = None,
    ):
        if interval not in INTERVALS:
            raise ValueError(f"LearningRate: interval must be 'epoch' or 'batch', got {interval!r}")
        if warmup_steps < 0:
            raise ValueError(f"LearningRate: warmup_steps must be >= 0, got {warmup_steps}")
        self.base_lrs, self.scheduler, self.interval = list(base_lrs), scheduler, interval
        self.until, self.warmup_steps, self.monitor = until, warmup_steps, monitor
        self.on_metric = bool(getattr(scheduler, "steps_on_metric", False))
        self.rates = list(self.base_lrs) if self.on_metric else None  # a plateau schedule's current rates

    @classmethod
    def of(
        cls,
        optimizer: Optimizer,
        scheduler: Any = None,
        interval: str = "epoch",
        warmup_steps: int = 0,
        monitor: str | None = None,
    ) -> LearningRate:
        """The policy of ``scheduler`` over ``optimizer``'s groups, their base rates the schedule's
        (``initial_lr``) or, without one, the groups' rates now."""
        base = getattr(scheduler, "base_lrs", None) or [
            group.get("initial_lr", group["lr"]) for group in optimizer.param_groups
        ]
        return cls(base, scheduler, interval, warmup_steps=warmup_steps, monitor=monitor)

    def scheduled(self, step: int, epoch: int) -> list[float]:
        """Each group's rate for optimizer step ``step`` (from 0), which lies in epoch ``epoch`` (from
        0), before warm-up."""
        if self.rates is not None:
            return self.rates
        if self.scheduler is None:
            return self.base_lrs
        k = step if self.interval == "batch" else epoch
        if self.until is not None:
            k = min(k, self.until)
        return [self.scheduler.lr_at(k, base) for base in self.base_lrs]

    def at(self, step: int, epoch: int) -> list[float]:
        """Each group's rate for optimizer step ``step`` in epoch ``epoch`` (both from 0)."""
        rates = self.scheduled(step, epoch)
        if step < self.warmup_steps:
            return [lr * (step + 1) / self.warmup_steps for lr in rates]
        return rates

    def apply(self, optimizer: Optimizer, step: int, epoch: int) -> None:
        """Set the rate of step ``step`` (in epoch ``epoch``) in every parameter group."""
        for group, lr in zip(optimizer.param_groups, self.at(step, epoch)):
            group["lr"] = float(lr)

    def end_epoch(self, optimizer: Optimizer, logs: dict[str, float]) -> None:
        """At an epoch's end: a plateau schedule takes the epoch's ``monitor`` value from ``logs``."""
        if self.rates is None:
            return
        monitor = self.monitor or ("val_loss" if "val_loss" in logs else "train_loss")
        if monitor not in logs:
            raise KeyError(f"LearningRate: metric {monitor!r} for the plateau schedule not in the logs {sorted(logs)}")
        for group, lr in zip(optimizer.param_groups, self.rates):  # the schedule reduces the un-warmed rates
            group["lr"] = lr
        self.scheduler.step(logs[monitor])
        self.rates = [group["lr"] for group in optimizer.param_groups]

    def set_base(self, lrs: list[float]) -> None:
        """New base rates from now on (a resumed run's ``--override --lr``): a schedule goes on from
        its step with them, a plateau schedule from them."""
        self.base_lrs = list(lrs)
        if self.rates is not None:
            self.rates = list(lrs)

    def final_rate(self) -> float | None:
        """The first group's rate where the planned schedule ends (None without a plan)."""
        if self.scheduler is None or self.until is None or self.rates is not None:
            return None
        return float(self.scheduler.lr_at(self.until, self.base_lrs[0]))

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"schedule": _schedule_state(self.scheduler), "until": self.until}
        if self.rates is not None:
            state["rates"] = list(self.rates)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The plan (``until``, the schedule's parameters) and a plateau's state and rates of a
        checkpoint. The base rates stay this policy's (they come from the run's options); a
        checkpoint from before plans were kept holds the schedule's state alone."""
        if "schedule" not in state:
            state = {"schedule": state, "until": None}
        until, rates = state["until"], state.get("rates")
        if until is not None and (not isinstance(until, int) or isinstance(until, bool) or until < 0):
            raise ValueError(f"the schedule's planned length should be a step count, got {until!r:.40}")
        if rates is not None and not (
            isinstance(rates, list) and all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in rates)
        ):
            raise ValueError(f"a plateau schedule's rates should be numbers, got {rates!r:.40}")
        if not isinstance(state["schedule"], dict):
            raise TypeError(f"the schedule's state should be a dict, got {state['schedule']!r:.40}")
        if self.scheduler is not None and state["schedule"]:
            saved = {key: value for key, value in state["schedule"].items() if key not in ("base_lrs", "optimizer")}
            self.scheduler.load_state_dict(saved)
        self.until = state["until"]
        if self.rates is not None:  # older checkpoints: the rates are the optimizer's, restored with it
            self.rates = list(state["rates"]) if "rates" in state else None

    def restore_rates(self, optimizer: Optimizer) -> None:
        """A plateau schedule resumed from a checkpoint without its rates takes the optimizer's."""
        if self.on_metric and self.rates is None:
            self.rates = [group["lr"] for group in optimizer.param_groups]


def _schedule_state(scheduler: Any) -> dict[str, Any]:
    return scheduler.state_dict() if scheduler is not None else {}


class DivergenceGuard:
    """The checks that stop (or warn about) a run going wrong.

    - A loss that is NaN or infinite raises :class:`TrainingDiverged` before its backward, so the
      step that produced it never reaches the weights.
    - A finite loss above ``explosion`` times the run's first loss (Adam at lr 1e6: 7.5e20 where
      the first was 2.3) prints one warning, or with ``stop_on_divergence`` raises the same
      TrainingDiverged as a NaN.
    - Weights that became non-finite during an epoch while the loss stayed finite raise
      TrainingDiverged at the epoch's end, before any checkpoint saves them.

    ``nan_check`` False turns the NaN and weight checks off (a run that wants to see NaN losses).

    On a GPU, reading each step's loss would make the host wait for the step: there the Trainer
    hands the losses over as they are (:meth:`defer`) and :meth:`check_deferred` reads them all at
    once, every few steps, checking each in order. A divergence is then found a few steps late —
    its step, loss and last finite loss are still the exact ones — and the epoch's end, a
    checkpoint and Ctrl-C check first, so no non-finite weights are ever saved.
    """

    checkpoint_key = "divergence"

    def __init__(
        self,
        nan_check: bool = True,
        stop_on_divergence: bool = False,
        explosion: float = 1e3,
        stream: TextIO | None = None,
    ):
        if not explosion > 1:
            raise ValueError(f"DivergenceGuard: explosion must be a factor above 1, got {explosion}")
        self.nan_check, self.stop_on_divergence, self.explosion = nan_check, stop_on_divergence, explosion
        self.stream = stream
        self.first_loss: float | None = None
        self.last_finite: float | None = None
        self.warned = False
        self.deferred: list[tuple[Any, int, int]] = []  # (a loss on its device, its step, its epoch)
        # a loss above this (or NaN) is looked at closely: any before the first loss is known, then one
        # over ``explosion`` times it until the warning is given, then only an infinite one
        self.alarm = -math.inf

    def check_loss(self, loss: float, step: int, epoch: int) -> None:
        """Check the loss of optimizer step ``step`` (from 1) in epoch ``epoch`` (from 1). Most steps
        cost one comparison."""
        if loss <= self.alarm:
            self.last_finite = loss
            return
        if not math.isfinite(loss):
            if self.nan_check:
                raise TrainingDiverged(
                    f"training loss became {loss} at step {step} (epoch {epoch}); last finite loss: "
                    f"{self.last_finite}. Try a lower learning rate or gradient clipping.",
                    step,
                    loss,
                    self.last_finite,
                )
            return
        if self.first_loss is None:
            self.first_loss = loss
        elif not self.warned and loss > self.explosion * abs(self.first_loss) > 0:
            message = (
                f"the training loss {loss:.4g} at step {step} (epoch {epoch}) is over {self.explosion:g} times "
                f"the first step's ({self.first_loss:.4g}): the run is diverging. Try a lower learning rate "
                "or gradient clipping"
            )
            if self.stop_on_divergence:
                raise TrainingDiverged(message + "; stopped (--stop-on-divergence).", step, loss, self.last_finite)
            self.warned = True
            print(
                f"deepgrad: warning: {message} (--stop-on-divergence stops a run here).", file=self.stream or sys.stderr
            )
        self.last_finite = loss
        self._set_alarm()

    def defer(self, loss: Any, step: int, epoch: int) -> None:
        """Keep ``loss`` (a 0-d array on a device) of step ``step`` for :meth:`check_deferred`."""
        self.deferred.append((loss, step, epoch))

    def check_deferred(self) -> None:
        """Read the deferred losses in one transfer and check each, in the order of their steps."""
        if not self.deferred:
            return
        deferred, self.deferred = self.deferred, []
        xp = backend.get_array_module(deferred[0][0])
        losses = backend.to_host(xp.stack([loss for loss, _, _ in deferred]))
        for loss, (_, step, epoch) in zip(losses.tolist(), deferred):
            self.check_loss(loss, step, epoch)

    def _set_alarm(self) -> None:
        if self.first_loss is None:
            self.alarm = -math.inf
        elif self.warned or self.first_loss == 0:
            self.alarm = sys.float_info.max  # an infinite loss is still caught
        else:
            self.alarm = self.explosion * abs(self.first_loss)

    def check_weights(self, named_parameters: Iterable[tuple[str, Any]], epoch: int, step: int | None = None) -> None:
        """At the end of epoch ``epoch`` (its last optimizer step ``step``): the weights must be finite."""
        if not self.nan_check:
            return
        broken = [name for name, p in named_parameters if not bool(np.isfinite(p.data).all())]
        if broken:
            raise TrainingDiverged(
                f"the weights {', '.join(broken[:3])}{' ...' if len(broken) > 3 else ''} became NaN or infinite "
                f"during epoch {epoch} while the loss stayed finite (last: {self.last_finite}); nothing of this epoch "
                "was saved. Try a lower learning rate or gradient clipping.",
                step,
                self.last_finite,
                self.last_finite,
            )

    def state_dict(self) -> dict[str, Any]:
        return {"first_loss": self.first_loss, "warned": self.warned}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        first = state.get("first_loss")
        if first is not None and (
            isinstance(first, bool) or not isinstance(first, (int, float)) or not math.isfinite(first)
        ):
            raise TypeError(f"DivergenceGuard: first_loss must be a finite number, got {first!r:.40}")
        self.first_loss, self.warned = first, bool(state.get("warned", False))
        self._set_alarm()
