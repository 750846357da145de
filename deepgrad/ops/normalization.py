"""Normalization with closed-form backward: batch, layer and group norm.

    x̂ = (x − μ) / √(σ² + ε),  out = γ·x̂ + β    (μ, σ² biased, over the reduced axes)
    dx = (1/σ̂)·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)),  dx̂ = g·γ

One fused op instead of the nine-step graph of the textbook derivation.
"""

import numpy as np

from ..tensor import Function
from .reduction import sum_over
from .spread import spread


def sample_shape_for_batch_norm(x, axes):
    """One sample's shape (1, C, H, W) when normalizing a batch of 4+ images or sequences over
    every axis but the channel's, else None: the shape per-channel values are spread to (see
    :mod:`deepgrad.ops.spread`)."""
    if x.ndim >= 3 and x.shape[0] >= 4 and axes == (0,) + tuple(range(2, x.ndim)):
        return (1,) + x.shape[1:]
    return None


def _with_shape(array, shape):
    """``array`` reshaped to ``shape``, itself when it already has it (a view would make the
    engine copy it before it becomes a parameter's .grad)."""
    return array if array.shape == shape else array.reshape(shape)


class Normalize(Function):
    """x̂ = (x − mean) / √(var + ε) over ``axes``, then γ·x̂ + β when γ, β are given.

    γ and β keep their own shape (e.g. (C,)); ``param_shape`` is how they
    broadcast against x (e.g. (1, C, 1, 1)) and ``weight_axes`` the axes of x
    their gradients sum over. The batch statistics are kept on ``self`` for
    the running averages. What the backward needs is the centered input
    c = x − mean and 1/σ̂, from which x̂ = c/σ̂ follows per channel.

    When γ is constant along the normalized axes (batch norm), the output is
    c·(γ/σ̂) + β, one scale per channel as in PyTorch (x̂ itself is never
    written out), and with db = Σ g and Σ g·c over those axes (n elements):
    dγ = (Σ g·c)/σ̂,  dx = (γ/σ̂)·(g − db/n − c·(Σ g·c)/(n·σ̂²)),
    five passes over the data forward and six backward. Otherwise (layer
    norm: γ varies along them) dx̂ = g·γ enters the general form
    dx = (dx̂ − mean dx̂ − x̂·mean(dx̂·x̂))/σ̂.
    """

    def __init__(self, axes, eps, param_shape=None, weight_axes=None):
        self.axes, self.eps, self.param_shape, self.weight_axes = axes, eps, param_shape, weight_axes

    def forward(self, x, weight=None, bias=None):
        axes = self.axes
        self.sample_shape = sample_shape = sample_shape_for_batch_norm(x, axes)
        self.mean = sum_over(axes, x, keepdims=True)
        self.inv_count = self.mean.size / x.size
        self.mean *= self.inv_count
        centered = x - spread(self.mean, sample_shape)
        self.var = sum_over(axes, centered, centered, keepdims=True)
        self.var *= self.inv_count
        self.inv_std = 1.0 / np.sqrt(self.var + self.eps)
        self.centered, self.weight = centered, weight
        if weight is None:
            return centered * spread(self.inv_std, sample_shape)
        gamma = weight.reshape(self.param_shape)
        if self.weight_axes == axes:  # batch norm: one scale γ/σ̂ per channel
            out = centered * spread(self.inv_std * gamma, sample_shape)
        else:  # layer norm: x̂·γ
            out = centered * self.inv_std
            out *= gamma
        out += spread(bias.reshape(self.param_shape), sample_shape)
        return out

    def backward(self, grad):
        weight = self.weight
        if weight is None:
            return (self._dx_constant_scale(grad, 1.0),)
        gamma = weight.reshape(self.param_shape)
        param_axes = self.weight_axes
        needs = self.needs_input_grad
        dbias = sum_over(param_axes, grad)
        dx = None
        if param_axes == self.axes:  # γ constant along the normalized axes: reuse db and Σ g·c
            grad_dot_centered = sum_over(param_axes, grad, self.centered)
            dweight = grad_dot_centered * self.inv_std.reshape(grad_dot_centered.shape)
            if needs[0]:
                dx = self._dx_constant_scale(grad, gamma, dbias.reshape(gamma.shape),
                                             grad_dot_centered.reshape(gamma.shape))
        else:
            x_hat = self.centered * self.inv_std
            dweight = sum_over(param_axes, grad, x_hat)
            if needs[0]:
                d_hat = grad * gamma
                dx = d_hat - sum_over(self.axes, d_hat, keepdims=True) * self.inv_count
                dx -= x_hat * (sum_over(self.axes, d_hat, x_hat, keepdims=True) * self.inv_count)
                dx *= self.inv_std
        return (
            dx,
            _with_shape(dweight, weight.shape) if needs[1] else None,
            _with_shape(dbias, weight.shape) if needs[2] else None,
        )

    def _dx_constant_scale(self, grad, gamma, dbias=None, grad_dot_centered=None):
        """dx = (γ/σ̂)·(g − db/n − c·(Σ g·c)/(n·σ̂²)) for γ constant along the normalized axes."""
        axes, centered, inv_std, sample_shape = self.axes, self.centered, self.inv_std, self.sample_shape
        if dbias is None:
            dbias = sum_over(axes, grad, keepdims=True)
            grad_dot_centered = sum_over(axes, grad, centered, keepdims=True)
        dx = centered * spread(grad_dot_centered * (inv_std * inv_std * self.inv_count), sample_shape)
        np.subtract(grad, dx, out=dx)
        dx -= spread(dbias * self.inv_count, sample_shape)
        dx *= spread(inv_std * gamma, sample_shape)
        return dx


