"""Training runs as a library API: the option schema (train/config.py) and build_run/load_run
(train/run.py), which `deepgrad train`, the experiments and the search share."""

import json
import math
import os

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import ConfigError, DeepgradError
from deepgrad.data.inputs import load_inputs
from deepgrad.train import HistoryWriter, Trainer, build_run, load_run
from deepgrad.train import config as options

SMALL = {"hidden": [16], "epochs": 2}


def read_jsonl(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle]


# ----------------------------------------------------------------------------
# The schema


def test_resolve_merges_layers_over_the_defaults():
    config = options.resolve({"lr": 1, "epochs": 3}, {"epochs": 5, "momentum": None})
    assert config == {**options.defaults(), "lr": 1.0, "epochs": 5}
    assert isinstance(config["lr"], float)
    assert set(config) == set(options.OPTIONS)


@pytest.mark.parametrize(
    "given,message",
    [
        ({"colour": "red"}, "config: unknown keys ['colour']; valid keys: dataset, data_dir"),
        ({"epochs": "3"}, "config: epochs must be of type int, got '3'"),
        ({"patience": True}, "config: patience must be of type int, got True"),
        ({"hidden": [8, 2.5]}, "config: hidden must be a list of integers"),
        ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'; valid: sgd, momentum, adagrad, rmsprop, adam, adamw"),
        ({"schedule": "warm"}, "unknown schedule 'warm'; valid: none, linear-decay, step, cosine"),
        ({"batch_size": 0}, "batch_size must be positive, got 0"),
        ({"lr": float("nan")}, "lr must be a finite number, got nan"),
        ({"lr": float("inf")}, "lr must be a finite number, got inf"),
        ({"final_lr": -float("inf")}, "final_lr must be a finite number, got -inf"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
        ({"dropout": -0.1}, "dropout must be in [0, 1], got -0.1"),
        ({"threads": 0}, "threads must be at least 1, got 0"),
        ({"device": "tpu"}, "--device tpu: unknown device 'tpu'"),
    ],
)
def test_bad_options_are_config_errors(given, message):
    with pytest.raises(ConfigError) as error:
        options.resolve(given)
    assert message in str(error.value)
    assert isinstance(error.value, DeepgradError) and isinstance(error.value, ValueError)


def test_data_paths_are_made_absolute_so_a_run_loads_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = options.resolve({"data_dir": "idx", "dataset": "mnist"})
    assert config["data_dir"] == str(tmp_path / "idx")
    assert options.resolve({"data": "~/mine.npz"})["data"] == os.path.expanduser("~/mine.npz")


def test_every_option_is_in_one_help_group_and_has_a_resume_rule():
    grouped = [name for names in options.GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(options.OPTIONS)
    assert not set(options.RESUME_FREE) & set(options.RESUME_OVERRIDABLE)
    assert set(options.RESUME_FREE + options.RESUME_OVERRIDABLE) <= set(options.OPTIONS)


def test_every_option_has_a_default_of_its_type_and_help():
    for name, option in options.OPTIONS.items():
        assert option.help, name
        assert option.default is None or isinstance(option.default, option.type), name
        if option.choices is not None:
            assert option.default in option.choices, name
    assert options.validate({}) == options.defaults()


def test_load_file_reads_toml_with_types_checked(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('epochs = 4\nlr = 1\nhidden = [8, 4]\noptimizer = "sgd"\n')
    assert options.load_file(str(path)) == {"epochs": 4, "lr": 1.0, "hidden": [8, 4], "optimizer": "sgd"}
    path.write_text("epochs = 2.5\n")
    with pytest.raises(ConfigError, match=f"config file {path}: epochs must be of type int"):
        options.load_file(str(path))


def test_load_saved_ignores_unknown_keys_and_refuses_what_is_not_a_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 3, "written_by": "a later version"}))
    assert options.load_saved(str(path)) == {"epochs": 3}
    for text, message in (
        ("[1, 2]", "expected a JSON object of options, got list"),
        ('{"lr": "fast"}', "lr must be of type float"),
        ("{oops", "is not valid JSON"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            options.load_saved(str(path))


# ----------------------------------------------------------------------------
# build_run


def test_build_run_from_a_dict_trains_without_writing_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = build_run(
        {**SMALL, "optimizer": "sgd", "lr": 0.1, "schedule": "cosine", "clip_grad_norm": 1.0}, progress=False
    )
    assert run.directory is None and run.config["optimizer"] == "sgd"
    assert isinstance(run.optimizer, dg.optim.SGD) and run.optimizer.param_groups[0]["lr"] == 0.1
    assert run.trainer.clip_grad_norm == 1.0 and run.trainer.learning_rate.scheduler is not None
    assert HistoryWriter not in {type(c) for c in run.trainer.callbacks}
    summary = run.fit()
    assert summary["epochs"] == 2 and 0.5 < summary["test_accuracy"] <= 1
    last = 2 * len(run.loaders[0]) - 1  # the last step's rate, near the cosine's final 0
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * (1 + math.cos(math.pi * last / (last + 1))) / 2)
    assert os.listdir(tmp_path) == []
    evaluated = run.evaluate()
    assert set(evaluated) == {"train", "val", "test"}
    assert evaluated["test"]["accuracy"] == summary["test_accuracy"]
    assert run.predict(run.splits.test.arrays[0][:5]).shape == (5, 10)


def test_the_same_config_gives_the_same_run():
    first, second = (build_run(SMALL, progress=False).fit() for _ in range(2))
    for key in ("train_loss", "val_loss", "test_loss", "test_accuracy"):
        assert first[key] == second[key], key


def test_build_run_from_a_toml_file_writes_the_run_directory(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("epochs = 2\nhidden = [16]\nbatch_norm = true\ndropout = 0.1\n")
    out = tmp_path / "run"
    run = build_run(options.load_file(str(path)), out=str(out), progress=False)
    assert sorted(os.listdir(out)) == ["checkpoints", "config.json"]  # made before fit
    saved = json.loads((out / "config.json").read_text())
    assert saved == run.config and saved["batch_norm"] is True and saved["epochs"] == 2
    summary = run.fit()
    assert {"metrics.jsonl", "summary.json", "model.safetensors", "curves.png"} <= set(os.listdir(out))
    assert [logs["epoch"] for logs in read_jsonl(out / "metrics.jsonl")] == [1, 2]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert run.describe().startswith("mlp on digits (1257 train / 180 val / 360 test), adam lr=0.003, 2 epochs")

    loaded = load_run(str(out))
    assert loaded.optimizer is None
    assert loaded.evaluate(("test",))["test"]["accuracy"] == summary["test_accuracy"]
    np.testing.assert_array_equal(loaded.predict(run.splits.test.arrays[0]), run.predict(run.splits.test.arrays[0]))
    with pytest.raises(ConfigError, match="loaded to evaluate and predict"):
        loaded.fit()


def test_resume_overrides_the_saved_options_with_the_given_ones(tmp_path):
    out = str(tmp_path / "run")
    build_run({**SMALL, "lr": 0.01}, out=out, progress=False).fit()
    resumed = build_run({"epochs": 3}, out=out, resume=True, progress=False)
    assert resumed.config["epochs"] == 3 and resumed.config["lr"] == 0.01 and resumed.config["hidden"] == [16]
    assert resumed.fit()["epochs"] == 3
    assert [logs["epoch"] for logs in read_jsonl(os.path.join(out, "metrics.jsonl"))] == [1, 2, 3]
    with pytest.raises(ConfigError, match="resume needs the directory of the run"):
        build_run({}, resume=True)


def test_a_resumed_run_lists_each_epoch_once_after_a_crash_between_metrics_and_checkpoint(tmp_path):
    """A line written for an epoch whose checkpoint never came (a kill between the two) is replaced
    by the history of the checkpoint the run resumes from."""
    out = tmp_path / "run"
    build_run(SMALL, out=str(out), progress=False).fit()
    metrics = out / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join(lines + [lines[-1].replace('"epoch": 2', '"epoch": 3')]) + "\n")  # epoch 3 logged
    resumed = build_run({"epochs": 3}, out=str(out), resume=True, progress=False)
    resumed.fit()
    epochs = read_jsonl(metrics)
    assert [logs["epoch"] for logs in epochs] == [1, 2, 3]
    assert [json.dumps(logs) for logs in epochs[:2]] == lines  # the first two exactly as first written
    assert epochs == resumed.trainer.history.epochs


def test_bad_runs_are_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"model 'simple-cnn' needs images \(C, H, W\); spiral has inputs of shape"):
        build_run({"dataset": "spiral", "model": "simple-cnn"}, out=str(out))
    with pytest.raises(ConfigError, match=r"momentum must be in \[0, 1\), got -1.0"):
        build_run({"optimizer": "sgd", "momentum": -1}, out=str(out))
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="exists and is not empty; pass --overwrite"):
        build_run(SMALL, out=str(out))
    assert os.listdir(out) == ["notes.txt"]


