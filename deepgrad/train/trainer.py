"""The Trainer: the mini-batch loop and its events, evaluation, prediction, checkpoints and resume.

Per batch: forward, loss and metrics, zero_grad, backward, ``on_after_backward``, the optimizer
step, ``on_step_end``, ``on_batch_end``. Per epoch: evaluation on the validation loader (no graph
built), ``on_validation_end``, ``on_epoch_end``. Everything else — clipping, the NaN guard,
schedules, early stopping, checkpoints, progress, monitors — is a callback on those events
(see :mod:`deepgrad.train.callbacks`). The Trainer knows nothing about specific layers.
"""

import time

import numpy as np

from .. import backend, io
from ..errors import CheckpointError, CheckpointMismatch
from ..data.loader import batch_on
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor, no_grad
from . import metrics as metric_functions
from .callbacks import EVENTS, GradientClipping, NaNGuard, SchedulerStep, listeners
from .interrupt import DeferredInterrupt


CHECKPOINT_FORMAT = "deepgrad-training-checkpoint-1"
# What a training checkpoint holds, and the JSON type of each.
CHECKPOINT_PARTS = {"model": dict, "optimizer": dict, "rng": dict, "epoch": int, "global_step": int, "history": list}


def check_training_state(state, path):
    """A CheckpointError naming ``path`` unless ``state`` is a whole training checkpoint."""
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is a deepgrad file but not a training checkpoint")
    missing = [key for key in CHECKPOINT_PARTS if key not in state]
    if missing:
        raise CheckpointError(f"{path} is damaged: it lacks {missing}")
    for key, kind in CHECKPOINT_PARTS.items():
        value = state[key]
        if not isinstance(value, kind) or (kind is int and (isinstance(value, bool) or value < 0)):
            raise CheckpointError(f"{path} is damaged: its {key} should be a {'non-negative ' * (kind is int)}"
                                  f"{kind.__name__}, got {value!r:.60}")
    if not all(isinstance(logs, dict) for logs in state["history"]):
        raise CheckpointError(f"{path} is damaged: its history should be a list of per-epoch dicts")
    broken = [name for name, array in state["model"].items()
              if getattr(array, "dtype", None) is not None and array.dtype.kind == "f" and not np.isfinite(array).all()]
    if broken:
        raise CheckpointError(f"{path} holds NaN or infinite weights ({', '.join(broken[:3])}): the run had diverged; "
                              "resume from an earlier checkpoint (checkpoints/best.safetensors) or start again")


class History:
    """Per-epoch logs: ``history.epochs`` is a list of dicts; ``history["val_loss"]`` a list of values."""

    def __init__(self, epochs=None):
        self.epochs = list(epochs or [])

    def __getitem__(self, key):
        return [logs[key] for logs in self.epochs if key in logs]

    def __len__(self):
        return len(self.epochs)

    def __repr__(self):
        return f"History({len(self.epochs)} epochs, last={self.epochs[-1] if self.epochs else None})"


