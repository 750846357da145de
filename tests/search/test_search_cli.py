"""`deepgrad search` end to end on digits in quick settings, its files, and bad input."""

import json
import math
import os
import subprocess
import sys

import pytest

from deepgrad import cli
from deepgrad.errors import ConfigError
from deepgrad.search import Choice, LogUniform, Study, Trial, random_search


def environment():
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")


def test_search_writes_study_figure_and_a_best_toml_that_trains(tmp_path):
    out = tmp_path / "search"
    space = tmp_path / "space.toml"
    space.write_text("[lr]\nlog_uniform = [1e-4, 1e-1]\n[hidden]\nchoice = [[16], [32]]\n")
    command = [
        sys.executable,
        "-m",
        "deepgrad",
        "search",
        "--epochs",
        "2",
        "--train-size",
        "300",
        "--trials",
        "4",
        "--rounds",
        "2",
        "--space",
        str(space),
        "--scheduler",
        "asha",
        "--jobs",
        "2",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["best.toml", "search.json", "search.png", "study.jsonl"]
    trials = [json.loads(line) for line in (out / "study.jsonl").read_text().splitlines()]
    assert len(trials) == 8 and {t["round"] for t in trials} == {0, 1}
    assert sorted(t["trial"] for t in trials) == list(range(1, 9)) and all(
        t["trial"] == t["number"] + 1 for t in trials
    )
    assert set(trials[0]["params"]) == {"lr", "hidden"}
    assert "rank trial round  val acc status" in done.stdout and "deepgrad train --config" in done.stdout
    assert (out / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = max((t for t in trials if t["status"] != "failed"), key=lambda t: t["score"])
    text = (out / "best.toml").read_text()
    assert f"lr = {best['params']['lr']!r}" in text and "train_size = 300" in text
    trained = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepgrad",
            "train",
            "--config",
            str(out / "best.toml"),
            "--quiet",
            "--out",
            str(tmp_path / "best"),
        ],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    again = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=300)
    assert again.returncode == 0 and len((out / "study.jsonl").read_text().splitlines()) == 8  # resumed: all done


