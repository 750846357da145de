"""The report's tables: the runs' results side by side (sortable, the best value of each metric
marked, each run's state), and the options in which their configs differ (each value that differs
from the first run's highlighted)."""

import json
import math

from .page import Cell, Markup, element, join, paragraph, table

MISSING = "–"
NOT_SET = "(not set)"
BEST = "★"
PARTIAL = "†"

# (column header, key in summary.json / metrics.jsonl, formatter, better: "min", "max" or None)
RESULT_COLUMNS = [
    ("val accuracy", "val_accuracy", "percent", "max"),
    ("val loss", "val_loss", "loss", "min"),
    ("test accuracy", "test_accuracy", "percent", "max"),
    ("test loss", "test_loss", "loss", "min"),
    ("train loss", "train_loss", "loss", "min"),
    ("train time (s)", "train_seconds", "seconds", None),
]


def number(value, style):
    """``value`` shown as a ``style``: "count" as it is, "loss" to 4 significant digits, "percent" (a
    fraction) as a percentage, "seconds" with 2 decimals; '–' when missing, a text or a non-finite
    number as it is."""
    if value is None:
        return MISSING
    if style == "count" or not isinstance(value, (int, float)) or not math.isfinite(value):
        return str(value)
    if style == "percent":
        return f"{100 * value:.2f} %"
    if style == "seconds":
        return f"{value:.2f}"
    return f"{value:.4g}"


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def run_results(run):
    """(values, partial) of a run's results: the summary's of a finished run (the kept epoch's
    weights, test after training); else the last logged epoch's (``partial``: no test results)."""
    if run.finished:
        return dict(run.summary), False
    values = dict(run.epochs[-1]) if run.epochs else {}
    values["train_seconds"] = sum(e.get("seconds", 0) for e in run.epochs if _finite(e.get("seconds"))) or None
    return values, True


def results_table(runs):
    """One row per run (linking to its section): its state, epochs, and loss and accuracy per split
    and train time, sortable by any column; the best value of each loss and accuracy column among the
    runs is marked ★ (lowest loss, highest accuracy). A run that did not finish shows its last
    logged epoch's values, marked †."""
    results = [run_results(run) for run in runs]
    best = {}
    for _, key, _, better in RESULT_COLUMNS:
        values = [values[key] for values, _ in results if _finite(values.get(key))]
        if better and len(values) > 1 and min(values) != max(values):
            best[key] = min(values) if better == "min" else max(values)
    rows = []
    for number_, (run, (values, partial)) in enumerate(zip(runs, results), 1):
        state = run.state
        epochs = len(run.epochs)
        if run.finished:
            epochs = run.summary.get("epochs", epochs)
        kept = run.summary.get("kept_epoch") if run.finished else None
        row = [
            Cell(element("a", run.name, href=f"#run-{number_}"), kind="run", sort=run.name),
            Cell(state.label, kind=f"state state-{state.kind}", sort=state.kind, title=state.detail),
            Cell(
                f"{epochs}" + (f" (kept {kept})" if _finite(kept) and kept != epochs else ""),
                sort=epochs if _finite(epochs) else "",
            ),
        ]
        for _, key, style, _ in RESULT_COLUMNS:
            value = values.get(key)
            shown = number(value, style)
            marked = key in best and _finite(value) and value == best[key]
            content = shown
            if marked:
                content = join([shown, " ", element("span", BEST, class_="best-mark", title="best of these runs")])
            if partial and value is not None and key != "train_seconds":
                content = join([content, element("span", PARTIAL, class_="partial-mark")])
            row.append(
                Cell(
                    content,
                    kind="best" if marked else None,
                    sort=value if _finite(value) else "",
                    title="the last logged epoch's: the run did not finish"
                    if partial and value is not None and key != "train_seconds"
                    else None,
                )
            )
        rows.append(row)
    caption = join(
        [
            "results (finished runs: the kept epoch's weights, test after training). ",
            element("span", f"{BEST} best of the runs in its column (lowest loss, highest accuracy); ", class_="muted"),
            element("span", f"{PARTIAL} the last logged epoch's: the run did not finish; ", class_="muted"),
            element("span", "click a column to sort by it", class_="muted"),
        ]
    )
    return table(
        ["run", Cell("state", kind="text"), "epochs"] + [header for header, _, _, _ in RESULT_COLUMNS],
        rows,
        caption=Markup(caption),
        sortable=True,
    )


def config_differences(runs):
    """The options whose values are not the same in every run's config, one column per run, the
    values that differ from the first run's highlighted; a sentence when there is nothing to compare."""
    if len(runs) < 2:
        return paragraph("One run: no configs to compare.", class_="muted")
    keys = differing_options([run.config for run in runs])
    if not keys:
        return paragraph("The runs' configs are identical.", class_="muted")
    rows = []
    for key in keys:
        values = [option_text(run.config, key) for run in runs]
        rows.append([key] + [Cell(value, differs=value != values[0]) for value in values])
    return join(
        [
            paragraph(
                "The options whose values are not the same in every run; highlighted: a value that "
                "differs from the first run's."
            ),
            element("div", table(["option"] + [run.name for run in runs], rows), class_="table-box"),
        ]
    )


def differing_options(configs):
    """The option names (in the order they first appear) whose values are not equal in all ``configs``
    (an option missing from some config differs)."""
    keys = list(dict.fromkeys(key for config in configs for key in config))
    missing = object()
    return [key for key in keys if any(config.get(key, missing) != configs[0].get(key, missing) for config in configs)]


def option_text(config, key):
    """An option's value as config.json writes it (strings bare); '(not set)' when absent."""
    if key not in config:
        return NOT_SET
    value = config[key]
    return value if isinstance(value, str) else json.dumps(value)


def options_of(config):
    """All of a config's options as texts, for :func:`deepgrad.report.page.options`."""
    return {key: option_text(config, key) for key in config}
