"""The report's charts, drawn with matplotlib and inlined as SVG (rendered in memory, nothing
written): the training curves of several runs overlaid, and one run's diagnostics (gradient flow,
update sizes, dead and saturated units per layer over the steps).

Each function returns a list of (caption, Markup ``<svg>`` element) pairs.
"""

import importlib.util
import math
import re
from io import StringIO

from ..viz.diagnostics import HEALTHY_UPDATE_RATIO, label_panel, layer_colors, new_figure
from .page import Markup, escape

WIDTH, HEIGHT = 5.6, 3.6  # inches per chart
MARKERS_UP_TO = 30  # points per line drawn with markers (so a one-epoch run still shows)
RUN_MARKERS = "osD^v<>ph*"  # each run its own marker too, for overlapping lines and colour-blind readers
DECADE = 10.0  # values spanning this ratio or more get a log axis
FEW_DECADES = 2  # a log axis spanning up to this many decades gets ticks at 1, 2, 3 and 5 times them


def training_curves(runs):
    """Loss, accuracy and learning rate per epoch, every run of ``runs`` (RunRecords) overlaid in
    its own colour; train solid, validation dashed."""
    require_matplotlib()
    styles = run_styles(len(runs))
    charts = []
    for metric, ylabel, scale in (
        ("loss", "cross-entropy loss (nats)", 1),
        ("accuracy", "accuracy (% of samples)", 100),
    ):
        figure, ax = chart()
        for run, style in zip(runs, styles):
            epochs = [record.get("epoch") for record in run.epochs]
            for split, linestyle in (("train", "-"), ("val", "--")):
                values = finite_values(run.epochs, f"{split}_{metric}", scale)
                plot_line(ax, epochs, values, linestyle=linestyle, **style)
        label_panel(ax, metric, "epoch", ylabel)
        integer_ticks(ax)
        legend(figure, runs, styles, splits=True)
        charts.append((f"{metric} per epoch: training (solid) and validation (dashed)", svg(figure, metric)))
    charts.append(learning_rate_chart(runs, styles))
    return charts


def learning_rate_chart(runs, styles):
    """The learning rate each epoch ended with, per run; a log axis when the rates span a decade."""
    figure, ax = chart()
    rates = [finite_values(run.epochs, "lr") for run in runs]
    log = spans_decades(rates)
    for run, style, values in zip(runs, styles, rates):
        plot_line(ax, [record.get("epoch") for record in run.epochs], values, log=log, **style)
    label_panel(ax, "learning rate", "epoch", "learning rate (log scale)" if log else "learning rate", log_y=log)
    if log:
        readable_log_ticks(ax)
    else:
        ax.set_ylim(bottom=0)
    integer_ticks(ax)
    legend(figure, runs, styles)
    caption = "learning rate at the end of each epoch" + (" (a rate of 0 is left out on the log axis)" if log else "")
    return caption, svg(figure, "learning rate")


