"""The stand-in device itself: it must fail where CuPy (the pinned ``cupy-cuda12x>=14,<15``) fails,
or the device tests prove nothing. Each behaviour of tests/fake_device.py that differs from NumPy's is
pinned here, against NumPy's own, on raw arrays (no deepgrad op in between)."""

import copy

import numpy as np
import pytest
from fake_device import FAKE, FakeArray, count_syncs

from deepgrad import backend


def dev(values, dtype=None):
    return backend.to_device(np.asarray(values, dtype=dtype), FAKE)


def host(array):
    return backend.to_host(array)


def test_a_device_array_is_not_an_ndarray_and_numpy_will_not_convert_it():
    x = dev([1.0, 2.0])
    assert not isinstance(x, np.ndarray) and isinstance(x, FakeArray)
    assert backend.is_array(x) and backend.device_of(x) is FAKE
    for convert in (np.asarray, np.array, np.ascontiguousarray, lambda a: np.asarray([a[0], a[1]])):
        with pytest.raises(TypeError, match="Implicit conversion"):
            convert(x)


def test_host_arrays_do_not_mix_with_device_arrays():
    x, h = dev([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])
    for mix in (
        lambda: x + h,
        lambda: h + x,
        lambda: np.add(x, h),
        lambda: np.concatenate([x, h]),
        lambda: np.where(x > 1, x, h),
        lambda: x[np.array([0, 1])],
        lambda: x.__setitem__(slice(None), h),
        lambda: np.add(x, 1.0, out=h),
        lambda: x + [1.0, 2.0, 3.0],
    ):
        with pytest.raises(TypeError, match="fake device"):
            mix()
    # Python and NumPy scalars mix freely; NumPy functions and methods stay on the device.
    for result in (x * 2.0, np.float32(2) * x, x.sum(), np.maximum(x, 0), x.reshape(3, 1), np.stack([x, x])):
        assert isinstance(result, FakeArray)


def test_reductions_give_0d_arrays_and_methods_keep_identity():
    x = dev([[1.0, 2.0], [3.0, 4.0]])
    total = x.sum()
    assert isinstance(total, FakeArray) and total.shape == ()
    assert isinstance(np.dot(x[0], x[1]), FakeArray)
    assert x.astype(x.dtype, copy=False) is x  # as on NumPy and CuPy: no new array, no new object
    y = x.copy()
    y += 1  # in place through the ufunc's out=
    np.testing.assert_array_equal(host(y), host(x) + 1)
    assert not hasattr(x.flags, "writeable")  # CuPy's flags have none
    assert copy.deepcopy(x) is not x and np.array_equal(host(copy.deepcopy(x)), host(x))


def test_repeated_indices_keep_the_first_value_written_where_numpy_keeps_the_last():
    values = np.array([10.0, 20.0, 30.0, 40.0])
    index = np.array([1, 3, 1, 1])
    on_host = np.zeros(4)
    on_host[index] = values
    on_device = dev(np.zeros(4))
    on_device[dev(index)] = dev(values)
    assert on_host.tolist() == [0.0, 40.0, 0.0, 20.0]  # NumPy: the last write wins
    assert host(on_device).tolist() == [0.0, 10.0, 0.0, 20.0]  # the stand-in: the first (CuPy: any one)
    # Augmented assignment reads, adds and writes back: repeats are not summed either.
    on_device = dev(np.zeros((3, 2)))
    on_device[dev([0, 0, 2]), dev([1, 1, 0])] += 1.0
    assert host(on_device).tolist() == [[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    # np.add.at (cupyx.scatter_add on CUDA) is what sums them.
    on_device = dev(np.zeros(4))
    np.add.at(on_device, dev(index), dev(values))
    assert host(on_device).tolist() == [0.0, 80.0, 0.0, 20.0]


def test_out_of_range_integer_indices_wrap_where_numpy_raises():
    x = dev([0.0, 1.0, 2.0])
    with pytest.raises(IndexError):
        np.array([0.0, 1.0, 2.0])[np.array([1, 3])]
    assert host(x[dev([1, 3, -4])]).tolist() == [1.0, 0.0, 2.0]
    x[dev([1, 3])] = 10.0
    assert host(x).tolist() == [10.0, 10.0, 2.0]
    grid = dev(np.arange(6.0).reshape(2, 3))
    assert host(grid[..., dev([3, 5])]).tolist() == [[0.0, 2.0], [3.0, 5.0]]
    with pytest.raises(IndexError):  # a plain integer index still raises, as on CuPy
        x[3]


def test_scalars_promote_by_nep50_as_cupy_14_and_numpy_2_do():
    x32 = dev(np.ones(3, dtype=np.float32))
    assert (x32 * 0.1).dtype == np.float32  # a Python float is weak
    assert (x32 * np.float64(0.1)).dtype == np.float64  # a NumPy float64 is not
    assert (x32 * dev(np.array(0.1))).dtype == np.float64  # nor is a 0-d float64 array
    assert (dev(np.ones(3, dtype=np.int64)) * 0.5).dtype == np.float64
    assert (x32 > 0.5).dtype == np.bool_


def test_every_synchronization_is_recorded():
    x = dev([[1.5, 2.0]])
    with count_syncs() as syncs:
        x.sum() * 2  # computing on the device waits for nothing
        np.exp(x).max(axis=1)
    assert syncs == []
    with count_syncs() as syncs:
        x[0, 0].item()
        float(x[0, 0])
        int(x[0, 1])
        bool(x[0, 0] > 1)
        x.tolist()
        backend.to_host(x)
        f"{x.sum():.2f}"
        with pytest.raises(TypeError):
            np.asarray(x)
    assert [what for what, _ in syncs] == ["item", "float", "int", "bool", "tolist", "to_host", "format", "__array__"]


def test_device_module_joins_device_arrays_as_cupy_asarray_does():
    a, b = dev(1.0), dev(2.0)
    joined = FAKE.xp.asarray([a, b])
    assert isinstance(joined, FakeArray) and host(joined).tolist() == [1.0, 2.0]
    with pytest.raises(TypeError):  # CuPy converts a list mixing arrays and numbers on the host: refused
        FAKE.xp.asarray([a, 3.0])
