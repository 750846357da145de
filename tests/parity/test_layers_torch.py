"""Layers against PyTorch in float64: the same weights and inputs give the same
outputs, input gradients, parameter gradients and running statistics (rtol 1e-6).

Each test builds a deepgrad module and its PyTorch twin with identical
``state_dict`` keys, copies deepgrad's (randomized) weights into the twin, and
compares both ways with :func:`check_modules`.
"""

import math
import warnings

import numpy as np
import pytest
from helpers import rng

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn as nn

torch = pytest.importorskip("torch")
tnn = torch.nn

RTOL, ATOL = 1e-6, 1e-9


def close(actual, expected, what):
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert np.shape(actual) == expected.shape, f"{what}: shape {np.shape(actual)} != torch {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def randomize(module, seed):
    """Give every floating parameter random values (so γ ≠ 1, β ≠ 0 and bias ≠ 0 are exercised)."""
    r = rng(seed)
    for _, param in sorted(module.named_parameters()):
        param.data[...] = r.uniform(-1.0, 1.0, param.shape) + (1.0 if param.ndim == 1 else 0.0)


def copy_into_torch(module, twin):
    """Load deepgrad's state into ``twin``; the key sets (and so PyTorch's naming) must agree."""
    state = module.state_dict()
    assert list(state) == list(twin.state_dict()), "state_dict keys differ from PyTorch's"
    twin.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in state.items()})


def check_modules(module, twin, x, seed=0):
    """One forward and backward of both on input ``x``; compare output and every gradient."""
    ours = dg.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out, expected = module(ours), twin(theirs)
    assert out.dtype == np.float64
    close(out.data, expected, "forward")
    upstream = rng(seed).standard_normal(out.shape)
    module.zero_grad()
    twin.zero_grad()
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    close(ours.grad, theirs.grad, "input gradient")
    theirs_params = dict(twin.named_parameters())
    ours_params = dict(module.named_parameters())
    assert list(ours_params) == list(theirs_params), "parameter names differ from PyTorch's"
    for name, param in ours_params.items():
        assert param.grad is not None and param.grad.dtype == np.float64, name
        close(param.grad, theirs_params[name].grad, f"gradient of {name}")
    return out


def check_buffers(module, twin):
    theirs = dict(twin.named_buffers())
    ours = dict(module.named_buffers())
    assert list(ours) == list(theirs), "buffer names differ from PyTorch's"
    for name, buffer in ours.items():
        if name.endswith("num_batches_tracked"):
            assert buffer.dtype == np.int64 and int(buffer) == int(theirs[name]), name
        else:
            close(buffer, theirs[name], name)


def pair(ours, theirs, seed=1):
    """The two modules in float64 with deepgrad's random weights copied into PyTorch's."""
    ours.double()
    theirs.double()
    randomize(ours, seed)
    copy_into_torch(ours, theirs)
    return ours, theirs


