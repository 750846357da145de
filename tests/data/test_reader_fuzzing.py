"""Hostile and damaged files for the readers of the user's data: ``--data FILE.npz``
(data/arrays.py:load_npz), ``deepgrad predict --input`` (.npy arrays and images,
data/inputs.py:read_inputs) and the IDX files of ``--data-dir``. Every outcome is a valid result or
the library's own error naming the file — never another exception, never a hang (an alarm fails the
test instead), never an allocation beyond the bounds of data/limits.py, which every reader checks
against what a file declares before it allocates. Derandomized, each fuzzer a few seconds."""

import contextlib
import io
import os
import signal
import struct
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepgrad.data import datasets, limits
from deepgrad.data.arrays import load_npz
from deepgrad.data.inputs import read_inputs
from deepgrad.data.splits import Splits
from deepgrad.errors import ConfigError, DatasetError, DeepgradError

Image = pytest.importorskip("PIL.Image")

FUZZ = settings(
    derandomize=True,
    max_examples=120,
    deadline=5000,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PEAK = 64 << 20  # what one example may allocate (tracemalloc: NumPy's and Python's allocations)


@pytest.fixture(autouse=True)
def no_hang():
    """Fail (rather than hang) a test still running after a minute: a reader blocked on a pipe."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def stuck(signum, frame):
        raise TimeoutError("a reader hung")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def bounded_allocations(limit=PEAK):
    """Asserts that what runs inside allocates at most ``limit`` bytes at its peak."""
    tracemalloc.start()
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= limit, f"allocated {peak} bytes at the peak"


def outcome(read, path, error_type):
    """``read()``'s result, or None when it raised ``error_type`` naming ``path``; anything else fails."""
    try:
        with bounded_allocations():
            return read()
    except DeepgradError as error:
        assert isinstance(error, error_type), repr(error)
        assert str(path) in str(error), str(error)
        assert "\n" not in str(error)
        return None


def check_splits(splits):
    if splits is not None:
        assert isinstance(splits, Splits)
        for part in (splits.train, splits.val, splits.test):
            x, y = part.arrays
            assert x.dtype == np.float32 and np.isfinite(x).all() and y.dtype == np.int64 and len(x) == len(y)


def check_inputs(result, input_shape):
    if result is not None:
        x, names = result
        assert x.dtype == np.float32 and x.shape[1:] == tuple(input_shape) and len(x) == len(names) >= 1
        assert np.isfinite(x).all()


def npy_bytes(header, version=(1, 0), length=None):
    """A .npy file's header (the dict's text ``header``, padded as NumPy pads it) with ``length``
    (default: the true one) in its length field."""
    text = header.encode("latin-1", "replace") if version != (3, 0) else header.encode("utf-8")
    prefix = 6 + 2 + (2 if version == (1, 0) else 4)
    text += b" " * ((-(prefix + len(text) + 1)) % 64) + b"\n"
    declared = len(text) if length is None else length
    size = struct.pack("<H", declared % 2**16) if version == (1, 0) else struct.pack("<I", declared % 2**32)
    return b"\x93NUMPY" + bytes(version) + size + text


def header_text(descr, fortran_order, shape):
    return f"{{'descr': {descr!r}, 'fortran_order': {fortran_order!r}, 'shape': {shape!r}, }}"


def zip_of(members, method=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def array_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# ----------------------------------------------------------------------------
# .npz archives: damaged bytes


@pytest.fixture(scope="module")
def good_archives():
    rng = np.random.default_rng(0)
    arrays = dict(
        x=rng.standard_normal((12, 2, 3)),
        y=np.arange(12) % 3,
        x_test=rng.standard_normal((4, 2, 3)),
        y_test=np.arange(4) % 3,
        classes=np.array(["a", "b", "c"]),
    )
    plain, packed = io.BytesIO(), io.BytesIO()
    np.savez(plain, **arrays)
    np.savez_compressed(packed, **arrays)
    return [plain.getvalue(), packed.getvalue()]


@FUZZ
@given(data=st.data())
def test_damaged_npz_archives_are_dataset_errors(tmp_path, good_archives, data):
    good = good_archives[data.draw(st.integers(0, 1))]
    cut = data.draw(st.one_of(st.just(len(good)), st.integers(0, len(good))))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), max_size=6))
    damaged = bytearray(good[:cut])
    for position, value in flips:
        if position < len(damaged):
            damaged[position] = value
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(damaged))
    check_splits(outcome(lambda: load_npz(str(path)), path, DatasetError))


