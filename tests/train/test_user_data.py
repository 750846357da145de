"""Training on the user's own data and predicting on the user's own files: the options data (a .npz
of arrays, dataset "arrays") and val_fraction, a run trained so saved and loaded back, and the
inputs of predict (data/inputs.py): .npy arrays, image files and directories of them."""

import json
import os

import numpy as np
import pytest

from deepgrad import ConfigError
from deepgrad.data import datasets
from deepgrad.data.inputs import load_inputs, read_inputs
from deepgrad.train import build_run, load_run
from deepgrad.train import config as options

Image = pytest.importorskip("PIL.Image")

SMALL = {"hidden": [16], "epochs": 2}


def digits_npz(path, flat=False):
    """The embedded digits as a .npz of arrays: x (N, 8, 8) or (N, 64), with its test part."""
    s = datasets.digits()
    x = np.concatenate([s.train.arrays[0], s.val.arrays[0]])[:, 0]
    y = np.concatenate([s.train.arrays[1], s.val.arrays[1]])
    x_test = s.test.arrays[0][:, 0]
    if flat:
        x, x_test = x.reshape(len(x), -1), x_test.reshape(len(x_test), -1)
    np.savez(path, x=x, y=y, x_test=x_test, y_test=s.test.arrays[1])
    return str(path)


# ----------------------------------------------------------------------------
# The options


def test_data_implies_the_arrays_data_set_and_is_saved_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = options.resolve({"data": "mine.npz"})
    assert config["dataset"] == "arrays" and config["data"] == str(tmp_path / "mine.npz")
    assert options.resolve({"dataset": "arrays", "data": "mine.npz"}) == config
    assert options.resolve({})["data"] is None and options.resolve({})["val_fraction"] is None
    with pytest.raises(ConfigError, match=r"dataset 'arrays' trains on the arrays of a .npz file: give it with --data"):
        options.resolve({"dataset": "arrays"})
    with pytest.raises(
        ConfigError,
        match=r"data .*mine.npz is a data set of your own arrays \(dataset 'arrays'\), "
        r"but dataset is 'mnist': give one of them",
    ):
        options.resolve({"dataset": "mnist", "data": "mine.npz"})


@pytest.mark.parametrize("value", [0, 1, -0.5, 1.5, float("nan")])
def test_val_fraction_must_be_strictly_between_0_and_1(value):
    with pytest.raises(ConfigError, match=r"val_fraction must (be in \(0, 1\)|be a finite number)"):
        options.resolve({"val_fraction": value})


def test_val_fraction_resizes_a_runs_validation_split():
    default = build_run(SMALL, progress=False)
    assert (len(default.splits.train), len(default.splits.val)) == (1257, 180)
    half = build_run({**SMALL, "val_fraction": 0.5, "train_size": 600}, progress=False)
    assert (len(half.splits.train), len(half.splits.val), len(half.splits.test)) == (600, 718, 360)
    np.testing.assert_array_equal(half.splits.test.arrays[1], default.splits.test.arrays[1])


# ----------------------------------------------------------------------------
# A run on a .npz, saved and loaded back


def test_a_run_on_a_npz_trains_saves_and_loads_back_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    digits_npz(tmp_path / "digits.npz")
    out = tmp_path / "run"
    run = build_run({**SMALL, "data": "digits.npz"}, out=str(out), progress=False)  # a relative path
    assert run.splits.input_shape == (1, 8, 8) and run.splits.classes == tuple("0123456789")
    assert (len(run.splits.train), len(run.splits.val), len(run.splits.test)) == (1293, 144, 360)
    assert run.describe().startswith("mlp on arrays (1293 train / 144 val / 360 test)")
    summary = run.fit()
    assert summary["dataset"] == "arrays" and 0.5 < summary["test_accuracy"] <= 1
    saved = json.loads((out / "config.json").read_text())
    assert saved["dataset"] == "arrays" and saved["data"] == str(tmp_path / "digits.npz")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_run(str(out))
    assert loaded.evaluate(("test",))["test"]["accuracy"] == summary["test_accuracy"]
    x_test = run.splits.test.arrays[0]
    np.testing.assert_array_equal(loaded.predict(x_test), run.predict(x_test))
    resumed = build_run({"epochs": 3}, out=str(out), resume=True, progress=False)
    assert resumed.config["data"] == saved["data"] and resumed.fit()["epochs"] == 3


def test_a_run_on_flat_arrays_and_its_errors(tmp_path):
    path = digits_npz(tmp_path / "flat.npz", flat=True)
    run = build_run({**SMALL, "data": path, "val_fraction": 0.25, "epochs": 1}, progress=False)
    assert run.splits.input_shape == (64,) and len(run.splits.val) == 359
    with pytest.raises(
        ConfigError, match=r"model 'simple-cnn' needs images \(C, H, W\); arrays has inputs of shape \(64,\)"
    ):
        build_run({"data": path, "model": "simple-cnn"})
    out = tmp_path / "never"
    with pytest.raises(datasets.DatasetError, match="data file not found: .*nowhere.npz"):
        build_run({"data": str(tmp_path / "nowhere.npz")}, out=str(out))
    assert not out.exists()  # refused before the run directory


# ----------------------------------------------------------------------------
# predict's inputs: .npy arrays, image files, directories


