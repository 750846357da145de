"""``optimizers-2d``: how SGD, Momentum, AdaGrad, RMSProp and Adam move, on functions so small that
every step can be seen and every formula of the notes checked (001; 002 §5.1.2, §5.3–5.5).

Paths, after Saito's *Deep Learning from Scratch* (ch. 6). The bowl f = x²/20 + y² is twenty times
steeper across (y) than along (x): from (−7, 2) the gradient points mostly across the valley, not
at the minimum, so SGD's path is inefficient on it (001): its step along y reverses from one step to
the next. AdaGrad and RMSProp give each parameter its own rate and go straight down. The saddle
f = x² − y² starts at (1, 0.001), beside the saddle point, where the gradient along y (the way down)
is only 0.002 (002 §5.1.2: "the gradient at a saddle point is almost zero"); AdaGrad and RMSProp
divide the small gradient by its own size (the notes: AdaGrad enlarges the rate where the
accumulated gradient is small) and leave at once. 30 steps each, at Saito's rates.

Formulas, on the slope f(w) = 0.5·w, whose gradient is 0.5 everywhere: the regime in which the
notes state them (a gradient that does not change), so each quantity can be read against its formula:

- Momentum v = βv − α∇w, w = w + v reaches the terminal velocity α‖∇w‖/(1−β) (002 §5.3; β 0.5,
  0.9 and 0.99, 2000 steps: 0.99²⁰⁰⁰ ≈ 2e-9, so the transient is gone);
- AdaGrad's rate factor 1/(√h + δ) falls as 1/√t since h sums every g², while RMSProp's moving
  average (ρ = 0.9, the notes') keeps it at 1/|g| (001, 002 §5.4; 10⁴ steps);
- Adam's m and v start biased towards zero; with m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ) each step has
  length α from the first (001, 002 §5.5). deepgrad's Adam always corrects, so the uncorrected
  steps are the notes' formulas with the correction left out, computed in NumPy beside it. At the
  notes' defaults (β1 0.9, β2 0.999) the uncorrected steps are not too small but too large: m is
  biased by 1 − β1ᵗ and √v by √(1 − β2ᵗ), much more, so m/√v is (1−β1ᵗ)/√(1−β2ᵗ) times g/|g|:
  3.2 at the first step, up to 6.5 near step 10, still 1.3 at step 1000 (Kingma and Ba, §3).

Each optimizer is deepgrad's own, stepping a float64 ``nn.Parameter``; f is written with deepgrad
ops and its gradient comes from ``backward()``. Nothing here depends on a seed (SEEDS = 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import nn, optim
from ..viz.optimizers import optimizer_paths, step_laws
from .claims import Claim, above, at_least, below
from .common import Context, Figure, Report, Table
from .optimizers import OPTIMIZER_NAMES

TITLE = "Five optimizers on two variables: SGD's zig-zag, a saddle, and the notes' formulas step by step"
QUESTION = (
    "Does SGD zig-zag on an anisotropic function where AdaGrad and RMSProp go straight (001), does momentum "
    "reach the terminal velocity α‖∇w‖/(1−β) (002 §5.3), does AdaGrad's rate decay to zero where RMSProp's "
    "stays (002 §5.4), and what does Adam's bias correction do to its first steps (002 §5.5)?"
)
SEEDS = 1

STEPS = 30  # of each path (the book's)
ESCAPED = 1.0  # |y| beyond which a path has left the saddle

SLOPE = 0.5  # f(w) = SLOPE·w: a gradient of SLOPE everywhere
MOMENTUM_LR, BETAS, MOMENTUM_STEPS = 0.01, (0.5, 0.9, 0.99), 2000
RATE_LR, RHO, RATE_STEPS = 0.1, 0.9, 10_000
RATE_FROM = 10  # the rate factor at RATE_STEPS is compared with the one at this step
ADAM_LR, ADAM_BETAS, ADAM_EPS, ADAM_STEPS = 0.1, (0.9, 0.999), 1e-8, 1000
ADAM_EARLY = 100  # the first steps judged
SAMPLES = 60  # log-spaced steps of each per-step curve kept for the figure


def y_reversals(points, ignore_below=0.01):
    """How often the step across the valley (along y) changes direction: a zig-zag's count. Steps
    shorter than ``ignore_below`` × |y₀| are left out, so jitter at the valley floor does not count."""
    steps = [b[1] - a[1] for a, b in zip(points, points[1:])]
    large = [step for step in steps if abs(step) >= ignore_below * abs(points[0][1])]
    return sum(a * b < 0 for a, b in zip(large, large[1:]))


def y_travel(points):
    """The distance travelled along y, Σ|Δy|, in units of |y₀| (the straight way to the valley floor):
    1 for a path that never climbs back, ≫ 1 for one that zig-zags across the valley."""
    return sum(abs(b[1] - a[1]) for a, b in zip(points, points[1:])) / abs(points[0][1])


def escape_step(points, beyond=ESCAPED):
    """The first step at which |y| > ``beyond`` (the path has left the saddle point), or None."""
    return next((step for step, (_, y) in enumerate(points) if abs(y) > beyond), None)


def bowl_measures(points):
    x, y = points[-1]
    return {"y_reversals": y_reversals(points), "y_travel": y_travel(points), "final_distance": float(np.hypot(x, y))}


def saddle_measures(points):
    return {"escape_step": escape_step(points), "first_y_step": abs(points[1][1] - points[0][1])}


@dataclass(frozen=True)
class Surface:
    """A function f(x, y) to descend, written with operators that work on deepgrad tensors (the
    descent), Python floats and NumPy arrays (the contour lines); where it starts; its minimum or
    saddle point (``target``, at the origin); the window the figure shows; what is measured on
    each path beyond f (``measures(points) -> dict``); and the quantity its figure's last panel
    follows step by step (``progress``: a label and a function of (x, y)), with ``references``
    ({label: value}) marked there."""

    formula: str
    f: Any
    start: tuple
    target_label: str
    window: tuple
    measures: Any
    progress: tuple
    references: dict | None = None
    target: tuple = (0.0, 0.0)


def bowl(x, y):
    return x**2 / 20 + y**2


def saddle(x, y):
    return x**2 - y**2


SURFACES = {
    "bowl": Surface(
        "x²/20 + y²", bowl, (-7.0, 2.0), "minimum", ((-8.0, 3.0), (-3.0, 3.0)), bowl_measures, ("f(x, y) (log)", bowl)
    ),
    "saddle": Surface(
        "x² − y²",
        saddle,
        (1.0, 1e-3),
        "saddle point",
        ((-1.5, 1.5), (-1.0, 2.5)),
        saddle_measures,
        ("|y|, distance from the saddle point along y (log)", lambda x, y: abs(y)),
        {f"|y| = {ESCAPED:g}: away": ESCAPED},
    ),
}

# Saito's rates for this bowl (SGD 0.95, Momentum 0.1 with β 0.9, AdaGrad 1.5, Adam 0.3); RMSProp with
# the notes' ρ = 0.9 at Adam's rate, 0.3: it is Adam without momentum and bias correction. Both
# functions use the same rates. The other hyperparameters (eps) are PyTorch's defaults; the notes'
# eps = 1e-7 would move no point of these paths visibly (the gradients stay far above it).
OPTIMIZERS = {
    "sgd": ("lr 0.95", lambda params: optim.SGD(params, lr=0.95)),
    "momentum": ("lr 0.1, β 0.9", lambda params: optim.Momentum(params, lr=0.1, momentum=0.9)),
    "adagrad": ("lr 1.5", lambda params: optim.Adagrad(params, lr=1.5)),
    "rmsprop": ("lr 0.3, ρ 0.9", lambda params: optim.RMSprop(params, lr=0.3, alpha=0.9)),
    "adam": ("lr 0.3", lambda params: optim.Adam(params, lr=0.3)),
}
# On the slope: AdaGrad and RMSProp at one rate (their factor 1/(√h + δ) does not depend on it).
RATE_OPTIMIZERS = {
    "adagrad": lambda params: optim.Adagrad(params, lr=RATE_LR),
    "rmsprop": lambda params: optim.RMSprop(params, lr=RATE_LR, alpha=RHO),
}


def descend(surface, make_optimizer, steps=STEPS):
    """The points [x, y] an optimizer visits on ``surface`` in ``steps`` steps, the start first."""
    w = nn.Parameter(np.array(surface.start, dtype=np.float64))
    optimizer = make_optimizer([w])
    points = [w.data.tolist()]
    for _ in range(steps):
        optimizer.zero_grad()
        surface.f(w[0], w[1]).backward()
        optimizer.step()
        points.append(w.data.tolist())
    return points


def path_study(surface, make_optimizer):
    """One optimizer's path on ``surface`` and what is measured on it: the path, f at its end, and
    the surface's own measures."""
    points = descend(surface, make_optimizer)
    return {"path": points, "final_f": surface.f(*points[-1]), **surface.measures(points)}