@pytest.mark.parametrize(
    "space, extra, fragment",
    [
        ("[learning_rate]\nlog_uniform = [1e-4, 1e-1]\n", [], "unknown options ['learning_rate']; valid: dataset"),
        ("[lr]\nlog_uniform = [1e-1, 1e-4]\n", [], "[lr] log_uniform = [0.1, 0.0001]: LogUniform: lo must be below hi"),
        ("[lr]\nlog_uniform = [0, 1e-1]\n", [], "a log-scale range needs positive bounds"),
        ("[lr]\nlog_uniform = [1e-4, 1e-2, 1e-1]\n", [], "[lr] log_uniform = [0.0001, 0.01, 0.1]: expected [lo, hi]"),
        ("[lr]\nnormal = [0, 1]\n", [], "[lr] must hold one of uniform, log_uniform"),
        ("", [], "names no option to search"),
        ("[lr]\nlog_uniform = [1e-4, 1e-1]\n", ["--keep-fraction", "1.5"], "keep must be in (0, 1]"),
        ("[lr]\nlog_uniform = [1e-4, 1e-1]\n", ["--trials", "0"], "trials must be a whole number >= 1"),
        # values the training options' schema refuses: before any trial, naming the file and the option
        ('[lr]\nchoice = [0.01, "fast", true]\n', [], "[lr] choice 'fast': lr must be of type float, got 'fast'"),
        ('[optimizer]\nchoice = "abc"\n', [], "[optimizer] choice = 'abc': Choice: options must be a list of values"),
        (
            '[optimizer]\nchoice = ["sgd", "sgdd"]\n',
            [],
            "[optimizer] choice 'sgdd': unknown optimizer 'sgdd'; valid: sgd",
        ),
        ("[optimizer]\nlog_uniform = [1, 2]\n", [], "[optimizer] LogUniform draws numbers, but optimizer takes str"),
        ("[batch_size]\nuniform = [16, 64]\n", [], "[batch_size] Uniform draws fractions, but batch_size takes whole"),
        ("[dropout]\nuniform = [0, 2]\n", [], "[dropout] bound 2.0: dropout must be in [0, 1], got 2.0"),
        ("[hidden]\nchoice = [[16], 32]\n", [], "[hidden] choice 32: hidden must be a list of integers, got 32"),
        ("[lr]\nchoice = [nan]\n", [], "[lr] choice nan: lr must be a finite number"),
    ],
)
def test_bad_searches_are_one_line_errors_and_leave_no_out(capsys, tmp_path, space, extra, fragment):
    path = tmp_path / "space.toml"
    path.write_text(space)
    out = tmp_path / "new" / "out"
    code = cli.main(["search", "--space", str(path), "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert fragment in err
    assert not (tmp_path / "new").exists()  # refused before any folder was made


def test_trials_are_numbered_from_1_and_old_studies_numbered_from_0_still_resume(tmp_path):
    path = tmp_path / "study.jsonl"

    def objective(params, report):
        objective.calls += 1
        return -abs(math.log10(params["x"]) + 2)

    objective.calls = 0
    first = random_search(objective, {"x": LogUniform(1e-4, 1.0)}, trials=3, rounds=2, seed=1, study=str(path))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["trial"] for line in lines] == [line["number"] + 1 for line in lines] and len(lines) == 6
    assert list(lines[0])[:2] == ["trial", "number"] and Study(str(path)).records()[0]["trial"] == 1
    # a study written before the "trial" field: read the same, and resumed without running a trial again
    path.write_text("".join(json.dumps({k: v for k, v in line.items() if k != "trial"}) + "\n" for line in lines))
    objective.calls = 0
    again = random_search(objective, {"x": LogUniform(1e-4, 1.0)}, trials=3, rounds=2, seed=1, study=str(path))
    assert objective.calls == 0 and again.best.number == first.best.number and again.best.trial == first.best.number + 1
    assert Trial.from_record({"trial": 4, "round": 1, "params": {}, "status": "failed"}).number == 3
    with pytest.raises(ValueError, match="trial 4 and number 2 disagree"):
        Trial.from_record({"trial": 4, "number": 2, "round": 1, "params": {}, "status": "failed"})
    path.write_text('{"trial": 0, "number": 0, "round": 0, "params": {}, "status": "failed"}\n')
    with pytest.raises(ConfigError, match="line 1 is not a trial: trial must be a whole number >= 1"):
        Study(str(path))


def test_search_png_draws_every_parameter_failed_trials_and_the_best(tmp_path, monkeypatch):
    """Only categorical parameters (once a blank figure): a box and strip panel each; a failed trial
    marked at the bottom of each panel; the best a star, named in the legend by its number from 1."""
    pytest.importorskip("matplotlib")
    from deepgrad.viz import search as figure

    study = Study()
    study.spaces = [{"hidden": Choice([[16], [32, 16]]), "activation": Choice(["relu", "tanh"])}]
    for number, (hidden, activation, score) in enumerate(
        [([16], "relu", 0.7), ([32, 16], "tanh", 0.9), ([16], "tanh", 0.8)]
    ):
        study.record(Trial(number, 0, {"hidden": hidden, "activation": activation}, "finished", score))
    study.record(Trial(3, 0, {"hidden": [16], "activation": "relu"}, "failed", error="boom"))
    drawn = {}
    monkeypatch.setattr(figure, "save", lambda fig, path: drawn.setdefault("figure", fig) and path)
    figure.search_scores(study, tmp_path / "search.png")
    panels = [ax for ax in drawn["figure"].axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in panels] == ["hidden (choice)", "activation (choice)"]
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["[16]", "[32, 16]"]
    for ax in panels:
        assert ax.patches or any(line.get_xdata() is not None for line in ax.lines)  # the boxes
        markers = [collection.get_offsets() for collection in ax.collections]
        assert sum(len(offsets) for offsets in markers) == 3 + 1 + 1  # scored trials, the failed one, the star
    legend = [t.get_text() for t in panels[0].get_legend().get_texts()]
    assert legend == ["round 1", "failed (no score)", "best: trial 2 (0.9)"]
    monkeypatch.undo()
    assert figure.search_scores(study, tmp_path / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
