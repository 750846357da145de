"""deepgrad.search: spaces and their narrowing, ASHA, the study file (resume, torn lines), failures as
data, the serial and local executors giving the same trials, and a real training objective."""

import json
import math

import numpy as np
import pytest

from deepgrad.errors import TrainingDiverged
from deepgrad.search import (
    ASHA,
    Choice,
    IntLogUniform,
    IntUniform,
    LogUniform,
    Study,
    TrainingObjective,
    Uniform,
    random_search,
)

OPTIMUM = 1e-3  # of the synthetic objective: the score is highest at x = 1e-3


def peaked(params, report):
    """A score that peaks at x = OPTIMUM on the log scale and, per epoch, approaches it from below."""
    distance = (math.log10(params["x"]) - math.log10(OPTIMUM)) ** 2
    for epoch in range(1, 4):
        report(epoch, -distance - 1.0 / epoch)
    return -distance


# ----------------------------------------------------------------------------
# Spaces


def test_spaces_sample_within_their_ranges_and_types():
    rng = np.random.default_rng(0)
    draws = {
        space: [space.sample(rng) for _ in range(2000)]
        for space in (Uniform(-1, 1), LogUniform(1e-6, 1e-2), IntUniform(2, 5), IntLogUniform(1, 1000))
    }
    for space, values in draws.items():
        assert all(space.lo <= v <= space.hi for v in values), space
    assert all(isinstance(v, int) for v in draws[IntUniform(2, 5)]) and set(draws[IntUniform(2, 5)]) == {2, 3, 4, 5}
    decades = np.histogram(np.log10(draws[LogUniform(1e-6, 1e-2)]), bins=[-6, -5, -4, -3, -2])[0]
    assert decades.min() > 400  # each decade about equally likely
    assert sum(v < 10 for v in draws[IntLogUniform(1, 1000)]) > 400
    assert Choice(["a", [1, 2]]).sample(rng) in ("a", [1, 2])


def test_narrowing_spans_the_best_widened_and_clipped():
    space = LogUniform(1e-6, 1e-2)
    narrow = space.narrowed([1e-4, 1e-3])  # span 1 decade, +0.25 decade each side
    assert narrow.lo == pytest.approx(10**-4.25) and narrow.hi == pytest.approx(10**-2.75)
    assert space.narrowed([1e-6, 1e-5]).lo == 1e-6  # never beyond the original range
    single = space.narrowed([1e-4])  # one value: 5 % of the original range each side
    assert single.lo == pytest.approx(10**-4.2) and single.hi == pytest.approx(10**-3.8)
    assert single.narrowed([1e-4]).bounds == (1e-6, 1e-2)
    assert IntUniform(1, 100).narrowed([10, 20]) == IntUniform(5, 25, bounds=(1, 100))  # ±4.95, rounded outwards
    assert Choice(["a", "b", "c"]).narrowed(["c", "a", "c"]) == Choice(["a", "c"])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Uniform(1, 1), "lo must be below hi"),
        (lambda: LogUniform(0, 1), "a log-scale range needs positive bounds"),
        (lambda: Uniform(0, float("inf")), "bounds must be finite numbers"),
        (lambda: IntUniform(1, 2.5), "bounds must be finite integers"),
        (lambda: Choice([]), "needs at least one option"),
        (lambda: Choice("abc"), "options must be a list of values"),  # never its letters
        (lambda: Choice({"a": 1}), "options must be a list of values"),
        (lambda: random_search(peaked, {"x": LogUniform(1e-6, 1)}, 3, scheduler=object()), "scheduler must be None"),
        (lambda: random_search(peaked, {"x": LogUniform(1e-6, 1)}, 3, executor=object()), "executor must be serial"),
        (lambda: random_search(peaked, {}, 3), "expected a non-empty dict"),
        (lambda: random_search(peaked, {"x": (1, 2)}, 3), r"\['x'\] are not spaces"),
        (lambda: random_search(peaked, {"x": LogUniform(1e-6, 1)}, 3, keep=0), r"keep must be in \(0, 1\]"),
        (lambda: random_search(peaked, {"x": LogUniform(1e-6, 1)}, 0), "trials must be a whole number >= 1"),
        (lambda: random_search(peaked, {"x": LogUniform(1e-6, 1)}, 3, executor="mpi"), "unknown executor 'mpi'"),
    ],
)
def test_bad_searches_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ----------------------------------------------------------------------------
# The search


