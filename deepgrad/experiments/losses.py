"""``losses``: mean squared error against cross-entropy at a saturated output — why the gradient of
one vanishes where the other's does not, and what that does to learning from a bad start. (Notes
001, 损失函数: 均方误差 and 交叉熵误差.)

The notes define both losses for a softmax output ŷ: the mean squared error ½Σ_k (ŷ_k − y_k)² and
the cross-entropy −Σ_k y_k log ŷ_k. Their gradients with respect to the logits z differ by the
softmax's Jacobian: cross-entropy's is ŷ − y (000 §2's dz), the squared error's is
J_softmax(z)ᵀ(ŷ − y), and J = diag(ŷ) − ŷŷᵀ vanishes as ŷ approaches a one-hot vector — the
softmax analogue of a sigmoid's σ'(z) factor. So when the output is *confidently wrong* the squared
error barely moves it, while cross-entropy pulls with its full |ŷ − y| ≈ √2.

The regime: a one-hidden-layer ReLU MLP (64 units, plain SGD, batch 32, 10 epochs on digits) whose
output layer's bias gives one wrong class a head start B (a random class per seed): at B = 10
every sample is assigned to that class with probability ≈ 1 − 9e^{−10}, nine in ten of them
wrongly. Nothing else of the network changes, so the same net from B = 0 is the control. Each loss
trains at its own best learning rate (of 0.1, 0.3, 1, 3: the squared error's gradients are smaller
everywhere, so it needs a larger one), chosen on the validation split from the ordinary start.
Measured: the per-sample gradient norm ‖∂L/∂z‖ at the start for every B (over the samples the head
start makes wrong), and the steps until the training accuracy first reaches 50 %.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from ..nn import Linear
from ..tensor import Tensor, no_grad, tensor
from ..train.run import EVAL_BATCH_SIZE, build_run
from ..viz.numerics import seed_lines
from .claims import Claim, above, at_least, below, mean_of
from .common import Context, Evaluations, Figure, Report, Table, data_description, run_options

TITLE = "Squared error against cross-entropy: vanishing gradients at a confidently wrong output"
QUESTION = (
    "At a saturated, confidently wrong softmax output, does the squared error's gradient vanish while "
    "cross-entropy's stays ŷ − y, so that cross-entropy learns out of a bad start much faster (001)?"
)
SEEDS = 3
TRAINING = {"hidden": [64], "optimizer": "sgd", "momentum": 0.0, "batch_size": 32, "epochs": 10, "keep": "last"}
QUICK = {"train_size": 320, "epochs": 2}
RATES = [0.1, 0.3, 1.0, 3.0]
OFFSETS = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
QUICK_OFFSETS = [0.0, 10.0]
SATURATED = 10.0
THRESHOLD = 0.5  # training accuracy whose first crossing times the escape
LOSSES = ("cross-entropy", "squared error")


def squared_error(logits: Tensor, target: Tensor) -> Tensor:
    """The notes' mean squared error of the softmax output: ½ Σ_k (ŷ_k − y_k)², averaged over the
    batch (y one-hot)."""
    one_hot = np.eye(logits.shape[1], dtype=logits.data.dtype)[np.asarray(target.data)]
    return 0.5 * ((F.softmax(logits) - tensor(one_hot)) ** 2).sum(dim=1).mean()


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(logits, target)


LOSS_FUNCTIONS = {"cross-entropy": cross_entropy, "squared error": squared_error}


class EvaluationsAt(Evaluations):
    """:class:`Evaluations` at chosen steps (and before the first and after the last)."""

    def __init__(self, splits, steps):
        super().__init__(splits)
        self.at = set(steps)

    def on_step_end(self, trainer, logs):
        if trainer.global_step in self.at:
            self.record(trainer)


def checkpoints(total: int) -> list[int]:
    """Steps 1, 2, … 10 and then about 12 % apart up to ``total``: the escape of a fast learner is
    timed to a step, a slow one's to a few per cent."""
    steps, step = list(range(1, 11)), 10.0
    while step < total:
        step *= 1.12
        steps.append(min(total, int(round(step))))
    return sorted(set(steps))