def test_extra_callbacks_join_the_run():
    seen = []

    class Epochs(dg.train.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            seen.append(epoch)

    run = build_run({**SMALL, "epochs": 1}, progress=False, callbacks=[Epochs()])
    assert isinstance(run.trainer, Trainer)
    run.fit()
    assert seen == [1]


def test_load_inputs_checks_shape_and_values(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((2, 1, 8, 8), np.float64))
    assert load_inputs(str(tmp_path / "ok.npy"), (1, 8, 8)).dtype == np.float32
    bad = np.zeros((2, 1, 8, 8))
    bad[1, 0, 3, 4] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ConfigError, match=r"holds NaN or infinite values \(first at index \[1, 0, 3, 4\]\)"):
        load_inputs(str(tmp_path / "nan.npy"), (1, 8, 8))
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    with pytest.raises(ConfigError, match="holds <U1 values; expected numbers"):
        load_inputs(str(tmp_path / "text.npy"), (1, 8, 8))


def test_model_options_init_residual_and_train_size():
    run = build_run(
        {
            "hidden": [32, 32, 32],
            "init": "normal",
            "init_std": 1.0,
            "residual": True,
            "activation": "sigmoid",
            "train_size": 300,
        },
        progress=False,
    )
    linears = [m for m in run.model.modules() if isinstance(m, dg.nn.Linear)]
    assert len(linears) == 4
    assert 0.9 < float(np.std(linears[1].weight.data)) < 1.1  # hidden layers: N(0, 1)
    assert float(np.std(linears[-1].weight.data)) < 0.5  # the output layer keeps its default
    assert sum(isinstance(m, dg.nn.Residual) for m in run.model.modules()) == 2
    assert len(run.splits.train) == 300 and len(run.loaders[0]) == 10
    whole = build_run({}, progress=False).splits.train
    np.testing.assert_array_equal(run.splits.train.arrays[1], whole.arrays[1][:300])
    he = build_run({"hidden": [64], "init": "he"}, progress=False).model[1].weight.data
    assert float(np.std(he)) == pytest.approx(np.sqrt(2 / 64), rel=0.1)
    with pytest.raises(ConfigError, match=r"--residual needs equal --hidden widths .* got \[32, 16\]"):
        build_run({"hidden": [32, 16], "residual": True})
    with pytest.raises(ConfigError, match="train_size 5000 is more than the 1257 training samples"):
        build_run({"train_size": 5000})
    with pytest.raises(ConfigError, match="unknown init 'glorot'; valid: auto, he, xavier, lecun, normal"):
        build_run({"init": "glorot"})


