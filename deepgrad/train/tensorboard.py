"""TensorBoard event files of a training run: :class:`TensorBoardLogger`, a Trainer callback writing
them with tensorboardX (the optional extra ``deepgrad[tensorboard]``); ``tensorboard --logdir runs``
shows them.

    run = build_run({"epochs": 5}, out="runs/five")
    run.trainer.callbacks.append(TensorBoardLogger(run.path("tb"), config=run.config))
    run.fit()

What it writes, under which tag; the x axis is always the optimizer step (counting from 1):

- every ``every`` steps (the 1st, the ``every + 1``-th, ...): ``batch/loss`` and ``batch/<metric>``
  (the batch's), ``batch/lr`` (the learning rate of that step);
- every epoch, at its last step: ``epoch/<key>`` for each number of the epoch's logs (``train_loss``,
  ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``seconds``), and
  ``hparam/best_<key>`` for each validation key: its best value so far (lowest loss, highest else);
- every ``histograms_every`` steps: the histograms ``gradients/<parameter>`` (the gradients the
  optimizer applies, after any clipping) and ``weights/<parameter>`` (after the step);
- with a GradientFlowMonitor among the Trainer's callbacks, at each of its samples:
  ``gradient_norm/<layer>``, ``gradient_norm/total``, ``gradient_flow/first_last_ratio`` and
  ``update_ratio/<parameter>``; with an ActivationMonitor: ``activations/<layer>/mean``, ``.../std``,
  ``.../dead_fraction``, ``.../saturated_fraction`` (sigmoid, tanh) and the histogram
  ``activations/<layer>``;
- ``config`` as the run's hyperparameters: TensorBoard's HParams tab has one row per log directory,
  whose metrics are the last value of each scalar (``epoch/val_accuracy``, ``hparam/best_val_loss``);
- when fit ends (with ``curves`` and matplotlib): the image ``curves``, loss and accuracy per epoch
  (:func:`deepgrad.viz.plot_curves`). :meth:`TensorBoardLogger.log_figure` adds any other figure.

A resumed run (``trainer.global_step > 0`` when fit starts) numbers on from its step, and hides what
an earlier attempt logged after that step (a SessionLog START event, as tensorboardX's
``purge_step``). Nothing reaches the Trainer: without this callback, nothing is paid.

The events — each logged step's tags as one — are tensorboardX's protocol buffers, written by
:class:`EventFile` in the training thread (tensorboardX's SummaryWriter hands each event to a thread
through a multiprocessing queue, which on a small machine whose cores the BLAS threads keep busy
cost about a millisecond an event, more than the step it logged; and its flush syncs the disk).
The batch scalars are kept in memory and written together at each flush — at every epoch's end, at
least every ``FLUSH_SECONDS``, and when fit ends or is interrupted, which closes the file.
"""

import os
import socket
import struct
import tempfile
import time

import numpy as np

from .. import backend
from ..errors import ConfigError
from .callbacks import Callback

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLORSPACES = {0: 1, 4: 2, 2: 3, 3: 3, 6: 4}  # PNG colour type -> TensorBoard colorspace (channels)
HISTOGRAM_BINS = 64
FLUSH_SECONDS = 30


