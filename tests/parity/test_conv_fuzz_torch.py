"""Convolutions and pooling against PyTorch in float64 over drawn configurations, on every path.

A convolution takes one of several paths by its shape (the taps over the padded input, their
kernel rows stacked or not, in chunks of samples or whole; copied windows; depthwise taps; a
strided input gradient phase by phase or by col2im; groups through broadcast GEMMs), and the
parity suite's thresholds pick them. Here hypothesis draws the configuration (channels, groups,
kernel, stride, padding, dilation, input size, batch) and the thresholds that pick the paths,
and the output and every gradient must equal PyTorch's to float64's last digits. The conftest
runs each on one thread and on two with every op split.
"""

import numpy as np
import pytest
from helpers import rng
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import deepgrad as dg
import deepgrad.functional as F
from deepgrad import kernels
from deepgrad.ops import conv as conv_op

torch = pytest.importorskip("torch")
tF = torch.nn.functional

from twins import run_both  # noqa: E402 (needs torch)

FUZZ = settings(max_examples=60, deadline=None)
RTOL, ATOL = 1e-10, 1e-12

# Each threshold at a value that forces its path one way or the other, or at its default.
PATHS = st.fixed_dictionaries(
    {
        "TAP_MIN_CHANNELS": st.sampled_from([1, 1, conv_op.TAP_MIN_CHANNELS, 10**6]),
        "STACKED_MAX_DEPTH": st.sampled_from([0, conv_op.STACKED_MAX_DEPTH, 10**6]),
        "PHASES_MIN_ELEMENTS": st.sampled_from([0, 0, conv_op.PHASES_MIN_ELEMENTS]),
        "TAP_CHUNK_BYTES": st.sampled_from([1, conv_op.TAP_CHUNK_BYTES]),  # 1: a chunk a sample
        "ENABLED": st.booleans(),  # deepgrad.kernels' (a depthwise convolution's, where numba is installed)
    }
)


def pairs(low, high):
    return st.tuples(st.integers(low, high), st.integers(low, high))


# Mostly 1 (the taps' paths and the depthwise one are there), then square and mixed.
STRIDES = st.sampled_from([(1, 1)] * 4 + [(2, 2), (2, 2), (1, 2), (2, 1), (3, 3), (3, 2)])
DILATIONS = st.sampled_from([(1, 1)] * 4 + [(2, 2), (1, 2), (2, 1), (3, 1)])


@st.composite
def conv_configs(draw):
    """A valid conv2d: (input shape, weight shape, bias, stride, padding, dilation, groups)."""
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    depthwise = groups > 1 and draw(st.booleans())
    per_group_in = 1 if depthwise else draw(st.integers(1, 6))
    per_group_out = 1 if depthwise and draw(st.booleans()) else draw(st.integers(1, 4))
    kernel, stride, dilation = draw(pairs(1, 4)), draw(STRIDES), draw(DILATIONS)
    padding = draw(pairs(0, 3))
    reach = [d * (k - 1) + 1 - 2 * p for k, d, p in zip(kernel, dilation, padding)]  # the least input size
    height, width = (draw(st.integers(max(1, r), max(1, r) + 6)) for r in reach)
    batch = draw(st.integers(1, 4))
    channels = groups * per_group_in
    weight = (groups * per_group_out, per_group_in) + kernel
    return (batch, channels, height, width), weight, draw(st.booleans()), stride, padding, dilation, groups


VIEWS = st.tuples(st.booleans(), st.booleans())


@FUZZ
@given(config=conv_configs(), paths=PATHS, seed=st.integers(0, 2**16), views=VIEWS)
def test_conv2d_on_every_path(config, paths, seed, views):
    x_shape, w_shape, with_bias, stride, padding, dilation, groups = config
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    check_on_paths(
        lambda x, w, b: F.conv2d(x, w, b, **options),
        lambda x, w, b: tF.conv2d(x, w, b, **options),
        (x_shape, w_shape, w_shape[:1] if with_bias else None),
        paths,
        seed,
        views,
    )


def check_on_paths(ours, theirs, shapes, paths, seed, views):
    """:func:`run_both` on random (input, weight, bias) of ``shapes`` (the bias's may be None), the
    convolution's thresholds and whether compiled kernels serve set to ``paths``."""
    r = rng(seed)
    arrays = [None if shape is None else r.standard_normal(shape) for shape in shapes]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in paths.items():
            patch.setattr(kernels if name == "ENABLED" else conv_op, name, value)
        run_both(ours, theirs, arrays, seed, views)