def slope_steps(make_optimizer: Callable[[list], optim.Optimizer], steps: int) -> np.ndarray:
    """The length |Δw| of each of ``steps`` steps an optimizer takes down the slope f(w) = SLOPE·w
    (f written with deepgrad ops, its gradient from backward())."""
    w = nn.Parameter(np.zeros(1, dtype=np.float64))
    optimizer = make_optimizer([w])
    positions = np.empty(steps + 1)
    positions[0] = 0.0
    for t in range(1, steps + 1):
        optimizer.zero_grad()
        (w * SLOPE).sum().backward()
        optimizer.step()
        positions[t] = w.data[0]
    return np.abs(np.diff(positions))


def uncorrected_adam_steps(lr: float, betas: tuple[float, float], eps: float, steps: int) -> np.ndarray:
    """The step lengths of Adam on the slope without the bias correction: the notes' m = β1·m + (1−β1)·g,
    v = β2·v + (1−β2)·g², w = w − α·m/(√v + δ), with m̂ and v̂ left out (in NumPy: deepgrad's Adam
    always corrects)."""
    beta1, beta2 = betas
    m = v = 0.0
    lengths = np.empty(steps)
    for t in range(steps):
        m = beta1 * m + (1 - beta1) * SLOPE
        v = beta2 * v + (1 - beta2) * SLOPE**2
        lengths[t] = lr * m / (math.sqrt(v) + eps)
    return lengths


