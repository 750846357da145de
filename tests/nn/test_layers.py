"""The layers' gradients against central differences, in float64.

``dg.gradcheck`` compares the full Jacobian with respect to every input; the
step and tolerances here are tighter than its defaults (float64 central
differences with ε = 1e-6 are good to ~1e-9). Modules are checked with respect
to their parameters by binding gradcheck's float64 copies in their place
(:func:`check_module`).
"""

import numpy as np
import pytest
from helpers import away_from_zero, distinct, positive, randn

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn as nn
from deepgrad.ops import conv as conv_op

TIGHT = dict(eps=1e-6, atol=1e-8, rtol=1e-6)


def gradcheck(fn, *arrays):
    """``dg.gradcheck`` (tight tolerances) on float64 tensors made from ``arrays``, all requiring grad."""
    inputs = [dg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    assert dg.gradcheck(fn, inputs, **TIGHT) is True


def check_module(module, x, names=None, seed=1):
    """Gradcheck ``module(x)`` with respect to x and the parameters ``names`` (all by default).

    gradcheck perturbs its own float64 copies of the inputs, so the function
    it calls binds those copies where forward reads the parameters (the
    owner's instance attributes) before calling the module.
    """
    module.double()
    params = dict(module.named_parameters())
    names = list(params) if names is None else names
    owners = dict(module.named_modules())
    bindings = [(owners[name.rpartition(".")[0]], name.rpartition(".")[2]) for name in names]

    def fn(x, *tensors):
        for (owner, attribute), tensor in zip(bindings, tensors):
            owner.__dict__[attribute] = tensor
        return module(x)

    # parameters keep their (possibly trivial) initial values perturbed a little, so γ ≠ 1 and β ≠ 0
    values = [params[name].data + 0.3 * randn(seed + i, params[name].shape) for i, name in enumerate(names)]
    with dg.no_grad():  # the binding works: every bound tensor changes the output
        bound = [dg.tensor(v) for v in values]
        reference = fn(dg.tensor(x), *bound).data.copy()
        for name, tensor in zip(names, bound):
            tensor.data += 0.1
            assert not np.allclose(fn(dg.tensor(x), *bound).data, reference), f"{name} is not used"
            tensor.data -= 0.1
    gradcheck(fn, x, *values)


# ----------------------------------------------------------------------------
# Linear


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (4,)], ids=["2d", "3d", "1d"])
def test_linear(shape):
    gradcheck(F.linear, randn(0, shape), randn(1, (2, 4)), randn(2, (2,)))
    gradcheck(F.linear, randn(3, shape), randn(4, (2, 4)))


def test_linear_module():
    check_module(nn.Linear(3, 2), randn(0, (4, 3)))
    check_module(nn.Linear(3, 2, bias=False), randn(1, (2, 2, 3)))


