"""Figures of training dynamics and of what computations cost: values recorded at every training
step (loss, learning rate, gradient norm), one curve per setting in each panel; and bars comparing
a few measured quantities.

    step_curves({"learning rate": {"ylabel": "learning rate", "curves": {"constant": lrs, "cosine": lrs2}},
                 "training loss": {"ylabel": "loss (log)", "log_y": True, "curves": {...}}},
                "lr.png", title="...", smooth=40)
    comparison_bars({"forward + backward": {"ylabel": "time (ms)", "bars": {"composite": 0.2, "fused": 0.05}}},
                    "timing.png")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .diagnostics import PathT, label_panel, new_figure, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes

POINT_STYLE: dict[str, Any] = {"linestyle": "none", "marker": "D", "markersize": 7, "markeredgecolor": "black"}
SHORT_CURVE = 20  # a curve with at most this many points (a run that diverged early) is drawn with markers


def smoothed(values: Sequence[float], span: float) -> list[float]:
    """The exponential moving average of ``values`` with weight 2/(span + 1) on each new value: a
    spike shows as a bump that fades, not as a plateau."""
    weight, average, averages = 2 / (span + 1), values[0], []
    for value in values:
        average += weight * (value - average)
        averages.append(average)
    return averages


def step_curves(
    panels: Mapping[str, Mapping[str, Any]],
    path: PathT,
    title: str | None = None,
    smooth: int | None = None,
    log_x: bool = False,
    legend_outside: bool = False,
) -> PathT:
    """Panels one above the other, one per entry of ``panels``, each with one curve per setting
    against the training step (1, 2, ...).

    A panel is {"ylabel": ..., "curves": {label: [value per step]}} with, optionally, "log_y": bool;
    "steps": the step of each value (default 1, 2, ...: a value per step);
    "references": {label: y} (dashed horizontal lines); "points": {curve label: (step, y)} and
    "points_label" (one marked point per setting in its colour, e.g. a measurement after the last
    step); "smooth": False (no smoothing in this panel). A setting has the same colour in every
    panel. Non-finite values (and non-positive ones on a log axis) are left out, so a run that
    diverged simply ends; a curve of at most ``SHORT_CURVE`` points gets markers so that it stays
    visible. With ``smooth`` (a number of steps), the noisy per-step values are drawn faint with
    their exponential moving average over about ``smooth`` steps on top. ``legend_outside`` puts
    each legend to the right of its panel, where it cannot hide a curve.
    """
    figure, axes = new_figure(len(panels), 1, width=7.5, height=3.0, title=title)
    for (name, panel), (ax,) in zip(panels.items(), axes):
        log_y = panel.get("log_y", False)
        colors = {label: f"C{k}" for k, label in enumerate(panel["curves"])}
        for label, values in panel["curves"].items():
            smoothing = smooth if panel.get("smooth", True) else None
            _draw_steps(ax, values, label, colors[label], log_y, smoothing, panel.get("steps"))
        if panel.get("points"):
            for label, (step, y) in panel["points"].items():
                ax.plot([step], [y], color=colors[label], zorder=5, **POINT_STYLE)
            ax.plot([], [], color="#bbbbbb", label=panel["points_label"], **POINT_STYLE)  # its legend entry
        for label, y in panel.get("references", {}).items():
            ax.axhline(y, color="#555555", linestyle="--", linewidth=1.1, label=label)
        label_panel(ax, name, "training step" + (" (log)" if log_x else ""), panel["ylabel"], log_x, log_y)
        if legend_outside:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.legend(fontsize=8)
    return save(figure, path)


def _draw_steps(
    ax: Axes,
    values: Sequence[float | None],
    label: str,
    color: str,
    log_y: bool,
    smooth: int | None,
    steps: Sequence[int] | None = None,
) -> None:
    """One setting's values at ``steps`` (default 1, 2, ...): faint with a bold smoothed curve when
    ``smooth``, else plain."""
    points = [
        (step, v)
        for step, v in zip(steps or range(1, len(values) + 1), values)
        if v is not None and math.isfinite(v) and (v > 0 or not log_y)
    ]
    if not points:
        return
    steps, ys = zip(*points)
    marker = "o" if len(points) <= SHORT_CURVE else None
    if smooth and len(points) > smooth:
        ax.plot(steps, ys, color=color, linewidth=0.7, alpha=0.3)
        ax.plot(steps, smoothed(ys, smooth), color=color, linewidth=1.8, label=f"{label} (smoothed)")
    else:
        ax.plot(steps, ys, color=color, linewidth=1.5, marker=marker, markersize=4, label=label)


def comparison_bars(panels: Mapping[str, Mapping[str, Any]], path: PathT, title: str | None = None) -> PathT:
    """One bar chart per entry of ``panels`` ({"ylabel": ..., "bars": {label: value}, "log_y": bool
    (optional)}), panels side by side, each bar labelled with its value; on a log axis a value of
    exactly 0 has no bar, and reads "0" at the bottom."""
    titles = list(panels)
    figure, (axes,) = new_figure(1, len(titles), width=3.6, height=3.2, title=title)
    for ax, name in zip(axes, titles):
        panel = panels[name]
        log_y = panel.get("log_y", False)
        labels, values = list(panel["bars"]), list(panel["bars"].values())
        heights = [math.nan if log_y and v == 0 else v for v in values]
        bars = ax.bar(range(len(values)), heights, color=[f"C{k}" for k in range(len(values))], width=0.6)
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=9, padding=2)
        ax.set_xticks(range(len(values)), labels)
        ax.set_xlim(-0.5, len(values) - 0.5)
        if log_y:
            ax.set_yscale("log")
            for k, value in enumerate(values):
                if value == 0:
                    ax.text(k, 0.02, "0", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=9)
        ax.margins(y=0.15)
        ax.set_title(name, fontsize=10)
        ax.set_ylabel(panel["ylabel"])
        ax.grid(alpha=0.3, axis="y", which="both")
    return save(figure, path)
