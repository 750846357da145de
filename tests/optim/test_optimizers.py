"""Behaviour of deepgrad.optim without PyTorch.

The classic 2-D test functions (an ill-conditioned bowl, a saddle, Rosenbrock's
valley), the seed notes' Momentum against SGD(momentum), parameter groups,
parameters without a gradient, zero_grad, the dtype of the state, state_dict
round trips of optimizers and schedules (the continuation must be bit-identical),
LinearDecay against its formula, and the errors that bad arguments raise.
"""

import copy

import numpy as np
import pytest
from helpers import OPTIMIZER_CONFIGS

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn as nn
from deepgrad import optim
from deepgrad.optim import lr_scheduler

OPTIMIZER_CLASSES = [optim.SGD, optim.Momentum, optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW]


# ----------------------------------------------------------------------------
# Helpers


class MLP:
    """Linear(4, 8) → tanh → Linear(8, 2) with an MSE loss on 16 fixed samples (full batch)."""

    def __init__(self, dtype=dg.float64, seed=0):
        r = np.random.default_rng(seed)
        self.model = nn.Sequential(
            nn.Linear(4, 8, dtype=dtype, generator=r), nn.Tanh(), nn.Linear(8, 2, dtype=dtype, generator=r)
        )
        self.x = dg.tensor(r.standard_normal((16, 4)).astype(dtype))
        self.y = dg.tensor(r.standard_normal((16, 2)).astype(dtype))
        self.params = list(self.model.parameters())

    def clone(self):
        """The same model and data, with parameters that share no memory with this one."""
        twin = copy.deepcopy(self)
        for p, q in zip(self.params, twin.params, strict=True):
            assert not np.shares_memory(p.data, q.data)
        return twin

    def backward(self):
        loss = F.mse_loss(self.model(self.x), self.y)
        loss.backward()
        return loss

    def train(self, opt, steps, scheduler=None):
        for _ in range(steps):
            opt.zero_grad()
            self.backward()
            opt.step()
            if scheduler is not None:
                scheduler.step()


def quadratic_grad(seed=0, n=6):
    """The gradient w ↦ A w − b of a random convex quadratic ½ wᵀAw − bᵀw."""
    r = np.random.default_rng(seed)
    m = r.standard_normal((n, n))
    a, b = m @ m.T / n + 0.5 * np.eye(n), r.standard_normal(n)
    return lambda w: a @ w - b


def state_arrays(opt):
    return [
        (i, key, value)
        for i, state in enumerate(opt.state.values())
        for key, value in state.items()
        if isinstance(value, np.ndarray)
    ]


def assert_same_state(a, b):
    assert len(a.state) == len(b.state)
    for sa, sb in zip(a.state.values(), b.state.values(), strict=True):
        assert sa.keys() == sb.keys()
        for key in sa:
            if isinstance(sa[key], np.ndarray):
                assert sa[key].dtype == sb[key].dtype and np.array_equal(sa[key], sb[key]), key
            else:
                assert sa[key] == sb[key], key


# ----------------------------------------------------------------------------
# The classic 2-D functions: f(point) -> (value, gradient)


def bowl(p):
    """x²/20 + y²: a long flat valley along x (condition number 20), minimum at the origin."""
    x, y = p
    return x * x / 20 + y * y, np.array([x / 10, 2 * y])


def saddle(p):
    """x² − y²: a saddle at the origin; descent must leave along ±y."""
    x, y = p
    return x * x - y * y, np.array([2 * x, -2 * y])


def rosenbrock(p):
    """(1 − x)² + 100 (y − x²)²: a curved, narrow valley, minimum at (1, 1)."""
    x, y = p
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2, np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def descend(function, start, make_optimizer, steps, done):
    """Take up to ``steps`` steps from ``start``; return (the number of steps after which
    ``done(point, value)`` first held, or None; the last point)."""
    p = nn.Parameter(np.array(start, dtype=np.float64))
    opt = make_optimizer([p])
    for step in range(steps + 1):
        value, grad = function(p.data)
        if done(p.data, value):
            return step, p.data
        if step < steps:
            p.grad = grad
            opt.step()
    return None, p.data


