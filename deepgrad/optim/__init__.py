"""Optimizers and learning-rate schedules (torch.optim's names, arguments and formulas)."""

from . import lr_scheduler
from .adaptive import Adagrad, Adam, AdamW, RMSprop
from .optimizer import Optimizer
from .registry import OPTIMIZERS, SCHEDULES, SchedulePlan, create_optimizer, create_schedule
from .sgd import SGD, Momentum
