"""`deepgrad experiment input-scaling`: inputs on scales 1 and 100 make an elongated error surface;
standardizing makes it round."""

import numpy as np
from support import run_quick

from deepgrad.experiments.input_scaling import BUDGET, SCALINGS, TOLERANCE, draw


def design(x):
    return np.column_stack([x, np.ones(len(x))])


def numpy_descent_steps(x, y, alpha, tolerance, limit=200_000):
    """Plain gradient descent on the mean squared error, gradient (2/n)·Xᵀ(Xθ − y) from the data,
    counting the steps until the loss is within ``tolerance`` of the least-squares minimum."""
    X = design(x)
    lowest = np.mean((X @ np.linalg.lstsq(X, y, rcond=None)[0] - y) ** 2)
    theta = np.zeros(3)
    for step in range(limit):
        residual = X @ theta - y
        if np.mean(residual**2) - lowest <= tolerance:
            return step
        theta -= alpha * (2 / len(y)) * (X.T @ residual)
    return None


def test_input_scaling_measures_its_claims_and_numpy_agrees(tmp_path):
    done, record, report = run_quick("input-scaling", tmp_path)
    ids = [claim["id"] for claim in record["claims"]]
    assert ids == ["input-scaling/elongated", "input-scaling/round", "input-scaling/steps", "input-scaling/same-steps"]
    claims = {claim["id"]: claim for claim in record["claims"]}
    seeds = record["results"]["seeds"]
    assert len(seeds) == 2  # two seeds with --quick
    for seed, measured in enumerate(seeds):
        x, y = draw(seed)
        standardized = (x - x.mean(axis=0)) / x.std(axis=0)
        # the condition numbers, with numpy.linalg.cond of XᵀX (the Hessian 2XᵀX/n has the same κ)
        for scaling, inputs, claim in zip(SCALINGS, (x, standardized), ("elongated", "round")):
            X = design(inputs)
            expected = np.linalg.cond(X.T @ X)
            np.testing.assert_allclose(claims[f"input-scaling/{claim}"]["values"][seed], expected, rtol=1e-8)
            np.testing.assert_allclose(measured[scaling]["condition"], expected, rtol=1e-8)
        # the steps to the target, by descending in NumPy at the study's chosen rate
        steps = {}
        for scaling, inputs in zip(SCALINGS, (x, standardized)):
            steps[scaling] = numpy_descent_steps(inputs, y, measured[scaling]["alpha"], TOLERANCE)
            assert steps[scaling] is not None and abs(steps[scaling] - measured[scaling]["steps"]) <= 1, scaling
            # deepgrad's SGD over the first BUDGET steps lands where the closed form says
            np.testing.assert_allclose(
                measured[scaling]["deepgrad_budget_loss"], measured[scaling]["budget_loss"], rtol=1e-9
            )
        np.testing.assert_allclose(
            claims["input-scaling/steps"]["values"][seed], steps["raw"] / steps["standardized"], rtol=0.02
        )
        # the raw inputs' best rate sits under the steep direction's bound 2/λ_max
        assert measured["raw"]["alpha"] < measured["raw"]["stability_limit"]
    assert f"loss after {BUDGET} steps" in report and "input_scaling_surfaces.png" in report