@pytest.mark.parametrize("shape", [(4, 3), (2, 2, 3), (3,)], ids=["2d", "3d", "1d"])
def test_linear_keeps_its_weight_and_its_gradient_column_major(shape):
    """The weight is stored column-major (its forward then multiplies two row-major matrices) through
    a dtype change; its gradient comes column-major too, and both agree with a row-major weight's."""
    layer = nn.Linear(3, 2).double()
    assert layer.weight.data.flags.f_contiguous and not layer.weight.data.flags.c_contiguous
    x = dg.tensor(randn(0, shape), requires_grad=True)
    upstream = dg.tensor(randn(1, shape[:-1] + (2,)))
    layer(x).backward(upstream)
    assert layer.weight.grad.flags.f_contiguous and not layer.weight.grad.flags.c_contiguous
    row_major = dg.tensor(np.ascontiguousarray(layer.weight.data), requires_grad=True)
    x_again = dg.tensor(x.data, requires_grad=True)
    out = F.linear(x_again, row_major, layer.bias)
    out.backward(upstream)
    np.testing.assert_allclose(layer(x).data, out.data, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(layer.weight.grad, row_major.grad, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(x.grad, x_again.grad, rtol=1e-14, atol=1e-15)
    assert row_major.grad.flags.c_contiguous
    # gradcheck through the layer's own column-major weight
    assert dg.gradcheck(F.linear, [dg.tensor(x.data, requires_grad=True), layer.weight, layer.bias], **TIGHT)


# ----------------------------------------------------------------------------
# Convolution


CONV_CASES = [
    dict(),
    dict(stride=2),
    dict(padding=1),
    dict(stride=2, padding=1),
    dict(dilation=2),
    dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
    dict(padding=(2, 0), dilation=(1, 2)),  # stride 1: dx by correlation with the flipped kernel
    dict(padding=3),  # stride 1, padding wider than the kernel: dx correlates a cropped g
    dict(stride=(1, 2), padding=(0, 1)),
    dict(stride=3),  # strides wider than the 2-wide and 1-wide kernels: input elements no window reads
]


@pytest.mark.parametrize("kwargs", CONV_CASES, ids=lambda k: "-".join(f"{a}{b}" for a, b in k.items()) or "plain")
@pytest.mark.parametrize("kernel", [(3, 3), (2, 3), (1, 1)], ids=["3x3", "2x3", "1x1"])
def test_conv2d(kernel, kwargs, conv_path):
    x, w, b = randn(0, (2, 2, 5, 6)), randn(1, (3, 2) + kernel), randn(2, (3,))
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kwargs), x, w, b)


@pytest.mark.parametrize(
    "channels, groups, kwargs",
    [((4, 2), 2, {}), ((3, 6), 3, dict(stride=2, padding=1)), ((4, 4), 4, dict(padding=1, dilation=(1, 2)))],
    ids=["2-groups", "depthwise-multiplier-strided", "depthwise-dilated"],
)
def test_conv2d_groups(channels, groups, kwargs):
    (c, o) = channels
    x, w, b = randn(0, (2, c, 5, 6)), randn(1, (o, c // groups, 3, 2)), randn(2, (o,))
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, groups=groups, **kwargs), x, w, b)


@pytest.mark.parametrize(
    "kwargs, filters",
    [
        (dict(padding=1), 1),
        (dict(padding=(0, 2), dilation=(2, 1)), 1),
        (dict(stride=2, padding=1), 1),
        (dict(stride=(1, 2), padding=1), 2),
        (dict(padding=1), 3),
    ],
    ids=["padded", "dilated", "strided", "strided-2-filters", "3-filters"],
)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
def test_depthwise_conv2d(kwargs, filters, with_bias, kernels_path):
    """groups = C: DepthwiseConv2d, by the compiled kernels (any stride, any filters a channel) or by
    NumPy's passes (stride 1, a filter a channel; the rest through the columns' GEMMs)."""
    x, w, b = randn(0, (3, 4, 6, 5)), randn(1, (4 * filters, 1, 3, 3)), randn(2, (4 * filters,))
    out = F.conv2d(dg.tensor(x, requires_grad=True), dg.tensor(w), groups=4, **kwargs)
    by_numpy = filters == 1 and kwargs.get("stride", 1) == 1
    assert isinstance(out.grad_fn, conv_op.DepthwiseConv2d) is (kernels_path == "kernels" or by_numpy)
    if isinstance(out.grad_fn, conv_op.DepthwiseConv2d):
        assert (out.grad_fn.kernels is not None) is (kernels_path == "kernels")
    if with_bias:
        gradcheck(lambda x, w, b: F.conv2d(x, w, b, groups=4, **kwargs), x, w, b)
    else:
        gradcheck(lambda x, w: F.conv2d(x, w, groups=4, **kwargs), x, w)


@pytest.mark.parametrize(
    "kwargs",
    [{}, dict(stride=2, padding=1, output_padding=1), dict(stride=(1, 2), dilation=2, groups=2)],
    ids=["plain", "strided", "dilated-groups"],
)
def test_conv_transpose2d(kwargs, conv_path):
    """2 input channels to 4 output channels (weight (2, 4/groups, 3, 2))."""
    x, w, b = randn(0, (2, 2, 3, 4)), randn(1, (2, 4 // kwargs.get("groups", 1), 3, 2)), randn(2, (4,))
    gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **kwargs), x, w, b)