def head_start(run, wrong_class: int, offset: float) -> None:
    """Give class ``wrong_class`` a head start ``offset`` in the output layer's bias."""
    output = [module for module in run.model.modules() if isinstance(module, Linear)][-1]
    assert output.bias is not None, "the mlp's output layer has a bias"
    output.bias.data[wrong_class] += offset


def build(context: Context, training: dict[str, Any], loss: str, lr: float, wrong_class: int, offset: float, at=()):
    """The run of ``training`` at rate ``lr`` with ``loss`` and the head start (built, not fitted),
    watched by :class:`EvaluationsAt` the steps ``at``: (run, evaluations)."""
    evaluations = EvaluationsAt(["train"], at)
    run = build_run(context.config(lr=lr, **training), progress=False, callbacks=[evaluations])
    evaluations.attach(run, None)
    head_start(run, wrong_class, offset)
    run.trainer.loss_fn = LOSS_FUNCTIONS[loss]
    return run, evaluations


def start_gradients(run, wrong_class: int, offsets: list[float]) -> dict[str, list[float]]:
    """Per loss and head start, the mean per-sample ‖∂L/∂z‖ at the start over the training samples
    not of the favoured class (the ones it makes wrong). The logits are those of ``run``'s model
    (built without a head start) with each head start added: what the biased output layer gives."""
    x, y = run.splits.train.arrays[:2]
    with no_grad():
        run.model.eval()
        base = np.concatenate(
            [run.model(tensor(x[i : i + EVAL_BATCH_SIZE])).data for i in range(0, len(x), EVAL_BATCH_SIZE)]
        ).astype(np.float64)
        run.model.train()
    wrong = np.asarray(y) != wrong_class
    out: dict[str, list[float]] = {loss: [] for loss in LOSSES}
    for offset in offsets:
        shifted = base.copy()
        shifted[:, wrong_class] += offset
        for loss, function in LOSS_FUNCTIONS.items():
            z = tensor(shifted[wrong], requires_grad=True)
            (function(z, tensor(np.asarray(y)[wrong])) * int(wrong.sum())).backward()  # a sum over samples
            out[loss].append(float(np.mean(np.linalg.norm(np.asarray(z.grad), axis=1))))
    return out


def escape_step(evaluations: Evaluations) -> float:
    """The first evaluated step at which the training accuracy reaches THRESHOLD (inf: never)."""
    for step, accuracy in zip(evaluations.steps, evaluations.series("train")):
        if accuracy >= THRESHOLD:
            return float(step)
    return math.inf


def measure(context: Context) -> dict[str, Any]:
    """One seed: each loss's best rate (validation, ordinary start); the start's per-sample gradient
    norms against the head start; for each head start and loss, the training accuracy at the
    checkpoints and the step it first reaches THRESHOLD."""
    training = run_options(context, TRAINING, QUICK)
    offsets = QUICK_OFFSETS if context.quick else OFFSETS
    rng = np.random.default_rng(context.seed)
    wrong_class = int(rng.integers(10))
    rates, selection = {}, {}
    for loss in LOSSES:
        scores = []
        for lr in RATES:
            run, _ = build(context, training, loss, lr, wrong_class, 0.0)
            scores.append(run.fit()["val_accuracy"])
        selection[loss] = scores
        rates[loss] = RATES[int(np.argmax(scores))]
    start, _ = build(context, training, "cross-entropy", rates["cross-entropy"], wrong_class, 0.0)
    gradients = start_gradients(start, wrong_class, offsets)  # every run starts from these weights
    total = len(start.loaders[0]) * training["epochs"]
    runs: dict[str, list[dict[str, Any]]] = {loss: [] for loss in LOSSES}
    for offset in offsets:
        for loss in LOSSES:
            run, evaluations = build(context, training, loss, rates[loss], wrong_class, offset, checkpoints(total))
            summary = run.fit()
            runs[loss].append(
                {
                    "offset": offset,
                    "steps": evaluations.steps,
                    "train_accuracy": evaluations.series("train"),
                    "escape_step": escape_step(evaluations),
                    "val_accuracy": summary["val_accuracy"],
                }
            )
    return {
        "wrong_class": wrong_class,
        "rates": rates,
        "selection": selection,
        "offsets": offsets,
        "gradients": gradients,
        "runs": runs,
        "total_steps": total,
    }


