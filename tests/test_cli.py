"""The command line, end to end: `deepgrad train | evaluate | predict` as subprocesses
(the console script and `python -m deepgrad`), and every kind of bad input: one
line on stderr, exit code 2, no traceback."""

import gzip
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import cli
from deepgrad.data import datasets
from deepgrad.train import config as train_config
from deepgrad.train import presets
from deepgrad.train import run as train_run
from tests.helpers import hide_threadpoolctl

RUN_FILES = {
    "config.json",
    "metrics.jsonl",
    "steps.jsonl",
    "summary.json",
    "curves.png",
    "model.safetensors",
    "checkpoints",
}
EPOCH_KEYS = {"epoch", "step", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
SMALL = ["--hidden", "32", "--quiet"]


def environment():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env.pop("DEEPGRAD_DATA", None)
    return env


def deepgrad(*args, cwd=None, module=False):
    """Run the installed console script (or ``python -m deepgrad``) in a subprocess."""
    script = shutil.which("deepgrad", path=os.path.dirname(sys.executable)) or shutil.which("deepgrad")
    command = [sys.executable, "-m", "deepgrad"] if module or script is None else [script]
    return subprocess.run(
        command + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=environment(), timeout=300
    )


@pytest.fixture(autouse=True)
def _work_in_tmp_path(tmp_path, monkeypatch):
    """Whatever a command writes relative to the working directory (runs/...) lands in tmp_path."""
    monkeypatch.chdir(tmp_path)


def run_main(capsys, *args):
    """Call ``cli.main`` in this process: (exit code, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def read_jsonl(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes() + array.tobytes()


def write_tiny_mnist(root, n_train=40, n_test=10, gzipped=False, bad_label=None):
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gzipped else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        if bad_label is not None:
            labels[1] = bad_label
        for kind, data in (("images-idx3", rng.integers(0, 256, (n, 28, 28))), ("labels-idx1", labels)):
            path = os.path.join(root, f"{split}-{kind}-ubyte{suffix}")
            with (gzip.open if gzipped else open)(path, "wb") as handle:
                handle.write(idx_bytes(data))
    return str(root)


# ----------------------------------------------------------------------------
# End to end, as subprocesses


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    result = deepgrad("train", "--epochs", 2, "--dropout", 0.1, "--out", run, *SMALL)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return run, result


def test_train_writes_every_file(digits_run):
    run, result = digits_run
    assert set(os.listdir(run)) == RUN_FILES
    assert {"last.safetensors", "best.safetensors"} <= set(os.listdir(run / "checkpoints"))
    assert not [name for name in os.listdir(run) if name.startswith(".") or name.endswith(".tmp")]

    config = read_json(run / "config.json")
    assert set(config) == set(train_config.OPTIONS)
    assert config["epochs"] == 2 and config["hidden"] == [32] and config["dropout"] == 0.1
    assert config["dataset"] == "digits" and config["optimizer"] == "adam"

    epochs = read_jsonl(run / "metrics.jsonl")
    assert [logs["epoch"] for logs in epochs] == [1, 2]
    for logs in epochs:
        assert set(logs) == EPOCH_KEYS
        assert 0 <= logs["val_accuracy"] <= 1 and logs["train_loss"] > 0 and logs["lr"] == config["lr"]

    summary = read_json(run / "summary.json")
    assert {"test_accuracy", "test_loss", "val_accuracy", "epochs", "train_seconds"} <= set(summary)
    assert summary["epochs"] == 2
    assert summary["val_accuracy"] == epochs[-1]["val_accuracy"]
    assert summary["train_seconds"] == pytest.approx(sum(logs["seconds"] for logs in epochs))
    assert 0.5 < summary["test_accuracy"] <= 1 and summary["test_loss"] > 0

    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "curves.png").stat().st_size > 10_000
    assert f"{summary['test_accuracy']:.2%}" in result.stdout  # the final table
    assert f"2 epochs in {summary['train_seconds']:.2f} s; run saved in {run}/" in result.stdout

    # the saved model is the trained one: it reproduces the reported test accuracy
    splits = datasets.digits()
    model = presets.mlp((1, 8, 8), 10, hidden=(32,), dropout=0.1)
    model.load_state_dict(dg.load(str(run / "model.safetensors")))
    model.eval()
    with dg.no_grad():
        logits = model(dg.tensor(splits.test.arrays[0])).data
    assert np.mean(logits.argmax(1) == splits.test.arrays[1]) == pytest.approx(summary["test_accuracy"])


def accuracy_row(stdout, split):
    rows = [line.split() for line in stdout.splitlines() if line.startswith(split + " ")]
    assert len(rows) == 1, stdout
    return rows[0][2]


@pytest.mark.parametrize("module", [False, True], ids=["console-script", "python-m"])
def test_evaluate_reports_the_saved_accuracy(digits_run, module):
    run, _ = digits_run
    result = deepgrad("evaluate", run, module=module)
    assert result.returncode == 0, result.stderr
    summary = read_json(run / "summary.json")
    assert accuracy_row(result.stdout, "test") == f"{summary['test_accuracy']:.2%}"
    assert accuracy_row(result.stdout, "val") == f"{summary['val_accuracy']:.2%}"
    assert accuracy_row(result.stdout, "train")  # the whole training split is evaluated too


def test_predict_prints_and_saves_classes(digits_run, tmp_path):
    run, _ = digits_run
    x = datasets.digits().test.arrays[0][:6]
    np.save(tmp_path / "x.npy", x)
    result = deepgrad("predict", run, "--input", tmp_path / "x.npy", "--output", tmp_path / "p.npy")
    assert result.returncode == 0, result.stderr
    predictions = np.load(tmp_path / "p.npy")
    model = presets.mlp((1, 8, 8), 10, hidden=(32,), dropout=0.1)
    model.load_state_dict(dg.load(str(run / "model.safetensors")))
    model.eval()
    with dg.no_grad():
        np.testing.assert_array_equal(predictions, model(dg.tensor(x)).data.argmax(1))
    assert result.stdout.splitlines() == [f"{i}\t{p}" for i, p in enumerate(predictions)]

    np.save(tmp_path / "one.npy", x[3])  # a single sample, without the batch axis
    single = deepgrad("predict", run, "--input", tmp_path / "one.npy", module=True)
    assert single.returncode == 0, single.stderr
    assert single.stdout.splitlines() == [f"0\t{predictions[3]}"]


def test_a_model_that_cannot_answer_does_not_answer(capsys, digits_run, tmp_path):
    good, _ = digits_run
    x = tmp_path / "x.npy"
    np.save(x, datasets.digits().test.arrays[0][:3])
    broken = tmp_path / "diverged"
    shutil.copytree(good, broken)
    weights = dg.load(str(broken / "model.safetensors"))
    weights[sorted(weights)[0]].flat[0] = np.nan
    dg.save(weights, str(broken / "model.safetensors"))
    for command in (["predict", broken, "--input", x], ["evaluate", broken]):
        assert_one_line_error(*run_main(capsys, *command)[::2], "NaN or infinite weights", "cannot answer")
    missing = run_main(capsys, "predict", good, "--input", x, "--output", tmp_path / "nowhere" / "p.npy")
    assert_one_line_error(*missing[::2], "nowhere", "does not exist")


def test_a_run_that_stopped_before_its_model_answers_with_its_best_checkpoint(capsys, digits_run, tmp_path):
    good, _ = digits_run
    stopped = tmp_path / "stopped"
    shutil.copytree(good, stopped)
    (stopped / "model.safetensors").unlink()
    code, out, err = run_main(capsys, "evaluate", stopped)
    assert code == 0 and "test" in out
    assert err.strip() == (
        f"deepgrad evaluate: note: {stopped} has no model.safetensors (the run stopped before it "
        "finished); using checkpoints/best.safetensors"
    )
    for name in os.listdir(stopped / "checkpoints"):
        (stopped / "checkpoints" / name).unlink()
    assert_one_line_error(*run_main(capsys, "evaluate", stopped)[::2], "has no model.safetensors and no checkpoint")


def test_predict_probabilities_top_k_and_images(digits_run, tmp_path):
    run, _ = digits_run
    x = datasets.digits().test.arrays[0][:4]
    np.save(tmp_path / "x.npy", x)
    proba = deepgrad("predict", run, "--input", tmp_path / "x.npy", "--proba", "--output", tmp_path / "p.npy")
    assert proba.returncode == 0, proba.stderr
    saved = np.load(tmp_path / "p.npy")
    assert saved.shape == (4, 10) and np.allclose(saved.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    lines = proba.stdout.splitlines()
    assert lines[0].split("\t") == ["input", *map(str, range(10))]
    printed = np.array([[float(v) for v in line.split("\t")[1:]] for line in lines[1:]])
    np.testing.assert_allclose(printed, saved, atol=5e-5)

    top = deepgrad("predict", run, "--input", tmp_path / "x.npy", "--top-k", 3)
    assert top.returncode == 0, top.stderr
    for line, row in zip(top.stdout.splitlines(), saved):
        name, *ranked = line.split("\t")
        best = np.argsort(-row)[:3]
        assert [entry.split()[0] for entry in ranked] == [str(c) for c in best]
        assert [float(entry.split()[1]) for entry in ranked] == pytest.approx(row[best], abs=5e-5)

    from PIL import Image

    image = tmp_path / "seven.png"
    Image.fromarray(np.round(x[0, 0] * 255).astype(np.uint8)).resize((28, 28)).save(image)
    pictured = deepgrad("predict", run, "--input", image, tmp_path / "x.npy")
    assert pictured.returncode == 0, pictured.stderr
    assert [line.split("\t")[0] for line in pictured.stdout.splitlines()] == [str(image)] + [
        f"{tmp_path / 'x.npy'}[{i}]" for i in range(4)
    ]
    both = deepgrad("predict", run, "--input", tmp_path / "x.npy", "--proba", "--top-k", "2")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    assert deepgrad("predict", run, "--input", tmp_path / "x.npy", "--top-k", "0").returncode == 2


def test_default_training_reaches_the_promised_accuracy(tmp_path):
    """The contract: digits reaches >= 97 % with the default epochs, >= 95 % after 3 epochs."""
    default = deepgrad("train", "--quiet", "--out", tmp_path / "default")
    assert default.returncode == 0, default.stderr
    summary = read_json(tmp_path / "default" / "summary.json")
    assert summary["epochs"] == train_config.OPTIONS["epochs"].default
    assert summary["test_accuracy"] >= 0.97, summary

    short = deepgrad("train", "--quiet", "--epochs", 3, "--out", tmp_path / "short")
    assert short.returncode == 0, short.stderr
    summary = read_json(tmp_path / "short" / "summary.json")
    assert summary["epochs"] == 3 and summary["test_accuracy"] >= 0.95, summary


def test_resume_continues_exactly(tmp_path):
    """Interrupted after 2 epochs and resumed to 3 (in a new process) = 3 epochs straight.
    Dropout and BatchNorm make the random state and the buffers matter."""
    options = ["--hidden", "24", "--dropout", "0.3", "--batch-norm", "--quiet"]
    straight = deepgrad("train", "--epochs", 3, "--out", tmp_path / "straight", *options)
    assert straight.returncode == 0, straight.stderr
    first = deepgrad("train", "--epochs", 2, "--out", tmp_path / "resumed", *options)
    assert first.returncode == 0, first.stderr
    resumed = deepgrad("train", "--out", tmp_path / "resumed", "--resume", "--epochs", 3, "--quiet")
    assert resumed.returncode == 0, resumed.stderr

    expected, got = (
        dg.load(str(tmp_path / "straight" / "model.safetensors")),
        dg.load(str(tmp_path / "resumed" / "model.safetensors")),
    )
    assert set(got) == set(expected)
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key

    def epochs(run):
        logs = read_jsonl(tmp_path / run / "metrics.jsonl")
        return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in logs]

    assert epochs("resumed") == epochs("straight") and len(epochs("straight")) == 3
    summary = read_json(tmp_path / "resumed" / "summary.json")
    assert summary["epochs"] == 3
    assert summary["test_accuracy"] == read_json(tmp_path / "straight" / "summary.json")["test_accuracy"]
    assert read_json(tmp_path / "resumed" / "config.json")["epochs"] == 3
    # the resumed (BatchNorm) model loads back for evaluation
    code = deepgrad("evaluate", tmp_path / "resumed").returncode
    assert code == 0


# ----------------------------------------------------------------------------
# In process: options, config files, other data sets and models


def test_train_other_datasets_and_models(capsys, tmp_path):
    code, out, err = run_main(capsys, "train", "--dataset", "spiral", "--epochs", 2, "--out", tmp_path / "s", *SMALL)
    assert code == 0, err
    assert read_json(tmp_path / "s" / "summary.json")["epochs"] == 2
    code, out, err = run_main(
        capsys,
        "train",
        "--model",
        "simple-cnn",
        "--epochs",
        1,
        "--batch-size",
        64,
        "--schedule",
        "cosine",
        "--out",
        tmp_path / "cnn",
        "--quiet",
    )
    assert code == 0, err
    code, out, err = run_main(capsys, "evaluate", tmp_path / "cnn")
    assert code == 0, err
    assert accuracy_row(out, "test") == f"{read_json(tmp_path / 'cnn' / 'summary.json')['test_accuracy']:.2%}"


def test_train_on_mnist_style_files(capsys, tmp_path):
    root = write_tiny_mnist(tmp_path / "data", n_train=5020, n_test=30)
    code, out, err = run_main(
        capsys,
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        root,
        "--epochs",
        1,
        "--hidden",
        "8",
        "--out",
        tmp_path / "run",
    )
    assert code == 0, err
    assert "mlp on mnist (20 train / 5000 val / 30 test)" in out
    assert read_json(tmp_path / "run" / "summary.json")["epochs"] == 1


def test_default_run_directory(capsys, tmp_path):
    code, out, err = run_main(capsys, "train", "--epochs", 1, *SMALL)
    assert code == 0, err
    (run,) = os.listdir(tmp_path / "runs")
    assert run.startswith("digits-mlp-")
    assert RUN_FILES <= set(os.listdir(tmp_path / "runs" / run))


def test_config_file_with_flag_overrides(capsys, tmp_path):
    config = tmp_path / "train.toml"
    config.write_text('epochs = 3\nhidden = [16]\nlr = 1\noptimizer = "sgd"\nmomentum = 0.5\nbatch_norm = true\n')
    code, out, err = run_main(capsys, "train", "--config", config, "--epochs", 1, "--out", tmp_path / "run", "--quiet")
    assert code == 0, err
    saved = read_json(tmp_path / "run" / "config.json")
    assert saved["epochs"] == 1  # the flag wins
    assert saved["hidden"] == [16] and saved["optimizer"] == "sgd" and saved["momentum"] == 0.5
    assert saved["lr"] == 1.0 and isinstance(saved["lr"], float) and saved["batch_norm"] is True
    assert len(read_jsonl(tmp_path / "run" / "metrics.jsonl")) == 1


def test_an_existing_run_directory_needs_overwrite(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    code, out, err = run_main(capsys, "train", "--epochs", 1, "--out", run, *SMALL)
    assert_one_line_error(code, err, "deepgrad train: error:", "exists", "--overwrite")
    assert os.listdir(run) == ["notes.txt"]
    code, out, err = run_main(capsys, "train", "--epochs", 1, "--out", run, "--overwrite", *SMALL)
    assert_one_line_error(code, err, "--overwrite replaces only a deepgrad run directory", "notes.txt")
    assert os.listdir(run) == ["notes.txt"]  # not a run: --overwrite changes nothing
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_main(capsys, "train", "--epochs", 1, "--out", empty, *SMALL)[0] == 0  # an empty one is fine


def test_a_run_that_cannot_start_leaves_no_directory(capsys, tmp_path):
    run = tmp_path / "run"
    code, out, err = run_main(
        capsys, "train", "--dataset", "mnist", "--data-dir", tmp_path / "nothing", "--out", run, "--quiet"
    )
    assert_one_line_error(code, err, "not found")
    assert not run.exists()
    code, out, err = run_main(capsys, "train", "--epochs", 1, "--out", run, *SMALL)  # no --overwrite needed
    assert code == 0, err


# ----------------------------------------------------------------------------
# Bad input: one line on stderr, exit code 2


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--dataset", "imagenet"], ["unknown dataset 'imagenet'", "digits, mnist, fashion-mnist, spiral"]),
        (["--model", "vgg"], ["unknown model 'vgg'", "mlp", "simple-cnn", "resnet-small"]),
        (["--optimizer", "lbfgs"], ["unknown optimizer 'lbfgs'", "sgd, momentum, adagrad, rmsprop, adam, adamw"]),
        (["--schedule", "warm"], ["unknown schedule 'warm'", "none, linear-decay, step, cosine"]),
        (["--activation", "swish"], ["unknown activation 'swish'", "relu"]),
        (["--epochs", "0"], ["epochs must be positive"]),
        (["--lr", "-1"], ["lr must be positive"]),
        (["--dropout", "1.5"], ["dropout must be in [0, 1]"]),
        (["--optimizer", "sgd", "--momentum", "-1"], ["momentum must be in [0, 1), got -1.0"]),
        (["--momentum", "2"], ["momentum must be in [0, 1), got 2.0"]),
        (["--clip-grad-norm", "0"], ["clip_grad_norm must be positive, got 0.0"]),
        (["--final-lr", "0.1", "--lr", "0.01"], ["final_lr 0.1 is above lr 0.01"]),
        (["--patience", "0"], ["patience must be at least 1, got 0"]),
        (["--hidden", "0"], ["hidden widths must be at least 1, got [0]"]),
        (["--hidden", "64,-5"], ["hidden widths must be at least 1, got [64, -5]"]),
        (["--lr", "nan"], ["lr must be a finite number, got nan"]),
        (["--dataset", "spiral", "--model", "simple-cnn"], ["spiral", "--model mlp"]),
        (["--device", "tpu"], ["--device tpu", "unknown device 'tpu'"]),
    ],
)
def test_bad_train_options(capsys, tmp_path, args, fragments):
    code, out, err = run_main(capsys, "train", "--out", tmp_path / "run", "--quiet", *args)
    assert_one_line_error(code, err, "deepgrad train: error:", *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(dg.backend.is_available("cuda"), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_one_line_error(capsys, tmp_path):
    code, out, err = run_main(capsys, "train", "--out", tmp_path / "run", "--quiet", "--device", "cuda")
    assert_one_line_error(code, err, "--device cuda", "CuPy")
    assert not (tmp_path / "run").exists()


def test_train_on_another_device_matches_the_cpu(capsys, tmp_path):
    """The strict fake GPU of the tests (registered by conftest) runs the whole command; as it
    computes with NumPy, the run is the CPU's to the last bit."""
    runs = {}
    for device in ("cpu", "fake"):
        code, out, err = run_main(
            capsys, "train", "--out", tmp_path / device, "--epochs", "2", "--device", device, *SMALL
        )
        assert code == 0, err
        runs[device] = read_json(tmp_path / device / "summary.json")
        assert read_json(tmp_path / device / "config.json")["device"] == device
    for key in ("train_loss", "val_loss", "test_loss", "test_accuracy"):
        assert runs["fake"][key] == runs["cpu"][key], key


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
        (["--hidden", "a,b"], "argument --hidden: --hidden: expected integers like 256,128"),
        (["--epochs", "2.5"], "argument --epochs: invalid int value: '2.5'"),
    ],
)
def test_unparsable_train_options(capsys, tmp_path, args, fragment):
    code, out, err = run_main(capsys, "train", "--out", tmp_path / "run", *args)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"deepgrad train: error: {fragment}"  # after argparse's usage lines
    assert not (tmp_path / "run").exists()