def near(target, tol):
    return lambda p, value: np.abs(p - target).max() < tol


# make optimizer, step budget (about 1.5x what the run needs)
BOWL = {
    "sgd": (lambda ps: optim.SGD(ps, lr=0.95), 140),
    "sgd-momentum": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), 240),
    "sgd-nesterov": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), 150),
    "momentum": (lambda ps: optim.Momentum(ps, lr=0.1, momentum=0.9), 240),
    "adagrad": (lambda ps: optim.Adagrad(ps, lr=1.5), 110),
    "adagrad-seed-delta": (lambda ps: optim.Adagrad(ps, lr=0.5, eps=1e-7), 750),
    "rmsprop": (lambda ps: optim.RMSprop(ps, lr=0.1), 160),
    "adam": (lambda ps: optim.Adam(ps, lr=0.3), 220),
    "adamw": (lambda ps: optim.AdamW(ps, lr=0.3), 220),
}


@pytest.mark.parametrize("case", list(BOWL))
def test_bowl_converges_from_a_fixed_start(case):
    make, budget = BOWL[case]
    steps, point = descend(bowl, (-7.0, 2.0), make, budget, near(0.0, 1e-3))
    assert steps is not None, f"{case}: still at {point} after {budget} steps"


def test_momentum_crosses_the_flat_valley_that_stalls_sgd():
    """With the same lr, plain SGD crawls along x (x shrinks by 1 − lr/10 per step) where momentum arrives."""
    stalled, point = descend(bowl, (-7.0, 2.0), lambda ps: optim.SGD(ps, lr=0.1), 240, near(0.0, 1e-3))
    assert stalled is None and abs(point[0]) > 0.5
    arrived, _ = descend(bowl, (-7.0, 2.0), lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), 240, near(0.0, 1e-3))
    assert arrived is not None


def escaped(p, value):
    return value < -1.0


SADDLE = {
    "sgd": (lambda ps: optim.SGD(ps, lr=0.1), 110),
    "sgd-momentum": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), 55),
    "sgd-nesterov": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), 45),
    "momentum": (lambda ps: optim.Momentum(ps, lr=0.1, momentum=0.9), 55),
    "adagrad": (lambda ps: optim.Adagrad(ps, lr=0.5), 5),
    "rmsprop": (lambda ps: optim.RMSprop(ps, lr=0.01), 30),
    "adam": (lambda ps: optim.Adam(ps, lr=0.1), 20),
    "adamw": (lambda ps: optim.AdamW(ps, lr=0.1), 20),
}


@pytest.mark.parametrize("case", list(SADDLE))
def test_saddle_is_escaped_from_near_it(case):
    make, budget = SADDLE[case]
    steps, point = descend(saddle, (1.0, 1e-6), make, budget, escaped)
    assert steps is not None, f"{case}: still at {point} after {budget} steps"
    assert abs(point[1]) > 1.0


@pytest.mark.parametrize("case", list(SADDLE))
def test_saddle_traps_a_start_on_its_stable_line(case):
    """On y = 0 exactly, the gradient has no y component: every method walks into the saddle point."""
    make, _ = SADDLE[case]
    _, point = descend(saddle, (1.0, 0.0), make, 300, lambda p, value: False)
    assert point[1] == 0.0 and abs(point[0]) < 0.1


def test_adaptive_methods_leave_the_saddle_long_before_sgd():
    """SGD's y grows by only (1 + 2·lr) per step; Adam's steps are lr-sized whatever the gradient's scale."""
    slow, point = descend(saddle, (1.0, 1e-6), lambda ps: optim.SGD(ps, lr=0.01), 300, escaped)
    assert slow is None and abs(point[1]) < 1e-3
    fast, _ = descend(saddle, (1.0, 1e-6), lambda ps: optim.Adam(ps, lr=0.01), 300, escaped)
    assert fast is not None