# ----------------------------------------------------------------------------
# .npy headers: hostile declarations, as a file for predict and as a member of a .npz

DESCRS = st.one_of(
    st.sampled_from(
        [
            "<f8",
            "<f4",
            "<f2",
            ">f8",
            "|u1",
            "<i8",
            "|b1",
            "<c16",
            "O",
            "|O",
            "<U3",
            "|S0",
            "|V0",
            "|V8",
            "<M8[s]",
            "<m8[D]",
            "float64",
            "",
            "<f16",
            "|V1000000000000",
            "<U2147483647",
        ]
    ),
    st.text(max_size=8),
    st.lists(st.tuples(st.sampled_from(["a", "b", "", "é"]), st.sampled_from(["<f8", "O", "|u1", "<U0"])), max_size=3),
    st.tuples(st.sampled_from(["<f8", "|u1", "O"]), st.lists(st.integers(-2, 2**40), max_size=3).map(tuple)),
    st.integers(),
    st.none(),
    st.lists(st.lists(st.integers(), max_size=2), max_size=2),
)
SHAPES = st.one_of(
    st.lists(st.integers(0, 6), max_size=4).map(tuple),
    st.lists(st.one_of(st.integers(-(2**63), 2**64), st.integers(0, 8)), max_size=6).map(tuple),
    st.lists(st.integers(0, 2), min_size=60, max_size=70).map(tuple),
    st.lists(st.sampled_from([0, 1, 3, 2**31, 2**32, 2**62, 2**63, 2**64, -1]), max_size=4).map(tuple),
    st.one_of(st.text(max_size=5), st.floats(), st.lists(st.floats(), max_size=3).map(tuple), st.booleans()),
)
VALID_HEADERS = st.builds(
    header_text,
    st.sampled_from(["<f8", "<f4", "|u1", "<i8", ">f8", "<f2", "|b1", "<U2"]),
    st.booleans(),
    st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
)
HEADERS = st.one_of(
    VALID_HEADERS,
    VALID_HEADERS,
    st.builds(header_text, DESCRS, st.one_of(st.booleans(), st.integers(0, 2), st.text(max_size=2)), SHAPES),
    st.text(max_size=60),
    st.sampled_from(
        [
            "{}",
            "{'descr': '<f8', 'fortran_order': False}",
            "[1, 2]",
            "(" * 300 + ")" * 300,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}",
            "9" * 5000,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (" + "9" * 4400 + ",)}",
        ]
    ),
)
VERSIONS = st.sampled_from([(1, 0), (2, 0), (3, 0), (1, 0), (1, 0), (2, 0), (0, 0), (4, 0), (255, 255)])


def declared_size(header):
    """The data size a header text declares, when NumPy can tell it (else None)."""
    try:
        shape, _, dtype = np.lib.format.read_array_header_1_0(io.BytesIO(npy_bytes(header)[8:]))
        count = int(np.prod(shape, dtype=object)) if shape else 1
        return count * dtype.itemsize if 0 <= count and all(d >= 0 for d in shape) else None
    except Exception:
        return None


def body_for(data, header):
    """Random bytes, or (when the header declares a small array) as many as it declares, give or take."""
    size = declared_size(header)
    if size is not None and size <= 512:
        n = data.draw(st.sampled_from([size, size, max(size - 1, 0), size + 3]))
        return data.draw(st.binary(min_size=n, max_size=n))
    return data.draw(st.binary(max_size=64))


