"""The Trainer: the mini-batch loop, its events, evaluation, prediction, checkpoints and resume.

One optimizer step is :meth:`Trainer.train_step`, which reads in the order things happen:
forward, loss, the non-finite check, backward, the ``on_after_backward`` observers, clipping,
this step's learning rate, the optimizer step, ``on_step_end``. The step's policies (the
divergence checks, clipping, the learning rate: :mod:`deepgrad.train.policies`) are the
Trainer's configuration; callbacks only observe (:mod:`deepgrad.train.callbacks`). Per epoch:
evaluation on the validation loader (no graph built), ``on_validation_end``, the end-of-epoch
policies (finite weights, a plateau schedule), ``on_epoch_end``. The Trainer knows nothing about
specific layers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from .. import backend, io
from ..data.loader import batch_on
from ..errors import CheckpointError, CheckpointMismatch
from ..nn.module import Module
from ..nn.utils import clip_grad_norm_
from ..optim.optimizer import Optimizer
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor, no_grad
from . import metrics as metric_functions
from .callbacks import EVENTS, Logs, Stateful, listeners
from .checkpoints import CHECKPOINT_FORMAT, check_training_state
from .interrupt import DeferredInterrupt
from .policies import DivergenceGuard, LearningRate

Batch = tuple[Tensor, Tensor]


class History:
    """Per-epoch logs: ``history.epochs`` is a list of dicts (``epoch``, ``step``: the optimizer steps
    done at its end, ``train_loss`` and the train metrics, ``val_*``, ``lr``, ``seconds``);
    ``history["val_loss"]`` a list of values. Like a table's columns: ``"val_loss" in history``,
    ``list(history)`` (the metric names, in the order they first appear) and ``len(history)`` (the
    number of epochs)."""

    def __init__(self, epochs: Iterable[Logs] | None = None):
        self.epochs: list[Logs] = list(epochs or [])

    def __getitem__(self, key: str) -> list[float]:
        return [logs[key] for logs in self.epochs if key in logs]

    def keys(self) -> list[str]:
        return list(dict.fromkeys(key for logs in self.epochs for key in logs))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        return any(key in logs for logs in self.epochs)

    def __len__(self) -> int:
        return len(self.epochs)

    def __repr__(self) -> str:
        return f"History({len(self.epochs)} epochs, last={self.epochs[-1] if self.epochs else None})"

    def _repr_html_(self) -> str:
        """The history in a notebook: the curves per epoch and the last epoch's table."""
        from .display import history_html

        return history_html(self)


