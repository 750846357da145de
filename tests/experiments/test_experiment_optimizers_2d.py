"""`deepgrad experiment optimizers-2d`: the five optimizers' paths on the narrow bowl and the saddle,
and the notes' formulas on a constant gradient, recomputed here with NumPy and PyTorch."""

import math

import numpy as np
import pytest
from support import run_quick

FUNCTIONS, OPTIMIZERS = ("bowl", "saddle"), ("sgd", "momentum", "adagrad", "rmsprop", "adam")
STEPS = 30
SLOPE = 0.5
CLAIMS = [
    "optimizers-2d/sgd-zigzag",
    "optimizers-2d/adaptive-straight",
    "optimizers-2d/saddle",
    "optimizers-2d/terminal-velocity",
    "optimizers-2d/adagrad-decays",
    "optimizers-2d/rmsprop-bounded",
    "optimizers-2d/adam-corrected",
    "optimizers-2d/adam-uncorrected",
]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick("optimizers-2d", tmp_path_factory.mktemp("out"))


def claim(record, name):
    return next(c for c in record["claims"] if c["id"] == f"optimizers-2d/{name}")


def test_it_writes_its_files_and_claims(quick):
    done, record, report = quick
    assert [c["id"] for c in record["claims"]] == CLAIMS
    assert all(len(c["values"]) == 1 for c in record["claims"])  # deterministic: one value
    paths = record["results"]["paths"]
    assert set(paths) == {f"{f}/{opt}" for f in FUNCTIONS for opt in OPTIMIZERS}
    for values in paths.values():
        assert len(values["path"]) == STEPS + 1 and all(len(point) == 2 for point in values["path"])
    assert paths["bowl/sgd"]["path"][0] == [-7.0, 2.0] and paths["saddle/adam"]["path"][0] == [1.0, 1e-3]
    for png in ("bowl.png", "saddle.png", "laws.png"):
        assert png in report
    assert "optimizers-2d/" in done.stdout


def test_the_zigzag_recomputed_from_the_paths(quick):
    """SGD's y-step reversals and the travel ratio, from the stored paths with NumPy."""
    _, record, _ = quick
    paths = record["results"]["paths"]
    dy = np.diff(np.array(paths["bowl/sgd"]["path"])[:, 1])
    large = dy[np.abs(dy) >= 0.01 * 2.0]
    assert claim(record, "sgd-zigzag")["values"] == [int(np.sum(large[1:] * large[:-1] < 0))]

    def travel(opt):
        return np.abs(np.diff(np.array(paths[f"bowl/{opt}"]["path"])[:, 1])).sum() / 2.0

    expected = travel("sgd") / max(travel("adagrad"), travel("rmsprop"))
    assert math.isclose(claim(record, "adaptive-straight")["values"][0], expected, rel_tol=1e-9)


def torch_slope_steps(make, steps):
    """The step lengths of a torch optimizer on f(w) = SLOPE·w."""
    torch = pytest.importorskip("torch")
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = make([w])
    positions = [0.0]
    for _ in range(steps):
        optimizer.zero_grad()
        (w * SLOPE).sum().backward()
        optimizer.step()
        positions.append(w.item())
    return np.abs(np.diff(positions))


def test_the_formulas_against_pytorch(quick):
    """Momentum's terminal velocity (torch's SGD(momentum=β) takes the same steps at a constant rate),
    AdaGrad's and RMSProp's rate factor, and Adam's bias-corrected first step, from torch.optim."""
    torch = pytest.importorskip("torch")
    _, record, _ = quick
    results = record["results"]
    for run in results["momentum"]["runs"]:
        lengths = torch_slope_steps(lambda p, b=run["beta"]: torch.optim.SGD(p, lr=0.01, momentum=b), 2000)
        assert math.isclose(lengths[-1], 0.01 * SLOPE / (1 - run["beta"]), rel_tol=1e-6)
        assert math.isclose(run["ratio"], lengths[-1] / run["terminal"], rel_tol=1e-9)
    factors = {  # over the first 1000 of the study's 10⁴ steps (the curve it keeps for its figure)
        "adagrad": torch_slope_steps(lambda p: torch.optim.Adagrad(p, lr=0.1), 1000) / (0.1 * SLOPE),
        "rmsprop": torch_slope_steps(lambda p: torch.optim.RMSprop(p, lr=0.1, alpha=0.9), 1000) / (0.1 * SLOPE),
    }
    steps = [s for s in results["rates"]["steps"] if s <= 1000]
    for name, factor in factors.items():
        kept = results["rates"][name]["factor"][: len(steps)]
        np.testing.assert_allclose(kept, factor[np.array(steps) - 1], rtol=1e-6, err_msg=name)
    # AdaGrad's h = t·g²: its factor at step 10⁴ ÷ at step 10 is √(10/10⁴); RMSProp's is √(1 − ρ¹⁰)
    assert math.isclose(claim(record, "adagrad-decays")["values"][0], math.sqrt(10 / 10_000), rel_tol=1e-6)
    assert math.isclose(claim(record, "rmsprop-bounded")["values"][0], math.sqrt(1 - 0.9**10), rel_tol=1e-6)
    adam = torch_slope_steps(lambda p: torch.optim.Adam(p, lr=0.1), 100) / 0.1
    assert math.isclose(results["adam"]["first"]["corrected"], adam[0], rel_tol=1e-12)
    assert math.isclose(claim(record, "adam-corrected")["values"][0], np.abs(adam - 1).max(), rel_tol=1e-6)
    # without the correction: m/√v = (1 − β1ᵗ)/√(1 − β2ᵗ) times g/|g|
    t = np.arange(1, 101)
    uncorrected = (1 - 0.9**t) / np.sqrt(1 - 0.999**t)
    assert math.isclose(results["adam"]["first"]["uncorrected"], uncorrected[0], rel_tol=1e-6)
    expected = np.maximum(uncorrected, 1 / uncorrected).max()
    assert math.isclose(claim(record, "adam-uncorrected")["values"][0], expected, rel_tol=1e-6)
