"""A training run as a library call: what ``deepgrad train``, the experiments and the search all use.

    run = build_run({"dataset": "digits", "epochs": 5}, out="runs/five")
    summary = run.fit()        # trains, tests, and writes the run directory
    run.evaluate()             # {"train": {"loss": ..., "accuracy": ...}, "val": {...}, "test": {...}}

    run = load_run("runs/five")        # the trained model back, for evaluate() and predict(x)

:func:`build_run` turns a config (:mod:`deepgrad.train.config`) into the pieces of a run through
the registries that live next to what they build — data sets (``deepgrad.data.datasets.REGISTRY``),
models (``presets.PRESETS``), optimizers and schedules (``deepgrad.optim.registry``) — and the
Trainer with its callbacks. With ``out``, the run directory holds ``config.json``,
``metrics.jsonl`` (one line per epoch), ``checkpoints/{last,best}.safetensors``, and after
:meth:`Run.fit` ``model.safetensors``, ``summary.json`` and ``curves.png``; without it, nothing is
written (a search trial, a quick experiment).
"""

import copy
import os
import sys
import time
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .. import functional as F
from .. import io
from ..data import DataLoader, TensorDataset, datasets
from ..errors import CheckpointError, ConfigError
from ..optim import SchedulePlan, create_optimizer, create_schedule
from ..random import manual_seed
from ..tensor import tensor
from ..threads import BlasThreads, set_num_threads
from . import config as options
from . import presets
from .directory import (RunDirectory, check_new_directory, check_resumable, default_directory,  # noqa: F401
                        remove_stale_temporaries, write_json)
from .callbacks import (BestWeights, EarlyStopping, HistoryWriter, ModelCheckpoint, OverrideHyperparameters,
                        PeriodicCheckpoint, ProgressBar, SchedulerStep, Warmup)
from .thread_tuning import ThreadTuner
from .trainer import Trainer

EVAL_BATCH_SIZE = 1024


def loss_fn(outputs, targets):
    """The loss of every run: softmax cross-entropy of the logits against class indices."""
    return F.cross_entropy(outputs, targets)


