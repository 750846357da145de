"""A claim is data: its verdict follows from its values and comparison, never from a string."""

import math

import pytest

from deepgrad.experiments.claims import Claim, Comparison, above, at_least, at_most, below, verdict


@pytest.mark.parametrize(
    "values,comparison,expected",
    [
        ([3.0, 4.0, 5.0], above(2), "reproduced"),  # every seed
        ([3.0, 1.0, 5.0], above(2), "partly"),  # the mean (and two of three)
        ([3.0, 1.0, 1.5], above(2.5), "not reproduced"),  # one seed of three, and not the mean
        ([9.0, 1.0, 1.0, 1.0], above(2.5), "partly"),  # one seed of four, but the mean (3) holds
        ([1.0, 1.5, 1.9], above(2), "not reproduced"),
        ([0.5], below(1), "reproduced"),  # a deterministic claim: one value
        ([1.0], below(1), "not reproduced"),
        ([1.0], at_most(1), "reproduced"),
        ([math.inf, math.inf, 10.0], above(5), "reproduced"),  # diverged: infinitely worse, on the claim's side
        ([math.nan, 9.0, 9.0], above(5), "partly"),  # a value that could not be measured never holds
        ([math.nan], at_least(0), "not reproduced"),
    ],
)
def test_the_verdict_follows_from_the_values(values, comparison, expected):
    got = verdict(values, comparison)
    holding = sum(comparison.holds(v) for v in values)
    mean = sum(values) / len(values)
    # the rule, recomputed independently: all hold; else the mean or at least half; else none
    rule = (
        "reproduced"
        if holding == len(values)
        else "partly"
        if comparison.holds(mean) or 2 * holding >= len(values)
        else "not reproduced"
    )
    assert got == rule == expected


def test_a_claim_carries_its_statistics_and_survives_json():
    claim = Claim.judge("s/c", "002 §5.2", "A sentence.", "a ratio", [2.0, 4.0, 6.0], above(3))
    assert (claim.mean, claim.spread, claim.low, claim.high, claim.verdict) == (4.0, 2.0, 2.0, 6.0, "partly")
    assert claim.summary() == "4 ± 2"
    record = claim.to_dict()
    assert record["comparison"] == "> 3" and record["values"] == [2.0, 4.0, 6.0]
    assert Claim.from_dict(record) == claim
    diverged = Claim.judge("s/d", "002", "Diverges.", "loss", [math.inf], above(1)).to_dict()
    assert diverged["values"] == ["inf"] and Claim.from_dict(diverged).verdict == "reproduced"


def test_bad_claims_are_refused():
    with pytest.raises(ValueError, match="op must be one of"):
        Comparison("==", 1)
    with pytest.raises(ValueError, match="claim s/c: no values to judge"):
        Claim.judge("s/c", "000", "x", "y", [], above(0))


def test_the_summary_counts_what_is_not_finite():
    def summary(values):
        return Claim.judge("s/c", "002", "x", "y", values, above(1)).summary()

    assert summary([2.0, 3.0, 4.0]) == "3 ± 1" and summary([0.5]) == "0.5"
    assert summary([math.inf] * 3) == "inf in 3/3 seeds"
    assert summary([2.0, 3.0, math.inf]) == "2.5 ± 0.707, inf in 1/3 seeds"
