"""dg.set_num_threads / get_num_threads: deepgrad's thread count and NumPy's BLAS's, changed at run time."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import threads
from tests.helpers import hide_threadpoolctl

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture
def restore_threads():
    """Give deepgrad and the BLAS back their thread setting after the test (the setting is process-wide)."""
    before = threads.get_thread_setting()
    yield
    dg.set_num_threads(*before)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_set_then_get(restore_threads, n):
    """deepgrad's ops take the count, and so does every BLAS until an op splits work over deepgrad's
    pool: then the BLAS goes on one thread, and deepgrad splits its products too."""
    dg.set_num_threads(n)
    assert dg.get_num_threads() == n
    blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == n for pool in blas)
    threads.claim_cores_for_pool()
    blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert all(pool["num_threads"] == 1 for pool in blas)


@pytest.mark.parametrize("n", [2, 3])
def test_by_the_blas_the_blas_has_the_threads_and_deepgrads_ops_run_on_one(restore_threads, n, monkeypatch):
    from deepgrad import parallel

    dg.set_num_threads(n, by="blas")
    assert dg.get_num_threads() == n and threads.get_thread_setting() == threads.ThreadSetting(n, "blas")
    assert threads.ops_threads() == 1 and str(threads.get_thread_setting()) == f"{n} (by the BLAS)"
    blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == n for pool in blas)
    monkeypatch.setattr(parallel, "MIN_WORK", 1)
    assert parallel.parts(np.zeros((8, 2)), 10**9) == [slice(0, 8)]  # however large the work
    dg.set_num_threads(1, by="blas")  # one thread is one thread, whoever would split
    assert threads.get_thread_setting() == threads.ThreadSetting(1, "ops")


def test_an_unknown_splitter_is_refused_and_changes_nothing(restore_threads):
    dg.set_num_threads(2)
    with pytest.raises(ValueError, match="set_num_threads: by must be one of ops, blas, got 'numpy'"):
        dg.set_num_threads(3, by="numpy")
    assert threads.get_thread_setting() == threads.ThreadSetting(2, "ops")


def test_products_do_not_depend_on_the_thread_count(restore_threads):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 250))
    dg.set_num_threads(1)
    one = (dg.tensor(a) @ dg.tensor(b)).numpy()
    dg.set_num_threads(2)
    two = (dg.tensor(a) @ dg.tensor(b)).numpy()
    np.testing.assert_allclose(one, two, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2", None])
def test_bad_counts_are_refused(n):
    with pytest.raises(ValueError, match=r"set_num_threads: expected a whole number of threads >= 1, got"):
        dg.set_num_threads(n)


def test_without_threadpoolctl_the_error_says_what_to_install(monkeypatch):
    hide_threadpoolctl(monkeypatch)
    with pytest.raises(ImportError, match="pip install threadpoolctl"):
        dg.set_num_threads(1)


def test_without_threadpoolctl_deepgrad_stays_on_one_thread(monkeypatch):
    """Without threadpoolctl the BLAS cannot be put on one thread, so deepgrad's ops do not split."""
    hide_threadpoolctl(monkeypatch)
    assert dg.get_num_threads() == 1


def test_until_set_deepgrad_runs_on_one_thread_and_leaves_the_blas_alone(monkeypatch):
    monkeypatch.setattr(threads, "_setting", threads.ThreadSetting(1))
    blas = threads.BlasThreads()
    before = blas.get()
    blas.set(2)
    try:
        assert dg.get_num_threads() == 1
        out = dg.tensor(np.ones((64, 64))) @ dg.tensor(np.ones((64, 64)))
        assert out.numpy()[0, 0] == 64 and blas.get() == 2
    finally:
        blas.set(before)
