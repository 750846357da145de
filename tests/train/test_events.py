"""The Trainer's step and events: the events' order and arguments, the step's policies (the NaN
check, clipping, warm-up and the schedule) acting in the order train_step documents, and
evaluate/predict without an optimizer."""

import math

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.optim.lr_scheduler import ReduceLROnPlateau, StepLR
from deepgrad.train import Callback, LearningRate, ModelCheckpoint, Trainer, TrainingDiverged, presets
from deepgrad.train import trainer as trainer_module
from deepgrad.train.callbacks import EVENTS


def tiny_data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2)).astype(np.float32), np.arange(n) % 3


def tiny_model():
    dg.manual_seed(0)
    return presets.mlp((2,), 3, hidden=(8,))


class Recorder(Callback):
    """Records every event with a copy of what it was given and what the Trainer showed at that moment."""

    def __init__(self):
        self.events = []

    def record(self, name, trainer, *args):
        grads = [p.grad is not None for p in trainer.model.parameters()]
        self.events.append((name, args, trainer.global_step, all(grads)))


for _event in EVENTS:
    setattr(
        Recorder,
        _event,
        lambda self, trainer, *args, _name=_event: self.record(
            _name, trainer, *[dict(a) if isinstance(a, dict) else a for a in args]
        ),
    )


def test_events_come_in_order_with_their_arguments():
    x, y = tiny_data(10)
    model = tiny_model()
    recorder = Recorder()
    trainer = Trainer(model, dg.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, callbacks=[recorder])
    train, val = DataLoader(TensorDataset(x, y), 4), DataLoader(TensorDataset(x, y), 10)
    history = trainer.fit(train, val, epochs=2)

    names = [event[0] for event in recorder.events]
    batch = ["on_batch_start", "on_after_backward", "on_step_end", "on_batch_end"]
    epoch = ["on_epoch_start", *batch * 3, "on_validation_end", "on_epoch_end"]
    assert names == ["on_fit_start", *epoch * 2, "on_fit_end"]

    by_name = {}
    for name, args, step, have_grads in recorder.events:
        by_name.setdefault(name, []).append((args, step, have_grads))
    assert [args for args, _, _ in by_name["on_epoch_start"]] == [(1,), (2,)]
    assert [args for args, _, _ in by_name["on_batch_start"]] == [(0,), (1,), (2,)] * 2
    # on_after_backward: gradients present, the step not yet taken; on_step_end: counted
    assert [step for _, step, _ in by_name["on_after_backward"]] == [0, 1, 2, 3, 4, 5]
    assert all(have_grads for _, _, have_grads in by_name["on_after_backward"])
    assert [step for _, step, _ in by_name["on_step_end"]] == [1, 2, 3, 4, 5, 6]
    for name in ("on_after_backward", "on_step_end", "on_batch_end"):
        for (logs,), _, _ in by_name[name]:
            assert set(logs) == {"loss", "accuracy"} and all(isinstance(v, float) for v in logs.values())
    # the three batch events of one batch see the same logs; the epoch's train_loss is their sample mean
    first_epoch = [logs["loss"] for (logs,), _, _ in by_name["on_batch_end"][:3]]
    assert history["train_loss"][0] == pytest.approx(np.average(first_epoch, weights=[4, 4, 2]))
    (validation,), _, _ = by_name["on_validation_end"][1]
    assert validation == {"val_loss": history["val_loss"][1], "val_accuracy": history["val_accuracy"][1]}
    (number, logs), _, _ = by_name["on_epoch_end"][1]
    assert number == 2 and logs == history.epochs[1]


def test_a_callback_without_validation_sees_no_validation_event():
    x, y = tiny_data(6)
    model = tiny_model()
    recorder = Recorder()
    Trainer(model, dg.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, callbacks=[recorder]).fit(
        DataLoader(TensorDataset(x, y), 6), epochs=1
    )
    assert "on_validation_end" not in [event[0] for event in recorder.events]


def test_callbacks_run_in_the_order_given():
    calls = []

    class Named(Callback):
        def __init__(self, name, order=0):
            self.name, self.order = name, order  # an "order" attribute means nothing to the Trainer

        def on_epoch_end(self, trainer, epoch, logs):
            calls.append(self.name)

    class Checkpoint(ModelCheckpoint):
        def __init__(self):
            super().__init__(directory=None, save_best=False, save_last=False)

        def on_epoch_end(self, trainer, epoch, logs):
            calls.append("checkpoint")

    x, y = tiny_data(4)
    model = tiny_model()
    callbacks = [Checkpoint(), Named("a"), Named("late", order=50), Named("b"), Named("early", order=-5)]
    Trainer(model, dg.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, callbacks=callbacks).fit(
        DataLoader(TensorDataset(x, y), 4), epochs=1
    )
    assert calls == ["checkpoint", "a", "late", "b", "early"]