@dataclass
class Run:
    """The pieces of one training run. ``optimizer`` is None for a run loaded to evaluate or predict."""

    config: dict
    splits: datasets.Splits
    model: object
    trainer: Trainer
    loaders: tuple             # (train, val, test) DataLoaders
    optimizer: object = None
    directory: str = None      # None: nothing is written
    resume: bool = False       # fit() continues from the directory's last checkpoint
    resumed_at: dict = None    # with resume: the checkpoint's {"epoch", "step", "batch"} (batch 0: an epoch's end)
    notes: list = field(default_factory=list)  # what a resumed run changes, one line each
    claimed: RunDirectory = None  # a new run's claim on its directory, settled when fit ends

    def describe(self):
        """One line: model, data, optimizer and epochs (what ``deepgrad train`` prints first)."""
        c, s = self.config, self.splits
        where = f" -> {self.directory}" if self.directory else ""
        return (f"{c['model']} on {c['dataset']} ({len(s.train)} train / {len(s.val)} val / {len(s.test)} test), "
                f"{c['optimizer']} lr={c['lr']}, {c['epochs']} epochs{where}")

    def resume_line(self):
        """"resuming DIR from epoch E (step S)" — the epoch it goes on with, and the batch within it
        for a mid-epoch checkpoint — for a resumed run; None for a new one."""
        if self.resumed_at is None:
            return None
        at = self.resumed_at
        within = f", batch {at['batch'] + 1}" if at["batch"] else ""
        return f"resuming {self.directory} from epoch {at['epoch'] + 1}{within} (step {at['step']})"

    def path(self, *parts):
        return os.path.join(self.directory, *parts)

    def fit(self):
        """Train (from the last checkpoint when resuming), test, save; returns the summary dict. Its
        loss and accuracy of each split are the kept model's, evaluated in eval mode (as
        :meth:`evaluate` does)."""
        if self.optimizer is None:
            raise ConfigError("this run was loaded to evaluate and predict; build_run() one to train")
        tuner = next((c for c in self.trainer.callbacks if isinstance(c, ThreadTuner)), None)
        try:
            return self._fit_and_test()
        finally:
            if tuner is not None:
                tuner.restore()

    def _fit_and_test(self):
        train, val, _ = self.loaders
        resume_from = self.path("checkpoints", "last.safetensors") if self.resume else None
        start = time.perf_counter()
        try:
            history = self.trainer.fit(train, val, epochs=self.config["epochs"], resume_from=resume_from)
        finally:  # a run that saved nothing leaves nothing (and gives back the run it was to replace)
            if self.claimed is not None:
                self.claimed.settle()
        wall_seconds = time.perf_counter() - start
        kept = self._keep_weights(history)
        summary = {"dataset": self.config["dataset"], "model": self.config["model"], "epochs": len(history),
                   "keep": self.config["keep"], "kept_epoch": kept}
        for split, metrics in self.evaluate().items():
            summary.update({f"{split}_{name}": value for name, value in metrics.items()})
        summary.update(train_seconds=sum(logs["seconds"] for logs in history.epochs), wall_seconds=wall_seconds)
        if self.directory is not None:
            io.save(self.model.state_dict(), self.path("model.safetensors"))
            write_json(self.path("summary.json"), summary)
            self._plot(history)
        return summary

    def _keep_weights(self, history):
        """Put the weights ``config["keep"]`` asks for into the model; returns their epoch (the best
        epoch's come from memory, or from the best checkpoint when that epoch was before a resume)."""
        keeper = next((c for c in self.trainer.callbacks if isinstance(c, BestWeights)), None)
        if self.config["keep"] == "last" or keeper is None or keeper.epoch in (None, len(history)):
            return len(history)
        state = keeper.state
        if state is None:
            state = io.load_checkpoint(self.path("checkpoints", "best.safetensors"))["model"]
        self.model.load_state_dict(state)
        return keeper.epoch

    def _plot(self, history):
        try:
            from ..viz import plot_curves
        except ImportError:
            print("note: matplotlib is not installed, so curves.png was not drawn (pip install 'deepgrad[viz]')",
                  file=sys.stderr)
            return
        plot_curves(history.epochs, self.path("curves.png"),
                    title=f"{self.config['model']} on {self.config['dataset']}")

    def evaluate(self, splits=("train", "val", "test")):
        """{split: {"loss", "accuracy"}} of the model in eval mode on each named split."""
        return {name: self.trainer.evaluate(DataLoader(getattr(self.splits, name), EVAL_BATCH_SIZE))
                for name in splits}

    def predict(self, x):
        """The model's outputs (logits) for inputs ``x`` shaped like the training data, batch first."""
        return self.trainer.predict(x)

    def predict_proba(self, x):
        """Class probabilities (N, classes) for inputs ``x``: the softmax of the logits, in float64
        (every run's loss is the cross-entropy of that softmax)."""
        return F.softmax(tensor(self.predict(x).astype(np.float64)), dim=1).data