# ----------------------------------------------------------------------------
# Linear and convolution


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (4,)], ids=["2d", "3d", "1d"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(shape, bias):
    ours, theirs = pair(nn.Linear(4, 3, bias=bias), tnn.Linear(4, 3, bias=bias))
    check_modules(ours, theirs, rng(2).standard_normal(shape))


CONV_CASES = {
    "plain": dict(kernel_size=3),
    "stride2-pad1": dict(kernel_size=3, stride=2, padding=1),
    "dilation2-pad2": dict(kernel_size=3, padding=2, dilation=2),
    "all-combined": dict(kernel_size=3, stride=2, padding=1, dilation=2),
    "non-square": dict(kernel_size=(2, 3), stride=(2, 1), padding=(0, 1), dilation=(1, 2)),
    "1x1": dict(kernel_size=1),
    "1x1-stride2": dict(kernel_size=1, stride=2),
    "pointwise-1x4": dict(kernel_size=(1, 4), stride=3, padding=(1, 2)),
    "stride1-mixed": dict(kernel_size=(3, 2), padding=(2, 1), dilation=(1, 2)),
    "stride1-wide-pad": dict(kernel_size=1, padding=2),
    "stride2x1-3x2": dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
    "stride3-k2": dict(kernel_size=2, stride=3, padding=1),  # kernel smaller than the stride: elements no window reads
    "stride3x2-4x3": dict(kernel_size=(4, 3), stride=(3, 2), padding=(2, 1)),  # phases with 1 or 2 taps a side
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(case, bias, conv_path):
    kwargs = CONV_CASES[case]
    ours, theirs = pair(nn.Conv2d(3, 4, bias=bias, **kwargs), tnn.Conv2d(3, 4, bias=bias, **kwargs))
    check_modules(ours, theirs, rng(2).standard_normal((2, 3, 9, 8)))


@pytest.mark.parametrize(
    "channels, kwargs",
    [
        ((4, 6), dict(kernel_size=3, groups=2, padding=1)),
        ((6, 6), dict(kernel_size=3, groups=3, stride=2, padding=1)),
        ((8, 8), dict(kernel_size=3, groups=8, padding=1)),  # depthwise
        ((8, 16), dict(kernel_size=(3, 2), groups=8, stride=(2, 1), dilation=(1, 2))),  # depthwise, 2 outputs each
        ((16, 16), dict(kernel_size=3, groups=2, padding=1)),  # channels enough for taps: groups take the columns
        ((4, 8), dict(kernel_size=1, groups=4)),
    ],
    ids=["2-groups", "3-groups-strided", "depthwise", "depthwise-multiplier", "16-channels", "pointwise"],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_groups(channels, kwargs, bias, kernels_path):
    ours, theirs = pair(nn.Conv2d(*channels, bias=bias, **kwargs), tnn.Conv2d(*channels, bias=bias, **kwargs))
    check_modules(ours, theirs, rng(2).standard_normal((2, channels[0], 9, 8)))


@pytest.mark.parametrize(
    "channels, kernel, kwargs",
    [
        ((3, 4), 3, {}),
        ((3, 4), 3, dict(stride=2, padding=1, output_padding=1)),
        ((4, 6), (3, 2), dict(stride=(2, 1), padding=(1, 0), groups=2)),
        ((16, 8), 3, dict(padding=1)),  # stride 1 from 8 channels: the taps
        ((16, 16), 4, dict(stride=2, padding=1)),  # stride 2 from 8 channels: the phases
        ((2, 3), 3, dict(dilation=2, output_padding=1)),  # output_padding under the dilation, not the stride
        ((4, 4), 3, dict(stride=3, dilation=2, output_padding=2, groups=4)),
    ],
    ids=["plain", "stride2-output-padding", "groups", "taps", "phases", "dilated", "depthwise-strided-dilated"],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d(channels, kernel, kwargs, bias):
    ours = nn.ConvTranspose2d(*channels, kernel, bias=bias, **kwargs)
    theirs = tnn.ConvTranspose2d(*channels, kernel, bias=bias, **kwargs)
    check_modules(*pair(ours, theirs), rng(2).standard_normal((2, channels[0], 5, 6)))


def test_conv_transpose2d_initial_weights():
    """PyTorch's: U(±1/√fan_in) for weight and bias, fan_in = (C_out/groups)·kh·kw (the weight's dim 1)."""
    layer = nn.ConvTranspose2d(6, 8, 3, groups=2)
    bound = 1 / np.sqrt(4 * 9)
    assert layer.weight.shape == (6, 4, 3, 3)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert layer.weight.data.std() > 0.8 * bound / np.sqrt(3)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "channels, kwargs",
    [
        ((3, 4), dict(kernel_size=3, padding=1)),
        ((16, 8), dict(kernel_size=3, padding=(2, 1), dilation=(2, 1))),
        ((4, 4), dict(kernel_size=3, stride=2, padding=1, groups=2)),
    ],
    ids=["3x3", "taps-dilated", "strided-groups"],
)
def test_conv2d_padding_modes(mode, channels, kwargs):
    ours, theirs = pair(
        nn.Conv2d(*channels, padding_mode=mode, **kwargs), tnn.Conv2d(*channels, padding_mode=mode, **kwargs)
    )
    check_modules(ours, theirs, rng(2).standard_normal((2, channels[0], 7, 6)))


@pytest.mark.parametrize(
    "kwargs", [dict(padding=1), dict(padding=2, dilation=2), dict()], ids=["pad1", "dilated", "valid"]
)
def test_conv2d_taps_in_chunks(kwargs, monkeypatch):
    """16 channels in, 8 out, 3×3: NumPy's taps of the defaults, the batch of 5 in chunks of 2, 2 and 1."""
    from deepgrad import kernels
    from deepgrad.ops import conv

    monkeypatch.setattr(kernels, "ENABLED", False)  # the compiled kernels take a sample at a time

    assert 16 >= conv.TAP_MIN_CHANNELS
    x = rng(2).standard_normal((5, 16, 7, 6))
    p, d = kwargs.get("padding", 0), kwargs.get("dilation", 1)
    out_h, padded_w = 7 + 2 * p - 2 * d, 6 + 2 * p
    monkeypatch.setattr(conv, "TAP_CHUNK_BYTES", 2 * (2 * 8 * out_h * padded_w) * 8)  # two samples' float64 sums
    ours, theirs = pair(nn.Conv2d(16, 8, 3, **kwargs), tnn.Conv2d(16, 8, 3, **kwargs))
    check_modules(ours, theirs, x)


# ----------------------------------------------------------------------------
# Pooling


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
        dict(kernel_size=(2, 3), stride=(2, 2), dilation=2, ceil_mode=True),
    ],
    ids=["k2", "k3-s2-p1", "non-square", "dilated", "overlapping", "ceil", "ceil-k3-s2-p1", "ceil-dilated"],
)
def test_max_pool2d(kwargs, kernels_path):
    x = rng(3).permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0  # no ties
    check_modules(nn.MaxPool2d(**kwargs), tnn.MaxPool2d(**kwargs), x)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2),
        dict(kernel_size=(2, 3)),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=3, stride=1, padding=1),
    ],
    ids=["k2", "tiles-2x3", "k3-s2-p1", "overlapping"],
)
def test_max_pool2d_routes_ties_and_nan_as_pytorch(kwargs, kernels_path):
    """A tie sends the gradient to the window's first maximum (row-major), a window holding NaN to its
    last NaN: PyTorch's choices, for tiling windows (compared with their maxima) and the others."""
    x = np.maximum(rng(5).standard_normal((2, 3, 8, 12)), 0.0)  # ties at 0
    x[0, 0, 0, 1] = x[0, 1, 2, 2] = x[0, 1, 3, 3] = x[1, 2, 4, 4] = x[1, 2, 5, 4] = x[1, 0, 7, 11] = np.nan
    check_modules(nn.MaxPool2d(**kwargs), tnn.MaxPool2d(**kwargs), x)


