"""Convolution and pooling layers (im2col underneath, see ``deepgrad.ops.conv``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import backend
from .. import functional as F
from ..backend import DTypeLike
from ..ops.arguments import int_pair
from ..ops.conv import check_groups
from ..tensor import Tensor
from .linear import WeightInit, init_weight_and_bias
from .module import Module, Parameter

IntPair = int | tuple[int, int]  # a size for both height and width, or (height, width)

# Conv2d's padding_mode: zeros, or the input padded with its own elements as F.pad's modes (PyTorch's).
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def check_channel_groups(layer: str, in_channels: int, out_channels: int, groups: int) -> None:
    """``groups`` must be a positive int dividing both channel counts (an error naming ``layer``)."""
    check_groups(groups, layer)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{layer}: in_channels {in_channels} and out_channels {out_channels} must both be divisible "
            f"by groups {groups}"
        )


class Conv2d(Module):
    """2-D convolution (cross-correlation) of (N, C_in, H, W) input; weight (C_out, C_in/groups, kh, kw)
    (see :func:`deepgrad.functional.conv2d` for ``groups``)."""

    bias: Parameter | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        init: WeightInit | None = None,
        dtype: DTypeLike | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        check_channel_groups("Conv2d", in_channels, out_channels, groups)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        dtype = dtype or backend.get_default_dtype()
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, int(groups)
        self.padding_mode = padding_mode
        self.kernel_size = int_pair(kernel_size, "kernel_size", "Conv2d")
        self.stride, self.padding = int_pair(stride, "stride", "Conv2d"), int_pair(padding, "padding", "Conv2d")
        self.dilation = int_pair(dilation, "dilation", "Conv2d")
        self.weight = Parameter(np.empty((out_channels, in_channels // groups) + self.kernel_size, dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dtype)) if bias else None)
        init_weight_and_bias(self.weight, self.bias, init, generator)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        # Checked here, and stride, padding, dilation are pairs already: conv2d need not check again.
        padding = self.padding
        if self.padding_mode != "zeros" and padding != (0, 0):  # x padded with its own elements first
            (ph, pw), padding = padding, (0, 0)
            x = F.pad(x, (pw, pw, ph, ph), mode=self.padding_mode)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups, check=False)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text + ("" if self.bias is not None else ", bias=False")


class ConvTranspose2d(Module):
    """2-D transposed convolution of (N, C_in, H, W) input, weight (C_in, C_out/groups, kh, kw): the
    adjoint of a Conv2d with these settings (see :func:`deepgrad.functional.conv_transpose2d`),
    initialized as PyTorch's."""

    bias: Parameter | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        output_padding: IntPair = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: IntPair = 1,
        padding_mode: str = "zeros",
        init: WeightInit | None = None,
        dtype: DTypeLike | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' exists (as in PyTorch), got {padding_mode!r}")
        check_channel_groups("ConvTranspose2d", in_channels, out_channels, groups)
        dtype = dtype or backend.get_default_dtype()
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, int(groups)
        self.kernel_size = int_pair(kernel_size, "kernel_size", "ConvTranspose2d")
        self.stride = int_pair(stride, "stride", "ConvTranspose2d")
        self.padding = int_pair(padding, "padding", "ConvTranspose2d")
        self.output_padding = int_pair(output_padding, "output_padding", "ConvTranspose2d")
        self.dilation = int_pair(dilation, "dilation", "ConvTranspose2d")
        self.weight = Parameter(np.empty((in_channels, out_channels // groups) + self.kernel_size, dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dtype)) if bias else None)
        init_weight_and_bias(self.weight, self.bias, init, generator)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return F.conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, value, default in [
            ("padding", self.padding, (0, 0)),
            ("output_padding", self.output_padding, (0, 0)),
            ("dilation", self.dilation, (1, 1)),
            ("groups", self.groups, 1),
        ]:
            if value != default:
                text += f", {name}={value}"
        return text + ("" if self.bias is not None else ", bias=False")


class MaxPool2d(Module):
    """The maximum of each window (:func:`deepgrad.functional.max_pool2d`); with ``return_indices``,
    also each maximum's flat index in its input plane, for :class:`MaxUnpool2d`."""

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x: Tensor, relu_first: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """The pooling of x, or of relu(x) as one op with ``relu_first`` (:func:`deepgrad.functional.max_pool2d`)."""
        return F.max_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
            relu_first=relu_first,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}" + (
            f", ceil_mode={self.ceil_mode}" if self.ceil_mode else ""
        )


class MaxUnpool2d(Module):
    """Values back at the places :class:`MaxPool2d` took them from, zeros elsewhere
    (:func:`deepgrad.functional.max_unpool2d`)."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor, indices: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AvgPool2d(Module):
    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        options = [f"ceil_mode={self.ceil_mode}"] if self.ceil_mode else []
        if not self.count_include_pad:
            options.append("count_include_pad=False")
        if self.divisor_override is not None:
            options.append(f"divisor_override={self.divisor_override}")
        return ", ".join(
            [f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"]
            + options
        )


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size: IntPair) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
