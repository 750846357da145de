"""Every run directory says what became of the run, whatever stopped it — in summary.json and in
TensorBoard's HParams status — and the per-step record keeps its curve up to the end, a diverged
step included."""

import json
import os
import signal

import pytest

from deepgrad.errors import TrainingDiverged
from deepgrad.train import Callback, build_run

QUICK = {"hidden": [16], "train_size": 96, "batch_size": 16, "epochs": 2, "log_every": 2}


def summary(out):
    return json.loads((out / "summary.json").read_text())


def steps(out):
    return [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]


class Watch(Callback):
    """What summary.json said while the run trained."""

    def __init__(self, out):
        self.out, self.seen = out, None

    def on_step_end(self, trainer, logs):
        if trainer.global_step == 1:
            self.seen = summary(self.out)


def test_a_finished_run_and_one_stopped_early_say_so(tmp_path):
    out = tmp_path / "done"
    watch = Watch(out)
    build_run(QUICK, out=str(out), progress=False, callbacks=[watch]).fit()
    assert watch.seen["state"] == "running" and watch.seen["pid"] == os.getpid() and watch.seen["steps_done"] == 0
    assert summary(out)["state"] == "finished" and summary(out)["epochs"] == 2
    assert [record["step"] for record in steps(out)] == [1, 3, 5, 7, 9, 11]
    assert {"loss", "accuracy", "lr", "epoch", "time"} <= set(steps(out)[0])
    early = tmp_path / "early"
    build_run({**QUICK, "epochs": 30, "patience": 1, "lr": 0.5}, out=str(early), progress=False).fit()
    assert summary(early)["state"] == "stopped_early" and summary(early)["epochs"] < 30


def test_a_diverged_run_records_where_and_keeps_its_curve_to_the_divergence(tmp_path):
    out = tmp_path / "diverged"
    run = build_run({**QUICK, "lr": 1e6, "stop_on_divergence": True}, out=str(out), progress=False)
    with pytest.raises(TrainingDiverged) as error:
        run.fit()
    record = summary(out)
    assert record["state"] == "diverged" and record["diverged_at"] == error.value.step == 2
    assert record["loss"] > 1000 * record["last_finite_loss"] and "is over 1000 times" in record["cause"]
    assert [r["step"] for r in steps(out)] == [1, 2]  # the step that diverged is the last record
    assert steps(out)[-1]["loss"] == record["loss"]


def test_an_interrupted_and_a_failed_run_say_so(tmp_path):
    class CtrlC(Callback):
        def on_after_backward(self, trainer, logs):
            if trainer.global_step == 4:
                os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        build_run(QUICK, out=str(out), progress=False, callbacks=[CtrlC()]).fit()
    assert summary(out) == {"state": "interrupted", "epochs_done": 0, "steps_done": 5}

    class Broken(Callback):
        def on_step_end(self, trainer, logs):
            if trainer.global_step == 3:
                raise ValueError("a bug in a callback")

    failed = tmp_path / "failed"
    with pytest.raises(ValueError):
        build_run(QUICK, out=str(failed), progress=False, callbacks=[Broken()]).fit()
    assert summary(failed) == {
        "state": "failed",
        "error": "ValueError: a bug in a callback",
        "epochs_done": 0,
        "steps_done": 3,
    }


def hparams_status(directory):
    """The run's HParams status as a TensorBoard started now reads it, and its event accumulator."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from tensorboard.plugins.hparams import metadata

    events = accumulator.EventAccumulator(str(directory), size_guidance={accumulator.SCALARS: 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")[metadata.SESSION_END_INFO_TAG]
    end = metadata.parse_session_end_info_plugin_data(content)
    return events, {0: "UNKNOWN", 1: "SUCCESS", 2: "FAILURE", 3: "RUNNING"}[end.status]


def test_tensorboard_writes_the_divergence_and_the_status(tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("tensorboardX")
    out = tmp_path / "diverged"
    with pytest.raises(TrainingDiverged):
        build_run(
            {**QUICK, "lr": 1e6, "stop_on_divergence": True, "tensorboard": True}, out=str(out), progress=False
        ).fit()
    events, diverged = hparams_status(out)
    assert diverged == "FAILURE" and [e.step for e in events.Scalars("batch/loss")] == [1, 2]

    class Look(Callback):
        """The status a TensorBoard started during epoch 2 reads."""

        def on_epoch_end(self, trainer, epoch, logs):
            self.seen = hparams_status(done)[1]

    done, look = tmp_path / "done", Look()
    build_run({**QUICK, "tensorboard": True}, out=str(done), progress=False, callbacks=[look]).fit()
    assert look.seen == "RUNNING" and hparams_status(done)[1] == "SUCCESS"


def test_an_interrupted_run_is_unknown_to_tensorboard_until_its_resume_ends(tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("tensorboardX")

    class CtrlC(Callback):
        def on_after_backward(self, trainer, logs):
            if trainer.global_step == 8:  # in epoch 2, after epoch 1 logged the hparams
                os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        build_run({**QUICK, "tensorboard": True}, out=str(out), progress=False, callbacks=[CtrlC()]).fit()
    assert hparams_status(out)[1] == "UNKNOWN"
    build_run({**QUICK, "tensorboard": True}, out=str(out), resume=True, progress=False).fit()
    events, status = hparams_status(out)
    assert status == "SUCCESS" and [e.step for e in events.Scalars("epoch/val_loss")] == [6, 12]
