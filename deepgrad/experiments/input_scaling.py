"""``input-scaling``: two inputs on very different scales make an elongated error surface that one
learning rate cannot descend well; normalizing the features makes it round. (Notes 003.)

The notes' figure: y = w1·x1 + w2·x2 + b with x1 of the order of 1 and x2 of the order of 100. A
change Δw of w2 moves y a hundred times more than the same change of w1, so the loss is steep along
w2 and flat along w1: the surface is an elongated valley. Here it is measured. Each seed draws 200
samples x1 ~ N(0, 1), x2 ~ N(0, 100²) (centered exactly, so that the shape comes from the scales
alone and the bias moves on its own), y = 1·x1 + 0.1·x2 + 0.5 + N(0, 0.1²). The loss is the mean
squared error, a quadratic in (w1, w2, b) whose Hessian 2·XᵀX/n is computed exactly; its condition
number κ = λ_max/λ_min says how elongated the surface is (1: round). Standardizing the features
(x − mean)/std — the notes' feature normalization — gives the same model the same data in other
coordinates.

Gradient descent starts at w = 0, b = 0 (the same function in both coordinates, so the same loss).
Its rate is swept from 1e-6 to 10 (8 rates a decade) for each input scaling, and each scaling gets
the rate of the sweep that reaches the target soonest: the loss within 0.01 (the noise's variance)
of its minimum. The rate is chosen on the training loss itself: the question is how fast descent
crosses this surface, and nothing is generalized (3 weights, 200 samples), so no held-out data
enters. On a quadratic, descent is exact in closed form along the Hessian's eigenvectors (the
error along each shrinks by |1 − αλ| per step), which counts the steps however many there are;
the first 100 steps are also run with deepgrad (``optim.SGD`` on ``F.mse_loss``), drawn over the
contour lines, and checked against the closed form.

Inputs with non-zero means (x1 around 1, x2 around 100, as in the notes' picture) elongate the
surface further — the means couple each weight to the bias — and standardizing removes that too:
their κ is in the table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..tensor import tensor
from ..viz.normalization import surface_paths
from ..viz.seeds import over_setting
from .claims import Claim, above, at_least, below
from .common import Context, Figure, Report, Table

TITLE = "Input scaling: inputs on scales 1 and 100 make an elongated error surface; standardizing makes it round"
QUESTION = (
    "Do two inputs on very different scales make an elongated error surface, on which one learning rate "
    "cannot suit both weights, and does normalizing the features make it round, so that gradient descent "
    "reaches a low loss in far fewer steps (003)?"
)
SEEDS = 3
SAMPLES = 200
SCALES = (1.0, 100.0)  # the standard deviations of x1 and x2
MEANS = (1.0, 100.0)  # the uncentered variant's means (the table's κ only)
TRUE = (1.0, 0.1, 0.5)  # w1, w2, b of the data
NOISE = 0.1
START = (0.0, 0.0, 0.0)  # w1, w2, b: zero weights, the same function in both coordinates
ALPHAS = [float(a) for a in np.geomspace(1e-6, 10.0, 57)]  # 8 rates a decade
QUICK_ALPHAS = ALPHAS[::2]
TOLERANCE = NOISE**2  # the target: the loss within the noise's variance of its minimum
BUDGET = 100  # the steps run with deepgrad and compared at the same count
STEP_LIMIT = 10**12  # a rate that needs more steps than this counts as never reaching the target
CURVE_STEPS = sorted({int(s) for s in np.geomspace(1, 10**5, 61).round()})
SCALINGS = ("raw", "standardized")


class Quadratic:
    """The mean squared error of y ≈ w1·x1 + w2·x2 + b over (w1, w2, b): L(θ) = L* + ½(θ − θ*)ᵀH(θ − θ*)
    with H = 2·XᵀX/n (X with a column of ones), exactly."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.design = np.column_stack([x, np.ones(len(x))])
        self.y = y
        self.hessian = 2 * self.design.T @ self.design / len(x)
        self.minimum = np.linalg.lstsq(self.design, y, rcond=None)[0]
        self.lowest = self.loss(self.minimum)
        self.curvatures, self.axes = np.linalg.eigh(self.hessian)

    def loss(self, theta: np.ndarray) -> float:
        return float(np.mean((self.design @ theta - self.y) ** 2))

    @property
    def condition(self) -> float:
        return float(self.curvatures[-1] / self.curvatures[0])

    def stable(self, alpha: float) -> bool:
        """Whether descent at rate ``alpha`` converges: |1 − αλ| < 1 along every axis."""
        return bool(np.all(np.abs(1 - alpha * self.curvatures) < 1))

    def excess(self, alpha: float, start: np.ndarray, steps: Any) -> np.ndarray:
        """L − L* after each of ``steps`` (an int or array) steps of descent at rate ``alpha`` from
        ``start``: ½ Σ λᵢ cᵢ² (1 − αλᵢ)^(2t), c the start's offset along the Hessian's eigenvectors."""
        offsets = self.axes.T @ (np.asarray(start) - self.minimum)
        factors = np.abs(1 - alpha * self.curvatures)
        t = np.asarray(steps, dtype=np.float64)[..., None]
        with np.errstate(over="ignore"):
            return 0.5 * np.sum(self.curvatures * offsets**2 * factors ** (2 * t), axis=-1)

    def steps_to(self, alpha: float, start: np.ndarray, tolerance: float) -> float:
        """The first step count after which L − L* ≤ ``tolerance`` (inf when descent diverges or
        needs more than STEP_LIMIT steps): the excess only falls when descent is stable, so a
        doubling search and a bisection find it."""
        if float(self.excess(alpha, start, 0)) <= tolerance:
            return 0
        if not self.stable(alpha):
            return math.inf
        high = 1
        while float(self.excess(alpha, start, high)) > tolerance:
            high *= 2
            if high > STEP_LIMIT:
                return math.inf
        low = high // 2  # excess(low) > tolerance
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if float(self.excess(alpha, start, middle)) <= tolerance else (middle, high)
        return high