def require_tensorboardx():
    """Import tensorboardX, or raise a ConfigError saying how to install it."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise ConfigError("TensorBoard logging needs tensorboardX: pip install 'deepgrad[tensorboard]' "
                          "(or pip install tensorboardX tensorboard)") from None


def _interval(name, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"TensorBoardLogger: {name} must be a whole number of steps >= 1 or None, got {value!r}")
    return value


def _due(step, every):
    """Whether optimizer step ``step`` (from 1) is logged at an interval of ``every``: 1, every + 1, ..."""
    return every is not None and (step - 1) % every == 0


def hparam_value(value):
    """``value`` as TensorBoard's hparams take it: a number, bool or string (a list as "256,128",
    None as "none")."""
    if isinstance(value, np.generic):  # a NumPy number a search space sampled
        value = value.item()
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class TensorBoardLogger(Callback):
    """Write a run's TensorBoard event files to ``log_dir`` (see the module's docstring for the tags).

    ``every``: steps between per-batch scalars; ``histograms_every``: steps between weight and
    gradient histograms (None: none of them); ``config``: the run's options (a dict), written as its
    hyperparameters; ``curves``: draw the loss and accuracy curves into the event file when fit ends.
    tensorboardX is imported here, so a missing one is an error before any training.

    What the defaults cost on the default digits MLP (about 0.4 ms a step on 2 cores): a set of weight
    and gradient histograms about 1.5 ms (every 200 steps: 2 % of each step; every 100, 4 %), the
    batch scalars under 1 µs a step, the end of an epoch (writing them, flushing) about 0.2 ms, the
    start of fit 0.5 ms, the curves figure 0.1–0.2 s at its end (plus importing matplotlib).
    """

    order = 50  # after the monitors (they have their records) and the clipping; before the checkpoint

    def __init__(self, log_dir, every=10, histograms_every=200, config=None, curves=True):
        self.every, self.histograms_every = _interval("every", every), _interval("histograms_every", histograms_every)
        require_tensorboardx()
        self.log_dir = os.fspath(log_dir)
        self.config, self.curves = config, curves
        self.events, self.next_flush = None, None  # the open EventFile, and when to flush it next
        self.batches = []  # (time, step, [(key, value), ...]) of the batch scalars not yet written
        self.best = {}
        self.monitors = []  # [monitor, number of its records already written]
        self.session_end = None

    # -- the Trainer's events ---------------------------------------------------
    def on_fit_start(self, trainer):
        step = trainer.global_step
        self.close()
        self.open(purge_step=step + 1 if step else None)
        self.best, self.session_end = {}, None
        for logs in trainer.history.epochs:
            self._update_best(logs)
        self.monitors = [[callback, len(callback.records)] for callback in trainer.callbacks
                         if getattr(callback, "kind", None) in MONITOR_RECORDS
                         and isinstance(getattr(callback, "records", None), list)]
        if self.config is not None:
            self._log_hparams(step)

    def on_after_backward(self, trainer, logs):
        step = trainer.global_step + 1
        if _due(step, self.every):
            self.batches.append((time.time(), step, [*logs.items(), ("lr", trainer.optimizer.param_groups[0]["lr"])]))
            self._flush_when_due()
        if _due(step, self.histograms_every):
            self.write([array_histogram(f"gradients/{name}", p.grad) for name, p in trainer.model.named_parameters()],
                       step)

    def on_step_end(self, trainer, logs):
        step = trainer.global_step
        if _due(step, self.histograms_every):
            self.write([array_histogram(f"weights/{name}", p.data) for name, p in trainer.model.named_parameters()],
                       step)
        for entry in self.monitors:
            monitor, written = entry
            for record in monitor.records[written:]:
                self.write(MONITOR_RECORDS[record["kind"]](record), record["step"])
            entry[1] = len(monitor.records)

    def on_epoch_end(self, trainer, epoch, logs):
        best = self._update_best(logs)
        self.write(scalars([(f"epoch/{key}", value) for key, value in logs.items() if key != "epoch"]
                           + [(f"hparam/best_{key}", value) for key, value in best.items()]), trainer.global_step)
        self.flush()

    def on_fit_end(self, trainer):
        if self.session_end is not None:
            self.write_summary(self.session_end, trainer.global_step)
        if self.curves and trainer.history.epochs:
            self._log_curves(trainer.history.epochs, trainer.global_step)
        self.close()

    def on_interrupt(self, trainer):
        self.close()

    # -- writing ----------------------------------------------------------------
    def open(self, purge_step=None):
        """Start a new event file in ``log_dir``; with ``purge_step``, TensorBoard hides the events of
        steps from ``purge_step`` on that earlier files hold (a SessionLog START event there)."""
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        self.events = EventFile(self.log_dir)
        self.next_flush = time.monotonic() + FLUSH_SECONDS
        if purge_step is not None:
            self.events.write(Event(wall_time=time.time(), step=purge_step,
                                    session_log=SessionLog(status=SessionLog.START)))

    def write(self, values, step):
        """Write the summary values ``values`` (None ones left out) as one event of ``step``."""
        from tensorboardX.proto.summary_pb2 import Summary

        values = [value for value in values if value is not None]
        if values:
            self.write_summary(Summary(value=values), step)

    def write_summary(self, summary, step):
        """Write the Summary ``summary`` as the event of ``step`` (opening an event file when none is)."""
        from tensorboardX.proto.event_pb2 import Event

        if self.events is None:
            self.open()
        self.events.write(Event(wall_time=time.time(), step=step, summary=summary))
        self._flush_when_due()

    def flush(self):
        """Write the batch scalars kept so far, and hand what was written to the OS, for TensorBoard
        to read. (Written together, with the protocol buffers' code warm, they cost several times
        less than one by one between training steps.)"""
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        for wall_time, step, pairs in self.batches:
            summary = Summary(value=scalars([(f"batch/{key}", value) for key, value in pairs]))
            self.events.write(Event(wall_time=wall_time, step=step, summary=summary))
        self.batches.clear()
        self.events.flush()
        self.next_flush = time.monotonic() + FLUSH_SECONDS

    def _flush_when_due(self):
        if time.monotonic() >= self.next_flush:
            self.flush()

    def close(self):
        """Flush and close the event file (a no-op when none is open)."""
        if self.events is not None:
            self.flush()
            self.events.close()
            self.events = None

    def log_figure(self, tag, figure, step):
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

    def _log_hparams(self, step):
        """The config as the run's hparams session: its start now, its end when fit ends. No
        experiment summary: TensorBoard then gathers the hparams of every run of the log directory
        (reconciling their types) rather than taking one run's."""
        from tensorboardX.summary import hparams

        _, session_start, self.session_end = hparams({k: hparam_value(v) for k, v in self.config.items()}, {})
        self.write_summary(session_start, step)

    def _update_best(self, logs):
        """Fold one epoch's validation values into ``best``; returns the best values now."""
        for key, value in logs.items():
            if key.startswith("val_"):
                better = min if key.endswith("loss") else max
                self.best[key] = value if key not in self.best else better(self.best[key], value)
        return dict(self.best)

    def _log_curves(self, epochs, step):
        """The loss and accuracy curves as the image ``curves`` (nothing without matplotlib)."""
        from ..viz import plot_curves

        with tempfile.TemporaryDirectory() as folder:
            try:
                path = plot_curves(epochs, os.path.join(folder, "curves.png"))
            except ImportError:
                return
            self.log_figure("curves", path, step)


