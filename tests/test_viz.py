"""Figures: drawn without touching the process's matplotlib state."""

import pytest

matplotlib = pytest.importorskip("matplotlib")

from deepgrad.viz import plot_curves  # noqa: E402

EPOCHS = [
    {"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "train_accuracy": 0.5, "val_accuracy": 0.4},
    {"epoch": 2, "train_loss": 0.5, "val_loss": 0.8, "train_accuracy": 0.8, "val_accuracy": 0.7},
]


def test_curves_leave_the_matplotlib_backend_alone(tmp_path):
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        path = plot_curves(EPOCHS, str(tmp_path / "curves.png"), title="mlp on digits")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_figure_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A save that fails halfway (a kill, a full disk) leaves the previous figure as it was and no
    temporary file; a figure's format is its path's suffix's, whatever the temporary file is named."""
    from matplotlib.figure import Figure

    from deepgrad.viz.diagnostics import activation_histograms

    path = tmp_path / "curves.png"
    plot_curves(EPOCHS, path)
    good = path.read_bytes()
    save = Figure.savefig

    def torn(figure, fname, **options):
        with open(fname, "wb") as handle:
            handle.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", torn)
    with pytest.raises(KeyboardInterrupt):
        plot_curves(EPOCHS, path)
    with pytest.raises(KeyboardInterrupt):
        activation_histograms(
            {"std 1": {"layer 1": {"edges": [0.0, 1.0], "histogram": [3], "std": 1.0}}}, tmp_path / "histograms.png"
        )
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]
    monkeypatch.setattr(Figure, "savefig", save)
    assert plot_curves(EPOCHS, str(tmp_path / "curves.svg")).endswith(".svg")
    assert (tmp_path / "curves.svg").read_bytes().lstrip().startswith(b"<?xml")
    plot_curves(EPOCHS, tmp_path / "curves.pdf")
    assert (tmp_path / "curves.pdf").read_bytes().startswith(b"%PDF")
