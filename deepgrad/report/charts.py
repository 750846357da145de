"""The report's charts, as Plotly figures (plain dicts) that the page draws with plotly.js inlined
once: the training curves of several runs overlaid — per sampled step (loss, accuracy, learning
rate, from ``steps.jsonl``) and per epoch (train and validation loss and accuracy, from
``metrics.jsonl``) — and one run's diagnostics (gradient flow, update sizes, dead and saturated
units per layer).

Every line carries, in its ``meta``, its x values for each x axis (step, epoch, wall time) and its
y values for each smoothing (exponential moving averages, precomputed), which the page's controls
swap in (``report/scripts.py``). Values a log axis cannot show or that are not finite are not
dropped: zeros are marked at the bottom of the axis, a diverged step's loss (NaN, infinite or far off
the scale) above the curves, each with what it is on hover.

    charts = training_curves(runs)           # [Chart]; chart.figure is a Plotly figure dict
    html = chart_html(charts[0], "chart-1", include_plotlyjs=True)
"""

import html
import importlib.util
import math
from dataclasses import dataclass, field

import numpy as np

from ..viz.diagnostics import HEALTHY_UPDATE_RATIO
from .page import Markup
from .runs import finite

HEIGHT = 400  # pixels per chart
MARKERS_UP_TO = 40  # a line of up to this many points is drawn with markers too (a one-epoch run still shows)
MAX_POINTS = 1000  # per line: a longer run's steps are thinned to about this many (as TensorBoard samples)
DECADE = 10.0  # values spanning this ratio or more get a log axis (the learning rate)
SMOOTHING = {"none": 0.0, "light": 0.6, "heavy": 0.9}  # weights of the exponential moving average
X_MODES = ("step", "epoch", "time")
X_TITLES = {"step": "optimizer step", "epoch": "epoch", "time": "wall time since the first step (s)"}
EPOCH_X_TITLES = {**X_TITLES, "step": "optimizer step (each epoch's end)"}
COLORS = [  # matplotlib's tab10, the colours of the figures deepgrad draws elsewhere
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "triangle-down", "pentagon", "hexagon", "star", "cross", "x"]
LEGEND = {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.24, "yanchor": "top", "font": {"size": 11}}
FONT = {"family": "sans-serif", "size": 12, "color": "#222"}
AXIS = {  # every axis of the page's charts: light grid, a drawn line, ticks outside
    "gridcolor": "#e6e6e6",
    "linecolor": "#999",
    "showline": True,
    "ticks": "outside",
    "zeroline": False,
    "automargin": True,
}
CURVES = "curves"  # the group of charts the page's controls and run legend act on
PLOT_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
}


@dataclass
class Chart:
    """One chart: its Plotly ``figure`` (a dict of data and layout), the ``caption`` below it and
    the ``group`` it belongs to (``"curves"``: the charts the page's controls act on)."""

    figure: dict
    caption: str
    group: str | None = None

    @property
    def title(self):
        return html.unescape(self.figure["layout"]["title"]["text"])


@dataclass
class Series:
    """One line of a chart: ``values`` (raw, possibly None, NaN or infinite) at ``xs[mode]`` for each
    x mode, ``where`` each point is (hover text), the indices of ``special`` points (a diverged
    step), and how it is drawn."""

    name: str
    group: str
    color: str
    label: str  # what a value is: "loss", "val accuracy"
    xs: dict
    values: list
    where: list
    special: set = field(default_factory=set)
    dash: str = "solid"
    legend: bool = True
    smooth: bool = False
    symbol: str = "circle"
    unit: str = ""
    smoothing: dict | None = None  # {"light": [...], "heavy": [...]} computed before thinning


def require_plotly():
    """An ImportError saying what to install when Plotly (the report's charts) is missing."""
    if importlib.util.find_spec("plotly") is None:
        raise ImportError(
            "the report draws its charts with Plotly: pip install 'deepgrad[train]' (or pip install plotly)"
        )


def text(value):
    """``value`` as Plotly shows it literally: Plotly reads a few HTML tags and entities in texts and
    LaTeX between '$'s, so the text has its '&', '<' and '>' escaped and its '$' written as an entity
    (quotes need no escaping outside a tag, and Plotly does not read ``&quot;``)."""
    return html.escape(str(value), quote=False).replace("$", "&#36;")


