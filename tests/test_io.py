"""Saving and loading: flat state dicts (dg.save/dg.load), nested checkpoints,
atomic writes (a crash mid-write keeps the previous file), and bad files."""

import json
import math
import os

import numpy as np
import pytest
import safetensors.numpy

import deepgrad as dg
import deepgrad.nn as nn
from deepgrad import io


def small_model():
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))


def trained_model():
    """A model whose parameters and BatchNorm buffers have moved off their initial values."""
    dg.manual_seed(0)
    model = small_model()
    opt = dg.optim.Adam(model.parameters(), lr=0.05)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = dg.tensor(rng.standard_normal((16, 6)).astype(np.float32))
        loss = dg.functional.cross_entropy(model(x), rng.integers(0, 3, 16))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt


# ----------------------------------------------------------------------------
# dg.save / dg.load


def test_save_load_state_dict_gives_identical_outputs(tmp_path):
    model, _ = trained_model()
    path = tmp_path / "model.safetensors"
    dg.save(model.state_dict(), str(path))
    loaded = dg.load(str(path))
    assert set(loaded) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert loaded[key].dtype == value.dtype and np.array_equal(loaded[key], value), key
    assert loaded["1.num_batches_tracked"].shape == () and loaded["1.num_batches_tracked"] == 3  # 0-d stays 0-d

    dg.manual_seed(123)
    fresh = small_model()
    x = dg.tensor(np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32))
    model.eval(), fresh.eval()
    assert not np.array_equal(fresh(x).data, model(x).data)
    fresh.load_state_dict(loaded)
    assert np.array_equal(fresh(x).data, model(x).data)


def test_save_accepts_tensors_and_non_contiguous_arrays(tmp_path):
    a = np.arange(12, dtype=np.float64).reshape(3, 4).T
    path = str(tmp_path / "t.safetensors")
    dg.save({"a": a, "b": dg.tensor([1.0, 2.0])}, path, metadata={"note": "hi"})
    loaded = dg.load(path)
    np.testing.assert_array_equal(loaded["a"], a)
    assert loaded["a"].dtype == np.float64 and loaded["b"].dtype == np.float32


def test_save_rejects_values_that_are_not_arrays(tmp_path):
    with pytest.raises(TypeError, match="value of 'w' is a list"):
        dg.save({"w": [1.0, 2.0]}, str(tmp_path / "x.safetensors"))
    assert os.listdir(tmp_path) == []


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        dg.load(str(tmp_path / "missing.safetensors"))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(io.CheckpointError, match="not a readable safetensors file"):
        dg.load(str(garbage))


# ----------------------------------------------------------------------------
# save_checkpoint / load_checkpoint


def assert_same_structure(got, expected, where="top"):
    if isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected), (where, list(got), list(expected))
        for key in expected:
            assert_same_structure(got[key], expected[key], f"{where}.{key!r}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same_structure(g, e, f"{where}[{i}]")
    elif isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == expected.dtype and got.shape == expected.shape, where
        assert np.array_equal(got, expected, equal_nan=expected.dtype.kind == "f"), where
    elif isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float) and math.isnan(got), where
    else:
        assert type(got) is type(expected) and got == expected, (where, got, expected)


def test_checkpoint_round_trips_nested_structures(tmp_path):
    model, opt = trained_model()
    state = {
        "format": "test",
        "model": dict(model.state_dict()),
        "optimizer": opt.state_dict(),  # int keys, nested dicts, arrays, floats, tuples (betas)
        "rng": dg.get_rng_state(),  # 128-bit integers
        "numbers": {1: 1.5, 2: float("inf"), 3: float("-inf"), 4: float("nan"), 5: -7, 6: True, 7: None},
        "list": [1, "two", [3.0, {"four": np.arange(4)}], ()],
        "empty": {"dict": {}, "list": []},
        "arrays": {
            "f64": np.linspace(0, 1, 5),
            "i64": np.arange(6).reshape(2, 3),
            "bool": np.array([True, False]),
            "special": np.array([np.inf, -np.inf, np.nan, 0.5], np.float32),
            "empty": np.zeros((0, 3)),
        },
        "scalar": np.float32(2.5),
    }
    path = str(tmp_path / "ckpt.safetensors")
    io.save_checkpoint(state, path)
    loaded = io.load_checkpoint(path)
    expected = dict(state, scalar=2.5)
    expected["optimizer"] = dict(opt.state_dict())
    assert_same_structure(loaded, expected)
    assert all(isinstance(k, int) for k in loaded["optimizer"]["state"])  # int keys stay ints

    # the restored optimizer and RNG behave exactly as the saved ones
    dg.set_rng_state(loaded["rng"])
    after_restore = dg.default_generator().random(3)
    dg.set_rng_state(state["rng"])
    np.testing.assert_array_equal(after_restore, dg.default_generator().random(3))
    opt2 = dg.optim.Adam(model.parameters(), lr=0.05)
    opt2.load_state_dict(loaded["optimizer"])
    groups = opt2.state_dict()["param_groups"]  # tuples come back as lists (JSON)
    assert [dict(g, betas=tuple(g["betas"])) for g in groups] == opt.state_dict()["param_groups"]
    for i, s in opt.state_dict()["state"].items():
        for key, value in s.items():
            assert np.array_equal(opt2.state_dict()["state"][i][key], value)


