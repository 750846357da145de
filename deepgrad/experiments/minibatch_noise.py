"""``minibatch-noise``: a mini-batch gradient is a noisy estimate of the full gradient, its noise
shrinks as 1/√m with the batch size m, and that noise lets SGD leave a saddle point where exact
gradient descent stays (002 §5.1.2, §5.1.5, §5.2).

The noise. The notes: one sample's gradient can be far off ("SGD 在训练过程中会出现很强的随机现象"),
so "pick several samples and average" (§5.2). For a ReLU MLP (2 × 100, He initialization) on digits,
the full gradient g over all training samples is compared with the gradients g_B of random
mini-batches B of m samples (drawn without replacement, as the notes' "随机选择m条数据"; 100 batches
per size) for m = 1 … 256: the noise is the root-mean-square distance ‖g_B − g‖ over the batches.
It is measured at the initial weights and again after 5 epochs of SGD (the law should not depend on
where training is). An average of m independent samples has a spread σ₁/√m; drawing without
replacement from N samples multiplies it by √((N − m)/(N − 1)) (0.95 at m = 128 of 1257), so the
slope on log-log axes is fitted over m ≤ 128, where it stays within 0.01 of −½.

The saddle. f(x, y) = x²/2 − y²/2 + y⁴/4 has a saddle point at the origin (f = 0) and two minima at
(0, ±1) (f = −¼); its stable manifold is the x axis: started on it, the gradient never points off
it. The data set: 1024 samples, each sample i adding a random tilt ξᵢ·w (ξᵢ ~ N(0, I)) to the loss,
so that sample i's loss is f(w) + ξᵢ·w and the full-batch loss is f itself. The tilts come in ± pairs
of dyadic numbers, so they cancel exactly in floating point too: the full-batch gradient is exactly
∇f (with tilts that cancel only up to rounding, the rounding error, ~1e-17, is itself a noise that
gradient descent would amplify, after several hundred steps). From (1.5, 0), on the stable manifold,
full-batch gradient descent and SGD with mini-batches of 1 to 256 samples (each step a new random
batch) take 300 steps at α = 0.1; a path has left the saddle when |y| > ½ (halfway to a minimum).
The saddle is two-dimensional so that the path can be drawn; the noise is the same kind of thing as
the network's: the mean of m per-sample gradients, around the full one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..tensor import tensor
from ..train.run import build_run
from ..viz.optimizers import optimizer_paths
from ..viz.seeds import over_setting
from .claims import Claim, above, at_most, below
from .common import Context, Figure, Report, Table, data_description, run_options

TITLE = "Mini-batch noise: the gradient's spread against the batch size, and escaping a saddle point"
QUESTION = (
    "Is a mini-batch gradient a noisy estimate of the full gradient whose spread shrinks as 1/√m with the batch "
    "size (002 §5.2), and does that noise let SGD escape a saddle point where exact gradient descent stalls "
    "(002 §5.1.2, §5.1.5)?"
)
SEEDS = 3

# The noise of a network's gradient
MODEL = {"hidden": [100, 100], "activation": "relu"}
TRAINING = {**MODEL, "optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "batch_size": 32, "epochs": 5, "keep": "last"}
QUICK = {"train_size": 320, "epochs": 1}
BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256]
FIT_UP_TO = 128  # the slope is fitted over m ≤ this (sampling without replacement bends the line beyond)
DRAWS, QUICK_DRAWS = 100, 20  # mini-batches per size
STATES = {"initial": "at the initial weights", "trained": "after training with SGD"}

# The saddle
SAMPLES = 1024  # a power of two: the mean of the ± paired tilts is exactly zero in floating point
DYADIC = 2.0**16  # the tilts are multiples of 2⁻¹⁶: their sums are exact
START = (1.5, 0.0)  # on the stable manifold (the x axis)
LR, SADDLE_STEPS = 0.1, 300
SADDLE_BATCHES = [1, 4, 16, 64, 256]
AWAY = 0.5  # |y| beyond which a path has left the saddle point
DRAWN = [1, 16, 256]  # the batch sizes whose paths the figure draws, beside the full batch


def saddle_f(x, y):
    """x²/2 − y²/2 + y⁴/4: a saddle point at the origin (f = 0), minima at (0, ±1) (f = −¼)."""
    return x**2 / 2 - y**2 / 2 + y**4 / 4


def flat_gradient(model, x, y) -> np.ndarray:
    """The gradient of the mean cross-entropy over the samples (x, y), every parameter's in one vector."""
    model.zero_grad()
    F.cross_entropy(model(tensor(x)), y).backward()
    return np.concatenate([p.grad.ravel() for p in model.parameters()]).astype(np.float64)


