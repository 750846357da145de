"""TensorBoardLogger: short digits runs logged, then read back with TensorBoard's own
EventAccumulator — the tags, their steps, histograms, hparams, the curves image, a resumed run's
steps, the monitors' statistics and the search's trials."""

import importlib.util
import math
import os
import shutil
import signal
import sys
from types import SimpleNamespace

import pytest

from deepgrad.diagnostics import standard_monitors
from deepgrad.errors import ConfigError
from deepgrad.search import LogUniform, TrainingObjective, TrialPruned
from deepgrad.search.runner import Report
from deepgrad.search.training import search_training
from deepgrad.train import Callback
from deepgrad.train.run import build_run
from deepgrad.train.tensorboard import TensorBoardLogger, hparam_value

QUICK = {"epochs": 2, "train_size": 96, "batch_size": 16, "hidden": [16], "seed": 3}
STEPS_PER_EPOCH = 6  # 96 / 16


@pytest.fixture
def read_events():
    """A function reading a log directory's event files with TensorBoard's EventAccumulator (all of
    each kind: size guidance 0)."""
    pytest.importorskip("tensorboardX", reason="TensorBoard logging needs tensorboardX (deepgrad[tensorboard])")
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the tests read event files with tensorboard (deepgrad[tensorboard])",
    )

    def read(directory):
        guidance = {
            kind: 0 for kind in (accumulator.SCALARS, accumulator.HISTOGRAMS, accumulator.IMAGES, accumulator.TENSORS)
        }
        events = accumulator.EventAccumulator(str(directory), size_guidance=guidance)
        events.Reload()
        return events

    return read


def steps(events, tag):
    return [event.step for event in events.Scalars(tag)]


def session_hparams(events):
    """The hparams of the run's hparams session, as Python values."""
    from tensorboard.plugins.hparams import metadata

    content = events.PluginTagToContent("hparams")[metadata.SESSION_START_INFO_TAG]
    values = metadata.parse_session_start_info_plugin_data(content).hparams
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in values.items()}


def fit(config, callbacks, out=None, resume=False):
    run = build_run(config, out=out, resume=resume, progress=False)
    run.trainer.callbacks.extend(callbacks)
    train, val, _ = run.loaders
    run.trainer.fit(
        train,
        val,
        epochs=run.config["epochs"],
        resume_from=run.path("checkpoints", "last.safetensors") if resume else None,
    )
    return run


def test_a_run_logs_steps_epochs_histograms_hparams_and_curves(tmp_path, read_events):
    logger = TensorBoardLogger(tmp_path / "tb", every=5, histograms_every=4, config={**QUICK, "clip": None})
    run = fit(QUICK, [logger])
    events = read_events(tmp_path / "tb")

    total = QUICK["epochs"] * STEPS_PER_EPOCH
    assert run.trainer.global_step == total
    for tag in ("batch/loss", "batch/accuracy", "batch/lr"):
        assert steps(events, tag) == list(range(1, total + 1, 5))  # ceil(12 / 5) = 3 points
    assert len(steps(events, "batch/loss")) == math.ceil(total / 5)
    assert events.Scalars("batch/lr")[0].value == pytest.approx(run.config["lr"])
    history = run.trainer.history.epochs
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        points = events.Scalars(f"epoch/{key}")
        assert [p.step for p in points] == [STEPS_PER_EPOCH, total]
        assert [p.value for p in points] == pytest.approx([logs[key] for logs in history], rel=1e-6)
    assert events.Scalars("hparam/best_val_loss")[-1].value == pytest.approx(min(e["val_loss"] for e in history))
    assert events.Scalars("hparam/best_val_accuracy")[-1].value == pytest.approx(
        max(e["val_accuracy"] for e in history)
    )

    parameters = [name for name, _ in run.model.named_parameters()]
    histograms = events.Tags()["histograms"]
    for name in parameters:
        for kind in ("weights", "gradients"):
            assert f"{kind}/{name}" in histograms
            assert [h.step for h in events.Histograms(f"{kind}/{name}")] == [1, 5, 9]
    weight = dict(run.model.named_parameters())[parameters[0]].data
    assert events.Histograms(f"weights/{parameters[0]}")[-1].histogram_value.num == weight.size

    assert session_hparams(events) == {k: hparam_value(v) for k, v in QUICK.items()}  # clip (None) left out
    assert session_hparams(events)["hidden"] == "16"
    assert "_hparams_/session_end_info" in events.PluginTagToContent("hparams")
    if importlib.util.find_spec("matplotlib") is not None:
        (image,) = events.Images("curves")
        assert image.step == total and image.encoded_image_string.startswith(b"\x89PNG")


