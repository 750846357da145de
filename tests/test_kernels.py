"""deepgrad.kernels: the compiled batch norm passes agree with NumPy's, take the same bits on every
thread count, and stay optional (off by DEEPGRAD_KERNELS=0 or without numba, never imported by
``import deepgrad``)."""

import functools
import json
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
from helpers import positive, randn

import deepgrad as dg
import deepgrad.functional as F
from deepgrad import kernels, parallel
from deepgrad.kernels import blas
from deepgrad.ops.normalization import BatchNorm

needs_numba = pytest.mark.skipif(not kernels.numba_installed(), reason="the kernels need numba")

SHAPES = {"images": (6, 4, 5, 5), "sequences": (5, 3, 7), "one-value-rows": (7, 2, 1)}


def batch_norm_outputs(x, weight, bias, grad, use_kernels, monkeypatch, needs=(True, True, True)):
    """out, μ-updated running arrays and (dx, dγ, dβ) of one BatchNorm op with running statistics."""
    monkeypatch.setattr(kernels, "ENABLED", use_kernels)
    channels = x.shape[1]
    running_mean, running_var = np.zeros(channels, x.dtype), np.ones(channels, x.dtype)
    op = BatchNorm(1e-5, running_mean, running_var, momentum=0.1)
    op.needs_input_grad = needs
    affine = () if weight is None else (weight, bias)
    out = op.forward(x, *affine)
    assert (op.kernels is not None) is use_kernels
    return out, running_mean, running_var, op.backward(grad)


def assert_all_close(actual, expected, rtol, atol):
    for a, e in zip(actual, expected):
        if e is None or isinstance(e, tuple):
            assert (a is None) == (e is None)
            if isinstance(e, tuple):
                assert_all_close(a, e, rtol, atol)
            continue
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


@needs_numba
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_batch_norm_kernels_agree_with_the_passes_in_float64(monkeypatch, shape, affine):
    x, grad = randn(0, shape) * 3 + 2, randn(1, shape)
    weight, bias = (positive(2, shape[1]), randn(3, shape[1])) if affine else (None, None)
    by_kernels = batch_norm_outputs(x, weight, bias, grad, True, monkeypatch)
    by_passes = batch_norm_outputs(x, weight, bias, grad, False, monkeypatch)
    assert_all_close(by_kernels, by_passes, rtol=1e-12, atol=1e-13)


@needs_numba
def test_batch_norm_kernels_in_float32_sum_in_float64(monkeypatch):
    """float32 in and out, the sums in float64: μ of values far from 0 as exact as float32 holds it."""
    x = (randn(0, (8, 3, 16, 16)) * 0.1 + 1000).astype(np.float32)
    grad = randn(1, x.shape).astype(np.float32)
    weight, bias = np.ones(3, np.float32), np.zeros(3, np.float32)
    out, running_mean, running_var, grads = batch_norm_outputs(x, weight, bias, grad, True, monkeypatch)
    assert {a.dtype for a in (out, running_mean, running_var, *grads)} == {np.dtype(np.float32)}
    exact = x.astype(np.float64)
    mean = exact.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(running_mean, 0.1 * mean, rtol=1e-7)
    expected = (exact - mean[:, None, None]) / np.sqrt(exact.var(axis=(0, 2, 3)) + 1e-5)[:, None, None]
    np.testing.assert_allclose(out, expected, atol=2e-3)  # x itself holds ~7 digits: x − μ ≈ 0.1 to 1e-4


@needs_numba
def test_batch_norm_kernels_take_any_input_layout(monkeypatch):
    base = randn(0, (5, 6, 4, 3))
    x = base.transpose(0, 3, 2, 1)  # (5, 3, 4, 6), not contiguous
    grad = randn(1, x.shape)
    weight, bias = positive(2, 3), randn(3, 3)
    by_kernels = batch_norm_outputs(x, weight, bias, grad, True, monkeypatch)
    by_passes = batch_norm_outputs(np.ascontiguousarray(x), weight, bias, grad, False, monkeypatch)
    assert_all_close(by_kernels, by_passes, rtol=1e-12, atol=1e-13)


@needs_numba
def test_batch_norm_kernels_without_an_input_gradient(monkeypatch):
    x, grad = randn(0, (4, 3, 3, 3)), randn(1, (4, 3, 3, 3))
    weight, bias = positive(2, 3), randn(3, 3)
    *_, (dx, dweight, dbias) = batch_norm_outputs(x, weight, bias, grad, True, monkeypatch, (False, True, True))
    *_, (_, expected_dweight, expected_dbias) = batch_norm_outputs(x, weight, bias, grad, False, monkeypatch)
    assert dx is None
    np.testing.assert_allclose(dweight, expected_dweight, rtol=1e-12)
    np.testing.assert_allclose(dbias, expected_dbias, rtol=1e-12)


