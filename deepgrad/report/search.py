"""A search in the run report: the trials of a ``deepgrad search --out`` directory (its
``study.jsonl``, and ``search.json`` for the space it searched) as a sortable table — trial (from 1),
round, params, score, status, error — and the search view: the score against each parameter (a
scatter for a numeric one, a box and strip per option for a categorical one; failed trials marked at
the bottom with their error on hover, the best trial a star) and a parallel-coordinates view of the
parameters to the score.

    search = read_search("runs/search/digits-mlp")
    search_section(search, 1, charts)       # charts: build.Charts, which numbers the figures
"""

import json
import math
import os
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..search.files import KINDS
from ..search.spaces import Choice
from ..search.study import Study
from ..viz.search import option_label, parameter_kinds, strip_offsets
from . import page
from .charts import AXIS, FONT, Chart, base_layout, require_plotly, text, value_text
from .tables import MISSING

STUDY_FILE, RECORD_FILE = "study.jsonl", "search.json"
ERROR_SHOWN = 160  # characters of a trial's error in the table (all of it on hover)
ROUND_COLORS = ["#440154", "#31688e", "#35b779", "#90d743", "#c8b000", "#e8590c"]
FAILED_COLOR = "#c0392b"
BEST_COLOR = "#f5c518"


@dataclass
class SearchRecord:
    """What a search directory holds: its ``study`` (a deepgrad.search.Study, its ``spaces`` set to
    the space search.json records), ``record`` (search.json, None without it), ``notes``."""

    directory: str
    name: str
    study: Study
    record: dict | None = None
    notes: list = field(default_factory=list)

    @property
    def metric(self):
        metric = (self.record or {}).get("metric", "val_accuracy")
        return str(metric).replace("_", " ")


def read_search(directory, name=None):
    """The :class:`SearchRecord` of ``directory``; ConfigError naming a file in it that is not what a
    search writes. Reading never changes the study (a torn last line is left for the search)."""
    directory = os.fspath(directory)
    record = None
    path = os.path.join(directory, RECORD_FILE)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError, RecursionError) as error:
            raise ConfigError(f"report: {path} is not a deepgrad search record ({str(error)[:200]})") from None
        if not isinstance(record, dict):
            raise ConfigError(f"report: {path} holds a JSON {type(record).__name__}; expected a search record")
    study_path = os.path.join(directory, STUDY_FILE)
    study = Study(study_path if os.path.isfile(study_path) else None, mode=_mode(record))
    study.spaces = [space_of(record)] if record else []
    notes = [note.replace("; that trial is run again", "; the search runs that trial again") for note in study.notes]
    if not len(study):
        notes.append(f"no trial has finished yet ({STUDY_FILE} holds none)")
    return SearchRecord(directory, name or os.path.basename(os.path.normpath(directory)), study, record, notes)


def _mode(record):
    mode = (record or {}).get("mode", "max")
    return mode if mode in ("max", "min") else "max"


def space_of(record):
    """The space a search record (search.json) searched: {name: Dimension}; an option whose range
    cannot be read is left out (the trials' values still show it)."""
    space = {}
    tables = record.get("space") if isinstance(record.get("space"), dict) else {}
    for name, table in tables.items():
        if not isinstance(table, dict) or len(table) != 1:
            continue
        kind, value = next(iter(table.items()))
        try:
            space[name] = Choice(value) if kind == "choice" else KINDS[kind](*value)
        except (KeyError, TypeError, ValueError, ConfigError):
            continue
    return space