class FrozenNormalize(Function):
    """Normalization with fixed statistics (batch norm at evaluation), one affine map per channel:
    out = x·a + b,  a = γ/√(var + ε),  b = β − mean·a;
    dx = g·a,  dγ = Σ g·(x − mean)/√(var + ε),  dβ = Σ g  (sums over every axis but the channel's)

    γ and β are optional (``affine`` tells which are among the inputs); the
    statistics are arrays, not inputs: no gradient reaches them.
    """

    def __init__(self, mean, var, eps, param_shape, has_weight, has_bias):
        self.mean = mean.reshape(param_shape)
        self.inv_std = (1.0 / np.sqrt(var + eps)).reshape(param_shape)
        self.has_weight, self.has_bias = has_weight, has_bias

    def forward(self, x, *affine):
        weight = affine[0] if self.has_weight else None
        bias = affine[-1] if self.has_bias else None
        scale = self.inv_std if weight is None else weight.reshape(self.inv_std.shape) * self.inv_std
        shift = -self.mean * scale
        if bias is not None:
            shift += bias.reshape(shift.shape)
        sample_shape = sample_shape_for_batch_norm(x, (0,) + tuple(range(2, x.ndim)))
        self.x, self.scale = x, scale
        out = x * spread(scale, sample_shape)
        out += spread(shift, sample_shape)
        return out

    def backward(self, grad):
        needs = self.needs_input_grad
        sum_axes = (0,) + tuple(range(2, grad.ndim))
        channels = grad.shape[1]
        grads = [grad * self.scale if needs[0] else None]
        if self.has_weight:
            grads.append(sum_over(sum_axes, self.x - self.mean, grad) * self.inv_std.reshape(channels)
                         if needs[1] else None)
        if self.has_bias:
            grads.append(sum_over(sum_axes, grad) if needs[-1] else None)
        return tuple(grads)


def normalize(x, axes, eps, weight=None, bias=None, param_shape=None, weight_axes=None):
    """Apply :class:`Normalize`; returns (output, the Function holding batch mean/var)."""
    fn = Normalize(axes, eps, param_shape, weight_axes)
    out = fn(x) if weight is None else fn(x, weight, bias)
    return out, fn
