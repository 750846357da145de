"""``python -m benchmarks``: every (framework, workload) in its own process, then a Markdown table
on stdout and the full results as JSON. See ``benchmarks/__init__.py``."""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from deepgrad import kernels

from .child import MARKER
from .workloads import WORKLOADS

FRAMEWORKS = ("deepgrad", "torch", "dezero", "numpy")
REFERENCES = ("torch", "dezero")  # every row's time is also given as a multiple of these
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
LEGEND = (
    "numpy is the mlp / mlp-bn / cnn step written by hand with NumPy matmuls on preallocated buffers "
    "(no autograd): the floor for a NumPy library. time ÷ X = this row's ms/step over X's (lower is "
    "faster); best = the fastest repetition, and best ÷ torch's best the ratio of the fastest ones (on a "
    "shared machine, compare both); spread = (slowest − fastest repetition) / median; over import = peak "
    "RSS minus the peak after importing the framework (the model, data, graph and workspace)."
)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Training-step (forward + backward + SGD) and inference speed and memory of deepgrad "
        "against PyTorch (CPU), DeZero and hand-written NumPy, each in its own process.",
    )
    parser.add_argument("--quick", action="store_true", help="1 step x 3 repetitions: a smoke test (CI)")
    parser.add_argument("--only", metavar="NAME[,NAME]", help=f"workloads to run: {', '.join(WORKLOADS)}")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP/torch threads (default: %(default)s)")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: deepgrad on CuPy against torch CUDA (the others are CPU-only and skipped)",
    )
    parser.add_argument("--steps", type=int, help="steps per repetition (default: per workload, 1 with --quick)")
    parser.add_argument("--reps", type=int, help="timed repetitions (default: 7, 3 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: 3, 1 with --quick)")
    parser.add_argument(
        "--rounds",
        type=int,
        help="processes per (framework, workload), the frameworks taking "
        "turns round by round (default: 3, 1 with --quick)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per process (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write the results here (default: %(default)s)")
    args = parser.parse_args(argv)
    args.frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = [f for f in args.frameworks if f not in FRAMEWORKS]
    if unknown:
        parser.error(f"unknown framework(s) {', '.join(unknown)}; available: {', '.join(FRAMEWORKS)}")
    args.workloads = (
        [name for name, w in WORKLOADS.items() if w.default]
        if not args.only
        else [w.strip() for w in args.only.split(",") if w.strip()]
    )
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; available: {', '.join(WORKLOADS)}")
    for name in ("threads", "steps", "reps", "warmup", "rounds"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "warmup" else 1):
            parser.error(f"--{name} must be {'>= 0' if name == 'warmup' else 'positive'}, got {value}")
    args.reps = args.reps or (3 if args.quick else 7)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    return args


