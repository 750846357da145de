"""Trainer callbacks: the policies of a training run, each attached to the Trainer's events.

The Trainer calls, in this order (a callback overrides any subset; ``logs`` are dicts of floats):

    on_fit_start(trainer)
      on_epoch_start(trainer, epoch)                       epoch counts from 1
        on_batch_start(trainer, batch)                     batch index within the epoch, from 0
        on_after_backward(trainer, logs)                   gradients in .grad, before the optimizer step
        on_step_end(trainer, logs)                         parameters updated; trainer.global_step counts it
        on_batch_end(trainer, logs)                        logs: the batch's loss and metrics
      on_validation_end(trainer, logs)                     logs: val_loss, val_<metric> (with a val loader)
      on_epoch_end(trainer, epoch, logs)                   logs: the epoch's row of the history
    on_fit_end(trainer)
    on_interrupt(trainer)     after Ctrl-C, at the end of the step in progress (trainer.position says
                              where the epoch stopped); fit then raises KeyboardInterrupt

Callbacks run in increasing ``order`` (then in the order given): 0 by default;
GradientClipping runs after the others at ``on_after_backward`` (so monitors see
the raw gradients), ModelCheckpoint last (so a checkpoint holds the state every
other callback left). Setting ``trainer.stop_training = True`` ends fit after
the epoch. A callback with state that a resumed run needs names its
``checkpoint_key`` and has ``state_dict()``/``load_state_dict()``.
"""

import csv
import json
import math
import os
import sys
import time
from io import StringIO

import numpy as np

from .. import io
from ..errors import TrainingDiverged
from ..nn.utils import clip_grad_norm_

EVENTS = ("on_fit_start", "on_epoch_start", "on_batch_start", "on_after_backward", "on_step_end", "on_batch_end",
          "on_validation_end", "on_epoch_end", "on_fit_end", "on_interrupt")


class Callback:
    order = 0
    checkpoint_key = None

    def on_fit_start(self, trainer):
        pass

    def on_epoch_start(self, trainer, epoch):
        pass

    def on_batch_start(self, trainer, batch):
        pass

    def on_after_backward(self, trainer, logs):
        pass

    def on_step_end(self, trainer, logs):
        pass

    def on_batch_end(self, trainer, logs):
        pass

    def on_validation_end(self, trainer, logs):
        pass

    def on_epoch_end(self, trainer, epoch, logs):
        pass

    def on_fit_end(self, trainer):
        pass

    def on_interrupt(self, trainer):
        pass


def listeners(callbacks, event):
    """The ``event`` methods of the callbacks that implement it, in run order (a callback that
    leaves an event to :class:`Callback`'s no-op costs nothing there)."""
    ordered = sorted(callbacks, key=lambda callback: getattr(callback, "order", 0))
    return [getattr(callback, event) for callback in ordered
            if getattr(type(callback), event, None) not in (None, getattr(Callback, event))]


class NaNGuard(Callback):
    """Stop with :class:`TrainingDiverged` the moment the training loss is not finite, before the
    optimizer applies the step that produced it, and at the end of an epoch whose weights became
    non-finite while the loss stayed finite, before anything saves them (it runs first)."""

    order = -10

    def __init__(self):
        self.last_finite = None

    def on_after_backward(self, trainer, logs):
        loss = logs["loss"]
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"training loss became {loss} at step {trainer.global_step + 1} (epoch {trainer.epoch + 1}); "
                f"last finite loss: {self.last_finite}. Try a lower learning rate or gradient clipping."
            )
        self.last_finite = loss

    def on_epoch_end(self, trainer, epoch, logs):
        broken = [name for name, p in trainer.model.named_parameters() if not bool(np.isfinite(p.data).all())]
        if broken:
            raise TrainingDiverged(
                f"the weights {', '.join(broken[:3])}{' ...' if len(broken) > 3 else ''} became NaN or infinite "
                f"during epoch {epoch} while the loss stayed finite (last: {self.last_finite}); nothing of this epoch "
                "was saved. Try a lower learning rate or gradient clipping."
            )


