"""The backend module: dtype defaults and devices."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import backend


def test_default_dtype_round_trip():
    assert dg.get_default_dtype() == np.float32
    dg.set_default_dtype(np.float64)
    try:
        assert dg.tensor([1.0]).dtype == np.float64
    finally:
        dg.set_default_dtype(np.float32)
    with pytest.raises(TypeError, match="expected a floating dtype"):
        dg.set_default_dtype(np.int64)


# ----------------------------------------------------------------------------
# Devices


def test_cpu_device_and_its_arrays():
    cpu = backend.get_device("cpu")
    assert cpu is backend.CPU and str(cpu) == "cpu" and repr(cpu) == "device('cpu')"
    array = np.ones(3)
    assert backend.device_of(array) is cpu and backend.get_array_module(array) is np
    assert backend.to_device(array, "cpu") is array and backend.to_host(array) is array
    assert backend.is_array(array) and backend.is_array(np.ones(())) and not backend.is_array(1.0)
    assert backend.device_of(np.float32(1)) is cpu and backend.device_of([1, 2]) is cpu


@pytest.mark.parametrize(
    "name, message",
    [
        ("tpu", "unknown device 'tpu'"),
        ("cuda:1", "only one GPU is supported"),
        (None, "unknown device None"),
    ],
)
def test_unknown_devices_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        backend.get_device(name)
    assert not backend.is_available(name)


@pytest.mark.skipif(backend.is_available("cuda"), reason="this machine has a GPU")
def test_cuda_without_cupy_or_a_gpu_says_what_is_missing():
    assert not backend.is_available("cuda") and not backend.is_available("cuda:0")
    with pytest.raises(RuntimeError, match="CuPy"):
        backend.get_device("cuda:0")
    with pytest.raises(RuntimeError, match="CuPy"):
        dg.tensor([1.0]).to("cuda")


@pytest.mark.skipif(not backend.is_available("cuda"), reason="needs CuPy and an NVIDIA GPU")
def test_cuda_0_is_the_cuda_device():
    assert backend.get_device("cuda:0") is backend.get_device("cuda")
