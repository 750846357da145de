"""`deepgrad experiment dropout`: the expected output (1 − p)·a, the two consistent scalings, and
dropout as an ensemble of sub-networks."""

import math

import numpy as np
import pytest
from support import run_quick

PROBABILITIES = [0.1, 0.3, 0.5, 0.7, 0.9]
CLAIMS = [
    "dropout/expectation",
    "dropout/consistent",
    "dropout/same-model",
    "dropout/variants-agree",
    "dropout/ensemble",
    "dropout/scaled-is-the-average",
]


def test_dropout_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("dropout", tmp_path)
    results, claims = record["results"], {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == CLAIMS
    assert len(results["expectation"]) == 2  # two seeds with --quick
    for expectation in results["expectation"]:
        # 20 masks over the test set's first-layer outputs: (1 − p) up to the masks' sampling noise
        np.testing.assert_allclose(expectation["unscaled"], [1 - p for p in PROBABILITIES], atol=0.03)
        np.testing.assert_allclose(expectation["inverted"], 1.0, atol=0.05)
        np.testing.assert_allclose(expectation["classic"], 1.0, atol=0.05)
    # the claims recomputed from the per-seed numbers
    error = [max(abs(r - (1 - p)) for r, p in zip(e["unscaled"], PROBABILITIES)) for e in results["expectation"]]
    np.testing.assert_allclose(claims["dropout/expectation"]["values"], error, rtol=1e-12)
    gain = [100 * (e["accuracy"][-1] - e["member_accuracy"]) for e in results["ensemble"]]
    np.testing.assert_allclose(claims["dropout/ensemble"]["values"], gain, rtol=1e-12)
    apart = [100 * abs(a["inverted"] - a["classic"]) for a in results["test_accuracy"]]
    np.testing.assert_allclose(claims["dropout/variants-agree"]["values"], apart, rtol=1e-12, atol=1e-12)
    for ensemble in results["ensemble"]:
        assert ensemble["sizes"] == [1, 2, 4, 8, 16] and all(0 <= a <= 1 for a in ensemble["agreement"])
    assert max(claims["dropout/same-model"]["values"]) <= 1e-5
    for png in ("dropout_expectation.png", "dropout_ensemble.png", "dropout_variants.png"):
        assert png in report
    assert "dropout/" in done.stdout


def test_the_two_scalings_differ_by_the_factor_one_minus_p():
    """The same generator draws the same mask in both forms: inverted = classic ÷ (1 − p) at training;
    at test the classic form is (1 − p)·x and the inverted one x; the kept fraction is 1 − p."""
    import deepgrad.functional as F
    from deepgrad import tensor

    x = np.random.default_rng(0).random((400, 50))
    for p in PROBABILITIES:
        classic = F.dropout(tensor(x), p, training=True, scale_at_test=True, generator=np.random.default_rng(3)).data
        inverted = F.dropout(tensor(x), p, training=True, generator=np.random.default_rng(3)).data
        np.testing.assert_allclose(inverted * (1 - p), classic, rtol=1e-12)
        assert math.isclose(np.mean(classic != 0), 1 - p, abs_tol=0.01)
        np.testing.assert_allclose(F.dropout(tensor(x), p, training=False, scale_at_test=True).data, (1 - p) * x)
        np.testing.assert_array_equal(F.dropout(tensor(x), p, training=False).data, x)


def test_pytorch_dropout_keeps_the_expectation():
    """PyTorch's dropout (inverted) against the notes' formula: E[output] = a, kept fraction 1 − p."""
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(200, 100, generator=generator, dtype=torch.float64)
    for p in (0.1, 0.5, 0.9):
        masks = torch.stack([torch.nn.functional.dropout(a, p, training=True) for _ in range(200)])
        assert math.isclose(float(masks.mean(0).sum() / a.sum()), 1.0, abs_tol=0.01)
        assert math.isclose(float((masks != 0).double().mean()), 1 - p, abs_tol=0.01)
