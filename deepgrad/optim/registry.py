"""Optimizers and learning-rate schedules by name: the choices of a training config
(``deepgrad train --optimizer NAME --schedule NAME``).

Each optimizer factory takes the parameters and the config's lr, momentum and weight decay
(an optimizer without momentum ignores it); each schedule factory takes the optimizer and a
:class:`SchedulePlan` (the run's length and schedule options) and returns (scheduler or None,
"epoch" or "batch": how often it steps).
"""

from dataclasses import dataclass

from .adaptive import Adagrad, Adam, AdamW, RMSprop
from .lr_scheduler import CosineAnnealingLR, LinearDecay, ReduceLROnPlateau, StepLR
from .sgd import SGD, Momentum

OPTIMIZERS = {
    "sgd": lambda params, lr, momentum, weight_decay: SGD(params, lr=lr, momentum=momentum,
                                                          weight_decay=weight_decay),
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
    step_size: int = None
    gamma: float = 0.1
    patience: int = 3

    @property
    def total_steps(self):
        return self.epochs * self.steps_per_epoch


# name -> factory(optimizer, plan) -> (scheduler or None, "epoch" or "batch": how often it steps)
SCHEDULES = {
    "none": lambda optimizer, plan: (None, "epoch"),
    "linear-decay": lambda optimizer, plan: (
        LinearDecay(optimizer, total_steps=plan.total_steps, final_lr=plan.final_lr), "batch"),
    "step": lambda optimizer, plan: (
        StepLR(optimizer, step_size=plan.step_size or max(1, plan.epochs // 3), gamma=plan.gamma), "epoch"),
    "cosine": lambda optimizer, plan: (
        CosineAnnealingLR(optimizer, T_max=plan.total_steps, eta_min=plan.final_lr), "batch"),
    "plateau": lambda optimizer, plan: (
        ReduceLROnPlateau(optimizer, factor=plan.gamma, patience=plan.patience), "epoch"),
}


def create_optimizer(name, params, lr, momentum=0.9, weight_decay=0.0):
    """The optimizer called ``name`` (a key of :data:`OPTIMIZERS`) over ``params``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, lr, momentum, weight_decay)


def create_schedule(name, optimizer, plan):
    """(the schedule called ``name`` for a run of ``plan`` (a :class:`SchedulePlan`), or None;
    "epoch" or "batch")."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    return SCHEDULES[name](optimizer, plan)
