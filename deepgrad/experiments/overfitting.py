"""``overfitting``: does a big net on few samples overfit, and do weight decay and dropout — at the
strengths the validation split chooses — reduce it? (Notes 001 过拟合 Overfit, 权值衰减, Dropout.)

The notes: overfitting has two main causes, a model with many parameters (strong expressive power)
and little training data; weight decay and dropout are the remedies, dropout "noticeably reducing
overfitting" and making the network "generalize better". The setting is the book's (Saito, *Deep
Learning from Scratch*, §6.4): 300 training samples, an MLP of 6 hidden layers of 100 ReLU units
(7 Linear layers, 57k weights), SGD (lr 0.01, here with momentum 0.9, batch 100) for 200 epochs —
long enough to fit every training sample. On digits the 300 samples are the first 300 of the
training split (the same for every seed: a seed changes the initial weights, the batch order and
the dropout masks). The strength of each regularizer is chosen per seed on the validation split
(180 held-out samples; best validation accuracy, ties to the lower validation loss) from λ in
1e-3 … 0.1 and p in 0.1 … 0.5; the test split judges. The causes are measured by changing one
thing: the same net trained for the same number of steps on all 1257 training samples, and a
model with 650 parameters (softmax regression, no hidden layer) on the same 300 samples.

Overfitting is measured as the notes' picture shows it: the gap between the accuracy on the
training samples and on the test set, in points. What the runs show on digits: the gap of about
10 points comes mostly from the 300 samples (with all 1257 it is about 2). The parameters matter
less: softmax regression, which fits 97 % of the 300 samples, still has a gap of about 5 points
(and tests better than the 57k-weight net, 92 % against 90 %). Weight decay at its
validation-chosen strength leaves the accuracy gap nearly as it is (in loss it does narrow it,
test − train 0.56 → 0.37, by less than 2×); dropout narrows it by a quarter and gains about 2
test points. The strengths that close the gap (λ = 0.1, p = 0.5) do so by destroying the fit
(25–35 % accuracy on both sets), which validation rightly rejects. The claims of a large effect are judged
against a factor of 2 and do not reproduce here; they are kept, with their numbers. Also tried,
with the same outcome (no validation-chosen strength halves the gap): plain SGD without momentum
at lr 0.01 and 0.05, and 400 epochs; with plain SGD at lr 0.01 the net does not even fit its 300
samples in 200 epochs, and any regularization lowers both accuracies.
"""

from __future__ import annotations

import math
from typing import Any

from ..viz.seeds import over_setting, seed_bars
from .claims import Claim, above, at_least
from .common import Context, Figure, Report, Table, data_description, recorded_run, run_options

TITLE = "Overfitting: 300 samples, 7 layers; weight decay and dropout at strengths chosen on validation"
QUESTION = (
    "Does a big net on few samples overfit — from its many parameters, from its little data — and do weight "
    "decay and dropout, at the strengths the validation split chooses, noticeably reduce it (001 Overfit)?"
)
SEEDS = 3
TRAINING = {
    "hidden": [100] * 6,
    "activation": "relu",
    "train_size": 300,
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.9,
    "batch_size": 100,
    "epochs": 200,
    "keep": "last",
}
QUICK = {"epochs": 10}
WEIGHT_DECAYS = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
DROPOUTS = [0.1, 0.2, 0.3, 0.5]
REGULARIZERS = {"weight_decay": WEIGHT_DECAYS, "dropout": DROPOUTS}
NAMES = {"weight_decay": "weight decay λ", "dropout": "dropout p"}
CHECKS, QUICK_CHECKS = 40, 10  # evaluations of the training samples and the test set over a run
FINAL = ("train_accuracy", "val_accuracy", "test_accuracy", "train_loss", "val_loss", "test_loss")


def options(context: Context) -> dict[str, Any]:
    return run_options(context, TRAINING, QUICK) | {"train_size": TRAINING["train_size"]}


def train(context: Context, **overrides: Any) -> dict[str, Any]:
    """The final numbers of one run and its accuracy on the training samples and the test set
    CHECKS times over it (in eval mode)."""
    checks = QUICK_CHECKS if context.quick else CHECKS
    run, evaluations = recorded_run(context, ["train", "test"], times=checks, **(options(context) | overrides))
    summary = run.fit()
    steps_per_epoch = len(run.loaders[0])
    return {
        **{key: summary[key] for key in FINAL},
        "epochs_at": [step / steps_per_epoch for step in evaluations.steps],
        "train_curve": evaluations.series("train"),
        "test_curve": evaluations.series("test"),
    }


def final(result: dict[str, Any]) -> dict[str, Any]:
    return {key: result[key] for key in FINAL}


def chosen(sweep: list[dict[str, Any]]) -> dict[str, Any]:
    """The sweep's point with the best validation accuracy, ties to the lower validation loss (the
    test split is never looked at)."""
    return max(sweep, key=lambda point: (point["val_accuracy"], -point["val_loss"]))


