"""Dropout: inverted and classic (scale_at_test) scaling, the p edge cases,
reproducible masks, and the gradient (the mask)."""

import math

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn as nn

N = 1_000_000


@pytest.fixture(autouse=True)
def _restore_default_generator():
    state = dg.get_rng_state()
    yield
    dg.set_rng_state(state)


def gen(seed=0):
    return np.random.default_rng(seed)


def data(shape, seed=0, dtype=np.float64):
    """Values in [0.5, 2): never zero, so a zero in the output is a dropped element."""
    return dg.tensor(gen(seed).uniform(0.5, 2.0, shape).astype(dtype))


# ----------------------------------------------------------------------------
# Statistics of inverted dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_inverted_dropout_keeps_the_mean_and_drops_a_fraction_p(p):
    x = dg.tensor(np.ones(N))
    out = F.dropout(x, p, generator=gen(1)).data
    kept = out != 0
    # Fraction of zeros ~ Binomial(N, p)/N; the mean of out is kept/(N(1−p)): both within 5 standard errors.
    assert abs((1 - kept.mean()) - p) < 5 * math.sqrt(p * (1 - p) / N)
    assert abs(out.mean() - 1.0) < 5 * math.sqrt(p / ((1 - p) * N))
    np.testing.assert_allclose(out[kept], 1.0 / (1.0 - p), rtol=1e-15)


def test_inverted_dropout_scales_kept_elements_by_one_over_keep_probability():
    x = data((1000, 1000))
    out = F.dropout(x, 0.3, generator=gen(2)).data
    kept = out != 0
    np.testing.assert_allclose(out[kept], x.data[kept] / 0.7, rtol=1e-15)
    # mean(out) − mean(x) = mean(x·(m − 1)), with Var(m) = p/(1 − p).
    assert abs(out.mean() - x.data.mean()) < 5 * math.sqrt((x.data**2).mean() * 0.3 / 0.7 / x.size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_keeps_shape_and_dtype(dtype):
    x = data((4, 3, 5), dtype=dtype)
    out = F.dropout(x, 0.5, generator=gen())
    assert out.shape == (4, 3, 5) and out.dtype == dtype
    layer = nn.Dropout(0.5, generator=gen())
    assert layer(x).dtype == dtype and layer.eval()(x).dtype == dtype


def test_eval_mode_is_the_identity():
    x = data((50, 20))
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).data, x.data)
    layer = nn.Dropout(0.5)
    assert layer.training
    state = dg.get_rng_state()
    np.testing.assert_array_equal(layer.eval()(x).data, x.data)
    assert dg.get_rng_state() == state  # no random numbers drawn in eval
    assert not np.array_equal(layer.train()(x).data, x.data)


def test_dropout_inside_a_model_follows_train_and_eval():
    model = nn.Sequential(nn.Identity(), nn.Dropout(0.5, generator=gen()))
    x = data((20, 20))
    assert (model(x).data == 0).any()
    model.eval()
    np.testing.assert_array_equal(model(x).data, x.data)


# ----------------------------------------------------------------------------
# Classic dropout: scale at test time


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_scale_at_test_masks_unscaled_in_training_and_scales_by_keep_probability_in_eval(p):
    x = data((1000, 1000))
    out = F.dropout(x, p, scale_at_test=True, generator=gen(3)).data
    kept = out != 0
    np.testing.assert_array_equal(out[kept], x.data[kept])  # unscaled
    assert abs((1 - kept.mean()) - p) < 5 * math.sqrt(p * (1 - p) / x.size)

    evaluated = F.dropout(x, p, training=False, scale_at_test=True).data
    np.testing.assert_allclose(evaluated, x.data * (1 - p), rtol=1e-15)
    # Both forms have the same expected output, E[train] = (1 − p)·x = eval: the difference of the
    # means is mean(x·(keep − (1 − p))), with Var(keep) = p(1 − p).
    assert abs(out.mean() - evaluated.mean()) < 5 * math.sqrt((x.data**2).mean() * p * (1 - p) / x.size)


def test_scale_at_test_layer():
    layer = nn.Dropout(0.25, scale_at_test=True, generator=gen())
    x = data((30, 30))
    out = layer(x).data
    kept = out != 0
    np.testing.assert_array_equal(out[kept], x.data[kept])
    np.testing.assert_allclose(layer.eval()(x).data, x.data * 0.75, rtol=1e-15)
    assert repr(layer) == "Dropout(p=0.25, scale_at_test=True)"
    assert repr(nn.Dropout()) == "Dropout(p=0.5)"


# ----------------------------------------------------------------------------
# Edge values of p


@pytest.mark.parametrize("scale_at_test", [False, True])
def test_p_zero_is_the_identity(scale_at_test):
    x = data((10, 10))
    for training in (True, False):
        out = F.dropout(x, 0.0, training=training, scale_at_test=scale_at_test, generator=gen())
        np.testing.assert_array_equal(out.data, x.data)


