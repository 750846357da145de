"""The Trainer: learning, evaluation, callbacks, checkpoints, and exact resume."""

import io as stdio
import json
import os

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
from deepgrad import io
from deepgrad.data import DataLoader, TensorDataset, datasets
from deepgrad.optim.lr_scheduler import LinearDecay, ReduceLROnPlateau, StepLR
from deepgrad.train import (
    Callback,
    EarlyStopping,
    HistoryWriter,
    ModelCheckpoint,
    ProgressBar,
    Trainer,
    TrainingDiverged,
    presets,
)


def spiral_loaders(n=60, batch_size=16, seed=None):
    s = datasets.spiral_splits(n=n)
    return s, DataLoader(s.train, batch_size, shuffle=True, seed=seed), DataLoader(s.val, 256), DataLoader(s.test, 256)


def small_trainer(lr=1e-2, callbacks=(), scheduler=None, interval="epoch", dropout=0.0, batch_norm=False, **kwargs):
    model = presets.mlp((2,), 3, hidden=(16, 16), dropout=dropout, batch_norm=batch_norm)
    opt = dg.optim.Adam(model.parameters(), lr=lr)
    sched = scheduler(opt) if scheduler else None
    return Trainer(
        model, opt, F.cross_entropy, callbacks=callbacks, scheduler=sched, scheduler_interval=interval, **kwargs
    )


def test_trainer_learns_the_spiral():
    dg.manual_seed(0)
    s, train, val, test = spiral_loaders(n=300, batch_size=32, seed=0)
    model = presets.mlp((2,), 3, hidden=(64, 64))
    trainer = Trainer(model, dg.optim.Adam(model.parameters(), lr=1e-2), F.cross_entropy)
    history = trainer.fit(train, val, epochs=30)
    assert len(history) == 30 and trainer.epoch == 30 and trainer.global_step == 30 * len(train)
    assert history["train_loss"][-1] < history["train_loss"][0] / 5
    result = trainer.evaluate(test)
    assert result["accuracy"] >= 0.95, result
    assert history["val_accuracy"][-1] >= 0.95
    predictions = trainer.predict(s.test.arrays[0], batch_size=100)
    assert predictions.shape == (900, 3)
    assert np.mean(predictions.argmax(1) == s.test.arrays[1]) == pytest.approx(result["accuracy"])


def test_history_logs_every_epoch():
    dg.manual_seed(0)
    _, train, val, _ = spiral_loaders()
    trainer = small_trainer(scheduler=lambda opt: StepLR(opt, step_size=1, gamma=0.5))
    history = trainer.fit(train, val, epochs=3)
    assert [logs["epoch"] for logs in history.epochs] == [1, 2, 3]
    for logs in history.epochs:
        assert set(logs) == {
            "epoch",
            "step",
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "lr",
            "seconds",
        }
        assert 0 <= logs["train_accuracy"] <= 1 and 0 <= logs["val_accuracy"] <= 1 and logs["seconds"] >= 0
    # the logged lr is the one the epoch trained with (the rate of its last step)
    assert history["lr"] == pytest.approx([1e-2, 5e-3, 2.5e-3])
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-3)
    # fit continues up to the total number of epochs
    trainer.fit(train, val, epochs=4)
    assert trainer.epoch == 4 and len(trainer.history) == 4


def test_train_metrics_are_sample_weighted_means():
    dg.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((10, 2)).astype(np.float32)
    y = np.arange(10) % 3
    trainer = small_trainer(lr=1e-12)  # the weights barely move: batch metrics ≈ full-data metrics
    trainer.fit(DataLoader(TensorDataset(x, y), 4), epochs=1)  # batches of 4, 4, 2
    full = trainer.evaluate(DataLoader(TensorDataset(x, y), 10))
    assert trainer.history["train_loss"][0] == pytest.approx(full["loss"], rel=1e-5)
    assert trainer.history["train_accuracy"][0] == pytest.approx(full["accuracy"])