def value_text(value, unit=""):
    """A value as hover text: 6 significant digits, 'nan'/'inf' as they are, '–' when missing."""
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.6g}{unit}"


class Timeline:
    """Where a run's steps and epochs lie on each x axis: the optimizer step, the epoch (a step
    as a fraction of its epoch, from the steps per epoch the records imply) and the wall time since
    its first recorded step (interpolated between step records for epoch ends; the epochs'
    durations when the run recorded no steps)."""

    def __init__(self, run):
        self.per_epoch = steps_per_epoch(run.steps)
        timed = sorted((r["step"], r["time"]) for r in run.steps if _whole(r.get("step")) and finite(r.get("time")))
        self.steps = np.array([s for s, _ in timed], dtype=float)
        self.times = np.array([t for _, t in timed], dtype=float)
        self.seconds = np.cumsum([finite(e.get("seconds")) or 0.0 for e in run.epochs])

    def of_step(self, record):
        step, epoch = record.get("step"), record.get("epoch")
        fraction = None
        if self.per_epoch and _whole(epoch):
            fraction = min(max(step / self.per_epoch, epoch - 1), epoch)
        return {"step": step, "epoch": _round(fraction), "time": _round(self.time_at(step))}

    def of_epoch(self, index, record):
        """Where the end of the epoch ``record`` (the run's ``index``-th) lies, and whether its step is
        an estimate (runs from before deepgrad recorded each epoch's last step)."""
        epoch, step = record.get("epoch"), record.get("step")
        estimated = not _whole(step)
        if estimated:
            step = epoch * self.per_epoch if self.per_epoch and _whole(epoch) else None
        if step is not None and len(self.steps):
            time = self.time_at(step)
        else:
            time = float(self.seconds[index]) if index < len(self.seconds) else None
        return {"step": step, "epoch": epoch, "time": _round(time)}, estimated

    def time_at(self, step):
        """Seconds from the first recorded step to ``step`` (extrapolated past the last record)."""
        if step is None or not len(self.steps):
            return None
        start = self.times[0]
        if step <= self.steps[-1] or len(self.steps) < 2:
            return float(np.interp(step, self.steps, self.times) - start)
        rate = (self.times[-1] - start) / (self.steps[-1] - self.steps[0])
        return float(self.times[-1] - start + (step - self.steps[-1]) * rate)

    @staticmethod
    def where(x, epoch=None, estimated=False, epoch_end=False):
        """Where a point is, for its hover text: its step ('≈' when ``estimated``), its epoch
        (``epoch``: the record's, counted from 1; first for an ``epoch_end``) and its time."""
        step = None if x["step"] is None else f"≈ step {x['step']}" if estimated else f"step {x['step']}"
        parts = [f"epoch {epoch}" if _whole(epoch) else None, step]
        parts = [part for part in (parts if epoch_end else parts[::-1]) if part]
        if x["time"] is not None:
            parts.append(f"{x['time']:.1f} s")
        return " · ".join(parts)