def test_resume_with_a_new_learning_rate_uses_it(tmp_path):
    out = str(tmp_path / "run")
    build_run({**SMALL, "epochs": 1, "lr": 0.01}, out=out, progress=False).fit()
    resumed = build_run({"epochs": 2, "lr": 0.001}, out=out, resume=True, override=True, progress=False)
    resumed.fit()
    assert resumed.trainer.history["lr"] == [0.01, 0.001] and resumed.config["lr"] == 0.001
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr"] == 0.001

    scheduled = str(tmp_path / "cosine")
    first = build_run(
        {**SMALL, "epochs": 4, "lr": 0.1, "schedule": "cosine"}, out=scheduled, progress=False, callbacks=[StopAfter(2)]
    )
    first.fit()
    continued = build_run({"lr": 0.05}, out=scheduled, resume=True, override=True, progress=False)
    continued.fit()
    policy = continued.trainer.learning_rate
    assert policy.base_lrs == [0.05]  # the schedule goes on from its step with the new base rate
    steps, schedule = len(continued.loaders[0]), policy.scheduler
    assert continued.trainer.history["lr"][2:] == [
        schedule.lr_at(3 * steps - 1, 0.05),
        schedule.lr_at(4 * steps - 1, 0.05),
    ]


class StopAfter(dg.train.Callback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, trainer, epoch, logs):
        trainer.stop_training = trainer.stop_training or epoch == self.epochs


