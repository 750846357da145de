"""deepgrad.parallel: ops split their batch over threads, bit for bit reproducibly per thread count.

Each parallel op runs at 1, 2, 3 and 4 threads with parts forced even on small arrays (MIN_WORK 1),
its matrix products on the BLAS's threads (before any op claims the pool) and split by deepgrad
(after): two runs at one count give identical bits, and every count agrees with one thread to
float64's last digits (only the grouping of partial sums differs).
"""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
from deepgrad import kernels, nn, parallel, threads
from deepgrad.ops import conv as conv_op
from tests.helpers import randn

pytest.importorskip("threadpoolctl")

COUNTS = (1, 2, 3, 4)


@pytest.fixture
def split_everything(monkeypatch):
    """Parts for every array, however small (a strided convolution's input gradient by phases too);
    deepgrad's thread count given back after the test."""
    monkeypatch.setattr(parallel, "MIN_WORK", 1)
    monkeypatch.setattr(conv_op, "PHASES_MIN_ELEMENTS", 0)
    before = dg.get_num_threads()
    yield
    dg.set_num_threads(before)


def conv(x, w, b, **options):
    return F.conv2d(x, w, b, **options)


class ColumnMajor(tuple):
    """An input's shape, the input held column-major (as nn.Linear holds its weight)."""


# (name, function of the input tensors, the inputs' shapes)
CASES = [
    ("conv row runs", lambda x, w, b: conv(x, w, b, padding=1), [(6, 8, 9, 9), (5, 8, 3, 3), (5,)]),
    ("conv window copy", lambda x, w, b: conv(x, w, b, padding=2), [(6, 2, 9, 9), (4, 2, 5, 5), (4,)]),
    ("conv strided", lambda x, w, b: conv(x, w, b, stride=2, padding=1), [(6, 8, 9, 9), (4, 8, 3, 3), (4,)]),
    ("conv strided by phases", lambda x, w, b: conv(x, w, b, stride=2, padding=1), [(6, 8, 9, 9), (8, 8, 3, 3), (8,)]),
    ("conv dilated", lambda x, w, b: conv(x, w, b, dilation=2, padding=2), [(5, 8, 9, 9), (3, 8, 3, 3), (3,)]),
    ("conv grouped", lambda x, w, b: conv(x, w, b, padding=1, groups=2), [(6, 8, 9, 9), (6, 4, 3, 3), (6,)]),
    ("conv depthwise", lambda x, w, b: conv(x, w, b, padding=1, groups=8), [(6, 8, 9, 9), (8, 1, 3, 3), (8,)]),
    (
        "conv depthwise strided, 2 filters a channel",
        lambda x, w, b: conv(x, w, b, stride=2, padding=1, groups=4),
        [(6, 4, 9, 9), (8, 1, 3, 3), (8,)],
    ),
    (
        "conv transposed",
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        [(6, 8, 5, 5), (8, 4, 3, 3), (4,)],
    ),
    (
        "conv transposed by taps",
        lambda x, w, b: F.conv_transpose2d(x, w, b, padding=1),
        [(6, 8, 5, 5), (8, 8, 3, 3), (8,)],
    ),
    ("max pool", lambda x: F.max_pool2d(x, 2), [(6, 3, 8, 8)]),
    ("max pool overlapping", lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [(6, 3, 9, 9)]),
    ("relu", F.relu, [(6, 4, 5, 5)]),
    ("batch norm", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(6, 4, 5, 5), (4,), (4,)]),
    ("batch norm 1d", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(6, 5), (5,), (5,)]),
    ("batch norm without γ, β", lambda x: F.batch_norm(x, None, None, training=True), [(6, 3, 4, 4)]),
    ("linear", F.linear, [(6, 5), (4, 5), (4,)]),
    ("linear of a sequence", F.linear, [(6, 3, 5), (4, 5), (4,)]),
    ("linear by its features", F.linear, [(3, 5), (8, 5), (8,)]),  # more features than rows: columns split
    ("linear by its inputs", F.linear, [(3, 8), (4, 8), (4,)]),  # the inner axis the longest: partial products
    ("linear of a vector", F.linear, [(40,), (30, 40), (30,)]),  # no rows to cut: by its inputs
    ("linear of a vector by its features", F.linear, [(20,), (30, 20), (30,)]),  # by columns
    ("linear of a sequence by its features", F.linear, [(2, 2, 5), (8, 5), (8,)]),
    ("linear of a sequence by its inputs", F.linear, [(2, 2, 9), (3, 9), (3,)]),
    ("linear, column-major weight", F.linear, [(6, 5), ColumnMajor((4, 5)), (4,)]),  # dW by its inner axis
    ("linear by its features, column-major weight", F.linear, [(3, 5), ColumnMajor((8, 5)), (8,)]),
    ("linear by its inputs, column-major weight", F.linear, [(3, 8), ColumnMajor((4, 8)), (4,)]),
    ("linear of a vector, column-major weight", F.linear, [(40,), ColumnMajor((30, 40)), (30,)]),
    ("matmul", lambda a, b: a @ b, [(6, 5), (5, 4)]),
    ("matmul by its inner axis", lambda a, b: a @ b, [(3, 8), (8, 2)]),
]


