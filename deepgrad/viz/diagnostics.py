"""Figures of what the diagnostics measure: activation histograms (layers × settings), gradient
norms per layer over the steps, update-to-weight ratios over the steps.

Each function takes plain data (what ActivationStats and the monitors record, as dicts), saves a
PNG at ``path`` and returns it; matplotlib draws on a Figure of its own (the process's backend is
left alone).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..io import StrPath, atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The path a figure function was given, which it returns.
PathT = TypeVar("PathT", bound=StrPath)

HEALTHY_UPDATE_RATIO = 1e-3  # ‖Δw‖/‖w‖ per step that people aim for when tuning the learning rate


def new_figure(
    rows: int, columns: int, width: float = 3.0, height: float = 2.4, title: str | None = None
) -> tuple[Figure, list[list[Axes]]]:
    """(figure, axes grid as a list of rows) of ``rows`` × ``columns`` panels."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * columns + 0.8, height * rows + (0.7 if title else 0.3)))
    axes = figure.subplots(rows, columns, squeeze=False)
    if title:
        figure.suptitle(title)
    return figure, [list(row) for row in axes]


def label_panel(ax: Axes, title: str, xlabel: str, ylabel: str, log_x: bool = False, log_y: bool = False) -> None:
    """A panel's title, axis labels, log scales and grid."""
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")


def save(figure: Figure, path: PathT) -> PathT:
    """Lay the figure out and write it to ``path`` (see :func:`write_figure`); returns the path."""
    figure.tight_layout()
    write_figure(figure, path, dpi=100)
    return path


def write_figure(figure: Figure, path: StrPath, dpi: float = 100) -> None:
    """``figure.savefig(path)`` through a temporary file renamed into place, so that a crash or a kill
    while saving never leaves a half-written image at ``path``. The format is the path's suffix's
    (png, svg, pdf, ...), or matplotlib's default (png) without one; it is passed explicitly, so the
    temporary file's name does not decide it."""
    from matplotlib import rcParams

    image_format = os.path.splitext(os.fspath(path))[1][1:].lower() or rcParams["savefig.format"]
    atomic_write(path, lambda temporary: figure.savefig(temporary, format=image_format, dpi=dpi))


def layer_colors(count: int) -> list[tuple[float, float, float, float]]:
    """``count`` colours from the first layer (dark) to the last (light), so depth reads as colour."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.85 * i / max(count - 1, 1)) for i in range(count)]


def activation_histograms(
    grid: Mapping[str, Mapping[str, Mapping[str, Any]]], path: PathT, title: str | None = None
) -> PathT:
    """One histogram per (setting, layer): ``grid`` maps each setting (a row, e.g. "std 1") to
    {layer label: statistics with "edges" and "histogram", as LayerActivations.to_dict() gives}.
    Bars show the fraction of outputs in each bin; each panel notes the outputs' std."""
    rows = list(grid)
    columns = list(grid[rows[0]])
    figure, axes = new_figure(len(rows), len(columns), width=2.2, height=1.7, title=title)
    for r, setting in enumerate(rows):
        fractions = {
            layer: [n / (sum(s["histogram"]) or 1) for n in s["histogram"]] for layer, s in grid[setting].items()
        }
        top = max(max(f) for f in fractions.values()) * 1.1 or 1.0  # one scale per row: its layers compare
        for c, layer in enumerate(columns):
            stats, ax = grid[setting][layer], axes[r][c]
            edges = stats["edges"]
            widths = [b - a for a, b in zip(edges, edges[1:])]
            ax.bar(edges[:-1], fractions[layer], width=widths, align="edge", color="#3b6fc4")
            ax.set_xlim(edges[0], edges[-1])
            ax.set_ylim(0, top)
            ax.text(0.5, 0.95, f"std {stats['std']:.2g}", transform=ax.transAxes, ha="center", va="top", fontsize=8)
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(layer, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{setting}\nfraction of outputs", fontsize=8)
            if r == len(rows) - 1:
                ax.set_xlabel("activation value", fontsize=8)
    return save(figure, path)


def _per_layer_over_steps(
    panels: Mapping[str, Mapping[str, Any]], path: PathT, title: str | None, ylabel: str, reference: float | None = None
) -> PathT:
    names = list(panels)
    columns = min(len(names), 2)
    rows = -(-len(names) // columns)
    figure, axes = new_figure(rows, columns, width=4.6, height=3.0, title=title)
    for i, name in enumerate(names):
        ax = axes[i // columns][i % columns]
        steps, layers = panels[name]["steps"], panels[name]["layers"]
        for color, (layer, values) in zip(layer_colors(len(layers)), layers.items()):
            points = [(s, v) for s, v in zip(steps, values) if v is not None and v > 0]
            if points:
                ax.plot(*zip(*points), color=color, label=layer, linewidth=1.2)
        if reference is not None:
            ax.axhline(reference, color="#c0392b", linestyle="--", linewidth=1, label=f"{reference:g} (healthy)")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, ncol=2)
    for j in range(len(names), rows * columns):
        axes[j // columns][j % columns].set_visible(False)
    return save(figure, path)


def gradient_flow(panels: Mapping[str, Mapping[str, Any]], path: PathT, title: str | None = None) -> PathT:
    """Gradient norm per layer over the training steps, one panel per setting: ``panels`` maps a
    setting to {"steps": [...], "layers": {layer label: [norm per step]}}; log scale."""
    return _per_layer_over_steps(panels, path, title, "gradient norm ‖∂L/∂W‖ (log)")


def update_ratios(panels: Mapping[str, Mapping[str, Any]], path: PathT, title: str | None = None) -> PathT:
    """Update-to-weight ratio ‖Δw‖/‖w‖ per layer over the steps, one panel per setting (same data
    layout as :func:`gradient_flow`), with the healthy 1e-3 marked; log scale."""
    return _per_layer_over_steps(panels, path, title, "update / weight ‖Δw‖/‖w‖ (log)", reference=HEALTHY_UPDATE_RATIO)


def layer_norms(
    bars: Mapping[str, Sequence[float | None]],
    path: PathT,
    title: str | None = None,
    ylabel: str = "mean gradient norm (log)",
) -> PathT:
    """One group of bars per layer, one bar per setting: ``bars`` maps a setting to its values per
    layer (first to last); log scale, so decades of vanishing read at a glance."""
    figure, ((ax,),) = new_figure(1, 1, width=7.5, height=3.8, title=title)
    settings = list(bars)
    count = max(len(values) for values in bars.values())
    width = 0.8 / len(settings)
    for i, setting in enumerate(settings):
        values = bars[setting]
        ax.bar(
            [k + (i - (len(settings) - 1) / 2) * width for k in range(len(values))],
            [v if v else float("nan") for v in values],
            width=width,
            label=setting,
        )
    ax.set_xticks(range(count), [f"layer {k + 1}" for k in range(count)])
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_xlabel("Linear layer (input side → output side)")
    ax.grid(alpha=0.3, axis="y", which="both")
    ax.legend(fontsize=8)
    return save(figure, path)
