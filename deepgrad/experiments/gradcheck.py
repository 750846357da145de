"""``gradcheck``: numerical differentiation against backprop — the error of the difference quotient
against the step h, and what each costs. (Notes 001, 数值微分.)

The notes compute a partial derivative numerically as a small difference, with ε a small number
"such as 1e-4", and use it to check the gradient backprop derives. Here the function is the
cross-entropy loss of a small MLP (64 → 16 tanh → 10, float64, a batch of 32 digits; random weights
per seed), backprop's gradient comes from deepgrad's autograd, and every one of its P = 1210
parameters is perturbed in turn for steps h from 1e-1 down to 1e-12:

- the central difference (f(θ + h) − f(θ − h)) / 2h has a truncation error ∝ h² (its Taylor terms
  of odd order cancel); the one-sided (f(θ + h) − f(θ)) / h keeps the h·f''/2 term, so ∝ h;
- both have a round-off error ∝ (machine ε)·|f| / h: below some h it takes over and the error
  grows again, so the error against h is a V on log-log axes whose bottom lies where the two meet
  (for the central difference at h ≈ (ε_machine)^⅓ ≈ 1e-5, in float64).

The error is ‖g_numerical − g_backprop‖ / ‖g_backprop‖ over all parameters. The same loss is also
differenced in float32, where the V's bottom moves up to h ≈ 1e-2…3e-2 (error ~3e-4) and 1e-4 gives
only ~3e-2: the notes' ε = 1e-4 is a step for float64, which is why ``dg.gradcheck`` differences in float64. Two
checks of the checker: ``dg.gradcheck`` (central, ε = 1e-4) passes on the loss, and it catches a
backprop bug — a tanh whose backward forgets its derivative 1 − tanh² — by a disagreement many
orders of magnitude above its own error. Cost: the numerical gradient needs 2·P forward passes;
backprop one forward and one backward, whatever P; both are timed.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np

from .. import functional as F
from ..gradcheck import GradcheckError
from ..gradcheck import gradcheck as check_gradient
from ..tensor import Function, Tensor, no_grad, tensor
from ..viz.numerics import seed_lines
from ..viz.seeds import seed_bars
from .claims import Claim, above, at_most, below
from .common import Context, Figure, Report, Table

TITLE = "Gradient checking: the difference quotient's error against the step h, and backprop's cost"
QUESTION = (
    "How closely does numerical differentiation (the central difference, ε ≈ 1e-4) reproduce backprop's gradient, "
    "at which step h, and at what cost (001)?"
)
SEEDS = 3
INPUTS, CLASSES = 64, 10
HIDDEN, BATCH = 16, 32
QUICK_HIDDEN, QUICK_BATCH = 4, 8
STEPS = [10.0 ** (-k / 2) for k in range(2, 25)]  # 1e-1 … 1e-12, half decades
QUICK_STEPS = [10.0**-k for k in range(1, 13)]
NOTES_EPS = 1e-4
TRUNCATION = (1e-4, 1e-1)  # h where the truncation error dominates (float64): the slope's fit
ROUNDOFF = (1e-12, 1e-8)  # h where round-off dominates the central difference (float64)
BACKPROP_REPEATS = 30


class TanhForgetsDerivative(Function):
    """A deliberate backprop bug: tanh forward, but its backward passes the gradient through as if
    tanh' were 1 (the factor 1 − tanh² forgotten)."""

    def forward(self, x):
        return np.tanh(x)

    def backward(self, grad):
        return (grad.copy(),)


def buggy_tanh(x: Tensor) -> Tensor:
    return TanhForgetsDerivative()(x)


def problem(context: Context) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(x, y, parameters) of this seed: a random batch of the training split (flattened, float64)
    and random weights (LeCun normal, biases N(0, 0.1²)), every value float32-representable, so
    the float32 and float64 losses are of the same parameters."""
    rng = np.random.default_rng(context.seed)
    images, labels = context.splits().train.arrays[:2]
    batch, hidden = (QUICK_BATCH, QUICK_HIDDEN) if context.quick else (BATCH, HIDDEN)
    rows = rng.choice(len(images), batch, replace=False)
    x = images[rows].reshape(batch, -1).astype(np.float64)
    shapes = [((hidden, INPUTS), 1 / math.sqrt(INPUTS)), ((hidden,), 0.1), ((CLASSES, hidden), 1 / math.sqrt(hidden))]
    shapes.append(((CLASSES,), 0.1))
    params = [(std * rng.standard_normal(shape)).astype(np.float32).astype(np.float64) for shape, std in shapes]
    return x, np.asarray(labels[rows], dtype=np.int64), params


def mlp_loss(x: np.ndarray, y: np.ndarray, activation=F.tanh):
    """The loss as a function of the parameter tensors: mean cross-entropy of a one-hidden-layer MLP."""
    inputs = tensor(x)

    def loss(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
        return F.cross_entropy(activation(inputs @ w1.T + b1) @ w2.T + b2, y)

    return loss


def backprop_gradient(loss, params: list[np.ndarray]) -> np.ndarray:
    """Backprop's gradient of ``loss`` at ``params``, flattened."""
    tensors = [tensor(p, requires_grad=True) for p in params]
    loss(*tensors).backward()
    return np.concatenate([np.asarray(t.grad).ravel() for t in tensors]).astype(np.float64)


