"""Intra-op parallelism: the heavy ops split their work over the threads ``dg.set_num_threads`` gave.

NumPy releases the GIL inside matmul and its ufunc loops, so threads of one process run those at
once. An op cuts its batch (or a flat array) into contiguous parts with :func:`parts`, one a
thread, and runs a function on each with :func:`map_parts`: the first part on the calling thread,
the others on the pool's workers. Work under ``MIN_WORK`` elements stays on the calling thread
as one part, so a small model never enters the pool. The results come back in the parts' order,
and a reduction adds them in that order: a thread count gives bit-identical results run to run,
and counts differ from each other only in how partial sums are grouped.

A handoff is a number in memory: a worker spins on it (compiled, without the GIL:
:mod:`deepgrad.kernels.spin`) for a while after each part before it sleeps on a lock, and so does
the calling thread once its own part is done, so a part changes hands within µs where a wake-up
from sleep takes 40-50 µs each way on a virtual machine. Without numba the threads only sleep.

The BLAS under NumPy runs on one thread meanwhile: the parts are the parallelism, matrix products
included, and a GEMM split over both would put two threads on each core. Until the first op
splits work here, though, the BLAS has the threads and splits the matrix products itself (its
spinning threads take work faster than a sleeping worker wakes): :func:`parts` claims the cores
(:func:`deepgrad.threads.claim_cores_for_pool`), which puts the BLAS on one thread. With
``set_num_threads(n, by="blas")`` the BLAS has the threads for good and every op here runs on
the calling thread.
"""

from __future__ import annotations

import collections
import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from . import kernels, threads
from .backend import Array

T = TypeVar("T")

# Elements of work (the data a pass reads; for a convolution, its column matrix) below which an op
# runs on the calling thread: handing a part to a worker costs 10-20 µs where it spins, 50-100 µs
# where it sleeps and is woken (on an idle virtual machine), the time of a pass over 2**15-2**17 float32
# elements. 2**16 with the spins: resnet-small and simple-cnn 0.98-0.99 of their time, within the noise.
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
    gradients). While another thread's calls hold the workers, all run on this thread."""
    if len(calls) == 1 or getattr(_local, "in_part", False) or not _pool_lock.acquire(blocking=False):
        return [call() for call in calls]
    try:
        jobs = [_Job(call) for call in calls[1:]]
        workers = _workers_for(len(jobs))
        spin = _spin_for(len(calls))
        numbers = [worker.hand(job, spin) for worker, job in zip(workers, jobs)]
        _local.in_part = True
        try:
            first = calls[0]()
        finally:
            _local.in_part = False
            for worker, job, number in zip(workers, jobs, numbers):
                worker.wait_for(job, number, spin)
        if spin is not None:
            spin.check_workers(workers)
    finally:
        _pool_lock.release()
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
    PASS_ELEMENTS_PER_ELEMENT elements making one, and once an op that only deepgrad splits (a
    convolution, pooling, batch norm over images) has claimed the threads for the pool. Until then the BLAS has
    them, and a pass stays whole: cutting it would claim them, and an MLP's products, split by the
    pool from then on, would run slower than on the BLAS's own threads (a ReLU over an evaluation
    batch did that: ``deepgrad train``'s mlp 512-512 took 0.58-0.61 s an epoch of 12,000 MNIST
    images on two threads, 0.51-0.56 s kept whole). Otherwise an op may make the pass itself,
    without the split's checks and calls."""
    return array.size // PASS_ELEMENTS_PER_ELEMENT >= 2 * MIN_WORK and not threads.products_by_blas()


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


# How long the pool's threads spin (deepgrad.kernels.spin, with numba) before they sleep on a lock:
# a worker after its part, for the next (a training step's next split op comes within it); a worker
# handed a part, while the caller starts its own and lets the GIL go; the caller after its part, for
# the workers'. resnet-small's step on 2 threads, paired: 0.93 of its time with these against none.
WORKER_SPIN_US = 1000.0
SETTLE_US = 10.0
CALLER_SPIN_US = 5000.0
# A spinning thread holds its core: where the threads outnumber the cores, or a spinning worker saw
# a part LATE_US after it was handed over (it was off its core: another process had it), the threads
# only sleep, for PAUSE_S before they try spinning again; twice as long each time it happens again
# within a pause's length of trying, up to MAX_PAUSE_S. simple-cnn on 2 threads with a third process
# busy: 1.02 times the sleeping pool's speed (spinning regardless, 0.6); oversubscribed (4 threads), 1.16.
LATE_US = 200.0
PAUSE_S = 1.0
MAX_PAUSE_S = 32.0
# A worker's board (int64s, each written by one thread, on cache lines of their own): the parts handed
# to it and done, and the time-stamp counter when the last was handed over and when the worker saw it.
POSTED, DONE, HANDED, SEEN = 0, 8, 16, 24


