"""The user's own arrays as a data set (data/arrays.py: a .npz of x, y, x_test, y_test, classes),
and --val-fraction through every data set's loader (defaults unchanged, bit for bit)."""

import hashlib
import os
import zipfile

import numpy as np
import pytest

from deepgrad import ConfigError, DeepgradError
from deepgrad.data import DatasetError, datasets
from deepgrad.data.arrays import load_npz
from deepgrad.data.splits import held_out_size

MNIST_DIR = "/work/shared/data/mnist"


def write_npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def indexed(n, shape=(3,)):
    """n samples whose every value is the sample's index (to see where each one went), labels i % 4."""
    x = np.broadcast_to(np.arange(n, dtype=np.float64).reshape((n,) + (1,) * len(shape)), (n,) + shape).copy()
    return x, np.arange(n) % 4


def fingerprint(splits):
    """A digest of every array of the three parts and the class names."""
    digest = hashlib.sha256()
    for part in (splits.train, splits.val, splits.test):
        for a in part.arrays:
            digest.update(str(a.dtype).encode())
            digest.update(str(a.shape).encode())
            digest.update(np.ascontiguousarray(a).tobytes())
    digest.update(repr(splits.classes).encode())
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------
# A .npz of arrays


def test_arrays_split_into_fixed_disjoint_parts_kept_as_given(tmp_path):
    x, y = indexed(100)
    x *= 1000.0  # no scaling: the values stay as given
    path = write_npz(tmp_path, x=x, y=y)
    s = load_npz(path)
    assert (len(s.train), len(s.val), len(s.test)) == (72, 8, 20)  # test: 20 % of x; val: 10 % of the rest
    assert s.input_shape == (3,) and s.classes == ("0", "1", "2", "3")
    assert s.train.arrays[0].dtype == np.float32 and s.train.arrays[1].dtype == np.int64
    seen = np.concatenate([part.arrays[0][:, 0] for part in (s.train, s.val, s.test)]) / 1000
    assert sorted(seen.astype(int).tolist()) == list(range(100))  # every sample in exactly one part
    for part in (s.train, s.val, s.test):
        index = (part.arrays[0][:, 0] / 1000).astype(int)
        np.testing.assert_array_equal(part.arrays[1], index % 4)  # labels travel with their samples
    again = load_npz(path)
    np.testing.assert_array_equal(again.val.arrays[0], s.val.arrays[0])  # the same split every time
    assert not np.array_equal(s.test.arrays[0][:, 0], np.sort(s.test.arrays[0][:, 0]))  # a random part


def test_arrays_with_a_test_part_shapes_and_class_names(tmp_path):
    x, y = indexed(50, (6, 5))
    path = write_npz(
        tmp_path,
        x=x,
        y=y.astype(np.float64),
        x_test=x[:7] + 0.5,
        y_test=y[:7],
        classes=np.array(["a", "b", "c", "d", "e"]),
    )
    s = load_npz(path, val_fraction=0.3)
    assert (len(s.train), len(s.val), len(s.test)) == (35, 15, 7)
    assert s.input_shape == (1, 6, 5)  # (N, H, W) -> (N, 1, H, W)
    np.testing.assert_array_equal(s.test.arrays[0][:, 0], x[:7] + 0.5)
    assert s.classes == ("a", "b", "c", "d", "e") and s.num_classes == 5  # a class may have no samples
    images = np.zeros((4, 3, 5, 5), np.uint8)
    assert load_npz(write_npz(tmp_path, "rgb.npz", x=images, y=[0, 1, 0, 1])).input_shape == (3, 5, 5)


