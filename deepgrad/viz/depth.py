"""Figures of the studies of deep and recurrent products: a gradient cliff — the loss surface of a
weight multiplied by itself over many steps, with the paths SGD takes across it — and the loss of
each of those runs step by step.

    cliff({"w": ws, "u": us, "loss": grid, "cap": 1e3, "optimum": (1.0, 1.0)},
          {"unclipped, lr 0.1": {"path": [(w, u), ...], "loss": [...], "diverged_at": 16}, ...},
          "cliff.png", title="...")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .diagnostics import PathT, label_panel, new_figure, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def cliff(
    surface: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]], path: PathT, title: str | None = None
) -> PathT:
    """Two panels side by side. Left: the loss surface ``surface`` ({"w": [...], "u": [...], "loss":
    rows of the loss per u (one row per u, one column per w), "cap": the highest loss coloured (values
    above it take its colour, and the colour bar says so), "optimum": (w, u)}) in log colour, with the
    path of each run ({label: {"path": [(w, u) per step], "loss": [loss per step, the start first],
    "diverged_at": the step whose loss was no longer finite, or None; optionally "note": what became of
    it once it left the panel}}); a path that leaves the panel ends in an arrow with that note (by
    default, where the step that left landed). Right: each run's loss against the step (log),
    "diverged at step N" where a run's loss stopped being finite."""
    import numpy as np
    from matplotlib.colors import LogNorm

    figure, ((left, right),) = new_figure(1, 2, width=5.6, height=4.4, title=title)
    ws, us, cap = list(surface["w"]), list(surface["u"]), float(surface["cap"])
    loss = np.minimum(np.asarray(surface["loss"], dtype=float), cap)
    low = max(float(loss.min()), cap * 1e-6)
    mesh = left.pcolormesh(ws, us, loss, norm=LogNorm(low, cap), cmap="viridis", shading="auto")
    bar = figure.colorbar(mesh, ax=left, extend="max")
    bar.set_label(f"training loss (log; ≥ {cap:g} drawn as {cap:g})")
    box = (ws[0], ws[-1], us[0], us[-1])
    for k, (label, run) in enumerate(runs.items()):
        _draw_path(left, run["path"], label, f"C{k + 1}", box, run.get("note"))
        _draw_losses(right, run["loss"], run.get("diverged_at"), label, f"C{k + 1}")
    start = runs[next(iter(runs))]["path"][0]
    left.plot(*start, marker="o", color="white", markeredgecolor="black", markersize=8, linestyle="none", label="start")
    left.plot(*surface["optimum"], marker="*", color="gold", markeredgecolor="black", markersize=14, linestyle="none")
    left.annotate("optimum", surface["optimum"], xytext=(-4, 10), textcoords="offset points", ha="right", fontsize=8)
    left.set_xlim(box[0], box[1])
    left.set_ylim(box[2], box[3])
    left.set_title("loss surface and the paths across it", fontsize=10)
    left.set_xlabel("recurrent weight w (the output holds w^(T−1))")
    left.set_ylabel("input weight u")
    left.legend(fontsize=7, loc="upper left")
    label_panel(right, "training loss at every step", "training step", "training loss (log)", log_y=True)
    right.legend(fontsize=7)
    return save(figure, path)


def _draw_path(
    ax: Axes, points: Sequence[Sequence[float]], label: str, color: str, box: Sequence[float], note: str | None
) -> None:
    """The path while it stays inside ``box`` (w_low, w_high, u_low, u_high); the first step that
    leaves it is an arrow to the box's edge, labelled with ``note`` or where the step landed."""
    inside = []
    for step, (w, u) in enumerate(points):
        if math.isfinite(w) and math.isfinite(u) and box[0] <= w <= box[1] and box[2] <= u <= box[3]:
            inside.append((w, u))
            continue
        if inside:
            landed = "overflow" if not (math.isfinite(w) and math.isfinite(u)) else f"w = {w:.2g}, u = {u:.2g}"
            _leave(ax, inside[-1], (w, u), box, color, note or f"step {step}: thrown to\n{landed}")
        break
    if inside:
        ws, us = zip(*inside)
        ax.plot(ws, us, color=color, linewidth=1.4, marker=".", markersize=3, label=label)


def _leave(
    ax: Axes, last: tuple[float, float], landed: tuple[float, float], box: Sequence[float], color: str, text: str
) -> None:
    """An arrow from ``last`` towards ``landed``, cut at the edge of ``box``."""
    dw, du = landed[0] - last[0], landed[1] - last[1]
    if not (math.isfinite(dw) and math.isfinite(du)) or (dw == 0 and du == 0):
        dw, du = -1.0, 0.0  # overflowed: the direction is unknown; point out of the panel
    scale = min(
        (edge - start) / delta
        for start, delta, edges in ((last[0], dw, box[:2]), (last[1], du, box[2:]))
        if delta
        for edge in edges
        if (edge - start) / delta > 0
    )
    end = (last[0] + 0.97 * scale * dw, last[1] + 0.97 * scale * du)
    ax.annotate(
        "",
        end,
        xytext=last,
        arrowprops={"arrowstyle": "-|>", "color": color, "linewidth": 1.6, "linestyle": "--"},
    )
    ax.annotate(
        text,
        end,
        xytext=(-6, -34),
        textcoords="offset points",
        ha="left" if end[0] < (box[0] + box[1]) / 2 else "right",
        va="top",
        fontsize=7,
        color=color,
        fontweight="bold",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": color},
    )


def _draw_losses(ax: Axes, losses: Sequence[float], diverged_at: int | None, label: str, color: str) -> None:
    points = [(step, value) for step, value in enumerate(losses) if math.isfinite(value) and value > 0]
    if not points:
        return
    ax.plot(*zip(*points), color=color, linewidth=1.3, label=label)
    if diverged_at is not None:
        step, value = points[-1]
        ax.plot([step], [value], marker="x", color=color, markersize=8)
        ax.annotate(
            f"diverged at step {diverged_at}",
            (step, value),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=7,
            color=color,
        )