def child_env(threads):
    env = dict(os.environ, **{name: str(threads) for name in THREAD_VARIABLES})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_one(framework, workload, args):
    """Run one measurement in a fresh interpreter; returns its result dict (status ok, skipped or error)."""
    steps = args.steps or (1 if args.quick else workload.steps)
    command = [
        sys.executable,
        "-m",
        "benchmarks.child",
        framework,
        workload.name,
        "--steps",
        str(steps),
        "--reps",
        str(args.reps),
        "--warmup",
        str(args.warmup),
        "--threads",
        str(args.threads),
        "--device",
        args.device,
    ]
    row = {
        "workload": workload.name,
        "framework": framework,
        "batch": workload.batch,
        "steps": steps,
        "reps": args.reps,
        "warmup": args.warmup,
    }
    try:
        done = subprocess.run(
            command, env=child_env(args.threads), capture_output=True, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        return {**row, "status": "error", "note": f"timed out after {args.timeout:g}s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {**row, "status": "error", "note": f"exit code {done.returncode}: {last}"}
    return {**row, **json.loads(lines[-1][len(MARKER) :])}


def merge_rounds(rounds):
    """One result from the rounds of a (framework, workload): the median and best over all their
    repetitions; the first failure or skip if any round did not measure."""
    failed = [r for r in rounds if r["status"] != "ok"]
    if failed:
        return failed[0]
    reps = [ms for r in rounds for ms in r["rep_ms_per_step"]]
    ms = statistics.median(reps)
    largest = max(rounds, key=lambda r: r["peak_rss_mb"])  # its peak, and its own import baseline
    return {
        **largest,
        "reps": len(reps),
        "rounds": len(rounds),
        "rep_ms_per_step": reps,
        "ms_per_step": ms,
        "samples_per_s": largest["batch"] * 1e3 / ms,
    }


def add_ratios(results):
    """time ÷ torch and time ÷ dezero for every measured row, of the medians and of the best
    repetitions ("vs_torch", "vs_torch_best", ...; None where the reference has no number)."""
    ok = {(r["workload"], r["framework"]): r for r in results if r["status"] == "ok"}
    for r in results:
        for reference in REFERENCES:
            base = ok.get((r["workload"], reference)) if r["status"] == "ok" else None
            r[f"vs_{reference}"] = r["ms_per_step"] / base["ms_per_step"] if base else None
            r[f"vs_{reference}_best"] = min(r["rep_ms_per_step"]) / min(base["rep_ms_per_step"]) if base else None


def markdown(results, meta):
    def ratio(value):
        return f"{value:.2f}×" if value is not None else "–"

    where = "CPU" if meta["device"] == "cpu" else f"{meta['device']} (GPU)"
    title = (
        f"deepgrad benchmarks: float32 on {where}, {meta['threads']} threads, median of {meta['rounds']} "
        f"rounds x {meta['reps']} repetitions{' (--quick)' if meta['quick'] else ''}; "
        f"load average {meta['loadavg_start']} on {meta['cpu_count']} CPUs; NumPy's BLAS: {meta['blas']}; "
        f"deepgrad's kernels: {meta.get('kernels', 'not recorded')}"
        + (f"; deepgrad {meta['commit']}" if meta.get("commit") else "")
    )
    lines = [
        f"### {title}",
        "",
        "| workload | framework | batch | samples/s | ms/step | best | spread | peak RSS (MB) | over import (MB) "
        "| time ÷ torch | best ÷ torch's best | time ÷ dezero |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for r in results:
        if r["status"] == "skipped":
            if r["framework"] not in meta["not_installed"]:  # those get one line below the table
                notes.append(f"- {r['workload']} / {r['framework']}: skipped, {r['note']}")
            continue
        if r["status"] == "error":
            lines.append(f"| {r['workload']} | {r['framework']} | {r['batch']} | error | | | | | | | | |")
            notes.append(f"- {r['workload']} / {r['framework']}: ERROR, {r['note']}")
            continue
        reps = r["rep_ms_per_step"]
        spread = (max(reps) - min(reps)) / r["ms_per_step"]
        lines.append(
            f"| {r['workload']} | {r['framework']} | {r['batch']} | {r['samples_per_s']:,.0f} "
            f"| {r['ms_per_step']:.2f} | {min(reps):.2f} | {spread:.0%} | {r['peak_rss_mb']:.0f} "
            f"| {r['peak_rss_mb'] - r['import_rss_mb']:.0f} "
            f"| {ratio(r['vs_torch'])} | {ratio(r['vs_torch_best'])} | {ratio(r['vs_dezero'])} |"
        )
    lines += ["", LEGEND]
    missing = [f for f in meta["frameworks"] if f in meta["not_installed"]]
    if missing:
        lines.append(f"Not installed, skipped: {', '.join(missing)} (pip install 'deepgrad[bench]').")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def main(argv=None):
    args = parse_args(argv)
    not_installed = [f for f in args.frameworks if f in REFERENCES and importlib.util.find_spec(f) is None]
    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "threads": args.threads,
        "device": args.device,
        "rounds": args.rounds,
        "reps": args.reps,
        "warmup": args.warmup,
        "frameworks": args.frameworks,
        "not_installed": not_installed,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "blas": numpy_blas(),
        "kernels": kernels.describe(),
        "commit": source_commit(),
        "loadavg_start": _loadavg(),
    }
    results = []
    for name in args.workloads:
        installed = [f for f in args.frameworks if f not in not_installed]
        runs = {framework: [] for framework in installed}
        for round_ in range(args.rounds):
            # the frameworks take turns, in a rotated order each round, so a slow spell of the
            # machine does not fall on one of them
            for framework in installed[round_ % len(installed) :] + installed[: round_ % len(installed)]:
                print(
                    f"{name:<18} {framework:<9} round {round_ + 1}/{args.rounds}  ", end="", file=sys.stderr, flush=True
                )
                result = run_one(framework, WORKLOADS[name], args)
                runs[framework].append(result)
                status = f"{result['ms_per_step']:.2f} ms/step" if result["status"] == "ok" else result["status"]
                print(status, file=sys.stderr, flush=True)
        for framework in args.frameworks:
            if framework in not_installed:
                results.append(
                    {
                        "workload": name,
                        "framework": framework,
                        "batch": WORKLOADS[name].batch,
                        "status": "skipped",
                        "note": f"{framework} is not installed",
                    }
                )
            else:
                results.append(merge_rounds(runs[framework]))
    meta["loadavg_end"] = _loadavg()
    add_ratios(results)
    sys.stdout.write(markdown(results, meta))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"results written to {args.json}", file=sys.stderr)
    return 1 if any(r["status"] == "error" for r in results) else 0


def numpy_blas():
    """NumPy's BLAS as "openblas 0.3.31 (Haswell kernels)": which kernels OpenBLAS runs decides much
    of a GEMM's speed (OPENBLAS_CORETYPE can force older ones than the CPU has)."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to see it)"
    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    ours = [p for p in pools if "numpy" in p["filepath"]] or pools
    if not ours:
        return f"not found (NumPy {np.__version__})"
    pool = ours[0]
    kernels = f" ({pool['architecture']} kernels)" if pool.get("architecture") else ""
    return f"{pool['internal_api']} {pool['version']}{kernels}"


def source_commit():
    """The git commit of the deepgrad source being timed (with "+changes" when the tree differs
    from it), or None outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if dirty else "")


def _loadavg():
    try:
        return " ".join(f"{value:.1f}" for value in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


if __name__ == "__main__":
    sys.exit(main())