def diagnostics_charts(run):
    """What ``deepgrad train --monitor`` recorded in ``run``: gradient norm and update-to-weight ratio
    per layer, dead units and (for bounded activations) saturated outputs per activation layer, over
    the sampled training steps. Empty when the run has no diagnostics."""
    gradients = [r for r in run.diagnostics if r.get("kind") == "gradients"]
    activations = [r for r in run.diagnostics if r.get("kind") == "activations"]
    charts = []
    if gradients:
        charts.append(
            per_layer_chart(
                "gradient flow",
                steps_and_layers(gradients, "layers"),
                "gradient norm ‖∂L/∂θ‖ (log scale)",
                log=True,
                caption="gradient norm of each layer's parameters (log scale): decades between the first and the "
                "last layer mean vanishing or exploding gradients",
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
        charts.append(
            per_layer_chart(
                "dead units",
                steps_and_layers(activations, "layers", measure="dead", percent=True),
                "dead units (% of the layer's units)",
                percent=True,
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
                    percent=True,
                    caption="outputs in the flat ends of a bounded activation (sigmoid, tanh), where gradients vanish",
                )
            )
    return charts


def steps_and_layers(records, key, measure=None, percent=False, keep=None):
    """(steps, {layer label: [value per step]}) of the per-layer dicts ``record[key]`` of monitor
    records; ``measure`` picks a field of each layer's dict (activations), ``keep`` filters names."""
    steps = [record.get("step") for record in records]
    layers = {}
    for index, record in enumerate(records):
        for name, value in (record.get(key) or {}).items():
            if keep is not None and not keep(name):
                continue
            label = layer_label(name, value)
            if measure is not None:
                value = value.get(measure) if isinstance(value, dict) else None
            layers.setdefault(label, [None] * len(records))[index] = finite(value, 100 if percent else 1)
    return steps, layers


def layer_label(name, value):
    """The label of a module's (or a parameter's) line: 'module 2 (ReLU)' for a module's statistics (a
    dict with its kind), 'module 1' for a module's or its parameter's ('1.weight') norm or ratio."""
    module, _, parameter = name.rpartition(".")
    if module and parameter in ("weight", "bias"):
        name = module
    kind = value.get("kind") if isinstance(value, dict) else None
    return f"module {name} ({kind})" if kind else f"module {name}"


def per_layer_chart(title, steps_and_values, ylabel, caption, log=False, percent=False, reference=None):
    """One line per layer over the training steps, coloured from the first layer (dark) to the last."""
    steps, layers = steps_and_values
    figure, ax = chart()
    for color, (label, values) in zip(layer_colors(len(layers)), layers.items()):
        plot_line(ax, steps, values, color=color, marker="o", label=plot_text(label), log=log)
    if reference is not None:
        ax.axhline(reference[0], color="#c0392b", linestyle="--", linewidth=1, label=reference[1])
    label_panel(ax, title, "training step", ylabel, log_y=log)
    integer_ticks(ax)
    if log:
        readable_log_ticks(ax)
    if percent:
        ax.set_ylim(-2, 102)
    if layers:
        figure.legend(loc="outside lower center", ncol=min(len(layers) + (reference is not None), 4), fontsize=8)
    return caption, svg(figure, title)


def require_matplotlib():
    """An ImportError saying what to install when matplotlib (the report's charts) is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError("the report draws its charts with matplotlib: pip install 'deepgrad[viz]'")


def chart():
    """(figure, axes) of one chart, laid out so that a legend can go below the axes."""
    figure, ((ax,),) = new_figure(1, 1, WIDTH, HEIGHT)
    figure.set_layout_engine("constrained")
    return figure, ax


def plot_line(ax, xs, ys, log=False, marker=None, **style):
    """``ys`` against ``xs``, leaving out missing points (and, on a log axis, ones not above 0); the
    points get ``marker`` when there are few of them."""
    points = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None and (y > 0 or not log)]
    if points:
        ax.plot(
            *zip(*points),
            linewidth=1.4,
            marker=marker if len(points) <= MARKERS_UP_TO else None,
            markersize=3.5,
            **style,
        )


def legend(figure, runs, styles, splits=False):
    """A legend below the chart naming each run by its colour and marker (and, with ``splits``, the
    train/validation line styles). The handles are given explicitly, so a run name starting with
    '_' is still listed."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], linewidth=2, markersize=5, **style) for style in styles]
    labels = [plot_text(run.name) for run in runs]
    if splits:
        handles += [Line2D([], [], color="#444444", linestyle=linestyle) for linestyle in ("-", "--")]
        labels += ["train", "validation"]
    figure.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), fontsize=8)


def integer_ticks(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def readable_log_ticks(ax):
    """The log y axis of ``ax`` labelled with plain numbers (0.003 rather than 3×10⁻³), at 1, 2, 3 and
    5 times the powers of ten when the axis spans up to ``FEW_DECADES`` (else at the powers only)."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    low, high = ax.get_ylim()
    few = high / low <= DECADE**FEW_DECADES
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 3, 5) if few else (1,)))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def run_styles(count):
    """``count`` distinguishable line styles ({color, marker}): matplotlib's tab10 colours, or ones
    spread over turbo for more runs, and a marker each."""
    from matplotlib import colormaps

    if count <= 10:
        colors = colormaps["tab10"].colors[:count]
    else:
        colors = [colormaps["turbo"](0.05 + 0.9 * i / (count - 1)) for i in range(count)]
    return [{"color": color, "marker": RUN_MARKERS[i % len(RUN_MARKERS)]} for i, color in enumerate(colors)]


def spans_decades(series_list):
    """Whether the positive values of all the series together span a factor of ten or more."""
    positive = [v for values in series_list for v in values if v is not None and v > 0]
    return bool(positive) and max(positive) / min(positive) >= DECADE


def finite_values(records, key, scale=1):
    """``record[key]`` of each record as a float times ``scale``; None where missing, not a number,
    or not finite."""
    return [finite(record.get(key), scale) for record in records]


def finite(value, scale=1):
    """``value`` times ``scale`` as a float, or None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value) * scale


def plot_text(text):
    """``text`` as matplotlib shows it literally ('$' would start mathtext)."""
    return str(text).replace("$", r"\$")


def svg(figure, description):
    """``figure`` as an inline ``<svg>`` element: no XML prolog or metadata (and so no URL); its text
    as text, in the page's font. ``description`` is what screen readers say."""
    import matplotlib

    buffer = StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    return Markup(text.replace("<svg", f'<svg role="img" aria-label="{escape(description)}"', 1).strip())
