"""``init``: does the notes' "Xavier" scale (std 1/√n) keep every layer's outputs spread, and He's
(√(2/n)) under ReLU; and does a random start break the symmetry between units? (Notes 001 权重初始值,
002 §5.6.)

The notes (001): with weights of std 1/√n, "each layer's outputs a^l_j have a distribution of the
same breadth"; ReLU needs twice the variance, std √(2/n). Notes 002 §5.6: too large weights
saturate sigmoid units, larger ranges fight vanishing signals; units that start with the same
parameters receive the same updates and stay redundant; sparse initialization (exactly k non-zero
incoming weights per unit) is offered for wide layers and said to give "stronger diversity between
units".

Part 1 (no training, the book's setting): five bias-free layers of 100 units on 1000 standard
Gaussian samples of 100 features, weights of std 1, std 0.01, the notes' Xavier 1/√n (LeCun
normal) and He √(2/n), under sigmoid, tanh and ReLU. "Spread" is measured two ways. The *pooled*
std of all outputs of a layer (units and samples together) is what the book's histograms show.
The *per-unit* std — each unit's std across the samples, averaged over the units — is what the
notes' a^l_j means and what the next layer can learn from: a unit whose output is the same for
every sample carries no information about the sample, however wide the pooled histogram (its units
can sit at different constants). They differ where it matters: under sigmoid with Xavier the
pooled std stays ≈ 0.12 while the per-unit std falls ≈ 4× per layer (the sigmoid's slope is at
most ¼, and its mean of 0.5 passes through the weights as a per-unit constant), to 0.001 at layer
5. Under tanh with Xavier and under ReLU with He each unit's spread shrinks too, but slowly (about
15 % a layer: tanh flattens large inputs; ReLU makes the outputs of different samples more alike
layer by layer, while their pooled std holds), ending near half of layer 1's at layer 5: those
claims, judged "within a factor of 2", sit at their threshold. Histograms draw the bin that
collects the values beyond the drawn range in red and say how much it holds.

Part 2 (training): an MLP 64-100-100-10 with sigmoid units on digits (Adam, 20 epochs) started
from all-zero weights, from one constant (1/fan-in, biases 0), from the notes' Xavier, and from
sparse initialization (k = 15 non-zero weights per unit, std 1/√k so a unit's input keeps the
dense init's variance). For units to stay alike the layer above must treat them alike, so the zero
and constant starts set every layer, the output layer included. After training: how different a
layer's weight rows are (the std across units of each incoming weight, over the weights' RMS), how
many distinct units a layer has (the numerical rank of its outputs on the test set), and the test
accuracy. The diversity of units at initialization (the mean |correlation| between the first
layer's units over the test digits) compares sparse with dense. On the measure tried, sparse units
are not more diverse: with k of n inputs at std 1/√k the expected squared covariance between two
units is the dense init's, term for term.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import nn
from ..tensor import no_grad, tensor
from ..train.run import build_run
from ..viz.regularization import clipped_histograms, seed_grid
from ..viz.seeds import seed_bars
from .claims import Claim, above, at_least, at_most
from .common import Context, Figure, Report, Table, data_description, run_options

TITLE = "Weight initialization: the spread of each layer's outputs, per unit and pooled; symmetry and sparse init"
QUESTION = (
    "Does the notes' Xavier scale 1/√n keep every layer's outputs equally spread — per unit, across samples — "
    "and He's √(2/n) under ReLU (001 权重初始值), and does a random start break the symmetry between units "
    "where a zero or constant one cannot (002 §5.6)?"
)
SEEDS = 3

LAYERS, WIDTH, SAMPLES = 5, 100, 1000
QUICK_SAMPLES = 200
INITS = {
    "std1": lambda n: 1.0,
    "std0.01": lambda n: 0.01,
    "xavier": lambda n: 1 / math.sqrt(n),
    "he": lambda n: math.sqrt(2 / n),
}
INIT_LABELS = {"std1": "std 1", "std0.01": "std 0.01", "xavier": "Xavier 1/√n", "he": "He √(2/n)"}
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
BOUNDS = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
SATURATION_MARGIN = 0.02  # an output this close to a bound of sigmoid/tanh is saturated
BINS = 40
RELU_RANGE = 4.0  # a ReLU row's histograms span 0 .. this many times its layer-1 pooled std

STARTS = {"zero": "all zero", "constant": "constant 1/fan-in", "random": "Xavier 1/√n", "sparse": "sparse k = 15"}
SPARSE_K = 15
TRAINING = {"hidden": [100, 100], "activation": "sigmoid", "init": "lecun", "epochs": 20, "keep": "last"}
QUICK = {"train_size": 320, "epochs": 2}
RANK_TOLERANCE = 1e-3  # singular values below this fraction of the largest one do not count


def options(context: Context) -> dict[str, Any]:
    return run_options(context, TRAINING, QUICK)


# -- part 1: the outputs of five layers at initialization ------------------------------------------


def layer_outputs(x: np.ndarray, activation: str, std: float, generator: np.random.Generator) -> list[np.ndarray]:
    """The activation outputs of LAYERS bias-free Linear(WIDTH, WIDTH) layers (float64) on ``x``."""
    outputs, h = [], tensor(x)
    with no_grad():
        for _ in range(LAYERS):
            linear = nn.Linear(WIDTH, WIDTH, bias=False, dtype=np.float64)
            nn.init.normal_(linear.weight, 0.0, std, generator=generator)
            h = ACTIVATIONS[activation]()(linear(h))
            outputs.append(np.asarray(h.data, dtype=np.float64))
    return outputs


def histogram(values: np.ndarray, low: float, high: float, drop_zeros: bool) -> dict[str, Any]:
    """Fractions of ``values`` in BINS bins over [low, high]; the values beyond are counted in the end
    bins and reported as ``below``/``above``; with ``drop_zeros`` exact zeros are left out (``zeros``)."""
    flat = values.ravel()
    zeros = float(np.mean(flat == 0)) if drop_zeros else 0.0
    kept = flat[flat != 0] if drop_zeros else flat
    edges = np.linspace(low, high, BINS + 1)
    counts = np.histogram(np.clip(kept, low, high), bins=edges)[0]
    return {
        "edges": [float(e) for e in edges],
        "fractions": (counts / flat.size).tolist(),
        "below": float(np.sum(kept < low) / flat.size),
        "above": float(np.sum(kept > high) / flat.size),
        "zeros": zeros,
    }


def measure_spread(context: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per (activation, init) and layer: pooled std, per-unit std across samples, saturated and dead
    fractions; and each layer's histogram."""
    generator = np.random.default_rng(context.seed)
    x = generator.standard_normal((QUICK_SAMPLES if context.quick else SAMPLES, WIDTH))
    spread, histograms = {}, {}
    for activation in ACTIVATIONS:
        for init, std_of in INITS.items():
            outputs = layer_outputs(x, activation, std_of(WIDTH), generator)
            key = f"{activation}/{init}"
            pooled = [float(a.std()) for a in outputs]
            spread[key] = {
                "pooled": pooled,
                "per_unit": [float(a.std(axis=0).mean()) for a in outputs],
                "saturated": [saturated(a, activation) for a in outputs],
                "dead": [float(np.mean(np.all(a == 0, axis=0))) for a in outputs],
            }
            low, high = BOUNDS.get(activation, (0.0, RELU_RANGE * pooled[0]))
            histograms[key] = [histogram(a, low, high, drop_zeros=activation == "relu") for a in outputs]
    return spread, histograms