ROSENBROCK = {
    "sgd-momentum": (lambda ps: optim.SGD(ps, lr=1e-3, momentum=0.9), 2400),
    "sgd-nesterov": (lambda ps: optim.SGD(ps, lr=1e-3, momentum=0.9, nesterov=True), 2400),
    "momentum": (lambda ps: optim.Momentum(ps, lr=1e-3, momentum=0.9), 2400),
    "rmsprop-momentum": (lambda ps: optim.RMSprop(ps, lr=1e-4, momentum=0.9), 5000),
    "adam": (lambda ps: optim.Adam(ps, lr=0.05), 2700),
}


@pytest.mark.parametrize("case", list(ROSENBROCK))
def test_rosenbrock_valley_is_followed_to_the_minimum(case):
    make, budget = ROSENBROCK[case]
    steps, point = descend(rosenbrock, (-1.2, 1.0), make, budget, near(1.0, 1e-3))
    assert steps is not None, f"{case}: still at {point} after {budget} steps"


def test_plain_sgd_crawls_along_the_rosenbrock_valley():
    _, point = descend(rosenbrock, (-1.2, 1.0), lambda ps: optim.SGD(ps, lr=1e-3), 2400, lambda p, v: False)
    value, _ = rosenbrock(point)
    assert 1e-3 < value < rosenbrock((-1.2, 1.0))[0] and np.abs(point - 1.0).max() > 1e-2


# ----------------------------------------------------------------------------
# The seed notes' Momentum


def test_momentum_equals_sgd_with_momentum_at_a_constant_lr():
    gradient = quadratic_grad()
    start = np.random.default_rng(1).standard_normal(6)
    seed_form, torch_form = nn.Parameter(start.copy()), nn.Parameter(start.copy())
    a = optim.Momentum([seed_form], lr=0.05, momentum=0.9)
    b = optim.SGD([torch_form], lr=0.05, momentum=0.9)
    for _ in range(100):
        for p, opt in ((seed_form, a), (torch_form, b)):
            p.grad = gradient(p.data)
            opt.step()
        np.testing.assert_allclose(seed_form.data, torch_form.data, rtol=1e-12, atol=0)
        # v = −lr·b
        np.testing.assert_allclose(
            a.state[seed_form]["velocity"], -0.05 * b.state[torch_form]["momentum_buffer"], rtol=1e-10, atol=0
        )


def test_momentum_defaults_are_the_seed_notes():
    p = nn.Parameter(np.zeros(2))
    group = optim.Momentum([p]).param_groups[0]
    assert group["lr"] == 1e-2 and group["momentum"] == 0.9


def test_momentum_first_steps_by_hand():
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = optim.Momentum([p], lr=0.1, momentum=0.5)
    g = np.array([2.0, 4.0])
    p.grad = g
    opt.step()  # v = −0.1·g
    np.testing.assert_allclose(p.data, [0.8, -2.4], rtol=1e-15)
    opt.step()  # v = 0.5·v − 0.1·g = −0.15·g
    np.testing.assert_allclose(p.data, [0.5, -3.0], rtol=1e-15)


# ----------------------------------------------------------------------------
# Parameter groups


def test_each_group_uses_its_own_learning_rate():
    a, b = nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(2))
    opt = optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b]}], lr=0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert all(g["momentum"] == 0.0 and g["nesterov"] is False for g in opt.param_groups)
    a.grad, b.grad = np.ones(3), np.ones(2)
    opt.step()
    assert np.array_equal(a.data, np.full(3, -0.1)) and np.array_equal(b.data, np.full(2, -0.01))