def test_evaluate_and_predict_leave_the_model_as_found():
    dg.manual_seed(0)
    _, train, val, _ = spiral_loaders()
    trainer = small_trainer(dropout=0.5)
    model = trainer.model
    model.train()
    before = [p.data.copy() for p in model.parameters()]
    trainer.evaluate(val)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))
    x = np.random.default_rng(0).standard_normal((7, 2)).astype(np.float32)
    first, second = trainer.predict(x), trainer.predict(dg.tensor(x))
    assert np.array_equal(first, second)  # eval mode: no dropout
    np.testing.assert_allclose(trainer.predict(x, batch_size=3), first, rtol=1e-5, atol=1e-6)
    assert model.training
    model.eval()
    assert trainer.predict(x).shape == (7, 3) and not model.training


def test_callbacks_see_every_hook_in_order(tmp_path):
    class Recorder(Callback):
        def __init__(self):
            self.events = []

        def on_fit_start(self, trainer):
            self.events.append("fit_start")

        def on_epoch_start(self, trainer, epoch):
            self.events.append(f"epoch_start {epoch}")

        def on_batch_end(self, trainer, logs):
            assert set(logs) == {"loss", "accuracy"}
            self.events.append("batch")

        def on_epoch_end(self, trainer, epoch, logs):
            self.events.append(f"epoch_end {epoch}")

        def on_fit_end(self, trainer):
            self.events.append("fit_end")

    dg.manual_seed(0)
    x, y = np.zeros((10, 2), np.float32), np.zeros(10, np.int64)
    recorder = Recorder()
    small_trainer(callbacks=[recorder]).fit(DataLoader(TensorDataset(x, y), 4), epochs=2)
    epoch = ["batch"] * 3
    assert recorder.events == [
        "fit_start",
        "epoch_start 1",
        *epoch,
        "epoch_end 1",
        "epoch_start 2",
        *epoch,
        "epoch_end 2",
        "fit_end",
    ]


def test_history_writer_and_progress_bar(tmp_path):
    dg.manual_seed(0)
    _, train, val, _ = spiral_loaders()
    stream = stdio.StringIO()
    path = tmp_path / "metrics.jsonl"
    trainer = small_trainer(
        callbacks=[HistoryWriter(str(path), str(tmp_path / "m.csv")), ProgressBar(quiet=False, stream=stream)]
    )
    trainer.fit(train, val, epochs=2)
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == trainer.history.epochs
    csv_lines = (tmp_path / "m.csv").read_text().splitlines()
    assert csv_lines[0].split(",") == list(trainer.history.epochs[0]) and len(csv_lines) == 3
    assert "epoch 1/2" in stream.getvalue() and "epoch 2/2" in stream.getvalue()
    logged = stdio.StringIO()
    small_trainer(callbacks=[ProgressBar(stream=logged, interval=0.0)]).fit(train, epochs=1)  # not a terminal: lines
    lines = logged.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/1 batch 1/") and "loss " in lines[0] and "lr 0.01" in lines[0]
    assert lines[-1].startswith("epoch 1/1 done: train_loss ") and len(lines) == len(train) + 1
    quiet = stdio.StringIO()
    small_trainer(callbacks=[ProgressBar(quiet=True, stream=quiet)]).fit(train, epochs=1)
    assert quiet.getvalue() == ""


def test_early_stopping():
    dg.manual_seed(0)
    _, train, val, _ = spiral_loaders()
    model = presets.mlp((2,), 3, hidden=(8,))
    trainer = Trainer(
        model,
        dg.optim.SGD(model.parameters(), lr=0.0),
        F.cross_entropy,
        callbacks=[EarlyStopping("val_loss", patience=2)],
    )
    trainer.fit(train, val, epochs=10)  # nothing is learned: val_loss never improves after epoch 1
    assert trainer.epoch == 3
    with pytest.raises(KeyError, match="'val_accuracy' not in the logs"):
        Trainer(
            model,
            dg.optim.SGD(model.parameters(), lr=0.1),
            F.cross_entropy,
            callbacks=[EarlyStopping("val_accuracy", mode="max")],
        ).fit(train, epochs=1)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        EarlyStopping(mode="up")