def test_resume_needs_a_run_directory(capsys):
    assert_one_line_error(*run_main(capsys, "train", "--resume")[::2], "--resume needs --out RUN_DIR")


@pytest.mark.parametrize(
    "text,fragments",
    [
        (
            'epochs = 2\nlearning_rate = 0.1\ncolour = "red"\n',
            ["unknown keys ['colour', 'learning_rate']", "valid keys:", "batch_size"],
        ),
        ('[optimizer]\nname = "adam"\n', ["optimizer must be of type str"]),
        ('epochs = "3"\n', ["epochs must be of type int, got '3'"]),
        ("epochs = 2.5\n", ["epochs must be of type int"]),
        ('lr = "fast"\n', ["lr must be of type float"]),
        ('batch_norm = "yes"\n', ["batch_norm must be of type bool"]),
        ("patience = true\n", ["patience must be of type int, got True"]),
        ('hidden = [64, "x"]\n', ["hidden must be a list of integers"]),
        ("hidden = 64\n", ["hidden must be a list of integers"]),
        ('clip_grad_norm = "x"\n', ["clip_grad_norm must be of type float"]),
        ("epochs = \n", ["is not valid TOML"]),
    ],
)
def test_bad_config_files(capsys, tmp_path, text, fragments):
    config = tmp_path / "train.toml"
    config.write_text(text)
    code, out, err = run_main(capsys, "train", "--config", config, "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(code, err, str(config), *fragments)
    code, out, err = run_main(
        capsys, "train", "--config", tmp_path / "missing.toml", "--out", tmp_path / "run", "--quiet"
    )
    assert_one_line_error(code, err, "config file not found")


def test_bad_data_directories(capsys, tmp_path):
    def train(root, *extra):
        return run_main(
            capsys, "train", "--dataset", "mnist", "--data-dir", root, "--out", tmp_path / "run", "--quiet", *extra
        )

    assert_one_line_error(*train(tmp_path / "absent")[::2], "mnist: train-images-idx3-ubyte.gz", "not found")
    assert_one_line_error(
        *run_main(
            capsys, "train", "--dataset", "fashion-mnist", "--data-dir", tmp_path, "--out", tmp_path / "run", "--quiet"
        )[::2],
        "fashion-mnist",
        "not found",
    )

    truncated = write_tiny_mnist(tmp_path / "truncated")
    path = os.path.join(truncated, "t10k-images-idx3-ubyte")
    with open(path, "r+b") as handle:
        handle.truncate(1000)
    assert_one_line_error(*train(truncated)[::2], "t10k-images-idx3-ubyte is truncated")

    wrong_md5 = write_tiny_mnist(tmp_path / "md5", gzipped=True)  # canonical names, other content
    assert_one_line_error(*train(wrong_md5)[::2], "wrong MD5")

    bad_labels = write_tiny_mnist(tmp_path / "labels", bad_label=12)
    assert_one_line_error(*train(bad_labels)[::2], "labels must be 0..9, found 12")

    too_small = write_tiny_mnist(tmp_path / "small")  # 40 samples: nothing left after 5000 for validation
    assert_one_line_error(*train(too_small)[::2], "val_size=5000")
    assert not (tmp_path / "run").exists()


def test_bad_run_directories_and_checkpoints(capsys, tmp_path, digits_run):
    good, _ = digits_run
    assert_one_line_error(*run_main(capsys, "evaluate", tmp_path / "nowhere")[::2], "config.json not found")

    def copy(name):
        run = tmp_path / name
        shutil.copytree(good, run)
        return run

    garbage = copy("garbage")
    (garbage / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(2000))
    assert_one_line_error(*run_main(capsys, "evaluate", garbage)[::2], "not a readable safetensors file")

    foreign = copy("foreign")
    dg.save({"encoder.weight": np.zeros((3, 3), np.float32)}, str(foreign / "model.safetensors"))
    assert_one_line_error(
        *run_main(capsys, "evaluate", foreign)[::2], "missing keys", "unexpected keys ['encoder.weight']"
    )

    broken_config = copy("config")
    (broken_config / "config.json").write_text("{not json")
    assert_one_line_error(*run_main(capsys, "evaluate", broken_config)[::2], "config.json is not valid JSON")
    (broken_config / "config.json").write_text('{"hidden": "wide"}')
    assert_one_line_error(*run_main(capsys, "evaluate", broken_config)[::2], "hidden must be a list of integers")

    # --resume from a corrupted or foreign last checkpoint
    for name, content in (("resume-garbage", np.random.default_rng(1).bytes(3000)), ("resume-foreign", None)):
        run = copy(name)
        last = run / "checkpoints" / "last.safetensors"
        if content is None:
            dg.save({"w": np.zeros(2)}, str(last))
        else:
            last.write_bytes(content)
        code, out, err = run_main(capsys, "train", "--out", run, "--resume", "--epochs", 3, "--quiet")
        assert_one_line_error(code, err, "last.safetensors")
        assert "not a readable safetensors file" in err or "not a deepgrad checkpoint" in err
    assert_one_line_error(
        *run_main(capsys, "train", "--out", tmp_path / "fresh", "--resume")[::2], "fresh/config.json not found"
    )
    no_checkpoint = copy("no-checkpoint")
    os.remove(no_checkpoint / "checkpoints" / "last.safetensors")
    assert_one_line_error(
        *run_main(capsys, "train", "--out", no_checkpoint, "--resume")[::2], "has no checkpoints/last.safetensors"
    )
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(
        *run_main(capsys, "train", "--out", tmp_path / "afile", "--quiet")[::2], "is a file, not a directory"
    )


def test_bad_predict_inputs(capsys, tmp_path, digits_run):
    run, _ = digits_run
    np.save(tmp_path / "wrong.npy", np.zeros((3, 64), np.float32))
    (tmp_path / "garbage.npy").write_bytes(b"\x00" * 100)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases = [
        ("wrong.npy", "--input has shape (3, 64); expected (N,) + (1, 8, 8)"),
        ("garbage.npy", "cannot read"),
        ("objects.npy", "cannot read"),
        ("missing.npy", "cannot read"),
    ]
    for name, fragment in cases:
        code, out, err = run_main(capsys, "predict", run, "--input", tmp_path / name)
        assert_one_line_error(code, err, "deepgrad predict: error:", fragment)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["train", "--dataset", "imagenet", "--quiet"], "unknown dataset 'imagenet'; valid: digits"),
        (["evaluate", "NOWHERE"], "config.json not found"),
        (["train", "--dataset", "mnist", "--data-dir", "NOWHERE", "--quiet"], "not found"),
    ],
)
def test_errors_from_a_real_process_are_one_line(tmp_path, args, fragment):
    result = deepgrad(*[str(tmp_path / "x") if a == "NOWHERE" else a for a in args], cwd=tmp_path)
    assert_one_line_error(result.returncode, result.stderr, fragment)
    assert result.stdout == ""
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------
# --threads