@needs_numba
def test_nan_in_a_channel_stays_in_that_channel(monkeypatch):
    x, grad = randn(0, (4, 3, 3, 3)), randn(1, (4, 3, 3, 3))
    x[2, 1, 0, 0] = np.nan
    out, _, _, (dx, dweight, dbias) = batch_norm_outputs(x, positive(2, 3), randn(3, 3), grad, True, monkeypatch)
    assert np.isnan(out[:, 1]).all() and np.isnan(dx[:, 1]).all() and np.isnan(dweight[1])
    assert np.isfinite(out[:, [0, 2]]).all() and np.isfinite(dx[:, [0, 2]]).all()
    assert np.isfinite(dweight[[0, 2]]).all() and np.isfinite(dbias).all()


@needs_numba
def test_every_thread_count_gives_the_same_bits(monkeypatch):
    """A channel's sums do not depend on how the channels were shared out: unlike NumPy's split
    passes, the kernels give one thread count's bits on every count."""
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(parallel, "MIN_WORK", 1)
    before = dg.get_num_threads()
    x, weight, bias = randn(0, (6, 5, 4, 4)), positive(1, 5), randn(2, 5)
    results = []
    try:
        for count in (1, 2, 3, 4):
            dg.set_num_threads(count)
            tensors = [dg.tensor(a, requires_grad=True) for a in (x, weight, bias)]
            out = F.batch_norm(*tensors[:1], None, None, *tensors[1:], training=True)
            (out * dg.tensor(randn(3, x.shape))).sum().backward()
            results.append([out.numpy()] + [t.grad for t in tensors])
    finally:
        dg.set_num_threads(before)
    for result in results[1:]:
        for a, b in zip(result, results[0]):
            np.testing.assert_array_equal(a, b)


def depthwise_outputs(
    x, weight, bias, grad, use_kernels, monkeypatch, needs=(True, True, True), transposed=False, **options
):
    """out and (dx, dW, db) of one depthwise convolution (groups = channels; without the kernels, a
    strided one or one with several filters a channel takes the columns); ``transposed``: x reaches it
    as a transposed view (its H and W axes swapped back), not a contiguous array."""
    monkeypatch.setattr(kernels, "ENABLED", use_kernels)
    tensors = [dg.tensor(a, requires_grad=need) for a, need in zip((x, weight, bias), needs)]
    if transposed:
        tensors[0] = dg.tensor(x.swapaxes(2, 3).copy(), requires_grad=needs[0])
    inputs = [tensors[0].transpose(2, 3) if transposed else tensors[0], *tensors[1:]]
    out = F.conv2d(*inputs, groups=x.shape[1], **options)
    assert (getattr(out.grad_fn, "kernels", None) is not None) is use_kernels
    out.backward(grad(out.shape))
    return [out.numpy()] + [t.grad for t in tensors]


# name -> (kernel, options)
DEPTHWISE = {
    "3x3": ((3, 3), dict(padding=1)),
    "dilated-asymmetric": ((3, 3), dict(padding=(2, 0), dilation=(2, 1))),
    "7x7-wide-padding": ((7, 7), dict(padding=4)),
    "2x4-unpadded": ((2, 4), dict()),
    "strided": ((3, 3), dict(stride=2, padding=1)),
    "strided-dilated": ((3, 2), dict(stride=(3, 2), padding=(1, 2), dilation=(1, 2))),
}


@needs_numba
@pytest.mark.parametrize("kernel, options", DEPTHWISE.values(), ids=DEPTHWISE.keys())
@pytest.mark.parametrize("filters", [1, 2], ids=["1-filter", "2-filters"])
@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, False)], ids=str)
@pytest.mark.parametrize("transposed", [False, True], ids=["contiguous", "transposed-view"])
def test_depthwise_kernels_agree_with_the_passes_in_float64(monkeypatch, kernel, options, filters, needs, transposed):
    """The kernels against NumPy's depthwise path (stride 1, a filter a channel) or the columns' GEMMs."""
    x, weight, bias = randn(0, (5, 3, 9, 8)), randn(1, (3 * filters, 1) + kernel), randn(2, 3 * filters)

    def grad(shape):
        return randn(3, shape)

    by_kernels = depthwise_outputs(x, weight, bias, grad, True, monkeypatch, needs, transposed, **options)
    by_passes = depthwise_outputs(x, weight, bias, grad, False, monkeypatch, needs, transposed, **options)
    assert_all_close(by_kernels, by_passes, rtol=1e-12, atol=1e-12)


