"""ops.reduction.sum_over, the per-channel sums of the fused ops: the same numbers as NumPy's
sums of products, for every choice of axes, operands and keepdims."""

import itertools

import numpy as np
import pytest
from helpers import randn

from deepgrad.ops.reduction import host_ones, sum_over

SHAPES = [(5,), (4, 3), (6, 3, 4), (5, 3, 4, 2)]


def axis_choices(ndim):
    for r in range(1, ndim + 1):
        yield from itertools.combinations(range(ndim), r)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("operands", [1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_sum_over_is_the_sum_of_the_product(shape, operands, keepdims):
    arrays = [randn(seed, shape) for seed in range(operands)]
    product = np.prod(arrays, axis=0)
    for axes in axis_choices(len(shape)):
        got = sum_over(axes, *arrays, keepdims=keepdims)
        expected = product.sum(axis=axes, keepdims=keepdims)
        assert got.shape == expected.shape and got.dtype == expected.dtype, axes
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=str(axes))


def test_float32_per_channel_sums_keep_float32_and_their_accuracy():
    x = (randn(0, (32, 8, 28, 28)) * 3 + 100).astype(np.float32)
    got = sum_over((0, 2, 3), x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, x.astype(np.float64).sum(axis=(0, 2, 3)), rtol=2e-6)


def test_batch_sums_share_a_read_only_vector_of_ones_per_length_and_dtype():
    for n, dtype in [(4, np.float64), (4, np.float32), (7, np.float64), (4, np.float64)]:
        x = randn(n, (n, 3, 2)).astype(dtype)
        got = sum_over((0, 2), x)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, x.astype(np.float64).sum(axis=(0, 2)), rtol=1e-6)
    ones = host_ones(4, np.dtype(np.float64))
    assert ones is host_ones(4, np.dtype(np.float64)) and not ones.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        ones[0] = 2.0
