"""Figures of the numerical studies (gradient checking, softmax, losses, the hyperparameter search):
measures against a setting over seeds with guide lines and marked steps, and per-round scatter panels
with the range each round sampled from.

    seed_lines({"error against h": {"xlabel": "step h (log)", "ylabel": "relative error (log)",
                                    "log_x": True, "log_y": True,
                                    "curves": {"central": (hs, per_h_per_seed)},
                                    "guides": {"∝ h²": (hs, [h * h for h in hs])},
                                    "vlines": {"the notes' ε = 1e-4": 1e-4}}}, "error.png")

Each curve is the mean over the seeds, its band their range and every seed a dot; where a seed's
value is not finite the panel says so at that x, in the words the caller gives (``missing``:
"diverged", "never reached 50 %", ...), so no point silently disappears.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .diagnostics import PathT, label_panel, new_figure, save
from .seeds import seed_curve


def seed_lines(
    panels: Mapping[str, Mapping[str, Any]],
    path: PathT,
    title: str | None = None,
    sharey: bool = False,
    width: float = 5.2,
    height: float = 3.9,
) -> PathT:
    """Panels side by side, each a measure against a setting: ``{"xlabel", "ylabel", "curves": {label:
    (xs, [[value per seed] per x])}}`` and optionally ``log_x``, ``log_y``, ``symlog_x`` (a linear
    x axis near 0 and logarithmic beyond ±``symlog_x``'s value), ``guides`` ({label: (xs, ys)}: thin
    dotted lines, e.g. a slope), ``vlines`` ({label: x}: dashed vertical lines), ``hlines`` ({label:
    y}), ``marks`` ({text: (x, y)}: annotated points), ``missing`` (what a non-finite value means,
    default "not finite"), ``styles`` ({label: matplotlib line style} for curves), ``ticks`` (x
    values to label as they are), ``legend`` (its matplotlib location) and ``note`` (a line of text
    at ``note_at``, in axes fractions; default the lower left corner)."""
    figure, (axes,) = new_figure(1, len(panels), width=width, height=height, title=title)
    if sharey and len(axes) > 1:
        for ax in axes[1:]:
            ax.sharey(axes[0])
    for ax, (name, panel) in zip(axes, panels.items()):
        log_x, log_y = panel.get("log_x", False), panel.get("log_y", False)
        missing = panel.get("missing", "not finite")
        styles = panel.get("styles", {})
        for k, (label, (xs, per_seed)) in enumerate(panel["curves"].items()):
            seed_curve(ax, xs, per_seed, label, f"C{k}", log_y, missing, styles.get(label, "-"), k, mean_suffix="")
        for k, (label, (xs, ys)) in enumerate(panel.get("guides", {}).items()):
            ax.plot(xs, ys, color="#777777", linestyle=(0, (1, 1 + k)), linewidth=1.2, label=label)
        for k, (label, x) in enumerate(panel.get("vlines", {}).items()):
            ax.axvline(x, color=["#333333", "#aa3333", "#3333aa"][k % 3], linestyle="--", linewidth=1.1, label=label)
        for label, y in panel.get("hlines", {}).items():
            ax.axhline(y, color="#555555", linestyle="-.", linewidth=1.0, label=label)
        for text, (x, y) in panel.get("marks", {}).items():
            ax.annotate(
                text,
                (x, y),
                xytext=(8, -14),
                textcoords="offset points",
                fontsize=8,
                arrowprops={"arrowstyle": "-", "color": "#555555"},
            )
        label_panel(ax, name, panel["xlabel"], panel["ylabel"], log_x, log_y)
        if panel.get("ticks") is not None:
            ax.set_xticks(list(panel["ticks"]), [f"{tick:g}" for tick in panel["ticks"]])
        if panel.get("symlog_x"):
            ax.set_xscale("symlog", linthresh=panel["symlog_x"])
        if panel.get("note"):
            x, y = panel.get("note_at", (0.02, 0.02))
            ax.text(x, y, panel["note"], transform=ax.transAxes, fontsize=8, va="bottom", color="#333333")
        ax.legend(fontsize=7.5, loc=panel.get("legend", "best"))
    return save(figure, path)


def round_panels(
    rounds: Sequence[Mapping[str, Any]],
    path: PathT,
    xlabel: str,
    ylabel: str,
    reference: Mapping[str, Any] | None = None,
    title: str | None = None,
    log_x: bool = True,
) -> PathT:
    """One panel per round of a narrowing search, sharing both axes: ``rounds`` is a list of
    ``{"points": [(x, score)], "range": (lo, hi), "next": (lo, hi) or None, "best": (x, score)}``
    (its sampled trials, the range they were drawn from shaded, the range the next round narrows
    to outlined, the best trial so far starred); ``reference`` ({"label", "xs", "ys", "best": x}),
    when given, is drawn in every panel as a grey line (e.g. a fine grid's scores) with its best x
    dashed. Scores that are not finite are drawn at the bottom edge as crosses ("failed")."""
    figure, (axes,) = new_figure(1, len(rounds), width=4.0, height=3.6, title=title)
    for ax in axes[1:]:
        ax.sharey(axes[0])
        ax.sharex(axes[0])
    for r, (ax, entry) in enumerate(zip(axes, rounds)):
        lo, hi = entry["range"]
        ax.axvspan(lo, hi, color="C0", alpha=0.10, label="range sampled")
        if entry.get("next") is not None:
            nlo, nhi = entry["next"]
            ax.axvspan(
                nlo,
                nhi,
                facecolor="none",
                edgecolor="C1",
                linewidth=1.4,
                hatch="//",
                alpha=0.6,
                label="narrowed range for the next round",
            )
        if reference is not None:
            ax.plot(reference["xs"], reference["ys"], color="#888888", linewidth=1.1, label=reference["label"])
            ax.axvline(reference["best"], color="#555555", linestyle="--", linewidth=1.0, label="its best")
        finite = [(x, s) for x, s in entry["points"] if s is not None and math.isfinite(s)]
        failed = [x for x, s in entry["points"] if s is None or not math.isfinite(s)]
        if finite:
            ax.scatter(
                [x for x, _ in finite],
                [s for _, s in finite],
                s=24,
                color="C0",
                zorder=3,
                label=f"round {r + 1}'s trials",
            )
        if failed:
            ax.plot(
                failed,
                [0.0] * len(failed),
                linestyle="none",
                marker="x",
                color="C3",
                transform=ax.get_xaxis_transform(),
                clip_on=False,
                label="failed",
            )
        if entry.get("best") is not None:
            bx, bs = entry["best"]
            ax.plot(
                [bx],
                [bs],
                marker="*",
                markersize=13,
                color="C3",
                zorder=4,
                linestyle="none",
                label="best so far",
            )
            ax.annotate(f"{bs:.3g}", (bx, bs), xytext=(7, 4), textcoords="offset points", fontsize=8, color="C3")
        label_panel(ax, f"round {r + 1}", xlabel, ylabel if r == 0 else "", log_x=log_x)
        if r == 0:  # the panels share their legend
            ax.legend(fontsize=7, loc="upper left")
    return save(figure, path)