def test_a_resumed_run_numbers_on_and_hides_what_an_abandoned_attempt_logged(tmp_path, read_events):
    out, log_dir = tmp_path / "run", tmp_path / "run" / "tb"
    first = {**QUICK, "epochs": 1}
    fit(first, [TensorBoardLogger(log_dir, every=2, histograms_every=None, curves=False)], out=str(out))
    after_epoch_1 = tmp_path / "last-after-epoch-1.safetensors"
    shutil.copy(out / "checkpoints" / "last.safetensors", after_epoch_1)
    # an attempt that went on to the end, then was "lost": the run resumes from epoch 1 again
    fit(
        {"epochs": 2},
        [TensorBoardLogger(log_dir, every=2, histograms_every=None, curves=False)],
        out=str(out),
        resume=True,
    )
    shutil.copy(after_epoch_1, out / "checkpoints" / "last.safetensors")
    run = fit(
        {"epochs": 2},
        [TensorBoardLogger(log_dir, every=2, histograms_every=None, curves=False)],
        out=str(out),
        resume=True,
    )

    assert run.trainer.global_step == 2 * STEPS_PER_EPOCH
    events = read_events(log_dir)
    assert steps(events, "batch/loss") == list(range(1, 2 * STEPS_PER_EPOCH + 1, 2))
    assert steps(events, "epoch/val_loss") == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert [p.value for p in events.Scalars("epoch/val_loss")] == pytest.approx(
        [logs["val_loss"] for logs in run.trainer.history.epochs], rel=1e-6
    )


def test_ctrl_c_closes_the_event_file_and_the_resumed_run_numbers_on(tmp_path, read_events):
    class CtrlC(Callback):
        def on_after_backward(self, trainer, logs):
            if trainer.global_step == 8:  # during step 9, in epoch 2
                os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "run"
    logger = TensorBoardLogger(out / "tb", every=1, histograms_every=None, curves=False)
    with pytest.raises(KeyboardInterrupt):
        fit(QUICK, [logger, CtrlC()], out=str(out))
    assert logger.events is None  # closed
    assert steps(read_events(out / "tb"), "batch/loss") == list(range(1, 10))

    fit({}, [TensorBoardLogger(out / "tb", every=1, histograms_every=None, curves=False)], out=str(out), resume=True)
    events = read_events(out / "tb")
    assert steps(events, "batch/loss") == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert steps(events, "epoch/train_loss") == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]


def test_the_best_validation_values_count_the_epochs_before_a_resume(tmp_path, read_events):
    earlier = {"epoch": 1, "train_loss": 0.9, "val_loss": 0.2, "val_accuracy": 0.7}
    trainer = SimpleNamespace(global_step=6, history=SimpleNamespace(epochs=[earlier]), callbacks=[])
    logger = TensorBoardLogger(tmp_path, curves=False)
    logger.on_fit_start(trainer)
    trainer.global_step = 12
    logger.on_epoch_end(trainer, 2, {"epoch": 2, "train_loss": 0.5, "val_loss": 0.3, "val_accuracy": 0.8})
    logger.close()
    events = read_events(tmp_path)
    assert events.Scalars("hparam/best_val_loss")[-1].value == pytest.approx(0.2)  # epoch 1's
    assert events.Scalars("hparam/best_val_accuracy")[-1].value == pytest.approx(0.8)
    assert "hparam/best_train_loss" not in events.Tags()["scalars"]


