"""``python -m benchmarks.gpu_check --out DIR``: the one prepared check of the GPU path.

On a machine with an NVIDIA GPU it, in order, within a budget of 8 minutes (each step with its own
time limit, cut to what the budget has left):

1. finds the GPU (``nvidia-smi``) and CuPy; installs the ``cuda`` extra (``pip install -e
   '.[cuda]'``: ``cupy-cuda12x>=14,<15``; ``cupy-cuda13x`` of the same range for a CUDA 13 driver)
   only when no CuPy of the pinned range is importable;
2. runs the device tests (``pytest tests/test_device_ops.py tests/test_device_training.py
   tests/test_device_stand_in.py``: every case on "cuda" as on the stand-in);
3. times the training workloads on the GPU (``python -m benchmarks --device cuda``, deepgrad on CuPy
   against torch CUDA when torch has CUDA);

and writes what it saw to DIR: ``summary.json`` (each step's command, exit code, seconds, and the
environment), ``environment.txt``, one log per step and the benchmark's ``bench.json``. It exits 0
when every step passed, 1 otherwise.

Without a GPU (no ``nvidia-smi``, or CuPy sees no device) it says so, writes ``summary.json`` with
``"status": "dry-run"`` and exits 0, installing nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CUPY_RANGE = (14, 15)  # the pinned CuPy major versions: >=14,<15 (pyproject.toml's cuda extra)
BUDGET_S = 480.0  # 8 minutes for everything
STEP_LIMITS_S = {"install": 150.0, "device-tests": 270.0, "benchmarks": 170.0}
DEVICE_TESTS = ("tests/test_device_ops.py", "tests/test_device_training.py", "tests/test_device_stand_in.py")
TRAINING_WORKLOADS = "mlp,mlp-bn,cnn,resnet-small"
SKIPPED_CUDA = "needs CuPy and an NVIDIA GPU"  # tests/conftest.py's reason for skipping the cuda cases
PROBE = (
    "import json, cupy\n"
    "try:\n"
    "    count = cupy.cuda.runtime.getDeviceCount()\n"
    "except Exception as error:\n"
    "    count, error = 0, str(error)\n"
    "else:\n"
    "    error = None\n"
    "print(json.dumps({'version': cupy.__version__, 'devices': count, 'error': error}))\n"
)


class Check:
    """The steps' records and the time left of the budget."""

    def __init__(self, out: Path, budget: float) -> None:
        self.out, self.deadline = out, time.monotonic() + budget
        self.summary: dict = {"status": "running", "steps": [], "environment": {}}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, command: list[str], log: str, limit: float, env: dict | None = None) -> dict:
        """``command`` in the repository, its output in DIR/``log``, stopped after ``limit`` seconds (or
        what the budget has left, keeping 10 s to write the summary)."""
        timeout = max(1.0, min(limit, self.left() - 10.0))
        start = time.monotonic()
        step = {"name": name, "command": command, "log": log, "timeout_s": round(timeout, 1)}
        print(f"gpu_check: {name}: {' '.join(command)} (at most {timeout:.0f} s)", flush=True)
        with open(self.out / log, "w") as handle:
            try:
                done = subprocess.run(
                    command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout, env=env
                )
                step.update(returncode=done.returncode, timed_out=False)
            except subprocess.TimeoutExpired:
                step.update(returncode=None, timed_out=True)
                handle.write(f"\ngpu_check: stopped after {timeout:.0f} s\n")
        step["seconds"] = round(time.monotonic() - start, 1)
        step["ok"] = step["returncode"] == 0
        self.summary["steps"].append(step)
        print(f"gpu_check: {name}: {'ok' if step['ok'] else 'FAILED'} in {step['seconds']} s", flush=True)
        self.write()
        return step

    def write(self) -> None:
        (self.out / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")


def nvidia_smi() -> tuple[str | None, str]:
    """(the GPUs and driver as nvidia-smi lists them, or None without a working nvidia-smi; why not)."""
    if shutil.which("nvidia-smi") is None:
        return None, "nvidia-smi not found"
    try:
        done = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"nvidia-smi failed: {error}"
    if done.returncode != 0 or "NVIDIA-SMI" not in done.stdout:
        return None, f"nvidia-smi found no GPU (exit code {done.returncode})"
    return done.stdout, ""


def cuda_major(smi: str) -> int | None:
    """The CUDA version the driver supports, as nvidia-smi's header gives it ("CUDA Version: 13.0")."""
    found = re.search(r"CUDA Version:\s*(\d+)", smi)
    return int(found.group(1)) if found else None


def probe_cupy() -> dict | None:
    """CuPy's version and how many GPUs it sees, from a fresh interpreter (None: no importable CuPy)."""
    try:
        done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return {"version": "?", "devices": 0, "error": "importing CuPy took over 120 s"}
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def in_range(version: str) -> bool:
    major = version.split(".")[0]
    return major.isdigit() and CUPY_RANGE[0] <= int(major) < CUPY_RANGE[1]


def install_command(major: int | None) -> list[str]:
    """The pinned CuPy: the ``cuda`` extra (CUDA 12's build); the CUDA 13 build of the same range for a
    driver of CUDA 13 or later."""
    if major is not None and major >= 13:
        return [sys.executable, "-m", "pip", "install", f"cupy-cuda{major}x>={CUPY_RANGE[0]},<{CUPY_RANGE[1]}"]
    return [sys.executable, "-m", "pip", "install", "-e", ".[cuda]"]


def _measured(path: Path) -> list[str]:
    """The workloads deepgrad was timed on in the benchmark's results (none if it wrote none)."""
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return []
    return [r["workload"] for r in results if r.get("framework") == "deepgrad" and r.get("status") == "ok"]


def dry_run(check: Check, reason: str) -> int:
    print(f"gpu_check: dry run: {reason}; no GPU to check here, nothing installed or run.", flush=True)
    check.summary.update(status="dry-run", reason=reason)
    check.write()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the summary, logs and benchmark results")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for everything (default: %(default)s)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.budget)
    environment = check.summary["environment"]
    environment.update(python=sys.version.split()[0], executable=sys.executable)

    smi, reason = nvidia_smi()
    if smi is None:
        return dry_run(check, reason)
    environment["cuda_driver_major"] = cuda_major(smi)
    (args.out / "environment.txt").write_text(smi)

    cupy = probe_cupy()
    if cupy is None or not in_range(cupy["version"]):
        found = "no CuPy" if cupy is None else f"CuPy {cupy['version']}, outside >={CUPY_RANGE[0]},<{CUPY_RANGE[1]}"
        print(f"gpu_check: {found}: installing the pinned CuPy", flush=True)
        install = check.run("install", install_command(cuda_major(smi)), "install.log", STEP_LIMITS_S["install"])
        cupy = probe_cupy() if install["ok"] else cupy
        if cupy is None:
            check.summary.update(status="failed", reason="no CuPy could be installed (no network? carry a wheel)")
            check.write()
            return 1
    environment["cupy"] = cupy
    if not cupy["devices"]:
        return dry_run(check, f"CuPy {cupy['version']} sees no GPU ({cupy.get('error') or '0 devices'})")

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    try:
        versions = subprocess.run(
            [sys.executable, "-c", "import numpy, deepgrad; print(numpy.__version__, deepgrad.__version__)"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )
        environment["numpy_deepgrad"] = versions.stdout.strip() or versions.stderr.strip()[-300:]
    except subprocess.TimeoutExpired:
        environment["numpy_deepgrad"] = "importing deepgrad took over 60 s"
    check.write()

    tests = [sys.executable, "-m", "pytest", *DEVICE_TESTS, "-p", "no:cacheprovider", "-rfEs", "--maxfail=100"]
    step = check.run("device-tests", tests, "device-tests.log", STEP_LIMITS_S["device-tests"], env)
    if SKIPPED_CUDA in (args.out / "device-tests.log").read_text():  # a pass that never reached the GPU is none
        step.update(ok=False, note="the cuda cases were skipped: deepgrad could not use the GPU")
        print(f"gpu_check: device-tests: FAILED: {step['note']}", flush=True)
        check.write()
    bench = [
        sys.executable,
        "-m",
        "benchmarks",
        "--device",
        "cuda",
        "--only",
        TRAINING_WORKLOADS,
        "--frameworks",
        "deepgrad,torch",
        "--rounds",
        "1",
        "--reps",
        "5",
        "--timeout",
        "120",
        "--json",
        str(args.out.resolve() / "bench.json"),
    ]
    step = check.run("benchmarks", bench, "bench.log", STEP_LIMITS_S["benchmarks"], env)
    measured = _measured(args.out / "bench.json")
    step["measured"] = measured
    if step["ok"] and not measured:  # every row skipped or failed: nothing was timed on the GPU
        step.update(ok=False, note="deepgrad timed no workload on cuda (see bench.log)")
        print(f"gpu_check: benchmarks: FAILED: {step['note']}", flush=True)
        check.write()
    passed = all(step["ok"] for step in check.summary["steps"])
    check.summary["status"] = "passed" if passed else "failed"
    check.write()
    print(f"gpu_check: {check.summary['status']}; results in {args.out}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
