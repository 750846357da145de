"""Losses: float64 gradcheck of every option, values against NumPy references,
the fused softmax-cross-entropy backward, stability at huge logits, and the
errors that bad input raises.
"""

import warnings

import numpy as np
import pytest
from helpers import class_targets, class_weights, positive, probability_targets, randn, rng, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn as nn

REDUCTIONS = ["mean", "sum", "none"]
FEW = settings(max_examples=8, deadline=None)

# Logits layouts: (C,) with a 0-d target, (N, C), and (N, C, d1, d2) with targets (N, d1, d2).
LAYOUTS = {"1d": (4,), "2d": (5, 3), "4d": (2, 3, 2, 2)}

# name -> (weight, ignore_index, label_smoothing); an ignore_index of None keeps the default -100.
CE_OPTIONS = {
    "plain": (False, None, 0.0),
    "weight": (True, None, 0.0),
    "ignore -100": (False, -100, 0.0),
    "ignore 1": (False, 1, 0.0),
    "smoothing": (False, None, 0.2),
    "all": (True, 1, 0.3),
}


def gradcheck(fn, *arrays):
    inputs = [dg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    assert dg.gradcheck(fn, inputs) is True


# ----------------------------------------------------------------------------
# Gradcheck


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", list(CE_OPTIONS))
@pytest.mark.parametrize("layout", list(LAYOUTS))
@FEW
@given(seed=seeds)
def test_cross_entropy_class_indices_gradcheck(layout, option, reduction, seed):
    shape = LAYOUTS[layout]
    use_weight, ignore_index, smoothing = CE_OPTIONS[option]
    target = class_targets(seed + 1, shape, ignore_index)
    kwargs = {"reduction": reduction, "label_smoothing": smoothing}
    if use_weight:
        kwargs["weight"] = dg.tensor(class_weights(seed + 2, shape))
    if ignore_index is not None:
        kwargs["ignore_index"] = ignore_index
    gradcheck(lambda x: F.cross_entropy(x, target, **kwargs), randn(seed, shape) * 2)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", ["plain", "weight", "smoothing", "all"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@FEW
@given(seed=seeds)
def test_cross_entropy_class_probabilities_gradcheck(layout, option, reduction, seed):
    shape = LAYOUTS[layout]
    use_weight, _, smoothing = CE_OPTIONS[option]
    target = dg.tensor(probability_targets(seed + 1, shape))
    weight = class_weights(seed + 2, shape) if use_weight else None
    gradcheck(
        lambda x: F.cross_entropy(x, target, weight=weight, reduction=reduction, label_smoothing=smoothing),
        randn(seed, shape) * 2,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", ["plain", "weight", "ignore -100", "ignore 1", "all"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@FEW
@given(seed=seeds)
def test_nll_loss_gradcheck(layout, option, reduction, seed):
    shape = LAYOUTS[layout]
    use_weight, ignore_index, _ = CE_OPTIONS[option]
    target = dg.tensor(class_targets(seed + 1, shape, ignore_index))
    kwargs = {"reduction": reduction, "weight": class_weights(seed + 2, shape) if use_weight else None}
    if ignore_index is not None:
        kwargs["ignore_index"] = ignore_index
    gradcheck(lambda x: F.nll_loss(x, target, **kwargs), randn(seed, shape))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@FEW
@given(shape=st.sampled_from([(), (3,), (2, 3), (2, 1, 3)]), seed=seeds)
def test_mse_loss_gradcheck_both_inputs(reduction, shape, seed):
    gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), randn(seed, shape), randn(seed + 1, shape))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weight"])
