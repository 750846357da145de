"""The benchmark suite runs end to end (`python -m benchmarks --quick`), and its hand-written NumPy
floor computes the same training step as PyTorch. Timings are never asserted."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.workloads import LR, WORKLOADS, make_data  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
NUMPY_WORKLOADS = {"mlp", "mlp-eval", "mlp-bn", "mlp-bn-eval", "cnn", "cnn-eval"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    frameworks = ["deepgrad", "numpy"] + (["torch"] if HAS_TORCH else [])
    path = tmp_path_factory.mktemp("bench") / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--frameworks", ",".join(frameworks), "--json", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return frameworks, done.stdout, json.loads(path.read_text())


def test_quick_run_has_a_row_per_workload_and_framework(quick_run):
    frameworks, table, data = quick_run
    rows = {
        tuple(cell.strip() for cell in line.split("|")[1:3])
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith("| workload")
    }
    results = {(r["workload"], r["framework"]): r for r in data["results"]}
    defaults = [name for name, workload in WORKLOADS.items() if workload.default]
    assert set(results) == {(w, f) for w in defaults for f in frameworks}
    for workload in defaults:
        for framework in frameworks:
            result = results[workload, framework]
            if framework == "numpy" and workload not in NUMPY_WORKLOADS:
                assert result["status"] == "skipped" and (workload, framework) not in rows
                continue
            assert result["status"] == "ok", result
            assert (workload, framework) in rows
            assert result["ms_per_step"] > 0 and result["samples_per_s"] > 0 and result["peak_rss_mb"] > 0
            assert len(result["rep_ms_per_step"]) == 3
            assert np.isfinite(result["final_loss"]) if WORKLOADS[workload].train else result["final_loss"] is None
            # the same model everywhere: the same number of parameters as deepgrad's preset
            assert result["params"] == results[workload, "deepgrad"]["params"]
            if HAS_TORCH:
                torch_ms = results[workload, "torch"]["ms_per_step"]
                assert result["vs_torch"] == pytest.approx(result["ms_per_step"] / torch_ms)
                torch_best = min(results[workload, "torch"]["rep_ms_per_step"])
                assert result["vs_torch_best"] == pytest.approx(min(result["rep_ms_per_step"]) / torch_best)
            assert result["vs_dezero"] is None and result["vs_dezero_best"] is None


def test_quick_run_names_numpys_blas_and_the_commit(quick_run):
    frameworks, table, data = quick_run
    blas, commit = data["meta"]["blas"], data["meta"]["commit"]
    assert f"NumPy's BLAS: {blas}" in table.splitlines()[0]
    if (ROOT / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        assert commit.split("+")[0] == head.stdout.strip() and f"deepgrad {commit}" in table.splitlines()[0]
    if importlib.util.find_spec("threadpoolctl") is not None:
        assert blas.split()[0] in ("openblas", "mkl", "blis"), blas


def test_deepgrad_bench_delegates_to_the_benchmarks():
    done = subprocess.run(
        [sys.executable, "-m", "deepgrad", "bench", "--only", "no-such-workload"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(ROOT),
    )
    assert done.returncode == 2
    assert "unknown workload(s) no-such-workload; available: mlp" in done.stderr


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("name", ["mlp", "mlp-bn", "cnn"])
def test_numpy_floor_matches_torch(name):
    """Two SGD steps of the hand-written NumPy network from torch's initial weights give torch's
    losses, and then the same eval-mode outputs (running statistics included)."""
    import torch

    from benchmarks import fw_numpy, fw_torch

    workload = WORKLOADS[name]
    x, y = make_data(workload)
    torch.manual_seed(0)
    model = fw_torch.MODELS[workload.model](workload.input_shape, **workload.options)
    net = fw_numpy.Net(
        fw_numpy.MODELS[workload.model](
            np.random.default_rng(0), workload.batch, workload.input_shape, **workload.options
        ),
        workload.batch,
    )
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.BatchNorm1d))]
    mine = [layer for layer in net.layers if not isinstance(layer, fw_numpy.ReLU)]
    assert len(layers) == len(mine)
    for theirs, ours in zip(layers, mine):
        weight = theirs.weight.detach().numpy()
        if isinstance(theirs, torch.nn.BatchNorm1d):
            ours.gamma[...], ours.beta[...] = weight, theirs.bias.detach().numpy()
            continue
        if isinstance(theirs, torch.nn.Linear) and name == "cnn" and ours is mine[1]:
            pooled = net.layers[0].pooled.shape[1:]  # the NumPy net flattens (H, W, C), torch (C, H, W)
            weight = weight.reshape(-1, pooled[2], *pooled[:2]).transpose(0, 2, 3, 1)
        ours.w[...] = weight.reshape(len(weight), -1).T
        if theirs.bias is not None:
            ours.b[...] = theirs.bias.detach().numpy()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(2):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(tx), ty)
        loss.backward()
        optimizer.step()
        assert net.train_step(x, y) == pytest.approx(loss.item(), rel=1e-5)
    model.eval()
    with torch.no_grad():
        expected = model(tx).numpy()
    np.testing.assert_allclose(net.predict(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_gpu_run_skips_what_cannot_run_here(tmp_path):
    """--device cuda: the CPU-only frameworks are skipped, and so are deepgrad and torch on a machine
    without a GPU (with the reason); the run itself succeeds."""
    import deepgrad as dg

    path = tmp_path / "gpu.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--device",
            "cuda",
            "--only",
            "mlp",
            "--frameworks",
            "deepgrad,torch,numpy",
            "--json",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(path.read_text())
    assert data["meta"]["device"] == "cuda" and "on cuda (GPU)" in done.stdout
    results = {r["framework"]: r for r in data["results"]}
    assert results["numpy"]["status"] == "skipped" and "CPU only" in results["numpy"]["note"]
    if not dg.backend.is_available("cuda"):
        assert results["deepgrad"]["status"] == "skipped" and "not available" in results["deepgrad"]["note"]
    else:
        assert results["deepgrad"]["status"] == "ok"


def test_dezero_runs_in_float32():
    """The models DeZero builds are float32 (NumPy 2 would make its weights float64) and so is
    their output: every framework times the same float32 computation. In a child process, as the
    benchmarks run it (its module gives NumPy back the ``np.int`` DeZero imports)."""
    if importlib.util.find_spec("dezero") is None:
        pytest.skip("dezero is not installed")
    script = (
        "from benchmarks import fw_dezero\n"
        "from benchmarks.workloads import WORKLOADS, make_data\n"
        "import dezero\n"
        "for name in ('mlp', 'mlp-bn', 'cnn', 'resnet-small'):\n"
        "    x, _ = make_data(WORKLOADS[name])\n"
        "    model = fw_dezero.make_model(WORKLOADS[name], x)\n"
        "    with dezero.test_mode(), dezero.no_grad():\n"
        "        out = model(x)\n"
        "    print(name, sorted({str(p.data.dtype) for p in model.params()}), out.data.dtype)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:-1] == [
        f"{name} ['float32'] float32" for name in ("mlp", "mlp-bn", "cnn", "resnet-small")
    ]


def test_cores_table_and_figure(tmp_path):
    """benchmarks.cores runs deepgrad and torch at each thread count and writes its table, JSON and figure."""
    frameworks_missing = not HAS_TORCH
    if frameworks_missing:
        pytest.skip("torch is not installed")
    pytest.importorskip("matplotlib")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.cores",
            "--only",
            "cnn",
            "--threads",
            "1,2",
            "--rounds",
            "1",
            "--reps",
            "1",
            "--json",
            str(tmp_path / "cores.json"),
            "--figure",
            str(tmp_path / "cores.png"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| cnn |")]
    assert [row.split("|")[2].strip() for row in rows] == ["1", "2"]
    assert "1.00× | 1.00×" in rows[0]  # each framework's speed-up is over its own one-thread step
    data = json.loads((tmp_path / "cores.json").read_text())
    assert {(r["framework"], r["threads"]) for r in data["results"]} == {
        (f, t) for f in ("deepgrad", "torch") for t in (1, 2)
    }
    assert (tmp_path / "cores.png").stat().st_size > 10_000


def test_cores_counts_the_multiply_adds_of_a_training_step():
    from benchmarks import cores

    assert cores.thread_counts(1) == [1] and cores.thread_counts(2) == [1, 2] and cores.thread_counts(6) == [1, 2, 4, 6]
    # simple-cnn, batch 100: conv 1→30 (5×5) to 24×24, linear 4320→100, linear 100→10; the conv's input has no grad
    conv, hidden, out = 100 * 30 * 24 * 24 * 25, 100 * 100 * 4320, 100 * 10 * 100
    assert cores.training_multiply_adds(WORKLOADS["cnn"]) == 3 * (conv + hidden + out) - conv


def test_layers_table():
    """benchmarks.layers times a layer under each setting (kernels, NumPy's paths, torch) at each count."""
    layer = "depthwise 3×3, 32 channels, 28×28"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.layers", "--only", layer, "--threads", "1,2"]
        + ["--rounds", "1", "--reps", "1", "--batch", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    header = next(line for line in done.stdout.splitlines() if line.startswith("| layer |"))
    assert "NumPy's paths ms" in header and ("deepgrad ÷ torch" in header) is HAS_TORCH
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith(f"| {layer} |")]
    assert [row[1].strip() for row in rows] == ["1", "2"]
    assert all(float(cell) > 0 for row in rows for cell in row[2:])