@needs_numba
def test_depthwise_kernels_sum_the_weight_gradient_in_float64(monkeypatch):
    """float32 in and out; dW's sums over the batch in float64, as exact as float32 holds them."""
    x = (randn(0, (16, 2, 30, 30)) + 10).astype(np.float32)
    weight, bias = randn(1, (2, 1, 3, 3)).astype(np.float32), np.zeros(2, np.float32)

    def grad(shape):
        return np.ones(shape, np.float32)

    _, dx, dweight, _ = depthwise_outputs(x, weight, bias, grad, True, monkeypatch, padding=1)
    assert dx.dtype == dweight.dtype == np.float32
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    exact = np.array(
        [[[padded[:, c, u : u + 30, v : v + 30].sum() for v in range(3)] for u in range(3)] for c in range(2)]
    )
    np.testing.assert_allclose(dweight[:, 0], exact, rtol=2e-7)


# ----------------------------------------------------------------------------
# Stride-1 convolutions a sample at a time, on NumPy's BLAS

needs_conv_kernels = pytest.mark.skipif(
    not (kernels.numba_installed() and blas.gemm_for(np.float64) is not None),
    reason="the compiled convolutions need numba and NumPy's OpenBLAS",
)


def numpy_blas_name():
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except (TypeError, KeyError):  # NumPy before 1.25 prints its configuration only
        return None


@pytest.mark.skipif(numpy_blas_name() != "scipy-openblas", reason="NumPy's wheels link scipy-openblas")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_for_finds_numpys_openblas_and_computes_its_product(dtype):
    """C = α·A·Bᵀ + β·C through the ctypes function, B a strided view (its rows ldb apart)."""
    pytest.importorskip("threadpoolctl")
    gemm = blas.gemm_for(dtype)
    assert gemm is not None
    a, wide_b, c = randn(0, (3, 4)).astype(dtype), randn(1, (5, 6)).astype(dtype), randn(2, (3, 5)).astype(dtype)
    b = wide_b[:, 1:5]  # rows 6 apart
    expected = 2 * a @ b.T + 0.5 * c
    gemm(
        blas.ROW_MAJOR,
        blas.NO_TRANS,
        blas.TRANS,
        3,
        5,
        4,
        2.0,
        a.ctypes.data,
        4,
        b.ctypes.data,
        6,
        0.5,
        c.ctypes.data,
        5,
    )
    np.testing.assert_allclose(c, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


def conv_outputs(x, weight, bias, use_kernels, monkeypatch, **options):
    """out and (dx, dW, db) of F.conv2d, and whether its op kept a padded copy of x for the backward."""
    monkeypatch.setattr(kernels, "ENABLED", use_kernels)
    tensors = [dg.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    out = F.conv2d(*tensors, **options)
    kept_padded = out.grad_fn.padded is not None
    out.backward(randn(9, out.shape).astype(x.dtype))
    return [out.numpy()] + [t.grad for t in tensors], kept_padded


@needs_conv_kernels
@pytest.mark.parametrize(
    "options",
    [dict(padding=1), dict(padding=3), dict(padding=(0, 2), dilation=(2, 1)), dict()],
    ids=["same", "wide-padding", "dilated", "valid"],
)
@pytest.mark.parametrize("transposed", [False, True], ids=["contiguous", "transposed-input"])
def test_conv_kernels_agree_with_numpys_taps_in_float64(monkeypatch, options, transposed):
    """Forward, input and weight gradients, bias: the sample-at-a-time GEMMs against NumPy's taps
    (padding 3 moves g up and left for the input gradient: its first rows are cut)."""
    x = randn(0, (5, 8, 7, 6))
    x = x.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2) if transposed else x
    weight, bias = randn(1, (6, 8, 3, 3)), randn(2, 6)
    compiled, kept_padded = conv_outputs(x, weight, bias, True, monkeypatch, **options)
    assert not kept_padded  # the backward pads x again, sample by sample
    by_numpy, kept_padded = conv_outputs(x, weight, bias, False, monkeypatch, **options)
    assert kept_padded
    for a, b in zip(compiled, by_numpy):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@needs_conv_kernels
def test_conv_kernels_in_float32(monkeypatch):
    x, weight, bias = (
        randn(i, shape).astype(np.float32) for i, shape in enumerate([(4, 16, 9, 9), (8, 16, 3, 3), (8,)])
    )
    compiled, _ = conv_outputs(x, weight, bias, True, monkeypatch, padding=1)
    by_numpy, _ = conv_outputs(x, weight, bias, False, monkeypatch, padding=1)
    for a, b in zip(compiled, by_numpy):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@needs_conv_kernels
@pytest.mark.parametrize("options", [dict(padding=1), dict(stride=2, padding=1)], ids=["taps", "columns"])
def test_a_convolution_keeps_its_kernels_until_its_backward(monkeypatch, options):
    """The backward makes again what the forward's kernels did not keep, even if the kernels were
    turned off in between; a gradient of another dtype is cast to x's, not handed to its GEMM."""
    x, weight = randn(0, (3, 8, 6, 6)), randn(1, (4, 8, 3, 3))
    grads = []
    for enabled in (False, True):
        monkeypatch.setattr(kernels, "ENABLED", enabled)
        tensors = [dg.tensor(a, requires_grad=True) for a in (x, weight)]
        out = F.conv2d(*tensors, **options)
        monkeypatch.setattr(kernels, "ENABLED", False)
        out.backward(randn(9, out.shape).astype(np.float32))  # float32 values, each exact in float64
        grads.append(tensors[1].grad)
    assert grads[1].dtype == np.float64
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)