def outputs_and_grads(function, shapes, seed=0):
    """The output and the inputs' gradients under a fixed random upstream gradient, as float64 arrays;
    a column-major input's gradient is column-major too."""
    inputs = [
        nn.Parameter(np.asfortranarray(randn(seed + i, shape)))
        if isinstance(shape, ColumnMajor)
        else dg.tensor(randn(seed + i, shape), requires_grad=True)
        for i, shape in enumerate(shapes)
    ]
    out = function(*inputs)
    out.backward(dg.tensor(randn(99, out.shape)))
    for t, shape in zip(inputs, shapes):
        assert t.grad.flags.f_contiguous if isinstance(shape, ColumnMajor) else t.grad.flags.c_contiguous
    return [out.numpy()] + [np.asarray(t.grad) for t in inputs]


def set_threads(count, products_by):
    """``count`` threads split by the ops, with their matrix products on the BLAS's threads, or split
    by deepgrad's pool as once an op has claimed it."""
    dg.set_num_threads(count)
    if products_by == "pool":
        threads.claim_cores_for_pool()


@pytest.mark.parametrize("products_by", ["blas", "pool"])
@pytest.mark.parametrize("name, function, shapes", CASES, ids=[case[0] for case in CASES])
def test_each_thread_count_is_reproducible_and_agrees_with_one(split_everything, name, function, shapes, products_by):
    results = {}
    for count in COUNTS:
        set_threads(count, products_by)
        first, second = outputs_and_grads(function, shapes), outputs_and_grads(function, shapes)
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: two runs on {count} threads differ")
        results[count] = first
    for count in COUNTS[1:]:
        for one, many in zip(results[1], results[count]):
            np.testing.assert_allclose(many, one, rtol=1e-12, atol=1e-12, err_msg=f"{name}: {count} threads")


COMPILED = ("conv row runs", "conv dilated", "conv transposed by taps", "max pool", "max pool overlapping")
NUMPY_CASES = [case for case in CASES if case[0] in COMPILED]


@pytest.mark.parametrize("name, function, shapes", NUMPY_CASES, ids=[case[0] for case in NUMPY_CASES])
def test_numpys_passes_are_reproducible_and_agree(split_everything, monkeypatch, name, function, shapes):
    """The cases above take the compiled convolutions and max pooling where numba is installed; here
    NumPy's taps and pooling passes."""
    monkeypatch.setattr(kernels, "ENABLED", False)
    test_each_thread_count_is_reproducible_and_agrees_with_one(None, name, function, shapes, "pool")


@pytest.mark.parametrize("kernel", [1, 2, 3, (2, 3)])
def test_max_pool_without_a_backward_takes_tile_maxima_one_axis_at_a_time(split_everything, kernel, kernels_path):
    """Without a backward to come, tiling windows take the maxima of columns, then of rows: the values
    of the path that records the winners, NaN included, on every thread count."""
    x = randn(0, (6, 3, 6, 12))
    x[0, 0, 0, 0], x[1, 2, 3, 5] = np.nan, -np.inf
    expected = F.max_pool2d(dg.tensor(x, requires_grad=True), kernel).numpy()
    for count in COUNTS:
        dg.set_num_threads(count)
        with dg.no_grad():
            np.testing.assert_array_equal(F.max_pool2d(dg.tensor(x), kernel).numpy(), expected)


