"""Figures of the initialization, overfitting and dropout studies: measures over seeds laid out as a
grid whose rows share their y axis (:func:`seed_grid`), and histograms whose clipped end bins say
so (:func:`clipped_histograms`).

    seed_grid([{"sigmoid": {"xlabel": "layer", "ylabel": "std (log)", "log_y": True,
                            "curves": {"Xavier": ([1, 2, 3], [[0.2, 0.21], [0.05, 0.05], [0.01, 0.01]])}}}],
              "spread.png")
    clipped_histograms({"He": {"layer 1": {"edges": edges, "fractions": fractions, "above": 0.03}}},
                       "histograms.png")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .diagnostics import PathT, label_panel, new_figure, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CLIPPED_COLOR = "#c0392b"  # an end bin that collects the values beyond the drawn range


def seed_grid(
    rows: Sequence[Mapping[str, Mapping[str, Any]]], path: PathT, title: str | None = None, sharey: str = "row"
) -> PathT:
    """Rows of panels, the panels of a row sharing their y axis (``sharey="all"``: every panel;
    ``"none"``: each its own). Each panel: ``{"xlabel", "ylabel", "curves": {label: (xs, [[value
    per seed] per x])}}`` with, optionally, ``log_x``, ``log_y``, ``ticks`` (x values labelled as
    they are), ``references`` ({label: y}: dashed lines), ``colors`` ({label of a curve or a
    reference: colour}), ``legend`` (its matplotlib location) and ``note`` (a line of text in the
    panel's corner). A curve is the mean over the seeds with
    their range as a band and each seed a dot; a curve with one value per x is drawn as a plain
    line (a formula, a reference). Values that cannot be drawn (non-finite, or not positive on a
    log axis) are counted in the panel ("k values off the axis"), never silently dropped."""
    from matplotlib.ticker import NullFormatter, NullLocator

    width = max(len(row) for row in rows)
    figure, axes = new_figure(len(rows), width, width=4.4, height=3.3, title=title)
    for r, row in enumerate(rows):
        for c in range(width):
            if c >= len(row):
                axes[r][c].set_visible(False)
        for c, (name, panel) in enumerate(row.items()):
            ax = axes[r][c]
            if (sharey == "all" and (r, c) != (0, 0)) or (sharey == "row" and c > 0):
                ax.sharey(axes[0][0] if sharey == "all" else axes[r][0])
            log_x, log_y = panel.get("log_x", False), panel.get("log_y", False)
            hidden = 0
            for k, (label, (xs, per_seed)) in enumerate(panel["curves"].items()):
                hidden += _band(ax, xs, per_seed, label, panel.get("colors", {}).get(label, f"C{k}"), log_y)
            for label, y in panel.get("references", {}).items():
                color = panel.get("colors", {}).get(label, "#555555")
                ax.axhline(y, color=color, linestyle="--", linewidth=1.1, label=label)
            label_panel(ax, name, panel["xlabel"], panel["ylabel"], log_x, log_y)
            if panel.get("ticks") is not None:
                ax.set_xticks(list(panel["ticks"]), [f"{tick:g}" for tick in panel["ticks"]])
                ax.xaxis.set_minor_locator(NullLocator())
                ax.xaxis.set_minor_formatter(NullFormatter())
            notes = [panel["note"]] if panel.get("note") else []
            if hidden:
                notes.append(f"{hidden} value{'s' if hidden > 1 else ''} off the axis (≤ 0 or not finite)")
            if notes:
                ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize=7, va="bottom", color="#333333")
            ax.legend(fontsize=7, loc=panel.get("legend", "best"))
    return save(figure, path)


def _band(
    ax: Axes, xs: Sequence[float], per_seed: Sequence[Sequence[float]], label: str, color: str, log_y: bool
) -> int:
    """Draw one curve over seeds; returns how many values could not be drawn."""
    means, lows, highs, drawn, hidden = [], [], [], [], 0
    single = all(len(values) == 1 for values in per_seed)
    for x, values in zip(xs, per_seed):
        shown = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log_y)]
        hidden += len(values) - len(shown)
        if shown:
            drawn.append(x)
            means.append(math.fsum(shown) / len(shown))
            lows.append(min(shown))
            highs.append(max(shown))
            if not single:
                ax.plot([x] * len(shown), shown, linestyle="none", marker=".", color=color, alpha=0.45, markersize=4)
    if drawn and single:
        ax.plot(drawn, means, color=color, linestyle=":", linewidth=1.6, label=label)
    elif drawn:
        ax.plot(drawn, means, color=color, marker="o", markersize=3, linewidth=1.5, label=f"{label} (mean)")
        ax.fill_between(drawn, lows, highs, color=color, alpha=0.15, linewidth=0)
    return hidden


def clipped_histograms(
    grid: Mapping[str, Mapping[str, Mapping[str, Any]]], path: PathT, title: str | None = None, xlabel: str = "output"
) -> PathT:
    """One histogram per (row, column): ``grid[row][column]`` is ``{"edges", "fractions"}`` (the
    fraction of all values in each bin) with, optionally, ``below``/``above`` (the fractions beyond
    the range, which the first/last bin also holds: that bin is drawn hatched in red and says so),
    ``zeros`` (a fraction of exact zeros left out of the bars, noted in the panel) and ``note``
    (a line of text, e.g. the std). The panels of a row share their axes."""
    rows = list(grid)
    columns = list(grid[rows[0]])
    figure, axes = new_figure(len(rows), len(columns), width=2.3, height=1.8, title=title)
    for r, row in enumerate(rows):
        top = max(max(cell["fractions"]) for cell in grid[row].values()) * 1.25 or 1.0
        for c, column in enumerate(columns):
            cell, ax = grid[row][column], axes[r][c]
            edges, fractions = cell["edges"], cell["fractions"]
            widths = [b - a for a, b in zip(edges, edges[1:])]
            colors = ["#3b6fc4"] * len(fractions)
            hatches = [""] * len(fractions)
            texts = []
            for index, key, sign in ((0, "below", "<"), (len(fractions) - 1, "above", ">")):
                share = cell.get(key, 0.0)
                if share:
                    colors[index], hatches[index] = CLIPPED_COLOR, "///"
                    bound = edges[0] if key == "below" else edges[-1]
                    texts.append(f"red bin: {percent(share)} {sign} {bound:.3g}")
            bars = ax.bar(edges[:-1], fractions, width=widths, align="edge", color=colors)
            for bar, hatch in zip(bars, hatches):
                if hatch:
                    bar.set_hatch(hatch)
                    bar.set_edgecolor("black")
            ax.set_xlim(edges[0], edges[-1])
            ax.set_ylim(0, top)
            lines = [cell["note"]] if cell.get("note") else []
            if cell.get("zeros"):
                lines.append(f"exactly 0: {percent(cell['zeros'])} (not drawn)")
            lines += texts
            ax.text(0.97, 0.95, "\n".join(lines), transform=ax.transAxes, ha="right", va="top", fontsize=6.5)
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(column, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{row}\nfraction of outputs", fontsize=8)
            if r == len(rows) - 1:
                ax.set_xlabel(xlabel, fontsize=8)
    return save(figure, path)


def percent(share: float) -> str:
    """A fraction as a percentage that never reads 0 % or 100 % when it is not."""
    if 0 < share < 0.01 or 0.99 < share < 1:
        return f"{100 * share:.2g} %"
    return f"{share:.0%}"
