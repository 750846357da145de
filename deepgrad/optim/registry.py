"""Optimizers and learning-rate schedules by name: the choices of a training config
(``deepgrad train --optimizer NAME --schedule NAME``).

Each optimizer factory takes the parameters and the config's lr, momentum and weight decay
(an optimizer without momentum ignores it); each schedule factory takes the optimizer and a
:class:`SchedulePlan` (the run's length and schedule options) and returns (scheduler or None,
"epoch" or "batch": how often it steps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .adaptive import Adagrad, Adam, AdamW, RMSprop
from .lr_scheduler import CosineAnnealingLR, LinearDecay, LRScheduler, ReduceLROnPlateau, StepLR
from .optimizer import Optimizer, Params
from .sgd import SGD, Momentum

#: factory(params, lr, momentum, weight_decay) -> the optimizer
OptimizerFactory: TypeAlias = Callable[[Params, float, float, float], Optimizer]
#: How often a schedule steps: once per epoch, or once per batch (optimizer step).
Interval: TypeAlias = Literal["epoch", "batch"]
#: A named schedule built for a run: (the schedule, or None for a constant rate; how often it steps).
BuiltSchedule: TypeAlias = tuple[LRScheduler | ReduceLROnPlateau | None, Interval]
#: factory(optimizer, plan) -> the built schedule
ScheduleFactory: TypeAlias = Callable[[Optimizer, "SchedulePlan"], BuiltSchedule]

OPTIMIZERS: dict[str, OptimizerFactory] = {
    "sgd": lambda params, lr, momentum, weight_decay: SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay),
    "momentum": lambda params, lr, momentum, weight_decay: Momentum(params, lr=lr, momentum=momentum),
    "adagrad": lambda params, lr, momentum, weight_decay: Adagrad(params, lr=lr, weight_decay=weight_decay),
    "rmsprop": lambda params, lr, momentum, weight_decay: RMSprop(params, lr=lr, weight_decay=weight_decay),
    "adam": lambda params, lr, momentum, weight_decay: Adam(params, lr=lr, weight_decay=weight_decay),
    "adamw": lambda params, lr, momentum, weight_decay: AdamW(params, lr=lr, weight_decay=weight_decay),
}


@dataclass(frozen=True)
class SchedulePlan:
    """What a named schedule is built from: the run's length and the schedule options of its config.
    ``step_size`` None: a third of the epochs. ``gamma``: the factor of "step" and "plateau";
    ``patience``: epochs without improvement before "plateau" reduces the rate."""

    epochs: int
    steps_per_epoch: int
    final_lr: float = 0.0
    step_size: int | None = None
    gamma: float = 0.1
    patience: int = 3

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


# name -> factory(optimizer, plan) -> (scheduler or None, "epoch" or "batch": how often it steps)
SCHEDULES: dict[str, ScheduleFactory] = {
    "none": lambda optimizer, plan: (None, "epoch"),
    "linear-decay": lambda optimizer, plan: (
        LinearDecay(optimizer, total_steps=plan.total_steps, final_lr=plan.final_lr),
        "batch",
    ),
    "step": lambda optimizer, plan: (
        StepLR(optimizer, step_size=plan.step_size or max(1, plan.epochs // 3), gamma=plan.gamma),
        "epoch",
    ),
    "cosine": lambda optimizer, plan: (
        CosineAnnealingLR(optimizer, T_max=plan.total_steps, eta_min=plan.final_lr),
        "batch",
    ),
    "plateau": lambda optimizer, plan: (
        ReduceLROnPlateau(optimizer, factor=plan.gamma, patience=plan.patience),
        "epoch",
    ),
}


def create_optimizer(
    name: str, params: Params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0
) -> Optimizer:
    """The optimizer called ``name`` (a key of :data:`OPTIMIZERS`) over ``params``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, lr, momentum, weight_decay)


def create_schedule(name: str, optimizer: Optimizer, plan: SchedulePlan) -> BuiltSchedule:
    """(the schedule called ``name`` for a run of ``plan`` (a :class:`SchedulePlan`), or None;
    "epoch" or "batch")."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    return SCHEDULES[name](optimizer, plan)