def test_the_parts_really_run_on_the_pool(split_everything, monkeypatch):
    """The sweep above exercises the pool: with several threads each op hands parts to workers."""
    calls = []
    real = parallel.map_parts
    monkeypatch.setattr(parallel, "map_parts", lambda f, s: calls.append(len(s)) or real(f, s))
    dg.set_num_threads(3)
    outputs_and_grads(CASES[0][1], CASES[0][2])
    assert calls and max(calls) == 3


def test_a_backward_runs_its_two_products_at_once_on_two_threads_each_whole(split_everything, monkeypatch):
    """A linear layer's (and 2-D matmul's) dx and dW share the threads: on two, one handoff for both,
    and each GEMM whole, so they are one thread's bit for bit."""
    handoffs = []
    real = parallel.together
    monkeypatch.setattr(parallel, "together", lambda calls: handoffs.append(len(calls)) or real(calls))
    for function, shapes in ((F.linear, [(6, 5), (4, 5)]), (lambda a, b: a @ b, [(6, 5), (5, 4)])):
        dg.set_num_threads(1)
        one = outputs_and_grads(function, shapes)
        set_threads(2, "pool")
        handoffs.clear()
        two = outputs_and_grads(function, shapes)
        assert handoffs == [2, 2]  # the forward's two row parts, then dx and dW together
        for expected, actual in zip(one[1:], two[1:]):
            np.testing.assert_array_equal(actual, expected)


def blas_threads():
    """The thread count of every BLAS threadpoolctl finds in the process."""
    import threadpoolctl

    return {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"}


def test_the_blas_splits_the_products_until_an_op_splits_work_over_the_pool(split_everything, monkeypatch):
    """With several threads, the BLAS has them and each product is NumPy's own (no handoff to
    deepgrad's workers), until a convolution cuts its batch: from then on the BLAS is on one thread
    and the pool splits the products too, until set_num_threads starts over."""
    handoffs = []
    real_together = parallel.together
    monkeypatch.setattr(parallel, "together", lambda calls: handoffs.append(len(calls)) or real_together(calls))
    dg.set_num_threads(2)
    assert threads.products_by_blas() and blas_threads() == {2}
    outputs_and_grads(F.linear, [(6, 5), (4, 5), (4,)])
    assert handoffs == []
    outputs_and_grads(CASES[0][1], CASES[0][2])  # a convolution claims the pool
    assert not threads.products_by_blas() and blas_threads() == {1}
    handoffs.clear()
    outputs_and_grads(F.linear, [(6, 5), (4, 5), (4,)])
    assert handoffs == [2, 2]
    dg.set_num_threads(2)
    assert threads.products_by_blas() and blas_threads() == {2}


@pytest.mark.parametrize(
    "name, function, shapes",
    # 2¹⁶ elements: ReLU's forward clips from there (activation.CLIP_MIN_SIZE), and may split
    [
        ("relu", F.relu, [(4, 4, 64, 64)]),
        ("add relu", F.add_relu, [(4, 4, 64, 64), (4, 4, 64, 64)]),
        ("batch norm 1d", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(6, 5), (5,), (5,)]),
    ],
    ids=["relu", "add relu", "batch norm 1d"],
)
def test_an_mlps_ops_leave_the_threads_to_the_blas_until_an_op_claims_them(
    split_everything, monkeypatch, kernels_path, name, function, shapes
):
    """A large elementwise pass (an MLP's ReLU in evaluation) and a batch norm over (N, C) features
    stay whole while the BLAS has the threads: cutting them would claim the threads for the pool, and
    the MLP's products would be split by deepgrad from then on, slower than by the BLAS. After a
    convolution has claimed them, they are cut."""
    handoffs = []
    real = parallel.together
    monkeypatch.setattr(parallel, "together", lambda calls: handoffs.append(len(calls)) or real(calls))
    dg.set_num_threads(2)
    outputs_and_grads(function, shapes)
    assert handoffs == [] and threads.products_by_blas() and blas_threads() == {2}
    outputs_and_grads(CASES[0][1], CASES[0][2])  # a convolution claims the pool
    handoffs.clear()
    outputs_and_grads(function, shapes)
    assert handoffs == [2, 2], name  # forward and backward, each in two parts


