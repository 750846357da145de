"""A search in the run report: a `deepgrad search --out` directory shows its trials (numbered from 1,
the best marked, failed ones with their error) and the search view (a chart per parameter — a
categorical one as a box and strip — failed trials at the bottom with their error on hover, the best
trial starred, and the parallel coordinates of parameters to score), alone or beside runs."""

import json
import os
import re

from deepgrad.report import build_report
from deepgrad.report.search import read_search, search_charts

SPACE = {"lr": {"log_uniform": [1e-4, 1.0]}, "hidden": {"choice": [[16], [32, 16]]}, "activation": {"choice": ["relu"]}}


def trial(number, lr, hidden, score, status="finished", error=None, new=True):
    record = {
        "number": number,
        "round": number // 3,
        "params": {"lr": lr, "hidden": hidden, "activation": "relu"},
        "status": status,
        "score": score,
        "scores": [[1, score]] if score is not None else [],
        "seconds": 0.5,
        "error": error,
    }
    return {"trial": number + 1, **record} if new else record


def make_search(directory, trials):
    os.makedirs(directory)
    record = {
        "format": "deepgrad-search",
        "version": 1,
        "base": {"epochs": 2},
        "space": SPACE,
        "metric": "val_accuracy",
    }
    with open(os.path.join(directory, "search.json"), "w") as handle:
        json.dump(record, handle)
    with open(os.path.join(directory, "study.jsonl"), "w") as handle:
        handle.write("".join(json.dumps(t) + "\n" for t in trials))
    return str(directory)


TRIALS = [
    trial(0, 0.01, [16], 0.8, new=False),  # a study written before the 1-based "trial" field
    trial(1, 0.5, [32, 16], None, "failed", "TrainingDiverged: loss <b>nan</b> at step 3", new=False),
    trial(2, 0.001, [32, 16], 0.9),
    trial(3, 0.003, [16], 0.85, "pruned"),
]


def figures(page):
    calls = re.findall(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{"displaylogo"', page, re.DOTALL)
    return [(json.loads(data), json.loads(layout)) for data, layout in calls]


def test_a_search_directory_shows_its_trials_numbered_from_1(tmp_path):
    directory = make_search(tmp_path / "search", TRIALS)
    search = read_search(directory)
    assert [t.trial for t in search.study.trials.values()] == [1, 2, 3, 4] and search.metric == "val accuracy"
    page = build_report([directory])
    assert "<title>deepgrad search: search</title>" in page
    assert "4 trials: 2 finished, 1 stopped early, 1 failed; best: trial 3 (val accuracy 0.9)" in page
    rows = re.findall(r"<tr>(.*?)</tr>", page[page.index("<h3>Trials</h3>") :])
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in rows[:5]]
    assert cells[0] == ["trial", "round", "lr", "hidden", "activation", "val accuracy", "status", "seconds", "error"]
    assert cells[1][:7] == ["1", "1", "0.01", "[16]", "relu", "0.8", "finished"]
    assert cells[2][0] == "2" and cells[2][5:7] == ["–", "failed"]
    assert cells[2][8] == "TrainingDiverged: loss &lt;b&gt;nan&lt;/b&gt; at step 3"
    assert cells[3][0] == "3 ★" and cells[4][6] == "stopped early"


def test_the_search_view_draws_every_parameter_failed_trials_and_the_best(tmp_path):
    search = read_search(make_search(tmp_path / "search", TRIALS))
    charts = search_charts(search)
    assert [chart.title for chart in charts] == [
        "val accuracy against lr",
        "val accuracy against hidden",
        "val accuracy against activation",
        "parameters → score",
    ]
    lr, hidden = charts[0].figure, charts[1].figure
    assert lr["layout"]["xaxis"]["type"] == "log"
    names = [t["name"] for t in lr["data"]]
    assert names == ["round 1", "round 2 (stopped early)", "failed (no score)", "best: trial 3"]
    failed = lr["data"][2]
    assert failed["x"] == [0.5] and failed["y"][0] < lr["layout"]["yaxis"]["range"][0] + 0.1  # at the axis' bottom
    assert "failed<br>TrainingDiverged: loss &lt;b&gt;nan&lt;/b&gt; at step 3" in failed["hovertext"][0]
    assert lr["data"][3]["marker"]["symbol"] == "star" and lr["data"][3]["y"] == [0.9]
    # a categorical parameter: a box per option, its trials as points spread over it
    assert hidden["layout"]["xaxis"]["ticktext"] == ["[16]", "[32, 16]"]
    boxes = [t for t in hidden["data"] if t["type"] == "box"]
    assert [(b["x"][0], sorted(b["y"])) for b in boxes] == [(0, [0.8, 0.85]), (1, [0.9])]
    points = next(t for t in hidden["data"] if t["name"] == "round 1" and t["type"] == "scatter")
    assert points["x"] == [-0.18, 1.18]  # each option's trials (failed ones too) spread over [-0.18, 0.18]
    parallel = charts[3].figure["data"][0]
    assert parallel["type"] == "parcoords"
    assert [d["label"] for d in parallel["dimensions"]] == ["lr (log)", "hidden", "activation", "val accuracy"]
    score = parallel["dimensions"][-1]
    assert score["ticktext"][0] == "failed" and score["values"][1] == score["tickvals"][0]  # trial 2 failed


def test_a_folder_with_runs_and_a_search_shows_both_and_an_empty_study_says_so(tmp_path):
    make_search(tmp_path / "sweep", TRIALS)
    run = tmp_path / "runs" / "one"
    os.makedirs(run)
    (run / "config.json").write_text('{"lr": 0.1}')
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "lr": 0.1}\n')
    os.makedirs(tmp_path / "new-search")
    (tmp_path / "new-search" / "search.json").write_text(json.dumps({"space": SPACE}))
    page = build_report([tmp_path])
    assert "<title>deepgrad runs: runs/one</title>" in page and "1 run, 2 searches" in page
    assert page.index("Run: runs/one") < page.index("Search: new-search") < page.index("Search: sweep")
    assert "no trial has finished yet (study.jsonl holds none)" in page
