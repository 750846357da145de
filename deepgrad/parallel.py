"""Intra-op parallelism: the heavy ops split their work over the threads ``dg.set_num_threads`` gave.

NumPy releases the GIL inside matmul and its ufunc loops, so threads of one process run those at
once. An op cuts its batch (or a flat array) into contiguous parts with :func:`parts`, one a
thread, and runs a function on each with :func:`map_parts`: the first part on the calling thread,
the others on the pool's workers. Work under ``MIN_WORK`` elements stays on the calling thread
as one part, so a small model never enters the pool. The results come back in the parts' order,
and a reduction adds them in that order: a thread count gives bit-identical results run to run,
and counts differ from each other only in how partial sums are grouped.

The BLAS under NumPy runs on one thread meanwhile: the parts are the parallelism, matrix products
included, and a GEMM split over both would put two threads on each core. Until the first op
splits work here, though, the BLAS has the threads and splits the matrix products itself (its
spinning threads take work faster than a sleeping worker wakes): :func:`parts` claims the cores
(:func:`deepgrad.threads.claim_cores_for_pool`), which puts the BLAS on one thread. With
``set_num_threads(n, by="blas")`` the BLAS has the threads for good and every op here runs on
the calling thread.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from . import threads
from .backend import Array

T = TypeVar("T")

# Elements of work (the data a pass reads; for a convolution, its column matrix) below which an op
# runs on the calling thread: handing a part to a worker and waking it costs 10-100 µs (the most on
# an idle virtual machine), the time of a pass over 2**15-2**17 float32 elements.
MIN_WORK = 1 << 17
# A matrix product's multiply-adds per element of work: a GEMM does about 30 in the time a pass
# reads one element (70 G multiply-adds/s against 2 G elements/s on one core here).
MULTIPLY_ADDS_PER_ELEMENT = 32
# Elements of a plain elementwise pass (a ReLU, its gradient: 3-4 G elements/s) per element of work:
# passes split from 2**19 elements. Over 800 000 float32 (a 64×16×28×28 activation), split in two:
# resnet-small's step on 2 threads, paired, took 0.96-0.98 of its wall time (with the pool's workers
# on a ThreadPoolExecutor, whose handoff cost 15 µs more, it gained nothing at 4).
PASS_ELEMENTS_PER_ELEMENT = 2

_local = threading.local()  # .in_part: this thread runs a part (a worker's, or the caller's own): parts never nest


def threads_for(array: Array) -> int:
    """The threads an op on ``array`` may split over here: deepgrad's count, but one inside a part
    and for an array on a device (its own streams)."""
    if getattr(_local, "in_part", False) or not isinstance(array, np.ndarray):
        return 1
    return threads.ops_threads()


def parts(array: Array, work: int, most: int | None = None) -> list[slice]:
    """Contiguous slices of ``array``'s first axis, as even as can be: one a thread (at most
    ``most``) while each part has at least MIN_WORK of the ``work`` elements; the whole axis as one
    part on one thread for small work (and where :func:`threads_for` gives one). Cutting a batch
    claims the cores for the pool (:func:`deepgrad.threads.claim_cores_for_pool`)."""
    n = len(array)
    if work < 2 * MIN_WORK:
        return [slice(0, n)]
    count = min(threads_for(array), n, work // MIN_WORK, most or n)
    if count <= 1:
        return [slice(0, n)]
    threads.claim_cores_for_pool()
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


def map_parts(function: Callable[[slice], T], slices: Sequence[slice]) -> list[T]:
    """[function(s) for s in slices], at the same time through :func:`together`."""
    if len(slices) == 1:
        return [function(slices[0])]
    return together([functools.partial(function, part) for part in slices])


def together(calls: Sequence[Callable[[], T]]) -> list[T]:
    """[call() for call in calls], the first on this thread and the rest on the pool's workers at
    the same time. Every call has finished when it returns or raises (a call's error is raised
    after the others end). Called from within a part, all run there: parts never nest, so an op
    may run whole ops on its parts (a convolution's backward: each part's input and weight
    gradients)."""
    if len(calls) == 1 or getattr(_local, "in_part", False):
        return [call() for call in calls]
    jobs = [_Job(call) for call in calls[1:]]
    _start_workers(len(jobs))
    for job in jobs:
        _queue.put(job)
    _local.in_part = True
    try:
        first = calls[0]()
    finally:
        _local.in_part = False
        for job in jobs:
            job.done.acquire()
    for job in jobs:
        if job.error is not None:
            raise job.error
    return [first] + [job.result for job in jobs]


def map_batches(function: Callable[..., T], slices: Sequence[slice], *batched: Array, **shared: object) -> list[T]:
    """[function(*(a[s] for a in batched), **shared) for s in slices] through :func:`map_parts`: each
    part of the batch axis of every ``batched`` array, with the ``shared`` arguments whole; one part
    is the plain call ``function(*batched, **shared)`` (no views, no closure: small ops pay nothing)."""
    if len(slices) == 1:
        return [function(*batched, **shared)]
    return map_parts(lambda part: function(*(a[part] for a in batched), **shared), slices)


def splits_elementwise(array: Array) -> bool:
    """Whether :func:`elementwise` may cut a pass over ``array`` in parts: from 2·MIN_WORK of work,
    PASS_ELEMENTS_PER_ELEMENT elements making one. Below it, an op may make a small pass itself,
    without the split's checks and calls."""
    return array.size // PASS_ELEMENTS_PER_ELEMENT >= 2 * MIN_WORK