def _error_cases(x, y):
    nan, inf = x.copy(), x.copy()
    nan[3, 1] = np.nan
    inf[2, 0] = -np.inf
    return [
        (dict(y=y), "missing key 'x'"),
        (dict(x=x), "missing key 'y'"),
        (dict(x=x, y=y, z=y, w=y), r"unknown keys \['z', 'w'\]; valid keys: x, y, x_test, y_test, classes"),
        (
            dict(x=x, y=y, **{f"k{i}": y for i in range(9)}),
            r"unknown keys \['k0', 'k1', 'k2', 'k3', 'k4'\] and 4 more;",
        ),
        (dict(x=x.astype(str), y=y), "x holds <U32 values; expected numbers"),
        (dict(x=x.astype(complex), y=y), "x holds complex128 values; expected numbers"),
        (dict(x=x[:, 0], y=y), r"x has shape \(20,\); expected \(N, F\) features, \(N, H, W\)"),
        (dict(x=x.reshape(20, 3, 1, 1, 1), y=y), r"x has shape \(20, 3, 1, 1, 1\); expected"),
        (dict(x=nan, y=y), r"x holds 1 NaN or infinite value \(first at index \[3, 1\]\); inputs must be finite"),
        (
            dict(x=x, y=y, x_test=inf[:5], y_test=y[:5]),
            r"x_test holds 1 NaN or infinite value \(first at index \[2, 0\]\)",
        ),
        (dict(x=np.where(x > 10, np.nan, x), y=y), r"x holds 27 NaN or infinite values \(first at index \[11, 0\]\)"),
        (dict(x=x * 1e300, y=y), r"x holds 57 values beyond float32's range .*first at index \[1, 0\]"),
        (dict(x=x, y=y + 0.5), r"y\[0\] is 0.5; expected class indices 0, 1, ... \(integers, or floats with integral"),
        (dict(x=x, y=np.where(y == 2, np.nan, y)), r"y\[2\] is nan; expected class indices"),
        (dict(x=x, y=y.astype(str)), "y holds <U21 values; expected integer class indices"),
        (dict(x=x, y=y - 1), r"y\[0\] is -1; class indices start at 0 \(no negative labels\)"),
        (dict(x=x, y=np.eye(4)[y]), r"y has shape \(20, 4\); expected \(N,\) class indices; one-hot rows .*argmax"),
        (dict(x=x, y=y[:, None]), r"y has shape \(20, 1\); expected \(N,\) class indices; flatten it"),
        (dict(x=x, y=y * 10**7), r"class indices must be below 1000000"),
        (dict(x=x, y=y[:19]), "x has 20 samples but y has 19 labels; they must be equally many"),
        (dict(x=x, y=y, x_test=x[:5, :2], y_test=y[:5]), r"x_test's samples have shape \(2,\), x's have \(3,\)"),
        (dict(x=x, y=y, x_test=x[:5], y_test=y[:4]), "x_test has 5 samples but y_test has 4 labels"),
        (dict(x=x, y=y, x_test=x[:0], y_test=y[:0]), "x_test and y_test are empty"),
        (dict(x=x, y=y, x_test=x[:5]), "has x_test but no y_test; give both"),
        (dict(x=x, y=y, y_test=y[:5]), "has y_test but no x_test; give both"),
        (
            dict(x=x, y=y % 3, x_test=x[:5], y_test=y[:5]),
            r"y_test\[3\] is 3, not one of the 3 classes of y \(classes 0..max\(y\)\): the test labels must be among",
        ),
        (
            dict(x=x, y=y, x_test=x[:5], y_test=y[:5], classes=np.array(["a", "b", "c", "d"])[:3]),
            r"y\[3\] is 3, but classes has only 3 names \(for the classes 0..2\)",
        ),
        (
            dict(x=x, y=y % 2, x_test=x[:5], y_test=y[:5], classes=np.array(["a", "b", "c"])),
            r"y_test\[3\] is 3, not one of the 3 classes in classes",
        ),
        (dict(x=x, y=y, classes=np.array(["a", "b", "a", "c"])), r"classes has \['a'\] more than once"),
        (dict(x=x, y=y, classes=np.arange(4)), "classes has shape .* expected a 1-D array of class names"),
        (
            dict(x=x[:2], y=y[:2]),
            "x has 2 samples, too few to split into training, validation and test parts "
            r"\(at least 3; at least 2 with x_test and y_test\)",
        ),
        (
            dict(x=x[:1], y=y[:1], x_test=x, y_test=y),
            r"x has 1 sample, too few to split into training and validation parts \(at least 2\)",
        ),
        (dict(x=x[:0], y=y[:0]), "x has 0 samples, too few to split into training, validation and test parts"),
        (dict(x=np.zeros((0,)), y=y[:0]), r"x has shape \(0,\); expected \(N, F\) features"),
        (dict(x=np.zeros((20, 0)), y=y), r"x has shape \(20, 0\); expected"),
    ]


@pytest.mark.parametrize("case", range(len(_error_cases(*indexed(20)))))
def test_bad_arrays_are_dataset_errors_naming_the_file_and_key(tmp_path, case):
    arrays, message = _error_cases(*indexed(20))[case]
    path = write_npz(tmp_path, **arrays)
    with pytest.raises(DatasetError, match=message) as error:
        load_npz(path)
    assert str(error.value).startswith(f"{path}: ") and isinstance(error.value, DeepgradError)


def test_files_that_are_not_an_archive_of_arrays(tmp_path):
    (tmp_path / "notes.npz").write_text("not a zip")
    np.save(tmp_path / "one.npy", np.zeros((3, 2)))
    (tmp_path / "folder").mkdir()
    (tmp_path / "loop.npz").symlink_to(tmp_path / "loop.npz")
    os.mkfifo(tmp_path / "pipe.npz")  # opening it to read would wait for a writer forever
    (tmp_path / "notes.txt").write_text("a file")
    expected = r"expected a .npz archive of arrays for --data \(data=\): np.savez\(FILE, x=inputs, y=labels\)"
    not_zip = r"cannot read .*notes.npz: it is not a .npz file \(a zip archive\); "
    for name, message in (
        ("notes.npz", not_zip + expected),
        ("one.npy", "one.npy holds a single .npy array; " + expected),
        ("folder", "folder is a directory; " + expected),
        ("loop.npz", "cannot read .*loop.npz: Too many levels of symbolic links; " + expected),
        ("pipe.npz", r"pipe.npz is not a regular file \(a device, pipe or socket\); " + expected),
        ("notes.txt/x.npz", "cannot read .*notes.txt/x.npz: Not a directory; " + expected),
        ("missing.npz", "data file not found: .*missing.npz"),
    ):
        with pytest.raises(DatasetError, match=message):
            load_npz(str(tmp_path / name))


