"""The thread count of a run is measured on its first steps, fixed for the rest, recorded in
config.json (a resumed run goes on with it) and given back when the run is done."""

import json

import numpy as np
import pytest

from deepgrad.threads import ThreadSetting, get_num_threads, get_thread_setting, usable_cores
from deepgrad.train import build_run
from deepgrad.train.thread_tuning import ThreadTuner


class FakeBlas:
    def __init__(self, threads):
        self.threads, self.history = threads, []

    def get(self):
        return self.threads

    def set(self, n):
        self.threads = n
        self.history.append(n)


class Steps:
    """Drive a tuner through optimizer steps whose duration depends on the thread count."""

    def __init__(self, tuner, blas, seconds):
        self.tuner, self.blas, self.seconds, self.now = tuner, blas, seconds, 0.0
        self.threads_per_step = []
        tuner.clock = lambda: self.now

    def run(self, steps):
        for step in range(steps):
            self.tuner.on_batch_start(None, step)
            self.threads_per_step.append(self.blas.threads)
            self.now += self.seconds[self.blas.threads]
            self.tuner.on_batch_end(None, {})


@pytest.mark.parametrize(
    "seconds,faster", [({2: 0.010, 1: 0.015}, 2), ({2: 0.013, 1: 0.012}, 1), ({2: 0.010, 1: 0.0109}, 1)]
)  # within the margin: 1 is steadier
def test_the_faster_count_is_kept_after_probing_each(seconds, faster):
    blas, chosen = FakeBlas(2), []
    tuner = ThreadTuner(probe_steps=3, on_chosen=chosen.append, threads=blas)
    steps = Steps(tuner, blas, seconds)
    tuner.on_fit_start(None)
    steps.run(20)
    # one thread first, then all: a settling step and 3 timed ones each; then the faster one
    assert steps.threads_per_step == [1] * 4 + [2] * 4 + [faster] * 12
    assert tuner.chosen == faster and chosen == [faster]
    assert tuner.timings == pytest.approx(seconds)
    assert ThreadTuner().probe_steps == 20
    tuner.restore()
    assert blas.threads == 2


def test_a_pathological_count_is_dropped_after_one_timed_step():
    blas = FakeBlas(2)
    tuner = ThreadTuner(probe_steps=20, threads=blas)
    steps = Steps(tuner, blas, {1: 0.05, 2: 0.80})  # two threads on a busy core: 16 times slower
    tuner.on_fit_start(None)
    steps.run(30)
    assert steps.threads_per_step == [1] * 21 + [2] * 2 + [1] * 7
    assert tuner.chosen == 1 and tuner.timings == pytest.approx({1: 0.05, 2: 0.80})


def test_one_candidate_is_chosen_without_probing():
    blas, chosen = FakeBlas(1), []
    tuner = ThreadTuner(candidates=[1], on_chosen=chosen.append, threads=blas)
    steps = Steps(tuner, blas, {1: 0.01})
    tuner.on_fit_start(None)
    steps.run(5)
    assert chosen == [1] and set(steps.threads_per_step) == {1}


def test_a_run_records_its_thread_setting_and_gives_the_setting_back(tmp_path):
    before, cores = get_thread_setting(), usable_cores()
    out = tmp_path / "run"
    run = build_run({"hidden": [16], "batch_size": 16, "epochs": 1}, out=str(out), progress=False)  # 79 steps
    tuner = next(c for c in run.trainer.callbacks if isinstance(c, ThreadTuner))
    run.fit()
    probed = {ThreadSetting(1), ThreadSetting(cores), ThreadSetting(cores, "blas")} if cores > 1 else set()
    assert set(tuner.timings) == probed and tuner.chosen in probed | {ThreadSetting(1)}
    saved = json.loads((out / "config.json").read_text())
    assert (saved["threads"], saved["threads_by"]) == tuner.chosen
    assert (run.config["threads"], run.config["threads_by"]) == tuner.chosen
    assert get_thread_setting() == before
    resumed = build_run({"epochs": 2}, out=str(out), resume=True, progress=False)  # goes on with that setting
    assert not any(isinstance(c, ThreadTuner) for c in resumed.trainer.callbacks)
    assert get_thread_setting() == tuner.chosen
    fixed = build_run({"threads": before.threads, "threads_by": before.by}, progress=False)
    assert not any(isinstance(c, ThreadTuner) for c in fixed.trainer.callbacks)
    assert get_thread_setting() == before


