"""Figures of the regularization and architecture studies: a measured value against a setting that
spans decades or doublings (final accuracy against the initial weight scale, against the depth),
one curve per kind of net.

    against_setting({"plain": (depths, accuracies), "residual": (depths, accuracies)}, "depth.png",
                    xlabel="hidden layers (log scale)", ylabel="final training accuracy", ticks=depths)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .diagnostics import PathT, new_figure, save

#: A curve: its x values and its y values (None or non-finite: not measured, left out).
Curve = tuple[Sequence[float], Sequence[float | None]]


def against_setting(
    curves: Mapping[str, Curve],
    path: PathT,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    ticks: Sequence[float] | None = None,
    references: Mapping[str, float] | None = None,
    ylim: tuple[float, float] | None = None,
    points: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    points_label: str = "set apart",
) -> PathT:
    """One panel: each of ``curves`` ({label: (xs, ys)}) is a measure against a setting on a log x
    axis, a marker at every measured point. ``ticks`` labels exactly those x values (the depths 4,
    8, 16, 32) instead of powers of ten; ``references`` ({label: y}) are dashed horizontal lines
    (e.g. chance level); ``points`` ({curve label: (xs, ys)}) are a curve's points set apart from
    it (runs that diverged), drawn as crosses in its colour and named "label: ``points_label``" in
    the legend; ``ylim`` (low, high) fixes the y range. Non-finite points (and None) are left out."""
    from matplotlib.ticker import NullFormatter, NullLocator

    figure, ((ax,),) = new_figure(1, 1, width=6.6, height=4.0, title=title)
    colors = {label: f"C{k}" for k, label in enumerate(curves)}
    for label, (xs, ys) in curves.items():
        measured = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
        if measured:
            ax.plot(*zip(*measured), color=colors[label], marker="o", markersize=5, linewidth=1.6, label=label)
    for label, (xs, ys) in (points or {}).items():
        if xs:
            ax.plot(
                xs,
                ys,
                color=colors[label],
                linestyle="none",
                marker="X",
                markersize=9,
                markeredgecolor="black",
                label=f"{label}: {points_label}",
            )
    for label, y in (references or {}).items():
        ax.axhline(y, color="#777777", linestyle="--", linewidth=1, label=label)
    ax.set_xscale("log")
    if ticks is not None:
        ax.set_xticks(list(ticks), [f"{tick:g}" for tick in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    return save(figure, path)
