"""How claims and a study's report show in a notebook (their ``_repr_html_``): a table with a row
per claim — the sentence, its note, the measure, each seed's value, mean ± spread, the comparison it
is judged by and the verdict, coloured — and, for a report, its question and figures.

    claims_html([claim, ...])        # the table of any claims, e.g. those a notebook judged itself
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..markup import Cell, Markup, element, join, png_image, table
from .claims import Claim, format_number

if TYPE_CHECKING:
    from .common import Report

# The background of each verdict's cell (inline: a notebook has no stylesheet of deepgrad's).
VERDICT_COLOURS = {"reproduced": "#dff3e0", "partly": "#fff1b8", "not reproduced": "#fbdcdc"}
COLUMNS = ["claim", "note", "measure", "values (per seed)", "mean ± sd", "judged by", "verdict"]


def claims_html(claims: Iterable[Claim], caption: str | None = None) -> Markup:
    rows = [
        [
            Cell(claim.claim, style="text-align:left"),
            claim.note,
            claim.measure,
            ", ".join(format_number(value) for value in claim.values),
            claim.summary(),
            f"value {claim.comparison}",
            Cell(claim.verdict, style=f"background:{VERDICT_COLOURS[claim.verdict]}"),
        ]
        for claim in claims
    ]
    return table(COLUMNS, rows, caption=caption)


def report_html(report: Report) -> Markup:
    """The study's title and question, its claims, and the figures in its folder (when it has one)."""
    parts = [element("h3", report.title), element("p", element("em", report.question))]
    if report.claims:
        counts = {v: sum(claim.verdict == v for claim in report.claims) for v in VERDICT_COLOURS}
        summary = ", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count)
        parts.append(claims_html(report.claims, caption=f"{len(report.claims)} claims: {summary}"))
    setup = "; ".join(f"{str(key).replace('_', ' ')}: {value}" for key, value in report.setup.items())
    parts.append(element("p", setup))
    for figure in report.figures:
        if report.directory is None:
            break
        path = os.path.join(report.directory, figure.filename)
        if os.path.exists(path) and path.endswith(".png"):
            with open(path, "rb") as handle:
                image = png_image(handle.read(), figure.caption)
            parts.append(element("figure", join([image, element("figcaption", figure.caption)])))
    return join(parts)
