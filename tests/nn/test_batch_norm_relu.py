"""Batch norm and the ReLU after it as one op: ``F.batch_norm(..., fuse_relu=True)`` gives
``relu(batch_norm(...))`` bit for bit, on NumPy's passes and on the compiled kernels, at every thread
count; ``nn.Sequential`` runs a batch norm layer and the ReLU layer after it that way, unless a hook
or a subclass asks to see each on its own."""

import numpy as np
import pytest
from helpers import assert_same_bits, kernels_and_threads, randn, relu_layer_calls, training_step
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import deepgrad as dg
import deepgrad.functional as F
from deepgrad import kernels, nn, parallel

SHAPES = [(5, 3), (3, 2, 4), (4, 3, 2, 2), (6, 2, 3, 5)]


def both_ways(x, weight, bias, grad, training, running):
    """(out, running mean and variance, x's, γ's and β's gradients) of relu(batch_norm(...)) and of
    batch_norm(..., fuse_relu=True) on the same arrays."""
    results = []
    for fused in (False, True):
        tensors = [None if a is None else dg.tensor(a, requires_grad=True) for a in (x, weight, bias)]
        stats = [None if a is None else a.copy() for a in running]
        options = dict(training=training, momentum=0.3)
        if fused:
            out = F.batch_norm(tensors[0], *stats, *tensors[1:], **options, fuse_relu=True)
        else:
            out = F.relu(F.batch_norm(tensors[0], *stats, *tensors[1:], **options))
        out.backward(grad)
        results.append([out.data, *stats] + [t.grad for t in tensors if t is not None])
    return results


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.sampled_from(SHAPES + [(8, 16, 24, 24)]),  # the last one split over two threads
    dtype=st.sampled_from([np.float32, np.float64]),
    affine=st.sampled_from(["both", "weight", "bias", "neither"]),
    mode=st.sampled_from(["train", "train-no-running", "eval"]),
    specials=st.booleans(),
    compiled=st.booleans(),
    threads=st.sampled_from([1, 2]),
)
def test_fused_relu_gives_the_bits_of_relu_after_batch_norm(
    seed, shape, dtype, affine, mode, specials, compiled, threads
):
    """Forward, running statistics and every gradient, zeros of both signs and NaNs included (a
    channel holding one is NaN throughout), on NumPy's passes and the kernels, on 1 and 2 threads."""
    assume(not compiled or kernels.numba_installed())
    r = np.random.default_rng(seed)
    x = (r.standard_normal(shape) * r.uniform(0.5, 3) + r.uniform(-1, 1)).astype(dtype)
    grad = r.standard_normal(shape).astype(dtype)
    if specials:  # a NaN in the last channel, and upstream zeros of both signs, some where the ReLU cuts
        x[r.integers(shape[0]), -1].flat[0] = np.nan
        grad.flat[r.integers(0, grad.size, 5)] = -0.0
    channels = shape[1]
    weight = r.uniform(0.5, 2, channels).astype(dtype) if affine in ("both", "weight") else None
    bias = r.standard_normal(channels).astype(dtype) if affine in ("both", "bias") else None
    running = (None, None)
    if mode != "train-no-running":
        running = (r.standard_normal(channels).astype(dtype), r.uniform(0.5, 2, channels).astype(dtype))
    with kernels_and_threads(compiled, threads):
        separate, fused = both_ways(x, weight, bias, grad, mode != "eval", running)
    assert_same_bits(separate, fused)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_relu_keeps_a_negative_zero_and_nan_as_relu_does(kernels_path, dtype):
    """A constant channel normalized to -0.0 (0·(−γ/σ̂) + (−0.0)) stays -0.0, as relu(-0.0) is; a
    channel holding a NaN is NaN throughout, and its gradients too."""
    x = randn(0, (4, 3, 2, 2)).astype(dtype)
    x[:, 0] = 1.5
    x[2, 2, 1, 0] = np.nan
    weight, bias = np.array([-1.0, 1.0, 1.0], dtype), np.array([-0.0, 0.5, 0.5], dtype)
    separate, fused = both_ways(x, weight, bias, randn(1, x.shape).astype(dtype), True, (None, None))
    assert np.signbit(fused[0][:, 0]).all() and (fused[0][:, 0] == 0).all()
    assert np.isnan(fused[0][:, 2]).all() and np.isnan(fused[3][:, 2]).all()
    assert_same_bits(separate, fused)