@FUZZ
@given(
    data=st.data(), header=HEADERS, version=VERSIONS, length=st.one_of(st.none(), st.none(), st.integers(0, 2**32 - 1))
)
def test_hostile_npy_headers_for_predict_are_config_errors(tmp_path, data, header, version, length):
    path = tmp_path / "input.npy"
    path.write_bytes(npy_bytes(header, version, length) + body_for(data, header))
    shape = None
    try:  # the shape a valid file would have, as the model's input shape
        shape = np.lib.format.read_array_header_1_0(io.BytesIO(npy_bytes(header)[8:]))[0]
    except Exception:
        pass
    input_shape = tuple(shape[1:]) if shape and len(shape) > 1 and all(0 < d < 10 for d in shape) else (3,)
    check_inputs(outcome(lambda: read_inputs(str(path), input_shape), path, ConfigError), input_shape)


@FUZZ
@given(
    data=st.data(),
    header=HEADERS,
    version=VERSIONS,
    compressed=st.booleans(),
    key=st.sampled_from(["x", "y", "x_test", "classes"]),
)
def test_hostile_npy_headers_in_an_npz_are_dataset_errors(tmp_path, data, header, version, compressed, key):
    members = {"x.npy": array_bytes(np.ones((6, 2))), "y.npy": array_bytes(np.arange(6) % 2)}
    if key == "x_test":
        members["y_test.npy"] = array_bytes(np.arange(2))
    members[f"{key}.npy"] = npy_bytes(header, version) + body_for(data, header)
    path = tmp_path / "hostile.npz"
    path.write_bytes(zip_of(members, zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED))
    check_splits(outcome(lambda: load_npz(str(path)), path, DatasetError))


DIMENSIONS = st.sampled_from([0, 0, 1, 3, 7, 2**16, 2**31, 2**32, 2**32 + 1, 2**62, 2**63, 2**64, 10**30, -1])


@FUZZ
@given(
    shape=st.lists(DIMENSIONS, max_size=5).map(tuple),
    fortran_order=st.booleans(),
    descr=st.sampled_from(["<f8", "|u1", "<U0", "|V0", "|S0", "<U1000000", ("<f8", (2**20,)), "O"]),
    inside_npz=st.booleans(),
)
def test_declared_sizes_are_bounded_before_allocation(tmp_path, shape, fortran_order, descr, inside_npz):
    """Shapes of zeros and huge dimensions together (products that overflow 64 bits, or that are 0
    while NumPy's own arithmetic overflows), dtypes of no size or of megabytes: whatever the header
    declares, the result is an error or an array within the bound."""
    header = npy_bytes(header_text(descr, fortran_order, shape))
    if inside_npz:
        path = tmp_path / "declared.npz"
        path.write_bytes(zip_of({"x.npy": header + b"\0" * 64, "y.npy": array_bytes(np.arange(3))}))
        result = outcome(lambda: load_npz(str(path)), path, DatasetError)
        check_splits(result)
    else:
        path = tmp_path / "declared.npy"
        path.write_bytes(header + b"\0" * 64)
        result = outcome(lambda: read_inputs(str(path), (3,)), path, ConfigError)
        check_inputs(result, (3,))


# ----------------------------------------------------------------------------
# .npz archives: hostile structure (names, methods, sizes)

MEMBER_NAMES = st.sampled_from(
    [
        "x.npy",
        "y.npy",
        "x_test.npy",
        "y_test.npy",
        "classes.npy",
        "x",
        "y",
        "dir/",
        "x.npy/",
        "../x.npy",
        "X.npy",
        "x.NPY",
        "",
    ]
)
CONTENTS = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            array_bytes(np.ones((5, 2))),
            array_bytes(np.arange(5)),
            array_bytes(np.array(["a", "b"])),
            array_bytes(np.ones((5, 2)))[:-3],
            array_bytes(np.zeros((0, 2))),
            array_bytes(np.full((5, 2), np.nan)),
            array_bytes(np.ones((5, 2), dtype=[("a", "<f8")])),
        ]
    ),
)


