"""Figures and drawings (matplotlib, the [viz] extra, imported only when drawing): training curves,
and the computational graph behind a tensor (Graphviz's DOT, rendered by its ``dot`` program)."""

from ..errors import GraphvizError
from .curves import plot_curves
from .graphviz import graph