def test_early_stopping_patience_counts_across_a_resume(tmp_path):
    dg.manual_seed(0)
    _, train, val, _ = spiral_loaders()
    model = presets.mlp((2,), 3, hidden=(8,))
    first = Trainer(
        model,
        dg.optim.SGD(model.parameters(), lr=0.0),
        F.cross_entropy,
        callbacks=[EarlyStopping("val_loss", patience=3)],
    )
    first.fit(train, val, epochs=2)  # epoch 2 is the first epoch without improvement
    first.save_checkpoint(tmp_path / "ckpt.safetensors")
    resumed = Trainer(
        model,
        dg.optim.SGD(model.parameters(), lr=0.0),
        F.cross_entropy,
        callbacks=[EarlyStopping("val_loss", patience=3)],
    )
    resumed.fit(train, val, epochs=10, resume_from=tmp_path / "ckpt.safetensors")
    assert resumed.epoch == 4  # as without the interruption: three epochs without improvement after epoch 1


def test_nan_loss_stops_with_a_clear_error():
    dg.manual_seed(0)
    _, train, _, _ = spiral_loaders()
    calls = []

    def loss_fn(outputs, targets):
        calls.append(1)
        loss = F.cross_entropy(outputs, targets)
        return loss * float("nan") if len(calls) == 3 else loss

    model = presets.mlp((2,), 3, hidden=(8,))
    trainer = Trainer(model, dg.optim.SGD(model.parameters(), lr=0.1), loss_fn)
    with pytest.raises(TrainingDiverged, match=r"training loss became nan at step 3 .*last finite loss: \d"):
        trainer.fit(train, epochs=2)


def test_labels_outside_the_class_range_are_a_clear_error():
    logits = dg.tensor(np.zeros((4, 3), np.float32))
    # IndexError, as PyTorch raises
    with pytest.raises(IndexError, match=r"target class 3 is out of range for 3 classes \(expected 0..2"):
        F.cross_entropy(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(IndexError, match="target class -2 is out of range"):
        F.cross_entropy(logits, np.array([0, -2, 1, 1]))
    dg.manual_seed(0)
    x, y = np.zeros((8, 2), np.float32), np.array([0, 1, 2, 5, 0, 1, 2, 0])
    with pytest.raises(IndexError, match="target class 5 is out of range for 3 classes"):
        small_trainer().fit(DataLoader(TensorDataset(x, y), 8), epochs=1)


def test_trainer_rejects_bad_options():
    model = presets.mlp((2,), 3, hidden=(4,))
    opt = dg.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="scheduler_interval must be 'epoch' or 'batch'"):
        Trainer(model, opt, F.cross_entropy, scheduler_interval="step")
    with pytest.raises(ValueError, match=r"unknown metrics \['f1'\]; available: \['accuracy'\]"):
        Trainer(model, opt, F.cross_entropy, metrics=("accuracy", "f1"))
    with pytest.raises(ValueError, match="unknown model 'vgg'; available: mlp, resnet-small, simple-cnn"):
        presets.build("vgg", (2,), 3)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        presets.mlp((2,), 3, activation="swish")


def test_reduce_lr_on_plateau_is_stepped_with_the_validation_loss():
    dg.manual_seed(0)
    _, train, val, _ = spiral_loaders()
    model = presets.mlp((2,), 3, hidden=(8,))
    opt = dg.optim.SGD([dg.nn.Parameter(np.zeros(1))], lr=0.1)  # not the model's: val_loss plateaus at once
    trainer = Trainer(model, opt, F.cross_entropy, scheduler=ReduceLROnPlateau(opt, factor=0.5, patience=0))
    history = trainer.fit(train, val, epochs=4)
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.025])


