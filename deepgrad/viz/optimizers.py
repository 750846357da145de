"""Figures of the optimizer studies: each optimizer's path over the contour lines of a function of
two variables, and the training loss of several optimizers step by step.

    optimizer_paths({"SGD": [[-7, 2], ...], "Adam": [...]}, lambda x, y: x**2 / 20 + y**2,
                    "bowl.png", window=((-8, 3), (-3, 3)), target=(0, 0))
    loss_per_step({"SGD": [2.3, 2.2, ...], "Adam": [...]}, "loss.png")
    step_laws({"Momentum": {"xlabel": "step", "ylabel": "step length (log)", "log_y": True,
                            "curves": {"β 0.9": (steps, lengths)}, "formulas": {"β 0.9": ("α‖g‖/(1−β)", steps, v)}}},
              "laws.png")
    training_race({"SGD": (steps, per_step_per_seed), ...}, {"SGD": [420, 380, 460], ...}, "race.png",
                  target=0.03, budget=1000)

Each function saves a PNG at ``path`` and returns it; matplotlib draws on a Figure of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from .diagnostics import PathT, label_panel, new_figure, save

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
    ax.set_title(f"all {len(curves)}, step by step", fontsize=10)
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


def step_laws(panels: Mapping[str, Mapping[str, Any]], path: PathT, title: str | None = None) -> PathT:
    """Panels side by side, each a measured quantity against the step next to the formula the notes
    give for it. A panel is ``{"xlabel", "ylabel", "curves": {label: (steps, values)}}`` with,
    optionally, ``log_x``, ``log_y`` and ``formulas`` ({curve label: (formula label, steps, values)}):
    each formula is drawn thin and dashed in its curve's colour on top of the measured curve (broad,
    pale, a dot per value), so a reader sees where the two agree and where they part."""
    figure, (axes,) = new_figure(1, len(panels), width=4.6, height=3.8, title=title)
    for ax, (name, panel) in zip(axes, panels.items()):
        log_x, log_y = panel.get("log_x", False), panel.get("log_y", False)
        for k, (label, (steps, values)) in enumerate(panel["curves"].items()):
            points = [(s, v) for s, v in zip(steps, values) if math.isfinite(v) and (v > 0 or not log_y)]
            ax.plot(*zip(*points), color=f"C{k}", linewidth=3, alpha=0.45, marker="o", markersize=3, label=label)
            formula = panel.get("formulas", {}).get(label)
            if formula is not None:  # on top, thin: where it agrees, the measured curve shows around it
                text, xs, ys = formula
                ax.plot(xs, ys, color=f"C{k}", linestyle="--", linewidth=1.3, zorder=3, label=text)
        label_panel(ax, name, panel["xlabel"], panel["ylabel"], log_x, log_y)
        ax.legend(fontsize=7)
    return save(figure, path)


def training_race(
    curves: Mapping[str, tuple[Sequence[float], Sequence[Sequence[float]]]],
    reached: Mapping[str, Sequence[float]],
    path: PathT,
    target: float,
    budget: int,
    title: str | None = None,
) -> PathT:
    """Several optimizers training the same network, over seeds. Left: each one's training loss
    against the step (``curves``: {label: (steps, [[value per seed] per step])}), the mean over the
    seeds as a line and their range as a band, log y, the ``target`` loss dashed. Right: the steps
    each took to reach the target (``reached``: {label: [steps per seed]}, infinite where a seed
    never reached it within ``budget`` steps): the mean as a bar (of the seeds that reached it),
    their range as an error bar, each seed a dot, and "k/n not reached" where seeds did not."""
    figure, ((left, right),) = new_figure(1, 2, width=5.6, height=4.0, title=title)
    for k, (label, (steps, per_step)) in enumerate(curves.items()):
        rows = [[v for v in values if math.isfinite(v) and v > 0] for values in per_step]
        drawn = [(step, row) for step, row in zip(steps, rows) if row]
        xs = [step for step, _ in drawn]
        left.fill_between(xs, [min(r) for _, r in drawn], [max(r) for _, r in drawn], color=f"C{k}", alpha=0.18)
        left.plot(xs, [math.fsum(r) / len(r) for _, r in drawn], color=f"C{k}", linewidth=1.6, label=label)
    left.axhline(target, color="#555555", linestyle="--", linewidth=1.1, label=f"target {target:g}")
    label_panel(left, "loss on the whole training set", "training step", "training loss (log)", log_y=True)
    left.legend(fontsize=8, title="mean over the seeds, band: their range", title_fontsize=7)
    for k, values in enumerate(reached.values()):
        shown = [v for v in values if math.isfinite(v)]
        missing = len(values) - len(shown)
        if shown:
            mean = math.fsum(shown) / len(shown)
            right.bar(
                k, mean, color=f"C{k}", width=0.6, alpha=0.8, yerr=[[mean - min(shown)], [max(shown) - mean]], capsize=4
            )
            right.plot([k] * len(shown), shown, linestyle="none", marker="o", color="black", markersize=3)
            right.annotate(f"{mean:.0f}", (k, max(shown)), xytext=(0, 4), textcoords="offset points", ha="center")
        if missing:
            right.text(
                k,
                0.5,
                f"{missing}/{len(values)}\nnot reached\nin {budget}\nsteps",
                transform=right.get_xaxis_transform(),
                ha="center",
                fontsize=7,
                color=f"C{k}",
            )
    right.set_xticks(range(len(reached)), list(reached), rotation=20, ha="right")
    label_panel(right, f"steps to a training loss of {target:g}", "", "optimizer steps")
    right.set_ylim(0, budget)
    return save(figure, path)