class GradientClipping(Callback):
    """Scale the gradients so their global L2 norm is at most ``max_norm`` before each step
    (:func:`deepgrad.nn.utils.clip_grad_norm_`)."""

    order = 10

    def __init__(self, max_norm):
        self.max_norm = max_norm

    def on_after_backward(self, trainer, logs):
        clip_grad_norm_(trainer.model.parameters(), self.max_norm)


class SchedulerStep(Callback):
    """Step a learning-rate schedule after every optimizer step (``interval="batch"``) or every epoch.

    A schedule that steps on a metric (ReduceLROnPlateau) is given ``logs[monitor]`` at the end of
    each epoch; ``monitor`` defaults to "val_loss", or "train_loss" in a run without validation.
    ``until``: the length the schedule was planned for, in its intervals; past it the schedule is
    not stepped, so the rate stays where the schedule ended (a resumed run given more epochs goes on
    at the final rate instead of restarting the decay or climbing back up a cosine). It is saved in
    checkpoints with the schedule: the plan of the run's first start holds across resumes.
    """

    checkpoint_key = "scheduler"

    def __init__(self, scheduler, interval="epoch", monitor=None, until=None):
        if interval not in ("epoch", "batch"):
            raise ValueError(f"SchedulerStep: interval must be 'epoch' or 'batch', got {interval!r}")
        self.scheduler, self.interval, self.monitor, self.until = scheduler, interval, monitor, until
        self.steps_on_metric = getattr(scheduler, "steps_on_metric", False)

    def _step(self):
        if self.until is None or self.scheduler.last_epoch < self.until:
            self.scheduler.step()

    def on_step_end(self, trainer, logs):
        if self.interval == "batch" and not self.steps_on_metric:
            self._step()

    def on_epoch_end(self, trainer, epoch, logs):
        if self.steps_on_metric:
            monitor = self.monitor or ("val_loss" if "val_loss" in logs else "train_loss")
            if monitor not in logs:
                raise KeyError(f"SchedulerStep: metric {monitor!r} not in the logs {sorted(logs)}")
            self.scheduler.step(logs[monitor])
        elif self.interval == "epoch":
            self._step()

    def state_dict(self):
        return {"schedule": self.scheduler.state_dict(), "until": self.until}

    def load_state_dict(self, state):
        if "schedule" not in state:  # a checkpoint from before the plan was saved: the schedule's state alone
            state = {"schedule": state, "until": None}
        self.scheduler.load_state_dict(state["schedule"])
        self.until = state["until"]


class Warmup(Callback):
    """Linear learning-rate warm-up over the first ``steps`` optimizer steps: step t (from 0) uses
    (t + 1)/steps of the rate the schedule (or the optimizer) sets, lr_t = lr·(t + 1)/steps. The
    scaled rate is in place only for the optimizer step itself, so schedules, checkpoints and the
    epoch logs see the scheduled rate; ``on_after_backward`` listeners see the rate the step uses."""

    order = -5  # before the other callbacks' on_after_backward and on_step_end (a schedule's step)

    def __init__(self, steps):
        if steps < 1:
            raise ValueError(f"Warmup: steps must be at least 1, got {steps}")
        self.steps = steps
        self.scheduled = None

    def on_after_backward(self, trainer, logs):
        step = trainer.global_step
        if step < self.steps:
            groups = trainer.optimizer.param_groups
            self.scheduled = [group["lr"] for group in groups]
            for group, lr in zip(groups, self.scheduled):
                group["lr"] = lr * (step + 1) / self.steps

    def on_step_end(self, trainer, logs):
        if self.scheduled is not None:
            for group, lr in zip(trainer.optimizer.param_groups, self.scheduled):
                group["lr"] = lr
            self.scheduled = None


