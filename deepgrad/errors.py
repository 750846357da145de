"""The library's user-error types.

A :class:`DeepgradError` means that what was asked cannot be done — a bad
option, a damaged file, a training that diverged — and its message names the
file, option or layer and what was expected. The command line prints it as
one line and exits with code 2; any other exception is a bug and keeps its
traceback. Each subclass also derives from the built-in type that code
catching errors the Python way expects (ValueError, RuntimeError).
"""

from __future__ import annotations


class DeepgradError(Exception):
    """Something the user asked for cannot be done; the message says what and why."""


class ConfigError(DeepgradError, ValueError):
    """An option, a config file, a search space or a run directory is unusable."""


class CheckpointError(DeepgradError, ValueError):
    """A file is not a readable deepgrad checkpoint (corrupted, truncated, foreign or for another model)."""


class CheckpointMismatch(CheckpointError, RuntimeError):
    """A checkpoint's model does not fit the model it is loaded into (other layer sizes or layers)."""


class DatasetError(DeepgradError, ValueError):
    """A data file is missing, truncated, corrupted or not what was expected."""


class WriteError(DeepgradError, OSError):
    """A file could not be written (no space left, no permission); the previous file is unchanged."""


class TrainingDiverged(DeepgradError, RuntimeError):
    """The training diverged: its loss became NaN or infinite (or exploded, with
    ``stop_on_divergence``), or its weights did. ``step`` (the optimizer step, from 1, whose loss it
    was; the last step of the epoch for weights), ``loss`` and ``last_finite`` (the last finite loss
    before it) say where, when known."""

    def __init__(
        self, message: str, step: int | None = None, loss: float | None = None, last_finite: float | None = None
    ):
        super().__init__(message)
        self.step, self.loss, self.last_finite = step, loss, last_finite


class AnomalyDetected(TrainingDiverged):
    """``detect_anomaly`` found the first op whose forward or backward produced NaN or Inf."""


class GraphvizError(DeepgradError, RuntimeError):
    """Graphviz's ``dot`` program is missing, failed, or took too long to render a graph."""
