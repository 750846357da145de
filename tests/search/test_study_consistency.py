"""Studies and searches are consistent with what produced them (issue 27, item 2): a rerun with other
options is refused naming each difference (or starts afresh with --new, the old study moved aside); a
study file from another search or with fields of the wrong type is one line naming it; one search per
study at a time, and a killed one leaves nothing locked or running; a search whose every trial fails
says why and exits 2; trials are drawn as they run; a refused search leaves --out as it was; best.toml
is valid TOML whatever it holds."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from deepgrad import cli
from deepgrad.errors import ConfigError, DeepgradError
from deepgrad.search import LogUniform, Study, random_search
from deepgrad.search.files import toml_text, write_best
from deepgrad.search.training import SearchFailed, search_training
from deepgrad.train import config as options

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

BASE = {"train_size": 100, "epochs": 1, "hidden": [8], "batch_size": 50}


def search(out, base=None, **settings):
    """A quick search over training options: 2 trials of 1 epoch on 100 digits, in this process."""
    settings = {"trials": 2, "rounds": 1, "executor": "serial", **settings}
    return search_training({**BASE, **(base or {})}, str(out), **settings)


def environment():
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")


def peaked(params, report):
    """A score that peaks at x = 1e-3 on the log scale."""
    report(1, 0.0)
    return -((math.log10(params["x"]) + 3) ** 2)


# ----------------------------------------------------------------------------
# A study records what made it


def test_a_rerun_with_other_options_is_refused_naming_each_difference_or_starts_afresh_with_new(tmp_path):
    out = tmp_path / "search"
    first = search(out)
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    with pytest.raises(ConfigError) as caught:
        search(
            out,
            base={"optimizer": "sgd", "hidden": [16]},
            space={"lr": LogUniform(1e-3, 1e-1)},
            trials=3,
            scheduler="asha",
        )
    message = str(caught.value)
    for fragment in (
        "--optimizer sgd (the study has adam)",
        "--hidden 16 (the study has 8)",
        "space [lr] log_uniform [0.001, 0.1] (the study has log_uniform [1e-05, 0.1])",
        "a space without [weight_decay] (the study searches it: log_uniform [1e-08, 0.0001])",
        "--trials 3 (the study has 2)",
        "--scheduler asha (the study has none)",
        "pass --new",
    ):
        assert fragment in message, message
    assert "\n" not in message
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before  # nothing touched

    # options that only say where or how fast trials run are no difference; more rounds go on from the study
    longer = search(out, base={"threads": 1}, rounds=2)
    assert len(longer) == 4 and [longer.trials[i].params for i in (0, 1)] == [first.trials[i].params for i in (0, 1)]
    resumed = (out / "study.jsonl").read_text()

    notes = []
    renewed = search(out, base={"optimizer": "sgd"}, new=True, note=notes.append)
    assert notes == [
        f"--new: the previous study (study.jsonl, search.json, best.toml, search.png) was moved to {out}/previous-1/"
    ]
    assert (out / "previous-1" / "study.jsonl").read_text() == resumed
    assert len(renewed) == 2 and len((out / "study.jsonl").read_text().splitlines()) == 2
    best = tomllib.loads((out / "best.toml").read_text(encoding="utf-8"))  # nothing mixed from the old study
    assert best == {
        name: value
        for name, value in {**options.resolve({**BASE, "optimizer": "sgd"}), **renewed.best.params}.items()
        if value is not None
    }
    assert json.loads((out / "search.json").read_text())["base"]["optimizer"] == "sgd"


def test_the_cli_refuses_other_options_in_one_line(capsys, tmp_path):
    out = str(tmp_path / "search")
    command = [
        "search",
        "--train-size",
        "100",
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--trials",
        "2",
        "--rounds",
        "1",
        "--backend",
        "serial",
        "--quiet",
        "--out",
        out,
    ]
    assert cli.main(command) == 0
    capsys.readouterr()
    assert cli.main([*command, "--optimizer", "sgd"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"{out} holds a study made with other options: --optimizer sgd (the study has adam)" in err


def test_a_study_file_from_another_search_is_one_line_naming_it(tmp_path):
    path = tmp_path / "study.jsonl"
    random_search(peaked, {"x": LogUniform(1e-6, 1.0)}, trials=3, seed=0, study=str(path))
    text = path.read_text()
    for space, settings, fragment in [
        ({"y": LogUniform(1e-6, 1.0)}, {}, "trial 1 is over ['x'], but this search's space is over ['y']"),
        ({"x": LogUniform(1e-4, 1.0)}, {}, "trial 1 has {'x': "),  # another range
        ({"x": LogUniform(1e-6, 1.0)}, {"seed": 1}, "but this search draws {'x': "),  # another seed
        (
            {"x": LogUniform(1e-6, 1.0)},
            {"trials": 2},
            "trial 3 is of round 1, but this search of 2 trials per round draws it in none of its 1 rounds",
        ),
    ]:
        with pytest.raises(ConfigError) as caught:
            random_search(peaked, space, study=str(path), **{"trials": 3, **settings})
        assert fragment in str(caught.value) and f"study file {path}" in str(caught.value)
        assert "\n" not in str(caught.value)
    assert path.read_text() == text


def test_the_cli_refuses_a_study_of_another_space_left_by_an_older_version(capsys, tmp_path):
    out = tmp_path / "search"
    out.mkdir()
    random_search(peaked, {"x": LogUniform(1e-6, 1.0)}, trials=2, seed=0, study=str(out / "study.jsonl"))
    text = (out / "study.jsonl").read_text()
    code = cli.main(["search", "--trials", "2", "--rounds", "1", "--backend", "serial", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "trial 1 is over ['x'], but this search's space is over ['lr', 'weight_decay']" in err
    assert os.listdir(out) == ["study.jsonl"] and (out / "study.jsonl").read_text() == text  # no search.json left


def test_new_moves_aside_a_damaged_study_that_a_plain_rerun_refuses(tmp_path):
    out = tmp_path / "search"
    search(out)
    path = out / "study.jsonl"
    path.write_text("garbage\n" + path.read_text())
    with pytest.raises(ConfigError, match=r"line 1 is not a trial .*; pass --new to move it aside"):
        search(out)
    notes = []
    study = search(out, new=True, note=notes.append)
    assert len(study) == 2 and (out / "previous-1" / "study.jsonl").read_text().startswith("garbage\n")
    assert notes and notes[0].startswith("--new: the previous study (study.jsonl, search.json, best.toml")


GOOD = {
    "number": 0,
    "round": 0,
    "params": {"x": 0.1},
    "status": "finished",
    "score": 0.5,
    "scores": [[1, 0.5]],
    "seconds": 0.1,
    "error": None,
}


@pytest.mark.parametrize(
    "line, fragment",
    [
        (json.dumps({**GOOD, "number": "1"}), "number must be a whole number >= 0, got '1'"),
        (json.dumps({**GOOD, "number": -1}), "number must be a whole number >= 0, got -1"),
        (json.dumps({**GOOD, "round": 1.5}), "round must be a whole number >= 0, got 1.5"),
        (json.dumps({**GOOD, "params": [0.1]}), "params must be an object of option -> value"),
        (json.dumps({**GOOD, "status": "done"}), "status must be one of finished, pruned, failed, got 'done'"),
        (json.dumps({**GOOD, "score": "high"}), "score must be a number, got 'high'"),
        (json.dumps({**GOOD, "scores": [[1]]}), "scores must be a list of [epoch, score] pairs"),
        (json.dumps({**GOOD, "scores": {"1": 0.5}}), "scores must be a list of [epoch, score] pairs"),
        (json.dumps({**GOOD, "seconds": True}), "seconds must be a number, got True"),
        (json.dumps({**GOOD, "error": 3}), "error must be a string, got 3"),
        (json.dumps({**GOOD, "colour": "red"}), "unknown fields ['colour']"),
        (json.dumps({"number": 1}), "missing fields ['params', 'round']"),
        ("[1, 2]", "expected a JSON object, got list"),
        ("null", "expected a JSON object, got NoneType"),
        ("1e999999", "expected a JSON object, got float"),
        ("1" * 5000, "ValueError: Exceeds the limit"),
        ("[" * 100_000 + "]" * 100_000, "RecursionError"),
    ],
)
@pytest.mark.parametrize("last", [False, True], ids=["mid-file", "last-line"])
def test_a_study_line_that_is_not_a_trial_is_one_line_naming_it(tmp_path, line, fragment, last):
    path = tmp_path / "study.jsonl"
    lines = [json.dumps(GOOD), line] + ([] if last else [json.dumps({**GOOD, "number": 2})])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:  # valid JSON is never taken for a torn line, even the last
        Study(str(path))
    message = str(caught.value)
    assert message.startswith(f"study file {path}: line 2 is not a trial") and fragment in message, message
    assert "\n" not in message


# ----------------------------------------------------------------------------
# Processes: one search per study; a killed search leaves nothing locked or running


def test_a_second_search_of_the_same_out_is_refused_and_a_killed_one_leaves_it_free(tmp_path):
    out = tmp_path / "search"
    command = [
        sys.executable,
        "-m",
        "deepgrad",
        "search",
        "--train-size",
        "200",
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--trials",
        "8",
        "--rounds",
        "1",
        "--backend",
        "serial",
        "--quiet",
        "--out",
        str(out),
    ]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment())
    lock = out / ".study.jsonl.lock"
    try:
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < deadline, "the first search never claimed its study"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGSTOP)  # holds the study for as long as the second search takes
        second = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=120)
    finally:
        os.kill(first.pid, signal.SIGKILL)  # the claim must not outlive it
        first.wait()
    assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert f"study {out}/study.jsonl is in use by another search (pid {first.pid})" in second.stderr
    third = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=120)
    assert third.returncode == 0, third.stderr
    numbers = [json.loads(line)["number"] for line in (out / "study.jsonl").read_text().splitlines()]
    assert sorted(numbers) == list(range(8))  # each trial once: the killed search's, then the rest
    assert not lock.exists()


def _children():
    """{pid: [child pids]} of every process, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    return children


