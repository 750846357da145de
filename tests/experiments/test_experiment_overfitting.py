"""`deepgrad experiment overfitting`: 300 training samples, 7 layers; weight decay and dropout at the
strengths the validation split chooses; the same net on all the data, and a linear model."""

import math

import numpy as np
from support import run_quick

WEIGHT_DECAYS, DROPOUTS = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1], [0.1, 0.2, 0.3, 0.5]
CLAIMS = [
    "overfitting/little-data",
    "overfitting/many-parameters",
    "overfitting/weight-decay-gap",
    "overfitting/weight-decay-test",
    "overfitting/dropout-gap",
    "overfitting/dropout-test",
]


def gap(run):
    return 100 * (run["train_accuracy"] - run["test_accuracy"])


def ratio(before, after):
    return before / after if after > 0 else math.inf


def close(recorded, expected):
    return recorded == "inf" if math.isinf(expected) else math.isclose(recorded, expected, rel_tol=1e-12)


def test_overfitting_chooses_on_validation_and_judges_on_test(tmp_path):
    done, record, report = run_quick("overfitting", tmp_path)
    results, claims = record["results"], {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == CLAIMS
    assert len(results["final"]) == 2  # two seeds with --quick
    for seed, picked_decay, picked_dropout in zip(results["final"], *results["chosen"].values()):
        assert [point["value"] for point in seed["weight_decay"]] == WEIGHT_DECAYS
        assert [point["value"] for point in seed["dropout"]] == DROPOUTS
        # the strength chosen is the best on validation (ties: lower validation loss), whatever the test says
        for sweep, picked in ((seed["weight_decay"], picked_decay), (seed["dropout"], picked_dropout)):
            best = max(sweep, key=lambda point: (point["val_accuracy"], -point["val_loss"]))
            assert best["value"] == picked
        for run in [seed["none"], seed["all_data"], seed["linear"], *seed["weight_decay"], *seed["dropout"]]:
            assert 0 <= run["test_accuracy"] <= 1 and math.isfinite(run["train_loss"])
    # the claims recomputed from the per-seed numbers
    seeds = results["final"]
    chosen = {
        name: [next(p for p in s[name] if p["value"] == v) for s, v in zip(seeds, results["chosen"][name])]
        for name in ("weight_decay", "dropout")
    }
    expected = {
        "overfitting/little-data": [ratio(gap(s["none"]), gap(s["all_data"])) for s in seeds],
        "overfitting/many-parameters": [ratio(gap(s["none"]), gap(s["linear"])) for s in seeds],
        "overfitting/weight-decay-gap": [ratio(gap(s["none"]), gap(c)) for s, c in zip(seeds, chosen["weight_decay"])],
        "overfitting/dropout-gap": [ratio(gap(s["none"]), gap(c)) for s, c in zip(seeds, chosen["dropout"])],
        "overfitting/dropout-test": [
            100 * (c["test_accuracy"] - s["none"]["test_accuracy"]) for s, c in zip(seeds, chosen["dropout"])
        ],
    }
    for name, values in expected.items():
        assert all(close(r, e) for r, e in zip(claims[name]["values"], values)), name
    assert all(np.isfinite(claims["overfitting/weight-decay-test"]["values"]))
    for png in ("overfitting_curves.png", "overfitting_sweep.png", "overfitting_gaps.png"):
        assert png in report
    assert "overfitting/" in done.stdout