def draw(seed: int, centered: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One seed's data: (x of shape (SAMPLES, 2), y). ``centered``: x's columns have mean 0 exactly
    (else MEANS are added to them)."""
    generator = np.random.default_rng(seed)
    x = generator.standard_normal((SAMPLES, 2)) * np.array(SCALES)
    x -= x.mean(axis=0)
    y = x @ np.array(TRUE[:2]) + TRUE[2] + NOISE * generator.standard_normal(SAMPLES)
    return (x if centered else x + np.array(MEANS)), y


def standardize(x: np.ndarray) -> np.ndarray:
    """The notes' feature normalization: each column minus its mean, over its standard deviation."""
    return (x - x.mean(axis=0)) / x.std(axis=0)


def descend(x: np.ndarray, y: np.ndarray, alpha: float, steps: int) -> tuple[list[list[float]], list[float]]:
    """``steps`` steps of deepgrad's SGD on F.mse_loss of x @ w + b, from START (float64): the (w1, w2)
    of every step (the start first) and the loss before each step and after the last."""
    weights = nn.Parameter(np.array(START[:2]))
    bias = nn.Parameter(np.array(START[2]))
    optimizer = optim.SGD([weights, bias], lr=alpha)
    inputs, targets = tensor(x), tensor(y)
    points, losses = [], []
    for _ in range(steps + 1):
        points.append([float(w) for w in weights.data])
        loss = F.mse_loss(inputs @ weights + bias, targets)
        losses.append(loss.item())
        if len(losses) > steps:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return points, losses


def zigzags(points: list[list[float]]) -> int:
    """How often w2's step changes direction along a path (steps shorter than 1e-3 of the first are left out)."""
    steps = [b[1] - a[1] for a, b in zip(points, points[1:])]
    large = [s for s in steps if abs(s) >= 1e-3 * abs(steps[0])] if steps and steps[0] else []
    return sum(a * b < 0 for a, b in zip(large, large[1:]))


def progress(points: list[list[float]], minimum: Any) -> float:
    """The fraction of its way to the minimum that w1 covered along a path."""
    return (points[-1][0] - points[0][0]) / (float(minimum[0]) - points[0][0])


def measure(context: Context) -> dict[str, Any]:
    """One data draw: per input scaling, the Hessian's curvatures and κ, the sweep's steps to the
    target per rate, the best rate, its steps and its loss curve, and deepgrad's first BUDGET steps."""
    x, y = draw(context.seed)
    start = np.array(START)
    alphas = QUICK_ALPHAS if context.quick else ALPHAS
    measured: dict[str, Any] = {"uncentered_condition": Quadratic(draw(context.seed, centered=False)[0], y).condition}
    for scaling, inputs in zip(SCALINGS, (x, standardize(x))):
        surface = Quadratic(inputs, y)
        tolerance = TOLERANCE
        sweep = [surface.steps_to(alpha, start, tolerance) for alpha in alphas]
        best = min(range(len(alphas)), key=lambda i: (sweep[i], -alphas[i]))  # fewest steps; ties: the larger rate
        alpha = alphas[best]
        points, losses = descend(inputs, y, alpha, BUDGET)
        closed_form = surface.lowest + float(surface.excess(alpha, start, BUDGET))
        measured[scaling] = {
            "curvatures": surface.curvatures.tolist(),
            "condition": surface.condition,
            "minimum": surface.minimum.tolist(),
            "lowest_loss": surface.lowest,
            "start_loss": surface.loss(start),
            "alphas": alphas,
            "sweep_steps": sweep,
            "alpha": alpha,
            "stability_limit": 2 / float(surface.curvatures[-1]),
            "steps": sweep[best],
            "budget_loss": closed_form,
            "deepgrad_budget_loss": losses[-1],
            "curve": (surface.lowest + surface.excess(alpha, start, CURVE_STEPS)).tolist(),
            "path": points,
            "zigzags": zigzags(points),
        }
    return measured


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    first = measured[0]
    draw_surfaces(context, first)
    draw_descent(context, measured)
    condition = {scaling: [seed[scaling]["condition"] for seed in measured] for scaling in SCALINGS}
    steps_ratio = [seed["raw"]["steps"] / seed["standardized"]["steps"] for seed in measured]
    budget_ratio = [seed["raw"]["budget_loss"] / seed["standardized"]["budget_loss"] for seed in measured]
    ratio = SCALES[1] / SCALES[0]
    claims = [
        Claim.judge(
            "input-scaling/elongated",
            "003",
            "Inputs on very different scales make the error surface elongated: its curvature along the weight of "
            "the large input is about (scale ratio)² times that along the other.",
            f"condition number κ = λ_max/λ_min of the loss's Hessian over (w1, w2, b), x1 ~ N(0, 1), x2 ~ N(0, "
            f"{ratio:g}²) ((scale ratio)² = {ratio**2:g})",
            condition["raw"],
            at_least(ratio**2 / 2),
        ),
        Claim.judge(
            "input-scaling/round",
            "003",
            "Feature normalization (each input minus its mean, over its standard deviation) makes the error "
            "surface round.",
            "condition number κ of the Hessian with standardized inputs (1: round)",
            condition["standardized"],
            below(2),
        ),
        Claim.judge(
            "input-scaling/steps",
            "003",
            "On the elongated surface no one learning rate suits both weights — the steep one bounds it, the flat "
            "one then crawls — so descent needs far more steps than on the round one.",
            f"steps until the loss is within {TOLERANCE:g} of its minimum, raw ÷ standardized, each at the "
            "sweep's fastest rate",
            steps_ratio,
            above(100),
        ),
        Claim.judge(
            "input-scaling/same-steps",
            "003",
            "With the same number of steps, descent on the normalized inputs reaches a far lower loss.",
            f"training loss after {BUDGET} steps, raw ÷ standardized (each at its best rate)",
            budget_ratio,
            above(10),
        ),
    ]
    mean = lambda values: math.fsum(values) / len(values)  # noqa: E731
    rows = []
    for scaling in SCALINGS:
        runs = [seed[scaling] for seed in measured]
        rows.append(
            [
                scaling,
                mean([r["condition"] for r in runs]),
                mean([r["curvatures"][-1] for r in runs]),
                mean([r["curvatures"][0] for r in runs]),
                mean([r["stability_limit"] for r in runs]),
                ", ".join(f"{r['alpha']:.3g}" for r in runs),
                mean([r["steps"] for r in runs]),
                mean([r["budget_loss"] for r in runs]),
                mean([r["zigzags"] for r in runs]),
            ]
        )
    rows.append(
        ["raw, means 1 and 100", mean([seed["uncentered_condition"] for seed in measured])] + [None] * 7,
    )
    table = Table(
        f"Each input scaling (mean over {len(measured)} seeds)",
        [
            "inputs",
            "κ",
            "λ_max",
            "λ_min",
            "largest stable rate 2/λ_max",
            "best rate per seed",
            "steps to the target",
            f"loss after {BUDGET} steps",
            f"w2 reversals in {BUDGET} steps",
        ],
        rows,
    )
    agreement = max(
        abs(seed[s]["deepgrad_budget_loss"] - seed[s]["budget_loss"]) / seed[s]["budget_loss"]
        for seed in measured
        for s in SCALINGS
    )
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": f"{SAMPLES} samples per seed: x1 ~ N(0, {SCALES[0]:g}²), x2 ~ N(0, {SCALES[1]:g}²), centered; "
            f"y = {TRUE[0]:g}·x1 + {TRUE[1]:g}·x2 + {TRUE[2]:g} + N(0, {NOISE:g}²)",
            "model": "y = w1·x1 + w2·x2 + b, mean squared error; standardized: the same with (x − mean)/std",
            "descent": f"plain gradient descent on all samples from w = 0, b = 0; rates {ALPHAS[0]:g} to "
            f"{ALPHAS[-1]:g}, 8 a decade; the best rate reaches a loss within {TOLERANCE:g} of the minimum in "
            "the fewest steps (counted exactly in closed form along the Hessian's eigenvectors)",
            "check": f"the first {BUDGET} steps run with deepgrad's SGD agree with the closed form to a relative "
            f"{agreement:.1e}",
        },
        claims=claims,
        tables=[table],
        figures=[
            Figure(
                "input_scaling_surfaces.png",
                "The loss over (w1, w2) (b at its best) with raw and with standardized inputs, and the first "
                f"{BUDGET} steps of gradient descent at each one's best rate, a dot per step (seed "
                f"{context.seeds[0]}). Raw: an elongated valley (w2's axis is stretched so that it shows) that "
                "descent crosses back and forth along w2 and crawls along w1; standardized: round contour "
                "lines, and descent goes straight to the minimum.",
            ),
            Figure(
                "input_scaling_descent.png",
                "Left: the training loss against the step at each one's best rate (log-log). Right: the "
                "steps to reach the target against the learning rate: the raw inputs' rates must stay under "
                "2/λ_max, set by the steep direction, where the flat one barely moves. Mean over the seeds "
                "(line), their range (band), each seed (dots).",
            ),
        ],
        results={
            "seeds": [
                {
                    "uncentered_condition": seed["uncentered_condition"],
                    **{
                        s: {k: v for k, v in seed[s].items() if k not in ("path", "curve", "alphas", "sweep_steps")}
                        for s in SCALINGS
                    },
                }
                for seed in measured
            ],
            "alphas": first["raw"]["alphas"],
            "sweep_steps": {s: [seed[s]["sweep_steps"] for seed in measured] for s in SCALINGS},
        },
    )


