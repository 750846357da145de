"""``detect_anomaly``: find the first op whose forward or backward produced NaN or Inf.

    with dg.detect_anomaly(model):        # model: optional, to name the module the op ran in
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    # AnomalyDetected: detect_anomaly: the forward of op 'log' (in module 3 (Sigmoid...)) gave 2 NaN ...

Every op's output and every gradient is checked while the block runs (slow: for debugging);
outside it nothing is checked and nothing costs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..tensor import AnomalyMode, RemovableHandle, is_anomaly_enabled, set_anomaly_detection

if TYPE_CHECKING:
    from ..nn import Module


@contextlib.contextmanager
def detect_anomaly(model: Module | None = None) -> Iterator[None]:
    """Check every op's forward output and backward gradients for NaN/Inf inside the block, raising
    :class:`deepgrad.errors.AnomalyDetected` at the first op that produced one. With ``model``, the
    message names the module (as in ``model.named_modules()``) each op ran in."""
    if is_anomaly_enabled():
        raise RuntimeError("detect_anomaly: already active (blocks do not nest)")
    handles = _track_modules(model) if model is not None else []
    set_anomaly_detection(True)
    try:
        yield
    finally:
        set_anomaly_detection(False)
        AnomalyMode.where = None
        for handle in handles:
            handle.remove()


def _track_modules(model: Module) -> list[RemovableHandle]:
    """Forward hooks on every module of ``model`` keeping the name of the innermost one running, for
    :attr:`AnomalyMode.where`; returns their handles."""
    running: list[str] = []

    def enter(label: str) -> Callable[[Module, tuple[Any, ...]], None]:
        def hook(module: Module, args: tuple[Any, ...]) -> None:
            running.append(label)

        return hook

    def leave(module: Module, args: tuple[Any, ...], output: Any) -> None:
        running.pop()

    handles = []
    for name, module in model.named_modules():
        label = f"{name or type(model).__name__} ({type(module).__name__})"
        handles.append(module.register_forward_pre_hook(enter(label)))
        handles.append(module.register_forward_hook(leave))
    AnomalyMode.where = lambda: running[-1] if running else None
    return handles