@pytest.mark.parametrize(
    "make",
    [
        lambda groups: optim.Adam(groups, lr=0.01),
        lambda groups: optim.RMSprop(groups, lr=0.01, centered=True),
        lambda groups: optim.SGD(groups, lr=0.05, momentum=0.9),
    ],
)
def test_groups_behave_as_separate_optimizers(make):
    """One optimizer with two groups steps exactly like two optimizers with one group each."""
    mlp = MLP()
    twin = mlp.clone()
    first, rest = {"lr": 0.003, "weight_decay": 0.1}, {}
    together = make([{"params": mlp.params[:2], **first}, {"params": mlp.params[2:], **rest}])
    apart = [make([{"params": twin.params[:2], **first}]), make([{"params": twin.params[2:], **rest}])]
    for _ in range(20):
        mlp.train(together, 1)
        for opt in apart:
            opt.zero_grad()
        twin.backward()
        for opt in apart:
            opt.step()
    for p, q in zip(mlp.params, twin.params, strict=True):
        assert np.array_equal(p.data, q.data)


def test_add_param_group_trains_the_new_parameters_with_the_defaults():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))
    opt = optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "betas": (0.5, 0.9)})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.5, 0.9)
    a.grad, b.grad = np.ones(2), -np.ones(2)
    opt.step()
    np.testing.assert_allclose(b.data, [0.1, 0.1], rtol=1e-6)  # Adam's first step is lr·sign(g)


# ----------------------------------------------------------------------------
# Parameters without a gradient, zero_grad, closure


@pytest.mark.parametrize("case", list(OPTIMIZER_CONFIGS))
def test_parameters_without_gradient_are_skipped(case):
    """Untouched (weight decay included) and stateless until a gradient arrives; then the
    first update is a first update."""
    frozen, trained = nn.Parameter(np.full(3, 2.0)), nn.Parameter(np.full(3, 2.0))
    opt = OPTIMIZER_CONFIGS[case]([frozen, trained])
    for _ in range(3):
        trained.grad = np.array([1.0, -2.0, 0.5])
        opt.step()
    assert np.array_equal(frozen.data, np.full(3, 2.0))
    assert frozen not in opt.state and trained in opt.state

    fresh_param = nn.Parameter(frozen.data.copy())
    fresh = OPTIMIZER_CONFIGS[case]([fresh_param])
    frozen.grad = fresh_param.grad = np.array([0.3, 0.1, -0.2])
    trained.grad = None
    before = trained.data.copy()
    opt.step()
    fresh.step()
    assert np.array_equal(frozen.data, fresh_param.data)
    assert np.array_equal(trained.data, before)


def test_zero_grad_sets_gradients_to_none_by_default():
    mlp = MLP()
    opt = optim.SGD(mlp.params, lr=0.1)
    mlp.backward()
    opt.zero_grad()
    assert all(p.grad is None for p in mlp.params)


def test_zero_grad_without_set_to_none_zeroes_in_place():
    mlp = MLP(dtype=dg.float32)
    opt = optim.SGD(mlp.params, lr=0.1)
    mlp.backward()
    grads = [p.grad for p in mlp.params]
    mlp.params[0].grad = None
    opt.zero_grad(set_to_none=False)
    assert mlp.params[0].grad is None
    for p, g in zip(mlp.params[1:], grads[1:]):
        assert p.grad is g and g.dtype == np.float32 and g.shape == p.shape and not g.any()
    mlp.backward()  # accumulates onto the zeros: the same gradient as from None
    reference = mlp.clone()
    for p in reference.params:
        p.grad = None
    reference.backward()
    for p, q in zip(mlp.params, reference.params):
        assert np.array_equal(p.grad, q.grad)


def test_step_returns_the_closure_loss_computed_with_grad_enabled():
    mlp = MLP()
    opt = optim.Adam(mlp.params, lr=0.01)

    def closure():
        opt.zero_grad()
        return mlp.backward()

    with dg.no_grad():
        loss = opt.step(closure)
    assert isinstance(loss, dg.Tensor) and loss.requires_grad
    assert all(p in opt.state for p in mlp.params)


# ----------------------------------------------------------------------------
# dtypes


@pytest.mark.parametrize("dtype", [dg.float32, dg.float64])
@pytest.mark.parametrize("case", list(OPTIMIZER_CONFIGS))
def test_state_has_the_parameter_dtype(case, dtype):
    mlp = MLP(dtype=dtype)
    opt = OPTIMIZER_CONFIGS[case](mlp.params)
    mlp.train(opt, 3)
    arrays = state_arrays(opt)
    assert arrays or case == "sgd"
    for i, key, value in arrays:
        assert value.dtype == dtype, f"state {i} {key!r}: {value.dtype}"
    for p in mlp.params:
        assert p.dtype == dtype and p.grad.dtype == dtype