@FUZZ
@given(
    members=st.lists(st.tuples(MEMBER_NAMES, CONTENTS), max_size=6),
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
    cut=st.one_of(st.none(), st.integers(0, 400)),
)
def test_hostile_npz_structures_are_dataset_errors(tmp_path, members, method, flips, cut):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": the point
        with zipfile.ZipFile(buffer, "w", method) as archive:
            for name, content in members:
                if name:
                    archive.writestr(name, content)
    raw = bytearray(buffer.getvalue())
    for position, value in flips:
        if raw:
            raw[(len(raw) - 1 - position % len(raw))] = value  # from the end: the central directory
    if cut is not None:
        raw = raw[: -cut or None]
    path = tmp_path / "structure.npz"
    path.write_bytes(bytes(raw))
    check_splits(outcome(lambda: load_npz(str(path)), path, DatasetError))


# ----------------------------------------------------------------------------
# Images: damaged files of each format read, and headers declaring huge images

IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "tiff": "TIFF", "webp": "WEBP", "ppm": "PPM"}


@pytest.fixture(scope="module")
def good_images():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    images = {}
    for suffix, name in IMAGE_FORMATS.items():
        buffer = io.BytesIO()
        try:
            Image.fromarray(pixels).save(buffer, format=name)
        except (OSError, KeyError):  # a Pillow built without this codec
            continue
        images[suffix] = buffer.getvalue()
    return images


@pytest.fixture
def small_pixel_bound(monkeypatch):
    """A bound of 256x256 pixels, so that a fuzzed header's image stays small whatever it declares."""
    monkeypatch.setattr(limits, "MAX_PIXELS", 1 << 16)


@pytest.mark.filterwarnings("ignore:Truncated File Read")  # Pillow's, for a TIFF cut in its tags
@FUZZ
@given(data=st.data(), input_shape=st.sampled_from([(1, 8, 8), (3, 4, 4), (64,)]))
def test_damaged_images_are_config_errors(tmp_path, good_images, small_pixel_bound, data, input_shape):
    suffix = data.draw(st.sampled_from(sorted(good_images)))
    good = good_images[suffix]
    cut = data.draw(st.one_of(st.just(len(good)), st.integers(0, len(good))))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), max_size=4))
    damaged = bytearray(good[:cut])
    for position, value in flips:
        if position < len(damaged):
            damaged[position] = value
    path = tmp_path / f"damaged.{suffix}"
    path.write_bytes(bytes(damaged))
    check_inputs(outcome(lambda: read_inputs(str(path), input_shape), path, ConfigError), input_shape)


def png_declaring(width, height, depth=8, colour=0, body=b""):
    """A PNG whose header (with a right CRC) declares ``width`` x ``height``."""

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")


def bmp_declaring(width, height, bits=24, body=b""):
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 0, len(body), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(body), 0, 0, 14 + len(info)) + info + body


def ppm_declaring(width, height, body=b""):
    return f"P5\n{width} {height}\n255\n".encode() + body


def gif_declaring(width, height, body=b""):
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return b"GIF89a" + screen + descriptor + b"\x08" + bytes([min(len(body), 255)]) + body[:255] + b"\x00;"


DECLARING = {
    "png": lambda w, h, body: png_declaring(w % 2**32, h % 2**32, body=body),
    "bmp": lambda w, h, body: bmp_declaring(w % 2**31, h % 2**31, body=body),
    "ppm": ppm_declaring,
    "gif": lambda w, h, body: gif_declaring(w % 2**16, h % 2**16, body),
}