def test_checkpoint_keeps_arrays_whose_paths_look_alike(tmp_path):
    # "a.b" as one key and "b" inside "a" both have the path a.b; int 1 and str "1" both have the path 1
    state = {
        "a.b": np.array([1.0]),
        "a": {"b": np.array([2.0])},
        1: np.array([3]),
        "1": np.array([4]),
        "": np.array([5]),
        "value": np.array([6]),
    }
    path = str(tmp_path / "c.safetensors")
    io.save_checkpoint(state, path)
    assert_same_structure(io.load_checkpoint(path), state)


def test_checkpoint_rejects_what_it_cannot_store(tmp_path):
    path = str(tmp_path / "c.safetensors")
    with pytest.raises(TypeError, match="dict keys must be str or int at opt"):
        io.save_checkpoint({"opt": {(1, 2): 3}}, path)
    with pytest.raises(TypeError, match="cannot store a set at x.0"):
        io.save_checkpoint({"x": [{1, 2}]}, path)
    assert os.listdir(tmp_path) == []


def test_load_checkpoint_refuses_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load_checkpoint(str(tmp_path / "missing"))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(np.random.default_rng(1).bytes(500))
    with pytest.raises(io.CheckpointError, match="not a readable safetensors file"):
        io.load_checkpoint(str(garbage))
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(io.CheckpointError, match="not a readable safetensors file"):
        io.load_checkpoint(str(empty))

    foreign = str(tmp_path / "foreign.safetensors")  # a valid safetensors file, not a deepgrad checkpoint
    safetensors.numpy.save_file({"weight": np.ones((2, 2), np.float32)}, foreign, metadata={"format": "pt"})
    with pytest.raises(io.CheckpointError, match="safetensors file but not a deepgrad checkpoint"):
        io.load_checkpoint(foreign)
    plain = str(tmp_path / "plain.safetensors")
    dg.save({"weight": np.ones(2)}, plain)
    with pytest.raises(io.CheckpointError, match="not a deepgrad checkpoint"):
        io.load_checkpoint(plain)

    bad_json = str(tmp_path / "badjson.safetensors")
    safetensors.numpy.save_file({"w": np.ones(1)}, bad_json, metadata={io.CHECKPOINT_KEY: "{not json"})
    with pytest.raises(io.CheckpointError, match="corrupted checkpoint metadata"):
        io.load_checkpoint(bad_json)
    dangling = str(tmp_path / "dangling.safetensors")
    skeleton = json.dumps({"__dict__": [["w", {"__array__": "missing"}]]})
    safetensors.numpy.save_file({"w": np.ones(1)}, dangling, metadata={io.CHECKPOINT_KEY: skeleton})
    with pytest.raises(io.CheckpointError, match="corrupted checkpoint metadata"):
        io.load_checkpoint(dangling)


def test_load_checkpoint_refuses_a_truncated_file(tmp_path):
    path = tmp_path / "c.safetensors"
    io.save_checkpoint({"w": np.arange(1000.0), "n": 1}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(io.CheckpointError, match="not a readable safetensors file"):
        io.load_checkpoint(str(path))


# ----------------------------------------------------------------------------
# Atomic writes


def crash_after_partial_write(tensors, filename, metadata=None):
    with open(filename, "wb") as handle:
        handle.write(b"half a file")
    raise OSError("No space left on device")


@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_a_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, error):
    path = str(tmp_path / "last.safetensors")
    io.save_checkpoint({"epoch": 1, "w": np.arange(3.0)}, path)

    def crash(tensors, filename, metadata=None):
        assert os.path.dirname(filename) == str(tmp_path)  # the temporary file sits beside the target
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise error("simulated crash")

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    with pytest.raises(error, match="simulated crash"):
        io.save_checkpoint({"epoch": 2, "w": np.arange(5.0)}, path)
    with pytest.raises(error):
        io.save({"w": np.zeros(2)}, path)
    assert os.listdir(tmp_path) == ["last.safetensors"]  # no temporary file left behind
    monkeypatch.undo()
    state = io.load_checkpoint(path)
    assert state["epoch"] == 1 and np.array_equal(state["w"], np.arange(3.0))


def test_a_crash_before_the_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(safetensors.numpy, "save_file", crash_after_partial_write)
    with pytest.raises(OSError):
        dg.save({"w": np.zeros(2)}, str(tmp_path / "new" / "m.safetensors"))
    assert os.listdir(tmp_path / "new") == []


def test_save_overwrites_an_existing_file(tmp_path):
    path = str(tmp_path / "m.safetensors")
    dg.save({"w": np.zeros(2)}, path)
    dg.save({"v": np.ones(3)}, path)
    loaded = dg.load(path)
    assert list(loaded) == ["v"] and np.array_equal(loaded["v"], np.ones(3))
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_a_full_disk_during_a_save_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    import errno

    from deepgrad.errors import DeepgradError, WriteError

    path = tmp_path / "w.safetensors"
    dg.save({"w": np.arange(3.0)}, str(path))
    before = path.read_bytes()

    def full_disk(temporary):
        with open(temporary, "wb") as handle:
            handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(
        WriteError,
        match=r"cannot write .*w.safetensors: No space left on device; the previous "
        r"file, if any, is unchanged",
    ) as error:
        io.atomic_write(str(path), full_disk)
    assert isinstance(error.value, DeepgradError) and isinstance(error.value, OSError)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["w.safetensors"]