POOL_CASES = {
    "k2": dict(kernel_size=2),
    "k3-s2-p1": dict(kernel_size=3, stride=2, padding=1),
    "non-square": dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)),
    "dilated": dict(kernel_size=2, stride=1, dilation=2),
    "overlapping": dict(kernel_size=3, stride=1, padding=1),
    "ceil-k3-s2-p1": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    "ceil-dilated": dict(kernel_size=(2, 3), stride=(2, 2), dilation=2, ceil_mode=True),
}


@pytest.mark.parametrize("grad", [True, False], ids=["graph", "no-graph"])
@pytest.mark.parametrize("kwargs", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_max_pool2d_return_indices(kwargs, grad, kernels_path):
    """The indices PyTorch returns (flat h·W + w, int64), ties, NaN and -inf windows included, with or
    without a backward to come; nn.MaxPool2d takes return_indices in PyTorch's place, before ceil_mode."""
    x = np.maximum(rng(5).standard_normal((2, 3, 8, 7)), 0.0)  # ties at 0
    x[0, 0, 0, 1] = x[0, 1, 2, 2] = x[1, 2, 5, 4] = np.nan
    x[1, 1] = -np.inf
    args = [kwargs.get(name, default) for name, default in (("stride", None), ("padding", 0), ("dilation", 1))]
    ours = nn.MaxPool2d(kwargs["kernel_size"], *args, True, kwargs.get("ceil_mode", False))
    theirs = tnn.MaxPool2d(kwargs["kernel_size"], *args, True, kwargs.get("ceil_mode", False))
    expected, expected_indices = theirs(torch.tensor(x))
    out, indices = ours(dg.tensor(x, requires_grad=grad))
    close(out.data, expected, "forward")
    assert indices.dtype == np.int64 and not indices.requires_grad
    np.testing.assert_array_equal(indices.data, expected_indices.numpy())


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, ceil_mode=True)])
def test_max_pool2d_windows_of_minus_infinity_route_to_their_first_element_inside(kwargs, kernels_path):
    """Every element -inf: PyTorch gives a window's gradient to its first element inside the input,
    never to the padding (or past the input, in ceil_mode), where an equal -inf sits."""
    x = np.full((1, 2, 5, 5), -np.inf)
    x[0, 1, 4, 4] = 1.0
    check_modules(nn.MaxPool2d(**kwargs), tnn.MaxPool2d(**kwargs), x)


