"""deepgrad: a deep-learning library from scratch on NumPy.

import deepgrad as dg
x = dg.tensor([[1.0, 2.0]], requires_grad=True)
y = (x * x).sum()
y.backward()          # x.grad == 2 * x
"""

from . import data, functional, nn, optim, viz
from .backend import bool_, float32, float64, get_default_dtype, int64, set_default_dtype
from .creation import arange, full, ones, ones_like, rand, randn, zeros, zeros_like
from .diagnostics import detect_anomaly
from .errors import (
    AnomalyDetected,
    CheckpointError,
    CheckpointMismatch,
    ConfigError,
    DatasetError,
    DeepgradError,
    GraphvizError,
    TrainingDiverged,
    WriteError,
)
from .gradcheck import GradcheckError, gradcheck
from .io import load, save
from .ops import (
    abs,
    add,
    argmax,
    argmin,
    broadcast_to,
    cast,
    clamp,
    clip,
    concatenate,
    div,
    exp,
    expand,
    flatten,
    log,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pad,
    permute,
    pow,
    reshape,
    sqrt,
    squeeze,
    stack,
    std,
    sub,
    sum,
    transpose,
    unsqueeze,
    var,
    where,
)
from .ops.activation import relu, sigmoid, softmax, tanh
from .process import config
from .random import default_generator, get_rng_state, manual_seed, set_rng_state
from .tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad, set_grad_enabled, tensor
from .threads import get_num_threads, set_num_threads

cat = concatenate

__version__ = "0.1.0"