def test_loaded_state_takes_the_parameter_dtype():
    wide, narrow = MLP(dtype=dg.float64), MLP(dtype=dg.float32)
    opt = optim.Adam(wide.params, lr=0.01, amsgrad=True)
    wide.train(opt, 3)
    target = optim.Adam(narrow.params, lr=0.01, amsgrad=True)
    target.load_state_dict(opt.state_dict())
    for i, key, value in state_arrays(target):
        assert value.dtype == np.float32, (i, key)
    narrow.train(target, 2)
    assert all(p.dtype == np.float32 for p in narrow.params)


@pytest.mark.parametrize("case", list(OPTIMIZER_CONFIGS))
def test_state_keeps_the_parameter_layout_when_made_and_when_loaded(case):
    """A Linear's weight is column-major: its state arrays are too, made by the optimizer or loaded from
    a state dict (which holds row-major copies), so an update's passes read them in one order."""
    mlp = MLP()
    opt = OPTIMIZER_CONFIGS[case](mlp.params)
    mlp.train(opt, 2)
    loaded = OPTIMIZER_CONFIGS[case](mlp.params)
    loaded.load_state_dict(opt.state_dict())
    for p in (p for p in mlp.params if p.ndim == 2):
        arrays = [p.data, p.grad] + [v for o in (opt, loaded) for v in o.state[p].values() if isinstance(v, np.ndarray)]
        assert len(arrays) > 2 or case == "sgd"
        for array in arrays:
            assert array.flags.f_contiguous and not array.flags.c_contiguous, case


# ----------------------------------------------------------------------------
# state_dict


@pytest.mark.parametrize("case", list(OPTIMIZER_CONFIGS))
def test_state_dict_round_trip_continues_bit_identically(case):
    mlp = MLP()
    opt = OPTIMIZER_CONFIGS[case](mlp.params)
    mlp.train(opt, 7)
    saved = opt.state_dict()
    snapshot = copy.deepcopy(saved)

    resumed = mlp.clone()
    resumed_opt = OPTIMIZER_CONFIGS[case](resumed.params)
    resumed_opt.load_state_dict(saved)
    assert_same_state(opt, resumed_opt)

    mlp.train(opt, 8)
    resumed.train(resumed_opt, 8)
    for p, q in zip(mlp.params, resumed.params, strict=True):
        assert np.array_equal(p.data, q.data)
    assert_same_state(opt, resumed_opt)
    # the saved dict is a snapshot: neither run wrote into it
    for i, state in snapshot["state"].items():
        for key, value in state.items():
            assert np.array_equal(saved["state"][i][key], value), (i, key)


def test_state_dict_layout_is_torchs():
    mlp = MLP()
    opt = optim.SGD([{"params": mlp.params[:2], "lr": 0.1}, {"params": mlp.params[2:]}], lr=0.01, momentum=0.9)
    mlp.train(opt, 1)
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2, 3]]
    assert [g["lr"] for g in saved["param_groups"]] == [0.1, 0.01]
    assert sorted(saved["state"]) == [0, 1, 2, 3]
    assert np.array_equal(saved["state"][2]["momentum_buffer"], opt.state[mlp.params[2]]["momentum_buffer"])


def test_load_state_dict_restores_the_group_hyperparameters():
    mlp = MLP()
    opt = optim.Adam(mlp.params, lr=0.01)
    opt.param_groups[0]["lr"] = 0.0025
    target = optim.Adam(MLP().params, lr=0.5, betas=(0.5, 0.6))
    target.load_state_dict(opt.state_dict())
    assert target.param_groups[0]["lr"] == 0.0025 and target.param_groups[0]["betas"] == (0.9, 0.999)


