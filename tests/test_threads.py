"""dg.set_num_threads / get_num_threads: the thread count of NumPy's BLAS, changed at run time."""

import sys

import numpy as np
import pytest

import deepgrad as dg

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture
def restore_threads():
    """Give the BLAS back its thread count after the test (the setting is process-wide)."""
    before = threadpoolctl.threadpool_info()
    yield
    for pool in before:
        if pool["user_api"] == "blas":
            threadpoolctl.threadpool_limits(limits={pool["prefix"]: pool["num_threads"]})


@pytest.mark.skipif(dg.get_num_threads() is None, reason="no BLAS threadpoolctl can control")
@pytest.mark.parametrize("n", [1, 2, 3])
def test_set_then_get(restore_threads, n):
    dg.set_num_threads(n)
    assert dg.get_num_threads() == n
    blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == n for pool in blas)


@pytest.mark.skipif(dg.get_num_threads() is None, reason="no BLAS threadpoolctl can control")
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
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # makes `import threadpoolctl` fail
    for call in (lambda: dg.set_num_threads(1), dg.get_num_threads):
        with pytest.raises(ImportError, match="pip install threadpoolctl"):
            call()