def search_section(search, number, charts):
    """The search's section of the report: what it is, its trials, and its view."""
    study = search.study
    trials = sorted(study.trials.values(), key=lambda t: t.number)
    best = study.best
    counts = {status: sum(t.status == status for t in trials) for status in ("finished", "pruned", "failed")}
    summary = f"{len(trials)} trials: " + ", ".join(
        f"{count} {'stopped early' if status == 'pruned' else status}" for status, count in counts.items() if count
    )
    if best is not None:
        summary += f"; best: trial {best.trial} ({search.metric} {best.score:.4g})"
    parts = [
        page.heading(2, f"Search: {search.name}", anchor=f"search-{number}"),
        page.paragraph("directory: ", page.element("code", search.directory)),
        page.paragraph(summary),
    ]
    parts += [page.paragraph(note, class_="note") for note in search.notes]
    if trials:
        parts += [page.heading(3, "Trials"), trials_table(search)]
        require_plotly()
        parts += [page.heading(3, "Search view"), charts.grid(search_charts(search))]
    return page.element("section", page.join(parts))


def trials_table(search):
    """One row per trial, sortable: trial (from 1), round, each parameter, score, status, seconds,
    error; the best trial's row marked ★."""
    study = search.study
    trials = sorted(study.trials.values(), key=lambda t: t.number)
    kinds = parameter_kinds(study)
    best = study.best
    rows = []
    for trial in trials:
        is_best = best is not None and trial.number == best.number
        row = [
            page.Cell(f"{trial.trial}" + (" ★" if is_best else ""), kind="best" if is_best else None, sort=trial.trial),
            page.Cell(trial.round + 1, sort=trial.round + 1),
        ]
        for name, (kind, _) in kinds.items():
            value = trial.params.get(name)
            if kind == "numeric" and isinstance(value, (int, float)):
                row.append(page.Cell(f"{value:.4g}", sort=value))
            else:
                row.append(page.Cell(MISSING if value is None else option_label(value), kind="wrap"))
        score = trial.score if trial.scored else None
        row.append(
            page.Cell(
                MISSING if score is None else f"{score:.4g}",
                kind="best" if is_best else None,
                sort="" if score is None else score,
            )
        )
        status = "stopped early" if trial.status == "pruned" else str(trial.status)
        row.append(
            page.Cell(status, kind=f"state state-{'failed' if trial.status == 'failed' else 'finished'}", sort=status)
        )
        row.append(
            page.Cell(
                MISSING if trial.seconds is None else f"{trial.seconds:.1f}",
                sort=trial.seconds if trial.seconds is not None else "",
            )
        )
        error = trial.error or ""
        shown = error if len(error) <= ERROR_SHOWN else error[:ERROR_SHOWN] + "…"
        row.append(page.Cell(shown or MISSING, kind="wrap", title=error or None))
        rows.append(row)
    return page.table(
        [
            "trial",
            "round",
            *(page.Cell(name, kind="text") if kind == "choice" else name for name, (kind, _) in kinds.items()),
            search.metric,
            page.Cell("status", kind="text"),
            "seconds",
            page.Cell("error", kind="text"),
        ],
        rows,
        caption=f"the trials, numbered from 1 ({'higher' if study.mode == 'max' else 'lower'} {search.metric} is "
        "better; ★ the best); click a column to sort by it",
        sortable=True,
    )


def _round_color(round_, rounds):
    if rounds <= len(ROUND_COLORS):
        return ROUND_COLORS[round_ % len(ROUND_COLORS)]
    return f"hsl({round(280 * round_ / max(rounds - 1, 1))}, 60%, 40%)"


def search_charts(search):
    """The search view: one chart per parameter, and the parallel coordinates of all of them."""
    study = search.study
    trials = sorted(study.trials.values(), key=lambda t: t.number)
    kinds = parameter_kinds(study)
    charts = [parameter_chart(search, trials, name, kind, detail) for name, (kind, detail) in kinds.items()]
    if kinds:
        charts.append(parallel_chart(search, trials, kinds))
    return charts


def _hover(trial, metric):
    params = "<br>".join(f"{text(name)} = {text(option_label(value))}" for name, value in trial.params.items())
    if trial.status == "failed":
        error = trial.error or "no error recorded"
        if len(error) > 300:
            error = error[:300] + "…"
        return f"<b>trial {trial.trial}</b> (round {trial.round + 1}): failed<br>{text(error)}<br>{params}"
    status = " (stopped early)" if trial.status == "pruned" else ""
    score = f"{text(metric)} {value_text(trial.score)}"
    return f"<b>trial {trial.trial}</b> (round {trial.round + 1}){status}<br>{score}<br>{params}"