def sampled_steps(steps: int) -> list[int]:
    """About SAMPLES log-spaced steps from 1 to ``steps`` (1-based): where a per-step curve is kept."""
    return sorted({int(s) for s in np.geomspace(1, steps, SAMPLES).round()})


def at_steps(values: np.ndarray, steps: list[int]) -> list[float]:
    """``values`` (the value of step t at index t − 1) at the 1-based ``steps``."""
    return [float(values[s - 1]) for s in steps]


def momentum_with(beta: float) -> Callable[[list], optim.Optimizer]:
    """A factory of the notes' Momentum at MOMENTUM_LR and ``beta``."""
    return lambda params: optim.Momentum(params, lr=MOMENTUM_LR, momentum=beta)


def momentum_study() -> dict[str, Any]:
    """Momentum's step length on the slope for each β, against the terminal velocity α‖∇w‖/(1−β)."""
    steps = sampled_steps(MOMENTUM_STEPS)
    runs = []
    for beta in BETAS:
        lengths = slope_steps(momentum_with(beta), MOMENTUM_STEPS)
        terminal = MOMENTUM_LR * SLOPE / (1 - beta)
        runs.append(
            {
                "beta": beta,
                "terminal": terminal,
                "final": float(lengths[-1]),
                "ratio": float(lengths[-1] / terminal),
                "steps_to_99": int(np.argmax(lengths >= 0.99 * terminal)) + 1,
                "steps": steps,
                "lengths": at_steps(lengths, steps),
            }
        )
    return {"sgd_step": MOMENTUM_LR * SLOPE, "runs": runs}


