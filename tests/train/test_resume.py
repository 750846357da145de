"""Honest resume: a schedule keeps the plan of the run's first start, options that differ from the
run's are refused unless they may change, mid-epoch checkpoints resume exactly, and a run that
fails before saving anything leaves no directory."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import ConfigError
from deepgrad.train import Callback, build_run

SMALL = {"hidden": [16], "train_size": 256, "batch_size": 32}  # 8 steps per epoch


class StopAfter(Callback):
    """Stop fit after ``epochs`` epochs (as if the run had been stopped there)."""

    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, trainer, epoch, logs):
        trainer.stop_training = trainer.stop_training or epoch == self.epochs


class CrashAtStep(Callback):
    """Raise in the middle of an epoch, after optimizer step ``step`` (a crash, a kill)."""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer, logs):
        if trainer.global_step == self.step:
            raise RuntimeError("crash")


class RecordRates(Callback):
    """The learning rate each optimizer step uses."""

    def __init__(self):
        self.rates = []

    def on_step_end(self, trainer, logs):
        self.rates.append(trainer.optimizer.param_groups[0]["lr"])


def weights(run):
    return {name: np.array(value) for name, value in run.model.state_dict().items()}


def assert_same_weights(a, b):
    assert set(a) == set(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


@pytest.mark.parametrize("schedule", ["cosine", "linear-decay", "step"])
def test_more_epochs_go_on_at_the_rate_the_schedule_ended_at(tmp_path, schedule):
    out = str(tmp_path / schedule)
    config = {**SMALL, "epochs": 3, "lr": 0.1, "final_lr": 0.01, "schedule": schedule}
    build_run(config, out=out, progress=False).fit()
    rates = RecordRates()
    extended = build_run({"epochs": 6}, out=out, resume=True, progress=False, callbacks=[rates])
    assert extended.resume_line() == f"resuming {out} from epoch 4 (step 24)"
    ended = 0.01 if schedule != "step" else 0.1 * 0.1**3
    assert extended.notes == [
        f"the {schedule} schedule was planned for 3 epochs; the epochs after them train at its final rate {ended:.3g}"
    ]
    extended.fit()
    assert rates.rates == pytest.approx([ended] * 24, rel=1e-12)  # never climbs back up, never restarts
    assert extended.trainer.history["lr"][3:] == pytest.approx([ended] * 3, rel=1e-12)


def test_a_plateau_schedule_has_no_plan_to_outlive(tmp_path):
    out = str(tmp_path / "run")
    build_run({**SMALL, "epochs": 2, "schedule": "plateau"}, out=out, progress=False).fit()
    extended = build_run({"epochs": 3}, out=out, resume=True, progress=False)
    assert extended.notes == [] and extended.fit()["epochs"] == 3


def test_a_schedule_that_ends_at_zero_is_not_extended(tmp_path):
    out = str(tmp_path / "run")
    build_run({**SMALL, "epochs": 2, "schedule": "cosine"}, out=out, progress=False).fit()
    with pytest.raises(
        ConfigError,
        match=r"cosine schedule was planned for 2 epochs and ends at lr 0, so epochs "
        r"after 2 would not train; start a new run",
    ):
        build_run({"epochs": 4}, out=out, resume=True, progress=False)


def test_a_resumed_schedule_continues_exactly(tmp_path):
    """Stopped after epoch 2 of a 4-epoch cosine run and resumed = 4 epochs straight."""
    config = {**SMALL, "epochs": 4, "schedule": "cosine", "warmup_steps": 5}
    straight = build_run(config, progress=False)
    straight.fit()
    out = str(tmp_path / "run")
    build_run(config, out=out, progress=False, callbacks=[StopAfter(2)]).fit()
    resumed = build_run({}, out=out, resume=True, progress=False)
    assert resumed.notes == []
    resumed.fit()
    assert_same_weights(weights(resumed), weights(straight))
    assert resumed.trainer.history["lr"] == straight.trainer.history["lr"]


def test_options_that_differ_from_the_run_need_override_or_a_new_run(tmp_path):
    out = str(tmp_path / "run")
    build_run({**SMALL, "epochs": 1, "lr": 0.01}, out=out, progress=False).fit()
    saved = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(
        ConfigError,
        match=r"differ from the run's config.json: --lr 0.02 \(the run has 0.01\); "
        r"--weight-decay 0.1 \(the run has 0.0\)\. pass --override to change "
        r"--lr, --weight-decay from the step the run resumes at$",
    ):
        build_run({"lr": 0.02, "weight_decay": 0.1, "epochs": 2}, out=out, resume=True)
    with pytest.raises(
        ConfigError,
        match=r"--hidden 8 \(the run has 16\); --batch-size 8 \(the run has 32\); --lr "
        r"0.02 \(the run has 0.01\)\. pass --override to change --lr .*; --hidden, "
        r"--batch-size cannot change in a resumed run",
    ):
        build_run({"hidden": [8], "batch_size": 8, "lr": 0.02}, out=out, resume=True)
    with pytest.raises(ConfigError, match=r"--hidden 8 \(the run has 16\)\. --hidden cannot change"):
        build_run({"hidden": [8]}, out=out, resume=True, override=True)
    assert (tmp_path / "run" / "config.json").read_text() == saved  # nothing was touched
    # the same values, and what only says how long or where it runs, are no conflict
    build_run(
        {**SMALL, "lr": 0.01, "epochs": 2, "patience": 3, "keep": "last", "threads": 1},
        out=out,
        resume=True,
        progress=False,
    )

    rates = RecordRates()
    overridden = build_run(
        {"epochs": 2, "lr": 0.02, "weight_decay": 0.1},
        out=out,
        resume=True,
        override=True,
        progress=False,
        callbacks=[rates],
    )
    assert overridden.notes == ["lr: 0.02 from now on", "weight_decay: 0.1 from now on"]
    overridden.fit()
    assert set(rates.rates) == {0.02} and overridden.optimizer.param_groups[0]["weight_decay"] == 0.1
    assert json.loads((tmp_path / "run" / "config.json").read_text())["weight_decay"] == 0.1


def test_checkpoint_every_resumes_mid_epoch_bit_for_bit(tmp_path):
    """Crashed at step 13 with a checkpoint at step 10 (batch 3 of epoch 2), resumed: the same
    weights, history and test row as the run that never stopped. Dropout: the RNG state matters."""
    config = {**SMALL, "epochs": 3, "dropout": 0.2, "checkpoint_every": 5}
    straight = build_run(config, out=str(tmp_path / "straight"), progress=False)
    straight_summary = straight.fit()
    out = str(tmp_path / "crashed")
    with pytest.raises(RuntimeError, match="crash"):
        build_run(config, out=out, progress=False, callbacks=[CrashAtStep(13)]).fit()
    saved = dg.io.load_checkpoint(os.path.join(out, "checkpoints", "last.safetensors"))
    assert saved["global_step"] == 10 and saved["epoch"] == 1 and saved["position"]["batch"] == 2
    resumed = build_run({}, out=out, resume=True, progress=False)
    assert resumed.resume_line() == f"resuming {out} from epoch 2, batch 3 (step 10)"
    summary = resumed.fit()
    assert_same_weights(weights(resumed), weights(straight))
    assert resumed.trainer.history.epochs == [
        {**logs, "seconds": resumed.trainer.history.epochs[i]["seconds"]}
        for i, logs in enumerate(straight.trainer.history.epochs)
    ]
    assert summary["test_accuracy"] == straight_summary["test_accuracy"]


class CrashAtStart(Callback):
    def on_fit_start(self, trainer):
        raise RuntimeError("crash before the first step")


def test_a_run_that_fails_before_saving_anything_leaves_no_directory(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="crash before the first step"):
        build_run({**SMALL, "epochs": 1}, out=str(out), progress=False, callbacks=[CrashAtStart()]).fit()
    assert not out.exists()
    build_run({**SMALL, "epochs": 1}, out=str(out), progress=False).fit()  # the same --out, no --overwrite
    assert (out / "model.safetensors").exists()
    # a failure after a recorded step keeps the run and says what became of it
    kept = tmp_path / "kept"
    with pytest.raises(RuntimeError, match="crash"):
        build_run({**SMALL, "epochs": 2}, out=str(kept), progress=False, callbacks=[CrashAtStep(3)]).fit()
    summary = json.loads((kept / "summary.json").read_text())
    assert summary == {"state": "failed", "error": "RuntimeError: crash", "epochs_done": 0, "steps_done": 3}
    assert [json.loads(line)["step"] for line in (kept / "steps.jsonl").read_text().splitlines()] == [1]
    with pytest.raises(RuntimeError, match="crash"):  # and one after a checkpoint, to resume
        build_run(
            {**SMALL, "epochs": 2}, out=str(tmp_path / "later"), progress=False, callbacks=[CrashAtStep(10)]
        ).fit()
    assert (tmp_path / "later" / "checkpoints" / "last.safetensors").exists()


def test_warmup_ramps_the_rate_the_step_uses(tmp_path):
    rates = RecordRates()
    run = build_run(
        {**SMALL, "epochs": 2, "lr": 0.1, "warmup_steps": 4, "schedule": "linear-decay", "final_lr": 0.01},
        progress=False,
        callbacks=[rates],
    )
    run.fit()
    decay = [0.1 + (0.01 - 0.1) * t / 16 for t in range(16)]
    assert rates.rates == pytest.approx([decay[t] * (t + 1) / 4 for t in range(4)] + decay[4:], rel=1e-12)
    # the logs: the rate of each epoch's last step
    assert run.trainer.history["lr"] == pytest.approx([decay[7], decay[15]], rel=1e-12)


def test_step_and_plateau_schedules_take_their_options():
    step = build_run(
        {**SMALL, "epochs": 5, "lr": 0.1, "schedule": "step", "step_size": 2, "gamma": 0.5}, progress=False
    )
    step.fit()
    assert step.trainer.history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])  # each epoch's rate

    plateau = build_run(
        {**SMALL, "epochs": 5, "lr": 0.1, "schedule": "plateau", "plateau_patience": 1, "gamma": 0.5}, progress=False
    )
    evaluate = plateau.trainer.evaluate

    def worse_each_epoch(loader):  # a validation loss that never improves after the first epoch
        return {**evaluate(loader), "loss": float(plateau.trainer.epoch + 1)}

    plateau.trainer.evaluate = worse_each_epoch
    plateau.fit()
    assert plateau.trainer.history["val_loss"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    # worse twice (more than the patience of 1) after epoch 1 and again after the reduction: reduced after 3 and 5
    assert plateau.trainer.history["lr"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05])
    assert plateau.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)


@pytest.mark.parametrize(
    "given,message",
    [
        ({"gamma": 1.0}, "gamma must be in (0, 1), got 1.0"),
        ({"step_size": 0}, "step_size must be at least 1, got 0"),
        ({"warmup_steps": -1}, "warmup_steps must be >= 0, got -1"),
        ({"checkpoint_every": 0}, "checkpoint_every must be at least 1, got 0"),
        ({"plateau_patience": -2}, "plateau_patience must be >= 0, got -2"),
    ],
)
def test_schedule_and_checkpoint_options_are_checked(given, message):
    with pytest.raises(ConfigError) as error:
        build_run(given)
    assert str(error.value) == message


def deepgrad(*args):
    return subprocess.run(
        [sys.executable, "-m", "deepgrad", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_the_cli_says_where_it_resumes_and_refuses_conflicts(tmp_path):
    out = tmp_path / "run"
    assert (
        deepgrad("train", "--epochs", 1, "--hidden", 16, "--train-size", 256, "--out", out, "--quiet").returncode == 0
    )
    refused = deepgrad("train", "--resume", "--out", out, "--epochs", 2, "--lr", 0.01)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--lr 0.01 (the run has 0.003)" in refused.stderr and "pass --override" in refused.stderr
    resumed = deepgrad("train", "--resume", "--override", "--out", out, "--epochs", 2, "--lr", 0.01)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[:2] == [
        f"deepgrad train: resuming {out} from epoch 2 (step 8)",
        "deepgrad train: lr: 0.01 from now on",
    ]


def test_train_help_groups_the_options():
    text = deepgrad("train", "--help").stdout
    headings = ["data options:", "model options:", "optimization options:", "schedule options:", "run options:"]
    assert [text.index(heading) for heading in headings] == sorted(text.index(heading) for heading in headings)
    for flag in ("--dataset", "--hidden", "--lr", "--warmup-steps", "--checkpoint-every", "--override"):
        assert text.count(f"  {flag} ") + text.count(f"  {flag}\n") >= 1, flag


def test_the_same_data_file_given_another_way_is_no_conflict(tmp_path, monkeypatch):
    x = np.random.default_rng(0).random((120, 6), dtype=np.float32)
    np.savez(tmp_path / "mine.npz", x=x, y=np.arange(120) % 3)
    monkeypatch.chdir(tmp_path)
    build_run({"data": "mine.npz", "epochs": 1, "hidden": [8]}, out="run", progress=False).fit()
    resumed = build_run({"data": "./mine.npz", "epochs": 2}, out="run", resume=True, progress=False)
    assert resumed.config["data"] == str(tmp_path / "mine.npz") and resumed.notes == []


def test_a_checkpoint_saved_before_schedules_kept_their_plan_still_resumes():
    from deepgrad.optim.lr_scheduler import CosineAnnealingLR
    from deepgrad.train import LearningRate

    model = dg.nn.Linear(2, 2)
    old = CosineAnnealingLR(dg.optim.SGD(model.parameters(), lr=0.1), T_max=10)
    for _ in range(4):
        old.step()
    policy = LearningRate(
        [0.1], CosineAnnealingLR(dg.optim.SGD(model.parameters(), lr=0.1), T_max=12), "batch", until=10
    )
    policy.load_state_dict(old.state_dict())  # the schedule's own state, as checkpoints held it
    assert policy.scheduler.T_max == 10 and policy.until is None
    assert policy.at(4, 0) == [old.lr_at(4, 0.1)]
