"""``depth``: the degradation problem — a deeper plain net reaches a higher training error, a residual
one does not (notes 004).

The notes: normalized initialization and batch normalization cure vanishing and exploding
gradients so that nets of tens of layers train; "but then another problem appears, degradation:
as layers are added, the accuracy on the training set saturates and even falls. This cannot be
explained as overfitting, since an overfit net would do better on the training set." Residual
connections are the notes' answer.

The regime is the notes' own: every net already has the cures — ReLU, He initialization,
BatchNorm1d before each activation — so what is left is depth alone. Plain and residual MLPs of
2, 4, 8, 16, 24 and 32 hidden layers of 100 units (residual: every hidden layer after the first a
block x + ReLU(BN(W x))) are trained with the same budget, 10 epochs of Adam at lr 1e-3 (the
library's default optimizer), batch 32, and the error on the whole training set (eval mode) is
measured afterwards: fitting, not generalizing. A training error of 0 is drawn at half a sample on
the log axis. The depth at which the plain net's training error first rises a point above its
best depth's is reported per seed.

What was tried: SGD with momentum 0.9 at lr 0.01 shows the same plain curve (1–2 % at 16 layers,
37–47 % at 32) but there the residual net's summed blocks grow large early on and it too ends 6–10 %
wrong at 32 layers; tanh nets without normalization degrade from about 24 layers; a longer budget
(30 epochs, one seed) brings the plain 24-layer net down to 3 % and leaves the 32-layer one at 50 %,
and lr 3e-3 gives 6 % and 26 %: the deep plain net is slower to fit, not merely under-tuned.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from ..errors import TrainingDiverged
from ..viz.seeds import over_setting
from .claims import Claim, above, at_most
from .common import Context, Figure, Report, Table, data_description, run_options

TITLE = "Depth: the degradation of deep plain nets' training error, and residual nets that do not degrade"
QUESTION = (
    "With the cures for vanishing gradients in place (He initialization, batch normalization), does a deeper plain "
    "net reach a higher training error — degradation, not overfitting — where a residual net does not (004)?"
)
SEEDS = 3
DEPTHS = (2, 4, 8, 16, 24, 32)
WIDTH = 100
NETS = {"plain": False, "residual": True}
TRAINING = {
    "activation": "relu",
    "init": "he",
    "batch_norm": True,
    "optimizer": "adam",
    "lr": 1e-3,
    "batch_size": 32,
    "epochs": 10,
    "keep": "last",
}
QUICK = {"train_size": 320, "epochs": 2}
ONSET = 0.01  # the plain net degrades from the first depth whose training error is a point above its best depth's


def options(context: Context) -> dict[str, Any]:
    return run_options(context, TRAINING, QUICK)


def train_net(context: Context, depth: int, residual: bool, training: dict[str, Any]) -> dict[str, Any]:
    """One net: its error and loss on the whole training set and on the test set after training, and
    the mean training loss of every epoch (NaN and inf when it diverged)."""
    try:
        run, summary = context.train(hidden=[WIDTH] * depth, residual=residual, **training)
    except TrainingDiverged:
        return {"train_error": math.nan, "train_loss": math.inf, "test_error": math.nan, "epoch_loss": None}
    return {
        "samples": len(run.splits.train),
        "train_error": 1 - summary["train_accuracy"],
        "train_loss": summary["train_loss"],
        "test_error": 1 - summary["test_accuracy"],
        "epoch_loss": run.trainer.history["train_loss"],
    }


def measure(context: Context) -> dict[str, Any]:
    """One seed: every net at every depth, and the training split's size (the error's resolution)."""
    training = options(context)
    nets: dict[str, dict[str, Any]] = {net: {} for net in NETS}
    for depth in DEPTHS:
        for net, residual in NETS.items():
            nets[net][str(depth)] = train_net(context, depth, residual, training)
    samples = [run["samples"] for by_depth in nets.values() for run in by_depth.values() if "samples" in run]
    return {"nets": nets, "train_samples": samples[0] if samples else None}


def per_depth(measured: list[dict[str, Any]], net: str, key: str) -> list[list[float]]:
    """[[each seed's value] per depth] of one net."""
    return [[seed["nets"][net][str(depth)][key] for seed in measured] for depth in DEPTHS]


def onset(errors: list[float]) -> int | None:
    """The first depth whose training error is ONSET above the lowest of the depths up to it (None: never)."""
    for k, error in enumerate(errors):
        if k and error > min(errors[:k]) + ONSET:
            return DEPTHS[k]
    return None


def rise(errors: list[float]) -> float:
    """The deepest net's training error above the best depth's, in points."""
    return 100 * (errors[-1] - min(errors))


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    training = options(context)
    epochs = training["epochs"]
    samples = next((seed["train_samples"] for seed in measured if seed["train_samples"]), 1)
    floor = 0.5 / samples
    errors = {net: per_depth(measured, net, "train_error") for net in NETS}
    by_seed = {net: [list(seed) for seed in zip(*errors[net])] for net in NETS}  # [seed][depth]
    drawn = {net: [[max(e, floor) for e in at_depth] for at_depth in errors[net]] for net in NETS}
    onsets = [onset(seed) for seed in by_seed["plain"]]
    first = next((d for d in onsets if d is not None), None)
    marks = {}
    if first is not None:
        at = statistics.fmean(drawn["plain"][DEPTHS.index(first)])
        seeds = ", ".join("never" if d is None else str(d) for d in onsets)
        marks = {f"plain: rises from {first} layers\n(per seed: {seeds})": (first, at)}
    over_setting(
        {
            "training error against depth": {
                "xlabel": "hidden layers (log)",
                "ylabel": "error on the whole training set (log)",
                "log_x": True,
                "log_y": True,
                "ticks": DEPTHS,
                "curves": {net: (DEPTHS, drawn[net]) for net in NETS},
                "references": {f"no error (drawn at ½ sample, {floor:.1e})": floor, "chance: 0.9": 0.9},
                "marks": marks,
            },
            "training loss against depth": {
                "xlabel": "hidden layers (log)",
                "ylabel": "cross-entropy on the whole training set (log)",
                "log_x": True,
                "log_y": True,
                "ticks": DEPTHS,
                "curves": {net: (DEPTHS, per_depth(measured, net, "train_loss")) for net in NETS},
                "references": {"chance: ln 10": math.log(10)},
            },
        },
        context.path("depth.png"),
        title=f"Plain and residual MLPs of {WIDTH} ReLU units, He + batch norm, {epochs} epochs of Adam: "
        f"{len(measured)} seeds",
    )
    over_setting(
        {
            f"{net} nets": {
                "xlabel": "epoch",
                "ylabel": "training loss, mean over the epoch's batches (log)",
                "log_y": True,
                "ticks": list(range(1, epochs + 1)),
                "curves": {
                    f"{depth} layers": (
                        list(range(1, epochs + 1)),
                        [
                            [
                                math.nan
                                if s["nets"][net][str(depth)]["epoch_loss"] is None
                                else s["nets"][net][str(depth)]["epoch_loss"][e]
                                for s in measured
                            ]
                            for e in range(epochs)
                        ],
                    )
                    for depth in DEPTHS
                },
            }
            for net in NETS
        },
        context.path("depth_curves.png"),
        title="Training loss of every epoch, one curve per depth",
        sharey=True,
    )
    claims = [
        Claim.judge(
            "depth/degrades",
            "004",
            "A deeper plain net reaches a higher error on the training set, not a lower one: degradation, which "
            "overfitting cannot explain.",
            f"training error of the {DEPTHS[-1]}-layer plain net − the lowest over its depths {DEPTHS[0]}–{DEPTHS[-1]} "
            f"(points; ReLU, He, batch norm, {epochs} epochs of Adam)",
            [rise(seed) for seed in by_seed["plain"]],
            above(10),
        ),
        Claim.judge(
            "depth/residual-flat",
            "004",
            "Residual connections remove the degradation: the deepest residual net fits the training set as well as "
            "its best depth does.",
            f"training error of the {DEPTHS[-1]}-layer residual net − the lowest over its depths (points)",
            [rise(seed) for seed in by_seed["residual"]],
            at_most(1),
        ),
        Claim.judge(
            "depth/residual-vs-plain",
            "004",
            "At the same depth and budget the residual net fits far better than the plain one.",
            f"training loss, plain ÷ residual, {DEPTHS[-1]} hidden layers",
            [
                seed["nets"]["plain"][str(DEPTHS[-1])]["train_loss"]
                / seed["nets"]["residual"][str(DEPTHS[-1])]["train_loss"]
                for seed in measured
            ],
            above(10),
        ),
    ]
    rows = [
        [
            depth,
            *(
                statistics.fmean(seed["nets"][net][str(depth)][key] for seed in measured)
                for key in ("train_error", "test_error")
                for net in NETS
            ),
        ]
        for depth in DEPTHS
    ]
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": data_description(context, training),
            "models": f"MLPs of {', '.join(map(str, DEPTHS))} hidden layers of {WIDTH} units + output layer: Linear "
            "→ BatchNorm1d → ReLU, He initialization; plain, and residual (every hidden layer after the first a "
            "block x + ReLU(BN(W x)))",
            "training": f"the same for every net: {epochs} epochs of Adam, lr {TRAINING['lr']:g}, batch "
            f"{TRAINING['batch_size']}; the error and loss on the whole training set are measured in eval mode "
            "after training",
            "onset": "the plain net's training error first rises a point above its best shallower depth's at "
            + ", ".join("never" if d is None else f"{d} layers" for d in onsets)
            + f" (seeds {', '.join(map(str, context.seeds))})",
        },
        claims=claims,
        tables=[
            Table(
                f"Error after {epochs} epochs per number of hidden layers, mean over {len(measured)} seeds",
                [
                    "hidden layers",
                    "plain train error",
                    "residual train error",
                    "plain test error",
                    "residual test error",
                ],
                rows,
            )
        ],
        figures=[
            Figure(
                "depth.png",
                "The error (left) and the loss (right) on the whole training set after training, against the number "
                "of hidden layers, both log scale: the mean over the seeds (line), their range (band), each seed "
                "(dots). A net without a single training error is drawn at half a sample (the lowest dashed line).",
            ),
            Figure(
                "depth_curves.png",
                "The training loss of every epoch (mean over its batches, log scale), plain (left) and residual "
                "(right), one curve per depth, over the seeds.",
            ),
        ],
        results={
            "train_samples": samples,
            "onset": onsets,
            **{
                net: {
                    str(depth): {
                        key: [seed["nets"][net][str(depth)][key] for seed in measured]
                        for key in ("train_error", "train_loss", "test_error")
                    }
                    for depth in DEPTHS
                }
                for net in NETS
            },
        },
    )
