"""A training run as a library call: what ``deepgrad train``, the experiments and the search all use.

    run = build_run({"dataset": "digits", "epochs": 5}, out="runs/five")
    summary = run.fit()        # trains, tests, and writes the run directory
    run.evaluate()             # {"train": {"loss": ..., "accuracy": ...}, "val": {...}, "test": {...}}

    run = load_run("runs/five")        # the trained model back, for evaluate() and predict(x)

:func:`build_run` puts a run together from its jobs: the pieces a config describes
(:mod:`~deepgrad.train.build`), the plan of a resumed run (:mod:`~deepgrad.train.resume`) and the
run directory (:mod:`~deepgrad.train.directory`). With ``out``, the run directory holds
``config.json``, ``metrics.jsonl`` (one line per epoch), ``checkpoints/{last,best}.safetensors``,
and after :meth:`Run.fit` ``model.safetensors``, ``summary.json`` and ``curves.png`` (with
``monitor``: ``diagnostics.jsonl``; with ``tensorboard``: TensorBoard's event files); without it, nothing is written
(a search trial, a quick experiment).
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import functional as F
from .. import io
from ..data import DataLoader, datasets
from ..errors import CheckpointError, ConfigError, TrainingDiverged
from ..nn.module import Module
from ..ops.dropout import host_masks
from ..optim.optimizer import Optimizer
from ..random import manual_seed
from ..tensor import tensor
from ..threads import ThreadSetting, set_num_threads
from . import config as options
from .build import (  # noqa: F401
    EVAL_BATCH_SIZE,
    build_loaders,
    build_model,
    build_optimization,
    load_splits,
    loss_fn,
    run_callbacks,
    training_subset,
)
from .callbacks import BestWeights
from .checkpoints import non_finite_arrays
from .directory import RunDirectory, check_new_directory, default_directory, write_json  # noqa: F401
from .resume import ResumePlan, plan_resume
from .thread_tuning import ThreadTuner
from .trainer import History, Trainer


@dataclass
class Run:
    """The pieces of one training run. ``optimizer`` is None for a run loaded to evaluate or predict."""

    config: dict[str, Any]
    splits: datasets.Splits
    model: Module
    trainer: Trainer
    loaders: tuple[DataLoader, DataLoader, DataLoader]  # (train, val, test)
    optimizer: Optimizer | None = None
    directory: str | None = None  # None: nothing is written
    plan: ResumePlan | None = None  # a resumed run's: fit() goes on from the directory's last checkpoint
    claimed: RunDirectory | None = None  # a new run's claim on its directory, settled when fit ends
    best_weights: BestWeights | None = None  # with keep "best": the weights of the best epoch
    thread_tuner: ThreadTuner | None = None  # with threads unset: it chooses the setting on the first steps
    weights: str | None = None  # a loaded run's: the file its weights came from
    notes: list[str] = field(default_factory=list)  # what a resumed run changes, one line each
    summary: dict[str, Any] | None = None  # what the last fit() returned

    @property
    def resume(self) -> bool:
        return self.plan is not None

    @property
    def resumed_at(self) -> dict[str, int] | None:
        """With resume: the checkpoint's {"epoch", "step", "batch"} (batch 0: an epoch's end)."""
        return self.plan.resumed_at if self.plan is not None else None

    def describe(self) -> str:
        """One line: model, data, optimizer and epochs (what ``deepgrad train`` prints first)."""
        c, s = self.config, self.splits
        where = f" -> {self.directory}" if self.directory else ""
        return (
            f"{c['model']} on {c['dataset']} ({len(s.train)} train / {len(s.val)} val / {len(s.test)} test), "
            f"{c['optimizer']} lr={c['lr']}, {c['epochs']} epochs{where}"
        )

    def _repr_html_(self) -> str:
        """The run in a notebook: what it is, how it ended, its curves and its model's summary."""
        from .display import run_html

        return run_html(self)

    def resume_line(self) -> str | None:
        """ "resuming DIR from epoch E (step S)" — the epoch it goes on with, and the batch within it
        for a mid-epoch checkpoint — for a resumed run; None for a new one."""
        at = self.resumed_at
        if at is None:
            return None
        within = f", batch {at['batch'] + 1}" if at["batch"] else ""
        return f"resuming {self.directory} from epoch {at['epoch'] + 1}{within} (step {at['step']})"

    def path(self, *parts: str) -> str:
        if self.directory is None:
            raise ConfigError("this run has no directory (built without out=...)")
        return os.path.join(self.directory, *parts)

    def fit(self) -> dict[str, Any]:
        """Train (from the last checkpoint when resuming), test, save; returns the summary dict. Its
        loss and accuracy of each split are the kept model's, evaluated in eval mode (as
        :meth:`evaluate` does)."""
        if self.optimizer is None:
            raise ConfigError("this run was loaded to evaluate and predict; build_run() one to train")
        try:
            with host_masks(self.config["host_masks"]):
                return self._fit_and_test()
        finally:
            if self.thread_tuner is not None:
                self.thread_tuner.restore()

    def _fit_and_test(self) -> dict[str, Any]:
        train, val, _ = self.loaders
        start = time.perf_counter()
        self._record({"state": "running", "pid": os.getpid(), "host": socket.gethostname()})
        try:
            if self.plan is not None:
                self.trainer.load_checkpoint(self.plan.checkpoint, train)
                self.plan.apply(self.trainer)
            history = self.trainer.fit(train, val, epochs=self.config["epochs"])
        except BaseException as error:
            self._record(ending(error))
            raise
        finally:  # a run that saved nothing leaves nothing (and gives back the run it was to replace)
            if self.claimed is not None:
                self.claimed.settle()
        wall_seconds = time.perf_counter() - start
        kept = self._keep_weights(history)
        stopped_early = self.trainer.stop_training and len(history) < self.config["epochs"]
        summary = {
            "state": "stopped_early" if stopped_early else "finished",
            "dataset": self.config["dataset"],
            "model": self.config["model"],
            "epochs": len(history),
            "keep": self.config["keep"],
            "kept_epoch": kept,
        }
        for split, metrics in self.evaluate().items():
            summary.update({f"{split}_{name}": value for name, value in metrics.items()})
        summary.update(train_seconds=sum(logs["seconds"] for logs in history.epochs), wall_seconds=wall_seconds)
        if self.directory is not None:
            io.save(self.model.state_dict(), self.path("model.safetensors"))
            write_json(self.path("summary.json"), summary)
            self._plot(history)
        self.summary = summary
        return summary

    def _record(self, state: dict[str, Any]) -> None:
        """Write what became of the run (so far) into ``summary.json``: its ``state`` and how far it got
        (``epochs_done`` and ``steps_done``: the epochs and optimizer steps it finished)."""
        if self.directory is not None:
            trainer = self.trainer
            write_json(
                self.path("summary.json"), {**state, "epochs_done": trainer.epoch, "steps_done": trainer.global_step}
            )

    def _keep_weights(self, history: History) -> int:
        """Put the weights ``config["keep"]`` asks for into the model; returns their epoch (the best
        epoch's come from memory, or from the best checkpoint when that epoch was before a resume)."""
        keeper = self.best_weights
        if self.config["keep"] == "last" or keeper is None or keeper.epoch in (None, len(history)):
            return len(history)
        state = keeper.state
        if state is None:
            state = io.load_checkpoint(self.path("checkpoints", "best.safetensors"))["model"]
        self.model.load_state_dict(state)
        return keeper.epoch

    def _plot(self, history: History) -> None:
        try:
            from ..viz import plot_curves

            plot_curves(
                history.epochs, self.path("curves.png"), title=f"{self.config['model']} on {self.config['dataset']}"
            )
        except ImportError:
            print(
                "note: matplotlib is not installed, so curves.png was not drawn (pip install 'deepgrad[viz]')",
                file=sys.stderr,
            )

    def evaluate(self, splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, dict[str, float]]:
        """{split: {"loss", "accuracy"}} of the model in eval mode on each named split."""
        return {name: self.trainer.evaluate(DataLoader(getattr(self.splits, name), EVAL_BATCH_SIZE)) for name in splits}

    def predict(self, x: Any) -> np.ndarray:
        """The model's outputs (logits) for inputs ``x`` shaped like the training data, batch first."""
        return self.trainer.predict(x)

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities (N, classes) for inputs ``x``: the softmax of the logits, in float64
        (every run's loss is the cross-entropy of that softmax)."""
        return F.softmax(tensor(self.predict(x).astype(np.float64)), dim=1).data


def ending(error: BaseException) -> dict[str, Any]:
    """The state of a run that ``error`` stopped: ``interrupted`` (Ctrl-C, where it saved),
    ``diverged`` (the step, its loss and the last finite one) or ``failed`` (the error)."""
    if isinstance(error, KeyboardInterrupt):
        return {"state": "interrupted"}
    if isinstance(error, TrainingDiverged):
        return {
            "state": "diverged",
            "diverged_at": error.step,
            "loss": _number(error.loss),
            "last_finite_loss": _number(error.last_finite),
            "cause": str(error),
        }
    return {"state": "failed", "error": f"{type(error).__name__}: {error}"}


def _number(value: float | None) -> float | str | None:
    """A loss as JSON holds it (NaN and infinities as text)."""
    return value if value is None or math.isfinite(value) else str(value)


def build_run(
    config: dict[str, Any] | None = None,
    *,
    out: str | None = None,
    resume: bool = False,
    override: bool = False,
    overwrite: bool = False,
    unique: bool = False,
    progress: bool | None = None,
    callbacks: tuple[object, ...] | list[object] = (),
) -> Run:
    """The run that ``config`` (a dict of options, missing ones at their defaults) describes.

    ``out``: the run directory (None: write nothing). ``resume``: continue the run in ``out`` from
    its last checkpoint, the options in ``config`` overriding the ones it saved (``override``: the
    hyperparameters too, from the resumed step). ``overwrite``: replace the run in ``out``.
    ``unique``: ``out`` is an automatic name, to be suffixed (-2, ...) when taken
    (``run.directory`` says where the run went). ``progress``: False for none; else a bar in a
    terminal, plain lines every 30 s and per epoch elsewhere. ``callbacks`` observe the run after
    its own (progress, monitors, history, early stopping) and before its checkpoints.
    Everything is checked and built before the directory is made, so a run that cannot start
    leaves none behind. Seeds the default generator with the config's seed.
    """
    given = dict(config or {})
    plan = None
    if resume:
        if out is None:
            raise ConfigError("resume needs the directory of the run to continue (out=...)")
        plan = plan_resume(out, given, override)
        config = plan.config
    else:
        config = options.resolve(given)
        if out is not None and not unique:
            check_new_directory(out, overwrite)
    if config["threads"] is not None:
        try:
            set_num_threads(config["threads"], config["threads_by"] or "ops")
        except (ImportError, RuntimeError) as error:
            raise ConfigError(f"--threads: {error}") from None
    manual_seed(config["seed"])
    splits = load_splits(config)
    model = build_model(config, splits)
    loaders = build_loaders(config, splits, model)
    optimizer, learning_rate = build_optimization(config, model, len(loaders[0]))
    if plan is not None:  # the checkpoint must fit the model before the run's config.json is rewritten
        plan.check_checkpoint(model, learning_rate, len(loaders[0]))
    if config["tensorboard"]:  # before the directory is made
        from .tensorboard import require_tensorboardx

        require_tensorboardx()
    claimed = None
    if out is not None and plan is None:
        claimed = RunDirectory.claim(out, overwrite, unique)
        out = claimed.path
    if out is not None:
        write_json(os.path.join(out, "config.json"), config)

    def record_threads(setting: ThreadSetting) -> None:  # what the thread tuner chose: a resume goes on with it
        config["threads"], config["threads_by"] = setting.threads, setting.by
        if out is not None:
            write_json(os.path.join(out, "config.json"), config)

    observers, keeper, tuner = run_callbacks(config, out, progress, list(callbacks), record_threads)
    trainer = Trainer(
        model,
        optimizer,
        loss_fn,
        callbacks=observers,
        learning_rate=learning_rate,
        clip_grad_norm=config["clip_grad_norm"],
        device=config["device"],
        stop_on_divergence=config["stop_on_divergence"],
    )
    return Run(
        config,
        splits,
        model,
        trainer,
        loaders,
        optimizer,
        out,
        plan,
        claimed,
        keeper,
        tuner,
        notes=plan.notes if plan is not None else [],
    )


def load_run(directory: str, device: str = "cpu", checkpoint: str | None = None) -> Run:
    """The run saved in ``directory`` with its trained weights, on ``device``, to evaluate and
    predict (no optimizer): ``model.safetensors``, or the model of
    ``checkpoints/{checkpoint}.safetensors`` for ``checkpoint`` "best" or "last". A run that stopped
    before writing model.safetensors answers with its best checkpoint (else its last; ``run.weights``
    says which file). Weights that are not finite cannot answer: a CheckpointError."""
    if checkpoint not in (None, "best", "last"):
        raise ConfigError(f"--checkpoint must be best or last, got {checkpoint!r}")
    path = os.path.join(directory, "config.json")
    config = options.validate({**options.load_saved(path), "device": device}, source=path)
    splits = load_splits(config)
    model = build_model(config, splits)
    weights = _weights_file(directory, checkpoint)
    if weights.endswith("model.safetensors"):
        try:
            model.load_state_dict(io.load(weights))
        except (RuntimeError, CheckpointError) as error:
            raise CheckpointError(f"{weights}: {error}") from None
    else:
        Trainer(model).load_checkpoint(weights)
    broken = non_finite_arrays(model.state_dict())
    if broken:
        raise CheckpointError(
            f"{weights} holds NaN or infinite weights ({', '.join(broken[:3])}): the run diverged, "
            "and its model cannot answer; use --checkpoint best, or train again"
        )
    trainer = Trainer(model, loss_fn=loss_fn, device=device)
    loaders = tuple(DataLoader(getattr(splits, name), EVAL_BATCH_SIZE) for name in ("train", "val", "test"))
    return Run(config, splits, model, trainer, loaders, directory=directory, weights=weights)  # type: ignore[arg-type]


def _weights_file(directory: str, checkpoint: str | None) -> str:
    """The file a loaded run's weights come from (see :func:`load_run`)."""
    if checkpoint is not None:
        return os.path.join(directory, "checkpoints", f"{checkpoint}.safetensors")
    for candidate in (
        "model.safetensors",
        os.path.join("checkpoints", "best.safetensors"),
        os.path.join("checkpoints", "last.safetensors"),
    ):
        if os.path.isfile(os.path.join(directory, candidate)):
            return os.path.join(directory, candidate)
    raise ConfigError(
        f"{directory} has no model.safetensors and no checkpoint: the run stopped before it saved any weights"
    )
