"""Datasets as (features, labels) arrays: float32 features, int64 labels."""

import numpy as np


def spiral(n=100, classes=3, noise=0.2, seed=0):
    """``classes`` interleaved spiral arms of ``n`` 2-D points each (the classic
    non-linearly-separable toy problem). Returns x (n·classes, 2) float32 and
    y (n·classes,) int64."""
    if n < 1 or classes < 2:
        raise ValueError(f"spiral: need n >= 1 and classes >= 2, got n={n}, classes={classes}")
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n), classes)
    labels = np.repeat(np.arange(classes), n)
    angle = labels * (2 * np.pi / classes) + radius * 4.0 + rng.standard_normal(n * classes) * noise
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return x.astype(np.float32), labels.astype(np.int64)
