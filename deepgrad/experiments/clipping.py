"""``clipping``: a gradient cliff, what it does to SGD, and gradient clipping against a lower rate
(notes 002 §5.1.3).

The notes: a deep net or a recurrent one holds sharp non-linearities in its parameter space —
frequent in recurrent nets "since they multiply over many time steps", above all on long
sequences — where the gradient is enormous; when the parameters come near such a cliff the high
gradient "flings them far away, and the optimization done so far is quite possibly wasted".
Clipping the gradient's norm, g ← g·c/‖g‖ when ‖g‖ > c, bounds that step.

The cliff here is the notes' own: a one-unit linear recurrent net over T = 30 steps,
h_t = w·h_(t−1) + u·x_t, output h_T, so the output holds u·w^(T−1−t)·x_t — a product of the same
weight over the sequence. Its task is to sum the sequence (inputs N(0, 1); loss the mean squared
error ÷ T, so predicting nothing costs about 1), which needs w = 1, u = 1: remembering every step
puts the optimum at the foot of the cliff, where w^29 turns from vanishing to exploding (just past
w = 1 the gradient is orders of magnitude steeper than just before it). From a start at small w
(the plateau, where the gradient is small) SGD needs a large rate to cross the plateau; at that
rate a step onto the wall meets a huge gradient. Three settings share every seed's data, start and
batch order: plain SGD at lr 0.1, the same with the gradient norm clipped at 0.1 (about the
gradient's norm on the plateau, so clipping changes little there and bounds each step at the wall
to 0.01), and plain SGD at the rate a sweep from 0.001 to 1 finds best on the validation sequences
(the alternative to clipping: a rate low enough for the wall, on the whole path). 256 training and
256 validation sequences, batch 16, 20 epochs, float64 (so a thrown step is measured before it
overflows). The loss of the whole training set is taken after every step; a run's "last-epoch
loss" is its mean over the last epoch, since at the foot of the cliff even the clipped run goes on
bouncing off the wall, by a step of at most lr·c. The model is written with Tensor ops and
nn.Module (no config option expresses it) and trained by deepgrad's SGD and clip_grad_norm_.

The notes name the cliff and what it does; the cure measured against a lower rate, clipping the
gradient's norm, is the one the library pairs with it (nn.utils.clip_grad_norm_, --clip-grad-norm).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import nn
from ..optim import SGD
from ..tensor import Tensor, no_grad, tensor
from ..viz.depth import cliff
from ..viz.seeds import over_setting
from .claims import Claim, above, below
from .common import Context, Figure, Report, Table

TITLE = "Gradient clipping at a gradient cliff: a recurrent weight's product, SGD thrown off, clipping and a lower rate"
QUESTION = (
    "Does a product of the same weight over a long sequence make a cliff whose gradient throws SGD far away, and "
    "does clipping the gradient's norm prevent it where a lower rate only slows everything down (002 §5.1.3)?"
)
SEEDS = 3
STEPS_T = 30  # the sequence length: the output holds w^(T-1)
TRAIN, VAL, BATCH, EPOCHS = 256, 256, 16, 20
HIGH_LR, MAX_NORM = 0.1, 0.1
RATES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
OPTIMUM = (1.0, 1.0)  # (w, u): the sum of the sequence
CLIFF_AT = 0.1  # the cliff is measured at w = 1 ± this (u = 1)
QUICK = {"train": 64, "epochs": 2}
SURFACE_W, SURFACE_U, SURFACE_CAP = (-0.3, 1.4), (0.0, 1.5), 1e3  # the figure's (w, u) window; losses above the cap
MOVE_CAP = 1e6  # the sweep figure draws a larger single step at this height (a log axis cannot span 1e300)


class Recurrent(nn.Module):
    """One linear recurrent unit: h_t = w·h_(t−1) + u·x_t over the columns of x (N, T); the output is
    h_T = Σ_t u·w^(T−1−t)·x_t."""

    def __init__(self, w: float, u: float) -> None:
        super().__init__()
        self.w = nn.Parameter(np.array([w], dtype=np.float64))
        self.u = nn.Parameter(np.array([u], dtype=np.float64))

    def forward(self, x: Tensor) -> Tensor:
        h = self.u * x[:, 0]
        for t in range(1, x.shape[1]):
            h = self.w * h + self.u * x[:, t]
        return h


def sizes(context: Context) -> tuple[int, int]:
    """(training sequences, epochs) as this context runs them."""
    return (QUICK["train"], QUICK["epochs"]) if context.quick else (TRAIN, EPOCHS)


def sequences(seed: int, count: int, part: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` sequences of T standard-normal inputs and their sums, the same for a seed and ``part``
    (0: training, 1: validation)."""
    x = np.random.default_rng([seed, part]).standard_normal((count, STEPS_T))
    return x, x.sum(axis=1)


