"""A ReLU and the max pooling after it as one op: ``F.max_pool2d(..., relu_first=True)`` gives
``max_pool2d(relu(x))`` bit for bit (maxima, indices and the input gradient), on NumPy's passes and
on the compiled kernels, at every thread count; ``nn.Sequential`` runs a ReLU layer and the max
pooling layer after it that way, unless a hook or a subclass asks to see each on its own."""

import numpy as np
import pytest
from helpers import assert_same_bits, kernels_and_threads, randn, relu_layer_calls, training_step
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import deepgrad as dg
import deepgrad.functional as F
from deepgrad import kernels, nn

POOLINGS = [  # (kernel, stride, padding, dilation, ceil_mode), each with an (H, W) it fits
    ((2, 2), None, 0, 1, False),
    ((3, 3), 2, 1, 1, False),
    ((3, 3), 1, 1, 1, False),  # overlapping windows: a gradient summed where several pick one element
    ((2, 3), (2, 1), 1, 2, True),
]


def both_ways(x, grad, pooling, with_graph, return_indices):
    """(out, indices, x's gradient) of max_pool2d(relu(x)) and of max_pool2d(x, relu_first=True)."""
    kernel, stride, padding, dilation, ceil_mode = pooling
    results = []
    for fused in (False, True):
        tensor = dg.tensor(x, requires_grad=with_graph)
        source = tensor if fused else F.relu(tensor)
        out = F.max_pool2d(source, kernel, stride, padding, dilation, ceil_mode, return_indices=True, relu_first=fused)
        out, indices = out
        if with_graph:
            out.backward(grad)
        results.append([out.data, indices.data if return_indices else None, tensor.grad])
    return results


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    pooling=st.sampled_from(POOLINGS),
    shape=st.sampled_from([(2, 3, 7, 8), (3, 2, 6, 6), (8, 16, 24, 24)]),  # the last one split over two threads
    dtype=st.sampled_from([np.float32, np.float64]),
    specials=st.booleans(),
    with_graph=st.booleans(),
    compiled=st.booleans(),
    threads=st.sampled_from([1, 2]),
)
def test_fused_relu_gives_the_bits_of_max_pooling_after_relu(
    seed, pooling, shape, dtype, specials, with_graph, compiled, threads
):
    """Maxima, indices and the input gradient, zeros of both signs and NaN included, windows all
    below zero (relu(x) ties at 0) too, on NumPy's passes and the kernels, on 1 and 2 threads."""
    assume(not compiled or kernels.numba_installed())
    r = np.random.default_rng(seed)
    x = (r.standard_normal(shape) + r.uniform(-1.5, 0.5)).astype(dtype)
    grad_shape = F.max_pool2d(dg.tensor(x), *pooling).shape
    grad = r.standard_normal(grad_shape).astype(dtype)
    if specials:  # NaN, zeros of both signs in x and in the upstream gradient
        x.flat[r.integers(0, x.size, 3)] = np.nan
        x.flat[r.integers(0, x.size, 20)] = -0.0
        x.flat[r.integers(0, x.size, 20)] = 0.0
        grad.flat[r.integers(0, grad.size, 5)] = -0.0
    with kernels_and_threads(compiled, threads):
        separate, fused = both_ways(x, grad, pooling, with_graph, return_indices=True)
    assert_same_bits(separate, fused)


def test_the_fused_op_is_one_op_that_keeps_no_relu_of_its_input(kernels_path):
    """One op in the graph; with the kernels, the ReLU's output it keeps for the gradient is the
    pooled output (a winner's relu(x) is its window's maximum), not an array of relu(x)."""
    x = dg.tensor(randn(0, (4, 3, 6, 6)), requires_grad=True)
    out = F.max_pool2d(x, 2, relu_first=True)
    assert out.grad_fn.name == "relu+maxpool2d" and out.grad_fn.inputs[0] is x
    assert (out.grad_fn.relu.out is out.data) is (kernels_path == "kernels")
    assert (out.grad_fn.compiled is not None) is (kernels_path == "kernels")


# ----------------------------------------------------------------------------
# nn.Sequential


def net(return_indices=False):
    dg.manual_seed(0)
    layers = [nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, return_indices=return_indices)]
    return nn.Sequential(*layers)


def test_sequential_runs_relu_and_max_pooling_as_one_op(monkeypatch, kernels_path):
    calls = relu_layer_calls(monkeypatch)
    model, x = net(), randn(5, (4, 2, 6, 6))
    fused = training_step(model, x)
    assert calls == [], "the ReLU before the max pooling ran as a layer of its own"
    hooked = net()  # the same parameters, and a hook on its ReLU
    hooked[1].register_forward_hook(lambda module, inputs, output: None)
    separate = training_step(hooked, x)
    assert calls == [hooked[1]]
    assert_same_bits(separate, fused)


@pytest.mark.parametrize("where", ["relu", "pool"])
def test_a_hook_on_either_layer_sees_each_layer_on_its_own(monkeypatch, where):
    calls = relu_layer_calls(monkeypatch)
    model = net()
    seen = []
    model[1 if where == "relu" else 2].register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    training_step(model, randn(5, (4, 2, 6, 6)))
    assert calls == [model[1]] and len(seen) == 1
    if where == "pool":  # the pooling's own input: the ReLU's output
        assert (seen[0].data >= 0).all()


def test_a_subclass_of_either_layer_runs_as_written(monkeypatch):
    class ShiftedReLU(nn.ReLU):
        def forward(self, x):
            return super().forward(x) - 1.0

    class NegatedPool(nn.MaxPool2d):
        def forward(self, x, relu_first=False):
            return -super().forward(x)

    x = dg.tensor(randn(5, (2, 3, 4, 4)))
    out = nn.Sequential(ShiftedReLU(), nn.MaxPool2d(2))(x)
    np.testing.assert_array_equal(out.data, F.max_pool2d(F.relu(x) - 1.0, 2).data)
    out = nn.Sequential(nn.ReLU(), NegatedPool(2))(x)
    np.testing.assert_array_equal(out.data, -F.max_pool2d(F.relu(x), 2).data)


def test_a_fused_pooling_layer_still_returns_its_indices():
    x = randn(5, (4, 2, 6, 6))
    model = net(return_indices=True)
    out, indices = model(dg.tensor(x))
    hooked = net(return_indices=True)
    hooked[1].register_forward_hook(lambda module, inputs, output: None)
    expected, expected_indices = hooked(dg.tensor(x))
    assert_same_bits([out.data, indices.data], [expected.data, expected_indices.data])
