"""dg.set_num_threads / get_num_threads: deepgrad's thread count and NumPy's BLAS's, changed at run time."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import threads
from tests.helpers import hide_threadpoolctl

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture
def restore_threads():
    """Give deepgrad and the BLAS back their thread count after the test (the setting is process-wide)."""
    before = dg.get_num_threads()
    yield
    dg.set_num_threads(before)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_set_then_get(restore_threads, n):
    dg.set_num_threads(n)
    assert dg.get_num_threads() == n
    blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == n for pool in blas)


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
    """Without a way to hold the BLAS at one thread while its parts run, deepgrad's ops do not split."""
    hide_threadpoolctl(monkeypatch)
    assert dg.get_num_threads() == 1


def test_the_default_is_the_blas_count(monkeypatch):
    monkeypatch.setattr(threads, "_threads", None)
    blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert dg.get_num_threads() == max(pool["num_threads"] for pool in blas)


def test_the_blas_is_held_at_one_and_given_back(restore_threads):
    dg.set_num_threads(3)
    blas = threads.BlasThreads()
    with threads.blas_held_at_one():
        assert blas.get() == 1
        with threads.blas_held_at_one():  # nested: still one, and the outer block gives the count back
            assert blas.get() == 1
        assert blas.get() == 1
    assert blas.get() == 3
