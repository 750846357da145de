"""What importing deepgrad does to the process: the malloc tuning, reported by dg.config(), and
nothing else."""

import ctypes.util
import json
import subprocess
import sys

import pytest

import deepgrad as dg
from deepgrad import process

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or "libc.so" not in (ctypes.util.find_library("c") or ""),
    reason="malloc tuning applies to glibc only",
)


def run_python(code, **env):
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": "", **env}
    )
    return result.stdout.strip()


@glibc
def test_allocator_tuning_applies_on_glibc_and_can_be_turned_off(monkeypatch):
    assert process.tune_allocator() is True
    monkeypatch.setenv("DEEPGRAD_TUNE_MALLOC", "0")
    assert process.tune_allocator() is False


@glibc
def test_config_reports_the_tuning_done_at_import():
    code = "import json, deepgrad as dg; print(json.dumps(dg.config()))"
    tuned = json.loads(run_python(code))
    assert tuned["malloc_tuned"] is True and "M_MMAP_THRESHOLD=32 MiB" in tuned["malloc"]
    left_alone = json.loads(run_python(code, DEEPGRAD_TUNE_MALLOC="0"))
    assert left_alone["malloc_tuned"] is False and "left alone" in left_alone["malloc"]


def test_config_describes_the_process():
    config = dg.config()
    assert config["deepgrad"] == dg.__version__ and config["default_dtype"] == "float32"
    assert config["grad_enabled"] is True and isinstance(config["cuda_available"], bool)
    with dg.no_grad():
        assert dg.config()["grad_enabled"] is False


def test_import_with_tuning_disabled_still_works():
    code = "import deepgrad as dg; print((dg.tensor([1.0, 2.0]) * 2).sum().item())"
    assert run_python(code, DEEPGRAD_TUNE_MALLOC="0") == "6.0"


def test_importing_deepgrad_changes_nothing_else():
    """NumPy's settings, the environment, warning filters, signal handlers, the recursion limit, the
    BLAS threads and matplotlib's backend are the same before and after importing every package."""
    code = """
import json, os, signal, sys, warnings
import numpy as np
def state():
    try:
        from threadpoolctl import threadpool_info
        threads = sorted((p["internal_api"], p["num_threads"]) for p in threadpool_info())
    except ImportError:
        threads = None
    try:
        import matplotlib
        backend = dict.__getitem__(matplotlib.rcParams, "backend")  # as set: reading it the usual way resolves it
    except ImportError:
        backend = None
    return {"err": np.geterr(), "print": repr(np.get_printoptions()), "env": dict(os.environ),
            "warnings": repr(warnings.filters), "recursion": sys.getrecursionlimit(), "threads": threads,
            "signals": {s.name: repr(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)},
            "backend": backend, "pyplot": "matplotlib.pyplot" in sys.modules}
before = state()
import deepgrad, deepgrad.train, deepgrad.train.run, deepgrad.viz, deepgrad.cli
after = state()
print(json.dumps({k: [before[k], after[k]] for k in before if before[k] != after[k]}))
"""
    assert json.loads(run_python(code)) == {}
