"""The experiments' index page: every study of ``deepgrad experiment all`` on one page — its claim,
what was run, its figures and tables — built with the report's page machinery.

    reports = deepgrad.experiments.run_all("experiments")
    write_experiments_index(reports, "experiments")     # experiments/index.html
"""

import os

from ..experiments.common import cell
from . import page


def write_experiments_index(reports, out):
    """Write ``out/index.html`` for ``reports`` ({name: Report}, each written in ``out/name/``),
    atomically; returns its path."""
    return page.write_page(os.path.join(out, "index.html"), index_page(reports))


def index_page(reports):
    """One self-contained HTML page (no scripts, nothing fetched) with every report's claim, figures
    and tables, built with the report's page machinery; the figures are the PNGs in each
    experiment's directory."""
    body = [
        page.heading(1, "deepgrad experiments"),
        page.bullet_list(page.link(report.title, f"#{name}") for name, report in reports.items()),
    ]
    body += [_index_section(name, report) for name, report in reports.items()]
    return page.document("deepgrad experiments", body)


def _index_section(name, report):
    """One experiment on the index page: its claim, what was run (and its files), figures, tables."""
    setup = "; ".join(f"{str(key).replace('_', ' ')}: {value}" for key, value in report.setup.items())
    parts = [
        page.heading(2, report.title),
        page.paragraph(report.claim),
        page.paragraph(
            setup,
            " (",
            page.link("report.md", f"{name}/report.md"),
            ", ",
            page.link("results.json", f"{name}/results.json"),
            ")",
        ),
    ]
    parts += [
        page.figure(page.image(f"{name}/{figure.filename}", figure.caption), figure.caption)
        for figure in report.figures
    ]
    parts += [
        page.table(table.columns, [[cell(value) for value in row] for row in table.rows], caption=table.title)
        for table in report.tables
    ]
    return page.element("section", page.join(parts), id=name)
