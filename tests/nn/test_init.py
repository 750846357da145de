"""Initializers: the empirical moments match torch.nn.init's formulas, dtypes
are kept, draws are reproducible, sparse_ has exact counts, bad arguments raise.

Moment checks use 2**18 samples, so the relative standard error of the sample
std is about 0.14 % (normal) or 0.09 % (uniform); the 1 % tolerance is ~7 of
those standard errors, and a wrong formula (off by √2, √3 or a fan) misses it
by far.
"""

import math

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.nn import init

STD_RTOL = 0.01


@pytest.fixture(autouse=True)
def _restore_default_generator():
    state = dg.get_rng_state()
    yield
    dg.set_rng_state(state)


def empty(shape, dtype=np.float32):
    return dg.tensor(np.full(shape, np.nan, dtype=dtype))


def gen(seed=0):
    return np.random.default_rng(seed)


def assert_moments(w, std, mean=0.0):
    values = w.data.astype(np.float64)
    assert np.isfinite(values).all()
    np.testing.assert_allclose(values.std(), std, rtol=STD_RTOL)
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(values.size)


# ----------------------------------------------------------------------------
# Fans and gains


def test_fan_in_and_fan_out_of_linear_and_conv_weights():
    assert init.calculate_fan_in_and_fan_out(empty((7, 5))) == (5, 7)
    assert init.calculate_fan_in_and_fan_out(empty((16, 8, 3, 5))) == (8 * 15, 16 * 15)
    assert init.calculate_fan_in_and_fan_out(empty((6, 4, 3))) == (12, 18)
    with pytest.raises(ValueError, match=r"at least 2 dims.*\(5,\)"):
        init.calculate_fan_in_and_fan_out(empty((5,)))


NONLINEARITIES = [
    ("linear", None),
    ("conv1d", None),
    ("conv2d", None),
    ("conv3d", None),
    ("conv_transpose1d", None),
    ("conv_transpose2d", None),
    ("conv_transpose3d", None),
    ("sigmoid", None),
    ("tanh", None),
    ("relu", None),
    ("leaky_relu", None),
    ("leaky_relu", 0.2),
    ("leaky_relu", 0),
    ("leaky_relu", 3),
    ("leaky_relu", math.sqrt(5)),
    ("selu", None),
]


@pytest.mark.parametrize("nonlinearity, param", NONLINEARITIES)
def test_calculate_gain_equals_torch(nonlinearity, param):
    torch = pytest.importorskip("torch")
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)


def test_calculate_gain_values():
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("identity") == 1
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01**2))
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)


@pytest.mark.parametrize("nonlinearity, param", [("swish", None), ("leaky_relu", True), ("leaky_relu", "0.1")])
def test_calculate_gain_rejects_bad_arguments(nonlinearity, param):
    with pytest.raises(ValueError, match="calculate_gain"):
        init.calculate_gain(nonlinearity, param)


# ----------------------------------------------------------------------------
# Distributions


def test_normal_and_uniform():
    w = init.normal_(empty((512, 512)), mean=0.5, std=2.0, generator=gen())
    assert_moments(w, 2.0, mean=0.5)

    w = init.uniform_(empty((512, 512)), a=-1.0, b=3.0, generator=gen())
    assert w.data.min() >= -1.0 and w.data.max() <= 3.0
    assert w.data.min() < -1.0 + 1e-3 and w.data.max() > 3.0 - 1e-3  # the whole interval is used
    assert_moments(w, 4.0 / math.sqrt(12), mean=1.0)

    w = init.uniform_(empty((512, 512)), generator=gen())  # default U(0, 1)
    assert 0.0 <= w.data.min() and w.data.max() <= 1.0
    assert_moments(w, 1.0 / math.sqrt(12), mean=0.5)


@pytest.mark.parametrize("gain", [1.0, math.sqrt(2), 5 / 3])
def test_xavier_normal(gain):
    w = init.xavier_normal_(empty((256, 1024)), gain=gain, generator=gen())
    assert_moments(w, gain * math.sqrt(2.0 / (1024 + 256)))


@pytest.mark.parametrize("gain", [1.0, math.sqrt(2), 5 / 3])
def test_xavier_uniform(gain):
    w = init.xavier_uniform_(empty((256, 1024)), gain=gain, generator=gen())
    bound = gain * math.sqrt(6.0 / (1024 + 256))
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.999 * bound
    assert_moments(w, bound / math.sqrt(3))


KAIMING_CASES = [
    # (mode, nonlinearity, a, gain)
    ("fan_in", "relu", 0.0, math.sqrt(2)),
    ("fan_out", "relu", 0.0, math.sqrt(2)),
    ("fan_in", "leaky_relu", 0.0, math.sqrt(2)),
    ("fan_in", "leaky_relu", 0.2, math.sqrt(2 / 1.04)),
    ("fan_out", "leaky_relu", math.sqrt(5), math.sqrt(2 / 6)),
    ("fan_in", "tanh", 0.0, 5 / 3),
    ("fan_in", "linear", 0.0, 1.0),
]