def rate_study() -> dict[str, Any]:
    """AdaGrad's and RMSProp's rate factor 1/(√h + δ) = |Δw|/(α·|g|) at every step of the slope."""
    steps = sampled_steps(RATE_STEPS)
    result: dict[str, Any] = {"steps": steps}
    for name, make in RATE_OPTIMIZERS.items():
        factor = slope_steps(make, RATE_STEPS) / (RATE_LR * SLOPE)
        result[name] = {
            "factor": at_steps(factor, steps),
            "from": float(factor[RATE_FROM - 1]),
            "last": float(factor[-1]),
            "kept": float(factor[-1] / factor[RATE_FROM - 1]),
        }
    return result


def adam_study() -> dict[str, Any]:
    """Adam's step length ÷ α on the slope, deepgrad's (bias-corrected) and the uncorrected formula's."""
    corrected = slope_steps(lambda params: optim.Adam(params, lr=ADAM_LR, betas=ADAM_BETAS, eps=ADAM_EPS), ADAM_STEPS)
    uncorrected = uncorrected_adam_steps(ADAM_LR, ADAM_BETAS, ADAM_EPS, ADAM_STEPS)
    corrected, uncorrected = corrected / ADAM_LR, uncorrected / ADAM_LR
    early = slice(0, ADAM_EARLY)
    steps = sampled_steps(ADAM_STEPS)
    return {
        "steps": steps,
        "corrected": at_steps(corrected, steps),
        "uncorrected": at_steps(uncorrected, steps),
        "first": {"corrected": float(corrected[0]), "uncorrected": float(uncorrected[0])},
        "corrected_error": float(np.max(np.abs(corrected[early] - 1))),
        "uncorrected_factor": float(np.max(np.maximum(uncorrected[early], 1 / uncorrected[early]))),
        "uncorrected_worst_step": int(np.argmax(np.maximum(uncorrected[early], 1 / uncorrected[early]))) + 1,
    }


def measure(context: Context) -> dict[str, Any]:
    """Every path on the bowl and the saddle, and the three studies on the slope (no seed matters)."""
    paths = {
        f"{name}/{opt}": path_study(surface, make)
        for name, surface in SURFACES.items()
        for opt, (_, make) in OPTIMIZERS.items()
    }
    return {"paths": paths, "momentum": momentum_study(), "rates": rate_study(), "adam": adam_study()}


def bowl_table(paths):
    rows = [
        [OPTIMIZER_NAMES[opt], rate, r["y_reversals"], r["y_travel"], r["final_distance"], r["final_f"]]
        for opt, (rate, _) in OPTIMIZERS.items()
        for r in [paths[f"bowl/{opt}"]]
    ]
    return Table(
        f"Bowl x²/20 + y² from (−7, 2), {STEPS} steps: the zig-zag, and how close each gets",
        ["optimizer", "rate", "y-step reversals", "y travelled (× y₀)", "distance to minimum", "final f"],
        rows,
    )


def saddle_table(paths):
    rows = [
        [OPTIMIZER_NAMES[opt], rate, r["first_y_step"], r["escape_step"], *r["path"][-1], r["final_f"]]
        for opt, (rate, _) in OPTIMIZERS.items()
        for r in [paths[f"saddle/{opt}"]]
    ]
    return Table(
        f"Saddle x² − y² from (1, 0.001), {STEPS} steps: when each leaves the saddle point",
        [
            "optimizer",
            "rate",
            "first step along y",
            f"first step beyond |y| = {ESCAPED:g}",
            "final x",
            "final y",
            "final f",
        ],
        rows,
    )