def test_without_numpys_openblas_convolutions_take_numpys_taps(monkeypatch):
    """No threadpoolctl to find NumPy's BLAS (or another BLAS): NumPy's path, and dg.config() says so."""
    from helpers import hide_threadpoolctl

    hide_threadpoolctl(monkeypatch)
    monkeypatch.setattr(blas, "_gemms", functools.cache(blas._gemms.__wrapped__))
    assert blas.gemm_for(np.float32) is None
    x, weight = randn(0, (2, 8, 5, 5)), randn(1, (4, 8, 3, 3))
    _, kept_padded = conv_outputs(x, weight, np.zeros(4), True, monkeypatch, padding=1)
    assert kept_padded
    if kernels.numba_installed():
        assert "NumPy's OpenBLAS not found" in kernels.describe()


POOLINGS = {  # options, the input's (H, W)
    "tiles": (dict(kernel_size=2), (8, 10)),
    "tiles-not-covering": (dict(kernel_size=2), (9, 7)),  # the last row and column in no window
    "k3-s2-p1": (dict(kernel_size=3, stride=2, padding=1), (9, 8)),
    "overlapping": (dict(kernel_size=3, stride=1, padding=1), (6, 7)),
    "non-square-dilated-ceil": (dict(kernel_size=(2, 3), stride=(2, 1), padding=1, dilation=2, ceil_mode=True), (9, 8)),
}


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options, size", POOLINGS.values(), ids=POOLINGS.keys())
def test_max_pool_kernels_give_pytorchs_bits(monkeypatch, options, size, dtype):
    """Maxima, indices and the input gradient bit for bit as PyTorch's kernel: ties to the first
    maximum, NaN to the last, a window of -inf to its first element inside; each gradient added onto
    zeros (a -0.0 gradient lands as 0.0), in the windows' order where they overlap; also when the
    kernels are turned off between the forward and its backward."""
    torch = pytest.importorskip("torch")
    x = np.round(randn(0, (3, 4, *size)) * 2).astype(dtype)  # ties
    x[0, 0, 1, 1] = x[0, 0, 2, 3] = x[1, 2, 4, 4] = np.nan
    x[2, 3] = -np.inf
    monkeypatch.setattr(kernels, "ENABLED", True)
    ours = dg.tensor(x, requires_grad=True)
    out, indices = F.max_pool2d(ours, **options, return_indices=True)
    grad = np.round(randn(1, out.shape)).astype(dtype)
    grad[grad == 0] = -0.0
    monkeypatch.setattr(kernels, "ENABLED", False)
    out.backward(grad)
    theirs = torch.tensor(x, requires_grad=True)
    expected, expected_indices = torch.nn.functional.max_pool2d(theirs, **options, return_indices=True)
    expected.backward(torch.from_numpy(grad))
    for actual, wanted in [(out.numpy(), expected), (indices.numpy(), expected_indices), (ours.grad, theirs.grad)]:
        wanted = wanted.detach().numpy()
        np.testing.assert_array_equal(actual, wanted)
        np.testing.assert_array_equal(np.signbit(actual), np.signbit(wanted))


def test_numpy_passes_serve_where_the_kernels_do_not(monkeypatch):
    """(N, C) batches, float16 and kernels turned off take NumPy's passes."""
    from deepgrad.ops.normalization import batch_norm_kernels

    assert batch_norm_kernels(np.zeros((8, 3))) is None
    assert batch_norm_kernels(np.zeros((8, 3, 4), np.float16)) is None
    monkeypatch.setattr(kernels, "ENABLED", False)
    assert batch_norm_kernels(np.zeros((8, 3, 4))) is None and kernels.load("batch_norm") is None
    assert kernels.describe() == "off (DEEPGRAD_KERNELS=0)"