class Trainer:
    """Train ``model`` with ``optimizer`` on ``loss_fn(outputs, targets)``; evaluate and predict.

    ``optimizer`` is needed by :meth:`fit` only, ``loss_fn`` by :meth:`fit` and :meth:`evaluate`.
    ``callbacks`` observe the run, in the order given (:mod:`deepgrad.train.callbacks`).

    The step's policies (:mod:`deepgrad.train.policies`):

    - the learning rate: ``scheduler`` (a schedule of :mod:`deepgrad.optim.lr_scheduler`, its
      rate a function of the epoch, or of the step with ``scheduler_interval="batch"``; a
      ReduceLROnPlateau follows the validation loss) with ``warmup_steps`` of linear warm-up in
      front — or a whole :class:`~deepgrad.train.policies.LearningRate` as ``learning_rate``;
      without any, the Trainer leaves the optimizer's rate alone;
    - ``clip_grad_norm``: the global gradient norm's bound, applied after the
      ``on_after_backward`` observers (they see the raw gradients);
    - ``nan_guard`` (on by default): stop at a NaN or infinite loss, before its step is applied,
      and at weights that became non-finite; ``stop_on_divergence``: also stop, rather than warn
      once, at a finite loss over 1000 times the first.

    With ``device`` ("cuda"), the Trainer places the model there (create the optimizer before or
    after: its state is made lazily where the parameters are) and every batch it reads. A step on
    a GPU reads nothing back to the host: its logs (the loss and metrics the observers get) are
    0-d float64 arrays on the device — ``float()`` reads one, making the host wait for the GPU —
    and the Trainer reads the steps' losses for the divergence checks every ``read_every`` steps,
    the epoch's sums at its end. On the CPU the logs are Python floats and each loss is checked
    before its backward.
    """

    def __init__(
        self,
        model: Module,
        optimizer: Optimizer | None = None,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        metrics: Iterable[str] = ("accuracy",),
        callbacks: Iterable[object] = (),
        scheduler: Any = None,
        scheduler_interval: str = "epoch",
        clip_grad_norm: float | None = None,
        device: str | None = None,
        nan_guard: bool = True,
        warmup_steps: int = 0,
        stop_on_divergence: bool = False,
        learning_rate: LearningRate | None = None,
        read_every: int = 10,
    ):
        if scheduler_interval not in ("epoch", "batch"):
            raise ValueError(f"Trainer: scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
        if learning_rate is not None and (scheduler is not None or warmup_steps):
            raise ValueError("Trainer: give either learning_rate or scheduler/warmup_steps, not both")
        if (scheduler is not None or warmup_steps) and optimizer is None:
            raise ValueError("Trainer: a scheduler or warm-up needs the optimizer")
        if not (isinstance(read_every, int) and read_every >= 1):
            raise ValueError(f"Trainer: read_every must be a whole number of steps >= 1, got {read_every!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.metrics = metric_functions.resolve(metrics)
        self.callbacks = list(callbacks)
        if learning_rate is None and optimizer is not None and (scheduler is not None or warmup_steps):
            learning_rate = LearningRate.of(optimizer, scheduler, scheduler_interval, warmup_steps)
        self.learning_rate = learning_rate
        self.clip_grad_norm = clip_grad_norm
        self.divergence = DivergenceGuard(nan_check=nan_guard, stop_on_divergence=stop_on_divergence)
        self.read_every = read_every
        self.device = None if device is None else backend.get_device(device)
        if self.device is not None:
            model.to(self.device)
        self.history = History()
        self.epoch = 0  # epochs completed
        self.global_step = 0  # optimizer steps taken
        self.total_epochs = 0
        self.batches_per_epoch = 0
        self.stop_training = False
        self.ending: BaseException | None = None  # why the last fit stopped before its end (None: it did not)
        self._ended = False
        self.position: dict[str, Any] | None = None  # within an interrupted epoch: {"batch", "totals", "count"}
        self._progress: dict[str, Any] | None = None  # the same, live, while an epoch runs
        self._train_loader: Any = None
        self._listeners: dict[str, list[Callable[..., None]]] = {}
        self._after_backward: list[Callable[..., None]] | None = None  # the step's two events' listeners
        self._step_end: list[Callable[..., None]] = []
        self._interrupt: DeferredInterrupt | None = None

    # -- training -------------------------------------------------------------
    def fit(
        self, train_loader: Any, val_loader: Any = None, epochs: int = 1, resume_from: str | None = None
    ) -> History:
        """Train until ``epochs`` epochs are complete (counting those of a resumed checkpoint)."""
        self._require("fit", optimizer=True, loss_fn=True)
        self._train_loader = train_loader
        if resume_from is not None:
            self.load_checkpoint(resume_from, train_loader)
        self.total_epochs, self.batches_per_epoch = epochs, len(train_loader)
        self.stop_training, self.ending, self._ended = False, None, False
        self._listen()
        with DeferredInterrupt() as self._interrupt:
            try:
                self._fit_epochs(train_loader, val_loader, epochs)
            except BaseException as error:
                self.ending = error
                if not self._ended:  # loggers write what they hold and close before the error propagates
                    self._end_quietly()
                raise
        return self.history

    def _end_quietly(self) -> None:
        """``on_fit_end`` of a fit that stopped with an error: a listener that fails then says so
        on stderr and does not hide the error that stopped the fit."""
        for method in self._listeners["on_fit_end"]:
            try:
                method(self)
            except Exception as problem:
                print(
                    f"deepgrad: warning: {method.__qualname__} failed as the run stopped: "
                    f"{type(problem).__name__}: {problem}",
                    file=sys.stderr,
                )

    def _listen(self) -> None:
        """Look up which callbacks listen to which event, once (an event nobody listens to is an empty loop)."""
        self._listeners = {event: listeners(self.callbacks, event) for event in EVENTS}
        self._after_backward, self._step_end = self._listeners["on_after_backward"], self._listeners["on_step_end"]

    def _fit_epochs(self, train_loader: Any, val_loader: Any, epochs: int) -> None:
        self._call("on_fit_start")
        while self.epoch < epochs and not self.stop_training:
            epoch = self.epoch + 1
            self._call("on_epoch_start", epoch)
            start = time.perf_counter()
            training = self._train_epoch(train_loader)
            self.divergence.check_deferred()
            logs: Logs = {"epoch": epoch, "step": self.global_step, **training}  # the step: the epoch's last
            if val_loader is not None:
                validation = {f"val_{k}": v for k, v in self.evaluate(val_loader).items()}
                logs.update(validation)
                self._call("on_validation_end", validation)
            logs["lr"] = self.current_lr  # the rate of the epoch's last step
            logs["seconds"] = time.perf_counter() - start
            self.divergence.check_weights(self.model.named_parameters(), epoch, self.global_step)
            self.epoch = epoch
            self.history.epochs.append(logs)
            if self.learning_rate is not None and self.optimizer is not None:
                self.learning_rate.end_epoch(self.optimizer, logs)
            self._call("on_epoch_end", epoch, logs)
        self._ended = True
        self._call("on_fit_end")

    def _train_epoch(self, loader: Any) -> Logs:
        self.model.train()
        # Where the epoch stands, kept current so that a checkpoint taken mid-epoch (on Ctrl-C, or
        # every N steps) resumes from the next batch with the epoch's running sums.
        progress = self.position or {
            "batch": 0,
            "totals": {"loss": 0.0, **{name: 0.0 for name in self.metrics}},
            "count": 0,
        }
        self.position, self._progress = None, progress
        totals, start = progress["totals"], progress["batch"]
        batches = loader.batches(start) if start else loader
        batch_start, batch_end = self._listeners["on_batch_start"], self._listeners["on_batch_end"]
        interrupt = self._interrupt
        for batch, (inputs, targets) in enumerate(self._on_device(batches), start):
            for method in batch_start:
                method(self, batch)
            logs = self.train_step((inputs, targets))
            n = metric_functions.batch_size(targets.data)
            for key, value in logs.items():
                totals[key] += value * n
            progress["count"] += n
            progress["batch"] = batch + 1
            for method in batch_end:
                method(self, logs)
            if interrupt is not None and interrupt.requested:
                self.position = self._progress
                self._call("on_interrupt")
                raise KeyboardInterrupt
        self._progress = None
        return {f"train_{k}": float(v) / max(progress["count"], 1) for k, v in totals.items()}

    def train_step(self, batch: Batch) -> Logs:
        """One optimizer step on ``batch`` (inputs, targets: Tensors on the model's device); returns
        the batch's logs (its loss and metrics)."""
        if self._after_backward is None:
            self._listen()
        optimizer, loss_fn = self.optimizer, self.loss_fn
        assert optimizer is not None and loss_fn is not None, "Trainer.train_step needs an optimizer and a loss_fn"
        inputs, targets = batch
        outputs = self.model(inputs)
        loss = loss_fn(outputs, targets)
        n = metric_functions.batch_size(targets.data)
        if isinstance(loss.data, np.ndarray):  # on the host: read now, and checked before the backward
            logs = {"loss": loss.item()}
            for name, metric in self.metrics.items():
                logs[name] = float(metric(outputs.data, targets.data)) / n
            self.divergence.check_loss(logs["loss"], self.global_step + 1, self.epoch + 1)
        else:  # on a device: left there, the loss checked with the next read
            logs = {"loss": loss.data.astype(np.float64)}
            for name, metric in self.metrics.items():
                logs[name] = metric(outputs.data, targets.data) / n
            self.divergence.defer(loss.data, self.global_step + 1, self.epoch + 1)
        optimizer.zero_grad()
        loss.backward()
        for observe in self._after_backward:  # type: ignore[union-attr]
            observe(self, logs)
        if self.clip_grad_norm is not None:
            clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        if self.learning_rate is not None:
            self.learning_rate.apply(optimizer, self.global_step, self.epoch)
        optimizer.step()
        self.global_step += 1
        if self.divergence.deferred and self.global_step % self.read_every == 0:
            self.divergence.check_deferred()
        for observe in self._step_end:
            observe(self, logs)
        return logs

    def stopped_at(self) -> str | None:
        """Where an interrupted fit stands: "step S (batch B of epoch E)" after Ctrl-C (which saves
        that step's checkpoint), "epoch E" after a second one (the last complete epoch), None before
        any epoch completed."""
        if self.position is not None:
            return f"step {self.global_step} (batch {self.position['batch']} of epoch {self.epoch + 1})"
        return f"epoch {self.epoch}" if self.epoch else None

    @property
    def current_lr(self) -> float:
        """The learning rate of the first parameter group now (after a step: the rate it used)."""
        assert self.optimizer is not None, "the Trainer has no optimizer"
        return float(self.optimizer.param_groups[0]["lr"])

    def _call(self, event: str, *args: Any) -> None:
        for method in self._listeners[event]:
            method(self, *args)

    def _require(self, action: str, optimizer: bool = False, loss_fn: bool = False) -> None:
        missing = [
            name
            for name, needed in (("optimizer", optimizer), ("loss_fn", loss_fn))
            if needed and getattr(self, name) is None
        ]
        if missing:
            raise ValueError(f"Trainer.{action}: needs {' and '.join(missing)}; pass it to Trainer(...)")

    # -- evaluation -----------------------------------------------------------
    def evaluate(self, loader: Any) -> dict[str, float]:
        """Mean loss and metrics over ``loader`` in eval mode, building no graph."""
        self._require("evaluate", loss_fn=True)
        loss_fn = self.loss_fn
        assert loss_fn is not None
        was_training = self.model.training
        self.model.eval()
        totals, count = {"loss": 0.0, **{name: 0.0 for name in self.metrics}}, 0
        with no_grad():
            for inputs, targets in self._on_device(loader):
                outputs = self.model(inputs)
                n = metric_functions.batch_size(targets.data)
                loss = loss_fn(outputs, targets).data
                if isinstance(loss, np.ndarray):
                    totals["loss"] += loss.item() * n
                    for name, fn in self.metrics.items():
                        totals[name] += float(fn(outputs.data, targets.data))
                else:  # on a device the sums stay there until the end: one read, not one a batch
                    totals["loss"] += loss.astype(np.float64) * n
                    for name, fn in self.metrics.items():
                        totals[name] += fn(outputs.data, targets.data)
                count += n
        self.model.train(was_training)
        return {k: float(v) / max(count, 1) for k, v in totals.items()}

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """The model's outputs for ``x`` (an array or Tensor), in eval mode, as a NumPy array."""
        data = x.data if isinstance(x, Tensor) else x if backend.is_array(x) else np.asarray(x)
        was_training = self.model.training
        self.model.eval()
        outputs = []
        with no_grad():
            for start in range(0, len(data), batch_size):
                (batch,) = batch_on(self.device, (data[start : start + batch_size],))
                outputs.append(backend.to_host(self.model(batch).data))
        self.model.train(was_training)
        return np.concatenate(outputs) if outputs else np.empty((0,))

    def _on_device(self, loader: Iterable[Batch]) -> Iterator[Batch]:
        """The loader's (inputs, targets) batches, on the Trainer's device if it has one."""
        for inputs, targets in loader:
            if self.device is not None:
                inputs, targets = batch_on(self.device, (inputs.data, targets.data))
            yield inputs, targets

    # -- checkpoints ----------------------------------------------------------
    def stateful(self) -> list[Stateful]:
        """The policies and callbacks whose state a checkpoint keeps (each under its ``checkpoint_key``)."""
        policies: list[Any] = [self.divergence] + ([self.learning_rate] if self.learning_rate is not None else [])
        return policies + [callback for callback in self.callbacks if getattr(callback, "checkpoint_key", None)]

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to continue training exactly where it stands."""
        assert self.optimizer is not None, "a training checkpoint needs the optimizer"
        self.divergence.check_deferred()  # a step that diverged is found before its weights are saved
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "model": dict(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "rng": get_rng_state(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": self.history.epochs,
        }
        for part in self.stateful():
            state[part.checkpoint_key] = part.state_dict()
        if self._train_loader is not None and hasattr(self._train_loader, "state_dict"):
            state["train_loader"] = self._train_loader.state_dict()
        position = self.position or self._progress
        if position is not None and position["batch"]:  # within an epoch: the loader starts that epoch again
            state["position"] = {**position, "totals": {k: float(v) for k, v in position["totals"].items()}}
            if "train_loader" in state:
                state["train_loader"] = {**state["train_loader"], "epoch": state["train_loader"]["epoch"] - 1}
        return state

    def save_checkpoint(self, path: str) -> None:
        """Write a training checkpoint atomically (temporary file + rename)."""
        io.save_checkpoint(self.checkpoint_state(), path)

    def load_checkpoint(self, path: str, train_loader: Any = None) -> dict[str, Any]:
        """Restore model, optimizer, the policies' and callbacks' state (the schedule's plan), RNG,
        data order (of ``train_loader``, or the loader fit was given) and counters from ``path``; a
        Trainer without an optimizer restores the model and the counters alone. Returns the
        checkpoint's state (a dict). A damaged checkpoint is a CheckpointError naming the file and what
        is wrong; one whose model has other layers or sizes a CheckpointMismatch (also a RuntimeError,
        as load_state_dict's own error)."""
        state = io.load_checkpoint(path)
        check_training_state(state, path)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise CheckpointMismatch(
                f"{path}: its model does not fit this one ({error}); was the run saved with "
                "other options, e.g. another --hidden or --model?"
            ) from None
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.position = state.get("position")
        if self.optimizer is None:
            return state
        if train_loader is not None:
            self._train_loader = train_loader
        parts = [part for part in self.stateful() if part.checkpoint_key in state or not _optional(part)]
        for part in parts:
            if part.checkpoint_key not in state:
                key = part.checkpoint_key
                raise CheckpointError(f"{path} has no {key} state, but this Trainer has a {key}")
        try:  # the optimizer's, policies' and callbacks' state, the RNG's and the loader's: data from a file
            self.optimizer.load_state_dict(state["optimizer"])
            for part in parts:
                part.load_state_dict(state[part.checkpoint_key])
            if self.learning_rate is not None:
                self.learning_rate.restore_rates(self.optimizer)
            set_rng_state(state["rng"])
            if "train_loader" in state and self._train_loader is not None:
                self._train_loader.load_state_dict(state["train_loader"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
            raise CheckpointError(
                f"{path} is damaged: its training state cannot be restored ({type(error).__name__}: {error})"
            ) from None
        self.history = History([dict(logs) for logs in state["history"]])
        return state


def _optional(part: Stateful) -> bool:
    """Whether a checkpoint may lack ``part``'s state: the divergence guard's (checkpoints written
    before it kept any), a learning rate without a schedule's (warm-up alone was stateless)."""
    if isinstance(part, DivergenceGuard):
        return True
    return isinstance(part, LearningRate) and part.scheduler is None
