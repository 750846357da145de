"""``python -m benchmarks.gpu_check``: without a GPU it is a dry run that installs nothing; its choices
of what to install follow the pinned CuPy range of pyproject.toml's ``cuda`` extra."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_check

ROOT = Path(__file__).resolve().parent.parent


def test_dry_run_without_nvidia_smi(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()  # a PATH without nvidia-smi (nor pip)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--out", str(out)],
        cwd=ROOT,
        env=dict(os.environ, PATH=str(empty)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "dry run" in done.stdout and "nvidia-smi not found" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "dry-run" and summary["steps"] == []
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]  # nothing installed, run or logged


def test_dry_run_when_cupy_sees_no_gpu(tmp_path, monkeypatch):
    """nvidia-smi answers but CuPy (of the pinned range) sees no device: said, and nothing installed or run."""
    calls = []
    monkeypatch.setattr(gpu_check, "nvidia_smi", lambda: ("NVIDIA-SMI 580.1  CUDA Version: 13.0", ""))
    monkeypatch.setattr(gpu_check, "probe_cupy", lambda: {"version": "14.2.0", "devices": 0, "error": "no device"})
    monkeypatch.setattr(gpu_check.subprocess, "run", lambda *a, **k: calls.append(a) or _fail(a))
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "dry-run" and "sees no GPU" in summary["reason"] and not calls


def _fail(args):
    raise AssertionError(f"gpu_check ran {args} in a dry run")


def test_the_pinned_range_is_the_cuda_extras():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    low, high = gpu_check.CUPY_RANGE
    assert extras["cuda"] == [f"cupy-cuda12x>={low},<{high}"]
    assert gpu_check.in_range("14.2.0") and not gpu_check.in_range("13.6.0") and not gpu_check.in_range("15.0.0")
    assert gpu_check.install_command(12)[-2:] == ["-e", ".[cuda]"]
    assert gpu_check.install_command(None)[-2:] == ["-e", ".[cuda]"]
    assert gpu_check.install_command(13)[-1] == f"cupy-cuda13x>={low},<{high}"
    assert gpu_check.cuda_major("| NVIDIA-SMI 580.159.04   Driver Version: 580.159.04   CUDA Version: 13.0 |") == 13


def _simulated(monkeypatch, cupy_before, cupy_after=None):
    """gpu_check's steps recorded instead of run, on a machine whose nvidia-smi and CuPy are as given."""
    ran = []
    probes = [cupy_before, cupy_after if cupy_after is not None else cupy_before]
    monkeypatch.setattr(gpu_check, "nvidia_smi", lambda: ("NVIDIA-SMI 580.1  CUDA Version: 13.0", ""))
    monkeypatch.setattr(gpu_check, "probe_cupy", lambda: probes.pop(0) if len(probes) > 1 else probes[0])
    monkeypatch.setattr(
        gpu_check.subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout="2.4.6 0.1.0\n", stderr=""),
    )

    def run(self, name, command, log, limit, env=None):
        ran.append((name, command))
        (self.out / log).write_text("1 passed\n")
        if name == "benchmarks":
            rows = [{"workload": "mlp", "framework": "deepgrad", "status": "ok"}]
            (self.out / "bench.json").write_text(json.dumps({"results": rows}))
        step = {"name": name, "command": command, "log": log, "returncode": 0, "ok": True, "seconds": 0.0}
        self.summary["steps"].append(step)
        return step

    monkeypatch.setattr(gpu_check.Check, "run", run)
    return ran


def test_a_gpu_run_tests_then_benchmarks_without_installing_a_pinned_cupy(tmp_path, monkeypatch):
    ran = _simulated(monkeypatch, {"version": "14.2.0", "devices": 1, "error": None})
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    assert [name for name, _ in ran] == ["device-tests", "benchmarks"]
    tests, bench = ran[0][1], ran[1][1]
    assert all(path in tests for path in gpu_check.DEVICE_TESTS)
    assert bench[1:5] == ["-m", "benchmarks", "--device", "cuda"] and gpu_check.TRAINING_WORKLOADS in bench
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "passed" and summary["environment"]["cupy"]["version"] == "14.2.0"
    assert summary["steps"][-1]["measured"] == ["mlp"]


def test_a_gpu_run_that_never_reached_the_gpu_fails(tmp_path, monkeypatch):
    """Tests that skipped every cuda case, or a benchmark that timed nothing there, are no pass."""
    _simulated(monkeypatch, {"version": "14.2.0", "devices": 1, "error": None})
    run = gpu_check.Check.run

    def skipping(self, name, command, log, limit, env=None):
        step = run(self, name, command, log, limit, env)
        if name == "device-tests":
            (self.out / log).write_text(f"SKIPPED [415] tests/conftest.py: {gpu_check.SKIPPED_CUDA}\n")
        else:
            (self.out / "bench.json").write_text(json.dumps({"results": []}))
        return step

    monkeypatch.setattr(gpu_check.Check, "run", skipping)
    assert gpu_check.main(["--out", str(tmp_path)]) == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and [s["ok"] for s in summary["steps"]] == [False, False]


def test_a_gpu_run_installs_the_pinned_cupy_first_when_it_is_missing(tmp_path, monkeypatch):
    ran = _simulated(monkeypatch, None, {"version": "14.2.0", "devices": 1, "error": None})
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    assert [name for name, _ in ran] == ["install", "device-tests", "benchmarks"]
    assert ran[0][1][-1] == "cupy-cuda13x>=14,<15"  # the driver's CUDA 13 build of the pinned range