def saturated(outputs: np.ndarray, activation: str) -> float | None:
    """Fraction of sigmoid/tanh outputs within SATURATION_MARGIN of a bound (None for ReLU)."""
    if activation not in BOUNDS:
        return None
    low, high = BOUNDS[activation]
    return float(np.mean((outputs < low + SATURATION_MARGIN) | (outputs > high - SATURATION_MARGIN)))


# -- part 2: symmetry and sparse initialization, trained ---------------------------------------------


def linears(model: nn.Module) -> list[nn.Linear]:
    return [module for module in model.modules() if isinstance(module, nn.Linear)]


def start_from(model: nn.Module, start: str, generator: np.random.Generator) -> None:
    """Re-initialize ``model``'s Linear layers as ``start`` says (the run's build made them random)."""
    layers = linears(model)
    for index, layer in enumerate(layers):
        hidden = index < len(layers) - 1
        if start == "zero":
            nn.init.zeros_(layer.weight)
        elif start == "constant":
            nn.init.constant_(layer.weight, 1.0 / layer.in_features)
        elif start == "sparse" and hidden:
            nn.init.sparse_(layer.weight, k=SPARSE_K, std=1 / math.sqrt(SPARSE_K), generator=generator)
        if start in ("zero", "constant") and layer.bias is not None:
            nn.init.zeros_(layer.bias)


