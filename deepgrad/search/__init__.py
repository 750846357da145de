"""Hyperparameter search, as the course notes do it: sample on a log scale, train each sample
briefly, score it on the validation split, narrow the ranges around the best, repeat — with early
stopping of hopeless trials (ASHA) and studies that persist and resume.

    from deepgrad.search import LogUniform, TrainingObjective, random_search
    study = random_search(TrainingObjective({"epochs": 3}), {"lr": LogUniform(1e-4, 1e-1)}, trials=20, rounds=2,
                          executor="local", scheduler="asha", study="study.jsonl")
    study.best.params

The roles other objects play for the search loop are Protocols in :mod:`deepgrad.search.runner`:
:class:`Executor` (SerialExecutor, LocalExecutor, RayExecutor) and :class:`Scheduler` (ASHA,
NoScheduler).
"""

from .asha import ASHA, TrialPruned
from .objective import TrainingObjective
from .ray_executor import RayExecutor
from .runner import (
    Executor,
    LocalExecutor,
    NoScheduler,
    Objective,
    Report,
    Scheduler,
    SerialExecutor,
    narrowed,
    random_search,
    run_trial,
)
from .spaces import Choice, Dimension, IntLogUniform, IntUniform, LogUniform, Uniform
from .study import Study, Trial
from .training import SearchFailed, search_training