def test_without_numba_every_op_takes_its_numpy_path(monkeypatch):
    monkeypatch.setattr(kernels, "ENABLED", True)
    monkeypatch.setattr(kernels, "_loaded", {})
    monkeypatch.setattr(kernels, "numba_installed", lambda: False)
    assert kernels.load("batch_norm") is None
    assert "numba is not installed" in kernels.describe()
    x = dg.tensor(randn(0, (4, 2, 3, 3)), requires_grad=True)
    F.batch_norm(x, None, None, training=True).sum().backward()
    assert x.grad is not None


def test_a_numba_that_fails_to_import_turns_the_kernels_off_with_one_warning(monkeypatch):
    """A numba built for another NumPy raises at import: batch norm takes NumPy's passes and says why."""
    monkeypatch.setattr(kernels, "ENABLED", True)
    monkeypatch.setattr(kernels, "_loaded", {})
    monkeypatch.setattr(kernels, "_failure", None)
    monkeypatch.setattr(kernels, "numba_installed", lambda: True)
    monkeypatch.setitem(sys.modules, "numba", types.ModuleType("numba"))  # `from numba import njit` raises ImportError
    monkeypatch.delitem(sys.modules, "deepgrad.kernels.batch_norm", raising=False)
    x = dg.tensor(randn(0, (4, 2, 3, 3)), requires_grad=True)
    with pytest.warns(RuntimeWarning, match=r"numba is installed but failed to import \(ImportError"):
        F.batch_norm(x, None, None, training=True).sum().backward()
    expected = F.batch_norm(dg.tensor(x.data), None, None, training=True).data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: the second op is silent
        np.testing.assert_array_equal(F.batch_norm(x, None, None, training=True).data, expected)
        assert kernels.load("batch_norm") is None
    assert x.grad is not None and np.isfinite(x.grad.data).all()
    assert kernels.describe().startswith("off (numba failed to import: ImportError")


def run_python(code, **env):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return result.stdout.strip()


def test_importing_deepgrad_does_not_import_numba_and_the_environment_turns_kernels_off():
    code = "import sys, json, deepgrad as dg; print(json.dumps(['numba' in sys.modules, dg.config()['kernels']]))"
    imported, described = json.loads(run_python(code, DEEPGRAD_KERNELS="0"))
    assert imported is False and described == "off (DEEPGRAD_KERNELS=0)"
    imported, described = json.loads(run_python(code))
    assert imported is False and described == kernels.describe()


def test_a_spin_sees_what_another_thread_stores_and_gives_up_after_its_rounds():
    """wait_until reads the board afresh each round (a store from another thread ends it), returns
    False when its rounds run out; store_then_wait_until stores before it waits and, where it had
    to wait, stamps the counter when it got there; stamp_then_store stamps, then stores."""
    import threading
    import time

    spin = kernels.load("spin")
    if spin is None:
        pytest.skip("numba is not installed")
    board = np.zeros(32, np.int64)
    assert not spin.wait_until(board, 0, 1, 1000)
    assert not spin.store_then_wait_until(board, 8, 7, 0, 1, 1000, 10, 24) and board[8] == 7 and board[24] == 0
    rounds, ticks = spin.per_microsecond()
    storer = threading.Timer(0.05, lambda: board.__setitem__(0, 3))
    storer.start()
    start = time.perf_counter()
    assert spin.wait_until(board, 0, 3, int(rounds * 10e6))  # 10 s at most
    assert time.perf_counter() - start < 5
    storer.join()
    spin.stamp_then_store(board, 16, 0, 4)
    assert board[0] == 4
    assert spin.store_then_wait_until(board, 8, 9, 0, 4, 1000, 100, 24) and board[8] == 9
    assert board[24] == 0  # there when it began to wait: no stamp
    hander = threading.Timer(0.05, lambda: spin.stamp_then_store(board, 16, 0, 5))
    hander.start()
    assert spin.store_then_wait_until(board, 8, 10, 0, 5, int(rounds * 10e6), 100, 24) and board[8] == 10
    hander.join()
    assert board[24] >= board[16]  # seen after it was handed over
    if ticks > 0:  # x86's counter: about as many a µs as perf_counter says
        first = spin.ticks()
        time.sleep(0.01)
        assert 0.5 * ticks * 1e4 < spin.ticks() - first < 100 * ticks * 1e4
