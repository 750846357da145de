"""`deepgrad experiment batchnorm-mechanics`: batch norm at test time, its batch size, as a regularizer,
γ and β, the redundant bias, and its place before or after a sigmoid."""

import math

import numpy as np
import pytest
from support import run_quick

import deepgrad as dg
from deepgrad import nn
from deepgrad.experiments import batchnorm, batchnorm_mechanics

IDS = [
    "batchnorm-mechanics/test-running-averages",
    "batchnorm-mechanics/running-estimates",
    "batchnorm-mechanics/test-batch-one",
    "batchnorm-mechanics/small-batch",
    "batchnorm-mechanics/regularizes",
    "batchnorm-mechanics/gamma-beta-identity",
    "batchnorm-mechanics/bias-redundant",
    "batchnorm-mechanics/bias-no-gradient",
    "batchnorm-mechanics/before-sigmoid-saturation",
    "batchnorm-mechanics/before-sigmoid-accuracy",
]


def test_batchnorm_mechanics_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("batchnorm-mechanics", tmp_path)
    results, claims = record["results"], {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == IDS
    seeds = results["per_seed"]
    assert len(seeds) == 2  # two seeds with --quick
    for name in ("gamma-beta-identity", "bias-redundant", "bias-no-gradient"):
        assert len(claims[f"batchnorm-mechanics/{name}"]["values"]) == 1  # identities: one value
    # small-batch and regularizes, recomputed from each seed's accuracies (in points)
    small = [100 * (s["batches"]["bn"]["test"][0] - s["batches"]["plain"]["test"][0]) for s in seeds]
    np.testing.assert_allclose(claims["batchnorm-mechanics/small-batch"]["values"], small, rtol=1e-12)
    gaps = [
        100
        * (
            (r["plain"]["train_accuracy"] - r["plain"]["test_accuracy"])
            - (r["bn"]["train_accuracy"] - r["bn"]["test_accuracy"])
        )
        for r in (s["regularization"] for s in seeds)
    ]
    np.testing.assert_allclose(claims["batchnorm-mechanics/regularizes"]["values"], gaps, rtol=1e-9, atol=1e-9)
    for s in seeds:
        assert s["test_time"]["classes_alone"] == 1  # one sample's own statistics: the same answer for all
        assert s["batch_one"].startswith("refused: batch_norm: expected more than 1 value per channel")
        assert set(s["test_time"]["own"]) == set(results["test_batches"])
        assert len(s["placement"]["after"]["saturation"]) == 3
    assert len(results["batches"]) == len(seeds[0]["batches"]["bn"]["test"])
    for png in ("test_time.png", "batch_size.png", "regularization.png", "placement.png"):
        assert f"]({png})" in report
    assert "000 §4" in done.stdout


def test_gamma_beta_restore_the_input_and_the_bias_is_redundant_in_torch_too():
    """The identity claims recomputed with PyTorch's batch norm (training mode, float64)."""
    torch = pytest.importorskip("torch")
    ours = batchnorm_mechanics.identities(0)
    generator = np.random.default_rng(0)
    z = torch.tensor(generator.normal(0.0, 1.0, (64, 20)) * generator.uniform(0.1, 10.0, 20) + 7.0)
    mean, var = z.mean(0), z.var(0, unbiased=False)
    restored = torch.nn.functional.batch_norm(z, None, None, torch.sqrt(var + 1e-5), mean, training=True)
    assert float((restored - z).abs().max() / z.abs().max()) <= 1e-12 and ours["identity"] <= 1e-12
    linear = torch.nn.Linear(30, 20, dtype=torch.float64)
    torch.nn.init.normal_(linear.bias, 0.0, 5.0)
    x = torch.tensor(generator.normal(size=(64, 30)))
    biased = torch.nn.functional.batch_norm(linear(x), None, None, training=True)
    unbiased = torch.nn.functional.batch_norm(x @ linear.weight.T, None, None, training=True)
    difference = (biased - unbiased).detach().abs().max() / unbiased.detach().abs().max()
    assert float(difference) <= 1e-12 and ours["bias_outputs"] <= 1e-12
    (biased * torch.tensor(generator.normal(size=(64, 20)))).sum().backward()
    assert float(linear.bias.grad.norm() / linear.weight.grad.norm()) <= 1e-12 and ours["bias_gradient"] <= 1e-12


def test_eval_mode_uses_the_running_averages_as_torch_does():
    """Running statistics after some training batches, and eval outputs from them, against
    torch.nn.BatchNorm1d (float64): what the test-running-averages claim's net computes at test time."""
    torch = pytest.importorskip("torch")
    generator = np.random.default_rng(2)
    ours, theirs = nn.BatchNorm1d(6, dtype=np.float64), torch.nn.BatchNorm1d(6, dtype=torch.float64)
    for _ in range(5):
        batch = generator.normal(3.0, 2.0, (10, 6))
        ours(dg.tensor(batch))
        theirs(torch.tensor(batch))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
    ours.eval()
    theirs.eval()
    test = generator.normal(3.0, 2.0, (7, 6))
    with dg.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(dg.tensor(test)).data, theirs(torch.tensor(test)).numpy(), rtol=1e-12)


def test_a_sample_alone_gives_every_input_the_same_answer():
    """predictions with batch statistics of one sample (fed as two copies): one class for all; with
    the running averages the answers depend on the input."""
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    model.train()
    model(dg.tensor(x))  # running statistics from one training batch
    with batchnorm.batch_statistics(model):
        alone = batchnorm_mechanics.predictions(model, x, 1)
        together = batchnorm_mechanics.predictions(model, x, None)
    assert len(set(alone.tolist())) == 1 and len(set(together.tolist())) > 1
    assert len(set(batchnorm_mechanics.predictions(model, x, 1).tolist())) > 1  # running averages
    assert math.isinf(batchnorm_mechanics.ratio(1.0, 0.0)) and math.isnan(batchnorm_mechanics.ratio(0.0, 0.0))
