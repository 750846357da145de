"""The reproducible studies behind ``deepgrad experiment NAME``: each claim of the course notes
about why a network trains or doesn't, run, measured and drawn.

    from deepgrad.experiments import run_experiment
    report = run_experiment("vanishing", out="experiments", quick=True)   # writes experiments/vanishing/

Each writes ``OUT/NAME/``: its PNG figures, ``report.md`` (what was run, the tables, what the
figures show), ``results.json`` (the tables' numbers) and a manifest of those files; ``run_all``
runs every one (and ``deepgrad experiment all`` adds ``OUT/index.html``,
:mod:`deepgrad.report.experiments`). The directory appears whole when the experiment is done (it is
written under a temporary name first), so a failed or interrupted one never looks finished, and it
replaces only a previous experiment's output. Training runs are built by
:func:`deepgrad.train.run.build_run`.
"""

import importlib
import json
import os
import shutil
import tempfile

from .. import io
from ..errors import ConfigError
from ..train import config as options
from .common import DATASETS, Context, Report, run_in, write_report

MANIFEST = ".deepgrad-experiment.json"  # the files an experiment wrote into its folder

# name -> (module, what it shows)
EXPERIMENTS = {
    "init": ("init", "activations of 5 layers under four weight scales and three activation functions"),
    "vanishing": ("vanishing", "gradient flow per layer in 6-layer MLPs: sigmoid, ReLU + He, sigmoid + BN, residual"),
    "optimizers-2d": ("optimizers_2d", "SGD, Momentum, AdaGrad, RMSProp and Adam on a narrow bowl and a saddle"),
    "optimizers": ("optimizers", "the five optimizers training one 4-hidden-layer ReLU MLP"),
    "batchnorm": ("batchnorm", "with and without batch norm across weight scales; the BN paper's 3×100 sigmoid MLP"),
    "overfitting": ("overfitting", "300 training samples, 7 layers: none, weight decay, dropout"),
    "lr-decay": ("lr_decay", "constant, linear decay to a floor, step and cosine learning rates"),
    "clipping": ("clipping", "an exploding setting with and without gradient clipping"),
    "depth": ("depth", "plain against residual MLPs from 4 to 32 layers"),
    "graph": ("graph", "batch norm as its nine textbook steps against the fused op"),
}


def names():
    return list(EXPERIMENTS)


def run_experiment(
    name, out="experiments", dataset="digits", data_dir=None, download=False, seed=0, quick=False, progress=False
):
    """Run experiment ``name`` and write ``out/name/``; returns its :class:`Report`. A previous
    experiment's output there is replaced when this one is done; a folder holding anything an
    experiment did not write is refused before any work."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; the experiments: {', '.join(EXPERIMENTS)} (or all)")
    dataset = options.canonical_dataset(dataset)
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r} for experiments; valid: {', '.join(DATASETS)}")
    final = os.path.join(out, name)
    check_replaceable(final)
    module = importlib.import_module(f"{__name__}.{EXPERIMENTS[name][0]}")
    staging = _staging_directory(out, name)
    try:
        context = Context(name, staging, dataset, data_dir, download, seed, quick, progress)
        report = run_in(context, module.run)
        write_report(report, staging)
        write_manifest(staging, name)
        _replace(staging, final)
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


def check_replaceable(final):
    """A ConfigError unless ``final`` is free, an empty folder, or an experiment's output that holds
    nothing but what the experiment wrote (its manifest says what; an output from before manifests:
    report.md, results.json and figures)."""
    if not os.path.exists(final):
        return
    if not os.path.isdir(final):
        raise ConfigError(f"{final} is a file, not an experiment's folder; pass another --out")
    entries = set(os.listdir(final))
    foreign = sorted(entries - written_files(final)) if entries else []
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ConfigError(
            f"{final} holds files that deepgrad experiment did not write ({shown}); it replaces only "
            "its own output: move them or pass another --out"
        )


def written_files(folder):
    """The names in ``folder`` that an experiment wrote there (empty when it is not an experiment's)."""
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as handle:
            files = json.load(handle)["files"]
        if isinstance(files, list) and all(isinstance(name, str) for name in files):
            return {MANIFEST, *files}
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass
    names = set(os.listdir(folder))
    if not {"report.md", "results.json"} <= names:
        return set()
    return {
        name
        for name in names
        if name in ("report.md", "results.json")
        or (os.path.splitext(name)[1] in (".png", ".dot") and os.path.isfile(os.path.join(folder, name)))
    }


def write_manifest(folder, name):
    """List the files of experiment ``name`` in ``folder`` (all of them: it is written last)."""
    files = sorted(os.listdir(folder))
    io.write_text(os.path.join(folder, MANIFEST), json.dumps({"experiment": name, "files": files}, indent=1) + "\n")


def _replace(staging, final):
    """Put the finished ``staging`` directory in ``final``'s place; the previous output (checked by
    :func:`check_replaceable`) is removed only then, through a folder of its own."""
    holder = None
    if os.path.exists(final):
        check_replaceable(final)  # again: it may have changed while the experiment ran
        holder = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.old-", dir=os.path.dirname(final) or ".")
        os.replace(final, os.path.join(holder, "previous"))
    os.replace(staging, final)
    if holder:
        shutil.rmtree(holder, ignore_errors=True)


__all__ = ["EXPERIMENTS", "Context", "Report", "names", "run_all", "run_experiment"]