def test_keep_best_puts_the_lowest_val_loss_epoch_in_model_safetensors(tmp_path):
    options = {"hidden": [64], "train_size": 100, "epochs": 30, "lr": 0.01}  # overfits: val_loss turns up
    out = tmp_path / "best"
    run = build_run(options, out=str(out), progress=False)
    summary = run.fit()
    val_losses = run.trainer.history["val_loss"]
    assert summary["keep"] == "best" and summary["kept_epoch"] == 1 + int(np.argmin(val_losses)) < 30
    assert summary["val_loss"] == min(val_losses) and json.loads((out / "summary.json").read_text()) == summary
    saved = dg.load(str(out / "model.safetensors"))
    best = dg.io.load_checkpoint(str(out / "checkpoints" / "best.safetensors"))["model"]
    assert all(np.array_equal(saved[k], best[k]) for k in saved)
    assert load_run(str(out)).evaluate(("test",))["test"]["accuracy"] == summary["test_accuracy"]
    assert load_run(str(out), checkpoint="best").evaluate(("test",)) == load_run(str(out)).evaluate(("test",))
    last = build_run({**options, "keep": "last"}, out=str(tmp_path / "last"), progress=False).fit()
    assert last["kept_epoch"] == 30 and last["test_loss"] != summary["test_loss"]
    assert load_run(str(out), checkpoint="last").evaluate(("test",))["test"]["loss"] == pytest.approx(last["test_loss"])


def test_keep_best_without_a_directory_and_across_a_resume(tmp_path, capsys):
    options = {"hidden": [64], "train_size": 100, "lr": 0.01}
    in_memory = build_run({**options, "epochs": 30}, progress=False).fit()
    out = str(tmp_path / "run")
    build_run({**options, "epochs": 25}, out=out, progress=False).fit()
    resumed = build_run({"epochs": 30}, out=out, resume=True, progress=False).fit()
    assert resumed["kept_epoch"] == in_memory["kept_epoch"] < 25  # the best epoch came before the resume
    assert resumed["test_accuracy"] == in_memory["test_accuracy"]
    stopped = build_run({**options, "epochs": 30, "patience": 3}, progress=None).fit()
    err = capsys.readouterr().err
    assert "early stopping: val_loss has not improved for 3 epochs" in err
    assert f"stopped after epoch {stopped['epochs']}" in err


BLOCK_IMPORTS = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"No module named {{name!r}} (blocked by the test)")
sys.meta_path.insert(0, Missing())
"""
EXTRAS = [
    "matplotlib",
    "tqdm",
    "safetensors",
    "threadpoolctl",
    "scipy",
    "tensorboardX",
    "tensorboard",
    "PIL",
    "torch",
    "ray",
    "pandas",
    "cupy",
    "crc32c",
]


def run_python(code, blocked):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", BLOCK_IMPORTS.format(blocked=set(blocked)) + code],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_core_trains_with_numpy_alone():
    done = run_python(
        "from deepgrad.train import build_run\n"
        "summary = build_run({'hidden': [32], 'train_size': 512, 'epochs': 2}, progress=False).fit()\n"
        "print(summary['test_accuracy'] > 0.5)",
        EXTRAS,
    )
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr


def test_a_run_without_matplotlib_saves_everything_but_its_figure(tmp_path):
    done = run_python(
        "from deepgrad.train import build_run\n"
        f"build_run({{'hidden': [16], 'train_size': 256, 'epochs': 1}}, out={str(tmp_path / 'run')!r}, "
        "progress=False).fit()",
        ["matplotlib"],
    )
    assert done.returncode == 0, done.stderr
    assert "matplotlib is not installed, so curves.png was not drawn" in done.stderr
    assert {"model.safetensors", "summary.json"} <= set(os.listdir(tmp_path / "run"))
    assert not (tmp_path / "run" / "curves.png").exists()


def test_batch_norm_drops_a_last_training_batch_of_one_sample():
    """1257 digits in batches of 8 leave one sample: batch norm has no statistics for it."""
    run = build_run({"batch_norm": True, "batch_size": 8, "epochs": 1, "hidden": [16]}, progress=False)
    assert len(run.splits.train) % 8 == 1 and len(run.loaders[0]) == len(run.splits.train) // 8
    assert run.fit()["epochs"] == 1
    plain = build_run({"batch_size": 8, "epochs": 1, "hidden": [16]}, progress=False)
    assert len(plain.loaders[0]) == len(plain.splits.train) // 8 + 1  # without batch norm every sample trains
