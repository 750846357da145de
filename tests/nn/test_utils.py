"""Gradient clipping (against torch.nn.utils in float64) and parameter vectors."""

import math

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn as nn
from deepgrad.nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters

SHAPES = [(3, 4), (4,), (2, 3, 2), ()]


def make_params(seed=0, scale=1.0, dtype=np.float64, none_at=()):
    """Parameters with random gradients (``scale`` times standard normal); None where listed."""
    rng = np.random.default_rng(seed)
    params = []
    for i, shape in enumerate(SHAPES):
        p = nn.Parameter(rng.standard_normal(shape).astype(dtype))
        p.grad = None if i in none_at else np.asarray(scale * rng.standard_normal(shape), dtype=dtype)
        params.append(p)
    return params


def torch_twins(params):
    torch = pytest.importorskip("torch")
    twins = []
    for p in params:
        t = torch.tensor(p.data, requires_grad=True)
        t.grad = None if p.grad is None else torch.tensor(p.grad)
        twins.append(t)
    return torch, twins


def total_norm(grads, norm_type):
    flat = np.concatenate([g.ravel() for g in grads]).astype(np.float64)
    return np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)


# ----------------------------------------------------------------------------
# clip_grad_norm_


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clipping, not clipping
@pytest.mark.parametrize("none_at", [(), (1,)])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, none_at):
    params = make_params(seed=1, scale=2.0, none_at=none_at)
    torch, twins = torch_twins(params)
    before = [None if p.grad is None else p.grad.copy() for p in params]

    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(twins, max_norm, norm_type=norm_type)

    assert isinstance(total, dg.Tensor) and total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-13, atol=0)
    clipping = max_norm < total.item()
    for i, (p, t, old) in enumerate(zip(params, twins, before)):
        if old is None:
            assert p.grad is None and t.grad is None
            continue
        assert p.grad.shape == p.shape and p.grad.dtype == np.float64
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-13, atol=1e-300, err_msg=f"grad {i}")
        if not clipping:
            np.testing.assert_array_equal(p.grad, old)
    if clipping:
        clipped = total_norm([p.grad for p in params if p.grad is not None], norm_type)
        np.testing.assert_allclose(clipped, max_norm, rtol=1e-5)  # max_norm up to the 1e-6 in the formula


def test_clip_grad_norm_uses_pytorchs_coefficient():
    p = nn.Parameter(np.zeros(2))
    p.grad = np.array([3.0, 4.0])  # norm 5
    total = clip_grad_norm_([p], max_norm=1.0)
    assert total.item() == 5.0
    np.testing.assert_array_equal(p.grad, np.array([3.0, 4.0]) * (1.0 / (5.0 + 1e-6)))
    p.grad = np.array([3.0, 4.0])
    clip_grad_norm_([p], max_norm=5.0)  # coefficient 5/(5 + 1e-6) < 1: still scaled
    np.testing.assert_array_equal(p.grad, np.array([3.0, 4.0]) * (5.0 / (5.0 + 1e-6)))


def test_clip_grad_norm_keeps_float32_grads_in_place():
    params = make_params(seed=2, scale=3.0, dtype=np.float32)
    arrays = [p.grad for p in params]
    expected_total = total_norm(arrays, 2.0)
    expected = [a.astype(np.float64) * (1.0 / (expected_total + 1e-6)) for a in arrays]
    total = clip_grad_norm_(iter(params), 1.0)  # any iterable of parameters
    assert total.dtype == np.float32
    np.testing.assert_allclose(total.item(), expected_total, rtol=1e-6)
    for p, array, e in zip(params, arrays, expected):
        assert p.grad is array and p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad, e, rtol=1e-6)


def test_clip_grad_norm_accepts_a_single_tensor_and_a_model():
    p = nn.Parameter(np.zeros(2))
    p.grad = np.array([6.0, 8.0])
    assert clip_grad_norm_(p, 1.0).item() == 10.0
    np.testing.assert_allclose(np.linalg.norm(p.grad), 1.0, rtol=1e-6)

    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    (model(dg.tensor(np.full((5, 3), 10.0, dtype=np.float32))) * 100).sum().backward()
    assert clip_grad_norm_(model.parameters(), 0.1).item() > 0.1
    np.testing.assert_allclose(total_norm([p.grad for p in model.parameters()], 2.0), 0.1, rtol=1e-5)


