"""``python -m benchmarks.trainer``: what the Trainer adds to a training step.

The same tiny MLP (64-32-10, batch 32, float32, one BLAS thread) is trained for the same steps in
two ways, taking turns in one process: a bare loop (forward, cross-entropy, zero_grad, backward,
SGD step, ``loss.item()``) and ``Trainer.fit`` with no callbacks and with the observers a
``deepgrad train`` run without a directory has (progress off, best weights). A tiny model makes
the step short (~0.2 ms), so the Trainer's own cost — its events, policies and bookkeeping — shows.
Prints µs per step of each and the Trainer's overhead over the bare loop (medians of ``--rounds``).

    python -m benchmarks.trainer --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

STEPS = 400
BATCH = 32


def make_model():
    import deepgrad as dg
    from deepgrad import nn

    dg.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def data():
    from deepgrad.data import DataLoader, TensorDataset

    rng = np.random.default_rng(0)
    x = rng.standard_normal((STEPS * BATCH, 64)).astype(np.float32)
    y = rng.integers(0, 10, STEPS * BATCH)
    return DataLoader(TensorDataset(x, y), BATCH)


def bare(loader) -> float:
    import deepgrad as dg
    import deepgrad.functional as F

    model = make_model()
    opt = dg.optim.SGD(model.parameters(), lr=0.01)
    start = time.perf_counter()
    for inputs, targets in loader:
        loss = F.cross_entropy(model(inputs), targets)
        loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def with_trainer(loader, observers: bool) -> float:
    import deepgrad as dg
    import deepgrad.functional as F
    from deepgrad.train import BestWeights, ProgressBar, Trainer

    model = make_model()
    opt = dg.optim.SGD(model.parameters(), lr=0.01)
    callbacks = [ProgressBar(quiet=True), BestWeights("train_loss")] if observers else []
    trainer = Trainer(model, opt, F.cross_entropy, callbacks=callbacks)
    start = time.perf_counter()
    trainer.fit(loader, epochs=1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    from deepgrad.threads import set_num_threads

    set_num_threads(1)
    loader = data()
    times: dict[str, list[float]] = {"bare loop": [], "Trainer": [], "Trainer + observers": []}
    bare(loader)  # warm up
    for _ in range(args.rounds):
        times["bare loop"].append(bare(loader))
        times["Trainer"].append(with_trainer(loader, observers=False))
        times["Trainer + observers"].append(with_trainer(loader, observers=True))
    per_step = {name: statistics.median(values) / STEPS * 1e6 for name, values in times.items()}
    for name, micros in per_step.items():
        extra = micros - per_step["bare loop"]
        print(f"{name:<22} {micros:8.1f} µs/step" + (f"   (+{extra:.1f} µs)" if name != "bare loop" else ""))


if __name__ == "__main__":
    main()