SCHEDULES = {
    "LinearDecay": lambda opt: lr_scheduler.LinearDecay(opt, total_steps=12, final_lr=1e-3),
    "StepLR": lambda opt: lr_scheduler.StepLR(opt, step_size=4, gamma=0.5),
    "MultiStepLR": lambda opt: lr_scheduler.MultiStepLR(opt, milestones=[3, 9, 20], gamma=0.3),
    "ExponentialLR": lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.9),
    "CosineAnnealingLR": lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=15, eta_min=1e-4),
    "LinearLR": lambda opt: lr_scheduler.LinearLR(opt, start_factor=0.2, end_factor=0.6, total_iters=14),
    "LinearWarmup": lambda opt: lr_scheduler.LinearWarmup(opt, warmup_steps=13),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_training_resumed_from_optimizer_and_schedule_state_continues_bit_identically(name):
    mlp = MLP()
    opt = optim.SGD([{"params": mlp.params[:2], "lr": 0.2}, {"params": mlp.params[2:]}], lr=0.05, momentum=0.9)
    sched = SCHEDULES[name](opt)
    mlp.train(opt, 10, sched)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()

    resumed = mlp.clone()
    resumed_opt = optim.SGD(
        [{"params": resumed.params[:2], "lr": 0.2}, {"params": resumed.params[2:]}], lr=0.05, momentum=0.9
    )
    resumed_sched = SCHEDULES[name](resumed_opt)
    resumed_opt.load_state_dict(opt_state)
    resumed_sched.load_state_dict(sched_state)
    assert resumed_sched.get_last_lr() == sched.get_last_lr()

    for _ in range(15):
        mlp.train(opt, 1, sched)
        resumed.train(resumed_opt, 1, resumed_sched)
        assert resumed_sched.get_last_lr() == sched.get_last_lr()
    for p, q in zip(mlp.params, resumed.params, strict=True):
        assert np.array_equal(p.data, q.data)


def test_reduce_lr_on_plateau_state_round_trip():
    metrics = [1.0, 0.9, 0.9, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.79, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.71, 0.6]

    def make():
        opt = optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1)
        return opt, lr_scheduler.ReduceLROnPlateau(opt, patience=1, cooldown=1, factor=0.5, threshold=0.01)

    opt, sched = make()
    for metric in metrics[:7]:
        sched.step(metric)
    resumed_opt, resumed_sched = make()
    resumed_opt.load_state_dict(opt.state_dict())
    resumed_sched.load_state_dict(sched.state_dict())
    lrs, resumed_lrs = [], []
    for metric in metrics[7:]:
        sched.step(metric)
        resumed_sched.step(metric)
        lrs.append(sched.get_last_lr())
        resumed_lrs.append(resumed_sched.get_last_lr())
    assert lrs == resumed_lrs and lrs[0] != lrs[-1]


# ----------------------------------------------------------------------------
# LinearDecay: the seed notes' schedule


def test_linear_decay_follows_its_formula():
    base_lrs, k, b = (0.1, 0.04), 20, 1e-3
    params = [nn.Parameter(np.zeros(2)) for _ in base_lrs]
    opt = optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, base_lrs)])
    sched = lr_scheduler.LinearDecay(opt, total_steps=k, final_lr=b)
    got = [sched.get_last_lr()]
    for _ in range(50):
        sched.step()
        got.append(sched.get_last_lr())
    expected = [[(1 - i / k) * a0 + (i / k) * b if i <= k else b for a0 in base_lrs] for i in range(51)]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert got[0] == list(base_lrs) and all(lrs == [b, b] for lrs in got[k:])


def test_linear_decay_drives_the_sgd_steps():
    """With a constant gradient c, w_n = w_0 − c·Σ α_i over the rates the steps were taken with."""
    p = nn.Parameter(np.zeros(3))
    opt = optim.SGD([p], lr=0.5)
    sched = lr_scheduler.LinearDecay(opt, total_steps=10, final_lr=0.05)
    c = np.array([1.0, -2.0, 0.5])
    used = []
    for _ in range(15):
        used.append(opt.param_groups[0]["lr"])
        p.grad = c
        opt.step()
        sched.step()
    assert used[0] == 0.5 and used[10:] == [0.05] * 5
    np.testing.assert_allclose(p.data, -c * sum(used), rtol=1e-13)


