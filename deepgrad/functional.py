"""The functional API: every layer's computation as a function of tensors.

    import deepgrad.functional as F
    loss = F.cross_entropy(F.linear(x, w, b).relu(), labels)

Each function lives with its Functions in ``deepgrad.ops`` (linear, conv, normalization,
activation, loss, dropout, shape); this module only gathers them.
"""

from .ops.activation import (
    add_relu,
    elu,
    gelu,
    hardmax,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from .ops.conv import adaptive_avg_pool2d, avg_pool2d, conv2d, conv_transpose2d, max_pool2d, max_unpool2d
from .ops.dropout import dropout
from .ops.embedding import embedding
from .ops.linear import linear
from .ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from .ops.normalization import batch_norm, group_norm, layer_norm
from .ops.shape import pad_last_dims as pad

__all__ = [
    "adaptive_avg_pool2d",
    "add_relu",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "elu",
    "embedding",
    "gelu",
    "group_norm",
    "hardmax",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "max_unpool2d",
    "mse_loss",
    "nll_loss",
    "pad",
    "relu",
    "sigmoid",
    "softmax",
    "softplus",
    "tanh",
]