@FUZZ
@given(
    kind=st.sampled_from(sorted(DECLARING)),
    width=st.one_of(st.integers(0, 300), st.integers(0, 2**32)),
    height=st.one_of(st.integers(0, 300), st.integers(0, 2**32)),
    body=st.binary(max_size=300),
)
def test_images_declaring_any_size_are_refused_before_decoding_beyond_the_bound(
    tmp_path, small_pixel_bound, kind, width, height, body
):
    path = tmp_path / f"declared.{kind}"
    path.write_bytes(DECLARING[kind](width, height, body))
    result = outcome(lambda: read_inputs(str(path), (1, 8, 8)), path, ConfigError)
    check_inputs(result, (1, 8, 8))
    if result is not None:
        with Image.open(path) as image:
            assert image.width * image.height <= limits.MAX_PIXELS


def test_an_image_of_too_many_pixels_is_refused_from_its_header(tmp_path):
    # 9000 x 9000: beyond deepgrad's bound (2**26) but below Pillow's own warning (~89 million);
    # 12000 x 12000: Pillow warns; 100000 x 100000: Pillow refuses by itself. No IDAT data at all:
    # a decoder reaching it would fail with another message.
    for side in (9000, 12000, 100_000):
        path = tmp_path / f"bomb{side}.png"
        path.write_bytes(png_declaring(side, side))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and no DecompressionBombWarning on the way
            with pytest.raises(
                ConfigError,
                match=f"bomb{side}.png: the image is ({side}x{side} = {side * side} "
                r"pixels, )?more than the 67108864 pixels deepgrad reads "
                r"\(deepgrad.data.limits.MAX_PIXELS\)",
            ):
                read_inputs(str(path), (1, 8, 8))
    ok = tmp_path / "ok.png"
    Image.fromarray(np.zeros((8000, 8), np.uint8)).save(ok)  # 64000 pixels: fine, and resized
    assert read_inputs(str(ok), (1, 8, 8))[0].shape == (1, 1, 8, 8)


def test_images_are_opened_only_in_the_formats_deepgrad_reads(tmp_path):
    pixels = np.full((8, 8), 200, np.uint8)
    for name, suffix in (("TGA", "png"), ("PCX", "bmp"), ("ICO", "jpg"), ("SGI", "tiff")):
        path = tmp_path / f"{name.lower()}-image.{suffix}"
        Image.fromarray(pixels).save(path, format=name)
        with Image.open(path) as any_format:  # Pillow alone would read it ...
            assert any_format.format == name
        with pytest.raises(
            ConfigError,
            match=rf"cannot read .*{path.name} as an image \(expected a .npy array or an "
            r"image file: PNG, JPEG, BMP, GIF, TIFF, WebP or PGM/PPM/PNM\)",
        ):
            read_inputs(str(path), (1, 8, 8))  # ... deepgrad does not
    Image.fromarray(pixels).save(tmp_path / "fine.pgm")
    np.testing.assert_array_equal(
        read_inputs(str(tmp_path / "fine.pgm"), (1, 8, 8))[0], pixels[None, None] / np.float32(255)
    )


# ----------------------------------------------------------------------------
# Sizes: declared terabytes, zip bombs


def test_npy_and_npz_headers_declaring_terabytes_are_refused_before_allocation(tmp_path):
    huge = npy_bytes(header_text("<f8", False, (100_000, 100_000, 100)))
    (tmp_path / "huge.npy").write_bytes(huge + b"\0" * 64)
    (tmp_path / "huge.npz").write_bytes(zip_of({"x.npy": huge, "y.npy": array_bytes(np.arange(3))}))
    bound = r"more than the 4 GiB \(deepgrad.data.limits.MAX_BYTES\) deepgrad reads"
    with bounded_allocations(1 << 20):
        with pytest.raises(
            ConfigError,
            match=r"cannot read .*huge.npy as a .npy array: its header declares shape "
            rf"\(100000, 100000, 100\) of float64 \(7.28 TiB\), {bound}",
        ):
            read_inputs(str(tmp_path / "huge.npy"), (100,))
        with pytest.raises(
            DatasetError,
            match=rf"huge.npz: cannot read key 'x': its header declares shape "
            rf"\(100000, 100000, 100\) of float64 \(7.28 TiB\), {bound}",
        ):
            load_npz(str(tmp_path / "huge.npz"))
    # a length field of 4 GiB for the header itself: refused before it is read
    (tmp_path / "long.npy").write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + b"{")
    with pytest.raises(
        ConfigError,
        match=r"long.npy as a .npy array: its header declares 4294967295 bytes, more "
        r"than the 10000 of a .npy header",
    ):
        read_inputs(str(tmp_path / "long.npy"), (3,))
    # a header declaring more data than the file holds: refused before NumPy allocates what it declares
    (tmp_path / "short.npy").write_bytes(npy_bytes(header_text("<f8", False, (1 << 26, 3))) + b"\0" * 80)
    with (
        bounded_allocations(1 << 20),
        pytest.raises(
            ConfigError,
            match=r"short.npy as a .npy array: it is truncated: "
            r"its header declares shape \(67108864, 3\) "
            r"of float64 \(1.5 GiB\), the file holds 80 "
            "bytes of data",
        ),
    ):
        read_inputs(str(tmp_path / "short.npy"), (3,))