# ----------------------------------------------------------------------------
# Bad input


def params(n=2):
    return [nn.Parameter(np.zeros(3)) for _ in range(n)]


@pytest.mark.parametrize("cls", OPTIMIZER_CLASSES, ids=lambda c: c.__name__)
def test_negative_learning_rate_is_refused(cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__}.*learning rate -0\.1"):
        cls(params(), lr=-0.1)


@pytest.mark.parametrize("cls", [optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW], ids=lambda c: c.__name__)
def test_negative_eps_is_refused(cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__}.*eps -1e-08"):
        cls(params(), eps=-1e-8)


@pytest.mark.parametrize("betas", [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.999), (0.9, 1.5), (0.9, -0.5)])
@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW], ids=lambda c: c.__name__)
def test_betas_outside_the_unit_interval_are_refused(cls, betas):
    with pytest.raises(ValueError, match=rf"{cls.__name__}.*beta[12]"):
        cls(params(), betas=betas)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1e-4), "weight_decay"),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.9), "momentum"),
        (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "Nesterov"),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
        (lambda ps: optim.SGD(ps, lr="0.1"), "number"),
        (lambda ps: optim.SGD(ps, lr=float("nan")), "learning rate"),
        (lambda ps: optim.Momentum(ps, momentum=1.0), "momentum"),
        (lambda ps: optim.Adagrad(ps, lr_decay=-0.1), "lr_decay"),
        (lambda ps: optim.Adagrad(ps, initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda ps: optim.RMSprop(ps, alpha=-0.5), "alpha"),
        (lambda ps: optim.RMSprop(ps, momentum=-0.5), "momentum"),
        (lambda ps: optim.AdamW(ps, weight_decay=-0.01), "weight_decay"),
        (lambda ps: optim.Adam([{"params": ps[:1], "lr": -1.0}, {"params": ps[1:]}]), "learning rate"),
    ],
)
def test_bad_hyperparameters_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make(params())


def test_numpy_scalars_are_numbers():
    p = nn.Parameter(np.ones(2, dtype=np.float32))
    opt = optim.Adam(
        [p],
        lr=np.float32(0.5),
        betas=(np.float64(0.9), np.float32(0.99)),
        eps=np.float32(1e-8),
        weight_decay=np.int64(0),
    )
    p.grad = np.ones(2, dtype=np.float32)
    opt.step()
    np.testing.assert_allclose(p.data, [0.5, 0.5], rtol=1e-6)
    assert p.dtype == np.float32 and opt.state[p]["exp_avg"].dtype == np.float32
    with pytest.raises(ValueError, match="SGD: learning rate must be a number"):
        optim.SGD([p], lr=np.array([0.1, 0.2]))


def test_numpy_float64_hyperparameters_compute_as_python_numbers():
    """Under NEP 50 a NumPy float64 widens float32 arithmetic where a Python float does not: the
    groups hold Python numbers, so a float64 rate updates float32 weights as 0.1 would, bit for bit."""
    grad = np.random.default_rng(0).standard_normal(5).astype(np.float32)
    results = []
    for lr, momentum in ((0.1, 0.9), (np.float64(0.1), np.float64(0.9))):
        p = nn.Parameter(np.ones(5, dtype=np.float32))
        opt = optim.SGD([p], lr=lr, momentum=momentum)
        for _ in range(3):
            p.grad = grad.copy()
            opt.step()
        assert type(opt.param_groups[0]["lr"]) is float and type(opt.param_groups[0]["momentum"]) is float
        results.append(p.data)
    assert results[1].dtype == np.float32
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("bad", [42, None, nn.Parameter(np.zeros(3))], ids=["int", "None", "single-parameter"])
def test_params_must_be_an_iterable_of_parameters(bad):
    with pytest.raises(TypeError, match="SGD: params must be an iterable"):
        optim.SGD(bad, lr=0.1)


