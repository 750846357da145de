"""Parity with torch.nn.functional (and torch.nn modules) in float64: forward values
and input gradients of every activation and loss, with every option, to rtol 1e-6.

Each comparison goes through ``helpers.check_op``: same inputs, same random
upstream gradient, outputs and every input gradient compared both ways.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402
from helpers import (  # noqa: E402
    check_op,
    class_targets,
    class_weights,
    positive,
    probability_targets,
    randn,
    rng,
)

import deepgrad as dg  # noqa: E402
import deepgrad.functional as F  # noqa: E402
import deepgrad.nn as nn  # noqa: E402

SHAPES = [(), (5,), (3, 4), (2, 3, 4)]
SPECIAL = np.array([1e4, -1e4, 1000.0, -1000.0, 0.0, -30.0, 30.0, 1.0, -1.0, 0.5, -0.5, 2.0])
REDUCTIONS = ["mean", "sum", "none"]


def activation_input(seed, shape, scale=3.0):
    """Normal values times ``scale``; a 1-d input gets the special values (±1e4, ±1000, 0, ...) too."""
    x = randn(seed, shape) * scale
    return np.concatenate([x, SPECIAL]) if len(shape) == 1 else x


# ----------------------------------------------------------------------------
# Activations


ACTIVATIONS = {
    "relu": (F.relu, TF.relu),
    "dg.relu": (dg.relu, torch.relu),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu),
    "leaky_relu 0.2": (lambda x: F.leaky_relu(x, negative_slope=0.2), lambda x: TF.leaky_relu(x, negative_slope=0.2)),
    "elu": (F.elu, TF.elu),
    "elu 0.7": (lambda x: F.elu(x, alpha=0.7), lambda x: TF.elu(x, alpha=0.7)),
    "elu 2.5": (lambda x: F.elu(x, alpha=2.5), lambda x: TF.elu(x, alpha=2.5)),
    "gelu": (F.gelu, TF.gelu),
    "gelu none": (lambda x: F.gelu(x, approximate="none"), lambda x: TF.gelu(x, approximate="none")),
    "gelu tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "dg.sigmoid": (dg.sigmoid, TF.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "dg.tanh": (dg.tanh, TF.tanh),
    "softplus": (F.softplus, TF.softplus),
    "softplus beta 2 threshold 1": (
        lambda x: F.softplus(x, beta=2.0, threshold=1.0),
        lambda x: TF.softplus(x, beta=2.0, threshold=1.0),
    ),
    "softplus beta 0.5 threshold 3": (
        lambda x: F.softplus(x, beta=0.5, threshold=3.0),
        lambda x: TF.softplus(x, beta=0.5, threshold=3.0),
    ),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation(name, shape):
    dg_fn, torch_fn = ACTIVATIONS[name]
    check_op(dg_fn, torch_fn, activation_input(0, shape), seed=1)


@pytest.mark.parametrize("size", [40, 1 << 17], ids=["small", "large"])  # both ways of computing max(0, x)
@pytest.mark.parametrize("name", ["relu", "elu", "leaky_relu"])
def test_activation_of_signed_zeros_nan_and_inf(name, size):
    special = np.array([-0.0, 0.0, np.nan, np.inf, -np.inf, -1e-45, 1e-45, -3.0], dtype=np.float32)
    x = np.resize(special, size)
    ours = getattr(F, name)(dg.tensor(x)).data
    theirs = getattr(TF, name)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)  # NaN where torch has NaN (expm1 may differ by an ulp)
    zeros = theirs == 0
    np.testing.assert_array_equal(np.signbit(ours[zeros]), np.signbit(theirs[zeros]))


@pytest.mark.parametrize("size", [40, 1 << 17], ids=["small", "large"])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_and_its_gradient_at_signed_zeros_nan_and_inf(name, size):
    """Where torch's kernels pick a branch for NaN or ±inf (relu's gradient passes NaN's upstream
    gradient through, softplus is x itself at +inf and 0 at -inf), deepgrad picks the same. Elu's
    gradient at NaN is left out: torch's own kernels disagree (its vectorized loop gives NaN,
    the scalar loop of an array's last elements passes the gradient through); deepgrad's is NaN."""
    dg_fn, torch_fn = ACTIVATIONS[name]
    special = np.array([-0.0, 0.0, np.nan, np.inf, -np.inf, -5e-324, 5e-324, -3.0, 25.0, -25.0])
    x = np.resize(special, size)
    upstream = np.resize(np.array([1.5, -2.0, 0.25]), size)
    ours, theirs = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        out = dg_fn(ours)
        out.backward(dg.tensor(upstream))
    torch_out = torch_fn(theirs)
    torch_out.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.numpy(), torch_out.detach().numpy(), rtol=1e-12, atol=0, err_msg="output")
    compared = ~np.isnan(x) if name.startswith("elu") else slice(None)
    np.testing.assert_allclose(
        np.asarray(ours.grad)[compared], theirs.grad.numpy()[compared], rtol=1e-12, atol=0, err_msg="gradient"
    )
    if name.startswith("elu"):
        assert np.isnan(np.asarray(ours.grad)[np.isnan(x)]).all()


SOFTMAX_DIMS = [
    ((1,), 0),
    ((7,), 0),
    ((7,), -1),
    ((3, 4), 0),
    ((3, 4), 1),
    ((3, 4), -1),
    ((3, 4), -2),
    ((2, 3, 4), 0),
    ((2, 3, 4), 1),
    ((2, 3, 4), 2),
    ((2, 3, 4), -1),
    ((2, 3, 4), -3),
]


@pytest.mark.parametrize("shape, dim", SOFTMAX_DIMS, ids=str)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax(name, shape, dim):
    dg_fn, torch_fn = getattr(F, name), getattr(TF, name)
    check_op(lambda x: dg_fn(x, dim=dim), lambda x: torch_fn(x, dim=dim), randn(2, shape) * 3, seed=3)


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_huge_logits(name, dim):
    x = np.stack([SPECIAL, -SPECIAL[::-1], SPECIAL * 0.5, randn(4, SPECIAL.shape)])
    dg_fn, torch_fn = getattr(F, name), getattr(TF, name)
    check_op(lambda t: dg_fn(t, dim=dim), lambda t: torch_fn(t, dim=dim), x, seed=5)


def test_softmax_default_dim():
    check_op(F.softmax, lambda x: TF.softmax(x, dim=-1), randn(6, (2, 3, 4)))
    check_op(F.log_softmax, lambda x: TF.log_softmax(x, dim=-1), randn(6, (2, 3, 4)))


def torch_hardmax(x, dim=-1):
    index = x.argmax(dim=dim, keepdim=True)
    return torch.zeros_like(x).scatter_(dim, index, 1.0).detach()


@pytest.mark.parametrize("shape, dim", SOFTMAX_DIMS, ids=str)
def test_hardmax(shape, dim):
    out = check_op(lambda x: F.hardmax(x, dim=dim), lambda x: torch_hardmax(x, dim=dim), randn(7, shape))
    assert not out.requires_grad


def test_hardmax_ties_take_the_first_maximum():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [-1.0, -1.0, -5.0]])
    check_op(F.hardmax, torch_hardmax, x)
    check_op(lambda t: F.hardmax(t, dim=0), lambda t: torch_hardmax(t, dim=0), x)


ACTIVATION_MODULES = [
    ("ReLU", {}),
    ("LeakyReLU", {}),
    ("LeakyReLU", {"negative_slope": 0.3}),
    ("ELU", {}),
    ("ELU", {"alpha": 0.4}),
    ("GELU", {}),
    ("GELU", {"approximate": "tanh"}),
    ("Sigmoid", {}),
    ("Tanh", {}),
    ("Softplus", {}),
    ("Softplus", {"beta": 3.0, "threshold": 2.0}),
    ("Softmax", {"dim": 1}),
    ("Softmax", {"dim": -1}),
    ("LogSoftmax", {"dim": 0}),
    ("LogSoftmax", {"dim": 2}),
]


@pytest.mark.parametrize("name, kwargs", ACTIVATION_MODULES, ids=lambda v: str(v) if isinstance(v, dict) else v)
def test_activation_module(name, kwargs):
    check_op(getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs), randn(8, (2, 3, 4)) * 3, seed=9)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_hardmax_module(dim):
    out = check_op(nn.Hardmax(dim=dim), lambda x: torch_hardmax(x, dim=dim), randn(10, (3, 4)))
    assert not out.requires_grad


# ----------------------------------------------------------------------------
# Cross-entropy and NLL


LAYOUTS = {"1d": (4,), "2d": (6, 3), "4d": (2, 4, 3, 2)}

# name -> (weight, ignore_index, label_smoothing); None keeps the default ignore_index -100.
CE_OPTIONS = {
    "plain": (False, None, 0.0),
    "weight": (True, None, 0.0),
    "ignore -100": (False, -100, 0.0),
    "ignore 2": (False, 2, 0.0),
    "smoothing": (False, None, 0.15),
    "smoothing 1": (False, None, 1.0),
    "weight smoothing": (True, None, 0.3),
    "weight ignore": (True, 2, 0.0),
    "all": (True, -100, 0.25),
}


def ce_kwargs(shape, option, seed):
    """Matching keyword arguments for deepgrad and torch."""
    use_weight, ignore_index, smoothing = CE_OPTIONS[option]
    dg_kw, torch_kw = {}, {}
    if use_weight:
        w = class_weights(seed, shape)
        dg_kw["weight"], torch_kw["weight"] = dg.tensor(w), torch.tensor(w)
    if ignore_index is not None:
        dg_kw["ignore_index"] = torch_kw["ignore_index"] = ignore_index
    if smoothing:
        dg_kw["label_smoothing"] = torch_kw["label_smoothing"] = smoothing
    return dg_kw, torch_kw


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", list(CE_OPTIONS))
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_cross_entropy_class_indices(layout, option, reduction):
    shape = LAYOUTS[layout]
    target = class_targets(11, shape, CE_OPTIONS[option][1])
    dg_kw, torch_kw = ce_kwargs(shape, option, 12)
    check_op(
        lambda x: F.cross_entropy(x, dg.tensor(target), reduction=reduction, **dg_kw),
        lambda x: TF.cross_entropy(x, torch.tensor(target), reduction=reduction, **torch_kw),
        randn(10, shape) * 2,
        seed=13,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", ["plain", "weight", "smoothing", "smoothing 1", "weight smoothing"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_cross_entropy_class_probabilities(layout, option, reduction):
    shape = LAYOUTS[layout]
    target = probability_targets(21, shape)
    dg_kw, torch_kw = ce_kwargs(shape, option, 22)
    check_op(
        lambda x: F.cross_entropy(x, dg.tensor(target), reduction=reduction, **dg_kw),
        lambda x: TF.cross_entropy(x, torch.tensor(target), reduction=reduction, **torch_kw),
        randn(20, shape) * 2,
        seed=23,
    )
    if CE_OPTIONS[option][1] is None:  # a target that requires grad gets its gradient too (torch refuses ignore_index)
        check_op(
            lambda x, t: F.cross_entropy(x, t, reduction=reduction, **dg_kw),
            lambda x, t: TF.cross_entropy(x, t, reduction=reduction, **torch_kw),
            randn(20, shape) * 2,
            target,
            seed=24,
        )


@pytest.mark.parametrize("option", ["plain", "weight smoothing", "all"])
def test_cross_entropy_of_huge_logits(option):
    x = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, 1e4, 0.0, -5.0], [1e4, 1e4, -1e4, 0.0], [1000.0, -1000.0, 0.0, 1.0]])
    target = np.array([1, 1, 2, 0])
    dg_kw, torch_kw = ce_kwargs(x.shape, option, 31)
    check_op(
        lambda t: F.cross_entropy(t, target, reduction="none", **dg_kw),
        lambda t: TF.cross_entropy(t, torch.tensor(target), reduction="none", **torch_kw),
        x,
    )
    probs = probability_targets(32, x.shape)
    check_op(
        lambda t: F.cross_entropy(t, probs, **dg_kw),
        lambda t: TF.cross_entropy(t, torch.tensor(probs), **torch_kw),
        x,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", ["plain", "weight", "ignore -100", "ignore 2", "weight ignore"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_nll_loss(layout, option, reduction):
    shape = LAYOUTS[layout]
    target = class_targets(41, shape, CE_OPTIONS[option][1])
    dg_kw, torch_kw = ce_kwargs(shape, option, 42)
    check_op(
        lambda x: F.nll_loss(x, target, reduction=reduction, **dg_kw),
        lambda x: TF.nll_loss(x, torch.tensor(target), reduction=reduction, **torch_kw),
        randn(40, shape),
        seed=43,
    )


def test_nll_loss_of_log_softmax_is_cross_entropy():
    target = np.array([0, 2, 1, 1, 0, 2])
    check_op(
        lambda x: F.nll_loss(F.log_softmax(x, dim=1), target),
        lambda x: TF.cross_entropy(x, torch.tensor(target)),
        randn(44, (6, 3)),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", list(CE_OPTIONS))
def test_cross_entropy_module(option, reduction):
    shape = LAYOUTS["4d"]
    target = class_targets(51, shape, CE_OPTIONS[option][1])
    dg_kw, torch_kw = ce_kwargs(shape, option, 52)
    dg_loss = nn.CrossEntropyLoss(reduction=reduction, **dg_kw)
    torch_loss = torch.nn.CrossEntropyLoss(reduction=reduction, **torch_kw)
    check_op(lambda x: dg_loss(x, target), lambda x: torch_loss(x, torch.tensor(target)), randn(50, shape), seed=53)
    probs = probability_targets(54, shape)
    x = randn(55, shape)
    if CE_OPTIONS[option][1] is not None and CE_OPTIONS[option][1] >= 0:
        with pytest.raises(RuntimeError, match="ignore_index is not supported"):
            torch_loss(torch.tensor(x), torch.tensor(probs))
        with pytest.raises(ValueError, match="ignore_index=2 is not supported for class-probability targets"):
            dg_loss(dg.tensor(x), probs)
        return
    check_op(lambda t: dg_loss(t, probs), lambda t: torch_loss(t, torch.tensor(probs)), x, seed=56)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", ["plain", "weight", "ignore 2", "weight ignore"])
@pytest.mark.parametrize("layout", ["2d", "4d"])
def test_nll_loss_module(layout, option, reduction):
    shape = LAYOUTS[layout]
    target = class_targets(61, shape, CE_OPTIONS[option][1])
    dg_kw, torch_kw = ce_kwargs(shape, option, 62)
    dg_loss = nn.NLLLoss(reduction=reduction, **dg_kw)
    torch_loss = torch.nn.NLLLoss(reduction=reduction, **torch_kw)
    check_op(lambda x: dg_loss(x, target), lambda x: torch_loss(x, torch.tensor(target)), randn(60, shape), seed=63)


# ----------------------------------------------------------------------------
# MSE and binary cross-entropy


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_mse_loss(shape, reduction):
    # both arguments require grad: the target's gradient is compared too
    check_op(
        lambda a, b: F.mse_loss(a, b, reduction=reduction),
        lambda a, b: TF.mse_loss(a, b, reduction=reduction),
        randn(70, shape),
        randn(71, shape),
        seed=72,
    )
    target = randn(73, shape)
    check_op(
        nn.MSELoss(reduction=reduction),
        torch.nn.MSELoss(reduction=reduction),
        randn(74, shape),
        target,
        seed=75,
    )
    check_op(
        lambda a: F.mse_loss(a, target, reduction=reduction),
        lambda a: TF.mse_loss(a, torch.tensor(target), reduction=reduction),
        randn(76, shape),
    )


BCE_SHAPES = [(5,), (3, 4), (2, 3, 4)]
WEIGHTS = ["none", "per class", "full"]


def elementwise_weight(kind, shape, seed):
    if kind == "none":
        return None
    return positive(seed, shape[-1:] if kind == "per class" else shape, 0.2, 3.0)


def soft_targets(seed, shape):
    """Targets in [0, 1] with exact 0s and 1s among them."""
    y = rng(seed).uniform(0, 1, shape)
    y.flat[::3] = np.round(y.flat[::3])
    return y


def _torch_or_none(array):
    return None if array is None else torch.tensor(array)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_kind", WEIGHTS)
@pytest.mark.parametrize("shape", BCE_SHAPES, ids=str)
def test_binary_cross_entropy(shape, weight_kind, reduction):
    target = soft_targets(80, shape)
    weight = elementwise_weight(weight_kind, shape, 81)
    p = rng(82).uniform(0.02, 0.98, shape)
    check_op(
        lambda x: F.binary_cross_entropy(x, target, weight=weight, reduction=reduction),
        lambda x: TF.binary_cross_entropy(x, torch.tensor(target), weight=_torch_or_none(weight), reduction=reduction),
        p,
        seed=83,
    )
    check_op(  # the target as an input that requires grad: its gradient, −logit(p), is compared too
        lambda x, t: nn.BCELoss(weight=weight, reduction=reduction)(x, t),
        lambda x, t: torch.nn.BCELoss(weight=_torch_or_none(weight), reduction=reduction)(x, t),
        p,
        target,
        seed=84,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_at_exact_zero_and_one(reduction):
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-300])
    target = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 1.0])
    check_op(
        lambda x: F.binary_cross_entropy(x, target, reduction=reduction),
        lambda x: TF.binary_cross_entropy(x, torch.tensor(target), reduction=reduction),
        p,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weighted", [False, True], ids=["", "pos_weight"])
@pytest.mark.parametrize("weight_kind", WEIGHTS)
@pytest.mark.parametrize("shape", BCE_SHAPES, ids=str)
def test_binary_cross_entropy_with_logits(shape, weight_kind, pos_weighted, reduction):
    target = soft_targets(90, shape)
    weight = elementwise_weight(weight_kind, shape, 91)
    pos_weight = positive(92, shape[-1:], 0.2, 5.0) if pos_weighted else None
    x = randn(93, shape) * 4
    x.flat[:4] = [1e4, -1e4, 1000.0, -1000.0]
    check_op(
        lambda t: F.binary_cross_entropy_with_logits(
            t, target, weight=weight, reduction=reduction, pos_weight=pos_weight
        ),
        lambda t: TF.binary_cross_entropy_with_logits(
            t,
            torch.tensor(target),
            weight=_torch_or_none(weight),
            reduction=reduction,
            pos_weight=_torch_or_none(pos_weight),
        ),
        x,
        seed=94,
    )
    dg_loss = nn.BCEWithLogitsLoss(
        weight=None if weight is None else dg.tensor(weight),
        reduction=reduction,
        pos_weight=None if pos_weight is None else dg.tensor(pos_weight),
    )
    torch_loss = torch.nn.BCEWithLogitsLoss(
        weight=_torch_or_none(weight), reduction=reduction, pos_weight=_torch_or_none(pos_weight)
    )
    check_op(lambda t, y: dg_loss(t, y), lambda t, y: torch_loss(t, y), x, target, seed=95)  # y's gradient too