def test_the_monitors_statistics_become_scalars(tmp_path, read_events):
    monitors = standard_monitors(every=4)
    run = fit(
        {**QUICK, "epochs": 1},
        monitors + [TensorBoardLogger(tmp_path, every=100, histograms_every=None, curves=False, monitors=monitors)],
    )
    events = read_events(tmp_path)

    gradients, activations = monitors
    sampled = [record["step"] for record in gradients.records]
    assert sampled == [1, 5]
    scalars = events.Tags()["scalars"]
    kinds = {name: type(module).__name__ for name, module in run.model.named_modules()}
    layers = [f"{layer}.{kinds[layer]}" for layer in gradients.records[0]["layers"]]  # e.g. "1.Linear"
    assert "1.Linear" in layers
    tags = ["gradient_norm/total", "gradient_flow/first_last_ratio"] + [f"gradient_norm/{layer}" for layer in layers]
    for tag in tags:
        assert steps(events, tag) == sampled, tag
    assert events.Scalars("gradient_norm/total")[0].value == pytest.approx(gradients.records[0]["total"])
    for name, _ in run.model.named_parameters():
        layer, _, parameter = name.rpartition(".")
        assert f"update_ratio/{layer}.{kinds[layer]}.{parameter}" in scalars
    for layer, stats in activations.records[-1]["layers"].items():
        tag = f"activations/{layer}.{stats['kind']}"  # e.g. activations/2.ReLU
        for key in ("mean", "std", "dead_fraction"):
            assert steps(events, f"{tag}/{key}") == sampled
        assert events.Scalars(f"{tag}/dead_fraction")[-1].value == pytest.approx(stats["dead"])
        assert events.Histograms(tag)[-1].histogram_value.num == sum(stats["histogram"])


def test_a_search_writes_each_trials_hparams_and_scores(tmp_path, read_events):
    base = {**QUICK, "epochs": 1}
    study = search_training(
        base,
        str(tmp_path),
        space={"lr": LogUniform(1e-3, 1e-1)},
        trials=2,
        rounds=1,
        executor="local",
        n_jobs=2,
        tensorboard=True,
    )
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["trial-0001", "trial-0002"]
    for trial in study.trials.values():
        events = read_events(tmp_path / "tb" / f"trial-{trial.number + 1:04d}")
        assert session_hparams(events) == {"lr": pytest.approx(trial.params["lr"])}
        assert events.Scalars("epoch/val_accuracy")[-1].value == pytest.approx(trial.score)
        assert events.Tags()["histograms"] == [] and events.Tags()["images"] == []


def test_a_trial_stopped_by_the_scheduler_has_its_last_epoch_logged(tmp_path, read_events):
    objective = TrainingObjective(QUICK, tensorboard_dir=tmp_path)
    report = Report(7, scheduler=SimpleNamespace(should_stop=lambda epoch, score: True))
    with pytest.raises(TrialPruned):
        objective({"lr": 0.01}, report)
    events = read_events(tmp_path / "trial-0008")
    assert [p.value for p in events.Scalars("epoch/val_accuracy")] == pytest.approx([report.scores[-1][1]])
    assert steps(events, "batch/loss") == list(range(1, STEPS_PER_EPOCH + 1, 10))


def test_config_values_become_hparams():
    assert hparam_value([256, 128]) == "256,128"
    assert hparam_value(None) is None  # left out: the column stays empty and keeps its type
    assert hparam_value(0.1) == 0.1 and hparam_value(True) is True and hparam_value("adam") == "adam"


def test_bad_arguments_and_a_missing_tensorboardx_are_errors_that_say_so(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="every must be a whole number"):
        TensorBoardLogger(tmp_path, every=0)
    with pytest.raises(ConfigError, match="histograms_every"):
        TensorBoardLogger(tmp_path, histograms_every=2.5)
    if importlib.util.find_spec("tensorboardX") is not None:
        not_png = tmp_path / "figure.png"
        not_png.write_bytes(b"GIF89a")
        with pytest.raises(ValueError, match=f"{not_png} is not a PNG image"):
            TensorBoardLogger(tmp_path / "tb").log_figure("figure", not_png, step=0)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX now fails
    with pytest.raises(ConfigError, match=r"pip install 'deepgrad\[tensorboard\]'"):
        TensorBoardLogger(tmp_path)


