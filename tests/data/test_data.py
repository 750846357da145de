"""Datasets, DataLoader, random_split, and the IDX format: the real MNIST files,
tiny hand-written IDX files (gzipped and not, whole and truncated), and the
checked download with the network replaced by local bytes."""

import gzip
import io as stdio
import os
import urllib.error

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.data import DataLoader, Dataset, DatasetError, Subset, TensorDataset, datasets, random_split, read_idx
from deepgrad.data import idx as idx_module

MNIST_DIR = "/work/shared/data/mnist"
FASHION_DIR = "/work/shared/data/fashion-mnist"
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
needs_mnist = pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="the MNIST files are not available")
needs_fashion = pytest.mark.skipif(not os.path.isdir(FASHION_DIR), reason="the Fashion-MNIST labels are not available")


def idx_bytes(array):
    """An IDX file of unsigned bytes holding ``array``."""
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes() + array.tobytes()


def write(path, data, gzipped=None):
    gzipped = str(path).endswith(".gz") if gzipped is None else gzipped
    with (gzip.open if gzipped else open)(path, "wb") as handle:
        handle.write(data)
    return str(path)


def write_tiny_mnist(root, n_train=40, n_test=10, gzipped=False, label_fn=None):
    """The four MNIST IDX files, tiny and (by default) uncompressed: no MD5 to match."""
    rng = np.random.default_rng(0)
    labels = {"train": np.arange(n_train) % 10, "t10k": np.arange(n_test) % 10}
    if label_fn is not None:
        labels = {k: label_fn(v) for k, v in labels.items()}
    suffix = ".gz" if gzipped else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28))
        write(os.path.join(root, f"{split}-images-idx3-ubyte{suffix}"), idx_bytes(images))
        write(os.path.join(root, f"{split}-labels-idx1-ubyte{suffix}"), idx_bytes(labels[split]))
    return str(root)


# ----------------------------------------------------------------------------
# TensorDataset, Subset, random_split


def test_tensor_dataset_indexing_and_length():
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    ds = TensorDataset(x, dg.tensor(y))
    assert len(ds) == 6
    xi, yi = ds[4]
    np.testing.assert_array_equal(xi, [8.0, 9.0])
    assert yi == 4
    xb, yb = ds[np.array([5, 0])]
    np.testing.assert_array_equal(yb, [5, 0])
    assert xb.shape == (2, 2)


def test_tensor_dataset_rejects_mismatched_or_no_arrays():
    with pytest.raises(ValueError, match="differ in length"):
        TensorDataset(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="at least one array"):
        TensorDataset()


def test_random_split_partitions_the_dataset():
    ds = TensorDataset(np.arange(100))
    parts = random_split(ds, [70, 20, 10], seed=3)
    assert [len(p) for p in parts] == [70, 20, 10]
    values = np.concatenate([p.arrays[0] for p in parts])
    assert sorted(values.tolist()) == list(range(100))  # disjoint and complete
    assert not np.array_equal(values, np.arange(100))  # shuffled
    again = random_split(ds, [70, 20, 10], seed=3)
    assert all(np.array_equal(a.indices, b.indices) for a, b in zip(parts, again))
    other = random_split(ds, [70, 20, 10], seed=4)
    assert not np.array_equal(parts[0].indices, other[0].indices)
    # Subset indexing goes through to the dataset
    assert parts[1][0][0] == parts[1].indices[0]


def test_random_split_fractions_hand_out_the_remainder():
    parts = random_split(TensorDataset(np.arange(11)), [0.8, 0.2])
    assert [len(p) for p in parts] == [9, 2]
    assert sorted(np.concatenate([p.arrays[0] for p in parts]).tolist()) == list(range(11))


@pytest.mark.parametrize("lengths", [[5, 4], [6, 5], [11, -1], [0.5, 0.2]])
def test_random_split_rejects_lengths_that_do_not_add_up(lengths):
    with pytest.raises(ValueError, match="do not add up to the dataset size 10"):
        random_split(TensorDataset(np.arange(10)), lengths)


# ----------------------------------------------------------------------------
# DataLoader


def epoch_values(loader):
    return [batch[0].data.copy() for batch in loader]


