"""Trainer callbacks: the observers of a training run (progress, the history file, checkpoints,
early stopping, the best weights). What changes the step itself — the NaN check, clipping, the
learning rate — is the Trainer's configuration (:mod:`deepgrad.train.policies`), not a callback.

The Trainer calls these events, in this order (``logs`` are dicts of floats; a step's logs on a
GPU are 0-d arrays there, which ``float(value)`` reads — making the host wait for the step, so an
observer reads them only when it needs them, as the history, progress bar and step file do):

    on_fit_start(trainer)
      on_epoch_start(trainer, epoch)                       epoch counts from 1
        on_batch_start(trainer, batch)                     batch index within the epoch, from 0
        on_after_backward(trainer, logs)                   gradients in .grad (before clipping), step not taken
        on_step_end(trainer, logs)                         parameters updated; trainer.global_step counts it
        on_batch_end(trainer, logs)                        logs: the batch's loss and metrics
      on_validation_end(trainer, logs)                     logs: val_loss, val_<metric> (with a val loader)
      on_epoch_end(trainer, epoch, logs)                   logs: the epoch's row of the history
    on_fit_end(trainer)
    on_interrupt(trainer)     after Ctrl-C, at the end of the step in progress (trainer.position says
                              where the epoch stopped); fit then raises KeyboardInterrupt

Callbacks run in the order they are given, each event of one before the next's. A callback may
log, save, stop training (``trainer.stop_training = True`` ends fit after the epoch) or raise; it
never reaches into another callback. Any object with some of these methods is a callback (the
Trainer calls the events it has); :class:`Callback` is a base with every event a no-op. A callback
whose state a resumed run needs is :class:`Stateful`.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from io import StringIO
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from .. import io
from ..errors import TrainingDiverged
from ..progress import tqdm, watched

if TYPE_CHECKING:
    from .trainer import Trainer

EVENTS = (
    "on_fit_start",
    "on_epoch_start",
    "on_batch_start",
    "on_after_backward",
    "on_step_end",
    "on_batch_end",
    "on_validation_end",
    "on_epoch_end",
    "on_fit_end",
    "on_interrupt",
)
Logs = dict[str, Any]  # name -> a float (a 0-d array on a GPU for a step's logs)


class Callback:
    """An observer of the Trainer's events (see the module's docstring): override the ones you need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        pass

    def on_batch_start(self, trainer: Trainer, batch: int) -> None:
        pass

    def on_after_backward(self, trainer: Trainer, logs: Logs) -> None:
        pass

    def on_step_end(self, trainer: Trainer, logs: Logs) -> None:
        pass

    def on_batch_end(self, trainer: Trainer, logs: Logs) -> None:
        pass

    def on_validation_end(self, trainer: Trainer, logs: Logs) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass

    def on_interrupt(self, trainer: Trainer) -> None:
        pass


class Stateful(Protocol):
    """A callback or policy whose state a checkpoint keeps under ``checkpoint_key``."""

    checkpoint_key: str

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def listeners(callbacks: Iterable[object], event: str) -> list[Callable[..., None]]:
    """The ``event`` methods of the callbacks that implement it, in the order given (a callback that
    leaves an event to :class:`Callback`'s no-op costs nothing there)."""
    return [
        getattr(callback, event)
        for callback in callbacks
        if getattr(type(callback), event, None) not in (None, getattr(Callback, event))
    ]