def test_threads_by_alone_narrows_what_the_tuner_probes():
    cores = usable_cores()
    run = build_run({"hidden": [16], "threads_by": "blas"}, progress=False)
    tuner = next(c for c in run.trainer.callbacks if isinstance(c, ThreadTuner))
    assert tuner.candidates == [ThreadSetting(1)] + ([ThreadSetting(cores, "blas")] if cores > 1 else [])


def test_the_tuner_keeps_its_first_candidate_unless_another_is_clearly_faster():
    """Settings are opaque to the tuner: the first candidate is the steady one."""
    blas = FakeBlas("one")
    tuner = ThreadTuner(candidates=["one", "ops", "blas"], probe_steps=2, threads=blas)
    steps = Steps(tuner, blas, {"one": 0.010, "ops": 0.0095, "blas": 0.007})
    tuner.on_fit_start(None)
    steps.run(12)
    assert tuner.chosen == "blas" and steps.threads_per_step == ["one"] * 3 + ["ops"] * 3 + ["blas"] * 6
    blas = FakeBlas("one")
    close = ThreadTuner(candidates=["one", "ops"], probe_steps=2, threads=blas)
    steps = Steps(close, blas, {"one": 0.010, "ops": 0.0095})
    close.on_fit_start(None)
    steps.run(8)
    assert close.chosen == "one"  # 5 % faster is within the margin


def test_an_epoch_shorter_than_the_probe_decides_at_its_end():
    """A run's options are resolved by its first epoch's end (its config.json, its TensorBoard hparams)."""
    blas, chosen = FakeBlas(2), []
    tuner = ThreadTuner(probe_steps=20, on_chosen=chosen.append, threads=blas)
    steps = Steps(tuner, blas, {1: 0.010, 2: 0.004})
    tuner.on_fit_start(None)
    steps.run(25)  # one thread: settle + 20 timed; two threads: settle + 3 timed, then the epoch ends
    tuner.on_epoch_end(None, 1, {})
    assert chosen == [2] and tuner.timings == pytest.approx({1: 0.010, 2: 0.004})
    tuner.on_epoch_end(None, 2, {})  # decided once
    assert chosen == [2]
    early = ThreadTuner(probe_steps=20, on_chosen=chosen.append, threads=FakeBlas(2))
    early.on_fit_start(None)
    early.on_epoch_end(None, 1, {})  # not one step timed: the steady single thread
    assert chosen == [2, 1]


def test_any_trainer_takes_the_tuner_as_a_callback():
    """The library's own loop gets the protection `deepgrad train` has: the tuner probes deepgrad's
    thread counts on the first steps of fit and leaves the faster one set."""
    import deepgrad as dg
    import deepgrad.functional as F
    from deepgrad import nn
    from deepgrad.data import DataLoader, TensorDataset
    from deepgrad.train import Trainer

    before = get_num_threads()
    dg.manual_seed(0)
    rng = np.random.default_rng(0)
    data = TensorDataset(rng.standard_normal((64, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 64))
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 3))
    tuner = ThreadTuner(candidates=[1, 2], probe_steps=2)
    trainer = Trainer(model, dg.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, callbacks=[tuner])
    try:
        trainer.fit(DataLoader(data, batch_size=8, shuffle=True, seed=0), epochs=2)
        assert tuner.chosen in (1, 2) and set(tuner.timings) == {1, 2}
        assert get_num_threads() == tuner.chosen
    finally:
        dg.set_num_threads(before)