@st.composite
def conv_transpose_configs(draw):
    """A valid conv_transpose2d: (input shape, weight shape, bias, stride, padding, output_padding, groups,
    dilation)."""
    groups = draw(st.sampled_from([1, 1, 2]))
    per_group_in, per_group_out = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    kernel, stride, dilation = draw(pairs(1, 4)), draw(STRIDES), draw(DILATIONS)
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    height, width = draw(pairs(1, 6))
    # PyTorch's output size must be at least 1: padding at most what the kernel and stride reach.
    padding = tuple(
        draw(st.integers(0, max(0, ((n - 1) * s + d * (k - 1) + e) // 2)))
        for n, s, d, k, e in zip((height, width), stride, dilation, kernel, output_padding)
    )
    batch = draw(st.integers(1, 3))
    weight = (groups * per_group_in, per_group_out) + kernel
    shape = (batch, groups * per_group_in, height, width)
    return shape, weight, draw(st.booleans()), stride, padding, output_padding, groups, dilation


@FUZZ
@given(config=conv_transpose_configs(), paths=PATHS, seed=st.integers(0, 2**16), views=VIEWS)
def test_conv_transpose2d_on_every_path(config, paths, seed, views):
    x_shape, w_shape, with_bias, stride, padding, output_padding, groups, dilation = config
    options = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    check_on_paths(
        lambda x, w, b: F.conv_transpose2d(x, w, b, **options),
        lambda x, w, b: tF.conv_transpose2d(x, w, b, **options),
        (x_shape, w_shape, (w_shape[1] * groups,) if with_bias else None),
        paths,
        seed,
        views,
    )


def every_window_sees_the_input(size, kernel, stride, padding, dilation, ceil_mode):
    """Whether each window along an axis has an element inside the input. A dilated window can fall
    between the input's edge and the padding's: PyTorch's max pooling then routes its gradient
    outside the plane (into the next channel's first element, or past the tensor's end), so such
    windows have no reference to compare with; deepgrad gives them no gradient."""
    count = conv_op.output_size(size, kernel, stride, padding, dilation, ceil_mode)
    return all(any(0 <= i * stride - padding + j * dilation < size for j in range(kernel)) for i in range(count))


@st.composite
def pool_configs(draw, dilated=True):
    """A valid pooling: (input shape, kernel, stride, padding, dilation, ceil_mode); padding at most half
    the kernel, as PyTorch requires, and every window seeing the input."""
    kernel, stride = draw(pairs(1, 4)), draw(pairs(1, 3))
    dilation = draw(pairs(1, 2)) if dilated else (1, 1)
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    reach = [d * (k - 1) + 1 - 2 * p for k, d, p in zip(kernel, dilation, padding)]
    height, width = (draw(st.integers(max(1, r), max(1, r) + 6)) for r in reach)
    ceil_mode = draw(st.booleans())
    for axis, size in enumerate((height, width)):
        sizes = (kernel[axis], stride[axis], padding[axis], dilation[axis])
        assume(every_window_sees_the_input(size, *sizes, ceil_mode))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), height, width)
    return shape, kernel, stride, padding, dilation, ceil_mode


@FUZZ
@given(config=pool_configs(), seed=st.integers(0, 2**16), ties=st.booleans(), views=VIEWS, compiled=st.booleans())
def test_max_pool2d_with_its_indices(config, seed, ties, views, compiled):
    """On NumPy's passes and on deepgrad.kernels' (``compiled``, where numba is installed)."""
    shape, kernel, stride, padding, dilation, ceil_mode = config
    x = rng(seed).standard_normal(shape)
    if ties:  # few distinct values: windows with tied maxima
        x = np.round(x)
    options = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "ENABLED", compiled)
        run_both(
            lambda t: F.max_pool2d(t, kernel, **options),
            lambda t: tF.max_pool2d(t, kernel, **options),
            [x],
            seed,
            views,
        )
        ours = F.max_pool2d(dg.tensor(x), kernel, return_indices=True, **options)[1]
    theirs = tF.max_pool2d(torch.tensor(x), kernel, return_indices=True, **options)[1]
    if not ties:  # with ties PyTorch's index is its kernel's pick among equals (the gradient above is what binds)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@FUZZ
@given(
    config=pool_configs(dilated=False),
    seed=st.integers(0, 2**16),
    count_include_pad=st.booleans(),
    divisor_override=st.sampled_from([None, 1, 3]),
    views=VIEWS,
)
def test_avg_pool2d(config, seed, count_include_pad, divisor_override, views):
    shape, kernel, stride, padding, _, ceil_mode = config
    options = dict(
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        divisor_override=divisor_override,
    )
    run_both(
        lambda t: F.avg_pool2d(t, kernel, **options),
        lambda t: tF.avg_pool2d(t, kernel, **options),
        [rng(seed).standard_normal(shape)],
        seed,
        views,
    )


@pytest.mark.parametrize("relu_first", [False, True], ids=["", "relu-first"])
def test_a_dilated_window_without_an_input_element_gives_no_gradient(kernels_path, relu_first):
    """Padding (0, 1) and dilation 2 on a 1-wide input: the window reads the two padding columns only.
    Its maximum is -inf and its index the one PyTorch reports (outside the plane); its gradient goes
    nowhere, where PyTorch's kernel adds it to the element at that index past the plane: the next
    channel's (the reason the fuzzing above draws no such windows). The compiled kernels read nothing
    past the plane either."""
    x = np.array([0.5, -1.2]).reshape(1, 2, 1, 1)
    options = dict(stride=1, padding=(0, 1), dilation=(1, 2))
    ours = dg.tensor(x, requires_grad=True)
    out, indices = F.max_pool2d(ours, (1, 2), return_indices=True, relu_first=relu_first, **options)
    theirs_out, theirs_indices = tF.max_pool2d(torch.tensor(x), (1, 2), return_indices=True, **options)
    np.testing.assert_array_equal(out.numpy(), theirs_out.numpy())
    np.testing.assert_array_equal(indices.numpy(), theirs_indices.numpy())
    out.backward(dg.ones_like(out))
    np.testing.assert_array_equal(ours.grad, np.zeros_like(x))
    assert not every_window_sees_the_input(1, 2, 1, 1, 2, False)
