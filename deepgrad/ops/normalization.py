"""Normalization with closed-form backward: batch, layer and group norm.

    x̂ = (x − μ) / √(σ² + ε),  out = γ·x̂ + β    (μ, σ² biased, over the reduced axes)
    dx = (1/σ̂)·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)),  dx̂ = g·γ

One fused op instead of the nine-step graph of the textbook derivation.
"""

import numpy as np

from ..tensor import Function


class Normalize(Function):
    """x̂ = (x − mean) / √(var + ε) over ``axes``, then γ·x̂ + β when γ, β are given.

    γ and β are already shaped to broadcast against x (e.g. (1, C, 1, 1)).
    The batch statistics are kept on ``self`` for the running averages.
    """

    def __init__(self, axes, eps):
        self.axes, self.eps = axes, eps

    def forward(self, x, weight=None, bias=None):
        axes = self.axes
        self.mean = x.mean(axis=axes, keepdims=True)
        centered = x - self.mean
        self.var = (centered * centered).mean(axis=axes, keepdims=True)
        self.inv_std = 1.0 / np.sqrt(self.var + self.eps)
        self.x_hat = centered * self.inv_std
        self.weight = weight
        if weight is None:
            return self.x_hat
        return self.x_hat * weight + bias

    def backward(self, grad):
        axes, x_hat, weight = self.axes, self.x_hat, self.weight
        dx = dweight = dbias = None
        needs = self.needs_input_grad
        if needs[0]:
            d_hat = grad if weight is None else grad * weight
            mean_d = d_hat.mean(axis=axes, keepdims=True)
            mean_dx = (d_hat * x_hat).mean(axis=axes, keepdims=True)
            dx = (d_hat - mean_d - x_hat * mean_dx) * self.inv_std
        if weight is None:
            return (dx,)
        lead = grad.ndim - weight.ndim  # the axes γ is broadcast over
        param_axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(weight.shape) if n != grad.shape[lead + i]
        )
        if len(needs) > 1 and needs[1]:
            dweight = (grad * x_hat).sum(axis=param_axes).reshape(weight.shape)
        if len(needs) > 2 and needs[2]:
            dbias = grad.sum(axis=param_axes).reshape(weight.shape)
        return dx, dweight, dbias


def normalize(x, axes, eps, weight=None, bias=None):
    """Apply :class:`Normalize`; returns (output, the Function holding batch mean/var)."""
    fn = Normalize(axes, eps)
    out = fn(x) if weight is None else fn(x, weight, bias)
    return out, fn
