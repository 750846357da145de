"""Optimizers and learning-rate schedules against torch.optim, in float64.

Trajectories: the same start, the same gradients (a random quadratic whose
gradient is computed in NumPy for both; a small MLP whose weights are copied
into a torch twin and trained on the same data), 100 steps, every parameter
compared after every step to rtol 1e-7. Schedules: the lr of every parameter
group after each of 50 steps, to rtol 1e-12 (torch computes most schedules
recursively, deepgrad in closed form, so they agree to rounding, not bit for bit).

The hyperparameters keep every run well conditioned: rounding differences
(deepgrad's and torch's backward sum in different orders) stay below ~1e-10
relative over the 100 steps. Adaptive methods that settle at a minimum, or that
combine a short memory (α or β2 ≤ 0.9) with a large lr, take sign-like steps
g/√v that magnify a 1-ulp difference to 1e-3 within tens of steps; such runs
cannot be compared at any fixed tolerance, so the cases avoid them.
"""

import inspect

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn as nn
from deepgrad import optim
from deepgrad.optim import lr_scheduler

torch = pytest.importorskip("torch")

STEPS = 100
RTOL = 1e-7
SCHEDULE_STEPS = 50
SCHEDULE_RTOL = 1e-12


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The tensors here are tiny: torch's intra-op threads only add synchronization, which costs
    seconds per test on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# case id -> (class name, shared by deepgrad.optim and torch.optim; keyword arguments for both)
OPTIMIZERS = {
    "sgd": ("SGD", dict(lr=0.05)),
    "sgd-momentum": ("SGD", dict(lr=0.05, momentum=0.9)),
    "sgd-dampening": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    "sgd-nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    "sgd-weight-decay": ("SGD", dict(lr=0.05, weight_decay=0.1)),
    "sgd-momentum-weight-decay": ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.1, weight_decay=0.1)),
    "sgd-nesterov-weight-decay": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    "sgd-maximize": ("SGD", dict(lr=0.002, momentum=0.5, maximize=True)),
    "adagrad": ("Adagrad", dict(lr=0.1)),
    "adagrad-lr-decay": ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    "adagrad-accumulator": ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5)),
    "adagrad-weight-decay": ("Adagrad", dict(lr=0.1, weight_decay=0.1)),
    "adagrad-seed-delta": ("Adagrad", dict(lr=0.1, eps=1e-7)),
    "adagrad-all": ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1, eps=1e-7)),
    "rmsprop": ("RMSprop", dict(lr=0.01)),
    "rmsprop-alpha": ("RMSprop", dict(lr=0.001, alpha=0.9)),
    "rmsprop-momentum": ("RMSprop", dict(lr=0.01, momentum=0.9)),
    "rmsprop-centered": ("RMSprop", dict(lr=0.01, centered=True)),
    "rmsprop-weight-decay": ("RMSprop", dict(lr=0.01, weight_decay=0.1)),
    "rmsprop-seed-delta": ("RMSprop", dict(lr=0.01, eps=1e-7)),
    "rmsprop-all": ("RMSprop", dict(lr=0.003, alpha=0.95, momentum=0.5, centered=True, weight_decay=0.1)),
    "adam": ("Adam", dict(lr=0.01)),
    "adam-betas": ("Adam", dict(lr=0.01, betas=(0.4, 0.99))),
    "adam-weight-decay": ("Adam", dict(lr=0.01, weight_decay=0.1)),
    "adam-amsgrad": ("Adam", dict(lr=0.01, amsgrad=True)),
    "adam-amsgrad-weight-decay": ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True, eps=1e-6)),
    "adamw": ("AdamW", dict(lr=0.01)),
    "adamw-weight-decay": ("AdamW", dict(lr=0.01, weight_decay=0.3)),
    "adamw-amsgrad": ("AdamW", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
}


class Problem:
    """Twin deepgrad and torch parameter lists, with one function each that fills their .grad."""

    def __init__(self, dg_params, dg_backward, torch_params, torch_backward):
        self.dg_params, self.dg_backward = dg_params, dg_backward
        self.torch_params, self.torch_backward = torch_params, torch_backward


