"""`deepgrad experiment init`: the spread of each layer's outputs (pooled and per unit) under four
weight scales and three activations; symmetry breaking and sparse initialization, trained."""

import math

import numpy as np
from support import run_quick

ACTIVATIONS = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}
INITS = {
    "std1": lambda n: 1.0,
    "std0.01": lambda n: 0.01,
    "xavier": lambda n: 1 / math.sqrt(n),
    "he": lambda n: math.sqrt(2 / n),
}
STARTS = ("zero", "constant", "random", "sparse")
CLAIMS = [
    "init/std1-saturates",
    "init/small-vanishes",
    "init/xavier-tanh",
    "init/xavier-sigmoid",
    "init/xavier-sigmoid-pooled",
    "init/he-relu",
    "init/relu-needs-2",
    "init/symmetry",
    "init/redundant",
    "init/sparse-k",
    "init/sparse-trains",
    "init/sparse-diverse",
]


def numpy_spread(seed, samples, layers=5, width=100):
    """Part 1 recomputed with NumPy alone, drawing from the generator in the study's order: the
    inputs, then each (activation, init)'s five weight matrices."""
    generator = np.random.default_rng(seed)
    x = generator.standard_normal((samples, width))
    spread = {}
    for name, f in ACTIVATIONS.items():
        for init, std in INITS.items():
            h, pooled, per_unit = x, [], []
            for _ in range(layers):
                w = generator.normal(0.0, std(width), (width, width))
                h = f(h @ w.T)
                pooled.append(h.std())
                per_unit.append(h.std(axis=0).mean())
            spread[f"{name}/{init}"] = (pooled, per_unit)
    return spread


def test_init_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("init", tmp_path)
    results, claims = record["results"], {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == CLAIMS
    assert len(results["spread"]) == len(results["starts"]) == 2  # two seeds with --quick
    for seed, spread in enumerate(results["spread"]):
        assert set(spread) == {f"{a}/{i}" for a in ACTIVATIONS for i in INITS}
        # an independent recomputation of part 1 with NumPy (the quick run has 200 samples)
        for key, (pooled, per_unit) in numpy_spread(seed, 200).items():
            np.testing.assert_allclose(spread[key]["pooled"], pooled, rtol=1e-9)
            np.testing.assert_allclose(spread[key]["per_unit"], per_unit, rtol=1e-9)
        # the pooled histogram of sigmoid with Xavier stays wide while each unit becomes a constant
        sigmoid = spread["sigmoid/xavier"]
        assert sigmoid["pooled"][-1] > 0.05 and sigmoid["per_unit"][-1] < 0.01
        assert spread["relu/he"]["saturated"] == [None] * 5
    # claims recomputed from the per-seed numbers
    ratio = [s["sigmoid/xavier"]["per_unit"][-1] / s["sigmoid/xavier"]["per_unit"][0] for s in results["spread"]]
    np.testing.assert_allclose(claims["init/xavier-sigmoid"]["values"], ratio, rtol=1e-12)
    he = [s["relu/he"]["per_unit"][-1] / s["relu/xavier"]["per_unit"][-1] for s in results["spread"]]
    np.testing.assert_allclose(claims["init/relu-needs-2"]["values"], he, rtol=1e-12)
    for seed in results["starts"]:
        assert set(seed) == set(STARTS)
        for start in ("zero", "constant"):  # identical units after training, yet they moved
            assert seed[start]["rank"] == [1, 1] and seed[start]["row_spread"][0] < 1e-5
        assert seed["constant"]["moved"][0] > 0
        assert seed["random"]["rank"][0] > 50 and seed["sparse"]["nonzero_exactly_k"] == 1.0
    gain = [100 * (s["sparse"]["test_accuracy"] - s["random"]["test_accuracy"]) for s in results["starts"]]
    np.testing.assert_allclose(claims["init/sparse-trains"]["values"], gain, rtol=1e-12)
    for png in ("init_spread.png", "init_symmetry.png", "init_histograms_relu.png"):
        assert png in report
    assert "init/" in done.stdout


def test_the_relu_histogram_marks_its_clipped_bin():
    """Values beyond the drawn range are counted in the end bin and reported as such."""
    from deepgrad.experiments.init import histogram

    values = np.array([[0.0, 0.5, 1.5, 9.0], [0.0, 0.0, 3.95, 12.0]])
    h = histogram(values, 0.0, 4.0, drop_zeros=True)
    assert h["zeros"] == 3 / 8 and h["above"] == 2 / 8 and h["below"] == 0
    assert math.isclose(sum(h["fractions"]), 5 / 8) and math.isclose(h["fractions"][-1], 3 / 8)  # 3.95, 9 and 12
