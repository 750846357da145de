"""Planning a resumed run: which options it runs with, what it changes and says, where it goes on.

    plan = plan_resume("runs/a", {"epochs": 30, "lr": 0.01}, override=True)
    plan.config      # the run's saved options with the given ones over them
    plan.notes       # ["lr: 0.01 from now on"]
    plan.check_checkpoint(model, learning_rate, steps_per_epoch)   # it fits; where it resumes; the schedule's plan

A resumed run may change how long, where and how it runs (``--epochs``, ``--device``, logging...);
with ``--override`` the hyperparameters that take effect from the resumed step (``--lr``,
``--weight-decay``, ``--momentum``, ``--clip-grad-norm``, ``--dropout``); never what it has trained
on or with (the model, the data, the batches, the schedule). :func:`deepgrad.train.config.resume_changes`
says which is which. A schedule keeps the plan of the run's first start: more epochs go on at the
rate it ended at.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..nn.module import Module
from . import config as options
from .directory import check_resumable
from .policies import LearningRate
from .trainer import Trainer

# The optimizer hyperparameters a resumed run can be given anew (the checkpoint's optimizer has the old ones).
OPTIMIZER_OVERRIDES = ("lr", "weight_decay", "momentum")


@dataclass
class ResumePlan:
    """A resumed run of the directory ``directory``: its ``config`` (the saved options with the
    given ones over them), the options that ``changes`` ({name: new value}), ``notes`` to print (one
    line each), and once the checkpoint is read, ``resumed_at``: {"epoch", "step", "batch"} (batch
    0: an epoch's end)."""

    directory: str
    config: dict[str, Any]
    changes: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    resumed_at: dict[str, int] | None = None

    @property
    def checkpoint(self) -> str:
        return os.path.join(self.directory, "checkpoints", "last.safetensors")

    def check_checkpoint(self, model: Module, learning_rate: LearningRate | None, steps_per_epoch: int) -> None:
        """Read the last checkpoint into ``model`` (a CheckpointMismatch when it does not fit, before
        the run's config.json is rewritten), note where the run goes on and, when it is given more
        epochs than its schedule was planned for, at which rate they train."""
        state = Trainer(model).load_checkpoint(self.checkpoint)
        self.resumed_at = {
            "epoch": state["epoch"],
            "step": state["global_step"],
            "batch": (state.get("position") or {}).get("batch", 0),
        }
        if learning_rate is not None:
            per_unit = steps_per_epoch if learning_rate.interval == "batch" else 1
            self.notes += _schedule_extension(self.config["schedule"], learning_rate, state.get("scheduler"), per_unit)

    def apply(self, trainer: Trainer) -> None:
        """Give the optimizer of ``trainer`` (its checkpoint restored) the hyperparameters this plan
        changes: a new lr is the schedule's new base rate, from the step it had reached."""
        values = {name: self.changes[name] for name in OPTIMIZER_OVERRIDES if name in self.changes}
        if not values:
            return
        assert trainer.optimizer is not None, "a resumed run trains: it has an optimizer"
        groups = trainer.optimizer.param_groups
        if "lr" in values and trainer.learning_rate is not None:
            trainer.learning_rate.set_base([values["lr"]] * len(groups))
        for group in groups:
            group.update({name: value for name, value in values.items() if name in group})


def plan_resume(directory: str, given: dict[str, Any], override: bool = False) -> ResumePlan:
    """The plan of resuming the run in ``directory`` with the options ``given`` (None values: not
    given). A ConfigError names every given option that differs from the run's and may not (or not
    without ``override``)."""
    check_resumable(directory)
    saved = options.load_saved(os.path.join(directory, "config.json"))
    config = options.resolve(saved, given)
    changes = options.resume_changes(
        saved, config, [name for name, value in given.items() if value is not None], override
    )
    notes = [
        f"{name}: {options.show(value)} from now on"
        for name, value in changes.items()
        if name in options.RESUME_OVERRIDABLE
    ]
    return ResumePlan(directory, config, changes, notes)


def _schedule_extension(name: str, learning_rate: LearningRate, saved: Any, per_epoch: int) -> list[str]:
    """Notes on a resumed run that goes on past the length its schedule was planned for (its
    checkpoint's ``saved`` learning-rate state holds the plan, in units of ``per_epoch`` per epoch):
    the extra epochs train at the rate the schedule ended at — or a ConfigError when that rate is 0
    and they would not train at all."""
    if learning_rate.until is None or not isinstance(saved, dict) or not isinstance(saved.get("until"), int):
        return []
    until = saved["until"]
    if learning_rate.until <= until:
        return []
    planned = copy.copy(learning_rate)  # this run's policy with the checkpoint's plan
    planned.scheduler = copy.copy(learning_rate.scheduler)
    planned.load_state_dict(saved)
    final = planned.final_rate()
    epochs = until // per_epoch
    if final == 0:
        raise ConfigError(
            f"the run's {name} schedule was planned for {epochs} epochs and ends at lr 0, so epochs "
            f"after {epochs} would not train; start a new run with the --epochs you want (its schedule "
            "is planned for all of them)"
        )
    return [
        f"the {name} schedule was planned for {epochs} epochs; the epochs after them train at its final rate "
        f"{final:.3g}"
    ]
