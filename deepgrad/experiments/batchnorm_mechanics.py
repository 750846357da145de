"""``batchnorm-mechanics``: how batch normalization works, claim by claim — at test time, with small
batches, as a regularizer, through γ and β, with the bias before it, and before or after a sigmoid.
(Notes 000 §1–§4, 003.)

- Test time (000 §4, 003). A BN net (2 hidden layers of 100 ReLU units, BatchNorm1d before each ReLU)
  is trained on 1024 samples in batches of 32 (SGD with momentum 0.9, lr 0.01, 5 epochs). It is then
  tested three ways: with the running averages of the training batches' statistics (what eval mode
  does), with the statistics of each test batch itself (test batches of 2 … 64, and the whole test
  set), and with the statistics of each test sample alone. deepgrad refuses a batch of one (as
  PyTorch does: there is no variance to normalize by), so a sample is fed as two copies of itself,
  whose statistics are the sample's own: mean = the sample, variance 0, so every normalized value
  is 0 and every input gives the same output. The running averages are also compared with the
  statistics of the whole training set (through the trained layers).
- Batch size (003). The same net with and without BN is trained in batches of 2 to 64 (5 epochs each,
  the same learning rate); with BN the normalization of a batch of 2 maps each feature to ±1, a
  different function from the one the running averages compute at test time. A batch of 1 is tried
  as well: deepgrad refuses it, and the study reports the error it gives.
- Regularization (000 §3). The notes say the noise of each mini-batch's statistics regularizes a
  little, like dropout. The regime where a gap between training and test accuracy shows is
  overfitting: 300 training samples, 5 hidden layers of 100 ReLU units, batch 25, SGD with momentum
  0.9, lr 0.01, 100 epochs, until both nets fit their training samples perfectly; the claim compares
  the train − test gap at that equal (100 %) training accuracy. This does not isolate the noise from
  BN's other effects on the optimization. Tried before: 2 hidden layers of 100 on 200 samples, in
  batches of 10 and of all 200 (no difference in the gap either way), and 5×100 in batches of 4
  (the BN net no longer fits its samples, so the gaps are not at equal training accuracy); the
  deeper net is where an effect shows, and it is small (a point or two of 360 test samples).
- γ and β (000 §1) and the bias (000 §2) are identities, checked once in float64: setting
  γ = √(σ² + ε) and β = μ (the batch's own statistics) gives back the layer's input, and a Linear
  with a bias gives, after BN, exactly the output of the same Linear without one, while its bias
  gets no gradient.
- Before or after the activation (003: before, for a sigmoid). Three nets of 3 hidden layers of 100
  sigmoid units (weights N(0, 1/n_in)): without BN, with BN before each sigmoid (the mlp preset's
  ``batch_norm``), and with BN after each sigmoid. The preset has no "after", so that net is built
  here with deepgrad.nn (Linear → Sigmoid → BatchNorm1d per layer) and trained by a Trainer with the
  optimizer and schedule that build_run builds for the same config. SGD with momentum 0.9, lr 0.1,
  batch 32, 20 epochs; then the fraction of the hidden sigmoids' outputs on the validation samples
  that are saturated (below 0.05 or above 0.95, where σ' is less than a fifth of its peak ¼). The
  saturation differs at once; the accuracy hardly does: tried also plain SGD at lr 0.5 in batches
  of 60 (the BN paper's setting), 5 hidden layers, and 3 to 30 epochs — the two placements stay
  within about a point of each other, either way round, and the accuracy claim says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import nn
from ..data import datasets
from ..tensor import no_grad, tensor
from ..train.build import build_optimization, loss_fn
from ..train.run import Run, build_run
from ..train.trainer import Trainer
from ..viz.seeds import over_setting, seed_bars
from .batchnorm import batch_norms, batch_statistics
from .claims import Claim, above, at_least, at_most, below
from .common import BIG_TRAIN_SIZE, Context, Figure, Report, Table

TITLE = "Batch normalization's mechanics: test time, batch size, regularization, γ and β, the bias, its place"
QUESTION = (
    "How does batch norm work at test time (running averages, 000 §4) and with small batches (003), does "
    "its mini-batch noise regularize (000 §3), can γ and β restore a layer's input and is the bias before "
    "it redundant (000 §1, §2), and does it belong before or after a sigmoid (003)?"
)
SEEDS = 3
NETS = {"plain": "without BN", "bn": "with BN"}
BATCH_RUN = {
    "hidden": [100, 100],
    "activation": "relu",
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 0.01,
    "train_size": 1024,  # a power of two: no batch size of the sweep leaves a last batch of one
    "epochs": 5,
    "keep": "last",
}
BATCHES = [2, 4, 8, 16, 32, 64]
TESTED_BATCH = 32  # the BN net tested at test time is the one trained in batches of 32
TEST_BATCHES = [1, 2, 4, 8, 16, 32, 64]  # and the whole test set
REGULARIZER = {
    "hidden": [100] * 5,
    "activation": "relu",
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 0.01,
    "batch_size": 25,
    "train_size": 300,
    "epochs": 100,
    "keep": "last",
}
PLACEMENT = {
    "hidden": [100] * 3,
    "activation": "sigmoid",
    "init": "lecun",
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 0.1,
    "batch_size": 32,
    "epochs": 20,
    "keep": "last",
}
PLACES = {"none": "no BN", "before": "BN before σ", "after": "BN after σ"}
SATURATED = 0.05  # a sigmoid output below this or above 1 − this is saturated (σ' < 0.0475, under a fifth of ¼)
QUICK_BATCHES = [2, 8, 32]
QUICK = {
    "batch": {"train_size": 256, "epochs": 1},
    "regularizer": {"train_size": 100, "epochs": 8},
    "placement": {"train_size": 320, "epochs": 2},
}
CHANCE = 1 / 10  # every data set of the experiments has 10 classes


def options(context: Context, part: str, base: dict[str, Any]) -> dict[str, Any]:
    """The training options of one part of the study as this context runs it: quick, a few hundred
    samples and an epoch or two; a part that trains on the whole training split takes the first
    BIG_TRAIN_SIZE samples of a data set bigger than digits."""
    if context.quick:
        return {**base, **QUICK[part]}
    if "train_size" in base:
        return base
    return {**base, "train_size": None if context.dataset == "digits" else BIG_TRAIN_SIZE}


def hand_built_run(context: Context, model: Callable[[datasets.Splits], nn.Module], **training: Any) -> Run:
    """The run of ``training`` with the model ``model(splits)`` in place of the preset's: build_run makes
    the data, loaders and observers; the optimizer and learning-rate schedule are built for the new
    model as build_run builds them, and the Trainer as build_run makes it."""
    run = build_run(context.config(**training), progress=False)
    network = model(run.splits)
    optimizer, learning_rate = build_optimization(run.config, network, len(run.loaders[0]))
    trainer = Trainer(
        network,
        optimizer,
        loss_fn,
        callbacks=run.trainer.callbacks,
        learning_rate=learning_rate,
        clip_grad_norm=run.config["clip_grad_norm"],
        device=run.config["device"],
        stop_on_divergence=run.config["stop_on_divergence"],
    )
    return dataclasses.replace(run, model=network, trainer=trainer, optimizer=optimizer)


def bn_after_sigmoid(hidden: list[int]) -> Callable[[datasets.Splits], nn.Module]:
    """Flatten → [Linear → Sigmoid → BatchNorm1d] per hidden width → Linear: the mlp preset with BN
    moved after the activation (its Linears keep their biases: nothing after them removes them)."""

    def build(splits: datasets.Splits) -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(splits.input_shape)
        for size in hidden:
            layers += [nn.Linear(width, size, init="lecun_normal"), nn.Sigmoid(), nn.BatchNorm1d(size)]
            width = size
        layers.append(nn.Linear(width, splits.num_classes))
        return nn.Sequential(*layers)

    return build


def predictions(model: nn.Module, x: np.ndarray, batch: int | None) -> np.ndarray:
    """The classes ``model`` predicts in eval mode for ``x`` fed in batches of ``batch`` (None: all at
    once); a batch of one is fed as two copies of its sample (deepgrad refuses batch statistics of
    one sample; those of two copies are the same: mean = the sample, variance 0)."""
    size = batch or len(x)
    classes = []
    model.eval()
    with no_grad():
        for start in range(0, len(x), size):
            chunk = x[start : start + size]
            fed = np.concatenate([chunk, chunk]) if len(chunk) == 1 else chunk
            classes.append(np.asarray(model(tensor(fed)).data)[: len(chunk)].argmax(axis=1))
    return np.concatenate(classes)


def test_time(run: Run) -> dict[str, Any]:
    """The trained BN net of ``run`` tested with its running averages and with the test batches' own
    statistics at each of TEST_BATCHES and the whole test set; and how far its running averages are
    from the statistics of the whole training set (through the trained layers)."""
    model, (x, y) = run.model, run.splits.test.arrays
    running = float(np.mean(predictions(model, x, None) == y))
    with batch_statistics(model):
        own = {str(b): float(np.mean(predictions(model, x, b) == y)) for b in TEST_BATCHES}
        own["all"] = float(np.mean(predictions(model, x, None) == y))
        alone = len(np.unique(predictions(model, x, 1)))
        inputs: list[np.ndarray] = []
        handles = [
            layer.register_forward_pre_hook(lambda module, given: inputs.append(np.asarray(given[0].data)))
            for layer in batch_norms(model)
        ]
        with no_grad():
            model(tensor(run.splits.train.arrays[0]))
        for handle in handles:
            handle.remove()
    mean_error, std_error = [], []
    for layer, z in zip(batch_norms(model), inputs):
        mean, std = z.astype(np.float64).mean(axis=0), z.astype(np.float64).std(axis=0)
        mean_error.append(np.abs(np.asarray(layer.running_mean) - mean) / std)
        std_error.append(np.abs(np.sqrt(np.asarray(layer.running_var)) / std - 1))
    return {
        "running": running,
        "own": own,
        "test_size": len(y),
        "classes_alone": alone,
        "mean_error": float(np.median(np.concatenate(mean_error))),
        "std_error": float(np.median(np.concatenate(std_error))),
    }


def batch_sizes(context: Context) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Every training batch size without and with BN: test accuracy, training accuracy (eval mode,
    with the running averages) and the last epoch's training accuracy as the training steps saw it
    (with the batch statistics); the test-time study of the BN net of batch TESTED_BATCH; and what
    training with BN in batches of one gives."""
    training = options(context, "batch", BATCH_RUN)
    runs: dict[str, dict[str, list[float]]] = {net: {"test": [], "train": [], "train_steps": []} for net in NETS}
    tested = None
    for batch in QUICK_BATCHES if context.quick else BATCHES:
        for net in NETS:
            run, summary = context.train(batch_size=batch, batch_norm=net == "bn", **training)
            runs[net]["test"].append(summary["test_accuracy"])
            runs[net]["train"].append(summary["train_accuracy"])
            runs[net]["train_steps"].append(run.trainer.history["train_accuracy"][-1])
            if net == "bn" and batch == TESTED_BATCH:
                tested = test_time(run)
    assert tested is not None
    try:
        _, summary = context.train(batch_size=1, batch_norm=True, **{**training, "epochs": 1})
        batch_one = f"trained: test accuracy {summary['test_accuracy']:.3f}"
    except ValueError as error:
        batch_one = f"refused: {error}"
    return runs, tested, batch_one