@pytest.mark.parametrize("interval", ["epoch", "batch"])
def test_presets_train_on_images(interval):
    dg.manual_seed(0)
    x = np.random.default_rng(0).random((12, 1, 8, 8)).astype(np.float32)
    y = np.arange(12) % 10
    for name in ("simple-cnn", "resnet-small"):
        model = presets.build(name, (1, 8, 8), 10)
        opt = dg.optim.Adam(model.parameters(), lr=1e-3)
        trainer = Trainer(
            model,
            opt,
            F.cross_entropy,
            scheduler=LinearDecay(opt, total_steps=6, final_lr=1e-4),
            scheduler_interval=interval,
        )
        history = trainer.fit(DataLoader(TensorDataset(x, y), 4), epochs=2)
        assert np.isfinite(history["train_loss"]).all()
        expected = 1e-3 - (1e-3 - 1e-4) * (5 / 6 if interval == "batch" else 1 / 6)  # lr of the last step
        assert history["lr"][-1] == pytest.approx(expected)
        assert trainer.predict(x).shape == (12, 10)


# ----------------------------------------------------------------------------
# Checkpoints and resume


def resumable_run(seed, checkpoint_dir):
    """A run whose result depends on every piece of state: dropout (RNG), BatchNorm buffers,
    Adam moments, a per-batch schedule, gradient clipping and the shuffled data order."""
    dg.manual_seed(seed)
    s = datasets.spiral_splits(n=40)
    model = presets.mlp((2,), 3, hidden=(16, 16), dropout=0.3, batch_norm=True)
    opt = dg.optim.Adam(model.parameters(), lr=1e-2)
    train = DataLoader(s.train, 16, shuffle=True)  # seed drawn from the default generator
    scheduler = LinearDecay(opt, total_steps=4 * len(train), final_lr=1e-3)
    trainer = Trainer(
        model,
        opt,
        F.cross_entropy,
        callbacks=[ModelCheckpoint(str(checkpoint_dir))],
        scheduler=scheduler,
        scheduler_interval="batch",
        clip_grad_norm=1.0,
    )
    return trainer, train, DataLoader(s.val, 64)


def without_seconds(epochs):
    return [{k: v for k, v in logs.items() if k != "seconds"} for logs in epochs]


def test_resume_gives_exactly_the_uninterrupted_run(tmp_path):
    reference, train, val = resumable_run(0, tmp_path / "a")
    reference.fit(train, val, epochs=4)
    expected_next_random = dg.default_generator().random()

    first, train, val = resumable_run(0, tmp_path / "b")
    first.fit(train, val, epochs=2)
    last = tmp_path / "b" / "last.safetensors"
    assert last.exists() and (tmp_path / "b" / "best.safetensors").exists()

    # a new process: other seed, other initial weights, other data seed; everything comes from the checkpoint
    resumed, train, val = resumable_run(123, tmp_path / "b")
    history = resumed.fit(train, val, epochs=4, resume_from=str(last))
    assert resumed.epoch == 4 and resumed.global_step == reference.global_step
    for key, value in reference.model.state_dict().items():
        assert np.array_equal(resumed.model.state_dict()[key], value), key
    ref_opt, res_opt = reference.optimizer.state_dict(), resumed.optimizer.state_dict()
    assert res_opt["param_groups"][0]["lr"] == ref_opt["param_groups"][0]["lr"]
    for i, state in ref_opt["state"].items():
        for key, value in state.items():
            assert np.array_equal(res_opt["state"][i][key], value), (i, key)
    assert without_seconds(history.epochs) == without_seconds(reference.history.epochs)
    assert dg.default_generator().random() == expected_next_random