def steps_per_epoch(steps):
    """The optimizer steps per epoch that step records imply (None without any): a record of step
    s in epoch e (both from 1) says (e-1)·S < s <= e·S, so S lies between the largest s/e and the
    smallest (s-1)/(e-1); the middle of that interval, which closes in on S as records accumulate."""
    records = [(r["step"], r["epoch"]) for r in steps if _whole(r.get("step")) and _whole(r.get("epoch"))]
    records = [(s, e) for s, e in records if s >= 1 and e >= 1]
    if not records:
        return None
    low = max(math.ceil(s / e) for s, e in records)
    highs = [(s - 1) // (e - 1) for s, e in records if e > 1]
    high = min(highs) if highs else low
    return max(low, round((low + max(high, low)) / 2))


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _round(value, digits=4):
    return None if value is None else round(float(value), digits)


def run_colors(count):
    """``count`` distinguishable colours: tab10, or evenly spread hues for more runs."""
    if count <= len(COLORS):
        return COLORS[:count]
    return [f"hsl({round(360 * i / count)}, 65%, 45%)" for i in range(count)]


def diverged_step(run):
    """The step at which ``run`` diverged (None when it did not)."""
    summary = run.summary or {}
    if summary.get("state") != "diverged":
        return None
    step = summary.get("diverged_at")
    return step if _whole(step) else None


def default_x(runs):
    """The x axis the curves of ``runs`` start with: the step, or the epoch when no run recorded
    steps (runs of a deepgrad from before steps.jsonl)."""
    return "step" if any(run.steps for run in runs) else "epoch"


def training_curves(runs):
    """The curves of ``runs`` (RunRecords) overlaid, each run in its own colour: loss, accuracy and
    learning rate per sampled step (when the runs recorded steps) and loss and accuracy per epoch,
    train solid and validation dashed, on the x axis of :func:`default_x`. A chart with no data in
    any run is left out."""
    require_plotly()
    start = default_x(runs)
    xmodes = (start, *(mode for mode in X_MODES if mode != start))
    colors = run_colors(len(runs))
    timelines = [Timeline(run) for run in runs]
    per_step, per_epoch = {"loss": [], "accuracy": [], "lr": []}, {"loss": [], "accuracy": [], "lr": []}
    for number, (run, color, timeline) in enumerate(zip(runs, colors, timelines)):
        group, symbol = f"run-{number}", SYMBOLS[number % len(SYMBOLS)]
        diverged = diverged_step(run)
        xs = [timeline.of_step(record) for record in run.steps]
        where = [Timeline.where(x, record.get("epoch")) for x, record in zip(xs, run.steps)]
        special = {
            i
            for i, record in enumerate(run.steps)
            if record.get("step") == diverged or ("lr" not in record and i == len(run.steps) - 1 and diverged)
        }
        for metric, scale, unit in (("loss", 1, ""), ("accuracy", 100, " %"), ("lr", 1, "")):
            if not any(metric in record for record in run.steps):
                continue
            values = [_scaled(record.get(metric), scale) for record in run.steps]
            marked = special if metric == "loss" else set()
            regular = [None if i in marked or finite(v) is None else v for i, v in enumerate(values)]
            smoothing = {name: smoothed(regular, weight) for name, weight in SMOOTHING.items() if weight}
            keep = thinned(len(values), marked | {i for i, v in enumerate(values) if v is not None and not v > 0})
            per_step[metric].append(
                Series(
                    run.name,
                    group,
                    color,
                    {"lr": "learning rate", "accuracy": "batch accuracy"}.get(metric, "batch loss"),
                    _by_mode([xs[i] for i in keep]),
                    [values[i] for i in keep],
                    [where[i] for i in keep],
                    {k for k, i in enumerate(keep) if i in marked},
                    smooth=metric != "lr",
                    symbol=symbol,
                    unit=unit,
                    smoothing={name: [ys[i] for i in keep] for name, ys in smoothing.items()},
                )
            )
        ends = [timeline.of_epoch(index, record) for index, record in enumerate(run.epochs)]
        ex = [x for x, _ in ends]
        epoch_where = [
            Timeline.where(x, r.get("epoch"), guess, epoch_end=True) for (x, guess), r in zip(ends, run.epochs)
        ]
        for metric, scale, unit in (("loss", 1, ""), ("accuracy", 100, " %")):
            for split, dash in (("train", "solid"), ("val", "dash")):
                key = f"{split}_{metric}"
                if not any(key in record for record in run.epochs):
                    continue
                per_epoch[metric].append(
                    Series(
                        run.name,
                        group,
                        color,
                        f"{split} {metric}",
                        _by_mode(ex),
                        [_scaled(record.get(key), scale) for record in run.epochs],
                        epoch_where,
                        dash=dash,
                        legend=split == "train" or not any(f"train_{metric}" in r for r in run.epochs),
                        symbol=symbol,
                        unit=unit,
                    )
                )
        if not run.steps and any("lr" in record for record in run.epochs):
            per_epoch["lr"].append(
                Series(
                    run.name,
                    group,
                    color,
                    "learning rate (epoch's last step)",
                    _by_mode(ex),
                    [_scaled(record.get("lr"), 1) for record in run.epochs],
                    epoch_where,
                    symbol=symbol,
                )
            )
    stepless = [run.name for run in runs if run.epochs and not run.steps]
    unplaced = (
        f"; {', '.join(stepless)}: no steps.jsonl (a deepgrad from before it), so on the epoch and time axes only"
        if stepless and start == "step"
        else ""
    )
    charts = []
    if per_step["loss"]:
        charts.append(
            line_chart(
                "loss per step",
                "cross-entropy loss (nats)",
                per_step["loss"],
                "log",
                toggle=True,
                xmodes=xmodes,
                caption="training loss of the sampled steps' batches (steps.jsonl, every --log-every steps); "
                "✕ above the curves: where a run diverged (its loss on hover); ▼ at the bottom: a loss of 0",
            )
        )
    if per_epoch["loss"]:
        charts.append(
            line_chart(
                "loss per epoch",
                "cross-entropy loss (nats)",
                per_epoch["loss"],
                "log",
                toggle=True,
                xmodes=xmodes,
                xtitles=EPOCH_X_TITLES,
                caption="loss per epoch: training (solid; the mean over the epoch's batches) and validation (dashed)"
                + unplaced,
            )
        )
    if per_step["accuracy"]:
        charts.append(
            line_chart(
                "accuracy per step",
                "batch accuracy (%)",
                per_step["accuracy"],
                "linear",
                xmodes=xmodes,
                caption="accuracy on the sampled steps' training batches",
            )
        )
    if per_epoch["accuracy"]:
        charts.append(
            line_chart(
                "accuracy per epoch",
                "accuracy (% of samples)",
                per_epoch["accuracy"],
                "linear",
                xmodes=xmodes,
                xtitles=EPOCH_X_TITLES,
                caption="accuracy per epoch: training (solid) and validation (dashed)" + unplaced,
            )
        )
    rates = per_step["lr"] or per_epoch["lr"]
    if rates:
        log = spans_decades([s.values for s in rates])
        charts.append(
            line_chart(
                "learning rate",
                "learning rate" + (" (log scale)" if log else ""),
                rates,
                "log" if log else "linear",
                from_zero=not log,
                xmodes=xmodes,
                caption=(
                    "the learning rate each sampled step used (warm-up and schedules included)"
                    if per_step["lr"]
                    else "the learning rate of each epoch's last step (the runs recorded no steps)"
                )
                + ("; a rate of 0 is marked ▼ at the bottom of the log axis" if log else ""),
            )
        )
    return charts


def thinned(count, keep, most=MAX_POINTS):
    """The indices of ``count`` points to draw: all of them up to ``most``, else every k-th (the
    last one too) and the indices in ``keep`` (diverged steps, zeros: never thinned away)."""
    if count <= most:
        return list(range(count))
    stride = math.ceil(count / most)
    return sorted(set(range(0, count, stride)) | {count - 1} | set(keep))


def _scaled(value, scale):
    """A record's value times ``scale``; non-finite floats kept as they are, None when missing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) * scale if math.isfinite(value) else float(value)


def _by_mode(xs):
    return {mode: [x[mode] for x in xs] for mode in X_MODES}


def spans_decades(series_values):
    """Whether the positive finite values of all the series together span a factor of ten or more."""
    positive = [v for values in series_values for v in values if finite(v) and v > 0]
    return bool(positive) and max(positive) / min(positive) >= DECADE


def smoothed(values, weight):
    """The exponential moving average of ``values`` (None where a value is None), debiased at the
    start as TensorBoard's smoothing is; ``weight`` 0 gives the values back."""
    out, last, count = [], 0.0, 0
    for value in values:
        if value is None:
            out.append(None)
            continue
        count += 1
        last = weight * last + (1 - weight) * value
        out.append(last / (1 - weight**count) if weight else value)
    return out


def axis_ranges(series, log_possible):
    """({"log": [lo, hi] of log10 or None, "linear": [lo, hi] or None}, top mark y per scale,
    bottom mark y per scale) of ``series``: the regular values with a margin, and room above them
    for the marks of diverged or non-finite values and below for zeros on a log axis."""
    regular = [v for s in series for i, v in enumerate(s.values) if i not in s.special and finite(v) is not None]
    has_top = any(
        i in s.special or (v is not None and finite(v) is None) for s in series for i, v in enumerate(s.values)
    )
    has_bottom = log_possible and any(
        i not in s.special and finite(v) is not None and v <= 0 for s in series for i, v in enumerate(s.values)
    )
    ranges, top, bottom = {"log": None, "linear": None}, {}, {}
    positive = [math.log10(v) for v in regular if v > 0]
    if log_possible:
        lo, hi = (min(positive), max(positive)) if positive else (-1.0, 1.0)
        pad = max(0.04 * (hi - lo), 0.05)
        ranges["log"] = [lo - (3 if has_bottom else 1) * pad, hi + (3 if has_top else 1) * pad]
        top["log"], bottom["log"] = 10 ** (hi + 1.8 * pad), 10 ** (lo - 1.8 * pad)
    if regular:
        lo, hi = min(min(regular), 0.0) if log_possible else min(regular), max(regular)
        pad = max(0.04 * (hi - lo), 1e-3 * max(abs(hi), 1e-12))
        if has_top:
            ranges["linear"] = [lo - pad, hi + 3 * pad]
        top["linear"] = hi + 1.8 * pad
    else:
        top["linear"] = 1.0
    bottom["linear"] = None  # a zero is drawn where it is
    return ranges, top, bottom


def line_chart(
    title,
    ytitle,
    series,
    scale,
    caption,
    toggle=False,
    from_zero=False,
    xmodes=X_MODES,
    xtitles=X_TITLES,
    group=CURVES,
    extra=(),
):
    """A Chart of ``series`` (:class:`Series`) on a ``scale`` ("log" or "linear") y axis (``toggle``:
    the page's loss-axis control switches it). Each series is a line (hover: the run, where and the
    exact value) and, when it has any, a trace of marks: its diverged or non-finite values above the
    curves and, on a log axis, its zeros at the bottom. ``extra``: traces drawn as they are."""
    log_possible = scale == "log" or toggle
    ranges, top, bottom = axis_ranges(series, log_possible)
    default_x = xmodes[0]
    traces = []
    for item in series:
        traces.append(_line(item, default_x))
        marks = _marks(item, top, bottom, default_x, scale, log_possible)
        if marks is not None:
            traces.append(marks)
    traces += list(extra)
    ticks = {"log": log_ticks(ranges["log"]), "linear": None}
    yaxis = {"title": {"text": text(ytitle)}, "type": scale, "exponentformat": "power", **AXIS}
    if ranges.get(scale):
        yaxis.update(range=ranges[scale], autorange=False)
    if ticks.get(scale):
        yaxis.update(ticks[scale])
    elif from_zero:
        yaxis["rangemode"] = "tozero"
    layout = {
        **base_layout(title),
        "hoverlabel": {"namelength": -1},
        "showlegend": True,
        "xaxis": {"title": {"text": text(xtitles[default_x])}, "exponentformat": "power", **AXIS},
        "yaxis": yaxis,
        "meta": {
            "group": group,
            "toggle": toggle,
            "scale": scale,
            "range": ranges,
            "ticks": ticks,
            "xtitle": {mode: text(xtitles[mode]) for mode in xmodes},
        },
    }
    return Chart({"data": traces, "layout": layout}, caption, group)


def base_layout(title, height=HEIGHT):
    """The layout every chart of the page starts from: ``title`` at the left, the page's font, a
    plain template, hover on the nearest point, the legend below."""
    return {
        "template": "none",
        "title": {"text": text(title), "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 64, "r": 16, "t": 44, "b": 8},
        "font": FONT,
        "hovermode": "closest",
        "legend": LEGEND,
    }


def _significant(value, digits=6):
    """``value`` rounded to ``digits`` significant digits (what a chart can show; the page smaller)."""
    return None if value is None else float(f"{value:.{digits}g}")


def log_ticks(log_range):
    """The ticks of a log axis over ``log_range`` (log10 ends) spanning up to 2.5 decades: at 1, 2
    and 5 times the powers of ten, labelled as plain numbers (0.2, 0.5, 1, 2; Plotly would label
    every digit, or the 2 and 5 of each decade without their decade). None over more decades:
    Plotly's powers of ten read well there."""
    if not log_range or log_range[1] - log_range[0] > 2.5:
        return None
    low, high = math.floor(log_range[0]) - 3, math.ceil(log_range[1]) + 3  # room to zoom out
    values = [float(f"{m}e{k}") for k in range(low, high + 1) for m in (1, 2, 5)]
    return {"tickmode": "array", "tickvals": values, "ticktext": [f"{v:g}" for v in values]}


def _line(item, default_x):
    """The line trace of a series, its y for each smoothing and x for each mode in its meta."""
    regular = [None if i in item.special or finite(v) is None else v for i, v in enumerate(item.values)]
    points = sum(v is not None for v in regular)
    name = text(item.name)
    exact = [value_text(v, item.unit) for v in item.values]
    label = text(item.label)
    hover = {
        "none": f"<b>%{{fullData.name}}</b><br>%{{customdata[0]}}<br>{label} %{{customdata[1]}}<extra></extra>",
        "smoothed": f"<b>%{{fullData.name}}</b><br>%{{customdata[0]}}<br>{label} %{{customdata[1]}} "
        f"(smoothed %{{y:.4g}}{item.unit})<extra></extra>",
    }
    ys = {"none": regular}
    if item.smooth:
        computed = item.smoothing or {name_: smoothed(regular, weight) for name_, weight in SMOOTHING.items() if weight}
        ys.update({name_: [_significant(v) for v in values] for name_, values in computed.items()})
    return {
        "type": "scatter",
        "mode": "lines+markers" if points <= MARKERS_UP_TO else "lines",
        "name": name,
        "legendgroup": item.group,
        "showlegend": item.legend,
        "line": {"color": item.color, "dash": item.dash, "width": 1.8},
        "marker": {"color": item.color, "size": 6, "symbol": item.symbol},
        "x": item.xs[default_x],
        "y": regular,
        "connectgaps": True,
        "customdata": [[text(where), value] for where, value in zip(item.where, exact)],
        "hovertemplate": hover["none"],
        "meta": {"kind": "line", "x": item.xs, "y": ys, "hover": hover},
    }


def _marks(item, top, bottom, default_x, scale, log_possible):
    """The trace of a series' marks (None when it has none): diverged or non-finite values above
    the curves ('✕'), zeros at the bottom of a log axis ('▼')."""
    indices, ylog, ylinear, texts, symbols = [], [], [], [], []
    for i, value in enumerate(item.values):
        where = item.where[i]
        if i in item.special or (value is not None and finite(value) is None):
            what = "diverged" if i in item.special else "not finite"
            texts.append(f"{what}: {item.label} {value_text(value)} at {where}")
            ylog.append(top.get("log"))
            ylinear.append(top["linear"])
            symbols.append("x-thin-open")
        elif log_possible and finite(value) is not None and value <= 0:
            texts.append(
                f"{item.label} {value_text(value, item.unit)} at {where} (drawn at the bottom: a log axis has no 0)"
            )
            ylog.append(bottom.get("log"))
            ylinear.append(value)
            symbols.append("triangle-down")
        else:
            continue
        indices.append(i)
    if not indices:
        return None
    xs = {mode: [values[i] for i in indices] for mode, values in item.xs.items()}
    return {
        "type": "scatter",
        "mode": "markers",
        "name": text(item.name),
        "legendgroup": item.group,
        "showlegend": False,
        "marker": {"color": item.color, "size": 12, "symbol": symbols, "line": {"color": item.color, "width": 2.5}},
        "x": xs[default_x],
        "y": ylog if scale == "log" else ylinear,
        "hovertext": [text(t) for t in texts],
        "hovertemplate": "<b>%{fullData.name}</b><br>%{hovertext}<extra></extra>",
        "cliponaxis": False,
        "meta": {"kind": "mark", "x": xs, "y": {"log": ylog, "linear": ylinear}},
    }


def diagnostics_charts(run):
    """What ``deepgrad train --monitor`` recorded in ``run``: gradient norm and update-to-weight ratio
    per layer, dead units and (for bounded activations) saturated outputs per activation layer, over
    the sampled training steps. Empty when the run has no diagnostics."""
    gradients = [r for r in run.diagnostics if r.get("kind") == "gradients"]
    activations = [r for r in run.diagnostics if r.get("kind") == "activations"]
    charts = []
    if gradients:
        require_plotly()
        charts.append(
            per_layer_chart(
                "gradient flow",
                steps_and_layers(gradients, "layers"),
                "gradient norm ‖∂L/∂θ‖ (log scale)",
                log=True,
                caption="gradient norm of each layer's parameters (log scale): decades between the first and the "
                "last layer mean vanishing or exploding gradients; ▼ at the bottom: a gradient of exactly 0",
            )
        )
        weights = steps_and_layers(gradients, "update_ratios", keep=lambda name: name.rpartition(".")[2] == "weight")
        charts.append(
            per_layer_chart(
                "update size",
                weights,
                "‖Δw‖ / ‖w‖ per step (log scale)",
                log=True,
                reference=(HEALTHY_UPDATE_RATIO, f"{HEALTHY_UPDATE_RATIO:g} (healthy)"),
                caption=f"how much each step changes each layer's weights (log scale); about {HEALTHY_UPDATE_RATIO:g} "
                "is a healthy learning rate",
            )
        )
    if activations:
        require_plotly()
        charts.append(
            per_layer_chart(
                "dead units",
                steps_and_layers(activations, "layers", measure="dead", percent=True),
                "dead units (% of the layer's units)",
                caption="units that output 0 for every sample of the batch, per activation layer",
            )
        )
        saturated = steps_and_layers(activations, "layers", measure="saturated", percent=True)
        if any(value is not None for values in saturated[1].values() for value in values):
            charts.append(
                per_layer_chart(
                    "saturated outputs",
                    saturated,
                    "saturated outputs (% of outputs)",
                    caption="outputs in the flat ends of a bounded activation (sigmoid, tanh), where gradients vanish",
                )
            )
    return charts


def steps_and_layers(records, key, measure=None, percent=False, keep=None):
    """(steps, {layer label: [value per step]}) of the per-layer dicts ``record[key]`` of monitor
    records; ``measure`` picks a field of each layer's dict (activations), ``keep`` filters names.
    Values are kept as recorded (NaN and infinities too), None where a layer has none."""
    steps = [record.get("step") for record in records]
    layers = {}
    for index, record in enumerate(records):
        for name, value in (record.get(key) or {}).items():
            if keep is not None and not keep(name):
                continue
            label = layer_label(name, value)
            if measure is not None:
                value = value.get(measure) if isinstance(value, dict) else None
            layers.setdefault(label, [None] * len(records))[index] = _scaled(value, 100 if percent else 1)
    return steps, layers


def layer_label(name, value):
    """The label of a module's (or a parameter's) line: 'module 2 (ReLU)' for a module's statistics (a
    dict with its kind), 'module 1' for a module's or its parameter's ('1.weight') norm or ratio."""
    module, _, parameter = name.rpartition(".")
    if module and parameter in ("weight", "bias"):
        name = module
    kind = value.get("kind") if isinstance(value, dict) else None
    return f"module {name} ({kind})" if kind else f"module {name}"


def layer_colors(count):
    """``count`` colours from the first layer (dark) to the last (light), so depth reads as colour
    (viridis, as the matplotlib figures)."""
    from plotly.colors import sample_colorscale

    return sample_colorscale("Viridis", [0.85 * i / max(count - 1, 1) for i in range(count)]) if count else []


def per_layer_chart(title, steps_and_values, ylabel, caption, log=False, reference=None):
    """One line per layer over the training steps, coloured from the first layer (dark) to the last."""
    steps, layers = steps_and_values
    xs = {"step": steps}
    where = [f"step {step}" for step in steps]
    series = [
        Series(label, f"layer-{number}", color, "value", xs, values, where, symbol="circle")
        for number, (color, (label, values)) in enumerate(zip(layer_colors(len(layers)), layers.items()))
    ]
    extra = []
    if reference is not None and steps:
        extra.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": text(reference[1]),
                "x": [min(steps), max(steps)],
                "y": [reference[0], reference[0]],
                "line": {"color": "#c0392b", "dash": "dash", "width": 1.2},
                "hoverinfo": "name",
            }
        )
    chart = line_chart(
        title,
        ylabel,
        series,
        "log" if log else "linear",
        caption,
        xmodes=("step",),
        xtitles={"step": "training step"},
        group="layers",
        extra=extra,
    )
    if not log:
        chart.figure["layout"]["yaxis"].update(range=[-2, 102], autorange=False)
    return chart


def chart_html(chart, chart_id, include_plotlyjs=False, post_script=None):
    """The chart as an HTML fragment (a ``<div>`` and the ``<script>`` drawing it), with plotly.js
    inlined when ``include_plotlyjs`` (the page's first chart; the others use it). Plotly writes the
    figure's JSON with ``<``, ``>`` and ``&`` escaped, so no text in it ends the script."""
    import plotly.io

    fragment = plotly.io.to_html(
        chart.figure,
        include_plotlyjs=include_plotlyjs,
        full_html=False,
        div_id=chart_id,
        config=PLOT_CONFIG,
        post_script=post_script,
    )
    return Markup(fragment)