def regularization(context: Context) -> dict[str, dict[str, float]]:
    """The overfitting regime without and with BN: final training and test accuracy and loss."""
    training = options(context, "regularizer", REGULARIZER)
    results = {}
    for net in NETS:
        _, summary = context.train(batch_norm=net == "bn", **training)
        results[net] = {key: summary[key] for key in ("train_accuracy", "test_accuracy", "train_loss", "test_loss")}
    return results


def saturation(model: nn.Module, x: np.ndarray) -> list[float]:
    """Per hidden sigmoid layer, the fraction of its outputs on ``x`` (eval mode) that are saturated."""
    outputs: list[np.ndarray] = []
    handles = [
        module.register_forward_hook(lambda module, inputs, output: outputs.append(np.asarray(output.data)))
        for module in model.modules()
        if isinstance(module, nn.Sigmoid)
    ]
    model.eval()
    with no_grad():
        model(tensor(x))
    for handle in handles:
        handle.remove()
    return [float(np.mean((a < SATURATED) | (a > 1 - SATURATED))) for a in outputs]


def placement(context: Context) -> dict[str, dict[str, Any]]:
    """The sigmoid nets without BN, with BN before and after each sigmoid: test accuracy and the
    saturation of each hidden layer."""
    training = options(context, "placement", PLACEMENT)
    results = {}
    for place in PLACES:
        if place == "after":
            run = hand_built_run(context, bn_after_sigmoid(training["hidden"]), **training)
        else:
            run = build_run(context.config(batch_norm=place == "before", **training), progress=False)
        summary = run.fit()
        results[place] = {
            "test_accuracy": summary["test_accuracy"],
            "saturation": saturation(run.model, run.splits.val.arrays[0]),
        }
    return results


