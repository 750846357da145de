"""Figures of the normalization studies: an error surface's contour lines with a descent path over
them, one panel per surface (raw against normalized inputs).

    surface_paths({"raw": {"f": f, "path": [[0, 0], ...], "target": (1, 0.1), "start": (0, 0),
                           "xlabel": "w1", "ylabel": "w2", "equal": False}}, "surfaces.png")

Each function saves a PNG at ``path`` and returns it; matplotlib draws on a Figure of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .diagnostics import PathT, new_figure, save, write_figure
from .optimizers import START, TARGET, first_step_outside

MARGIN = 0.2  # of the window's span, on each side
REACH = 2.0  # path points further than this many start-to-target spans are left out of the view


def window_around(
    start: Sequence[float], target: Sequence[float], points: Sequence[Sequence[float]], equal: bool
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The window ((x0, x1), (y0, y1)) holding ``start``, ``target`` and the ``points`` of a path that
    stay within REACH start-to-target distances of them, with a margin; ``equal``: a square one (the
    same span on both axes, so that an equal-aspect panel is square)."""
    ranges = []
    for axis in range(2):
        low, high = sorted((start[axis], target[axis]))
        span = high - low or 1.0
        near = [p[axis] for p in points if low - REACH * span <= p[axis] <= high + REACH * span]
        ranges.append((min([low, *near]), max([high, *near])))
    spans = [high - low for low, high in ranges]
    if equal:
        spans = [max(spans)] * 2
    centres = [(low + high) / 2 for low, high in ranges]
    (x0, x1), (y0, y1) = [(c - (0.5 + MARGIN) * span, c + (0.5 + MARGIN) * span) for c, span in zip(centres, spans)]
    return (x0, x1), (y0, y1)


def surface_paths(panels: Mapping[str, Mapping[str, Any]], path: PathT, title: str | None = None) -> PathT:
    """One panel per surface: ``{"f": f(x, y) on NumPy grids, "path": [[x, y] per step], "target": its
    minimum, "start", "xlabel", "ylabel", "equal": equal aspect or not, "note": text under the
    title}``. Contour lines of f − min f are log-spaced over four decades; the path has a dot per
    step. A panel whose axes are not to scale says by how much its y axis is stretched; a path that
    leaves the view says where."""
    import numpy as np

    figure, (axes,) = new_figure(1, len(panels), width=4.6, height=4.4, title=title)
    for k, (ax, (name, panel)) in enumerate(zip(axes, panels.items())):
        window = window_around(panel["start"], panel["target"], panel["path"], panel.get("equal", False))
        (x0, x1), (y0, y1) = window
        grid_x, grid_y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
        values = panel["f"](grid_x, grid_y)
        excess = values - values.min()
        top = float(excess.max())
        levels = np.geomspace(top * 1e-4, top, 17)[:-1]
        lines = ax.contour(grid_x, grid_y, excess, levels=levels, colors="#a0a0a0", linewidths=0.7)
        ax.clabel(lines, levels[::4], fontsize=6, fmt=lambda v: f"+{v:.2g}")
        points = panel["path"]
        color = f"C{k}"
        ax.plot(*zip(*points), color=color, linewidth=1.0, marker="o", markersize=2.2)
        ax.plot(*points[0], **START)
        ax.plot(*panel["target"], **TARGET)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        notes = [panel["note"]] if panel.get("note") else []
        left = first_step_outside(points, window)
        if left is not None:
            notes.append(f"leaves the view at step {left}")
        if panel.get("equal", False):
            ax.set_aspect("equal")
        else:
            stretch = (x1 - x0) / (y1 - y0)
            ax.text(
                0.02,
                0.02,
                f"not to scale: the {panel['ylabel']} axis is stretched {stretch:.3g}×",
                transform=ax.transAxes,
                fontsize=7.5,
                color="#444444",
                bbox=dict(facecolor="white", alpha=0.85, linewidth=0),
            )
        ax.set_title(name + "".join(f"\n{note}" for note in notes), fontsize=9)
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel(panel["ylabel"])
    from matplotlib.lines import Line2D

    figure.legend(
        handles=[
            Line2D([], [], color="#555555", linewidth=1, marker="o", markersize=2, label="descent (a dot per step)"),
            Line2D([], [], label="start", **START),
            Line2D([], [], label="minimum", **TARGET),
            Line2D([], [], color="#a0a0a0", linewidth=0.7, label="loss − minimum (contours, log-spaced)"),
        ],
        loc="lower center",
        ncol=4,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    write_figure(figure, path)
    return path


MARKERS = ("o", "x", "+", "s", "^")


def sample_outputs(
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    path: PathT,
    title: str | None = None,
    notes: Mapping[str, str] | None = None,
) -> PathT:
    """Panels side by side sharing their y axis, each one sample's normalized features under several
    conditions (``{panel: {condition: [value per feature]}}``), a marker per condition against the
    feature's index, so that where they coincide the markers overlap. ``notes`` ({panel: text}) go
    under a panel's title."""
    figure, (axes,) = new_figure(1, len(panels), width=5.0, height=3.6, title=title)
    for ax in axes[1:]:
        ax.sharey(axes[0])
    for ax, (name, conditions) in zip(axes, panels.items()):
        for k, (label, values) in enumerate(conditions.items()):
            ax.plot(
                range(len(values)),
                values,
                linestyle="none",
                marker=MARKERS[k % len(MARKERS)],
                markersize=7 if MARKERS[k % len(MARKERS)] != "o" else 8,
                markerfacecolor="none",
                color=f"C{k}",
                label=label,
            )
        ax.axhline(0, color="#999999", linewidth=0.8)
        note = notes.get(name) if notes else None
        ax.set_title(name + (f"\n{note}" if note else ""), fontsize=9)
        ax.set_xlabel("feature")
        ax.set_ylabel("normalized value")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save(figure, path)
