"""Optimizers and learning-rate schedules by name: the choices of a training config
(``deepgrad train --optimizer NAME --schedule NAME``).

Each optimizer factory takes the parameters and the config's lr, momentum and weight decay
(an optimizer without momentum ignores it); each schedule factory takes the optimizer, the
number of epochs, the batches per epoch and the final lr, and returns (scheduler or None,
"epoch" or "batch": how often it steps).
"""

from .adaptive import Adagrad, Adam, AdamW, RMSprop
from .lr_scheduler import CosineAnnealingLR, LinearDecay, StepLR
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

SCHEDULES = {
    "none": lambda optimizer, epochs, steps_per_epoch, final_lr: (None, "epoch"),
    "linear-decay": lambda optimizer, epochs, steps_per_epoch, final_lr: (
        LinearDecay(optimizer, total_steps=epochs * steps_per_epoch, final_lr=final_lr), "batch"),
    # a tenth of the rate after each third of the epochs
    "step": lambda optimizer, epochs, steps_per_epoch, final_lr: (
        StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), "epoch"),
    "cosine": lambda optimizer, epochs, steps_per_epoch, final_lr: (
        CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch, eta_min=final_lr), "batch"),
}


def create_optimizer(name, params, lr, momentum=0.9, weight_decay=0.0):
    """The optimizer called ``name`` (a key of :data:`OPTIMIZERS`) over ``params``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, lr, momentum, weight_decay)


def create_schedule(name, optimizer, epochs, steps_per_epoch, final_lr=0.0):
    """(the schedule called ``name`` over ``epochs`` epochs, or None; "epoch" or "batch")."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    return SCHEDULES[name](optimizer, epochs, steps_per_epoch, final_lr)
