"""deepgrad.diagnostics: activation statistics and gradient flow on hand-computed cases,
detect_anomaly naming the op, and the monitors' records and warnings on constructed vanishing,
exploding, NaN, dead and saturated cases (and their silence on a healthy net)."""

import io as stdio
import json
import math

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn as nn
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.diagnostics import (
    ActivationMonitor,
    ActivationStats,
    GradientFlow,
    GradientFlowMonitor,
    detect_anomaly,
    standard_monitors,
)
from deepgrad.diagnostics.monitors import keep_until
from deepgrad.errors import AnomalyDetected
from deepgrad.tensor import is_anomaly_enabled
from deepgrad.train import Trainer, presets


def t64(values, requires_grad=False):
    return dg.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def logit(p):
    return np.log(p / (1 - p))


# ----------------------------------------------------------------------------
# ActivationStats


def test_sigmoid_statistics_by_hand():
    outputs = np.array([[0.01, 0.5], [0.99, 0.76]])
    model = nn.Sequential(nn.Sigmoid())
    with ActivationStats(model) as stats:
        model(t64(logit(outputs)))
    ((name, result),) = stats.results.items()
    assert name == "0" and result.kind == "Sigmoid"
    assert result.mean == pytest.approx(outputs.mean()) and result.std == pytest.approx(outputs.std())
    assert result.saturated == 0.5  # 0.01 and 0.99 lie within 0.02 of 0 and 1
    assert result.dead == 0.0
    assert result.edges[0] == 0.0 and result.edges[-1] == 1.0 and len(result.edges) == len(result.histogram) + 1
    counts = np.array(result.histogram)
    assert counts.sum() == 4 and counts[0] == 1 and counts[-1] == 1  # 0.01 in the first bin, 0.99 in the last
    assert counts[20] == 1 and counts[30] == 1  # 0.5 and 0.76 (bins of 0.025)


def test_relu_dead_units_and_unbounded_histogram():
    model = nn.Sequential(nn.Linear(2, 2, bias=False).double(), nn.ReLU())
    model[0].weight.data[...] = np.eye(2)
    stats = ActivationStats(model)
    model(t64([[-1.0, 2.0], [-3.0, 0.0], [-2.0, 50.0]]))  # unit 0 is 0 for every sample: dead
    result = stats.results["1"]
    assert result.dead == 0.5 and result.saturated is None
    assert result.edges[0] == 0.0 and result.edges[-1] == 50.0  # the range grows to hold every value
    assert sum(result.histogram) == 6 and result.histogram[-1] == 1 and len(result.histogram) == 40
    stats.remove()
    model(t64([[1.0, 1.0]]))
    assert stats.results["1"].dead == 0.5  # removed: nothing recorded any more
    assert not model[1]._forward_hooks
    stats = ActivationStats(model)
    model(t64([[1e10, 1.0]]))  # a layer blowing up: decades above the range get log-spaced bins
    edges = np.array(stats.results["1"].edges)
    assert edges[10] == 4.0 and edges[-1] == pytest.approx(1e10)  # [0, 4] keeps a quarter of the bins
    assert np.allclose(np.diff(np.log10(edges[10:])), np.log10(1e10 / 4) / 30)
    histogram = stats.results["1"].histogram
    assert sum(histogram) == 2 and histogram[2] == 1 and histogram[-1] == 1  # 1.0 in [0.8, 1.2); 1e10 at the top
    stats.remove()


def test_tanh_saturation_and_choosing_layers():
    model = nn.Sequential(nn.Linear(1, 3).double(), nn.Tanh(), nn.Linear(3, 1).double(), nn.Tanh())
    stats = ActivationStats(model, layers=["1", nn.Linear])
    assert [name for name, _ in stats.layers] == ["0", "1", "2"]
    model[0].weight.data[...] = [[10.0], [0.0], [-10.0]]
    model[0].bias.data[...] = 0.0
    model(t64([[1.0]]))
    assert stats.results["1"].saturated == pytest.approx(2 / 3)  # tanh(±10) saturate, tanh(0) does not
    with pytest.raises(ValueError, match=r"no layers named \['7'\] in the model; its layers: \['0', '1', '2', '3'\]"):
        ActivationStats(model, layers=["7"])
    with pytest.raises(ValueError, match="no layer of the model to watch"):
        ActivationStats(nn.Sequential(nn.Linear(1, 1)))


# ----------------------------------------------------------------------------
# GradientFlow


def two_linear_layers():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)).double()
    model[0].weight.data[...] = [[1.0, 0.0], [0.0, 2.0]]
    model[1].weight.data[...] = [[3.0, 4.0]]
    return model


