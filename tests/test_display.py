"""How deepgrad shows itself in a notebook: the ``_repr_html_`` of a model (its summary), a run and
its history, a study, a claim and a study's report — each valid markup (parsed as XML inside a
wrapper), holding the numbers it should, with any text escaped — and progress bars that are bars in
a notebook and lines in a log."""

import io
import math
import re
import sys
import xml.etree.ElementTree as ET

import numpy as np

import deepgrad as dg
import deepgrad.nn as nn
from deepgrad import progress
from deepgrad.experiments.claims import Claim, above
from deepgrad.experiments.common import Figure, Report
from deepgrad.search.study import Study, Trial
from deepgrad.train import ProgressBar, build_run, presets


def parsed(html):
    """The HTML as an element tree: it fails on anything not well formed."""
    assert isinstance(html, str) and html
    return ET.fromstring(f"<div>{html}</div>")


def text_of(html):
    return " ".join(parsed(html).itertext())


def test_model_summary_has_output_shapes_and_parameter_counts():
    model = presets.mlp((1, 8, 8), 10, hidden=(32, 32), batch_norm=True, residual=True)
    summary = model.summary()
    total = sum(p.data.size for p in model.parameters())
    text = text_of(model._repr_html_())
    assert f"{total:,}" in text and "Residual" in text and "(1, 10)" in text and "(1, 64)" in text
    rows = {row.name: row for row in summary.rows}
    assert rows["1"].parameters == 64 * 32 and rows["2"].parameters == 64  # Linear without bias, BN's γ and β
    assert rows["4"].parameters == rows["4.block"].parameters == 32 * 32 + 64 and rows["4.block.0"].depth == 2
    assert summary.total == summary.trainable == total and f"{total:,}" in str(summary)
    assert model.training  # the forward pass of the summary left the mode alone


def test_model_summary_takes_an_example_input_and_says_when_it_has_none():
    cnn = presets.simple_cnn((1, 8, 8), 10)
    assert "pass an example input" in text_of(cnn._repr_html_())
    summary = cnn.summary(np.zeros((2, 1, 8, 8), dtype=np.float32))
    assert [row.output_shape for row in summary.rows][:3] == [(2, 30, 4, 4), (2, 30, 4, 4), (2, 30, 2, 2)]
    broken = nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2))
    assert "failed in the forward pass" in text_of(broken._repr_html_())
    assert [row.parameters for row in broken.summary().rows] == [16, 12]


def test_model_summary_escapes_names():
    model = nn.Sequential()
    setattr(model, "<b>bold</b>", nn.Linear(2, 2))
    html = model._repr_html_()
    assert "<b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    parsed(html)


def test_run_and_history_show_curves_and_final_table():
    run = build_run({"epochs": 2, "hidden": [16]}, progress=False)
    assert "model" in text_of(run._repr_html_())  # before fit: what it is and its model
    summary = run.fit()
    html = run._repr_html_()
    text = text_of(html)
    assert f"{summary['test_accuracy']:.2%}" in text and f"{summary['val_loss']:.4g}" in text
    assert "finished after 2 epochs" in text and html.count("data:image/png;base64,") == 1
    history = run.trainer.history
    history_text = text_of(history._repr_html_())
    assert f"{history['val_accuracy'][-1]:.2%}" in history_text and "80 steps" in history_text
    assert "no epoch" in text_of(type(history)()._repr_html_())


def test_study_shows_its_best_trials_and_figure():
    study = Study()
    for number, (lr, score) in enumerate([(0.1, 0.9), (0.01, 0.95), (1.0, math.nan)]):
        status = "failed" if math.isnan(score) else "finished"
        study.record(Trial(number, 0, {"lr": lr, "note": "<i>"}, status, None if math.isnan(score) else score))
    html = study._repr_html_()
    rows = [[cell.text for cell in row] for row in parsed(html).iter("tr")]
    assert rows[1][:5] == ["1", "2", "1", "0.95", "finished"] and rows[1][5] == "0.01" and rows[1][6] == "<i>"
    assert "2 finished, 1 failed" in text_of(html) and "data:image/png;base64," in html


def test_claims_and_reports_show_values_and_computed_verdicts(tmp_path):
    from matplotlib.figure import Figure as PlotFigure

    claim = Claim.judge("x/y", "001", "Softmax <b>overflows</b>.", "fraction & more", [0.2, 0.7, 0.9], above(0.5))
    text = text_of(claim._repr_html_())
    assert "Softmax <b>overflows</b>." in text and "0.2, 0.7, 0.9" in text and "partly" in text
    figure = PlotFigure()
    figure.subplots().plot([1, 2])
    figure.savefig(tmp_path / "curve.png")
    report = Report("A study", "Why?", {"data": "digits"}, [claim], figures=[Figure("curve.png", "the curve")])
    assert "data:image" not in report._repr_html_()  # no directory yet: no figures to show
    report.directory = str(tmp_path)
    html = report._repr_html_()
    assert "1 claims: 1 partly" in text_of(html) and html.count("data:image/png;base64,") == 1


def test_progress_bar_is_a_bar_in_a_notebook_and_lines_in_a_log(monkeypatch, capsys):
    from deepgrad.data import DataLoader, datasets

    train = DataLoader(datasets.spiral_splits(n=60).train, 16, shuffle=True)

    def fit(callback):
        model = presets.mlp((2,), 3, hidden=(8,))
        dg.train.Trainer(
            model, dg.optim.SGD(model.parameters(), lr=0.1), dg.functional.cross_entropy, callbacks=[callback]
        ).fit(train, epochs=1)

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    assert progress.watched(sys.stderr) and not progress.watched(io.StringIO())
    fit(ProgressBar())  # the notebook's own stderr: tqdm.auto's bar (text here: no widgets to draw)
    assert re.search(r"epoch 1/1: 100%\|", capsys.readouterr().err)
    log = io.StringIO()
    fit(ProgressBar(stream=log, interval=0.0))
    assert log.getvalue().startswith("epoch 1/1 batch 1/") and "%|" not in log.getvalue()
    monkeypatch.undo()
    assert not progress.in_notebook()  # pytest is no Jupyter kernel
