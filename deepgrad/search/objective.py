"""The objective of a search over training options: a trial is ``build_run({**base, **params})``
trained on the training split and scored on the validation split (never the test split), its
validation score reported after every epoch so a scheduler can stop it early."""

import os
import shutil

from ..errors import ConfigError
from ..train import config as options
from ..train.callbacks import Callback
from ..train.run import build_run
from ..train.tensorboard import TensorBoardLogger, require_tensorboardx


class TrainingObjective:
    """``objective(params, report)`` for :func:`random_search`: the run of the training config
    ``base`` with ``params`` over it, returning the last epoch's ``metric`` (``val_accuracy``: higher
    is better; ``val_loss`` with ``mode="min"``). Picklable, for the local executor.

    With ``tensorboard_dir``, each trial also writes TensorBoard event files to
    ``tensorboard_dir/trial-NNNN`` (NNNN: its number from 1, as ``deepgrad search`` prints it): its params as hparams and its per-step and
    per-epoch metrics (:class:`~deepgrad.train.tensorboard.TensorBoardLogger`, no histograms), so
    TensorBoard's HParams tab compares the trials. A trial run again (a resumed study) starts its
    directory afresh."""

    def __init__(self, base=None, metric="val_accuracy", tensorboard_dir=None):
        self.base = options.check_types(dict(base or {}), "search base config")
        if metric not in ("val_accuracy", "val_loss"):
            raise ConfigError(f"TrainingObjective: metric must be val_accuracy or val_loss, got {metric!r}")
        self.metric = metric
        if tensorboard_dir is not None:
            require_tensorboardx()  # a missing tensorboardX fails the search now, not every trial
            tensorboard_dir = os.path.abspath(tensorboard_dir)  # a Ray worker may run elsewhere
        self.tensorboard_dir = tensorboard_dir

    def check_space(self, space):
        """Refuse a space naming something that is not a training option."""
        unknown = sorted(set(space) - set(options.OPTIONS))
        if unknown:
            raise ConfigError(f"search space: unknown options {unknown}; valid: {', '.join(options.OPTIONS)}")
        return space

    def __call__(self, params, report):
        logger = self.logger(params, report)
        callbacks = [ReportEachEpoch(report, self.metric)] + ([logger] if logger is not None else [])
        run = build_run({**self.base, **params}, progress=False, callbacks=callbacks)
        train, val, _ = run.loaders
        try:
            history = run.trainer.fit(train, val, epochs=run.config["epochs"])
        finally:  # a pruned or failed trial's events are kept too
            if logger is not None:
                logger.close()
        return history[self.metric][-1]

    def logger(self, params, report):
        """The TensorBoardLogger of the trial ``report`` belongs to (None without ``tensorboard_dir``)."""
        if self.tensorboard_dir is None:
            return None
        number = getattr(report, "trial", None)
        if number is None:
            raise ConfigError("TrainingObjective: tensorboard_dir needs the trial's number (report.trial); "
                              "run the objective through random_search")
        directory = os.path.join(self.tensorboard_dir, f"trial-{number + 1:04d}")
        shutil.rmtree(directory, ignore_errors=True)
        return TensorBoardLogger(directory, histograms_every=None, config=params, curves=False)


class ReportEachEpoch(Callback):
    """Hand each epoch's validation score to the search's ``report`` (which may stop the trial)."""

    order = 60  # after a TensorBoardLogger (50): a trial stopped here has its last epoch logged

    def __init__(self, report, metric):
        self.report, self.metric = report, metric

    def on_epoch_end(self, trainer, epoch, logs):
        self.report(epoch, logs[self.metric])