def draw_surfaces(context: Context, first: dict[str, Any]) -> None:
    """The two surfaces over (w1, w2) with the first seed's paths."""
    x, y = draw(context.seeds[0])
    panels = {}
    for scaling, inputs in zip(SCALINGS, (x, standardize(x))):
        surface = Quadratic(inputs, y)
        run = first[scaling]
        minimum = surface.minimum

        def f(w1: np.ndarray, w2: np.ndarray, surface: Quadratic = surface, b: float = float(minimum[2])) -> np.ndarray:
            theta = np.stack([w1, w2, np.full_like(w1, b)], axis=-1)
            residual = theta @ surface.design.T - surface.y
            return np.mean(residual**2, axis=-1)

        prime = "′" if scaling == "standardized" else ""
        panels[f"{scaling} inputs: κ = {run['condition']:.3g}"] = {
            "f": f,
            "path": run["path"],
            "target": (float(minimum[0]), float(minimum[1])),
            "start": START[:2],
            "xlabel": f"w1{prime}",
            "ylabel": f"w2{prime}",
            "equal": scaling == "standardized",
            "note": f"rate {run['alpha']:.3g}: loss {run['start_loss']:.3g} → {run['budget_loss']:.3g} in "
            f"{len(run['path']) - 1} steps;\nw1{prime} covered {100 * progress(run['path'], minimum):.3g} % of its way",
        }
    surface_paths(
        panels,
        context.path("input_scaling_surfaces.png"),
        title=f"The error surface of y = w1·x1 + w2·x2 + b, x1 on scale {SCALES[0]:g} and x2 on scale {SCALES[1]:g}",
    )