def identities(seed: int) -> dict[str, float]:
    """The identities of 000 §1 and §2 in float64, on random data: max |BN(z) − z| ÷ max |z| with
    γ = √(σ² + ε), β = μ; max |BN(Wx + b) − BN(Wx)| ÷ max |BN(Wx)|; ‖∂L/∂b‖ ÷ ‖∂L/∂W‖ of that b for
    L = Σ r ⊙ BN(Wx + b) with random r."""
    generator = np.random.default_rng(seed)
    z = generator.normal(0.0, 1.0, (64, 20)) * generator.uniform(0.1, 10.0, 20) + generator.normal(0.0, 10.0, 20)
    layer = nn.BatchNorm1d(20, dtype=np.float64)
    gamma, beta = layer.weight, layer.bias
    assert gamma is not None and beta is not None  # affine by default
    gamma.data[...] = np.sqrt(z.var(axis=0) + layer.eps)  # the batch's (biased) variance, as BN uses
    beta.data[...] = z.mean(axis=0)
    restored = np.asarray(layer(tensor(z)).data)
    x = generator.normal(0.0, 1.0, (64, 30))
    with_bias = nn.Linear(30, 20, dtype=np.float64, generator=generator)
    bias = with_bias.bias
    assert bias is not None
    nn.init.normal_(bias, 0.0, 5.0, generator=generator)  # a bias far from zero
    without_bias = nn.Linear(30, 20, bias=False, dtype=np.float64)
    without_bias.weight.data[...] = with_bias.weight.data
    biased = nn.BatchNorm1d(20, dtype=np.float64)(with_bias(tensor(x)))
    unbiased = np.asarray(nn.BatchNorm1d(20, dtype=np.float64)(without_bias(tensor(x))).data)
    (biased * tensor(generator.normal(0.0, 1.0, biased.shape))).sum().backward()
    assert bias.grad is not None and with_bias.weight.grad is not None
    return {
        "identity": float(np.abs(restored - z).max() / np.abs(z).max()),
        "bias_outputs": float(np.abs(np.asarray(biased.data) - unbiased).max() / np.abs(unbiased).max()),
        "bias_gradient": float(np.linalg.norm(bias.grad) / np.linalg.norm(with_bias.weight.grad)),
    }