class BestValue:
    """The best value of the metric ``monitor`` so far (lowest with ``mode`` "min", highest with
    "max"; an improvement must beat it by more than ``min_delta``) and the epoch it came from."""

    def __init__(self, monitor: str = "val_loss", mode: str = "min", min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"{monitor}: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.best: float | None = None
        self.epoch: int | None = None

    def is_improvement(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def update(self, logs: Logs) -> bool | None:
        """Fold one epoch's ``logs`` in: True when its value is the new best, False when not, None
        when the logs do not have the metric."""
        value = logs.get(self.monitor)
        if value is None:
            return None
        if not self.is_improvement(value):
            return False
        self.best, epoch = value, logs.get("epoch")
        self.epoch = None if epoch is None else int(epoch)
        return True

    def reset(self) -> None:
        self.best = self.epoch = None


class MonitorCallback(Callback):
    """Base of the callbacks that follow the best value of a metric (Keras's ``MonitorCallback``):
    ``tracker`` is a :class:`BestValue`; when fit starts it is rebuilt from the history a resumed
    run already has, each past epoch passed to :meth:`replay`, so "best so far" spans the
    interruption."""

    def __init__(self, monitor: str = "val_loss", mode: str = "min", min_delta: float = 0.0):
        self.tracker = BestValue(monitor, mode, min_delta)

    @property
    def monitor(self) -> str:
        return self.tracker.monitor

    @property
    def best(self) -> float | None:
        return self.tracker.best

    def on_fit_start(self, trainer: Trainer) -> None:
        self.tracker.reset()
        for logs in trainer.history.epochs:
            self.replay(logs)

    def replay(self, logs: Logs) -> None:
        """Take in one epoch of a resumed run's history."""
        self.tracker.update(logs)


class EarlyStopping(MonitorCallback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; with
    ``verbose``, say so in one line on stderr when it fires."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        mode: str = "min",
        min_delta: float = 0.0,
        verbose: bool = False,
    ):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose = patience, verbose
        self.bad_epochs = 0

    @property
    def best_epoch(self) -> int | None:
        return self.tracker.epoch

    def on_fit_start(self, trainer: Trainer) -> None:
        self.bad_epochs = 0
        super().on_fit_start(trainer)

    def replay(self, logs: Logs) -> None:
        self._observe(logs)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: metric {self.monitor!r} not in the logs {sorted(logs)}")
        if self._observe(logs):
            trainer.stop_training = True
            if self.verbose:
                print(
                    f"early stopping: {self.monitor} has not improved for {self.patience} epochs (best "
                    f"{self.best:.4g} at epoch {self.best_epoch}); stopped after epoch {epoch}",
                    file=sys.stderr,
                )

    def _observe(self, logs: Logs) -> bool:
        """Count one epoch's logs; True when patience has run out."""
        improved = self.tracker.update(logs)
        if improved is None:
            return False
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        return self.bad_epochs >= self.patience


class BestWeights(MonitorCallback):
    """A copy of the model's state at the epoch whose ``monitor`` was best (Keras's
    ``restore_best_weights``): ``epoch`` and ``state`` (None for a best epoch from before a resume,
    whose weights are in that run's best checkpoint)."""

    def __init__(self, monitor: str = "val_loss", mode: str = "min"):
        super().__init__(monitor, mode)
        self.state: dict[str, Any] | None = None

    @property
    def epoch(self) -> int | None:
        return self.tracker.epoch

    def on_fit_start(self, trainer: Trainer) -> None:
        self.state = None
        super().on_fit_start(trainer)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        if self.tracker.update(logs):
            self.state = {name: array.copy() for name, array in trainer.model.state_dict().items()}


class ModelCheckpoint(MonitorCallback):
    """Write ``last.safetensors`` every epoch (and at Ctrl-C) and ``best.safetensors`` when
    ``monitor`` improves: full training checkpoints, resumable with ``Trainer.fit(resume_from=...)``.
    Give it after the callbacks whose state the checkpoint should hold."""

    def __init__(
        self,
        directory: str,
        monitor: str = "val_loss",
        mode: str = "min",
        save_best: bool = True,
        save_last: bool = True,
    ):
        super().__init__(monitor, mode)
        self.directory, self.save_best, self.save_last = directory, save_best, save_last

    def on_interrupt(self, trainer: Trainer) -> None:
        if self.save_last:  # the middle of an epoch: resuming goes on from its next batch
            trainer.save_checkpoint(os.path.join(self.directory, "last.safetensors"))

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        if self.save_last:
            trainer.save_checkpoint(os.path.join(self.directory, "last.safetensors"))
        if self.tracker.update(logs) and self.save_best:
            trainer.save_checkpoint(os.path.join(self.directory, "best.safetensors"))


class PeriodicCheckpoint(Callback):
    """Write ``directory/last.safetensors`` every ``every`` optimizer steps, in the middle of an
    epoch too: resuming from it goes on from the next batch, as if the run had not stopped (the
    epoch-end checkpoints are :class:`ModelCheckpoint`'s)."""

    def __init__(self, directory: str, every: int):
        if every < 1:
            raise ValueError(f"PeriodicCheckpoint: every must be at least 1 step, got {every}")
        self.directory, self.every = directory, every

    def on_batch_end(self, trainer: Trainer, logs: Logs) -> None:
        if trainer.global_step % self.every == 0:
            trainer.save_checkpoint(os.path.join(self.directory, "last.safetensors"))


class ProgressBar(Callback):
    """The progress of each epoch: where people watch it (a terminal, a Jupyter notebook's output), a
    tqdm bar with the live loss, accuracy and learning rate (in a notebook a widget, or text without
    ipywidgets); elsewhere (CI, nohup, a log file), a plain line every ``interval`` seconds and one
    per epoch, flushed at once; nothing when ``quiet``."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None, interval: float = 30.0):
        self.stream = stream or sys.stderr
        self.quiet, self.interval = bool(quiet), interval
        self.bar: Any = None
        self.last_line: float | None = None

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if self.quiet:
            return
        if not watched(self.stream):
            self.last_line = time.monotonic()
            return

        self.bar = tqdm(
            total=trainer.batches_per_epoch,
            desc=f"epoch {epoch}/{trainer.total_epochs}",
            file=self.stream,
            leave=True,
            dynamic_ncols=True,
        )

    def on_batch_end(self, trainer: Trainer, logs: Logs) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if trainer.global_step % trainer.read_every == 0:  # on a GPU reading the logs waits for the step
                lr = trainer.current_lr
                self.bar.set_postfix(
                    {**{k: f"{float(v):.4g}" for k, v in logs.items()}, "lr": f"{lr:.3g}"}, refresh=False
                )
        elif self.last_line is not None and time.monotonic() - self.last_line >= self.interval:
            self.last_line = time.monotonic()
            done = trainer.global_step - trainer.epoch * trainer.batches_per_epoch
            lr = trainer.current_lr
            self._line(
                f"epoch {trainer.epoch + 1}/{trainer.total_epochs} batch {done}/{trainer.batches_per_epoch}: "
                + _values({**logs, "lr": lr})
            )

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        values = {k: v for k, v in logs.items() if k not in ("epoch", "step")}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()})
            self.bar.close()
            self.bar = None
        elif self.last_line is not None:
            self._line(f"epoch {epoch}/{trainer.total_epochs} done: {_values(values)}")

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def _values(logs: Logs) -> str:
    return ", ".join(f"{key} {float(value):.4g}" for key, value in logs.items())


class HistoryWriter(Callback):
    """Append each epoch's logs to a JSON-lines file (and, optionally, a CSV file).

    When fit starts with a history (a resumed run), the files are first replaced by ones holding
    exactly that history, so an epoch logged after the checkpoint a run resumes from, before a
    crash, is not listed twice, and none is missing.
    """

    def __init__(self, jsonl_path: str, csv_path: str | None = None):
        self.jsonl_path, self.csv_path = jsonl_path, csv_path

    def on_fit_start(self, trainer: Trainer) -> None:
        epochs = trainer.history.epochs
        if epochs:
            io.write_text(self.jsonl_path, _jsonl(epochs))
            if self.csv_path:
                io.write_text(self.csv_path, _csv(epochs, header=True))

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        with open(self.jsonl_path, "a") as handle:
            handle.write(_jsonl([logs]))
        if self.csv_path:
            header = not os.path.exists(self.csv_path)
            with open(self.csv_path, "a", newline="") as handle:
                handle.write(_csv([logs], header))


class StepWriter(Callback):
    """Append every ``every``-th optimizer step's logs (loss, metrics, the step's learning rate, the
    epoch and the wall time) to a JSON-lines file, flushed as they come, so the per-step curves of a
    run survive whatever stops it; a step whose loss diverged is written too. A resumed run first
    drops the records after the step it resumes from (they are trained again)."""

    def __init__(self, path: str, every: int = 10):
        if every < 1:
            raise ValueError(f"StepWriter: every must be at least 1 step, got {every}")
        self.path, self.every = path, every
        self.handle: TextIO | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        from ..diagnostics.monitors import keep_until

        if trainer.global_step and os.path.exists(self.path):
            keep_until(self.path, trainer.global_step)

    def on_step_end(self, trainer: Trainer, logs: Logs) -> None:
        if (trainer.global_step - 1) % self.every == 0:
            values = {key: float(value) for key, value in logs.items()}  # on a GPU, read from the device now
            self._write(trainer.global_step, trainer.epoch + 1, {**values, "lr": trainer.current_lr})

    def on_fit_end(self, trainer: Trainer) -> None:
        ending = trainer.ending
        if isinstance(ending, TrainingDiverged) and ending.step is not None and ending.loss is not None:
            self._write(ending.step, trainer.epoch + 1, {"loss": ending.loss})
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def _write(self, step: int, epoch: int, values: dict[str, float]) -> None:
        if self.handle is None:  # opened at the first record: a run that recorded nothing leaves no file
            self.handle = open(self.path, "a", encoding="utf-8")
        self.handle.write(json.dumps({"step": step, "epoch": epoch, "time": round(time.time(), 3), **values}) + "\n")
        self.handle.flush()


def _jsonl(rows: list[Logs]) -> str:
    return "".join(json.dumps(logs) + "\n" for logs in rows)


def _csv(rows: list[Logs], header: bool) -> str:
    text = StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