UNPOOL_CASES = {
    "k2": (dict(kernel_size=2), (2, 3, 6, 8), None),
    "k3-s2-p1": (dict(kernel_size=3, stride=2, padding=1), (2, 3, 7, 7), None),
    "odd-size": (dict(kernel_size=2), (2, 3, 7, 9), (7, 9)),
    "full-output-size": (dict(kernel_size=2), (2, 3, 7, 9), (2, 3, 7, 9)),
    "overlapping": (dict(kernel_size=3, stride=1, padding=1), (1, 2, 5, 5), None),
}


@pytest.mark.parametrize("kwargs, shape, output_size", UNPOOL_CASES.values(), ids=UNPOOL_CASES.keys())
def test_max_unpool2d(kwargs, shape, output_size):
    """Values back at their maxima's places, zeros elsewhere, and each value's gradient from its place,
    as PyTorch's (overlapping windows: one place picked by several windows)."""
    x = rng(6).permutation(int(np.prod(shape))).reshape(shape) / 10.0
    pooled, indices = F.max_pool2d(dg.tensor(x), **kwargs, return_indices=True)
    their_pooled, their_indices = tnn.functional.max_pool2d(torch.tensor(x), **kwargs, return_indices=True)
    values = rng(7).standard_normal(pooled.shape)
    ours = nn.MaxUnpool2d(**kwargs)
    theirs = tnn.MaxUnpool2d(**kwargs)
    our_values, their_values = dg.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    out = ours(our_values, indices, output_size)
    expected = theirs(their_values, their_indices, output_size)
    close(out.data, expected, "forward")
    upstream = rng(8).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    close(our_values.grad, their_values.grad, "input gradient")


@pytest.mark.parametrize(
    "kwargs",
    [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, stride=1, dilation=2)],
    ids=["k2", "k3-s2-p1", "dilated"],
)
def test_max_pool2d_without_a_graph(kwargs, kernels_path):
    """Without a backward to come (no_grad, or an input that needs no gradient) max pooling skips
    recording which element won: the same maxima, ties and padding included."""
    x = np.maximum(rng(4).standard_normal((2, 3, 7, 6)), 0.0)  # ties at 0
    expected = tnn.MaxPool2d(**kwargs)(torch.tensor(x)).numpy()
    with dg.no_grad():
        close(nn.MaxPool2d(**kwargs)(dg.tensor(x)).data, expected, "no_grad forward")
    close(nn.MaxPool2d(**kwargs)(dg.tensor(x)).data, expected, "forward of an input without grad")
    assert nn.MaxPool2d(**kwargs)(dg.tensor(x)).requires_grad is False


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
        dict(kernel_size=3, stride=2, padding=1, divisor_override=5),
        dict(kernel_size=(2, 3), stride=(3, 2), ceil_mode=True, divisor_override=2),
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
        "ceil-divisor",
    ],
)
def test_avg_pool2d(kwargs):
    check_modules(nn.AvgPool2d(**kwargs), tnn.AvgPool2d(**kwargs), rng(3).standard_normal((2, 3, 7, 6)))


@pytest.mark.parametrize(
    "output_size, hw",
    [
        (1, (5, 7)),
        ((1, 1), (4, 4)),
        (2, (6, 4)),
        ((3, 2), (6, 8)),
        ((6, 4), (6, 4)),
        (2, (5, 4)),
        ((3, 4), (7, 5)),
        ((5, 4), (3, 3)),
        ((4, 1), (10, 6)),
    ],
)
def test_adaptive_avg_pool2d(output_size, hw):
    check_modules(
        nn.AdaptiveAvgPool2d(output_size), tnn.AdaptiveAvgPool2d(output_size), rng(4).standard_normal((2, 3) + hw)
    )


# ----------------------------------------------------------------------------
# Embedding

