"""Datasets, the DataLoader, and the IDX format of MNIST-style data."""

from . import datasets
from .dataset import Dataset, Subset, TensorDataset, random_split
from .idx import DatasetError, read_idx
from .loader import DataLoader
