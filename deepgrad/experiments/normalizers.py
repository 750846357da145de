"""``normalizers``: layer, group and weight normalization against batch norm — tiny batches, one
sample in its batch, and sequence data. (Notes 004.)

The notes: batch norm normalizes each feature over the batch (纵向, "vertically"), layer norm each
sample over its features (横向, "horizontally"); weight normalization w = g·v/‖v‖ normalizes the
weights and no activation at all. BN needs its batch to stand for the data — it fails with small
batches and on sequence-like data — while LN (and GN, which normalizes each sample over groups of
its features, and WN) do not look at the batch. Three measurements, each in the regime where the
notes' point shows:

(a) **Batch size.** The same MLP on digits (64 → 100 → 100 → 10, each hidden Linear followed by BN,
LN, GN with 10 groups, or — for WN — every Linear weight-normalized; ReLU) trained with batches of
1, 2, 4, 8 and 32 for 2 epochs each (each sample seen twice; Adam at 3e-3 for a batch of 32, scaled
by √(batch/32) so that small batches are not drowned in their own noise; every normalizer gets the
same rate at a given batch; with the same epochs a batch of 32 takes 16× fewer steps than a batch of 2,
and WN, which normalizes no activation, trains the slowest: its lower accuracy at 32 is the fewer
steps, not the batch). BN cannot train on a batch of one (one value per feature: no variance;
deepgrad refuses, as PyTorch does). Test accuracy, 3 seeds. The last incomplete batch is dropped
(a batch of 1 would stop BN).

(b) **One sample in its batch.** A Linear layer's pre-activations (float64) for 15 test digits; one
digit's normalized features when it is alone, in a batch A of 8, and in a batch B with 7 other
digits. BN (training mode) gives it other outputs in other company; LN computes them from the sample
alone. An identity: one value each (the first seed's).

(c) **Sequence data.** Sequences of 16 positions of 8 features, 4 classes; each sequence is a
"recording" with its own baseline, drift along the positions and gain (x_t = g·(p_class + noise) +
(o + r·t), the same o + r·t added to all 8 features of a position: o ~ N(0, 5²), r ~ N(0, 0.5²),
log g ~ N(0, 0.8²)) — what makes real sequences (utterances, sensor recordings) differ from one
another more than their positions do. A per-position classifier — the position's 8 features
normalized (BN over the batch, LN over the features, or not at all), Linear 8 → 32, ReLU, Linear
32 → 4 — is trained on every position (cross-entropy, Adam 1e-3, 10 epochs) in batches of 32 rows
that are either 2 whole sequences, as a sequence model is fed, or 32 rows drawn from 32 different
sequences. Test: the share of positions classified right (and of whole sequences, averaging their
positions' logits). A batch of 2 sequences holds 2 independent draws of baseline, drift and gain,
so BN's statistics follow those 2 sequences in training and the running averages at test match
none of them. Honest limits: the unnormalized network also does worse on whole-sequence batches
(their gradient is noisier), so the BN-specific part is BN's loss beyond the unnormalized one's;
LN here normalizes the inputs, where the baseline and gain live (after a Linear layer they are no
longer common to all features and LN does not remove them); the recurrent case of the notes (BN
statistics per time step, test sequences longer than any in training) is not run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import nn, optim
from ..data import DataLoader, TensorDataset
from ..random import manual_seed
from ..tensor import no_grad, tensor
from ..threads import set_num_threads
from ..train.build import EVAL_BATCH_SIZE, loss_fn, training_subset
from ..train.trainer import Trainer
from ..viz.normalization import sample_outputs
from ..viz.seeds import over_setting, seed_bars
from .claims import Claim, above, at_least, below
from .common import Context, Figure, Report, Table

TITLE = "Normalizers: layer, group and weight normalization against batch norm — tiny batches, one sample, sequences"
QUESTION = (
    "Batch norm normalizes each feature over the batch, layer norm each sample over its features: does BN "
    "degrade with tiny batches and on sequence data while LN, GN and WN do not depend on the batch, and is a "
    "sample's LN output independent of the rest of its batch (004)?"
)
SEEDS = 3
LABELS = {"none": "none", "batch": "BN", "layer": "LN", "group": "GN", "weight": "WN"}

# (a) accuracy against the batch size
NORMALIZERS = ("batch", "layer", "group", "weight")
HIDDEN = (100, 100)
GROUPS = 10
BATCHES = (1, 2, 4, 8, 32)
EPOCHS = 2
RATE = 3e-3  # Adam's rate at a batch of 32, scaled by √(batch/32)
BIG_TRAIN_SIZE = 1200  # mnist, fashion-mnist: about digits' training set
QUICK: dict[str, Any] = {"train_size": 200, "epochs": 1, "batches": (1, 2, 32)}

# (b) one sample alone and in two batches
FEATURES, BATCH_A = 16, 8
ONE_SAMPLE = ("batch", "layer", "group", "weight")

# (c) sequences
SEQUENCE: dict[str, Any] = {
    "features": 8,
    "classes": 4,
    "positions": 16,
    "hidden": 32,
    "train": 400,
    "test": 200,
    "noise": 0.8,
    "offset": 5.0,
    "drift": 0.5,
    "gain": 0.8,
    "epochs": 10,
    "lr": 1e-3,
    "sequences_per_batch": 2,
}
QUICK_SEQUENCE: dict[str, Any] = {"train": 100, "test": 100, "epochs": 2}
SEQUENCE_NORMALIZERS = ("none", "batch", "layer")
BATCHINGS = {"rows": "independent rows", "sequences": "whole sequences"}


def rate(batch: int) -> float:
    return RATE * math.sqrt(batch / 32)


def mlp(norm: str, inputs: int, classes: int) -> nn.Sequential:
    """Flatten → [Linear → norm → ReLU] per hidden width → Linear; ``norm`` "batch", "layer", "group"
    (GROUPS groups) or "weight" (every Linear weight-normalized, no activation normalized)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = inputs
    for size in HIDDEN:
        # a bias before BN is redundant (its shift β does the job); LN and GN keep it (it differs per feature)
        linear = nn.Linear(width, size, bias=norm != "batch", init="kaiming_normal")
        layers.append(nn.utils.weight_norm(linear) if norm == "weight" else linear)
        if norm == "batch":
            layers.append(nn.BatchNorm1d(size))
        elif norm == "layer":
            layers.append(nn.LayerNorm(size))
        elif norm == "group":
            layers.append(nn.GroupNorm(GROUPS, size))
        layers.append(nn.ReLU())
        width = size
    output = nn.Linear(width, classes)
    layers.append(nn.utils.weight_norm(output) if norm == "weight" else output)
    return nn.Sequential(*layers)