def elementwise(function: Callable[..., object], *arrays: Array) -> Array:
    """``function(*arrays, out=out)`` for a function that writes an elementwise result to ``out``
    (a ufunc, np.clip, a few ufuncs in a row), into a new array of the first array's shape and
    dtype: in flat parts over the threads when the arrays are large, of that one shape and
    C-contiguous."""
    first = arrays[0]
    out = np.empty_like(first)
    if not splits_elementwise(first) or not all(
        isinstance(a, np.ndarray) and a.shape == first.shape and a.flags.c_contiguous for a in arrays
    ):
        function(*arrays, out=out)
        return out
    flat_arrays, flat_out = [a.reshape(-1) for a in arrays], out.reshape(-1)

    def flat_part(part: slice) -> None:
        function(*(a[part] for a in flat_arrays), out=flat_out[part])

    map_parts(flat_part, parts(flat_out, first.size // PASS_ELEMENTS_PER_ELEMENT))
    return out


def ordered_sum(partial_sums: Sequence[Array]) -> Array:
    """The parts' sums added in the parts' order, into the first."""
    total = partial_sums[0]
    for partial in partial_sums[1:]:
        total += partial
    return total


class _Job:
    """One call handed to a worker, and what came of it; ``done`` is released when it has run."""

    __slots__ = ("call", "done", "result", "error")

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Lock()
        self.done.acquire()

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as error:  # raised again on the thread that handed it out
            self.error = error
        finally:
            self.done.release()


# The pool: worker threads (started when first needed, daemons) taking jobs from one queue. Leaner
# than a ThreadPoolExecutor's futures (15 µs less a handoff here), and reset in a forked child, where
# the parent's threads do not exist (an executor's would take the job and never run it).
_queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
_workers: list[threading.Thread] = []
_workers_lock = threading.Lock()


def _start_workers(count: int) -> None:
    """At least ``count`` workers running."""
    with _workers_lock:
        while len(_workers) < count:
            worker = threading.Thread(target=_serve, args=(_queue,), name=f"deepgrad-{len(_workers)}", daemon=True)
            worker.start()
            _workers.append(worker)


def _serve(jobs: queue.SimpleQueue[_Job]) -> None:
    _local.in_part = True
    while True:
        jobs.get().run()


def _forget_workers() -> None:
    """In a forked child: no workers, a new queue and lock (the parent's may have been in use)."""
    global _queue, _workers, _workers_lock
    _queue, _workers, _workers_lock = queue.SimpleQueue(), [], threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)
