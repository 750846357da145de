"""`deepgrad experiment minibatch-noise`: the spread of mini-batch gradients against the batch size,
and SGD leaving a saddle point where full-batch gradient descent stays; the claims recomputed."""

import math

import numpy as np
from support import run_quick

STATES = ("initial", "trained")


def test_minibatch_noise_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("minibatch-noise", tmp_path)
    ids = [claim["id"] for claim in record["claims"]]
    assert ids == [
        "minibatch-noise/noisy",
        "minibatch-noise/one-over-root-m",
        "minibatch-noise/gd-stalls",
        "minibatch-noise/sgd-escapes",
    ]
    claims = {claim["id"].split("/")[1]: claim["values"] for claim in record["claims"]}
    results = record["results"]
    assert len(results["noise"]) == len(results["saddle"]) == 2  # two seeds with --quick
    for k, noise in enumerate(results["noise"]):
        slopes = []
        for state in STATES:
            sizes, spread = np.array(noise[state]["sizes"]), np.array(noise[state]["noise"])
            assert sizes[0] == 1 and np.all(spread > 0)
            fitted = sizes <= 128
            slope = np.polyfit(np.log(sizes[fitted]), np.log(spread[fitted]), 1)[0]  # NumPy's least squares
            assert math.isclose(noise[state]["slope"], slope, rel_tol=1e-9)
            slopes.append(abs(slope + 0.5))
        assert math.isclose(claims["one-over-root-m"][k], max(slopes), rel_tol=1e-9)
        noisy = min(noise[s]["noise"][0] / noise[s]["full_norm"] for s in STATES)
        assert math.isclose(claims["noisy"][k], noisy, rel_tol=1e-12)
    for k, saddle in enumerate(results["saddle"]):
        full = saddle["full"]
        # full-batch gradient descent on x²/2 − y²/2 + y⁴/4 from (1.5, 0): y stays 0 and x = 1.5·(1 − α)ᵗ
        assert claims["gd-stalls"][k] == full["largest_y"] == 0.0
        assert math.isclose(full["final_distance"], 1.5 * 0.9**300, rel_tol=1e-9)
        assert full["escape_step"] == "inf" or math.isinf(full["escape_step"])
        slowest = max(float(saddle[str(m)]["escape_step"]) for m in (1, 4, 16, 64, 256))
        assert float(claims["sgd-escapes"][k]) == slowest
    for png in ("noise.png", "saddle.png", "escape.png"):
        assert png in report
    assert "minibatch-noise/" in done.stdout


def test_the_tilts_cancel_exactly_and_the_noise_is_the_spread_of_a_mean():
    """The saddle's data: its tilts sum to exactly zero in any order (so the full-batch gradient is ∇f
    exactly), and the study's gradient noise of a linear model is NumPy's σ/√m·√((N−m)/(N−1))."""
    import deepgrad as dg
    from deepgrad.experiments import minibatch_noise

    xi = minibatch_noise.tilts(np.random.default_rng(3))
    assert xi.shape == (1024, 2)
    for order in (np.arange(1024), np.random.default_rng(0).permutation(1024)):
        assert np.sum(xi[order], axis=0).tolist() == [0.0, 0.0]
        assert (np.ones(1024) / 1024 @ xi[order]).tolist() == [0.0, 0.0]

    # a linear softmax model: per-sample gradients by NumPy, their spread against the study's measurement
    rng = np.random.default_rng(0)
    n, features, classes = 200, 5, 3
    x = rng.standard_normal((n, features))
    y = rng.integers(0, classes, n)
    model = dg.nn.Linear(features, classes).double()
    p = np.exp(x @ model.weight.data.T + model.bias.data)
    p /= p.sum(1, keepdims=True)
    delta = p - np.eye(classes)[y]  # dL/dz of each sample
    per_sample = np.concatenate([(delta[:, :, None] * x[:, None, :]).reshape(n, -1), delta], axis=1)
    sigma = np.sqrt(np.mean(np.sum((per_sample - per_sample.mean(0)) ** 2, axis=1)))
    measured = minibatch_noise.gradient_noise(model, x, y, np.random.default_rng(1), draws=400)
    assert math.isclose(measured["full_norm"], np.linalg.norm(per_sample.mean(0)), rel_tol=1e-9)
    for m, noise in zip(measured["sizes"], measured["noise"]):
        expected = sigma / math.sqrt(m) * math.sqrt((n - m) / (n - 1))
        assert abs(noise / expected - 1) < 0.15, (m, noise, expected)  # 400 draws: about ±4 %