def test_the_arrays_of_an_npz_are_bounded_together(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_BYTES", 1000)
    path = tmp_path / "together.npz"
    np.savez(path, x=np.zeros((40, 2)), y=np.arange(40) % 2, x_test=np.zeros((40, 2)), y_test=np.arange(40) % 2)
    with pytest.raises(
        DatasetError,
        match=r"together.npz: its arrays declare 1.88 KiB in all \(x: shape \(40, 2\) "
        r"of float64 \(640 bytes\); .*more than the 1000 bytes",
    ):
        load_npz(str(path))
    np.savez(path, x=np.zeros((40, 2)), y=np.arange(40) % 2)
    assert len(load_npz(str(path)).train) == 29  # 960 bytes in all: within


def test_a_zip_bomb_is_refused_before_it_is_decompressed(tmp_path, monkeypatch):
    # 64 MiB of zeros deflate to ~64 KiB; the bound (made 1 MiB here, 4 GiB really) is checked
    # against what the member declares, so nothing near 64 MiB is ever allocated
    monkeypatch.setattr(limits, "MAX_BYTES", 1 << 20)
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros((1 << 23, 1)), y=np.zeros(1 << 23, np.uint8))
    assert path.stat().st_size < 1 << 20
    with (
        bounded_allocations(4 << 20),
        pytest.raises(
            DatasetError,
            match=r"bomb.npz: cannot read key 'x': it declares "
            r"64 MiB uncompressed, more than the 1 MiB",
        ),
    ):
        load_npz(str(path))
    # a member whose directory entry declares more than its compressed data can expand to
    raw = bytearray(zip_of({"x.npy": array_bytes(np.ones((5, 2))), "y.npy": array_bytes(np.arange(5))}))
    entry = raw.index(b"PK\x01\x02")  # x.npy's central directory entry
    raw[entry + 24 : entry + 28] = struct.pack("<I", 2**31)  # its uncompressed size: 2 GiB
    path.write_bytes(bytes(raw))
    with pytest.raises(
        DatasetError,
        match=r"bomb.npz: cannot read key 'x': it declares 2 GiB uncompressed from "
        r"208 bytes: more than its compression can hold",
    ):
        load_npz(str(path))


# ----------------------------------------------------------------------------
# Paths: what is not a regular file, where a file or a directory is expected


