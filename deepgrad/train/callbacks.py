"""Trainer callbacks: progress bar, history files, early stopping, checkpoints, NaN guard.

A callback overrides any of ``on_fit_start(trainer)``, ``on_epoch_start(trainer, epoch)``,
``on_batch_end(trainer, logs)``, ``on_epoch_end(trainer, epoch, logs)`` and
``on_fit_end(trainer)``; setting ``trainer.stop_training = True`` ends fit after the epoch.
"""

import csv
import json
import math
import os
import sys


class Callback:
    def on_fit_start(self, trainer):
        pass

    def on_epoch_start(self, trainer, epoch):
        pass

    def on_batch_end(self, trainer, logs):
        pass

    def on_epoch_end(self, trainer, epoch, logs):
        pass

    def on_fit_end(self, trainer):
        pass


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class NaNGuard(Callback):
    """Stop with a clear error the moment the training loss is not finite."""

    def __init__(self):
        self.last_finite = None

    def on_batch_end(self, trainer, logs):
        loss = logs["loss"]
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"training loss became {loss} at step {trainer.global_step} (epoch {trainer.epoch}); "
                f"last finite loss: {self.last_finite}. Try a lower learning rate or gradient clipping."
            )
        self.last_finite = loss


class ProgressBar(Callback):
    """tqdm bars per epoch with live loss, accuracy and learning rate; silent when not a terminal."""

    def __init__(self, quiet=None, stream=None):
        self.stream = stream or sys.stderr
        self.quiet = (not self.stream.isatty()) if quiet is None else quiet
        self.bar = None

    def on_epoch_start(self, trainer, epoch):
        if self.quiet:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.batches_per_epoch, desc=f"epoch {epoch}/{trainer.total_epochs}",
                        file=self.stream, leave=True, dynamic_ncols=True)

    def on_batch_end(self, trainer, logs):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)

    def on_epoch_end(self, trainer, epoch, logs):
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "epoch"})
            self.bar.close()
            self.bar = None


class HistoryWriter(Callback):
    """Append each epoch's logs to a JSON-lines file (and, optionally, a CSV file)."""

    def __init__(self, jsonl_path, csv_path=None):
        self.jsonl_path, self.csv_path = jsonl_path, csv_path

    def on_epoch_end(self, trainer, epoch, logs):
        with open(self.jsonl_path, "a") as handle:
            handle.write(json.dumps(logs) + "\n")
        if self.csv_path:
            new = not os.path.exists(self.csv_path)
            with open(self.csv_path, "a", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(logs))
                if new:
                    writer.writeheader()
                writer.writerow(logs)


def _improved(value, best, mode, min_delta):
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor="val_loss", patience=5, mode="min", min_delta=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.mode, self.min_delta = monitor, patience, mode, min_delta
        self.best, self.bad_epochs = None, 0

    def on_fit_start(self, trainer):
        # Replay a resumed run's history, so patience counts across the interruption.
        self.best, self.bad_epochs = None, 0
        for logs in trainer.history.epochs:
            self._observe(logs)

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: metric {self.monitor!r} not in the logs {sorted(logs)}")
        if self._observe(logs):
            trainer.stop_training = True

    def _observe(self, logs):
        """Update best/bad_epochs with one epoch's logs; True when patience has run out."""
        value = logs.get(self.monitor)
        if value is None:
            return False
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience


class ModelCheckpoint(Callback):
    """Write ``last.safetensors`` every epoch and ``best.safetensors`` when ``monitor`` improves
    (full training checkpoints, resumable with ``Trainer.fit(resume_from=...)``)."""

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

    def on_epoch_end(self, trainer, epoch, logs):
        if self.save_last:
            trainer.save_checkpoint(os.path.join(self.directory, "last.safetensors"))
        value = logs.get(self.monitor)
        if self.save_best and value is not None and _improved(value, self.best, self.mode, 0.0):
            self.best = value
            trainer.save_checkpoint(os.path.join(self.directory, "best.safetensors"))