@pytest.mark.parametrize("n,batch_size", [(10, 3), (12, 4), (5, 8), (1, 1)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_loader_visits_every_sample_once_per_epoch(n, batch_size, shuffle):
    ds = TensorDataset(np.arange(n), np.arange(n) * 10)
    loader = DataLoader(ds, batch_size, shuffle=shuffle, seed=0)
    assert len(loader) == -(-n // batch_size)
    for _ in range(3):
        batches = list(loader)
        assert len(batches) == len(loader)
        assert all(len(b[0]) == batch_size for b in batches[:-1]) and 1 <= len(batches[-1][0]) <= batch_size
        seen = np.concatenate([b[0].data for b in batches])
        assert sorted(seen.tolist()) == list(range(n))
        for x, y in batches:  # the columns stay aligned
            np.testing.assert_array_equal(y.data, x.data * 10)
        if not shuffle:
            np.testing.assert_array_equal(seen, np.arange(n))


def test_loader_drop_last():
    loader = DataLoader(TensorDataset(np.arange(10)), 3, shuffle=True, drop_last=True, seed=1)
    batches = epoch_values(loader)
    assert len(loader) == len(batches) == 3
    assert all(len(b) == 3 for b in batches)
    assert len(set(np.concatenate(batches).tolist())) == 9


def test_loader_batches_are_tensors_of_the_data_dtype():
    ds = TensorDataset(np.zeros((7, 1, 8, 8), np.float32), np.arange(7, dtype=np.int64))
    x, y = next(iter(DataLoader(ds, 4)))
    assert isinstance(x, dg.Tensor) and isinstance(y, dg.Tensor)
    assert x.shape == (4, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert not x.requires_grad


def test_loader_shuffles_differently_each_epoch_and_reproducibly():
    ds = TensorDataset(np.arange(50))
    a = DataLoader(ds, 50, shuffle=True, seed=7)
    orders = [epoch_values(a)[0] for _ in range(3)]
    assert not np.array_equal(orders[0], np.arange(50))
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    b = DataLoader(ds, 50, shuffle=True, seed=7)
    assert all(np.array_equal(o, epoch_values(b)[0]) for o in orders)
    c = DataLoader(ds, 50, shuffle=True, seed=8)
    assert not np.array_equal(orders[0], epoch_values(c)[0])


def test_loader_without_seed_follows_manual_seed():
    ds = TensorDataset(np.arange(30))
    dg.manual_seed(11)
    first = epoch_values(DataLoader(ds, 30, shuffle=True))[0]
    dg.manual_seed(11)
    second = epoch_values(DataLoader(ds, 30, shuffle=True))[0]
    np.testing.assert_array_equal(first, second)


def test_loader_state_dict_continues_with_the_same_batches():
    ds = TensorDataset(np.arange(20))
    reference = DataLoader(ds, 6, shuffle=True, seed=5)
    epochs = [epoch_values(reference) for _ in range(4)]
    partial = DataLoader(ds, 6, shuffle=True, seed=5)
    for _ in range(2):
        list(partial)
    restored = DataLoader(ds, 6, shuffle=True, seed=999)
    restored.load_state_dict(partial.state_dict())
    for expected in epochs[2:]:
        got = epoch_values(restored)
        assert all(np.array_equal(e, g) for e, g in zip(expected, got))


class ListDataset(Dataset):
    """A dataset without ``arrays``: the loader must read it sample by sample."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(3, float(i), dtype=np.float32), np.int64(i)


def test_loader_reads_datasets_without_arrays_sample_by_sample():
    batches = list(DataLoader(ListDataset(7), 3, shuffle=True, seed=2))
    x = np.concatenate([b[0].data for b in batches])
    y = np.concatenate([b[1].data for b in batches])
    assert x.shape == (7, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], y)
    assert sorted(y.tolist()) == list(range(7))
    # a Subset of such a dataset falls back to the same path
    sub = Subset(ListDataset(10), [9, 2, 4])
    ((xs, ys),) = list(DataLoader(sub, 3))
    np.testing.assert_array_equal(ys.data, [9, 2, 4])


def test_loader_over_a_subset_batches_the_selected_rows():
    ds = TensorDataset(np.arange(10) * 2)
    sub = Subset(ds, [3, 1, 4])
    values = np.concatenate(epoch_values(DataLoader(sub, 2)))
    np.testing.assert_array_equal(values, [6, 2, 8])


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, None])
def test_loader_rejects_bad_batch_sizes(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(TensorDataset(np.arange(3)), batch_size)


# ----------------------------------------------------------------------------
# Built-in datasets


def test_digits_splits():
    s = datasets.digits()
    assert (len(s.train), len(s.val), len(s.test)) == (1257, 180, 360)
    assert s.input_shape == (1, 8, 8) and s.num_classes == 10
    x, y = s.train.arrays
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    flat = datasets.digits(flatten=True)
    assert flat.input_shape == (64,)
    np.testing.assert_array_equal(flat.test.arrays[0], s.test.arrays[0].reshape(360, 64))
    np.testing.assert_array_equal(datasets.digits().test.arrays[1], s.test.arrays[1])  # fixed split
    with pytest.raises(ValueError, match="val_size"):
        datasets.digits(val_size=1000, test_size=1000)


def test_spiral():
    x, y = datasets.spiral(n=50, classes=4, seed=1)
    assert x.shape == (200, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50] * 4
    assert np.abs(x).max() <= 1.0 + 1e-6
    np.testing.assert_array_equal(x, datasets.spiral(n=50, classes=4, seed=1)[0])
    with pytest.raises(ValueError, match="classes >= 2"):
        datasets.spiral(classes=1)


# ----------------------------------------------------------------------------
# IDX: the real MNIST files


@needs_mnist
def test_read_idx_on_the_real_mnist_test_files():
    images = read_idx(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz"))
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert images.min() == 0 and images.max() == 255
    assert labels.shape == (10000,)
    assert np.bincount(labels, minlength=10).tolist() == MNIST_TEST_COUNTS
    train_labels = read_idx(os.path.join(MNIST_DIR, "train-labels-idx1-ubyte.gz"))
    assert np.bincount(train_labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS


@needs_mnist
def test_mnist_loader_on_the_real_files():
    s = datasets.mnist(MNIST_DIR)
    assert (len(s.train), len(s.val), len(s.test)) == (55000, 5000, 10000)
    assert s.input_shape == (1, 28, 28) and s.num_classes == 10
    x_test, y_test = s.test.arrays
    assert x_test.dtype == np.float32 and x_test.min() == 0.0 and x_test.max() == 1.0
    assert np.bincount(y_test, minlength=10).tolist() == MNIST_TEST_COUNTS
    counts = np.bincount(s.train.arrays[1], minlength=10) + np.bincount(s.val.arrays[1], minlength=10)
    assert counts.tolist() == MNIST_TRAIN_COUNTS


@needs_fashion
def test_fashion_mnist_labels_and_missing_images():
    for name, count in (("train-labels-idx1-ubyte.gz", 6000), ("t10k-labels-idx1-ubyte.gz", 1000)):
        labels = read_idx(os.path.join(FASHION_DIR, name))
        assert np.bincount(labels).tolist() == [count] * 10
    with pytest.raises(DatasetError, match="fashion-mnist: train-images-idx3-ubyte.gz .*not found"):
        datasets.fashion_mnist(FASHION_DIR)


# ----------------------------------------------------------------------------
# IDX: tiny files written here


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_read_idx_round_trips_tiny_files(tmp_path, name):
    array = np.random.default_rng(0).integers(0, 256, (3, 4, 5))
    path = write(tmp_path / name, idx_bytes(array))
    result = read_idx(path)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, array)
    np.testing.assert_array_equal(read_idx(write(tmp_path / ("v" + name), idx_bytes([7, 8, 9]))), [7, 8, 9])


@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_rejects_truncated_data(tmp_path, gzipped):
    data = idx_bytes(np.zeros((10, 4, 4)))[:-5]
    path = write(tmp_path / ("t.idx.gz" if gzipped else "t.idx"), data)
    with pytest.raises(DatasetError, match=r"truncated or corrupted.*\(10, 4, 4\)"):
        read_idx(path)


@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_rejects_an_incomplete_header_and_bad_magic(tmp_path, gzipped):
    suffix = ".gz" if gzipped else ""
    short = write(tmp_path / f"h.idx{suffix}", bytes([0, 0, 8, 3, 0, 0, 0, 10]))
    with pytest.raises(DatasetError, match="header is incomplete"):
        read_idx(short)
    for i, bad in enumerate([b"", b"PK\x03\x04 not idx at all", bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\0" * 4]):
        path = write(tmp_path / f"bad{i}.idx{suffix}", bad)
        with pytest.raises(DatasetError, match="not an IDX file"):
            read_idx(path)


def test_read_idx_rejects_a_truncated_gzip_stream_and_missing_files(tmp_path):
    whole = write(tmp_path / "w.idx.gz", idx_bytes(np.arange(200).reshape(20, 10) % 256))
    cut = tmp_path / "cut.idx.gz"
    cut.write_bytes(open(whole, "rb").read()[:-20])
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(str(cut))
    not_gzip = tmp_path / "plain.idx.gz"
    not_gzip.write_bytes(idx_bytes([1, 2]))
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(str(not_gzip))
    with pytest.raises(DatasetError, match="not found"):
        read_idx(str(tmp_path / "nope.idx"))


def test_mnist_loader_on_tiny_uncompressed_files(tmp_path):
    root = write_tiny_mnist(tmp_path, n_train=40, n_test=10)
    s = datasets.mnist(root, val_size=8, flatten=True)
    assert (len(s.train), len(s.val), len(s.test)) == (32, 8, 10)
    assert s.input_shape == (784,)
    np.testing.assert_array_equal(s.test.arrays[1], np.arange(10) % 10)


def test_mnist_loader_refuses_a_validation_split_that_leaves_no_training_data(tmp_path):
    root = write_tiny_mnist(tmp_path, n_train=40, n_test=10)
    with pytest.raises(DatasetError, match="val_size"):
        datasets.mnist(root)  # val_size=5000 > 40 samples


def test_mnist_loader_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="mnist: train-images-idx3-ubyte.gz .*not found in .*download=True"):
        datasets.mnist(str(tmp_path))
    root = write_tiny_mnist(tmp_path)
    os.remove(os.path.join(root, "t10k-labels-idx1-ubyte"))
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz .*not found"):
        datasets.mnist(root, val_size=5)


def test_mnist_loader_truncated_file(tmp_path):
    root = write_tiny_mnist(tmp_path)
    path = os.path.join(root, "train-images-idx3-ubyte")
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) - 100)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte is truncated"):
        datasets.mnist(root, val_size=5)


def test_mnist_loader_images_and_labels_that_disagree(tmp_path):
    root = write_tiny_mnist(tmp_path, n_train=40)
    write(os.path.join(root, "train-labels-idx1-ubyte"), idx_bytes(np.zeros(39)))
    with pytest.raises(DatasetError, match=r"train images \(40, 28, 28\) and labels \(39,\) do not match"):
        datasets.mnist(root, val_size=5)


def test_mnist_loader_rejects_a_gz_file_with_the_wrong_md5(tmp_path):
    root = write_tiny_mnist(tmp_path, gzipped=True)  # valid IDX inside, but not the published bytes
    with pytest.raises(DatasetError, match="wrong MD5 .*expected f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        datasets.mnist(root, val_size=5)


# ----------------------------------------------------------------------------
# Downloads, with the network replaced by local bytes


class FakeNetwork:
    """Stands in for urllib.request.urlopen: serves ``files`` (url -> bytes), records the requests."""

    def __init__(self, files, fail_after=None):
        self.files, self.requests, self.fail_after = files, [], fail_after

    def __call__(self, url, timeout=None):
        self.requests.append(url)
        if url not in self.files:
            raise urllib.error.URLError(f"no route to {url}")
        body = stdio.BytesIO(self.files[url])
        if self.fail_after is not None:
            data = self.files[url][: self.fail_after]

            class Broken(stdio.BytesIO):
                def read(self, n=-1):
                    chunk = super().read(n)
                    if not chunk:
                        raise ConnectionResetError("connection reset by peer")
                    return chunk

            body = Broken(data)
        return body


def test_download_lands_atomically_with_the_right_md5(tmp_path, monkeypatch):
    payload = gzip.compress(idx_bytes([1, 2, 3]))
    net = FakeNetwork({"http://x/a.gz": payload})
    monkeypatch.setattr(idx_module.urllib.request, "urlopen", net)
    target = tmp_path / "sub" / "a.gz"
    idx_module.download("http://x/a.gz", str(target), idx_module.hashlib.md5(payload).hexdigest())
    assert target.read_bytes() == payload
    assert os.listdir(tmp_path / "sub") == ["a.gz"]  # no temporary file left behind
    np.testing.assert_array_equal(read_idx(str(target)), [1, 2, 3])


def test_download_with_the_wrong_md5_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(idx_module.urllib.request, "urlopen", FakeNetwork({"http://x/a.gz": b"evil bytes"}))
    with pytest.raises(DatasetError, match="MD5 .*expected 0123"):
        idx_module.download("http://x/a.gz", str(tmp_path / "a.gz"), "0123" * 8)
    assert os.listdir(tmp_path) == []


def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(
        idx_module.urllib.request, "urlopen", FakeNetwork({"http://x/a.gz": b"x" * 5000}, fail_after=100)
    )
    with pytest.raises(ConnectionResetError):
        idx_module.download("http://x/a.gz", str(tmp_path / "a.gz"), "0" * 32)
    assert os.listdir(tmp_path) == []


@needs_mnist
def test_mnist_download_from_the_second_mirror(tmp_path, monkeypatch):
    first, second = datasets.MNIST.mirrors
    files = {second + name: open(os.path.join(MNIST_DIR, name), "rb").read() for name in datasets.MNIST.files}
    net = FakeNetwork(files)  # the first mirror is unreachable
    monkeypatch.setattr(idx_module.urllib.request, "urlopen", net)
    root = tmp_path / "cache"
    s = datasets.mnist(str(root), download=True, val_size=5000)
    assert len(s.test) == 10000
    assert np.bincount(s.test.arrays[1]).tolist() == MNIST_TEST_COUNTS
    assert sorted(os.listdir(root)) == sorted(datasets.MNIST.files)
    for name in datasets.MNIST.files:
        assert (root / name).read_bytes() == files[second + name]
    assert [url for url in net.requests if url.startswith(first)] == [first + name for name in datasets.MNIST.files]
    # a second load reads the cache and does not touch the network
    net.requests.clear()
    datasets.mnist(str(root), download=True)
    assert net.requests == []


def test_mnist_download_of_wrong_bytes_fails_cleanly(tmp_path, monkeypatch):
    files = {m + name: b"not mnist" for m in datasets.MNIST.mirrors for name in datasets.MNIST.files}
    monkeypatch.setattr(idx_module.urllib.request, "urlopen", FakeNetwork(files))
    with pytest.raises(DatasetError, match="mnist: could not download train-images-idx3-ubyte.gz from .*MD5"):
        datasets.mnist(str(tmp_path), download=True)
    assert os.listdir(tmp_path) == []


def test_download_uses_ordinary_file_permissions(tmp_path, monkeypatch):
    monkeypatch.setattr(idx_module.urllib.request, "urlopen", FakeNetwork({"http://x/a": b"abc"}))
    idx_module.download("http://x/a", str(tmp_path / "a"), idx_module.hashlib.md5(b"abc").hexdigest())
    (tmp_path / "plain").write_bytes(b"abc")
    assert os.stat(tmp_path / "a").st_mode == os.stat(tmp_path / "plain").st_mode


def test_mnist_loader_rejects_labels_outside_the_classes(tmp_path):
    root = write_tiny_mnist(tmp_path, label_fn=lambda y: np.where(y == 3, 12, y))
    with pytest.raises(DatasetError, match=r"mnist: train labels must be 0..9, found 12"):
        datasets.mnist(root, val_size=5)


def test_a_loader_that_does_not_shuffle_leaves_the_default_generator_alone():
    """An evaluation loader made in the middle of training must not shift the dropout masks that follow."""
    x, y = np.zeros((10, 2), np.float32), np.zeros(10, np.int64)
    dg.manual_seed(3)
    before = dg.get_rng_state()
    DataLoader(TensorDataset(x, y), 4)
    assert dg.get_rng_state() == before
    DataLoader(TensorDataset(x, y), 4, shuffle=True)  # a shuffling one draws its seed
    assert dg.get_rng_state() != before


def test_an_idx_header_promising_too_much_is_refused_before_reading(tmp_path):
    # four dimensions of 2**32 - 1: their product overflows int64 (it wrapped and passed the size check)
    path = tmp_path / "huge-idx4-ubyte"
    path.write_bytes(bytes([0, 0, 8, 4]) + b"\xff\xff\xff\xff" * 4 + b"\x00" * 16)
    with pytest.raises(DatasetError, match=r"has a damaged header: shape \(4294967295, .*\) would be \d+ bytes"):
        read_idx(str(path))
    extra = tmp_path / "extra-idx1-ubyte"
    extra.write_bytes(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + b"\x01\x02\x03\x04")
    with pytest.raises(DatasetError, match="promises 3 bytes of data for shape \\(3,\\), the file has more"):
        read_idx(str(extra))
