"""``dropout``: a dropped unit's expected output, the two ways of keeping training and test
consistent, and dropout as an ensemble. (Notes 001 Dropout.)

The notes: with drop probability p a unit's expected output becomes (1 − p)·a + p·0 = (1 − p)·a.
To keep the expected output of training (with dropout) equal to the output at test (without),
either scale the kept outputs by 1/(1 − p) at training (inverted dropout, deepgrad's default) or
scale the outputs by (1 − p) at test (``nn.Dropout(p, scale_at_test=True)``, the original paper's
form). And "dropout is in effect ensemble learning": many models learn, and at inference their
outputs are averaged.

Measured on an MLP 64-100-100-10 with ReLU units and dropout p = 0.5 after each hidden layer,
trained on digits (Adam, 20 epochs) once with each variant from the same start (same initial
weights, batch order and masks):

- the expectation: the first hidden layer's outputs a on the test set, dropped by
  ``F.dropout`` with 200 masks at each p from 0.1 to 0.9; the mean over the masks against a and
  (1 − p)·a, and each variant's training-time mean against its own test-time output;
- the two variants as one model: a net trained with the (1 − p)-at-test variant, rewritten as an
  inverted one (the weights after each dropout multiplied by 1 − p), computes the same outputs at
  test and, mask for mask, at training; and, trained apart, the two reach the same test accuracy.
  Skipping the scaling altogether (the classic net tested without its 1 − p) costs this ReLU net
  little accuracy — without biases a ReLU net's logits would only be scaled, leaving the labels —
  but its test loss doubles: the outputs are 1/(1 − p) per layer too large, over-confident;
- the ensemble (Monte-Carlo dropout): the softmax outputs of T sub-networks (T random masks at test
  time, T = 1 … 256) averaged, against the single scaled network (dropout off, eval mode) and
  against one sub-network alone. The average's predicted labels converge to the scaled net's; its
  probabilities stop about 0.1 (L1) short of them, the error of the weight-scaling rule in a
  nonlinear net (it is exact for a single linear layer).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from .. import nn
from ..tensor import no_grad, tensor
from ..train.run import build_run
from ..viz.regularization import seed_grid
from ..viz.seeds import seed_bars
from .claims import Claim, above, at_least, at_most
from .common import Context, Figure, Report, Table, data_description, run_options

TITLE = "Dropout: the expected output, scaling at training or at test, and dropout as an ensemble"
QUESTION = (
    "Does dropout turn a unit's expected output into (1 − p)·a, do scaling by 1/(1 − p) at training and by (1 − p) "
    "at test both keep training and test consistent, and is the scaled net the average of an ensemble of "
    "sub-networks (001 Dropout)?"
)
SEEDS = 3
P = 0.5
TRAINING = {"hidden": [100, 100], "activation": "relu", "dropout": P, "epochs": 20, "keep": "last"}
QUICK = {"train_size": 320, "epochs": 2}
PROBABILITIES = [0.1, 0.3, 0.5, 0.7, 0.9]
MASKS, QUICK_MASKS = 200, 20
ENSEMBLE, QUICK_ENSEMBLE = [1, 2, 4, 8, 16, 32, 64, 128, 256], [1, 2, 4, 8, 16]
VARIANTS = {"inverted": "1/(1 − p) at training", "classic": "(1 − p) at test"}


def options(context: Context) -> dict[str, Any]:
    return run_options(context, TRAINING, QUICK)


def dropouts(model: nn.Module) -> list[nn.Dropout]:
    return [module for module in model.modules() if isinstance(module, nn.Dropout)]


def trained(context: Context, variant: str) -> tuple[Any, dict[str, Any]]:
    """The run of ``variant``: the config's inverted dropout, or the classic one (the config has no
    option for it: its Dropout modules are switched before training)."""
    run = build_run(context.config(**options(context)), progress=False)
    for module in dropouts(run.model):
        module.scale_at_test = variant == "classic"
    return run, run.fit()


def first_hidden(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The first hidden layer's outputs (its ReLU, before the dropout) on ``x``, in float64."""
    h = tensor(x)
    with no_grad():
        for module in model.children():
            if isinstance(module, nn.Dropout):
                break
            h = module(h)
    return np.asarray(h.data, dtype=np.float64)