@FEW
@given(shape=st.sampled_from([(3,), (2, 3), (2, 2, 2)]), seed=seeds)
def test_binary_cross_entropy_gradcheck(reduction, weighted, shape, seed):
    target = rng(seed + 1).uniform(0, 1, shape)
    target.flat[0] = 1.0
    weight = positive(seed + 2, shape[-1:]) if weighted else None
    gradcheck(
        lambda p: F.binary_cross_entropy(p, target, weight=weight, reduction=reduction),
        rng(seed).uniform(0.05, 0.95, shape),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weight"])
@pytest.mark.parametrize("pos_weighted", [False, True], ids=["", "pos_weight"])
@FEW
@given(shape=st.sampled_from([(3,), (2, 3), (2, 2, 3)]), seed=seeds)
def test_binary_cross_entropy_with_logits_gradcheck(reduction, weighted, pos_weighted, shape, seed):
    target = rng(seed + 1).uniform(0, 1, shape)
    target.flat[0] = 1.0
    weight = positive(seed + 2, shape) if weighted else None
    pos_weight = dg.tensor(positive(seed + 3, shape[-1:], 0.2, 4.0)) if pos_weighted else None
    gradcheck(
        lambda x: F.binary_cross_entropy_with_logits(
            x, target, weight=weight, reduction=reduction, pos_weight=pos_weight
        ),
        randn(seed, shape) * 3,
    )


# ----------------------------------------------------------------------------
# Values against NumPy references


def _log_softmax(x, axis=1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def test_cross_entropy_value_is_mean_negative_log_probability():
    x, y = randn(0, (6, 4)), np.array([0, 3, 1, 1, 2, 0])
    expected = -_log_softmax(x)[np.arange(6), y]
    assert F.cross_entropy(dg.tensor(x), y).item() == pytest.approx(expected.mean(), rel=1e-14)
    assert F.cross_entropy(dg.tensor(x), y, reduction="sum").item() == pytest.approx(expected.sum(), rel=1e-14)
    np.testing.assert_allclose(F.cross_entropy(dg.tensor(x), dg.tensor(y), reduction="none").data, expected, rtol=1e-14)
    # cross_entropy = nll_loss ∘ log_softmax
    assert F.nll_loss(F.log_softmax(dg.tensor(x), dim=1), y).item() == pytest.approx(expected.mean(), rel=1e-14)


def test_cross_entropy_weight_ignore_and_smoothing_value():
    x, y = randn(1, (5, 3)), np.array([2, -100, 0, 1, 2])
    w, eps = np.array([0.5, 1.0, 2.0]), 0.1
    logp = _log_softmax(x)
    keep = y != -100
    rows, ys = np.arange(5)[keep], y[keep]
    per_row = -(1 - eps) * w[ys] * logp[rows, ys] - eps / 3 * (w * logp[rows]).sum(axis=1)
    got = F.cross_entropy(dg.tensor(x), y, weight=w, label_smoothing=eps)
    assert got.item() == pytest.approx(per_row.sum() / w[ys].sum(), rel=1e-13)


def test_cross_entropy_spatial_equals_rows():
    x, y = randn(2, (2, 3, 2, 2)), rng(3).integers(0, 3, (2, 2, 2))
    rows = np.moveaxis(x, 1, -1).reshape(-1, 3)
    per = F.cross_entropy(dg.tensor(x), y, reduction="none")
    assert per.shape == (2, 2, 2)
    np.testing.assert_allclose(per.data.reshape(-1), -_log_softmax(rows)[np.arange(8), y.reshape(-1)], rtol=1e-14)


def test_cross_entropy_class_probabilities_value():
    x, t = randn(4, (3, 4)), probability_targets(5, (3, 4))
    expected = -(t * _log_softmax(x)).sum(axis=1).mean()
    assert F.cross_entropy(dg.tensor(x), dg.tensor(t)).item() == pytest.approx(expected, rel=1e-14)


def test_binary_losses_values():
    p, y = np.array([0.1, 0.7, 0.5]), np.array([0.0, 1.0, 0.3])
    bce = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    assert F.binary_cross_entropy(dg.tensor(p), y).item() == pytest.approx(bce.mean(), rel=1e-14)
    logits = np.log(p) - np.log1p(-p)
    got = F.binary_cross_entropy_with_logits(dg.tensor(logits), y, reduction="none").data
    np.testing.assert_allclose(got, bce, rtol=1e-13)
    pw = np.array([3.0, 3.0, 3.0])
    weighted = -(pw * y * np.log(p) + (1 - y) * np.log1p(-p))
    got = F.binary_cross_entropy_with_logits(dg.tensor(logits), y, reduction="sum", pos_weight=pw).item()
    assert got == pytest.approx(weighted.sum(), rel=1e-13)
    assert F.mse_loss(dg.tensor(p), y).item() == pytest.approx(((p - y) ** 2).mean(), rel=1e-15)


# ----------------------------------------------------------------------------
# The fused softmax-cross-entropy backward


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 16), c=st.integers(1, 12), seed=seeds)
def test_fused_backward_is_softmax_minus_onehot_over_n(n, c, seed):
    x = dg.tensor(randn(seed, (n, c)) * 4, requires_grad=True)
    y = rng(seed + 1).integers(0, c, n)
    loss = F.cross_entropy(x, y)
    assert type(loss.grad_fn).__name__ == "SoftmaxCrossEntropyIndices"  # one op, not a chain of generic ones
    loss.backward()
    # The reference in extended precision. At the target class softmax − 1 cancels when the
    # probability is near 1, so float64 can only promise that entry to an ulp or two of 1/n.
    logits = x.data.astype(np.longdouble)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    expected = (p - np.eye(c)[y]) / n
    np.testing.assert_allclose(x.grad, expected, rtol=1e-13, atol=2 * np.finfo(np.float64).eps / n)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2, 2)], ids=["rows", "spatial"])
