"""The training system: the Trainer and its callbacks, metrics, model presets, the option schema
(:mod:`~deepgrad.train.config`) and whole runs built from a config (:mod:`~deepgrad.train.run`)."""

from ..errors import TrainingDiverged
from . import config, presets
from .callbacks import (
    BestWeights, Callback, EarlyStopping, GradientClipping, HistoryWriter, ModelCheckpoint, NaNGuard,
    OverrideHyperparameters, PeriodicCheckpoint, ProgressBar, SchedulerStep, Warmup,
)
from .run import Run, build_run, default_directory, load_run
from .tensorboard import TensorBoardLogger
from .thread_tuning import ThreadTuner
from .trainer import History, Trainer