def parameter_chart(search, trials, name, kind, detail):
    """The score of each trial against one parameter: a scatter (numeric; log x for log-scale ones)
    or a box of the scores per option with the trials as jittered points over it (categorical),
    coloured by round; failed trials ✕ at the bottom of the axis (their error on hover), the best
    trial a star."""
    study = search.study
    rounds = max([len(study.spaces), *(t.round + 1 for t in trials)])
    scored = [t for t in trials if t.scored]
    scores = [t.score for t in scored]
    low, high = (min(scores), max(scores)) if scores else (0.0, 1.0)
    pad = max(0.06 * (high - low), 1e-3 * max(abs(high), 1.0))
    bottom = low - 2.2 * pad
    categorical = kind == "choice"
    labels = [option_label(option) for option in detail] if categorical else []
    offsets = dict(zip((t.number for t in trials), strip_offsets([option_label(t.params.get(name)) for t in trials])))

    def x_of(trial, spread=True):
        value = trial.params.get(name)
        if categorical:
            label = option_label(value)
            if label not in labels:
                return None
            return labels.index(label) + (offsets[trial.number] if spread else 0.0)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    traces = []
    if categorical:
        for index, label in enumerate(labels):
            values = [t.score for t in scored if option_label(t.params.get(name)) == label]
            if values:
                traces.append(
                    {
                        "type": "box",
                        "x": [index] * len(values),
                        "y": values,
                        "name": text(label),
                        "showlegend": False,
                        "boxpoints": False,
                        "fillcolor": "#eeeeee",
                        "line": {"color": "#888888", "width": 1},
                        "hoverinfo": "skip",
                        "width": 0.6,
                    }
                )
    for r in range(rounds):
        for status, symbol in (("finished", "circle"), ("pruned", "circle-open")):
            chosen = [t for t in scored if t.round == r and t.status == status and x_of(t) is not None]
            if chosen:
                color = _round_color(r, rounds)
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": f"round {r + 1}" + (" (stopped early)" if status == "pruned" else ""),
                        "x": [x_of(t) for t in chosen],
                        "y": [t.score for t in chosen],
                        "hovertext": [_hover(t, search.metric) for t in chosen],
                        "hovertemplate": "%{hovertext}<extra></extra>",
                        "marker": {"color": color, "size": 8, "symbol": symbol, "line": {"color": color, "width": 1.5}},
                    }
                )
    failed = [t for t in trials if t.status == "failed" and x_of(t) is not None]
    if failed:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "failed (no score)",
                "x": [x_of(t) for t in failed],
                "y": [bottom] * len(failed),
                "marker": {
                    "color": FAILED_COLOR,
                    "size": 11,
                    "symbol": "x-thin-open",
                    "line": {"color": FAILED_COLOR, "width": 2.5},
                },
                "hovertext": [_hover(t, search.metric) for t in failed],
                "hovertemplate": "%{hovertext}<extra></extra>",
                "cliponaxis": False,
            }
        )
    best = study.best
    if best is not None and x_of(best) is not None:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"best: trial {best.trial}",
                "x": [x_of(best)],
                "y": [best.score],
                "marker": {"color": BEST_COLOR, "size": 18, "symbol": "star", "line": {"color": "black", "width": 1}},
                "hovertext": [_hover(best, search.metric)],
                "hovertemplate": "<b>best</b> %{hovertext}<extra></extra>",
            }
        )
    log = not categorical and bool(detail)
    xaxis = {
        "title": {"text": text(f"{name} ({'choice' if categorical else 'log scale' if log else 'linear'})")},
        "type": "log" if log else "linear",
        "exponentformat": "power",
        **AXIS,
    }
    if categorical:
        xaxis.update(
            tickmode="array",
            tickvals=list(range(len(labels))),
            ticktext=[text(label) for label in labels],
            range=[-0.6, len(labels) - 0.4],
            showgrid=False,
        )
    layout = {
        **base_layout(f"{search.metric} against {name}"),
        "xaxis": xaxis,
        "yaxis": {"title": {"text": text(search.metric)}, "range": [bottom - pad, high + pad], **AXIS},
    }
    caption = (
        f"{search.metric} of each trial against {name}"
        + (": a box of the scores per option, the trials as points over it" if categorical else "")
        + "; colour: the round; ✕ at the bottom: a failed trial (its error on hover); ★ the best trial"
    )
    return Chart({"data": traces, "layout": layout}, caption, "search")


