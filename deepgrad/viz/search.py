"""The figure of a hyperparameter search: the score of every trial against each parameter, one
colour per round. A numeric parameter gets a scatter panel (log x for log-scale ones) with each
round's range shaded, so the narrowing reads at a glance; a categorical one (a choice) a box of the
scores per option with the trials as jittered points over it. Failed trials are marked ✕ at the
bottom of each panel (they have no score), the best trial with a star.

    search_scores(study, "search.png")
"""

from __future__ import annotations

import json
import math
from typing import Any

from .diagnostics import PathT, new_figure, save

COLUMNS = 3  # panels per row
FAILED_COLOR = "#c0392b"
JITTER = 0.18  # half the width over which a categorical panel spreads its points


def parameter_kinds(study: Any) -> dict[str, tuple[str, Any]]:
    """{name: ("numeric", log) or ("choice", options)} of every parameter of ``study``'s trials, in
    the order of its first round's space (``study.spaces``, when set) and then as they appear in
    the trials. Without a space, a parameter whose values are all numbers is numeric (on a log scale
    when they are positive and span a factor of ten or more), any other a choice among its values
    in the order they appear."""
    spaces = getattr(study, "spaces", None) or [{}]
    trials = sorted(study.trials.values(), key=lambda t: t.number)
    names = list(dict.fromkeys([*spaces[0], *(name for t in trials for name in t.params)]))
    kinds: dict[str, tuple[str, Any]] = {}
    for name in names:
        space = spaces[0].get(name)
        values = [t.params[name] for t in trials if name in t.params]
        if space is not None and hasattr(space, "options"):
            kinds[name] = ("choice", list(space.options))
        elif space is not None and hasattr(space, "lo"):
            kinds[name] = ("numeric", bool(space.log))
        elif values and all(_is_number(v) for v in values):
            positive = all(v > 0 for v in values)
            kinds[name] = ("numeric", positive and max(values) / min(values) >= 10)
        else:
            options: list[Any] = []
            for value in values:
                if value not in options:
                    options.append(value)
            kinds[name] = ("choice", options)
    return kinds


def strip_offsets(labels: list[str], width: float = JITTER) -> list[float]:
    """The horizontal offset of each point of a strip: the points of one label (category) spread
    evenly over [-width, width] in their order, so that equal scores do not hide one another."""
    counts = {label: labels.count(label) for label in set(labels)}
    seen: dict[str, int] = {}
    offsets = []
    for label in labels:
        k, n = seen.get(label, 0), counts[label]
        seen[label] = k + 1
        offsets.append(0.0 if n == 1 else width * (2 * k / (n - 1) - 1))
    return offsets


