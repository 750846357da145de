"""random_search: sample the space at random, run each trial, narrow the ranges around the best,
repeat — on this process (``executor="serial"``), a pool of local processes (``"local"``) or a Ray
cluster (``"ray"``, :mod:`deepgrad.search.ray_executor`).

A trial is ``objective(params, report)``: it returns a validation score and may call
``report(epoch, score)`` after each epoch, which stops it (as "pruned") when the scheduler says so
(``report.trial`` is the trial's number).
Round r's parameters come from a generator seeded with (seed, r), so the same seed gives the same
trials on every executor and when a study resumes.
"""

import dataclasses
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing.managers import BaseManager

import numpy as np

from ..errors import ConfigError
from .asha import ASHA, TrialPruned
from .spaces import check_space, sample
from .study import Study, Trial


def random_search(objective, space, trials, rounds=1, keep=0.2, seed=0, executor="serial", scheduler=None,
                  study=None, mode="max", n_jobs=None, progress=None):
    """Run ``rounds`` rounds of ``trials`` random trials each; after each round, every numeric range
    narrows to the span of the best ``keep`` fraction of the scored trials so far (on the log scale
    for log ranges, widened by a margin, within the original range) and a Choice to the options among
    them. ``scheduler``: None, "asha" or an :class:`ASHA`. ``study``: a :class:`Study` or the path of
    its JSON-lines file (resumed when it exists). ``executor``: "serial", "local" (``n_jobs`` processes),
    "ray" (a local Ray) or an executor object such as ``RayExecutor(address="auto", cpus_per_trial=2)``.
    ``progress``: a callable given each finished trial.
    Returns the Study (``study.interrupted`` after Ctrl-C: what finished is saved)."""
    space = check_space(space)
    for name, value, low in (("trials", trials, 1), ("rounds", rounds, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"random_search: {name} must be a whole number >= {low}, got {value!r}")
    if not 0 < keep <= 1:
        raise ConfigError(f"random_search: keep must be in (0, 1], got {keep!r}")
    study = study if isinstance(study, Study) else Study(study, mode)
    scheduler = _scheduler(scheduler, study)
    runner = _executor(executor, n_jobs)
    study.spaces = []
    try:
        for round_ in range(rounds):
            study.spaces.append(space)
            rng = np.random.default_rng([seed, round_])
            planned = [Trial(round_ * trials + i, round_, sample(space, rng)) for i in range(trials)]
            for trial in runner.run(objective, [t for t in planned if t.number not in study.trials], scheduler):
                study.record(trial)
                if progress is not None:
                    progress(trial)
            space = narrowed(space, study, keep, round_)
    except KeyboardInterrupt:
        study.interrupted = True
    return study


def narrowed(space, study, keep, through_round=None):
    """``space`` narrowed around the best ``keep`` fraction of the study's scored trials of rounds up
    to ``through_round`` (so a resumed study narrows as it did the first time; unchanged while none is
    scored)."""
    ranked = study.ranked(through_round)
    best = ranked[: max(1, math.ceil(keep * len(ranked)))]
    if not best:
        return space
    return {name: dimension.narrowed([t.params[name] for t in best]) for name, dimension in space.items()}


class Report:
    """The ``report(epoch, score)`` a trial's objective is given: it keeps the ``scores`` and raises
    TrialPruned when the scheduler stops the trial. ``trial`` is the trial's number (a
    TrainingObjective names the trial's TensorBoard run after it)."""

    def __init__(self, trial, scheduler=None):
        self.trial, self.scheduler, self.scores = trial, scheduler, []

    def __call__(self, epoch, score):
        score = float(score)
        self.scores.append([int(epoch), score])
        if self.scheduler is not None and self.scheduler.should_stop(int(epoch), score):
            raise TrialPruned(f"stopped at epoch {epoch}")


def run_trial(objective, trial, scheduler=None):
    """Run one trial here: its score, or its failure (an exception, a NaN or infinite score), as data."""
    report = Report(trial.number, scheduler)
    start = time.perf_counter()
    status, score, error = "finished", None, None
    try:
        score = float(objective(dict(trial.params), report))
        if not math.isfinite(score):
            status, error = "failed", f"the objective returned {score}"
    except TrialPruned:
        status, score = "pruned", report.scores[-1][1]
    except Exception as exc:  # a failing trial is data: the study goes on
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    return dataclasses.replace(trial, status=status, score=score, scores=report.scores,
                               seconds=round(time.perf_counter() - start, 3), error=error)


def _scheduler(scheduler, study):
    if scheduler is None or isinstance(scheduler, ASHA):
        asha = scheduler
    elif scheduler == "asha":
        asha = ASHA(mode=study.mode)
    else:
        raise ConfigError(f"random_search: scheduler must be None, 'asha' or an ASHA, got {scheduler!r}")
    if asha is not None:  # a resumed study's trials reached their rungs already: new ones compete with them
        for trial in sorted(study.trials.values(), key=lambda t: t.number):
            for epoch, score in trial.scores:
                asha.should_stop(epoch, score)
    return asha


def _executor(executor, n_jobs):
    if not isinstance(executor, str):  # an executor object, e.g. RayExecutor(address="auto", cpus_per_trial=2)
        return executor
    if executor == "serial":
        return SerialExecutor()
    if executor == "local":
        return LocalExecutor(n_jobs)
    if executor == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor()
    raise ConfigError(f"random_search: unknown executor {executor!r}; valid: serial, local, ray")


class SerialExecutor:
    """Trials one after the other in this process."""

    def run(self, objective, trials, scheduler):
        for trial in trials:
            yield run_trial(objective, trial, scheduler)


class SchedulerServer(BaseManager):
    """The scheduler's rung bookkeeping in a process of its own, which every worker asks (the
    standard library's manager: one object shared by the pool's processes)."""


SchedulerServer.register("ASHA", ASHA)


class LocalExecutor:
    """Trials in a pool of ``n_jobs`` processes (default: one per CPU), each running its BLAS on one
    thread; the objective must be picklable (a module-level function or object)."""

    def __init__(self, n_jobs=None):
        if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1):
            raise ConfigError(f"random_search: n_jobs must be a whole number >= 1, got {n_jobs!r}")
        self.n_jobs = n_jobs or os.cpu_count() or 1

    def run(self, objective, trials, scheduler):
        if not trials:
            return
        server = None
        if scheduler is not None:
            server = SchedulerServer()
            server.start()
            shared = server.ASHA(scheduler.min_epochs, scheduler.reduction, scheduler.max_epochs, scheduler.mode)
            for epoch, scores in scheduler.rungs.items():
                for score in scores:
                    shared.should_stop(epoch, score)
            scheduler = shared
        pool = ProcessPoolExecutor(min(self.n_jobs, len(trials)), initializer=_one_blas_thread)
        try:
            futures = [pool.submit(run_trial, objective, trial, scheduler) for trial in trials]
            for future in as_completed(futures):
                yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if server is not None:
                server.shutdown()


def _one_blas_thread():
    """Worker start-up: one BLAS thread per process, so n_jobs processes share the cores fairly."""
    try:
        from ..threads import set_num_threads

        set_num_threads(1)
    except (ImportError, RuntimeError):
        pass
