"""Figures of the optimizer studies: each optimizer's path over the contour lines of a function of
two variables, and the training loss of several optimizers step by step.

    optimizer_paths({"SGD": [[-7, 2], ...], "Adam": [...]}, lambda x, y: x**2 / 20 + y**2,
                    "bowl.png", window=((-8, 3), (-3, 3)), target=(0, 0))
    loss_per_step({"SGD": [2.3, 2.2, ...], "Adam": [...]}, "loss.png")

Each function saves a PNG at ``path`` and returns it; matplotlib draws on a Figure of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from .diagnostics import PathT, new_figure, save

if TYPE_CHECKING:
    import numpy.typing as npt
    from matplotlib.axes import Axes
    from matplotlib.lines import Line2D

#: The plotted region ((x0, x1), (y0, y1)).
Window: TypeAlias = "tuple[tuple[float, float], tuple[float, float]]"
#: A function of two variables, called on NumPy arrays (the grid's x and y) and returning f's values.
Surface: TypeAlias = "Callable[[npt.NDArray[Any], npt.NDArray[Any]], npt.NDArray[Any]]"

START: dict[str, Any] = dict(marker="o", color="black", markersize=6, linestyle="", zorder=3)
# zorder under the paths: they end there
TARGET: dict[str, Any] = dict(marker="*", color="#c0392b", markersize=12, linestyle="", zorder=1.5)


def contour_levels(values: npt.NDArray[Any], decades: int = 2, per_decade: int = 4) -> list[float]:
    """Log-spaced contour levels covering the top ``decades`` of ``|values|`` (a NumPy array of f
    over the plotted window), ``per_decade`` to a decade; their negatives too where f goes below 0."""
    import numpy as np

    top = float(np.abs(values).max())
    magnitudes = np.geomspace(top * 10.0**-decades, top, decades * per_decade + 1)[:-1]
    return sorted([*magnitudes, *(-magnitudes if values.min() < 0 else [])])


def first_step_outside(points: Sequence[Sequence[float]], window: Window) -> int | None:
    """The first step at which a path (list of [x, y]) lies outside ``window`` ((x0, x1), (y0, y1)), or None."""
    (x0, x1), (y0, y1) = window
    return next((step for step, (x, y) in enumerate(points) if not (x0 <= x <= x1 and y0 <= y <= y1)), None)


def _contours(ax, f, window, resolution=150):  # unannotated: matplotlib types ContourSet.levels as a mere Iterable
    """Log-spaced contour lines of f over ``window``, grey (negative levels dashed), a few labelled."""
    import numpy as np

    (x0, x1), (y0, y1) = window
    x, y = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    values = f(x, y)
    lines = ax.contour(x, y, values, levels=contour_levels(values), colors="#a0a0a0", linewidths=0.7)
    ax.clabel(lines, lines.levels[::4], fontsize=6, fmt="%.2g")


def _path_legend(target_label: str) -> list[Line2D]:
    """The legend of every path panel: a path (grey: each panel has its colour), the start, the target."""
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color="#555555", linewidth=1.2, marker="o", markersize=2.5, label="path (a dot per step)"),
        Line2D([], [], label="start", **START),
        Line2D([], [], label=target_label, **TARGET),
    ]


def _path_panel(
    ax: Axes,
    points: Sequence[Sequence[float]],
    f: Surface,
    window: Window,
    target: Sequence[float],
    target_label: str,
    color: Any,
) -> None:
    """One optimizer's path, a dot per step, over f's contour lines; the start and target marked."""
    (x0, x1), (y0, y1) = window
    _contours(ax, f, window)
    ax.plot(*zip(*points), color=color, linewidth=1.2, marker="o", markersize=2.5)
    ax.plot(*points[0], **START)
    ax.plot(*target, **TARGET)
    left = first_step_outside(points, window)
    if left is not None:
        ax.text(
            0.98,
            0.03,
            f"leaves the view at step {left}",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color=color,
            bbox=dict(facecolor="white", alpha=0.8, linewidth=0),
        )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _progress_panel(
    ax: Axes,
    ylabel: str,
    curves: Mapping[str, Sequence[float]],
    colors: Sequence[Any],
    references: Mapping[str, float] | None,
) -> None:
    """One curve per optimizer of a quantity against the step, log y, with dashed reference lines."""
    for color, (name, values) in zip(colors, curves.items()):
        points = [(step, v) for step, v in enumerate(values) if v > 0 and math.isfinite(v)]
        ax.plot(*zip(*points), color=color, linewidth=1.3, marker="o", markersize=2, label=name)
    for label, y in (references or {}).items():
        ax.axhline(y, color="#777777", linestyle="--", linewidth=1, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title("all five, step by step", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def optimizer_paths(
    paths: Mapping[str, Sequence[Sequence[float]]],
    f: Surface,
    path: PathT,
    window: Window,
    target: Sequence[float],
    target_label: str = "minimum",
    title: str | None = None,
    notes: Mapping[str, str] | None = None,
    progress: tuple[str, Mapping[str, Sequence[float]]] | None = None,
    references: Mapping[str, float] | None = None,
) -> PathT:
    """One panel per optimizer: its path (``paths`` maps a name to its points [[x, y], ...], one per
    step, the start first) drawn with a dot per step over log-spaced contour lines of ``f(x, y)``
    (called on NumPy arrays) within ``window`` ((x0, x1), (y0, y1)), equal aspect; the start and
    ``target`` (the minimum, or a saddle point: ``target_label``) are marked, and a path that
    leaves the window is labelled with the step where it does. ``notes`` ({name: text}) go under
    each panel's title. ``progress`` = (ylabel, {name: a value per step}) adds a last panel with one
    curve per optimizer against the step, log y (e.g. f, or the distance from a saddle), with
    ``references`` ({label: y}) drawn dashed there."""
    from matplotlib import colormaps

    names = list(paths)
    panels = len(names) + (progress is not None)
    columns = min(panels, 3)
    rows = -(-panels // columns)
    (x0, x1), (y0, y1) = window
    figure, axes = new_figure(rows, columns, width=4.2, height=max(4.2 * (y1 - y0) / (x1 - x0) + 0.9, 2.8), title=title)
    colors = colormaps["tab10"].colors  # type: ignore[attr-defined]  # tab10 is a ListedColormap
    for i, name in enumerate(names):
        ax = axes[i // columns][i % columns]
        _path_panel(ax, paths[name], f, window, target, target_label, colors[i])
        ax.set_title(name + (f"\n{notes[name]}" if notes and name in notes else ""), fontsize=9)
    if progress is not None:
        _progress_panel(axes[len(names) // columns][len(names) % columns], *progress, colors, references)
    for j in range(panels, rows * columns):
        axes[j // columns][j % columns].set_visible(False)
    figure.legend(
        handles=_path_legend(target_label),
        loc="upper left",
        bbox_to_anchor=(0.01, 1.0),
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    return save(figure, path)


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """The mean of each value and the up to ``window`` − 1 before it (so the curve starts at step 0)."""
    import numpy as np

    sums = np.cumsum([0.0, *values])
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    ends = np.arange(1, len(values) + 1)
    return list((sums[ends] - sums[ends - counts]) / counts)


def loss_per_step(
    losses: Mapping[str, Sequence[float]],
    path: PathT,
    title: str | None = None,
    window: int = 20,
    xlabel: str = "training step",
    ylabel: str = "training loss (log)",
) -> PathT:
    """The training loss at every step of several runs on one panel (``losses`` maps a run's label
    to its loss per step): each run's raw per-step loss light, its moving average over ``window``
    steps strong; log y."""
    figure, ((ax,),) = new_figure(1, 1, width=7.5, height=4.2, title=title)
    for label, values in losses.items():
        steps = range(len(values))
        (raw,) = ax.plot(steps, values, linewidth=0.6, alpha=0.25)
        ax.plot(steps, moving_average(values, window), color=raw.get_color(), linewidth=1.6, label=label)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, title=f"{window}-step moving average\n(raw per-step loss light)", title_fontsize=7)
    return save(figure, path)
