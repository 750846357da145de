"""Figures that compare training runs: a grid of panels, each with one curve per setting (loss or
accuracy against steps or epochs, a measure against depth or weight scale, ...).

    curves_grid({"train accuracy": {"none": (epochs, values), "dropout": (epochs, values)},
                 "test accuracy": {...}},
                "overfitting.png", xlabel="epoch", ylabel="accuracy", title="...")
"""

from __future__ import annotations

from collections.abc import Mapping

from .diagnostics import PathT, label_panel, new_figure, save
from .studies import Curve


def curves_grid(
    panels: Mapping[str, Mapping[str, Curve]],
    path: PathT,
    xlabel: str | dict[str, str],
    ylabel: str | dict[str, str],
    title: str | None = None,
    log_x: bool = False,
    log_y: bool = False,
    columns: int | None = None,
    references: Mapping[str, float] | None = None,
    markers: bool = False,
) -> PathT:
    """Save one panel per entry of ``panels`` ({panel title: {curve label: (xs, ys)}}) to ``path``.

    ``xlabel``/``ylabel`` (with units) label every panel (a dict {panel title: label} gives each panel
    its own); ``log_x``/``log_y`` use log scales where values span decades; ``references``
    ({label: y}) draws dashed horizontal lines in every panel; ``columns`` panels per row (default:
    up to 3). Non-finite points are left out, so a diverged run's curve simply ends.
    """
    import math

    titles = list(panels)
    columns = columns or min(len(titles), 3)
    rows = -(-len(titles) // columns)
    figure, axes = new_figure(rows, columns, width=4.4, height=3.1, title=title)
    for i, panel in enumerate(titles):
        ax = axes[i // columns][i % columns]
        for label, (xs, ys) in panels[panel].items():
            points = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y) and (y > 0 or not log_y)]
            if points:
                ax.plot(*zip(*points), label=label, linewidth=1.3, marker="o" if markers else None, markersize=3)
        for label, y in (references or {}).items():
            ax.axhline(y, color="#777777", linestyle="--", linewidth=1, label=label)
        label_panel(
            ax,
            panel,
            xlabel[panel] if isinstance(xlabel, dict) else xlabel,
            ylabel[panel] if isinstance(ylabel, dict) else ylabel,
            log_x,
            log_y,
        )
        ax.legend(fontsize=8)
    for j in range(len(titles), rows * columns):
        axes[j // columns][j % columns].set_visible(False)
    return save(figure, path)
