"""``optimizers``: SGD, Momentum, AdaGrad, RMSProp and Adam training one network, each at the
learning rate that suits it — the course notes' comparison on real data (001; 002 §5.3–5.5), after
Saito's *Deep Learning from Scratch* (ch. 6: a 4 × 100 ReLU MLP; he trains on MNIST).

The notes say plain SGD's path is inefficient and that Momentum, AdaGrad, RMSProp and Adam fix it.
Saito's figure shows SGD far behind the others, but at one rate for all (0.01 for SGD), which is
far below what suits SGD here; a comparison of optimizers is only fair when each runs at its own
best rate. So each trains the same MLP (4 hidden layers of 100 ReLU units, He initialization,
batch 32, 800 steps: 20 epochs of digits) from the same initial weights and batch order (the seed)
at every rate of a half-decade grid around its usual one, and keeps the rate that reached the
lowest validation loss during its run (the model ``keep = best`` would keep: a fast rate is not
penalized for overfitting once it got there; the test split is never looked at to choose). The
claims then ask how many steps each needs to bring the loss on the whole training set down to 0.03
(from ln 10 ≈ 2.3: the end of the descent, about where the validation loss bottoms out), measured
every 10 steps, and judge "fewer steps" as at most two thirds of SGD's (a ratio above 1.5).
Momentum's β is the notes' 0.9; RMSProp's ρ and Adam's betas are PyTorch's defaults (0.99; 0.9 and
0.999, the notes' defaults for Adam). A rate at which the loss explodes is stopped and counts as
diverged. With only 180 validation samples, the chosen rate can differ between seeds, and with it
the ratios: the spread of the claims is the spread of the whole protocol, choice of rate included.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import TrainingDiverged
from ..viz.optimizers import training_race
from ..viz.seeds import over_setting
from .claims import Claim, above, at_most
from .common import Context, Figure, Report, Table, data_description, recorded_run, run_options

TITLE = "Five optimizers training one ReLU MLP, each at its rate chosen on the validation split"
QUESTION = (
    "At its own best learning rate, does each of Momentum, AdaGrad, RMSProp and Adam train a network in fewer "
    "steps than plain SGD (001, 002 §5.3–5.5), and is Adam at its default rate a good default (002 §5.5)?"
)
SEEDS = 3

OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "Momentum", "adagrad": "AdaGrad", "rmsprop": "RMSProp", "adam": "Adam"}
# Each optimizer's grid: half-decades around its usual rate, placed so that the rate validation chooses lies
# inside it (a first grid from 1e-4 for RMSProp and Adam and from 0.003 for AdaGrad never chose its lowest and
# often its highest rate: the grid moved up by half a decade), and wide enough that its ends are worse.
GRID = {
    "sgd": [0.03, 0.1, 0.3, 1.0],
    "momentum": [0.003, 0.01, 0.03, 0.1],
    "adagrad": [0.01, 0.03, 0.1, 0.3],
    "rmsprop": [3e-4, 1e-3, 3e-3, 1e-2],
    "adam": [3e-4, 1e-3, 3e-3, 1e-2],
}
EXTRA = {"sgd": {"momentum": 0.0}, "momentum": {"momentum": 0.9}}  # the notes' β for Momentum; SGD without
ADAM_DEFAULT = 1e-3  # the notes' default α for Adam
BATCH_SIZE = 32
TRAINING: dict[str, Any] = {
    "hidden": [100] * 4,
    "activation": "relu",
    "batch_size": BATCH_SIZE,
    "epochs": 20,
    "keep": "last",
    "stop_on_divergence": True,
}
STEPS = 800  # 20 epochs of digits' 1257 training samples in batches of 32 (40 an epoch)
QUICK = {"train_size": 320, "epochs": 2}
TARGET = 0.03  # the training loss whose reaching is timed
CHECKS = 80  # times the loss on the whole training set is measured over each run
SPEEDUP = 1.5  # "fewer steps": at most two thirds of SGD's
DEFAULT_WITHIN = 1.5  # "a good default": within this factor of the fastest optimizer at its chosen rate


def options(context: Context) -> dict[str, Any]:
    """The training options as this context runs them: STEPS steps on digits (about as many on the
    bigger data sets' subset); in quick mode two epochs of a few hundred samples."""
    training = run_options(context, TRAINING, QUICK)
    if not context.quick and training.get("train_size"):
        training["epochs"] = max(1, round(STEPS * BATCH_SIZE / training["train_size"]))
    return training


def measure(context: Context) -> dict[str, Any]:
    """One seed: for every optimizer and rate of its grid, the loss on the whole training set CHECKS
    times over the run, and the trained model's training, validation and test loss and accuracy (a
    run that diverged: ``diverged`` and its step)."""
    training = options(context)
    runs: dict[str, list[dict[str, Any]]] = {}
    steps: list[int] = []
    for optimizer, rates in GRID.items():
        runs[optimizer] = []
        for lr in rates:
            run, evaluations = recorded_run(
                context,
                ["train", "val"],
                times=CHECKS,
                optimizer=optimizer,
                lr=lr,
                **EXTRA.get(optimizer, {}),
                **training,
            )
            try:
                summary = run.fit()
            except TrainingDiverged as error:
                runs[optimizer].append({"lr": lr, "diverged": error.step or True})
                continue
            steps = evaluations.steps
            runs[optimizer].append(
                {
                    "lr": lr,
                    "diverged": False,
                    "train_losses": evaluations.series("train", "loss"),
                    "best_val_loss": min(evaluations.series("val", "loss")),
                    **{key: summary[key] for key in ("train_loss", "val_loss", "val_accuracy", "test_accuracy")},
                }
            )
    return {"steps": steps, "runs": runs}


def chosen(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of the rate that reached the lowest validation loss (never the test split)."""
    return min((run for run in runs if not run["diverged"]), key=lambda run: run["best_val_loss"])


def steps_to(steps: list[int], losses: list[float], target: float = TARGET) -> float:
    """The first measured step at which the training loss is at most ``target`` (inf: never)."""
    return next((float(step) for step, loss in zip(steps, losses) if loss <= target), math.inf)


def ratio(a: float, b: float) -> float:
    """a ÷ b for step counts that may be infinite (never reached): inf ÷ finite = inf, both inf = NaN."""
    if math.isinf(a) and math.isinf(b):
        return math.nan
    return math.inf if math.isinf(a) else a / b


def summarize(seed: dict[str, Any]) -> dict[str, Any]:
    """One seed's chosen rate, steps to the target and final numbers per optimizer, and Adam's at its
    default rate."""
    steps = seed["steps"]
    out = {}
    for optimizer, runs in seed["runs"].items():
        run = chosen(runs)
        out[optimizer] = {
            "lr": run["lr"],
            "steps_to_target": steps_to(steps, run["train_losses"]),
            **{key: run[key] for key in ("train_loss", "val_loss", "test_accuracy")},
        }
    default = next(run for run in seed["runs"]["adam"] if run["lr"] == ADAM_DEFAULT)
    out["adam_default"] = {
        "lr": ADAM_DEFAULT,
        "steps_to_target": math.inf if default["diverged"] else steps_to(steps, default["train_losses"]),
    }
    return out


def validation_losses(measured: list[dict[str, Any]], optimizer: str, lr: float) -> list[float]:
    """Every seed's lowest validation loss over the run of ``optimizer`` at ``lr`` (inf where it diverged)."""
    runs = [next(run for run in seed["runs"][optimizer] if run["lr"] == lr) for seed in measured]
    return [math.inf if run["diverged"] else run["best_val_loss"] for run in runs]


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    training = options(context)
    steps = measured[0]["steps"]
    budget = steps[-1]  # the last measurement is after the last step
    summaries = [summarize(seed) for seed in measured]
    curves = {}
    for optimizer, name in OPTIMIZER_NAMES.items():
        per_seed = [chosen(seed["runs"][optimizer])["train_losses"] for seed in measured]
        curves[name] = (steps, [list(column) for column in zip(*per_seed)])
    reached = {OPTIMIZER_NAMES[optimizer]: [s[optimizer]["steps_to_target"] for s in summaries] for optimizer in GRID}
    reached[f"Adam at α = {ADAM_DEFAULT:g}\n(the default)"] = [s["adam_default"]["steps_to_target"] for s in summaries]
    training_race(
        curves,
        reached,
        context.path("race.png"),
        TARGET,
        budget,
        title=f"Each optimizer at its rate chosen on validation: MLP 4 × 100 ReLU on {context.dataset}, batch "
        f"{BATCH_SIZE}, {len(measured)} seeds",
    )
    over_setting(
        {
            "the lowest validation loss of each run": {
                "xlabel": "learning rate (log)",
                "ylabel": "lowest validation loss over the run (log)",
                "log_x": True,
                "log_y": True,
                "curves": {
                    OPTIMIZER_NAMES[optimizer]: (rates, [validation_losses(measured, optimizer, lr) for lr in rates])
                    for optimizer, rates in GRID.items()
                },
            }
        },
        context.path("selection.png"),
        title=f"Choosing each optimizer's rate: the lowest validation loss ({len(measured)} seeds)",
    )
    claims = [
        Claim.judge(
            f"optimizers/{optimizer}-faster",
            note,
            f"{OPTIMIZER_NAMES[optimizer]} trains the network in fewer steps than plain SGD.",
            f"steps to a training loss of {TARGET:g}, SGD ÷ {OPTIMIZER_NAMES[optimizer]}, each at its rate chosen "
            "on validation",
            [ratio(s["sgd"]["steps_to_target"], s[optimizer]["steps_to_target"]) for s in summaries],
            above(SPEEDUP),
        )
        for optimizer, note in (
            ("momentum", "002 §5.3"),
            ("adagrad", "002 §5.4"),
            ("rmsprop", "002 §5.4"),
            ("adam", "002 §5.5"),
        )
    ]
    claims.append(
        Claim.judge(
            "optimizers/adam-default",
            "002 §5.5",
            "Adam at its default rate α = 0.001 is a good default: without tuning it trains about as fast as the "
            "best of the five at their chosen rates.",
            f"steps to a training loss of {TARGET:g}, Adam at α = {ADAM_DEFAULT:g} ÷ the fastest optimizer at its "
            "chosen rate",
            [
                ratio(s["adam_default"]["steps_to_target"], min(s[o]["steps_to_target"] for o in GRID))
                for s in summaries
            ],
            at_most(DEFAULT_WITHIN),
        )
    )
    count = len(measured)
    table = Table(
        f"Each optimizer at its rate chosen on validation ({count} seeds; mean of the seeds)",
        ["optimizer", "grid", "chosen rate per seed", f"steps to {TARGET:g}", "final training loss", "test accuracy"],
        [
            [
                OPTIMIZER_NAMES[optimizer],
                ", ".join(f"{lr:g}" for lr in rates),
                ", ".join(f"{s[optimizer]['lr']:g}" for s in summaries),
                math.fsum(s[optimizer]["steps_to_target"] for s in summaries) / count,
                math.fsum(s[optimizer]["train_loss"] for s in summaries) / count,
                math.fsum(s[optimizer]["test_accuracy"] for s in summaries) / count,
            ]
            for optimizer, rates in GRID.items()
        ],
    )
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": data_description(context, training),
            "model": "MLP 4 × 100 ReLU (He initialization) + output layer; the same initial weights and batch order "
            "for every optimizer and rate (the seed)",
            "training": f"{training['epochs']} epochs of batch {BATCH_SIZE} ({budget} steps); the loss "
            f"on the whole training set measured {CHECKS} times over each run",
            "optimizers": "SGD (no momentum), Momentum β 0.9 (the notes' v = βv − α∇w), AdaGrad, RMSProp (ρ 0.99), "
            "Adam (β 0.9, 0.999); eps at PyTorch's defaults",
            "rates": "; ".join(
                f"{OPTIMIZER_NAMES[o]} {', '.join(f'{lr:g}' for lr in rates)}" for o, rates in GRID.items()
            )
            + ": the one that reached the lowest validation loss during its run is kept; a run whose loss "
            "explodes is stopped and counts as diverged",
            "target": f"training loss {TARGET:g} (from ln 10 ≈ 2.3), timed to the nearest measurement "
            f"(every {max(1, budget // CHECKS)} steps)",
        },
        claims=claims,
        tables=[table],
        figures=[
            Figure(
                "race.png",
                "Left: the loss on the whole training set of each optimizer at its chosen rate, the mean over the "
                f"seeds (line) and their range (band); dashed: the target {TARGET:g}. Right: the steps each took to "
                f"reach it, the mean (bar), the range (error bar) and each seed (dots); last, Adam at its default "
                f"α = {ADAM_DEFAULT:g}, whatever rate validation chose.",
            ),
            Figure(
                "selection.png",
                "The lowest validation loss each run reached, at each rate of each optimizer's grid: the mean over "
                "the seeds (line), their range (band) and each seed (dots); each seed of each optimizer keeps the "
                "rate of its lowest.",
            ),
        ],
        results={
            "steps": steps,
            "chosen": summaries,
            "curves": {name: curve[1] for name, curve in curves.items()},
            "grid": [
                {
                    optimizer: [{k: v for k, v in run.items() if k != "train_losses"} for run in runs]
                    for optimizer, runs in seed["runs"].items()
                }
                for seed in measured
            ],
        },
    )