def test_each_round_narrows_around_the_optimum():
    study = random_search(peaked, {"x": LogUniform(1e-6, 1.0)}, trials=30, rounds=3, keep=0.2, seed=3)
    ranges = [space["x"] for space in study.spaces]
    for narrower, wider in zip(ranges[1:], ranges):
        assert narrower.lo <= OPTIMUM <= narrower.hi
        assert math.log(narrower.hi / narrower.lo) < math.log(wider.hi / wider.lo)
    assert len(study) == 90 and {t.round for t in study.trials.values()} == {0, 1, 2}
    assert abs(math.log10(study.best.params["x"]) + 3) < 0.05
    for trial in study.trials.values():
        expected = [[e, pytest.approx(trial.score - 1 / e)] for e in (1, 2, 3)]
        assert trial.status == "finished" and trial.scores == expected


def test_asha_keeps_the_top_third_at_each_rung():
    asha = ASHA(min_epochs=1, reduction=3)
    assert [e for e in range(1, 30) if asha.is_rung(e)] == [1, 3, 9, 27]
    assert asha.should_stop(1, 0.5) is False  # the first at a rung goes on
    assert asha.should_stop(1, 0.2) is True  # 2 reported: only the best ⌈2/3⌉ = 1 goes on
    assert asha.should_stop(1, 0.9) is False
    assert asha.should_stop(1, 0.6) is False  # 4 reported: the best 2 are 0.9 and 0.6
    assert asha.should_stop(1, 0.55) is True  # 5 reported: still the best 2
    assert asha.should_stop(2, 0.0) is False  # not a rung
    assert ASHA(mode="min").should_stop(1, float("nan")) is True


def test_asha_stops_the_worse_trials_early_and_saves_their_epochs():
    space = {"x": LogUniform(1e-6, 1.0)}
    full = random_search(peaked, space, trials=30, seed=5)
    stopped = random_search(peaked, space, trials=30, seed=5, scheduler=ASHA(min_epochs=1, reduction=3))
    statuses = [t.status for t in stopped.trials.values()]
    assert statuses.count("pruned") >= 15 and "finished" in statuses
    epochs = sum(len(t.scores) for t in stopped.trials.values())
    assert epochs < 0.6 * sum(len(t.scores) for t in full.trials.values())
    assert stopped.best.params == full.best.params  # the best trial is never stopped here
    for trial in stopped.trials.values():
        if trial.status == "pruned":
            assert trial.score == trial.scores[-1][1] and trial.scores[-1][0] in (1, 3)


def test_the_same_seed_gives_the_same_trials_on_every_executor():
    space = {"x": LogUniform(1e-6, 1.0), "n": IntUniform(1, 9), "c": Choice(["a", "b"])}
    serial = random_search(peaked, space, trials=6, rounds=2, seed=11)
    local = random_search(peaked, space, trials=6, rounds=2, seed=11, executor="local", n_jobs=2)
    assert [serial.trials[i].params for i in range(12)] == [local.trials[i].params for i in range(12)]
    assert [serial.trials[i].score for i in range(12)] == [local.trials[i].score for i in range(12)]
    other = random_search(peaked, space, trials=6, seed=12)
    assert other.trials[0].params != serial.trials[0].params


def test_asha_on_the_local_executor_shares_its_rungs(tmp_path):
    study = random_search(
        peaked, {"x": LogUniform(1e-6, 1.0)}, trials=12, seed=5, scheduler="asha", executor="local", n_jobs=2
    )
    assert [t.status for t in study.trials.values()].count("pruned") >= 6


def failing(params, report):
    if params["x"] < 1e-4:
        raise TrainingDiverged("training loss became nan at step 3")
    if params["x"] > 1e-1:
        return float("nan")
    return peaked(params, report)


def test_failures_are_data_and_the_study_goes_on():
    study = random_search(failing, {"x": LogUniform(1e-6, 1.0)}, trials=20, seed=2)
    by_status = {s: [t for t in study.trials.values() if t.status == s] for s in ("finished", "failed")}
    assert len(by_status["finished"]) + len(by_status["failed"]) == 20 and by_status["failed"]
    errors = {t.error for t in by_status["failed"]}
    assert "TrainingDiverged: training loss became nan at step 3" in errors
    assert "the objective returned nan" in errors
    assert study.best.status == "finished"


def test_a_study_file_resumes_and_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "study.jsonl"
    calls = []

    def counted(params, report):
        calls.append(params["x"])
        return peaked(params, report)

    first = random_search(counted, {"x": LogUniform(1e-6, 1.0)}, trials=5, rounds=2, seed=4, study=str(path))
    lines = path.read_text().splitlines()
    assert len(lines) == 10 and all(json.loads(line)["status"] == "finished" for line in lines)
    path.write_text("\n".join(lines[:6]) + "\n" + lines[6][:25])  # crashed while writing trial 6
    calls.clear()
    resumed = random_search(counted, {"x": LogUniform(1e-6, 1.0)}, trials=5, rounds=2, seed=4, study=str(path))
    assert len(calls) == 4  # trials 6..9 only
    assert [resumed.trials[i].params for i in range(10)] == [first.trials[i].params for i in range(10)]
    assert resumed.notes == [
        f"study file {path}: its last line was torn (a crash while writing it); that trial is run again"
    ]
    assert len(path.read_text().splitlines()) == 10
    reopened = Study(str(path))
    assert len(reopened) == 10 and reopened.best.number == first.best.number
    records = reopened.records()
    assert records[0]["param_x"] == first.trials[0].params["x"] and set(records[0]) >= {"score", "status", "round"}


