"""``lr-decay``: SGD with a constant learning rate against three ways of lowering it as training goes
on — the course notes' linear decay to a floor, α_i = (1 − i/k)·α₀ + (i/k)·b, a step schedule and a
cosine.

A 2-hidden-layer ReLU MLP is trained 10 epochs with plain SGD (no momentum) from a high rate,
α₀ = 0.3 (the notes: too large a rate makes the learning curve oscillate), under each schedule: the
config's ``schedule`` none, linear-decay and cosine (both to the floor b = α₀/100, ``final_lr``) and
step (a tenth after each third of the epochs). A callback records every step's training loss and
learning rate; each schedule is repeated over five seeds for the spread of its final test accuracy.
"""

import statistics

from ..viz.dynamics import step_curves
from .common import Figure, Report, StepRecorder, Table

SCHEDULES = {"constant": "none", "linear-decay": "linear-decay", "step": "step", "cosine": "cosine"}
LR = 0.3
FLOOR = LR / 100
TRAINING = {
    "hidden": [100, 100],
    "activation": "relu",
    "optimizer": "sgd",
    "momentum": 0.0,
    "lr": LR,
    "final_lr": FLOOR,
    "batch_size": 32,
    "epochs": 10,
}
SEEDS = 5
QUICK = {"train_size": 320, "epochs": 3}
QUICK_SEEDS = 2
BIG_TRAIN_SIZE = 5000  # mnist and fashion-mnist: a training subset keeps each study within a minute or two


def run_options(context, training, quick):
    """``training`` as this context runs it: with ``quick``'s options over it in quick mode, and on
    the first BIG_TRAIN_SIZE samples of a data set bigger than digits. (The clipping study shares it.)"""
    if context.quick:
        return {**training, **quick}
    return {**training, "train_size": None if context.dataset == "digits" else BIG_TRAIN_SIZE}


def data_description(context, options):
    """What the runs of ``options`` train on, for the report's setup."""
    subset = f", first {options['train_size']} samples" if options.get("train_size") else ""
    return f"{context.dataset} training split{subset}"


def train_schedule(context, schedule, seed, options):
    """One run of ``schedule`` from ``seed``: its per-step record, the final model's loss on the whole
    training set and its test accuracy."""
    recorder = StepRecorder()
    run, summary = context.train(callbacks=[recorder], schedule=SCHEDULES[schedule], seed=seed, **options)
    return {
        "loss": recorder.loss,
        "lr": recorder.lr,
        "final_train_loss": run.evaluate(("train",))["train"]["loss"],
        "test_accuracy": summary["test_accuracy"],
    }


def schedule_results(context, schedule, seeds, options):
    """The run of the first seed (the figure's), its last epoch's batch losses summed up, and the
    final training loss and test accuracy of every seed's run."""
    runs = [train_schedule(context, schedule, seed, options) for seed in seeds]
    first = runs[0]
    steps_per_epoch = len(first["loss"]) // options["epochs"]
    last_epoch = first["loss"][-steps_per_epoch:]
    return {
        **first,
        "last_epoch_loss": statistics.fmean(last_epoch),
        "last_epoch_max_loss": max(last_epoch),
        "test_accuracy_seeds": [r["test_accuracy"] for r in runs],
        "final_train_loss_seeds": [r["final_train_loss"] for r in runs],
    }


