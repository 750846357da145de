"""Figures of the batch-normalization studies: the distribution of one unit's input over training as
its percentiles (the BN paper's Figure 1(b, c)), beside a summary over every unit and seed.

    input_percentiles({"without BN": {"steps": steps, "percentiles": (p15, p50, p85)}, "with BN": {...}},
                      {"ylabel": "…", "curves": {"without BN": (steps, per_seed), ...}}, "shift.png")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .diagnostics import PathT, label_panel, new_figure, save


def input_percentiles(
    panels: Mapping[str, Mapping[str, Any]],
    summary: Mapping[str, Any],
    path: PathT,
    title: str | None = None,
    xlabel: str = "training step",
    ylabel: str = "input of the unit",
) -> PathT:
    """One panel per entry of ``panels`` (sharing their y axis): ``{"steps", "percentiles": (low,
    middle, high)}`` of one unit's input over training, the band between the low and high
    percentiles and the middle one as a line, with optionally ``"labels"`` (three legend texts) and
    ``"note"`` (a second line of its title). Then a last panel ``summary``: ``{"ylabel", "curves":
    {label: (steps, [[value per seed] per step])}}`` (optionally ``"title"`` and ``"log_y"``): the
    mean over the seeds as a line and their range as a band. A panel's curve in the summary has the
    colour of its panel."""
    figure, (axes,) = new_figure(1, len(panels) + 1, width=4.4, height=3.6, title=title)
    for ax in axes[1 : len(panels)]:
        ax.sharey(axes[0])
    for k, (ax, (name, panel)) in enumerate(zip(axes, panels.items())):
        low, middle, high = panel["percentiles"]
        labels = panel.get("labels", ("15th–85th percentile", "median (50th)"))
        ax.fill_between(panel["steps"], low, high, color=f"C{k}", alpha=0.25, linewidth=0, label=labels[0])
        for values in (low, high):
            ax.plot(panel["steps"], values, color=f"C{k}", linewidth=0.8)
        ax.plot(panel["steps"], middle, color=f"C{k}", linewidth=1.8, label=labels[1])
        label_panel(ax, f"{name}\n{panel['note']}" if panel.get("note") else name, xlabel, ylabel)
        ax.legend(fontsize=8, loc="upper left")
    ax = axes[-1]
    log_y = summary.get("log_y", False)
    for k, (label, (steps, per_seed)) in enumerate(summary["curves"].items()):
        drawn, means, lows, highs = [], [], [], []
        for step, values in zip(steps, per_seed):
            shown = _finite(values, log_y)
            if shown:
                drawn.append(step)
                means.append(math.fsum(shown) / len(shown))
                lows.append(min(shown))
                highs.append(max(shown))
        ax.plot(
            drawn, means, color=f"C{k}", linewidth=1.8, label=f"{label}: mean, band: range of {len(per_seed[0])} seeds"
        )
        ax.fill_between(drawn, lows, highs, color=f"C{k}", alpha=0.2, linewidth=0)
    label_panel(ax, summary.get("title", "every unit, every seed"), xlabel, summary["ylabel"], log_y=log_y)
    ax.legend(fontsize=8)
    return save(figure, path)


def _finite(values: Sequence[float], log: bool) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
