"""Activations and (log-)softmax: float64 gradcheck on random shapes, hardmax,
numerical stability at extreme inputs, GELU without SciPy, and dtype preservation.

Inputs of the piecewise activations are drawn away from their kinks (0 for
relu/leaky_relu/elu, threshold/beta for softplus) so that central differences
are a valid reference.
"""

import math
import sys
import warnings

import numpy as np
import pytest
from helpers import SETTINGS, away_from_bounds, away_from_zero, randn, seeds, shapes
from hypothesis import given
from hypothesis import strategies as st

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.ops.activation as activation_ops


def gradcheck(fn, array):
    assert dg.gradcheck(fn, [dg.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)]) is True


@st.composite
def shape_and_dim(draw):
    """A 1-d to 3-d shape and a dim of it (negative or not)."""
    shape = draw(shapes(min_dims=1, max_dims=3))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


# ----------------------------------------------------------------------------
# Gradcheck


ELEMENTWISE = {
    "relu": (F.relu, away_from_zero),
    "leaky_relu": (F.leaky_relu, away_from_zero),
    "leaky_relu slope 0.3": (lambda x: F.leaky_relu(x, negative_slope=0.3), away_from_zero),
    "elu": (F.elu, away_from_zero),
    "elu alpha 0.5": (lambda x: F.elu(x, alpha=0.5), away_from_zero),
    "gelu": (F.gelu, randn),
    "gelu none": (lambda x: F.gelu(x, approximate="none"), randn),
    "gelu tanh": (lambda x: F.gelu(x, approximate="tanh"), randn),
    "sigmoid": (F.sigmoid, randn),
    "tanh": (F.tanh, randn),
    "softplus": (F.softplus, randn),
    "dg.relu": (dg.relu, away_from_zero),
    "dg.sigmoid": (dg.sigmoid, randn),
    "dg.tanh": (dg.tanh, randn),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@SETTINGS
@given(shape=shapes(min_dims=0, max_dims=3), seed=seeds)
def test_elementwise_activation_gradcheck(name, shape, seed):
    fn, make = ELEMENTWISE[name]
    gradcheck(fn, make(seed, shape))


@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (2.0, 1.0), (0.5, 0.4), (3.0, -1.5)])
@SETTINGS
@given(shape=shapes(min_dims=1, max_dims=3), seed=seeds)
def test_softplus_gradcheck_both_sides_of_threshold(beta, threshold, shape, seed):
    # The switch to the identity is at x = threshold / beta; values land on both sides of it.
    kink = threshold / beta
    x = away_from_bounds(seed, shape, low=kink, high=kink + 1.0)
    gradcheck(lambda t: F.softplus(t, beta=beta, threshold=threshold), x)


def test_softplus_switches_to_identity_above_threshold():
    x = np.array([-3.0, 0.4, 0.6, 5.0])
    t = dg.tensor(x, requires_grad=True)
    out = F.softplus(t, beta=2.0, threshold=1.0)
    np.testing.assert_array_equal(out.data[2:], x[2:])
    np.testing.assert_allclose(out.data[:2], np.log1p(np.exp(2.0 * x[:2])) / 2.0, rtol=1e-15)
    out.backward(np.ones(4))
    np.testing.assert_array_equal(t.grad[2:], 1.0)
    np.testing.assert_allclose(t.grad[:2], 1 / (1 + np.exp(-2.0 * x[:2])), rtol=1e-15)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax], ids=["softmax", "log_softmax"])
@SETTINGS
@given(shape_dim=shape_and_dim(), seed=seeds)
def test_softmax_gradcheck_over_dims(fn, shape_dim, seed):
    shape, dim = shape_dim
    gradcheck(lambda t: fn(t, dim=dim), randn(seed, shape))


@SETTINGS
@given(shape_dim=shape_and_dim(), seed=seeds)
def test_softmax_and_log_softmax_values(shape_dim, seed):
    shape, dim = shape_dim
    x = randn(seed, shape) * 3
    e = np.exp(x)
    expected = e / e.sum(axis=dim, keepdims=True)
    t = dg.tensor(x)
    out = F.softmax(t, dim=dim)
    np.testing.assert_allclose(out.data, expected, rtol=1e-13)
    np.testing.assert_allclose(out.data.sum(axis=dim), 1.0, rtol=1e-14)
    np.testing.assert_allclose(F.log_softmax(t, dim=dim).data, np.log(expected), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dg.softmax(t, dim).data, expected, rtol=1e-13)


def test_softmax_default_dim_is_last():
    x = dg.tensor(randn(0, (2, 3, 4)))
    np.testing.assert_array_equal(F.softmax(x).data, F.softmax(x, dim=2).data)
    np.testing.assert_array_equal(F.log_softmax(x).data, F.log_softmax(x, dim=-1).data)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax, F.hardmax], ids=["softmax", "log_softmax", "hardmax"])
