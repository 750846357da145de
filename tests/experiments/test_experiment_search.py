"""`deepgrad experiment search`: the log-scale search narrowing its range, against a fine grid."""

import math

import numpy as np
import pytest
from support import run_quick

IDS = [
    "search/log-even",
    "search/uniform-top",
    "search/keeps-optimum",
    "search/narrows",
    "search/trials-improve",
    "search/finds-best",
]
LOW, HIGH = 1e-4, 10.0


def test_search_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("search", tmp_path)
    claims = {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == IDS
    results = record["results"]
    assert len(results["trials"]) == 2  # two seeds with --quick
    for ranges, trials, grid in zip(results["ranges"], results["trials"], results["grid"]):
        for trial in trials:  # every trial was drawn from its round's range
            space = ranges[trial["round"]]
            assert space["lo"] <= trial["lr"] <= space["hi"]
        for before, after in zip(ranges, ranges[1:]):  # narrowing stays within the original range
            assert LOW <= after["lo"] <= after["hi"] <= HIGH and (after["lo"], after["hi"]) != (
                before["lo"],
                before["hi"],
            )
        assert len(grid["lr"]) == len(grid["score"]) and all(0 <= s <= 1 for s in grid["score"])
    # independent recomputation (NumPy) of three claims from the per-seed numbers
    kept = []
    for ranges, grid in zip(results["ranges"], results["grid"]):
        best = grid["lr"][int(np.argmax(grid["score"]))]
        kept.append(np.mean([r["lo"] <= best <= r["hi"] for r in ranges[1:]]))
    assert claims["search/keeps-optimum"]["values"] == pytest.approx(kept)
    widths = [math.log10(r[-1]["hi"] / r[-1]["lo"]) / math.log10(HIGH / LOW) for r in results["ranges"]]
    assert claims["search/narrows"]["values"] == pytest.approx(widths, rel=1e-12)
    top = [seed["uniform"][-1] for seed in results["per_decade"]]
    assert claims["search/uniform-top"]["values"] == top
    # the uniform draws' share of the top decade is (10 − 1)/(10 − 1e-4) ≈ 0.9, within binomial noise
    assert np.all(np.abs(np.array(top) - 9 / (HIGH - LOW)) < 4 * math.sqrt(0.09 / 1000))
    for seed in results["per_decade"]:
        assert sum(seed["log-uniform"]) == pytest.approx(1) and sum(seed["uniform"]) == pytest.approx(1)
    assert "search_rounds.png" in report and "search_sampling.png" in report and "search_progress.png" in report


def test_log_uniform_draws_fall_evenly_per_decade():
    """deepgrad.search's LogUniform against NumPy's exp(Uniform(log lo, log hi)): the same law."""
    from deepgrad.search import LogUniform

    space = LogUniform(LOW, HIGH)
    ours = np.array([space.sample(np.random.default_rng([7, k])) for k in range(4000)])
    theirs = np.exp(np.random.default_rng(8).uniform(math.log(LOW), math.log(HIGH), size=4000))
    edges = LOW * 10.0 ** np.arange(6)
    for draws in (ours, theirs):
        fractions = np.histogram(draws, bins=edges)[0] / len(draws)
        assert np.all(np.abs(fractions - 0.2) < 0.03)
