"""The report's tables: the runs' results side by side, and the options in which their configs
differ (each value that differs from the first run's highlighted)."""

import json
import math

from .page import Cell, join, paragraph, table

MISSING = "–"
NOT_SET = "(not set)"

# (column header, summary key, formatter)
RESULT_COLUMNS = [
    ("epochs", "epochs", "count"),
    ("kept epoch", "kept_epoch", "count"),
    ("train loss", "train_loss", "loss"),
    ("train accuracy", "train_accuracy", "percent"),
    ("val loss", "val_loss", "loss"),
    ("val accuracy", "val_accuracy", "percent"),
    ("test loss", "test_loss", "loss"),
    ("test accuracy", "test_accuracy", "percent"),
    ("train time (s)", "train_seconds", "seconds"),
    ("wall time (s)", "wall_seconds", "seconds"),
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


def results_table(runs):
    """One row per run: epochs, kept epoch, loss and accuracy per split, times. A run without a
    summary shows how many epochs it logged and says so."""
    rows = []
    for run in runs:
        if run.summary is None:
            missing = Cell("no summary.json: still training, or stopped before the end", span=len(RESULT_COLUMNS) - 1)
            rows.append([run.name, len(run.epochs), missing])
        else:
            rows.append([run.name] + [number(run.summary.get(key), style) for _, key, style in RESULT_COLUMNS])
    return table(
        ["run"] + [header for header, _, _ in RESULT_COLUMNS],
        rows,
        caption="results (of the kept epoch's weights; test: after training)",
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
            table(["option"] + [run.name for run in runs], rows),
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
