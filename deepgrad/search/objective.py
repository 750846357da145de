"""The objective of a search over training options: a trial is ``build_run({**base, **params})``
trained on the training split and scored on the validation split (never the test split), its
validation score reported after every epoch so a scheduler can stop it early."""

from ..errors import ConfigError
from ..train import config as options
from ..train.callbacks import Callback
from ..train.run import build_run


class TrainingObjective:
    """``objective(params, report)`` for :func:`random_search`: the run of the training config
    ``base`` with ``params`` over it, returning the last epoch's ``metric`` (``val_accuracy``: higher
    is better; ``val_loss`` with ``mode="min"``). Picklable, for the local executor."""

    def __init__(self, base=None, metric="val_accuracy"):
        self.base = options.check_types(dict(base or {}), "search base config")
        if metric not in ("val_accuracy", "val_loss"):
            raise ConfigError(f"TrainingObjective: metric must be val_accuracy or val_loss, got {metric!r}")
        self.metric = metric

    def check_space(self, space):
        """Refuse a space naming something that is not a training option."""
        unknown = sorted(set(space) - set(options.OPTIONS))
        if unknown:
            raise ConfigError(f"search space: unknown options {unknown}; valid: {', '.join(options.OPTIONS)}")
        return space

    def __call__(self, params, report):
        run = build_run({**self.base, **params}, progress=False, callbacks=[ReportEachEpoch(report, self.metric)])
        train, val, _ = run.loaders
        history = run.trainer.fit(train, val, epochs=run.config["epochs"])
        return history[self.metric][-1]


class ReportEachEpoch(Callback):
    """Hand each epoch's validation score to the search's ``report`` (which may stop the trial)."""

    def __init__(self, report, metric):
        self.report, self.metric = report, metric

    def on_epoch_end(self, trainer, epoch, logs):
        self.report(epoch, logs[self.metric])
