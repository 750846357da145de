"""The figure of a hyperparameter search: the score of every trial against each numeric parameter,
one colour per round, and each round's range shaded, so the narrowing reads at a glance."""

from __future__ import annotations

from typing import Any

from .diagnostics import PathT, new_figure, save


def search_scores(study: Any, path: PathT, score_label: str = "validation accuracy", title: str | None = None) -> PathT:
    """Save the figure of ``study`` (a deepgrad.search.Study whose ``spaces`` holds each round's
    ranges) to ``path``: one panel per numeric parameter, log x for log-scale ones; failed trials are
    left out, pruned ones hollow."""
    from matplotlib import colormaps

    spaces = getattr(study, "spaces", None) or [{}]
    numeric = [name for name, space in spaces[0].items() if hasattr(space, "lo")]
    figure, axes = new_figure(1, max(len(numeric), 1), width=4.6, height=3.4, title=title)
    colors = colormaps["viridis"]
    rounds = len(spaces)
    for ax, name in zip(axes[0], numeric):
        for r, space in enumerate(spaces):
            color = colors(0.85 * r / max(rounds - 1, 1))
            ax.axvspan(space[name].lo, space[name].hi, color=color, alpha=0.08)
            for status, filled in (("finished", True), ("pruned", False)):
                trials = [t for t in study.trials.values() if t.round == r and t.status == status and t.scored]
                if trials:
                    ax.scatter(
                        [t.params[name] for t in trials],
                        [t.score for t in trials],
                        s=22,
                        color=color if filled else "none",
                        edgecolors=color,
                        label=f"round {r + 1}" + (" (stopped early)" if not filled else ""),
                    )
        if spaces[0][name].log:
            ax.set_xscale("log")
        ax.set_xlabel(f"{name} ({'log scale' if spaces[0][name].log else 'linear'}); shaded: each round's range")
        ax.set_ylabel(score_label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return save(figure, path)
