"""`deepgrad experiment optimizers`: the five optimizers training one 4-hidden-layer ReLU MLP, each at
its rate chosen on the validation split; the claims recomputed from the per-seed numbers."""

import math

import numpy as np
from support import run_quick

OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
NAMES = ("SGD", "Momentum", "AdaGrad", "RMSProp", "Adam")
TARGET = 0.03


def steps_to(steps, losses):
    """NumPy: the first measured step whose training loss is at most the target (inf: never)."""
    reached = np.flatnonzero(np.asarray(losses) <= TARGET)
    return float(steps[reached[0]]) if reached.size else math.inf


def ratio(a, b):
    return math.nan if math.isinf(a) and math.isinf(b) else a / b


def same(value, expected):
    """A claim value from results.json (non-finite ones as strings) against a recomputed number."""
    value = float(value)
    if math.isnan(expected):
        return math.isnan(value)
    return value == expected if math.isinf(expected) else math.isclose(value, expected, rel_tol=1e-12)


def test_optimizers_chooses_on_validation_and_its_claims_follow(tmp_path):
    done, record, report = run_quick("optimizers", tmp_path)
    ids = [claim["id"] for claim in record["claims"]]
    assert ids == [f"optimizers/{o}-faster" for o in OPTIMIZERS[1:]] + ["optimizers/adam-default"]
    results = record["results"]
    steps, grid, chosen, curves = results["steps"], results["grid"], results["chosen"], results["curves"]
    assert len(grid) == len(chosen) == 2  # two seeds with --quick
    assert set(curves) == set(NAMES)
    for k, (seed, summary) in enumerate(zip(grid, chosen)):
        for optimizer, name in zip(OPTIMIZERS, NAMES):
            runs = [run for run in seed[optimizer] if not run["diverged"]]
            # the rate chosen is the one with the lowest validation loss (NumPy's argmin), never the test split
            best = runs[int(np.argmin([run["best_val_loss"] for run in runs]))]
            assert summary[optimizer]["lr"] == best["lr"], optimizer
            assert best["best_val_loss"] <= best["val_loss"]  # the run's lowest, its last included
            # its stored curve gives the steps to the target
            curve = [per_step[k] for per_step in curves[name]]
            assert len(curve) == len(steps) and all(math.isfinite(loss) for loss in curve)
            assert same(summary[optimizer]["steps_to_target"], steps_to(steps, curve)), optimizer
    for optimizer, claim in zip(OPTIMIZERS[1:], record["claims"]):
        expected = [ratio(float(s["sgd"]["steps_to_target"]), float(s[optimizer]["steps_to_target"])) for s in chosen]
        assert all(same(v, e) for v, e in zip(claim["values"], expected)), optimizer
    fastest = [min(float(s[o]["steps_to_target"]) for o in OPTIMIZERS) for s in chosen]
    expected = [ratio(float(s["adam_default"]["steps_to_target"]), f) for s, f in zip(chosen, fastest)]
    assert all(same(v, e) for v, e in zip(record["claims"][-1]["values"], expected))
    assert "race.png" in report and "selection.png" in report and "optimizers/" in done.stdout


def test_steps_to_the_target_and_the_ratio():
    """The study's own helpers on made-up curves: the first step at or below the target, and ratios of
    step counts that may be infinite (a target never reached)."""
    from deepgrad.experiments.optimizers import ratio as study_ratio
    from deepgrad.experiments.optimizers import steps_to as study_steps_to

    steps = [0, 10, 20, 30, 40]
    assert study_steps_to(steps, [2.3, 0.5, 0.03, 0.2, 0.01]) == 20.0  # at most the target, the first time
    assert study_steps_to(steps, [2.3, 0.5, 0.1, 0.2, 0.04]) == math.inf
    assert study_ratio(400.0, 200.0) == 2.0
    assert study_ratio(math.inf, 200.0) == math.inf  # SGD never got there: infinitely slower
    assert study_ratio(200.0, math.inf) == 0.0
    assert math.isnan(study_ratio(math.inf, math.inf))  # neither: no number