def gradient_noise(model, x, y, rng: np.random.Generator, draws: int) -> dict[str, Any]:
    """The full gradient's norm and, per batch size, the root-mean-square ‖g_B − g‖ over ``draws``
    random mini-batches (without replacement), with the slope of its log against log m (m ≤ FIT_UP_TO)."""
    full = flat_gradient(model, x, y)
    sizes = [m for m in BATCH_SIZES if m <= len(x) // 2]
    noise = []
    for m in sizes:
        squared = [np.sum((flat_gradient(model, x[b], y[b]) - full) ** 2) for b in batches(rng, len(x), m, draws)]
        noise.append(float(np.sqrt(np.mean(squared))))
    fitted = [k for k, m in enumerate(sizes) if m <= FIT_UP_TO]
    slope = float(np.polyfit(np.log([sizes[k] for k in fitted]), np.log([noise[k] for k in fitted]), 1)[0])
    return {"full_norm": float(np.linalg.norm(full)), "sizes": sizes, "noise": noise, "slope": slope}


def batches(rng: np.random.Generator, n: int, m: int, draws: int) -> list[np.ndarray]:
    """``draws`` random batches of ``m`` of ``n`` sample indices, each without replacement."""
    return [rng.choice(n, size=m, replace=False) for _ in range(draws)]


def tilts(rng: np.random.Generator) -> np.ndarray:
    """SAMPLES tilts ξᵢ ~ N(0, I) in two dimensions, in ± pairs and multiples of 2⁻¹⁶, so that any sum
    of all of them is exactly zero."""
    half = np.round(rng.standard_normal((SAMPLES // 2, 2)) * DYADIC) / DYADIC
    return np.concatenate([half, -half])


def descend(xi: np.ndarray, batch: int | None, rng: np.random.Generator) -> list[list[float]]:
    """The points [x, y] that (mini-batch) gradient descent visits from START: each step the loss
    f(w) + mean over a random batch of ξᵢ·w (``batch`` None: all samples, the full-batch loss f),
    differentiated by backward(), one step of deepgrad's SGD at LR."""
    w = nn.Parameter(np.array(START, dtype=np.float64))
    optimizer = optim.SGD([w], lr=LR)
    points = [w.data.tolist()]
    everything = tensor(xi)
    for _ in range(SADDLE_STEPS):
        sample = everything if batch is None else tensor(xi[rng.choice(len(xi), size=batch, replace=False)])
        optimizer.zero_grad()
        (saddle_f(w[0], w[1]) + (sample @ w).mean()).backward()
        optimizer.step()
        points.append(w.data.tolist())
    return points


def escape_step(points: list[list[float]]) -> float:
    """The first step at which |y| > AWAY (inf: never)."""
    return next((float(step) for step, (_, y) in enumerate(points) if abs(y) > AWAY), math.inf)


def saddle_run(points: list[list[float]], keep_path: bool) -> dict[str, Any]:
    x, y = points[-1]
    return {
        "escape_step": escape_step(points),
        "final_f": float(saddle_f(x, y)),
        "largest_y": max(abs(p[1]) for p in points),
        "final_distance": float(math.hypot(x, y)),
        **({"path": points} if keep_path else {}),
    }


def measure(context: Context) -> dict[str, Any]:
    """One seed: the gradient noise of the MLP at its initial weights and after training; the runs on
    the saddle of full-batch gradient descent and of SGD at each batch size."""
    training = run_options(context, TRAINING, QUICK)
    rng = np.random.default_rng(context.seed)
    draws = QUICK_DRAWS if context.quick else DRAWS
    run = build_run(context.config(**training), progress=False)
    x, y = run.splits.train.arrays
    noise = {"initial": gradient_noise(run.model, x, y, rng, draws)}
    run.fit()
    noise["trained"] = gradient_noise(run.model, x, y, rng, draws)
    xi = tilts(rng)
    saddle = {"full": saddle_run(descend(xi, None, rng), keep_path=True)}
    for m in SADDLE_BATCHES:
        saddle[str(m)] = saddle_run(descend(xi, m, rng), keep_path=m in DRAWN)
    return {"samples": len(x), "noise": noise, "saddle": saddle}


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    training = run_options(context, TRAINING, QUICK)
    seeds = len(measured)
    sizes = measured[0]["noise"]["initial"]["sizes"]
    n = measured[0]["samples"]

    def one_over_root_m(state: str) -> list[list[float]]:  # σ₁/√m·√((N − m)/(N − 1)), each seed's σ₁
        return [
            [seed["noise"][state]["noise"][0] / math.sqrt(m) * math.sqrt((n - m) / (n - 1)) for seed in measured]
            for m in sizes
        ]

    over_setting(
        {
            f"{STATES[state]}": {
                "xlabel": "batch size m (log)",
                "ylabel": "‖g_B − g‖, root mean square over batches (log)",
                "log_x": True,
                "log_y": True,
                "ticks": sizes,
                "curves": {  # the formula first, so that the measured curve is drawn over it
                    "σ₁/√m · √((N−m)/(N−1)), σ₁ measured at m = 1": (sizes, one_over_root_m(state)),
                    "measured": (
                        sizes,
                        [[seed["noise"][state]["noise"][k] for seed in measured] for k in range(len(sizes))],
                    ),
                },
                "references": {
                    "‖g‖, the full gradient (mean)": math.fsum(seed["noise"][state]["full_norm"] for seed in measured)
                    / seeds
                },
            }
            for state in STATES
        },
        context.path("noise.png"),
        title=f"The spread of mini-batch gradients around the full gradient, MLP {MODEL['hidden']} ReLU on "
        f"{context.dataset} ({seeds} seeds)",
        sharey=True,
    )
    first = measured[0]["saddle"]
    paths = {"full batch (exact gradient)": first["full"]["path"]}
    paths.update({f"SGD, batch {m}": first[str(m)]["path"] for m in DRAWN})
    optimizer_paths(
        paths,
        saddle_f,
        context.path("saddle.png"),
        ((-2.0, 2.0), (-1.6, 1.6)),
        (0.0, 0.0),
        "saddle point",
        title=f"{SADDLE_STEPS} steps from ({START[0]:g}, {START[1]:g}) on x²/2 − y²/2 + y⁴/4, α = {LR:g}",
        notes={
            label: escaped(run["escape_step"])
            for label, run in zip(paths, [first["full"], *(first[str(m)] for m in DRAWN)])
        },
        progress=(
            "f(x, y) + ¼, height above the minima (log)",
            {label: [saddle_f(px, py) + 0.25 for px, py in points] for label, points in paths.items()},
        ),
        references={"the saddle point: ¼": 0.25},
    )
    over_setting(
        {
            "steps to leave the saddle point": {
                "xlabel": "batch size m (log)",
                "ylabel": f"first step with |y| > {AWAY:g}",
                "log_x": True,
                "ticks": SADDLE_BATCHES,
                "curves": {
                    "SGD": (
                        SADDLE_BATCHES,
                        [[seed["saddle"][str(m)]["escape_step"] for seed in measured] for m in SADDLE_BATCHES],
                    )
                },
                "references": {full_batch_fate(measured): SADDLE_STEPS},
            }
        },
        context.path("escape.png"),
        title=f"Leaving the saddle point, {seeds} seeds",
    )
    full_stays = [seed["saddle"]["full"]["largest_y"] for seed in measured]
    slowest = [max(seed["saddle"][str(m)]["escape_step"] for m in SADDLE_BATCHES) for seed in measured]
    claims = [
        Claim.judge(
            "minibatch-noise/noisy",
            "002 §5.2",
            "The gradient of a single sample deviates strongly from the full gradient: SGD's steps are noisy.",
            "root-mean-square ‖g₁ − g‖ ÷ ‖g‖ for one-sample batches, the smaller of the initial and trained MLP",
            [min(seed["noise"][s]["noise"][0] / seed["noise"][s]["full_norm"] for s in STATES) for seed in measured],
            above(1),
        ),
        Claim.judge(
            "minibatch-noise/one-over-root-m",
            "002 §5.2",
            "Averaging the gradient over m samples shrinks its noise as 1/√m.",
            f"|slope of log ‖g_B − g‖ against log m + ½| (m = 1 … {FIT_UP_TO}), the larger of the initial and "
            "trained MLP",
            [max(abs(seed["noise"][s]["slope"] + 0.5) for s in STATES) for seed in measured],
            below(0.1),
        ),
        Claim.judge(
            "minibatch-noise/gd-stalls",
            "002 §5.1.2",
            "At a saddle point the gradient vanishes: exact gradient descent started on the saddle's stable "
            "manifold converges to the saddle point and stays there.",
            f"largest |y| of full-batch gradient descent over {SADDLE_STEPS} steps from ({START[0]:g}, 0)",
            full_stays,
            at_most(1e-6),
        ),
        Claim.judge(
            "minibatch-noise/sgd-escapes",
            "002 §5.1.5",
            "The inexact mini-batch gradient lets SGD escape the saddle point where the exact gradient stalls.",
            f"steps until |y| > {AWAY:g}, the slowest of SGD's batch sizes {', '.join(map(str, SADDLE_BATCHES))} "
            f"(inf: not within {SADDLE_STEPS})",
            slowest,
            below(SADDLE_STEPS),
        ),
    ]
    rows = [
        [STATES[state], math.fsum(seed["noise"][state]["full_norm"] for seed in measured) / seeds]
        + [math.fsum(seed["noise"][state]["noise"][k] for seed in measured) / seeds for k in (0, sizes.index(32))]
        + [math.fsum(seed["noise"][state]["slope"] for seed in measured) / seeds]
        for state in STATES
    ]
    saddle_rows = [
        [
            label,
            math.fsum(seed["saddle"][key]["escape_step"] for seed in measured) / seeds,
            math.fsum(seed["saddle"][key]["final_f"] for seed in measured) / seeds,
        ]
        for label, key in [("full batch", "full")] + [(f"batch {m}", str(m)) for m in SADDLE_BATCHES]
    ]
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": data_description(context, training),
            "noise": f"MLP {MODEL['hidden']} ReLU (He initialization); the full gradient over the {n} training "
            f"samples against {QUICK_DRAWS if context.quick else DRAWS} random batches of each size "
            f"{', '.join(map(str, sizes))} (without replacement), at the initial weights and after "
            f"{training['epochs']} epochs of SGD (lr {TRAINING['lr']:g}, batch {TRAINING['batch_size']})",
            "saddle": f"f = x²/2 − y²/2 + y⁴/4 plus a tilt ξᵢ·w per sample, {SAMPLES} samples (ξᵢ ~ N(0, I), in ± "
            f"pairs: the full-batch loss is f exactly); from ({START[0]:g}, {START[1]:g}), {SADDLE_STEPS} steps of "
            f"deepgrad's SGD at α = {LR:g}, full batch and batches of {', '.join(map(str, SADDLE_BATCHES))} "
            "(a new random batch each step)",
        },
        claims=claims,
        tables=[
            Table(
                f"The gradient noise of the MLP (mean of {seeds} seeds)",
                ["weights", "‖g‖ (full)", "noise, m = 1", "noise, m = 32", f"slope (m ≤ {FIT_UP_TO})"],
                rows,
            ),
            Table(
                f"On the saddle (mean of {seeds} seeds; inf: still there after {SADDLE_STEPS} steps)",
                ["gradient", f"first step with |y| > {AWAY:g}", "final f (saddle 0, minima −0.25)"],
                saddle_rows,
            ),
        ],
        figures=[
            Figure(
                "noise.png",
                "The root-mean-square distance of mini-batch gradients from the full gradient against the batch "
                "size, log-log: the mean over the seeds (line), their range (band), each seed (dots), against "
                "1/√m through each seed's m = 1 (with the factor of sampling without replacement); dashed: the "
                "full gradient's norm. Left: at the initial weights; right: after training.",
            ),
            Figure(
                "saddle.png",
                f"Paths of {SADDLE_STEPS} steps from ({START[0]:g}, {START[1]:g}), on the stable manifold of the "
                "saddle point, over f's contour lines (dashed: f < 0): full-batch gradient descent and SGD at three "
                f"batch sizes (seed {context.seeds[0]}). Last panel: f + ¼ per step (the saddle point is at ¼, the "
                "minima at 0).",
            ),
            Figure(
                "escape.png",
                f"The first step at which SGD is beyond |y| = {AWAY:g}, against the batch size: the mean over "
                "the seeds (line), their range (band) and each seed (dots); dashed: the length of the runs, with "
                "what became of the full batch's.",
            ),
        ],
        results={
            "samples": n,
            "noise": [seed["noise"] for seed in measured],
            "saddle": [
                {key: {k: v for k, v in run.items() if k != "path"} for key, run in seed["saddle"].items()}
                for seed in measured
            ],
            "paths": {label: points for label, points in paths.items()},
        },
    )


def full_batch_fate(measured: list[dict[str, Any]]) -> str:
    """What became of full-batch gradient descent on the saddle, in the seeds: a legend entry."""
    left = sum(math.isfinite(seed["saddle"]["full"]["escape_step"]) for seed in measured)
    return f"{SADDLE_STEPS} steps; the full batch left the saddle point in {left} of {len(measured)} seeds"


def escaped(step: float) -> str:
    """A path panel's note: when it went beyond |y| = AWAY."""
    return f"never beyond |y| = {AWAY:g}" if math.isinf(step) else f"beyond |y| = {AWAY:g} at step {step:.0f}"
