"""``batchnorm``: does batch normalization let a net train from nearly any initial weight scale, train
sooner, and keep the distribution of a layer's inputs stable over training? (Notes 000 §3, 004; the
BN paper's Figure 1.)

Every net is trained twice, as is ("plain") and with BatchNorm1d before each activation (the
``batch_norm`` option of the mlp preset; the Linear before it then has no bias):

- the weight-scale sweep (after Saito's *Deep Learning from Scratch*, ch. 6, which note 001 cites):
  5 hidden layers of 100 ReLU units whose weights start from N(0, s²), at 16 scales s from 1 down
  to 1e-4, trained on 1000 samples for 20 epochs of plain SGD (lr 0.01, batch 100). Without BN the
  signal vanishes through the layers at small s and overflows at large s (000 §3: "without BN the
  gradients may vanish or explode"); the NaN guard stops a run that overflows, which counts as not
  trained. BN is honest about large scales too: a normalized layer's output does not change when
  its weights are scaled, so its gradient shrinks as 1/s, and from s ≥ 0.15 it learns slowly and
  stays below 90 % in 20 epochs (61–85 % on digits: the table shows it); the claim counts the
  scales where each net trains.
- Figure 1 of Ioffe & Szegedy's batch-normalization paper: 3 hidden layers of 100 sigmoid units
  (weights N(0, 1/n_in), the notes' "Xavier"), plain SGD, lr 0.5, batch 60, 100 epochs of digits
  (2100 steps; the paper ran 50 000 on MNIST). (a): its test accuracy, measured after every epoch
  (21 steps); "sooner" compares the first measured steps at 90 %. (b, c): internal covariate shift
  (004), the distribution of the inputs of the last hidden layer's sigmoids over training: every
  unit's 15th, 50th and 85th percentile over the validation samples, measured 100 times over the
  run. The BN net normalizes those samples with their own batch statistics, as in a training step;
  its running statistics are left untouched, so watching a run leaves it exactly as it would be
  unwatched. A distribution "shifts" when its median moves
  by a large part of its 15–85 spread, or when that spread grows or shrinks; each is summarized
  over the 100 units of the layer by its median, and the figure draws the unit whose shift is that
  median ("a typical sigmoid", as the paper says).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import nn
from ..errors import TrainingDiverged
from ..tensor import no_grad, tensor
from ..train.callbacks import Callback
from ..viz.batchnorm import input_percentiles
from ..viz.seeds import over_setting
from .claims import Claim, above, at_least
from .common import Context, Figure, Report, Table, recorded_run

TITLE = "Batch normalization: training from any weight scale, sooner, with stable layer inputs"
QUESTION = (
    "Does batch normalization let a net train from nearly any initial weight scale (000 §3), make it "
    "learn sooner, and keep the distribution of a sigmoid layer's inputs stable over training where it "
    "otherwise shifts (internal covariate shift, 004; the BN paper's Figure 1)?"
)
SEEDS = 3
NETS = {"plain": "without BN", "bn": "with BN"}
SCALES = [float(s) for s in np.logspace(0, -4, 16)]
SWEEP = {
    "hidden": [100] * 5,
    "activation": "relu",
    "init": "normal",
    "train_size": 1000,
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.0,
    "batch_size": 100,
    "epochs": 20,
    "keep": "last",
}
SIGMOID = {
    "hidden": [100] * 3,
    "activation": "sigmoid",
    "init": "lecun",
    "optimizer": "sgd",
    "lr": 0.5,
    "momentum": 0.0,
    "batch_size": 60,
    "keep": "last",
}
# digits' 1257 training samples make 21 batches of 60: 100 epochs are 2100 steps; MNIST's 55000
# make 917, so 2 epochs there are about as many steps.
SIGMOID_EPOCHS, BIG_SIGMOID_EPOCHS = 100, 2
EVALUATIONS = 100  # test accuracies measured over the sigmoid net's run (every epoch of digits)
PROBES = 100  # times the sigmoid inputs' percentiles are measured over the run
PERCENTILES = (15, 50, 85)
QUICK_SCALES = [float(s) for s in np.logspace(0, -4, 5)]
QUICK_SWEEP = {"epochs": 6, "train_size": 500}
QUICK_SIGMOID_EPOCHS = 8
TRAINED = 0.9  # the final training accuracy from which a net counts as trained
TARGET = 0.9  # the test accuracy whose first step "sooner" compares
CHANCE = 1 / 10  # every data set of the experiments has 10 classes


def batch_norms(model: nn.Module) -> list[nn.BatchNorm1d | nn.BatchNorm2d]:
    """The batch-norm layers of ``model``, in order."""
    return [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]


@contextlib.contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """Within it, every batch-norm layer of ``model`` normalizes with the statistics of the batch it
    is given, in eval mode too, and updates no running statistics (they are set aside, as a layer
    with ``track_running_stats=False`` has none, and put back after)."""
    layers = batch_norms(model)
    kept = [(layer.running_mean, layer.running_var) for layer in layers]
    for layer in layers:
        layer.running_mean = layer.running_var = None
    try:
        yield
    finally:
        for layer, (mean, var) in zip(layers, kept):
            layer.running_mean, layer.running_var = mean, var


class InputPercentiles(Callback):
    """The PERCENTILES of every unit's input to the model's last sigmoid layer over the samples
    ``inputs``, before the first step and every ``every`` steps: ``steps`` and ``percentiles`` (an
    array (3, units) per measurement). Batch-norm layers normalize ``inputs`` with their own batch
    statistics, as in a training step, and update nothing: the run goes on as unwatched."""

    def __init__(self, inputs: np.ndarray, every: int):
        self.inputs, self.every = inputs, every
        self.steps: list[int] = []
        self.percentiles: list[np.ndarray] = []

    def on_fit_start(self, trainer: Any) -> None:
        self.record(trainer)

    def on_step_end(self, trainer: Any, logs: dict[str, float]) -> None:
        if trainer.global_step % self.every == 0:
            self.record(trainer)

    def record(self, trainer: Any) -> None:
        model = trainer.model
        last = [module for module in model.modules() if isinstance(module, nn.Sigmoid)][-1]
        seen = []
        handle = last.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].data))
        was_training = model.training
        model.eval()
        try:
            with batch_statistics(model), no_grad():
                model(tensor(self.inputs))
        finally:
            handle.remove()
            model.train(was_training)
        self.steps.append(trainer.global_step)
        self.percentiles.append(np.percentile(np.asarray(seen[0], dtype=np.float64), PERCENTILES, axis=0))


def input_shift(percentiles: np.ndarray) -> dict[str, Any]:
    """How the distribution of each unit's input moved over training, from its percentiles (an
    array (measurements, 3, units)): per measurement, the range its median has covered so far in
    units of its mean 15–85 spread (median over the units: ``moved``; at the end: ``median_moved``);
    the largest ÷ the smallest 15–85 spread over the run (median over the units:
    ``spread_change``); and the unit whose median moved the median amount, with its percentiles."""
    low, middle, high = percentiles[:, 0], percentiles[:, 1], percentiles[:, 2]
    spread = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = (np.maximum.accumulate(middle, axis=0) - np.minimum.accumulate(middle, axis=0)) / spread.mean(axis=0)
        change = spread.max(axis=0) / spread.min(axis=0)
    units = percentiles.shape[2]
    typical = int(np.argsort(moved[-1])[units // 2])
    return {
        "moved": [float(v) for v in np.median(moved, axis=1)],
        "median_moved": float(np.median(moved[-1])),
        "spread_change": float(np.median(change)),
        "typical_unit": typical,
        "typical": [[float(v) for v in percentiles[:, k, typical]] for k in range(3)],
    }


def sweep_options(context: Context) -> dict[str, Any]:
    return {**SWEEP, **QUICK_SWEEP} if context.quick else SWEEP


def sigmoid_options(context: Context) -> dict[str, Any]:
    if context.quick:
        return {**SIGMOID, "epochs": QUICK_SIGMOID_EPOCHS}
    return {**SIGMOID, "epochs": SIGMOID_EPOCHS if context.dataset == "digits" else BIG_SIGMOID_EPOCHS}


def train_at_scale(context: Context, scale: float, batch_norm: bool) -> dict[str, Any]:
    """The sweep's net from N(0, scale²) weights, trained to the end or until it diverges: its last
    training accuracy (before the step that diverged, for a run that did), its test accuracy (None
    when it diverged) and the epoch it diverged in (None when it did not)."""
    run, evaluations = recorded_run(
        context, ("train",), init_std=scale, batch_norm=batch_norm, stop_on_divergence=True, **sweep_options(context)
    )
    try:
        # Plain nets from large weights overflow: the loss explodes and the run is stopped (NumPy need
        # not warn too).
        with np.errstate(over="ignore", invalid="ignore"):
            summary = run.fit()
    except TrainingDiverged:
        summary = None
    return {
        "accuracy": evaluations.series("train")[-1],
        "test_accuracy": None if summary is None else summary["test_accuracy"],
        "diverged_epoch": run.trainer.epoch + 1 if summary is None else None,
    }


def sigmoid_net(context: Context, batch_norm: bool) -> dict[str, Any]:
    """The BN paper's 3×100 sigmoid net: its test accuracy over the run, and the shift of its last
    hidden layer's inputs."""
    options = sigmoid_options(context)
    run, evaluations = recorded_run(context, ("test",), times=EVALUATIONS, batch_norm=batch_norm, **options)
    probe = InputPercentiles(run.splits.val.arrays[0], max(1, len(run.loaders[0]) * options["epochs"] // PROBES))
    run.trainer.callbacks.append(probe)
    run.fit()
    return {
        "steps": evaluations.steps,
        "test_accuracy": evaluations.series("test"),
        "probe_steps": probe.steps,
        **input_shift(np.stack(probe.percentiles)),
    }


def measure(context: Context) -> dict[str, Any]:
    """One seed: the sweep's final accuracies per scale and net; the sigmoid nets' test accuracy
    over their run and the shift of their sigmoid inputs."""
    scales = QUICK_SCALES if context.quick else SCALES
    sweep = {net: [train_at_scale(context, scale, net == "bn") for scale in scales] for net in NETS}
    return {
        "sweep": {net: {key: [run[key] for run in runs] for key in runs[0]} for net, runs in sweep.items()},
        "sigmoid": {net: sigmoid_net(context, net == "bn") for net in NETS},
    }


def trained_scales(sweep: dict[str, list[Any]]) -> int:
    """How many scales a net of one seed trained at: TRAINED training accuracy, not diverged."""
    return sum(a >= TRAINED and d is None for a, d in zip(sweep["accuracy"], sweep["diverged_epoch"]))


def first_step_reaching(steps: list[int], accuracies: list[float], target: float) -> float:
    """The first step measured at ``target`` accuracy or more (inf: never in the run)."""
    return next((float(step) for step, accuracy in zip(steps, accuracies) if accuracy >= target), math.inf)


def sooner(sigmoid: dict[str, Any]) -> float:
    """Steps the plain net needs to reach TARGET test accuracy ÷ the steps the BN net needs (inf when
    only BN reaches it; NaN when neither does)."""
    plain, bn = (first_step_reaching(sigmoid[n]["steps"], sigmoid[n]["test_accuracy"], TARGET) for n in NETS)
    if math.isinf(bn):
        return math.nan if math.isinf(plain) else 0.0
    return plain / max(bn, 1.0)


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    scales = QUICK_SCALES if context.quick else SCALES
    sweep_run, sigmoid_run = sweep_options(context), sigmoid_options(context)
    n = len(measured)
    counts = {net: [trained_scales(seed["sweep"][net]) for seed in measured] for net in NETS}
    ratios = {
        key: [seed["sigmoid"]["plain"][key] / seed["sigmoid"]["bn"][key] for seed in measured]
        for key in ("median_moved", "spread_change")
    }
    claims = [
        Claim.judge(
            "batchnorm/any-scale",
            "000 §3",
            "With batch norm a deep net trains from nearly any initial weight scale; without it the signal "
            "vanishes or explodes and it trains only from a narrow range of scales.",
            f"initial weight scales (of {len(scales)}, s = 1 … 1e-4) at which the 5×100 ReLU net reaches "
            f"{TRAINED:.0%} training accuracy in {sweep_run['epochs']} epochs, with BN − without",
            [b - p for b, p in zip(counts["bn"], counts["plain"])],
            at_least(len(scales) // 2),
        ),
        Claim.judge(
            "batchnorm/sooner",
            "000 §3",
            "Normalizing the layers' inputs speeds up training: the BN paper's sigmoid net reaches a given "
            "accuracy in far fewer steps with batch norm.",
            f"steps to {TARGET:.0%} test accuracy, without BN ÷ with BN (3×100 sigmoid MLP, SGD lr "
            f"{SIGMOID['lr']:g}; inf: only BN reaches it)",
            [sooner(seed["sigmoid"]) for seed in measured],
            above(2),
        ),
        Claim.judge(
            "batchnorm/stable-median",
            "004",
            "Without batch norm the inputs of a layer shift as the layers below learn (internal covariate "
            "shift); with it they stay where they are.",
            "how far the median input of a last-hidden-layer sigmoid moves over training, in 15–85 percentile "
            "spreads (median over its 100 units), without BN ÷ with BN",
            ratios["median_moved"],
            above(3),
        ),
        Claim.judge(
            "batchnorm/stable-spread",
            "004",
            "Without batch norm the spread of a layer's inputs changes over training; with it it stays about the same.",
            "largest ÷ smallest 15–85 percentile spread of a sigmoid's input over training (median over the "
            "units), without BN ÷ with BN",
            ratios["spread_change"],
            above(3),
        ),
    ]
    draw(context, measured, scales, sweep_run)
    sweep_table = Table(
        f"The sweep: accuracy on the {sweep_run['train_size']} training samples after {sweep_run['epochs']} "
        f"epochs (mean over {n} seeds; a run that diverged counts its accuracy before it did) and test "
        "accuracy (mean over the runs that did not diverge)",
        ["weight std", "plain train", "BN train", "plain test", "BN test", "plain runs diverged"],
        [
            [
                scale,
                mean([seed["sweep"]["plain"]["accuracy"][i] for seed in measured]),
                mean([seed["sweep"]["bn"]["accuracy"][i] for seed in measured]),
                finite_mean([seed["sweep"]["plain"]["test_accuracy"][i] for seed in measured]),
                finite_mean([seed["sweep"]["bn"]["test_accuracy"][i] for seed in measured]),
                f"{sum(seed['sweep']['plain']['diverged_epoch'][i] is not None for seed in measured)}/{n}",
            ]
            for i, scale in enumerate(scales)
        ],
    )
    seed_table = Table(
        "Per seed: the scales each net trained at, the sigmoid nets' steps to "
        f"{TARGET:.0%} test accuracy and final test accuracy, and the shift of their sigmoid inputs",
        [
            "seed",
            "scales trained, plain",
            "scales trained, BN",
            f"steps to {TARGET:.0%}, plain",
            f"steps to {TARGET:.0%}, BN",
            "final test accuracy, plain",
            "final test accuracy, BN",
            "median moved (spreads), plain",
            "median moved (spreads), BN",
            "spread change, plain",
            "spread change, BN",
        ],
        [
            [seed_number, counts["plain"][k], counts["bn"][k]]
            + [steps_text(seed["sigmoid"][net]) for net in NETS]
            + [seed["sigmoid"][net]["test_accuracy"][-1] for net in NETS]
            + [seed["sigmoid"][net][key] for key in ("median_moved", "spread_change") for net in NETS]
            for k, (seed_number, seed) in enumerate(zip(context.seeds, measured))
        ],
    )
    first = measured[0]["sigmoid"]
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": f"{context.dataset}: the first {sweep_run['train_size']} training samples (sweep); the "
            "whole training split (sigmoid nets), their inputs watched on the validation split",
            "sweep": f"MLP of 5 hidden layers of 100 ReLU units, hidden weights N(0, s²) at {len(scales)} "
            f"log-spaced s from 1 to 1e-4, without and with BatchNorm1d before each ReLU (then without the "
            f"Linear biases); {sweep_run['epochs']} epochs of plain SGD, lr {SWEEP['lr']:g}, batch "
            f"{SWEEP['batch_size']}; a run whose loss overflows is stopped and counts as not trained",
            "sigmoid nets": f"the BN paper's MLP of 3 hidden layers of 100 sigmoid units, weights N(0, 1/n_in), "
            f"without and with BatchNorm1d; {sigmoid_run['epochs']} epochs ({first['plain']['steps'][-1]} "
            f"steps) of plain SGD, lr {SIGMOID['lr']:g}, batch {SIGMOID['batch_size']}; test accuracy "
            f"{EVALUATIONS} times over the run",
            "input distribution": f"the {', '.join(map(str, PERCENTILES))}th percentiles of each last-hidden-"
            f"layer unit's sigmoid input over the validation samples, {len(first['plain']['probe_steps'])} "
            "times over the run (BN normalizing them with their own batch statistics, as in training)",
        },
        claims=claims,
        tables=[sweep_table, seed_table],
        figures=[
            Figure(
                "accuracy_vs_scale.png",
                f"Training accuracy after {sweep_run['epochs']} epochs against the initial weight std (log "
                f"scale), without and with batch norm: the mean over {n} seeds (line), their range (band) and "
                "each seed (dots); crosses at the top count the runs that diverged at that scale",
            ),
            Figure(
                "sigmoid3x100.png",
                "Test accuracy of the BN paper's 3×100 sigmoid MLP over training, without and with batch "
                f"norm (the paper's Figure 1(a)): mean, range and each of {n} seeds",
            ),
            Figure(
                "covariate_shift.png",
                "The BN paper's Figure 1(b, c): the input of a typical sigmoid of the last hidden layer "
                f"(seed {context.seeds[0]}: the unit whose median moved the median amount) over training, "
                "as its 15th, 50th and 85th percentiles over the validation samples, without and with "
                "batch norm (same y axis); each panel's second line gives, over all 100 units of the layer "
                "(their median), how far the median input moved in 15–85 spreads and by how much the spread "
                "changed. Right: how far the median input has moved so far, median over the units, mean and "
                f"range of {n} seeds (log scale)",
            ),
        ],
        results={
            "scales": list(scales),
            "sweep": [seed["sweep"] for seed in measured],
            "sigmoid": [
                {
                    net: {
                        key: seed["sigmoid"][net][key]
                        for key in ("steps", "test_accuracy", "median_moved", "spread_change", "typical_unit")
                    }
                    for net in NETS
                }
                for seed in measured
            ],
            "typical_input": {
                net: {"probe_steps": first[net]["probe_steps"], "percentiles": first[net]["typical"]} for net in NETS
            },
        },
    )


def finite_mean(values: list[float | None]) -> float | None:
    shown = [v for v in values if v is not None]
    return mean(shown) if shown else None


def steps_text(sigmoid: dict[str, Any]) -> str:
    step = first_step_reaching(sigmoid["steps"], sigmoid["test_accuracy"], TARGET)
    return "never" if math.isinf(step) else str(int(step))


def draw(context: Context, measured: list[dict[str, Any]], scales: list[float], sweep_run: dict[str, Any]) -> None:
    """The three figures: the sweep, the sigmoid nets' test accuracy, the shift of their inputs."""

    def accuracies(net: str, i: int) -> list[float]:  # a run that diverged is drawn as diverged
        return [
            math.nan if seed["sweep"][net]["diverged_epoch"][i] is not None else seed["sweep"][net]["accuracy"][i]
            for seed in measured
        ]

    over_setting(
        {
            "training accuracy against the initial weight scale": {
                "xlabel": "initial weight std s of the hidden layers (log)",
                "ylabel": f"training accuracy after {sweep_run['epochs']} epochs",
                "log_x": True,
                "curves": {NETS[net]: (scales, [accuracies(net, i) for i in range(len(scales))]) for net in NETS},
                "references": {"chance": CHANCE, f"trained: {TRAINED:.0%}": TRAINED},
            }
        },
        context.path("accuracy_vs_scale.png"),
        title=f"5×100 ReLU MLP from N(0, s²), SGD lr {SWEEP['lr']:g} ({len(measured)} seeds)",
    )
    first = measured[0]["sigmoid"]
    over_setting(
        {
            "test accuracy over training": {
                "xlabel": f"training step (batch of {SIGMOID['batch_size']})",
                "ylabel": "test accuracy",
                "curves": {
                    NETS[net]: (
                        first[net]["steps"],
                        [list(column) for column in zip(*(seed["sigmoid"][net]["test_accuracy"] for seed in measured))],
                    )
                    for net in NETS
                },
                "references": {"chance": CHANCE, f"{TARGET:.0%}": TARGET},
            }
        },
        context.path("sigmoid3x100.png"),
        title=f"BN paper's Fig. 1(a): 3×100 sigmoid MLP ({len(measured)} seeds)",
    )
    panels = {
        f"{NETS[net]}: unit {first[net]['typical_unit']}": {
            "steps": first[net]["probe_steps"],
            "percentiles": first[net]["typical"],
            "note": f"all units: median moved {first[net]['median_moved']:.2g} spreads, spread ×"
            f"{first[net]['spread_change']:.3g}",
        }
        for net in NETS
    }
    input_percentiles(
        panels,
        {
            "title": "every unit of the layer",
            "ylabel": "median moved so far (15–85 spreads, log)",
            "log_y": True,
            "curves": {
                NETS[net]: (
                    first[net]["probe_steps"],
                    [list(column) for column in zip(*(seed["sigmoid"][net]["moved"] for seed in measured))],
                )
                for net in NETS
            },
        },
        context.path("covariate_shift.png"),
        title="Internal covariate shift: the input of a last-hidden-layer sigmoid over training "
        f"(the BN paper's Figure 1(b, c), seed {context.seeds[0]})",
        ylabel="sigmoid input (percentiles)",
    )