@pytest.mark.parametrize(
    "bad", [[np.zeros(3)], [1.0, 2.0], [dg.tensor(np.arange(3))]], ids=["ndarray", "floats", "integer-tensor"]
)
def test_only_floating_tensors_can_be_optimized(bad):
    with pytest.raises(TypeError, match="Adam: can only optimize"):
        optim.Adam(bad)


@pytest.mark.parametrize("empty", [[], (), iter([])], ids=["list", "tuple", "iterator"])
def test_empty_parameter_list_is_refused(empty):
    with pytest.raises(ValueError, match="Adam: got an empty parameter list"):
        optim.Adam(empty)


def test_a_parameter_passed_twice_is_refused():
    a, b = params()
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([a, b, a], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": [a]}, {"params": [b, a]}], lr=0.1)
    opt = optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [a]})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize(
    "source, target",
    [
        (optim.Adam, optim.AdamW),
        (optim.AdamW, optim.Adam),
        (optim.SGD, optim.Momentum),
        (optim.RMSprop, optim.Adagrad),
    ],
    ids=lambda c: c.__name__,
)
def test_state_dict_of_another_optimizer_type_is_refused(source, target):
    mlp = MLP()
    opt = source(mlp.params, lr=0.01)
    mlp.train(opt, 1)
    other = target(MLP().params, lr=0.01)
    with pytest.raises(ValueError, match=rf"{target.__name__}\.load_state_dict.*'{source.__name__}'"):
        other.load_state_dict(opt.state_dict())
    assert not other.state and other.param_groups[0]["lr"] == 0.01


def test_state_dict_of_another_parameter_layout_is_refused():
    mlp = MLP()
    opt = optim.Adam(mlp.params)
    with pytest.raises(ValueError, match="groups do not match"):
        optim.Adam(mlp.params[:3]).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="groups do not match"):
        optim.Adam([{"params": mlp.params[:2]}, {"params": mlp.params[2:]}]).load_state_dict(opt.state_dict())


def test_schedulers_refuse_bad_arguments():
    opt = optim.SGD(params(), lr=0.1)
    with pytest.raises(TypeError, match="StepLR: expected an Optimizer"):
        lr_scheduler.StepLR([opt], step_size=2)
    with pytest.raises(ValueError, match="LinearDecay: total_steps must be >= 1"):
        lr_scheduler.LinearDecay(opt, total_steps=0, final_lr=0.0)
    with pytest.raises(ValueError, match="LinearLR: factors"):
        lr_scheduler.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: factor must be < 1"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: bad mode"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="minimum")


def test_reduce_lr_on_plateau_needs_one_min_lr_per_group():
    """A shorter list would leave the groups past its end never reduced."""
    opt = optim.SGD([{"params": params(1)}, {"params": params(1)}], lr=0.1)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: expected 2 min_lr values .* got 1"):
        lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.01])
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=[0.05, 0.002])
    for _ in range(4):
        sched.step(1.0)
    assert sched.get_last_lr() == [0.05, 0.002]


def test_weight_decay_work_buffers_are_not_optimizer_state():
    w = nn.Parameter(np.ones(3))
    opt = optim.Adam([w], lr=0.1, weight_decay=0.5)
    w.grad = np.ones(3)
    opt.step()
    assert set(opt.state_dict()["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}


@pytest.mark.parametrize("betas", [0.9, (0.9,), (0.9, 0.99, 0.999)])
def test_malformed_betas_are_a_clear_error(betas):
    with pytest.raises(ValueError, match="betas must be a pair"):
        optim.Adam([nn.Parameter(np.ones(2))], betas=betas)


def test_a_parameter_group_needs_params():
    opt = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="needs a 'params' entry"):
        opt.add_param_group({"lr": 0.5})


def test_reduce_lr_on_plateau_needs_an_optimizer():
    with pytest.raises(TypeError, match="expected an Optimizer"):
        lr_scheduler.ReduceLROnPlateau(object())
