"""TensorBoard event files of a training run: :class:`TensorBoardLogger`, a Trainer callback writing
them with tensorboardX (the optional extra ``deepgrad[tensorboard]``); ``tensorboard --logdir runs``
shows them.

    run = build_run({"epochs": 5}, out="runs/five")
    run.trainer.callbacks.append(TensorBoardLogger(run.path(), config=run.config))
    run.fit()

What it writes, under which tag; the x axis is always the optimizer step (counting from 1):

- every ``every`` steps (the 1st, the ``every + 1``-th, ...): ``batch/loss`` and ``batch/<metric>``
  (the batch's), ``batch/lr`` (the learning rate of that step, warm-up included);
- every epoch, at its last step: ``epoch/<key>`` for each number of the epoch's logs (``train_loss``,
  ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``seconds``), and
  ``hparam/best_<key>`` for each validation key: its best value so far (lowest loss, highest else);
- every ``histograms_every`` steps: the histograms ``gradients/<parameter>`` (the gradients the
  optimizer applied, after any clipping) and ``weights/<parameter>`` (after the step);
- the samples of the ``monitors`` it is given (:meth:`deepgrad.diagnostics.Monitor.take_samples`:
  named numbers and histograms, e.g. ``gradient_norm/<layer>``, ``activations/<layer>/mean``), at
  their steps;
- ``config`` as the run's hyperparameters: TensorBoard's HParams tab has one row per log directory,
  whose metrics are the last value of each scalar (``epoch/val_accuracy``, ``hparam/best_val_loss``),
  and its status: RUNNING while fit runs, then SUCCESS, FAILURE (diverged or failed) or UNKNOWN
  (interrupted; its resume runs on) — in a file of its own (``STATUS_FILE``), replaced as it changes;
- when fit ends (with ``curves`` and matplotlib): the image ``curves``, loss and accuracy per epoch
  (:func:`deepgrad.viz.plot_curves`). :meth:`TensorBoardLogger.log_figure` adds any other figure.

A resumed run (``trainer.global_step > 0`` when fit starts) numbers on from its step, and hides what
an earlier attempt logged after that step (a SessionLog START event, as tensorboardX's
``purge_step``). Nothing reaches the Trainer: without this callback, nothing is paid.

The events — each logged step's tags as one — are tensorboardX's protocol buffers, written by
:class:`~deepgrad.train.event_file.EventFile` in the training thread (tensorboardX's SummaryWriter
hands each event to a thread through a multiprocessing queue, which on a small machine whose cores
the BLAS threads keep busy cost about a millisecond an event, more than the step it logged; and
its flush syncs the disk).
The batch scalars are kept in memory and written together at each flush — at every epoch's end, at
least every ``FLUSH_SECONDS``, and when fit ends or is interrupted, which closes the file.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..diagnostics.monitors import Histogram, Sample
from ..errors import ConfigError, TrainingDiverged
from .callbacks import BestValue, Callback, Logs
from .config import OPTIONS
from .event_file import (
    EventFile,
    array_histogram,
    experiment,
    histogram,
    image_summary,
    replace_event_file,
    scalars,
    session_end,
)

if TYPE_CHECKING:
    from .trainer import Trainer

FLUSH_SECONDS = 30
STATUS_FILE = "events.out.tfevents.0000000000.status"  # the hparams status, first of the folder's event files
# The metrics of TensorBoard's HParams tab, in its column order.
METRICS = (
    "epoch/val_accuracy",
    "epoch/val_loss",
    "hparam/best_val_accuracy",
    "hparam/best_val_loss",
    "epoch/train_accuracy",
    "epoch/train_loss",
)


class SampleSource(Protocol):
    """What the logger asks of a monitor: the samples it took since it was last asked."""

    def take_samples(self) -> list[Sample]: ...


def require_tensorboardx() -> None:
    """Import tensorboardX, or raise a ConfigError saying how to install it."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise ConfigError(
            "TensorBoard logging needs tensorboardX: pip install 'deepgrad[tensorboard]' "
            "(or pip install tensorboardX tensorboard)"
        ) from None


def hparam_type(name: str, value: Any) -> str:
    """The hparams type of option ``name`` ("FLOAT64", "BOOL", "STRING"): its schema type, so every
    run declares it alike whatever its value (a value outside the schema: its own type)."""
    kind = OPTIONS[name].type if name in OPTIONS else type(value)
    if kind is bool:
        return "BOOL"
    return "FLOAT64" if kind in (int, float) else "STRING"


def _interval(name: str, value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"TensorBoardLogger: {name} must be a whole number of steps >= 1 or None, got {value!r}")
    return value


def _due(step: int, every: int | None) -> bool:
    """Whether optimizer step ``step`` (from 1) is logged at an interval of ``every``: 1, every + 1, ..."""
    return every is not None and (step - 1) % every == 0


