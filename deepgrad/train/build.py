"""The pieces of a training run, built from a config (:mod:`deepgrad.train.config`) through the
registries that live next to what they build — data sets (``deepgrad.data.datasets.REGISTRY``),
models (``presets.PRESETS``), optimizers and schedules (``deepgrad.optim.registry``) — and the
observers the config asks for. Nothing here writes a file: the run directory is
:mod:`deepgrad.train.directory`'s, the whole run :mod:`deepgrad.train.run`'s.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from typing import Any

from .. import functional as F
from ..data import DataLoader, TensorDataset, datasets
from ..diagnostics import standard_monitors
from ..errors import ConfigError
from ..nn.module import Module
from ..nn.normalization import BatchNorm1d
from ..optim import SchedulePlan, create_optimizer, create_schedule
from ..optim.optimizer import Optimizer
from ..tensor import Tensor
from ..threads import NumThreads, Splitter, ThreadSetting, usable_cores
from . import presets
from .callbacks import (
    BestWeights,
    EarlyStopping,
    HistoryWriter,
    ModelCheckpoint,
    PeriodicCheckpoint,
    ProgressBar,
    StepWriter,
)
from .policies import LearningRate
from .thread_tuning import ThreadTuner

EVAL_BATCH_SIZE = 1024


def loss_fn(outputs: Tensor, targets: Tensor) -> Tensor:
    """The loss of every run: softmax cross-entropy of the logits against class indices."""
    return F.cross_entropy(outputs, targets)


def load_splits(config: dict[str, Any]) -> datasets.Splits:
    """The data set of ``config`` split into train, validation and test (its seeded split), training on
    ``train_size`` samples when given."""
    splits = datasets.load(
        config["dataset"],
        config["data_dir"],
        config["download"],
        config["seed"],
        config["val_fraction"],
        config["data"],
    )
    return training_subset(splits, config["train_size"])


def training_subset(splits: datasets.Splits, size: int | None) -> datasets.Splits:
    """``splits`` training on its first ``size`` samples only (the split order is already a fixed
    random permutation), or all of them when ``size`` is None."""
    if size is None:
        return splits
    if size > len(splits.train):
        raise ConfigError(f"train_size {size} is more than the {len(splits.train)} training samples")
    x, y = splits.train.arrays
    return dataclasses.replace(splits, train=TensorDataset(x[:size], y[:size]))


def build_model(config: dict[str, Any], splits: datasets.Splits) -> Module:
    """The preset ``config["model"]`` with the options it takes, sized for the data's inputs and classes."""
    name = config["model"]
    if name in presets.IMAGE_PRESETS and len(splits.input_shape) != 3:
        raise ConfigError(
            f"model {name!r} needs images (C, H, W); {config['dataset']} has inputs of shape "
            f"{splits.input_shape}: use --model mlp"
        )
    if name == "mlp" and config["residual"] and len(set(config["hidden"])) > 1:
        raise ConfigError(f"--residual needs equal --hidden widths (each block adds its input), got {config['hidden']}")
    preset_options = {option: config[option] for option in presets.CONFIG_OPTIONS[name]}
    return presets.build(name, splits.input_shape, splits.num_classes, **preset_options)


