"""The reproducible studies behind ``deepgrad experiment NAME``: each claim of the course notes
about why a network trains or doesn't, run over seeds, measured, judged by its numbers and drawn.

    from deepgrad.experiments import run_experiment
    report = run_experiment("lr-decay", out="experiments", quick=True)   # writes experiments/lr-decay/
    report.claims[0].verdict                                              # "reproduced", "partly", ...

Each writes ``OUT/NAME/``: its PNG figures, ``report.md`` (the question, the claims with their
values per seed and verdicts, what was run, the tables), ``results.json`` (the same as JSON) and a
manifest of those files; ``run_all`` runs every one and adds ``OUT/claims.json`` and
``OUT/index.html`` (:mod:`deepgrad.report.experiments`), whose first element is the table of every
claim. Measurements run on the search's executors (:mod:`.runner`); an output folder appears whole
when its study is done and replaces only a previous experiment's output (:mod:`.output`). Training
runs are built by :func:`deepgrad.train.run.build_run`.
"""

from __future__ import annotations

from typing import Any

from ..errors import DeepgradError
from .claims import Claim
from .common import Context, Report
from .output import MANIFEST, check_replaceable
from .runner import Outcome, Settings, run_experiments

# name -> (module, what it shows), in the order of the notes: the basics (001), optimization (002),
# normalization (000, 003, 004)
EXPERIMENTS = {
    "gradcheck": ("gradcheck", "numerical against analytic gradients; the error against the step h"),
    "softmax": ("softmax", "softmax's overflow and the max subtracted, masking, hardmax, dz = ŷ − y"),
    "losses": ("losses", "mean squared error against cross-entropy: gradients at a saturated output"),
    "init": (
        "init",
        "each unit's spread across samples under weight scales and activations; symmetry breaking, sparse init",
    ),
    "optimizers-2d": (
        "optimizers_2d",
        "the five optimizers on a narrow bowl and a saddle; momentum's terminal velocity, AdaGrad's vanishing rate, "
        "Adam's bias correction",
    ),
    "optimizers": ("optimizers", "the five optimizers training one ReLU MLP, each at its rate chosen on validation"),
    "overfitting": ("overfitting", "few samples, many weights: none, weight decay, dropout"),
    "dropout": ("dropout", "dropout's train and test scaling, and dropout as an ensemble"),
    "search": ("search", "the log-scale hyperparameter search narrowing its range"),
    "lr-decay": ("lr_decay", "constant against decaying rates in the noisy regime; α₀ from too small to too large"),
    "minibatch-noise": ("minibatch_noise", "mini-batch noise: the gradient's spread and escaping a saddle"),
    "clipping": ("clipping", "a gradient cliff with and without clipping, against a lower rate"),
    "vanishing": ("vanishing", "gradient flow per layer in deep sigmoid MLPs, and its cures trained"),
    "depth": ("depth", "plain against residual MLPs from 2 to 32 layers: where the plain net's training error rises"),
    "batchnorm": (
        "batchnorm",
        "with and without batch norm across weight scales; the BN paper's 3×100 sigmoid MLP and its internal "
        "covariate shift",
    ),
    "batchnorm-mechanics": ("batchnorm_mechanics", "batch norm at test time, its batch size, γ and β, its place"),
    "input-scaling": ("input_scaling", "inputs on different scales: the elongated error surface normalization rounds"),
    "normalizers": ("normalizers", "layer, group and weight normalization against batch norm"),
    "graph": ("graph", "batch norm as its nine textbook steps against the fused op"),
}


def names() -> list[str]:
    return list(EXPERIMENTS)


def registry() -> dict[str, str]:
    """{experiment: its module's name}."""
    return {name: module for name, (module, _) in EXPERIMENTS.items()}


class ExperimentFailed(DeepgradError, RuntimeError):
    """A study raised while it measured or reported: the message says which and why."""


def run_experiment(
    name: str,
    out: str = "experiments",
    dataset: str = "digits",
    data_dir: str | None = None,
    download: bool = False,
    seed: int = 0,
    quick: bool = False,
    progress: bool = False,
    seeds: int | None = None,
    backend: str = "local",
    jobs: int | None = None,
) -> Report:
    """Run experiment ``name`` over its seeds (``seeds`` of them from ``seed``; default the study's
    own count) and write ``out/name/``; returns its :class:`Report`. A previous experiment's output
    there is replaced when this one is done; a folder holding anything an experiment did not write
    is refused before any work. An :class:`ExperimentFailed` when it fails."""
    outcome = run_experiments(
        registry(), [name], out, Settings(dataset, data_dir, download, quick), seed, seeds, backend, jobs, progress
    )
    if name in outcome.failures:
        raise ExperimentFailed(f"experiment {name} failed: {outcome.failures[name]}")
    return outcome.reports[name]


def run_all(out: str = "experiments", **settings: Any) -> Outcome:
    """Every experiment, into ``out/NAME/``, with ``out/claims.json``; a study that fails does not
    stop the others (``outcome.failures``). (:func:`deepgrad.report.write_experiments_index` adds
    the page showing them all.)"""
    data = {key: settings.pop(key) for key in ("dataset", "data_dir", "download", "quick") if key in settings}
    return run_experiments(registry(), names(), out, Settings(**data), claims=True, **settings)


__all__ = [
    "EXPERIMENTS",
    "MANIFEST",
    "Claim",
    "Context",
    "ExperimentFailed",
    "Outcome",
    "Report",
    "check_replaceable",
    "names",
    "run_all",
    "run_experiment",
]
