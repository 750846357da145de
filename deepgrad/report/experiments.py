"""The experiments' index page: the table of every claim first (claim, note, key number ± spread
over the seeds, verdict), then each study — its question, claims, what was run, figures and tables
— read from the studies' ``results.json`` in the output folder, so re-running one study writes the
page anew. Built with the report's page machinery.

    deepgrad.experiments.run_all("experiments")      # writes experiments/index.html too
    write_experiments_index("experiments", registry)
"""

from __future__ import annotations

import os
from typing import Any

from ..experiments.claims import Claim
from ..experiments.common import cell
from ..experiments.runner import INDEX_FILE, failures, read_results
from . import page


def write_experiments_index(out: str, registry: dict[str, str]) -> str:
    """Write ``out/index.html`` of the studies in ``out`` (``registry``: every study, in order),
    atomically; returns its path."""
    return page.write_page(os.path.join(out, INDEX_FILE), index_page(read_results(out, registry), failures(out)))


def index_page(results: dict[str, dict[str, Any]], failed: dict[str, str]) -> str:
    """One self-contained HTML page (no scripts, nothing fetched): the claims of every study, the
    studies that failed, then each study; the figures are the PNGs in each study's folder."""
    claims = [(name, Claim.from_dict(record)) for name, study in results.items() for record in study["claims"]]
    counts = {
        verdict: sum(claim.verdict == verdict for _, claim in claims)
        for verdict in ("reproduced", "partly", "not reproduced")
    }
    body = [
        page.heading(1, "deepgrad experiments: the claims of the course notes, measured"),
        claims_table(claims, caption=f"{len(claims)} claims: " + ", ".join(f"{n} {v}" for v, n in counts.items())),
    ]
    if failed:
        body.append(
            page.paragraph(
                "failed: "
                + "; ".join(f"{name} ({error})" for name, error in failed.items())
                + " — each shown below from its previous run, if it had one",
                class_="note",
            )
        )
    body.append(page.bullet_list(page.link(study["title"], f"#{name}") for name, study in results.items()))
    body += [study_section(name, study) for name, study in results.items()]
    return page.document("deepgrad experiments", body)


def claims_table(claims: list[tuple[str, Claim]], caption: str | None = None) -> page.Markup:
    """A row per claim: the sentence (linking to its study), its note, the measure, mean ± spread over
    the seeds, the comparison it is judged by and the verdict (coloured)."""
    rows = [
        [
            page.Cell(page.link(claim.claim, f"#{name}"), kind="claim"),
            claim.note,
            claim.measure,
            claim.summary(),
            f"{len(claim.values)}",
            f"value {claim.comparison}",
            page.Cell(claim.verdict, kind=claim.verdict.replace(" ", "-")),
        ]
        for name, claim in claims
    ]
    columns = ["claim", "note", "measure", "mean ± sd", "seeds", "judged by", "verdict"]
    return page.table(columns, rows, caption=caption)


def study_section(name: str, study: dict[str, Any]) -> page.Markup:
    """One study: its question, claims, what was run (and its files), figures, tables."""
    setup = "; ".join(f"{str(key).replace('_', ' ')}: {value}" for key, value in study["setup"].items())
    claims = [(name, Claim.from_dict(record)) for record in study["claims"]]
    parts = [
        page.heading(2, study["title"]),
        page.paragraph(study["question"]),
        claims_table(claims) if claims else page.paragraph("no claims recorded", class_="muted"),
        page.paragraph(
            setup,
            " (",
            page.link("report.md", f"{name}/report.md"),
            ", ",
            page.link("results.json", f"{name}/results.json"),
            ")",
            class_="muted",
        ),
    ]
    parts += [
        page.figure(page.image(f"{name}/{figure['filename']}", figure["caption"]), figure["caption"])
        for figure in study["figures"]
    ]
    parts += [
        page.table(table["columns"], [[cell(value) for value in row] for row in table["rows"]], caption=table["title"])
        for table in study["tables"]
    ]
    return page.element("section", page.join(parts), id=name)