class OverrideHyperparameters(Callback):
    """Set optimizer hyperparameters (``lr``, ``weight_decay``, ``momentum``; None: keep) when fit
    starts — after a resumed checkpoint has restored the old ones — in every parameter group that
    has them; a new ``lr`` is also a schedule's new base rate (the schedule goes on from the step
    it had reached). ``deepgrad train --resume --override --lr X`` adds it."""

    def __init__(self, lr=None, weight_decay=None, momentum=None):
        self.values = {name: value for name, value in
                       (("lr", lr), ("weight_decay", weight_decay), ("momentum", momentum)) if value is not None}

    def on_fit_start(self, trainer):
        values = dict(self.values)
        if "lr" in values:
            base = values["lr"]
            for callback in trainer.callbacks:
                scheduler = getattr(callback, "scheduler", None)
                if scheduler is not None and hasattr(scheduler, "base_lrs"):
                    scheduler.base_lrs = [base] * len(scheduler.base_lrs)
                    values["lr"] = scheduler.lr_at(scheduler.last_epoch, base)
            for group in trainer.optimizer.param_groups:
                if "initial_lr" in group:
                    group["initial_lr"] = base
        for group in trainer.optimizer.param_groups:
            group.update({name: value for name, value in values.items() if name in group})


class ProgressBar(Callback):
    """The progress of each epoch: in a terminal, a tqdm bar with the live loss, accuracy and
    learning rate; elsewhere (CI, nohup, a notebook's log), a plain line every ``interval`` seconds
    and one per epoch, flushed at once; nothing when ``quiet``."""

    def __init__(self, quiet=False, stream=None, interval=30.0):
        self.stream = stream or sys.stderr
        self.quiet, self.interval = bool(quiet), interval
        self.bar, self.last_line = None, None

    def on_epoch_start(self, trainer, epoch):
        if self.quiet:
            return
        if not self.stream.isatty():
            self.last_line = time.monotonic()
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.batches_per_epoch, desc=f"epoch {epoch}/{trainer.total_epochs}",
                        file=self.stream, leave=True, dynamic_ncols=True)

    def on_batch_end(self, trainer, logs):
        if self.bar is not None:
            lr = trainer.optimizer.param_groups[0]["lr"]
            self.bar.update(1)
            self.bar.set_postfix({**{k: f"{v:.4g}" for k, v in logs.items()}, "lr": f"{lr:.3g}"}, refresh=False)
        elif self.last_line is not None and time.monotonic() - self.last_line >= self.interval:
            self.last_line = time.monotonic()
            done = trainer.global_step - trainer.epoch * trainer.batches_per_epoch
            lr = trainer.optimizer.param_groups[0]["lr"]
            self._line(f"epoch {trainer.epoch + 1}/{trainer.total_epochs} batch {done}/{trainer.batches_per_epoch}: "
                       + _values({**logs, "lr": lr}))

    def on_epoch_end(self, trainer, epoch, logs):
        values = {k: v for k, v in logs.items() if k != "epoch"}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()})
            self.bar.close()
            self.bar = None
        elif self.last_line is not None:
            self._line(f"epoch {epoch}/{trainer.total_epochs} done: {_values(values)}")

    def _line(self, text):
        print(text, file=self.stream, flush=True)


def _values(logs):
    return ", ".join(f"{key} {value:.4g}" for key, value in logs.items())


class HistoryWriter(Callback):
    """Append each epoch's logs to a JSON-lines file (and, optionally, a CSV file).

    When fit starts with a history (a resumed run), the files are first replaced by ones holding
    exactly that history, so an epoch logged after the checkpoint a run resumes from, before a
    crash, is not listed twice, and none is missing.
    """

    def __init__(self, jsonl_path, csv_path=None):
        self.jsonl_path, self.csv_path = jsonl_path, csv_path

    def on_fit_start(self, trainer):
        epochs = trainer.history.epochs
        if epochs:
            io.write_text(self.jsonl_path, _jsonl(epochs))
            if self.csv_path:
                io.write_text(self.csv_path, _csv(epochs, header=True))

    def on_epoch_end(self, trainer, epoch, logs):
        with open(self.jsonl_path, "a") as handle:
            handle.write(_jsonl([logs]))
        if self.csv_path:
            header = not os.path.exists(self.csv_path)
            with open(self.csv_path, "a", newline="") as handle:
                handle.write(_csv([logs], header))


def _jsonl(rows):
    return "".join(json.dumps(logs) + "\n" for logs in rows)