def row_spread(weight: np.ndarray) -> float:
    """How different a layer's units are: the std across units (rows) of each incoming weight,
    averaged over the inputs, over the RMS of the weights (0: every row the same)."""
    w = np.asarray(weight, dtype=np.float64)
    rms = math.sqrt(float(np.mean(w**2)))
    return float(w.std(axis=0).mean() / rms) if rms else 0.0


def numerical_rank(outputs: np.ndarray) -> int:
    """The number of distinct directions in a layer's outputs over the samples (centred): singular
    values above RANK_TOLERANCE of the largest."""
    singular = np.linalg.svd(outputs - outputs.mean(axis=0), compute_uv=False)
    return int(np.sum(singular > RANK_TOLERANCE * singular[0])) if singular[0] > 0 else 0


def hidden_outputs(model: nn.Module, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(pre-activations, outputs) of every hidden layer of the mlp ``model`` on ``x``, in eval mode."""
    pre, post, h = [], [], tensor(x)
    activation = ACTIVATIONS[str(TRAINING["activation"])]
    model.eval()
    with no_grad():
        for module in model.children():  # the mlp preset: a Sequential of Flatten, Linear, activation, ...
            h = module(h)
            if isinstance(module, nn.Linear):
                pre.append(np.asarray(h.data, dtype=np.float64))
            elif isinstance(module, activation):
                post.append(np.asarray(h.data, dtype=np.float64))
    model.train()
    return pre[: len(post)], post


def mean_abs_correlation(values: np.ndarray) -> float:
    """The mean |correlation| over the samples between every pair of units (columns) of ``values``."""
    live = values[:, values.std(axis=0) > 0]
    if live.shape[1] < 2:  # every unit constant (a zero start): no correlation to measure
        return math.nan
    correlation = np.corrcoef(live.T)
    return float(np.mean(np.abs(correlation[~np.eye(len(correlation), dtype=bool)])))


def measure_start(context: Context, start: str) -> dict[str, Any]:
    run = build_run(context.config(**options(context)), progress=False)
    start_from(run.model, start, np.random.default_rng(context.seed))
    layers = linears(run.model)[:-1]
    before = [np.array(layer.weight.data, dtype=np.float64) for layer in layers]
    x_test = np.asarray(run.splits.test.arrays[0]).reshape(len(run.splits.test), -1)
    pre, _ = hidden_outputs(run.model, x_test)
    summary = run.fit()
    _, post = hidden_outputs(run.model, x_test)
    return {
        "nonzero_exactly_k": float(np.mean([np.all(np.count_nonzero(w, axis=1) == SPARSE_K) for w in before])),
        "correlation_at_init": mean_abs_correlation(pre[0]),
        "row_spread": [row_spread(layer.weight.data) for layer in layers],
        "rank": [numerical_rank(outputs) for outputs in post],
        "moved": [
            math.sqrt(float(np.mean((np.asarray(layer.weight.data, dtype=np.float64) - w) ** 2)))
            for layer, w in zip(layers, before)
        ],
        "train_accuracy": summary["train_accuracy"],
        "test_accuracy": summary["test_accuracy"],
    }


def measure(context: Context) -> dict[str, Any]:
    """One seed: part 1's statistics and histograms at initialization; part 2's trained nets."""
    spread, histograms = measure_spread(context)
    starts = {start: measure_start(context, start) for start in STARTS}
    return {"spread": spread, "histograms": histograms, "starts": starts}


# -- the report ------------------------------------------------------------------------------------


def ratio(values: list[float], last: int = LAYERS - 1, first: int = 0) -> float:
    return values[last] / values[first] if values[first] else math.nan


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    training = options(context)
    seeds = len(measured)
    layers = list(range(1, LAYERS + 1))
    rows = []
    for kind, label in (
        ("pooled", "pooled std of all outputs (log)"),
        ("per_unit", "per-unit std across samples (log)"),
    ):
        rows.append(
            {
                f"{activation}: {'pooled' if kind == 'pooled' else 'per unit'}": {
                    "xlabel": "layer",
                    "ylabel": label,
                    "log_y": True,
                    "ticks": layers,
                    "curves": {
                        INIT_LABELS[init]: (
                            layers,
                            [
                                [seed["spread"][f"{activation}/{init}"][kind][i] for seed in measured]
                                for i in range(LAYERS)
                            ],
                        )
                        for init in INITS
                    },
                }
                for activation in ACTIVATIONS
            }
        )
    seed_grid(
        rows,
        context.path("init_spread.png"),
        title=f"Spread of each layer's outputs at initialization, {seeds} seeds: top pooled (the histogram's), "
        "bottom each unit's across samples",
        sharey="all",
    )
    figures = [
        Figure(
            "init_spread.png",
            "Top: the std of all outputs of a layer together (what a histogram shows); bottom: each unit's std across "
            f"the samples, averaged over the units (log scales; mean over {seeds} seeds with their range as a band). "
            "Under sigmoid with Xavier the pooled std holds at ≈ 0.12 while each unit becomes a constant.",
        )
    ]
    first = measured[0]
    for activation in ACTIVATIONS:
        grid = {}
        for init in INITS:
            stats = first["spread"][f"{activation}/{init}"]
            grid[INIT_LABELS[init]] = {
                f"layer {i + 1}": {
                    **first["histograms"][f"{activation}/{init}"][i],
                    "note": f"std {stats['pooled'][i]:.2g}, per unit {stats['per_unit'][i]:.2g}",
                }
                for i in range(LAYERS)
            }
        filename = f"init_histograms_{activation}.png"
        clipped_histograms(
            grid,
            context.path(filename),
            title=f"{activation} outputs of 5 layers at initialization (rows: weight std; seed {context.seeds[0]})",
            xlabel=f"{activation} output",
        )
        caption = (
            f"Histograms of the {activation} outputs of each layer (columns) for each initial weight scale (rows), "
            "as a fraction of all outputs; each panel notes the pooled std and the per-unit std across samples."
        )
        if activation == "relu":
            caption += (
                f" A row's range is 0 to {RELU_RANGE:g}× its layer-1 std; a red hatched end bin also holds everything "
                "beyond the range (its share is written in the panel); exact zeros are counted, not drawn."
            )
        figures.append(Figure(filename, caption))

    starts = {start: [seed["starts"][start] for seed in measured] for start in STARTS}
    seed_bars(
        {
            "weight rows after training (layer 1)": {
                "ylabel": "std across units ÷ RMS weight",
                "bars": {STARTS[s]: [r["row_spread"][0] for r in runs] for s, runs in starts.items()},
            },
            "distinct units in layer 1 (of 100)": {
                "ylabel": "numerical rank of its outputs",
                "bars": {STARTS[s]: [r["rank"][0] for r in runs] for s, runs in starts.items()},
            },
            "test accuracy after training": {
                "ylabel": "test accuracy",
                "bars": {STARTS[s]: [r["test_accuracy"] for r in runs] for s, runs in starts.items()},
                "references": {"chance": 0.1},
            },
            "units' correlation at initialization": {
                "ylabel": "mean |correlation| between units",
                "bars": {STARTS[s]: [r["correlation_at_init"] for r in starts[s]] for s in ("random", "sparse")},
            },
        },
        context.path("init_symmetry.png"),
        title=f"Sigmoid MLP 64-100-100-10 on digits from four starts, {seeds} seeds",
    )
    figures.append(
        Figure(
            "init_symmetry.png",
            "From left: how different the first hidden layer's weight rows are after training (0: all identical); "
            "how many distinct units it has (the numerical rank of its outputs on the test set); the test accuracy; "
            "and, at initialization, the mean |correlation| between its units over the test digits, dense against "
            f"sparse. Bars: mean over {seeds} seeds, error bars their range, dots each seed.",
        )
    )

    def spread_of(activation: str, init: str, kind: str = "per_unit") -> list[float]:
        return [ratio(seed["spread"][f"{activation}/{init}"][kind]) for seed in measured]

    saturated_std1 = [mean(seed["spread"]["sigmoid/std1"]["saturated"]) for seed in measured]
    vanishing = [max(ratio(seed["spread"][f"{a}/std0.01"]["per_unit"]) for a in ACTIVATIONS) for seed in measured]
    he_over_xavier = [
        seed["spread"]["relu/he"]["per_unit"][-1] / seed["spread"]["relu/xavier"]["per_unit"][-1] for seed in measured
    ]
    symmetric = [
        max(seed["starts"][s]["row_spread"][0] for s in ("zero", "constant"))
        / seed["starts"]["random"]["row_spread"][0]
        for seed in measured
    ]
    redundant = [max(seed["starts"][s]["rank"][0] for s in ("zero", "constant")) for seed in measured]
    sparse_gain = [
        100 * (seed["starts"]["sparse"]["test_accuracy"] - seed["starts"]["random"]["test_accuracy"])
        for seed in measured
    ]
    diversity = [
        seed["starts"]["random"]["correlation_at_init"] / seed["starts"]["sparse"]["correlation_at_init"]
        for seed in measured
    ]
    claims = [
        Claim.judge(
            "init/std1-saturates",
            "002 §5.6",
            "Too large initial weights (std 1) drive sigmoid units into saturation: their outputs pile up at 0 and 1.",
            f"fraction of sigmoid outputs within {SATURATION_MARGIN:g} of 0 or 1, mean over the {LAYERS} layers, std 1",
            saturated_std1,
            at_least(0.5),
        ),
        Claim.judge(
            "init/small-vanishes",
            "002 §5.6",
            "Too small initial weights (std 0.01) let the signal vanish with depth.",
            "per-unit std across samples, layer 5 ÷ layer 1, std 0.01 (the largest of sigmoid, tanh, ReLU)",
            vanishing,
            at_most(0.01),
        ),
        Claim.judge(
            "init/xavier-tanh",
            "001 §权重初始值",
            "With std 1/√n (the notes' Xavier) each layer's outputs keep the same breadth: tanh.",
            "per-unit std across samples, layer 5 ÷ layer 1, tanh, 1/√n (≥ 0.5: within a factor of 2)",
            spread_of("tanh", "xavier"),
            at_least(0.5),
        ),
        Claim.judge(
            "init/xavier-sigmoid",
            "001 §权重初始值",
            "With std 1/√n (the notes' Xavier) each layer's outputs keep the same breadth: sigmoid, per unit.",
            "per-unit std across samples, layer 5 ÷ layer 1, sigmoid, 1/√n (≥ 0.5: within a factor of 2)",
            spread_of("sigmoid", "xavier"),
            at_least(0.5),
        ),
        Claim.judge(
            "init/xavier-sigmoid-pooled",
            "001 §权重初始值",
            "With std 1/√n the sigmoid's histogram of all a layer's outputs keeps its breadth (the book's figure).",
            "pooled std of all outputs, layer 5 ÷ layer 1, sigmoid, 1/√n (≥ 0.5: within a factor of 2)",
            spread_of("sigmoid", "xavier", "pooled"),
            at_least(0.5),
        ),
        Claim.judge(
            "init/he-relu",
            "001 §权重初始值",
            "With ReLU, std √(2/n) (He) keeps each layer's outputs spread.",
            "per-unit std across samples, layer 5 ÷ layer 1, ReLU, √(2/n) (≥ 0.5: within a factor of 2)",
            spread_of("relu", "he"),
            at_least(0.5),
        ),
        Claim.judge(
            "init/relu-needs-2",
            "001 §权重初始值",
            "ReLU zeroes half its inputs, so it needs twice the variance: 1/√n lets its outputs shrink layer by layer.",
            "per-unit std across samples at layer 5, ReLU, √(2/n) ÷ 1/√n",
            he_over_xavier,
            at_least(2),
        ),
        Claim.judge(
            "init/symmetry",
            "002 §5.6",
            "Units that start with the same parameters get the same updates and stay identical (zero or constant "
            "initialization), where random initialization breaks the symmetry.",
            "spread of layer 1's weight rows after training, zero or constant start (the larger) ÷ random start",
            symmetric,
            at_most(1e-3),
        ),
        Claim.judge(
            "init/redundant",
            "002 §5.6",
            "A layer whose units stayed identical is redundant: its 100 units act as one.",
            "numerical rank of layer 1's outputs on the test set after training, zero or constant start (the larger)",
            redundant,
            at_most(1),
        ),
        Claim.judge(
            "init/sparse-k",
            "002 §5.6",
            f"Sparse initialization gives every unit exactly k non-zero incoming weights (k = {SPARSE_K}).",
            "fraction of hidden layers whose every unit has exactly k non-zero weights at initialization",
            [seed["starts"]["sparse"]["nonzero_exactly_k"] for seed in measured],
            at_least(1),
        ),
        Claim.judge(
            "init/sparse-trains",
            "002 §5.6",
            "A sparsely initialized net breaks the symmetry and trains as well as a densely initialized one.",
            f"test accuracy, sparse (k = {SPARSE_K}, std 1/√k) − Xavier 1/√n (points)",
            sparse_gain,
            at_least(-1),
        ),
        Claim.judge(
            "init/sparse-diverse",
            "002 §5.6",
            "Sparse initialization gives stronger diversity between units.",
            "mean |correlation| between layer 1's units over the test digits at initialization, dense ÷ sparse "
            "(> 1.2: a fifth less correlated)",
            diversity,
            above(1.2),
        ),
    ]
    spread_rows: list[list[Any]] = []
    for activation in ACTIVATIONS:
        for init in INITS:
            per_seed = [seed["spread"][f"{activation}/{init}"] for seed in measured]
            saturation = [mean(s["saturated"]) for s in per_seed if s["saturated"][0] is not None]
            spread_rows.append(
                [activation, INIT_LABELS[init]]
                + [mean([s["per_unit"][i] for s in per_seed]) for i in range(LAYERS)]
                + [
                    mean([s["pooled"][0] for s in per_seed]),
                    mean([s["pooled"][-1] for s in per_seed]),
                    mean(saturation) if saturation else None,
                    mean([s["dead"][-1] for s in per_seed]),
                ]
            )
    start_rows = [
        [STARTS[start]]
        + [mean([r[key][i] for r in runs]) for key in ("row_spread", "rank", "moved") for i in range(2)]
        + [mean([r["train_accuracy"] for r in runs]), mean([r["test_accuracy"] for r in runs])]
        for start, runs in starts.items()
    ]
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "part 1": f"{QUICK_SAMPLES if context.quick else SAMPLES} × {WIDTH} standard Gaussian samples through "
            f"{LAYERS} bias-free Linear({WIDTH}, {WIDTH}) layers, each followed by the activation; weights N(0, σ²) "
            "with σ = 1, 0.01, 1/√n (the notes' Xavier, LeCun normal) and √(2/n) (He); no training",
            "spread": "pooled: the std of all outputs of a layer (units and samples together); per unit: each unit's "
            "std across the samples, averaged over the units",
            "part 2": f"MLP 64-100-100-10, sigmoid, on {data_description(context, training)}; Adam (lr 3e-3), "
            f"batch 32, {training['epochs']} epochs; starts: every layer's weights and biases zero; every layer's "
            "weights 1/fan-in and biases zero; the hidden layers Xavier 1/√n; the hidden layers sparse with "
            f"k = {SPARSE_K} non-zero N(0, 1/k) weights per unit (the output layer at its default for the last two)",
            "row spread": "std across the units of each incoming weight, averaged over the inputs, ÷ the weights' RMS",
            "distinct units": f"the numerical rank of a layer's centred outputs on the test set (singular values "
            f"above {RANK_TOLERANCE:g} of the largest)",
        },
        claims=claims,
        tables=[
            Table(
                f"Spread of each layer's outputs at initialization (mean over {seeds} seeds)",
                ["activation", "init"]
                + [f"per-unit std, layer {i}" for i in layers]
                + ["pooled std, layer 1", "pooled std, layer 5", "saturated (mean over layers)", "dead units, layer 5"],
                spread_rows,
            ),
            Table(
                f"The trained MLPs by start (mean over {seeds} seeds)",
                [
                    "start",
                    "row spread, layer 1",
                    "row spread, layer 2",
                    "distinct units, layer 1",
                    "distinct units, layer 2",
                    "RMS weight change, layer 1",
                    "RMS weight change, layer 2",
                    "train accuracy",
                    "test accuracy",
                ],
                start_rows,
            ),
        ],
        figures=figures,
        results={
            "spread": [seed["spread"] for seed in measured],
            "starts": [seed["starts"] for seed in measured],
        },
    )
