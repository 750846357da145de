"""TensorBoard's record format, written without its writer thread: :class:`EventFile` (Event
protocol buffers in TFRecord frames) and the builders of the summary values it holds — scalars,
histograms (:func:`array_histogram` bins an array), PNG images. The protocol buffers are
tensorboardX's (the optional extra ``deepgrad[tensorboard]``), imported when first used.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import backend
from ..io import atomic_write

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLORSPACES = {0: 1, 4: 2, 2: 3, 3: 3, 6: 4}  # PNG colour type -> TensorBoard colorspace (channels)
HISTOGRAM_BINS = 64


class EventFile:
    """A TensorBoard event file being written in ``directory``: Event protocol buffers in TFRecord
    frames (length, data, and tensorboardX's masked CRC32C of each), buffered. Its name sorts after
    the directory's earlier ones, as TensorBoard reads them in name order: the time in seconds, the
    host, then the time in nanoseconds (two files of one second)."""

    def __init__(self, directory: str):
        from tensorboardX.proto.event_pb2 import Event

        os.makedirs(directory, exist_ok=True)
        now = time.time()
        self.path = os.path.join(
            directory, f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{time.time_ns()}"
        )
        self.file = open(self.path, "wb")
        self.write(Event(wall_time=now, file_version="brain.Event:2"))

    def write(self, event: Any) -> None:
        self.file.write(record(event))

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def record(event: Any) -> bytes:
    """The TFRecord frame of the Event ``event``: its length, the data, and the masked CRC32C of each."""
    from tensorboardX.record_writer import masked_crc32c

    data = event.SerializeToString()
    header = struct.pack("<Q", len(data))
    return b"".join((header, struct.pack("<I", masked_crc32c(header)), data, struct.pack("<I", masked_crc32c(data))))


def replace_event_file(path: str, events: Iterable[Any]) -> None:
    """Write the event file ``path`` holding ``events`` whole, in place of any earlier one at once (a
    temporary file renamed: a reader finds the old file or the new one, never half of one)."""
    from tensorboardX.proto.event_pb2 import Event

    frames = b"".join(record(event) for event in [Event(wall_time=time.time(), file_version="brain.Event:2"), *events])

    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            handle.write(frames)

    atomic_write(path, write)


def image_summary(tag: str, png: bytes, source: str) -> Any:
    """A Summary holding the PNG bytes ``png`` as the image ``tag``; ``source`` names them in the
    ValueError raised when they are not a PNG."""
    from tensorboardX.proto.summary_pb2 import Summary

    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError(f"TensorBoardLogger.log_figure: {source} is not a PNG image")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    image = Summary.Image(height=height, width=width, colorspace=COLORSPACES.get(png[25], 3), encoded_image_string=png)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def scalars(pairs: Iterable[tuple[str, float | None]]) -> list[Any]:
    """Summary values of the (tag, number) pairs, leaving out those whose number is None."""
    from tensorboardX.proto.summary_pb2 import Summary

    return [Summary.Value(tag=tag, simple_value=float(value)) for tag, value in pairs if value is not None]


def histogram(tag: str, edges: Any, counts: Any, low: float, high: float, total: float, squares: float) -> Any:
    """The summary value of a histogram: ``counts`` between consecutive ``edges``; ``low``/``high``
    the extreme values, ``total``/``squares`` their sum and sum of squares. TensorBoard keeps a
    bucket's right edge only: an empty first bucket ends at ``edges[0]``."""
    from tensorboardX.proto.summary_pb2 import HistogramProto, Summary

    counts = [0] + [int(count) for count in counts]
    histo = HistogramProto(
        min=float(low),
        max=float(high),
        num=sum(counts),
        sum=float(total),
        sum_squares=float(squares),
        bucket_limit=[float(edge) for edge in edges],
        bucket=counts,
    )
    return Summary.Value(tag=tag, histo=histo)


def array_histogram(tag: str, array: Any, bins: int = HISTOGRAM_BINS) -> Any:
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
    return histogram(
        tag,
        edges,
        counts,
        low,
        high,
        values.sum(dtype=np.float64),
        np.einsum("i,i->", values, values, dtype=np.float64),
    )


def session_end(status: str) -> Any:
    """The Summary ending a run's hparams session with ``status`` ("RUNNING", "SUCCESS", "FAILURE" or
    "UNKNOWN"; TensorBoard's HParams tab shows it per run: the first one it read of the run)."""
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    content = HParamsPluginData(session_end_info=SessionEndInfo(status=Status.Value(f"STATUS_{status}")), version=0)
    metadata = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=content.SerializeToString())
    )
    return Summary(value=[Summary.Value(tag="_hparams_/session_end_info", metadata=metadata)])


def experiment(hparams: dict[str, str], metrics: Iterable[str]) -> Any:
    """The Summary declaring a run's hparams experiment: each hyperparameter with its type
    ("FLOAT64", "BOOL", "STRING") and the scalar tags that are its metrics, in column order."""
    from tensorboardX.proto.api_pb2 import DataType, Experiment, HParamInfo, MetricInfo, MetricName
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    infos = [HParamInfo(name=name, type=DataType.Value(f"DATA_TYPE_{kind}")) for name, kind in hparams.items()]
    declared = Experiment(hparam_infos=infos, metric_infos=[MetricInfo(name=MetricName(tag=tag)) for tag in metrics])
    content = HParamsPluginData(experiment=declared, version=0)
    metadata = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=content.SerializeToString())
    )
    return Summary(value=[Summary.Value(tag="_hparams_/experiment", metadata=metadata)])
