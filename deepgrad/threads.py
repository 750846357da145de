"""How many threads deepgrad computes on: its own ops' (:mod:`deepgrad.parallel`) and the BLAS's.

``dg.set_num_threads(n)`` gives deepgrad's heavy ops (convolution, pooling, batch norm, large
elementwise passes) n threads, which split each op's batch, and makes the BLAS under NumPy
(OpenBLAS, MKL, BLIS) run its matrix products on n threads too; while deepgrad's parts run, the
BLAS is held at one. The default is the BLAS's own count when deepgrad first asks (one per core,
unless ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OMP_NUM_THREADS`` said otherwise before
Python started). PyTorch's counterpart is ``torch.set_num_threads``.

On a machine whose cores are busy with other work, a thread that loses its core stalls the rest
at each op's end: a small model then trains several times slower on two threads than on one (the
digits MLP of ``deepgrad train``: 5.8 s against 1.5 s with two other busy processes on two
cores). ``deepgrad.train.ThreadTuner`` measures both on a run's first steps and keeps the faster.

The BLAS's count is process-wide state of the BLAS library itself, changed at run time through
threadpoolctl (``pip install threadpoolctl``; part of ``deepgrad[train]``). Without it deepgrad's
own ops stay on one thread and the BLAS keeps the count it started with.
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import threading
from collections.abc import Iterator
from typing import Any


def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        raise ImportError(
            "deepgrad thread control needs threadpoolctl: pip install threadpoolctl "
            "(or set OPENBLAS_NUM_THREADS / MKL_NUM_THREADS before starting Python)"
        ) from None
    return ThreadpoolController().select(user_api="blas")


_threads: int | None = None  # deepgrad's count, fixed at the first get_num_threads or set_num_threads


def get_num_threads() -> int:
    """The number of threads deepgrad computes on (its ops' parts, and the BLAS outside them)."""
    global _threads
    if _threads is None:
        blas = _blas()
        _threads = blas.get() if blas is not None else 1
    return _threads


def set_num_threads(n: int) -> None:
    """Make deepgrad's ops and NumPy's BLAS use ``n`` threads from now on (n ≥ 1), in this whole process."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_num_threads: expected a whole number of threads >= 1, got {n!r}")
    _blas.cache_clear()  # look again: a library loaded since (torch's BLAS, say) is set too
    blas = _blas()
    if blas is None:
        _controller()  # raises an ImportError that says how to get threadpoolctl where it is missing
        raise RuntimeError(
            "set_num_threads: threadpoolctl finds no BLAS library it can control in this "
            "process (NumPy's BLAS may be one it does not know, e.g. Apple Accelerate)"
        )
    blas.set(int(n))
    _threads = int(n)


_hold_lock = threading.Lock()
_hold_depth = 0
_held_count = 1


@contextlib.contextmanager
def blas_held_at_one() -> Iterator[None]:
    """The BLAS on one thread inside the block (blocks may nest and overlap across threads: the
    count comes back when the last one ends)."""
    global _hold_depth, _held_count
    blas = _blas()
    if blas is None:
        yield
        return
    with _hold_lock:
        if _hold_depth == 0:
            _held_count = blas.get()
            if _held_count > 1:
                blas.set(1)
        _hold_depth += 1
    try:
        yield
    finally:
        with _hold_lock:
            _hold_depth -= 1
            if _hold_depth == 0 and _held_count > 1:
                blas.set(_held_count)


class NumThreads:
    """deepgrad's thread count as an object to read and switch (what a ThreadTuner switches);
    made only where it can be switched (threadpoolctl controls the BLAS), else ImportError or
    RuntimeError."""

    def __init__(self) -> None:
        BlasThreads()  # the errors, where the count cannot be set

    def get(self) -> int:
        return get_num_threads()

    def set(self, n: int) -> None:
        set_num_threads(n)


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