def differences(loss, params: list[np.ndarray], steps: list[float], dtype) -> dict[str, Any]:
    """The central and one-sided difference quotients of ``loss`` in ``dtype`` for every parameter
    and every step: {"central": (steps, P), "forward": (steps, P), "seconds": per step (2·P forward
    passes for the central one)}."""
    tensors = [tensor(p.astype(dtype)) for p in params]
    count = sum(p.size for p in params)
    central, forward, seconds = np.zeros((len(steps), count)), np.zeros((len(steps), count)), []
    with no_grad():
        base = float(loss(*tensors).item())
        for i, h in enumerate(steps):
            step = dtype(h)
            start, k = time.perf_counter(), 0
            for t in tensors:
                flat = t.data.reshape(-1)  # a view: writing it perturbs the parameter
                for j in range(flat.size):
                    original = flat[j]
                    flat[j] = original + step
                    plus = float(loss(*tensors).item())
                    flat[j] = original - step
                    minus = float(loss(*tensors).item())
                    flat[j] = original
                    central[i, k] = (plus - minus) / (2 * h)
                    forward[i, k] = (plus - base) / h
                    k += 1
            seconds.append(time.perf_counter() - start)
    return {"central": central, "forward": forward, "seconds": seconds}


def relative_errors(quotients: np.ndarray, gradient: np.ndarray) -> list[float]:
    """‖g_numerical − g_backprop‖ / ‖g_backprop‖ for each step (each row of ``quotients``)."""
    return [float(np.linalg.norm(row - gradient) / np.linalg.norm(gradient)) for row in quotients]


def measure(context: Context) -> dict[str, Any]:
    """One seed (one random net and batch): the relative error of the central and one-sided
    differences against backprop at every step h, in float64 and float32; dg.gradcheck's verdicts on
    the correct and the buggy backprop and the buggy one's error; the seconds of one backprop and
    of one numerical gradient."""
    x, y, params = problem(context)
    steps = QUICK_STEPS if context.quick else STEPS
    loss = mlp_loss(x, y)
    gradient = backprop_gradient(loss, params)
    errors, quotients = {}, {}
    for name, dtype in (("float64", np.float64), ("float32", np.float32)):
        quotients[name] = differences(mlp_loss(x.astype(dtype), y), params, steps, dtype)
        errors[name] = {kind: relative_errors(quotients[name][kind], gradient) for kind in ("central", "forward")}
    notes = nearest(steps, NOTES_EPS)
    buggy = backprop_gradient(mlp_loss(x, y, buggy_tanh), params)
    numerical = quotients["float64"]["central"][notes]
    backprop_times = []
    for _ in range(BACKPROP_REPEATS):
        start = time.perf_counter()
        backprop_gradient(loss, params)
        backprop_times.append(time.perf_counter() - start)
    return {
        "steps": steps,
        "parameters": int(gradient.size),
        "gradient_norm": float(np.linalg.norm(gradient)),
        "errors": errors,
        "buggy_error": relative_errors(numerical[None], buggy)[0],
        "correct_error": errors["float64"]["central"][notes],
        "gradcheck_passes": passes(loss, params),
        "gradcheck_catches_bug": not passes(mlp_loss(x, y, buggy_tanh), params),
        "backprop_seconds": statistics.median(backprop_times),
        "numerical_seconds": quotients["float64"]["seconds"][notes],
        "forward_passes": 2 * int(gradient.size),
    }


def passes(loss, params: list[np.ndarray]) -> bool:
    """Whether ``dg.gradcheck`` (central difference, ε = 1e-4, its default tolerances) accepts
    backprop's gradient of ``loss`` at ``params``."""
    try:
        return check_gradient(loss, [tensor(p, requires_grad=True) for p in params])
    except GradcheckError:
        return False


def nearest(steps: list[float], h: float) -> int:
    """The index of the step closest to ``h`` on the log scale."""
    return min(range(len(steps)), key=lambda i: abs(math.log10(steps[i]) - math.log10(h)))


def slope(steps: list[float], errors: list[float], window: tuple[float, float]) -> float:
    """The least-squares slope of log error against log h over the steps inside ``window``."""
    chosen = [(math.log10(h), math.log10(e)) for h, e in zip(steps, errors) if window[0] <= h <= window[1] and e > 0]
    hs, es = np.array(chosen).T
    return float(np.polyfit(hs, es, 1)[0])


