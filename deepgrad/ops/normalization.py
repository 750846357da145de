"""Normalization with closed-form backward: batch, layer and group norm, and batch norm's running statistics.

    x̂ = (x − μ) / σ̂,  σ̂ = √(σ² + ε),  out = γ·x̂ + β    (μ, σ² biased, over the normalized axes)

Each is one fused op instead of the nine-step graph of the textbook derivation:
:class:`BatchNorm` (statistics per channel, γ constant along the normalized
axes), :class:`LayerNorm` (statistics per sample, γ varying along them; group
norm is layer norm of each group) and :class:`FrozenBatchNorm` (batch norm at
evaluation: fixed statistics, one affine map per channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import kernels, parallel, threads
from ..backend import Array
from ..tensor import Function, Tensor
from .activation import ReLU, relu
from .arguments import check_shape, hyperparameter
from .reduction import sum_over
from .spread import spread


def sample_shape_for_batch_norm(x: Array) -> tuple[int, ...] | None:
    """One sample's shape (1, C, H, W) when ``x`` is a batch of 4+ images or sequences, else None: the
    shape per-channel values are spread to before they meet x (see :mod:`deepgrad.ops.spread`)."""
    if x.ndim >= 3 and x.shape[0] >= 4:
        return (1,) + x.shape[1:]
    return None


def _with_shape(array: Array, shape: tuple[int, ...]) -> Array:
    """``array`` reshaped to ``shape``, itself when it already has it (a view would make the
    engine copy it before it becomes a parameter's .grad)."""
    return array if array.shape == shape else array.reshape(shape)


def standardize_into(x, axes, eps, sample_shape, centered):
    """centered = x − μ over ``axes``; returns μ, σ² (biased) and 1/σ̂, keeping those axes.
    ``sample_shape``: see :func:`sample_shape_for_batch_norm`."""
    mean = sum_over(axes, x, keepdims=True)
    inv_count = mean.size / x.size
    mean *= inv_count
    np.subtract(x, spread(mean, sample_shape), out=centered)
    var = sum_over(axes, centered, centered, keepdims=True)
    var *= inv_count
    return mean, var, 1.0 / np.sqrt(var + eps)


def input_grad_into(grad, centered, scale, inv_std, inv_count, sum_grad, sum_grad_centered, sample_shape, dx):
    """dx = s·(g − Σg/n − c·Σ(g·c)/(n·σ̂²)) for out = c·s + β with s = γ/σ̂ constant along the
    normalized axes; the sums Σg and Σ(g·c) keep those axes."""
    np.multiply(centered, spread(sum_grad_centered * (inv_std * inv_std * inv_count), sample_shape), out=dx)
    np.subtract(grad, dx, out=dx)
    dx -= spread(sum_grad * inv_count, sample_shape)
    dx *= spread(scale, sample_shape)
    return dx


def batch_norm_kernels(x: Array):
    """The compiled batch norm kernels (:mod:`deepgrad.kernels.batch_norm`) for x, or None where the
    NumPy passes serve: kernels off or numba missing, arrays on a device, dtypes other than float32
    and float64, and (N, C) batches (a channel's values there are a strided column, not a run)."""
    return kernels.for_array("batch_norm", x) if x.ndim >= 3 else None


def channel_parts(x: Array) -> list[slice]:
    """x's channels (axis 1) in parts, one a thread, when x is large (see :func:`parallel.parts`)."""
    if x.size < 2 * parallel.MIN_WORK:  # one part, without the view and the call
        return [slice(0, x.shape[1])]
    return parallel.parts(x[0], x.size)


def on_channels(function, x, *arrays):
    """function(*arrays) -> a tuple of per-channel arrays, over x's channels (axis 1) in parts when
    the batch is large: each channel's statistics are its own, so the parts run on the threads and
    their results are joined along the channels. (N, C, ...) arrays are cut on axis 1, per-channel
    vectors (C,) on axis 0, None stays None. An MLP's (N, C) batch stays whole while the BLAS has the
    threads, as an elementwise pass does (:func:`deepgrad.parallel.splits_elementwise`): cutting it
    would claim them for the pool, and the MLP's products would run slower split by deepgrad (three
    512-wide layers with batch norm, batch 512, on two threads: 18.1 ms a step, 16.0 kept whole)."""
    # one part: the call alone (mlp-bn's 100×100 layers: 0.99 of its step)
    if x.size < 2 * parallel.MIN_WORK or (x.ndim == 2 and threads.products_by_blas()):
        return function(*arrays)
    slices = channel_parts(x)
    if len(slices) == 1:
        return function(*arrays)
    part_results = parallel.map_parts(
        lambda part: function(*(None if a is None else a[part] if a.ndim == 1 else a[:, part] for a in arrays)),
        slices,
    )
    return tuple(np.concatenate(arrays, axis=1 if arrays[0].ndim > 1 else 0) for arrays in zip(*part_results))


class _Normalization(Function):
    """What the batch and the per-sample normalizations share: the statistics over ``axes`` (n values
    each) and dx for a scale constant along those axes."""

    def standardize(self, x, axes, sample_shape):
        """Keep c = x − μ, 1/σ̂ and 1/n over ``axes`` for the backward; return μ and σ² (biased),
        keeping those axes. ``sample_shape``: see :func:`sample_shape_for_batch_norm`."""
        self.sample_shape = sample_shape
        self.centered = np.empty_like(x)
        mean, var, self.inv_std = standardize_into(x, axes, self.eps, sample_shape, self.centered)
        self.inv_count = mean.size / x.size
        return mean, var

    def input_grad(self, grad, scale, sum_grad, sum_grad_centered):
        """dx (:func:`input_grad_into`) of the kept statistics."""
        return input_grad_into(
            grad,
            self.centered,
            scale,
            self.inv_std,
            self.inv_count,
            sum_grad,
            sum_grad_centered,
            self.sample_shape,
            np.empty_like(grad),
        )


class BatchNorm(_Normalization):
    """Batch normalization with the batch's own statistics: per channel (axis 1), over every other axis
    (n values per channel); γ and β per channel, both given or neither:

        c = x − μ,  σ̂ = √(σ² + ε),  out = c·(γ/σ̂) + β
        dβ = Σ g,  dγ = Σ g·c / σ̂,  dx = (γ/σ̂)·(g − dβ/n − c·Σ(g·c)/(n·σ̂²))

    By NumPy's passes over whole arrays: five forward and six backward, x̂ itself never written out.
    A batch of 3+ axes (images, sequences) goes through the compiled kernels where numba is installed
    (:mod:`deepgrad.kernels.batch_norm`): the same passes one channel at a time, each channel's
    values read from memory once and then from the cache, and x kept for the backward instead of c.
    Each channel's statistics are its own, so a large batch's channels are split over the threads,
    each part making every pass over its channels (one handoff a direction). Given running arrays, the
    forward updates them in place as PyTorch does, with the unbiased variance:
    running_mean = (1 − m)·running_mean + m·μ,  running_var = (1 − m)·running_var + m·σ²·n/(n − 1).

    With ``relu``, it is batch norm and the ReLU after it as one op, out = max(c·(γ/σ̂) + β, 0) and g
    replaced by the ReLU's gradient g·[out ≠ 0]: the kernels make the ReLU in their own loops (its
    passes over memory go: a conv net's step, 0.93 of its time), NumPy's passes call the ReLU's op.
    """

    def __init__(self, eps, running_mean=None, running_var=None, momentum=0.1, relu=False):
        self.eps, self.running_mean, self.running_var, self.momentum = eps, running_mean, running_var, momentum
        self.relu = ReLU() if relu else None  # keeps the output, for its gradient

    @property
    def name(self) -> str:
        """As graphs and error messages call it: "batchnorm", or "batchnorm+relu" fused."""
        return "batchnorm" if self.relu is None else "batchnorm+relu"

    def forward(self, x, weight=None, bias=None):
        self.weight = weight
        self.kernels = batch_norm_kernels(x)
        if self.kernels is None:
            out, mean, var = self._forward_by_passes(x, weight, bias)
            if self.relu is not None:
                out = self.relu.forward(out)
        else:
            out, mean, var = self._forward_by_channels(x, weight, bias)
        if self.running_mean is not None:
            self._update_running_statistics(mean, var, count=x.size // x.shape[1])
        return out

    def _forward_by_passes(self, x, weight, bias):
        """out, μ and σ² by NumPy's passes over whole arrays, the channels split over the threads."""
        self.axes = (0,) + tuple(range(2, x.ndim))
        self.centered, out = np.empty_like(x), np.empty_like(x)
        self.inv_count = x.shape[1] / x.size
        mean, var, self.inv_std, self.scale = on_channels(self._normalize, x, x, self.centered, out, weight, bias)
        return out, mean, var

    def _normalize(self, x, centered, out, weight, bias):
        """c and out of some channels, and their μ, σ², 1/σ̂ and γ/σ̂ (keeping the axes)."""
        sample_shape = sample_shape_for_batch_norm(x)
        mean, var, inv_std = standardize_into(x, self.axes, self.eps, sample_shape, centered)
        scale = inv_std if weight is None else inv_std * weight.reshape(var.shape)
        np.multiply(centered, spread(scale, sample_shape), out=out)
        if bias is not None:
            out += spread(bias.reshape(var.shape), sample_shape)
        return mean, var, inv_std, scale

    def _forward_by_channels(self, x, weight, bias):
        """out, μ and σ² by the compiled kernel (:mod:`deepgrad.kernels.batch_norm`), channel by
        channel, the channels split over the threads; keeps x itself for the backward, not c."""
        n, channels = x.shape[:2]
        self.x = x.reshape(n, channels, -1)
        self.gamma = np.ones(channels, x.dtype) if weight is None else weight
        beta = np.zeros(channels, x.dtype) if bias is None else bias
        out = np.empty_like(self.x)
        mean, var, self.inv_std = (np.empty(channels, x.dtype) for _ in range(3))
        relu = self.relu is not None
        parallel.map_parts(
            lambda part: self.kernels.forward(
                self.x, self.gamma, beta, self.eps, relu, out, mean, var, self.inv_std, part.start, part.stop
            ),
            channel_parts(x),
        )
        self.mean = mean
        if relu:
            self.relu.out = out
        return out.reshape(x.shape), mean, var

    def _update_running_statistics(self, mean, var, count):
        momentum, channels = self.momentum, mean.size
        self.running_mean *= 1 - momentum
        self.running_mean += momentum * mean.reshape(channels)
        self.running_var *= 1 - momentum
        self.running_var += (momentum * count / (count - 1)) * var.reshape(channels)

    def backward(self, grad):
        weight, needs = self.weight, self.needs_input_grad
        if self.kernels is None:
            if self.relu is not None:
                (grad,) = self.relu.backward(grad)
            dx = np.empty_like(grad) if needs[0] else None
            sums = on_channels(self._gradients, grad, grad, self.centered, self.scale, self.inv_std, dx)
        else:
            dx, sums = self._gradients_by_channels(grad, needs[0])
        if weight is None:
            return (dx,)
        dbias, grad_dot_centered = sums
        dweight = grad_dot_centered * self.inv_std.reshape(grad_dot_centered.shape)
        return (
            dx,
            _with_shape(dweight, weight.shape) if needs[1] else None,
            _with_shape(dbias, weight.shape) if needs[2] else None,
        )

    def _gradients(self, grad, centered, scale, inv_std, dx):
        """dx of some channels (unless None), and their Σ g and Σ g·c."""
        sum_grad, sum_grad_centered = sum_over(self.axes, grad), sum_over(self.axes, grad, centered)
        if dx is not None:
            sums = sum_grad.reshape(inv_std.shape), sum_grad_centered.reshape(inv_std.shape)
            shape = sample_shape_for_batch_norm(grad)
            input_grad_into(grad, centered, scale, inv_std, self.inv_count, *sums, shape, dx)
        return sum_grad, sum_grad_centered

    def _gradients_by_channels(self, grad, with_dx):
        """dx (None unless ``with_dx``) and (Σ g, Σ g·c) by the compiled kernel, as the forward's."""
        channels = grad.shape[1]
        flat_grad = grad.reshape(self.x.shape)
        dx = np.empty_like(flat_grad) if with_dx else np.empty_like(flat_grad, shape=(0, 0, 0))
        sum_grad, sum_grad_centered = np.empty(channels, grad.dtype), np.empty(channels, grad.dtype)
        relu_out = self.relu.out if self.relu is not None else np.empty_like(flat_grad, shape=(0, 0, 0))
        parallel.map_parts(
            lambda part: self.kernels.backward(
                flat_grad,
                self.x,
                self.mean,
                self.inv_std,
                self.gamma,
                relu_out,
                dx,
                sum_grad,
                sum_grad_centered,
                part.start,
                part.stop,
            ),
            channel_parts(grad),
        )
        return (dx.reshape(grad.shape) if with_dx else None), (sum_grad, sum_grad_centered)


class LayerNorm(_Normalization):
    """Normalization of each sample over its trailing ``axes`` (layer norm; group norm normalizes
    (N, G, C/G·H·W) over its last axis), with γ and β of the normalized shape, both given or neither:

        x̂ = (x − μ)/σ̂,  out = x̂·γ + β
        dβ = Σ g,  dγ = Σ g·x̂  (over the other axes),  dx = (dx̂ − mean dx̂ − x̂·mean(dx̂·x̂))/σ̂,  dx̂ = g·γ

    Without γ, dx takes batch norm's form with γ = 1 (:meth:`_Normalization.input_grad`).
    """

    def __init__(self, axes, eps):
        self.axes, self.eps = axes, eps

    def forward(self, x, weight=None, bias=None):
        self.standardize(x, self.axes, None)
        self.weight = weight
        out = self.centered * self.inv_std
        if weight is not None:
            out *= weight
            out += bias
        return out

    def backward(self, grad):
        axes, weight = self.axes, self.weight
        if weight is None:
            return (
                self.input_grad(
                    grad,
                    self.inv_std,
                    sum_over(axes, grad, keepdims=True),
                    sum_over(axes, grad, self.centered, keepdims=True),
                ),
            )
        needs = self.needs_input_grad
        sample_axes = tuple(range(grad.ndim - len(axes)))
        x_hat = self.centered * self.inv_std
        dx = None
        if needs[0]:
            d_hat = grad * weight
            dx = d_hat - sum_over(axes, d_hat, keepdims=True) * self.inv_count
            dx -= x_hat * (sum_over(axes, d_hat, x_hat, keepdims=True) * self.inv_count)
            dx *= self.inv_std
        return (
            dx,
            sum_over(sample_axes, grad, x_hat) if needs[1] else None,
            sum_over(sample_axes, grad) if needs[2] else None,
        )


class FrozenBatchNorm(Function):
    """Batch normalization with fixed statistics (evaluation), one affine map per channel:
    out = x·a + b,  a = γ/√(var + ε),  b = β − mean·a;
    dx = g·a,  dγ = Σ g·(x − mean)/√(var + ε),  dβ = Σ g  (sums over every axis but the channel's)

    γ and β are optional (``has_weight``, ``has_bias`` tell which are among the inputs); the
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
        sample_shape = sample_shape_for_batch_norm(x)
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
            grads.append(
                sum_over(sum_axes, self.x - self.mean, grad) * self.inv_std.reshape(channels) if needs[1] else None
            )
        if self.has_bias:
            grads.append(sum_over(sum_axes, grad) if needs[-1] else None)
        return tuple(grads)


# ----------------------------------------------------------------------------
# Public functions


def _normalize(
    fn: Function, input: Tensor, weight: Tensor | None, bias: Tensor | None, param_shape: Sequence[int]
) -> Tensor:
    """The normalization ``fn`` of ``input``, with γ and β fused into it when both are given, else
    γ·x̂ + β after it as separate ops (γ and β reshaped to ``param_shape``, either may be None)."""
    if weight is not None and bias is not None:
        return fn(input, weight, bias)
    return _scale_shift(fn(input), weight, bias, param_shape)


def _scale_shift(x: Tensor, weight: Tensor | None, bias: Tensor | None, param_shape: Sequence[int]) -> Tensor:
    """γ·x + β with γ and β reshaped to ``param_shape``; either may be None."""
    if weight is not None:
        x = x * weight.reshape(param_shape)
    return x if bias is None else x + bias.reshape(param_shape)


def batch_norm(
    input: Tensor,
    running_mean: Array | None,
    running_var: Array | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    fuse_relu: bool = False,
    check: bool = True,
) -> Tensor:
    """Batch normalization over all axes but the channel axis 1.

    Training: normalize with the batch's biased variance and update the running
    arrays in place: running = (1 − momentum)·running + momentum·batch, with the
    unbiased variance (PyTorch's convention). Evaluation: use the running arrays.
    Without running arrays, the batch's statistics serve in both.

    ``fuse_relu=True`` gives ``relu(batch_norm(...))``, bit for bit, as one op in
    training (with the compiled kernels, the ReLU costs no pass of its own):
    :class:`deepgrad.nn.Sequential` calls it for a batch norm layer followed by a
    ReLU layer.

    ``check=False`` skips the checks of the input's layout and of the per-channel
    arrays' shapes, for a caller that made sure of them (a BatchNorm layer checks
    its input; its own arrays fit by construction).
    """
    op = "batch_norm"
    if check:
        if input.ndim < 2:
            raise ValueError(f"{op}: expected input of shape (N, C, ...), got {tuple(input.shape)}")
        per_channel = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
        for name, array in per_channel.items():
            check_shape(op, name, array, input.shape[1:2], input)
    channels = input.shape[1]
    param_shape = (1, channels) + (1,) * (input.ndim - 2)
    eps, momentum = hyperparameter(eps), hyperparameter(momentum)
    if training or running_mean is None:
        if input.size // channels <= 1:
            raise ValueError(
                f"{op}: expected more than 1 value per channel when training, got input of shape {tuple(input.shape)}"
            )
        # γ and β go into the op both or neither (_normalize); one alone is an op after it, and the ReLU after that
        inside = fuse_relu and (weight is None) == (bias is None)
        fn = BatchNorm(eps, running_mean, running_var, momentum, inside) if training else BatchNorm(eps, relu=inside)
        out = _normalize(fn, input, weight, bias, param_shape)
        return relu(out) if fuse_relu and not inside else out
    affine = [t for t in (weight, bias) if t is not None]
    frozen = FrozenBatchNorm(running_mean, running_var, eps, param_shape, weight is not None, bias is not None)
    out = frozen(input, *affine)
    return relu(out) if fuse_relu else out


def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize over the last len(normalized_shape) axes of each sample; γ, β elementwise."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(input.shape[input.ndim - k :]) != normalized_shape or input.ndim < k:
        raise ValueError(f"layer_norm: expected input with trailing shape {normalized_shape}, got {tuple(input.shape)}")
    check_shape("layer_norm", "weight", weight, normalized_shape, input)
    check_shape("layer_norm", "bias", bias, normalized_shape, input)
    fn = LayerNorm(tuple(range(input.ndim - k, input.ndim)), hyperparameter(eps))
    return _normalize(fn, input, weight, bias, normalized_shape)


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    *,
    check: bool = True,
) -> Tensor:
    """Normalize each sample's channels in ``num_groups`` groups; γ, β per channel.

    ``check=False`` skips the checks of the input's layout, of its channels splitting into the groups
    and of γ's and β's shapes, for a caller that made sure of them (a GroupNorm layer checks its
    input; its own γ, β and groups fit by construction).
    """
    op = "group_norm"
    if check:
        if input.ndim < 2:
            raise ValueError(f"{op}: expected input of shape (N, C, ...), got {tuple(input.shape)}")
        c = input.shape[1]
        if c % num_groups:
            raise ValueError(
                f"{op}: input of shape {tuple(input.shape)} has {c} channels, which do not split into "
                f"{num_groups} groups"
            )
        check_shape(op, "weight", weight, (c,), input)
        check_shape(op, "bias", bias, (c,), input)
    n, c = input.shape[:2]
    out = LayerNorm((2,), hyperparameter(eps))(input.reshape(n, num_groups, -1)).reshape(input.shape)
    return _scale_shift(out, weight, bias, (1, c) + (1,) * (input.ndim - 2))
