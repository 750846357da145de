"""Normalization layers: BatchNorm1d/2d, LayerNorm, GroupNorm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from .. import backend
from .. import functional as F
from ..backend import Array, DTypeLike
from ..tensor import Tensor
from .module import Module, Parameter


class _BatchNorm(Module):
    """Per-channel batch normalization with running statistics (PyTorch's conventions).

    Training uses the batch mean and biased variance and updates
    running = (1 − momentum)·running + momentum·batch (unbiased variance);
    eval uses the running statistics. ``momentum=None`` is the cumulative
    average over all batches seen. The seed notes' "momentum 0.9" is the
    fraction kept, i.e. ``momentum=0.1`` here.
    """

    expected_ndims: ClassVar[tuple[int, ...]] = ()
    weight: Parameter | None
    bias: Parameter | None
    running_mean: Array | None
    running_var: Array | None
    num_batches_tracked: Array | None

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: DTypeLike | None = None,
    ) -> None:
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

    def forward(self, x: Tensor, fuse_relu: bool = False) -> Tensor:
        """Batch norm of x; ``fuse_relu``: and the ReLU after it, as one op (F.batch_norm's
        ``fuse_relu``; :class:`deepgrad.nn.Sequential` asks for it where a ReLU layer follows)."""
        if x.ndim not in self.expected_ndims or x.shape[1] != self.num_features:
            layout = " or ".join(
                f"(N, {self.num_features}{', L' if n == 3 else ''}{', H, W' if n == 4 else ''})"
                for n in self.expected_ndims
            )
            raise ValueError(f"{self!r}: expected input of shape {layout}, got {tuple(x.shape)}")
        momentum = self.momentum
        if self.training and self.track_running_stats:
            tracked: Array = self.num_batches_tracked  # type: ignore[assignment]  # registered with the statistics
            np.add(tracked, 1, out=tracked)  # in place: the buffer stays registered
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(tracked)
        # The layer's own per-channel arrays fit by construction (load_state_dict checks shapes). A momentum
        # still None reaches the op only where it updates no running statistics (eval, or none tracked).
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            momentum,  # type: ignore[arg-type]  # None only where no running statistics are updated
            self.eps,
            fuse_relu=fuse_relu,
            check=False,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) input, per feature/channel C."""

    expected_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) input, per channel: statistics over N, H and W."""

    expected_ndims = (4,)


class LayerNorm(Module):
    """Normalize each sample over its last dims ``normalized_shape``; elementwise γ, β."""

    weight: Parameter | None
    bias: Parameter | None

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: DTypeLike | None = None,
    ) -> None:
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

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalize each sample's channels in groups; per-channel γ, β."""

    weight: Parameter | None
    bias: Parameter | None

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, dtype: DTypeLike | None = None
    ) -> None:
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

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_channels}, ...), got {tuple(x.shape)}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps, check=False)  # its γ, β fit

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