def test_gradient_norms_and_update_ratios_by_hand():
    model = two_linear_layers()
    flow = GradientFlow(model)
    x = t64([[1.0, 1.0]])
    model(x).sum().backward()  # y = w2 · (W1 x): dW2 = W1 x = [1, 2]; dW1 = w2ᵀ xᵀ = [[3, 3], [4, 4]]
    grads = flow.gradients()
    assert grads["parameters"] == {"0.weight": pytest.approx(math.sqrt(50)), "1.weight": pytest.approx(math.sqrt(5))}
    assert grads["layers"] == {"0": pytest.approx(math.sqrt(50)), "1": pytest.approx(math.sqrt(5))}
    assert grads["total"] == pytest.approx(math.sqrt(55))
    assert grads["first_last_ratio"] == pytest.approx(math.sqrt(10))
    flow.snapshot()
    dg.optim.SGD(model.parameters(), lr=0.1).step()
    ratios = flow.update_ratios()
    assert ratios["0.weight"] == pytest.approx(0.1 * math.sqrt(50) / math.sqrt(5))
    assert ratios["1.weight"] == pytest.approx(0.1 * math.sqrt(5) / 5)
    with pytest.raises(RuntimeError, match="call snapshot"):
        flow.update_ratios()


def test_layers_group_their_parameters_and_skip_missing_gradients():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    flow = GradientFlow(model)
    assert list(flow.layers) == ["0", "1", "3"] and flow.weighted == ["0", "3"]
    assert flow.gradients() == {
        "parameters": dict.fromkeys(["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]),
        "layers": {"0": None, "1": None, "3": None},
        "total": None,
        "first_last_ratio": None,
    }
    with pytest.raises(ValueError, match="has no parameters"):
        GradientFlow(nn.ReLU())


# ----------------------------------------------------------------------------
# detect_anomaly


class Log(nn.Module):
    def forward(self, x):
        return x.log()


def test_detect_anomaly_names_the_op_and_module_of_the_forward():
    model = nn.Sequential(nn.Linear(2, 2, bias=False).double(), Log())
    model[0].weight.data[...] = [[-1.0, 0.0], [0.0, 1.0]]
    x = t64([[1.0, 2.0]])
    with pytest.raises(
        AnomalyDetected,
        match=r"the forward of op 'log' \(in module 1 \(Log\)\) gave 1 NaN in 2 values "
        r"of output \(1, 2\): it produced it from finite inputs",
    ):
        with detect_anomaly(model):
            model(x)
    with pytest.raises(AnomalyDetected, match=r"the forward of op 'log' gave 2 NaN"):  # outside any module
        with detect_anomaly(model):
            (model[0](x) - 100.0).log()
    with pytest.raises(
        AnomalyDetected,
        match=r"forward of op 'linear' \(in module 0 \(Linear\)\) gave .*: it received "
        r"non-finite input 0",
    ):
        with detect_anomaly(model):
            model(t64([[np.nan, 1.0]]))
    assert math.isnan(float((t64([-1.0]).log()).item()))  # outside the block nothing is checked


def test_detect_anomaly_names_the_op_of_the_backward():
    x = t64([0.0, 4.0], requires_grad=True)
    with pytest.raises(
        AnomalyDetected,
        match=r"the backward of op 'sqrt' gave 1 Inf in 2 values of the gradient "
        r"of its input 0 \(2,\), from a finite incoming gradient",
    ):
        with detect_anomaly():
            x.sqrt().sum().backward()
    x.grad = None
    x.sqrt().sum().backward()  # outside: an inf gradient, silently
    assert math.isinf(x.grad[0])


def test_detect_anomaly_does_not_nest():
    with detect_anomaly():
        with pytest.raises(RuntimeError, match="already active"):
            with detect_anomaly():
                pass
    assert not is_anomaly_enabled()


def test_anomaly_mode_is_a_flag_the_dispatcher_reads_not_a_patched_call():
    call = dg.Function.__call__
    assert not is_anomaly_enabled()  # off by default
    with detect_anomaly():
        assert is_anomaly_enabled()
        assert dg.Function.__call__ is call  # no class patching while on ...
        with pytest.raises(AnomalyDetected):
            t64([-1.0]).log()  # ... yet the op is checked
    assert not is_anomaly_enabled()
    assert dg.Function.__call__ is call
    with pytest.raises(AnomalyDetected), detect_anomaly():
        t64([-1.0]).log()
    assert not is_anomaly_enabled() and dg.Function.__call__ is call  # switched off after an error too


# ----------------------------------------------------------------------------
# Monitors


def fit(model, loss_fn=F.cross_entropy, lr=0.05, steps=4, every=1, nan_guard=True, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16 * steps, 8)).astype(np.float32)
    y = np.arange(16 * steps) % 3
    stream = stdio.StringIO()
    monitors = [GradientFlowMonitor(every, stream=stream, **kwargs), ActivationMonitor(every, stream=stream)]
    trainer = Trainer(model, dg.optim.SGD(model.parameters(), lr=lr), loss_fn, callbacks=monitors, nan_guard=nan_guard)
    trainer.fit(DataLoader(TensorDataset(x, y), 16), epochs=1)
    return monitors, stream.getvalue()


def kinds(monitors):
    return {kind for monitor in monitors for kind, _ in monitor.warnings}


def test_a_healthy_net_raises_no_warning():
    dg.manual_seed(0)
    monitors, printed = fit(presets.mlp((8,), 3, hidden=(32, 32)))
    assert kinds(monitors) == set() and printed == ""
    gradients, activations = (m.records for m in monitors)
    assert [r["step"] for r in gradients] == [r["step"] for r in activations] == [1, 2, 3, 4]
    assert all(0.05 < r["first_last_ratio"] < 20 for r in gradients)
    assert set(gradients[0]) == {
        "kind",
        "epoch",
        "step",
        "loss",
        "parameters",
        "layers",
        "total",
        "first_last_ratio",
        "update_ratios",
    }
    assert set(activations[0]["layers"]) == {"2", "4"}


def test_a_deep_sigmoid_net_warns_once_that_gradients_vanish():
    dg.manual_seed(0)
    model = presets.mlp((8,), 3, hidden=(32,) * 8, activation="sigmoid")
    monitors, printed = fit(model)
    assert kinds(monitors) == {"vanishing"}
    assert printed.count("\n") == 1 and "the gradients vanish: layer 1's gradient norm is" in printed
    assert all(r["first_last_ratio"] < 1e-3 for r in monitors[0].records)


def test_exploding_and_non_finite_gradients():
    dg.manual_seed(0)
    monitors, printed = fit(
        presets.mlp((8,), 3, hidden=(16,)), loss_fn=lambda o, t: F.cross_entropy(o, t) * 1e6, lr=0.0
    )
    assert kinds(monitors) == {"exploding"} and "the gradients explode: total norm" in printed
    dg.manual_seed(0)
    monitors, printed = fit(
        presets.mlp((8,), 3, hidden=(16,)), loss_fn=lambda o, t: F.cross_entropy(o, t) * np.nan, nan_guard=False
    )
    assert "non-finite" in kinds(monitors) and "the gradients are not finite at step 1" in printed


def test_dead_relus_and_saturated_sigmoids():
    dg.manual_seed(0)
    model = presets.mlp((8,), 3, hidden=(16,))
    model[1].bias.data[...] = -100.0  # every pre-activation negative: every unit dead
    monitors, printed = fit(model, lr=0.0)
    assert kinds(monitors) == {"dead", "vanishing"}  # and no gradient reaches the first layer
    assert "100% of layer 2's units (ReLU) are dead at step 1" in printed
    dg.manual_seed(0)
    model = presets.mlp((8,), 3, hidden=(16,), activation="sigmoid")
    model[1].weight.data *= 50.0
    monitors, printed = fit(model, lr=0.0)
    assert "saturated" in kinds(monitors) and "of layer 2's outputs (Sigmoid) are saturated" in printed


def test_monitors_sample_every_n_steps_and_write_json_lines(tmp_path):
    dg.manual_seed(0)
    model = presets.mlp((8,), 3, hidden=(8,))
    x, y = np.zeros((80, 8), np.float32), np.arange(80) % 3
    monitors = standard_monitors(str(tmp_path), every=2, stream=stdio.StringIO())
    Trainer(model, dg.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, callbacks=monitors).fit(
        DataLoader(TensorDataset(x, y), 16), epochs=1
    )  # 5 steps: 1, 3, 5 sampled
    lines = [json.loads(line) for line in (tmp_path / "diagnostics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["step"]) for r in lines] == [
        ("activations", 1),
        ("gradients", 1),
        ("activations", 3),
        ("gradients", 3),
        ("activations", 5),
        ("gradients", 5),
    ]
    assert not model[2]._forward_hooks  # the activation hooks are attached only when sampling
    with pytest.raises(ValueError, match="every must be a whole number of steps >= 1, got 0"):
        GradientFlowMonitor(every=0)


def test_a_resumed_run_drops_the_records_after_its_checkpoint(tmp_path):
    path = tmp_path / "diagnostics.jsonl"
    path.write_text(
        "".join(json.dumps({"kind": "gradients", "step": s}) + "\n" for s in (1, 3, 5, 7)) + '{"kind": "grad'
    )  # a torn last line
    keep_until(str(path), 5)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 3, 5]
