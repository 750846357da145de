"""Normalization layers: BatchNorm1d/2d, LayerNorm, GroupNorm."""

import numpy as np

from .. import backend
from .. import functional as F
from .module import Module, Parameter


class _BatchNorm(Module):
    """Per-channel batch normalization with running statistics (PyTorch's conventions).

    Training uses the batch mean and biased variance and updates
    running = (1 − momentum)·running + momentum·batch (unbiased variance);
    eval uses the running statistics. ``momentum=None`` is the cumulative
    average over all batches seen. The seed notes' "momentum 0.9" is the
    fraction kept, i.e. ``momentum=0.1`` here.
    """

    expected_ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        super().__init__()
        dtype = dtype or backend.get_default_dtype()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x):
        if x.ndim not in self.expected_ndims or x.shape[1] != self.num_features:
            layout = " or ".join(f"(N, {self.num_features}{', L' if n == 3 else ''}{', H, W' if n == 4 else ''})"
                                 for n in self.expected_ndims)
            raise ValueError(f"{self!r}: expected input of shape {layout}, got {tuple(x.shape)}")
        momentum = self.momentum
        if self.training and self.track_running_stats:
            np.add(self.num_batches_tracked, 1, out=self.num_batches_tracked)  # in place: the buffer stays registered
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        # The layer's own per-channel arrays fit by construction (load_state_dict checks shapes).
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training, momentum,
                            self.eps, check=False)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) input, per feature/channel C."""

    expected_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) input, per channel: statistics over N, H and W."""

    expected_ndims = (4,)


class LayerNorm(Module):
    """Normalize each sample over its last dims ``normalized_shape``; elementwise γ, β."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None):
        super().__init__()
        dtype = dtype or backend.get_default_dtype()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape, dtype=dtype))
            self.register_parameter("bias", Parameter(np.zeros(shape, dtype=dtype)) if bias else None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalize each sample's channels in groups; per-channel γ, β."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels {num_channels} is not divisible by num_groups {num_groups}")
        dtype = dtype or backend.get_default_dtype()
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=dtype))
            self.bias = Parameter(np.zeros(num_channels, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_channels}, ...), got {tuple(x.shape)}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps, check=False)  # its γ, β fit

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