def test_softmax_dim_out_of_range(fn):
    with pytest.raises(IndexError, match=r"dim 2 is out of range for a tensor of shape \(2, 3\)"):
        fn(dg.tensor(randn(0, (2, 3))), dim=2)


@pytest.mark.parametrize("fn", [F.relu, F.softmax, F.gelu], ids=["relu", "softmax", "gelu"])
def test_integer_input_is_refused(fn):
    with pytest.raises(TypeError, match="expected a floating tensor, got dtype int64"):
        fn(dg.tensor([1, 2, 3]))


def test_gelu_unknown_approximation():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        F.gelu(dg.tensor(randn(0, 3)), approximate="erf")


# ----------------------------------------------------------------------------
# Hardmax


@SETTINGS
@given(shape_dim=shape_and_dim(), seed=seeds)
def test_hardmax_is_one_hot_of_argmax(shape_dim, seed):
    shape, dim = shape_dim
    x = randn(seed, shape)
    t = dg.tensor(x, requires_grad=True)
    out = F.hardmax(t, dim=dim)
    expected = np.moveaxis(np.eye(shape[dim])[x.argmax(axis=dim)], -1, dim)
    np.testing.assert_array_equal(out.data, expected)
    assert out.dtype == np.float64
    assert out.requires_grad is False and out.grad_fn is None


def test_hardmax_first_maximum_on_ties_and_default_dim():
    x = dg.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    np.testing.assert_array_equal(F.hardmax(x).data, [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(F.hardmax(x, dim=0).data, [[0, 1, 1], [1, 0, 0]])


def test_hardmax_passes_no_gradient():
    x = dg.tensor(randn(1, (3, 4)), requires_grad=True)
    y = (F.hardmax(x) * x).sum()  # the gradient reaches x only through the multiplication
    y.backward()
    np.testing.assert_array_equal(x.grad, F.hardmax(x).data)


def test_hardmax_of_0d_tensor():
    out = F.hardmax(dg.tensor(np.array(-2.5)))
    assert out.shape == () and out.item() == 1.0


# ----------------------------------------------------------------------------
# Numerical stability


EXTREME = np.array([1e4, -1e4, 1000.0, -1000.0, 0.0, 3.0, -3.0])


def _with_warnings_as_errors(fn, x, dim=None):
    """Forward and backward of ``fn`` with every warning an error; returns (out, grad)."""
    t = dg.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fn(t) if dim is None else fn(t, dim=dim)
        out.backward(np.ones(out.shape))
    assert np.isfinite(out.data).all() and np.isfinite(t.grad).all()
    return out.data, t.grad


def _softmax_reference(x, axis):
    """Exact softmax of inputs that differ by at least ~40: the rest underflow to 0."""
    top = x.max(axis=axis, keepdims=True)
    e = np.exp(x - top)
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_of_huge_logits(dim):
    x = np.stack([EXTREME, -EXTREME[::-1], EXTREME * 0.5]).T  # (7, 3)
    probs = _softmax_reference(x, dim)
    out, grad = _with_warnings_as_errors(F.softmax, x, dim)
    np.testing.assert_allclose(out, probs, rtol=1e-14, atol=0)
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)  # upstream ones: out · (1 − Σ out) = 0
    out, grad = _with_warnings_as_errors(F.log_softmax, x, dim)
    top = x.max(axis=dim, keepdims=True)
    expected = x - top - np.log(np.exp(x - top).sum(axis=dim, keepdims=True))
    np.testing.assert_allclose(out, expected, rtol=1e-14, atol=0)
    np.testing.assert_allclose(grad, 1 - probs * x.shape[dim], rtol=1e-14, atol=1e-14)


def test_log_softmax_of_huge_gap_keeps_the_gap():
    out, _ = _with_warnings_as_errors(F.log_softmax, np.array([1e4, -1e4, 0.0]))
    np.testing.assert_array_equal(out, [0.0, -2e4, -1e4])


def test_sigmoid_tanh_softplus_of_huge_inputs():
    x = EXTREME
    out, grad = _with_warnings_as_errors(F.sigmoid, x)
    expected = np.array([1.0, 0.0, 1.0, 0.0, 0.5, 1 / (1 + np.exp(-3.0)), 1 / (1 + np.exp(3.0))])
    np.testing.assert_allclose(out, expected, rtol=1e-15, atol=0)
    np.testing.assert_allclose(grad, expected * (1 - expected), rtol=1e-15, atol=0)

    out, grad = _with_warnings_as_errors(F.tanh, x)
    np.testing.assert_array_equal(out, np.tanh(x))
    np.testing.assert_allclose(grad, 1 - np.tanh(x) ** 2, rtol=1e-13, atol=0)

    for beta, threshold in [(1.0, 20.0), (1.0, 1e9), (0.5, 20.0)]:
        out, grad = _with_warnings_as_errors(lambda t, b=beta, h=threshold: F.softplus(t, beta=b, threshold=h), x)
        np.testing.assert_allclose(out, np.logaddexp(0, beta * x) / beta, rtol=1e-15, atol=0)
        np.testing.assert_allclose(grad, np.exp(-np.logaddexp(0, -beta * x)), rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "fn",
    [F.relu, F.leaky_relu, F.elu, F.gelu, lambda t: F.gelu(t, approximate="tanh")],
    ids=["relu", "leaky_relu", "elu", "gelu", "gelu tanh"],
)
def test_other_activations_of_huge_inputs_are_finite(fn):
    out, grad = _with_warnings_as_errors(fn, EXTREME)
    np.testing.assert_allclose(out[[0, 2]], EXTREME[[0, 2]], rtol=1e-15)
    np.testing.assert_allclose(grad[[0, 2]], 1.0, rtol=1e-15)


# ----------------------------------------------------------------------------
# GELU without SciPy


@pytest.fixture
def erf_fallback():
    """The module's host erf as chosen when SciPy is not installed."""
    pytest.importorskip("scipy")
    activation_ops.host_erf.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setitem(sys.modules, "scipy.special", None)  # `from scipy.special import ...` raises ImportError
            fallback = activation_ops.host_erf()
    finally:
        activation_ops.host_erf.cache_clear()  # the next GELU picks SciPy's again
    assert not hasattr(fallback, "types"), "the fallback should not be SciPy's ufunc"
    assert hasattr(activation_ops.host_erf(), "types"), "with SciPy, its ufunc"
    return fallback


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu_with_and_without_scipy_agree(erf_fallback, monkeypatch, dtype):
    x = np.concatenate([randn(3, 200) * 3, [-40.0, -8.0, 0.0, 8.0, 1e4, -1e4]]).astype(dtype)
    upstream = randn(4, x.shape).astype(dtype)

    def run():
        t = dg.tensor(x, requires_grad=True)
        out = F.gelu(t)
        out.backward(upstream)
        return out.data, t.grad

    with_scipy = run()
    monkeypatch.setattr(activation_ops, "host_erf", lambda: erf_fallback)
    without_scipy = run()
    for a, b in zip(with_scipy, without_scipy):
        assert a.dtype == b.dtype == dtype
        tol = 1e-12 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
    if dtype == np.float64:
        expected = x * 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x]))
        np.testing.assert_allclose(without_scipy[0], expected, rtol=1e-12, atol=1e-300)


