"""Training curves: loss and accuracy per epoch, train against validation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .diagnostics import PathT, write_figure


def plot_curves(history_epochs: Sequence[Mapping[str, float | None]], path: PathT, title: str | None = None) -> PathT:
    """Save a two-panel figure (loss, accuracy per epoch) to ``path``; returns the path.

    Drawn on a matplotlib ``Figure`` of its own, without pyplot: the process's matplotlib backend
    (a notebook's inline one, say) is left as it was.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [logs["epoch"] for logs in history_epochs]
    figure = Figure(figsize=(10, 4))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            key = f"{split}_{metric}"
            values = [logs.get(key) for logs in history_epochs]
            if any(v is not None for v in values):
                axes.plot(epochs, values, style, markersize=3, label=split)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    write_figure(figure, path, dpi=100)
    return path
