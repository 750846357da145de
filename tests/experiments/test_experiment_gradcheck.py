"""`deepgrad experiment gradcheck`: the difference quotient's error against the step h, backprop's
agreement with it and its cost."""

import math

import numpy as np
import pytest
from support import run_quick

from deepgrad.experiments import gradcheck
from deepgrad.experiments.common import Context

IDS = [
    "gradcheck/central-h2",
    "gradcheck/one-sided-h",
    "gradcheck/round-off",
    "gradcheck/best-step",
    "gradcheck/agrees",
    "gradcheck/catches-bug",
    "gradcheck/backprop-cheaper",
]


def test_gradcheck_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("gradcheck", tmp_path)
    claims = {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == IDS
    results = record["results"]
    steps, errors = results["steps"], results["errors"]
    assert len(errors) == 2  # two seeds with --quick
    # independent recomputation of the slope claims from the per-seed errors (NumPy's least squares)
    for name, kind, window, target in (
        ("gradcheck/central-h2", "central", (1e-4, 1e-1), 2),
        ("gradcheck/one-sided-h", "forward", (1e-4, 1e-1), 1),
        ("gradcheck/round-off", "central", (1e-12, 1e-8), -1),
    ):
        for seed, value in zip(errors, claims[name]["values"]):
            inside = [
                (math.log10(h), math.log10(e))
                for h, e in zip(steps, seed["float64"][kind])
                if window[0] <= h <= window[1]
            ]
            fitted = np.polyfit(*np.array(inside).T, 1)[0]
            assert value == pytest.approx(abs(fitted - target), abs=1e-9)
    for seed, value in zip(errors, claims["gradcheck/agrees"]["values"]):
        assert value == min(seed["float64"]["central"])
    for seed, value in zip(results["per_seed"], claims["gradcheck/backprop-cheaper"]["values"]):
        assert value == pytest.approx(seed["numerical_seconds"] / seed["backprop_seconds"], rel=1e-12)
        assert seed["forward_passes"] == 2 * seed["parameters"]
        assert seed["gradcheck_passes"] and seed["gradcheck_catches_bug"]
    assert "gradcheck_error.png" in report and "gradcheck_cost.png" in report


def numpy_loss(x, y, w1, b1, w2, b2):
    """The study's loss written in NumPy: mean cross-entropy of tanh(x W1ᵀ + b1) W2ᵀ + b2."""
    z = np.tanh(x @ w1.T + b1) @ w2.T + b2
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


def test_the_error_at_the_notes_step_is_reproduced_by_numpy_and_torch():
    """The relative error of the central difference at ε = 1e-4 depends only on the function (the
    truncation error dominates there), so NumPy's differences against torch's backprop give the
    study's number to within a few per cent."""
    torch = pytest.importorskip("torch")
    context = Context("gradcheck", ".", seed=1, quick=True)
    measured = gradcheck.measure(context)
    x, y, params = gradcheck.problem(context)
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    w1, b1, w2, b2 = tensors
    logits = torch.tanh(torch.tensor(x) @ w1.T + b1) @ w2.T + b2
    torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
    gradient = np.concatenate([t.grad.numpy().ravel() for t in tensors])
    numerical, h = [], 1e-4
    for i, p in enumerate(params):
        for j in range(p.size):
            shifted = [q.copy() for q in params]
            shifted[i].reshape(-1)[j] += h
            plus = numpy_loss(x, y, *shifted)
            shifted[i].reshape(-1)[j] -= 2 * h
            numerical.append((plus - numpy_loss(x, y, *shifted)) / (2 * h))
    error = np.linalg.norm(np.array(numerical) - gradient) / np.linalg.norm(gradient)
    assert measured["correct_error"] == pytest.approx(error, rel=0.05)
    assert measured["gradient_norm"] == pytest.approx(np.linalg.norm(gradient), rel=1e-12)
