"""Trials on a Ray cluster (``executor="ray"``): Ray's own scheduling, nothing home-made.

``address=None`` starts a local Ray; ``"auto"`` joins the cluster of this machine, ``"ray://host:port"``
a remote one through Ray Client. Each trial is a Ray task asking for ``cpus_per_trial`` CPUs, runs
its BLAS on that many threads, and is retried once if its worker dies; the ASHA rungs live in a Ray
actor that every trial asks. Ray is the optional extra ``deepgrad[ray]``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigError
from .runner import Objective, Scheduler, run_trial
from .study import Trial

CONNECT_TIMEOUT = 60  # seconds to start or reach Ray before giving up with an error


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray executor needs Ray: pip install 'deepgrad[ray]' (or pip install ray)") from None
    return ray


class RayExecutor:
    """Run trials as Ray tasks (see the module's docstring): an :class:`~deepgrad.search.runner.Executor`.
    At most ``max_pending`` trials are handed to Ray at a time (default: twice the trials the
    cluster's CPUs hold at once, ``cpus_per_trial`` each), the next drawn as one ends."""

    def __init__(
        self,
        address: str | None = None,
        cpus_per_trial: int = 1,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_pending: int | None = None,
    ):
        if isinstance(cpus_per_trial, bool) or not isinstance(cpus_per_trial, int) or cpus_per_trial < 1:
            raise ConfigError(f"random_search: cpus_per_trial must be a whole number >= 1, got {cpus_per_trial!r}")
        if max_pending is not None and (
            isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1
        ):
            raise ConfigError(f"RayExecutor: max_pending must be a whole number >= 1, got {max_pending!r}")
        self.ray = import_ray()
        self.address, self.cpus_per_trial, self.connect_timeout = address, cpus_per_trial, connect_timeout
        self.max_pending = max_pending

    def connect(self) -> None:
        """Start or join Ray (once per process), or a clear error within ``connect_timeout`` seconds
        when a cluster cannot be reached. A local Ray is started from this thread (Ray's processes
        outlive a thread that started them only badly)."""
        ray = self.ray
        if ray.is_initialized():
            return
        failure: list[Exception] = []

        def init() -> None:
            try:
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    ignore_reinit_error=True,
                    logging_level=logging.ERROR,
                )
            except Exception as error:  # any failure to start or reach Ray is reported below
                failure.append(error)

        if self.address is None:
            init()
            if failure:
                raise ConfigError(f"could not start a local Ray: {type(failure[0]).__name__}: {failure[0]}")
            return
        starter = threading.Thread(target=init, daemon=True)
        starter.start()
        starter.join(self.connect_timeout)
        where = f"reach the Ray cluster at {self.address!r}"
        if starter.is_alive():
            raise ConfigError(f"could not {where} within {self.connect_timeout} s")
        if failure:
            raise ConfigError(f"could not {where}: {type(failure[0]).__name__}: {failure[0]}")

    def slots(self) -> int:
        """How many trials are handed to Ray at a time (after :meth:`connect`)."""
        if self.max_pending is not None:
            return self.max_pending
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        return 2 * max(1, cpus // self.cpus_per_trial)

    def run(self, objective: Objective, trials: Iterator[Trial], scheduler: Scheduler) -> Iterator[Trial]:
        trials = iter(trials)
        first = next(trials, None)
        if first is None:
            return
        self.connect()
        ray = self.ray
        shared: Scheduler = scheduler
        if scheduler.shares_state:  # one copy in an actor, which every trial asks
            shared = ActorScheduler(ray.remote(SchedulerHost).remote(scheduler))
        task = ray.remote(num_cpus=self.cpus_per_trial, max_retries=1)(trial_task)
        pending: dict[Any, Trial] = {}

        def submit(trial: Trial) -> None:
            pending[task.remote(objective, trial, shared, self.cpus_per_trial)] = trial

        for trial in itertools.chain([first], itertools.islice(trials, self.slots() - 1)):
            submit(trial)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                trial = pending.pop(done[0])
                for following in itertools.islice(trials, 1):
                    submit(following)
                try:
                    yield ray.get(done[0])
                except ray.exceptions.RayError as error:  # the worker died twice, or Ray lost the task
                    from dataclasses import replace

                    yield replace(trial, status="failed", error=f"{type(error).__name__}: {error}".splitlines()[0])
        finally:
            for ref in pending:  # closed early (Ctrl-C, an error): the trials in flight are of no use
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - a task Ray has lost or finished meanwhile: nothing to stop
                    pass


class SchedulerHost:
    """A Ray actor holding the one copy of a scheduler that shares its state (ASHA's rungs)."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler

    def should_stop(self, epoch: int, score: float) -> bool:
        return self.scheduler.should_stop(epoch, score)


class ActorScheduler:
    """The :class:`~deepgrad.search.runner.Scheduler` the trials' workers ask: the SchedulerHost actor."""

    shares_state = True

    def __init__(self, actor: Any):
        self.actor = actor

    def should_stop(self, epoch: int, score: float) -> bool:
        import ray

        return bool(ray.get(self.actor.should_stop.remote(epoch, score)))


def trial_task(objective: Objective, trial: Trial, scheduler: Scheduler, cpus: int) -> Trial:
    """One trial in a Ray worker, its BLAS on ``cpus`` threads."""
    from ..threads import set_num_threads

    try:
        set_num_threads(cpus)
    except (ImportError, RuntimeError):
        pass
    return run_trial(objective, trial, scheduler)
