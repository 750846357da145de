"""Running studies: every (study, seed) measurement a trial on the search's executors (one process
per CPU by default, or serial, or Ray), then each study's report — its figures and judged claims —
written whole into ``OUT/NAME/`` as soon as its seeds are in. A study that fails does not stop the
others: it is listed in ``OUT/failures.json`` (its previous output, if any, is kept). Afterwards
``OUT/claims.json`` (every claim of every study in OUT) is written anew; the index page that shows
it all is :mod:`deepgrad.report.experiments`'s.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .. import io
from ..data import datasets
from ..errors import ConfigError
from ..random import manual_seed
from ..search.runner import NoScheduler, make_executor
from ..search.study import Trial
from ..train import config as options
from .common import DATASETS, Context, Report, write_report
from .output import check_replaceable, replace, staging_directory, write_manifest

CLAIMS_FILE, FAILURES_FILE, INDEX_FILE = "claims.json", "failures.json", "index.html"
QUICK_SEEDS = 2  # --quick measures statistical claims over two seeds (a smoke test, not a verdict)


@dataclass(frozen=True)
class Settings:
    """What every measurement of a run of experiments shares: the data set and quick mode."""

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    quick: bool = False

    def context(self, name: str, directory: str, seed: int, seeds: tuple[int, ...], progress: bool = False) -> Context:
        return Context(name, directory, self.dataset, self.data_dir, self.download, seed, self.quick, progress, seeds)


@dataclass(frozen=True)
class Measurement:
    """The objective whose trials are measurements: ``params`` name the study and the seed; the
    study's numbers for that seed are written to ``folder/NAME.seed-S.json``; the score is 0 (the
    search's executors run it as any trial, in any process)."""

    folder: str
    settings: Settings
    modules: dict[str, str] = field(default_factory=dict)  # study -> module name

    def __call__(self, params: dict[str, Any], report: Any) -> float:
        name, seed = params["study"], int(params["seed"])
        module = importlib.import_module(f"{__package__}.{self.modules[name]}")
        context = self.settings.context(name, self.folder, seed, (seed,))
        manual_seed(seed)
        measured = module.measure(context)
        io.write_text(measurement_path(self.folder, name, seed), json.dumps(measured) + "\n")
        return 0.0


def measurement_path(folder: str, name: str, seed: int) -> str:
    return os.path.join(folder, f"{name}.seed-{seed}.json")


@dataclass
class Outcome:
    """What a run of experiments did: each study's :class:`Report`, or the error it failed with."""

    reports: dict[str, Report] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def study_seeds(module: ModuleType, seed: int, seeds: int | None, quick: bool) -> list[int]:
    """The seeds a study is measured with: ``seed`` alone for a study whose numbers do not depend on
    one, else ``seeds`` of them from ``seed`` (default: the study's own count, two with ``quick``)."""
    if getattr(module, "SEEDS", 1) <= 1:
        return [seed]
    count = seeds if seeds is not None else (QUICK_SEEDS if quick else module.SEEDS)
    return list(range(seed, seed + count))