def train_mlp(context: Context, splits: Any, norm: str, batch: int, epochs: int) -> float | None:
    """Test accuracy of the MLP with ``norm`` trained with batches of ``batch``; None where it cannot
    train (BN with a batch of one)."""
    if norm == "batch" and batch == 1:
        return None
    manual_seed(context.seed)
    model = mlp(norm, int(np.prod(splits.input_shape)), splits.num_classes)
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=rate(batch)), loss_fn)
    trainer.fit(DataLoader(splits.train, batch, shuffle=True, drop_last=True, seed=context.seed), epochs=epochs)
    return trainer.evaluate(DataLoader(splits.test, EVAL_BATCH_SIZE))["accuracy"]


def batch_sizes(context: Context) -> dict[str, Any]:
    """(a): test accuracy per normalizer and batch size."""
    splits = context.splits()
    epochs, batches = EPOCHS, BATCHES
    if context.quick:
        splits = training_subset(splits, QUICK["train_size"])
        epochs, batches = QUICK["epochs"], QUICK["batches"]
    elif context.dataset != "digits":  # batches of one over 60 000 images would take the better part of an hour
        splits = training_subset(splits, BIG_TRAIN_SIZE)
    return {
        "batches": list(batches),
        "accuracy": {
            norm: [train_mlp(context, splits, norm, batch, epochs) for batch in batches] for norm in NORMALIZERS
        },
    }