def start(seed: int) -> tuple[float, float]:
    """The seed's starting (w, u): on the plateau, far from the cliff."""
    rng = np.random.default_rng([seed, 2])
    return float(rng.uniform(0.0, 0.5)), float(rng.uniform(0.2, 0.6))


def mse(model: Recurrent, x: np.ndarray, y: np.ndarray) -> Tensor:
    """The loss: mean squared error of the output against the sum, ÷ T (predicting 0 costs about 1)."""
    return ((model(tensor(x)) - tensor(y)) ** 2).mean() * (1.0 / STEPS_T)


def full_loss(model: Recurrent, x: np.ndarray, y: np.ndarray) -> float:
    with no_grad(), np.errstate(over="ignore", invalid="ignore"):
        return float(mse(model, x, y).data)


def gradient_norm(x: np.ndarray, y: np.ndarray, w: float, u: float) -> float:
    """‖∇L(w, u)‖ on the sequences x (autograd)."""
    model = Recurrent(w, u)
    mse(model, x, y).backward()
    return grad_norm(model)


def grad_norm(model: Recurrent) -> float:
    """The norm of all the model's gradients together."""
    squares = [float((p.grad**2).sum()) for p in model.parameters() if p.grad is not None]
    return math.sqrt(math.fsum(squares))


