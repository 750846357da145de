"""``python -m benchmarks.layers``: one layer's forward and backward, deepgrad against PyTorch.

For each layer (depthwise convolutions, and resnet-small's dense 3×3 convolutions) and each thread
count (1 and the cores), three settings run in fresh processes, taking turns round by round:
deepgrad as installed (its compiled kernels where numba is), deepgrad on NumPy's paths alone
(``DEEPGRAD_KERNELS=0``) and torch. Each process times ``--reps`` forward and backward passes of a
float32 batch, after one untimed pass; the table gives the median over all rounds, in ms, and
deepgrad's time over torch's.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

# name -> (input channels, output channels, kernel, image size, groups, stride); padding kernel // 2
LAYERS = {
    "depthwise 3×3, 32 channels, 28×28": (32, 32, 3, 28, 32, 1),
    "depthwise 3×3 stride 2, 32 channels, 28×28": (32, 32, 3, 28, 32, 2),
    "depthwise 3×3, 2 filters a channel, 32 channels, 28×28": (32, 64, 3, 28, 32, 1),
    "depthwise 7×7, 64 channels, 14×14": (64, 64, 7, 14, 64, 1),
    "conv 3×3, 16→16, 28×28": (16, 16, 3, 28, 1, 1),
    "conv 3×3, 32→32, 14×14": (32, 32, 3, 14, 1, 1),
}
SETTINGS = ("deepgrad", "deepgrad, NumPy's paths", "torch")


def arrays(layer, batch):
    """Input, weight and upstream gradient of ``layer`` for a batch (float32, fixed seeds)."""
    c, o, k, size, groups, stride = LAYERS[layer]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, c, size, size), dtype=np.float32)
    weight = rng.standard_normal((o, c // groups, k, k), dtype=np.float32)
    out_size = (size - 1) // stride + 1
    return x, weight, rng.standard_normal((batch, o, out_size, out_size), dtype=np.float32)


def child(layer, setting, threads, reps, batch):
    """Print the median seconds of ``reps`` forward and backward passes of ``layer`` under ``setting``."""
    x, weight, grad = arrays(layer, batch)
    (_, _, kernel, _, groups, stride) = LAYERS[layer]
    options = dict(stride=stride, padding=kernel // 2, groups=groups)
    if setting == "torch":
        import torch

        torch.set_num_threads(threads)

        def step():
            inputs = [torch.tensor(a, requires_grad=True) for a in (x, weight)]
            torch.nn.functional.conv2d(*inputs, **options).backward(torch.from_numpy(grad))
    else:
        import deepgrad as dg
        import deepgrad.functional as F

        dg.set_num_threads(threads)

        def step():
            inputs = [dg.tensor(a, requires_grad=True) for a in (x, weight)]
            F.conv2d(*inputs, **options).backward(grad)

    step()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps(statistics.median(times)))


def measure(layers, counts, settings, rounds, reps, batch):
    """{(layer, threads, setting): [seconds per round]}, the settings taking turns in fresh processes."""
    times = {}
    for _ in range(rounds):
        for layer in layers:
            for threads in counts:
                for setting in settings:
                    env = dict(os.environ, DEEPGRAD_KERNELS="0") if setting == SETTINGS[1] else None
                    done = subprocess.run(
                        [sys.executable, "-m", "benchmarks.layers", "--child", layer, setting, str(threads)]
                        + [str(reps), str(batch)],
                        capture_output=True,
                        text=True,
                        check=True,
                        env=env,
                    )
                    times.setdefault((layer, threads, setting), []).append(json.loads(done.stdout))
    return times


def markdown(times, layers, counts, settings, batch):
    with_torch = "torch" in settings
    lines = [
        f"Forward and backward, float32, batch {batch}, ms (median over the rounds)",
        "",
        "| layer | threads | "
        + " | ".join(f"{s} ms" for s in settings)
        + (" | deepgrad ÷ torch |" if with_torch else " |"),
        "|---|---:|" + "---:|" * (len(settings) + with_torch),
    ]
    for layer in layers:
        for threads in counts:
            ms = [statistics.median(times[(layer, threads, s)]) * 1e3 for s in settings]
            ratio = f" {ms[0] / ms[-1]:.2f} |" if with_torch else ""
            lines.append(f"| {layer} | {threads} | " + " | ".join(f"{m:.1f}" for m in ms) + " |" + ratio)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", help="thread counts, comma-separated (default: 1 and the cores)")
    parser.add_argument("--only", nargs="+", choices=list(LAYERS), help="these layers (default: all)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        layer, setting, threads, reps, batch = args.child
        child(layer, setting, int(threads), int(reps), int(batch))
        return
    layers = args.only or list(LAYERS)
    cores = os.cpu_count() or 1
    counts = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, cores})
    settings = SETTINGS if importlib.util.find_spec("torch") else SETTINGS[:2]
    times = measure(layers, counts, settings, args.rounds, args.reps, args.batch)
    print(markdown(times, layers, counts, settings, args.batch))


if __name__ == "__main__":
    main()