def formula_table(measured):
    momentum, rates, adam = measured["momentum"], measured["rates"], measured["adam"]
    rows = [
        [f"Momentum β {run['beta']:g}", "step length ÷ α‖∇w‖/(1−β)", MOMENTUM_STEPS, run["ratio"], 1.0]
        for run in momentum["runs"]
    ]
    rows += [
        [
            OPTIMIZER_NAMES[name],
            f"rate factor 1/(√h + δ) at step {RATE_STEPS} ÷ at step {RATE_FROM}",
            RATE_STEPS,
            rates[name]["kept"],
            math.sqrt(RATE_FROM / RATE_STEPS) if name == "adagrad" else (1 - RHO**RATE_FROM) ** 0.5,
        ]
        for name in RATE_OPTIMIZERS
    ]
    beta1, beta2 = ADAM_BETAS
    rows += [
        ["Adam, corrected", "first step ÷ α", 1, adam["first"]["corrected"], 1.0],
        ["Adam, uncorrected", "first step ÷ α", 1, adam["first"]["uncorrected"], (1 - beta1) / math.sqrt(1 - beta2)],
    ]
    return Table(
        f"On the slope f(w) = {SLOPE:g}·w: measured against the formula",
        ["optimizer", "quantity", "at step", "measured", "formula"],
        rows,
    )


def draw_paths(name, surface, paths, path):
    """The figure of one surface: a panel per optimizer (its rate noted, and on the bowl its y-step
    reversals), and a last panel with the surface's ``progress`` quantity per step."""
    drawn, notes = {}, {}
    for opt, (rate, _) in OPTIMIZERS.items():
        result, label = paths[f"{name}/{opt}"], OPTIMIZER_NAMES[opt]
        drawn[label] = result["path"]
        notes[label] = rate + (f"\ny-step reversals: {result['y_reversals']}" if "y_reversals" in result else "")
    ylabel, quantity = surface.progress
    progress = (ylabel, {label: [quantity(x, y) for x, y in points] for label, points in drawn.items()})
    x, y = surface.start
    optimizer_paths(
        drawn,
        surface.f,
        path,
        surface.window,
        surface.target,
        surface.target_label,
        title=f"{STEPS} steps on f = {surface.formula} from ({x:g}, {y:g})",
        notes=notes,
        progress=progress,
        references=surface.references,
    )


def draw_laws(measured, path):
    """The slope's three panels: momentum's step length, AdaGrad's and RMSProp's rate factor, Adam's
    step ÷ α, each measured (solid) against the notes' formula (dashed)."""
    momentum, rates, adam = measured["momentum"], measured["rates"], measured["adam"]
    beta1, beta2 = ADAM_BETAS
    rate_steps = np.array(rates["steps"], dtype=float)
    adam_steps = np.array(adam["steps"], dtype=float)
    step_laws(
        {
            "Momentum: the step length": {
                "xlabel": "step (log)",
                "ylabel": "step length |Δw| (log)",
                "log_x": True,
                "log_y": True,
                "curves": {f"β = {run['beta']:g}": (run["steps"], run["lengths"]) for run in momentum["runs"]},
                "formulas": {
                    f"β = {run['beta']:g}": (
                        f"α‖∇w‖/(1−β) = {run['terminal']:.3g}",
                        [1, MOMENTUM_STEPS],
                        [run["terminal"]] * 2,
                    )
                    for run in momentum["runs"]
                },
            },
            "AdaGrad and RMSProp: the rate's factor": {
                "xlabel": "step (log)",
                "ylabel": "1/(√h + δ) = |Δw| ÷ (α·|g|) (log)",
                "log_x": True,
                "log_y": True,
                "curves": {OPTIMIZER_NAMES[name]: (rates["steps"], rates[name]["factor"]) for name in RATE_OPTIMIZERS},
                "formulas": {
                    "AdaGrad": ("1/(|g|·√t): h = t·g²", rates["steps"], list(1 / (SLOPE * np.sqrt(rate_steps)))),
                    "RMSProp": (
                        f"1/(|g|·√(1 − ρᵗ)), ρ = {RHO:g}",
                        rates["steps"],
                        list(1 / (SLOPE * np.sqrt(1 - RHO**rate_steps))),
                    ),
                },
            },
            "Adam: the step ÷ α": {
                "xlabel": "step (log)",
                "ylabel": "|Δw| ÷ α (log)",
                "log_x": True,
                "log_y": True,
                "curves": {
                    "with m̂, v̂ (deepgrad's Adam)": (adam["steps"], adam["corrected"]),
                    "without the correction": (adam["steps"], adam["uncorrected"]),
                },
                "formulas": {
                    "with m̂, v̂ (deepgrad's Adam)": ("m̂/√v̂ = g/|g|: 1", [1, ADAM_STEPS], [1.0, 1.0]),
                    "without the correction": (
                        "(1 − β1ᵗ)/√(1 − β2ᵗ)",
                        adam["steps"],
                        list((1 - beta1**adam_steps) / np.sqrt(1 - beta2**adam_steps)),
                    ),
                },
            },
        },
        path,
        title=f"Down the slope f(w) = {SLOPE:g}·w (a constant gradient): measured (broad, pale) and the notes' formula "
        "(dashed)",
    )


