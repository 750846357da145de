"""Trials on a Ray cluster (``executor="ray"``): Ray's own scheduling, nothing home-made.

``address=None`` starts a local Ray; ``"auto"`` joins the cluster of this machine, ``"ray://host:port"``
a remote one through Ray Client. Each trial is a Ray task asking for ``cpus_per_trial`` CPUs, runs
its BLAS on that many threads, and is retried once if its worker dies; the ASHA rungs live in a Ray
actor that every trial asks. Ray is the optional extra ``deepgrad[ray]``.
"""

import logging
import threading

from ..errors import ConfigError

CONNECT_TIMEOUT = 60  # seconds to start or reach Ray before giving up with an error


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray executor needs Ray: pip install 'deepgrad[ray]' (or pip install ray)") from None
    return ray


class RayExecutor:
    """Run trials as Ray tasks (see the module's docstring)."""

    def __init__(self, address=None, cpus_per_trial=1, connect_timeout=CONNECT_TIMEOUT):
        if isinstance(cpus_per_trial, bool) or not isinstance(cpus_per_trial, int) or cpus_per_trial < 1:
            raise ConfigError(f"random_search: cpus_per_trial must be a whole number >= 1, got {cpus_per_trial!r}")
        self.ray = import_ray()
        self.address, self.cpus_per_trial, self.connect_timeout = address, cpus_per_trial, connect_timeout

    def connect(self):
        """Start or join Ray (once per process), or a clear error within ``connect_timeout`` seconds
        when a cluster cannot be reached. A local Ray is started from this thread (Ray's processes
        outlive a thread that started them only badly)."""
        ray = self.ray
        if ray.is_initialized():
            return
        failure = []

        def init():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                         logging_level=logging.ERROR)
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

    def run(self, objective, trials, scheduler):
        if not trials:
            return
        self.connect()
        ray = self.ray
        shared = None
        if scheduler is not None:
            from .asha import ASHA

            actor = ray.remote(ASHA).remote(scheduler.min_epochs, scheduler.reduction, scheduler.max_epochs,
                                            scheduler.mode)
            for epoch, scores in scheduler.rungs.items():
                for score in scores:
                    actor.should_stop.remote(epoch, score)
            shared = ActorScheduler(actor)
        task = ray.remote(num_cpus=self.cpus_per_trial, max_retries=1)(trial_task)
        pending = {task.remote(objective, trial, shared, self.cpus_per_trial): trial for trial in trials}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            trial = pending.pop(done[0])
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayError as error:  # the worker died twice, or Ray lost the task
                from dataclasses import replace

                yield replace(trial, status="failed", error=f"{type(error).__name__}: {error}".splitlines()[0])


class ActorScheduler:
    """The scheduler interface (``should_stop``) over the ASHA actor, for the trials' workers."""

    def __init__(self, actor):
        self.actor = actor

    def should_stop(self, epoch, score):
        import ray

        return ray.get(self.actor.should_stop.remote(epoch, score))


def trial_task(objective, trial, scheduler, cpus):
    """One trial in a Ray worker, its BLAS on ``cpus`` threads."""
    from ..threads import set_num_threads
    from .runner import run_trial

    try:
        set_num_threads(cpus)
    except (ImportError, RuntimeError):
        pass
    return run_trial(objective, trial, scheduler)