@pytest.mark.parametrize("mode, nonlinearity, a, gain", KAIMING_CASES)
def test_kaiming_normal(mode, nonlinearity, a, gain):
    w = init.kaiming_normal_(empty((256, 1024)), a=a, mode=mode, nonlinearity=nonlinearity, generator=gen())
    fan = 1024 if mode == "fan_in" else 256
    assert_moments(w, gain / math.sqrt(fan))


@pytest.mark.parametrize("mode, nonlinearity, a, gain", KAIMING_CASES)
def test_kaiming_uniform(mode, nonlinearity, a, gain):
    w = init.kaiming_uniform_(empty((256, 1024)), a=a, mode=mode, nonlinearity=nonlinearity, generator=gen())
    fan = 1024 if mode == "fan_in" else 256
    bound = math.sqrt(3) * gain / math.sqrt(fan)
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.999 * bound
    assert_moments(w, gain / math.sqrt(fan))


def test_kaiming_defaults_are_he_for_relu_on_square_weights():
    w = init.kaiming_normal_(empty((512, 512)), generator=gen())  # a=0, leaky_relu: gain √2
    assert_moments(w, math.sqrt(2.0 / 512))
    w = init.kaiming_uniform_(empty((512, 512)), generator=gen())
    assert_moments(w, math.sqrt(2.0 / 512))


def test_kaiming_on_a_conv_weight_uses_the_receptive_field():
    w = init.kaiming_normal_(empty((64, 32, 8, 16)), nonlinearity="relu", generator=gen())
    assert_moments(w, math.sqrt(2.0 / (32 * 8 * 16)))
    w = init.kaiming_normal_(empty((64, 32, 8, 16)), mode="fan_out", nonlinearity="relu", generator=gen())
    assert_moments(w, math.sqrt(2.0 / (64 * 8 * 16)))


def test_lecun_normal_is_the_seed_notes_xavier():
    w = init.lecun_normal_(empty((512, 512)), generator=gen())
    assert_moments(w, 1.0 / math.sqrt(512))
    w = init.lecun_normal_(empty((256, 1024)), generator=gen())
    assert_moments(w, 1.0 / math.sqrt(1024))


def test_constant_zeros_and_ones():
    for dtype in (np.float32, np.float64):
        w = empty((3, 4), dtype)
        data = w.data
        assert init.constant_(w, 0.25) is w and w.data is data and w.dtype == dtype
        np.testing.assert_array_equal(w.data, np.full((3, 4), 0.25, dtype))
        assert init.zeros_(w) is w and w.dtype == dtype
        np.testing.assert_array_equal(w.data, np.zeros((3, 4), dtype))
        assert init.ones_(w) is w and w.dtype == dtype
        np.testing.assert_array_equal(w.data, np.ones((3, 4), dtype))
    b = init.zeros_(empty((5,)))  # any shape, 1-D biases included
    assert b.shape == (5,) and not b.data.any()


# ----------------------------------------------------------------------------
# dtype and reproducibility

RANDOM_INITS = {
    "normal_": lambda w, g: init.normal_(w, generator=g),
    "uniform_": lambda w, g: init.uniform_(w, -1, 1, generator=g),
    "xavier_normal_": lambda w, g: init.xavier_normal_(w, generator=g),
    "xavier_uniform_": lambda w, g: init.xavier_uniform_(w, generator=g),
    "kaiming_normal_": lambda w, g: init.kaiming_normal_(w, generator=g),
    "kaiming_uniform_": lambda w, g: init.kaiming_uniform_(w, generator=g),
    "lecun_normal_": lambda w, g: init.lecun_normal_(w, generator=g),
    "sparse_(sparsity)": lambda w, g: init.sparse_(w, 0.5, generator=g),
    "sparse_(k)": lambda w, g: init.sparse_(w, k=3, generator=g),
}


