"""``vanishing``: the deep sigmoid net whose first layer learns about 100× slower than its fourth, and
three cures — ReLU with He initialization, batch normalization, residual connections — trained
(notes 002 §5.1.4, 004).

The notes: backpropagation multiplies each layer's gradient by the derivative of every activation
above it, and σ' ≤ ¼, so in a deep sigmoid net the gradient shrinks layer by layer towards the
input: "in the four-hidden-layer network above, the first layer is nearly 100× slower than the
fourth" (004), and the layers near the input stay about where they started. ReLU "greatly
relieved" it (002 §5.1.4), normalized initialization with batch normalization let nets of tens of
layers train (004), and residual connections are the notes' next step.

The notes' net: four hidden layers (of 100 units here) and an output layer, on digits. The sigmoid
net starts from the notes' "Xavier" scale 1/√n (lecun), where each layer passes back about a
quarter of its gradient; the cures are ReLU with He initialization, the sigmoid net with
BatchNorm1d before each activation, and the sigmoid net with x + f(x) blocks around the hidden
layers after the first. The gradient norm of each Linear layer is the mean over the first epoch of
plain SGD at lr 0.1. Then every net gets the same fair budget: 20 epochs of plain SGD (batch 32) at
each rate of 0.03, 0.1, 0.3, 1 and 3, and the rate with the lowest validation loss is its result
— so the sigmoid net is not judged at a rate that merely suits the others. (At lr 3 one seed of three
starts to learn near epoch 15 and ends at 25 % training accuracy; at lr 10, tried, none does.)
"""

from __future__ import annotations

import io
import math
import statistics
from typing import Any

from ..diagnostics import GradientFlowMonitor
from ..errors import TrainingDiverged
from ..viz.seeds import over_setting
from .claims import Claim, above, at_most
from .common import Context, Figure, Report, Table, data_description, run_options

TITLE = "Vanishing gradients: the deep sigmoid net's first layer against its fourth, and three cures trained"
QUESTION = (
    "Does σ' ≤ ¼ shrink the gradient layer by layer so that a deep sigmoid net's first layer learns about 100× "
    "slower than its fourth (002 §5.1.4, 004), and do ReLU with He initialization, batch normalization and "
    "residual connections cure it — an even gradient, and a net that learns?"
)
SEEDS = 3
HIDDEN = [100] * 4  # the notes' four hidden layers
NETS: dict[str, dict[str, Any]] = {
    "sigmoid": {"activation": "sigmoid", "init": "lecun"},
    "relu-he": {"activation": "relu", "init": "he"},
    "sigmoid-bn": {"activation": "sigmoid", "init": "lecun", "batch_norm": True},
    "residual": {"activation": "sigmoid", "init": "lecun", "residual": True},
}
CURES = {  # cure -> (the note that names it, the cure as the subject of its claims)
    "relu-he": ("002 §5.1.4", "ReLU with He initialization"),
    "sigmoid-bn": ("004", "Batch normalization (before each sigmoid)"),
    "residual": ("004", "A residual connection around each sigmoid layer"),
}
TRAINING = {"hidden": HIDDEN, "optimizer": "sgd", "momentum": 0.0, "batch_size": 32, "epochs": 20, "keep": "last"}
RATES = [0.03, 0.1, 0.3, 1.0, 3.0]
FLOW_LR = 0.1  # the rate of the epoch whose gradients are measured
QUICK = {"train_size": 320, "epochs": 2}
CHANCE = 0.1
EVEN = 3.0  # a cure's first and fourth hidden layers' gradients within this factor of each other
LEARNS = 50.0  # a cure's training accuracy at least this many points above the sigmoid net's


def options(context: Context) -> dict[str, Any]:
    return run_options(context, TRAINING, QUICK)


def gradient_per_layer(context: Context, training: dict[str, Any], net: dict[str, Any]) -> list[float]:
    """The mean gradient norm of each Linear layer (input side first) over one epoch of SGD at FLOW_LR."""
    monitor = GradientFlowMonitor(every=1, stream=io.StringIO())  # its warnings are this study's subject
    context.train(callbacks=[monitor], lr=FLOW_LR, **{**training, "epochs": 1}, **net)
    assert monitor.flow is not None
    return [statistics.fmean(record["layers"][layer] for record in monitor.records) for layer in monitor.flow.weighted]


