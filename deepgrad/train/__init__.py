"""The training system: the Trainer (its step and events), the step's policies, the callbacks that
observe it, metrics, model presets, the option schema (:mod:`~deepgrad.train.config`) and whole runs
built from a config (:mod:`~deepgrad.train.run`)."""

from ..errors import TrainingDiverged
from . import config, presets
from .callbacks import (
    BestValue,
    BestWeights,
    Callback,
    EarlyStopping,
    HistoryWriter,
    ModelCheckpoint,
    MonitorCallback,
    PeriodicCheckpoint,
    ProgressBar,
    Stateful,
    StepWriter,
)
from .policies import DivergenceGuard, LearningRate
from .run import Run, build_run, default_directory, load_run
from .tensorboard import TensorBoardLogger
from .thread_tuning import ThreadTuner
from .trainer import History, Trainer
