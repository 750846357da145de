"""``lr-decay``: does a constant learning rate keep SGD wandering where a decaying one settles, and
what do too small and too large initial rates do? (Notes 002 §5.2.)

The notes: SGD's gradient is noisy (one sample, or a few), so "even near the optimum the noise does
not vanish, and SGD oscillates there" — hence a rate that decays, α_i = (1 − i/k)·α₀ + (i/k)·b, down
to a floor b. The wandering only shows when the gradient is noisy, so this study runs the noisy
regime: mini-batches of 4 from a high rate α₀ = 0.3 (with a batch of 32 the constant rate reaches
as low a training loss as the decaying ones, and the claim would not be tested). Two ReLU layers of
100, plain SGD, 10 epochs, under a constant rate, the notes' linear decay to b = α₀/100, a step
schedule and a cosine. Then α₀ is swept from 3e-4 to 3 at a constant rate (3 epochs): the notes
say too large a rate makes the learning curve oscillate and too small a one learns slowly and stays
high; the best α₀ is chosen on the validation split.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import TrainingDiverged
from ..viz.dynamics import step_curves
from ..viz.seeds import over_setting
from .claims import Claim, above, at_least
from .common import Context, Figure, Report, StepRecorder, Table, data_description, recorded_run, run_options

TITLE = "Learning-rate decay: constant against decaying rates in the noisy regime; α₀ from too small to too large"
QUESTION = (
    "Does a constant learning rate keep SGD wandering near the optimum while a decaying one settles (002 §5.2), "
    "and what do too small and too large initial rates do?"
)
SEEDS = 3
SCHEDULES = {"constant": "none", "linear-decay": "linear-decay", "step": "step", "cosine": "cosine"}
LR, FLOOR = 0.3, 0.003
TRAINING = {"hidden": [100, 100], "optimizer": "sgd", "momentum": 0.0, "batch_size": 4, "epochs": 10, "keep": "last"}
SWEEP = [3e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0]
SWEEP_EPOCHS = 3
CHECKS = 40  # times each schedule's whole-training-set loss is measured over its run
QUICK = {"train_size": 320, "epochs": 2}


def options(context: Context) -> dict[str, Any]:
    """The training options as this context runs them (quick: a few hundred samples, two epochs)."""
    return run_options(context, TRAINING, QUICK)


def measure(context: Context) -> dict[str, Any]:
    """One seed: every schedule's per-step loss and rate and its final model's losses; the sweep's
    final training and validation loss per α₀ (inf when the run diverged)."""
    training = options(context)
    schedules = {}
    for name, schedule in SCHEDULES.items():
        recorder = StepRecorder()
        run, evaluations = recorded_run(
            context, ["train"], times=CHECKS, schedule=schedule, lr=LR, final_lr=FLOOR, **training
        )
        run.trainer.callbacks.append(recorder)
        summary = run.fit()
        steps_per_epoch = len(recorder.loss) // training["epochs"]
        schedules[name] = {
            "lr": recorder.lr,
            "checked_at": evaluations.steps,
            "train_losses": evaluations.series("train", "loss"),
            "last_epoch_loss": math.fsum(recorder.loss[-steps_per_epoch:]) / steps_per_epoch,
            "train_loss": summary["train_loss"],
            "test_accuracy": summary["test_accuracy"],
        }
    sweep = []
    epochs = 1 if context.quick else SWEEP_EPOCHS
    for alpha in SWEEP:
        try:
            _, summary = context.train(
                schedule="none", lr=alpha, **{**training, "epochs": epochs}, stop_on_divergence=True
            )
            sweep.append({"alpha": alpha, "train_loss": summary["train_loss"], "val_loss": summary["val_loss"]})
        except TrainingDiverged:
            sweep.append({"alpha": alpha, "train_loss": math.inf, "val_loss": math.inf})
    return {"schedules": schedules, "sweep": sweep}


def best_alpha(sweep: list[dict[str, float]]) -> dict[str, float]:
    """The sweep's point with the lowest validation loss (selection never looks at the test split)."""
    return min(sweep, key=lambda point: point["val_loss"])


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    training = options(context)
    first = measured[0]["schedules"]
    step_curves(
        {
            "learning rate per step": {"ylabel": "learning rate α", "curves": {s: r["lr"] for s, r in first.items()}},
            "loss on the whole training set": {
                "ylabel": "training loss (log)",
                "log_y": True,
                "steps": first["constant"]["checked_at"],
                "curves": {s: r["train_losses"] for s, r in first.items()},
            },
        },
        context.path("lr_decay.png"),
        legend_outside=True,
        title=f"SGD, batch {training['batch_size']}, from α₀ = {LR:g}: constant, linear decay to {FLOOR:g}, "
        f"step, cosine (seed {context.seeds[0]})",
    )
    per_seed_sweep = [[point["train_loss"] for point in seed["sweep"]] for seed in measured]
    best = [best_alpha(seed["sweep"]) for seed in measured]
    over_setting(
        {
            "final training loss against α₀": {
                "xlabel": "initial learning rate α₀ (log)",
                "ylabel": "training loss after the run (log)",
                "log_x": True,
                "log_y": True,
                "curves": {"constant α₀": (SWEEP, [list(column) for column in zip(*per_seed_sweep)])},
                "references": {"chance: ln 10": math.log(10)},
                "marks": {f"best on validation (seed {context.seeds[0]})": (best[0]["alpha"], best[0]["train_loss"])},
            }
        },
        context.path("lr_sweep.png"),
        title=f"Too small, about right, too large: {len(measured)} seeds, "
        f"{1 if context.quick else SWEEP_EPOCHS} epochs each",
    )
    ratio = [
        seed["schedules"]["constant"]["train_loss"] / seed["schedules"]["linear-decay"]["train_loss"]
        for seed in measured
    ]
    accuracy_gain = [
        100 * (seed["schedules"]["linear-decay"]["test_accuracy"] - seed["schedules"]["constant"]["test_accuracy"])
        for seed in measured
    ]
    too_small = [seed["sweep"][0]["train_loss"] / point["train_loss"] for seed, point in zip(measured, best)]
    too_large = [seed["sweep"][-1]["train_loss"] / point["train_loss"] for seed, point in zip(measured, best)]
    claims = [
        Claim.judge(
            "lr-decay/settles",
            "002 §5.2",
            "With a constant learning rate SGD keeps wandering near the optimum; a decaying rate settles.",
            f"final training loss, constant α ÷ linear decay to {FLOOR:g} (batch 4, α₀ = {LR:g})",
            ratio,
            above(2),
        ),
        Claim.judge(
            "lr-decay/generalizes",
            "002 §5.2",
            "The settled model is at least as good on unseen data as the wandering one.",
            "test accuracy, linear decay − constant (points)",
            accuracy_gain,
            at_least(0),
        ),
        Claim.judge(
            "lr-decay/too-small",
            "002 §5.2",
            "Too small an initial rate learns very slowly and stays in a high-cost region.",
            f"final training loss at α₀ = {SWEEP[0]:g} ÷ at the best α₀ (chosen on validation)",
            too_small,
            above(5),
        ),
        Claim.judge(
            "lr-decay/too-large",
            "002 §5.2",
            "Too large an initial rate makes the learning curve oscillate wildly instead of descending.",
            f"final training loss at α₀ = {SWEEP[-1]:g} ÷ at the best α₀ (diverged: infinite)",
            too_large,
            above(5),
        ),
    ]
    table = Table(
        f"Each schedule over {len(measured)} seeds (mean)",
        ["schedule", "last lr", "mean batch loss, last epoch", "final training loss", "test accuracy"],
        [
            [name, first[name]["lr"][-1]]
            + [
                math.fsum(seed["schedules"][name][key] for seed in measured) / len(measured)
                for key in ("last_epoch_loss", "train_loss", "test_accuracy")
            ]
            for name in SCHEDULES
        ],
    )
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": data_description(context, training),
            "model": f"MLP {TRAINING['hidden']} ReLU (He initialization)",
            "training": f"{training['epochs']} epochs of plain SGD (no momentum), batch {training['batch_size']}: the "
            "noisy regime, where a constant rate's wandering shows",
            "schedules": f"constant α₀ = {LR:g}; linear decay α_i = (1 − i/k)·α₀ + (i/k)·b over every step, b = "
            f"{FLOOR:g}; step ×0.1 every third of the epochs; cosine from α₀ to b",
            "sweep": f"constant α₀ in {', '.join(f'{a:g}' for a in SWEEP)}; a run whose loss explodes is stopped "
            "and counts as diverged",
        },
        claims=claims,
        tables=[table],
        figures=[
            Figure(
                "lr_decay.png",
                "Top: the learning rate of every step. Bottom: the loss on the whole training set, measured "
                f"{CHECKS} times over the run (log scale): the constant rate's goes up and down around where the "
                f"decaying rates settle (seed {context.seeds[0]}).",
            ),
            Figure(
                "lr_sweep.png",
                "The final training loss against the initial rate, constant schedule: the "
                "mean over the seeds (line), their range (band) and each seed (dots); the dashed line is "
                "chance (ln 10).",
            ),
        ],
        results={
            "schedules": [
                {name: {k: v for k, v in run.items() if k != "lr"} for name, run in seed["schedules"].items()}
                for seed in measured
            ],
            "sweep": [seed["sweep"] for seed in measured],
        },
    )