def test_npz_members_that_are_not_arrays_are_never_unpickled(tmp_path, monkeypatch):
    import pickle

    unpickled = []
    monkeypatch.setattr(pickle, "load", lambda *args, **kwargs: unpickled.append(args))
    monkeypatch.setattr(pickle, "loads", lambda *args, **kwargs: unpickled.append(args))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}] * 3, dtype=object), y=np.arange(3))
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as archive:  # a member that is not a .npy file
        archive.writestr("x", b"just bytes, however many")
        archive.writestr("y.npy", b"")
    with zipfile.ZipFile(tmp_path / "twice.npz", "w") as archive:
        archive.writestr("x", b"")
        archive.writestr("x.npy", b"")
    for name, message in (
        (
            "objects.npz",
            r"objects.npz: cannot read key 'x': it holds Python objects \(object\): pickled data, "
            "which deepgrad never unpickles",
        ),
        ("raw.npz", r"raw.npz: 'x' is not an array \(not a .npy member\)"),
        ("twice.npz", r"twice.npz: holds 'x' twice \(x and x.npy\)"),
    ):
        with pytest.raises(DatasetError, match=message):
            load_npz(str(tmp_path / name))
    assert unpickled == []


def test_the_arrays_data_set_through_the_registry(tmp_path):
    path = write_npz(tmp_path, x=np.ones((10, 2)), y=np.arange(10) % 2)
    s = datasets.load("arrays", data=path, val_fraction=0.5)
    assert (len(s.train), len(s.val), len(s.test)) == (4, 4, 2)
    with pytest.raises(ConfigError, match=r"dataset 'arrays' trains on the arrays of a .npz file: give it with --data"):
        datasets.load("arrays")


# ----------------------------------------------------------------------------
# val_fraction


# The splits before val_fraction existed (digits, spiral at seeds 0 and 3, MNIST): the defaults must
# stay exactly these.
DEFAULT_FINGERPRINTS = {
    ("digits", 0): "4cbb6b31b47f517b",
    ("spiral", 0): "00dac60e2f9e738c",
    ("spiral", 3): "ab3736d5f4eae543",
}


@pytest.mark.parametrize("name,seed", list(DEFAULT_FINGERPRINTS))
def test_default_splits_are_unchanged_bit_for_bit(name, seed):
    assert fingerprint(datasets.load(name, seed=seed)) == DEFAULT_FINGERPRINTS[name, seed]
    assert fingerprint(datasets.load(name, seed=seed, val_fraction=None)) == DEFAULT_FINGERPRINTS[name, seed]


@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="the MNIST files are not available")
def test_default_mnist_split_is_unchanged_and_val_fraction_resizes_it():
    assert fingerprint(datasets.load("mnist", MNIST_DIR)) == "5268f1691020e3c4"
    s = datasets.mnist(MNIST_DIR, val_fraction=0.25)
    assert (len(s.train), len(s.val), len(s.test)) == (45000, 15000, 10000)


def test_val_fraction_resizes_the_validation_part_of_each_data_set(tmp_path):
    digits = datasets.load("digits", val_fraction=0.25)
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1078, 359, 360)  # 0.25 of 1437
    default = datasets.digits()
    np.testing.assert_array_equal(digits.test.arrays[0], default.test.arrays[0])  # the test part stays
    train_and_val = np.concatenate([digits.train.arrays[1], digits.val.arrays[1]])
    assert (
        np.bincount(train_and_val).tolist()
        == np.bincount(np.concatenate([default.train.arrays[1], default.val.arrays[1]])).tolist()
    )
    assert len(datasets.load("digits", val_fraction=0.1).val) == 144  # 143.7, to the nearest
    assert len(datasets.load("digits", val_fraction=1e-6).val) == 1  # at least one sample
    assert len(datasets.load("digits", val_fraction=0.999999).train) == 1  # and one left to train on

    spiral = datasets.load("spiral", seed=2, val_fraction=0.1)
    assert (len(spiral.train), len(spiral.val), len(spiral.test)) == (1620, 180, 900)  # 0.1 of the 1800 pooled
    np.testing.assert_array_equal(spiral.test.arrays[0], datasets.load("spiral", seed=2).test.arrays[0])

    from test_data import write_tiny_mnist

    root = write_tiny_mnist(tmp_path, n_train=40, n_test=10)
    s = datasets.load("mnist", root, val_fraction=0.25)
    assert (len(s.train), len(s.val), len(s.test)) == (30, 10, 10)


def test_val_fraction_needs_two_training_samples(tmp_path):
    path = write_npz(tmp_path, x=np.ones((2, 2)), y=[0, 1], x_test=np.ones((1, 2)), y_test=[1])
    assert len(load_npz(path, val_fraction=0.01).val) == 1 and len(load_npz(path, val_fraction=0.99).train) == 1
    with pytest.raises(ConfigError, match="val_fraction 0.5: tiny has 1 training sample; holding some out"):
        held_out_size(0.5, 1, "tiny")