def measure(context: Context) -> dict[str, Any]:
    """One seed: the batch-size sweep and the test-time study of its BN net; the overfitting regime;
    the placements; the identities."""
    batches, tested, batch_one = batch_sizes(context)
    return {
        "batches": batches,
        "batch_one": batch_one,
        "test_time": tested,
        "regularization": regularization(context),
        "placement": placement(context),
        "identities": identities(context.seed),
    }


def points(value: float) -> float:
    return 100 * value


def mean_of(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def ratio(a: float, b: float) -> float:
    """a ÷ b, with a ÷ 0 infinite (NaN for 0 ÷ 0)."""
    if b == 0:
        return math.nan if a == 0 else math.inf
    return a / b


def gap(run: dict[str, float]) -> float:
    """Training − test accuracy, in points."""
    return points(run["train_accuracy"] - run["test_accuracy"])


def fitted(measured: list[dict[str, Any]]) -> str:
    """Whether the regularization claim compares its nets at equal (100 %) training accuracy, in words."""
    perfect = sum(run["train_accuracy"] == 1 for seed in measured for run in seed["regularization"].values())
    total = sum(len(seed["regularization"]) for seed in measured)
    if perfect == total:
        return "every net at 100 % training accuracy"
    return f"{perfect} of the {total} nets at 100 % training accuracy: see the table"


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    batches = QUICK_BATCHES if context.quick else BATCHES
    training = options(context, "batch", BATCH_RUN)
    regularizer = options(context, "regularizer", REGULARIZER)
    placing = options(context, "placement", PLACEMENT)
    smallest = batches[0]
    first = measured[0]["identities"]
    claims = [
        Claim.judge(
            "batchnorm-mechanics/test-running-averages",
            "000 §4",
            "At test time batch norm normalizes with exponentially weighted averages of the training batches' "
            "statistics, so it can predict one sample at a time as well as with the statistics of many.",
            f"test accuracy with the running averages − with the statistics of the whole test set (points; "
            f"BN net trained in batches of {TESTED_BATCH})",
            [points(seed["test_time"]["running"] - seed["test_time"]["own"]["all"]) for seed in measured],
            at_least(-1),
        ),
        Claim.judge(
            "batchnorm-mechanics/running-estimates",
            "000 §4",
            "The exponentially weighted averages of the mini-batches' means estimate the mean over the training data.",
            "|running mean − mean over the training set| ÷ its standard deviation, median over the units of "
            "both BN layers",
            [seed["test_time"]["mean_error"] for seed in measured],
            at_most(0.1),
        ),
        Claim.judge(
            "batchnorm-mechanics/test-batch-one",
            "003",
            "The statistics of a batch of one sample mean nothing: every normalized value is 0, so the net "
            "gives every input the same answer.",
            "test accuracy when each test sample is normalized with its own statistics",
            [seed["test_time"]["own"]["1"] for seed in measured],
            at_most(2 * CHANCE),
        ),
        Claim.judge(
            "batchnorm-mechanics/small-batch",
            "003",
            "Batch norm needs large enough batches: with tiny ones its statistics are so noisy that the net "
            "falls behind the same net without batch norm.",
            f"test accuracy, with BN − without, both trained in batches of {smallest} (points)",
            [points(seed["batches"]["bn"]["test"][0] - seed["batches"]["plain"]["test"][0]) for seed in measured],
            below(-5),
        ),
        Claim.judge(
            "batchnorm-mechanics/regularizes",
            "000 §3",
            "Each mini-batch's statistics add noise that regularizes, like dropout: with batch norm the gap "
            "between training and test accuracy is smaller.",
            f"training − test accuracy without BN − with BN (points; {len(regularizer['hidden'])}×100 ReLU MLP "
            f"on {regularizer['train_size']} samples, {regularizer['epochs']} epochs; {fitted(measured)})",
            [gap(seed["regularization"]["plain"]) - gap(seed["regularization"]["bn"]) for seed in measured],
            above(1),
        ),
        Claim.judge(
            "batchnorm-mechanics/gamma-beta-identity",
            "000 §1",
            "With γ = √(σ² + ε) and β = μ, batch norm gives back its input unchanged.",
            "max |BN(z) − z| ÷ max |z| (float64, a batch of 64 × 20 of assorted means and scales)",
            [first["identity"]],
            at_most(1e-12),
        ),
        Claim.judge(
            "batchnorm-mechanics/bias-redundant",
            "000 §2",
            "The bias of a layer before batch norm is redundant: the mean subtracted removes it.",
            "max |BN(Wx + b) − BN(Wx)| ÷ max |BN(Wx)| (float64, b ~ N(0, 5²))",
            [first["bias_outputs"]],
            at_most(1e-12),
        ),
        Claim.judge(
            "batchnorm-mechanics/bias-no-gradient",
            "000 §2",
            "A bias before batch norm gets no gradient, so training never changes it.",
            "‖∂L/∂b‖ ÷ ‖∂L/∂W‖ of that layer (float64, L = Σ r ⊙ BN(Wx + b), r random)",
            [first["bias_gradient"]],
            at_most(1e-12),
        ),
        Claim.judge(
            "batchnorm-mechanics/before-sigmoid-saturation",
            "003",
            "Before a sigmoid, batch norm keeps its inputs where its gradient is large; after it, the "
            "sigmoids' inputs drift into saturation.",
            f"fraction of hidden sigmoid outputs outside [{SATURATED:g}, {1 - SATURATED:g}] on the validation "
            "samples, BN after σ ÷ BN before σ",
            [
                ratio(
                    mean_of(seed["placement"]["after"]["saturation"]),
                    mean_of(seed["placement"]["before"]["saturation"]),
                )
                for seed in measured
            ],
            above(3),
        ),
        Claim.judge(
            "batchnorm-mechanics/before-sigmoid-accuracy",
            "003",
            "For a sigmoid net, normalizing before the activation works better than after it.",
            f"test accuracy, BN before σ − BN after σ (points; 3×100 sigmoid MLP, {placing['epochs']} epochs)",
            [
                points(seed["placement"]["before"]["test_accuracy"] - seed["placement"]["after"]["test_accuracy"])
                for seed in measured
            ],
            above(0),
        ),
    ]
    draw(context, measured, batches)
    n = len(measured)
    tables = [
        Table(
            f"Test accuracy of the BN net trained in batches of {TESTED_BATCH}: with its running averages, and "
            "with the statistics of each test batch of the given size (1: each sample alone), mean over "
            f"{n} seeds; and how far the running averages are from the statistics of the whole training set "
            "(median over the units of both BN layers)",
            ["running averages"]
            + [f"batch {b}" for b in TEST_BATCHES]
            + [
                "whole test set",
                "classes predicted alone (per seed)",
                "|running mean − training mean| ÷ std",
                "|running std ÷ training std − 1|",
            ],
            [
                [mean_of([seed["test_time"]["running"] for seed in measured])]
                + [mean_of([seed["test_time"]["own"][str(b)] for seed in measured]) for b in TEST_BATCHES]
                + [
                    mean_of([seed["test_time"]["own"]["all"] for seed in measured]),
                    ", ".join(str(seed["test_time"]["classes_alone"]) for seed in measured),
                    mean_of([seed["test_time"]["mean_error"] for seed in measured]),
                    mean_of([seed["test_time"]["std_error"] for seed in measured]),
                ]
            ],
        ),
        Table(
            f"Training batch size (mean over {n} seeds): test accuracy without and with BN; the BN net's "
            "training accuracy with its running averages (eval mode) and as its last epoch's steps saw it "
            f"(each batch's own statistics). Batch 1 with BN: {measured[0]['batch_one']}",
            [
                "batch",
                "test, without BN",
                "test, with BN",
                "train (running averages), BN",
                "train (batch statistics), BN",
            ],
            [
                [b]
                + [
                    mean_of([seed["batches"][net][key][i] for seed in measured])
                    for net, key in (("plain", "test"), ("bn", "test"), ("bn", "train"), ("bn", "train_steps"))
                ]
                for i, b in enumerate(batches)
            ],
        ),
        Table(
            "Overfitting regime, per seed: training and test accuracy and loss without and with BN",
            ["seed", "net", "train accuracy", "test accuracy", "gap (points)", "train loss", "test loss"],
            [
                [s, NETS[net], r["train_accuracy"], r["test_accuracy"], gap(r), r["train_loss"], r["test_loss"]]
                for s, seed in zip(context.seeds, measured)
                for net, r in seed["regularization"].items()
            ],
        ),
        Table(
            "Placement, per seed: test accuracy and the saturated fraction of each hidden sigmoid layer's outputs",
            ["seed", "net", "test accuracy", "saturated, layer by layer"],
            [
                [s, PLACES[place], r["test_accuracy"], ", ".join(f"{v:.3f}" for v in r["saturation"])]
                for s, seed in zip(context.seeds, measured)
                for place, r in seed["placement"].items()
            ],
        ),
    ]
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": f"{context.dataset}: the first {training['train_size']} training samples (test time, batch "
            f"size), the first {regularizer['train_size']} (regularization), "
            + (f"the first {placing['train_size']}" if placing.get("train_size") else "the whole training split")
            + " (placement); the validation split for saturation; the test split for accuracy",
            "test time and batch size": f"MLP of 2 hidden layers of 100 ReLU units, without and with BatchNorm1d "
            f"before each ReLU; {training['epochs']} epochs of SGD (momentum 0.9, lr {BATCH_RUN['lr']:g}) in "
            f"batches of {', '.join(map(str, batches))}; the BN net of batch {TESTED_BATCH} is tested with its "
            "running averages and with batch statistics; a batch of one is fed as two copies of its sample",
            "regularization": f"MLP of {len(regularizer['hidden'])} hidden layers of 100 ReLU units on "
            f"{regularizer['train_size']} samples, batch {REGULARIZER['batch_size']}, SGD (momentum 0.9, lr "
            f"{REGULARIZER['lr']:g}), {regularizer['epochs']} epochs: the overfitting regime, where a gap shows",
            "identities": "float64, one batch of random data (they hold whatever the seed)",
            "placement": "MLP of 3 hidden layers of 100 sigmoid units, weights N(0, 1/n_in): no BN; BN before "
            "each sigmoid (the mlp preset); BN after each sigmoid (built with deepgrad.nn, trained by a Trainer "
            f"with build_run's optimizer); SGD (momentum 0.9, lr {PLACEMENT['lr']:g}), batch "
            f"{PLACEMENT['batch_size']}, {placing['epochs']} epochs; saturated: σ outside "
            f"[{SATURATED:g}, {1 - SATURATED:g}]",
        },
        claims=claims,
        tables=tables,
        figures=[
            Figure(
                "test_time.png",
                f"Test accuracy of the BN net (trained in batches of {TESTED_BATCH}) against the size of the "
                "test batches whose own statistics normalize them (1: each sample alone; the last point: the "
                "whole test set), and with the running averages, which do not depend on the batch: mean over "
                f"{n} seeds (line), range (band), each seed (dots)",
            ),
            Figure(
                "batch_size.png",
                "Left: test accuracy against the training batch size, without and with BN. Right: accuracy on "
                "the training samples, in eval mode (with BN: the running averages) and, for the BN net, as "
                "its last epoch's training steps saw it (each batch's own statistics). Mean over "
                f"{n} seeds, range, each seed",
            ),
            Figure(
                "regularization.png",
                f"The overfitting regime ({regularizer['train_size']} samples, {regularizer['epochs']} epochs): "
                "training − test accuracy, test accuracy and test loss without and with BN; bars are the mean "
                f"over {n} seeds, whiskers their range, dots each seed",
            ),
            Figure(
                "placement.png",
                "A 3×100 sigmoid MLP without BN, with BN before and with BN after each sigmoid: test "
                "accuracy, and the fraction of its hidden sigmoid outputs that are saturated; "
                f"mean over {n} seeds, range, each seed",
            ),
        ],
        results={
            "batches": list(batches),
            "test_batches": [str(b) for b in TEST_BATCHES] + ["all"],
            "per_seed": [{key: seed[key] for key in seed} for seed in measured],
        },
    )


