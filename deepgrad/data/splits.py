"""A data set's fixed train / validation / test parts, and the fixed random splits that make them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .dataset import TensorDataset


@dataclass
class Splits:
    """A data set's fixed train / validation / test parts (each a TensorDataset of (x, y))."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.arrays[0].shape[1:])


def split_off(x: Any, y: Any, size: int, seed: int) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Split a fixed random ``size`` samples off (x, y): ((x, y) of the rest, (x, y) of the part).
    The permutation is drawn from ``seed`` alone, so the same arrays always split the same way."""
    order = np.random.default_rng(seed).permutation(len(x))
    rest, part = order[size:], order[:size]
    return (x[rest], y[rest]), (x[part], y[part])


def held_out_size(fraction: float, total: int, what: str) -> int:
    """How many of ``total`` samples a held-out ``fraction`` (0 < fraction < 1) is: rounded to the
    nearest integer, at least 1, and leaving at least 1 sample behind. ``what`` names the data set in
    the ConfigError raised when ``total`` is too small to split at all."""
    if total < 2:
        raise ConfigError(
            f"val_fraction {fraction}: {what} has {total} training sample{'s' if total != 1 else ''}; "
            "holding some out for validation needs at least 2"
        )
    return min(max(int(round(fraction * total)), 1), total - 1)
