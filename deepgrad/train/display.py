"""How a training run and its history show in a notebook (their ``_repr_html_``): the loss and
accuracy curves per epoch, and the final numbers as a table of split × metric; a run adds what it
is, how it ended and its model's summary (output shapes for one sample of its training data)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..markup import Markup, drawn_image, element, join, table

if TYPE_CHECKING:
    from .run import Run
    from .trainer import History

SPLITS = ("train", "val", "test")


def history_html(history: History, title: str | None = None) -> Markup:
    """The curves of every epoch and a table of the last one's train and validation metrics."""
    if not history.epochs:
        return element("p", "History: no epoch finished yet")
    last = history.epochs[-1]
    facts = [f"{len(history)} epoch{'s' if len(history) != 1 else ''}", f"{last['step']} steps"]
    facts += [f"last lr {last['lr']:.3g}"] if "lr" in last else []
    facts += [f"{sum(history['seconds']):.3g} s"] if "seconds" in history else []
    return join(
        [
            curves_image(history, title),
            split_table(last, _measured(last, "train"), caption=f"epoch {last['epoch']}"),
            element("p", ", ".join(facts)),
        ]
    )


def run_html(run: Run) -> Markup:
    """The run's one-line description, how it ended (the final table of every split when it was
    fitted here), its curves, and its model's summary."""
    parts = [element("p", element("strong", run.describe()))]
    summary = run.summary
    if summary is not None:
        state = summary["state"].replace("_", " ")
        kept = f"; the model is epoch {summary['kept_epoch']}'s" if summary["kept_epoch"] != summary["epochs"] else ""
        parts += [
            element("p", f"{state} after {summary['epochs']} epochs in {summary['train_seconds']:.3g} s{kept}"),
            split_table(summary, _measured(summary, "test"), caption="the kept model, each split in eval mode"),
        ]
    if run.trainer.history.epochs:
        parts.append(curves_image(run.trainer.history, f"{run.config['model']} on {run.config['dataset']}"))
    model = run.model.summary(run.splits.train.arrays[0][:1])
    parts.append(element("details", join([element("summary", "model"), Markup(model._repr_html_())])))
    return join(parts)


def split_table(values: Mapping[str, object], metrics: Sequence[str], caption: str | None = None) -> Markup:
    """A row per split (train, val, test: those with values), a column per metric, from ``values``
    keyed ``{split}_{metric}``, as a run's summary and an epoch's logs are."""
    splits = [split for split in SPLITS if any(f"{split}_{metric}" in values for metric in metrics)]
    rows = [[split, *(_number(values.get(f"{split}_{metric}"), metric) for metric in metrics)] for split in splits]
    return table(["split", *metrics], rows, caption=caption)


def _measured(values: Mapping[str, object], split: str) -> list[str]:
    """The metrics ``values`` holds for ``split`` (an epoch's train metrics, a summary's test ones:
    each split is measured with the same ones)."""
    return [key.removeprefix(f"{split}_") for key in values if key.startswith(f"{split}_")]


def curves_image(history: History, title: str | None) -> Markup:
    """The loss and accuracy curves (:func:`deepgrad.viz.plot_curves`) as an embedded PNG, or a note
    saying why there are none."""
    try:
        from ..viz import plot_curves

        return drawn_image(lambda path: plot_curves(history.epochs, path, title=title), "loss and accuracy per epoch")
    except ImportError:
        return element("p", "(no curves: matplotlib is not installed; pip install 'deepgrad[viz]')")


def _number(value: object, metric: str) -> str:
    if not isinstance(value, (int, float)):
        return "–"
    return f"{value:.2%}" if metric == "accuracy" else f"{value:.4g}"
