"""How many threads deepgrad computes on: its own ops' (:mod:`deepgrad.parallel`) and the BLAS's.

``dg.set_num_threads(n)`` gives deepgrad's heavy ops (convolution, pooling, batch norm, linear
layers, large elementwise passes) n threads, which split each op's batch (or channels). The BLAS
under NumPy (OpenBLAS, MKL, BLIS) has the n threads too, and splits each matrix product itself,
until the first of deepgrad's ops splits work over its pool: from then on the BLAS runs on one
thread and deepgrad splits the products too. OpenBLAS keeps its threads spinning for a while after
each product, on the very cores deepgrad's threads need next (simple-cnn's step on 2 threads: 19
ms with both pools at work, 13 ms with OpenBLAS on one); but a spinning thread takes work in
microseconds, where waking one of deepgrad's costs 50-100 µs on a virtual machine, so a model
that is all matrix products (an MLP) keeps the BLAS's quick handoffs (the benchmark MLP's step
on 2 threads: 3.0 ms, against 3.45 ms with its products split by deepgrad and 4.2 ms on one),
and a conv net's first convolution takes the cores for deepgrad's pool.
``dg.set_num_threads(n, by="blas")`` gives the n threads to the BLAS for good, and deepgrad's ops
stay on the calling thread (a conv net loses: simple-cnn 15 ms against 11). Until
``set_num_threads`` is called, deepgrad's ops run on the calling thread and the BLAS keeps the
count it started with (one per core, unless ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` /
``OMP_NUM_THREADS`` said otherwise before Python started). PyTorch's counterpart is
``torch.set_num_threads``.

On a machine whose cores are busy with other work, a thread that loses its core stalls the rest
at each op's end: a small model then trains several times slower on two threads than on one (the
digits MLP of ``deepgrad train``: 5.8 s against 1.5 s with two other busy processes on two
cores). ``deepgrad.train.ThreadTuner`` measures one thread and all the cores, split by the ops and
by the BLAS, on a run's first steps and keeps the fastest.

The BLAS's count is process-wide state of the BLAS library itself, changed at run time through
threadpoolctl (``pip install threadpoolctl``; part of ``deepgrad[train]``).
"""

from __future__ import annotations

import functools
import numbers
import os
from typing import Any, Literal, NamedTuple, TypeAlias

Splitter: TypeAlias = Literal["ops", "blas"]  # who splits work over the threads: deepgrad's ops, or the BLAS
SPLITTERS: tuple[Splitter, ...] = ("ops", "blas")


class ThreadSetting(NamedTuple):
    """A thread count and who splits work over it (``by``: "ops" or "blas"; one thread is "ops")."""

    threads: int
    by: Splitter = "ops"

    def __str__(self) -> str:
        return str(self.threads) if self.by == "ops" else f"{self.threads} (by the BLAS)"


def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        raise ImportError(
            "deepgrad thread control needs threadpoolctl: pip install threadpoolctl "
            "(or set OPENBLAS_NUM_THREADS / MKL_NUM_THREADS before starting Python)"
        ) from None
    return ThreadpoolController().select(user_api="blas")


_setting = ThreadSetting(1)  # deepgrad's ops run on the calling thread until set_num_threads says otherwise
_pool_claimed = False  # an op split work over deepgrad's pool since set_num_threads: the BLAS is on one thread


def get_num_threads() -> int:
    """The number of threads set (1 until ``set_num_threads``)."""
    return _setting.threads


def get_thread_setting() -> ThreadSetting:
    """The thread count set and who splits work over it (``ThreadSetting(1)`` until ``set_num_threads``)."""
    return _setting


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def ops_threads() -> int:
    """The threads deepgrad's own ops split their work over: the count set, but one when the BLAS has them."""
    return _setting.threads if _setting.by == "ops" else 1


def products_by_blas() -> bool:
    """Whether the BLAS has the threads set and splits each matrix product itself: ``by="blas"``, or
    several threads split by the ops until one of deepgrad's ops has split work over its pool."""
    return _setting.threads > 1 and (_setting.by == "blas" or not _pool_claimed)


def claim_cores_for_pool() -> None:
    """Note that an op splits work over deepgrad's pool: from now until the next ``set_num_threads``
    the BLAS runs on one thread (its spinning threads would hold the cores the pool's workers need),
    and deepgrad splits the matrix products too."""
    global _pool_claimed
    if not _pool_claimed:
        _pool_claimed = True
        blas = _blas()
        if blas is not None and _setting.by == "ops":
            blas.set(1)


def set_num_threads(n: int, by: Splitter = "ops") -> None:
    """Use ``n`` threads from now on (n ≥ 1), in this whole process. ``by="ops"``: deepgrad's heavy
    ops split their work over them, and the BLAS under NumPy its matrix products until the first
    op splits work over deepgrad's pool, from when on the BLAS runs on one thread; ``by="blas"``:
    the BLAS splits each matrix product over them for good and deepgrad's ops stay on the calling
    thread (see the module)."""
    global _setting, _pool_claimed
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_num_threads: expected a whole number of threads >= 1, got {n!r}")
    if by not in SPLITTERS:
        raise ValueError(f"set_num_threads: by must be one of {', '.join(SPLITTERS)}, got {by!r}")
    _blas.cache_clear()  # look again: a library loaded since (torch's BLAS, say) is set too
    blas = _blas()
    if blas is None:
        _controller()  # raises an ImportError that says how to get threadpoolctl where it is missing
        raise RuntimeError(
            "set_num_threads: threadpoolctl finds no BLAS library it can control in this "
            "process (NumPy's BLAS may be one it does not know, e.g. Apple Accelerate)"
        )
    _setting, _pool_claimed = ThreadSetting(int(n), by if n > 1 else "ops"), False
    blas.set(_setting.threads)


class NumThreads:
    """deepgrad's thread setting as an object to read and switch (what a ThreadTuner switches);
    made only where it can be switched (threadpoolctl controls the BLAS), else ImportError or
    RuntimeError."""

    def __init__(self) -> None:
        BlasThreads()  # the errors, where the count cannot be set

    def get(self) -> ThreadSetting:
        return get_thread_setting()

    def set(self, setting: ThreadSetting | int) -> None:
        setting = ThreadSetting(setting) if isinstance(setting, int) else setting
        set_num_threads(setting.threads, setting.by)

    def candidates(self, cores: int, by: Splitter | None = None) -> list[ThreadSetting]:
        """The settings worth timing on ``cores`` cores: one thread first (the steady one), then
        all of them split by deepgrad's ops and by the BLAS (only ``by``, where given)."""
        if cores <= 1:
            return [ThreadSetting(1)]
        return [ThreadSetting(1)] + [ThreadSetting(cores, splitter) for splitter in ((by,) if by else SPLITTERS)]


@functools.cache
def _blas() -> BlasThreads | None:
    """The process's BLAS threads, or None where threadpoolctl is missing or controls no BLAS here."""
    try:
        return BlasThreads()
    except (ImportError, RuntimeError):
        return None


class BlasThreads:
    """NumPy's BLAS thread count, found once and then read and switched cheaply (threadpoolctl's
    own ``limit`` scans the process's libraries every call)."""

    def __init__(self) -> None:
        self._controller = _controller()
        if not self._controller.lib_controllers:
            raise RuntimeError("BlasThreads: threadpoolctl finds no BLAS library it can control in this process")

    def get(self) -> int:
        return max(pool.num_threads for pool in self._controller.lib_controllers)

    def set(self, n: int) -> None:
        for pool in self._controller.lib_controllers:
            pool.set_num_threads(n)
