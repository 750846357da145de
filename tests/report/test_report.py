"""The HTML run report: what the page shows for real and hand-made run directories, how it treats
runs still writing, runs without a summary and directories that are not runs, that nothing from a
file or a directory name becomes markup, and the config differences."""

import json
import os
import re

import pytest

from deepgrad.diagnostics import standard_monitors
from deepgrad.errors import ConfigError
from deepgrad.report import build_report, read_run, write_report
from deepgrad.report.page import Cell, Markup, escape, table
from deepgrad.report.runs import read_runs
from deepgrad.report.tables import config_differences, differing_options
from deepgrad.train.run import build_run

EPOCH = {"train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 1.2, "val_accuracy": 0.45, "lr": 0.01, "seconds": 0.1}
SUMMARY = {
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


def make_run(directory, config=None, epochs=3, summary=True, torn=False, lr=0.01):
    """A run directory written by hand: config.json, ``epochs`` lines of metrics.jsonl (and a torn one
    after them), summary.json."""
    os.makedirs(directory)
    with open(os.path.join(directory, "config.json"), "w") as handle:
        json.dump(config or {"model": "mlp", "lr": lr}, handle)
    lines = [json.dumps({"epoch": e, **EPOCH, "lr": lr, "val_loss": 1.2 / e}) + "\n" for e in range(1, epochs + 1)]
    if torn:
        lines.append(f'{{"epoch": {epochs + 1}, "train_loss": 0.3')
    with open(os.path.join(directory, "metrics.jsonl"), "w") as handle:
        handle.write("".join(lines))
    if summary:
        with open(os.path.join(directory, "summary.json"), "w") as handle:
            json.dump(SUMMARY, handle)
    return str(directory)


def svgs(page):
    return re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL)


def svg_texts(page):
    return re.findall(r"<text[^>]*>([^<]*)</text>", page)


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
    # three curves (loss, accuracy, lr) for both runs, and the monitored run's gradient flow, update size, dead units
    assert len(svgs(page)) == 6
    texts = svg_texts(page)
    assert texts.count("adam-3e-3") == 3 and texts.count("adam-3e-2") == 3  # each chart's legend names each run
    for label in (
        "cross-entropy loss (nats)",
        "accuracy (% of samples)",
        "learning rate (log scale)",
        "epoch",
        "gradient norm ‖∂L/∂θ‖ (log scale)",
        "‖Δw‖ / ‖w‖ per step (log scale)",
        "dead units (% of the layer's units)",
        "training step",
        "module 2 (ReLU)",
        "module 1",
    ):
        assert label in texts, label
    summary = json.load(open(os.path.join(trained[0], "summary.json")))
    assert f"<td>{100 * summary['test_accuracy']:.2f} %</td>" in page
    assert 'lr</td><td>0.003</td><td class="differs">0.03</td>' in page  # the one option that differs
    assert "No diagnostics.jsonl: train with --monitor" in page  # the first run has none
    assert 'class="note"' not in page  # both runs are complete


def test_the_page_fetches_nothing_and_runs_nothing(trained):
    page = build_report(trained)
    for needle in ("http", "<script", "<img", "<link", "src=", "@import"):
        assert needle not in page, needle
    assert re.findall(r"url\((.)", page) and set(re.findall(r"url\((.)", page)) == {"#"}  # the SVGs' own clip paths
    assert "<?xml" not in page and "<metadata" not in page and "<!DOCTYPE svg" not in page


def test_a_torn_last_line_shows_the_epochs_before_it_and_says_so(tmp_path):
    directory = make_run(tmp_path / "running", epochs=2, torn=True, summary=False)
    record = read_run(directory)
    assert [e["epoch"] for e in record.epochs] == [1, 2]
    page = build_report([directory])
    assert "the last line of metrics.jsonl is incomplete" in page and "showing the 2 epochs before it" in page
    assert '<div class="note"><strong>Incomplete runs</strong>' in page
    assert "no summary.json: still training, or stopped before the end" in page
    assert len(svgs(page)) == 3


def test_a_run_without_a_summary_still_shows_its_curves(tmp_path):
    page = build_report([make_run(tmp_path / "crashed", summary=False), make_run(tmp_path / "done")])
    assert '<td>crashed</td><td>3</td><td colspan="9">no summary.json' in page
    assert "<td>81.25 %</td>" in page  # the finished run's test accuracy
    assert "crashed: no summary.json: the run is still training or stopped before the end" in page
    assert len(svgs(page)) == 3 and svg_texts(page).count("crashed") == 3


def test_a_directory_that_is_not_a_run_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        ConfigError, match=f"{tmp_path / 'empty'} is not a run directory: it has no config.json and no metrics.jsonl"
    ):
        build_report([tmp_path / "empty"])
    os.remove(os.path.join(make_run(tmp_path / "half"), "metrics.jsonl"))
    with pytest.raises(ConfigError, match=r"half is not a run directory: it has no metrics.jsonl \("):
        write_report([tmp_path / "half"], tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()
    with pytest.raises(ConfigError, match="no such run directory: .*nowhere"):
        build_report([tmp_path / "nowhere"])
    with pytest.raises(ConfigError, match="no run directories given"):
        build_report([])


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


def test_names_and_values_from_files_are_escaped_everywhere(tmp_path):
    evil = "<script>alert(1)</script>"
    named = make_run(tmp_path / evil, config={"model": evil, "lr": 0.01})  # a nested path: .../<script>...
    quoted = make_run(tmp_path / '"><b onload=x>', config={"model": "mlp", "lr": 0.1, evil: 1})
    page = build_report([named, quoted], title=evil)
    assert "<script" not in page and "<b " not in page and "onload=x>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title, heading, directory, config value, diff
    assert "&quot;&gt;&lt;b onload=x&gt;" in page


def test_matplotlib_shows_run_names_literally(tmp_path):
    page = build_report([make_run(tmp_path / "$x$"), make_run(tmp_path / "_hidden")])
    texts = svg_texts(page)
    assert texts.count("$x$") == 3 and texts.count("_hidden") == 3


def test_runs_with_the_same_directory_name_are_named_by_their_paths(tmp_path):
    runs = read_runs([make_run(tmp_path / "a" / "run"), make_run(tmp_path / "b" / "run"), make_run(tmp_path / "c")])
    assert [run.name for run in runs] == [str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run"), "c"]


def test_the_learning_rate_axis_is_logarithmic_when_the_rates_span_decades(tmp_path):
    same = build_report([make_run(tmp_path / "one", lr=0.01), make_run(tmp_path / "two", lr=0.02)])
    apart = build_report([make_run(tmp_path / "three", lr=0.001), make_run(tmp_path / "four", lr=0.1)])
    assert "learning rate" in svg_texts(same) and "learning rate (log scale)" not in svg_texts(same)
    assert "learning rate (log scale)" in svg_texts(apart)


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
    texts = svg_texts(page)
    assert "saturated outputs (% of outputs)" in texts and "module 4 (Sigmoid)" in texts
    assert "the last line of diagnostics.jsonl is incomplete: showing the 3 samples before it" in page
    assert len(svgs(page)) == 5  # curves, dead units, saturated outputs (the torn gradients record left out)


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