class Trainer:
    """Train ``model`` with ``optimizer`` on ``loss_fn(outputs, targets)``; evaluate and predict.

    ``optimizer`` is needed by :meth:`fit` only, ``loss_fn`` by :meth:`fit` and :meth:`evaluate`.
    Three arguments are shortcuts for the usual callbacks, placed before ``callbacks``:
    ``scheduler`` (a :class:`SchedulerStep` every epoch, or every batch with
    ``scheduler_interval="batch"``; a ReduceLROnPlateau is given the validation loss),
    ``clip_grad_norm`` (a :class:`GradientClipping`) and ``nan_guard`` (a :class:`NaNGuard`, on by
    default). With ``device`` ("cuda"), the Trainer places the model there (create the optimizer
    before or after: its state is made lazily where the parameters are) and every batch it reads.
    """

    def __init__(self, model, optimizer=None, loss_fn=None, metrics=("accuracy",), callbacks=(), scheduler=None,
                 scheduler_interval="epoch", clip_grad_norm=None, device=None, nan_guard=True):
        if scheduler_interval not in ("epoch", "batch"):
            raise ValueError(f"Trainer: scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.metrics = metric_functions.resolve(metrics)
        shortcuts = [NaNGuard()] if nan_guard else []
        if clip_grad_norm is not None:
            shortcuts.append(GradientClipping(clip_grad_norm))
        if scheduler is not None:
            shortcuts.append(SchedulerStep(scheduler, scheduler_interval))
        self.callbacks = shortcuts + list(callbacks)
        self.device = None if device is None else backend.get_device(device)
        if self.device is not None:
            model.to(self.device)
        self.history = History()
        self.epoch = 0          # epochs completed
        self.global_step = 0    # optimizer steps taken
        self.total_epochs = 0
        self.batches_per_epoch = 0
        self.stop_training = False
        self.position = None    # within an interrupted epoch: {"batch", "totals", "count"} to go on from
        self._progress = None   # the same, live, while an epoch runs
        self._train_loader = None
        self._listeners = {}
        self._interrupt = None

    # -- training -------------------------------------------------------------
    def fit(self, train_loader, val_loader=None, epochs=1, resume_from=None):
        """Train until ``epochs`` epochs are complete (counting those of a resumed checkpoint)."""
        self._require("fit", optimizer=True, loss_fn=True)
        self._train_loader = train_loader
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        self.total_epochs, self.batches_per_epoch = epochs, len(train_loader)
        self.stop_training = False
        self._listeners = {event: listeners(self.callbacks, event) for event in EVENTS}
        with DeferredInterrupt() as self._interrupt:
            self._fit_epochs(train_loader, val_loader, epochs)
        return self.history

    def _fit_epochs(self, train_loader, val_loader, epochs):
        self._call("on_fit_start")
        while self.epoch < epochs and not self.stop_training:
            epoch = self.epoch + 1
            self._call("on_epoch_start", epoch)
            start = time.perf_counter()
            logs = {"epoch": epoch, **self._train_epoch(train_loader)}
            if val_loader is not None:
                validation = {f"val_{k}": v for k, v in self.evaluate(val_loader).items()}
                logs.update(validation)
                self._call("on_validation_end", validation)
            logs["lr"] = self.optimizer.param_groups[0]["lr"]
            logs["seconds"] = time.perf_counter() - start
            self.epoch = epoch
            self.history.epochs.append(logs)
            self._call("on_epoch_end", epoch, logs)
        self._call("on_fit_end")

    def _train_epoch(self, loader):
        self.model.train()
        # Where the epoch stands, kept current so that a checkpoint taken mid-epoch (on Ctrl-C, or
        # every N steps) resumes from the next batch with the epoch's running sums.
        progress = self.position or {"batch": 0, "totals": {"loss": 0.0, **{name: 0.0 for name in self.metrics}},
                                     "count": 0}
        self.position, self._progress = None, progress
        totals, start = progress["totals"], progress["batch"]
        batches = loader.batches(start) if start else loader
        # the per-batch events' listeners, looked up once per epoch (an event nobody listens to is an empty loop)
        batch_start, after_backward, step_end, batch_end = (
            self._listeners[event] for event in ("on_batch_start", "on_after_backward", "on_step_end", "on_batch_end"))
        interrupt = self._interrupt
        for batch, (inputs, targets) in enumerate(self._on_device(batches), start):
            for method in batch_start:
                method(self, batch)
            outputs = self.model(inputs)
            loss = self.loss_fn(outputs, targets)
            n = metric_functions.batch_size(targets.data)
            logs = {"loss": loss.item()}
            for name, fn in self.metrics.items():
                logs[name] = fn(outputs.data, targets.data) / n
            self.optimizer.zero_grad()
            loss.backward()
            for method in after_backward:
                method(self, logs)
            self.optimizer.step()
            self.global_step += 1
            for method in step_end:
                method(self, logs)
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
        return {f"train_{k}": v / max(progress["count"], 1) for k, v in totals.items()}

    def _call(self, event, *args):
        for method in self._listeners[event]:
            method(self, *args)

    def _require(self, action, optimizer=False, loss_fn=False):
        missing = [name for name, needed in (("optimizer", optimizer), ("loss_fn", loss_fn))
                   if needed and getattr(self, name) is None]
        if missing:
            raise ValueError(f"Trainer.{action}: needs {' and '.join(missing)}; pass it to Trainer(...)")

    # -- evaluation -----------------------------------------------------------
    def evaluate(self, loader):
        """Mean loss and metrics over ``loader`` in eval mode, building no graph."""
        self._require("evaluate", loss_fn=True)
        was_training = self.model.training
        self.model.eval()
        totals, count = {"loss": 0.0, **{name: 0.0 for name in self.metrics}}, 0
        with no_grad():
            for inputs, targets in self._on_device(loader):
                outputs = self.model(inputs)
                n = metric_functions.batch_size(targets.data)
                totals["loss"] += self.loss_fn(outputs, targets).item() * n
                for name, fn in self.metrics.items():
                    totals[name] += fn(outputs.data, targets.data)
                count += n
        self.model.train(was_training)
        return {k: v / max(count, 1) for k, v in totals.items()}

    def predict(self, x, batch_size=256):
        """The model's outputs for ``x`` (an array or Tensor), in eval mode, as a NumPy array."""
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        was_training = self.model.training
        self.model.eval()
        outputs = []
        with no_grad():
            for start in range(0, len(data), batch_size):
                (batch,) = batch_on(self.device, (data[start : start + batch_size],))
                outputs.append(backend.to_host(self.model(batch).data))
        self.model.train(was_training)
        return np.concatenate(outputs) if outputs else np.empty((0,))

    def _on_device(self, loader):
        """The loader's (inputs, targets) batches, on the Trainer's device if it has one."""
        for inputs, targets in loader:
            if self.device is not None:
                inputs, targets = batch_on(self.device, (inputs.data, targets.data))
            yield inputs, targets

    # -- checkpoints ----------------------------------------------------------
    def checkpoint_state(self):
        """Everything needed to continue training exactly where it stands."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "model": dict(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "rng": get_rng_state(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": self.history.epochs,
        }
        for callback in self._stateful_callbacks():
            state[callback.checkpoint_key] = callback.state_dict()
        if self._train_loader is not None and hasattr(self._train_loader, "state_dict"):
            state["train_loader"] = self._train_loader.state_dict()
        position = self.position or self._progress
        if position is not None and position["batch"]:  # within an epoch: the loader starts that epoch again
            state["position"] = {**position, "totals": dict(position["totals"])}
            if "train_loader" in state:
                state["train_loader"] = {**state["train_loader"], "epoch": state["train_loader"]["epoch"] - 1}
        return state

    def save_checkpoint(self, path):
        """Write a training checkpoint atomically (temporary file + rename)."""
        io.save_checkpoint(self.checkpoint_state(), path)

    def load_checkpoint(self, path):
        """Restore model, optimizer, callback state (the schedule), RNG, data order and counters from
        ``path``; a Trainer without an optimizer restores the model and the counters alone. Returns
        the checkpoint's state (a dict). A damaged checkpoint is a CheckpointError naming the file and
        what is wrong; one whose model has other layers or sizes a CheckpointMismatch (also a
        RuntimeError, as load_state_dict's own error)."""
        state = io.load_checkpoint(path)
        check_training_state(state, path)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise CheckpointMismatch(f"{path}: its model does not fit this one ({error}); was the run saved with "
                                     "other options, e.g. another --hidden or --model?") from None
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.position = state.get("position")
        if self.optimizer is None:
            return state
        for callback in self._stateful_callbacks():
            if callback.checkpoint_key not in state:
                key = callback.checkpoint_key
                raise CheckpointError(f"{path} has no {key} state, but this Trainer has a {key}")
        try:  # the optimizer's and the callbacks' state, the RNG's and the loader's: data from a file
            self.optimizer.load_state_dict(state["optimizer"])
            for callback in self._stateful_callbacks():
                callback.load_state_dict(state[callback.checkpoint_key])
            set_rng_state(state["rng"])
            if "train_loader" in state and self._train_loader is not None:
                self._train_loader.load_state_dict(state["train_loader"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
            raise CheckpointError(f"{path} is damaged: its training state cannot be restored "
                                  f"({type(error).__name__}: {error})") from None
        self.history = History([dict(logs) for logs in state["history"]])
        return state

    def _stateful_callbacks(self):
        return [callback for callback in self.callbacks if getattr(callback, "checkpoint_key", None)]