@pytest.fixture(scope="module")
def digits_run():
    """A small MLP trained on the digits for one epoch (predictions need not be good, only defined)."""
    return build_run({**SMALL, "epochs": 1}, progress=False)


def eight_bit(images):
    """Images in [0, 1] (N, 1, H, W) as 8-bit (N, H, W) pixels."""
    return np.round(images[:, 0] * 255).astype(np.uint8)


def test_png_files_predict_as_their_exact_8_bit_arrays(tmp_path, digits_run):
    pixels = eight_bit(datasets.digits().test.arrays[0][:6])
    paths = []
    for i, image in enumerate(pixels):
        paths.append(str(tmp_path / f"digit{i}.png"))
        Image.fromarray(image).save(paths[-1])
    x, names = read_inputs(paths, digits_run.splits.input_shape)
    exact = (pixels.astype(np.float32) / np.float32(255))[:, None]
    np.testing.assert_array_equal(x, exact)  # pixels / 255, as the data sets scale
    assert x.dtype == np.float32 and names == paths
    np.testing.assert_array_equal(digits_run.predict(x).argmax(1), digits_run.predict(exact).argmax(1))
    # a directory: its images in name order (and .npy arrays), other files skipped
    (tmp_path / "notes.txt").write_text("not an image")
    np.save(tmp_path / "more.npy", exact[:2])
    x_dir, names_dir = read_inputs(str(tmp_path), (1, 8, 8))
    more = os.path.join(str(tmp_path), "more.npy")
    assert names_dir == paths + [f"{more}[0]", f"{more}[1]"]
    np.testing.assert_array_equal(x_dir, np.concatenate([exact, exact[:2]]))
    np.testing.assert_array_equal(load_inputs(paths[0], (64,)), exact[:1].reshape(1, 64))  # flat inputs


def test_images_are_resized_converted_and_inverted(tmp_path):
    digit = eight_bit(datasets.digits().test.arrays[0][:1])[0]
    big = np.kron(digit, np.ones((4, 4), np.uint8))  # 32x32, blocks of 4x4
    Image.fromarray(big).save(tmp_path / "big.png")
    np.testing.assert_array_equal(
        load_inputs(str(tmp_path / "big.png"), (1, 8, 8))[0, 0], digit.astype(np.float32) / np.float32(255)
    )  # area average: exact
    smooth = np.asarray(Image.fromarray(digit).resize((28, 28), Image.BILINEAR))
    Image.fromarray(smooth).save(tmp_path / "mnist-sized.png")
    back = load_inputs(str(tmp_path / "mnist-sized.png"), (1, 8, 8))
    assert back.shape == (1, 1, 8, 8) and 0 <= back.min() and back.max() <= 1
    assert np.abs(back[0, 0] - digit / 255).mean() < 0.1  # the same digit, 28x28 -> 8x8
    # dark strokes on white, in colour with a transparent margin: grayscale, over white, inverted
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = (255 - digit)[..., None]
    rgba[..., 3] = 255
    rgba[0, :, 3] = 0  # a transparent first row reads as white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "ink.png")
    inverted = load_inputs(str(tmp_path / "ink.png"), (1, 8, 8), invert=True)[0, 0]
    expected = digit.astype(np.float32) / np.float32(255)
    expected[0] = 0.0
    np.testing.assert_allclose(inverted, expected, atol=1e-6)
    rgb = load_inputs(str(tmp_path / "ink.png"), (3, 4, 4))
    assert rgb.shape == (1, 3, 4, 4) and np.array_equal(rgb[0, 0], rgb[0, 2])
    Image.fromarray(digit.astype(np.uint16) * 257).save(tmp_path / "deep.png")  # 16-bit grayscale
    np.testing.assert_allclose(load_inputs(str(tmp_path / "deep.png"), (1, 8, 8))[0, 0], digit / 255, atol=1e-6)


def test_bad_inputs_name_the_file_and_what_was_expected(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("nothing to predict")
    cases = [
        ("notes.txt", (1, 8, 8), r"cannot read .*notes.txt as an image \(expected a .npy array or an image file"),
        ("broken.png", (1, 8, 8), r"cannot read .*broken.png as an image"),
        ("missing.png", (1, 8, 8), r"cannot read .*missing.png: No such file"),
        ("empty", (1, 8, 8), r"--input directory .*empty has no image files or .npy arrays \(read: .npy, .png"),
        ("ok.png", (2,), r"ok.png: an image file cannot be the model's input: it takes flat inputs of 2 features"),
        ("ok.png", (2, 8, 8), r"it takes images of 2 channels; image files fit a model trained on 1-channel"),
    ]
    for name, shape, message in cases:
        with pytest.raises(ConfigError, match=message):
            read_inputs(str(tmp_path / name), shape)
    bad = np.zeros((2, 1, 8, 8))
    bad[1, 0, 3, 4] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    with pytest.raises(ConfigError, match=r"inf.npy holds NaN or infinite values \(first at index \[1, 0, 3, 4\]\)"):
        read_inputs([str(tmp_path / "ok.png"), str(tmp_path / "inf.npy")], (1, 8, 8))
    np.save(tmp_path / "wrong.npy", np.zeros((3, 64)))
    with pytest.raises(ConfigError, match=r"--input has shape \(3, 64\); expected \(N,\) \+ \(1, 8, 8\) .*wrong.npy"):
        load_inputs(str(tmp_path / "wrong.npy"), (1, 8, 8))
