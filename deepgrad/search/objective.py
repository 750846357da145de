"""The objective of a search over training options: a trial is ``build_run({**base, **params})``
trained on the training split and scored on the validation split (never the test split), its
validation score reported after every epoch so a scheduler can stop it early."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..train import config as options
from ..train.callbacks import Callback
from ..train.run import build_run
from ..train.tensorboard import TensorBoardLogger, require_tensorboardx
from .runner import Params, Report
from .spaces import Choice, Dimension, IntUniform, check_space


class TrainingObjective:
    """``objective(params, report)`` for :func:`random_search`: the run of the training config
    ``base`` with ``params`` over it, returning the last epoch's ``metric`` (``val_accuracy``: higher
    is better; ``val_loss`` with ``mode="min"``). Picklable, for the local executor.

    With ``tensorboard_dir``, each trial also writes TensorBoard event files to
    ``tensorboard_dir/trial-NNNN`` (NNNN: its number from 1, as ``deepgrad search`` prints it): its
    params as hparams and its per-step and per-epoch metrics
    (:class:`~deepgrad.train.tensorboard.TensorBoardLogger`, no histograms), so TensorBoard's HParams
    tab compares the trials. A trial run again (a resumed study) starts its
    directory afresh."""

    def __init__(
        self, base: Mapping[str, Any] | None = None, metric: str = "val_accuracy", tensorboard_dir: str | None = None
    ):
        self.base = options.check_types(dict(base or {}), "search base config")
        if metric not in ("val_accuracy", "val_loss"):
            raise ConfigError(f"TrainingObjective: metric must be val_accuracy or val_loss, got {metric!r}")
        self.metric = metric
        if tensorboard_dir is not None:
            require_tensorboardx()  # a missing tensorboardX fails the search now, not every trial
            tensorboard_dir = os.path.abspath(tensorboard_dir)  # a Ray worker may run elsewhere
        self.tensorboard_dir = tensorboard_dir

    def check_space(self, space: Mapping[str, Dimension]) -> dict[str, Dimension]:
        """``space`` checked against the training options' schema before any trial runs: a ConfigError
        for a name that is not an option, a range over an option that is not a number (or floats for
        a whole-number option), and a bound or choice of the wrong type, outside the option's range
        or not among its choices. (Constraints between two options, like final_lr <= lr, are checked
        for each trial's config.)"""
        return check_training_space(space)

    def __call__(self, params: Params, report: Report) -> float:
        logger = self.logger(params, report)
        # the logger first: a trial stopped at an epoch's report has that epoch logged
        callbacks: list[object] = [logger] if logger is not None else []
        callbacks.append(ReportEachEpoch(report, self.metric))
        # a trial writes no run directory: its TensorBoard events are this objective's logger's
        run = build_run({**self.base, **params, "tensorboard": False}, progress=False, callbacks=callbacks)
        train, val, _ = run.loaders
        try:
            history = run.trainer.fit(train, val, epochs=run.config["epochs"])
        finally:  # a pruned or failed trial's events are kept too
            if logger is not None:
                logger.close()
        return float(history[self.metric][-1])

    def logger(self, params: Params, report: Report) -> TensorBoardLogger | None:
        """The TensorBoardLogger of the trial ``report`` belongs to (None without ``tensorboard_dir``)."""
        if self.tensorboard_dir is None:
            return None
        number = getattr(report, "trial", None)
        if number is None:
            raise ConfigError(
                "TrainingObjective: tensorboard_dir needs the trial's number (report.trial); "
                "run the objective through random_search"
            )
        directory = os.path.join(self.tensorboard_dir, f"trial-{number + 1:04d}")
        shutil.rmtree(directory, ignore_errors=True)
        return TensorBoardLogger(directory, histograms_every=None, config=params, curves=False)


class ReportEachEpoch(Callback):
    """Hand each epoch's validation score to the search's ``report`` (which may stop the trial)."""

    def __init__(self, report: Report, metric: str):
        self.report, self.metric = report, metric

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        self.report(epoch, logs[self.metric])


def check_training_space(space: Mapping[str, Dimension], where: str = "search space") -> dict[str, Dimension]:
    """``space`` (see :meth:`TrainingObjective.check_space`), a ConfigError starting with ``where``
    otherwise (the space file, when it came from one)."""
    space = check_space(space)
    unknown = sorted(set(space) - set(options.OPTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown options {unknown}; valid: {', '.join(options.OPTIONS)}")
    for name, dimension in space.items():
        kind = options.OPTIONS[name].type
        if isinstance(dimension, Choice):
            values, what = dimension.options, "choice"
        else:
            values, what = [dimension.lo, dimension.hi], "bound"
            if kind not in (int, float):
                raise ConfigError(
                    f"{where}: [{name}] {type(dimension).__name__} draws numbers, but {name} takes "
                    f"{kind.__name__} values: give its values as a Choice (choice = [...] in a space "
                    "file)"
                )
            if kind is int and not isinstance(dimension, IntUniform):
                raise ConfigError(
                    f"{where}: [{name}] {type(dimension).__name__} draws fractions, but {name} takes "
                    "whole numbers: use IntUniform or IntLogUniform (int_uniform or int_log_uniform in "
                    "a space file)"
                )
        for value in values:
            problem = option_problem(name, value)
            if problem:
                raise ConfigError(f"{where}: [{name}] {what} {value!r}: {problem}")
    return space


def option_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` as the value of training option ``name`` by itself (its type,
    choices, range), or None."""
    option = options.OPTIONS[name]
    try:
        value = options.check_types({name: value}, name)[name]
    except ConfigError as error:
        return str(error).removeprefix(f"{name}: ")
    if value is None:
        return None
    if option.choices is not None and value not in option.choices:
        return f"unknown {name} {value!r}; valid: {', '.join(option.choices)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, got {value}"
    check = option.check
    problem = check(name, value) if callable(check) else None
    return problem if isinstance(problem, str) else None
