"""``python -m benchmarks.cores``: how a training step scales with threads, deepgrad against PyTorch.

For each workload (cnn, resnet-small and resnet-wide: widths 32 and 64, two blocks a stage) and each
thread count (1, 2, 4, ... up to the cores, and the cores), deepgrad and torch each train in a fresh
process (``benchmarks.child``) on that many threads, taking turns round by round. Prints a Markdown
table of ms per step, each framework's speed-up over its own one-thread step, deepgrad's speed
relative to torch's (torch's ms ÷ deepgrad's), and the GEMM floor: the step's multiply-adds in
convolutions and linear layers at this machine's measured GEMM rate on that many threads, as a share
of deepgrad's step (100 % would be a step that does nothing but GEMMs at full speed). Writes the
results as JSON and the speed-up curves as a figure.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from deepgrad import kernels

from .__main__ import run_one
from .workloads import WORKLOADS, make_data

NAMES = ("cnn", "resnet-small", "resnet-wide")
FRAMEWORKS = ("deepgrad", "torch")
RESULTS = Path(__file__).resolve().parent / "results"


def thread_counts(cores):
    """1, 2, 4, ... below ``cores``, then ``cores``."""
    counts = [1]
    while counts[-1] * 2 < cores:
        counts.append(counts[-1] * 2)
    return counts + [cores] if cores > 1 else counts


def training_multiply_adds(workload):
    """Multiply-adds of the GEMMs of one training step of ``workload``: each convolution and linear
    layer's forward product, its weight gradient, and its input gradient (but the first layer's,
    whose input needs none)."""
    import deepgrad as dg
    from deepgrad import nn
    from deepgrad.train import presets

    model = presets.build(workload.model, workload.input_shape, 10, **workload.options)
    products = []

    def count(module, inputs, output):
        weight = module.weight.data
        per_output = weight[0].size  # (C·kh·kw) for a convolution, in_features for a linear layer
        products.append(output.data.size * per_output)

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_forward_hook(count)
    with dg.no_grad():
        model(dg.tensor(make_data(workload)[0]))
    return 3 * sum(products) - products[0]


def gemm_rate(threads, size=1024):
    """Multiply-adds per second of a float32 (size × size) GEMM on ``threads`` BLAS threads (best of 5)."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    with threadpool_limits(threads, user_api="blas"):
        np.matmul(a, a)
        best = min(_seconds(lambda: np.matmul(a, a)) for _ in range(5))
    return size**3 / best


def _seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(names, counts, rounds, reps):
    """{(workload, framework, threads): median ms/step over the rounds' repetitions}."""
    times = {}
    for name in names:
        for threads in counts:
            args = argparse.Namespace(
                steps=None, quick=False, reps=reps, warmup=2, threads=threads, device="cpu", timeout=900
            )
            samples = {framework: [] for framework in FRAMEWORKS}
            for round_ in range(rounds):
                for framework in FRAMEWORKS[round_ % 2 :] + FRAMEWORKS[: round_ % 2]:  # taking turns
                    result = run_one(framework, WORKLOADS[name], args)
                    if result["status"] != "ok":
                        raise SystemExit(f"{name} / {framework} / {threads} threads: {result['note']}")
                    samples[framework] += result["rep_ms_per_step"]
                    print(
                        f"{name:<13} {framework:<9} {threads:>2} threads  round {round_ + 1}/{rounds}  "
                        f"{result['ms_per_step']:.1f} ms/step",
                        file=sys.stderr,
                        flush=True,
                    )
            for framework, reps_ms in samples.items():
                times[name, framework, threads] = statistics.median(reps_ms)
    return times


