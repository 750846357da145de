"""Run directories: claimed exclusively (two runs never share one, an automatic name takes a suffix),
emptied only with overwrite, stale temporary files removed on resume, and Ctrl-C saying how to resume."""

import os

import numpy as np
import pytest

from deepgrad import cli
from deepgrad.errors import ConfigError
from deepgrad.train import Callback, build_run
from deepgrad.train import run as runs
from deepgrad.train.directory import RunDirectory
from deepgrad.train.trainer import Trainer

SMALL = {"hidden": [8], "epochs": 1}


def test_an_automatic_name_that_is_taken_gets_a_suffix(tmp_path):
    out = str(tmp_path / "digits-mlp-20261204-120000")
    first = build_run(SMALL, out=out, unique=True, progress=False)
    second = build_run(SMALL, out=out, unique=True, progress=False)
    third = build_run(SMALL, out=out, unique=True, progress=False)
    assert [first.directory, second.directory, third.directory] == [out, out + "-2", out + "-3"]
    assert os.listdir(out) == ["checkpoints", "config.json"]  # the first run's files untouched


def test_an_explicit_directory_claimed_meanwhile_is_an_error(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").mkdir()  # another run claimed it between our check and our start
    with pytest.raises(ConfigError, match="was claimed by another run started at the same time"):
        RunDirectory.claim(str(out))


def test_resume_removes_the_temporary_files_a_killed_run_left(tmp_path):
    out = tmp_path / "run"
    build_run(SMALL, out=str(out), progress=False).fit()
    for stale in (out / "checkpoints" / ".tmp-abc123.safetensors", out / ".tmp-def456.json"):
        stale.write_bytes(b"half a file")
    build_run({"epochs": 2}, out=str(out), resume=True, progress=False)
    assert not [name for name in os.listdir(out) + os.listdir(out / "checkpoints") if name.startswith(".tmp-")]


def test_ctrl_c_during_train_says_how_to_resume(capsys, tmp_path, monkeypatch):
    out = tmp_path / "run"
    train_epoch = Trainer._train_epoch

    def interrupted_in_epoch_2(self, loader):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return train_epoch(self, loader)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted_in_epoch_2)
    code = cli.main(["train", "--epochs", "3", "--hidden", "8", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130
    assert err.strip() == (
        f"deepgrad train: interrupted; epoch 1 is saved in {out}/checkpoints/"
        f"last.safetensors; continue with: deepgrad train --out {out} --resume"
    )
    monkeypatch.setattr(Trainer, "_train_epoch", train_epoch)
    assert cli.main(["train", "--out", str(out), "--resume", "--quiet"]) == 0
    assert "3 epochs in" in capsys.readouterr().out


def test_ctrl_c_mid_epoch_saves_that_step_and_the_resume_is_exact(capsys, tmp_path):
    """A real SIGINT at step 15 (batch 5 of epoch 2): the step in progress finishes, a checkpoint of
    exactly there is saved, and resuming gives the run that was never interrupted, bit for bit."""
    import json
    import signal

    from deepgrad import io as dgio
    from deepgrad.train import Callback

    options = [
        "--hidden",
        "16",
        "--dropout",
        "0.2",
        "--batch-norm",
        "--train-size",
        "320",
        "--epochs",
        "3",
        "--schedule",
        "cosine",
        "--quiet",
    ]
    assert cli.main(["train", *options, "--out", str(tmp_path / "straight")]) == 0

    class CtrlC(Callback):
        def on_after_backward(self, trainer, logs):
            if trainer.global_step == 14:  # during step 15: the signal arrives mid-step
                os.kill(os.getpid(), signal.SIGINT)

    original = runs.build_run

    def with_ctrl_c(*args, **kwargs):
        run = original(*args, **kwargs)
        run.trainer.callbacks.append(CtrlC())
        return run

    out = tmp_path / "interrupted"
    runs_cli = cli.build_run
    cli.build_run = with_ctrl_c
    try:
        assert cli.main(["train", *options, "--out", str(out)]) == 130
    finally:
        cli.build_run = runs_cli
    err = capsys.readouterr().err.strip()
    assert err == (
        f"deepgrad train: interrupted; step 15 (batch 5 of epoch 2) is saved in {out}/checkpoints/"
        f"last.safetensors; continue with: deepgrad train --out {out} --resume"
    )
    saved = dgio.load_checkpoint(str(out / "checkpoints" / "last.safetensors"))
    assert saved["global_step"] == 15 and saved["epoch"] == 1 and saved["position"]["batch"] == 5
    assert cli.main(["train", "--out", str(out), "--resume", "--quiet"]) == 0
    straight, resumed = (dgio.load(str(tmp_path / name / "model.safetensors")) for name in ("straight", "interrupted"))
    for key in straight:
        assert np.array_equal(straight[key], resumed[key]), key

    def epochs(name):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]

    assert epochs("interrupted") == epochs("straight")


# --overwrite and failed runs never delete what deepgrad did not write ---------------------------------


class FailsAtStep3(Callback):
    def on_step_end(self, trainer, logs):
        if trainer.global_step == 3:
            raise RuntimeError("the new run failed at step 3")


class FailsAtStart(Callback):
    def on_fit_start(self, trainer):
        raise RuntimeError("the new run failed before its first step")


def files_of(folder):
    """{relative path: bytes} of every file under ``folder``."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("years of work")
    (folder / "config.json").write_text('{"model": "bert"}')  # another tool's config.json is no run's
    (folder / "checkpoints").mkdir()
    before = files_of(folder)
    assert cli.main(["train", "--out", str(folder), "--overwrite", "--epochs", "1", "--hidden", "8", "--quiet"]) == 2
    assert "--overwrite replaces only a deepgrad run directory" in capsys.readouterr().err
    assert files_of(folder) == before
    monkeypatch.chdir(folder)  # --out . : the current directory
    assert cli.main(["train", "--out", ".", "--overwrite", "--epochs", "1", "--hidden", "8", "--quiet"]) == 2
    assert files_of(folder) == before


def test_overwrite_replaces_only_the_files_a_run_writes(tmp_path):
    out = tmp_path / "run"
    build_run(SMALL, out=str(out), progress=False).fit()
    (out / "my-notes.md").write_text("what I tried")
    (out / "plots").mkdir()
    (out / "plots" / "mine.png").write_bytes(b"a figure of mine")
    old_model = (out / "model.safetensors").read_bytes()
    run = build_run({**SMALL, "seed": 1}, out=str(out), overwrite=True, progress=False)
    run.fit()
    assert (out / "my-notes.md").read_text() == "what I tried"
    assert (out / "plots" / "mine.png").read_bytes() == b"a figure of mine"
    assert (out / "model.safetensors").read_bytes() != old_model
    assert not (out / ".previous-run").exists()
    assert runs.options.load_saved(str(out / "config.json"))["seed"] == 1


def test_a_replacing_run_that_saves_nothing_gives_the_previous_run_back(tmp_path):
    out = tmp_path / "run"
    build_run(SMALL, out=str(out), progress=False).fit()
    (out / "my-notes.md").write_text("what I tried")
    before = files_of(out)
    run = build_run({**SMALL, "seed": 2}, out=str(out), overwrite=True, progress=False, callbacks=[FailsAtStep3()])
    assert sorted(os.listdir(out / ".previous-run")) == [
        "checkpoints",
        "config.json",
        "curves.png",
        "metrics.jsonl",
        "model.safetensors",
        "steps.jsonl",
        "summary.json",
    ]
    with pytest.raises(RuntimeError, match="failed at step 3"):  # diverges in its first epoch: nothing saved
        run.fit()
    assert files_of(out) == before


def test_a_replacement_killed_before_it_saved_is_settled_by_the_next_claim(tmp_path):
    out = tmp_path / "run"
    build_run(SMALL, out=str(out), progress=False).fit()
    before = files_of(out)
    build_run({**SMALL, "seed": 3}, out=str(out), overwrite=True, progress=False)  # killed: never fitted
    assert (out / ".previous-run").is_dir()
    run = build_run({**SMALL, "epochs": 2}, out=str(out), resume=True, progress=False)  # the old run resumes
    assert not (out / ".previous-run").exists() and run.config["seed"] == 0
    assert run.resumed_at["epoch"] == 1
    assert files_of(out)["model.safetensors"] == before["model.safetensors"]


def test_a_failed_run_leaves_the_folder_the_user_made(tmp_path):
    made = tmp_path / "made-by-me"
    made.mkdir()
    run = build_run(SMALL, out=str(made), progress=False, callbacks=[FailsAtStart()])
    with pytest.raises(RuntimeError, match="failed before its first step"):
        run.fit()
    assert made.is_dir() and os.listdir(made) == []
    deep = tmp_path / "new" / "deeper" / "run"  # folders the run made itself go with it
    run = build_run(SMALL, out=str(deep), progress=False, callbacks=[FailsAtStart()])
    with pytest.raises(RuntimeError, match="failed before its first step"):
        run.fit()
    assert os.listdir(tmp_path) == ["made-by-me"]


def test_a_path_through_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    for out in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "run"):
        assert cli.main(["train", "--out", str(out), "--epochs", "1", "--hidden", "8", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "notes.txt" in err and "file" in err, err
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("save,resumable", [(1, False), (2, False), (4, True), (5, True)])
def test_a_kill_during_a_save_leaves_no_temporary_after_the_resume(tmp_path, save, resumable):
    """kill -9 in the middle of the ``save``-th atomic write (the temporary written, not yet renamed;
    the 1st is config.json, the 2nd summary.json saying the run is running, the next ones checkpoints
    every 2 steps): the resume removes every
    temporary it left and goes on from the last whole checkpoint (or, killed while writing
    config.json, says there is nothing to resume)."""
    import subprocess
    import sys

    out = tmp_path / "run"
    code = f"""
import os, signal
from deepgrad import io
saves = [0]
replace = os.replace
def killed_mid_save(source, target):
    saves[0] += 1
    if saves[0] == {save}:
        os.kill(os.getpid(), signal.SIGKILL)
    replace(source, target)
io.os.replace = killed_mid_save
from deepgrad import cli
cli.main(["train", "--epochs", "3", "--hidden", "8", "--train-size", "128", "--checkpoint-every", "2",
          "--threads", "1", "--monitor", "--quiet", "--out", {str(out)!r}])
"""
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    left = [path for path in out.rglob(".tmp-*")]
    assert left, "the kill came before any temporary was written"
    resumed = subprocess.run(
        [sys.executable, "-m", "deepgrad", "train", "--out", str(out), "--resume", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == (0 if resumable else 2), resumed.stderr
    assert not list(out.rglob(".tmp-*"))