class EventFile:
    """A TensorBoard event file being written in ``directory``: Event protocol buffers in TFRecord
    frames (length, data, and tensorboardX's masked CRC32C of each), buffered. Its name sorts after
    the directory's earlier ones, as TensorBoard reads them in name order: the time in seconds, the
    host, then the time in nanoseconds (two files of one second)."""

    def __init__(self, directory):
        from tensorboardX.proto.event_pb2 import Event

        os.makedirs(directory, exist_ok=True)
        now = time.time()
        self.path = os.path.join(directory, f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}."
                                            f"{time.time_ns()}")
        self.file = open(self.path, "wb")
        self.write(Event(wall_time=now, file_version="brain.Event:2"))

    def write(self, event):
        from tensorboardX.record_writer import masked_crc32c

        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        self.file.write(b"".join((header, struct.pack("<I", masked_crc32c(header)), data,
                                  struct.pack("<I", masked_crc32c(data)))))

    def flush(self):
        self.file.flush()

    def close(self):
        self.file.close()


def image_summary(tag, png, source):
    """A Summary holding the PNG bytes ``png`` as the image ``tag``; ``source`` names them in the
    ValueError raised when they are not a PNG."""
    from tensorboardX.proto.summary_pb2 import Summary

    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError(f"TensorBoardLogger.log_figure: {source} is not a PNG image")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    image = Summary.Image(height=height, width=width, colorspace=COLORSPACES.get(png[25], 3),
                          encoded_image_string=png)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def scalars(pairs):
    """Summary values of the (tag, number) pairs, leaving out those whose number is None."""
    from tensorboardX.proto.summary_pb2 import Summary

    return [Summary.Value(tag=tag, simple_value=float(value)) for tag, value in pairs if value is not None]


