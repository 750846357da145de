"""A data set's fixed train / validation / test parts, and the fixed random splits that make them."""

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .dataset import TensorDataset


@dataclass
class Splits:
    """A data set's fixed train / validation / test parts (each a TensorDataset of (x, y))."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    classes: tuple

    @property
    def num_classes(self):
        return len(self.classes)

    @property
    def input_shape(self):
        return self.train.arrays[0].shape[1:]


def split_off(x, y, size, seed):
    """Split a fixed random ``size`` samples off (x, y): ((x, y) of the rest, (x, y) of the part).
    The permutation is drawn from ``seed`` alone, so the same arrays always split the same way."""
    order = np.random.default_rng(seed).permutation(len(x))
    rest, part = order[size:], order[:size]
    return (x[rest], y[rest]), (x[part], y[part])


def held_out_size(fraction, total, what):
    """How many of ``total`` samples a held-out ``fraction`` (0 < fraction < 1) is: rounded to the
    nearest integer, at least 1, and leaving at least 1 sample behind. ``what`` names the data set in
    the ConfigError raised when ``total`` is too small to split at all."""
    if total < 2:
        raise ConfigError(f"val_fraction {fraction}: {what} has {total} training sample{'s' if total != 1 else ''}; "
                          "holding some out for validation needs at least 2")
    return min(max(int(round(fraction * total)), 1), total - 1)