def hparam_value(value: Any) -> bool | int | float | str | None:
    """``value`` as TensorBoard's hparams take it: a number, bool or string (a list as "256,128");
    None stays None (left out: the option's column stays empty, and keeps its type)."""
    if isinstance(value, np.generic):  # a NumPy number a search space sampled
        value = value.item()
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class TensorBoardLogger(Callback):
    """Write a run's TensorBoard event files to ``log_dir`` (see the module's docstring for the tags).

    ``every``: steps between per-batch scalars; ``histograms_every``: steps between weight and
    gradient histograms (None: none of them); ``config``: the run's options (a dict), written as its
    hyperparameters; ``curves``: draw the loss and accuracy curves into the event file when fit ends;
    ``monitors``: whose samples to write (give the logger after them). tensorboardX is imported
    here, so a missing one is an error before any training.

    What the defaults cost on the default digits MLP (about 0.4 ms a step on 2 cores): a set of weight
    and gradient histograms about 1.5 ms (every 200 steps: 2 % of each step; every 100, 4 %), the
    batch scalars under 1 µs a step, the end of an epoch (writing them, flushing) about 0.2 ms, the
    start of fit 0.5 ms, the curves figure 0.1–0.2 s at its end (plus importing matplotlib).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        every: int | None = 10,
        histograms_every: int | None = 200,
        config: dict[str, Any] | None = None,
        curves: bool = True,
        monitors: Iterable[SampleSource] = (),
    ):
        self.every, self.histograms_every = _interval("every", every), _interval("histograms_every", histograms_every)
        require_tensorboardx()
        self.log_dir = os.fspath(log_dir)
        self.config, self.curves, self.monitors = config, curves, list(monitors)
        self.events: EventFile | None = None
        self.next_flush = 0.0
        self.batches: list[tuple[float, int, list[tuple[str, float]]]] = []  # batch scalars not yet written
        self.best: dict[str, BestValue] = {}
        self.hparams_logged = False

    # -- the Trainer's events ---------------------------------------------------
    def on_fit_start(self, trainer: Trainer) -> None:
        step = trainer.global_step
        self.close()
        self.write_status("RUNNING")  # before the new event file: a TensorBoard reading the folder meets it first
        self.open(purge_step=step + 1 if step else None)
        self.best, self.hparams_logged = {}, False
        for logs in trainer.history.epochs:
            self._update_best(logs)

    def on_step_end(self, trainer: Trainer, logs: Logs) -> None:
        step = trainer.global_step
        if _due(step, self.every):
            self.batches.append((time.time(), step, [*logs.items(), ("lr", trainer.current_lr)]))
            self._flush_when_due()
        if _due(step, self.histograms_every):
            parameters = list(trainer.model.named_parameters())
            self.write(
                [array_histogram(f"gradients/{name}", p.grad) for name, p in parameters]
                + [array_histogram(f"weights/{name}", p.data) for name, p in parameters],
                step,
            )
        for monitor in self.monitors:
            for sample in monitor.take_samples():
                self.write(
                    scalars(sample.scalars.items())
                    + [_histogram(tag, values) for tag, values in sample.histograms.items()],
                    sample.step,
                )

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        self._log_hparams(trainer.global_step)  # once the options are resolved (the thread count chosen)
        best = self._update_best(logs)
        self.write(
            scalars(
                [(f"epoch/{key}", value) for key, value in logs.items() if key not in ("epoch", "step")]
                + [(f"hparam/best_{key}", value) for key, value in best.items()]
            ),
            trainer.global_step,
        )
        self.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        """Write what is held, how the run ended (a diverged step's loss at that step; the hparams
        session's status: SUCCESS, FAILURE for a run that diverged or failed, UNKNOWN for an
        interrupted one, which its resume will end) and the curves, and close the file."""
        ending = trainer.ending
        if isinstance(ending, TrainingDiverged) and ending.step is not None and ending.loss is not None:
            self.batches.append((time.time(), ending.step, [("loss", ending.loss)]))
        self._log_hparams(trainer.global_step)
        if ending is None or getattr(ending, "normal_ending", False):
            self.write_status("SUCCESS")
        else:
            self.write_status("UNKNOWN" if isinstance(ending, KeyboardInterrupt) else "FAILURE")
        if self.curves and trainer.history.epochs and ending is None:
            self._log_curves(trainer.history.epochs, trainer.global_step)
        self.close()

    def on_interrupt(self, trainer: Trainer) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------
    def open(self, purge_step: int | None = None) -> None:
        """Start a new event file in ``log_dir``; with ``purge_step``, TensorBoard hides the events of
        steps from ``purge_step`` on that earlier files hold (a SessionLog START event there)."""
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        self.events = EventFile(self.log_dir)
        self.next_flush = time.monotonic() + FLUSH_SECONDS
        if purge_step is not None:
            self.events.write(
                Event(wall_time=time.time(), step=purge_step, session_log=SessionLog(status=SessionLog.START))
            )

    def write_status(self, status: str) -> None:
        """Make ``status`` ("RUNNING", "SUCCESS", "FAILURE", "UNKNOWN") the run's hparams status: the
        one event of the status file, which is replaced whole. (TensorBoard keeps the first status it
        reads of a run and reads a folder's event files in name order, so the status lives in a file
        of its own whose name sorts first; a TensorBoard that read RUNNING while the run trained
        shows its end once restarted.) Nothing without a config: a run without hparams has no row."""
        from tensorboardX.proto.event_pb2 import Event

        if self.config is not None:
            event = Event(wall_time=time.time(), step=0, summary=session_end(status))
            replace_event_file(os.path.join(self.log_dir, STATUS_FILE), [event])

    def write(self, values: list[Any], step: int) -> None:
        """Write the summary values ``values`` (None ones left out) as one event of ``step``."""
        from tensorboardX.proto.summary_pb2 import Summary

        values = [value for value in values if value is not None]
        if values:
            self.write_summary(Summary(value=values), step)

    def write_summary(self, summary: Any, step: int) -> None:
        """Write the Summary ``summary`` as the event of ``step`` (opening an event file when none is)."""
        from tensorboardX.proto.event_pb2 import Event

        if self.events is None:
            self.open()
        assert self.events is not None
        self.events.write(Event(wall_time=time.time(), step=step, summary=summary))
        self._flush_when_due()

    def flush(self) -> None:
        """Write the batch scalars kept so far, and hand what was written to the OS, for TensorBoard
        to read. (Written together, with the protocol buffers' code warm, they cost several times
        less than one by one between training steps.)"""
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        if self.events is None:
            return
        for wall_time, step, pairs in self.batches:
            summary = Summary(value=scalars([(f"batch/{key}", value) for key, value in pairs]))
            self.events.write(Event(wall_time=wall_time, step=step, summary=summary))
        self.batches.clear()
        self.events.flush()
        self.next_flush = time.monotonic() + FLUSH_SECONDS

    def _flush_when_due(self) -> None:
        if time.monotonic() >= self.next_flush:
            self.flush()

    def close(self) -> None:
        """Flush and close the event file (a no-op when none is open)."""
        if self.events is not None:
            self.flush()
            self.events.close()
            self.events = None

    def log_figure(self, tag: str, figure: Any, step: int) -> None:
        """Write ``figure`` — a matplotlib Figure or the path of a PNG file — as the image ``tag`` at
        ``step`` (into a new event file after fit: :meth:`close` it then)."""
        if hasattr(figure, "savefig"):
            from io import BytesIO

            buffer = BytesIO()
            figure.savefig(buffer, format="png", dpi=100)
            png, source = buffer.getvalue(), f"figure {tag!r}"
        else:
            with open(figure, "rb") as handle:
                png, source = handle.read(), os.fspath(figure)
        self.write_summary(image_summary(tag, png, source), step)

    def _log_hparams(self, step: int) -> None:
        """The config as the run's hparams session (once a fit: at its first epoch's end, when the
        options are resolved, or at its end), with the experiment it belongs to: every option with
        its type from the schema, and as metrics only the epoch metrics and the best validation
        values, validation accuracy and loss first (TensorBoard takes the experiment of one run for
        the whole log directory; every run writes the same)."""
        from tensorboardX.summary import hparams

        if self.config is None or self.hparams_logged:
            return
        self.hparams_logged = True
        values = {name: hparam_value(value) for name, value in self.config.items()}
        _, session_start, _ = hparams({name: value for name, value in values.items() if value is not None}, {})
        types = {name: hparam_type(name, value) for name, value in values.items()}
        self.write_summary(experiment(types, METRICS), step)
        self.write_summary(session_start, step)

    def _update_best(self, logs: Logs) -> dict[str, float]:
        """Fold one epoch's validation values into ``best`` (the lowest loss, the highest of the
        others); returns the best values now."""
        for key in logs:
            if key.startswith("val_"):
                if key not in self.best:
                    self.best[key] = BestValue(key, "min" if key.endswith("loss") else "max")
                self.best[key].update(logs)
        return {key: tracker.best for key, tracker in self.best.items() if tracker.best is not None}

    def _log_curves(self, epochs: list[Logs], step: int) -> None:
        """The loss and accuracy curves as the image ``curves`` (nothing without matplotlib)."""
        from ..viz import plot_curves

        with tempfile.TemporaryDirectory() as folder:
            try:
                path = plot_curves(epochs, os.path.join(folder, "curves.png"))
            except ImportError:
                return
            self.log_figure("curves", path, step)


def _histogram(tag: str, values: Histogram) -> Any:
    return histogram(tag, values.edges, values.counts, values.low, values.high, values.total, values.squares)