def test_conv2d_without_bias(conv_path):
    gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), randn(0, (1, 3, 5, 4)), randn(1, (2, 3, 3, 2)))


def test_correlation_into_a_strided_view_needs_taps():
    """The window copy's GEMM writes its output whole; only the taps write a strided view (a phase
    of a strided convolution's input gradient)."""
    from deepgrad.ops import conv

    x, matrix, view = np.zeros((2, 3, 5, 5)), np.zeros((4, 27)), np.zeros((2, 4, 5, 10))[..., ::2]
    with pytest.raises(ValueError, match="a strided output view needs taps"):
        conv.correlate(x, matrix, (3, 3), (1, 1), (5, 5), (1, 1), into=view)


def test_conv2d_of_an_empty_batch(conv_path):
    conv = nn.Conv2d(16, 8, 3, padding=1)
    x = dg.randn(0, 16, 6, 6, requires_grad=True)
    out = conv(x)
    assert out.shape == (0, 8, 6, 6)
    out.sum().backward()
    assert x.grad.shape == x.shape
    assert not conv.weight.grad.any() and not conv.bias.grad.any()


def test_conv2d_module(conv_path):
    check_module(nn.Conv2d(2, 3, (3, 2), stride=(1, 2), padding=1), randn(0, (2, 2, 4, 4)))


# ----------------------------------------------------------------------------
def test_add_relu(kernels_path):
    """Sums away from ReLU's kink: |a| ≥ 0.5 and |b| < 0.5."""
    gradcheck(F.add_relu, away_from_zero(0, (2, 3, 4)), away_from_zero(1, (2, 3, 4)) / 5)


# Pooling (max pooling on inputs without ties, so its derivative exists)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)),
        dict(kernel_size=2, stride=1, dilation=2),
        dict(kernel_size=3, stride=1, padding=1),
        dict(kernel_size=2, ceil_mode=True),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        dict(kernel_size=2, stride=2, dilation=2, ceil_mode=True),
    ],
    ids=["k2", "k3-s2-p1", "non-square", "dilated", "overlapping", "ceil", "ceil-k3-s2-p1", "ceil-dilated"],
)
@pytest.mark.parametrize("relu_first", [False, True], ids=["", "relu-first"])
def test_max_pool2d(kwargs, relu_first, kernels_path):
    """With ``relu_first``: windows all below zero have relu(x) tied at 0, and a gradient of 0 however
    the tie is broken."""
    gradcheck(lambda x: F.max_pool2d(x, **kwargs, relu_first=relu_first), distinct(0, (2, 2, 5, 6)))


@pytest.mark.parametrize(
    "kwargs", [dict(kernel_size=2), dict(kernel_size=(2, 3), stride=(2, 3))], ids=["k2", "non-square"]
)
def test_max_unpool2d(kwargs):
    """The gradient of each value is the gradient at its index. (Where overlapping windows picked one
    element twice, the later value lands there and, as in PyTorch, both get that place's gradient: not
    a derivative gradcheck can confirm, so the parity tests check that case.)"""
    _, indices = F.max_pool2d(dg.tensor(distinct(1, (2, 2, 5, 6))), **kwargs, return_indices=True)
    pooled = randn(0, indices.shape)
    gradcheck(lambda x: F.max_unpool2d(x, indices, **kwargs, output_size=(5, 6)), pooled)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)),
        dict(kernel_size=3, stride=1),
        dict(kernel_size=2, ceil_mode=True),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
        dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        dict(kernel_size=2, divisor_override=3),
    ],
    ids=[
        "k2",
        "k3-s2-p1",
        "non-square",
        "overlapping",
        "ceil",
        "ceil-p1",
        "pad-uncounted",
        "ceil-uncounted",
        "divisor",
    ],
)
def test_avg_pool2d(kwargs):
    gradcheck(lambda x: F.avg_pool2d(x, **kwargs), randn(0, (2, 2, 5, 6)))