def test_plain_class_indices_match_the_general_fused_op(shape, reduction):
    """The fast path for plain class indices and the general one (taken here because of the
    all-ones weight) give the same loss and gradient."""
    x = dg.tensor(randn(11, shape) * 3, requires_grad=True)
    y = rng(12).integers(0, shape[1], (shape[0],) + shape[2:])
    upstream = randn(13, (shape[0],) + shape[2:]) if reduction == "none" else None
    results = []
    for weight in (None, np.ones(shape[1])):
        x.grad = None
        loss = F.cross_entropy(x, y, weight=weight, reduction=reduction)
        loss.backward(upstream)
        results.append(
            (type(loss.grad_fn).__name__ if reduction != "none" or len(shape) == 2 else None, loss.data, x.grad)
        )
    (fast_fn, fast_loss, fast_grad), (general_fn, general_loss, general_grad) = results
    if fast_fn is not None:
        assert (fast_fn, general_fn) == ("SoftmaxCrossEntropyIndices", "SoftmaxCrossEntropy")
    np.testing.assert_allclose(fast_loss, general_loss, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(fast_grad, general_grad, rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize(
    "target, ignore_index",
    [([0, 5, 1], -100), ([0, -1, 1], -100), ([0, 2, 1], 2)],
    ids=["too-large", "negative", "ignored-class"],
)
def test_class_indices_off_the_fast_path(target, ignore_index):
    x = dg.tensor(randn(14, (3, 4)), requires_grad=True)
    if ignore_index == -100:
        with pytest.raises(IndexError, match="out of range for 4 classes"):
            F.cross_entropy(x, np.array(target))
    else:
        loss = F.cross_entropy(x, np.array(target), ignore_index=ignore_index)
        expected = F.cross_entropy(x[np.array([0, 2])], np.array([0, 1]))
        np.testing.assert_allclose(loss.data, expected.data, rtol=1e-14)


def test_fused_backward_sum_and_none():
    x = dg.tensor(randn(7, (4, 5)), requires_grad=True)
    y = np.array([4, 0, 2, 2])
    F.cross_entropy(x, y, reduction="sum").backward()
    np.testing.assert_allclose(x.grad, F.softmax(x).data - np.eye(5)[y], rtol=1e-13, atol=1e-17)
    x.grad = None
    upstream = np.array([1.0, -2.0, 0.5, 3.0])
    F.cross_entropy(x, y, reduction="none").backward(upstream)
    np.testing.assert_allclose(x.grad, (F.softmax(x).data - np.eye(5)[y]) * upstream[:, None], rtol=1e-13, atol=1e-17)


# ----------------------------------------------------------------------------
# Huge logits


def _loss_and_grad(fn, x):
    t = dg.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = fn(t)
        loss.backward(np.ones(loss.shape))
    assert np.isfinite(loss.data).all() and np.isfinite(t.grad).all()
    return loss.data, t.grad


HUGE = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]])


def test_cross_entropy_of_huge_logits_is_finite():
    y = np.array([1, 1, 2])
    loss, grad = _loss_and_grad(lambda x: F.cross_entropy(x, y, reduction="none"), HUGE)
    np.testing.assert_allclose(loss, [2e4, 0.0, 2e4 + np.log(2)], rtol=1e-15)
    np.testing.assert_allclose(grad, [[1, -1, 0], [0, 0, 0], [0.5, 0.5, -1]], atol=1e-15)
    for kwargs in [{"label_smoothing": 0.1, "weight": np.array([1.0, 2.0, 0.5])}, {"ignore_index": 1}]:
        _loss_and_grad(lambda x, given=kwargs: F.cross_entropy(x, np.array([0, 2, 2]), **given), HUGE)
    _loss_and_grad(lambda x: F.cross_entropy(x, probability_targets(0, (3, 3)), label_smoothing=0.2), HUGE)
    _loss_and_grad(lambda x: F.nll_loss(F.log_softmax(x, dim=1), y), HUGE)


