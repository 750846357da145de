"""The library's user-error types.

A :class:`DeepgradError` means that what was asked cannot be done — a bad
option, a damaged file, a training that diverged — and its message names the
file, option or layer and what was expected. The command line prints it as
one line and exits with code 2; any other exception is a bug and keeps its
traceback. Each subclass also derives from the built-in type that code
catching errors the Python way expects (ValueError, RuntimeError).
"""


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
    """The training loss became NaN or infinite."""


class AnomalyDetected(TrainingDiverged):
    """``detect_anomaly`` found the first op whose forward or backward produced NaN or Inf."""


class GraphvizError(DeepgradError, RuntimeError):
    """Graphviz's ``dot`` program is missing, failed, or took too long to render a graph."""