def one_sample(context: Context) -> dict[str, Any]:
    """(b): one test digit's normalized features alone, in a batch A and in a batch B, per normalizer;
    the inputs (z) and the largest differences."""
    x = context.splits().test.arrays[0][: 2 * BATCH_A - 1]
    x = x.reshape(len(x), -1).astype(np.float64)
    manual_seed(context.seed)
    layer = nn.Linear(x.shape[1], FEATURES, init="kaiming_normal", dtype=np.float64)
    weight_normed = nn.utils.weight_norm(nn.Linear(x.shape[1], FEATURES, init="kaiming_normal", dtype=np.float64))
    with no_grad():
        z = layer(tensor(x)).data
    company = {"alone": [0], "in batch A": list(range(BATCH_A)), "in batch B": [0, *range(BATCH_A, 2 * BATCH_A - 1)]}
    modules = {
        "batch": nn.BatchNorm1d(FEATURES, dtype=np.float64),  # training mode: the batch's statistics
        "layer": nn.LayerNorm(FEATURES, dtype=np.float64),
        "group": nn.GroupNorm(4, FEATURES, dtype=np.float64),
    }
    outputs: dict[str, dict[str, list[float] | None]] = {}
    with no_grad():
        for norm in ONE_SAMPLE:
            outputs[norm] = {}
            for name, rows in company.items():
                if norm == "batch" and len(rows) == 1:
                    outputs[norm][name] = None  # no variance over one sample: BN refuses it in training mode
                elif norm == "weight":
                    outputs[norm][name] = weight_normed(tensor(x[rows])).data[0].tolist()
                else:
                    outputs[norm][name] = modules[norm](tensor(z[rows])).data[0].tolist()
    differences = {
        norm: {
            "batches": largest_difference(out["in batch A"], out["in batch B"]),
            "alone": None if out["alone"] is None else largest_difference(out["alone"], out["in batch A"]),
        }
        for norm, out in outputs.items()
    }
    return {
        "z_a": z[company["in batch A"]].tolist(),
        "z_b": z[company["in batch B"]].tolist(),
        "outputs": outputs,
        "differences": differences,
    }