def _descendants(pid):
    children, found, todo = _children(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie has ended
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_local_search_takes_its_worker_processes_with_it(tmp_path):
    out = tmp_path / "search"
    command = [
        sys.executable,
        "-m",
        "deepgrad",
        "search",
        "--train-size",
        "100",
        "--epochs",
        "100000",
        "--hidden",
        "8",
        "--trials",
        "4",
        "--rounds",
        "1",
        "--backend",
        "local",
        "--jobs",
        "2",
        "--scheduler",
        "asha",
        "--quiet",
        "--out",
        str(out),
    ]
    search_process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment())
    try:
        deadline = time.monotonic() + 60
        while len(_descendants(search_process.pid)) < 3:  # two workers and the ASHA server (and maybe more)
            assert search_process.poll() is None and time.monotonic() < deadline, "no workers started"
            time.sleep(0.05)
        time.sleep(0.5)  # the workers are training
        started = _descendants(search_process.pid)
    finally:
        search_process.kill()
        search_process.wait()
    deadline = time.monotonic() + 15
    while any(_running(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in started if _running(pid)]
    for pid in left:  # do not leave them behind when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} of the search's {len(started)} processes outlived it"


# ----------------------------------------------------------------------------
# Failures, sizes, refusals, files


def test_a_search_whose_every_trial_fails_exits_2_with_their_errors(capsys, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text("[lr]\nchoice = [1e30]\n")
    out = tmp_path / "search"
    code = cli.main(
        [
            "search",
            "--train-size",
            "100",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--trials",
            "2",
            "--rounds",
            "1",
            "--backend",
            "serial",
            "--space",
            str(space),
            "--quiet",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 2 and len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert "all 2 trials failed, so there is no best.toml: TrainingDiverged: training loss became nan" in captured.err
    assert "(trials 1, 2)" in captured.err and "train the best" not in captured.out
    assert not (out / "best.toml").exists() and len((out / "study.jsonl").read_text().splitlines()) == 2
    assert issubclass(SearchFailed, DeepgradError)


@pytest.mark.parametrize("executor", ["serial", "local"])
def test_a_billion_trials_are_drawn_as_they_run(executor):
    finished = []

    def stop_after_three(trial):
        finished.append(trial)
        if len(finished) == 3:
            raise KeyboardInterrupt

    start = time.perf_counter()
    study = random_search(
        peaked,
        {"x": LogUniform(1e-6, 1.0)},
        trials=10**9,
        seed=7,
        executor=executor,
        n_jobs=2,
        progress=stop_after_three,
    )
    assert time.perf_counter() - start < 30
    assert study.interrupted and len(study) == 3
    few = random_search(peaked, {"x": LogUniform(1e-6, 1.0)}, trials=10, seed=7)  # the same first draws
    assert all(trial.params == few.trials[trial.number].params for trial in study.trials.values())


class Refusing:
    """An executor that stops the search before any trial runs (an unreachable cluster, a Ctrl-C)."""

    def __init__(self, error):
        self.error = error

    def run(self, objective, trials, scheduler):
        raise self.error
        yield  # an executor's run is a generator


def test_a_search_refused_before_any_trial_leaves_out_as_it_was(tmp_path):
    out = tmp_path / "new" / "search"
    with pytest.raises(ConfigError, match="could not reach"):
        search(out, executor=Refusing(ConfigError("could not reach the Ray cluster at 'ray://nowhere:1'")))
    assert not (tmp_path / "new").exists()
    interrupted = search(out, executor=Refusing(KeyboardInterrupt()))
    assert interrupted.interrupted and len(interrupted) == 0 and not (tmp_path / "new").exists()

    search(out)  # a study, then a --new search that is refused: the old study stays where it was
    before = sorted(os.listdir(out))
    with pytest.raises(ConfigError, match="could not reach"):
        search(out, base={"optimizer": "sgd"}, new=True, executor=Refusing(ConfigError("could not reach it")))
    assert sorted(os.listdir(out)) == before and "previous-1" not in before


def test_best_toml_is_valid_toml_whatever_the_paths_hold(tmp_path):
    nasty = "C:\\data\\\"quoted\" 'single' \n\ttab\r\x01\x1f\x7f é 漢字 😀 \\u0041 # not a comment = [x]"
    config = {**options.resolve({"data_dir": "/tmp/" + nasty, "hidden": [16, 8]}), "lr": 1e-05, "seed": 2**63 - 1}
    path = tmp_path / "best.toml"
    write_best(str(path), config)
    with open(path, "rb") as handle:
        assert tomllib.load(handle) == {name: value for name, value in config.items() if value is not None}
    assert options.load_file(str(path))["data_dir"] == config["data_dir"]  # and train --config reads it
    with pytest.raises(ConfigError, match="best.toml cannot hold data_dir = .* is not valid Unicode"):
        toml_text({"data_dir": "/tmp/undecodable-\udcff"})
    with pytest.raises(ConfigError, match="TOML integers have 64 bits"):
        toml_text({"seed": 2**64})
