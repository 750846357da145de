"""How a study shows in a notebook (``Study._repr_html_``): how many trials ended how, the best
trials as a table (rank, trial, round, score, status, each searched value) and the figure of
every trial's score against each parameter (:func:`deepgrad.viz.search.search_scores`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..markup import Markup, drawn_image, element, join, table
from .study import STATUSES

if TYPE_CHECKING:
    from .study import Study

SHOWN = 5  # best trials in the table


def study_html(study: Study, shown: int = SHOWN) -> Markup:
    counts = {status: sum(t.status == status for t in study.trials.values()) for status in STATUSES}
    ended = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    better = "higher" if study.mode == "max" else "lower"
    parts = [element("p", f"Study: {len(study)} trials ({ended or 'none run yet'}); {better} scores are better")]
    ranked = study.ranked()
    if ranked:
        names = list(dict.fromkeys(name for trial in ranked for name in trial.params))
        rows = [
            [rank, trial.trial, trial.round + 1, f"{trial.score:.4g}", trial.status]
            + [_value(trial.params.get(name)) for name in names]
            for rank, trial in enumerate(ranked[:shown], 1)
        ]
        columns = ["rank", "trial", "round", "score", "status", *names]
        parts.append(table(columns, rows, caption=f"the best {min(shown, len(ranked))} of {len(ranked)} scored"))
        parts.append(_figure(study))
    return join(parts)


def _figure(study: Study) -> Markup:
    try:
        from ..viz.search import search_scores

        return drawn_image(lambda path: search_scores(study, path), "the score of every trial against each parameter")
    except ImportError:
        return element("p", "(no figure: matplotlib is not installed; pip install 'deepgrad[viz]')")


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "–" if value is None else str(value)
