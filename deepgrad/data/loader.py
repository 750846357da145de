"""DataLoader: mini-batches, sampled without replacement each epoch."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..random import default_generator
from ..tensor import Tensor
from .dataset import Dataset

Batch = tuple[Tensor, ...]


class DataLoader:
    """Iterate over ``dataset`` in batches of Tensors.

    With ``shuffle``, epoch e visits the samples in the order of a permutation
    drawn from ``seed`` and e, so runs are reproducible and a loader restored
    from :meth:`state_dict` continues with the same batches. Array-backed
    datasets (TensorDataset, Subset of one) are read a whole batch per index
    operation; others are read sample by sample and stacked. With ``device``
    ("cuda"), each batch is moved there as it is read, one batch ahead: the copy of
    the next batch is queued before the current one is handed out to train (on CUDA
    from pinned memory, so the host does not wait for the GPU, and on a stream of its
    own, so the copy runs while the current batch trains).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        device: backend.DeviceLike | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        # A shuffling loader without a seed draws one from the default generator; one that does not
        # shuffle needs none and leaves the generator alone (an evaluation loader made mid-training
        # must not shift the dropout masks that follow).
        if seed is None:
            seed = int(default_generator().integers(2**63)) if shuffle else 0
        self.seed = int(seed)
        self.epoch = 0
        self.device = None if device is None else backend.get_device(device)
        self._arrays = getattr(dataset, "arrays", None)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The sample order of ``epoch``."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng((self.seed, epoch)).permutation(n)

    def __iter__(self) -> Iterator[Batch]:
        return self.batches()

    def batches(self, start: int = 0) -> Iterator[Batch]:
        """The next epoch's batches from batch ``start`` on (a run resumed in the middle of an epoch
        skips the ones it had trained on)."""
        order = self.order(self.epoch)
        self.epoch += 1
        size = self.batch_size
        if self.device is None or self.device is backend.CPU:
            for batch in range(start, len(self)):
                yield self._fetch(order[batch * size : (batch + 1) * size])
            return
        ahead = None  # the next batch, its copy to the device already queued
        for batch in range(start, len(self)):
            current = ahead if ahead is not None else self._send(order[batch * size : (batch + 1) * size])
            ahead = self._send(order[(batch + 1) * size : (batch + 2) * size]) if batch + 1 < len(self) else None
            yield current()

    def _fetch(self, indices: np.ndarray) -> Batch:
        return self._send(indices)()

    def _send(self, indices: np.ndarray) -> Callable[[], Batch]:
        """Read the samples ``indices`` and queue their copy to the loader's device (see :func:`send_batch`)."""
        if self._arrays is not None:
            columns = [a[backend.to_device(indices, backend.device_of(a))] for a in self._arrays]
        else:
            samples = [self.dataset[int(i)] for i in indices]
            columns = [np.stack(column) for column in zip(*samples)]
        return send_batch(self.device, columns)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])


def batch_on(device: backend.DeviceLike | None, arrays: Sequence[backend.Array]) -> Batch:
    """A batch (a tuple of Tensors) of ``arrays`` moved to ``device``, or left where they are when
    ``device`` is None, ready to compute with."""
    return send_batch(device, arrays)()


def send_batch(device: backend.DeviceLike | None, arrays: Sequence[backend.Array]) -> Callable[[], Batch]:
    """Queue the copies of a batch's ``arrays`` to ``device`` (with its ``upload``: on CUDA, from
    pinned memory on a copy stream); returns the call that hands the batch out, as Tensors, after
    which the work queued may read it. The one place batches change device, for DataLoader(device=)
    and the Trainer."""
    if device is None:
        return lambda: tuple(Tensor._wrap(array) for array in arrays)
    target = backend.get_device(device)
    moved, waits = [], []
    for array in arrays:
        if target.upload is not None and isinstance(array, np.ndarray):
            copy, wait = target.upload(array)
            moved.append(copy)
            waits.append(wait)
        else:
            moved.append(backend.to_device(array, target))

    def hand_out() -> Batch:
        for wait in waits:
            wait()
        return tuple(Tensor._wrap(array) for array in moved)

    return hand_out
