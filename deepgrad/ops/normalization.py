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
    the running averages.

    When γ is constant along the normalized axes (batch norm), with
    db = Σ g and dγ = Σ g·x̂ over them (n elements), the backward is
    dx = (γ/σ̂)·(g − db/n − x̂·dγ/n): seven passes over the data in all.
    Otherwise (layer norm: γ varies along them) dx̂ = g·γ enters the general
    form dx = (dx̂ − mean dx̂ − x̂·mean(dx̂·x̂))/σ̂.
    """

    def __init__(self, axes, eps, param_shape=None, weight_axes=None):
        self.axes, self.eps, self.param_shape, self.weight_axes = axes, eps, param_shape, weight_axes

    def forward(self, x, weight=None, bias=None):
        axes = self.axes
        self.sample_shape = sample_shape_for_batch_norm(x, axes)
        self.mean = sum_over(axes, x, keepdims=True)
        self.inv_count = self.mean.size / x.size
        self.mean *= self.inv_count
        x_hat = x - spread(self.mean, self.sample_shape)
        self.var = sum_over(axes, x_hat, x_hat, keepdims=True)
        self.var *= self.inv_count
        self.inv_std = 1.0 / np.sqrt(self.var + self.eps)
        x_hat *= spread(self.inv_std, self.sample_shape)
        self.x_hat, self.weight = x_hat, weight
        if weight is None:
            return x_hat
        out = x_hat * spread(weight.reshape(self.param_shape), self.sample_shape)
        out += spread(bias.reshape(self.param_shape), self.sample_shape)
        return out

    def backward(self, grad):
        axes, x_hat, weight = self.axes, self.x_hat, self.weight
        if weight is None:
            return (self._dx_constant_scale(grad, 1.0),)
        gamma = weight.reshape(self.param_shape)
        param_axes = self.weight_axes
        needs = self.needs_input_grad
        dbias = sum_over(param_axes, grad)
        dweight = sum_over(param_axes, grad, x_hat)
        dx = None
        if needs[0]:
            if param_axes == axes:  # γ constant along the normalized axes: reuse db and dγ
                dx = self._dx_constant_scale(grad, gamma, dbias.reshape(gamma.shape), dweight.reshape(gamma.shape))
            else:
                d_hat = grad * gamma
                dx = d_hat - sum_over(axes, d_hat, keepdims=True) * self.inv_count
                dx -= x_hat * (sum_over(axes, d_hat, x_hat, keepdims=True) * self.inv_count)
                dx *= self.inv_std
        return (
            dx,
            _with_shape(dweight, weight.shape) if needs[1] else None,
            _with_shape(dbias, weight.shape) if needs[2] else None,
        )

    def _dx_constant_scale(self, grad, gamma, dbias=None, dweight=None):
        """dx = (γ/σ̂)·(g − db/n − x̂·dγ/n) for γ constant along the normalized axes."""
        axes, x_hat = self.axes, self.x_hat
        if dbias is None:
            dbias = sum_over(axes, grad, keepdims=True)
            dweight = sum_over(axes, grad, x_hat, keepdims=True)
        dx = x_hat * spread(dweight * self.inv_count, self.sample_shape)
        np.subtract(grad, dx, out=dx)
        dx -= spread(dbias * self.inv_count, self.sample_shape)
        dx *= spread(self.inv_std * gamma, self.sample_shape)
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
