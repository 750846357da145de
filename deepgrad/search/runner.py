"""random_search: sample the space at random, run each trial, narrow the ranges around the best,
repeat — on this process (``executor="serial"``), a pool of local processes (``"local"``) or a Ray
cluster (``"ray"``, :mod:`deepgrad.search.ray_executor`).

A trial is ``objective(params, report)``: it returns a validation score and may call
``report(epoch, score)`` after each epoch, which stops it (as "pruned") when the scheduler says so
(``report.trial`` is the trial's number).
Round r's parameters come from a generator seeded with (seed, r), so the same seed gives the same
trials on every executor and when a study resumes. Trials are drawn as the executor asks for them,
never all at once: a round of a billion trials costs what the trials that run cost.

The roles the loop gives other objects are written down here as Protocols: :class:`Executor`
(runs trials: :class:`SerialExecutor`, :class:`LocalExecutor`, ``RayExecutor``) and
:class:`Scheduler` (may stop a trial after an epoch: ``ASHA``, :class:`NoScheduler`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import nullcontext
from multiprocessing.managers import BaseManager
from typing import Any, Protocol, SupportsFloat

import numpy as np

from ..errors import ConfigError
from .asha import ASHA, TrialPruned
from .lock import claim
from .spaces import Dimension, check_space, sample
from .study import Study, Trial
from .workers import die_with_parent

Params = dict[str, Any]


class Scheduler(Protocol):
    """What the search loop asks of a search scheduler (:class:`~deepgrad.search.asha.ASHA`,
    :class:`NoScheduler`): after each epoch of a trial, whether to stop it there.

    ``should_stop(epoch, score)`` records the validation ``score`` a trial reported after ``epoch``
    (from 1) and answers True when the trial should stop (it is then recorded as "pruned", scored at
    that epoch). random_search replays a resumed study's reports through it before new trials run,
    so new trials compete with the old ones. ``shares_state``: True when the answer for one trial
    depends on what the other trials reported (ASHA's rungs): an executor that runs trials in other
    processes must then give them one copy to ask (a manager process, a Ray actor) rather than a copy
    each; it must be picklable for that."""

    @property
    def shares_state(self) -> bool: ...

    def should_stop(self, epoch: int, score: float) -> bool: ...


class NoScheduler:
    """The scheduler of a search without early stopping: every trial runs all its epochs."""

    shares_state = False

    def should_stop(self, epoch: int, score: float) -> bool:
        return False

    def __repr__(self) -> str:
        return "NoScheduler()"


class Report:
    """The ``report(epoch, score)`` a trial's objective is given: it keeps the ``scores`` and raises
    TrialPruned when the scheduler stops the trial. ``trial`` is the trial's number (a
    TrainingObjective names the trial's TensorBoard run after it)."""

    def __init__(self, trial: int, scheduler: Scheduler | None = None):
        self.trial, self.scheduler = trial, scheduler
        self.scores: list[list[float]] = []

    def __call__(self, epoch: int, score: SupportsFloat) -> None:
        score = float(score)
        self.scores.append([int(epoch), score])
        if self.scheduler is not None and self.scheduler.should_stop(int(epoch), score):
            raise TrialPruned(f"stopped at epoch {epoch}")


# ``objective(params, report)``: a trial's validation score (higher is better unless mode="min").
Objective = Callable[[Params, Report], SupportsFloat]


class Executor(Protocol):
    """What the search loop asks of an executor ("serial", "local", "ray" or an object like
    ``RayExecutor(address="auto")``): run trials and hand each back as it ends.

    ``run(objective, trials, scheduler)`` is a generator. ``trials`` is an iterator that draws the
    round's trials lazily and may be very long: take the next one only when a worker can start it
    (a bounded number in flight), never all at once. Run each as :func:`run_trial` does (a failure is
    a "failed" trial, not an exception) with ``scheduler`` deciding early stops (served to every
    worker as one copy when ``scheduler.shares_state``), and yield each finished :class:`Trial`, its
    status set, in the order they end. The loop records each yielded trial before it asks for the
    next. When the generator is closed early (Ctrl-C, an error), stop or cancel the trials in flight
    and release every worker; a worker process never outlives the search that started it. Errors
    that stop the whole search (a cluster that cannot be reached) are DeepgradErrors raised from
    ``run``."""

    def run(self, objective: Objective, trials: Iterator[Trial], scheduler: Scheduler) -> Iterator[Trial]: ...


def check_settings(trials: int, rounds: int, keep: float) -> None:
    """A ConfigError when ``trials``, ``rounds`` or ``keep`` cannot be a search's."""
    for name, value in (("trials", trials), ("rounds", rounds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"random_search: {name} must be a whole number >= 1, got {value!r}")
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ConfigError(f"random_search: keep must be in (0, 1], got {keep!r}")


def random_search(
    objective: Objective,
    space: Mapping[str, Dimension],
    trials: int,
    rounds: int = 1,
    keep: float = 0.2,
    seed: int = 0,
    executor: str | Executor = "serial",
    scheduler: str | Scheduler | None = None,
    study: str | os.PathLike[str] | Study | None = None,
    mode: str = "max",
    n_jobs: int | None = None,
    progress: Callable[[Trial], object] | None = None,
) -> Study:
    """Run ``rounds`` rounds of ``trials`` random trials each; after each round, every numeric range
    narrows to the span of the best ``keep`` fraction of the scored trials so far (on the log scale
    for log ranges, widened by a margin, within the original range) and a Choice to the options among
    them. ``scheduler``: None, "asha", an :class:`ASHA` or another :class:`Scheduler`. ``study``: a
    :class:`Study` or the path of its JSON-lines file (resumed when it exists; claimed for the
    search, so a second search of the same file at the same time is a ConfigError). A resumed study
    must come from the same search: its trials must be the ones this ``space``, ``seed``, ``trials``
    and ``keep`` draw (a ConfigError otherwise); more ``rounds`` extend it. ``executor``: "serial",
    "local" (``n_jobs`` processes), "ray" (a local Ray) or an :class:`Executor` such as
    ``RayExecutor(address="auto", cpus_per_trial=2)``. ``progress``: a callable given each finished
    trial. Returns the Study (``study.interrupted`` after Ctrl-C: what finished is saved)."""
    space = check_space(space)
    check_settings(trials, rounds, keep)
    runner = make_executor(executor, n_jobs)
    path = study.path if isinstance(study, Study) else None if study is None else os.fspath(study)
    with claim(path) if path else nullcontext():
        study = study if isinstance(study, Study) else Study(path, mode)
        study.reload()  # what the file holds now that no other search can write it
        check_study(study, space, trials, rounds)
        scheduler = _scheduler(scheduler, study)
        study.spaces = []
        try:
            for round_ in range(rounds):
                study.spaces.append(space)
                for trial in runner.run(objective, _round(study, space, trials, round_, seed), scheduler):
                    study.record(trial)
                    if progress is not None:
                        progress(trial)
                space = narrowed(space, study, keep, round_)
        except KeyboardInterrupt:
            study.interrupted = True
    return study


def check_study(study: Study, space: Mapping[str, Dimension], trials: int, rounds: int) -> None:
    """A ConfigError when the study holds trials this search would not draw: over other options, or
    numbered beyond its ``trials`` × ``rounds`` or in another round."""
    where = f"study file {study.path}" if study.path else "the study"
    advice = "it was made by another search; start a new study (another file, or deepgrad search --new)"
    for trial in sorted(study.trials.values(), key=lambda t: t.number):
        if set(trial.params) != set(space):
            raise ConfigError(
                f"{where}: trial {trial.number + 1} is over {sorted(trial.params)}, but this search's "
                f"space is over {sorted(space)}: {advice}"
            )
        if trial.number >= trials * rounds or trial.round != trial.number // trials:
            raise ConfigError(
                f"{where}: trial {trial.number + 1} is of round {trial.round + 1}, but this search "
                f"of {trials} trials per round draws it {_which_round(trial.number, trials, rounds)}: "
                f"{advice}"
            )


def _which_round(number: int, trials: int, rounds: int) -> str:
    return f"in round {number // trials + 1}" if number < trials * rounds else f"in none of its {rounds} rounds"


def _round(study: Study, space: Mapping[str, Dimension], trials: int, round_: int, seed: int) -> Iterator[Trial]:
    """The trials of round ``round_`` that the study lacks, drawn as they are asked for. The ones
    the study has are checked first (their params must be what this search draws for them)."""
    rng = np.random.default_rng([seed, round_])
    first = round_ * trials
    last = max((n for n in study.trials if first <= n < first + trials), default=first - 1)
    missing = []
    for number in range(first, last + 1):
        trial = Trial(number, round_, sample(space, rng))
        stored = study.trials.get(number)
        if stored is None:
            missing.append(trial)  # a gap a killed search left (its trials end out of order)
        elif stored.params != json.loads(json.dumps(trial.params)):
            where = f"study file {study.path}" if study.path else "the study"
            raise ConfigError(
                f"{where}: trial {number + 1} has {stored.params}, but this search draws "
                f"{trial.params} for it: it was made by a search with another space, seed or keep "
                "fraction; start a new study (another file, or deepgrad search --new)"
            )
    return itertools.chain(missing, (Trial(n, round_, sample(space, rng)) for n in range(last + 1, first + trials)))


def narrowed(
    space: Mapping[str, Dimension], study: Study, keep: float, through_round: int | None = None
) -> dict[str, Dimension]:
    """``space`` narrowed around the best ``keep`` fraction of the study's scored trials of rounds up
    to ``through_round`` (so a resumed study narrows as it did the first time; unchanged while none is
    scored)."""
    ranked = study.ranked(through_round)
    best = ranked[: max(1, math.ceil(keep * len(ranked)))]
    if not best:
        return dict(space)
    return {name: dimension.narrowed([t.params[name] for t in best]) for name, dimension in space.items()}


def run_trial(objective: Objective, trial: Trial, scheduler: Scheduler | None = None) -> Trial:
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
    return dataclasses.replace(
        trial,
        status=status,
        score=score,
        scores=report.scores,
        seconds=round(time.perf_counter() - start, 3),
        error=error,
    )


def _scheduler(scheduler: str | Scheduler | None, study: Study) -> Scheduler:
    chosen: Scheduler
    if scheduler is None or scheduler == "none":
        chosen = NoScheduler()
    elif scheduler == "asha":
        chosen = ASHA(mode=study.mode)
    elif (
        isinstance(scheduler, str)
        or not callable(getattr(scheduler, "should_stop", None))
        or not hasattr(scheduler, "shares_state")
    ):
        raise ConfigError(
            f"random_search: scheduler must be None, 'asha', an ASHA or another Scheduler (with "
            f"should_stop(epoch, score) and shares_state), got {scheduler!r}"
        )
    else:
        chosen = scheduler
    # a resumed study's trials reached their rungs already: new ones compete with them
    for trial in sorted(study.trials.values(), key=lambda t: t.number):
        for epoch, score in trial.scores:
            chosen.should_stop(int(epoch), score)
    return chosen


def make_executor(
    executor: str | Executor, n_jobs: int | None = None, ray_address: str | None = None, cpus_per_trial: int = 1
) -> Executor:
    """The executor named ``executor`` ("serial", "local" with ``n_jobs`` processes, "ray" on the
    cluster at ``ray_address``, or a local Ray, with ``cpus_per_trial`` CPUs a trial), or
    ``executor`` itself when it is one."""
    if not isinstance(executor, str):  # an executor object, e.g. RayExecutor(address="auto", cpus_per_trial=2)
        if not callable(getattr(executor, "run", None)):
            raise ConfigError(
                f"random_search: executor must be serial, local, ray or an executor (with "
                f"run(objective, trials, scheduler)), got {executor!r}"
            )
        return executor
    if executor == "serial":
        return SerialExecutor()
    if executor == "local":
        return LocalExecutor(n_jobs)
    if executor == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(ray_address, cpus_per_trial)
    raise ConfigError(f"unknown executor {executor!r}; valid: serial, local, ray")


class SerialExecutor:
    """Trials one after the other in this process."""

    def run(self, objective: Objective, trials: Iterator[Trial], scheduler: Scheduler) -> Iterator[Trial]:
        for trial in trials:
            yield run_trial(objective, trial, scheduler)


def _serve(scheduler: Scheduler) -> Scheduler:
    """The scheduler server's copy of ``scheduler`` (the manager unpickles it in its process)."""
    return scheduler


class SchedulerServer(BaseManager):
    """A scheduler that shares its state (ASHA's rungs) in a process of its own, which every worker
    asks (the standard library's manager: one object shared by the pool's processes)."""


SchedulerServer.register("Scheduler", _serve)


class LocalExecutor:
    """Trials in a pool of ``n_jobs`` processes (default: one per CPU), each running its BLAS on one
    thread; the objective must be picklable (a module-level function or object). At most two
    trials per process are handed to the pool at a time; the processes end with the search, a
    ``kill -9`` of it included (:func:`deepgrad.search.workers.die_with_parent`)."""

    def __init__(self, n_jobs: int | None = None):
        if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1):
            raise ConfigError(f"random_search: n_jobs must be a whole number >= 1, got {n_jobs!r}")
        self.n_jobs = n_jobs or os.cpu_count() or 1

    def run(self, objective: Objective, trials: Iterator[Trial], scheduler: Scheduler) -> Iterator[Trial]:
        trials = iter(trials)
        first = list(itertools.islice(trials, self.n_jobs))
        if not first:
            return
        server = None
        shared = scheduler
        if scheduler.shares_state:
            server = SchedulerServer()
            server.start(initializer=die_with_parent)
            shared = server.Scheduler(scheduler)  # type: ignore[attr-defined]  # registered above
        pool = ProcessPoolExecutor(len(first), initializer=_start_worker)
        try:
            pending: set[Future[Trial]] = {pool.submit(run_trial, objective, trial, shared) for trial in first}
            for trial in itertools.islice(trials, len(first)):  # one more each, so no process waits for work
                pending.add(pool.submit(run_trial, objective, trial, shared))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for trial in itertools.islice(trials, len(done)):
                    pending.add(pool.submit(run_trial, objective, trial, shared))
                for future in done:
                    yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if server is not None:
                server.shutdown()


def _start_worker() -> None:
    """Worker start-up: die with the search; one BLAS thread per process, so n_jobs processes share
    the cores fairly."""
    die_with_parent()
    try:
        from ..threads import set_num_threads

        set_num_threads(1)
    except (ImportError, RuntimeError):
        pass