def expectations(a: np.ndarray, masks: int, generator: np.random.Generator) -> dict[str, list[float]]:
    """For each p: the mean over ``masks`` masks of ``F.dropout(a)`` at training, as a ratio (summed
    over every unit and sample) to a (no scaling anywhere), and, for each variant, to that variant's
    test-time output."""
    x = tensor(a)
    result: dict[str, list[float]] = {"unscaled": [], "inverted": [], "classic": []}
    for p in PROBABILITIES:
        train = {"unscaled": np.zeros_like(a), "inverted": np.zeros_like(a)}
        for _ in range(masks):
            train["unscaled"] += F.dropout(x, p, training=True, scale_at_test=True, generator=generator).data
            train["inverted"] += F.dropout(x, p, training=True, scale_at_test=False, generator=generator).data
        test = {
            "inverted": F.dropout(x, p, training=False, scale_at_test=False).data,
            "classic": F.dropout(x, p, training=False, scale_at_test=True).data,
        }
        total = float(a.sum())
        result["unscaled"].append(float(train["unscaled"].sum()) / masks / total)
        result["inverted"].append(float(train["inverted"].sum()) / masks / float(test["inverted"].sum()))
        result["classic"].append(float(train["unscaled"].sum()) / masks / float(test["classic"].sum()))
    return result


def outputs(model: nn.Module, x: np.ndarray, training: bool, seed: int | None = None) -> np.ndarray:
    """The model's logits on ``x`` (float64), in eval mode or in training mode with masks from ``seed``."""
    model.train(training)
    if training:
        for module in dropouts(model):
            module.generator = np.random.default_rng(seed)
    with no_grad():
        logits = np.asarray(model(tensor(x)).data, dtype=np.float64)
    model.train()
    return logits


def same_model(model: nn.Module, x: np.ndarray) -> dict[str, float]:
    """Rewrite a net trained with the (1 − p)-at-test variant as an inverted one (the Linear after each
    dropout times 1 − p, the dropout inverted): the largest change of its logits, relative to their
    largest magnitude, at test and at training with the same masks. (Changes ``model``.)"""
    before = {"test": outputs(model, x, False), "train": outputs(model, x, True, seed=1)}
    children = list(model.children())
    for index, module in enumerate(children):
        if isinstance(module, nn.Dropout):
            following = next(m for m in children[index + 1 :] if isinstance(m, nn.Linear))
            following.weight.data *= following.weight.data.dtype.type(1 - module.p)
            module.scale_at_test = False
    after = {"test": outputs(model, x, False), "train": outputs(model, x, True, seed=1)}
    return {mode: float(np.max(np.abs(after[mode] - before[mode])) / np.max(np.abs(before[mode]))) for mode in before}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """The mean cross-entropy of the softmax of ``logits`` against the labels ``y``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-np.mean(log_probabilities[np.arange(len(y)), y]))


def ensemble(model: nn.Module, x: np.ndarray, y: np.ndarray, sizes: list[int], seed: int) -> dict[str, Any]:
    """Monte-Carlo dropout: the softmax outputs of max(sizes) sub-networks (masks drawn at test time)
    averaged over the first T, for each T in ``sizes``: accuracy, agreement of predicted labels with the
    scaled net, and the mean L1 distance of the averaged probabilities from the scaled net's."""
    scaled = softmax(outputs(model, x, False))
    model.train()
    for module in dropouts(model):
        module.generator = np.random.default_rng(seed)
    with no_grad():
        members = np.stack([softmax(np.asarray(model(tensor(x)).data, dtype=np.float64)) for _ in range(max(sizes))])
    averages = {size: members[:size].mean(axis=0) for size in sizes}
    return {
        "sizes": sizes,
        "scaled_accuracy": float(np.mean(scaled.argmax(axis=1) == y)),
        "member_accuracy": float(np.mean(members.argmax(axis=2) == y)),
        "accuracy": [float(np.mean(averages[s].argmax(axis=1) == y)) for s in sizes],
        "agreement": [float(np.mean(averages[s].argmax(axis=1) == scaled.argmax(axis=1))) for s in sizes],
        "distance": [float(np.mean(np.abs(averages[s] - scaled).sum(axis=1))) for s in sizes],
    }


