"""The training system: Trainer, callbacks, metrics and the model presets."""

from . import presets
from .callbacks import (
    Callback, EarlyStopping, HistoryWriter, ModelCheckpoint, NaNGuard, ProgressBar, TrainingDiverged,
)
from .trainer import History, Trainer
