"""``python -m benchmarks.threads``: how fast ``deepgrad train`` steps on one thread, on one per core
split by deepgrad's ops and by the BLAS, and with the default (unset ``--threads``: measured on the
run's first steps), on an idle machine and on one where another process keeps a core busy.

Each (model, threads, load) is a fresh process that trains the model of ``deepgrad train --model M``
(its defaults: Adam, batch 32) on MNIST-shaped random data for a fixed number of steps; the time
is the whole epoch's, the default's first steps (where it tries both counts) included. "busy" runs
a process spinning on one core meanwhile. Prints a Markdown table of ms per step (the median over
``--rounds``) and each setting's time over the best of 1 and all.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

MODELS = {"mlp": 600, "simple-cnn": 200, "resnet-small": 60}  # model -> steps timed
SETTINGS = ("1", "all", "blas", "default")
BATCH = 32


def child(model, threads, steps, data):
    """Train ``model`` for ``steps`` steps with ``threads`` ("1", "all", "blas" or "default"); print
    the seconds and the thread setting the run ended on, as JSON."""
    import deepgrad  # noqa: F401 (imported before timing)
    from deepgrad.threads import get_thread_setting
    from deepgrad.train import build_run

    config = {"data": data, "model": model, "epochs": 1, "val_fraction": 0.01}
    if threads != "default":
        config["threads"] = 1 if threads == "1" else os.cpu_count()
        config["threads_by"] = "blas" if threads == "blas" else "ops"
    run = build_run(config, progress=False)
    loader = run.loaders[0]
    start = time.perf_counter()
    run.trainer.fit(loader, None, epochs=1)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "steps": len(loader), "threads": str(get_thread_setting())}))


def write_data(path, steps):
    rng = np.random.default_rng(0)
    n = int(steps * BATCH / 0.79) + 1  # the arrays data set keeps a fifth for testing and 1 % for validation
    np.savez(path, x=rng.random((n, 28, 28), dtype=np.float32), y=rng.integers(0, 10, n))


def measure(model, threads, steps, data, busy):
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.threads", "--child", model, threads, str(steps), data],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return 1000 * result["seconds"] / result["steps"], result["threads"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.threads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="processes per (model, threads, load) (default: 2)")
    parser.add_argument("--only", help=f"comma-separated models (default: {','.join(MODELS)})")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        model, threads, steps, data = args.child
        return child(model, threads, int(steps), data)
    models = args.only.split(",") if args.only else list(MODELS)
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start; {args.rounds} rounds\n")
    print(
        "| model | load | 1 thread ms/step | all ms/step | all by the BLAS ms/step | "
        "default ms/step (threads chosen) | 1 ÷ best | all ÷ best | by the BLAS ÷ best | default ÷ best |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for model in models:
            data = os.path.join(scratch, f"{model}.npz")
            write_data(data, MODELS[model])
            for busy in (False, True):
                times, chosen = {s: [] for s in SETTINGS}, []
                for _ in range(args.rounds):
                    for setting in SETTINGS:  # the settings take turns, so a slow spell hits each
                        ms, threads = measure(model, setting, MODELS[model], data, busy)
                        times[setting].append(ms)
                        if setting == "default":
                            chosen.append(threads)
                median = {s: statistics.median(t) for s, t in times.items()}
                best = min(median["1"], median["all"], median["blas"])
                print(
                    f"| {model} | {'busy' if busy else 'idle'} | {median['1']:.1f} | {median['all']:.1f} | "
                    f"{median['blas']:.1f} | {median['default']:.1f} ({', '.join(chosen)}) | "
                    f"{median['1'] / best:.2f} | {median['all'] / best:.2f} | {median['blas'] / best:.2f} | "
                    f"{median['default'] / best:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    sys.exit(main())
