"""What a training checkpoint is: its format tag, its parts and the check that a file holds a
whole one (the Trainer writes and reads them; :mod:`deepgrad.io` stores them as safetensors + JSON)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CheckpointError

CHECKPOINT_FORMAT = "deepgrad-training-checkpoint-1"
# What a training checkpoint holds, and the JSON type of each.
CHECKPOINT_PARTS = {"model": dict, "optimizer": dict, "rng": dict, "epoch": int, "global_step": int, "history": list}
# The parts a checkpoint may hold, each a dict: the learning rate's plan, the divergence guard's, the loader's.
OPTIONAL_PARTS = ("scheduler", "divergence", "train_loader")


def check_training_state(state: Any, path: str) -> None:
    """A CheckpointError naming ``path`` unless ``state`` is a whole training checkpoint with finite weights."""
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is a deepgrad file but not a training checkpoint")
    missing = [key for key in CHECKPOINT_PARTS if key not in state]
    if missing:
        raise CheckpointError(f"{path} is damaged: it lacks {missing}")
    for key, kind in CHECKPOINT_PARTS.items():
        value = state[key]
        if not isinstance(value, kind) or (isinstance(value, int) and (isinstance(value, bool) or value < 0)):
            raise CheckpointError(
                f"{path} is damaged: its {key} should be a {'non-negative ' * (kind is int)}"
                f"{kind.__name__}, got {value!r:.60}"
            )
    if not all(isinstance(logs, dict) for logs in state["history"]):
        raise CheckpointError(f"{path} is damaged: its history should be a list of per-epoch dicts")
    for key in OPTIONAL_PARTS:
        if key in state and not isinstance(state[key], dict):
            raise CheckpointError(f"{path} is damaged: its {key} should be a dict, got {state[key]!r:.60}")
    if "position" in state and not _is_position(state["position"]):
        raise CheckpointError(
            f"{path} is damaged: its position within the epoch should be {{batch, totals, count}}, "
            f"got {state['position']!r:.80}"
        )
    broken = non_finite_arrays(state["model"])
    if broken:
        raise CheckpointError(
            f"{path} holds NaN or infinite weights ({', '.join(broken[:3])}): the run had diverged; "
            "resume from an earlier checkpoint (checkpoints/best.safetensors) or start again"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_position(position: Any) -> bool:
    """Whether ``position`` is where an interrupted epoch stood: its next batch, its running sums, its samples."""
    return (
        isinstance(position, dict)
        and _is_count(position.get("batch"))
        and _is_count(position.get("count"))
        and isinstance(position.get("totals"), dict)
        and "loss" in position["totals"]
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in position["totals"].values())
    )


def non_finite_arrays(arrays: dict[str, Any]) -> list[str]:
    """The names of the floating-point arrays of ``arrays`` holding a NaN or an infinity."""
    return [
        name
        for name, array in arrays.items()
        if getattr(array, "dtype", None) is not None and array.dtype.kind == "f" and not np.isfinite(array).all()
    ]
