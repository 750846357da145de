"""The reproducible studies behind ``deepgrad experiment NAME``: each claim of the course notes
about why a network trains or doesn't, run, measured and drawn.

    from deepgrad.experiments import run_experiment
    report = run_experiment("vanishing", out="experiments", quick=True)   # writes experiments/vanishing/

Each writes ``OUT/NAME/``: its PNG figures, ``report.md`` (what was run, the tables, what the
figures show) and ``results.json`` (the tables' numbers); ``run_all`` runs every one and adds
``OUT/index.html``. The directory appears whole when the experiment is done (it is written
under a temporary name first), so a failed or interrupted one never looks finished. Training runs
are built by :func:`deepgrad.train.run.build_run`.
"""

import html
import importlib
import os
import shutil
import tempfile

from .. import io
from ..errors import ConfigError
from .common import DATASETS, Context, Report, cell, run_in, write_report

# name -> (module, what it shows)
EXPERIMENTS = {
    "init": ("init", "activations of 5 layers under four weight scales and three activation functions"),
    "vanishing": ("vanishing", "gradient flow per layer in 6-layer MLPs: sigmoid, ReLU + He, sigmoid + BN, "
                               "residual"),
    "optimizers-2d": ("optimizers_2d", "SGD, Momentum, AdaGrad, RMSProp and Adam on a narrow bowl and a saddle"),
    "optimizers": ("optimizers", "the five optimizers training one 4-hidden-layer ReLU MLP"),
    "batchnorm": ("batchnorm", "with and without batch norm across weight scales; the BN paper's 3×100 "
                               "sigmoid MLP"),
    "overfitting": ("overfitting", "300 training samples, 7 layers: none, weight decay, dropout"),
    "lr-decay": ("lr_decay", "constant, linear decay to a floor, step and cosine learning rates"),
    "clipping": ("clipping", "an exploding setting with and without gradient clipping"),
    "depth": ("depth", "plain against residual MLPs from 4 to 32 layers"),
    "graph": ("graph", "batch norm as its nine textbook steps against the fused op"),
}


def names():
    return list(EXPERIMENTS)


def run_experiment(name, out="experiments", dataset="digits", data_dir=None, download=False, seed=0, quick=False,
                   progress=False):
    """Run experiment ``name`` and write ``out/name/``; returns its :class:`Report`."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; the experiments: {', '.join(EXPERIMENTS)} (or all)")
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r} for experiments; valid: digits, mnist, fashion")
    module = importlib.import_module(f"{__name__}.{EXPERIMENTS[name][0]}")
    staging = _staging_directory(out, name)
    try:
        context = Context(name, staging, DATASETS[dataset], data_dir, download, seed, quick, progress)
        report = run_in(context, module.run)
        write_report(report, staging)
        _replace(staging, os.path.join(out, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def run_all(out="experiments", **options):
    """Every experiment, then ``out/index.html`` showing each one's figures and tables."""
    reports = {name: run_experiment(name, out, **options) for name in EXPERIMENTS}
    io.write_text(os.path.join(out, "index.html"), index_page(reports))
    return reports


def _staging_directory(out, name):
    """A new empty directory beside ``out/name`` to write the experiment into; a clear error when
    ``out`` cannot be written."""
    try:
        os.makedirs(out, exist_ok=True)
        return tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out)
    except OSError as error:
        raise ConfigError(f"cannot write the experiment into --out {out}: {error.strerror or error}") from None


def _replace(staging, final):
    """Put the finished ``staging`` directory in ``final``'s place (the previous one removed only then)."""
    previous = None
    if os.path.exists(final):
        previous = final + ".old"
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(final, previous)
    os.replace(staging, final)
    if previous:
        shutil.rmtree(previous, ignore_errors=True)


def index_page(reports):
    """One self-contained HTML page (no scripts, nothing fetched) with every report's claim, figures
    and tables; the figures are the PNGs in each experiment's directory."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>deepgrad experiments</title>',
             "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}"
             "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#f3f3f3}"
             "figcaption{color:#555;font-size:.9em}section{margin-bottom:3em}</style></head><body>",
             "<h1>deepgrad experiments</h1>", "<ul>"]
    parts += [f'<li><a href="#{html.escape(name)}">{html.escape(report.title)}</a></li>'
              for name, report in reports.items()]
    parts.append("</ul>")
    for name, report in reports.items():
        e = html.escape
        parts += [f'<section id="{e(name)}"><h2>{e(report.title)}</h2>', f"<p>{e(report.claim)}</p>",
                  "<p>" + "; ".join(f"{e(str(k)).replace('_', ' ')}: {e(str(v))}" for k, v in report.setup.items())
                  + f' (<a href="{e(name)}/report.md">report.md</a>, '
                    f'<a href="{e(name)}/results.json">results.json</a>)</p>']
        for figure in report.figures:
            parts.append(f'<figure><img src="{e(name)}/{e(figure.filename)}" alt="{e(figure.caption)}">'
                         f"<figcaption>{e(figure.caption)}</figcaption></figure>")
        for table in report.tables:
            parts.append(f"<table><caption>{e(table.title)}</caption><tr>"
                         + "".join(f"<th>{e(str(c))}</th>" for c in table.columns) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(cell(v))}</td>" for v in row) + "</tr>" for row in table.rows]
            parts.append("</table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


__all__ = ["EXPERIMENTS", "Context", "Report", "names", "run_all", "run_experiment"]