def test_the_kernels_write_no_relu_pass_of_their_own(monkeypatch):
    """With the compiled kernels the fused op is one op in the graph, not a batch norm and a ReLU."""
    from deepgrad import kernels

    if not kernels.numba_installed():
        pytest.skip("the compiled kernels need numba")
    monkeypatch.setattr(kernels, "ENABLED", True)
    x = dg.tensor(randn(0, (4, 3, 5, 5)), requires_grad=True)
    out = F.batch_norm(x, None, None, training=True, fuse_relu=True)
    assert type(out.grad_fn).__name__ == "BatchNorm" and out.grad_fn.name == "batchnorm+relu"
    assert out.grad_fn.kernels is not None and out.grad_fn.relu is not None


# ----------------------------------------------------------------------------
# nn.Sequential


def block():
    dg.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 1), nn.ReLU())


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_sequential_runs_batch_norm_and_relu_as_one_op(monkeypatch, kernels_path, training):
    calls = relu_layer_calls(monkeypatch)
    model, x = block().train(training), randn(5, (4, 2, 6, 6))
    fused = training_step(model, x)
    assert calls == [model[4]], "the ReLU after the batch norm ran as a layer of its own"
    calls.clear()
    hooked = block().train(training)  # the same parameters, and a hook on its first ReLU
    hooked[2].register_forward_hook(lambda module, inputs, output: None)
    separate = training_step(hooked, x)
    assert calls == [hooked[2], hooked[4]]
    assert_same_bits(separate, fused)


@pytest.mark.parametrize("where", ["batch norm", "relu"])
@pytest.mark.parametrize("hook", ["forward", "forward pre", "backward"])
def test_a_hook_on_either_layer_sees_each_layer_on_its_own(monkeypatch, where, hook):
    calls = relu_layer_calls(monkeypatch)
    model = block()
    layer = model[1] if where == "batch norm" else model[2]
    seen = []
    if hook == "forward":
        layer.register_forward_hook(lambda module, inputs, output: seen.append(output.data.copy()))
    elif hook == "forward pre":
        layer.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].data.copy()))
    else:
        layer.register_full_backward_hook(lambda module, grad_input, grad_output: seen.append(grad_output[0]))
    training_step(model, randn(5, (4, 2, 6, 6)))
    assert calls == [model[2], model[4]] and len(seen) == 1
    if where == "batch norm" and hook == "forward":  # the batch norm's own output, before the ReLU
        assert (seen[0] < 0).any()


def test_a_subclass_of_either_layer_runs_as_written(monkeypatch):
    class ShiftedReLU(nn.ReLU):
        def forward(self, x):
            return super().forward(x) + 1.0

    class Doubled(nn.BatchNorm2d):
        def forward(self, x, fuse_relu=False):
            return super().forward(x) * 2.0

    calls = relu_layer_calls(monkeypatch)
    x = dg.tensor(randn(5, (4, 3, 2, 2)))
    out = nn.Sequential(nn.BatchNorm2d(3), ShiftedReLU())(x)
    assert out.data.min() == 1.0 and len(calls) == 1
    out = nn.Sequential(Doubled(3), nn.ReLU())(x)
    expected = F.relu(F.batch_norm(x, None, None, training=True) * 2.0)
    np.testing.assert_array_equal(out.data, expected.data)
    assert len(calls) == 2


def test_sequential_keeps_its_layers_and_state_dict():
    """The fusion is in how it runs: the layers, their names and the state_dict are as built."""
    model = block()
    assert [type(m).__name__ for m in model] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "ReLU"]
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "3.weight",
        "3.bias",
    ]
    training_step(model, randn(5, (4, 2, 6, 6)))
    assert int(model[1].num_batches_tracked) == 1


def test_a_small_model_never_enters_the_pool_with_the_fused_op(monkeypatch):
    """mlp-sized batch norm and ReLU, fused, stay on the calling thread."""

    def refuse(*args, **kwargs):
        raise AssertionError("the pool was used")

    monkeypatch.setattr(parallel, "together", refuse)
    before = dg.get_num_threads()
    dg.set_num_threads(2)
    try:
        model = nn.Sequential(nn.Linear(20, 10), nn.BatchNorm1d(10), nn.ReLU())
        model(dg.tensor(randn(0, (16, 20)))).sum().backward()
    finally:
        dg.set_num_threads(before)
