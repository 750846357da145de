"""Fuzzing the readers of what users keep on disk — safetensors checkpoints and weights, config
JSON and TOML files, IDX data files — with random bytes, truncations and huge declared sizes: each
gives the library's own error naming the file, never another exception. Derandomized, so a
failure reproduces in CI."""

import gzip
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepgrad as dg
from deepgrad import io
from deepgrad.data import DatasetError, read_idx
from deepgrad.errors import CheckpointError, ConfigError
from deepgrad.train import config as options

FUZZ = settings(
    derandomize=True, max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "good.safetensors"
    io.save_checkpoint({"format": "x", "model": {"w": np.arange(6.0).reshape(2, 3)}, "epoch": 1}, str(path))
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_damaged_safetensors_files_are_checkpoint_errors(tmp_path, checkpoint_bytes, data):
    cut = data.draw(st.integers(0, len(checkpoint_bytes)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(checkpoint_bytes) - 1), st.integers(0, 255)), max_size=4))
    damaged = bytearray(checkpoint_bytes[:cut])
    for position, value in flips:
        if position < len(damaged):
            damaged[position] = value
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(bytes(damaged))
    for read in (io.load_checkpoint, io.load):
        try:
            read(str(path))
        except CheckpointError as error:
            assert str(path) in str(error)


@FUZZ
@given(header=st.integers(0, 2**64 - 1), body=st.binary(max_size=64))
def test_a_declared_header_size_never_allocates_or_escapes(tmp_path, header, body):
    path = tmp_path / "sized.safetensors"
    path.write_bytes(header.to_bytes(8, "little") + body)
    with pytest.raises(CheckpointError):
        io.load(str(path))


@FUZZ
@given(text=st.one_of(st.text(max_size=80), st.from_regex(r'\{"(lr|epochs|hidden|dropout)": .{0,12}\}')))
def test_damaged_config_json_is_a_config_error(tmp_path, text):
    path = tmp_path / "config.json"
    path.write_text(text)
    try:
        saved = options.load_saved(str(path))
    except ConfigError as error:
        assert str(path) in str(error)
        return
    try:
        options.validate(saved, source=str(path))  # what loads has the right types; ranges are checked too
    except ConfigError as error:
        assert str(error).startswith(f"{path}: ")


@FUZZ
@given(text=st.text(max_size=80), value=st.one_of(st.floats(), st.integers(), st.text(max_size=5), st.booleans()))
def test_damaged_toml_configs_are_config_errors(tmp_path, text, value):
    for content in (text, f"lr = {json.dumps(value)}\n", f"epochs = {json.dumps(value)}\n"):
        path = tmp_path / "run.toml"
        path.write_text(content)
        try:
            options.resolve(options.load_file(str(path)))
        except ConfigError as error:
            assert str(path) in str(error) or "must" in str(error) or "unknown" in str(error)


@FUZZ
@given(
    ndim=st.integers(0, 5),
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=5, max_size=5),
    body=st.binary(max_size=200),
    gzipped=st.booleans(),
)
def test_damaged_idx_files_are_dataset_errors(tmp_path, ndim, dims, body, gzipped):
    raw = bytes([0, 0, 8, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims[:ndim]) + body
    path = tmp_path / ("data-idx-ubyte.gz" if gzipped else "data-idx-ubyte")
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    try:
        array = read_idx(str(path))
    except DatasetError as error:
        assert str(path) in str(error)
        return
    assert array.shape == tuple(dims[:ndim]) and array.dtype == np.uint8


def test_a_truncated_gzip_idx_file_is_a_dataset_error(tmp_path):
    path = tmp_path / "cut-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4]))[:-6])
    with pytest.raises(DatasetError, match="cut-idx1-ubyte.gz"):
        read_idx(str(path))


def test_non_finite_options_are_config_errors():
    for name in ("lr", "dropout", "init_std"):
        with pytest.raises(ConfigError, match=f"{name} must be a finite number, got nan"):
            options.resolve({name: float("nan")})
    with pytest.raises(ConfigError, match="lr must be a finite number, got -inf"):
        options.resolve({"lr": float("-inf")})
    assert dg.DeepgradError in ConfigError.__mro__