def quadratic(seed=0):
    """f(w) = ½ wᵀAw − bᵀw on w of 10 values split into a (2, 3) and a (4,) parameter;
    A is symmetric positive definite with eigenvalues in [0.5, 5], so the parameters are coupled.
    The minimum lies 3 to 6 away from the start in every coordinate, beyond the reach of 100
    adaptive steps: near a minimum, sign-like updates (g/√v with a fading v) turn chaotic and
    magnify rounding differences past any fixed tolerance."""
    r = np.random.default_rng(seed)
    q, _ = np.linalg.qr(r.standard_normal((10, 10)))
    a = q @ np.diag(r.uniform(0.5, 5.0, 10)) @ q.T
    start = r.standard_normal(10)
    b = a @ (start + r.choice([-1.0, 1.0], 10) * r.uniform(3.0, 6.0, 10))

    def split(w):
        return [w[:6].reshape(2, 3).copy(), w[6:].copy()]

    def gradient(params):
        w = np.concatenate([p.ravel() for p in params])
        return split(a @ w - b)

    dg_params = [nn.Parameter(w) for w in split(start)]
    torch_params = [torch.tensor(w, requires_grad=True) for w in split(start)]

    def dg_backward():
        for p, g in zip(dg_params, gradient([p.data for p in dg_params])):
            p.grad = g

    def torch_backward():
        for p, g in zip(torch_params, gradient([p.detach().numpy() for p in torch_params])):
            p.grad = torch.from_numpy(g)

    return Problem(dg_params, dg_backward, torch_params, torch_backward)


def mlp(seed=0):
    """Linear(5, 16) → tanh → Linear(16, 3) with an MSE loss on 64 fixed samples, full batch.
    The targets come from a teacher of the same shape with larger weights, so the gradients stay
    informative for the 100 steps (see :func:`quadratic` on why the run must not settle)."""
    r = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Linear(5, 16, dtype=dg.float64, generator=r), nn.Tanh(), nn.Linear(16, 3, dtype=dg.float64, generator=r)
    )
    x = r.standard_normal((64, 5))
    w1, b1, w2, b2 = (r.standard_normal(shape) for shape in [(16, 5), (16,), (3, 16), (3,)])
    y = np.tanh(x @ w1.T + b1) @ w2.T + b2
    twin = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
    with torch.no_grad():
        for tp, p in zip(twin.parameters(), model.parameters(), strict=True):
            tp.copy_(torch.from_numpy(p.data))

    def dg_backward():
        F.mse_loss(model(dg.tensor(x)), dg.tensor(y)).backward()

    def torch_backward():
        torch.nn.functional.mse_loss(twin(torch.from_numpy(x)), torch.from_numpy(y)).backward()

    return Problem(list(model.parameters()), dg_backward, list(twin.parameters()), torch_backward)


PROBLEMS = {"quadratic": quadratic, "mlp": mlp}


def assert_same_trajectory(problem, dg_opt, torch_opt, steps=STEPS, schedulers=()):
    for step in range(1, steps + 1):
        dg_opt.zero_grad()
        problem.dg_backward()
        dg_opt.step()
        torch_opt.zero_grad()
        problem.torch_backward()
        torch_opt.step()
        for dg_sched, torch_sched in schedulers:
            dg_sched.step()
            torch_sched.step()
        for i, (p, tp) in enumerate(zip(problem.dg_params, problem.torch_params, strict=True)):
            np.testing.assert_allclose(
                p.data, tp.detach().numpy(), rtol=RTOL, atol=0, err_msg=f"parameter {i} after step {step}"
            )


def groups_of(params, extra):
    """Two parameter groups: the first parameter alone with its own hyperparameters, the rest with the defaults."""
    return [{"params": params[:1], **extra}, {"params": params[1:]}]


# ----------------------------------------------------------------------------
# Trajectories


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("case", list(OPTIMIZERS))
def test_trajectory_matches_torch(case, problem):
    name, kwargs = OPTIMIZERS[case]
    p = PROBLEMS[problem]()
    assert_same_trajectory(
        p, getattr(optim, name)(p.dg_params, **kwargs), getattr(torch.optim, name)(p.torch_params, **kwargs)
    )


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_default_hyperparameters_trajectory_matches_torch(name):
    p = mlp(seed=1)
    assert_same_trajectory(p, getattr(optim, name)(p.dg_params), getattr(torch.optim, name)(p.torch_params))


