"""Shared test helpers: seeded float64 data, hypothesis shape strategies,
:func:`check_op`, the one helper that checks an op against PyTorch both ways, and
:func:`headless_chromium`, the browser of the tests that look at a page.

Every random array comes from an explicitly seeded ``numpy.random.Generator``
(hypothesis draws the seed), so a failing example replays exactly.
"""

import contextlib
import functools
import os
import time

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import deepgrad as dg
from deepgrad import optim

# Small examples, no deadline: gradcheck does one backward per output element.
SETTINGS = settings(max_examples=25, deadline=None)

MAX_SIDE = 4
seeds = st.integers(0, 2**32 - 1)


# ----------------------------------------------------------------------------
# Seeded float64 data


def rng(seed):
    return np.random.default_rng(seed)


def randn(seed, shape):
    """Standard normal float64 values."""
    return rng(seed).standard_normal(shape)


def positive(seed, shape, low=0.5, high=2.0):
    """Values in [low, high): safe for log, sqrt, fractional powers, denominators."""
    return rng(seed).uniform(low, high, shape)


def away_from_zero(seed, shape, low=0.5, high=2.0):
    """Values with |x| in [low, high) and a random sign: safe for abs and division."""
    r = rng(seed)
    return r.choice([-1.0, 1.0], size=shape) * r.uniform(low, high, shape)


def class_targets(seed, shape, ignore_index=None):
    """Class indices for logits of ``shape``; some equal ``ignore_index``, never all of them."""
    c = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    r = rng(seed)
    target = r.integers(0, c, target_shape)
    if ignore_index is not None:
        target = np.where(r.random(target_shape) < 0.3, ignore_index, target)
        target.flat[0] = (ignore_index + 1) % c if 0 <= ignore_index < c else 0
    return target


def probability_targets(seed, shape):
    """Class probabilities (rows summing to 1 along the class axis) for logits of ``shape``."""
    p = positive(seed, shape, 0.1, 1.0)
    axis = 0 if len(shape) == 1 else 1
    return p / p.sum(axis=axis, keepdims=True)


def class_weights(seed, shape):
    """Positive per-class weights for logits of ``shape``."""
    return positive(seed, shape[0] if len(shape) == 1 else shape[1], 0.2, 2.0)


def distinct(seed, shape, spacing=0.3):
    """Pairwise distinct values at least ``spacing`` apart (no ties for max/min)."""
    r = rng(seed)
    n = int(np.prod(shape, dtype=np.int64))
    values = (r.permutation(n) - n / 2) * spacing + r.uniform(-0.05, 0.05, n) * spacing
    return values.reshape(shape)


def untied_pair(seed, shape_a, shape_b):
    """Two arrays whose broadcast elements differ by at least 0.3 (no ties for maximum/minimum)."""
    r = rng(seed)
    a = r.integers(-4, 4, shape_a) + 0.25 + r.uniform(-0.1, 0.1, shape_a)
    b = r.integers(-4, 4, shape_b) - 0.25 + r.uniform(-0.1, 0.1, shape_b)
    return a, b


def away_from_bounds(seed, shape, low=-0.5, high=0.5, margin=0.1):
    """Values inside (low, high) or outside it, never within ``margin`` of a bound."""
    r = rng(seed)
    inside = r.uniform(low + margin, high - margin, shape)
    below = r.uniform(low - 2.0, low - margin, shape)
    above = r.uniform(high + margin, high + 2.0, shape)
    pick = r.integers(0, 3, shape)
    return np.choose(pick, [inside, below, above])


# ----------------------------------------------------------------------------
# Hypothesis strategies


def shapes(min_dims=0, max_dims=3, min_side=1):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=MAX_SIDE)


