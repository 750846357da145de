"""How many threads the BLAS under NumPy (OpenBLAS, MKL, BLIS) runs its matrix products on.

Every GEMM of a step is split over these threads, which wait for each other
at its end. On a machine whose cores are busy with other work, a thread that
loses its core stalls the rest: a small model then trains several times
slower on two threads than on one (the digits MLP of ``deepgrad train``: 5.8 s
against 1.5 s with two other busy processes on two cores). Large products
gain from more threads on an idle machine. PyTorch's counterpart is
``torch.set_num_threads``.

The setting is process-wide state of the BLAS library itself, changed at run
time through threadpoolctl (``pip install threadpoolctl``; part of
``deepgrad[train]``). Setting ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS``
before Python starts does the same without it.
"""

from __future__ import annotations

import numbers
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


def get_num_threads() -> int | None:
    """The number of threads NumPy's BLAS uses, or None when threadpoolctl finds no BLAS it knows."""
    pools = _controller().lib_controllers
    return max(pool.num_threads for pool in pools) if pools else None


def set_num_threads(n: int) -> None:
    """Make NumPy's BLAS use ``n`` threads from now on (n ≥ 1), in this whole process."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_num_threads: expected a whole number of threads >= 1, got {n!r}")
    controller = _controller()
    if not controller.lib_controllers:
        raise RuntimeError(
            "set_num_threads: threadpoolctl finds no BLAS library it can control in this "
            "process (NumPy's BLAS may be one it does not know, e.g. Apple Accelerate)"
        )
    controller.limit(limits=int(n))


class BlasThreads:
    """NumPy's BLAS thread count, found once and then read and switched cheaply (a ThreadTuner
    switches it during training; ``set_num_threads`` scans the process's libraries every call)."""

    def __init__(self) -> None:
        self._controller = _controller()
        if not self._controller.lib_controllers:
            raise RuntimeError("BlasThreads: threadpoolctl finds no BLAS library it can control in this process")

    def get(self) -> int:
        return max(pool.num_threads for pool in self._controller.lib_controllers)

    def set(self, n: int) -> None:
        for pool in self._controller.lib_controllers:
            pool.set_num_threads(n)