GROUP_OVERRIDES = {
    "SGD": (dict(lr=0.02, momentum=0.9, nesterov=True), dict(lr=0.05, momentum=0.5, weight_decay=0.01)),
    "Adagrad": (dict(lr=0.3, weight_decay=0.1), dict(lr=0.1, lr_decay=0.01)),
    "RMSprop": (dict(lr=0.003, centered=True, momentum=0.5), dict(lr=0.001, alpha=0.9)),
    "Adam": (dict(lr=0.03, betas=(0.5, 0.9), amsgrad=True), dict(lr=0.01, weight_decay=0.01)),
    "AdamW": (dict(lr=0.03, weight_decay=0.5), dict(lr=0.01, amsgrad=True)),
}


@pytest.mark.parametrize("name", sorted(GROUP_OVERRIDES))
def test_parameter_groups_match_torch(name):
    group, defaults = GROUP_OVERRIDES[name]
    p = mlp(seed=2)
    assert_same_trajectory(
        p,
        getattr(optim, name)(groups_of(p.dg_params, group), **defaults),
        getattr(torch.optim, name)(groups_of(p.torch_params, group), **defaults),
    )


@pytest.mark.parametrize(
    "name, kwargs, schedule",
    [
        ("SGD", dict(lr=0.1, momentum=0.9), ("StepLR", dict(step_size=10, gamma=0.5))),
        ("Adam", dict(lr=0.02), ("CosineAnnealingLR", dict(T_max=60, eta_min=1e-3))),
        ("RMSprop", dict(lr=0.01, centered=True), ("LinearLR", dict(start_factor=0.1, total_iters=20))),
    ],
)
def test_scheduled_trajectory_matches_torch(name, kwargs, schedule):
    schedule_name, schedule_kwargs = schedule
    p = mlp(seed=3)
    dg_opt = getattr(optim, name)(p.dg_params, **kwargs)
    torch_opt = getattr(torch.optim, name)(p.torch_params, **kwargs)
    schedulers = [
        (
            getattr(lr_scheduler, schedule_name)(dg_opt, **schedule_kwargs),
            getattr(torch.optim.lr_scheduler, schedule_name)(torch_opt, **schedule_kwargs),
        )
    ]
    assert_same_trajectory(p, dg_opt, torch_opt, schedulers=schedulers)


# ----------------------------------------------------------------------------
# Names and defaults


def keyword_defaults(cls):
    return {
        name: p.default for name, p in inspect.signature(cls).parameters.items() if name not in ("params", "optimizer")
    }


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_optimizer_arguments_and_defaults_are_torchs(name):
    ours, theirs = keyword_defaults(getattr(optim, name)), keyword_defaults(getattr(torch.optim, name))
    assert ours, name
    for argument, default in ours.items():
        assert argument in theirs, f"{name}: torch.optim.{name} has no argument {argument!r}"
        assert default == theirs[argument], f"{name}({argument}=...): default {default!r}, torch {theirs[argument]!r}"


@pytest.mark.parametrize(
    "name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "ReduceLROnPlateau"]
)
def test_scheduler_arguments_and_defaults_are_torchs(name):
    ours = keyword_defaults(getattr(lr_scheduler, name))
    theirs = keyword_defaults(getattr(torch.optim.lr_scheduler, name))
    assert ours == theirs


# ----------------------------------------------------------------------------
# Learning-rate schedules

BASE_LRS = (0.1, 0.03)

# case id -> (deepgrad scheduler, torch scheduler, keyword arguments for both)
SCHEDULES = {
    "step": ("StepLR", "StepLR", dict(step_size=7, gamma=0.5)),
    "step-default-gamma": ("StepLR", "StepLR", dict(step_size=3)),
    "multistep": ("MultiStepLR", "MultiStepLR", dict(milestones=[30, 5, 12, 12], gamma=0.3)),
    "exponential": ("ExponentialLR", "ExponentialLR", dict(gamma=0.93)),
    "cosine": ("CosineAnnealingLR", "CosineAnnealingLR", dict(T_max=20, eta_min=1e-3)),
    "cosine-to-zero": ("CosineAnnealingLR", "CosineAnnealingLR", dict(T_max=50)),
    "linear-defaults": ("LinearLR", "LinearLR", dict()),
    "linear-warmup": ("LinearLR", "LinearLR", dict(start_factor=0.1, total_iters=10)),
    "linear-decay": ("LinearLR", "LinearLR", dict(start_factor=1.0, end_factor=0.05, total_iters=30)),
    "linear-warmup-alias": ("LinearWarmup", "LinearLR", dict(warmup_steps=8, start_factor=0.25)),
}


