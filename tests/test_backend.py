"""The backend module: dtype defaults and the allocator tuning done at import."""

import ctypes.util
import subprocess
import sys

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import backend

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or "libc.so" not in (ctypes.util.find_library("c") or ""),
    reason="malloc tuning applies to glibc only",
)


@glibc
def test_allocator_tuning_applies_on_glibc_and_can_be_turned_off(monkeypatch):
    assert backend.tune_allocator() is True
    monkeypatch.setenv("DEEPGRAD_TUNE_MALLOC", "0")
    assert backend.tune_allocator() is False


def test_import_with_tuning_disabled_still_works():
    code = "import deepgrad as dg; print((dg.tensor([1.0, 2.0]) * 2).sum().item())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"DEEPGRAD_TUNE_MALLOC": "0", "PATH": ""}, check=True)
    assert result.stdout.strip() == "6.0"


def test_default_dtype_round_trip():
    assert dg.get_default_dtype() == np.float32
    dg.set_default_dtype(np.float64)
    try:
        assert dg.tensor([1.0]).dtype == np.float64
    finally:
        dg.set_default_dtype(np.float32)
    with pytest.raises(TypeError, match="expected a floating dtype"):
        dg.set_default_dtype(np.int64)
