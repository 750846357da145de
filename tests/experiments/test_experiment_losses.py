"""`deepgrad experiment losses`: squared error against cross-entropy at a confidently wrong output."""

import math

import numpy as np
import pytest
from support import run_quick

import deepgrad as dg
from deepgrad.experiments import losses

IDS = ["losses/mse-gradient-vanishes", "losses/ce-gradient-stays", "losses/ce-learns-out", "losses/ordinary-start"]


def test_losses_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("losses", tmp_path)
    claims = {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == IDS
    results = record["results"]
    offsets = results["offsets"]
    saturated, ordinary = offsets.index(10.0), offsets.index(0.0)
    # recomputed from the per-seed numbers of results.json
    for seed, value in zip(results["gradients"], claims["losses/mse-gradient-vanishes"]["values"]):
        assert value == pytest.approx(seed["squared error"][saturated] / seed["cross-entropy"][saturated], rel=1e-12)
    steps = {
        loss: [[math.inf if v is None else v for v in row] for row in rows]
        for loss, rows in results["escape_steps"].items()
    }
    for name, at in (("losses/ce-learns-out", saturated), ("losses/ordinary-start", ordinary)):
        expected = [mse / ce for mse, ce in zip(steps["squared error"][at], steps["cross-entropy"][at])]
        got = [float(v) for v in claims[name]["values"]]
        assert got == pytest.approx(expected, rel=1e-12)
    assert all(rate in losses.RATES for seed in results["rates"] for rate in seed.values())
    assert "losses.png" in report


def test_the_squared_error_gradient_is_the_softmax_jacobian_times_the_error():
    """deepgrad's gradient of the study's squared error against NumPy's closed form Jᵀ(ŷ − y), J =
    diag(ŷ) − ŷŷᵀ, and torch's autograd; at a head start of 10 it is ~1e-4 of cross-entropy's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 10))
    z[:, 3] += 10.0  # class 3 confidently predicted
    labels = np.array([0, 1, 2, 4, 5])
    y = np.eye(10)[labels]
    logits = dg.tensor(z, requires_grad=True)
    losses.squared_error(logits, dg.tensor(labels)).backward()
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    closed = np.stack([(np.diag(q) - np.outer(q, q)) @ (q - t) for q, t in zip(p, y)]) / len(z)
    np.testing.assert_allclose(logits.grad, closed, rtol=1e-10, atol=1e-20)
    theirs = torch.tensor(z, requires_grad=True)
    (0.5 * ((torch.softmax(theirs, dim=1) - torch.tensor(y)) ** 2).sum(dim=1).mean()).backward()
    np.testing.assert_allclose(logits.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-20)
    ratio = np.linalg.norm(closed, axis=1) / np.linalg.norm((p - y) / len(z), axis=1)
    assert (ratio < 1e-3).all()