def test_by_the_blas_the_pool_claims_nothing(split_everything):
    dg.set_num_threads(2, by="blas")
    assert threads.products_by_blas()
    assert parallel.parts(np.zeros((8, 2)), 10**9) == [slice(0, 8)]
    threads.claim_cores_for_pool()  # as an op of deepgrad's would: the BLAS keeps its threads
    assert threads.products_by_blas() and blas_threads() == {2}


def test_a_small_model_never_enters_the_pool(monkeypatch):
    """At the real threshold, a small conv net's training step stays on the calling thread: no op
    splits, so none claims the cores from the BLAS either."""
    before = dg.get_num_threads()
    dg.set_num_threads(4)

    def refuse(workers):
        raise AssertionError("a small op handed parts to the pool")

    monkeypatch.setattr(parallel, "_workers_for", refuse)
    try:
        dg.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3)
        )
        loss = F.cross_entropy(
            model(dg.tensor(randn(0, (8, 1, 8, 8)).astype(np.float32))), dg.tensor([0, 1, 2] * 2 + [0, 1])
        )
        loss.backward()
        assert threads.products_by_blas()
    finally:
        dg.set_num_threads(before)


def test_an_error_in_a_worker_part_is_raised_after_every_part_ends(split_everything):
    dg.set_num_threads(3)
    finished = []

    def part(rows):
        if rows.start == 2:
            raise ValueError("part 2 failed")
        finished.append(rows.start)

    with pytest.raises(ValueError, match="part 2 failed"):
        parallel.map_parts(part, [slice(0, 2), slice(2, 4), slice(4, 6)])
    assert sorted(finished) == [0, 4]


def test_parts_cover_the_batch_evenly_and_in_order(split_everything):
    dg.set_num_threads(3)
    assert parallel.parts(np.zeros((10, 2)), 10**9) == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert parallel.parts(np.zeros((2, 2)), 10**9) == [slice(0, 1), slice(1, 2)]  # never more parts than rows


