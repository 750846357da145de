"""What importing deepgrad does to the Python process, and :func:`config` to see it.

Importing deepgrad changes one thing outside the library: on Linux with glibc it
asks malloc to keep freed memory for reuse (:func:`tune_allocator`). Set
``DEEPGRAD_TUNE_MALLOC=0`` before importing to leave malloc alone. Nothing else
changes: not NumPy's settings (errors, printing), not the BLAS thread count
(``dg.set_num_threads`` does that when asked), not environment variables,
warning filters, signal handlers or matplotlib's backend. deepgrad's own
process-wide state is the grad mode and the default random generator.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import backend
from .tensor import is_grad_enabled

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest: arrays up to 32 MiB come from the heap
TRIM_THRESHOLD = 1 << 30  # freed memory at the heap's top is returned to the OS only beyond 1 GiB


def tune_allocator() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the OS.

    A training step frees and reallocates the same large activation and
    gradient arrays every time. By default glibc serves arrays above a
    (dynamic) threshold with fresh mmap()s and returns freed memory at the top
    of the heap, so each step pays for munmap and page faults again. Raising
    the mmap threshold to its maximum (32 MiB) and the trim threshold to 1 GiB
    keeps that memory in the heap; the process's memory then stays at its
    high-water mark, as with PyTorch's caching allocators. Measured on the
    benchmarks' workloads (2-core VM, float32, 3 alternating runs): the cnn
    training step takes 0.57× the time it takes without, resnet-small's 0.60×;
    the GEMM-bound mlp's is unchanged (1.07×, within the noise). Called once when
    deepgrad is imported, unless DEEPGRAD_TUNE_MALLOC=0. Returns whether the
    settings were applied (False off glibc).
    """
    import ctypes

    if os.environ.get("DEEPGRAD_TUNE_MALLOC", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not Linux/glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold, TRIM_THRESHOLD))


ALLOCATOR_TUNED = tune_allocator()  # the one change importing deepgrad makes


def config() -> dict[str, Any]:
    """deepgrad's settings that concern the whole process, as a dict: versions, whether malloc was
    tuned at import (and how), deepgrad's threads and the BLAS's, the compiled kernels (:mod:`deepgrad.kernels`),
    the default dtype, the grad mode, whether a GPU can be used.

        >>> dg.config()["malloc_tuned"]
        True
    """
    from . import __version__, kernels
    from .threads import BlasThreads, get_thread_setting

    try:
        blas_threads: int | None = BlasThreads().get()
    except (ImportError, RuntimeError):  # threadpoolctl is not installed or finds no BLAS: no count to read
        blas_threads = None
    return {
        "deepgrad": __version__,
        "numpy": np.__version__,
        "malloc_tuned": ALLOCATOR_TUNED,
        "malloc": (
            f"M_MMAP_THRESHOLD={MMAP_THRESHOLD >> 20} MiB, M_TRIM_THRESHOLD={TRIM_THRESHOLD >> 30} GiB "
            "(DEEPGRAD_TUNE_MALLOC=0 before import leaves malloc alone)"
            if ALLOCATOR_TUNED
            else "left alone (DEEPGRAD_TUNE_MALLOC=0, or not glibc)"
        ),
        "threads": get_thread_setting().threads,
        "threads_by": get_thread_setting().by,
        "blas_threads": blas_threads,
        "kernels": kernels.describe(),
        "default_dtype": str(backend.get_default_dtype()),
        "grad_enabled": is_grad_enabled(),
        "cuda_available": backend.is_available("cuda"),
    }
