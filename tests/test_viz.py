"""Figures: drawn without touching the process's matplotlib state."""

import pytest

matplotlib = pytest.importorskip("matplotlib")

from deepgrad.viz import plot_curves  # noqa: E402

EPOCHS = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "train_accuracy": 0.5, "val_accuracy": 0.4},
          {"epoch": 2, "train_loss": 0.5, "val_loss": 0.8, "train_accuracy": 0.8, "val_accuracy": 0.7}]


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