def run(context):
    options = run_options(context, TRAINING, QUICK)
    seeds = [context.seed + i for i in range(QUICK_SEEDS if context.quick else SEEDS)]
    results = {
        schedule: schedule_results(context, schedule, seeds, options)
        for schedule in context.bar(SCHEDULES, desc="schedules")
    }
    steps = len(results["constant"]["loss"])
    smoothing = max(2, steps // 20)  # steps: a twentieth of the run
    figure = "lr_decay.png"
    step_curves(
        {
            "learning rate per step": {
                "ylabel": "learning rate α",
                "smooth": False,
                "curves": {s: r["lr"] for s, r in results.items()},
            },
            "training loss per step": {
                "ylabel": "loss (log)",
                "log_y": True,
                "curves": {s: r["loss"] for s, r in results.items()},
                "points": {s: (steps, r["final_train_loss"]) for s, r in results.items()},
                "points_label": "final model,\nwhole training set",
            },
        },
        context.path(figure),
        smooth=smoothing,
        legend_outside=True,
        title=f"SGD from α₀ = {LR:g}: constant, linear decay to {FLOOR:g}, step, cosine",
    )
    epochs = options["epochs"]
    return Report(
        title="Learning-rate schedules: constant, linear decay to a floor, step, cosine",
        claim=claim(results, len(seeds)),
        setup={
            "data": data_description(context, options),
            "model": f"MLP {TRAINING['hidden']} ReLU (He initialization)",
            "training": f"{epochs} epochs × {steps // epochs} steps of plain SGD (no momentum), batch "
            f"{TRAINING['batch_size']}, α₀ = {LR:g}",
            "schedules": f"constant; linear-decay α_i = (1 − i/k)·α₀ + (i/k)·b over all k = {steps} steps, "
            f"b = {FLOOR:g}; step: ×0.1 every {max(1, epochs // 3)} epochs; cosine from α₀ to b",
            "repeats": f"each schedule from seeds {seeds[0]}–{seeds[-1]}; curves and the first table from "
            f"seed {seeds[0]}",
        },
        tables=tables(results, len(seeds)),
        figures=[
            Figure(
                figure,
                f"Top: the learning rate of every step. Bottom: every step's mini-batch loss (faint, "
                f"log scale) and its exponential moving average over about {smoothing} steps "
                f"(bold), cosine drawn over linear decay where the two coincide; the diamonds: "
                f"the final model's loss on the whole training set; seed {seeds[0]}",
            )
        ],
        results=results,
    )


def tables(results, seeds):
    rows = [
        [
            s,
            r["lr"][0],
            r["lr"][-1],
            r["last_epoch_loss"],
            r["last_epoch_max_loss"],
            r["final_train_loss"],
            r["test_accuracy"],
        ]
        for s, r in results.items()
    ]
    spread = [
        [
            s,
            min(r["test_accuracy_seeds"]),
            statistics.median(r["test_accuracy_seeds"]),
            max(r["test_accuracy_seeds"]),
            min(r["final_train_loss_seeds"]),
            max(r["final_train_loss_seeds"]),
        ]
        for s, r in results.items()
    ]
    return [
        Table(
            "One run per schedule (the figure's)",
            [
                "schedule",
                "first lr",
                "last lr",
                "mean batch loss, last epoch",
                "largest batch loss, last epoch",
                "final model's training loss",
                "test accuracy",
            ],
            rows,
        ),
        Table(
            f"Over {seeds} seeds: the final model's test accuracy and training loss",
            ["schedule", "accuracy min", "accuracy median", "accuracy max", "training loss min", "training loss max"],
            spread,
        ),
    ]


def claim(results, seeds):
    """What the numbers show, in words. It is written from the results (the lead sentence picks the
    case the numbers are in), so it stays true on every data set and seed."""
    constant = results["constant"]
    decaying = {s: r for s, r in results.items() if s != "constant"}
    median_loss = {s: statistics.median(r["final_train_loss_seeds"]) for s, r in results.items()}
    if median_loss["constant"] > max(median_loss[s] for s in decaying):
        spikes = max(r["last_epoch_max_loss"] for r in decaying.values())
        lead = (
            f"With a constant α = {LR:g} SGD is still jumping about when training stops (in the figure's run its "
            f"batch losses in the last epoch reach {constant['last_epoch_max_loss']:.2g}, the decaying "
            f"schedules' at most {spikes:.2g}), so the final model is wherever the last steps left it, while "
            "the decaying schedules settle."
        )
    elif median_loss["constant"] < min(median_loss[s] for s in decaying):
        lead = (
            f"A constant α = {LR:g} is not too large here: it keeps taking large steps and ends at the lowest "
            "median training loss."
        )
    else:
        lead = "The constant rate ends between the decaying schedules here (median training loss)."
    losses = ", ".join(f"{s} {_range(r['final_train_loss_seeds'], '{:.2g}')}" for s, r in results.items())
    accuracy = [a for r in decaying.values() for a in r["test_accuracy_seeds"]]
    return (
        f"{lead} Across {seeds} seeds the final model's training loss is: {losses}; the test accuracy "
        f"{_range(constant['test_accuracy_seeds'], '{:.1%}')} with the constant rate and "
        f"{_range(accuracy, '{:.1%}')} with the decaying ones."
    )


def _range(values, form):
    return f"{form.format(min(values))}–{form.format(max(values))}"