def test_train_step_acts_in_the_documented_order(monkeypatch):
    """forward, loss, the non-finite check, backward, the after-backward observers, clipping, this
    step's learning rate (warm-up times the schedule), the optimizer step, the step-end observers."""
    trace = []
    x, y = tiny_data(8)
    model = tiny_model()
    opt = dg.optim.SGD(model.parameters(), lr=0.8)

    def traced(name, function):
        def call(*args, **kwargs):
            trace.append(name)
            return function(*args, **kwargs)

        return call

    class Observer(Callback):
        def on_after_backward(self, trainer, logs):
            trace.append("after_backward")
            self.raw = math.sqrt(sum(float((p.grad**2).sum()) for p in trainer.model.parameters()))

        def on_step_end(self, trainer, logs):
            trace.append(f"step_end lr={trainer.optimizer.param_groups[0]['lr']:.4g}")
            self.clipped = math.sqrt(sum(float((p.grad**2).sum()) for p in trainer.model.parameters()))

    observer = Observer()
    trainer = Trainer(
        model,
        opt,
        lambda o, t: 100 * F.cross_entropy(o, t),
        callbacks=[observer],
        scheduler=StepLR(opt, step_size=1, gamma=0.5),
        scheduler_interval="batch",
        warmup_steps=4,
        clip_grad_norm=0.5,
    )
    monkeypatch.setattr(model, "forward", traced("forward", model.forward))
    monkeypatch.setattr(trainer, "loss_fn", traced("loss", trainer.loss_fn))
    monkeypatch.setattr(trainer.divergence, "check_loss", traced("non-finite check", trainer.divergence.check_loss))
    monkeypatch.setattr(dg.Tensor, "backward", traced("backward", dg.Tensor.backward))
    monkeypatch.setattr(trainer_module, "clip_grad_norm_", traced("clip", trainer_module.clip_grad_norm_))
    monkeypatch.setattr(trainer.learning_rate, "apply", traced("lr", trainer.learning_rate.apply))
    monkeypatch.setattr(opt, "step", traced("optimizer step", opt.step))
    for _ in range(3):
        trainer.train_step((dg.tensor(x), dg.tensor(y)))
    one = ["forward", "loss", "non-finite check", "backward", "after_backward", "clip", "lr", "optimizer step"]
    # step t (from 0) uses warm-up (t + 1)/4 times the schedule's 0.8 * 0.5^t
    assert trace == [*one, "step_end lr=0.2", *one, "step_end lr=0.2", *one, "step_end lr=0.15"]
    assert observer.raw > 1 and observer.clipped == pytest.approx(0.5, rel=1e-5)  # observers see the raw gradients


def test_duck_typed_callbacks_need_only_the_events_they_use():
    class OnlyEpochs:
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, trainer, epoch, logs):
            self.epochs.append(epoch)

    x, y = tiny_data(4)
    model = tiny_model()
    only = OnlyEpochs()
    Trainer(model, dg.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, callbacks=[only]).fit(
        DataLoader(TensorDataset(x, y), 2), epochs=3
    )
    assert only.epochs == [1, 2, 3]


def test_monitors_see_the_gradients_before_clipping():
    seen = []

    class GradientNorm(Callback):
        def on_after_backward(self, trainer, logs):
            seen.append(math.sqrt(sum(float((p.grad**2).sum()) for p in trainer.model.parameters())))

    class AfterStep(Callback):
        def on_step_end(self, trainer, logs):
            seen.append(math.sqrt(sum(float((p.grad**2).sum()) for p in trainer.model.parameters())))

    x, y = tiny_data(8)
    model = tiny_model()
    trainer = Trainer(
        model,
        dg.optim.SGD(model.parameters(), lr=0.0),
        lambda out, t: 100 * F.cross_entropy(out, t),
        callbacks=[AfterStep(), GradientNorm()],
        clip_grad_norm=0.5,
    )
    trainer.fit(DataLoader(TensorDataset(x, y), 8), epochs=1)
    raw, clipped = seen
    assert raw > 1 and clipped == pytest.approx(0.5, rel=1e-5)


def test_the_nan_guard_stops_before_the_step_is_applied():
    x, y = tiny_data(8)
    model = tiny_model()
    calls = []

    def loss_fn(outputs, targets):
        calls.append(1)
        loss = F.cross_entropy(outputs, targets)
        return loss * float("inf") if len(calls) == 2 else loss

    trainer = Trainer(model, dg.optim.SGD(model.parameters(), lr=0.1), loss_fn)
    after_first = []
    trainer.callbacks.append(
        type(
            "Snapshot",
            (Callback,),
            {"on_step_end": lambda self, t, logs: after_first.append([p.data.copy() for p in t.model.parameters()])},
        )()
    )
    with pytest.raises(TrainingDiverged, match=r"training loss became inf at step 2 \(epoch 1\); last finite loss"):
        trainer.fit(DataLoader(TensorDataset(x, y), 4), epochs=1)
    assert len(after_first) == 1 and trainer.global_step == 1
    for before, p in zip(after_first[0], model.parameters()):
        np.testing.assert_array_equal(before, p.data)  # the diverging step never reached the weights


