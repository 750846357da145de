"""The run report: one self-contained HTML page comparing training runs (their results, their
curves overlaid, how their configs differ) with each run's config and diagnostics.

    write_report(["runs/adam", "runs/sgd"], "report.html")     # what `deepgrad report` does
"""

import datetime

from . import page
from .charts import diagnostics_charts, training_curves
from .runs import read_runs
from .tables import config_differences, options_of, results_table


def write_report(run_dirs, out, title=None):
    """Write the report of the runs in ``run_dirs`` (a list of run directories) to ``out``,
    atomically; returns ``out``. ConfigError naming a directory that is not a run, or an ``out`` that
    is not a page deepgrad wrote."""
    page.write_page(out, build_report(run_dirs, title))
    return out


def build_report(run_dirs, title=None):
    """The report of the runs in ``run_dirs`` as an HTML page (a string); ``title`` defaults to
    one naming the runs."""
    runs = read_runs(run_dirs)
    title = title or "deepgrad runs: " + ", ".join(run.name for run in runs)
    generated = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = [
        page.heading(1, title),
        page.paragraph(f"{len(runs)} run{'s' if len(runs) > 1 else ''}, report made {generated}.", class_="muted"),
        *notes_box(runs),
        page.bullet_list(page.link(run.name, f"#run-{number}") for number, run in enumerate(runs, 1)),
        page.heading(2, "Results"),
        results_table(runs),
        page.heading(2, "Training curves"),
        charts(training_curves(runs)),
        page.heading(2, "Config differences"),
        config_differences(runs),
    ]
    body += [run_section(run, number) for number, run in enumerate(runs, 1)]
    return page.document(title, body)


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


def run_section(run, number):
    """One run: where it is, what is incomplete, its whole config, and its diagnostics."""
    parts = [
        page.heading(2, f"Run: {run.name}", anchor=f"run-{number}"),
        page.paragraph("directory: ", page.element("code", run.directory)),
    ]
    parts += [page.paragraph(note, class_="note") for note in run.notes]
    parts += [page.heading(3, "Config"), page.options(options_of(run.config)), page.heading(3, "Diagnostics")]
    diagnostics = diagnostics_charts(run)
    if diagnostics:
        parts.append(charts(diagnostics))
    else:
        parts.append(
            page.paragraph(
                "No diagnostics.jsonl: train with --monitor to record gradient flow and activation statistics.",
                class_="muted",
            )
        )
    return page.element("section", page.join(parts))


def charts(captioned):
    """The (caption, svg) pairs as figures in a grid."""
    return page.element("div", page.join(page.figure(svg, caption) for caption, svg in captioned), class_="charts")