def test_resume_depends_on_the_restored_random_state(tmp_path):
    """The control for the test above: dropout really draws from the checkpointed RNG."""
    first, train, val = resumable_run(0, tmp_path)
    first.fit(train, val, epochs=2)
    weights_after_2 = {k: v.copy() for k, v in first.model.state_dict().items()}

    class Reseed(Callback):
        def on_fit_start(self, trainer):
            dg.manual_seed(7)

    runs = []
    for callbacks in ([], [Reseed()]):
        resumed, train, val = resumable_run(1, tmp_path / "other")
        resumed.callbacks += callbacks
        resumed.fit(train, val, epochs=3, resume_from=str(tmp_path / "last.safetensors"))
        runs.append(resumed.model.state_dict())
    assert any(not np.array_equal(runs[0][k], weights_after_2[k]) for k in weights_after_2)
    assert any(not np.array_equal(runs[0][k], runs[1][k]) for k in weights_after_2)


def test_best_checkpoint_survives_a_resume(tmp_path):
    """After a resume, best.safetensors is only replaced by a model better than the best so far."""
    trainer, train, val = resumable_run(0, tmp_path)
    trainer.fit(train, val, epochs=2)
    best = tmp_path / "best.safetensors"
    state = io.load_checkpoint(str(tmp_path / "last.safetensors"))
    state["history"][0]["val_loss"] = 0.0  # an epoch that no later epoch can beat
    io.save_checkpoint(state, str(tmp_path / "last.safetensors"))
    best_bytes = best.read_bytes()
    resumed, train, val = resumable_run(0, tmp_path)
    resumed.fit(train, val, epochs=3, resume_from=str(tmp_path / "last.safetensors"))
    assert best.read_bytes() == best_bytes
    assert io.load_checkpoint(str(tmp_path / "last.safetensors"))["epoch"] == 3


def test_checkpoint_state_and_loading_errors(tmp_path):
    dg.manual_seed(0)
    _, train, val, _ = spiral_loaders()
    trainer = small_trainer(scheduler=lambda opt: StepLR(opt, 1))
    trainer.fit(train, val, epochs=1)
    path = str(tmp_path / "c.safetensors")
    trainer.save_checkpoint(path)
    state = io.load_checkpoint(path)
    assert state["format"] == "deepgrad-training-checkpoint-1"
    assert state["epoch"] == 1 and state["global_step"] == len(train)
    assert set(state) >= {"model", "optimizer", "rng", "history", "scheduler", "train_loader"}

    no_scheduler = small_trainer()
    no_scheduler.save_checkpoint(str(tmp_path / "plain.safetensors"))
    with pytest.raises(io.CheckpointError, match="no scheduler state, but this Trainer has a scheduler"):
        small_trainer(scheduler=lambda opt: StepLR(opt, 1)).load_checkpoint(str(tmp_path / "plain.safetensors"))

    io.save_checkpoint({"model": {}}, str(tmp_path / "other.safetensors"))
    with pytest.raises(io.CheckpointError, match="not a training checkpoint"):
        small_trainer().fit(train, epochs=2, resume_from=str(tmp_path / "other.safetensors"))
    (tmp_path / "garbage.safetensors").write_bytes(os.urandom(256))
    with pytest.raises(io.CheckpointError, match="not a readable safetensors file"):
        small_trainer().load_checkpoint(str(tmp_path / "garbage.safetensors"))
    dg.save({"w": np.zeros(2)}, str(tmp_path / "weights.safetensors"))
    with pytest.raises(io.CheckpointError, match="not a deepgrad checkpoint"):
        small_trainer().load_checkpoint(str(tmp_path / "weights.safetensors"))
    wider = Trainer(presets.mlp((2,), 3, hidden=(32, 16)), None, F.cross_entropy)
    with pytest.raises(RuntimeError, match=r"size mismatch for '1.weight'"):
        wider.load_checkpoint(path)
