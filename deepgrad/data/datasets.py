"""Datasets: the embedded digits, MNIST-style IDX loaders, the synthetic spiral, and the user's
own arrays (a ``.npz`` file, :mod:`deepgrad.data.arrays`).

Images come as float32 in [0, 1] shaped (N, 1, H, W) — or (N, H·W) with
``flatten=True`` — and labels as int64. Each loader returns :class:`Splits`
with fixed train / validation / test parts, so every run evaluates on the
same samples. ``val_fraction`` (0 < f < 1), where a loader takes it, holds out
that fraction of the training (non-test) samples for validation instead of the
data set's default validation size.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..errors import ConfigError
from .arrays import load_npz
from .dataset import TensorDataset
from .idx import DatasetError, download, md5, read_idx
from .limits import check_file
from .splits import Splits, held_out_size, split_off

DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _images(pixels: np.ndarray, scale: float, flatten: bool) -> np.ndarray:
    """float32 pixels / scale, as (N, 1, H, W) or flattened (N, H·W): one new array (60k MNIST images
    are 188 MB of float32; a second temporary would double the memory and the page faults)."""
    x = pixels.astype(np.float32)
    np.divide(x, np.float32(scale), out=x)
    return x.reshape(len(x), -1) if flatten else x.reshape((len(x), 1) + x.shape[1:])


def digits(
    flatten: bool = False, val_size: int = 180, test_size: int = 360, seed: int = 0, val_fraction: float | None = None
) -> Splits:
    """The 1797 real handwritten 8x8 digits shipped inside deepgrad (UCI, via scikit-learn).

    Pixels 0..16 are scaled to [0, 1]. The split (1257 / 180 / 360 by default)
    is a fixed permutation drawn from ``seed``. ``val_fraction`` (overrides
    ``val_size``): that fraction of the 1437 non-test samples validates.
    """
    with resources.files(__package__).joinpath("digits.csv.gz").open("rb") as handle:
        table = np.loadtxt(gzip.open(handle), delimiter=",", dtype=np.int64)
    x, y = _images(table[:, :-1].reshape(-1, 8, 8), 16, flatten), table[:, -1]
    if val_fraction is not None and test_size < len(x):
        val_size = held_out_size(val_fraction, len(x) - test_size, "digits")
    if val_size + test_size >= len(x):
        raise ValueError(f"digits: val_size + test_size must leave training samples (there are {len(x)})")
    (x, y), (x_test, y_test) = split_off(x, y, test_size, seed)
    (x, y), (x_val, y_val) = split_off(x, y, val_size, seed + 1)
    return Splits(TensorDataset(x, y), TensorDataset(x_val, y_val), TensorDataset(x_test, y_test), DIGIT_CLASSES)


@dataclass(frozen=True)
class IdxSource:
    """Where an MNIST-style data set lives: file names (gzipped) with their MD5, and mirrors."""

    files: dict[str, str]
    mirrors: tuple[str, ...]


MNIST = IdxSource(
    files={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
)
FASHION_MNIST = IdxSource(
    files={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
)


def default_cache_dir(name: str) -> str:
    base = os.environ.get("DEEPGRAD_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "deepgrad")
    return os.path.join(base, name)


def _locate(root: str, filename: str) -> str | None:
    """The file in ``root``, gzipped or not; None when absent (a directory, a broken link or a
    symlink loop of the name is returned, and refused when read)."""
    for candidate in (filename, filename[: -len(".gz")]):
        path = os.path.join(root, candidate)
        if os.path.lexists(path):
            return path
    return None


def _fetch(source: IdxSource, root: str, filename: str, name: str) -> str:
    last_error = None
    for mirror in source.mirrors:
        try:
            download(mirror + filename, os.path.join(root, filename), source.files[filename])
            return os.path.join(root, filename)
        except (OSError, DatasetError) as error:
            last_error = error
    raise DatasetError(f"{name}: could not download {filename} from {list(source.mirrors)}: {last_error}")


def load_idx_dataset(
    source: IdxSource,
    root: str | None,
    download_missing: bool,
    flatten: bool,
    val_size: int,
    seed: int,
    classes: tuple[str, ...],
    name: str,
    val_fraction: float | None = None,
) -> Splits:
    """Read (and with ``download_missing`` fetch) the four IDX files of ``source`` in ``root``;
    ``val_fraction`` (overriding ``val_size``) of the training images validate."""
    root = root or default_cache_dir(name)
    if os.path.exists(root) and not os.path.isdir(root):
        raise DatasetError(
            f"{name}: --data-dir (root=) {root} is a file, not a directory; point it at the directory "
            "holding the IDX files"
        )
    arrays, paths = {}, {}
    for filename, expected_md5 in source.files.items():
        path = _locate(root, filename)
        if path is None:
            if not download_missing:
                raise DatasetError(
                    f"{name}: {filename} (or its unzipped form) not found in {root}; "
                    "point --data-dir (root=) at the directory holding the IDX files, or fetch them from the "
                    "published mirrors with --download (download=True)"
                )
            path = _fetch(source, root, filename, name)
        check_file(path, DatasetError, f"the IDX file {filename} of {name}")
        if path.endswith(".gz") and _md5_of(path) != expected_md5:
            raise DatasetError(
                f"{name}: {path} has the wrong MD5 (expected {expected_md5}): corrupted or not the published file"
            )
        arrays[filename.split("-idx")[0]] = read_idx(path)
        paths[filename.split("-idx")[0]] = path
    parts = {}
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images"], arrays[f"{split}-labels"]
        files = f"{paths[f'{split}-images']} and {paths[f'{split}-labels']}"
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(
                f"{name}: {split} images {images.shape} and labels {labels.shape} do not match ({files})"
            )
        if labels.size and labels.max() >= len(classes):
            raise DatasetError(
                f"{name}: {split} labels must be 0..{len(classes) - 1}, found {labels.max()} "
                f"({paths[f'{split}-labels']})"
            )
        parts[split] = (images, labels.astype(np.int64))
    if val_fraction is not None:
        val_size = held_out_size(val_fraction, len(parts["train"][0]), name)
    if not 0 <= val_size < len(parts["train"][0]):
        raise DatasetError(
            f"{name}: val_size={val_size} must leave training samples (there are {len(parts['train'][0])})"
        )
    # split the uint8 pixels, then convert each part: a quarter of the bytes moved
    (x, y), (x_val, y_val) = split_off(*parts["train"], val_size, seed)
    x_test, y_test = parts["t10k"]
    return Splits(
        TensorDataset(_images(x, 255, flatten), y),
        TensorDataset(_images(x_val, 255, flatten), y_val),
        TensorDataset(_images(x_test, 255, flatten), y_test),
        classes,
    )


def _md5_of(path: str) -> str:
    """The MD5 of the file at ``path``; a DatasetError naming it when it cannot be read."""
    try:
        return md5(path)
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror or error}") from None


def mnist(
    root: str | None = None,
    download: bool = False,
    flatten: bool = False,
    val_size: int = 5000,
    seed: int = 0,
    val_fraction: float | None = None,
) -> Splits:
    """MNIST from the standard IDX files in ``root`` (60k train, of which ``val_size`` — or
    ``val_fraction`` of them — validate; 10k test)."""
    return load_idx_dataset(MNIST, root, download, flatten, val_size, seed, DIGIT_CLASSES, "mnist", val_fraction)


def fashion_mnist(
    root: str | None = None,
    download: bool = False,
    flatten: bool = False,
    val_size: int = 5000,
    seed: int = 0,
    val_fraction: float | None = None,
) -> Splits:
    """Fashion-MNIST from the standard IDX files in ``root`` (same layout as MNIST)."""
    return load_idx_dataset(
        FASHION_MNIST, root, download, flatten, val_size, seed, FASHION_CLASSES, "fashion-mnist", val_fraction
    )


def spiral(n: int = 100, classes: int = 3, noise: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` interleaved spiral arms of ``n`` 2-D points each (the classic
    non-linearly-separable toy problem). Returns x (n·classes, 2) float32 and
    y (n·classes,) int64."""
    if n < 1 or classes < 2:
        raise ValueError(f"spiral: need n >= 1 and classes >= 2, got n={n}, classes={classes}")
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n), classes)
    labels = np.repeat(np.arange(classes), n)
    angle = labels * (2 * np.pi / classes) + radius * 4.0 + rng.standard_normal(n * classes) * noise
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return x.astype(np.float32), labels.astype(np.int64)