def test_bce_with_logits_of_huge_logits_is_finite():
    y = np.array([[1.0, 1.0, 0.5], [0.0, 0.0, 0.5], [1.0, 0.0, 0.0]])
    loss, grad = _loss_and_grad(
        lambda x: F.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=np.full(3, 2.0)), HUGE
    )
    # x = ±1e4: the loss is (1 + (pw − 1)y)·|x| on the wrong side, 0 on the right side
    np.testing.assert_allclose(loss[:2, :2], [[0.0, 2e4], [0.0, 1e4]], rtol=1e-15)
    np.testing.assert_allclose(grad[:2, :2], [[0.0, -2.0], [0.0, 1.0]], atol=1e-15)


def test_binary_cross_entropy_at_exact_zero_and_one_is_clamped():
    p = np.array([0.0, 1.0, 0.0, 1.0])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    loss, grad = _loss_and_grad(lambda t: F.binary_cross_entropy(t, y, reduction="none"), p)
    np.testing.assert_array_equal(loss, [0.0, 0.0, 100.0, 100.0])
    np.testing.assert_array_equal(grad, [0.0, 0.0, -1e12, 1e12])


# ----------------------------------------------------------------------------
# Errors


LOGITS = dg.tensor(randn(0, (4, 3)), requires_grad=True)


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss], ids=["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("bad", [3, 7, -1])
def test_class_index_out_of_range(fn, bad):
    with pytest.raises(IndexError, match=rf"target class {bad} is out of range for 3 classes"):
        fn(LOGITS, np.array([0, 1, bad, 2]))


def test_class_index_out_of_range_spatial():
    with pytest.raises(IndexError, match=r"cross_entropy: target class 5 is out of range for 3 classes"):
        F.cross_entropy(dg.tensor(randn(0, (2, 3, 2))), np.array([[0, 1], [5, 2]]))


def test_ignore_index_is_not_out_of_range():
    loss = F.cross_entropy(LOGITS, np.array([0, 7, 7, 2]), ignore_index=7)
    expected = F.cross_entropy(dg.tensor(LOGITS.data[[0, 3]]), np.array([0, 2]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-14)


def test_float_targets_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"cross_entropy: class-probability targets must have the logits' shape"):
        F.cross_entropy(LOGITS, np.full((4, 2), 0.5))
    # float class indices are probabilities of the wrong shape: the message says indices must be integers
    with pytest.raises(ValueError, match="class indices must be integers"):
        F.cross_entropy(LOGITS, np.array([0.0, 1.0, 2.0, 1.0]))


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss], ids=["cross_entropy", "nll_loss"])
def test_non_integer_class_indices(fn):
    with pytest.raises(TypeError, match="class-index targets must be integers, got dtype bool"):
        fn(LOGITS, np.array([True, False, True, True]))


def test_nll_loss_float_class_indices():
    with pytest.raises(TypeError, match="nll_loss: class-index targets must be integers, got dtype float64"):
        F.nll_loss(LOGITS, np.array([0.0, 1.0, 2.0, 1.0]))


def test_ignore_index_with_class_probabilities():
    probs = probability_targets(0, (4, 3))
    with pytest.raises(ValueError, match="cross_entropy: ignore_index=0 is not supported for class-probability"):
        F.cross_entropy(LOGITS, probs, ignore_index=0)
    # a negative ignore_index can never name a class, so it is accepted (as PyTorch does)
    assert F.cross_entropy(LOGITS, probs, ignore_index=-1).item() == F.cross_entropy(LOGITS, probs).item()


def test_class_index_target_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"target shape \(3,\) does not match logits \(4, 3\): expected \(4,\)"):
        F.cross_entropy(LOGITS, np.array([0, 1, 2]))


