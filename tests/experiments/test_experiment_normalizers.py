"""`deepgrad experiment normalizers`: layer, group and weight normalization against batch norm —
tiny batches, one sample in its batch, sequence data."""

import math

import numpy as np
import pytest
from support import run_quick

IDS = [
    "normalizers/small-batch",
    "normalizers/batch-free",
    "normalizers/bn-batch-dependent",
    "normalizers/ln-per-sample",
    "normalizers/sequences",
    "normalizers/sequence-statistics",
]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick("normalizers", tmp_path_factory.mktemp("out"))


def test_normalizers_measures_its_claims_over_seeds(quick):
    done, record, report = quick
    claims = {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == IDS
    results = record["results"]
    batches = results["batches"]
    assert batches[0] == 1 and 2 in batches
    # BN cannot train on a batch of one; the others can, in every seed
    assert all(seed[0] is None for seed in results["accuracy"]["batch"])
    assert all(0 <= seed[0] <= 1 for norm in ("layer", "group", "weight") for seed in results["accuracy"][norm])
    # the small-batch claim, recomputed from the per-seed accuracies
    large, small = batches.index(max(batches)), batches.index(2)
    expected = [100 * (seed[large] - seed[small]) for seed in results["accuracy"]["batch"]]
    np.testing.assert_allclose(claims["normalizers/small-batch"]["values"], expected, rtol=1e-12)
    # the sequence claims, from the per-seed shares
    sequences = results["sequences"]
    ln_over_bn = [
        100 * (s["layer"]["sequences"]["positions"] - s["batch"]["sequences"]["positions"]) for s in sequences
    ]
    np.testing.assert_allclose(claims["normalizers/sequences"]["values"], ln_over_bn, rtol=1e-9)
    assert "normalizers_one_sample.png" in report and "normalizers/" in done.stdout


def numpy_batch_norm(z, eps=1e-5):
    """Batch norm in training mode, γ = 1, β = 0: each feature over the batch, biased variance."""
    z = np.asarray(z)
    return (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + eps)


def test_one_sample_against_numpy_and_torch(quick):
    """BN's batch dependence recomputed with NumPy; LN and GN per sample with PyTorch."""
    torch = pytest.importorskip("torch")
    _, record, _ = quick
    claims = {claim["id"]: claim for claim in record["claims"]}
    sample = record["results"]["one_sample"]
    z_a, z_b = np.array(sample["z_a"]), np.array(sample["z_b"])
    assert np.array_equal(z_a[0], z_b[0])  # the same digit in both batches
    outputs = sample["outputs"]
    bn_a, bn_b = numpy_batch_norm(z_a)[0], numpy_batch_norm(z_b)[0]
    np.testing.assert_allclose(outputs["batch"]["in batch A"], bn_a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(outputs["batch"]["in batch B"], bn_b, rtol=1e-10, atol=1e-12)
    (bn_value,) = claims["normalizers/bn-batch-dependent"]["values"]
    assert math.isclose(bn_value, np.abs(bn_a - bn_b).max(), rel_tol=1e-9)
    for batch, name in ((z_a, "in batch A"), (z_b, "in batch B")):
        ln = torch.nn.functional.layer_norm(torch.from_numpy(batch), (batch.shape[1],), eps=1e-5).numpy()[0]
        np.testing.assert_allclose(outputs["layer"][name], ln, rtol=1e-10, atol=1e-12)
        gn = torch.nn.functional.group_norm(torch.from_numpy(batch), 4, eps=1e-5).numpy()[0]
        np.testing.assert_allclose(outputs["group"][name], gn, rtol=1e-10, atol=1e-12)
    ln_alone = torch.nn.functional.layer_norm(torch.from_numpy(z_a[:1]), (z_a.shape[1],), eps=1e-5).numpy()[0]
    np.testing.assert_allclose(outputs["layer"]["alone"], ln_alone, rtol=1e-10, atol=1e-12)
    (ln_value,) = claims["normalizers/ln-per-sample"]["values"]
    assert ln_value < 1e-12 and claims["normalizers/ln-per-sample"]["verdict"] == "reproduced"