def option_label(value: Any) -> str:
    """A choice's option as text: strings as they are, other values as JSON ([64, 32], true)."""
    return value if isinstance(value, str) else json.dumps(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def search_scores(study: Any, path: PathT, score_label: str = "validation accuracy", title: str | None = None) -> PathT:
    """Save the figure of ``study`` (a deepgrad.search.Study; ``study.spaces``, when set, holds each
    round's ranges) to ``path``: one panel per parameter — a scatter of score against a numeric
    parameter (log x for log-scale ones, each round's range shaded), a box and strip of the scores
    per option of a categorical one. Pruned trials are hollow, failed ones ✕ at the bottom of each
    panel, the best trial a star."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    spaces = getattr(study, "spaces", None) or [{}]
    kinds = parameter_kinds(study)
    trials = sorted(study.trials.values(), key=lambda t: t.number)
    rounds = max([len(spaces), *(t.round + 1 for t in trials)])
    columns = max(1, min(len(kinds), COLUMNS))
    rows = max(1, math.ceil(len(kinds) / columns))
    figure, grid = new_figure(rows, columns, width=4.6, height=3.4, title=title)
    panels = [ax for row in grid for ax in row]
    colors = colormaps["viridis"]
    best = study.best

    def color(round_: int) -> Any:
        return colors(0.85 * round_ / max(rounds - 1, 1))

    for ax in panels[len(kinds) :]:
        ax.set_visible(False)
    if not kinds:
        panels[0].set_visible(True)
        panels[0].text(0.5, 0.5, "no trial has run yet", ha="center", va="center", transform=panels[0].transAxes)
        panels[0].set_axis_off()
        return save(figure, path)
    for index, (ax, (name, (kind, detail))) in enumerate(zip(panels, kinds.items())):
        choices = detail if kind == "choice" else []
        scored = [t for t in trials if t.scored]
        offsets = dict(
            zip((t.number for t in scored), strip_offsets([option_label(t.params.get(name)) for t in scored]))
        )

        def position(value: Any, choices: list[Any] = choices, kind: str = kind) -> float | None:
            if kind == "numeric":
                return float(value) if _is_number(value) else None
            return float(choices.index(value)) if value in choices else None

        if kind == "numeric":
            for r, space in enumerate(spaces):
                if name in space and hasattr(space[name], "lo"):
                    ax.axvspan(space[name].lo, space[name].hi, color=color(r), alpha=0.08)
        else:
            per_option = [[t.score for t in trials if t.scored and t.params.get(name) == option] for option in choices]
            shown = [i for i, scores in enumerate(per_option) if scores]
            if shown:
                ax.boxplot(
                    [per_option[i] for i in shown],
                    positions=shown,
                    widths=0.5,
                    showfliers=False,
                    patch_artist=True,
                    boxprops={"facecolor": "#eeeeee", "edgecolor": "#888888"},
                    medianprops={"color": "#444444"},
                    whiskerprops={"color": "#888888"},
                    capprops={"color": "#888888"},
                )
        for r in range(rounds):
            for status, filled in (("finished", True), ("pruned", False)):
                chosen = [t for t in trials if t.round == r and t.status == status and t.scored]
                placed = [(position(t.params.get(name)), t.score, offsets.get(t.number, 0.0)) for t in chosen]
                points = [(x + (offset if kind == "choice" else 0.0), y) for x, y, offset in placed if x is not None]
                if not points:
                    continue
                xs: list[float] = [x for x, _ in points]
                ax.scatter(
                    xs,
                    [y for _, y in points],
                    s=24,
                    color=color(r) if filled else "none",
                    edgecolors=color(r),
                    zorder=3,
                )
        failed_at = [position(t.params.get(name)) for t in trials if t.status == "failed"]
        failed: list[float] = [x for x in failed_at if x is not None]
        if failed:
            ax.scatter(
                failed,
                [0.03] * len(failed),
                marker="x",
                s=40,
                color=FAILED_COLOR,
                transform=blended_transform_factory(ax.transData, ax.transAxes),
                clip_on=False,
                zorder=4,
            )
        best_at = position(best.params.get(name)) if best is not None else None
        if best_at is not None and best is not None and kind == "choice":
            best_at += offsets.get(best.number, 0.0)
        if best is not None and best_at is not None:
            ax.scatter(
                [best_at],
                [best.score],
                marker="*",
                s=220,
                color="#f5c518",
                edgecolors="black",
                linewidths=0.8,
                zorder=5,
            )
        if kind == "numeric":
            log = bool(detail)
            if log:
                ax.set_xscale("log")
            ax.set_xlabel(f"{name} ({'log scale' if log else 'linear'})")
        else:
            ax.set_xticks(range(len(choices)), [option_label(option) for option in choices])
            ax.set_xlim(-0.6, len(choices) - 0.4)
            ax.set_xlabel(f"{name} (choice)")
        if index % columns == 0:
            ax.set_ylabel(score_label)
        ax.grid(alpha=0.3, which="both")
    handles = [
        Line2D([], [], linestyle="none", marker="o", color=color(r), label=f"round {r + 1}") for r in range(rounds)
    ]
    if any(t.status == "pruned" for t in trials):
        handles.append(
            Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", color="#555555", label="stopped early")
        )
    if any(t.status == "failed" for t in trials):
        handles.append(Line2D([], [], linestyle="none", marker="x", color=FAILED_COLOR, label="failed (no score)"))
    if best is not None:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="*",
                markersize=12,
                markerfacecolor="#f5c518",
                markeredgecolor="black",
                label=f"best: trial {best.number + 1} ({best.score:.4g})",
            )
        )
    if any(kind == "numeric" for kind, _ in kinds.values()) and len(spaces) > 1:
        handles.append(Line2D([], [], linewidth=6, alpha=0.25, color=color(0), label="shaded: each round's range"))
    panels[0].legend(handles=handles, fontsize=7, loc="best")
    return save(figure, path)