def parallel_chart(search, trials, kinds):
    """Parallel coordinates of the parameters to the score: one line per trial, coloured by its
    score; log-scale parameters on a log10 axis, categorical ones an axis of their options, failed
    trials at the score axis' 'failed' tick below the others."""
    study = search.study
    shown = [t for t in trials if t.scored or t.status == "failed"]
    scores = [t.score for t in shown if t.scored]
    low, high = (min(scores), max(scores)) if scores else (0.0, 1.0)
    failed_at = low - max(0.1 * (high - low), 1e-3 * max(abs(low), 1.0))
    dimensions = []
    for name, (kind, detail) in kinds.items():
        values = [t.params.get(name) for t in shown]
        if kind == "choice":
            labels = [option_label(option) for option in detail]
            codes = [labels.index(option_label(v)) if option_label(v) in labels else None for v in values]
            dimensions.append(
                {
                    "label": text(name),
                    "values": codes,
                    "tickvals": list(range(len(labels))),
                    "ticktext": [text(label) for label in labels],
                    "range": [-0.3, len(labels) - 0.7] if len(labels) > 1 else [-1, 1],
                }
            )
        elif detail:  # log scale
            logs = [math.log10(v) if isinstance(v, (int, float)) and v > 0 else None for v in values]
            finite = [v for v in logs if v is not None]
            low_e, high_e = (math.floor(min(finite)), math.ceil(max(finite))) if finite else (0, 1)
            ticks = list(range(low_e, high_e + 1))
            dimensions.append(
                {
                    "label": text(f"{name} (log)"),
                    "values": logs,
                    "tickvals": ticks,
                    "ticktext": [f"1e{tick}" for tick in ticks],
                }
            )
        else:
            dimensions.append(
                {"label": text(name), "values": [v if isinstance(v, (int, float)) else None for v in values]}
            )
    values = [t.score if t.scored else failed_at for t in shown]
    ticks = [failed_at] + [low + (high - low) * i / 4 for i in range(5)] if high > low else [failed_at, low]
    dimensions.append(
        {
            "label": text(search.metric),
            "values": values,
            "tickvals": ticks,
            "ticktext": ["failed"] + [f"{tick:.3g}" for tick in ticks[1:]],
            "range": [failed_at, high] if high > failed_at else None,
        }
    )
    for dimension in dimensions:
        if dimension.get("range") is None:
            dimension.pop("range", None)
    best_first = study.mode == "max"
    trace = {
        "type": "parcoords",
        "dimensions": dimensions,
        "line": {
            "color": values,
            "colorscale": "Viridis",
            "reversescale": not best_first,
            "showscale": True,
            "colorbar": {"title": {"text": text(search.metric)}, "thickness": 12},
            "cmin": failed_at,
            "cmax": high,
        },
        "labelside": "top",
    }
    layout = {
        "template": "none",
        "title": {
            "text": "parameters → score",
            "x": 0.01,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
            "font": {"size": 15},
        },
        "height": 420,
        "margin": {"l": 70, "r": 50, "t": 90, "b": 30},
        "font": FONT,
    }
    caption = (
        "every trial as a line through its parameters to its score (colour: the score); drag along an axis to "
        "keep only the trials in a range; failed trials run to 'failed' at the bottom of the score axis"
    )
    return Chart({"data": [trace], "layout": layout}, caption, "search")