def train(seed: int, lr: float, max_norm: float | None, train_count: int, epochs: int) -> dict[str, Any]:
    """SGD from the seed's start at ``lr`` (gradient norm clipped at ``max_norm`` when given), until the
    last epoch or until the loss is no longer finite: the whole-training-set loss before the first
    step and after every step, each step's parameters and raw gradient norm, and what they add up to."""
    x, y = sequences(seed, train_count, 0)
    x_val, y_val = sequences(seed, VAL, 1)
    model = Recurrent(*start(seed))
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.0)
    order = np.random.default_rng([seed, 3])  # every setting of a seed sees the same batches
    losses, norms = [full_loss(model, x, y)], []
    path = [(float(model.w.data[0]), float(model.u.data[0]))]
    diverged_at = None
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(epochs):
            batches = order.permutation(train_count)
            for first in range(0, train_count, BATCH):
                rows = batches[first : first + BATCH]
                optimizer.zero_grad()
                mse(model, x[rows], y[rows]).backward()
                norms.append(grad_norm(model))
                if max_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
                optimizer.step()
                path.append((float(model.w.data[0]), float(model.u.data[0])))
                losses.append(full_loss(model, x, y))
                if not math.isfinite(losses[-1]):
                    diverged_at = len(losses) - 1
                    break
            if diverged_at is not None:
                break
    per_epoch = -(-train_count // BATCH)
    moves = [math.dist(a, b) if all(map(math.isfinite, a + b)) else math.inf for a, b in zip(path, path[1:])]
    throw = max(range(len(moves)), key=moves.__getitem__)
    return {
        "lr": lr,
        "max_norm": max_norm,
        "losses": losses,
        "grad_norms": norms,
        "path": path,
        "diverged_at": diverged_at,
        "initial_loss": losses[0],
        "final_loss": math.fsum(losses[-per_epoch:]) / per_epoch if diverged_at is None else math.inf,
        "val_loss": math.inf if diverged_at is not None else full_loss(model, x_val, y_val),
        "largest_move": moves[throw],
        "throw_step": throw + 1,
        "best_before_throw": min(losses[: throw + 1]),
        "clipped_steps": None if max_norm is None else sum(norm > max_norm for norm in norms),
    }


def summary(run: dict[str, Any]) -> dict[str, Any]:
    """A run without its per-step records (what results.json keeps)."""
    return {k: v for k, v in run.items() if k not in ("losses", "grad_norms", "path")}


def best_rate(sweep: list[dict[str, Any]]) -> dict[str, Any]:
    """The unclipped run of the sweep with the lowest validation loss (never the training loss)."""
    return min(sweep, key=lambda run: run["val_loss"])


def measure(context: Context) -> dict[str, Any]:
    """One seed: the cliff's steepness on its sequences; every rate of the sweep, unclipped and
    clipped; the per-step records of the three settings compared (high rate unclipped and clipped,
    best unclipped rate)."""
    count, epochs = sizes(context)
    x, y = sequences(context.seed, count, 0)
    below_cliff = gradient_norm(x, y, OPTIMUM[0] - CLIFF_AT, 1.0)
    past_cliff = gradient_norm(x, y, OPTIMUM[0] + CLIFF_AT, 1.0)
    sweep: dict[str, list[dict[str, Any]]] = {"unclipped": [], "clipped": []}
    for lr in RATES:
        for setting, max_norm in (("unclipped", None), ("clipped", MAX_NORM)):
            sweep[setting].append(train(context.seed, lr, max_norm, count, epochs))
    lower = best_rate(sweep["unclipped"])
    high = RATES.index(HIGH_LR)
    runs = {"unclipped": sweep["unclipped"][high], "clipped": sweep["clipped"][high], "lower rate": lower}
    return {
        "start": list(start(context.seed)),
        "grad_below_cliff": below_cliff,
        "grad_past_cliff": past_cliff,
        "runs": runs,  # with their per-step records: the figure draws the first seed's
        "sweep": {setting: [summary(run) for run in sweep_runs] for setting, sweep_runs in sweep.items()},
    }


def loss_surface(seed: int, count: int, points: int = 160) -> dict[str, Any]:
    """The training loss over a grid of (w, u), in closed form: with s_w = Σ_t w^(T−1−t)·x_t the
    output is u·s_w, so L = (u²·mean(s_w²) − 2u·mean(s_w·y) + mean(y²)) ÷ T."""
    x, y = sequences(seed, count, 0)
    ws = np.linspace(SURFACE_W[0], SURFACE_W[1], points)
    us = np.linspace(SURFACE_U[0], SURFACE_U[1], points)
    with np.errstate(over="ignore", invalid="ignore"):
        powers = ws[None, :] ** np.arange(STEPS_T - 1, -1, -1)[:, None]  # (T, points)
        s = x @ powers  # (N, points)
        ss, sy, yy = (s**2).mean(axis=0), (s * y[:, None]).mean(axis=0), float((y**2).mean())
        loss = (us[:, None] ** 2 * ss[None, :] - 2 * us[:, None] * sy[None, :] + yy) / STEPS_T
    loss = np.where(np.isfinite(loss), loss, np.inf)
    return {"w": ws.tolist(), "u": us.tolist(), "loss": loss.tolist(), "cap": SURFACE_CAP, "optimum": OPTIMUM}


def throw_note(run: dict[str, Any]) -> str:
    """Where the run's largest step threw it, and whether it diverged."""
    w, u = run["path"][run["throw_step"]]
    landed = f"w = {w:.2g}, u = {u:.2g}" if math.isfinite(w) and math.isfinite(u) else "beyond float64"
    ending = "" if run["diverged_at"] is None else f";\nloss not finite at step {run['diverged_at']}"
    return f"step {run['throw_step']}: thrown to {landed}{ending}"


def label(setting: str, run: dict[str, Any]) -> str:
    if setting == "clipped":
        return f"clipped at ‖g‖ ≤ {MAX_NORM:g}, lr {run['lr']:g}"
    if setting == "lower rate":
        return f"unclipped, lr {run['lr']:g} (best on validation)"
    return f"unclipped, lr {run['lr']:g}"


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    count, epochs = sizes(context)
    first = measured[0]
    cliff(
        loss_surface(context.seeds[0], count),
        {
            label(setting, run): {
                "path": run["path"],
                "loss": run["losses"],
                "diverged_at": run["diverged_at"],
                "note": throw_note(run),
            }
            for setting, run in first["runs"].items()
        },
        context.path("clipping.png"),
        title=f"A cliff at w = 1: the loss holds w^{STEPS_T - 1} (seed {context.seeds[0]}, {epochs} epochs of SGD, "
        f"batch {BATCH})",
    )
    sweep_lr, moves = (
        {
            setting: [
                list(column) for column in zip(*([run[key] for run in seed["sweep"][setting]] for seed in measured))
            ]
            for setting in ("unclipped", "clipped")
        }
        for key in ("final_loss", "largest_move")
    )
    names = {"unclipped": "unclipped", "clipped": f"clipped at ‖g‖ ≤ {MAX_NORM:g}"}
    start_loss = math.fsum(seed["runs"]["unclipped"]["initial_loss"] for seed in measured) / len(measured)
    over_setting(
        {
            "last-epoch training loss against the rate": {
                "xlabel": "learning rate (log)",
                "ylabel": "training loss, mean over the last epoch (log)",
                "log_x": True,
                "log_y": True,
                "curves": {names[s]: (RATES, sweep_lr[s]) for s in names},
                "references": {"loss at the start (mean)": start_loss},
            },
            "the largest single step of the run": {
                "xlabel": "learning rate (log)",
                "ylabel": "largest ‖Δ(w, u)‖ in one step (log)",
                "log_x": True,
                "log_y": True,
                "curves": {
                    names[s]: (RATES, [[min(move, MOVE_CAP) for move in at_rate] for at_rate in moves[s]])
                    for s in names
                },
                "references": {
                    "distance from the start to the optimum (mean)": _mean_distance(measured),
                    f"larger steps drawn at {MOVE_CAP:g}": MOVE_CAP,
                },
            },
        },
        context.path("clipping_sweep.png"),
        title=f"SGD over the rates, with and without clipping: {len(measured)} seeds, {epochs} epochs each",
    )
    cliff_ratio = [seed["grad_past_cliff"] / seed["grad_below_cliff"] for seed in measured]
    thrown = [seed["runs"]["unclipped"]["largest_move"] / math.dist(seed["start"], OPTIMUM) for seed in measured]
    ruined = [
        seed["runs"]["unclipped"]["final_loss"] / seed["runs"]["unclipped"]["best_before_throw"] for seed in measured
    ]
    converges = [seed["runs"]["clipped"]["final_loss"] / seed["runs"]["clipped"]["initial_loss"] for seed in measured]
    lower = [seed["runs"]["lower rate"]["final_loss"] / seed["runs"]["clipped"]["final_loss"] for seed in measured]
    claims = [
        Claim.judge(
            "clipping/cliff",
            "002 §5.1.3",
            "A product of the same weight over many time steps makes the loss surface a cliff: just past it the "
            "gradient is orders of magnitude steeper than just before it.",
            f"‖∇L‖ at w = {OPTIMUM[0] + CLIFF_AT:g} ÷ at w = {OPTIMUM[0] - CLIFF_AT:g} (u = 1; T = {STEPS_T})",
            cliff_ratio,
            above(100),
        ),
        Claim.judge(
            "clipping/thrown",
            "002 §5.1.3",
            "Near the cliff the huge gradient throws the parameters far away.",
            f"largest single SGD step ‖Δ(w, u)‖ ÷ distance from the start to the optimum (lr {HIGH_LR:g}, "
            "unclipped; inf: the step overflowed)",
            thrown,
            above(10),
        ),
        Claim.judge(
            "clipping/ruins-progress",
            "002 §5.1.3",
            "The throw undoes the optimization done so far.",
            f"last-epoch training loss ÷ the lowest reached before the largest step (lr {HIGH_LR:g}, unclipped; "
            "inf: diverged)",
            ruined,
            above(10),
        ),
        Claim.judge(
            "clipping/prevents",
            "002 §5.1.3",
            "Clipping the gradient's norm bounds the step at the cliff, so SGD at the same rate goes on to the "
            "optimum instead of being thrown.",
            f"last-epoch ÷ initial training loss, clipped at ‖g‖ ≤ {MAX_NORM:g} (lr {HIGH_LR:g})",
            converges,
            below(0.1),
        ),
        Claim.judge(
            "clipping/lower-rate",
            "002 §5.1.3",
            "A lower rate avoids the throw only by being slow everywhere: clipping at the high rate ends far lower.",
            f"last-epoch training loss of unclipped SGD at its best rate (chosen on validation) ÷ clipped at lr "
            f"{HIGH_LR:g}",
            lower,
            above(10),
        ),
    ]
    settings = ("unclipped", "clipped", "lower rate")
    table = Table(
        f"The three settings, per seed ({len(measured)} seeds)",
        [
            "seed",
            "setting",
            "lr",
            "initial loss",
            "lowest loss before the largest step",
            "largest step ‖Δ(w, u)‖",
            "at step",
            "last-epoch loss",
            "diverged at step",
        ],
        [
            [
                s,
                setting,
                seed["runs"][setting]["lr"],
                seed["runs"][setting]["initial_loss"],
                seed["runs"][setting]["best_before_throw"],
                seed["runs"][setting]["largest_move"],
                seed["runs"][setting]["throw_step"],
                seed["runs"][setting]["final_loss"],
                seed["runs"][setting]["diverged_at"],
            ]
            for s, seed in zip(context.seeds, measured)
            for setting in settings
        ],
    )
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": f"{count} training and {VAL} validation sequences of T = {STEPS_T} inputs N(0, 1) per seed; "
            "the target is their sum (synthetic: the cliff needs a recurrent product, not the image data set)",
            "model": "one linear recurrent unit h_t = w·h_(t−1) + u·x_t, output h_T = Σ u·w^(T−1−t)·x_t; loss "
            "mean squared error ÷ T; the optimum (w, u) = (1, 1) sits at the foot of the cliff w > 1",
            "training": f"{epochs} epochs of plain SGD, batch {BATCH}, float64, from a seed's start on the plateau "
            "(w ~ U(0, 0.5), u ~ U(0.2, 0.6)); every setting of a seed sees the same data, start and batches",
            "settings": f"unclipped at lr {HIGH_LR:g}; clipped at ‖g‖ ≤ {MAX_NORM:g} (about the gradient's norm on "
            f"the plateau) at lr {HIGH_LR:g}; unclipped at the rate of the sweep "
            f"{', '.join(f'{r:g}' for r in RATES)} with the lowest validation loss",
        },
        claims=claims,
        tables=[table],
        figures=[
            Figure(
                "clipping.png",
                f"Left: the training loss over (w, u) in log colour (seed {context.seeds[0]}): a plateau for small "
                "w and a wall past w = 1, the optimum at its foot; each run's path, and where the unclipped run's "
                "step threw it. Right: the loss of the whole training set after every step.",
            ),
            Figure(
                "clipping_sweep.png",
                "Left: the training loss over the last epoch against the rate, unclipped and clipped: the mean over "
                "the seeds (line), their range (band) and each seed (dots); where seeds diverged, the panel says "
                "how many. Right: the largest single step of each run (steps beyond 1e6 drawn at 1e6); the dashed "
                "line is how far the start is from the optimum.",
            ),
        ],
        results={
            "cliff": [
                {"grad_below_cliff": seed["grad_below_cliff"], "grad_past_cliff": seed["grad_past_cliff"]}
                for seed in measured
            ],
            "start": [seed["start"] for seed in measured],
            "runs": [{setting: summary(run) for setting, run in seed["runs"].items()} for seed in measured],
            "sweep": [seed["sweep"] for seed in measured],
        },
    )


def _mean_distance(measured: list[dict[str, Any]]) -> float:
    return math.fsum(math.dist(seed["start"], OPTIMUM) for seed in measured) / len(measured)