def test_train_and_search_on_the_command_line_write_what_tensorboard_reads(tmp_path, read_events):
    import subprocess

    def deepgrad(*args):
        return subprocess.run(
            [sys.executable, "-m", "deepgrad", *map(str, args)], capture_output=True, text=True, timeout=300
        )

    out = tmp_path / "run"
    done = deepgrad(
        "train",
        "--epochs",
        2,
        "--train-size",
        96,
        "--batch-size",
        16,
        "--hidden",
        16,
        "--out",
        out,
        "--tensorboard",
        "--monitor",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert f"watch it with: tensorboard --logdir {tmp_path} (every run there)" in done.stdout
    assert "TensorBoard events" in done.stdout and not (out / "tb").exists()
    events = read_events(out)  # in the run directory itself: TensorBoard names the run after it
    assert steps(events, "epoch/val_loss") == [6, 12] and steps(events, "batch/loss") == [1, 11]
    hparams = session_hparams(events)
    assert hparams["hidden"] == "16" and "gradient_norm/total" in events.Tags()["scalars"]
    assert hparams["threads"] in (1.0, 2.0) and "step_size" not in hparams  # resolved; None left out
    from tensorboard.plugins.hparams import metadata

    declared = metadata.parse_experiment_plugin_data(events.PluginTagToContent("hparams")[metadata.EXPERIMENT_TAG])
    assert [m.name.tag for m in declared.metric_infos][:2] == ["epoch/val_accuracy", "epoch/val_loss"]
    assert len(declared.metric_infos) == 6  # not every scalar tag: the epoch metrics and the best values
    types = {info.name: info.type for info in declared.hparam_infos}
    assert types["step_size"] == types["lr"] == 3 and types["hidden"] == 1 and types["batch_norm"] == 2  # schema

    study = tmp_path / "study"
    searched = deepgrad(
        "search",
        "--epochs",
        1,
        "--train-size",
        96,
        "--hidden",
        16,
        "--trials",
        2,
        "--rounds",
        1,
        "--backend",
        "serial",
        "--out",
        study,
        "--tensorboard",
        "--quiet",
    )
    assert searched.returncode == 0, searched.stderr
    assert sorted(os.listdir(study / "tb")) == ["trial-0001", "trial-0002"]
    assert "lr" in session_hparams(read_events(study / "tb" / "trial-0001"))


def test_a_resumed_run_keeps_logging_and_monitoring(tmp_path, read_events, capsys, monkeypatch):
    """Ctrl-C, then the resume command it prints (no --tensorboard, no --monitor): the run goes on
    writing TensorBoard events and diagnostics, because config.json holds those options."""
    import json

    from deepgrad import cli

    class CtrlC(Callback):
        def on_after_backward(self, trainer, logs):
            if trainer.global_step == 8:  # during step 9, in epoch 2
                os.kill(os.getpid(), signal.SIGINT)

    build = cli.build_run

    def with_ctrl_c(*args, **kwargs):
        run = build(*args, **kwargs)
        run.trainer.callbacks.append(CtrlC())
        return run

    out = tmp_path / "run"
    monkeypatch.setattr(cli, "build_run", with_ctrl_c)
    assert (
        cli.main(
            [
                "train",
                "--epochs",
                "2",
                "--train-size",
                "96",
                "--batch-size",
                "16",
                "--hidden",
                "16",
                "--tensorboard",
                "--monitor",
                "--monitor-every",
                "2",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 130
    )
    command = capsys.readouterr().err.split("continue with: ")[1].split()
    assert command == ["deepgrad", "train", "--out", str(out), "--resume"]
    monkeypatch.setattr(cli, "build_run", build)
    assert cli.main([*command[1:], "--quiet"]) == 0

    events = read_events(out)
    assert steps(events, "batch/loss") == [1, 11] and steps(events, "epoch/val_loss") == [6, 12]
    assert steps(events, "gradient_norm/total") == [1, 3, 5, 7, 9, 11]
    records = [json.loads(line) for line in (out / "diagnostics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "gradients"] == [1, 3, 5, 7, 9, 11]
    assert json.loads((out / "config.json").read_text())["tensorboard"] is True
    from tensorboard.plugins.hparams import metadata  # the status file holds the resume's ending

    end = metadata.parse_session_end_info_plugin_data(
        events.PluginTagToContent("hparams")[metadata.SESSION_END_INFO_TAG]
    )
    assert end.status == 1  # STATUS_SUCCESS
