"""``search``: the notes' hyperparameter search — a range on a log scale, random samples trained
briefly and scored on the validation split, the range narrowed around the best, repeated — run
through ``deepgrad.search``. (Notes 001, 超参数.)

The notes' recipe: "set the hyperparameter's range on a log scale (e.g. 0.01 ~ 100); sample from it
at random and learn, evaluating the accuracy on validation data (with very few epochs); repeat,
narrowing the range by the accuracy; when it is narrow enough, pick a value from it." Here the
hyperparameter is the learning rate of plain SGD for a small MLP on digits (32 ReLU units, batch 32,
one epoch per trial, the training seed fixed within a search so that only the rate differs), drawn
from LogUniform(1e-4, 10): five decades, from far too small (nothing learnt in an epoch) to
divergent. ``random_search`` runs 3 rounds of 20 trials (serially: this measurement already runs in
a worker) and after each round narrows the range to the span of the best fifth of the trials so
far, widened by a margin (its default ``keep=0.2``).

The regime: four trials per decade in the first round. With 10 trials a round (two per decade) the
best two of the first round can both sit on one side of the optimum, and the first narrowing cuts it
out for good: tried over seeds 0–5, the range lost the fine grid's best rate in 2 of 6 searches
(seed 1: 0.02…0.1 around a best of 0.25; seed 5: 0.6…2 around 0.16); with 20 trials, or 10 with
keep 0.3, it kept it in all six. Narrowing is only as good as the round it narrows on.

Against it: a fine grid of 26 rates over the same five decades, each trained the same way, whose best
validation accuracy is the target; and, for the log scale itself, 1000 draws of LogUniform against
Uniform over the same range, counted per decade. Three searches (seeds) of their own, each with
its own grid.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from ..search import Dimension, LogUniform, TrainingObjective, Uniform, narrowed, random_search
from ..search import Report as TrialReport
from ..viz.numerics import round_panels, seed_lines
from ..viz.seeds import seed_bars
from .claims import Claim, at_least, at_most, below
from .common import Context, Figure, Report, Table, data_description, run_options

TITLE = "Hyperparameter search: log-scale samples, brief trials, validation scores, a narrowing range"
QUESTION = (
    "Does the notes' search — sample the learning rate on a log scale, train briefly, score on validation, narrow "
    "the range around the best, repeat — close in on the best rate (001)?"
)
SEEDS = 3
LOW, HIGH = 1e-4, 10.0
DECADES = round(math.log10(HIGH / LOW))
TRAINING = {"hidden": [32], "optimizer": "sgd", "momentum": 0.0, "batch_size": 32, "epochs": 1, "keep": "last"}
QUICK = {"train_size": 320}
TRIALS, ROUNDS, KEEP = 20, 3, 0.2
QUICK_TRIALS, QUICK_ROUNDS = 4, 2
GRID_PER_DECADE, QUICK_GRID_PER_DECADE = 5, 1
DRAWS = 1000  # samples per space for the per-decade count


def grid(per_decade: int) -> list[float]:
    """Rates from LOW to HIGH, ``per_decade`` of them per decade (log-spaced, both ends included)."""
    return [float(v) for v in np.logspace(math.log10(LOW), math.log10(HIGH), DECADES * per_decade + 1)]


def per_decade(values: list[float]) -> list[float]:
    """The fraction of ``values`` in each decade [LOW·10^k, LOW·10^(k+1)), the last one closed."""
    counts = [0] * DECADES
    for value in values:
        counts[min(DECADES - 1, int(math.floor(math.log10(value / LOW))))] += 1
    return [count / len(values) for count in counts]


def decades(space: dict[str, Any]) -> float:
    """The width of a range [lo, hi] in decades."""
    return math.log10(space["hi"] / space["lo"])


def measure(context: Context) -> dict[str, Any]:
    """One search (its seed): every trial (round, rate, validation accuracy), each round's range and
    the one after the last narrowing; the fine grid's validation accuracies; per-decade fractions of
    DRAWS log-uniform and uniform samples."""
    training = run_options(context, TRAINING, QUICK)
    objective = TrainingObjective(context.config(**training))
    space = {"lr": LogUniform(LOW, HIGH)}
    trials, rounds = (QUICK_TRIALS, QUICK_ROUNDS) if context.quick else (TRIALS, ROUNDS)
    study = random_search(
        objective, space, trials=trials, rounds=rounds, keep=KEEP, seed=context.seed, executor="serial"
    )
    ranges = [span(s["lr"]) for s in study.spaces]
    ranges.append(span(narrowed(study.spaces[-1], study, KEEP, rounds - 1)["lr"]))  # what a next round samples
    rates = grid(QUICK_GRID_PER_DECADE if context.quick else GRID_PER_DECADE)
    scores = [float(objective({"lr": lr}, TrialReport(len(study.trials) + k))) for k, lr in enumerate(rates)]
    rng = np.random.default_rng(context.seed)
    return {
        "trials": [
            {"round": t.round, "lr": t.params["lr"], "score": t.score if t.scored else None, "status": t.status}
            for t in sorted(study.trials.values(), key=lambda t: t.number)
        ],
        "ranges": ranges,
        "grid": {"lr": rates, "score": scores},
        "per_decade": {
            "log-uniform": per_decade([LogUniform(LOW, HIGH).sample(rng) for _ in range(DRAWS)]),
            "uniform": per_decade([Uniform(LOW, HIGH).sample(rng) for _ in range(DRAWS)]),
        },
    }


def span(dimension: Dimension) -> dict[str, float]:
    """{"lo", "hi"} of a numeric search range."""
    assert isinstance(dimension, Uniform), dimension
    return {"lo": float(dimension.lo), "hi": float(dimension.hi)}


def round_scores(seed: dict[str, Any], r: int) -> list[float]:
    return [t["score"] for t in seed["trials"] if t["round"] == r and t["score"] is not None]


def best_so_far(seed: dict[str, Any], r: int) -> tuple[float, float]:
    """(rate, score) of the best trial of rounds up to ``r``."""
    trials = [t for t in seed["trials"] if t["round"] <= r and t["score"] is not None]
    best = max(trials, key=lambda t: t["score"])
    return best["lr"], best["score"]


def grid_best(seed: dict[str, Any]) -> tuple[float, float]:
    """(rate, score) of the grid's best validation accuracy (the first of equals)."""
    i = int(np.argmax(seed["grid"]["score"]))
    return seed["grid"]["lr"][i], seed["grid"]["score"][i]