def spiral_splits(
    n: int = 300, classes: int = 3, noise: float = 0.2, seed: int = 0, val_fraction: float | None = None
) -> Splits:
    """The spiral as Splits: independent draws (``n`` points per class each) for train, validation
    and test. With ``val_fraction``, the train and validation draws are pooled and that fraction of
    the pool (a fixed permutation drawn from ``seed``) validates."""
    parts = [spiral(n, classes, noise, seed + k) for k in range(3)]
    if val_fraction is not None:
        x_pool, y_pool = (np.concatenate(arrays) for arrays in zip(parts[0], parts[1]))
        parts[0], parts[1] = split_off(x_pool, y_pool, held_out_size(val_fraction, len(x_pool), "spiral"), seed)
    train, val, test = (TensorDataset(*part) for part in parts)
    return Splits(train, val, test, tuple(str(c) for c in range(classes)))


def _arrays(root: str | None, download: bool, seed: int, val_fraction: float | None, data: str | None) -> Splits:
    if data is None:
        raise ConfigError(
            "dataset 'arrays' trains on the arrays of a .npz file: give it with --data FILE.npz (data=...)"
        )
    return load_npz(data, val_fraction)


# name -> loader(root, download, seed, val_fraction, data) -> Splits: the choices of a training
# config (``--dataset``). ``root`` and ``download`` concern the IDX data sets; ``seed`` the generated
# spiral; ``val_fraction`` (None: each data set's default validation size) all of them; ``data``
# the user's .npz of "arrays".
Loader = Callable[[str | None, bool, int, float | None, str | None], Splits]
REGISTRY: dict[str, Loader] = {
    "digits": lambda root, download, seed, val_fraction, data: digits(val_fraction=val_fraction),
    "mnist": lambda root, download, seed, val_fraction, data: mnist(root, download=download, val_fraction=val_fraction),
    "fashion-mnist": lambda root, download, seed, val_fraction, data: fashion_mnist(
        root, download=download, val_fraction=val_fraction
    ),
    "spiral": lambda root, download, seed, val_fraction, data: spiral_splits(seed=seed, val_fraction=val_fraction),
    "arrays": _arrays,
}


def load(
    name: str,
    root: str | None = None,
    download: bool = False,
    seed: int = 0,
    val_fraction: float | None = None,
    data: str | None = None,
) -> Splits:
    """The :class:`Splits` of the data set called ``name`` (a key of :data:`REGISTRY`); ``data`` is
    the .npz file of the data set "arrays" (see :func:`deepgrad.data.arrays.load_npz`)."""
    if name not in REGISTRY:
        raise DatasetError(f"unknown dataset {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name](root, download, seed, val_fraction, data)
