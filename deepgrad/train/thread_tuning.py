"""Choosing the thread setting of a run (``dg.set_num_threads``) by measuring it on the run's first steps.

deepgrad's ops split their batch over the threads (or, by the BLAS, OpenBLAS its matrix products);
the threads wait for each other at each op's end. On an idle machine large ops gain from every core;
when another process holds a core, a thread that loses it stalls the others for whole scheduler time
slices, and a step gets several times slower than on one thread. Which setting is faster depends on
the model (a conv net gains from deepgrad's ops, an MLP on a virtual machine from the BLAS's
spinning threads) and on the load, so :class:`ThreadTuner` times a few steps on each candidate and
keeps the faster for the rest of the run. It decides once, and early: a convolution's weight gradient adds the
partial sums of the batch's parts, and OpenBLAS sums a long product (over more than a few hundred
terms) in another order on one thread than on two, so the last bits of the results differ, and a
count that followed the load all along would make a run's every step depend on the timing.
``build_run`` writes the setting chosen into the run's ``config.json`` (``threads``,
``threads_by``), so a resumed run goes on with it exactly. Two fresh runs whose first steps were
timed differently (a machine busy for one and idle for the other) can differ in those last bits: a
fixed ``--threads N`` makes reruns bit for bit identical whatever the load.
"""

import statistics
import time

from ..threads import NumThreads, usable_cores
from .callbacks import Callback


class ThreadTuner(Callback):
    """Run the first steps of fit on each of ``candidates`` thread settings, then the rest on the
    one whose steps were faster on average over ``probe_steps`` steps (after one step to settle).
    The default candidates: one thread, then one per core this process may run on, split by
    deepgrad's ops and by the BLAS (:class:`deepgrad.threads.ThreadSetting`; plain counts are
    split by the ops). The first candidate (one thread, which a busy core cannot stall) is kept
    unless another is more than ``margin`` faster; a candidate whose steps so far average over
    ``drop`` times the best is dropped at once, so a pathological one costs a step or two.
    ``chosen`` is the setting, ``timings`` {setting: mean seconds per step}; ``on_chosen(setting)``
    is called once it is known. :meth:`restore` puts the starting setting back. Give it first among
    the callbacks, so that it times the step and not the other callbacks' work: ``Trainer(model,
    optimizer, loss, callbacks=[ThreadTuner(), ...])`` protects any training loop as ``deepgrad
    train`` does. ``threads`` (an object with ``get()`` and ``set(setting)``, and optionally
    ``candidates(cores)``) is what it switches: deepgrad's setting.
    """

    def __init__(
        self,
        candidates=None,
        probe_steps=20,
        margin=0.1,
        drop=2.0,
        on_chosen=None,
        threads=None,
        clock=time.perf_counter,
    ):
        if probe_steps < 1:
            raise ValueError(f"ThreadTuner: probe_steps must be at least 1, got {probe_steps}")
        self.candidates, self.probe_steps, self.margin, self.drop = candidates, probe_steps, margin, drop
        self.on_chosen, self.threads, self.clock = on_chosen, threads, clock
        self.initial = self.chosen = self._steady = None
        self.timings = {}
        self._queue, self._times, self._started = [], [], None

    def on_fit_start(self, trainer):
        if self.threads is None:
            self.threads = NumThreads()
        self.initial = self.threads.get()
        candidates = self.candidates
        if not candidates:
            cores = usable_cores()
            candidates = self.threads.candidates(cores) if hasattr(self.threads, "candidates") else (1, cores)
        self._queue = list(dict.fromkeys(candidates))  # in order, without repeats
        self._steady = self._queue[0]
        if len(self._queue) == 1:
            self._choose(self._queue.pop())
            return
        self._next()

    def _next(self):
        """Probe the next candidate: a settling step (not timed), then up to probe_steps timed ones."""
        self._times = None
        self.threads.set(self._queue[0])

    def on_batch_start(self, trainer, batch):
        if self._queue:
            self._started = self.clock()

    def on_batch_end(self, trainer, logs):
        if not self._queue or self._started is None:
            return
        seconds = self.clock() - self._started
        if self._times is None:  # the settling step
            self._times = []
            return
        self._times.append(seconds)
        mean = statistics.fmean(self._times)
        best = min(self.timings.values(), default=None)
        if len(self._times) < self.probe_steps and (best is None or mean <= self.drop * best):
            return
        self.timings[self._queue.pop(0)] = mean
        if self._queue:
            self._next()
            return
        self._decide()

    def on_epoch_end(self, trainer, epoch, logs):
        """An epoch too short for the whole probe decides with the timings it has: a run's options
        are resolved by its first epoch's end (its config.json, its TensorBoard hparams)."""
        if not self._queue:
            return
        if self._times:
            self.timings[self._queue[0]] = statistics.fmean(self._times)
        self._queue = []
        self._decide()

    def _decide(self):
        if not self.timings:  # not one step timed: the steady one
            self._choose(self._steady)
            return
        fastest = min(self.timings, key=self.timings.get)
        timed = self.timings.get(self._steady)
        steady = timed is not None and timed <= (1 + self.margin) * self.timings[fastest]
        self._choose(self._steady if steady else fastest)

    def _choose(self, threads):
        self.chosen = threads
        self.threads.set(threads)
        if self.on_chosen is not None:
            self.on_chosen(threads)

    def restore(self):
        """Put back the thread setting there was when fit started."""
        if self.initial is not None:
            self.threads.set(self.initial)
