"""The reproducible studies behind ``deepgrad experiment NAME``: each claim of the course notes
about why a network trains or doesn't, run, measured and drawn.

    from deepgrad.experiments import run_experiment
    report = run_experiment("vanishing", out="experiments", quick=True)   # writes experiments/vanishing/

Each writes ``OUT/NAME/``: its PNG figures, ``report.md`` (what was run, the tables, what the
figures show) and ``results.json`` (the tables' numbers); ``run_all`` runs every one (and
``deepgrad experiment all`` adds ``OUT/index.html``, :mod:`deepgrad.report.experiments`). The directory appears whole when the experiment is done (it is written
under a temporary name first), so a failed or interrupted one never looks finished. Training runs
are built by :func:`deepgrad.train.run.build_run`.
"""

import importlib
import os
import shutil
import tempfile

from ..errors import ConfigError
from .common import DATASETS, Context, Report, run_in, write_report

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
    """Every experiment, into ``out/NAME/``; returns {name: Report}
    (:func:`deepgrad.report.write_experiments_index` adds the page showing them all)."""
    return {name: run_experiment(name, out, **options) for name in EXPERIMENTS}


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


__all__ = ["EXPERIMENTS", "Context", "Report", "names", "run_all", "run_experiment"]
