"""`deepgrad experiment lr-decay`: constant against decaying rates in the noisy regime, and the
sweep of α₀ from too small to too large."""

import math

import numpy as np
from support import run_quick

SCHEDULES = ("constant", "linear-decay", "step", "cosine")
LR, FLOOR = 0.3, 0.003


def test_lr_decay_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("lr-decay", tmp_path)
    results = record["results"]
    assert len(results["schedules"]) == len(results["sweep"]) == 2  # two seeds with --quick
    for seed in results["schedules"]:
        assert set(seed) == set(SCHEDULES)
        for run in seed.values():
            assert all(math.isfinite(loss) for loss in run["train_losses"]) and 0 <= run["test_accuracy"] <= 1
    ids = [claim["id"] for claim in record["claims"]]
    assert ids == ["lr-decay/settles", "lr-decay/generalizes", "lr-decay/too-small", "lr-decay/too-large"]
    # an independent recomputation of the first claim's values from the per-seed numbers
    settles = [s["constant"]["train_loss"] / s["linear-decay"]["train_loss"] for s in results["schedules"]]
    np.testing.assert_allclose(record["claims"][0]["values"], settles, rtol=1e-12)
    # the too-large claim: the largest α₀ over the run chosen on validation
    for seed, value in zip(results["sweep"], record["claims"][3]["values"]):
        best = min(seed, key=lambda point: float(point["val_loss"]))  # a diverged run's loss is "inf"
        expected = float(seed[-1]["train_loss"]) / float(best["train_loss"])
        assert (value == "inf") if math.isinf(expected) else math.isclose(value, expected, rel_tol=1e-12)
    assert "lr_decay.png" in report and "lr_sweep.png" in report and "lr-decay/" in done.stdout


def test_the_linear_decay_is_the_notes_formula():
    """α_i = (1 − i/k)·α₀ + (i/k)·b, as LinearDecay computes it, against NumPy."""
    import deepgrad as dg
    from deepgrad.optim.lr_scheduler import LinearDecay

    k = 50
    schedule = LinearDecay(dg.optim.SGD([dg.nn.Parameter(np.zeros(1))], lr=LR), total_steps=k, final_lr=FLOOR)
    i = np.arange(k + 10)
    expected = np.where(i <= k, (1 - i / k) * LR + (i / k) * FLOOR, FLOOR)
    np.testing.assert_allclose([schedule.lr_at(int(step), LR) for step in i], expected, rtol=1e-12)