@pytest.mark.parametrize(
    "output_size, hw",
    [(1, (3, 5)), ((1, 1), (4, 4)), (2, (4, 6)), ((3, 2), (6, 4)), (2, (5, 4)), ((3, 4), (7, 5)), ((5, 4), (3, 3))],
)
def test_adaptive_avg_pool2d(output_size, hw):
    gradcheck(lambda x: F.adaptive_avg_pool2d(x, output_size), randn(0, (2, 2) + hw))


# ----------------------------------------------------------------------------
# Embedding


def test_embedding():
    """The plain lookup (a padding row's zero gradient and a gradient scaled by frequency are no
    derivatives: the parity tests check those)."""
    index = np.array([[0, 2, 2], [4, 0, 1]])
    gradcheck(lambda w: F.embedding(index, w), randn(0, (5, 3)))


# ----------------------------------------------------------------------------
# Normalization


# (4, 3, 2, 2) and (5, 2, 3): batches of 4 or more images/sequences, where the per-channel values
# are written out to one sample's shape before they meet x (batch norm's batch layout)
BN_SHAPES = [(5, 3), (3, 2, 4), (2, 3, 2, 3), (4, 3, 2, 2), (5, 2, 3)]
BN_IDS = ["2d", "3d", "4d", "4d-batch-layout", "3d-batch-layout"]


@pytest.mark.parametrize("shape", BN_SHAPES, ids=BN_IDS)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training(shape, affine, kernels_path):
    channels = shape[1]
    running_mean, running_var = np.zeros(channels), np.ones(channels)
    if affine:
        gradcheck(
            lambda x, w, b: F.batch_norm(x, running_mean, running_var, w, b, training=True),
            randn(0, shape) * 2 + 1,
            positive(1, (channels,)),
            randn(2, (channels,)),
        )
    else:
        gradcheck(lambda x: F.batch_norm(x, running_mean, running_var, training=True), randn(0, shape) * 2 + 1)


@pytest.mark.parametrize("shape", BN_SHAPES, ids=BN_IDS)
def test_batch_norm_without_running_stats(shape, kernels_path):
    gradcheck(lambda x: F.batch_norm(x, None, None, training=False), randn(0, shape))


@pytest.mark.parametrize("shape", BN_SHAPES, ids=BN_IDS)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_eval(shape, affine):
    channels = shape[1]
    running_mean, running_var = randn(3, (channels,)), positive(4, (channels,))
    if affine:
        gradcheck(
            lambda x, w, b: F.batch_norm(x, running_mean, running_var, w, b, training=False),
            randn(0, shape),
            positive(1, (channels,)),
            randn(2, (channels,)),
        )
    else:
        gradcheck(lambda x: F.batch_norm(x, running_mean, running_var, training=False), randn(0, shape))


