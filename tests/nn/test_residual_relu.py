"""A residual block's sum and the ReLU after it as one op: ``F.add_relu(a, b)`` gives ``relu(a + b)``
bit for bit (output and both gradients), on NumPy's passes and on the compiled kernel, at every
thread count; ``nn.Sequential`` runs a ``Residual`` and the ReLU layer after it that way, unless a
hook or a subclass asks to see each on its own."""

import numpy as np
import pytest
from helpers import assert_same_bits, kernels_and_threads, randn, relu_layer_calls, training_step
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import deepgrad as dg
import deepgrad.functional as F
from deepgrad import kernels, nn


def both_ways(a, b, grad, views):
    """(out, a's and b's gradients) of relu(a + b) and of add_relu(a, b)."""
    results = []
    for fused in (False, True):
        ta, tb = dg.tensor(a, requires_grad=True), dg.tensor(b, requires_grad=True)
        left, right = (ta.transpose(-1, -2), tb.transpose(-1, -2)) if views else (ta, tb)
        out = F.add_relu(left, right) if fused else F.relu(left + right)
        out.backward(grad)
        results.append([out.data, ta.grad, tb.grad])
    return results


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.sampled_from([(3, 4), (2, 3, 5, 5), (8, 16, 24, 24)]),  # the last one split over two threads
    dtype=st.sampled_from([np.float32, np.float64]),
    specials=st.booleans(),
    views=st.booleans(),
    compiled=st.booleans(),
    threads=st.sampled_from([1, 2]),
)
def test_add_relu_gives_the_bits_of_relu_after_the_sum(seed, shape, dtype, specials, views, compiled, threads):
    """Zeros of both signs (-0.0 + -0.0 is -0.0, kept as relu keeps it), NaN and inf − inf included, on
    NumPy's passes and the kernel (transposed views take NumPy's), on 1 and 2 threads."""
    assume(not compiled or kernels.numba_installed())
    r = np.random.default_rng(seed)
    a, b = (r.standard_normal(shape).astype(dtype) for _ in range(2))
    grad = r.standard_normal(shape[:-2] + shape[-2:][::-1] if views else shape).astype(dtype)
    if specials:
        where = r.integers(0, a.size, 12)
        a.flat[where[:4]], b.flat[where[:4]] = -0.0, -0.0
        a.flat[where[4:6]] = np.nan
        a.flat[where[6:8]], b.flat[where[6:8]] = np.inf, -np.inf
        grad.flat[r.integers(0, grad.size, 5)] = -0.0
    with kernels_and_threads(compiled, threads):
        with np.errstate(invalid="ignore"):  # inf − inf
            separate, fused = both_ways(a, b, grad, views)
    assert_same_bits(separate, fused)


def test_add_relu_is_one_op(kernels_path):
    a, b = (dg.tensor(randn(i, (4, 3, 5, 5)), requires_grad=True) for i in range(2))
    out = F.add_relu(a, b)
    assert out.grad_fn.name == "add+relu" and out.grad_fn.inputs == (a, b)


@pytest.mark.parametrize(
    "a, b, message",
    [
        (np.zeros((2, 3)), np.zeros((3,)), r"add_relu: expected a and b of one shape and dtype, got \(2, 3\) float64"),
        (np.zeros(3), np.zeros(3, np.float32), r"got \(3,\) float64 and \(3,\) float32"),
        (np.zeros(3, np.int64), np.zeros(3, np.int64), "add_relu: expected a floating tensor, got dtype int64"),
    ],
    ids=["shapes", "dtypes", "integers"],
)
def test_add_relu_refuses_what_it_cannot_add_in_place(a, b, message):
    with pytest.raises((ValueError, TypeError), match=message):
        F.add_relu(dg.tensor(a), dg.tensor(b))


# ----------------------------------------------------------------------------
# nn.Sequential


def blocks():
    """Two residual basic blocks, the second with a 1×1 shortcut."""
    dg.manual_seed(0)

    def block(channels_in, channels):
        body = nn.Sequential(nn.Conv2d(channels_in, channels, 3, padding=1), nn.BatchNorm2d(channels))
        skip = nn.Conv2d(channels_in, channels, 1) if channels_in != channels else None
        return nn.Sequential(nn.Residual(body, skip), nn.ReLU())

    return nn.Sequential(block(3, 3), block(3, 4))


def test_sequential_runs_a_residual_and_its_relu_as_one_op(monkeypatch, kernels_path):
    calls = relu_layer_calls(monkeypatch)
    model, x = blocks(), randn(5, (4, 3, 6, 6))
    fused = training_step(model, x)
    assert calls == [], "the ReLU after a Residual ran as a layer of its own"
    hooked = blocks()  # the same parameters, and a hook on the first block's ReLU
    hooked[0][1].register_forward_hook(lambda module, inputs, output: None)
    separate = training_step(hooked, x)
    assert calls == [hooked[0][1]]
    assert_same_bits(separate, fused)


def test_a_hook_on_the_residual_or_a_subclass_runs_each_layer(monkeypatch):
    class Scaled(nn.Residual):
        def forward(self, x, fuse_relu=False):
            return super().forward(x) * 0.5

    calls = relu_layer_calls(monkeypatch)
    model = blocks()
    model[0][0].register_forward_hook(lambda module, inputs, output: None)
    training_step(model, randn(5, (4, 3, 6, 6)))
    assert calls == [model[0][1]]
    x = dg.tensor(randn(5, (2, 3, 4, 4)))
    out = nn.Sequential(Scaled(nn.Identity()), nn.ReLU())(x)
    np.testing.assert_array_equal(out.data, F.relu((x + x) * 0.5).data)