def run_experiments(
    registry: dict[str, str],
    names: Iterable[str],
    out: str,
    settings: Settings,
    seed: int = 0,
    seeds: int | None = None,
    backend: str = "local",
    jobs: int | None = None,
    progress: bool = False,
    claims: bool = False,
) -> Outcome:
    """Measure and report the studies ``names`` (``registry``: name -> module) into ``out/NAME/``.
    Everything is checked before any work: each output folder, the data set, the seeds. With
    ``claims`` (or when ``out`` has one already), ``claims.json`` is written anew."""
    names = list(names)
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise ConfigError(f"--seeds must be a whole number >= 1, got {seeds!r}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    dataset = options.canonical_dataset(settings.dataset)
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {settings.dataset!r} for experiments; valid: {', '.join(DATASETS)}")
    settings = Settings(dataset, settings.data_dir, settings.download, settings.quick)
    datasets.load(dataset, settings.data_dir, settings.download, seed)  # a missing data set: one line, before any work
    for name in names:
        if name not in registry:
            raise ConfigError(f"unknown experiment {name!r}; the experiments: {', '.join(registry)} (or all)")
        check_replaceable(os.path.join(out, name))
    modules = {name: importlib.import_module(f"{__package__}.{registry[name]}") for name in names}
    plan = {name: study_seeds(modules[name], seed, seeds, settings.quick) for name in names}
    executor = make_executor(backend, jobs)
    folder = staging_directory(out, "measurements")
    outcome = Outcome()
    try:
        trials = [
            Trial(number, 0, {"study": name, "seed": s})
            for number, (name, s) in enumerate((n, s) for n in names for s in plan[n])
        ]
        done: dict[str, list[Trial]] = {name: [] for name in names}
        objective = Measurement(folder, settings, {name: registry[name] for name in names})
        bar = _bar(len(trials)) if progress else None
        for trial in executor.run(objective, iter(trials), NoScheduler()):
            if bar is not None:
                bar.update(1)
            name = trial.params["study"]
            done[name].append(trial)
            if len(done[name]) == len(plan[name]):
                _finish(name, modules[name], done[name], plan[name], folder, out, settings, outcome)
        if bar is not None:
            bar.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _record_failures(out, names, outcome.failures)
    if claims or os.path.exists(os.path.join(out, CLAIMS_FILE)):
        write_claims(out, registry)
    return outcome


def _finish(
    name: str,
    module: ModuleType,
    trials: list[Trial],
    seeds: list[int],
    folder: str,
    out: str,
    settings: Settings,
    outcome: Outcome,
) -> None:
    """Report study ``name`` from its measurements into ``out/name/``, or record why it failed."""
    failed = [trial for trial in trials if trial.status != "finished"]
    if failed:
        first = min(failed, key=lambda trial: trial.params["seed"])
        outcome.failures[name] = f"seed {first.params['seed']}: {first.error}"
        return
    staging = staging_directory(out, name)
    try:
        measured = []
        for seed in seeds:
            with open(measurement_path(folder, name, seed), encoding="utf-8") as handle:
                measured.append(json.load(handle))
        start = time.perf_counter()
        context = settings.context(name, staging, seeds[0], tuple(seeds))
        manual_seed(seeds[0])
        report = module.report(context, measured)
        measuring = math.fsum(trial.seconds or 0.0 for trial in trials)
        report.setup = {
            **report.setup,
            "seeds": ", ".join(map(str, seeds)),
            "quick": settings.quick,
            "wall_seconds": round(measuring + time.perf_counter() - start, 2),
        }
        write_report(report, staging)
        write_manifest(staging, name)
        replace(staging, os.path.join(out, name))
        report.directory = os.path.join(out, name)
        outcome.reports[name] = report
    except Exception as error:  # a study that fails does not stop the others
        outcome.failures[name] = f"{type(error).__name__}: {error}"
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _bar(total: int) -> Any:
    from ..progress import tqdm

    return tqdm(total=total, desc="measurements", leave=False)


def read_json(path: str, default: Any) -> Any:
    """The JSON at ``path``, or ``default`` when it is missing or not JSON (a file of ours, rewritten
    whole by the next run)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError, RecursionError):
        return default


def _record_failures(out: str, names: list[str], failures: dict[str, str]) -> None:
    """``out/failures.json``: the studies whose last run failed (a study that ran again is taken
    off, or updated)."""
    path = os.path.join(out, FAILURES_FILE)
    recorded = read_json(path, {})
    recorded = {k: v for k, v in recorded.items() if k not in names} if isinstance(recorded, dict) else {}
    recorded.update(failures)
    if recorded:
        io.write_text(path, json.dumps(recorded, indent=1) + "\n")
    elif os.path.exists(path):
        os.remove(path)


def read_results(out: str, registry: dict[str, str]) -> dict[str, dict[str, Any]]:
    """{study: its results.json} of the studies whose output is in ``out``, in the registry's order."""
    found = {}
    for name in registry:
        record = read_json(os.path.join(out, name, "results.json"), None)
        if isinstance(record, dict) and "claims" in record:
            found[name] = record
    return found


def write_claims(out: str, registry: dict[str, str]) -> str:
    """``out/claims.json``: every claim of every study in ``out``, each with its study."""
    claims = [
        {"study": name, **claim} for name, record in read_results(out, registry).items() for claim in record["claims"]
    ]
    path = os.path.join(out, CLAIMS_FILE)
    io.write_text(path, json.dumps(claims, indent=1) + "\n")
    return path


def failures(out: str) -> dict[str, str]:
    recorded = read_json(os.path.join(out, FAILURES_FILE), {})
    return recorded if isinstance(recorded, dict) else {}