@pytest.mark.parametrize("shape", BN_SHAPES, ids=BN_IDS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_with_fused_relu(shape, training, kernels_path):
    channels = shape[1]
    running_mean, running_var = randn(3, (channels,)), positive(4, (channels,))
    gradcheck(
        lambda x, w, b: F.batch_norm(x, running_mean, running_var, w, b, training=training, fuse_relu=True),
        randn(0, shape) * 2 + 1,
        positive(1, (channels,)),
        randn(2, (channels,)),
    )


@pytest.mark.parametrize(
    "layer, shape", [(nn.BatchNorm1d, (4, 3)), (nn.BatchNorm2d, (2, 3, 2, 2))], ids=["BatchNorm1d", "BatchNorm2d"]
)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_module(layer, shape, training, kernels_path):
    module = layer(3)
    module.running_mean[...] = randn(2, 3)
    module.running_var[...] = positive(3, 3)
    check_module(module.train(training), randn(0, shape))


@pytest.mark.parametrize(
    "normalized_shape, shape", [(4, (3, 4)), (4, (2, 3, 4)), ((2, 3), (2, 2, 2, 3))], ids=["(N,C)", "(N,L,C)", "2-dims"]
)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(normalized_shape, shape, affine):
    norm_shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    if affine:
        gradcheck(
            lambda x, w, b: F.layer_norm(x, normalized_shape, w, b),
            randn(0, shape),
            positive(1, norm_shape),
            randn(2, norm_shape),
        )
    else:
        gradcheck(lambda x: F.layer_norm(x, normalized_shape), randn(0, shape))


def test_layer_norm_module():
    check_module(nn.LayerNorm((2, 3)), randn(0, (2, 2, 3)))
    check_module(nn.LayerNorm(4, bias=False), randn(1, (3, 4)))


@pytest.mark.parametrize(
    "groups, shape",
    [(2, (2, 4, 2, 2)), (3, (3, 6)), (1, (2, 3, 3)), (3, (2, 3, 2, 2))],
    ids=["2-groups-4d", "3-groups-2d", "one-group", "group-per-channel"],
)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm(groups, shape, affine):
    channels = shape[1]
    if affine:
        gradcheck(
            lambda x, w, b: F.group_norm(x, groups, w, b),
            randn(0, shape),
            positive(1, (channels,)),
            randn(2, (channels,)),
        )
    else:
        gradcheck(lambda x: F.group_norm(x, groups), randn(0, shape))


AFFINE_PARTS = {"weight-only": (True, False), "bias-only": (False, True)}


@pytest.mark.parametrize("part", sorted(AFFINE_PARTS))
@pytest.mark.parametrize(
    "norm, shape",
    [
        (lambda x, w, b: F.batch_norm(x, np.zeros(3), np.ones(3), w, b, training=True), (4, 3, 2)),
        (lambda x, w, b: F.batch_norm(x, randn(5, 3), positive(6, 3), w, b, training=False), (4, 3)),
        (lambda x, w, b: F.layer_norm(x, 3, w, b), (2, 3)),
        (lambda x, w, b: F.group_norm(x, 3, w, b), (2, 3, 2)),
    ],
    ids=["batch_norm-train", "batch_norm-eval", "layer_norm", "group_norm"],
)
def test_norm_with_only_one_of_weight_and_bias(norm, shape, part):
    has_weight, has_bias = AFFINE_PARTS[part]
    param = positive(1, (3,)) if has_weight else randn(2, (3,))
    if has_weight:
        gradcheck(lambda x, w: norm(x, w, None), randn(0, shape), param)
    else:
        gradcheck(lambda x, b: norm(x, None, b), randn(0, shape), param)


def test_group_norm_module():
    check_module(nn.GroupNorm(2, 4), randn(0, (2, 4, 3)))


# ----------------------------------------------------------------------------
# Weight normalization: gradients with respect to g and v


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_linear(dim):
    layer = nn.utils.weight_norm(nn.Linear(3, 2), dim=dim)
    check_module(layer, randn(0, (4, 3)), names=["weight_g", "weight_v", "bias"])


@pytest.mark.parametrize("dim", [0, None])
def test_weight_norm_conv2d(dim):
    layer = nn.utils.weight_norm(nn.Conv2d(2, 2, 2, padding=1), dim=dim)
    check_module(layer, randn(0, (1, 2, 3, 3)), names=["weight_g", "weight_v", "bias"])


# ----------------------------------------------------------------------------
# Residual


def test_residual_identity():
    block = nn.Residual(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)))
    check_module(block, randn(0, (2, 3)))


def test_residual_with_shortcut():
    block = nn.Residual(
        nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.Tanh(), nn.Conv2d(3, 3, 1)),
        shortcut=nn.Conv2d(2, 3, 1, stride=2, bias=False),
    )
    check_module(block, randn(0, (1, 2, 4, 4)))


def test_resnet_basic_block():
    body = nn.Sequential(
        nn.Conv2d(2, 2, 3, padding=1, bias=False),
        nn.BatchNorm2d(2),
        nn.Tanh(),
        nn.Conv2d(2, 2, 3, padding=1, bias=False),
        nn.BatchNorm2d(2),
    )
    block = nn.Sequential(nn.Residual(body), nn.Tanh())
    check_module(block, randn(0, (2, 2, 3, 3)))