def _csv(rows, header):
    text = StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def _improved(value, best, mode, min_delta):
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; with
    ``verbose``, say so in one line on stderr when it fires."""

    def __init__(self, monitor="val_loss", patience=5, mode="min", min_delta=0.0, verbose=False):
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.mode, self.min_delta = monitor, patience, mode, min_delta
        self.verbose = verbose
        self.best, self.best_epoch, self.bad_epochs = None, None, 0

    def on_fit_start(self, trainer):
        # Replay a resumed run's history, so patience counts across the interruption.
        self.best, self.best_epoch, self.bad_epochs = None, None, 0
        for logs in trainer.history.epochs:
            self._observe(logs)

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: metric {self.monitor!r} not in the logs {sorted(logs)}")
        if self._observe(logs):
            trainer.stop_training = True
            if self.verbose:
                print(f"early stopping: {self.monitor} has not improved for {self.patience} epochs (best "
                      f"{self.best:.4g} at epoch {self.best_epoch}); stopped after epoch {epoch}", file=sys.stderr)

    def _observe(self, logs):
        """Update best/bad_epochs with one epoch's logs; True when patience has run out."""
        value = logs.get(self.monitor)
        if value is None:
            return False
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.bad_epochs = value, logs.get("epoch"), 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience


class BestWeights(Callback):
    """A copy of the model's state at the epoch whose ``monitor`` was best (Keras's
    ``restore_best_weights``): ``epoch`` and ``state`` (None for a best epoch from before a resume,
    whose weights are in that run's best checkpoint)."""

    def __init__(self, monitor="val_loss", mode="min"):
        self.monitor, self.mode = monitor, mode
        self.best = self.epoch = self.state = None

    def on_fit_start(self, trainer):
        for logs in trainer.history.epochs:
            value = logs.get(self.monitor)
            if value is not None and _improved(value, self.best, self.mode, 0.0):
                self.best, self.epoch, self.state = value, logs["epoch"], None

    def on_epoch_end(self, trainer, epoch, logs):
        value = logs.get(self.monitor)
        if value is not None and _improved(value, self.best, self.mode, 0.0):
            self.best, self.epoch = value, epoch
            self.state = {name: array.copy() for name, array in trainer.model.state_dict().items()}


class ModelCheckpoint(Callback):
    """Write ``last.safetensors`` every epoch and ``best.safetensors`` when ``monitor`` improves
    (full training checkpoints, resumable with ``Trainer.fit(resume_from=...)``)."""

    order = 100

    def __init__(self, directory, monitor="val_loss", mode="min", save_best=True, save_last=True):
        self.directory, self.monitor, self.mode = directory, monitor, mode
        self.save_best, self.save_last = save_best, save_last
        self.best = None

    def on_fit_start(self, trainer):
        # A resumed run's history holds the best value so far: only a better model replaces best.safetensors.
        for logs in trainer.history.epochs:
            value = logs.get(self.monitor)
            if value is not None and _improved(value, self.best, self.mode, 0.0):
                self.best = value

    def on_interrupt(self, trainer):
        if self.save_last:  # the middle of an epoch: resuming goes on from its next batch
            trainer.save_checkpoint(os.path.join(self.directory, "last.safetensors"))

    def on_epoch_end(self, trainer, epoch, logs):
        if self.save_last:
            trainer.save_checkpoint(os.path.join(self.directory, "last.safetensors"))
        value = logs.get(self.monitor)
        if self.save_best and value is not None and _improved(value, self.best, self.mode, 0.0):
            self.best = value
            trainer.save_checkpoint(os.path.join(self.directory, "best.safetensors"))


class PeriodicCheckpoint(Callback):
    """Write ``directory/last.safetensors`` every ``every`` optimizer steps, in the middle of an
    epoch too: resuming from it goes on from the next batch, as if the run had not stopped (the
    epoch-end checkpoints are :class:`ModelCheckpoint`'s)."""

    order = 100

    def __init__(self, directory, every):
        if every < 1:
            raise ValueError(f"PeriodicCheckpoint: every must be at least 1 step, got {every}")
        self.directory, self.every = directory, every

    def on_batch_end(self, trainer, logs):
        if trainer.global_step % self.every == 0:
            trainer.save_checkpoint(os.path.join(self.directory, "last.safetensors"))