def build_run(config=None, *, out=None, resume=False, override=False, overwrite=False, unique=False, progress=None,
              callbacks=()):
    """The run that ``config`` (a dict of options, missing ones at their defaults) describes.

    ``out``: the run directory (None: write nothing). ``resume``: continue the run in ``out`` from
    its last checkpoint, the options in ``config`` overriding the ones it saved. ``overwrite``:
    replace a non-empty ``out``. ``unique``: ``out`` is an automatic name, to be suffixed (-2, ...)
    when taken (``run.directory`` says where the run went). ``progress``: False for none; else a bar
    in a terminal, plain lines every 30 s and per epoch elsewhere.
    ``callbacks`` are added to the run's own (progress, checkpoints, early stopping, history).
    Everything is checked and built before the directory is made, so a run that cannot start
    leaves none behind. Seeds the default generator with the config's seed.
    """
    given = dict(config or {})
    changes = {}
    if resume:
        if out is None:
            raise ConfigError("resume needs the directory of the run to continue (out=...)")
        check_resumable(out)
        saved = options.load_saved(os.path.join(out, "config.json"))
        config = options.resolve(saved, given)
        changes = options.resume_changes(saved, config, [name for name, value in given.items() if value is not None],
                                         override)
    else:
        config = options.resolve(given)
    if out is not None and not resume and not unique:
        check_new_directory(out, overwrite)
    if config["threads"] is not None:
        try:
            set_num_threads(config["threads"])
        except (ImportError, RuntimeError) as error:
            raise ConfigError(f"--threads: {error}") from None
    manual_seed(config["seed"])
    splits = training_subset(datasets.load(config["dataset"], config["data_dir"], config["download"], config["seed"],
                                           config["val_fraction"], config["data"]), config["train_size"])
    model = build_model(config, splits)
    optimizer = create_optimizer(config["optimizer"], model.parameters(), config["lr"], config["momentum"],
                                 config["weight_decay"])  # the schema checked each hyperparameter's range
    loaders = (DataLoader(splits.train, config["batch_size"], shuffle=True, seed=config["seed"]),
               DataLoader(splits.val, EVAL_BATCH_SIZE), DataLoader(splits.test, EVAL_BATCH_SIZE))
    plan = SchedulePlan(config["epochs"], len(loaders[0]), config["final_lr"], config["step_size"], config["gamma"],
                        config["plateau_patience"])
    scheduler, interval = create_schedule(config["schedule"], optimizer, plan)
    # the schedule's planned length, in its steps: none for one that follows a metric (plateau)
    length = None if scheduler is None or getattr(scheduler, "steps_on_metric", False) else (
        plan.total_steps if interval == "batch" else plan.epochs)
    resumed_at, notes = None, [f"{name}: {options.show(value)} from now on" for name, value in changes.items()
                               if name in options.RESUME_OVERRIDABLE]
    if resume:  # the checkpoint must fit the model before the run's config.json is rewritten
        state = Trainer(model).load_checkpoint(os.path.join(out, "checkpoints", "last.safetensors"))
        resumed_at = {"epoch": state["epoch"], "step": state["global_step"],
                      "batch": (state.get("position") or {}).get("batch", 0)}
        if length is not None:
            notes += _schedule_extension(config["schedule"], scheduler, state.get("scheduler"), length,
                                         plan.steps_per_epoch if interval == "batch" else 1)
    claimed = None
    if out is not None:
        if resume:
            remove_stale_temporaries(out)
        else:
            claimed = RunDirectory.claim(out, overwrite, unique)
            out = claimed.path
        write_json(os.path.join(out, "config.json"), config)
    schedule = SchedulerStep(scheduler, interval, until=length) if scheduler is not None else None
    run_callbacks = _run_callbacks(config, out, progress, schedule, changes)
    trainer = Trainer(model, optimizer, loss_fn, callbacks=run_callbacks + list(callbacks),
                      clip_grad_norm=config["clip_grad_norm"], device=config["device"])
    return Run(config, splits, model, trainer, loaders, optimizer, out, resume, resumed_at, notes, claimed)


def _run_callbacks(config, out, progress, schedule, changes):
    """The callbacks ``config`` asks for: progress, the ``schedule`` (a SchedulerStep, or None),
    checkpoints and the history file (with a run directory ``out``), early stopping, the best
    weights, warm-up, the hyperparameters a resume ``changes``, the thread tuner."""
    callbacks = [ProgressBar(quiet=progress is False)]
    if schedule is not None:  # planned for the run's steps (or epochs); a resumed run keeps its first plan
        callbacks.append(schedule)
    if out is not None:
        callbacks += [ModelCheckpoint(os.path.join(out, "checkpoints"), monitor="val_loss"),
                      HistoryWriter(os.path.join(out, "metrics.jsonl"))]
        if config["checkpoint_every"]:
            callbacks.append(PeriodicCheckpoint(os.path.join(out, "checkpoints"), config["checkpoint_every"]))
    if config["patience"]:
        callbacks.append(EarlyStopping("val_loss", patience=config["patience"], verbose=progress is not False))
    if config["keep"] == "best":
        callbacks.append(BestWeights("val_loss"))
    if config["warmup_steps"]:
        callbacks.append(Warmup(config["warmup_steps"]))
    overridden = {name: changes[name] for name in ("lr", "weight_decay", "momentum") if name in changes}
    if overridden:  # the checkpoint's optimizer carries the old values
        callbacks.append(OverrideHyperparameters(**overridden))
    if config["threads"] is None and config["device"] == "cpu":
        callbacks += _thread_tuner(config, out)
    return callbacks


