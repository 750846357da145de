"""`deepgrad experiment graph`: batch norm as its nine textbook steps against the fused op."""

import os
import shutil
import sys

import numpy as np
import pytest
from support import run_quick

from deepgrad.experiments import run_experiment


def test_graph_writes_its_files_and_both_implementations_agree(tmp_path):
    done, record, report = run_quick("graph", tmp_path)
    claims = {claim["id"]: claim for claim in record["claims"]}
    assert list(claims) == ["graph/agrees", "graph/faster"]
    results = record["results"]
    seeds = results["seeds"]
    assert len(seeds) == 2  # two seeds with --quick
    # the claims' values, recomputed from the per-seed numbers
    largest = max(max(s["max_output_difference"], *s["grad_differences"].values()) for s in seeds)
    assert claims["graph/agrees"]["values"] == [largest] and largest < 1e-10  # float64
    np.testing.assert_allclose(
        claims["graph/faster"]["values"], [s["composite_ms"] / s["fused_ms"] for s in seeds], rtol=1e-12
    )
    assert len(results["ops"]["composite"]) == 10 and results["ops"]["fused"] == ["batchnorm"]
    files = os.listdir(tmp_path / "graph")
    assert {"graph_composite.dot", "graph_fused.dot", "batchnorm_cost.png"} <= set(files)
    if shutil.which("dot"):
        assert {"graph_composite.png", "graph_fused.png"} <= set(files) and results["graphs_rendered"]
    assert "through the nine steps it gives the same output" in done.stdout and "batchnorm_cost.png" in report


def test_the_fused_op_matches_pytorch_through_the_nine_steps(tmp_path):
    """The study's inputs, the nine steps differentiated by PyTorch's autograd, against deepgrad's
    fused op: the same output and gradients to float64 round-off."""
    torch = pytest.importorskip("torch")
    from deepgrad.experiments.common import Context
    from deepgrad.experiments.graph import EPS, forward_backward, fused_batch_norm, inputs

    x, gamma, beta, upstream = inputs(Context("graph", str(tmp_path)), np.random.default_rng(0))
    out, grads = forward_backward(fused_batch_norm, (x, gamma, beta), upstream)
    leaves = [torch.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    tx, tgamma, tbeta = leaves
    mu = tx.mean(0)
    xmu = tx - mu
    var = (xmu**2).mean(0)
    expected = tgamma * (xmu * (1 / torch.sqrt(var + EPS))) + tbeta
    expected.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(out, expected.detach().numpy(), atol=1e-12)
    for name, leaf in zip(("x", "gamma", "beta"), leaves):
        np.testing.assert_allclose(grads[name], leaf.grad.numpy(), atol=1e-10)


def test_graph_succeeds_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))  # no `dot` on it
    report = run_experiment("graph", tmp_path, quick=True, backend="serial")
    files = os.listdir(tmp_path / "graph")
    assert {"graph_composite.dot", "graph_fused.dot", "batchnorm_cost.png"} <= set(files)
    assert not [f for f in files if f.startswith("graph_") and f.endswith(".png")]
    assert not report.results["graphs_rendered"] and "dot is not installed" in report.setup["graphs"]
