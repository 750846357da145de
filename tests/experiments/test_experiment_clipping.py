"""`deepgrad experiment clipping`: a recurrent weight's product makes a cliff; SGD with and without
clipping, and at a lower rate."""

import math

import numpy as np
from support import run_quick

SETTINGS = ("unclipped", "clipped", "lower rate")


def analytic_gradient(x, y, w, u):
    """‖∇L(w, u)‖ of L = mean((u·s_w − y)²)/T, s_w = Σ_t w^(T−1−t)·x_t, in closed form (NumPy)."""
    steps = x.shape[1]
    k = np.arange(steps - 1, -1, -1)
    s = x @ w**k
    ds = x @ np.where(k > 0, k * w ** np.maximum(k - 1, 0), 0.0)
    error = u * s - y
    return math.hypot(2 * np.mean(error * u * ds) / steps, 2 * np.mean(error * s) / steps)


def test_clipping_measures_its_claims_over_seeds(tmp_path):
    from deepgrad.experiments import clipping

    done, record, report = run_quick("clipping", tmp_path)
    results = record["results"]
    assert len(results["runs"]) == len(results["sweep"]) == len(results["cliff"]) == 2  # two seeds with --quick
    ids = [claim["id"] for claim in record["claims"]]
    assert ids == [
        "clipping/cliff",
        "clipping/thrown",
        "clipping/ruins-progress",
        "clipping/prevents",
        "clipping/lower-rate",
    ]
    claims = {claim["id"]: claim for claim in record["claims"]}
    # the cliff's steepness, recomputed in closed form from the seed's sequences (the study uses autograd)
    ratios = []
    for seed, cliff in enumerate(results["cliff"]):
        x, y = clipping.sequences(seed, clipping.QUICK["train"], 0)
        below = analytic_gradient(x, y, 1 - clipping.CLIFF_AT, 1.0)
        past = analytic_gradient(x, y, 1 + clipping.CLIFF_AT, 1.0)
        np.testing.assert_allclose([cliff["grad_below_cliff"], cliff["grad_past_cliff"]], [below, past], rtol=1e-9)
        ratios.append(past / below)
    np.testing.assert_allclose(claims["clipping/cliff"]["values"], ratios, rtol=1e-9)
    # the other claims from the per-seed numbers of the three settings
    runs = results["runs"]
    lower = [float(r["lower rate"]["final_loss"]) / float(r["clipped"]["final_loss"]) for r in runs]
    np.testing.assert_allclose(claims["clipping/lower-rate"]["values"], lower, rtol=1e-12)
    converges = [float(r["clipped"]["final_loss"]) / r["clipped"]["initial_loss"] for r in runs]
    np.testing.assert_allclose(claims["clipping/prevents"]["values"], converges, rtol=1e-12)
    thrown = [
        float(r["unclipped"]["largest_move"]) / math.dist(start, (1, 1)) for r, start in zip(runs, results["start"])
    ]
    np.testing.assert_allclose(claims["clipping/thrown"]["values"], thrown, rtol=1e-12)
    for r in runs:
        assert set(r) == set(SETTINGS)
        assert r["unclipped"]["initial_loss"] == r["clipped"]["initial_loss"]  # the same start
    # clipping bounds every step by lr·c; the lower rate is the unclipped sweep's best on validation
    for sweep, r in zip(results["sweep"], runs):
        for run in sweep["clipped"]:
            assert float(run["largest_move"]) <= run["lr"] * clipping.MAX_NORM * (1 + 1e-9)
        best = min(sweep["unclipped"], key=lambda run: float(run["val_loss"]))
        assert r["lower rate"]["lr"] == best["lr"]
    assert "clipping.png" in report and "clipping_sweep.png" in report and "clipping/" in done.stdout


def test_the_recurrent_model_is_the_product_of_its_weight():
    """The model's output is Σ_t u·w^(T−1−t)·x_t and its gradient the closed form's."""
    import deepgrad as dg
    from deepgrad.experiments.clipping import Recurrent

    x = np.random.default_rng(0).standard_normal((5, 7))
    w, u = 1.05, 0.8
    model = Recurrent(w, u)
    out = model(dg.tensor(x))
    np.testing.assert_allclose(out.data, u * x @ w ** np.arange(6, -1, -1), rtol=1e-12)
    y = x.sum(axis=1)
    (((out - dg.tensor(y)) ** 2).mean() * (1 / 7)).backward()
    grad = math.hypot(float(model.w.grad[0]), float(model.u.grad[0]))
    assert math.isclose(grad, analytic_gradient(x, y, w, u), rel_tol=1e-10)