class _Spin:
    """The compiled spins, the rounds that make this machine's µs of each wait, and whether the
    threads may spin now."""

    def __init__(self, module: Any) -> None:
        rounds, ticks = module.per_microsecond()
        self.module = module
        self.worker, self.settle, self.caller = (int(rounds * us) for us in (WORKER_SPIN_US, SETTLE_US, CALLER_SPIN_US))
        self.late = ticks * LATE_US if ticks > 0 else float("inf")
        self.cores = threads.usable_cores()
        self.paused_until, self.pause = 0.0, PAUSE_S

    def allowed(self, threads: int) -> bool:
        """Whether ``threads`` threads (the caller's included) may spin for this handoff."""
        return threads <= self.cores and time.monotonic() >= self.paused_until

    def check_workers(self, workers: Sequence[_Worker]) -> None:
        """Pause the spins where a spinning worker saw its part late (see LATE_US); a worker that
        slept through the handoff, or found the part there when it began to wait (it was running
        Python, perhaps waiting for the GIL), stamped nothing after it."""
        for worker in workers:
            seen, handed = worker.board[SEEN], worker.board[HANDED]
            if seen >= handed and seen - handed > self.late:
                now = time.monotonic()
                self.pause = min(2 * self.pause, MAX_PAUSE_S) if now < self.paused_until + self.pause else PAUSE_S
                self.paused_until = now + self.pause
                return


class _Worker:
    """A pool thread and the parts handed to it, which it runs in order. After each part it waits
    for the next, spinning first where its last handoff came with the spins, then asleep on ``wake``
    (held while no wake-up is due), ``sleeping`` says so; ``mutex`` makes that and a handoff one step each."""

    def __init__(self, index: int) -> None:
        self.jobs: collections.deque[_Job] = collections.deque()
        self.board = np.zeros(SEEN + 8, np.int64)
        self.spin: _Spin | None = None  # the spins it waits for its next part with, if any
        self.mutex = threading.Lock()
        self.wake = threading.Lock()
        self.wake.acquire()
        self.sleeping = False
        self.thread = threading.Thread(target=self._serve, name=f"deepgrad-{index}", daemon=True)
        self.thread.start()

    def hand(self, job: _Job, spin: _Spin | None) -> int:
        """Queue ``job``, waking the worker if it sleeps; with ``spin``, stamp the handoff, and the
        worker spins for its next part. Returns the job's number (the parts handed so far)."""
        self.jobs.append(job)
        self.spin = spin
        with self.mutex:
            number = int(self.board[POSTED]) + 1
            if spin is None:
                self.board[POSTED] = number
            else:
                spin.module.stamp_then_store(self.board, HANDED, POSTED, number)
            sleeping, self.sleeping = self.sleeping, False
        if sleeping:
            self.wake.release()
        return number

    def wait_for(self, job: _Job, number: int, spin: _Spin | None) -> None:
        """Return once ``job``, the worker's part ``number``, has run (spinning first, with ``spin``)."""
        if spin is None or not spin.module.wait_until(self.board, DONE, number, spin.caller):
            job.done.acquire()

    def _serve(self) -> None:
        _local.in_part = True
        done = 0
        while True:
            self._wait_for_part(done)
            self.jobs.popleft().run()
            done += 1

    def _wait_for_part(self, done: int) -> None:
        """Return once a part beyond the ``done`` ones has been handed over: with the spins, say the
        ``done`` ones are done and spin for the next; then asleep."""
        spin = self.spin
        if spin is not None and spin.module.store_then_wait_until(
            self.board, DONE, done, POSTED, done + 1, spin.worker, spin.settle, SEEN
        ):
            return
        with self.mutex:
            if self.board[POSTED] > done:
                return
            self.sleeping = True
        self.wake.acquire()


# The pool: worker threads (started when first needed, daemons), one caller's parts at a time. Leaner
# than a ThreadPoolExecutor's futures (15 µs less a handoff here), and reset in a forked child, where
# the parent's threads do not exist (an executor's would take the job and never run it).
_workers: list[_Worker] = []
_pool_lock = threading.Lock()  # held by the thread whose parts the workers run
_spin: _Spin | None = None


def _workers_for(count: int) -> list[_Worker]:
    """The first ``count`` workers, started where they are not yet (with the pool's lock held)."""
    while len(_workers) < count:
        _workers.append(_Worker(len(_workers)))
    return _workers[:count]


def _spin_for(threads: int) -> _Spin | None:
    """The spins for a handoff over ``threads`` threads, or None where the threads only sleep: where
    spinning is not allowed now (:meth:`_Spin.allowed`), and until numba is in the process for some
    other reason (a kernel of an op: the spins alone would not bring its 120 MB into an MLP's)."""
    global _spin
    if _spin is None:
        module = kernels.load("spin") if "numba" in sys.modules else None
        if module is None:
            return None
        _spin = _Spin(module)
    return _spin if _spin.allowed(threads) else None


def _forget_workers() -> None:
    """In a forked child: no workers, and a new lock (the parent's may have been held)."""
    global _workers, _pool_lock
    _workers, _pool_lock = [], threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)