def broadcast_shapes(num_shapes=2, max_dims=3):
    """Tuples of ``num_shapes`` mutually broadcast-compatible shapes (0-d included)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=0, max_dims=max_dims, min_side=1, max_side=MAX_SIDE
    ).map(lambda bs: bs.input_shapes)


@st.composite
def matmul_shapes(draw):
    """Operand shapes for matmul: vectors, matrices and broadcast batches of matrices."""
    m, k, n = draw(st.integers(1, MAX_SIDE)), draw(st.integers(1, MAX_SIDE)), draw(st.integers(1, MAX_SIDE))
    batch_a, batch_b = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=1, max_side=3).map(
            lambda bs: bs.input_shapes
        )
    )
    a_vector, b_vector = draw(st.booleans()), draw(st.booleans())
    shape_a = (k,) if a_vector else batch_a + (m, k)
    shape_b = (k,) if b_vector else batch_b + (k, n)
    return shape_a, shape_b


@st.composite
def reduction_args(draw, min_count=1):
    """(shape, dim, keepdim): dim is None, an int (possibly negative) or a tuple of ints;
    ``min_count`` is the least number of elements each reduction sees."""
    shape = draw(shapes(min_dims=0 if min_count <= 1 else 1))
    ndim = len(shape)
    if ndim == 0:
        dim = draw(st.sampled_from([None, 0, -1]))
    else:
        kind = draw(st.sampled_from(["none", "int", "tuple"]))
        if kind == "none":
            dim = None
        elif kind == "int":
            dim = draw(st.integers(-ndim, ndim - 1))
        else:
            axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
            dim = tuple(a - ndim if draw(st.booleans()) else a for a in axes)
    keepdim = draw(st.booleans())
    axes = range(ndim) if dim is None or ndim == 0 else [d % ndim for d in np.atleast_1d(dim)]
    count = int(np.prod([shape[a] for a in axes])) if ndim else 1
    if count < min_count:
        shape = tuple(max(s, min_count) if i in axes else s for i, s in enumerate(shape))
    return shape, dim, keepdim


@st.composite
def reshape_target(draw, shape):
    """A shape with the same number of elements (grouped prime factors, extra 1s, maybe one -1)."""
    n = int(np.prod(shape, dtype=np.int64))
    factors = [p for p in (2, 3) for _ in range(_multiplicity(n, p))]
    factors = draw(st.permutations(factors))
    groups = []
    for f in factors:
        if groups and draw(st.booleans()):
            groups[-1] *= f
        else:
            groups.append(f)
    for _ in range(draw(st.integers(0, 2))):
        groups.insert(draw(st.integers(0, len(groups))), 1)
    if groups and draw(st.booleans()):
        groups[draw(st.integers(0, len(groups) - 1))] = -1
    return tuple(groups)


def _multiplicity(n, p):
    count = 0
    while n % p == 0:
        n //= p
        count += 1
    return count


@st.composite
def slices_for(draw, shape, negative_steps=True):
    """A tuple of basic indices (slices, ints, None, Ellipsis) valid for ``shape``."""
    index = []
    for size in shape:
        kind = draw(st.sampled_from(["slice", "slice", "int", "full"]))
        if kind == "int":
            index.append(draw(st.integers(-size, size - 1)))
        elif kind == "full":
            index.append(slice(None))
        else:
            steps = [1, 2, -1] if negative_steps else [1, 2]
            step = draw(st.sampled_from(steps))
            start = draw(st.one_of(st.none(), st.integers(-size, size - 1)))
            stop = draw(st.one_of(st.none(), st.integers(-size, size)))
            index.append(slice(start, stop, step))
    if draw(st.booleans()):
        index.insert(draw(st.integers(0, len(index))), None)
    return tuple(index)


# ----------------------------------------------------------------------------
# Parity with PyTorch


def check_op(dg_fn, torch_fn, *arrays, seed=0, rtol=1e-6, atol=1e-9):
    """Run ``dg_fn`` and ``torch_fn`` on the same float64 inputs and compare both ways.

    Floating arrays become tensors that require grad; others (int, bool) are
    passed as plain tensors. The outputs must agree in shape, dtype and value;
    then both are backpropagated with the same random upstream gradient and
    every input gradient must agree and have its input's shape and dtype.
    Returns the deepgrad output.
    """
    torch = pytest.importorskip("torch")
    arrays = [np.asarray(a) for a in arrays]
    floating = [a.dtype.kind == "f" for a in arrays]
    dg_inputs = [dg.tensor(a, requires_grad=f) for a, f in zip(arrays, floating)]
    torch_inputs = [torch.tensor(a, requires_grad=f) for a, f in zip(arrays, floating)]

    out = dg_fn(*dg_inputs)
    expected = torch_fn(*torch_inputs)
    assert isinstance(out, dg.Tensor)
    assert out.shape == tuple(expected.shape), f"forward shape {out.shape} != torch {tuple(expected.shape)}"
    assert str(out.dtype) == str(expected.dtype).removeprefix("torch."), (out.dtype, expected.dtype)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")

    if not expected.requires_grad:
        assert not out.requires_grad
        return out
    upstream = rng(seed).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for i, (x, tx) in enumerate(zip(dg_inputs, torch_inputs)):
        if not x.requires_grad:
            continue
        if tx.grad is None:
            assert x.grad is None or not x.grad.any(), f"input {i}: torch has no gradient, deepgrad {x.grad}"
            continue
        assert x.grad is not None, f"input {i}: no gradient, torch has one"
        assert x.grad.shape == x.shape and x.grad.dtype == x.dtype, (i, x.grad.shape, x.grad.dtype)
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"grad of input {i}")
    return out


# case id -> a function of the params that builds the optimizer; every option of every optimizer
OPTIMIZER_CONFIGS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.05),
    "sgd-momentum-dampening": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.2),
    "sgd-nesterov-weight-decay": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
    "momentum": lambda ps: optim.Momentum(ps, lr=0.05, momentum=0.9),
    "adagrad": lambda ps: optim.Adagrad(
        ps, lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1, eps=1e-7
    ),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01, weight_decay=0.1),
    "rmsprop-centered-momentum": lambda ps: optim.RMSprop(ps, lr=0.01, alpha=0.9, momentum=0.5, centered=True),
    "adam": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1),
    "adam-amsgrad": lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), amsgrad=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01),
    "adamw-amsgrad": lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
}


# ----------------------------------------------------------------------------
# A browser for the pages deepgrad writes (the run report, the documentation site)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def headless_chromium(width=1400):
    """A headless Chromium under Selenium, ``width`` pixels wide, that keeps the page's console
    messages and its network events. Debian's chromium and chromium-driver are passed explicitly, so
    that Selenium Manager never downloads a browser; skips, saying what is missing, without
    selenium, chromium or chromedriver."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install 'deepgrad[test]')")
    from selenium.webdriver.chrome.service import Service

    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            pytest.skip(f"needs {path} (apt-get install {package})")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def full_page_screenshot(driver, width, path):
    """The whole page at ``width`` pixels (not only the window) as a PNG at ``path``."""
    driver.set_window_size(width, 1000)
    time.sleep(0.5)  # the charts follow the width
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(height, 20000))
    time.sleep(0.5)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))