def contains(space: dict[str, float], value: float) -> bool:
    return space["lo"] <= value <= space["hi"]


def report(context: Context, measured: list[dict[str, Any]]) -> Report:
    training = run_options(context, TRAINING, QUICK)
    rounds = len(measured[0]["ranges"]) - 1
    first = measured[0]
    best_lr, best_score = grid_best(first)
    round_panels(
        [
            {
                "points": [(t["lr"], t["score"]) for t in first["trials"] if t["round"] == r],
                "range": (first["ranges"][r]["lo"], first["ranges"][r]["hi"]),
                "next": (first["ranges"][r + 1]["lo"], first["ranges"][r + 1]["hi"]),
                "best": best_so_far(first, r),
            }
            for r in range(rounds)
        ],
        context.path("search_rounds.png"),
        xlabel="learning rate (log)",
        ylabel="validation accuracy after 1 epoch",
        reference={"label": "fine grid", "xs": first["grid"]["lr"], "ys": first["grid"]["score"], "best": best_lr},
        title=f"The search of seed {context.seeds[0]}: each round's trials, its range and the next (LogUniform "
        f"{LOW:g}…{HIGH:g}, keep {KEEP:g})",
    )
    labels = [f"{LOW * 10**k:g}–{LOW * 10 ** (k + 1):g}" for k in range(DECADES)]
    seed_bars(
        {
            f"{name}({LOW:g}, {HIGH:g})": {
                "ylabel": f"fraction of {DRAWS} draws",
                "bars": {label: [seed["per_decade"][name][k] for seed in measured] for k, label in enumerate(labels)},
                "references": {f"even: 1/{DECADES}": 1 / DECADES},
            }
            for name in ("log-uniform", "uniform")
        },
        context.path("search_sampling.png"),
        title="Where the samples fall, decade by decade",
        sharey=True,
    )
    width = [[decades(seed["ranges"][r]) for seed in measured] for r in range(rounds + 1)]
    medians = [[statistics.median(round_scores(seed, r)) for seed in measured] for r in range(rounds)]
    seed_lines(
        {
            "the range, round by round": {
                "xlabel": "round (the last point: the range after the last narrowing)",
                "ylabel": "width of the range (decades)",
                "curves": {"lr range": (list(range(1, rounds + 2)), width)},
                "ticks": list(range(1, rounds + 2)),
            },
            "the trials' scores, round by round": {
                "xlabel": "round",
                "ylabel": "validation accuracy",
                "curves": {
                    "median of the round": (list(range(1, rounds + 1)), medians),
                    "best of the round": (
                        list(range(1, rounds + 1)),
                        [[max(round_scores(seed, r)) for seed in measured] for r in range(rounds)],
                    ),
                },
                "hlines": {"fine grid's best (mean)": statistics.mean(grid_best(seed)[1] for seed in measured)},
                "ticks": list(range(1, rounds + 1)),
            },
        },
        context.path("search_progress.png"),
        title=f"{len(measured)} searches: the range narrows and the trials improve",
    )
    kept = [
        sum(contains(seed["ranges"][r], grid_best(seed)[0]) for r in range(1, rounds + 1)) / rounds for seed in measured
    ]
    claims = [
        Claim.judge(
            "search/log-even",
            "001",
            "Sampling on a log scale covers every decade of the range evenly.",
            f"largest |fraction of {DRAWS} LogUniform({LOW:g}, {HIGH:g}) draws in a decade − 1/{DECADES}|",
            [max(abs(f - 1 / DECADES) for f in seed["per_decade"]["log-uniform"]) for seed in measured],
            at_most(0.05),
        ),
        Claim.judge(
            "search/uniform-top",
            "001",
            "A uniform sample of the same range puts almost everything in its top decade.",
            f"fraction of {DRAWS} Uniform({LOW:g}, {HIGH:g}) draws in {labels[-1]}",
            [seed["per_decade"]["uniform"][-1] for seed in measured],
            at_least(0.85),
        ),
        Claim.judge(
            "search/keeps-optimum",
            "001",
            "Narrowing the range around the best validation scores keeps the best rate inside it.",
            f"fraction of the {rounds} narrowed ranges that contain the best rate of a fine grid "
            f"({len(first['grid']['lr'])} rates, validation accuracy)",
            kept,
            at_least(1),
        ),
        Claim.judge(
            "search/narrows",
            "001",
            "Round by round the range narrows.",
            f"width in decades of the range after the last round ÷ the first range's ({DECADES})",
            [w / width[0][k] for k, w in enumerate(width[-1])],
            below(0.5),
        ),
        Claim.judge(
            "search/trials-improve",
            "001",
            "Trials drawn from the narrowed ranges score better: the last round's best trial beats the first round's.",
            f"best validation accuracy of round {rounds} − of round 1 (points)",
            [100 * (max(round_scores(seed, rounds - 1)) - max(round_scores(seed, 0))) for seed in measured],
            at_least(0),
        ),
        Claim.judge(
            "search/finds-best",
            "001",
            "The value the search picks is as good as the best of a fine grid.",
            "validation accuracy of the search's best trial − the fine grid's best (points)",
            [100 * (best_so_far(seed, rounds - 1)[1] - grid_best(seed)[1]) for seed in measured],
            at_least(-2),
        ),
    ]
    table = Table(
        "Per search",
        [
            "seed",
            *[f"range {r + 1}" for r in range(rounds)],
            "after the last",
            "grid's best rate",
            "its accuracy",
            "search's best rate",
            "its accuracy",
            *[f"median of round {r + 1}" for r in range(rounds)],
        ],
        [
            [
                s,
                *[f"{space['lo']:.3g}…{space['hi']:.3g}" for space in seed["ranges"]],
                *grid_best(seed),
                *best_so_far(seed, rounds - 1),
                *[statistics.median(round_scores(seed, r)) for r in range(rounds)],
            ]
            for s, seed in zip(context.seeds, measured)
        ],
    )
    trials = len([t for t in first["trials"] if t["round"] == 0])
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": data_description(context, training) + "; scores on the validation split",
            "model": f"MLP {TRAINING['hidden']} ReLU, plain SGD, batch {TRAINING['batch_size']}, "
            f"{TRAINING['epochs']} epoch per trial; the training seed is the search's",
            "search": f"deepgrad.search.random_search over lr ~ LogUniform({LOW:g}, {HIGH:g}): {rounds} rounds of "
            f"{trials} trials, keep {KEEP:g} (the best fifth of the trials so far spans the next range, widened by "
            "a margin), executor serial",
            "grid": f"{len(first['grid']['lr'])} rates log-spaced over the same range, each trained the same way",
            "sampling": f"{DRAWS} draws each of LogUniform and Uniform over {LOW:g}…{HIGH:g}, counted per decade",
        },
        claims=claims,
        tables=[table],
        figures=[
            Figure(
                "search_rounds.png",
                "One search, round by round: the trials (dots) against their rate, the range they were drawn "
                "from (shaded), the range the round narrows to for the next (hatched), the best trial so far "
                "(star); the grey line is the fine grid's validation accuracy and the dashed line its best rate.",
            ),
            Figure(
                "search_sampling.png",
                "The fraction of draws in each decade of the range, log-uniform (left) against uniform (right): "
                "the bars are the means over the seeds, the dots each seed, the dashed line an even share.",
            ),
            Figure(
                "search_progress.png",
                "Left: the width of the range in decades at each round (and after the last narrowing). Right: "
                "the median and the best validation accuracy of each round's trials, with the fine grid's best "
                "(mean over the seeds); lines are means, bands the seeds' range, dots each seed.",
            ),
        ],
        results={
            "ranges": [seed["ranges"] for seed in measured],
            "trials": [seed["trials"] for seed in measured],
            "grid": [seed["grid"] for seed in measured],
            "per_decade": [seed["per_decade"] for seed in measured],
        },
    )