def measure(context: Context) -> dict[str, Any]:
    """One seed: both variants trained from the same start; the expectation at each p; the classic
    net rewritten as an inverted one; the ensemble of the inverted net's sub-networks."""
    runs = {variant: trained(context, variant) for variant in VARIANTS}
    run, _ = runs["inverted"]
    x, y = (np.asarray(array) for array in run.splits.test.arrays)
    x = x.reshape(len(x), -1)
    generator = np.random.default_rng(context.seed)
    masks = QUICK_MASKS if context.quick else MASKS
    logits = {variant: outputs(r.model, x, False) for variant, (r, _) in runs.items()}
    classic = runs["classic"][0].model
    for module in dropouts(classic):  # inconsistent: trained without scaling, tested without scaling
        module.scale_at_test = False
    logits["unscaled"] = outputs(classic, x, False)
    for module in dropouts(classic):
        module.scale_at_test = True
    result: dict[str, Any] = {
        "expectation": expectations(first_hidden(run.model, x), masks, generator),
        "test_accuracy": {variant: float(np.mean(z.argmax(axis=1) == y)) for variant, z in logits.items()},
        "test_loss": {variant: cross_entropy(z, y) for variant, z in logits.items()},
        "agreement": float(np.mean(logits["inverted"].argmax(axis=1) == logits["classic"].argmax(axis=1))),
    }
    result["same_model"] = same_model(classic, x)
    sizes = QUICK_ENSEMBLE if context.quick else ENSEMBLE
    result["ensemble"] = ensemble(run.model, x, y, sizes, context.seed)
    return result


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    training = options(context)
    seeds = len(measured)
    masks = QUICK_MASKS if context.quick else MASKS

    def per_p(key: str) -> list[list[float]]:
        return [[seed["expectation"][key][i] for seed in measured] for i in range(len(PROBABILITIES))]

    seed_grid(
        [
            {
                "no scaling: the mean output over masks": {
                    "xlabel": "drop probability p",
                    "ylabel": "mean dropped output ÷ a",
                    "ticks": PROBABILITIES,
                    "curves": {
                        "notes: 1 − p": (PROBABILITIES, [[1 - p] for p in PROBABILITIES]),
                        "measured: mean over masks ÷ a": (PROBABILITIES, per_p("unscaled")),
                    },
                    "colors": {"notes: 1 − p": "black", "measured: mean over masks ÷ a": "C1"},
                },
                "either scaling: training mean ÷ test output": {
                    "xlabel": "drop probability p",
                    "ylabel": "training mean over masks ÷ test output",
                    "ticks": PROBABILITIES,
                    "curves": {
                        "1/(1 − p) at training (test: a)": (PROBABILITIES, per_p("inverted")),
                        "(1 − p) at test (test: (1 − p)·a)": (PROBABILITIES, per_p("classic")),
                    },
                    "references": {"consistent: 1": 1.0},
                    "note": f"({masks} masks: the spread is the masks' sampling noise)",
                },
            }
        ],
        context.path("dropout_expectation.png"),
        title=f"A dropped unit's expected output (the test set's first-layer outputs, {seeds} seeds)",
        sharey="none",
    )
    sizes = measured[0]["ensemble"]["sizes"]

    def per_size(key: str) -> list[list[float]]:
        return [[seed["ensemble"][key][i] for seed in measured] for i in range(len(sizes))]

    scaled = mean([seed["ensemble"]["scaled_accuracy"] for seed in measured])
    member = mean([seed["ensemble"]["member_accuracy"] for seed in measured])
    seed_grid(
        [
            {
                "test accuracy of the average": {
                    "xlabel": "sub-networks averaged T (log)",
                    "ylabel": "test accuracy",
                    "log_x": True,
                    "ticks": sizes,
                    "curves": {"average of T sub-networks": (sizes, per_size("accuracy"))},
                    "references": {f"scaled net: {scaled:.3f}": scaled, f"one sub-network: {member:.3f}": member},
                    "colors": {f"scaled net: {scaled:.3f}": "C2", f"one sub-network: {member:.3f}": "C3"},
                    "legend": "lower right",
                },
                "labels shared with the scaled net": {
                    "xlabel": "sub-networks averaged T (log)",
                    "ylabel": "fraction of test labels the same",
                    "log_x": True,
                    "ticks": sizes,
                    "curves": {"average of T sub-networks": (sizes, per_size("agreement"))},
                    "legend": "lower right",
                },
                "probabilities' distance from the scaled net": {
                    "xlabel": "sub-networks averaged T (log)",
                    "ylabel": "mean L1 distance of the probabilities",
                    "log_x": True,
                    "ticks": sizes,
                    "curves": {"average of T sub-networks": (sizes, per_size("distance"))},
                },
            }
        ],
        context.path("dropout_ensemble.png"),
        title=f"Dropout as an ensemble: averaging sub-networks against the scaled net (p = {P:g}, {seeds} seeds)",
        sharey="none",
    )
    seed_bars(
        {
            "test accuracy by variant": {
                "ylabel": "test accuracy",
                "bars": {
                    "1/(1 − p) at training": [s["test_accuracy"]["inverted"] for s in measured],
                    "(1 − p) at test": [s["test_accuracy"]["classic"] for s in measured],
                    "no scaling at all": [s["test_accuracy"]["unscaled"] for s in measured],
                },
            },
            "test labels the two variants share": {
                "ylabel": "fraction of test labels the same",
                "bars": {"inverted and (1 − p) at test": [s["agreement"] for s in measured]},
            },
        },
        context.path("dropout_variants.png"),
        title=f"The two consistent ways, and none ({seeds} seeds)",
    )
    expectation_error = [
        max(abs(r - (1 - p)) for r, p in zip(seed["expectation"]["unscaled"], PROBABILITIES)) for seed in measured
    ]
    consistency_error = [max(abs(r - 1) for key in VARIANTS for r in seed["expectation"][key]) for seed in measured]
    last = len(sizes) - 1
    claims = [
        Claim.judge(
            "dropout/expectation",
            "001 §Dropout",
            "With drop probability p a unit's expected output becomes (1 − p)·a.",
            f"largest |mean over {masks} masks of the dropped output ÷ a − (1 − p)| over p in "
            f"{', '.join(f'{p:g}' for p in PROBABILITIES)}",
            expectation_error,
            at_most(0.01),
        ),
        Claim.judge(
            "dropout/consistent",
            "001 §Dropout",
            "Scaling by 1/(1 − p) at training, or by (1 − p) at test, makes the expected training output equal the "
            "test output.",
            "largest |training mean over masks ÷ test output − 1|, both ways, every p",
            consistency_error,
            at_most(0.01),
        ),
        Claim.judge(
            "dropout/same-model",
            "001 §Dropout",
            "The two ways are one model: the weights after a dropout absorb the factor 1 − p.",
            "a (1 − p)-at-test net rewritten as inverted: largest change of its logits ÷ their largest magnitude, at "
            "test and at training with the same masks",
            [max(seed["same_model"].values()) for seed in measured],
            at_most(1e-5),
        ),
        Claim.judge(
            "dropout/variants-agree",
            "001 §Dropout",
            "Trained either way, the net reaches the same test accuracy.",
            f"|test accuracy, 1/(1 − p) at training − (1 − p) at test| in points (p = {P:g}; ≤ 2: within the test "
            "set's noise)",
            [100 * abs(s["test_accuracy"]["inverted"] - s["test_accuracy"]["classic"]) for s in measured],
            at_most(2),
        ),
        Claim.judge(
            "dropout/ensemble",
            "001 §Dropout",
            "Dropout is in effect ensemble learning: the average of many sub-networks predicts better than one alone.",
            f"test accuracy, average of {sizes[-1]} sub-networks (test-time masks) − one sub-network (points)",
            [100 * (s["ensemble"]["accuracy"][last] - s["ensemble"]["member_accuracy"]) for s in measured],
            above(1),
        ),
        Claim.judge(
            "dropout/scaled-is-the-average",
            "001 §Dropout",
            "The single scaled network stands in for the ensemble's average at inference.",
            f"fraction of test labels the average of {sizes[-1]} sub-networks shares with the scaled net",
            [s["ensemble"]["agreement"][last] for s in measured],
            at_least(0.99),
        ),
    ]
    table = Table(
        f"By number of sub-networks averaged (mean over {seeds} seeds)",
        ["sub-networks T", "test accuracy", "labels shared with the scaled net", "L1 distance from the scaled net"],
        [
            [size] + [mean([s["ensemble"][key][i] for s in measured]) for key in ("accuracy", "agreement", "distance")]
            for i, size in enumerate(sizes)
        ],
    )
    variants_table = Table(
        f"The variants on the test set (mean over {seeds} seeds)",
        ["variant", "test accuracy", "test loss"],
        [
            [label] + [mean([s[key][variant] for s in measured]) for key in ("test_accuracy", "test_loss")]
            for variant, label in (
                ("inverted", "1/(1 − p) at training (inverted)"),
                ("classic", "(1 − p) at test (classic)"),
                ("unscaled", "the classic net tested without its (1 − p)"),
            )
        ]
        + [
            ["one sub-network (inverted net, a test-time mask)", member, None],
            [f"the average of {sizes[-1]} sub-networks", mean([s["ensemble"]["accuracy"][-1] for s in measured]), None],
        ],
    )
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": data_description(context, training),
            "model": f"MLP 64-100-100-10, ReLU (He initialization), dropout p = {P:g} after each hidden layer",
            "training": f"Adam (lr 3e-3), batch 32, {training['epochs']} epochs, once with each variant from the same "
            "start (initial weights, batch order and masks)",
            "expectation": f"the inverted net's first hidden layer outputs a on the test set, F.dropout with {masks} "
            "masks at each p; ratios summed over every unit and sample",
            "ensemble": f"the inverted net in training mode (dropout on) on the test set, {sizes[-1]} masks; the "
            "softmax outputs of the first T averaged",
        },
        claims=claims,
        tables=[variants_table, table],
        figures=[
            Figure(
                "dropout_expectation.png",
                "The mean over masks of a dropped unit's output: without scaling it is (1 − p)·a (the dotted line is "
                "the notes' formula); inverted dropout's training mean equals its test output a, and the classic "
                f"form's equals its test output (1 − p)·a. Mean over {seeds} seeds (line), their range (band).",
            ),
            Figure(
                "dropout_ensemble.png",
                "Averaging the softmax outputs of T sub-networks (random masks at test time): its test accuracy "
                "against the scaled net's and one sub-network's (dashed), the fraction of its labels that match "
                "the scaled net's, and the L1 distance of its probabilities from the scaled net's, which levels "
                "off at the weight-scaling rule's error. Mean over the seeds (line), their range (band), each seed "
                "(dots).",
            ),
            Figure(
                "dropout_variants.png",
                "Left: test accuracy trained with inverted dropout, with the (1 − p)-at-test form, and the latter "
                "tested without its (1 − p). Right: the fraction of test labels the two trained variants share. "
                "Bars: mean over seeds, error bars their range, dots each seed.",
            ),
        ],
        results={key: [seed[key] for seed in measured] for key in measured[0]},
    )