def measure(context: Context) -> dict[str, Any]:
    """One seed: the unregularized net, each strength of each regularizer (the chosen ones with
    their curves), the net on all the training data for as many steps, and a linear model."""
    training = options(context)
    none = train(context)
    result: dict[str, Any] = {"none": none}
    for name, strengths in REGULARIZERS.items():
        runs = [{"value": value, **train(context, **{name: value})} for value in strengths]
        best = chosen(runs)
        result[name] = {"sweep": [{"value": r["value"], **final(r)} for r in runs], "chosen": best}
    steps = math.ceil(training["train_size"] / training["batch_size"]) * training["epochs"]
    full_epochs = max(1, round(steps / math.ceil(len(context.splits().train) / training["batch_size"])))
    result["all_data"] = final(train(context, train_size=None, epochs=full_epochs)) | {"epochs": full_epochs}
    result["linear"] = final(train(context, hidden=[]))
    return result


def gap(result: dict[str, Any]) -> float:
    """Training − test accuracy, in points."""
    return 100 * (result["train_accuracy"] - result["test_accuracy"])


def shrink(before: float, after: float) -> float:
    """How many times smaller a gap became (infinite when it closed)."""
    return before / after if after > 0 else math.inf


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    training = options(context)
    seeds = len(measured)
    samples = training["train_size"]
    splits = context.splits()
    everything = len(splits.train)
    picked = {name: [seed[name]["chosen"]["value"] for seed in measured] for name in REGULARIZERS}
    panels = {"no regularization": [seed["none"] for seed in measured]}
    for name in REGULARIZERS:
        label = f"{NAMES[name]} chosen on validation: {', '.join(f'{v:g}' for v in picked[name])}"
        panels[label] = [seed[name]["chosen"] for seed in measured]
    epochs_at = measured[0]["none"]["epochs_at"]
    over_setting(
        {
            title: {
                "xlabel": "epoch",
                "ylabel": "accuracy",
                "curves": {
                    f"training samples ({samples})": (
                        epochs_at,
                        [list(v) for v in zip(*[r["train_curve"] for r in runs])],
                    ),
                    "test set": (epochs_at, [list(v) for v in zip(*[r["test_curve"] for r in runs])]),
                },
            }
            for title, runs in panels.items()
        },
        context.path("overfitting_curves.png"),
        title=f"7-layer ReLU MLP on {samples} {context.dataset} samples: accuracy during training, {seeds} seeds",
        sharey=True,
    )
    sweep_panels = {}
    for name, strengths in REGULARIZERS.items():
        curves = {
            split: (
                strengths,
                [[seed[name]["sweep"][i][f"{key}_accuracy"] for seed in measured] for i in range(len(strengths))],
            )
            for split, key in (
                (f"training samples ({samples})", "train"),
                ("validation (chooses)", "val"),
                ("test set", "test"),
            )
        }
        sweep_panels[f"final accuracy against {NAMES[name]}"] = {
            "xlabel": f"{NAMES[name]}" + (" (log)" if name == "weight_decay" else ""),
            "ylabel": "accuracy after the run",
            "log_x": name == "weight_decay",
            "ticks": strengths,
            "curves": curves,
            "references": {"no regularization: test": mean([s["none"]["test_accuracy"] for s in measured])},
        }
    over_setting(
        sweep_panels,
        context.path("overfitting_sweep.png"),
        title=f"Choosing the strength on validation ({seeds} seeds, {training['epochs']} epochs each)",
        sharey=True,
    )
    settings = {
        f"none, {samples}": [s["none"] for s in measured],
        "λ chosen": [s["weight_decay"]["chosen"] for s in measured],
        "p chosen": [s["dropout"]["chosen"] for s in measured],
        f"none, all {everything}": [s["all_data"] for s in measured],
        f"linear, {samples}": [s["linear"] for s in measured],
    }
    seed_bars(
        {
            "training − test accuracy (points)": {
                "ylabel": "gap (points)",
                "bars": {label: [gap(r) for r in runs] for label, runs in settings.items()},
            },
            "test accuracy": {
                "ylabel": "test accuracy",
                "bars": {label: [r["test_accuracy"] for r in runs] for label, runs in settings.items()},
            },
        },
        context.path("overfitting_gaps.png"),
        title=f"The train–test gap: remedies and causes ({seeds} seeds)",
    )
    gap_none = [gap(s["none"]) for s in measured]
    claims = [
        Claim.judge(
            "overfitting/little-data",
            "001 §Overfit",
            "Little training data is a main cause of overfitting.",
            f"train − test accuracy gap, {samples} samples ÷ all {everything} (same net, same number of steps)",
            [shrink(g, gap(s["all_data"])) for g, s in zip(gap_none, measured)],
            at_least(2),
        ),
        Claim.judge(
            "overfitting/many-parameters",
            "001 §Overfit",
            "A model with many parameters is a main cause of overfitting.",
            f"train − test accuracy gap on {samples} samples, the 7-layer net (57k weights) ÷ softmax regression (650)",
            [shrink(g, gap(s["linear"])) for g, s in zip(gap_none, measured)],
            at_least(2),
        ),
        Claim.judge(
            "overfitting/weight-decay-gap",
            "001 §权值衰减",
            "Weight decay noticeably reduces overfitting.",
            "train − test accuracy gap, none ÷ weight decay at the λ chosen on validation",
            [shrink(g, gap(s["weight_decay"]["chosen"])) for g, s in zip(gap_none, measured)],
            at_least(2),
        ),
        Claim.judge(
            "overfitting/weight-decay-test",
            "001 §权值衰减",
            "Weight decay makes the network generalize better.",
            "test accuracy, weight decay at the chosen λ − none (points)",
            [100 * (s["weight_decay"]["chosen"]["test_accuracy"] - s["none"]["test_accuracy"]) for s in measured],
            above(1),
        ),
        Claim.judge(
            "overfitting/dropout-gap",
            "001 §Dropout",
            "Dropout noticeably reduces overfitting.",
            "train − test accuracy gap, none ÷ dropout at the p chosen on validation",
            [shrink(g, gap(s["dropout"]["chosen"])) for g, s in zip(gap_none, measured)],
            at_least(2),
        ),
        Claim.judge(
            "overfitting/dropout-test",
            "001 §Dropout",
            "Dropout makes the network generalize better.",
            "test accuracy, dropout at the chosen p − none (points)",
            [100 * (s["dropout"]["chosen"]["test_accuracy"] - s["none"]["test_accuracy"]) for s in measured],
            above(1),
        ),
    ]

    def row(label: str, runs: list[dict[str, Any]], picked_in: str = "") -> list[Any]:
        return [
            label,
            mean([r["train_accuracy"] for r in runs]),
            mean([r["val_accuracy"] for r in runs]),
            mean([r["test_accuracy"] for r in runs]),
            mean([gap(r) for r in runs]),
            mean([r["test_loss"] - r["train_loss"] for r in runs]),
            picked_in,
        ]

    rows = [row(f"none ({samples} samples)", [s["none"] for s in measured])]
    for name, strengths in REGULARIZERS.items():
        for i, value in enumerate(strengths):
            times = sum(p == value for p in picked[name])
            rows.append(row(f"{NAMES[name]} = {value:g}", [s[name]["sweep"][i] for s in measured], f"{times}/{seeds}"))
    rows.append(row(f"none, all {everything} samples", [s["all_data"] for s in measured]))
    rows.append(row(f"softmax regression ({samples} samples)", [s["linear"] for s in measured]))
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": f"{data_description(context, training)}; validation: the {len(splits.val)} held-out "
            f"samples (chooses); test: the {len(splits.test)} test samples (judges)",
            "model": "MLP with 6 hidden layers of 100 ReLU units (He initialization) + output layer: 7 Linear layers",
            "training": f"{training['epochs']} epochs of SGD, lr {TRAINING['lr']:g}, momentum "
            f"{TRAINING['momentum']:g}, batch {TRAINING['batch_size']}; the weights of the last epoch",
            "regularizers": f"L2 weight decay λ in {', '.join(f'{v:g}' for v in WEIGHT_DECAYS)} on every parameter; "
            f"dropout p in {', '.join(f'{v:g}' for v in DROPOUTS)} after every hidden layer (inverted); per seed "
            "the strength with the best validation accuracy (ties: lower validation loss)",
            "causes": f"the same net on all {everything} training samples for "
            f"{measured[0]['all_data']['epochs']} epochs (as many steps); softmax regression (no hidden layer) on the "
            f"same {samples} samples",
            "overfitting": "the training − test accuracy gap in points, on the final weights",
        },
        claims=claims,
        tables=[
            Table(
                f"Every run after training (mean over {seeds} seeds)",
                [
                    "setting",
                    "train accuracy",
                    "validation accuracy",
                    "test accuracy",
                    "gap (points)",
                    "test − train loss",
                    "chosen in",
                ],
                rows,
            )
        ],
        figures=[
            Figure(
                "overfitting_curves.png",
                f"Accuracy on the {samples} training samples (eval mode) and on the test set during training: without "
                "regularization, and with weight decay and dropout at the strengths validation chose. Mean over "
                f"{seeds} seeds (line), their range (band), each seed (dots).",
            ),
            Figure(
                "overfitting_sweep.png",
                "Final accuracy on the training samples, the validation split (which chooses the strength) and the "
                "test set against the strength of each regularizer; the dashed line is the unregularized test "
                "accuracy. The strengths that close the gap do so by failing to fit.",
            ),
            Figure(
                "overfitting_gaps.png",
                "The train − test accuracy gap and the test accuracy: without regularization, with the chosen "
                f"weight decay and dropout, with all the training data, and with a linear model. Bars: mean over "
                f"{seeds} seeds, error bars their range, dots each seed.",
            ),
        ],
        results={
            "final": [
                {
                    "none": final(s["none"]),
                    "all_data": s["all_data"],
                    "linear": s["linear"],
                    **{name: s[name]["sweep"] for name in REGULARIZERS},
                }
                for s in measured
            ],
            "chosen": picked,
        },
    )
