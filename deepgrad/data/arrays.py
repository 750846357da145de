"""The user's own arrays as a data set: a ``.npz`` file (``deepgrad train --data FILE.npz``).

    np.savez("mine.npz", x=inputs, y=labels)                    # optionally x_test=..., y_test=...
    splits = deepgrad.data.arrays.load_npz("mine.npz")          # or build_run({"data": "mine.npz"})

The archive's keys:

- ``x``: the training inputs, numbers (float or integer), without NaN or infinity: (N, F) features
  (an ``mlp``'s input), (N, H, W) grayscale images (made (N, 1, H, W)) or (N, C, H, W) images (what
  the image presets ``simple-cnn`` and ``resnet-small`` need). They become float32 *as given*: no
  scaling is applied, so scale them as you want the model to see them (images to [0, 1], say).
- ``y``: the class index of each sample, shape (N,): integers (or floats with integral values) from
  0. The classes are 0..max(y), named "0", "1", ... — or the names in ``classes``.
- ``x_test``, ``y_test`` (both or neither): the test part, each sample shaped like x's, labels among
  the training classes. Without them, a fixed random 20 % of the samples is the test part.
- ``classes`` (optional): the class names, a 1-D array of distinct strings, at least max(y) + 1 of
  them (``deepgrad predict`` prints them).

The validation part is a fixed random ``val_fraction`` (default 0.1) of the training samples (all
of x, or what the test part leaves). The parts depend only on the file and ``val_fraction`` — not on
the run's seed — so every run on the same file evaluates on the same samples. Every problem is a
:class:`DatasetError` naming the file and the key.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from ..errors import DatasetError
from .dataset import TensorDataset
from .npy import NpzArchive
from .splits import Splits, held_out_size, split_off

KEYS = ("x", "y", "x_test", "y_test", "classes")
DEFAULT_VAL_FRACTION = 0.1
TEST_FRACTION = 0.2  # of the samples, when the file has no x_test / y_test
MAX_CLASSES = 1_000_000  # labels beyond this are refused: the output layer would be absurd
TEST_SEED, VAL_SEED = 0, 1  # the fixed permutations of the splits (as the embedded digits use)
INPUT_SHAPES = "(N, F) features, (N, H, W) grayscale images or (N, C, H, W) images"
ARCHIVE = "a .npz archive of arrays for --data (data=): np.savez(FILE, x=inputs, y=labels)"


def load_npz(path: str | os.PathLike[str], val_fraction: float | None = None) -> Splits:
    """The :class:`Splits` of the arrays in the ``.npz`` file at ``path`` (see the module's
    docstring); ``val_fraction`` of the training samples validate (None: 0.1)."""
    path = os.fspath(path)
    arrays = read_archive(path)
    x, y = inputs(arrays["x"], path, "x"), labels(arrays["y"], path, "y")
    if len(x) != len(y):
        raise DatasetError(f"{path}: x has {len(x)} samples but y has {len(y)} labels; they must be equally many")
    has_test = "x_test" in arrays
    if has_test:
        x_test, y_test = inputs(arrays["x_test"], path, "x_test"), labels(arrays["y_test"], path, "y_test")
        if arrays["x_test"].shape[1:] != arrays["x"].shape[1:]:
            raise DatasetError(
                f"{path}: x_test's samples have shape {arrays['x_test'].shape[1:]}, x's have "
                f"{arrays['x'].shape[1:]}; they must be the same"
            )
        if len(x_test) != len(y_test):
            raise DatasetError(
                f"{path}: x_test has {len(x_test)} samples but y_test has {len(y_test)} labels; "
                "they must be equally many"
            )
        if len(x_test) == 0:
            raise DatasetError(f"{path}: x_test and y_test are empty; leave both out to test on a part of x")
    least = 2 if has_test else 3
    if len(x) < least:
        parts = "training and validation" if has_test else "training, validation and test"
        also = "" if has_test else "; at least 2 with x_test and y_test"
        raise DatasetError(
            f"{path}: x has {len(x)} sample{'s' if len(x) != 1 else ''}, too few to split into "
            f"{parts} parts (at least {least}{also})"
        )
    classes = class_names(arrays.get("classes"), y, path)
    if has_test and y_test.max() >= len(classes):
        first = int(np.argmax(y_test >= len(classes)))
        where = "in classes" if "classes" in arrays else "of y (classes 0..max(y))"
        raise DatasetError(
            f"{path}: y_test[{first}] is {y_test[first]}, not one of the {len(classes)} classes "
            f"{where}: the test labels must be among the training classes"
        )
    if not has_test:
        test_size = min(max(int(round(TEST_FRACTION * len(x))), 1), len(x) - 2)
        (x, y), (x_test, y_test) = split_off(x, y, test_size, TEST_SEED)
    fraction = DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction
    (x, y), (x_val, y_val) = split_off(x, y, held_out_size(fraction, len(x), path), VAL_SEED)
    return Splits(TensorDataset(x, y), TensorDataset(x_val, y_val), TensorDataset(x_test, y_test), classes)


def read_archive(path: str) -> dict[str, np.ndarray]:
    """{key: array} of the .npz at ``path``, its keys checked (x and y present, nothing unknown,
    x_test and y_test together) before any array is read, and the arrays' headers (objects,
    sizes: see :mod:`deepgrad.data.npy`) before any data is."""
    with NpzArchive(path, DatasetError, expected=ARCHIVE, missing=f"data file not found: {path}") as archive:
        keys = archive.keys
        unknown = [key for key in keys if key not in KEYS]
        if unknown:
            shown = f"{unknown[:5]}" if len(unknown) <= 5 else f"{unknown[:5]} and {len(unknown) - 5} more"
            raise DatasetError(
                f"{path}: unknown key{'s' if len(unknown) > 1 else ''} {shown}; valid keys: {', '.join(KEYS)}"
            )
        for key in ("x", "y"):
            if key not in keys:
                raise DatasetError(
                    f"{path}: missing key {key!r}; a data file holds x (inputs) and y (class "
                    "indices), optionally x_test, y_test and classes: np.savez(FILE, x=..., y=...)"
                )
        if ("x_test" in keys) != ("y_test" in keys):
            present, absent = ("x_test", "y_test") if "x_test" in keys else ("y_test", "x_test")
            raise DatasetError(f"{path}: has {present} but no {absent}; give both (the test part) or neither")
        return archive.read(keys)


def inputs(array: np.ndarray, path: str, key: str) -> np.ndarray:
    """``array`` (x or x_test) checked, as float32, with (N, H, W) made (N, 1, H, W)."""
    if array.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: {key} holds {array.dtype} values; expected numbers (float or integer)")
    if array.ndim not in (2, 3, 4) or 0 in array.shape[1:]:
        raise DatasetError(f"{path}: {key} has shape {array.shape}; expected {INPUT_SHAPES}")
    if array.dtype.kind == "f":
        _all_finite(array, path, key, "NaN or infinite value")
    with np.errstate(over="ignore"):  # what overflows is reported next
        x = array.astype(np.float32)
    if array.dtype.kind == "f" and array.dtype.itemsize > 4:
        _all_finite(
            x,
            path,
            key,
            "value beyond float32's range (about ±3.4e38)",
            "values beyond float32's range (about ±3.4e38)",
        )
    return x[:, None] if x.ndim == 3 else x


def _all_finite(array: np.ndarray, path: str, key: str, one: str, many: str | None = None) -> None:
    """A DatasetError naming ``path``, ``key``, how many values are not finite (``one``, or
    ``many`` of them: by default ``one`` + "s") and where the first is, when any is not."""
    bad = ~np.isfinite(array)
    if bad.any():
        count = int(np.count_nonzero(bad))
        first = np.unravel_index(int(np.argmax(bad)), array.shape)
        what = f"1 {one}" if count == 1 else f"{count} {many or one + 's'}"
        raise DatasetError(
            f"{path}: {key} holds {what} (first at index {[int(i) for i in first]}); inputs must be finite numbers"
        )


def labels(array: np.ndarray, path: str, key: str) -> np.ndarray:
    """``array`` (y or y_test) checked to be class indices 0, 1, ..., as int64."""
    if array.ndim != 1:
        hint = ""
        if array.ndim == 2 and array.shape[1] == 1:
            hint = "; flatten it (y.ravel())"
        elif array.ndim == 2:
            hint = "; one-hot rows or probabilities? give the class indices (y.argmax(axis=1))"
        raise DatasetError(f"{path}: {key} has shape {array.shape}; expected (N,) class indices{hint}")
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        integral = finite & (array == np.floor(np.where(finite, array, 0)))
        if not integral.all():
            first = int(np.argmin(integral))
            raise DatasetError(
                f"{path}: {key}[{first}] is {array[first]}; expected class indices 0, 1, ... "
                "(integers, or floats with integral values)"
            )
    elif array.dtype.kind not in "biu":
        raise DatasetError(f"{path}: {key} holds {array.dtype} values; expected integer class indices 0, 1, ...")
    if array.size and (array < 0).any():
        first = int(np.argmax(array < 0))
        raise DatasetError(f"{path}: {key}[{first}] is {array[first]}; class indices start at 0 (no negative labels)")
    if array.size and array.max() >= MAX_CLASSES:
        first = int(np.argmax(array >= MAX_CLASSES))
        raise DatasetError(
            f"{path}: {key}[{first}] is {array[first]}; class indices must be below {MAX_CLASSES} "
            "(labels are the classes 0..K-1, not arbitrary codes)"
        )
    return array.astype(np.int64)


def class_names(names: np.ndarray | None, y: np.ndarray, path: str) -> tuple[str, ...]:
    """The class names: ``names`` (the file's ``classes``) checked against the labels ``y``, or
    "0".."K-1" for the classes 0..max(y)."""
    if names is None:
        return tuple(str(c) for c in range(int(y.max()) + 1))
    if names.ndim != 1 or names.dtype.kind != "U" or len(names) == 0:
        raise DatasetError(
            f"{path}: classes has shape {names.shape} of {names.dtype}; expected a 1-D array of class names (strings)"
        )
    named = tuple(str(name) for name in names)
    if len(set(named)) != len(named):
        repeated = sorted(name for name, count in Counter(named).items() if count > 1)
        raise DatasetError(f"{path}: classes has {repeated} more than once; each class needs its own name")
    if y.max() >= len(named):
        first = int(np.argmax(y >= len(named)))
        raise DatasetError(
            f"{path}: y[{first}] is {y[first]}, but classes has only {len(named)} names (for the "
            f"classes 0..{len(named) - 1})"
        )
    return named