def claims_of(measured: dict[str, Any]) -> list[Claim]:
    paths, momentum, rates, adam = measured["paths"], measured["momentum"], measured["rates"], measured["adam"]
    sgd = paths["bowl/sgd"]
    adaptive_travel = max(paths[f"bowl/{opt}"]["y_travel"] for opt in ("adagrad", "rmsprop"))
    adaptive_escape = max(paths[f"saddle/{opt}"]["escape_step"] or math.inf for opt in ("adagrad", "rmsprop"))
    sgd_escape = paths["saddle/sgd"]["escape_step"] or math.inf
    return [
        Claim.judge(
            "optimizers-2d/sgd-zigzag",
            "001",
            "On an anisotropic function the gradient does not point at the minimum, so SGD's path is inefficient: "
            "it zig-zags across the valley.",
            f"reversals of SGD's step along y in {STEPS} steps on x²/20 + y² from (−7, 2), lr 0.95",
            [sgd["y_reversals"]],
            at_least(STEPS // 2),
        ),
        Claim.judge(
            "optimizers-2d/adaptive-straight",
            "001",
            "AdaGrad and RMSProp give each parameter its own rate, and cross the valley without the zig-zag.",
            "distance travelled along y (× y₀), SGD ÷ the larger of AdaGrad's and RMSProp's",
            [sgd["y_travel"] / adaptive_travel],
            above(5),
        ),
        Claim.judge(
            "optimizers-2d/saddle",
            "002 §5.1.2",
            "Near a saddle point the gradient is almost zero, so SGD lingers; AdaGrad and RMSProp enlarge the "
            "rate where the gradient is small and leave sooner.",
            f"first step beyond |y| = {ESCAPED:g} on x² − y² from (1, 0.001), SGD ÷ the later of AdaGrad and RMSProp",
            [sgd_escape / adaptive_escape],
            above(2),
        ),
        Claim.judge(
            "optimizers-2d/terminal-velocity",
            "002 §5.3",
            "Under a constant gradient momentum does not accelerate for ever: its step reaches the terminal velocity "
            "α‖∇w‖/(1−β).",
            f"largest |step length ÷ α‖∇w‖/(1−β) − 1| over β = {', '.join(f'{b:g}' for b in BETAS)}, after "
            f"{MOMENTUM_STEPS} steps on f = {SLOPE:g}·w",
            [max(abs(run["ratio"] - 1) for run in momentum["runs"])],
            below(0.01),
        ),
        Claim.judge(
            "optimizers-2d/adagrad-decays",
            "002 §5.4",
            "AdaGrad's h sums every squared gradient and keeps growing, so its rate factor 1/√h goes to zero.",
            f"AdaGrad's 1/(√h + δ) at step {RATE_STEPS} ÷ at step {RATE_FROM}, constant gradient {SLOPE:g}",
            [rates["adagrad"]["kept"]],
            below(0.1),
        ),
        Claim.judge(
            "optimizers-2d/rmsprop-bounded",
            "002 §5.4",
            "RMSProp's exponential moving average forgets the past, so its rate does not decay away.",
            f"RMSProp's (ρ {RHO:g}) 1/(√h + δ) at step {RATE_STEPS} ÷ at step {RATE_FROM}, constant gradient {SLOPE:g}",
            [rates["rmsprop"]["kept"]],
            at_least(0.5),
        ),
        Claim.judge(
            "optimizers-2d/adam-corrected",
            "001",
            "With the bias correction m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ) Adam's steps have length α from the first step on.",
            f"largest |step ÷ α − 1| over the first {ADAM_EARLY} steps of deepgrad's Adam (β {ADAM_BETAS[0]:g}, "
            f"{ADAM_BETAS[1]:g}) on f = {SLOPE:g}·w",
            [adam["corrected_error"]],
            below(0.01),
        ),
        Claim.judge(
            "optimizers-2d/adam-uncorrected",
            "002 §5.5",
            "Without the correction m and v start near zero and the first steps are mis-scaled: the correction is "
            "needed.",
            f"uncorrected step ÷ α at its furthest from 1 (max of s/α and α/s) over the first {ADAM_EARLY} steps",
            [adam["uncorrected_factor"]],
            above(2),
        ),
    ]


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    (result,) = measured
    paths = result["paths"]
    for name, surface in SURFACES.items():
        draw_paths(name, surface, paths, context.path(f"{name}.png"))
    draw_laws(result, context.path("laws.png"))
    adam = result["adam"]
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "functions": "bowl f = x²/20 + y² from (−7, 2); saddle f = x² − y² from (1, 0.001); the slope "
            f"f(w) = {SLOPE:g}·w from 0 (a constant gradient, where the notes' formulas hold exactly)",
            "optimizers": "deepgrad's SGD, Momentum (v = βv − α∇w, w = w + v), AdaGrad, RMSProp and Adam on a "
            "float64 nn.Parameter, f written with deepgrad ops, gradients by backward(); eps at PyTorch's defaults",
            "paths": f"{STEPS} steps each at Saito's rates (Deep Learning from Scratch, ch. 6): SGD lr 0.95, Momentum "
            "lr 0.1 β 0.9, AdaGrad lr 1.5, Adam lr 0.3; RMSProp lr 0.3 with the notes' ρ = 0.9",
            "slope": f"Momentum lr {MOMENTUM_LR:g}, β {', '.join(f'{b:g}' for b in BETAS)}, {MOMENTUM_STEPS} steps; "
            f"AdaGrad and RMSProp (ρ {RHO:g}) lr {RATE_LR:g}, {RATE_STEPS} steps; Adam lr {ADAM_LR:g}, β "
            f"{ADAM_BETAS[0]:g}/{ADAM_BETAS[1]:g}, {ADAM_STEPS} steps, and the same formulas without the bias "
            "correction (NumPy: deepgrad's Adam always corrects)",
            "uncorrected Adam": f"its first step is {adam['first']['uncorrected']:.3g} α and its furthest "
            f"{adam['uncorrected_factor']:.3g} α (step {adam['uncorrected_worst_step']}): m is biased towards zero "
            "by 1 − β1ᵗ but √v by √(1 − β2ᵗ), much more, so at the notes' defaults the uncorrected steps are too "
            "large, not too small",
        },
        claims=claims_of(result),
        tables=[bowl_table(paths), saddle_table(paths), formula_table(result)],
        figures=[
            Figure(
                "bowl.png",
                f"Each optimizer's {STEPS} steps on the bowl x²/20 + y² over log-spaced contour lines (equal axes: "
                "the valley is this narrow); last panel: f per step",
            ),
            Figure(
                "saddle.png",
                f"Each optimizer's {STEPS} steps from (1, 0.001), beside the saddle point of x² − y² (dashed "
                "contours: f < 0); last panel: the distance |y| from the saddle point per step",
            ),
            Figure(
                "laws.png",
                f"Down the slope f(w) = {SLOPE:g}·w, measured (broad, pale, a dot per step shown) against the "
                "notes' formulas (thin, dashed). Left: momentum's step length for each β against its terminal "
                "velocity α‖∇w‖/(1−β). Middle: AdaGrad's and RMSProp's factor 1/(√h + δ) against 1/(|g|√t) and "
                "1/(|g|√(1 − ρᵗ)). Right: Adam's step ÷ α with the bias correction and without it, against 1 and "
                "(1 − β1ᵗ)/√(1 − β2ᵗ).",
            ),
        ],
        results=result,
    )