def test_clip_grad_norm_skips_parameters_without_grad():
    params = make_params(seed=3, scale=5.0, none_at=(0, 2))
    expected_total = total_norm([params[1].grad, params[3].grad], 2.0)
    total = clip_grad_norm_(params, 1.0)
    np.testing.assert_allclose(total.item(), expected_total, rtol=1e-14)
    assert params[0].grad is None and params[2].grad is None

    nothing = make_params(none_at=(0, 1, 2, 3))
    total = clip_grad_norm_(nothing, 1.0)
    assert total.item() == 0.0 and all(p.grad is None for p in nothing)
    assert clip_grad_norm_([], 1.0).item() == 0.0


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_error_if_nonfinite(bad, norm_type):
    params = make_params(seed=4)
    params[2].grad[0, 1, 0] = bad  # not in the first parameter: the max over parameters must propagate NaN
    before = [p.grad.copy() for p in params]
    with pytest.raises(RuntimeError, match=r"clip_grad_norm_.*(inf|nan).*error_if_nonfinite"):
        clip_grad_norm_(params, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    for p, old in zip(params, before):
        np.testing.assert_array_equal(p.grad, old)  # untouched


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")  # inf · 0
@pytest.mark.parametrize("bad", [math.inf, math.nan])
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_clip_grad_norm_nonfinite_without_error_matches_torch(bad, norm_type):
    params = make_params(seed=5)
    params[2].grad[1, 0, 1] = bad
    torch, twins = torch_twins(params)
    total = clip_grad_norm_(params, 1.0, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(twins, 1.0, norm_type=norm_type)
    np.testing.assert_array_equal(total.data, expected.numpy())
    for i, (p, t) in enumerate(zip(params, twins)):
        np.testing.assert_array_equal(p.grad, t.grad.numpy(), err_msg=f"grad {i}")


# ----------------------------------------------------------------------------
# clip_grad_value_


def test_clip_grad_value_clamps_in_place_and_matches_torch():
    params = make_params(seed=6, scale=2.0, none_at=(1,))
    torch, twins = torch_twins(params)
    arrays = [p.grad for p in params]
    assert clip_grad_value_(params, 0.75) is None
    torch.nn.utils.clip_grad_value_(twins, 0.75)
    for i, (p, t, array) in enumerate(zip(params, twins, arrays)):
        if array is None:
            assert p.grad is None
            continue
        assert p.grad is array and np.abs(p.grad).max() <= 0.75
        np.testing.assert_array_equal(p.grad, t.grad.numpy(), err_msg=f"grad {i}")


def test_clip_grad_value_keeps_small_values_and_dtype():
    p = nn.Parameter(np.zeros(5, dtype=np.float32))
    p.grad = np.array([-3.0, -0.5, 0.0, 0.25, 2.0], dtype=np.float32)
    clip_grad_value_(p, 1.0)
    assert p.grad.dtype == np.float32
    np.testing.assert_array_equal(p.grad, np.array([-1.0, -0.5, 0.0, 0.25, 1.0], dtype=np.float32))


# ----------------------------------------------------------------------------
# parameters_to_vector / vector_to_parameters


def test_parameters_to_vector_concatenates_in_order():
    params = make_params(seed=7)
    vector = parameters_to_vector(params)
    assert isinstance(vector, dg.Tensor) and vector.shape == (12 + 4 + 12 + 1,) and vector.dtype == np.float64
    np.testing.assert_array_equal(vector.data, np.concatenate([p.data.ravel() for p in params]))


def test_parameters_to_vector_is_differentiable():
    params = make_params(seed=8)
    for p in params:
        p.grad = None
    weights = np.arange(29, dtype=np.float64)
    (parameters_to_vector(params) * dg.tensor(weights)).sum().backward()
    offset = 0
    for p in params:
        np.testing.assert_array_equal(p.grad, weights[offset : offset + p.size].reshape(p.shape))
        offset += p.size


def test_vector_round_trip():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    original = [p.data.copy() for p in model.parameters()]
    vector = parameters_to_vector(model.parameters())
    for p in model.parameters():
        p.data[...] = 0
    vector_to_parameters(vector, model.parameters())
    for p, old in zip(model.parameters(), original):
        np.testing.assert_array_equal(p.data, old)

    doubled = parameters_to_vector(model.parameters()).data * 2  # a plain array works too
    vector_to_parameters(doubled, model.parameters())
    assert all(p.dtype == np.float32 for p in model.parameters())
    np.testing.assert_array_equal(parameters_to_vector(model.parameters()).data, doubled)


@pytest.mark.parametrize("size", [28, 30])
def test_vector_to_parameters_size_mismatch_raises_and_modifies_nothing(size):
    params = make_params(seed=9)
    before = [p.data.copy() for p in params]
    with pytest.raises(ValueError, match=rf"vector_to_parameters: expected a 1-D vector of 29 elements.*\({size},\)"):
        vector_to_parameters(np.ones(size), params)
    with pytest.raises(ValueError, match=r"vector_to_parameters.*\(1, 29\)"):
        vector_to_parameters(np.ones((1, 29)), params)
    for p, old in zip(params, before):
        np.testing.assert_array_equal(p.data, old)