def build_loaders(
    config: dict[str, Any], splits: datasets.Splits, model: Module | None = None
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """(train, val, test) loaders: the training split shuffled by the config's seed, the others in
    order. A ``model`` with BatchNorm1d drops a last training batch of one sample (1257 digits in
    batches of 8), whose batch statistics do not exist (PyTorch refuses it too)."""
    lone_last = len(splits.train) % config["batch_size"] == 1
    per_feature = model is not None and any(isinstance(m, BatchNorm1d) for m in model.modules())
    return (
        DataLoader(
            splits.train, config["batch_size"], shuffle=True, drop_last=lone_last and per_feature, seed=config["seed"]
        ),
        DataLoader(splits.val, EVAL_BATCH_SIZE),
        DataLoader(splits.test, EVAL_BATCH_SIZE),
    )


def build_optimization(config: dict[str, Any], model: Module, steps_per_epoch: int) -> tuple[Optimizer, LearningRate]:
    """The optimizer over ``model``'s parameters and the learning-rate policy: the config's schedule,
    planned for its epochs (a plateau schedule has no planned length), with its warm-up."""
    optimizer = create_optimizer(
        config["optimizer"], model.parameters(), config["lr"], config["momentum"], config["weight_decay"]
    )  # the schema checked each hyperparameter's range
    plan = SchedulePlan(
        config["epochs"],
        steps_per_epoch,
        config["final_lr"],
        config["step_size"],
        config["gamma"],
        config["plateau_patience"],
    )
    scheduler, interval = create_schedule(config["schedule"], optimizer, plan)
    on_metric = getattr(scheduler, "steps_on_metric", False)
    until = None if scheduler is None or on_metric else (plan.total_steps if interval == "batch" else plan.epochs)
    base = [config["lr"]] * len(optimizer.param_groups)
    return optimizer, LearningRate(base, scheduler, interval, until=until, warmup_steps=config["warmup_steps"])


def run_callbacks(
    config: dict[str, Any],
    out: str | None,
    progress: bool | None,
    extra: Iterable[object] = (),
    on_threads: Callable[[ThreadSetting], None] | None = None,
) -> tuple[list[object], BestWeights | None, ThreadTuner | None]:
    """The observers of a run of ``config``, in the order they run: the thread tuner (first: it
    times the steps), progress, the monitors and TensorBoard (with ``tensorboard``), the history file,
    early stopping, the best weights, the ``extra`` callbacks given, then the checkpoints (last:
    they save the state the others left). Files go into the run directory ``out`` (None: none).
    Returns (callbacks, the best-weights keeper or None, the thread tuner or None)."""
    tuner = None
    if config["threads"] is None and config["device"] == "cpu":
        tuner = thread_tuner(on_threads, config["threads_by"])
    callbacks: list[object] = [tuner] if tuner is not None else []
    callbacks.append(ProgressBar(quiet=progress is False))
    monitors = standard_monitors(out, config["monitor_every"]) if config["monitor"] else []
    callbacks += monitors
    if config["tensorboard"]:
        if out is None:
            raise ConfigError("tensorboard: a run writes its event files into its directory; give it one (out=...)")
        from .tensorboard import TensorBoardLogger

        callbacks.append(
            TensorBoardLogger(tensorboard_dir(out), every=config["log_every"], config=config, monitors=monitors)
        )
    if out is not None:
        callbacks += [
            StepWriter(os.path.join(out, "steps.jsonl"), config["log_every"]),
            HistoryWriter(os.path.join(out, "metrics.jsonl")),
        ]
    if config["patience"]:
        callbacks.append(EarlyStopping("val_loss", patience=config["patience"], verbose=progress is not False))
    keeper = BestWeights("val_loss") if config["keep"] == "best" else None
    callbacks += [keeper] if keeper is not None else []
    callbacks += list(extra)
    if out is not None:
        if config["checkpoint_every"]:
            callbacks.append(PeriodicCheckpoint(os.path.join(out, "checkpoints"), config["checkpoint_every"]))
        callbacks.append(ModelCheckpoint(os.path.join(out, "checkpoints"), monitor="val_loss"))
    return callbacks, keeper, tuner


def tensorboard_dir(out: str) -> str:
    """Where a run's TensorBoard event files go: its directory itself, so that ``tensorboard --logdir
    runs`` names the run after it (a run from before, with a ``tb/`` folder, goes on writing there)."""
    older = os.path.join(out, "tb")
    return older if os.path.isdir(older) else out


def thread_tuner(on_chosen: Callable[[ThreadSetting], None] | None, by: Splitter | None = None) -> ThreadTuner | None:
    """A ThreadTuner calling ``on_chosen(setting)`` with the setting it chooses (among those split
    ``by`` the ops or the BLAS, where given), or None where threadpoolctl cannot control NumPy's BLAS."""
    try:
        threads = NumThreads()
    except (ImportError, RuntimeError):
        return None
    candidates = threads.candidates(usable_cores(), by) if by is not None else None
    return ThreadTuner(candidates=candidates, on_chosen=on_chosen, threads=threads)