@pytest.mark.parametrize("by", [None, "ops", "blas"])
def test_threads_option_sets_the_threads(capsys, tmp_path, monkeypatch, by):
    calls = []
    monkeypatch.setattr(train_run, "set_num_threads", lambda n, by: calls.append((n, by)))
    given = ["--threads-by", by] if by else []
    code, out, err = run_main(
        capsys, "train", "--out", tmp_path / "run", "--epochs", "1", "--threads", "2", *given, *SMALL
    )
    assert code == 0, err
    assert "\n1 epoch in " in out
    assert calls == [(2, by or "ops")]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["threads"], saved["threads_by"]) == (2, by)


def test_an_unknown_threads_by_is_a_one_line_error(capsys, tmp_path):
    code, out, err = run_main(capsys, "train", "--out", tmp_path / "run", "--quiet", "--threads-by", "gpu")
    assert_one_line_error(code, err, "deepgrad train: error:", "unknown threads_by 'gpu'; valid: ops, blas")
    assert not (tmp_path / "run").exists()


def test_threads_unset_leaves_the_blas_alone(capsys, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(train_run, "set_num_threads", lambda n, by: calls.append((n, by)))
    code, out, err = run_main(capsys, "train", "--out", tmp_path / "run", "--epochs", "1", *SMALL)
    assert code == 0, err
    assert calls == []


@pytest.mark.parametrize("threads", ["0", "-2"])
def test_bad_thread_counts(capsys, tmp_path, threads):
    code, out, err = run_main(capsys, "train", "--out", tmp_path / "run", "--quiet", "--threads", threads)
    assert_one_line_error(code, err, "deepgrad train: error:", f"threads must be at least 1, got {threads}")
    assert not (tmp_path / "run").exists()


def test_threads_without_threadpoolctl_is_a_one_line_error(capsys, tmp_path, monkeypatch):
    hide_threadpoolctl(monkeypatch)
    code, out, err = run_main(capsys, "train", "--out", tmp_path / "run", "--quiet", "--threads", "1")
    assert_one_line_error(code, err, "--threads", "pip install threadpoolctl")
    assert not (tmp_path / "run").exists()


def test_train_with_threads_in_a_real_process(tmp_path):
    done = deepgrad("train", "--out", tmp_path / "run", "--epochs", "1", "--threads", "1", *SMALL)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["threads"] == 1


# ----------------------------------------------------------------------------
# User errors are one line; bugs keep their traceback


def test_a_diverging_run_is_a_one_line_error(capsys, tmp_path):
    code, out, err = run_main(
        capsys, "train", "--optimizer", "sgd", "--lr", "1e30", "--epochs", 1, "--out", tmp_path / "run", *SMALL
    )
    assert_one_line_error(
        code, err, "deepgrad train: error: training loss became nan at step 2 (epoch 1)", "Try a lower learning rate"
    )


def test_an_internal_error_is_not_disguised_as_a_user_error(capsys, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside")

    monkeypatch.setattr(cli, "build_run", broken)
    with pytest.raises(ValueError, match="a bug deep inside"):
        cli.main(["train", "--out", str(tmp_path / "run"), "--quiet"])


def test_an_internal_error_in_a_real_process_shows_its_traceback(tmp_path):
    program = (
        "import sys; from deepgrad import cli; from deepgrad.train import presets; "
        "presets.PRESETS['mlp'] = lambda *args, **kwargs: 1 / 0; sys.exit(cli.main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, "train", "--quiet", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "ZeroDivisionError" in result.stderr
    assert not (tmp_path / "run").exists()


def test_monitor_records_diagnostics_and_warns(capsys, tmp_path):
    code, out, err = run_main(
        capsys,
        "train",
        "--monitor",
        "--monitor-every",
        10,
        "--epochs",
        1,
        "--activation",
        "sigmoid",
        "--hidden",
        "32,32,32,32,32,32,32",
        "--out",
        tmp_path / "run",
        "--quiet",
    )
    assert code == 0, err
    records = read_jsonl(tmp_path / "run" / "diagnostics.jsonl")
    steps = len(datasets.digits().train) // 32 + 1  # 40 steps: 1, 11, 21, 31 sampled
    assert [(r["kind"], r["step"]) for r in records] == [
        (kind, step) for step in range(1, steps + 1, 10) for kind in ("activations", "gradients")
    ]
    assert "diagnostics.jsonl" in out
    assert "deepgrad: warning: the gradients vanish" in err and err.count("warning") == 1
    code, out, err = run_main(capsys, "train", "--monitor", "--monitor-every", 0, "--out", tmp_path / "bad")
    assert_one_line_error(code, err, "monitor_every must be at least 1, got 0")


def test_without_a_terminal_progress_is_plain_lines(tmp_path):
    done = deepgrad("train", "--epochs", 2, "--hidden", 16, "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(":")[0] for line in lines if " done: " in line] == ["epoch 1/2 done", "epoch 2/2 done"]
    assert all("train_loss " in line and "val_accuracy " in line for line in lines if " done: " in line)
