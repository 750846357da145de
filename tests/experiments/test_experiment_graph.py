"""`deepgrad experiment graph`: batch norm as its nine textbook steps against the fused op."""

import os
import shutil
import sys

from support import run_quick

from deepgrad.experiments import run_experiment


def test_graph_writes_its_files_and_both_implementations_agree(tmp_path):
    done, results, report = run_quick("graph", tmp_path)
    assert {"max_grad_difference", "composite_ms", "fused_ms"} <= set(results)
    assert results["max_grad_difference"] < 1e-9 and results["max_output_difference"] < 1e-9  # float64
    assert results["composite_ms"] > results["fused_ms"] > 0  # ten ops cost more than one
    assert len(results["ops"]["composite"]) == 10 and results["ops"]["fused"] == ["batchnorm"]
    files = os.listdir(tmp_path / "graph")
    assert {"graph_composite.dot", "graph_fused.dot", "batchnorm_cost.png"} <= set(files)
    if shutil.which("dot"):
        assert {"graph_composite.png", "graph_fused.png"} <= set(files) and results["graphs_rendered"]
    assert "same gradients" in done.stdout


def test_graph_succeeds_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))  # no `dot` on it
    report = run_experiment("graph", tmp_path, quick=True)
    files = os.listdir(tmp_path / "graph")
    assert {"graph_composite.dot", "graph_fused.dot", "batchnorm_cost.png"} <= set(files)
    assert not [f for f in files if f.startswith("graph_") and f.endswith(".png")]
    assert not report.results["graphs_rendered"] and "dot is not installed" in report.setup["graphs"]
