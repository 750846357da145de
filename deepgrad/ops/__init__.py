"""Differentiable operations, grouped by topic.

Tensor's operators and methods (``+``, ``@``, ``.sum()``, ...) are declared in ``deepgrad/tensor.py``,
each calling the function of this package that does the work.
"""

from . import activation, arithmetic, device, reduction, shape
from .activation import log_softmax, relu, sigmoid, softmax, tanh
from .arithmetic import (
    abs,
    add,
    cast,
    clamp,
    clip,
    div,
    exp,
    log,
    matmul,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sqrt,
    sub,
    where,
)
from .reduction import argmax, argmin, max, mean, min, std, sum, var
from .shape import (
    broadcast_to,
    concatenate,
    expand,
    flatten,
    getitem,
    pad,
    permute,
    reshape,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)
