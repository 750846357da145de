"""`deepgrad experiment vanishing`: the deep sigmoid net's gradient per layer against three cures,
each trained at its best rate."""

import math

import numpy as np
from support import run_quick

NETS = ("sigmoid", "relu-he", "sigmoid-bn", "residual")
CURES = ("relu-he", "sigmoid-bn", "residual")
HIDDEN = 4


def number(value):
    return math.nan if value is None else float(value)


def test_vanishing_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("vanishing", tmp_path)
    results = record["results"]
    assert set(results) == set(NETS)
    for net in NETS:
        assert len(results[net]["grad_norm"]) == 2  # two seeds with --quick
        for norms in results[net]["grad_norm"]:
            assert len(norms) == HIDDEN + 1 and all(n > 0 for n in norms)
    ids = [claim["id"] for claim in record["claims"]]
    assert ids == ["vanishing/per-layer", "vanishing/first-vs-fourth"] + [
        f"vanishing/{cure}-{kind}" for cure in CURES for kind in ("even", "learns")
    ]
    claims = {claim["id"]: claim for claim in record["claims"]}
    # independent recomputations from the per-seed numbers
    fourth_first = [norms[HIDDEN - 1] / norms[0] for norms in results["sigmoid"]["grad_norm"]]
    np.testing.assert_allclose(claims["vanishing/first-vs-fourth"]["values"], fourth_first, rtol=1e-12)
    shrink = [min(b / a for a, b in zip(n[: HIDDEN - 1], n[1:HIDDEN])) for n in results["sigmoid"]["grad_norm"]]
    np.testing.assert_allclose(claims["vanishing/per-layer"]["values"], shrink, rtol=1e-12)
    for cure in CURES:
        even = [max(n[HIDDEN - 1] / n[0], n[0] / n[HIDDEN - 1]) for n in results[cure]["grad_norm"]]
        np.testing.assert_allclose(claims[f"vanishing/{cure}-even"]["values"], even, rtol=1e-12)
        gain = [
            100 * (number(c["train_accuracy"]) - number(s["train_accuracy"]))
            for c, s in zip(results[cure]["best"], results["sigmoid"]["best"])
        ]
        np.testing.assert_allclose(claims[f"vanishing/{cure}-learns"]["values"], gain, rtol=1e-12)
    # each net's result is its rate with the lowest validation loss
    for net in NETS:
        for rates, best in zip(results[net]["rates"], results[net]["best"]):
            assert best["lr"] == min(rates, key=lambda run: float(run["val_loss"]))["lr"]
    # even after two short epochs the sigmoid net's gradient falls towards the input, the cures' do not
    assert all(ratio > 10 for ratio in fourth_first)
    assert "vanishing.png" in report and "vanishing/" in done.stdout


def test_the_sigmoid_passes_back_at_most_a_quarter():
    """σ'(z) = σ(z)(1 − σ(z)) ≤ ¼, with its maximum at z = 0: deepgrad's backward against NumPy."""
    import deepgrad as dg

    z = np.linspace(-8, 8, 801)
    x = dg.tensor(z, requires_grad=True)
    dg.sigmoid(x).sum().backward()
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(x.grad, s * (1 - s), rtol=1e-12, atol=1e-15)
    assert x.grad.max() == 0.25 and z[x.grad.argmax()] == 0