def _thread_tuner(config, out):
    """[a ThreadTuner that writes the count it chooses into ``config`` and ``out/config.json``], or
    [] where threadpoolctl cannot control NumPy's BLAS."""
    try:
        blas = BlasThreads()
    except (ImportError, RuntimeError):
        return []

    def record(threads):
        config["threads"] = threads
        if out is not None:
            write_json(os.path.join(out, "config.json"), config)

    return [ThreadTuner(on_chosen=record, blas=blas)]


def _schedule_extension(name, scheduler, saved, length, per_epoch):
    """Notes on a resumed run that goes on past the ``length`` its schedule was planned for (its
    checkpoint's ``saved`` SchedulerStep state holds the plan): the extra epochs train at the rate
    the schedule ended at — or a ConfigError when that rate is 0 and they would not train at all."""
    if not isinstance(saved, dict) or not isinstance(saved.get("until"), int):
        return []
    until = saved["until"]
    if length <= until:
        return []
    planned = copy.copy(scheduler)  # the new one, with the plan of the checkpoint
    planned.load_state_dict(saved["schedule"])
    final = planned.lr_at(until, planned.base_lrs[0])
    if final == 0:
        raise ConfigError(f"the run's {name} schedule was planned for {until // per_epoch} epochs and ends at lr 0, "
                          f"so epochs after {until // per_epoch} would not train; start a new run with the --epochs "
                          "you want (its schedule is planned for all of them)")
    return [f"the {name} schedule was planned for {until // per_epoch} epochs; the epochs after them train at its "
            f"final rate {final:.3g}"]


def training_subset(splits, size):
    """``splits`` training on its first ``size`` samples only (the split order is already a fixed
    random permutation), or all of them when ``size`` is None."""
    if size is None:
        return splits
    if size > len(splits.train):
        raise ConfigError(f"train_size {size} is more than the {len(splits.train)} training samples")
    x, y = splits.train.arrays
    return dataclasses.replace(splits, train=TensorDataset(x[:size], y[:size]))


def build_model(config, splits):
    """The preset ``config["model"]`` with the options it takes, sized for the data's inputs and classes."""
    name = config["model"]
    if name in presets.IMAGE_PRESETS and len(splits.input_shape) != 3:
        raise ConfigError(f"model {name!r} needs images (C, H, W); {config['dataset']} has inputs of shape "
                          f"{splits.input_shape}: use --model mlp")
    if name == "mlp" and config["residual"] and len(set(config["hidden"])) > 1:
        raise ConfigError(f"--residual needs equal --hidden widths (each block adds its input), got {config['hidden']}")
    preset_options = {option: config[option] for option in presets.CONFIG_OPTIONS[name]}
    return presets.build(name, splits.input_shape, splits.num_classes, **preset_options)


def load_run(directory, device="cpu", checkpoint=None):
    """The run saved in ``directory`` with its trained weights (``model.safetensors``, or the model of
    ``checkpoints/{checkpoint}.safetensors`` for ``checkpoint`` "best" or "last"), on ``device``, to
    evaluate and predict (no optimizer)."""
    if checkpoint not in (None, "best", "last"):
        raise ConfigError(f"--checkpoint must be best or last, got {checkpoint!r}")
    path = os.path.join(directory, "config.json")
    config = options.validate({**options.load_saved(path), "device": device}, source=path)
    splits = training_subset(datasets.load(config["dataset"], config["data_dir"], config["download"], config["seed"],
                                           config["val_fraction"], config["data"]), config["train_size"])
    model = build_model(config, splits)
    if checkpoint is not None:
        Trainer(model).load_checkpoint(os.path.join(directory, "checkpoints", f"{checkpoint}.safetensors"))
    else:
        weights = os.path.join(directory, "model.safetensors")
        try:
            model.load_state_dict(io.load(weights))
        except (RuntimeError, CheckpointError) as error:
            raise CheckpointError(f"{weights}: {error}") from None
    trainer = Trainer(model, loss_fn=loss_fn, device=device)
    loaders = tuple(DataLoader(getattr(splits, name), EVAL_BATCH_SIZE) for name in ("train", "val", "test"))
    return Run(config, splits, model, trainer, loaders, directory=directory)
