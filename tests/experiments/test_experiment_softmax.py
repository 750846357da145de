"""`deepgrad experiment softmax`: overflow and the maximum subtracted, masking, hardmax, dz = ŷ − y."""

import decimal

import numpy as np
import pytest
from support import run_quick

import deepgrad as dg
import deepgrad.functional as F

IDS = [
    "softmax/overflows",
    "softmax/max-subtracted",
    "softmax/mask-zero",
    "softmax/mask-renormalizes",
    "softmax/hardmax",
    "softmax/dz",
]


def test_softmax_measures_its_claims(tmp_path):
    done, record, report = run_quick("softmax", tmp_path)
    claims = {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == IDS
    results = record["results"]
    # recomputed from the numbers in results.json
    offsets = results["offsets"]
    assert claims["softmax/overflows"]["values"] == [
        results["overflow"]["as written, float64"]["nonfinite"][offsets.index(1000.0)]
    ]
    leaked = [results["masking"][dtype]["leaked"] for dtype in ("float32", "float64")]
    notes, minus_inf = results["masks"].index("−2³² + 1"), results["masks"].index("−inf")
    assert claims["softmax/mask-zero"]["values"] == [max(max(row[notes], row[minus_inf]) for row in leaked)]
    assert claims["softmax/hardmax"]["values"] == [results["hardmax"]["differing_rows"]]
    assert results["hardmax"]["example"] == [1.0, 0.0, 0.0, 0.0]
    # the textbook's [1010, 1000, 990]: NumPy's formula as written fails, the study's F.softmax matches
    # an independent decimal computation
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(np.array([1010.0, 1000.0, 990.0]))
        assert np.isnan(e / e.sum()).all()
    with decimal.localcontext() as digits:
        digits.prec = 30
        exps = [decimal.Decimal(v).exp() for v in (1010, 1000, 990)]
        exact = [float(x / sum(exps)) for x in exps]
    np.testing.assert_allclose(results["book"]["max_subtracted"], exact, rtol=1e-15)
    assert "softmax_overflow.png" in report and "softmax_mask_hardmax.png" in report


def test_the_gradient_of_softmax_cross_entropy_matches_torch():
    """dz of the mean cross-entropy, deepgrad's backward against torch's autograd, logits up to 1000."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for m, classes, scale in ((1, 3, 1.0), (7, 10, 10.0), (32, 10, 1000.0)):
        z = scale * rng.standard_normal((m, classes))
        labels = rng.integers(0, classes, size=m)
        ours = dg.tensor(z, requires_grad=True)
        F.cross_entropy(ours, labels).backward()
        theirs = torch.tensor(z, requires_grad=True)
        torch.nn.functional.cross_entropy(theirs, torch.tensor(labels)).backward()
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=0, atol=1e-16)
        y_hat = torch.softmax(torch.tensor(z), dim=1).numpy()
        np.testing.assert_allclose(F.softmax(dg.tensor(z)).data, y_hat, rtol=1e-15, atol=1e-300)
        np.testing.assert_allclose(ours.grad, (y_hat - np.eye(classes)[labels]) / m, rtol=0, atol=1e-16)


def test_the_notes_mask_gives_exactly_zero_in_numpy_and_torch():
    """Padded logits set to −2^32+1: NumPy's and torch's max-subtracted softmax give them exactly 0."""
    torch = pytest.importorskip("torch")
    z = np.random.default_rng(0).standard_normal((4, 12))
    z[:, 7:] = -(2.0**32) + 1
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    assert (shifted / shifted.sum(axis=1, keepdims=True))[:, 7:].max() == 0.0
    assert torch.softmax(torch.tensor(z, dtype=torch.float32), dim=1)[:, 7:].max().item() == 0.0
    assert F.softmax(dg.tensor(z)).data[:, 7:].max() == 0.0
