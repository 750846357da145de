"""`deepgrad experiment batchnorm`: with and without batch norm across weight scales; the BN paper's
3×100 sigmoid MLP, its test accuracy and the distribution of its sigmoid inputs over training."""

import math

import numpy as np
import pytest
from support import run_quick

import deepgrad as dg
from deepgrad import functional as F
from deepgrad import nn
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.experiments import batchnorm
from deepgrad.train.trainer import Trainer

IDS = ["batchnorm/any-scale", "batchnorm/sooner", "batchnorm/stable-median", "batchnorm/stable-spread"]


def test_batchnorm_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("batchnorm", tmp_path)
    results, claims = record["results"], {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == IDS
    assert len(results["sweep"]) == len(results["sigmoid"]) == 2  # two seeds with --quick
    scales = results["scales"]
    assert scales[0] == 1 and math.isclose(scales[-1], 1e-4)
    # any-scale, recomputed from each seed's sweep: the scales each net trained at (90 %, not diverged)
    for seed, value in zip(results["sweep"], claims["batchnorm/any-scale"]["values"]):
        trained = {
            net: sum(a >= 0.9 and d is None for a, d in zip(seed[net]["accuracy"], seed[net]["diverged_epoch"]))
            for net in ("plain", "bn")
        }
        assert len(seed["plain"]["accuracy"]) == len(scales)
        assert value == trained["bn"] - trained["plain"]
    # the shift ratios, recomputed from each seed's per-net numbers
    for key, claim in (("median_moved", "batchnorm/stable-median"), ("spread_change", "batchnorm/stable-spread")):
        expected = [seed["plain"][key] / seed["bn"][key] for seed in results["sigmoid"]]
        np.testing.assert_allclose(claims[claim]["values"], expected, rtol=1e-12)
    for seed in results["sigmoid"]:
        steps = seed["plain"]["steps"]
        assert steps[0] == 0 and all(a < b for a, b in zip(steps, steps[1:]))
        assert len(seed["plain"]["test_accuracy"]) == len(seed["bn"]["test_accuracy"]) == len(steps)
    typical = results["typical_input"]["bn"]
    low, middle, high = typical["percentiles"]
    assert len(low) == len(typical["probe_steps"]) and all(lo <= m <= hi for lo, m, hi in zip(low, middle, high))
    for png in ("accuracy_vs_scale.png", "sigmoid3x100.png", "covariate_shift.png"):
        assert f"]({png})" in report
    assert "000 §3" in done.stdout and "004" in done.stdout


def test_input_shift_against_a_loop_over_units():
    """input_shift's measures against a plain recomputation, unit by unit, on a made-up history."""
    generator = np.random.default_rng(3)
    history = np.sort(generator.normal(size=(30, 3, 7)), axis=1)  # (measurements, percentiles, units)
    shift = batchnorm.input_shift(history)
    moved, change = [], []
    for unit in range(7):
        low, middle, high = history[:, 0, unit], history[:, 1, unit], history[:, 2, unit]
        moved.append((middle.max() - middle.min()) / np.mean(high - low))
        change.append((high - low).max() / (high - low).min())
    assert math.isclose(shift["median_moved"], float(np.median(moved)), rel_tol=1e-12)
    assert math.isclose(shift["spread_change"], float(np.median(change)), rel_tol=1e-12)
    assert math.isclose(shift["moved"][-1], shift["median_moved"], rel_tol=1e-12) and shift["moved"][0] == 0
    assert math.isclose(moved[shift["typical_unit"]], float(np.median(moved)), rel_tol=1e-12)  # odd count: a unit


def tiny_run(probe_every=None):
    dg.manual_seed(0)
    generator = np.random.default_rng(0)
    x = generator.normal(size=(48, 6)).astype(np.float32)
    y = generator.integers(0, 3, 48)
    model = nn.Sequential(nn.Linear(6, 8, bias=False), nn.BatchNorm1d(8), nn.Sigmoid(), nn.Linear(8, 3))
    callbacks = [] if probe_every is None else [batchnorm.InputPercentiles(x[:20], probe_every)]
    trainer = Trainer(model, dg.optim.SGD(model.parameters(), lr=0.5), F.cross_entropy, callbacks=callbacks)
    trainer.fit(DataLoader(TensorDataset(x, y), 12, shuffle=True, seed=0), epochs=3)
    return model, callbacks


def test_watching_the_inputs_leaves_the_run_as_it_would_be_unwatched():
    watched, (probe,) = tiny_run(probe_every=2)
    unwatched, _ = tiny_run()
    for (name, a), (_, b) in zip(watched.state_dict().items(), unwatched.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert probe.steps == [0, 2, 4, 6, 8, 10, 12] and probe.percentiles[0].shape == (3, 8)


def test_batch_statistics_normalize_as_torch_does_in_training_and_update_nothing():
    torch = pytest.importorskip("torch")
    generator = np.random.default_rng(1)
    layer = nn.BatchNorm1d(5, dtype=np.float64)
    layer.weight.data[...] = generator.uniform(0.5, 2, 5)
    layer.bias.data[...] = generator.normal(size=5)
    layer.running_mean[...] = generator.normal(size=5)
    before = layer.running_mean.copy(), layer.running_var.copy()
    z = generator.normal(2.0, 3.0, (16, 5))
    layer.eval()
    with batchnorm.batch_statistics(layer), dg.no_grad():
        ours = layer(dg.tensor(z)).data
    theirs = torch.nn.functional.batch_norm(
        torch.tensor(z), None, None, torch.tensor(layer.weight.data), torch.tensor(layer.bias.data), training=True
    )
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, before[0])
    np.testing.assert_array_equal(layer.running_var, before[1])