def escape(seed: dict[str, Any], loss: str, offset: float) -> float:
    """The step this seed's ``loss`` run from head start ``offset`` first reached THRESHOLD."""
    return next(r["escape_step"] for r in seed["runs"][loss] if r["offset"] == offset)


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    training = run_options(context, TRAINING, QUICK)
    offsets = measured[0]["offsets"]
    saturated = SATURATED if SATURATED in offsets else offsets[-1]
    total = measured[0]["total_steps"]
    per_offset = {
        loss: [[seed["gradients"][loss][i] for seed in measured] for i in range(len(offsets))] for loss in LOSSES
    }
    escapes = {loss: [[escape(seed, loss, b) for seed in measured] for b in offsets] for loss in LOSSES}
    first = measured[0]
    curves = {}
    for loss in LOSSES:
        run = next(r for r in first["runs"][loss] if r["offset"] == saturated)
        curves[f"{loss} (lr {first['rates'][loss]:g})"] = (run["steps"], [[a] for a in run["train_accuracy"]])
    seed_lines(
        {
            "gradient at the start": {
                "xlabel": "head start B of the wrong class's logit",
                "ylabel": "mean per-sample ‖∂L/∂z‖ (log)",
                "log_y": True,
                "curves": {loss: (offsets, per_offset[loss]) for loss in LOSSES},
                "hlines": {"√2 = |ŷ − y| at a confident mistake": math.sqrt(2)},
                "missing": "0",
            },
            f"steps until {THRESHOLD:.0%} training accuracy": {
                "xlabel": "head start B of the wrong class's logit",
                "ylabel": "optimizer steps (log)",
                "log_y": True,
                "curves": {loss: (offsets, escapes[loss]) for loss in LOSSES},
                "hlines": {f"end of the run ({total} steps)": total},
                "missing": f"never in {total} steps",
            },
            f"from the head start B = {saturated:g} (seed {context.seeds[0]})": {
                "xlabel": "optimizer step (log)",
                "ylabel": "training accuracy",
                "log_x": True,
                "curves": curves,
                "hlines": {f"{THRESHOLD:.0%}": THRESHOLD},
            },
        },
        context.path("losses.png"),
        title=f"Softmax output, squared error against cross-entropy, each at its best rate: {len(measured)} seeds",
        width=4.6,
    )
    index = offsets.index(saturated)
    vanishing = [
        seed["gradients"]["squared error"][index] / seed["gradients"]["cross-entropy"][index] for seed in measured
    ]
    staying = [seed["gradients"]["cross-entropy"][index] / math.sqrt(2) for seed in measured]
    speedup = [escape(seed, "squared error", saturated) / escape(seed, "cross-entropy", saturated) for seed in measured]
    ordinary = [escape(seed, "squared error", 0.0) / escape(seed, "cross-entropy", 0.0) for seed in measured]
    claims = [
        Claim.judge(
            "losses/mse-gradient-vanishes",
            "001",
            "At a confidently wrong softmax output the squared error's gradient with respect to the logits vanishes.",
            f"mean per-sample ‖∂L/∂z‖ at the start, squared error ÷ cross-entropy, head start B = {saturated:g}, "
            "over the samples it makes wrong",
            vanishing,
            below(0.01),
        ),
        Claim.judge(
            "losses/ce-gradient-stays",
            "001",
            "Cross-entropy's gradient there stays ŷ − y, as large as it gets.",
            f"mean per-sample ‖∂L/∂z‖ of cross-entropy at the start ÷ √2 (|ŷ − y| at a certain mistake), B = "
            f"{saturated:g}",
            staying,
            at_least(0.95),
        ),
        Claim.judge(
            "losses/ce-learns-out",
            "001",
            "So cross-entropy learns out of a confidently wrong start much faster than the squared error.",
            f"steps until {THRESHOLD:.0%} training accuracy from B = {saturated:g}, squared error ÷ cross-entropy, "
            f"each at its best rate (inf: never within {total} steps)",
            speedup,
            above(10),
        ),
        Claim.judge(
            "losses/ordinary-start",
            "001",
            "From an ordinary start the squared error is only somewhat slower: the gap is the saturation's.",
            f"steps until {THRESHOLD:.0%} training accuracy from B = 0, squared error ÷ cross-entropy, each at its "
            "best rate",
            ordinary,
            below(5),
        ),
    ]
    table = Table(
        f"Steps until {THRESHOLD:.0%} training accuracy, and the per-sample gradient at the start (means over the "
        f"seeds; inf: a seed never got there within {total} steps)",
        [
            "head start B",
            *[f"steps, {loss}" for loss in LOSSES],
            *[f"‖∂L/∂z‖, {loss}" for loss in LOSSES],
        ],
        [
            [
                b,
                *[mean_of(escapes[loss][i]) for loss in LOSSES],
                *[mean_of(per_offset[loss][i]) for loss in LOSSES],
            ]
            for i, b in enumerate(offsets)
        ],
    )
    rates = Table(
        "Learning rates chosen on the validation split (ordinary start): validation accuracy per rate, seed by seed",
        ["seed", *[f"{loss}, lr {lr:g}" for loss in LOSSES for lr in RATES], "chosen"],
        [
            [
                s,
                *[score for loss in LOSSES for score in seed["selection"][loss]],
                ", ".join(f"{loss} {seed['rates'][loss]:g}" for loss in LOSSES),
            ]
            for s, seed in zip(context.seeds, measured)
        ],
    )
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": data_description(context, training),
            "model": f"MLP {TRAINING['hidden']} ReLU (He initialization), softmax output",
            "training": f"{training['epochs']} epochs of plain SGD, batch {training['batch_size']}; each loss at its "
            f"best rate of {', '.join(f'{r:g}' for r in RATES)} (validation accuracy from B = 0)",
            "losses": "cross-entropy (F.cross_entropy, mean over the batch) and the squared error ½Σ_k (ŷ_k − y_k)² "
            "of the softmax output, mean over the batch",
            "saturated start": "the output bias of one random wrong class raised by B in "
            f"{', '.join(f'{b:g}' for b in offsets)} (B = 10: every sample assigned to it with probability "
            "≈ 1 − 9e^−10); the rest of the net unchanged",
            "timing": f"training accuracy on the whole training split at steps 1…10 and then every ~12 %; the escape "
            f"is the first step at ≥ {THRESHOLD:.0%}",
        },
        claims=claims,
        tables=[table, rates],
        figures=[
            Figure(
                "losses.png",
                "Left: the per-sample gradient of the loss with respect to the logits at the start, against the "
                "wrong class's head start B (log scale; over the samples it makes wrong): the squared error's "
                "falls as e^−B, cross-entropy's approaches √2 = |ŷ − y|. Middle: the steps until 50 % training "
                "accuracy (log; mean line, seeds' range band, dots) — marked at the top where a seed never got "
                "there. Right: the training accuracy over the steps from the saturated start, first seed.",
            )
        ],
        results={
            "offsets": offsets,
            "rates": [seed["rates"] for seed in measured],
            "gradients": [seed["gradients"] for seed in measured],
            "escape_steps": {
                loss: [[None if math.isinf(v) else v for v in row] for row in escapes[loss]] for loss in LOSSES
            },
            "total_steps": total,
        },
    )
