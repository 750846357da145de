"""Datasets: indexable collections of samples, and splitting them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor


class Dataset:
    """Anything with ``__len__`` and ``__getitem__(i)`` returning one sample (a tuple of arrays)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        raise NotImplementedError


def _array_of(data: Any) -> Any:
    """A Tensor's array, an array (of any device) as it is, anything else through np.asarray."""
    if isinstance(data, Tensor):
        return data.data
    return data if backend.is_array(data) else np.asarray(data)


class TensorDataset(Dataset):
    """Samples are the rows of equally long arrays: ``dataset[i] == (a[i], b[i], ...)``.

    Indexing with an integer array returns whole batches at once, which is how
    the DataLoader reads it (no Python loop over samples).
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset: expected at least one array")
        columns = tuple(_array_of(a) for a in arrays)
        lengths = {len(a) for a in columns}
        if len(lengths) != 1:
            raise ValueError(f"TensorDataset: arrays differ in length: {[a.shape for a in columns]}")
        self.arrays: tuple[Any, ...] = columns  # backend arrays (NumPy, or CuPy on a GPU)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return tuple(a[index] for a in self.arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``."""

    def __init__(self, dataset: Dataset, indices: Sequence[int] | backend.Array) -> None:
        # Kept on the host, where samples are picked one by one (np.asarray refuses a CuPy array: device
        # indices are copied once, here); the batch reads of ``arrays`` move them to the data's device.
        self.dataset = dataset
        self.indices = np.asarray(backend.to_host(_array_of(indices)), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return self.dataset[self.indices[index]]

    @property
    def arrays(self) -> tuple[Any, ...]:
        """For array-backed datasets: the selected rows (lets the DataLoader batch without a loop)."""
        # AttributeError for a dataset without arrays: the DataLoader then reads sample by sample
        arrays = self.dataset.arrays  # type: ignore[attr-defined]
        return tuple(a[backend.to_device_of(self.indices, a)] for a in arrays)


def random_split(dataset: Dataset, lengths: Sequence[int] | Sequence[float], seed: int = 0) -> list[Subset]:
    """Split into non-overlapping Subsets of the given lengths (or fractions summing to 1), shuffled by ``seed``."""
    n = len(dataset)
    given = list(lengths)
    if all(isinstance(v, float) for v in given) and math.isclose(sum(given), 1.0):
        counts = [int(math.floor(n * f)) for f in given]
        for i in range(n - sum(counts)):  # hand out the remainder round-robin, as PyTorch
            counts[i % len(counts)] += 1
        given = list(counts)
    if sum(given) != n or any(v < 0 for v in given):
        raise ValueError(f"random_split: lengths {given} do not add up to the dataset size {n}")
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0, *given])
    return [Subset(dataset, order[bounds[i] : bounds[i + 1]]) for i in range(len(lengths))]