def markdown(times, names, counts, floors, meta):
    lines = [
        f"### Training step over threads: float32, median of {meta['rounds']} rounds × {meta['reps']} repetitions; "
        f"{meta['cpu_count']} cores, load average {meta['loadavg']:.2f} at the start; "
        f"deepgrad's kernels: {meta.get('kernels', 'not recorded')}",
        "",
        "| workload | threads | deepgrad ms/step | torch ms/step | deepgrad speed-up | torch speed-up "
        "| deepgrad speed ÷ torch's | GEMM floor ms (share of deepgrad's step) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        for threads in counts:
            ours, theirs = times[name, "deepgrad", threads], times[name, "torch", threads]
            floor = floors[name, threads]
            lines.append(
                f"| {name} | {threads} | {ours:.1f} | {theirs:.1f} "
                f"| {times[name, 'deepgrad', 1] / ours:.2f}× | {times[name, 'torch', 1] / theirs:.2f}× "
                f"| {theirs / ours:.2f}× | {floor:.1f} ({floor / ours:.0%}) |"
            )
    lines += [
        "",
        "speed-up: the framework's one-thread ms/step over this row's; deepgrad speed ÷ torch's above 1× is "
        "deepgrad ahead. GEMM floor: the step's convolution and linear multiply-adds at this machine's "
        f"float32 GEMM rate on that many threads ({', '.join(f'{r / 1e9:.0f}' for r in meta['gemm_rates'])} "
        "G multiply-adds/s).",
    ]
    return "\n".join(lines) + "\n"


def figure(times, names, counts, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), names):
        ax.plot(counts, counts, color="0.75", linestyle=":", label="ideal")
        for framework, style in zip(FRAMEWORKS, ("-o", "--s")):
            speedups = [times[name, framework, 1] / times[name, framework, t] for t in counts]
            ax.plot(counts, speedups, style, label=framework)
        ax.set_title(
            f"{name} ({times[name, 'deepgrad', 1]:.0f} / {times[name, 'torch', 1]:.0f} ms on 1 thread)", fontsize=10
        )
        ax.set_xlabel("threads")
        ax.set_xticks(counts)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("speed-up over 1 thread (×)")
    np.atleast_1d(axes)[0].legend()
    fig.suptitle("Training step speed-up with threads (deepgrad vs PyTorch CPU; titles: ms/step deepgrad / torch)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cores", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated workloads (default: {','.join(NAMES)})")
    parser.add_argument("--threads", help="comma-separated thread counts (default: 1, 2, 4, ... and the cores)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per (workload, framework, threads)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per process")
    parser.add_argument("--json", type=Path, default=RESULTS / "cores.json")
    parser.add_argument("--figure", type=Path, default=RESULTS / "cores.png")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(NAMES)
    unknown = [name for name in names if name not in WORKLOADS or not WORKLOADS[name].train]
    if unknown:
        parser.error(f"unknown training workload(s): {', '.join(unknown)}")
    counts = [int(t) for t in args.threads.split(",")] if args.threads else thread_counts(os.cpu_count() or 1)
    meta = {"cpu_count": os.cpu_count(), "loadavg": os.getloadavg()[0], "rounds": args.rounds, "reps": args.reps}
    meta["kernels"] = kernels.describe()
    meta["gemm_rates"] = [gemm_rate(threads) for threads in counts]
    times = measure(names, counts, args.rounds, args.reps)
    floors = {
        (name, threads): 1e3 * training_multiply_adds(WORKLOADS[name]) / rate
        for name in names
        for threads, rate in zip(counts, meta["gemm_rates"])
    }
    sys.stdout.write(markdown(times, names, counts, floors, meta))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"workload": name, "framework": framework, "threads": threads, "ms_per_step": times[name, framework, threads]}
        for name, framework, threads in times
    ]
    floor_rows = [{"workload": n, "threads": t, "gemm_floor_ms": ms} for (n, t), ms in floors.items()]
    args.json.write_text(json.dumps({"meta": meta, "results": rows, "gemm_floor": floor_rows}, indent=2) + "\n")
    figure(times, names, counts, args.figure)
    print(f"results written to {args.json}, figure to {args.figure}", file=sys.stderr)


if __name__ == "__main__":
    main()