def train_at(context: Context, training: dict[str, Any], net: dict[str, Any], lr: float) -> dict[str, Any]:
    """One net trained at ``lr``: its validation loss (for the choice of rate), accuracies and the mean
    training accuracy of every epoch; a run whose loss explodes counts as diverged."""
    try:
        run, summary = context.train(lr=lr, stop_on_divergence=True, **training, **net)
    except TrainingDiverged:
        return {"lr": lr, "val_loss": math.inf, "train_accuracy": None, "test_accuracy": None, "curve": None}
    return {
        "lr": lr,
        "val_loss": summary["val_loss"],
        "train_accuracy": summary["train_accuracy"],
        "test_accuracy": summary["test_accuracy"],
        "curve": run.trainer.history["train_accuracy"],
    }


def measure(context: Context) -> dict[str, Any]:
    """One seed, per net: the gradient norm of each Linear layer over the first epoch; every rate's
    run; the rate with the lowest validation loss and its run."""
    training = options(context)
    nets = {}
    for name, net in NETS.items():
        runs = [train_at(context, training, net, lr) for lr in RATES]
        best = min(runs, key=lambda run: run["val_loss"])
        nets[name] = {
            "grad_norm": gradient_per_layer(context, training, net),
            "rates": [{k: v for k, v in run.items() if k != "curve"} for run in runs],
            "best": best,
        }
    return nets


def hidden_ratio(grad_norm: list[float]) -> float:
    """The last hidden layer's gradient norm ÷ the first's (the output layer is the list's last)."""
    return grad_norm[len(HIDDEN) - 1] / grad_norm[0]


def apart(ratio: float) -> float:
    """How many times apart two norms of this ratio are: the larger ÷ the smaller."""
    return max(ratio, 1 / ratio)


def smallest_shrink(grad_norm: list[float]) -> float:
    """The smallest factor by which a hidden layer's gradient norm exceeds the one below it."""
    hidden = grad_norm[: len(HIDDEN)]
    return min(upper / lower for lower, upper in zip(hidden, hidden[1:]))