def best_step(steps: list[float], errors: list[float]) -> tuple[float, float]:
    """(h, error) at the smallest error."""
    i = int(np.argmin(errors))
    return steps[i], errors[i]


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    first = measured[0]
    steps = first["steps"]
    f64 = [seed["errors"]["float64"] for seed in measured]
    f32 = [seed["errors"]["float32"] for seed in measured]
    central_slopes = [slope(steps, e["central"], TRUNCATION) for e in f64]
    forward_slopes = [slope(steps, e["forward"], TRUNCATION) for e in f64]
    roundoff_slopes = [slope(steps, e["central"], ROUNDOFF) for e in f64]
    best = [best_step(steps, e["central"]) for e in f64]
    best32 = [best_step(steps, e["central"]) for e in f32]
    best_forward = [best_step(steps, e["forward"]) for e in f64]
    cost_ratio = [seed["numerical_seconds"] / seed["backprop_seconds"] for seed in measured]
    bug_ratio = [seed["buggy_error"] / seed["correct_error"] for seed in measured]
    column = {  # error per step, one list of seeds per step
        (dtype, kind): [[seed["errors"][dtype][kind][i] for seed in measured] for i in range(len(steps))]
        for dtype in ("float64", "float32")
        for kind in ("central", "forward")
    }
    # the guides run a decade below the curves they describe, so that both stay visible
    anchor = 0.1 * statistics.median(e["central"][nearest(steps, 1e-2)] for e in f64)
    forward_anchor = 0.1 * statistics.median(e["forward"][nearest(steps, 1e-2)] for e in f64)
    roundoff_anchor = 0.1 * statistics.median(e["central"][-1] for e in f64)
    truncating = [h for h in steps if h >= 1e-5]
    one_sided = [h for h in steps if h >= 1e-7]
    rounding = [h for h in steps if h <= 1e-6]
    seed_lines(
        {
            "error of the difference quotient against backprop": {
                "xlabel": "step h (log)",
                "ylabel": "‖g_numerical − g_backprop‖ / ‖g_backprop‖ (log)",
                "log_x": True,
                "log_y": True,
                "curves": {
                    "central, float64": (steps, column["float64", "central"]),
                    "one-sided, float64": (steps, column["float64", "forward"]),
                    "central, float32": (steps, column["float32", "central"]),
                },
                "styles": {"central, float32": ":"},
                "guides": {
                    "∝ h² (truncation)": (truncating, [anchor * (h / 1e-2) ** 2 for h in truncating]),
                    "∝ h": (one_sided, [forward_anchor * (h / 1e-2) for h in one_sided]),
                    "∝ 1/h (round-off)": (rounding, [roundoff_anchor * steps[-1] / h for h in rounding]),
                },
                "vlines": {"the notes' ε = 1e-4": NOTES_EPS},
                "marks": {
                    f"best h = {best[0][0]:.1e}: {best[0][1]:.1e}": best[0],
                },
            }
        },
        context.path("gradcheck_error.png"),
        title=f"Central and one-sided differences of an MLP's loss ({first['parameters']} parameters): "
        f"{len(measured)} random nets",
        width=7.5,
        height=5.2,
    )
    seed_bars(
        {
            "one whole gradient": {
                "ylabel": "seconds (log)",
                "log_y": True,
                "bars": {
                    "backprop": [seed["backprop_seconds"] for seed in measured],
                    "numerical": [seed["numerical_seconds"] for seed in measured],
                },
            }
        },
        context.path("gradcheck_cost.png"),
        title=f"1 forward + 1 backward\nagainst {first['forward_passes']} forwards",
    )
    claims = [
        Claim.judge(
            "gradcheck/central-h2",
            "001",
            "The central difference's error falls as h² while the truncation error dominates.",
            f"|log-log slope − 2| of the central difference's relative error against h, h = {TRUNCATION[0]:g}…"
            f"{TRUNCATION[1]:g} (float64)",
            [abs(s - 2) for s in central_slopes],
            at_most(0.2),
        ),
        Claim.judge(
            "gradcheck/one-sided-h",
            "001",
            "The one-sided difference's error falls only as h.",
            f"|log-log slope − 1| of the one-sided difference's relative error, h = {TRUNCATION[0]:g}…"
            f"{TRUNCATION[1]:g} (float64)",
            [abs(s - 1) for s in forward_slopes],
            at_most(0.2),
        ),
        Claim.judge(
            "gradcheck/round-off",
            "001",
            "Below the best step round-off takes over: the error grows again as 1/h (a V on log-log axes).",
            f"|log-log slope + 1| of the central difference's error, h = {ROUNDOFF[0]:g}…{ROUNDOFF[1]:g} (float64)",
            [abs(s + 1) for s in roundoff_slopes],
            at_most(0.2),
        ),
        Claim.judge(
            "gradcheck/best-step",
            "001",
            "The best step lies near the notes' ε ≈ 1e-4.",
            "decades between the central difference's best h (float64) and 1e-4",
            [abs(math.log10(h) - math.log10(NOTES_EPS)) for h, _ in best],
            at_most(1),
        ),
        Claim.judge(
            "gradcheck/agrees",
            "001",
            "At the best step, backprop agrees with the central difference to about 1e-9.",
            "the central difference's smallest relative error against backprop (float64)",
            [error for _, error in best],
            below(1e-8),
        ),
        Claim.judge(
            "gradcheck/catches-bug",
            "001",
            "Numerical differentiation checks backprop: a backprop bug shows far above the difference's own error.",
            "relative error at ε = 1e-4 of a backprop that forgets tanh' ÷ of the correct backprop",
            bug_ratio,
            above(1e4),
        ),
        Claim.judge(
            "gradcheck/backprop-cheaper",
            "001",
            "Backprop is far cheaper than numerical differentiation (one backward pass against 2·P forward passes).",
            f"seconds for the whole gradient, central difference ({first['forward_passes']} forward passes) ÷ "
            "backprop (median of repeats)",
            cost_ratio,
            above(100),
        ),
    ]
    table = Table(
        "Per random net",
        [
            "seed",
            "best h (central, float64)",
            "its error",
            "error at ε = 1e-4",
            "best h (one-sided)",
            "its error",
            "best h (central, float32)",
            "its error",
            "float32 error at ε = 1e-4",
            "dg.gradcheck: correct / buggy backprop",
            "backprop ms",
            "numerical ms",
        ],
        [
            [
                s,
                h,
                e,
                seed["correct_error"],
                hf,
                ef,
                h32,
                e32,
                seed["errors"]["float32"]["central"][nearest(steps, NOTES_EPS)],
                f"{'passes' if seed['gradcheck_passes'] else 'fails'} / "
                f"{'caught' if seed['gradcheck_catches_bug'] else 'missed'}",
                1e3 * seed["backprop_seconds"],
                1e3 * seed["numerical_seconds"],
            ]
            for s, seed, (h, e), (hf, ef), (h32, e32) in zip(context.seeds, measured, best, best_forward, best32)
        ],
    )
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "function": f"mean cross-entropy of an MLP {INPUTS} → {QUICK_HIDDEN if context.quick else HIDDEN} tanh → "
            f"{CLASSES} on a random batch of {QUICK_BATCH if context.quick else BATCH} digits training samples, "
            f"{first['parameters']} parameters, random weights (LeCun normal) per seed",
            "differences": f"central (f(θ+h) − f(θ−h))/2h and one-sided (f(θ+h) − f(θ))/h of every parameter, "
            f"h = {steps[0]:g} … {steps[-1]:g}; in float64, and in float32 (the figure's dotted line)",
            "error": "‖g_numerical − g_backprop‖ / ‖g_backprop‖ over all parameters, against deepgrad's backprop "
            "(float64)",
            "bug": "a tanh whose backward forgets its derivative 1 − tanh² (dg.gradcheck at ε = 1e-4 must reject it)",
            "cost": f"central difference at one h ({first['forward_passes']} forward passes) against the median of "
            f"{BACKPROP_REPEATS} forward + backward passes, wall seconds in one process",
        },
        claims=claims,
        tables=[table],
        figures=[
            Figure(
                "gradcheck_error.png",
                "The relative error of the numerical gradient against backprop's, for every step h (log-log; mean "
                "over the random nets as the line, their range as the band, each net a dot). Right of the bottom, "
                "truncation: the central difference falls as h² (the dotted guides, a decade below, show the "
                "slopes), the one-sided one only as h; left of it, round-off grows as 1/h. The dashed line is the "
                "notes' ε = 1e-4; the dotted green curve is the central difference in float32, whose V bottoms "
                "out near h = 1e-2…3e-2; below h ≈ 1e-8 θ ± h rounds to θ in float32, the quotient is 0 and the "
                "error 1.",
            ),
            Figure(
                "gradcheck_cost.png",
                "Seconds for one whole gradient: backprop against the central difference at one h (log scale; "
                "the bar is the mean over the nets, the dots each net).",
            ),
        ],
        results={
            "steps": steps,
            "errors": [seed["errors"] for seed in measured],
            "slopes": {"central": central_slopes, "forward": forward_slopes, "roundoff": roundoff_slopes},
            "best_step": [h for h, _ in best],
            "per_seed": [{key: seed[key] for key in seed if key not in ("errors", "steps")} for seed in measured],
        },
    )