def histogram(tag, edges, counts, low, high, total, squares):
    """The summary value of a histogram: ``counts`` between consecutive ``edges``; ``low``/``high``
    the extreme values, ``total``/``squares`` their sum and sum of squares. TensorBoard keeps a
    bucket's right edge only: an empty first bucket ends at ``edges[0]``."""
    from tensorboardX.proto.summary_pb2 import HistogramProto, Summary

    counts = [0] + [int(count) for count in counts]
    histo = HistogramProto(min=float(low), max=float(high), num=sum(counts), sum=float(total),
                           sum_squares=float(squares), bucket_limit=[float(edge) for edge in edges], bucket=counts)
    return Summary.Value(tag=tag, histo=histo)


def array_histogram(tag, array, bins=HISTOGRAM_BINS):
    """The histogram of ``array``'s finite values in ``bins`` equal bins between their extremes
    (None for no array, or nothing finite). Binned in float32 by ``bincount``, and summed without
    BLAS: a few nanoseconds an element (NumPy's ``histogram`` takes 15, BLAS's ``dot`` can take
    milliseconds when its threads fight over a busy machine)."""
    if array is None:
        return None
    values = backend.to_host(array).reshape(-1).astype(np.float32, copy=False)
    if not values.size:
        return None
    low, high = values.min(), values.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        values = values[np.isfinite(values)]
        if not values.size:
            return None
        low, high = values.min(), values.max()
    start, stop = (low, high) if high > low else (low - 0.5, high + 0.5)  # NumPy's range for one value
    index = ((values - start) * np.float32(bins / (stop - start))).astype(np.int32)
    np.minimum(index, bins - 1, out=index)  # the largest value in the last bin
    counts = np.bincount(index, minlength=bins)
    edges = np.linspace(start, stop, bins + 1)
    return histogram(tag, edges, counts, low, high, values.sum(dtype=np.float64),
                     np.einsum("i,i->", values, values, dtype=np.float64))


def gradient_record(record):
    """A GradientFlowMonitor's record: ``gradient_norm/<layer>`` and ``/total``,
    ``gradient_flow/first_last_ratio``, ``update_ratio/<parameter>``."""
    return scalars([(f"gradient_norm/{layer}", norm) for layer, norm in record["layers"].items()]
                   + [("gradient_norm/total", record["total"]),
                      ("gradient_flow/first_last_ratio", record["first_last_ratio"])]
                   + [(f"update_ratio/{name}", ratio) for name, ratio in record["update_ratios"].items()])


def activation_record(record):
    """An ActivationMonitor's record: per layer, ``activations/<layer>/mean``, ``std``,
    ``dead_fraction``, ``saturated_fraction`` and its histogram ``activations/<layer>`` (the
    monitor's bins, values beyond them counted in the end bins)."""
    values = []
    for layer, stats in record["layers"].items():
        tag, mean, std = f"activations/{layer}", stats["mean"], stats["std"]
        values += scalars([(f"{tag}/mean", mean), (f"{tag}/std", std), (f"{tag}/dead_fraction", stats["dead"]),
                           (f"{tag}/saturated_fraction", stats["saturated"])])
        count, edges = sum(stats["histogram"]), stats["edges"]
        if count:
            values.append(histogram(tag, edges, stats["histogram"], edges[0], edges[-1], mean * count,
                                    count * (std ** 2 + mean ** 2)))
    return values


# What a monitor's records become, by the records' (and the monitor's) kind.
MONITOR_RECORDS = {"gradients": gradient_record, "activations": activation_record}