# ----------------------------------------------------------------------------
# dtypes


FLOAT32 = {
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "gelu tanh": lambda t: F.gelu(t, approximate="tanh"),
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "softplus": F.softplus,
    "softplus beta": lambda t: F.softplus(t, beta=2.0, threshold=1.0),
    "softmax": F.softmax,
    "log_softmax": lambda t: F.log_softmax(t, dim=0),
    "hardmax": F.hardmax,
}


@pytest.mark.parametrize("name", sorted(FLOAT32))
def test_float32_in_float32_out(name):
    x = dg.tensor(randn(5, (3, 4)).astype(np.float32) * 5, requires_grad=True)
    out = FLOAT32[name](x)
    assert out.dtype == np.float32
    if out.requires_grad:
        out.backward(np.ones(out.shape, dtype=np.float32))
        assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


# ----------------------------------------------------------------------------
# The fast max/min against zero behind relu, elu and sigmoid


@pytest.mark.parametrize("ufunc", [np.maximum, np.minimum], ids=["maximum", "minimum"])
@pytest.mark.parametrize(
    "shape",
    [(), (5,), (7, 13), (100, 100), (4, 64), (2, 3, 32), (3, 4, 5, 6), (8, 16, 28, 28), (0, 64), (1, 65536)],
)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_against_zero_is_ufunc_with_zero_keeping_xs_own_zero(ufunc, shape, layout, dtype):
    x = np.asarray(randn(3, shape) * 3, dtype=dtype)
    special = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-45, -1e-45], dtype=dtype)
    x.flat[: min(x.size, special.size)] = special[: x.size]
    if layout == "transposed":
        x = x.T
    elif layout == "strided" and x.ndim:
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    got = activation_ops.against_zero(ufunc, x)
    expected = np.where(x == 0, x, ufunc(x, 0))  # x's own zero where it ties with 0 (as torch.relu)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))