EMBEDDING_INDICES = np.array([[1, 0, 4, 1], [6, 1, 0, 2]])  # rows picked more than once, row 0 among them


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(padding_idx=0),
        dict(padding_idx=-3),
        dict(scale_grad_by_freq=True),
        dict(padding_idx=1, scale_grad_by_freq=True),
    ],
    ids=["plain", "padding", "padding-from-the-end", "scaled-by-frequency", "padding-and-scaled"],
)
@pytest.mark.parametrize("shape", [(8,), (2, 4), (2, 2, 2)], ids=["1d", "2d", "3d"])
def test_embedding(kwargs, shape):
    ours, theirs = pair(nn.Embedding(7, 3, **kwargs), tnn.Embedding(7, 3, **kwargs))
    index = EMBEDDING_INDICES.reshape(shape)
    out, expected = ours(index), theirs(torch.from_numpy(index))
    close(out.data, expected, "forward")
    upstream = rng(3).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    close(ours.weight.grad, theirs.weight.grad, "gradient of weight")


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5])
def test_embedding_max_norm_renormalizes_the_picked_rows_in_place(norm_type):
    ours, theirs = pair(
        nn.Embedding(7, 3, max_norm=0.8, norm_type=norm_type), tnn.Embedding(7, 3, max_norm=0.8, norm_type=norm_type)
    )
    out, expected = ours(EMBEDDING_INDICES), theirs(torch.from_numpy(EMBEDDING_INDICES))
    close(ours.weight.data, theirs.weight, "weight after the forward (rows 3 and 5 untouched)")
    close(out.data, expected, "forward")
    upstream = rng(3).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    close(ours.weight.grad, theirs.weight.grad, "gradient of weight")


@pytest.mark.parametrize("freeze", [True, False])
def test_embedding_from_pretrained(freeze):
    table = rng(5).standard_normal((7, 3))
    ours = nn.Embedding.from_pretrained(table, freeze=freeze, padding_idx=2)
    theirs = tnn.Embedding.from_pretrained(torch.from_numpy(table), freeze=freeze, padding_idx=2)
    assert ours.weight.requires_grad is theirs.weight.requires_grad is (not freeze)
    out, expected = ours(EMBEDDING_INDICES), theirs(torch.from_numpy(EMBEDDING_INDICES))
    close(out.data, expected, "forward: the table as given, its padding row included")
    assert out.requires_grad is (not freeze)


def test_embedding_initial_table():
    """N(0, 1) as PyTorch's, with the padding row at zero; the default dtype."""
    layer = nn.Embedding(4000, 5, padding_idx=3)
    assert layer.weight.dtype == np.float32 and layer.weight.shape == (4000, 5)
    assert not layer.weight.data[3].any()
    values = np.delete(layer.weight.data, 3, axis=0)
    assert abs(values.mean()) < 0.03 and abs(values.std() - 1) < 0.03


# ----------------------------------------------------------------------------
# Batch normalization: training steps, running statistics, then eval


BN_OPTIONS = {
    "default": {},
    "momentum0.3": dict(momentum=0.3),
    "cumulative": dict(momentum=None),
    "no-running-stats": dict(track_running_stats=False),
    "not-affine": dict(affine=False),
    "eps1e-3": dict(eps=1e-3),
}

BN_LAYOUTS = {
    "1d-NC": (nn.BatchNorm1d, tnn.BatchNorm1d, (8, 4)),
    "1d-NCL": (nn.BatchNorm1d, tnn.BatchNorm1d, (3, 4, 5)),
    "2d": (nn.BatchNorm2d, tnn.BatchNorm2d, (3, 4, 3, 2)),
    # batches of 4+: per-channel values written out to a sample's shape (batch norm's batch layout)
    "1d-NCL-batch6": (nn.BatchNorm1d, tnn.BatchNorm1d, (6, 4, 5)),
    "2d-batch5": (nn.BatchNorm2d, tnn.BatchNorm2d, (5, 4, 3, 2)),
}


@pytest.mark.parametrize("options", sorted(BN_OPTIONS))
@pytest.mark.parametrize("layout", sorted(BN_LAYOUTS))
def test_batch_norm(layout, options, kernels_path):
    ours_cls, theirs_cls, shape = BN_LAYOUTS[layout]
    kwargs = BN_OPTIONS[options]
    ours, theirs = pair(ours_cls(4, **kwargs), theirs_cls(4, **kwargs))
    r = rng(5)
    for step in range(4):
        # each batch with its own per-channel location and scale, so the running averages move
        channel = (1, shape[1]) + (1,) * (len(shape) - 2)
        x = r.normal(r.uniform(-3, 3, channel), r.uniform(0.5, 3, channel), shape)
        check_modules(ours, theirs, x, seed=step)
        check_buffers(ours, theirs)
    ours.eval()
    theirs.eval()
    check_modules(ours, theirs, r.standard_normal(shape) * 2 + 1, seed=9)
    check_buffers(ours, theirs)  # eval leaves the running statistics alone