def draw_descent(context: Context, measured: list[dict[str, Any]]) -> None:
    """Loss against the step, and steps to the target against the rate, over the seeds."""
    curves = {}
    sweeps = {}
    for scaling in SCALINGS:
        per_step = [seed[scaling]["curve"] for seed in measured]
        curves[f"{scaling} inputs"] = (CURVE_STEPS, [list(column) for column in zip(*per_step)])
        alphas = measured[0][scaling]["alphas"]
        per_alpha = [list(column) for column in zip(*(seed[scaling]["sweep_steps"] for seed in measured))]
        # up to the first rate where a seed diverged (marked there): beyond it, they all do
        end = next((i for i, values in enumerate(per_alpha) if not all(map(math.isfinite, values))), len(alphas) - 1)
        sweeps[f"{scaling} inputs"] = (alphas[: end + 1], per_alpha[: end + 1])
    floor = math.fsum(seed["raw"]["lowest_loss"] for seed in measured) / len(measured)
    over_setting(
        {
            "training loss at the best rate": {
                "xlabel": "step (log)",
                "ylabel": "training loss (log)",
                "log_x": True,
                "log_y": True,
                "curves": curves,
                "references": {f"the target: minimum + {TOLERANCE:g}": floor + TOLERANCE},
            },
            "steps to the target against the rate (beyond the last, descent diverges)": {
                "xlabel": "learning rate α (log)",
                "ylabel": f"steps until loss ≤ minimum + {TOLERANCE:g} (log)",
                "log_x": True,
                "log_y": True,
                "curves": sweeps,
            },
        },
        context.path("input_scaling_descent.png"),
        title=f"Gradient descent on raw and standardized inputs: {len(measured)} data draws",
    )