def accuracy(run: dict[str, Any]) -> float:
    return math.nan if run["train_accuracy"] is None else run["train_accuracy"]


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    training = options(context)
    epochs = training["epochs"]
    layers = list(range(1, len(HIDDEN) + 2))
    over_setting(
        {
            "gradient per layer, first epoch": {
                "xlabel": f"Linear layer (1: input side; {layers[-1]}: output)",
                "ylabel": "mean gradient norm ‖∂L/∂W‖ (log)",
                "log_y": True,
                "ticks": layers,
                "curves": {
                    net: (layers, [list(column) for column in zip(*(seed[net]["grad_norm"] for seed in measured))])
                    for net in NETS
                },
            },
            "learning, at each net's best rate": {
                "xlabel": "epoch",
                "ylabel": "training accuracy (mean over the epoch's batches)",
                "ticks": [1, *range(5, epochs + 1, 5)] if epochs >= 5 else list(range(1, epochs + 1)),
                "curves": {net: (list(range(1, epochs + 1)), _curves(measured, net, epochs)) for net in NETS},
                "references": {"chance": CHANCE},
            },
            "final training accuracy against the rate": {
                "xlabel": "learning rate (log)",
                "ylabel": f"training accuracy after {epochs} epochs",
                "log_x": True,
                "curves": {
                    net: (
                        RATES,
                        [
                            list(column)
                            for column in zip(*([accuracy(r) for r in seed[net]["rates"]] for seed in measured))
                        ],
                    )
                    for net in NETS
                },
                "references": {"chance": CHANCE},
            },
        },
        context.path("vanishing.png"),
        title=f"{len(HIDDEN)} hidden layers of {HIDDEN[0]}, plain SGD: {len(measured)} seeds",
    )
    sigmoid = [seed["sigmoid"] for seed in measured]
    claims = [
        Claim.judge(
            "vanishing/per-layer",
            "002 §5.1.4",
            "Backpropagation multiplies the gradient by σ' ≤ ¼ at every sigmoid layer, so it shrinks layer by "
            "layer towards the input.",
            f"smallest factor between consecutive hidden layers' gradient norms, upper ÷ lower (sigmoid, first "
            f"epoch at lr {FLOW_LR:g})",
            [smallest_shrink(net["grad_norm"]) for net in sigmoid],
            above(2),
        ),
        Claim.judge(
            "vanishing/first-vs-fourth",
            "004",
            "In a four-hidden-layer sigmoid net the first layer learns nearly 100× slower than the fourth.",
            f"gradient norm, fourth hidden layer ÷ first (sigmoid, first epoch at lr {FLOW_LR:g})",
            [hidden_ratio(net["grad_norm"]) for net in sigmoid],
            above(30),
        ),
    ]
    for cure, (note, cured) in CURES.items():
        nets = [seed[cure] for seed in measured]
        claims.append(
            Claim.judge(
                f"vanishing/{cure}-even",
                note,
                f"{cured} keeps the gradient from vanishing: the first hidden layer gets about as much as the fourth.",
                f"first and fourth hidden layers' gradient norms, the larger ÷ the smaller ({cure}, first epoch at "
                f"lr {FLOW_LR:g}; sigmoid: the ratio above)",
                [apart(hidden_ratio(net["grad_norm"])) for net in nets],
                at_most(EVEN),
            )
        )
        claims.append(
            Claim.judge(
                f"vanishing/{cure}-learns",
                note,
                f"{cured} makes the deep net learn where the plain sigmoid net does not.",
                f"training accuracy after {epochs} epochs, {cure} − sigmoid, each at its best rate on validation "
                "(points)",
                [100 * (accuracy(net["best"]) - accuracy(base["best"])) for net, base in zip(nets, sigmoid)],
                above(LEARNS),
            )
        )
    table = Table(
        f"Per net, mean over {len(measured)} seeds: gradient norm per Linear layer (first epoch, lr {FLOW_LR:g}), "
        f"fourth ÷ first hidden, and at the best rate: training and test accuracy after {epochs} epochs",
        ["net", *[f"layer {k}" for k in layers], "4th ÷ 1st hidden", "best rates", "train accuracy", "test accuracy"],
        [
            [
                net,
                *[statistics.fmean(seed[net]["grad_norm"][k] for seed in measured) for k in range(len(layers))],
                statistics.fmean(hidden_ratio(seed[net]["grad_norm"]) for seed in measured),
                ", ".join(f"{seed[net]['best']['lr']:g}" for seed in measured),
                statistics.fmean(accuracy(seed[net]["best"]) for seed in measured),
                statistics.fmean(_number(seed[net]["best"]["test_accuracy"]) for seed in measured),
            ]
            for net in NETS
        ],
    )
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": data_description(context, training),
            "model": f"MLP, {len(HIDDEN)} hidden layers of {HIDDEN[0]} + output layer",
            "nets": "sigmoid (weights std 1/√n, the notes' Xavier); relu-he (ReLU, He initialization); sigmoid-bn "
            "(BatchNorm1d before each sigmoid); residual (sigmoid, x + f(x) around every hidden layer after the "
            "first)",
            "gradients": f"mean norm of each Linear layer's gradient over the first epoch of plain SGD, lr "
            f"{FLOW_LR:g}, batch {TRAINING['batch_size']}",
            "training": f"the same budget for every net: {epochs} epochs of plain SGD (no momentum), batch "
            f"{TRAINING['batch_size']}, at each rate of {', '.join(f'{r:g}' for r in RATES)}; each net's result is "
            "its rate with the lowest validation loss; a run whose loss explodes is stopped and counts as diverged",
        },
        claims=claims,
        tables=[table],
        figures=[
            Figure(
                "vanishing.png",
                "Left: the mean gradient norm of each Linear layer over the first epoch (log): the sigmoid net's "
                "falls about fourfold per layer towards the input, the cures' stay level. Middle: the training "
                "accuracy of every epoch at each net's best rate. Right: the final training accuracy at every "
                "rate — the sigmoid net stays at chance at all of them. Lines are the mean over the seeds, bands "
                "their range, dots each seed.",
            )
        ],
        results={
            net: {
                "grad_norm": [seed[net]["grad_norm"] for seed in measured],
                "best": [{k: v for k, v in seed[net]["best"].items() if k != "curve"} for seed in measured],
                "rates": [seed[net]["rates"] for seed in measured],
            }
            for net in NETS
        },
    )


def _curves(measured: list[dict[str, Any]], net: str, epochs: int) -> list[list[float]]:
    """Per epoch, each seed's training accuracy at its best rate (NaN where that run diverged)."""
    return [
        [math.nan if seed[net]["best"]["curve"] is None else seed[net]["best"]["curve"][epoch] for seed in measured]
        for epoch in range(epochs)
    ]


def _number(value: float | None) -> float:
    return math.nan if value is None else value