@pytest.mark.parametrize("scale_at_test", [False, True])
def test_p_one_zeroes_everything_without_nan(scale_at_test):
    x = dg.tensor(gen().standard_normal((10, 10)), requires_grad=True)
    out = F.dropout(x, 1.0, scale_at_test=scale_at_test, generator=gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(out.data, np.zeros((10, 10)))
    out.backward(np.ones((10, 10)))
    np.testing.assert_array_equal(x.grad, np.zeros((10, 10)))  # finite zeros, no NaN
    evaluated = F.dropout(x, 1.0, training=False, scale_at_test=scale_at_test).data
    np.testing.assert_array_equal(evaluated, np.zeros((10, 10)) if scale_at_test else x.data)
    assert (nn.Dropout(1)(x).data == 0).all()


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), float("inf"), "0.5", None, True])
def test_p_outside_zero_one_raises_value_error(p):
    x = data((3, 3))
    with pytest.raises(ValueError, match=r"dropout: dropout probability must be in \[0, 1\], got"):
        F.dropout(x, p)
    with pytest.raises(ValueError, match=r"Dropout: dropout probability must be in \[0, 1\]"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="dropout probability"):
        F.dropout(x, p, training=False)  # checked in eval too


def test_numpy_scalars_are_valid_probabilities():
    x = data((100, 100))
    for p in (np.float32(0.5), np.float64(0.5), np.int64(0)):
        out = F.dropout(x, p, generator=gen(4))
        np.testing.assert_array_equal(out.data, F.dropout(x, float(p), generator=gen(4)).data)
    assert nn.Dropout(np.float32(0.25)).p == np.float32(0.25)


# ----------------------------------------------------------------------------
# Reproducibility


def test_masks_reproducible_under_manual_seed():
    x = data((40, 40))
    dg.manual_seed(7)
    first = F.dropout(x, 0.5).data
    second = F.dropout(x, 0.5).data
    assert not np.array_equal(first, second)  # the default generator moves on
    dg.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.5).data, first)
    np.testing.assert_array_equal(F.dropout(x, 0.5).data, second)
    dg.manual_seed(7)
    layer = nn.Dropout(0.5)
    np.testing.assert_array_equal(layer(x).data, first)


def test_masks_reproducible_with_an_explicit_generator():
    x = data((40, 40))
    a = F.dropout(x, 0.5, generator=gen(9)).data
    np.testing.assert_array_equal(F.dropout(x, 0.5, generator=gen(9)).data, a)
    assert not np.array_equal(F.dropout(x, 0.5, generator=gen(10)).data, a)
    state = dg.get_rng_state()
    layer = nn.Dropout(0.5, generator=gen(9))
    np.testing.assert_array_equal(layer(x).data, a)
    assert not np.array_equal(layer(x).data, a)  # the layer's generator moves on
    assert dg.get_rng_state() == state  # the default generator was not used


# ----------------------------------------------------------------------------
# Gradient


@pytest.mark.parametrize("scale_at_test", [False, True])
def test_gradient_is_the_mask(scale_at_test):
    p = 0.4
    x = dg.tensor(gen(5).standard_normal((30, 20)), requires_grad=True)
    out = F.dropout(x, p, scale_at_test=scale_at_test, generator=gen(6))
    mask = F.dropout(dg.tensor(np.ones((30, 20))), p, scale_at_test=scale_at_test, generator=gen(6)).data
    assert set(np.unique(mask)) == {0.0, 1.0 if scale_at_test else 1.0 / (1.0 - p)}
    np.testing.assert_array_equal(out.data, x.data * mask)
    upstream = gen(7).standard_normal((30, 20))
    out.backward(upstream)
    assert x.grad.shape == x.shape and x.grad.dtype == x.dtype
    np.testing.assert_array_equal(x.grad, upstream * mask)


@pytest.mark.parametrize("scale_at_test", [False, True])
def test_gradcheck_with_a_fixed_generator(scale_at_test):
    x = dg.tensor(gen(8).standard_normal((4, 5)), requires_grad=True)
    assert dg.gradcheck(lambda t: F.dropout(t, 0.3, scale_at_test=scale_at_test, generator=gen(11)), [x])


def test_eval_mode_gradient_is_one_or_keep_probability():
    x = dg.tensor(gen(9).standard_normal((3, 4)), requires_grad=True)
    F.dropout(x, 0.3, training=False).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones((3, 4)))
    x.grad = None
    F.dropout(x, 0.3, training=False, scale_at_test=True).sum().backward()
    np.testing.assert_allclose(x.grad, np.full((3, 4), 0.7), rtol=1e-15)
