"""Learning-rate schedules. Each ``step()`` advances one step (or epoch) and
writes the new rate into every parameter group's "lr".

Every schedule is a closed form of the step count t, lr_t = f(t, base_lr),
so a schedule restored from ``state_dict`` continues exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, SupportsFloat

from .optimizer import Optimizer


class Schedule(Protocol):
    """What the step-count schedules (every :class:`LRScheduler`) have in common: a closed form
    ``lr_at(step, base_lr)`` of the rate, ``step()`` to advance and write it into the optimizer, and
    their state. (ReduceLROnPlateau is not one: it follows a metric, ``step(metric)``.)"""

    def lr_at(self, step: int, base_lr: float) -> float: ...

    def step(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None: ...


class _ScheduleState:
    """state_dict/load_state_dict of a schedule: every attribute but the optimizer."""

    optimizer: Optimizer

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.__dict__.update(state_dict)


class LRScheduler(_ScheduleState):
    """Base: remembers each group's base lr (``initial_lr``) and the step count ``last_epoch``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(
                    f"{type(self).__name__}: resuming at last_epoch={last_epoch} needs 'initial_lr' in every group"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, step: int, base_lr: float) -> float:
        """The learning rate after ``step`` steps for a group whose base rate is ``base_lr``."""
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = float(self.lr_at(self.last_epoch, base_lr))


class LinearDecay(LRScheduler):
    """The seed notes' schedule: α_t = (1 − t/k)·α_0 + (t/k)·b for t ≤ k, then b."""

    def __init__(self, optimizer: Optimizer, total_steps: int, final_lr: float, last_epoch: int = -1) -> None:
        if total_steps < 1:
            raise ValueError(f"LinearDecay: total_steps must be >= 1, got {total_steps}")
        self.total_steps, self.final_lr = total_steps, final_lr
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int, base_lr: float) -> float:
        fraction = min(step / self.total_steps, 1.0)
        return (1 - fraction) * base_lr + fraction * self.final_lr


class StepLR(LRScheduler):
    """lr_t = base · γ^⌊t / step_size⌋"""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (step // self.step_size)


class MultiStepLR(LRScheduler):
    """lr_t = base · γ^(number of milestones ≤ t)"""

    def __init__(
        self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int, base_lr: float) -> float:
        return base_lr * self.gamma ** sum(1 for m in self.milestones if m <= step)


class ExponentialLR(LRScheduler):
    """lr_t = base · γ^t"""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int, base_lr: float) -> float:
        return base_lr * self.gamma**step


class CosineAnnealingLR(LRScheduler):
    """lr_t = η_min + (base − η_min)·(1 + cos(π·t / T_max)) / 2"""

    def __init__(
        self,
        optimizer: Optimizer,
        T_max: int,
        eta_min: float = 0.0,  # noqa: N803 - PyTorch's name
        last_epoch: int = -1,
    ) -> None:
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int, base_lr: float) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2


class LinearLR(LRScheduler):
    """lr_t = base · (start + (end − start)·min(t, total_iters)/total_iters)  (a linear warmup or decay)"""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: factors must be in (0, 1] and [0, 1], got {start_factor}, {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int, base_lr: float) -> float:
        progress = min(step, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class LinearWarmup(LinearLR):
    """Ramp the rate linearly from start_factor·base to base over ``warmup_steps`` steps, then hold it."""

    def __init__(
        self, optimizer: Optimizer, warmup_steps: int, start_factor: float = 0.1, last_epoch: int = -1
    ) -> None:
        super().__init__(optimizer, start_factor, 1.0, warmup_steps, last_epoch)


class ReduceLROnPlateau(_ScheduleState):
    """Multiply the rate by ``factor`` when a metric stops improving for ``patience`` epochs (PyTorch's rules)."""

    steps_on_metric = True  # step(metric): a training loop passes it the monitored value each epoch

    def __init__(
        self,
        optimizer: Optimizer,
        mode: Literal["min", "max"] = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs"] = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: expected an Optimizer, got {type(optimizer).__name__}")
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor}")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: bad mode {mode!r} or threshold_mode {threshold_mode!r}")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown, self.eps = threshold, threshold_mode, cooldown, eps
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(optimizer.param_groups)
        if len(self.min_lrs) != len(optimizer.param_groups):
            raise ValueError(
                f"ReduceLROnPlateau: expected {len(optimizer.param_groups)} min_lr values "
                f"(one per parameter group), got {len(self.min_lrs)}"
            )
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def is_better(self, value: float, best: float) -> bool:
        if self.mode == "min":
            return value < (best * (1 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return value > (best * (1 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metric: SupportsFloat) -> None:
        metric = float(metric)
        self.last_epoch += 1
        if self.is_better(metric, self.best):
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                new_lr = max(group["lr"] * self.factor, min_lr)
                if group["lr"] - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