@pytest.mark.parametrize(
    "make, shape, training",
    [
        (nn.BatchNorm1d, (1, 4), True),
        (nn.BatchNorm1d, (1, 4, 1), True),
        (nn.BatchNorm2d, (1, 4, 1, 1), True),
        (nn.BatchNorm1d, (1, 4, 2), True),
        (nn.BatchNorm2d, (1, 4, 1, 2), True),
        (nn.BatchNorm1d, (1, 4), False),
    ],
)
def test_batch_norm_one_value_per_channel_raises_like_torch(make, shape, training):
    ours = make(4).train(training)
    theirs = getattr(tnn, make.__name__)(4).train(training)
    x = np.zeros(shape, dtype=np.float32)
    try:
        theirs(torch.from_numpy(x))
    except ValueError:
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            ours(dg.tensor(x))
    else:
        assert ours(dg.tensor(x)).shape == shape


def test_batch_norm_eval_before_any_training():
    ours, theirs = pair(nn.BatchNorm2d(3), tnn.BatchNorm2d(3))
    ours.eval()
    theirs.eval()
    check_modules(ours, theirs, rng(6).standard_normal((2, 3, 2, 2)))


# ----------------------------------------------------------------------------
# Layer and group normalization


@pytest.mark.parametrize(
    "normalized_shape, shape",
    [(5, (4, 5)), (5, (2, 3, 5)), ((3, 4), (2, 2, 3, 4)), ((2, 3, 4), (2, 2, 3, 4))],
    ids=["(N,C)", "(N,L,C)", "2-dims", "3-dims"],
)
@pytest.mark.parametrize(
    "kwargs",
    [{}, dict(elementwise_affine=False), dict(bias=False), dict(eps=1e-2)],
    ids=["affine", "no-affine", "no-bias", "eps"],
)
def test_layer_norm(normalized_shape, shape, kwargs):
    ours, theirs = pair(nn.LayerNorm(normalized_shape, **kwargs), tnn.LayerNorm(normalized_shape, **kwargs))
    check_modules(ours, theirs, rng(7).standard_normal(shape) * 3 + 1)


@pytest.mark.parametrize(
    "groups, channels, shape",
    [(2, 6, (2, 6, 3, 3)), (3, 6, (3, 6)), (1, 4, (2, 4, 5)), (4, 4, (2, 4, 2, 3))],
    ids=["2-groups-4d", "3-groups-2d", "layer-norm-like", "instance-norm-like"],
)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm(groups, channels, shape, affine):
    ours, theirs = pair(nn.GroupNorm(groups, channels, affine=affine), tnn.GroupNorm(groups, channels, affine=affine))
    check_modules(ours, theirs, rng(8).standard_normal(shape) * 2 - 1)


