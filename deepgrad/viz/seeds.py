"""Figures of measurements repeated over seeds: each point is the mean over the seeds with the range
of the seeds as a band or an error bar, and every seed's own value as a dot, so a reader sees the
spread a claim's verdict rests on. A value that is not finite (a run that diverged) is never
silently dropped: the panel says how many seeds diverged there.

    over_setting({"final training loss": {"xlabel": "α₀ (log)", "ylabel": "loss (log)", "log_x": True,
                                          "log_y": True, "curves": {"constant": (alphas, per_seed)}}},
                 "sweep.png")
    seed_bars({"final training loss": {"ylabel": "loss", "bars": {"constant": [0.1, 0.12, 0.09]}}}, "bars.png")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .diagnostics import PathT, label_panel, new_figure, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: One curve: its x values and, for each, the values of every seed.
SeedCurve = tuple[Sequence[float], Sequence[Sequence[float]]]


def finite(values: Sequence[float], log: bool = False) -> list[float]:
    """The values that can be drawn (finite, and positive on a log axis)."""
    return [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]


def over_setting(
    panels: Mapping[str, Mapping[str, Any]],
    path: PathT,
    title: str | None = None,
    sharey: bool = False,
    missing: str = "diverged",
) -> PathT:
    """Panels side by side, each a measure against a setting: ``{"xlabel", "ylabel", "curves": {label:
    (xs, [[value per seed] per x])}}`` with, optionally, ``log_x``, ``log_y``, ``ticks`` (x values to
    label as they are), ``references`` ({label: y}: dashed lines) and ``marks`` ({text: (x, y)}:
    annotated points). Each curve is the mean over the seeds, its band the seeds' range, each seed a
    dot; where seeds have no finite value the panel marks "k/n ``missing``" at that x (default
    "diverged"; e.g. "never" for a number of steps that was never reached)."""
    from matplotlib.ticker import NullFormatter, NullLocator

    figure, (axes,) = new_figure(1, len(panels), width=5.2, height=3.8, title=title)
    if sharey and len(axes) > 1:
        for ax in axes[1:]:
            ax.sharey(axes[0])
    for ax, (name, panel) in zip(axes, panels.items()):
        log_x, log_y = panel.get("log_x", False), panel.get("log_y", False)
        for k, (label, (xs, per_seed)) in enumerate(panel["curves"].items()):
            seed_curve(ax, xs, per_seed, label, f"C{k}", log_y, missing, index=k)
        for label, y in panel.get("references", {}).items():
            ax.axhline(y, color="#555555", linestyle="--", linewidth=1.1, label=label)
        for text, (x, y) in panel.get("marks", {}).items():
            ax.annotate(
                text,
                (x, y),
                xytext=(6, 8),
                textcoords="offset points",
                fontsize=8,
                arrowprops={"arrowstyle": "-", "color": "#555555"},
            )
        label_panel(ax, name, panel["xlabel"], panel["ylabel"], log_x, log_y)
        if panel.get("ticks") is not None:
            ax.set_xticks(list(panel["ticks"]), [f"{tick:g}" for tick in panel["ticks"]])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=8)
    return save(figure, path)


def seed_curve(
    ax: Axes,
    xs: Sequence[float],
    per_seed: Sequence[Sequence[float]],
    label: str,
    color: str,
    log_y: bool = False,
    missing: str = "diverged",
    linestyle: str = "-",
    index: int = 0,
    mean_suffix: str = " (mean)",
) -> None:
    """One curve over seeds: the mean of the drawable values at each x (a line labelled ``label`` +
    ``mean_suffix``), their range (a band, with more than one seed) and each seed (a dot). At an x
    where some seeds' values are not finite (or not positive on a log axis), "k/n ``missing``"
    ("``missing``" alone for a single seed) is written at the top of the panel over a cross;
    neighbouring labels alternate between two heights and the curve's ``index`` shifts its labels
    sideways, so that labels at the same or nearby x stay legible (upright when a curve has more
    than two)."""
    means, lows, highs, drawn, marked = [], [], [], [], 0
    upright = sum(len(finite(values, log_y)) < len(values) for values in per_seed) > 2  # labels that would crowd
    for x, values in zip(xs, per_seed):
        shown = finite(values, log_y)
        absent = len(values) - len(shown)
        if shown:
            drawn.append(x)
            means.append(math.fsum(shown) / len(shown))
            lows.append(min(shown))
            highs.append(max(shown))
            ax.plot([x] * len(shown), shown, linestyle="none", marker=".", color=color, alpha=0.5, markersize=5)
        if absent:
            marked += 1
            ax.annotate(
                missing if len(values) == 1 else f"{absent}/{len(values)} {missing}",
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(9 * index, -12 if marked % 2 or upright else -22),
                textcoords="offset points",
                ha="center",
                va="top" if upright else "baseline",
                fontsize=7,
                color=color,
                rotation=90 if upright else 0,
            )
            ax.plot([x], [1.0], marker="x", color=color, transform=ax.get_xaxis_transform(), clip_on=False)
    if drawn:
        ax.plot(
            drawn,
            means,
            color=color,
            marker="o",
            markersize=4,
            linewidth=1.6,
            linestyle=linestyle,
            label=label + mean_suffix,
        )
        if max(len(values) for values in per_seed) > 1:
            ax.fill_between(drawn, lows, highs, color=color, alpha=0.15, linewidth=0)


def seed_bars(
    panels: Mapping[str, Mapping[str, Any]], path: PathT, title: str | None = None, sharey: bool = False
) -> PathT:
    """Bar charts side by side, one per entry of ``panels`` (``{"ylabel", "bars": {label: [value per
    seed]}}``, optionally ``log_y`` and ``references`` ({label: y})): each bar the mean over the
    seeds with the seeds' range as an error bar and every seed a dot; a setting whose seeds all
    diverged reads "diverged" in place of its bar."""
    figure, (axes,) = new_figure(
        1, len(panels), width=max(3.4, 0.9 * max(len(p["bars"]) for p in panels.values())), height=3.4, title=title
    )
    if sharey and len(axes) > 1:
        for ax in axes[1:]:
            ax.sharey(axes[0])
    for ax, (name, panel) in zip(axes, panels.items()):
        log_y = panel.get("log_y", False)
        for k, values in enumerate(panel["bars"].values()):
            shown = finite(values, log_y)
            if not shown:
                ax.text(
                    k,
                    0.5,
                    "diverged",
                    transform=ax.get_xaxis_transform(),
                    ha="center",
                    rotation=90,
                    fontsize=9,
                    color=f"C{k}",
                )
                continue
            mean = math.fsum(shown) / len(shown)
            ax.bar(
                k, mean, color=f"C{k}", width=0.6, alpha=0.8, yerr=[[mean - min(shown)], [max(shown) - mean]], capsize=4
            )
            ax.plot([k] * len(shown), shown, linestyle="none", marker="o", color="black", markersize=3)
            ax.annotate(
                f"{mean:.3g}", (k, max(shown)), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8
            )
        for label, y in panel.get("references", {}).items():
            ax.axhline(y, color="#555555", linestyle="--", linewidth=1.1, label=label)
        if panel.get("references"):
            ax.legend(fontsize=8)
        ax.set_xticks(range(len(panel["bars"])), list(panel["bars"]), rotation=20, ha="right")
        label_panel(ax, name, "", panel["ylabel"], log_y=log_y)
        ax.margins(y=0.15)
    return save(figure, path)
