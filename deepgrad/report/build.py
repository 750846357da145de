"""The run report: one self-contained HTML page comparing training runs — their states and results
(a sortable table, the best of each metric marked), their curves overlaid in interactive charts,
how their configs differ — with each run's config and diagnostics, and the trials of any search.

    write_report(["runs/adam", "runs/sgd"], "report.html")     # what `deepgrad report` does
    write_report(["runs"], "report.html", filter="adam")       # the runs below runs/ whose path has "adam"

The charts are Plotly's: plotly.js is inlined once (with the first chart), so the page opens with no
network; nothing is fetched.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence

from . import page, scripts
from .charts import CURVES, chart_html, default_x, diagnostics_charts, training_curves
from .runs import find_sources, read_runs
from .search import read_search, search_section
from .tables import config_differences, options_of, results_table

TITLE_NAMES = 6  # runs named in the default title


def write_report(
    paths: Sequence[str | os.PathLike[str]], out: str, title: str | None = None, filter: str | None = None
) -> str:
    """Write the report of the runs and searches of ``paths`` (run directories, search directories,
    or folders holding them, as ``tensorboard --logdir`` takes them; ``filter``: a regular expression
    their paths must match) to ``out``, atomically; returns ``out``. ConfigError naming a path that
    holds no run, or an ``out`` that is not a page deepgrad wrote."""
    page.write_page(out, build_report(paths, title, filter))
    return out


def build_report(paths: Sequence[str | os.PathLike[str]], title: str | None = None, filter: str | None = None) -> str:
    """The report of the runs and searches of ``paths`` (see :func:`write_report`) as an HTML page (a
    string); ``title`` defaults to one naming the runs."""
    run_sources, search_sources = find_sources(paths, filter)
    runs = read_runs([d for d, _ in run_sources], [n for _, n in run_sources]) if run_sources else []
    searches = [read_search(directory, name) for directory, name in search_sources]
    title = title or default_title(runs, searches)
    generated = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    charts = Charts()
    counts = [f"{len(runs)} run{'s' if len(runs) != 1 else ''}"] if runs else []
    counts += [f"{len(searches)} search{'es' if len(searches) != 1 else ''}"] if searches else []
    body = [
        page.heading(1, title),
        page.paragraph(f"{', '.join(counts)}, report made {generated}.", class_="muted"),
        *notes_box(runs),
    ]
    if runs:
        body += [
            page.bullet_list(
                page.join([page.link(run.name, f"#run-{number}"), " — ", state_badge(run.state)])
                for number, run in enumerate(runs, 1)
            ),
            page.heading(2, "Results"),
            results_table(runs),
            page.heading(2, "Training curves"),
            curves_section(runs, charts),
            page.heading(2, "Config differences"),
            config_differences(runs),
        ]
        body += [run_section(run, number, charts) for number, run in enumerate(runs, 1)]
    body += [search_section(search, number, charts) for number, search in enumerate(searches, 1)]
    return page.document(title, body, style=scripts.STYLE, scripts=[scripts.SCRIPT])


def default_title(runs, searches):
    """'deepgrad runs: a, b, c' (the first TITLE_NAMES runs' names), or the searches'."""
    if runs:
        names = [run.name for run in runs]
        more = f" and {len(names) - TITLE_NAMES} more" if len(names) > TITLE_NAMES else ""
        return "deepgrad runs: " + ", ".join(names[:TITLE_NAMES]) + more
    return "deepgrad search: " + ", ".join(search.name for search in searches)


class Charts:
    """Turns :class:`~deepgrad.report.charts.Chart`\\ s into the page's figures, numbering them;
    the first one inlines plotly.js, which the others use."""

    def __init__(self):
        self.count = 0

    def figure(self, chart):
        self.count += 1
        chart_id = f"chart-{self.count}"
        post = f"deepgrad.legend('{chart_id}')" if chart.group == CURVES else None
        fragment = chart_html(chart, chart_id, include_plotlyjs=self.count == 1, post_script=post)
        return page.figure(page.element("div", fragment, class_="plot"), chart.caption)

    def grid(self, charts, class_="charts"):
        """The charts as figures in a grid."""
        return page.element("div", page.join(self.figure(chart) for chart in charts), class_=class_)


def state_badge(state):
    """A run's state label, coloured by its kind, its detail on hover."""
    return page.element("span", state.label, class_=f"state state-{state.kind}", title=state.detail)


def notes_box(runs):
    """A highlighted box listing what is incomplete in each run (nothing when all are complete)."""
    notes = [f"{run.name}: {note}" for run in runs for note in run.notes]
    if not notes:
        return []
    return [
        page.element(
            "div", page.join([page.element("strong", "Incomplete runs"), page.bullet_list(notes)]), class_="note"
        )
    ]


SELECTS = (
    ("x", "x axis", (("step", "step"), ("epoch", "epoch"), ("time", "wall time"))),
    ("smooth", "smoothing", (("none", "none"), ("light", "light (0.6)"), ("heavy", "heavy (0.9)"))),
    ("y", "loss axis", (("log", "log"), ("linear", "linear"))),
)


def toolbar(start):
    """The controls of the curve charts: x axis (``start`` selected), smoothing of the per-step
    curves, the loss axis."""
    controls = []
    chosen = {"x": start, "smooth": "none", "y": "log"}
    for setting, label, options in SELECTS:
        choices = page.join(
            page.element("option", text, value=value, selected="selected" if value == chosen[setting] else None)
            for value, text in options
        )
        select = page.element("select", choices, data_setting=setting, autocomplete="off")
        controls.append(page.element("label", page.join([label, select])))
    controls.append(
        page.element(
            "span",
            "hover for values · drag to zoom, double-click to zoom out · click a run in a legend to hide or "
            "show it in every chart, double-click it to show it alone",
            class_="muted",
        )
    )
    return page.element("div", page.join(controls), class_="toolbar", role="group", aria_label="chart settings")


def curves_section(runs, charts):
    """The controls and the curve charts of ``runs``; a sentence when they logged nothing."""
    curves = training_curves(runs)
    if not curves:
        return page.paragraph("No run has logged a step or an epoch yet.", class_="muted")
    return page.element("div", page.join([toolbar(default_x(runs)), charts.grid(curves)]), class_="curves")


def run_section(run, number, charts):
    """One run: its state, where it is, what is incomplete, its whole config, and its diagnostics."""
    state = run.state
    parts = [
        page.heading(2, f"Run: {run.name}", anchor=f"run-{number}"),
        page.paragraph(state.detail, class_=f"state state-{state.kind}"),
        page.paragraph("directory: ", page.element("code", run.directory)),
    ]
    parts += [page.paragraph(note, class_="note") for note in run.notes]
    parts += [page.heading(3, "Config"), page.options(options_of(run.config)), page.heading(3, "Diagnostics")]
    diagnostics = diagnostics_charts(run)
    if diagnostics:
        parts.append(charts.grid(diagnostics))
    else:
        parts.append(
            page.paragraph(
                "No diagnostics.jsonl: train with --monitor to record gradient flow and activation statistics.",
                class_="muted",
            )
        )
    return page.element("section", page.join(parts))