def draw(context: Context, measured: list[dict[str, Any]], batches: list[int]) -> None:
    """The four figures: test time, batch size, regularization, placement."""
    n = len(measured)
    sizes = [float(b) for b in TEST_BATCHES] + [float(measured[0]["test_time"]["test_size"])]
    keys = [str(b) for b in TEST_BATCHES] + ["all"]
    over_setting(
        {
            "testing with batch statistics": {
                "xlabel": "test batch size (log; the last point: the whole test set)",
                "ylabel": "test accuracy",
                "log_x": True,
                "ticks": sizes,
                "curves": {
                    "each test batch's own statistics": (
                        sizes,
                        [[seed["test_time"]["own"][key] for seed in measured] for key in keys],
                    ),
                    "the running averages": (sizes, [[seed["test_time"]["running"] for seed in measured]] * len(sizes)),
                },
                "references": {"chance": CHANCE},
            }
        },
        context.path("test_time.png"),
        title=f"BN at test time ({n} seeds)",
    )

    def per_batch(net: str, key: str) -> list[list[float]]:
        return [[seed["batches"][net][key][i] for seed in measured] for i in range(len(batches))]

    over_setting(
        {
            "test accuracy": {
                "xlabel": "training batch size (log)",
                "ylabel": "accuracy",
                "log_x": True,
                "ticks": batches,
                "curves": {NETS[net]: (batches, per_batch(net, "test")) for net in NETS},
            },
            "accuracy on the training samples": {
                "xlabel": "training batch size (log)",
                "ylabel": "accuracy",
                "log_x": True,
                "ticks": batches,
                "curves": {
                    "without BN": (batches, per_batch("plain", "train")),
                    "with BN: running averages (eval mode)": (batches, per_batch("bn", "train")),
                    "with BN: batch statistics (the training steps)": (batches, per_batch("bn", "train_steps")),
                },
            },
        },
        context.path("batch_size.png"),
        title=f"BN against the training batch size ({n} seeds; batch 1 with BN: "
        f"{measured[0]['batch_one'].split(':')[0]})",
        sharey=True,
    )
    seed_bars(
        {
            "training − test accuracy": {
                "ylabel": "gap (points)",
                "bars": {NETS[net]: [gap(seed["regularization"][net]) for seed in measured] for net in NETS},
            },
            "test accuracy": {
                "ylabel": "test accuracy",
                "bars": {
                    NETS[net]: [seed["regularization"][net]["test_accuracy"] for seed in measured] for net in NETS
                },
            },
            "test loss": {
                "ylabel": "cross-entropy",
                "bars": {NETS[net]: [seed["regularization"][net]["test_loss"] for seed in measured] for net in NETS},
            },
        },
        context.path("regularization.png"),
        title=f"BN as a regularizer: the overfitting regime ({n} seeds)",
    )
    seed_bars(
        {
            "test accuracy": {
                "ylabel": "test accuracy",
                "bars": {
                    label: [seed["placement"][place]["test_accuracy"] for seed in measured]
                    for place, label in PLACES.items()
                },
                "references": {"chance": CHANCE},
            },
            "saturated hidden sigmoid outputs": {
                "ylabel": f"fraction outside [{SATURATED:g}, {1 - SATURATED:g}]",
                "bars": {
                    label: [mean_of(seed["placement"][place]["saturation"]) for seed in measured]
                    for place, label in PLACES.items()
                },
            },
        },
        context.path("placement.png"),
        title=f"BN before or after a sigmoid ({n} seeds)",
    )