def test_bad_weight_and_label_smoothing():
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\) for 3 classes, got \(4,\)"):
        F.cross_entropy(LOGITS, np.array([0, 1, 2, 0]), weight=np.ones(4))
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 1\\], got 1.5"):
        F.cross_entropy(LOGITS, np.array([0, 1, 2, 0]), label_smoothing=1.5)
    with pytest.raises(TypeError, match="cross_entropy: logits must be floating, got dtype int64"):
        F.cross_entropy(dg.tensor([[1, 2]]), np.array([0]))


LOSS_CALLS = {
    "cross_entropy": lambda r: F.cross_entropy(LOGITS, np.array([0, 1, 2, 0]), reduction=r),
    "nll_loss": lambda r: F.nll_loss(LOGITS, np.array([0, 1, 2, 0]), reduction=r),
    "mse_loss": lambda r: F.mse_loss(LOGITS, np.zeros((4, 3)), reduction=r),
    "binary_cross_entropy": lambda r: F.binary_cross_entropy(F.sigmoid(LOGITS), np.zeros((4, 3)), reduction=r),
    "binary_cross_entropy_with_logits": lambda r: F.binary_cross_entropy_with_logits(
        LOGITS, np.zeros((4, 3)), reduction=r
    ),
}


@pytest.mark.parametrize("name", list(LOSS_CALLS))
def test_unknown_reduction(name):
    with pytest.raises(ValueError, match=rf"{name}: reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"):
        LOSS_CALLS[name]("avg")


@pytest.mark.parametrize("module", [nn.MSELoss, nn.CrossEntropyLoss, nn.NLLLoss, nn.BCELoss, nn.BCEWithLogitsLoss])
def test_unknown_reduction_in_loss_module(module):
    with pytest.raises(ValueError, match=rf"{module.__name__}: reduction must be one of"):
        module(reduction="elementwise_mean")


@pytest.mark.parametrize(
    "fn",
    [F.mse_loss, F.binary_cross_entropy, F.binary_cross_entropy_with_logits],
    ids=["mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"],
)
def test_mismatched_shapes(fn):
    p = dg.tensor(np.full((4, 1), 0.5))
    with pytest.raises(ValueError, match=r"input shape \(4, 1\) and target shape \(4,\) differ"):
        fn(p, np.full(4, 0.5))
    with pytest.raises(ValueError, match=r"input shape \(4, 1\) and target shape \(1, 4\) differ"):
        fn(p, dg.tensor(np.full((1, 4), 0.5)))


@pytest.mark.parametrize("value", [1.5, -0.1, np.nan, np.inf])
def test_binary_cross_entropy_input_outside_unit_interval(value):
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities in \[0, 1\]"):
        F.binary_cross_entropy(dg.tensor(np.array([0.5, value])), np.array([1.0, 0.0]))


def test_binary_targets_must_be_floating():
    with pytest.raises(TypeError, match="binary_cross_entropy_with_logits: target must be floating, got dtype int64"):
        F.binary_cross_entropy_with_logits(LOGITS, np.zeros((4, 3), dtype=np.int64))


@pytest.mark.parametrize("target", [[1.5, 0.0], [-0.1, 1.0], [float("nan"), 1.0]])
def test_binary_cross_entropy_refuses_targets_outside_0_1_as_pytorch(target):
    """PyTorch: "all elements of target should be between 0 and 1"; the logits form and the soft
    targets of cross_entropy take any value there, as here."""
    p = dg.tensor(np.array([0.3, 0.6]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: every target must be in \[0, 1\]"):
        F.binary_cross_entropy(p, np.array(target))
    assert np.isfinite(F.binary_cross_entropy_with_logits(p, np.array([1.5, -0.5])).item())


@pytest.mark.parametrize(
    "loss",
    [F.binary_cross_entropy, F.binary_cross_entropy_with_logits, F.cross_entropy],
    ids=["bce", "bce_with_logits", "cross_entropy"],
)
def test_a_target_that_requires_grad_gets_its_gradient_and_must_match_the_inputs_dtype(loss):
    p = rng(1).uniform(0.1, 0.9, (4, 3))
    target = probability_targets(2, (4, 3))
    gradcheck(loss, p, target)
    x32 = dg.tensor(p.astype(np.float32), requires_grad=True)
    with pytest.raises(TypeError, match=rf"{loss.__name__}: a target that requires grad must have the input's dtype"):
        loss(x32, dg.tensor(target, requires_grad=True))
    loss(x32, dg.tensor(target)).backward()  # a constant target may have another dtype: it is cast
