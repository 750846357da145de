"""Figures (matplotlib, the [viz] extra): training curves."""

from .curves import plot_curves