@pytest.mark.parametrize("weight, bias", [(True, False), (False, True), (True, True), (False, False)])
@pytest.mark.parametrize("norm", ["batch_norm-train", "batch_norm-eval", "layer_norm", "group_norm"])
def test_functional_norm_affine_parts(norm, weight, bias):
    """γ and β are optional independently, as in torch.nn.functional."""
    tf = torch.nn.functional
    r = rng(13)
    running = [r.standard_normal(3), r.uniform(0.5, 2, 3)]
    torch_running = [torch.tensor(a) for a in running]
    calls = {
        "batch_norm-train": (
            lambda x, w, b: F.batch_norm(x, *running, w, b, training=True, momentum=0.2),
            lambda x, w, b: tf.batch_norm(x, *torch_running, w, b, training=True, momentum=0.2),
        ),
        "batch_norm-eval": (
            lambda x, w, b: F.batch_norm(x, *running, w, b),
            lambda x, w, b: tf.batch_norm(x, *torch_running, w, b),
        ),
        "layer_norm": (lambda x, w, b: F.layer_norm(x, (3,), w, b), lambda x, w, b: tf.layer_norm(x, (3,), w, b)),
        "group_norm": (lambda x, w, b: F.group_norm(x, 3, w, b), lambda x, w, b: tf.group_norm(x, 3, w, b)),
    }
    ours_fn, theirs_fn = calls[norm]
    shape = (4, 2, 3) if norm == "layer_norm" else (4, 3, 2)
    arrays = [r.standard_normal(shape) * 2 + 1, r.uniform(0.5, 2, 3), r.standard_normal(3)]
    ours = [dg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    present = [True, weight, bias]
    out = ours_fn(*[t if p else None for t, p in zip(ours, present)])
    torch_inputs = [t if p else None for t, p in zip(theirs, present)]
    if norm == "group_norm" and bias and not weight:  # torch's backward fails for it ("tensor does not have a device")
        torch_inputs[1] = torch.ones(3, dtype=torch.float64)
    expected = theirs_fn(*torch_inputs)
    close(out.data, expected, "forward")
    upstream = r.standard_normal(shape)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for name, a, b, p in zip(["input", "weight", "bias"], ours, theirs, present):
        if p:
            close(a.grad, b.grad, f"gradient of {name}")
    for name, a, b in zip(["running_mean", "running_var"], running, torch_running):
        close(a, b, name)


# ----------------------------------------------------------------------------
# Weight normalization


def torch_weight_norm(module, dim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in favour of parametrizations, same math
        return tnn.utils.weight_norm(module, dim=dim)


WEIGHT_NORM_LAYERS = {
    "linear": (lambda: nn.Linear(5, 4), lambda: tnn.Linear(5, 4), (3, 5)),
    "conv2d": (lambda: nn.Conv2d(2, 3, 3, padding=1), lambda: tnn.Conv2d(2, 3, 3, padding=1), (2, 2, 4, 4)),
}


@pytest.mark.parametrize("dim", [0, 1, None])
@pytest.mark.parametrize("layer", sorted(WEIGHT_NORM_LAYERS))
def test_weight_norm(layer, dim):
    make_ours, make_theirs, shape = WEIGHT_NORM_LAYERS[layer]
    ours, theirs = pair(make_ours(), make_theirs())
    nn.utils.weight_norm(ours, dim=dim)
    torch_weight_norm(theirs, dim)
    # the same decomposition of the same weight: names, order, shapes and values
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    close(ours.weight_g.data, theirs.weight_g, "weight_g")
    close(ours.weight_v.data, theirs.weight_v, "weight_v")
    x = rng(9).standard_normal(shape)
    check_modules(ours, theirs, x)
    # w is recomputed from g and v on every forward
    ours.weight_g.data *= 1.5
    ours.weight_v.data[0] -= 0.25
    copy_into_torch(ours, theirs)
    check_modules(ours, theirs, x, seed=1)


def test_weight_norm_in_a_model_trains_like_torch():
    ours = nn.Sequential(nn.utils.weight_norm(nn.Linear(4, 6)), nn.Tanh(), nn.utils.weight_norm(nn.Linear(6, 2)))
    theirs = tnn.Sequential(torch_weight_norm(tnn.Linear(4, 6), 0), tnn.Tanh(), torch_weight_norm(tnn.Linear(6, 2), 0))
    ours, theirs = pair(ours, theirs)
    r = rng(10)
    for step in range(3):
        check_modules(ours, theirs, r.standard_normal((5, 4)), seed=step)
        for (name, param), (_, twin_param) in zip(ours.named_parameters(), theirs.named_parameters()):
            param.data -= 0.1 * param.grad
            with torch.no_grad():
                twin_param -= 0.1 * twin_param.grad
            close(param.data, twin_param, f"{name} after step {step}")


# ----------------------------------------------------------------------------
# A ResNet basic block built from nn.Residual


class TorchResidual(tnn.Module):
    """PyTorch twin of nn.Residual, with the same attribute (state_dict) names."""

    def __init__(self, block, shortcut=None):
        super().__init__()
        self.block, self.shortcut = block, shortcut

    def forward(self, x):
        return self.block(x) + (x if self.shortcut is None else self.shortcut(x))


def basic_block(lib, residual, in_channels, channels, stride):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the identity or a 1x1 conv-BN shortcut, then ReLU."""
    body = lib.Sequential(
        lib.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False),
        lib.BatchNorm2d(channels),
        lib.ReLU(),
        lib.Conv2d(channels, channels, 3, padding=1, bias=False),
        lib.BatchNorm2d(channels),
    )
    shortcut = None
    if stride != 1 or in_channels != channels:
        shortcut = lib.Sequential(
            lib.Conv2d(in_channels, channels, 1, stride=stride, bias=False), lib.BatchNorm2d(channels)
        )
    return lib.Sequential(residual(body, shortcut), lib.ReLU())


@pytest.mark.parametrize(
    "in_channels, channels, stride", [(3, 3, 1), (3, 4, 2)], ids=["identity-shortcut", "projection-shortcut"]
)
def test_resnet_basic_block(in_channels, channels, stride, kernels_path):
    ours, theirs = pair(
        basic_block(nn, nn.Residual, in_channels, channels, stride),
        basic_block(tnn, TorchResidual, in_channels, channels, stride),
    )
    r = rng(11)
    for step in range(3):
        check_modules(ours, theirs, r.standard_normal((2, in_channels, 6, 6)), seed=step)
        check_buffers(ours, theirs)
    ours.eval()
    theirs.eval()
    check_modules(ours, theirs, r.standard_normal((2, in_channels, 6, 6)), seed=5)


# ----------------------------------------------------------------------------
# Default initialization and state_dict naming


def check_uniform_fan_in(values, fan_in, what):
    """U(−1/√fan_in, 1/√fan_in): inside the bounds, reaching them, std 1/√(3·fan_in) within 3 %."""
    bound = 1 / math.sqrt(fan_in)
    values = np.asarray(values, dtype=np.float64).ravel()
    assert np.abs(values).max() <= bound * (1 + 1e-6), f"{what}: outside ±1/√fan_in"
    assert np.abs(values).max() >= bound * 0.99, f"{what}: does not reach ±1/√fan_in"
    assert abs(values.mean()) < 0.03 * bound, f"{what}: mean {values.mean()} is not 0"
    expected_std = bound / math.sqrt(3)
    assert abs(values.std() / expected_std - 1) < 0.03, f"{what}: std {values.std()} != {expected_std}"


@pytest.mark.parametrize(
    "ours, theirs, fan_in",
    [
        (lambda: nn.Linear(300, 20000), lambda: tnn.Linear(300, 20000), 300),
        (lambda: nn.Conv2d(8, 20000, (3, 2)), lambda: tnn.Conv2d(8, 20000, (3, 2)), 48),
    ],
    ids=["Linear", "Conv2d"],
)
def test_default_init_matches_torch(ours, theirs, fan_in):
    dg.manual_seed(0)
    torch.manual_seed(0)
    layer, twin = ours(), theirs()
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    for name in ("weight", "bias"):
        check_uniform_fan_in(getattr(layer, name).data, fan_in, f"deepgrad {name}")
        check_uniform_fan_in(getattr(twin, name).detach().numpy(), fan_in, f"torch {name}")  # the same law


def model(lib):
    return lib.Sequential(
        lib.Conv2d(1, 4, 3, padding=1),
        lib.BatchNorm2d(4),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Conv2d(4, 4, 3, bias=False),
        lib.GroupNorm(2, 4),
        lib.AdaptiveAvgPool2d(1),
        lib.Flatten(),
        lib.Linear(4, 8),
        lib.BatchNorm1d(8),
        lib.Tanh(),
        lib.Dropout(0.5),
        lib.LayerNorm(8),
        lib.Linear(8, 3),
        lib.Sequential(lib.BatchNorm1d(3, affine=False), lib.BatchNorm1d(3, track_running_stats=False)),
    )


def test_state_dict_keys_and_shapes_match_torch():
    ours, theirs = model(nn), model(tnn)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in ours_state.items():
        assert value.shape == tuple(theirs_state[key].shape), key
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]


def test_sequential_model_trains_like_torch():
    ours, theirs = pair(model(nn), model(tnn))
    ours[11].p = theirs[11].p = 0.0  # dropout's masks come from different generators
    r = rng(12)
    for step in range(3):
        check_modules(ours, theirs, r.standard_normal((4, 1, 8, 8)), seed=step)
        check_buffers(ours, theirs)
    ours.eval()
    theirs.eval()
    check_modules(ours, theirs, r.standard_normal((4, 1, 8, 8)), seed=7)