@pytest.mark.parametrize("name", RANDOM_INITS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fills_in_place_keeping_the_dtype(name, dtype):
    w = empty((8, 6), dtype)
    data = w.data
    assert RANDOM_INITS[name](w, gen()) is w
    assert w.data is data and w.dtype == dtype and w.shape == (8, 6)
    assert np.isfinite(w.data).all() and w.data.any()


@pytest.mark.parametrize("name", RANDOM_INITS)
def test_reproducible_with_an_explicit_generator(name):
    fill = RANDOM_INITS[name]
    a, b, c = (fill(empty((8, 6)), gen(seed)).data for seed in (11, 11, 12))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    state = dg.get_rng_state()
    fill(empty((8, 6)), gen(11))
    assert dg.get_rng_state() == state  # the default generator was not touched


@pytest.mark.parametrize("name", RANDOM_INITS)
def test_reproducible_under_manual_seed(name):
    fill = RANDOM_INITS[name]
    dg.manual_seed(5)
    a = fill(empty((8, 6)), None).data
    b = fill(empty((8, 6)), None).data  # the generator moved on
    dg.manual_seed(5)
    np.testing.assert_array_equal(fill(empty((8, 6)), None).data, a)
    assert not np.array_equal(a, b)
    # The default generator after manual_seed(s) draws what default_rng(s) draws.
    np.testing.assert_array_equal(fill(empty((8, 6)), gen(5)).data, a)


# ----------------------------------------------------------------------------
# sparse_


@pytest.mark.parametrize("shape, k", [((100, 40), 15), ((7, 5), 1), ((6, 9), 0), ((6, 9), 9)])
def test_sparse_k_gives_exactly_k_nonzeros_per_row(shape, k):
    w = init.sparse_(empty(shape), k=k, std=0.5, generator=gen())
    np.testing.assert_array_equal(np.count_nonzero(w.data, axis=1), np.full(shape[0], k))


def test_sparse_k_positions_vary_and_values_are_normal_with_std():
    w = init.sparse_(empty((2000, 100)), k=50, std=0.05, generator=gen())
    nonzero = w.data[w.data != 0].astype(np.float64)
    assert nonzero.size == 2000 * 50
    np.testing.assert_allclose(nonzero.std(), 0.05, rtol=STD_RTOL)
    assert abs(nonzero.mean()) < 5 * 0.05 / math.sqrt(nonzero.size)
    # Every input is used by about half of the units (not always the same k columns).
    per_column = np.count_nonzero(w.data, axis=0)
    assert per_column.min() > 800 and per_column.max() < 1200


@pytest.mark.parametrize(
    "shape, sparsity", [((10, 6), 0.25), ((10, 6), 0.5), ((10, 6), 0.3), ((7, 3), 0.1), ((5, 4), 0.0), ((5, 4), 1.0)]
)
def test_sparse_sparsity_zeroes_ceil_fraction_of_every_column(shape, sparsity):
    w = init.sparse_(empty(shape), sparsity, std=1.0, generator=gen())
    zeros = math.ceil(sparsity * shape[0])  # PyTorch's count (0.3 · 10 rounds up to 4)
    np.testing.assert_array_equal(np.count_nonzero(w.data == 0, axis=0), np.full(shape[1], zeros))


def test_sparse_sparsity_zero_count_equals_torch():
    torch = pytest.importorskip("torch")
    for rows, sparsity in [(10, 0.3), (10, 0.25), (7, 0.1), (9, 0.5)]:
        expected = torch.nn.init.sparse_(torch.empty(rows, 4), sparsity)
        w = init.sparse_(empty((rows, 4)), sparsity, generator=gen())
        np.testing.assert_array_equal(
            np.count_nonzero(w.data == 0, axis=0), (expected == 0).sum(dim=0).numpy(), err_msg=f"{rows}, {sparsity}"
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=5), r"k=5 must be an integer between 0 and the fan-in 4"),
        (dict(k=-1), r"k=-1"),
        (dict(k=2.5), r"k=2.5 must be an integer"),
        (dict(k=True), r"k=True"),
        (dict(), r"give exactly one of sparsity.*or k"),
        (dict(sparsity=0.5, k=2), r"give exactly one of sparsity.*or k"),
        (dict(sparsity=1.5), r"sparsity must be in \[0, 1\], got 1.5"),
        (dict(sparsity=-0.1), r"sparsity must be in \[0, 1\]"),
        (dict(sparsity=float("nan")), r"sparsity must be in \[0, 1\]"),
    ],
)
def test_sparse_rejects_bad_arguments(kwargs, message):
    w = empty((3, 4))
    with pytest.raises(ValueError, match=r"sparse_: " + message):
        init.sparse_(w, **kwargs)
    assert np.isnan(w.data).all()  # untouched


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4)])
def test_sparse_needs_a_2d_tensor(shape):
    with pytest.raises(ValueError, match=r"sparse_: only 2-D tensors.*" + re_shape(shape)):
        init.sparse_(empty(shape), k=1)


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


# ----------------------------------------------------------------------------
# Other bad arguments


def test_fan_based_initializers_reject_1d_tensors():
    for fill in (
        init.xavier_normal_,
        init.xavier_uniform_,
        init.kaiming_normal_,
        init.kaiming_uniform_,
        init.lecun_normal_,
    ):
        with pytest.raises(ValueError, match=r"at least 2 dims"):
            fill(empty((5,)))


def test_kaiming_rejects_bad_mode_and_nonlinearity():
    with pytest.raises(ValueError, match=r"mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_normal_(empty((3, 4)), mode="fan_avg")
    with pytest.raises(ValueError, match=r"mode"):
        init.kaiming_uniform_(empty((3, 4)), mode="in")
    with pytest.raises(ValueError, match=r"unsupported nonlinearity 'softsign'"):
        init.kaiming_uniform_(empty((3, 4)), nonlinearity="softsign")
