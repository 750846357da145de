"""One (framework, workload) measurement, run in a fresh process by ``python -m benchmarks``:

    python -m benchmarks.child FRAMEWORK WORKLOAD --steps N --reps R --warmup W --threads T --device D

The thread-count environment variables are set by the parent before this process starts (NumPy's
BLAS reads them at import). Prints one line ``RESULT {json}``: the timings, or why it was skipped.
"""

import argparse
import importlib
import json
import resource
import statistics
import sys
import time

from .workloads import WORKLOADS, make_data

MARKER = "RESULT "


def peak_rss_mb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def time_steps(step, steps, reps, warmup, synchronize=lambda: None):
    """Seconds of each of ``reps`` repetitions of ``steps`` calls, after ``warmup`` untimed calls;
    ``synchronize`` waits for queued GPU work before each clock reading."""
    out = None
    for _ in range(warmup):
        out = step()
    seconds = []
    for _ in range(reps):
        synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            out = step()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds, out


def measure(framework, workload, steps, reps, warmup, threads, device="cpu"):
    try:
        module = importlib.import_module(f"benchmarks.fw_{framework}")
    except ModuleNotFoundError as error:
        if error.name != framework:  # a missing framework is skipped; a broken one is an error
            raise
        return {"status": "skipped", "note": f"{framework} is not installed"}
    if hasattr(module, "set_threads"):
        module.set_threads(threads)
    rss_import = peak_rss_mb()
    x, y = make_data(workload)
    if device != "cpu" and device not in getattr(module, "DEVICES", ("cpu",)):
        return {"status": "skipped", "note": f"{framework} runs on the CPU only"}
    try:
        step, n_params = module.build(workload, x, y, device) if device != "cpu" else module.build(workload, x, y)
    except NotImplementedError as error:
        where = f"{workload.name} on {device}" if device != "cpu" else workload.name
        return {"status": "skipped", "note": f"{framework} has no {where}: {error}"}
    synchronize = getattr(module, "synchronize", lambda device: None)
    seconds, out = time_steps(step, steps, reps, warmup, lambda: synchronize(device))
    per_step = statistics.median(seconds) / steps
    return {
        "status": "ok",
        "version": module.VERSION,
        "params": int(n_params),
        "ms_per_step": 1e3 * per_step,
        "samples_per_s": workload.batch / per_step,
        "rep_ms_per_step": [1e3 * s / steps for s in seconds],
        "peak_rss_mb": peak_rss_mb(),
        "import_rss_mb": rss_import,
        "final_loss": float(out) if workload.train else None,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.child")
    parser.add_argument("framework")
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    for name in ("steps", "reps", "warmup", "threads"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    result = measure(
        args.framework, WORKLOADS[args.workload], args.steps, args.reps, args.warmup, args.threads, args.device
    )
    print(MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