def hide_threadpoolctl(monkeypatch):
    """Make `import threadpoolctl` fail for the rest of the test, as where it is not installed (and
    forget the BLAS deepgrad found with it; the monkeypatch's undo finds it again)."""
    import sys

    from deepgrad import threads

    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    monkeypatch.setattr(threads, "_setting", threads.ThreadSetting(1))
    threads._blas.cache_clear()
    monkeypatch.setattr(threads, "_blas", functools.cache(threads._blas.__wrapped__))


def bits(array):
    """The array's bytes: NaN's and zero's signs included (assert_array_equal takes -0.0 for 0.0)."""
    return np.ascontiguousarray(array).tobytes()


def assert_same_bits(separate, fused):
    assert len(separate) == len(fused)
    for a, b in zip(separate, fused):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype and a.shape == b.shape
            assert bits(a) == bits(b), f"max difference {np.nanmax(np.abs(a - b))}"


def relu_layer_calls(monkeypatch):
    """A list that grows by one at each call of a ReLU layer's own forward."""
    calls = []
    original = dg.nn.activation.ReLU.forward

    def counted(self, x):
        calls.append(self)
        return original(self, x)

    monkeypatch.setattr(dg.nn.activation.ReLU, "forward", counted)
    return calls


def training_step(model, x):
    """out and every parameter's gradient of one forward and backward of sum(out²)."""
    out = model(dg.tensor(x))
    (out * out).sum().backward()
    return [out.data] + [p.grad for p in model.parameters()]


@contextlib.contextmanager
def kernels_and_threads(compiled, threads):
    """deepgrad.kernels on (``compiled``) or off, and ``threads`` threads, for the block; both restored after."""
    from deepgrad import kernels

    before = dg.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "ENABLED", compiled)
        try:
            dg.set_num_threads(threads)
            yield
        finally:
            dg.set_num_threads(before)
