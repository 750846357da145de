"""``optimizers-2d``: SGD, Momentum, AdaGrad, RMSProp and Adam on two functions of two variables —
the course notes' comparison, after Saito's *Deep Learning from Scratch* (ch. 6).

The bowl f = x²/20 + y² is twenty times steeper across (y) than along (x): from (−7, 2) the
gradient points mostly across the valley, not at the minimum. The saddle f = x² − y² starts at
(1, 0.001), beside the saddle point, where the gradient along y (the way down) is only 0.002.
Each optimizer is deepgrad's own, stepping a 2-element ``nn.Parameter``; f is written with
deepgrad ops and its gradient comes from ``backward()``. 30 steps each (the book's).
"""

from dataclasses import dataclass

import numpy as np

from .. import nn, optim
from ..viz.optimizers import optimizer_paths
from .common import Figure, Report, Table
from .optimizers import OPTIMIZER_NAMES

STEPS = 30
ESCAPED = 1.0  # |y| beyond which a path has left the saddle


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
    return {"escape_step": escape_step(points)}


@dataclass(frozen=True)
class Surface:
    """A function f(x, y) to descend, written with operators that work on deepgrad tensors (the
    descent), Python floats and NumPy arrays (the contour lines); where it starts; its minimum or
    saddle point (``target``, at the origin); the window the figure shows; what is measured on
    each path beyond f (``measures(points) -> dict``); and the quantity its figure's last panel
    follows step by step (``progress``: a label and a function of (x, y)), with ``references``
    ({label: value}) marked there."""

    formula: str
    f: object
    start: tuple
    target_label: str
    window: tuple
    measures: object
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


def study(surface, make_optimizer):
    """One optimizer's path on ``surface`` and what is measured on it: the issue's ``path`` and
    ``final_f``, and the surface's own measures."""
    points = descend(surface, make_optimizer)
    return {"path": points, "final_f": surface.f(*points[-1]), **surface.measures(points)}


def bowl_table(results):
    rows = [
        [OPTIMIZER_NAMES[opt], rate, r["y_reversals"], r["y_travel"], r["final_distance"], r["final_f"]]
        for opt, (rate, _) in OPTIMIZERS.items()
        for r in [results[f"bowl/{opt}"]]
    ]
    return Table(
        f"Bowl x²/20 + y² from (−7, 2), {STEPS} steps: the zig-zag, and how close each gets",
        ["optimizer", "rate", "y-step reversals", "y travelled (× y₀)", "distance to minimum", "final f"],
        rows,
    )


def saddle_table(results):
    rows = [
        [OPTIMIZER_NAMES[opt], rate, r["escape_step"], *r["path"][-1], r["final_f"]]
        for opt, (rate, _) in OPTIMIZERS.items()
        for r in [results[f"saddle/{opt}"]]
    ]
    return Table(
        f"Saddle x² − y² from (1, 0.001), {STEPS} steps: when each leaves the saddle point",
        ["optimizer", "rate", f"first step beyond y = ±{ESCAPED:g}", "final x", "final y", "final f"],
        rows,
    )


def draw(name, surface, results, path):
    """The figure of one surface: a panel per optimizer (its rate noted, and on the bowl its y-step
    reversals), and a last panel with the surface's ``progress`` quantity per step."""
    paths, notes = {}, {}
    for opt, (rate, _) in OPTIMIZERS.items():
        result, label = results[f"{name}/{opt}"], OPTIMIZER_NAMES[opt]
        paths[label] = result["path"]
        notes[label] = rate + (f"\ny-step reversals: {result['y_reversals']}" if "y_reversals" in result else "")
    ylabel, quantity = surface.progress
    progress = (ylabel, {label: [quantity(x, y) for x, y in points] for label, points in paths.items()})
    x, y = surface.start
    optimizer_paths(
        paths,
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


def claim(results):
    """What the figures show, with the numbers of this run: SGD's zig-zag on the bowl against the
    adaptive methods' straight way down, and who leaves the saddle point first."""
    sgd, adam = results["bowl/sgd"], results["bowl/adam"]
    rmsprop_adagrad = max(results[f"bowl/{opt}"]["final_distance"] for opt in ("rmsprop", "adagrad"))
    adaptive_escape = max(results[f"saddle/{opt}"]["escape_step"] for opt in ("adagrad", "rmsprop", "adam"))
    return (
        f"On the narrow bowl SGD zig-zags across the valley: its y-step reverses {sgd['y_reversals']} times in "
        f"{STEPS} steps, and it travels {sgd['y_travel']:.0f}× the start's height in y to end "
        f"{sgd['final_distance']:.2g} from the minimum. RMSProp and AdaGrad drop to the valley floor without a "
        f"reversal and run along it to within {rmsprop_adagrad:.2g}; Adam swings over the floor in one wide arc "
        f"(y-step reversals: {adam['y_reversals']}) to within {adam['final_distance']:.2g}. Beside the saddle "
        f"point, where the gradient along y is 0.002, AdaGrad, RMSProp and Adam rescale it and are away "
        f"(|y| > {ESCAPED:g}) by step {adaptive_escape}; SGD follows at step "
        f"{results['saddle/sgd']['escape_step']} and Momentum at step {results['saddle/momentum']['escape_step']}."
    )


def run(context):
    results = {
        f"{name}/{opt}": study(surface, make)
        for name, surface in SURFACES.items()
        for opt, (_, make) in OPTIMIZERS.items()
    }
    for name, surface in SURFACES.items():
        draw(name, surface, results, context.path(f"{name}.png"))
    return Report(
        title="Five optimizers on a narrow bowl and a saddle",
        claim=claim(results),
        setup={
            "functions": "bowl f = x²/20 + y² from (−7, 2); saddle f = x² − y² from (1, 0.001)",
            "optimizers": "deepgrad's SGD lr 0.95, Momentum lr 0.1 β 0.9 (v = βv − α∇w, w = w + v), AdaGrad "
            "lr 1.5, RMSProp lr 0.3 ρ 0.9, Adam lr 0.3 (β1 0.9, β2 0.999); eps at PyTorch's "
            "defaults",
            "rates": "Saito's (Deep Learning from Scratch, ch. 6) for SGD, Momentum, AdaGrad and Adam; RMSProp "
            "at Adam's rate with the notes' ρ = 0.9 (it is Adam without momentum and bias correction); "
            "the same rates on both functions",
            "steps": f"{STEPS} per optimizer and function on a float64 nn.Parameter of 2 elements, f written "
            "with deepgrad ops, gradients by backward(); quick mode runs the same",
        },
        tables=[bowl_table(results), saddle_table(results)],
        figures=[
            Figure(
                "bowl.png",
                f"Each optimizer's {STEPS} steps on the bowl x²/20 + y² over log-spaced contour "
                "lines (equal axes: the valley is this narrow); last panel: f per step",
            ),
            Figure(
                "saddle.png",
                f"Each optimizer's {STEPS} steps from (1, 0.001), beside the saddle point of "
                "x² − y² (dashed contours: f < 0); last panel: the distance |y| from the "
                "saddle point per step",
            ),
        ],
        results=results,
    )
