"""Train a two-layer MLP on the spiral dataset with nothing but the Tensor API.

    python examples/spiral_mlp.py

Forward z = x W1ᵀ + b1, a = relu(z), logits = a W2ᵀ + b2; the fused softmax
cross-entropy gives dL/dlogits = (softmax − onehot)/N, and backward() carries
it down to every weight; the update is plain gradient descent w ← w − α·∇w.
"""

import argparse
import time

import numpy as np

import deepgrad as dg
import deepgrad.functional as F
from deepgrad.data.datasets import spiral


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x_np, y = spiral(n=100, classes=3, seed=args.seed)
    x = dg.tensor(x_np)
    rng = dg.manual_seed(args.seed)
    # He initialization for the ReLU layer (std √(2/fan_in)), LeCun for the output layer (std √(1/fan_in)).
    w1 = dg.tensor(rng.standard_normal((args.hidden, 2)) * np.sqrt(2 / 2), requires_grad=True, dtype=dg.float32)
    b1 = dg.zeros(args.hidden, requires_grad=True)
    w2 = dg.tensor(
        rng.standard_normal((3, args.hidden)) * np.sqrt(1 / args.hidden), requires_grad=True, dtype=dg.float32
    )
    b2 = dg.zeros(3, requires_grad=True)
    params = [w1, b1, w2, b2]

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        logits = F.linear(F.linear(x, w1, b1).relu(), w2, b2)
        loss = F.cross_entropy(logits, y)
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data -= args.lr * p.grad
        if step % (args.steps // 5) == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}")

    with dg.no_grad():
        predictions = F.linear(F.linear(x, w1, b1).relu(), w2, b2).argmax(dim=1)
    accuracy = float((predictions.numpy() == y).mean())
    print(f"train accuracy {accuracy:.3f} on {len(y)} spiral points in {time.perf_counter() - start:.1f}s")
    return accuracy


if __name__ == "__main__":
    main()