def test_ctrl_c_stops_the_study_with_what_finished_saved(tmp_path):
    path = tmp_path / "study.jsonl"

    def interrupted(params, report):
        if interrupted.calls == 3:
            raise KeyboardInterrupt
        interrupted.calls += 1
        return peaked(params, report)

    interrupted.calls = 0
    study = random_search(interrupted, {"x": LogUniform(1e-6, 1.0)}, trials=10, seed=1, study=str(path))
    assert study.interrupted and len(study) == 3 and len(path.read_text().splitlines()) == 3


# ----------------------------------------------------------------------------
# Training runs as trials


def test_a_search_over_training_options_on_digits():
    objective = TrainingObjective({"epochs": 2, "hidden": [16], "train_size": 300, "batch_size": 50})
    space = objective.check_space({"lr": LogUniform(1e-4, 1e-1), "weight_decay": LogUniform(1e-8, 1e-4)})
    study = random_search(objective, space, trials=4, seed=0, executor="local", n_jobs=2)
    assert len(study) == 4 and all(t.status == "finished" for t in study.trials.values())
    for trial in study.trials.values():
        assert [epoch for epoch, _ in trial.scores] == [1, 2] and 0 <= trial.score <= 1
        assert trial.score == trial.scores[-1][1]  # the last epoch's validation accuracy
    with pytest.raises(ValueError, match=r"unknown options \['learning_rate'\]; valid: dataset"):
        objective.check_space({"learning_rate": LogUniform(1e-4, 1e-1)})


# ----------------------------------------------------------------------------
# Ray


@pytest.fixture
def ray():
    """Ray, shut down after the test (each test starts or joins its own)."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'deepgrad[ray]')")
    ray.shutdown()
    yield ray
    ray.shutdown()


def test_ray_runs_the_same_trials_on_a_local_ray_with_shared_rungs(ray):
    import sys

    from deepgrad.search import RayExecutor

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import this test module
    space = {"x": LogUniform(1e-6, 1.0), "c": Choice(["a", "b"])}
    serial = random_search(peaked, space, trials=6, rounds=2, seed=11)
    on_ray = random_search(peaked, space, trials=6, rounds=2, seed=11, executor=RayExecutor(cpus_per_trial=1))
    assert [serial.trials[i].params for i in range(12)] == [on_ray.trials[i].params for i in range(12)]
    assert [serial.trials[i].score for i in range(12)] == [on_ray.trials[i].score for i in range(12)]
    assert all(t.status == "finished" for t in on_ray.trials.values())
    pruned = random_search(peaked, {"x": LogUniform(1e-6, 1.0)}, trials=12, seed=5, scheduler="asha", executor="ray")
    assert [t.status for t in pruned.trials.values()].count("pruned") >= 6


UNREACHABLE = """
from deepgrad.errors import ConfigError
from deepgrad.search import LogUniform, RayExecutor, random_search
try:
    random_search(lambda params, report: 0.0, {"x": LogUniform(1e-6, 1.0)}, trials=2,
                  executor=RayExecutor(address="ray://127.0.0.1:9", connect_timeout=20))
except ConfigError as error:
    print(error)
"""


def test_an_unreachable_ray_cluster_is_a_clear_error_within_the_timeout(ray):
    """In a process of its own: Ray's client keeps trying to connect from a thread after the error,
    which would disturb the local Ray that later tests start in this process."""
    import subprocess
    import sys
    import time

    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", UNREACHABLE], capture_output=True, text=True, timeout=120)
    assert "could not reach the Ray cluster at 'ray://127.0.0.1:9'" in done.stdout, done.stderr
    assert time.perf_counter() - start < 60


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    from deepgrad.errors import ConfigError
    from deepgrad.search import RayExecutor

    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    with pytest.raises(ConfigError, match=r"the ray executor needs Ray: pip install 'deepgrad\[ray\]'"):
        RayExecutor()


def dies_once(params, report):
    """Kills its worker process the first time it runs (a marker file remembers), then succeeds."""
    import os

    marker = params["marker"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return 0.5


def test_a_trial_whose_ray_worker_died_is_retried_once(ray, tmp_path):
    import sys

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    study = random_search(dies_once, {"marker": Choice([str(tmp_path / "died")])}, trials=1, executor="ray")
    (trial,) = study.trials.values()
    assert trial.status == "finished" and trial.score == 0.5 and (tmp_path / "died").exists()
