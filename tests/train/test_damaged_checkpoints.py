"""A damaged or foreign training checkpoint is a CheckpointError naming the file and what is wrong
(in Python), and one line with exit code 2 from `deepgrad train --resume` — never a traceback."""

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
from deepgrad import io
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.errors import CheckpointError, CheckpointMismatch, DeepgradError
from deepgrad.train import Trainer, presets


def trainer(hidden=(8,)):
    dg.manual_seed(0)
    model = presets.mlp((2,), 3, hidden=hidden)
    return Trainer(model, dg.optim.Adam(model.parameters(), lr=0.01), F.cross_entropy)


@pytest.fixture
def checkpoint(tmp_path):
    x, y = np.zeros((8, 2), np.float32), np.arange(8) % 3
    first = trainer()
    first.fit(DataLoader(TensorDataset(x, y), 4), epochs=1)
    path = tmp_path / "good.safetensors"
    first.save_checkpoint(str(path))
    return path, io.load_checkpoint(str(path))


def damaged(tmp_path, state, name="bad.safetensors"):
    path = tmp_path / name
    io.save_checkpoint(state, str(path))
    return str(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: [1, 2, 3], "not a training checkpoint"),
        (lambda s: 7, "not a training checkpoint"),
        (lambda s: {k: v for k, v in s.items() if k not in ("optimizer", "rng")}, r"it lacks \['optimizer', 'rng'\]"),
        (lambda s: {**s, "epoch": "three"}, "its epoch should be a non-negative int, got 'three'"),
        (lambda s: {**s, "global_step": -4}, "its global_step should be a non-negative int"),
        (lambda s: {**s, "history": {"epoch": 1}}, "its history should be a list"),
        (lambda s: {**s, "history": [1, 2]}, "its history should be a list of per-epoch dicts"),
        (
            lambda s: {**s, "optimizer": {"state": "garbage", "param_groups": 3}},
            "its training state cannot be restored",
        ),
        (lambda s: {**s, "rng": {"bit_generator": "nonsense"}}, "its training state cannot be restored"),
    ],
)
def test_damaged_checkpoints_are_clear_errors(tmp_path, checkpoint, change, message):
    _, state = checkpoint
    path = damaged(tmp_path, change(dict(state)))
    with pytest.raises(CheckpointError, match=message) as error:
        trainer().load_checkpoint(path)
    assert path in str(error.value) and isinstance(error.value, DeepgradError)


def test_a_checkpoint_of_another_model_is_a_mismatch(checkpoint):
    path, _ = checkpoint
    with pytest.raises(
        CheckpointMismatch,
        match=r"its model does not fit this one .*size mismatch .* another "
        r"--hidden or --model",
    ) as error:
        trainer(hidden=(16,)).load_checkpoint(str(path))
    assert isinstance(error.value, RuntimeError) and isinstance(error.value, DeepgradError)


def test_resuming_with_another_hidden_is_one_line(tmp_path):
    from deepgrad import cli

    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--hidden", "16", "--quiet", "--out", str(out)]) == 0
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepgrad",
            "train",
            "--resume",
            "--out",
            str(out),
            "--hidden",
            "32",
            "--epochs",
            "2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "--hidden 32 (the run has 16)" in done.stderr and "cannot change in a resumed run" in done.stderr
    import json

    assert json.loads((out / "config.json").read_text())["hidden"] == [16]  # the run's files are as they were


def test_weights_that_turn_non_finite_are_caught_before_any_checkpoint_saves_them(tmp_path):
    from deepgrad.errors import TrainingDiverged
    from deepgrad.train import Callback, ModelCheckpoint

    class PoisonInEpoch2(Callback):
        def on_step_end(self, trainer, logs):
            if trainer.global_step == 4:  # the last step of epoch 2: its loss was finite
                trainer.model[1].weight.data[0, 0] = np.inf

    x, y = np.zeros((8, 2), np.float32), np.arange(8) % 3
    run = trainer()
    run.callbacks += [PoisonInEpoch2(), ModelCheckpoint(str(tmp_path))]
    with pytest.raises(
        TrainingDiverged,
        match=r"the weights 1.weight became NaN or infinite during epoch 2 while "
        r"the loss stayed finite",
    ):
        run.fit(DataLoader(TensorDataset(x, y), 4), epochs=3)
    saved = io.load_checkpoint(str(tmp_path / "last.safetensors"))
    assert saved["epoch"] == 1 and np.isfinite(saved["model"]["1.weight"]).all()


def test_a_checkpoint_with_non_finite_weights_is_refused(tmp_path, checkpoint):
    _, state = checkpoint
    model = dict(state["model"])
    model["1.weight"] = np.full_like(model["1.weight"], np.nan)
    path = damaged(tmp_path, {**state, "model": model})
    with pytest.raises(CheckpointError, match=r"holds NaN or infinite weights \(1.weight\): the run had diverged"):
        trainer().load_checkpoint(path)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[1, 2]", "config.json: expected a JSON object of options, got list"),
        ('{"lr": "fast"}', "config.json: lr must be of type float, got 'fast'"),
        ('{"hidden": "wide"}', "config.json: hidden must be a list of integers, got 'wide'"),
        ("{oops", "config.json is not valid JSON"),
    ],
)
def test_resuming_from_a_damaged_config_is_one_line(capsys, tmp_path, text, fragment):
    from deepgrad import cli

    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--hidden", "8", "--quiet", "--out", str(out)]) == 0
    (out / "config.json").write_text(text)
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--out", str(out), "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_a_diverging_run_in_a_real_process_prints_one_line(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepgrad",
            "train",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--epochs",
            "1",
            "--hidden",
            "16",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # no RuntimeWarning lines before it
    assert done.stderr.startswith("deepgrad train: error: training loss became nan at step 2 (epoch 1)")
