"""Datasets (and, later, the DataLoader)."""

from . import datasets
