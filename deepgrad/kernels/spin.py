"""Waits that spin without the GIL, for the pool's handoffs (:mod:`deepgrad.parallel`).

A thread that sleeps on a lock until another wakes it costs the handoff tens of µs where a core
that has gone idle is slow to wake (a virtual machine's halted vCPU: 40-50 µs here, each way).
Spinning on a number in memory instead, a worker sees a part handed to it, and the caller sees
the part done, within a µs. The loops run compiled and without the GIL, so a spinning thread
takes nothing from the threads running Python; each spin bounds its wait and returns False when
it ran out, and the pool then sleeps on its locks as before.

The numbers spun on are int64 elements of a ``board`` array the pool keeps (a worker's parts
handed to it, and done), read and written as atomics; beside them, x86's time-stamp counter when a
part was handed over and when the worker saw it (the pool's sign that a worker was off its core).
"""

from __future__ import annotations

import platform
import time

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")  # PAUSE and the time-stamp counter


@intrinsic
def _load_acquire(typingctx, board, index):
    """board[index], read as an atomic load with acquire order (never hoisted out of a loop)."""

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.load_atomic(builder.gep(array.data, [args[1]]), "acquire", 8)

    return types.int64(board, index), codegen


@intrinsic
def _store_release(typingctx, board, index, value):
    """board[index] = value, as an atomic store with release order."""

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        builder.store_atomic(args[2], builder.gep(array.data, [args[1]]), "release", 8)
        return context.get_dummy_value()

    return types.void(board, index, value), codegen


@intrinsic
def _pause(typingctx):
    """x86's PAUSE (the core rests a few dozen cycles, its sibling hyperthread runs); elsewhere nothing."""

    def codegen(context, builder, signature, args):
        if _X86:
            pause = builder.module.declare_intrinsic("llvm.x86.sse2.pause", fnty=ir.FunctionType(ir.VoidType(), []))
            builder.call(pause, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _ticks(typingctx):
    """x86's time-stamp counter (constant-rate on x86-64 cores of the last 15 years); elsewhere 0."""

    def codegen(context, builder, signature, args):
        if _X86:
            counter = builder.module.declare_intrinsic(
                "llvm.readcyclecounter", fnty=ir.FunctionType(ir.IntType(64), [])
            )
            return builder.call(counter, [])
        return ir.Constant(ir.IntType(64), 0)

    return types.int64(), codegen


@njit(nogil=True, cache=True)
def ticks():  # pragma: no cover (compiled)
    """The time-stamp counter now (0 where there is none)."""
    return _ticks()


@njit(cache=True)
def stamp_then_store(board, stamp_index, index, value):  # pragma: no cover (compiled)
    """board[stamp_index] = the counter now, then board[index] = ``value`` (a handoff: when, then which).
    Keeps the GIL: letting it go for two stores, the caller could wait to take it back from a worker."""
    board[stamp_index] = _ticks()
    _store_release(board, index, value)


@njit(nogil=True, cache=True)
def wait_until(board, index, at_least, rounds):  # pragma: no cover (compiled)
    """Spin until board[index] ≥ ``at_least``, at most ``rounds`` rounds; True when it got there."""
    for _ in range(rounds):
        if _load_acquire(board, index) >= at_least:
            return True
        _pause()
    return False


@njit(nogil=True, cache=True)
def store_then_wait_until(board, store_index, value, index, at_least, rounds, settle, stamp_index):  # pragma: no cover
    """board[store_index] = ``value``, then :func:`wait_until`. Where it had to wait (board[index] was
    short of ``at_least`` at first), board[stamp_index] = the counter when it got there, and
    ``settle`` rounds more: a worker's wait for its next part, whose caller is still starting its own
    part, holding the GIL, and a worker that waited for the GIL would sleep, the very wait spinning
    saves. (Found there at once, it was handed over while the worker ran Python: no stamp.)"""
    _store_release(board, store_index, value)
    if _load_acquire(board, index) >= at_least:
        return True
    if not wait_until(board, index, at_least, rounds):
        return False
    board[stamp_index] = _ticks()
    for _ in range(settle):  # a load each round: an empty loop would be compiled away
        if _load_acquire(board, index) < at_least:
            break
        _pause()
    return True


def per_microsecond() -> tuple[float, float]:
    """How many rounds of :func:`wait_until` this machine spins a µs (a PAUSE's length varies tenfold
    between x86 cores), the fastest of a few 20 000-round waits, and how many :func:`ticks` pass (0
    where there is no counter)."""
    board = np.zeros(1, np.int64)
    rounds, fastest, tick_rate = 20_000, float("inf"), 0.0
    wait_until(board, 0, 1, 1)  # compiled, or loaded from numba's cache
    ticks()
    for _ in range(3):
        start, first_tick = time.perf_counter(), ticks()
        wait_until(board, 0, 1, rounds)
        seconds, tick_count = time.perf_counter() - start, ticks() - first_tick
        if seconds < fastest:
            fastest, tick_rate = seconds, tick_count / (seconds * 1e6)
    return rounds / (fastest * 1e6), tick_rate
