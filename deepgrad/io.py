"""Saving and loading: safetensors for arrays, JSON for everything else. Never pickle.

``save``/``load`` handle a flat state dict (name -> array). ``save_checkpoint``/
``load_checkpoint`` handle any nesting of dicts, lists, numbers, strings and
arrays (a model's state dict, an optimizer's, RNG states, a config): arrays go
into the safetensors payload and the rest into its JSON metadata, in one file.
Every write goes to a temporary file that is renamed into place, so a crash
never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from . import backend
from .backend import Array
from .errors import CheckpointError, WriteError
from .tensor import Tensor

CHECKPOINT_KEY = "deepgrad_checkpoint"

#: A file's path: a string or a path object (pathlib.Path).
StrPath: TypeAlias = "str | os.PathLike[str]"


def _safetensors() -> Any:
    try:
        from safetensors import numpy as st
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("saving and loading need the safetensors package: pip install 'deepgrad[train]'") from None
    return st


def atomic_write(path: StrPath, write: Callable[[str], object]) -> None:
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``: a crash or a full
    disk leaves the previous file (if any) as it was. A failure to write (no space, no permission) is
    a WriteError naming the file."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.splitext(path)[1])
        os.close(handle)
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp and safetensors both create files as 0600
        os.replace(temporary, path)
    except OSError as error:
        _remove(temporary)
        raise WriteError(
            f"cannot write {path}: {error.strerror or error}; the previous file, if any, is unchanged"
        ) from error
    except BaseException:
        _remove(temporary)
        raise


def _remove(temporary: str | None) -> None:
    if temporary is not None and os.path.exists(temporary):
        os.remove(temporary)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _contiguous(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A C-contiguous copy if needed, keeping the shape (np.ascontiguousarray makes 0-d arrays 1-d)."""
    return np.ascontiguousarray(array).reshape(array.shape)


def _as_array(value: Tensor | Array, key: str) -> npt.NDArray[Any]:
    array = value.data if isinstance(value, Tensor) else value
    if backend.device_of(array) is not backend.CPU:  # arrays on a GPU are saved from the host
        array = backend.to_host(array)
    if not isinstance(array, np.ndarray):
        raise TypeError(f"save: value of {key!r} is a {type(value).__name__}, expected an array or Tensor")
    return _contiguous(array)


def write_text(path: StrPath, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place: never half-written."""

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="") as handle:
            handle.write(text)

    atomic_write(path, write)


def save(state_dict: Mapping[str, Tensor | Array], path: StrPath, metadata: dict[str, str] | None = None) -> None:
    """Write a flat name -> array (or Tensor) mapping to a safetensors file, atomically."""
    st = _safetensors()
    arrays = {key: _as_array(value, key) for key, value in state_dict.items()}
    atomic_write(path, lambda tmp: st.save_file(arrays, tmp, metadata=metadata))


def load(path: StrPath) -> OrderedDict[str, npt.NDArray[Any]]:
    """Read a safetensors file into an OrderedDict of NumPy arrays (in the file's order)."""
    st = _safetensors()
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file: {path}")
    try:
        arrays = st.load_file(path)
    except Exception as error:  # safetensors raises its own error types for bad files
        raise CheckpointError(f"load: {path} is not a readable safetensors file ({error})") from None
    return OrderedDict(arrays.items())


def _split(value: Any, arrays: dict[str, npt.NDArray[Any]], path: str) -> Any:
    """Replace every array in a nested structure by a reference, collecting the arrays."""
    if isinstance(value, Tensor):
        value = value.data
    if backend.device_of(value) is not backend.CPU:  # arrays on a GPU are saved from the host
        value = backend.to_host(value)
    if isinstance(value, np.ndarray):
        key = base = path or "value"
        suffix = 0
        while key in arrays:  # paths can coincide: {"a.b": x, "a": {"b": y}}, or keys 1 and "1"
            suffix += 1
            key = f"{base}#{suffix}"
        arrays[key] = _contiguous(value)
        return {"__array__": key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if any(not isinstance(k, (str, int)) for k in value):
            raise TypeError(f"save_checkpoint: dict keys must be str or int at {path or 'top level'}")
        return {"__dict__": [[k, _split(v, arrays, f"{path}.{k}" if path else str(k))] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_split(v, arrays, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"save_checkpoint: cannot store a {type(value).__name__} at {path or 'top level'}")


def _join(value: Any, arrays: Mapping[str, npt.NDArray[Any]]) -> Any:
    if isinstance(value, dict):
        if "__array__" in value:
            return arrays[value["__array__"]]
        return OrderedDict((k, _join(v, arrays)) for k, v in value["__dict__"])
    if isinstance(value, list):
        return [_join(v, arrays) for v in value]
    return value


def save_checkpoint(obj: object, path: StrPath) -> None:
    """Write a nested structure of dicts, lists, scalars, strings and arrays to one file, atomically."""
    st = _safetensors()
    arrays: dict[str, npt.NDArray[Any]] = {}
    skeleton = _split(obj, arrays, "")
    metadata = {CHECKPOINT_KEY: json.dumps(skeleton)}
    atomic_write(path, lambda tmp: st.save_file(arrays, tmp, metadata=metadata))


def load_checkpoint(path: StrPath) -> Any:
    """Read a structure written by :func:`save_checkpoint`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_checkpoint: no such file: {path}")
    try:
        from safetensors import safe_open

        with safe_open(path, framework="numpy") as handle:
            metadata = handle.metadata() or {}
            arrays = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:
        raise CheckpointError(f"load_checkpoint: {path} is not a readable safetensors file ({error})") from None
    if CHECKPOINT_KEY not in metadata:
        raise CheckpointError(f"load_checkpoint: {path} is a safetensors file but not a deepgrad checkpoint")
    try:
        return _join(json.loads(metadata[CHECKPOINT_KEY]), arrays)
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise CheckpointError(f"load_checkpoint: {path} has corrupted checkpoint metadata ({error})") from None