def make_path(folder, name, kind):
    """A path of ``kind`` named ``name`` in ``folder`` (made there)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if kind == "directory":
        path.mkdir()
        (path / "x.png").mkdir()  # a directory named like an image, inside
    elif kind == "symlink loop":
        path.symlink_to(path)
    elif kind == "dangling symlink":
        path.symlink_to(folder / "nowhere")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "under a file":
        (folder / f"{name}.txt").write_text("a file")
        path = folder / f"{name}.txt" / name
    elif kind == "empty file":
        path.write_bytes(b"")
    elif kind == "name with a NUL":
        path = folder / f"a\0{name}"
    elif kind == "name too long":
        path = folder / ("n" * 5000 + name)
    return str(path)


PATH_KINDS = [
    "missing",
    "directory",
    "symlink loop",
    "dangling symlink",
    "fifo",
    "under a file",
    "empty file",
    "name with a NUL",
    "name too long",
]


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_a_path_that_is_not_a_regular_file_is_one_line_for_every_reader(tmp_path, kind):
    def check(error_type, read, path):
        with pytest.raises(error_type) as error:
            read(path)
        assert path.split("\0")[0][:200] in str(error.value) and "\n" not in str(error.value)

    check(DatasetError, load_npz, make_path(tmp_path / "npz", "data.npz", kind))
    check(DatasetError, lambda path: datasets.load("arrays", data=path), make_path(tmp_path / "load", "d.npz", kind))
    for name in ("inputs.npy", "image.png", "input"):
        path = make_path(tmp_path / "inputs" / name, name, kind)
        if kind == "directory":  # a directory is a valid --input: its image files (here none)
            with pytest.raises(ConfigError, match=r"--input directory .* has no image files"):
                read_inputs(path, (1, 8, 8))
        else:
            check(ConfigError, lambda path: read_inputs(path, (1, 8, 8)), path)
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"):
        root = tmp_path / "idx" / name
        path = make_path(root, name, kind)
        if kind in ("missing", "name with a NUL", "name too long", "under a file"):  # the IDX file is absent
            with pytest.raises(DatasetError, match=f"mnist: train-images-idx3-ubyte.gz .*not found in {root}"):
                datasets.mnist(root=str(root))
        else:
            check(DatasetError, lambda path, root=root: datasets.mnist(root=str(root)), path)
        check(DatasetError, datasets.read_idx, path)


def test_a_data_dir_that_is_a_file_and_idx_files_that_are_directories(tmp_path):
    (tmp_path / "notes.txt").write_text("not a directory")
    with pytest.raises(DatasetError, match=r"mnist: --data-dir \(root=\) .*notes.txt is a file, not a directory"):
        datasets.mnist(root=str(tmp_path / "notes.txt"))
    with pytest.raises(DatasetError, match=r"mnist: --data-dir \(root=\) .*notes.txt is a file"):
        datasets.mnist(root=str(tmp_path / "notes.txt"), download=True)
    (tmp_path / "idx" / "train-images-idx3-ubyte.gz").mkdir(parents=True)
    with pytest.raises(
        DatasetError,
        match=r"train-images-idx3-ubyte.gz is a directory; expected the IDX file "
        "train-images-idx3-ubyte.gz of mnist",
    ):
        datasets.mnist(root=str(tmp_path / "idx"))
    os.mkfifo(tmp_path / "pipe-idx1-ubyte")
    with pytest.raises(DatasetError, match=r"pipe-idx1-ubyte is not a regular file \(a device, pipe or socket\)"):
        datasets.read_idx(str(tmp_path / "pipe-idx1-ubyte"))


# ----------------------------------------------------------------------------
# Empty inputs


def test_inputs_of_no_samples_are_refused(tmp_path):
    np.save(tmp_path / "none.npy", np.zeros((0, 1, 8, 8), np.float32))
    with pytest.raises(ConfigError, match=r"none.npy holds no samples \(shape \(0, 1, 8, 8\)\); expected at least one"):
        read_inputs(str(tmp_path / "none.npy"), (1, 8, 8))
    np.save(tmp_path / "none.npy", np.zeros((0, 64), np.float32))
    with pytest.raises(ConfigError, match="none.npy holds no samples"):
        read_inputs(str(tmp_path / "none.npy"), (64,))
    np.savez(tmp_path / "none.npz", x=np.zeros((0, 3)), y=np.zeros(0, np.int64))
    with pytest.raises(DatasetError, match="none.npz: x has 0 samples, too few to split"):
        load_npz(str(tmp_path / "none.npz"))
    with pytest.raises(ConfigError, match="--input: no inputs given"):
        read_inputs([], (3,))