def test_no_nan_guard_when_turned_off():
    x, y = tiny_data(4)
    model = tiny_model()
    trainer = Trainer(
        model, dg.optim.SGD(model.parameters(), lr=0.1), lambda o, t: F.cross_entropy(o, t) * np.nan, nan_guard=False
    )
    assert not trainer.divergence.nan_check
    history = trainer.fit(DataLoader(TensorDataset(x, y), 4), epochs=1)
    assert math.isnan(history["train_loss"][0])


def test_a_learning_rate_policy_equals_the_shortcut():
    x, y = tiny_data(12)
    histories = []
    for explicit in (False, True):
        model = tiny_model()
        opt = dg.optim.SGD(model.parameters(), lr=0.4)
        scheduler = StepLR(opt, step_size=2, gamma=0.5)
        kwargs = (
            dict(learning_rate=LearningRate.of(opt, scheduler, "batch"))
            if explicit
            else dict(scheduler=scheduler, scheduler_interval="batch")
        )
        trainer = Trainer(model, opt, F.cross_entropy, **kwargs)
        histories.append(trainer.fit(DataLoader(TensorDataset(x, y), 4), epochs=2))
        assert opt.param_groups[0]["lr"] == pytest.approx(0.4 * 0.5**2)  # the rate of the 6th step (t = 5)
    assert histories[0].epochs[1]["lr"] == histories[1].epochs[1]["lr"] == pytest.approx(0.4 * 0.5**2)
    assert [logs["train_loss"] for logs in histories[0].epochs] == [logs["train_loss"] for logs in histories[1].epochs]
    with pytest.raises(ValueError, match="LearningRate: interval must be 'epoch' or 'batch', got 'step'"):
        LearningRate([0.1], scheduler, "step")
    with pytest.raises(ValueError, match="give either learning_rate or scheduler"):
        Trainer(model, opt, F.cross_entropy, scheduler=scheduler, learning_rate=LearningRate.of(opt, scheduler))


def test_reduce_on_plateau_falls_back_to_the_training_loss_without_validation():
    x, y = tiny_data(6)
    model = tiny_model()
    opt = dg.optim.SGD([dg.nn.Parameter(np.zeros(1))], lr=0.1)  # not the model's: the loss never changes
    trainer = Trainer(model, opt, F.cross_entropy, scheduler=ReduceLROnPlateau(opt, factor=0.5, patience=0))
    history = trainer.fit(DataLoader(TensorDataset(x, y), 6), epochs=3)
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.05])  # epoch 2 did not improve on epoch 1
    plateau = LearningRate.of(opt, ReduceLROnPlateau(opt), monitor="val_accuracy")
    with pytest.raises(KeyError, match="LearningRate: metric 'val_accuracy' for the plateau schedule not in the logs"):
        Trainer(model, opt, F.cross_entropy, learning_rate=plateau).fit(DataLoader(TensorDataset(x, y), 6), epochs=1)


def test_evaluate_and_predict_need_no_optimizer():
    x, y = tiny_data(9)
    model = tiny_model()
    trainer = Trainer(model, loss_fn=F.cross_entropy)
    result = trainer.evaluate(DataLoader(TensorDataset(x, y), 4))
    assert set(result) == {"loss", "accuracy"} and math.isfinite(result["loss"])
    predict_only = Trainer(model)
    assert predict_only.predict(x).shape == (9, 3)
    with pytest.raises(ValueError, match=r"Trainer.fit: needs optimizer; pass it to Trainer\(...\)"):
        trainer.fit(DataLoader(TensorDataset(x, y), 4))
    with pytest.raises(ValueError, match="Trainer.evaluate: needs loss_fn"):
        predict_only.evaluate(DataLoader(TensorDataset(x, y), 4))
    with pytest.raises(ValueError, match="Trainer.fit: needs optimizer and loss_fn"):
        predict_only.fit(DataLoader(TensorDataset(x, y), 4))


def test_a_trainer_without_optimizer_loads_the_model_of_a_checkpoint(tmp_path):
    x, y = tiny_data(8)
    model = tiny_model()
    trainer = Trainer(model, dg.optim.Adam(model.parameters(), lr=0.05), F.cross_entropy)
    trainer.fit(DataLoader(TensorDataset(x, y), 4), epochs=2)
    trainer.save_checkpoint(str(tmp_path / "c.safetensors"))
    fresh = presets.mlp((2,), 3, hidden=(8,), generator=np.random.default_rng(9))
    Trainer(fresh, loss_fn=F.cross_entropy).load_checkpoint(str(tmp_path / "c.safetensors"))
    np.testing.assert_array_equal(Trainer(fresh).predict(x), trainer.predict(x))