def largest_difference(a: Any, b: Any) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def draw_sequences(
    generator: np.random.Generator, prototypes: np.ndarray, count: int, setting: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` sequences (count, positions, features) as float32, and their classes: each with its own
    baseline o, drift r per position and gain g, x_t = g·(p_class + noise) + (o + r·t) on every feature."""
    positions, features = setting["positions"], setting["features"]
    classes = generator.integers(0, setting["classes"], count)
    offset = setting["offset"] * generator.standard_normal(count)
    drift = setting["drift"] * generator.standard_normal(count)
    gain = np.exp(setting["gain"] * generator.standard_normal(count))
    noise = setting["noise"] * generator.standard_normal((count, positions, features))
    baseline = offset[:, None] + drift[:, None] * np.arange(positions)
    x = gain[:, None, None] * (prototypes[classes][:, None, :] + noise) + baseline[:, :, None]
    return x.astype(np.float32), classes


class SequenceBatches:
    """Batches of the rows of ``per_batch`` whole sequences at a time (all their positions), the
    sequences' order reshuffled every epoch: how a sequence model is fed."""

    def __init__(self, x: np.ndarray, y: np.ndarray, per_batch: int, seed: int):
        self.x, self.y, self.per_batch, self.seed, self.epoch = x, y, per_batch, seed, 0

    def __len__(self) -> int:
        return len(self.x) // self.per_batch

    def __iter__(self) -> Any:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.x))
        self.epoch += 1
        positions, features = self.x.shape[1:]
        for batch in range(len(self)):
            chosen = order[batch * self.per_batch : (batch + 1) * self.per_batch]
            yield tensor(self.x[chosen].reshape(-1, features)), tensor(np.repeat(self.y[chosen], positions))


def sequence_model(norm: str, setting: dict[str, Any]) -> nn.Sequential:
    """Per position: its features normalized ("batch": over the batch's rows; "layer": over the
    position's features; "none"), Linear, ReLU, Linear."""
    features = setting["features"]
    first: list[nn.Module] = []
    if norm == "batch":
        first.append(nn.BatchNorm1d(features))
    elif norm == "layer":
        first.append(nn.LayerNorm(features))
    return nn.Sequential(
        *first, nn.Linear(features, setting["hidden"]), nn.ReLU(), nn.Linear(setting["hidden"], setting["classes"])
    )


def sequences(context: Context) -> dict[str, Any]:
    """(c): per normalizer and batching, the share of test positions and of test sequences classified right."""
    setting = {**SEQUENCE, **(QUICK_SEQUENCE if context.quick else {})}
    generator = np.random.default_rng((context.seed, 3))
    prototypes = generator.standard_normal((setting["classes"], setting["features"]))
    x, y = draw_sequences(generator, prototypes, setting["train"], setting)
    test_x, test_y = draw_sequences(generator, prototypes, setting["test"], setting)
    positions, features = setting["positions"], setting["features"]
    rows = TensorDataset(x.reshape(-1, features), np.repeat(y, positions))
    test_rows = TensorDataset(test_x.reshape(-1, features), np.repeat(test_y, positions))
    per_batch = setting["sequences_per_batch"]
    results: dict[str, dict[str, dict[str, float]]] = {}
    for norm in SEQUENCE_NORMALIZERS:
        results[norm] = {}
        for batching in BATCHINGS:
            loader: Any = (
                DataLoader(rows, per_batch * positions, shuffle=True, drop_last=True, seed=context.seed)
                if batching == "rows"
                else SequenceBatches(x, y, per_batch, context.seed)
            )
            manual_seed(context.seed)
            model = sequence_model(norm, setting)
            trainer = Trainer(model, optim.Adam(model.parameters(), lr=setting["lr"]), loss_fn)
            trainer.fit(loader, epochs=setting["epochs"])
            logits = trainer.predict(test_rows.arrays[0]).reshape(len(test_x), positions, -1)
            results[norm][batching] = {
                "positions": float(np.mean(logits.argmax(axis=2) == test_y[:, None])),
                "sequences": float(np.mean(logits.mean(axis=1).argmax(axis=1) == test_y)),
            }
    return results


def measure(context: Context) -> dict[str, Any]:
    """One seed: (a) accuracy per normalizer and batch size, (b) one sample's outputs, (c) sequences."""
    set_num_threads(1)
    return {"batch_sizes": batch_sizes(context), "one_sample": one_sample(context), "sequences": sequences(context)}


def points(value: float | None) -> float:
    """An accuracy in percentage points (NaN where it could not be measured)."""
    return math.nan if value is None else 100 * value


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    batches = measured[0]["batch_sizes"]["batches"]
    accuracy = {
        norm: [[points(seed["batch_sizes"]["accuracy"][norm][i]) for seed in measured] for i in range(len(batches))]
        for norm in NORMALIZERS
    }  # norm -> per batch size -> per seed
    large, small, smallest = batches.index(max(batches)), batches.index(2), batches.index(1)
    bn_drop = [a - b for a, b in zip(accuracy["batch"][large], accuracy["batch"][small])]
    free_drop = [
        max(accuracy[norm][large][s] - accuracy[norm][smallest][s] for norm in NORMALIZERS if norm != "batch")
        for s in range(len(measured))
    ]
    sample = measured[0]["one_sample"]
    sequence = [seed["sequences"] for seed in measured]
    per_position = {
        (norm, batching): [100 * seed[norm][batching]["positions"] for seed in sequence]
        for norm in SEQUENCE_NORMALIZERS
        for batching in BATCHINGS
    }
    ln_over_bn = [a - b for a, b in zip(per_position["layer", "sequences"], per_position["batch", "sequences"])]
    drop = {
        norm: [a - b for a, b in zip(per_position[norm, "rows"], per_position[norm, "sequences"])]
        for norm in SEQUENCE_NORMALIZERS
    }
    bn_beyond_none = [a - b for a, b in zip(drop["batch"], drop["none"])]
    claims = [
        Claim.judge(
            "normalizers/small-batch",
            "004",
            "Batch norm degrades with tiny batches: its statistics come from the few samples of the batch.",
            f"test accuracy of the BN MLP, batch {batches[large]} − batch 2 (points; {EPOCHS} epochs each)",
            bn_drop,
            at_least(5),
        ),
        Claim.judge(
            "normalizers/batch-free",
            "004",
            "Layer, group and weight normalization do not depend on the batch: they train as well with a batch of one.",
            f"the largest loss of test accuracy among LN, GN and WN, batch {batches[large]} − batch 1 (points)",
            free_drop,
            below(5),
        ),
        Claim.judge(
            "normalizers/bn-batch-dependent",
            "004",
            "Batch norm normalizes each feature over the batch (纵向): one sample's output changes with the "
            "rest of its batch.",
            f"largest |BN output in batch A − in batch B| over a digit's {FEATURES} normalized features (training "
            "mode, float64; the output has unit spread)",
            [sample["differences"]["batch"]["batches"]],
            above(0.1),
        ),
        Claim.judge(
            "normalizers/ln-per-sample",
            "004",
            "Layer norm normalizes each sample over its features (横向): its output for a sample alone is its "
            "output in any batch.",
            f"largest |LN output alone − in a batch of {BATCH_A}| over a digit's {FEATURES} features (float64)",
            [sample["differences"]["layer"]["alone"]],
            below(1e-12),
        ),
        Claim.judge(
            "normalizers/sequences",
            "004",
            "On sequence data batch norm fails where layer norm does not.",
            "share of test positions classified right, LN − BN (points), both trained on batches of 2 whole "
            "sequences, each sequence with its own baseline, drift and gain",
            ln_over_bn,
            at_least(10),
        ),
        Claim.judge(
            "normalizers/sequence-statistics",
            "004",
            "It is BN's statistics that fail: a batch of whole sequences holds only a few independent samples.",
            "drop of BN's test accuracy per position from independent-row batches to whole-sequence batches, beyond "
            "the unnormalized network's drop (points)",
            bn_beyond_none,
            at_least(5),
        ),
    ]
    draw_batch_sizes(context, batches, accuracy, len(measured))
    draw_one_sample(context, sample)
    draw_sequences_figure(context, sequence)
    mean = lambda values: math.fsum(values) / len(values)  # noqa: E731
    tables = [
        Table(
            f"(a) Test accuracy (%) against the batch size, mean over {len(measured)} seeds",
            ["normalizer", *[f"batch {b}" for b in batches]],
            [
                [LABELS[norm], *[None if any(map(math.isnan, v)) else mean(v) for v in accuracy[norm]]]
                for norm in NORMALIZERS
            ],
        ),
        Table(
            f"(b) One digit's normalized features: largest difference (seed {context.seeds[0]})",
            ["normalizer", "in batch A − in batch B", "alone − in batch A"],
            [
                [LABELS[norm], sample["differences"][norm]["batches"], sample["differences"][norm]["alone"]]
                for norm in ONE_SAMPLE
            ],
        ),
        Table(
            f"(c) Sequences: test accuracy (%), mean over {len(measured)} seeds",
            ["normalizer", "batches of", "positions right", "sequences right"],
            [
                [
                    LABELS[norm],
                    BATCHINGS[batching],
                    mean(per_position[norm, batching]),
                    mean([100 * seed[norm][batching]["sequences"] for seed in sequence]),
                ]
                for norm in SEQUENCE_NORMALIZERS
                for batching in BATCHINGS
            ],
        ),
    ]
    setting = {**SEQUENCE, **(QUICK_SEQUENCE if context.quick else {})}
    epochs = QUICK["epochs"] if context.quick else EPOCHS
    train_size = QUICK["train_size"] if context.quick else None if context.dataset == "digits" else BIG_TRAIN_SIZE
    subset = f" (first {train_size} training samples)" if train_size else ""
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "batch size": f"MLP {list(HIDDEN)} ReLU on {context.dataset}{subset}, each hidden Linear followed by "
            f"BN, LN or GN ({GROUPS} groups), or every Linear weight-normalized; "
            f"batches of {', '.join(map(str, batches))}, {epochs} epochs each, Adam at {RATE:g}·√(batch/32); "
            "the last incomplete batch dropped",
            "one sample": f"a Linear layer's {FEATURES} pre-activations (float64) for {2 * BATCH_A - 1} test "
            f"digits; the first alone, in a batch A with the next {BATCH_A - 1}, in a batch B with the "
            f"{BATCH_A - 1} after those (GN: 4 groups; WN: a weight-normalized Linear on the pixels)",
            "sequences": f"{setting['train']} training and {setting['test']} test sequences of "
            f"{setting['positions']} positions × {setting['features']} features, {setting['classes']} classes; "
            f"x_t = g·(p_class + N(0, {setting['noise']:g}²)) + o + r·t with o ~ N(0, {setting['offset']:g}²), "
            f"r ~ N(0, {setting['drift']:g}²), log g ~ N(0, {setting['gain']:g}²) per sequence; per position: "
            f"normalization of the features, Linear → {setting['hidden']}, ReLU, Linear; Adam {setting['lr']:g}, "
            f"{setting['epochs']} epochs, batches of {setting['sequences_per_batch'] * setting['positions']} rows "
            f"= {setting['sequences_per_batch']} whole sequences, or as many rows from different sequences",
        },
        claims=claims,
        tables=tables,
        figures=[
            Figure(
                "normalizers_batch_size.png",
                "(a) Test accuracy against the batch size for each normalizer: the mean over the seeds (line), "
                "their range (band), each seed (dots). BN cannot train on a batch of one.",
            ),
            Figure(
                "normalizers_one_sample.png",
                "(b) One digit's normalized features alone and in two different batches: BN's (training mode) "
                "move with the company; LN's are the same wherever the digit is.",
            ),
            Figure(
                "normalizers_sequences.png",
                "(c) Sequences: test accuracy per position and per sequence, trained on batches of independent rows "
                "or of 2 whole sequences; bars are the mean over the seeds, whiskers their range, dots each seed.",
            ),
        ],
        results={
            "batches": batches,
            "accuracy": {norm: [seed["batch_sizes"]["accuracy"][norm] for seed in measured] for norm in NORMALIZERS},
            "one_sample": sample,
            "sequences": sequence,
        },
    )


def draw_batch_sizes(context: Context, batches: list[int], accuracy: dict[str, Any], seeds: int) -> None:
    curves = {}
    for norm in NORMALIZERS:
        kept = [i for i, values in enumerate(accuracy[norm]) if not any(map(math.isnan, values))]
        curves[LABELS[norm]] = ([batches[i] for i in kept], [accuracy[norm][i] for i in kept])
    over_setting(
        {
            "test accuracy against the batch size": {
                "xlabel": "batch size (log)",
                "ylabel": "test accuracy (%)",
                "log_x": True,
                "ticks": batches,
                "curves": curves,
                "references": {"chance (10 %)": 10.0},
                "marks": {"BN: no batch of 1\n(one value per feature)": (1, 10.0)},
            }
        },
        context.path("normalizers_batch_size.png"),
        title=f"The same MLP with each normalizer, {seeds} seeds",
    )


def draw_one_sample(context: Context, sample: dict[str, Any]) -> None:
    panels = {}
    for norm, title in (
        ("batch", "batch norm, training mode: over the batch"),
        ("layer", "layer norm: over the features"),
    ):
        panels[title] = {name: values for name, values in sample["outputs"][norm].items() if values is not None}
    sample_outputs(
        panels,
        context.path("normalizers_one_sample.png"),
        title="One digit's normalized features: alone, in batch A, in batch B",
        notes={
            "batch norm, training mode: over the batch": "alone: impossible (no variance over one sample)",
        },
    )


def draw_sequences_figure(context: Context, sequence: list[dict[str, Any]]) -> None:
    panels = {}
    for unit in ("positions", "sequences"):
        panels[f"test {unit}"] = {
            "ylabel": f"{unit} classified right (%)",
            "bars": {
                f"{LABELS[norm]} · {BATCHINGS[batching]}": [100 * seed[norm][batching][unit] for seed in sequence]
                for norm in SEQUENCE_NORMALIZERS
                for batching in BATCHINGS
            },
            "references": {"chance (25 %)": 25.0} if unit == "positions" else {},
        }
    seed_bars(
        panels,
        context.path("normalizers_sequences.png"),
        title="Sequences with their own baseline, drift and gain: batches of independent rows or of 2 whole sequences",
        sharey=True,
    )