def twin_optimizers(lrs=BASE_LRS):
    """A deepgrad and a torch SGD with one group per learning rate (the parameters never get a gradient)."""
    dg_opt = optim.SGD([{"params": [nn.Parameter(np.zeros(2))], "lr": lr} for lr in lrs])
    torch_opt = torch.optim.SGD(
        [{"params": [torch.zeros(2, dtype=torch.float64, requires_grad=True)], "lr": lr} for lr in lrs]
    )
    return dg_opt, torch_opt


def torch_kwargs(kwargs):
    if "warmup_steps" in kwargs:
        kwargs = dict(kwargs)
        kwargs["total_iters"] = kwargs.pop("warmup_steps")
    return kwargs


@pytest.mark.parametrize("case", list(SCHEDULES))
def test_schedule_matches_torch(case):
    ours, theirs, kwargs = SCHEDULES[case]
    dg_opt, torch_opt = twin_optimizers()
    dg_sched = getattr(lr_scheduler, ours)(dg_opt, **kwargs)
    torch_sched = getattr(torch.optim.lr_scheduler, theirs)(torch_opt, **torch_kwargs(kwargs))
    got, expected = [dg_sched.get_last_lr()], [torch_sched.get_last_lr()]
    for _ in range(SCHEDULE_STEPS):
        dg_opt.step()
        dg_sched.step()
        torch_opt.step()
        torch_sched.step()
        got.append(dg_sched.get_last_lr())
        expected.append(torch_sched.get_last_lr())
    assert [g["lr"] for g in dg_opt.param_groups] == got[-1]
    np.testing.assert_allclose(got, expected, rtol=SCHEDULE_RTOL, atol=0)


def plateau_metrics():
    """A loss that falls in steps: plateaus of 6 epochs with small bumps, then a rise."""
    falling = [5.0 / (1 + t // 6) + 0.01 * ((7 * t) % 3) for t in range(40)]
    return falling + [falling[-1] + 0.1 * t for t in range(10)]


PLATEAU_CASES = {
    "defaults": dict(),
    "patience": dict(patience=2),
    "abs-threshold-cooldown": dict(patience=1, threshold=0.05, threshold_mode="abs", cooldown=2, factor=0.5),
    "rel-threshold": dict(patience=0, threshold=0.1, factor=0.7),
    "max": dict(mode="max", patience=2, factor=0.5),
    "max-abs": dict(mode="max", patience=1, threshold=0.01, threshold_mode="abs"),
    "min-lr-floor": dict(patience=0, factor=0.5, min_lr=[0.02, 0.001]),
    "min-lr-eps": dict(patience=0, factor=0.9, min_lr=0.029, eps=2e-3),
}


@pytest.mark.parametrize("case", list(PLATEAU_CASES))
def test_reduce_lr_on_plateau_matches_torch(case):
    kwargs = PLATEAU_CASES[case]
    metrics = plateau_metrics()
    if kwargs.get("mode") == "max":
        metrics = [1 / m for m in metrics]
    dg_opt, torch_opt = twin_optimizers()
    dg_sched = lr_scheduler.ReduceLROnPlateau(dg_opt, **kwargs)
    torch_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **kwargs)
    got, expected = [], []
    for metric in metrics:
        dg_opt.step()
        dg_sched.step(metric)
        torch_opt.step()
        torch_sched.step(metric)
        got.append(dg_sched.get_last_lr())
        expected.append(torch_sched.get_last_lr())
    assert len({tuple(lrs) for lrs in expected}) > 1, "the scripted metric must trigger a reduction"
    np.testing.assert_allclose(got, expected, rtol=SCHEDULE_RTOL, atol=0)
