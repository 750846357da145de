"""The step's policies: the learning rate as a function of the step (warm-up in front of the
schedule, a plan that holds across resumes, a plateau's rates), the divergence checks, and the
History's table-like access."""

import math

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.optim.lr_scheduler import CosineAnnealingLR, ReduceLROnPlateau, StepLR
from deepgrad.train import DivergenceGuard, History, LearningRate, Trainer, TrainingDiverged, build_run, presets


def test_the_rate_is_warm_up_times_the_schedule_of_the_step():
    opt = dg.optim.SGD([dg.nn.Parameter(np.zeros(1))], lr=0.4)
    policy = LearningRate.of(opt, CosineAnnealingLR(opt, T_max=10), "batch", warmup_steps=3)
    policy.until = 8
    cosine = [0.4 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(11)]
    assert [policy.at(t, 0)[0] for t in range(11)] == pytest.approx(
        [cosine[0] / 3, cosine[1] * 2 / 3, cosine[2], *cosine[3:9], cosine[8], cosine[8]], rel=1e-15
    )
    by_epoch = LearningRate.of(opt, StepLR(opt, step_size=1, gamma=0.5), "epoch")
    assert [by_epoch.at(step, epoch)[0] for step, epoch in ((0, 0), (7, 0), (8, 1), (99, 3))] == [0.4, 0.4, 0.2, 0.05]
    policy.set_base([0.8])  # --override --lr: the schedule goes on from its step with the new base
    assert policy.at(5, 0) == pytest.approx([2 * cosine[5]])


def test_a_plateau_reduces_its_rate_under_warm_up_and_keeps_it_in_checkpoints():
    opt = dg.optim.SGD([dg.nn.Parameter(np.zeros(1))], lr=0.1)
    policy = LearningRate.of(opt, ReduceLROnPlateau(opt, factor=0.5, patience=0), warmup_steps=100)
    policy.apply(opt, 9, 0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)  # step 10 of the warm-up
    policy.end_epoch(opt, {"val_loss": 1.0})
    policy.end_epoch(opt, {"val_loss": 2.0})  # worse: halved from 0.1, not from 0.01
    assert policy.rates == pytest.approx([0.05])
    state = policy.state_dict()
    fresh = LearningRate.of(opt, ReduceLROnPlateau(opt, factor=0.5, patience=0), warmup_steps=100)
    fresh.load_state_dict(state)
    assert fresh.rates == pytest.approx([0.05]) and fresh.scheduler.best == 1.0
    assert fresh.at(200, 0) == pytest.approx([0.05])


def tiny(n=12):
    rng = np.random.default_rng(0)
    return DataLoader(TensorDataset(rng.standard_normal((n, 2)).astype(np.float32), np.arange(n) % 3), 4)


def test_a_finite_loss_that_explodes_is_warned_about_once_or_stops_the_run(capsys):
    losses = iter([2.0, 3.0, 5000.0, 9000.0, 1.0, 4.0])

    def exploding(outputs, targets):
        return F.cross_entropy(outputs, targets) * 0 + next(losses)

    dg.manual_seed(0)
    model = presets.mlp((2,), 3, hidden=(4,))
    Trainer(model, dg.optim.SGD(model.parameters(), lr=0.0), exploding).fit(tiny(), epochs=2)
    err = capsys.readouterr().err
    assert err.count("warning") == 1
    assert (
        "the training loss 5000 at step 3 (epoch 1) is over 1000 times the first step's (2): the run is diverging"
        in err
        and "--stop-on-divergence" in err
    )
    losses = iter([2.0, 3.0, 5000.0])
    trainer = Trainer(model, dg.optim.SGD(model.parameters(), lr=0.0), exploding, stop_on_divergence=True)
    with pytest.raises(TrainingDiverged, match=r"5000 at step 3 .* stopped \(--stop-on-divergence\)"):
        trainer.fit(tiny(), epochs=1)
    assert trainer.global_step == 2  # the exploding step was never applied


def test_stop_on_divergence_is_an_option_of_a_run(tmp_path):
    run = build_run(
        {"optimizer": "adam", "lr": 1e6, "hidden": [16], "train_size": 256, "epochs": 3, "stop_on_divergence": True},
        out=str(tmp_path / "run"),
        progress=False,
    )
    with pytest.raises(TrainingDiverged, match="is over 1000 times the first step's"):
        run.fit()
    with pytest.raises(ValueError, match="explosion must be a factor above 1"):
        DivergenceGuard(explosion=1)


def test_the_first_loss_is_kept_across_a_resume(tmp_path):
    out = str(tmp_path / "run")
    build_run({"hidden": [16], "train_size": 256, "epochs": 1}, out=out, progress=False).fit()
    resumed = build_run({"epochs": 2}, out=out, resume=True, progress=False)
    resumed.fit()
    assert resumed.trainer.divergence.first_loss == pytest.approx(math.log(10), rel=0.1)


def test_history_is_a_table_of_epochs():
    history = History([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0, "val_loss": 1.5}])
    assert "loss" in history and "val_loss" in history and "accuracy" not in history
    assert list(history) == ["epoch", "loss", "val_loss"] and len(history) == 2
    assert history["val_loss"] == [1.5]
