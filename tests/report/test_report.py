"""The HTML run report: what the page shows for real and hand-made run directories — each run's
state, the results table (best marked, sortable), the Plotly charts and what they hold (per-step and
per-epoch curves, x axes, smoothing, log axes with marked zeros and diverged steps) — how it treats
runs still writing, runs that diverged in their first epoch and directories that are not runs, how
it finds the runs and searches below a folder, that nothing from a file or a directory name becomes
markup, and the config differences."""

import json
import math
import os
import re
import socket
import subprocess
import sys

import pytest

from deepgrad.diagnostics import standard_monitors
from deepgrad.errors import ConfigError
from deepgrad.report import build_report, read_run, write_report
from deepgrad.report.charts import diagnostics_charts, smoothed, steps_per_epoch, text, training_curves
from deepgrad.report.page import Cell, Markup, escape, table
from deepgrad.report.runs import find_sources, read_runs
from deepgrad.report.tables import config_differences, differing_options, results_table
from deepgrad.train.run import build_run

EPOCH = {"train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 1.2, "val_accuracy": 0.45, "lr": 0.01, "seconds": 0.1}
SUMMARY = {
    "state": "finished",
    "epochs": 3,
    "kept_epoch": 2,
    "train_loss": 0.5,
    "train_accuracy": 0.9,
    "val_loss": 0.6,
    "val_accuracy": 0.875,
    "test_loss": 0.7,
    "test_accuracy": 0.8125,
    "train_seconds": 1.5,
    "wall_seconds": 2.0,
}


def make_run(directory, config=None, epochs=3, summary=SUMMARY, torn=False, lr=0.01, steps=0):
    """A run directory written by hand: config.json, ``epochs`` lines of metrics.jsonl (and a torn one
    after them), ``steps`` lines of steps.jsonl (5 steps an epoch, every other one logged),
    summary.json (none when ``summary`` is None)."""
    os.makedirs(directory)
    with open(os.path.join(directory, "config.json"), "w") as handle:
        json.dump(config or {"model": "mlp", "lr": lr}, handle)
    lines = [json.dumps({"epoch": e, **EPOCH, "lr": lr, "val_loss": 1.2 / e}) + "\n" for e in range(1, epochs + 1)]
    if torn:
        lines.append(f'{{"epoch": {epochs + 1}, "train_loss": 0.3')
    if epochs or torn:
        with open(os.path.join(directory, "metrics.jsonl"), "w") as handle:
            handle.write("".join(lines))
    if steps:
        with open(os.path.join(directory, "steps.jsonl"), "w") as handle:
            for step in range(1, steps + 1, 2):
                record = {"step": step, "epoch": (step - 1) // 5 + 1, "time": 1000.0 + step / 10}
                handle.write(json.dumps({**record, "loss": 2.0 / step, "accuracy": 0.5, "lr": lr}) + "\n")
    if summary is not None:
        with open(os.path.join(directory, "summary.json"), "w") as handle:
            json.dump(summary, handle)
    return str(directory)


def figures(page):
    """The Plotly figures of a page: (data, layout) of each Plotly.newPlot call."""
    calls = re.findall(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{"displaylogo"', page, re.DOTALL)
    return [(json.loads(data), json.loads(layout)) for data, layout in calls]


def titles(page):
    return [layout["title"]["text"] for _, layout in figures(page)]


def without_plotly_js(page):
    """The page without the plotly.js library inlined in it (whose code has strings of its own)."""
    start = page.index("<script>/**")
    return page[:start] + page[page.index("</script>", start) :]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two real runs of 2 epochs that differ in their learning rate, the second with monitors."""
    root = tmp_path_factory.mktemp("runs")
    build_run({"epochs": 2, "train_size": 200}, out=root / "adam-3e-3", progress=False).fit()
    monitored = build_run(
        {"epochs": 2, "train_size": 200, "lr": 0.03},
        out=root / "adam-3e-2",
        progress=False,
        callbacks=standard_monitors(root / "adam-3e-2", every=2),
    )
    monitored.fit()
    return [str(root / "adam-3e-3"), str(root / "adam-3e-2")]


def test_report_of_real_runs_overlays_their_curves_and_shows_their_diagnostics(trained, tmp_path):
    out = write_report(trained, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert out == tmp_path / "report.html" and os.listdir(tmp_path) == ["report.html"]
    assert page.startswith("<!DOCTYPE html>") and "<title>deepgrad runs: adam-3e-3, adam-3e-2</title>" in page
    # five curves of both runs, then the monitored run's gradient flow, update size and dead units
    assert titles(page) == [
        "loss per step",
        "loss per epoch",
        "accuracy per step",
        "accuracy per epoch",
        "learning rate",
        "gradient flow",
        "update size",
        "dead units",
    ]
    charts = figures(page)
    for data, layout in charts[:5]:  # each curve chart has each run, in the legend once
        assert [t["name"] for t in data if t.get("showlegend")] == ["adam-3e-3", "adam-3e-2"], layout["title"]
        assert layout["meta"]["group"] == "curves"
    assert charts[0][1]["yaxis"]["type"] == "log" and charts[0][1]["meta"]["toggle"]  # loss: log, switchable
    assert charts[2][1]["yaxis"]["type"] == "linear" and not charts[2][1]["meta"]["toggle"]
    assert charts[4][1]["yaxis"]["title"]["text"] == "learning rate (log scale)"  # 0.003 and 0.03 span a decade
    assert [t["name"] for t in charts[5][0]] == ["module 1", "module 3", "module 5"]
    assert [t["name"] for t in charts[6][0]][-1] == "0.001 (healthy)"
    assert [t["name"] for t in charts[7][0]] == ["module 2 (ReLU)", "module 4 (ReLU)"]
    epochs = charts[1][0]  # loss per epoch: train solid, validation dashed, 2 epochs each
    assert [(t["line"]["dash"], len(t["y"])) for t in epochs] == [("solid", 2), ("dash", 2)] * 2
    summary = json.load(open(os.path.join(trained[0], "summary.json")))
    assert f">{100 * summary['test_accuracy']:.2f} %" in page
    assert 'lr</td><td>0.003</td><td class="differs">0.03</td>' in page  # the one option that differs
    assert "No diagnostics.jsonl: train with --monitor" in page  # the first run has none
    assert 'class="note"' not in page and page.count('class="state state-finished"') == 6  # list, table, sections


def test_the_page_fetches_nothing_and_inlines_plotly_once(trained):
    page = build_report(trained)
    assert page.count("window.PlotlyConfig") == 1 and page.count("Plotly.newPlot(") == 8
    assert page.index("<script>/**") < page.index("Plotly.newPlot(")  # plotly.js comes before the first chart
    rest = without_plotly_js(page)
    for needle in ("http", "src=", "<link", "@import", "url("):
        assert needle not in rest, needle
    assert all(tag == "<script>" for tag in re.findall(r"<script[^>]*>", rest))  # inline, nothing loaded
    assert '"displaylogo": false' in rest and "plotlyServerURL" not in rest


def test_the_per_step_and_per_epoch_curves_carry_every_x_axis_and_smoothing(tmp_path):
    directory = make_run(tmp_path / "run", epochs=3, steps=15)
    data, layout = figures(build_report([directory]))[0]
    line = data[0]
    assert line["x"] == [1, 3, 5, 7, 9, 11, 13, 15] and line["meta"]["x"]["step"] == line["x"]
    assert line["meta"]["x"]["epoch"] == [0.2, 0.6, 1.0, 1.4, 1.8, 2.2, 2.6, 3.0]  # 5 steps an epoch
    assert line["meta"]["x"]["time"] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4])
    assert set(line["meta"]["y"]) == {"none", "light", "heavy"} and line["meta"]["y"]["none"] == line["y"]
    assert line["meta"]["y"]["heavy"] == pytest.approx(smoothed(line["y"], 0.9), rel=1e-5)  # 6 digits
    assert line["customdata"][1] == ["step 3 · epoch 1 · 0.2 s", "0.666667"]  # the exact value on hover
    assert layout["meta"]["xtitle"] == {
        "step": "optimizer step",
        "epoch": "epoch",
        "time": "wall time since the first step (s)",
    }
    epochs = figures(build_report([directory]))[1][0][0]  # loss per epoch: epoch ends at steps 5, 10, 15
    assert epochs["meta"]["x"] == {"step": [5, 10, 15], "epoch": [1, 2, 3], "time": [0.4, 0.9, 1.4]}
    assert epochs["customdata"][0][0] == "epoch 1 · ≈ step 5 · 0.4 s"  # estimated: the run has no epoch steps
    metrics = [json.loads(line) for line in open(os.path.join(directory, "metrics.jsonl"))]
    with open(os.path.join(directory, "metrics.jsonl"), "w") as handle:  # as deepgrad writes them now
        handle.writelines(json.dumps({"step": step, **logs}) + "\n" for step, logs in zip((4, 10, 15), metrics))
    epochs = figures(build_report([directory]))[1][0][0]
    assert epochs["meta"]["x"]["step"] == [4, 10, 15] and epochs["customdata"][0][0] == "epoch 1 · step 4 · 0.3 s"
    assert steps_per_epoch([{"step": s, "epoch": (s - 1) // 32 + 1} for s in range(1, 1500, 10)]) == 32
    assert smoothed([1.0, None, 3.0], 0.0) == [1.0, None, 3.0] and smoothed([2.0, 2.0], 0.6) == pytest.approx([2, 2])


def test_a_run_that_diverged_in_its_first_epoch_shows_its_steps_up_to_the_divergence(tmp_path):
    directory = make_run(
        tmp_path / "diverged",
        epochs=0,
        steps=9,
        summary={
            "state": "diverged",
            "diverged_at": 93,
            "loss": "nan",
            "last_finite_loss": 2.31,
            "cause": "the training loss is nan",
            "epoch": 0,
            "step": 92,
        },
    )
    with open(os.path.join(directory, "steps.jsonl"), "a") as handle:
        handle.write('{"step": 93, "epoch": 1, "time": 1010.0, "loss": NaN}\n')  # as Python's json writes it
    record = read_run(directory)
    assert record.epochs == [] and len(record.steps) == 6 and math.isnan(record.steps[-1]["loss"])
    assert record.state.label == "diverged at step 93"
    assert record.state.detail == "diverged at step 93: loss nan, last finite loss 2.31 — the training loss is nan"
    page = build_report([directory, make_run(tmp_path / "fine", steps=15)])
    assert ">diverged at step 93</td>" in page
    data, layout = figures(page)[0]
    line, mark = data[0], data[1]
    assert line["y"][-1] is None and len([y for y in line["y"] if y is not None]) == 5  # drawn up to the divergence
    assert mark["meta"]["kind"] == "mark" and mark["x"] == [93] and mark["marker"]["symbol"] == ["x-thin-open"]
    assert mark["hovertext"] == ["diverged: batch loss nan at step 93 · epoch 1 · 9.9 s"]
    top = layout["yaxis"]["range"][1]
    assert math.log10(mark["y"][0]) < top and math.log10(mark["y"][0]) > math.log10(2.0)  # above every curve
    assert mark["meta"]["y"]["linear"][0] > 2.0  # and on the linear axis too
    assert "loss per epoch" in titles(page)  # the other run's epochs


def test_a_huge_diverged_loss_does_not_stretch_the_axis_and_zeros_are_marked_at_the_bottom(tmp_path):
    directory = make_run(
        tmp_path / "boom", epochs=0, steps=5, summary={"state": "diverged", "diverged_at": 7, "loss": 2.3e22}
    )
    with open(os.path.join(directory, "steps.jsonl"), "a") as handle:
        handle.write('{"step": 6, "epoch": 2, "time": 1000.6, "loss": 0.0, "accuracy": 1.0, "lr": 0.01}\n')
        handle.write('{"step": 7, "epoch": 2, "time": 1000.7, "loss": 2.3e22}\n')
    data, layout = figures(build_report([directory]))[0]
    low, high = layout["yaxis"]["range"]
    assert high < 2 and low < math.log10(0.4)  # the axis spans the losses 2 .. 0.4, not 1e22
    mark = data[1]
    assert [s for s in mark["marker"]["symbol"]] == ["triangle-down", "x-thin-open"]
    assert mark["hovertext"][0].startswith("batch loss 0 at step 6") and "a log axis has no 0" in mark["hovertext"][0]
    assert mark["hovertext"][1].startswith("diverged: batch loss 2.3e+22 at step 7")
    assert math.log10(mark["y"][0]) < math.log10(0.4) and mark["meta"]["y"]["linear"][0] == 0.0


def test_a_long_run_is_thinned_to_about_a_thousand_points_keeping_its_divergence(tmp_path):
    directory = make_run(tmp_path / "long", steps=4999, summary={"state": "diverged", "diverged_at": 5001})
    with open(os.path.join(directory, "steps.jsonl"), "a") as handle:
        handle.write('{"step": 5001, "epoch": 1001, "time": 1500.1, "loss": Infinity}\n')
    line, mark = figures(build_report([directory]))[0][0][:2]
    assert 800 < len(line["x"]) <= 1001 and line["x"][:3] == [
        1,
        7,
        13,
    ]  # every 3rd of 2501 records and line["x"][-1] == 5001
    assert mark["x"] == [5001] and mark["hovertext"][0].startswith("diverged: batch loss inf at step 5001")
    assert line["meta"]["y"]["heavy"][-2] == pytest.approx(smoothed([2.0 / s for s in range(1, 5000, 2)], 0.9)[-1])


def test_zero_gradients_are_marked_on_the_log_axis(tmp_path):
    directory = make_run(tmp_path / "dead")
    with open(os.path.join(directory, "diagnostics.jsonl"), "w") as handle:
        for step, norm in ((1, 0.5), (3, 0.0), (5, 0.25)):
            record = {"kind": "gradients", "step": step, "layers": {"1": norm}, "update_ratios": {"1.weight": 1e-3}}
            handle.write(json.dumps(record) + "\n")
    flow = diagnostics_charts(read_run(directory))[0].figure
    assert flow["data"][0]["y"] == [0.5, 0.0, 0.25] and flow["layout"]["yaxis"]["type"] == "log"
    assert flow["data"][1]["x"] == [3] and "drawn at the bottom" in flow["data"][1]["hovertext"][0]


def test_each_run_shows_its_state(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    summaries = {
        "running": {"state": "running", "pid": os.getpid(), "host": host, "epochs_done": 0, "steps_done": 0},
        "gone": {"state": "running", "pid": gone.pid, "host": host, "epochs_done": 0, "steps_done": 0},
        "elsewhere": {"state": "running", "pid": 1, "host": "another-machine", "epochs_done": 0, "steps_done": 0},
        "interrupted": {"state": "interrupted", "epochs_done": 45, "steps_done": 1454},
        "failed": {"state": "failed", "error": "MemoryError: <b>out</b>", "epochs_done": 0, "steps_done": 3},
        "early": {**SUMMARY, "state": "stopped_early"},
        "old": {key: value for key, value in SUMMARY.items() if key != "state"},
    }
    runs = read_runs([make_run(tmp_path / name, summary=summary) for name, summary in summaries.items()])
    states = {run.name: run.state for run in runs}
    assert {name: state.label for name, state in states.items()} == {
        "running": "running",
        "gone": "stopped without a word",
        "elsewhere": "running on another-machine",
        "interrupted": "interrupted at step 1454",
        "failed": "failed",
        "early": "stopped early",
        "old": "finished",
    }
    assert states["running"].detail == f"running (process {os.getpid()} on {host}; 3 epochs logged)"
    assert states["gone"].detail.startswith("stopped without a word — its process is gone")
    assert "deepgrad train --out" in states["gone"].detail and "--resume" in states["interrupted"].detail
    assert states["interrupted"].detail.startswith("interrupted (Ctrl-C) at step 1454 (in epoch 46, after 45")
    assert states["failed"].detail == "failed at step 3: MemoryError: <b>out</b>"
    page = build_report([run.directory for run in runs])
    assert "MemoryError: &lt;b&gt;out&lt;/b&gt;" in page and "<b>out" not in page
    for run in runs:
        assert f'class="state state-{run.state.kind}"' in page


def test_the_results_table_marks_the_best_run_of_each_metric_and_sorts(tmp_path):
    better = {**SUMMARY, "val_accuracy": 0.95, "test_loss": 0.2}
    runs = read_runs(
        [
            make_run(tmp_path / "a"),
            make_run(tmp_path / "b", summary=better),
            make_run(tmp_path / "c", summary={"state": "interrupted", "epochs_done": 3, "steps_done": 15}),
        ]
    )
    html = results_table(runs)
    assert html.startswith('<p class="caption">results') and '<div class="table-box"><table class="sortable">' in html
    assert "<thead><tr><th>run</th>" in html and '<th class="text">state</th>' in html
    best = re.findall(r'<td class="best"[^>]*>(.*?)</td>', html)
    # b's val accuracy and test loss, c's val loss, and a's and b's equal train loss
    assert len(best) == 5 and all("★" in cell for cell in best)
    assert '<td class="best" data-sort="0.95">95.00 % <span class="best-mark"' in html
    assert '<td class="best" data-sort="0.2">0.2 <span' in html
    # c did not finish: its last epoch's values, marked †; no test results (sorted last)
    assert (
        'title="the last logged epoch&#x27;s: the run did not finish" data-sort="0.39999999999999997">0.4 <span' in html
    )
    assert html.count('class="partial-mark"') == 3 and html.count('data-sort=""') == 2  # val, val loss, train loss
    assert '<td class="state state-interrupted" title="interrupted (Ctrl-C) at step 15' in html


def test_a_torn_last_line_shows_the_epochs_before_it_and_says_so(tmp_path):
    directory = make_run(tmp_path / "running", epochs=2, torn=True, summary=None)
    record = read_run(directory)
    assert [e["epoch"] for e in record.epochs] == [1, 2] and record.state.label == "no summary"
    page = build_report([directory])
    assert "the last line of metrics.jsonl is incomplete" in page and "showing the 2 epochs before it" in page
    assert '<div class="note"><strong>Incomplete runs</strong>' in page
    assert titles(page) == ["loss per epoch", "accuracy per epoch", "learning rate"]  # no steps.jsonl: epochs only
    assert figures(page)[0][1]["xaxis"]["title"]["text"] == "epoch"  # and the x axis starts as the epoch's
    assert '<option value="epoch" selected="selected">epoch</option>' in page
    with open(os.path.join(directory, "steps.jsonl"), "w") as handle:
        handle.write('{"step": 1, "epoch": 1, "time": 1.0, "loss": 2.0, "lr": 0.01}\n{"step": 3, "ep')
    record = read_run(directory)
    assert len(record.steps) == 1 and "the last line of steps.jsonl is incomplete" in " ".join(record.notes)


def test_a_run_without_a_summary_still_shows_its_curves(tmp_path):
    page = build_report([make_run(tmp_path / "crashed", summary=None), make_run(tmp_path / "done")])
    assert '<td class="state state-unknown" title="no summary.json: still training, or stopped' in page
    assert ">81.25 %" in page  # the finished run's test accuracy
    assert '<option value="step" selected="selected">step</option>' not in page  # neither run recorded steps
    assert "crashed: no summary.json: the run is still training or stopped before the end" in page
    assert all([t["name"] for t in data if t.get("showlegend")] == ["crashed", "done"] for data, _ in figures(page))


def test_a_directory_that_is_not_a_run_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=f"{tmp_path / 'empty'} is not a run directory and holds none: no folder"):
        build_report([tmp_path / "empty"])
    half = make_run(tmp_path / "half", summary=None)
    os.remove(os.path.join(half, "metrics.jsonl"))
    with pytest.raises(ConfigError, match=r"half is not a run directory: it has a config.json but no metrics.jsonl"):
        write_report([half], tmp_path / "report.html")
    with pytest.raises(ConfigError, match=r"half is not a run directory: it has a config.json but no metrics"):
        read_run(half)
    assert not (tmp_path / "report.html").exists()
    with pytest.raises(ConfigError, match="no such run directory: .*nowhere"):
        build_report([tmp_path / "nowhere"])
    with pytest.raises(ConfigError, match="no run directories given"):
        build_report([])


def test_runs_and_searches_are_found_below_a_folder_and_filtered(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "adam", steps=5)
    make_run(root / "sweep" / "sgd-0.1", summary=None)
    make_run(root / "sweep" / "sgd-1", epochs=0, steps=3, summary={"state": "diverged", "diverged_at": 3})
    os.makedirs(root / "adam" / "checkpoints" / "inner")  # a run's folders are its own
    make_run(root / ".hidden" / "x")
    (root / "notes").mkdir()
    (root / "search").mkdir()
    (root / "search" / "study.jsonl").write_text("")
    runs, searches = find_sources([root])
    assert runs == [
        (str(root / "adam"), "adam"),
        (str(root / "sweep" / "sgd-0.1"), os.path.join("sweep", "sgd-0.1")),
        (str(root / "sweep" / "sgd-1"), os.path.join("sweep", "sgd-1")),
    ]
    assert searches == [(str(root / "search"), "search")]
    runs, searches = find_sources([root], filter="sgd")
    assert [name for _, name in runs] == [os.path.join("sweep", "sgd-0.1"), os.path.join("sweep", "sgd-1")]
    assert searches == []
    page = build_report([root], filter=r"sgd-\d$|adam")
    assert "<title>deepgrad runs: adam, sweep/sgd-1</title>" in page and "diverged at step 3" in page
    with pytest.raises(ConfigError, match=r"--filter 'rmsprop' matches none of the 4 found: adam, sweep/sgd-0.1"):
        find_sources([root], filter="rmsprop")
    with pytest.raises(ConfigError, match=r"--filter '\(' is not a regular expression"):
        find_sources([root], filter="(")
    assert find_sources([root / "adam", root])[0][0] == (str(root / "adam"), "adam")  # listed once


def test_damaged_files_are_errors_naming_the_file_and_line(tmp_path):
    directory = make_run(tmp_path / "run")
    with open(os.path.join(directory, "metrics.jsonl"), "a") as handle:
        handle.write("garbage\n" + json.dumps({"epoch": 5}) + "\n")
    with pytest.raises(ConfigError, match=r"run.metrics.jsonl line 4 is not JSON: 'garbage'"):
        build_report([directory])
    with open(os.path.join(directory, "config.json"), "w") as handle:
        handle.write("[1, 2]")
    with pytest.raises(ConfigError, match=r"run.config.json holds a JSON list; expected an object"):
        build_report([directory])
    other = make_run(tmp_path / "other")
    with open(os.path.join(other, "steps.jsonl"), "w") as handle:
        handle.write('{"step": "one", "loss": 1}\n{"step": 2}\n')
    with pytest.raises(ConfigError, match=r"other.steps.jsonl line 1 is not what a run writes: no whole step number"):
        read_run(other)


def test_names_and_values_from_files_are_escaped_everywhere(tmp_path):
    evil = "<script>alert(1)</script>"
    named = make_run(tmp_path / evil, config={"model": evil, "lr": 0.01}, steps=5)  # a nested path: .../<script>...
    quoted = make_run(tmp_path / '"><b onload=x>', config={"model": "mlp", "lr": 0.1, evil: 1})
    page = build_report([named, quoted], title=evil)
    rest = without_plotly_js(page)
    assert evil not in page and "<b " not in rest and "onload=x>" not in rest
    assert rest.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title, heading, directory, config value, diff
    assert "&quot;&gt;&lt;b onload=x&gt;" in page
    # in the charts' JSON, a name is an HTML-escaped text (Plotly reads tags in texts), its '<' '>' '/' as \u003c...
    names = {t["name"] for data, _ in figures(page) for t in data}  # the first run's directory: .../<script>alert(1)<
    assert names == {"script&gt;", '"&gt;&lt;b onload=x&gt;'}
    assert "\\u003cb onload" not in page and '"script&gt;"' in page


def test_plotly_shows_run_names_literally(tmp_path):
    page = build_report([make_run(tmp_path / "$x$"), make_run(tmp_path / "_hidden")])
    assert text("$x$") == "&#36;x&#36;" and text('a<b"') == 'a&lt;b"'  # no LaTeX, no tags
    for data, _ in figures(page):
        assert [t["name"] for t in data if t.get("showlegend")] == ["&#36;x&#36;", "_hidden"]


def test_runs_with_the_same_directory_name_are_named_by_their_paths(tmp_path):
    runs = read_runs([make_run(tmp_path / "a" / "run"), make_run(tmp_path / "b" / "run"), make_run(tmp_path / "c")])
    assert [run.name for run in runs] == [str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run"), "c"]


def test_the_learning_rate_axis_is_logarithmic_when_the_rates_span_decades(tmp_path):
    same = training_curves(read_runs([make_run(tmp_path / "one", lr=0.01), make_run(tmp_path / "two", lr=0.02)]))
    apart = training_curves(read_runs([make_run(tmp_path / "three", lr=0.001), make_run(tmp_path / "four", lr=0.1)]))
    assert same[-1].title == "learning rate" and same[-1].figure["layout"]["yaxis"]["type"] == "linear"
    assert same[-1].figure["layout"]["yaxis"]["rangemode"] == "tozero"
    assert apart[-1].figure["layout"]["yaxis"]["type"] == "log"
    assert "the learning rate of each epoch's last step" in same[-1].caption  # no steps.jsonl


def test_saturated_outputs_are_drawn_for_bounded_activations(tmp_path):
    directory = make_run(tmp_path / "sigmoid")
    layers = {
        "2": {"kind": "Sigmoid", "dead": 0.0, "saturated": 0.25},
        "4": {"kind": "Sigmoid", "dead": 0.0, "saturated": 0.75},
    }
    with open(os.path.join(directory, "diagnostics.jsonl"), "w") as handle:
        for step in (1, 3, 5):
            handle.write(json.dumps({"kind": "activations", "epoch": 1, "step": step, "layers": layers}) + "\n")
        handle.write('{"kind": "gradients", "ep')
    page = build_report([directory])
    assert titles(page)[-2:] == ["dead units", "saturated outputs"]
    saturated = figures(page)[-1][0]
    assert [t["name"] for t in saturated] == ["module 2 (Sigmoid)", "module 4 (Sigmoid)"]
    assert saturated[1]["y"] == [75.0, 75.0, 75.0]
    assert "the last line of diagnostics.jsonl is incomplete: showing the 3 samples before it" in page


def test_config_differences_list_only_the_options_that_differ(tmp_path):
    assert differing_options([{"a": 1, "b": 2, "c": [1]}, {"a": 1, "b": 3, "c": [1]}, {"a": 1, "c": [1, 2]}]) == [
        "b",
        "c",
    ]
    runs = read_runs(
        [
            make_run(tmp_path / "base", config={"lr": 0.1, "hidden": [64], "seed": 0}),
            make_run(tmp_path / "same", config={"lr": 0.1, "hidden": [64], "seed": 1}),
            make_run(tmp_path / "wider", config={"lr": 0.1, "hidden": [64, 64], "seed": 0, "x": None}),
        ]
    )
    html = config_differences(runs)
    assert html.startswith("<p>The options whose values are not the same in every run") and "<td>lr</td>" not in html
    assert '<td>hidden</td><td>[64]</td><td>[64]</td><td class="differs">[64, 64]</td>' in html
    assert '<td>seed</td><td>0</td><td class="differs">1</td><td>0</td>' in html
    assert '<td>x</td><td>(not set)</td><td>(not set)</td><td class="differs">null</td>' in html
    assert "identical" in config_differences(runs[:1] * 2) and "One run" in config_differences(runs[:1])


def test_page_machinery_escapes_all_but_markup():
    assert escape('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;" and escape(Markup("<b>")) == "<b>"
    assert table(["a&b"], [["<i>", Cell(Markup("<i>x</i>"), differs=True, span=2)]], caption="<c>") == (
        "<table><caption>&lt;c&gt;</caption><tr><th>a&amp;b</th></tr>"
        '<tr><td>&lt;i&gt;</td><td class="differs" colspan="2"><i>x</i></td></tr></table>'
    )
    assert table([Cell("<n>", kind="text")], [[Cell("<v>", sort='1"2', title="<t>")]], sortable=True) == (
        '<div class="table-box"><table class="sortable"><thead><tr><th class="text">&lt;n&gt;</th></tr></thead>'
        '<tbody><tr><td title="&lt;t&gt;" data-sort="1&quot;2">&lt;v&gt;</td></tr></tbody></table></div>'
    )
