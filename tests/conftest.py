"""Shared fixtures. The helpers themselves live in ``tests/helpers.py``
(importable as ``helpers``: pytest puts this directory on ``sys.path``)."""

import numpy as np
import pytest

import deepgrad as dg


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Leave grad mode and the default dtype as found, even when a test fails midway."""
    grad_enabled, default_dtype = dg.is_grad_enabled(), dg.get_default_dtype()
    yield
    dg.set_grad_enabled(grad_enabled)
    dg.set_default_dtype(default_dtype)


def _devices():
    """The non-CPU devices to test on: the strict fake always, CUDA when CuPy and a GPU are here."""
    from fake_device import FAKE

    from deepgrad import backend

    backend.register_device(FAKE)
    devices = [pytest.param("fake", id="fake")]
    devices.append(
        pytest.param(
            "cuda",
            id="cuda",
            marks=pytest.mark.skipif(not backend.is_available("cuda"), reason="needs CuPy and an NVIDIA GPU"),
        )
    )
    return devices


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def device(request):
    """Each non-CPU device in turn (tests on "cuda" skip cleanly without a GPU)."""
    return request.param


@pytest.fixture(params=["windows", "taps", "taps-unstacked", "taps-chunked", "taps-compiled"])
def conv_path(request, monkeypatch):
    """Run a convolution test through each way deepgrad correlates: the window copy (and a strided
    input gradient's scatter-adds), taps over the whole batch at once (and a strided input gradient
    phase by phase), with each kernel row's taps stacked into one GEMM or each tap its own, taps
    one sample per chunk (whatever the sizes), and taps by the compiled kernels, a sample at a time
    (deepgrad.kernels.conv; skipped without numba or NumPy's OpenBLAS)."""
    from deepgrad import kernels
    from deepgrad.kernels import blas
    from deepgrad.ops import conv

    compiled = request.param == "taps-compiled"
    if compiled and not (kernels.numba_installed() and blas.gemm_for(np.float64) is not None):
        pytest.skip("the compiled convolutions need numba and NumPy's OpenBLAS")
    monkeypatch.setattr(kernels, "ENABLED", compiled)
    monkeypatch.setattr(conv, "TAP_MIN_CHANNELS", 10**9 if request.param == "windows" else 0)
    monkeypatch.setattr(conv, "PHASES_MIN_ELEMENTS", 0)
    monkeypatch.setattr(conv, "STACKED_MAX_DEPTH", 0 if request.param == "taps-unstacked" else 10**9)
    if request.param == "taps-chunked":
        monkeypatch.setattr(conv, "TAP_CHUNK_BYTES", 1)
    return request.param


@pytest.fixture(params=["numpy", "kernels"])
def kernels_path(request, monkeypatch):
    """Run a test of an op with compiled kernels (batch norm over a batch of 3+ axes, a depthwise
    convolution, max pooling) through each of its ways: NumPy's passes over whole arrays, and deepgrad.kernels'
    compiled loops (skipped without numba)."""
    from deepgrad import kernels

    if request.param == "kernels" and not kernels.numba_installed():
        pytest.skip("the compiled kernels need numba")
    monkeypatch.setattr(kernels, "ENABLED", request.param == "kernels")
    return request.param


@pytest.fixture
def numpy_paths_on_the_cpu(monkeypatch):
    """The CPU takes NumPy's paths, as the devices do, for tests that compare a device with the CPU:
    the compiled CPU kernels (deepgrad.kernels) round differently, and the fake device runs NumPy's
    own code to the bit."""
    from deepgrad import kernels

    monkeypatch.setattr(kernels, "ENABLED", False)


@pytest.fixture(scope="session")
def executed_notebooks(tmp_path_factory):
    """Every notebook of notebooks/, executed once per test session (whoever uses them): the paths
    of the executed copies, in order. Skipped without the notebooks extra."""
    for module in ("nbclient", "nbformat", "ipykernel"):
        pytest.importorskip(module)
    from deepgrad.notebooks import execute_all

    return execute_all(tmp_path_factory.mktemp("executed-notebooks"))