def test_parts_inside_a_part_run_whole_on_its_thread(split_everything):
    """Neither a worker nor the calling thread, while it runs its own part, splits again (an op may
    run whole ops on its parts); once the parts are done, the calling thread splits again."""
    dg.set_num_threads(2)
    inner = parallel.map_parts(lambda rows: len(parallel.parts(np.zeros((4, 1)), 10**9)), [slice(0, 1), slice(1, 2)])
    assert inner == [1, 1]
    assert len(parallel.parts(np.zeros((4, 1)), 10**9)) == 2

    def fail(rows):
        raise ValueError(f"part {rows.start} failed")

    with pytest.raises(ValueError, match="part 0 failed"):  # the calling thread's own part
        parallel.map_parts(fail, [slice(0, 1), slice(1, 2)])
    assert len(parallel.parts(np.zeros((4, 1)), 10**9)) == 2  # not left inside a part by an error


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
def test_a_forked_child_splits_work_on_workers_of_its_own(split_everything):
    """A child forked after the pool started (multiprocessing's fork start method) has none of the
    parent's threads: it starts its own workers instead of queueing parts for threads that do not exist."""
    dg.set_num_threads(2)
    assert parallel.map_parts(lambda rows: rows.start, [slice(0, 1), slice(1, 2)]) == [0, 1]
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its parts ran
        try:
            os._exit(0 if parallel.map_parts(lambda rows: rows.start, [slice(0, 1), slice(1, 2)]) == [0, 1] else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child's parts never ran")


def test_ops_on_two_threads_at_once_each_get_their_own_results(split_everything):
    """Two threads splitting work at the same time each get their own parts' results back."""
    dg.set_num_threads(2)
    results = {}

    def split(name):
        parts = [slice(0, 1), slice(1, 2)]
        results[name] = [parallel.map_parts(lambda rows: (name, rows.start), parts) for _ in range(200)]

    callers = [threading.Thread(target=split, args=(name,)) for name in "ab"]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert all(result == [(name, 0), (name, 1)] for name in "ab" for result in results[name])


@pytest.fixture(params=["spinning", "sleeping"])
def fresh_pool(request, monkeypatch):
    """A pool of new workers that wait for their parts by the compiled spins (then asleep), or only
    asleep on their locks (as without numba); deepgrad's thread count given back after the test."""
    if request.param == "spinning" and kernels.load("spin") is None:
        pytest.skip("numba is not installed: the pool only sleeps")
    if request.param == "sleeping":
        load = kernels.load
        monkeypatch.setattr(kernels, "load", lambda name: None if name == "spin" else load(name))
    monkeypatch.setattr(parallel, "_workers", [])
    monkeypatch.setattr(parallel, "_spin", None)
    before = dg.get_num_threads()
    dg.set_num_threads(3)
    yield request.param
    dg.set_num_threads(before)


class CountedLock:
    """A lock that counts its acquires (a worker's ``wake``: each is the worker going to sleep)."""

    def __init__(self, lock):
        self.lock, self.acquires = lock, 0

    def acquire(self, *args):
        self.acquires += 1
        return self.lock.acquire(*args)

    def release(self):
        self.lock.release()


def test_parts_run_in_order_whether_the_workers_spin_or_sleep(fresh_pool):
    """Back-to-back handoffs, and handoffs after the workers have gone to sleep, give every part's
    result in the parts' order."""
    parts = [slice(0, 1), slice(1, 2), slice(2, 3)]
    for _ in range(300):
        assert parallel.map_parts(lambda rows: rows.start, parts) == [0, 1, 2]
    time.sleep(0.02)  # past any worker's spin
    assert len(parallel._workers) == 2 and all(worker.sleeping for worker in parallel._workers)
    assert parallel.map_parts(lambda rows: rows.start, parts) == [0, 1, 2]


def test_a_spinning_worker_takes_back_to_back_parts_without_sleeping(fresh_pool, monkeypatch):
    """With the spins, a worker whose next part comes within its spin never sleeps on its lock, and
    the caller that finished first sees the worker's part done by spinning."""
    if fresh_pool == "sleeping":
        pytest.skip("the sleeping pool has no spins")
    if threads.usable_cores() < 2:
        pytest.skip("one core: two threads never spin")
    monkeypatch.setattr(parallel, "WORKER_SPIN_US", 2e6)
    monkeypatch.setattr(parallel, "CALLER_SPIN_US", 2e6)
    monkeypatch.setattr(parallel, "LATE_US", 1e7)  # a busy machine delaying a handoff does not pause the spins
    parallel.map_parts(lambda rows: None, [slice(0, 1), slice(1, 2)])  # the worker started
    worker = parallel._workers[0]
    wake = CountedLock(worker.wake)
    worker.wake = wake
    done_locks = counted_handoffs(monkeypatch)
    for _ in range(200):
        assert parallel.map_parts(lambda rows: rows.start, [slice(0, 1), slice(1, 2)]) == [0, 1]
    assert wake.acquires == 0 and len(done_locks) == 200
    assert all(lock.acquires == 0 for lock in done_locks)


def counted_handoffs(monkeypatch):
    """Each job's ``done`` lock, counted (a caller's wait on it: it did not spin, or its spin ran out)."""
    done_locks = []
    init = parallel._Job.__init__

    def counted_init(job, call):
        init(job, call)
        job.done = CountedLock(job.done)
        done_locks.append(job.done)

    monkeypatch.setattr(parallel._Job, "__init__", counted_init)
    return done_locks


def test_threads_that_outnumber_the_cores_never_spin(fresh_pool, monkeypatch):
    """With more threads than cores a spinning thread would hold the core another needs: the caller
    waits on the part's lock and the worker sleeps, whatever the spins' lengths."""
    if fresh_pool == "sleeping":
        pytest.skip("the sleeping pool has no spins")
    monkeypatch.setattr(parallel, "WORKER_SPIN_US", 2e6)
    monkeypatch.setattr(parallel, "CALLER_SPIN_US", 2e6)
    parallel.map_parts(lambda rows: None, [slice(0, 1), slice(1, 2)])
    monkeypatch.setattr(parallel._spin, "cores", 1)
    done_locks = counted_handoffs(monkeypatch)
    slow = lambda rows: time.sleep(0.002) or rows.start  # noqa: E731 (the worker's part outlasts the caller's)
    for _ in range(5):
        assert parallel.map_parts(slow, [slice(0, 1), slice(1, 2)]) == [0, 1]
    assert all(lock.acquires == 1 for lock in done_locks) and parallel._workers[0].spin is None


def test_a_worker_that_saw_its_part_late_pauses_the_spins(fresh_pool, monkeypatch):
    """A spinning worker that saw its part more than LATE_US after the handoff (by the time-stamp
    counter) was off its core, another process on it: for PAUSE_S the threads only sleep, then they
    spin again, and pause twice as long when it happens again soon. A worker that slept through the
    handoff stamped nothing after it, and pauses nothing."""
    if fresh_pool == "sleeping":
        pytest.skip("the sleeping pool has no spins")
    if threads.usable_cores() < 2:
        pytest.skip("one core: two threads never spin")
    parts = [slice(0, 1), slice(1, 2)]
    parallel.map_parts(lambda rows: None, parts)
    spin, worker = parallel._spin, parallel._workers[0]
    if spin.late == float("inf"):
        pytest.skip("no time-stamp counter on this machine: the spins never pause")
    board, handed = worker.board, 10**12
    board[parallel.HANDED], board[parallel.SEEN] = handed, handed - 1  # slept through it
    spin.check_workers([worker])
    assert spin.allowed(2)
    board[parallel.SEEN] = handed + int(spin.late) + 1
    spin.check_workers([worker])
    assert not spin.allowed(2)
    done_locks = counted_handoffs(monkeypatch)
    assert parallel.map_parts(lambda rows: time.sleep(0.002) or rows.start, parts[::-1]) == [1, 0]
    assert done_locks[0].acquires == 1 and worker.spin is None  # the caller slept; so does the worker
    spin.paused_until = time.monotonic()  # the pause over
    assert spin.allowed(2) and spin.pause == parallel.PAUSE_S
    board[parallel.HANDED], board[parallel.SEEN] = handed, handed + int(spin.late) + 1
    spin.check_workers([worker])  # late again right away: twice as long
    assert not spin.allowed(2) and spin.pause == 2 * parallel.PAUSE_S


def test_a_worker_whose_spin_ran_out_sleeps_and_wakes_for_its_next_part(fresh_pool, monkeypatch):
    """Spins of no length: each worker sleeps between parts, and each caller waits on the part's lock
    (as without numba); the parts still run, in order, on every count of threads."""
    monkeypatch.setattr(parallel, "WORKER_SPIN_US", 0.0)
    monkeypatch.setattr(parallel, "CALLER_SPIN_US", 0.0)
    slow = lambda rows: time.sleep(0.002) or rows.start  # noqa: E731 (the worker's part outlasts the caller's)
    for count in (2, 3):
        parts = [slice(i, i + 1) for i in range(count)]
        for _ in range(20):
            assert parallel.map_parts(slow, parts) == list(range(count))
    wake = CountedLock(parallel._workers[0].wake)
    parallel._workers[0].wake = wake
    time.sleep(0.01)
    assert parallel.map_parts(slow, [slice(0, 1), slice(1, 2)]) == [0, 1]
    time.sleep(0.01)
    assert wake.acquires >= 1  # it went to sleep after that part


def test_a_worker_runs_parts_handed_to_it_while_it_is_busy_after_the_one_it_runs(fresh_pool):
    """Parts handed to a worker still running one (a caller interrupted in its wait leaves one
    behind) run after it, in order, each waited for by its number."""
    (worker,) = parallel._workers_for(1)
    gate, order = threading.Event(), []
    jobs = [parallel._Job(lambda: gate.wait(5) and order.append(0))]
    jobs += [parallel._Job(lambda i=i: order.append(i)) for i in (1, 2)]
    spin = parallel._spin_for(2)
    assert spin is None or fresh_pool == "spinning"
    numbers = [worker.hand(job, spin) for job in jobs]
    gate.set()
    worker.wait_for(jobs[2], numbers[2], spin)
    assert order == [0, 1, 2] and numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]


def test_the_pool_never_brings_numba_into_a_process():
    """The spins wait for numba to be in the process for some other reason (an op's kernel): a
    process whose ops need none splits work on the sleeping pool, without numba's 120 MB."""
    code = (
        "import sys; import deepgrad as dg; from deepgrad import parallel; dg.set_num_threads(2); "
        "print(parallel.map_parts(lambda rows: rows.start, [slice(0, 1), slice(1, 2)]), 'numba' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["[0,", "1]", "False"]
