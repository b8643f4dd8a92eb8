"""Tests of autoencode.data: built-ins, file loaders, validation, scaling, error messages."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import struct
import tempfile
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoencode.data import (
    BUILTIN,
    SCALINGS,
    Dataset,
    Scaler,
    default_scaling,
    gaussian_mixture,
    list_datasets,
    load,
    validate_matrix,
)
from autoencode.errors import ConfigError, DataError

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

IDX_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(arr=None, *, code=None, dims=None, magic=b"\x00\x00", payload=None) -> bytes:
    """An IDX file: magic, type code, ndim, big-endian uint32 dims, then the payload."""
    if arr is not None:
        arr = np.asarray(arr)
        big = arr.dtype.newbyteorder(">") if arr.dtype.itemsize > 1 else arr.dtype
        code = IDX_CODES[big] if code is None else code
        dims = arr.shape if dims is None else dims
        payload = arr.astype(big).tobytes() if payload is None else payload
    header = magic + struct.pack(">BB", code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    return header + (payload or b"")


def write(path, data: bytes):
    with open(path, "wb") as fp:
        fp.write(data)
    return path


def npy_bytes(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def check_error(exc_info, *needles):
    """The error is a DataError with a one-line message containing every needle."""
    exc = exc_info.value
    assert isinstance(exc, DataError), type(exc)
    msg = str(exc)
    assert "\n" not in msg and "\r" not in msg, msg
    for needle in needles:
        assert str(needle) in msg, (needle, msg)
    return msg


def assert_valid(ds):
    assert isinstance(ds, Dataset)
    X = ds.X
    assert isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2
    assert X.flags.c_contiguous and X.shape[0] >= 1 and X.shape[1] >= 1
    assert np.isfinite(X).all()
    if ds.y is not None:
        assert ds.y.shape == (X.shape[0],)


# --------------------------------------------------------------------------------------------
# built-in data sets
# --------------------------------------------------------------------------------------------

SHAPES = {"digits": (1797, 64), "s-curve": (1500, 3), "swiss-roll": (1500, 3),
          "moons": (1000, 2), "circle": (1000, 2), "gaussian-mixture": (2000, 16)}


def test_registry_and_listing():
    assert list(BUILTIN) == list(SHAPES)
    listing = list_datasets()
    assert [name for name, _ in listing] == list(SHAPES)
    for name, desc in listing:
        assert isinstance(desc, str) and desc and "\n" not in desc
        assert callable(BUILTIN[name][0]) and BUILTIN[name][1] == desc


@pytest.mark.parametrize("name", list(SHAPES))
def test_builtin_shapes_and_determinism(name):
    ds = load(name)
    assert_valid(ds)
    assert ds.X.shape == SHAPES[name]
    assert ds.name == name
    assert ds.y is not None and ds.y.shape == (SHAPES[name][0],)
    again = load(name)
    np.testing.assert_array_equal(ds.X, again.X)
    np.testing.assert_array_equal(ds.y, again.y)


@pytest.mark.parametrize("name", [n for n in SHAPES if n != "digits"])
def test_generated_builtins_take_n_and_seed(name):
    a = load(name, n=64, seed=3)
    b = load(name, n=64, seed=3)
    c = load(name, n=64, seed=4)
    assert a.X.shape == (64, SHAPES[name][1])
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    f = BUILTIN[name][0]
    np.testing.assert_array_equal(f(n=64, seed=3).X, a.X)


def test_digits_values_and_subset():
    ds = load("digits")
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert set(np.unique(ds.y)) == set(range(10))
    sub = load("digits", n=100, seed=1)
    assert sub.X.shape == (100, 64)
    np.testing.assert_array_equal(sub.X, load("digits", n=100, seed=1).X)
    # rows of the subset are rows of the full data, in order
    rows = {r.tobytes(): i for i, r in enumerate(ds.X)}
    idx = [rows[r.tobytes()] for r in sub.X]
    assert idx == sorted(idx)
    with pytest.raises(DataError) as ei:
        load("digits", n=5000)
    check_error(ei, "5000", "1797")


def test_circle_radius_and_angle():
    ds = load("circle")
    r = np.linalg.norm(ds.X, axis=1)
    assert abs(r.mean() - 1.0) < 0.01 and r.std() < 0.05
    diff = np.angle(np.exp(1j * (np.arctan2(ds.X[:, 1], ds.X[:, 0]) - ds.y)))  # wrapped
    assert np.abs(diff).max() < 0.2
    assert ds.y.min() >= 0 and ds.y.max() < 2 * np.pi


@pytest.mark.parametrize("dim,latent_dim,components", [(16, 2, 4), (10, 3, 5)])
def test_gaussian_mixture_lies_near_subspace(dim, latent_dim, components):
    noise = 0.05
    ds = gaussian_mixture(n=2000, dim=dim, latent_dim=latent_dim, components=components,
                          noise=noise, seed=0)
    assert ds.X.shape == (2000, dim)
    assert set(np.unique(ds.y)) == set(range(components))
    s = np.linalg.svd(ds.X, compute_uv=False) / math.sqrt(ds.X.shape[0])
    # directions outside the latent subspace carry only the isotropic noise
    assert s[latent_dim:].max() < 1.5 * noise
    assert s[latent_dim - 1] > 10 * noise


@pytest.mark.parametrize("kwargs,needle", [
    (dict(latent_dim=20), "latent_dim is 20"),
    (dict(components=0), "components is 0"),
    (dict(n=0), "n is 0"),
    (dict(noise=-1.0), "noise is -1.0"),
    (dict(seed=-3), "seed is -3"),
    (dict(n=2.5), "n is 2.5"),
])
def test_gaussian_mixture_bad_arguments(kwargs, needle):
    with pytest.raises(DataError) as ei:
        gaussian_mixture(**kwargs)
    check_error(ei, needle)


def test_load_builtin_bad_n():
    with pytest.raises(DataError) as ei:
        load("moons", n=-5)
    check_error(ei, "-5")


# --------------------------------------------------------------------------------------------
# file round trips
# --------------------------------------------------------------------------------------------

def test_npy_round_trip(tmp_path):
    X = np.random.default_rng(0).standard_normal((20, 5))
    np.save(tmp_path / "x.npy", X)
    ds = load(tmp_path / "x.npy")
    assert_valid(ds)
    np.testing.assert_array_equal(ds.X, X)
    assert ds.name == str(tmp_path / "x.npy") and ds.y is None
    np.save(tmp_path / "f32.npy", X.astype(np.float32))
    np.testing.assert_allclose(load(str(tmp_path / "f32.npy")).X, X, rtol=1e-6)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(X))
    assert load(tmp_path / "fortran.npy").X.flags.c_contiguous
    write(tmp_path / "int.NPY", npy_bytes(np.arange(12, dtype=np.int16).reshape(4, 3)))
    np.testing.assert_array_equal(load(tmp_path / "int.NPY").X, np.arange(12).reshape(4, 3))
    np.save(tmp_path / "bool.npy", np.eye(3, dtype=bool))
    np.testing.assert_array_equal(load(tmp_path / "bool.npy").X, np.eye(3))
    sub = load(tmp_path / "x.npy", n=7, seed=2)
    assert sub.X.shape == (7, 5) and sub.X.flags.c_contiguous


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((30, 4)), rng.integers(0, 3, 30)
    np.savez(tmp_path / "a.npz", X=X, y=y)
    ds = load(tmp_path / "a.npz")
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)
    np.savez_compressed(tmp_path / "b.npz", data=X.astype(np.float32), other=np.ones(3))
    np.testing.assert_allclose(load(tmp_path / "b.npz").X, X, rtol=1e-6)
    np.savez(tmp_path / "c.npz", features=X, y=y.astype(float))
    ds = load(tmp_path / "c.npz")
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y.dtype == np.float64
    np.savez(tmp_path / "d.npz", X)  # a single positional array: arr_0
    np.testing.assert_array_equal(load(tmp_path / "d.npz").X, X)
    sub = load(tmp_path / "a.npz", n=10, seed=0)
    assert sub.X.shape == (10, 4) and sub.y.shape == (10,)
    idx = [int(np.flatnonzero((X == row).all(axis=1))[0]) for row in sub.X]
    assert idx == sorted(idx) and len(set(idx)) == 10
    np.testing.assert_array_equal(sub.y, y[idx])


@pytest.mark.parametrize("header", [False, True])
def test_csv_round_trip(tmp_path, header):
    X = np.random.default_rng(2).standard_normal((15, 3))
    lines = ["a,b,c"] if header else []
    lines += [",".join(repr(float(v)) for v in row) for row in X]
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n\n")
    ds = load(tmp_path / "x.csv")
    np.testing.assert_array_equal(ds.X, X)


def test_csv_variants(tmp_path):
    (tmp_path / "q.csv").write_text('\ufeff"x", y\r\n "1", 2e3\r\n-3,  4.5\r\n')
    np.testing.assert_array_equal(load(tmp_path / "q.csv").X, [[1, 2000], [-3, 4.5]])
    (tmp_path / "one.CSV").write_text("7\n")
    np.testing.assert_array_equal(load(tmp_path / "one.CSV").X, [[7.0]])


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
def test_idx_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(3)
    arr = rng.integers(-100, 100, size=(6, 4, 5))
    if dtype == "u1":
        arr = np.abs(arr)
    arr = arr.astype(dtype)
    data = idx_bytes(arr)
    name = "imgs-idx3-ubyte" + (".gz" if gz else "")
    write(tmp_path / name, gzip.compress(data) if gz else data)
    ds = load(tmp_path / name)
    assert_valid(ds)
    np.testing.assert_array_equal(ds.X, arr.reshape(6, 20).astype(float))  # no rescaling


@pytest.mark.parametrize("name", ["m.idx", "m.IDX3", "m.idx.gz", "train-images.idx3-ubyte.gz"])
def test_idx_names(tmp_path, name):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = idx_bytes(arr)
    write(tmp_path / name, gzip.compress(data) if name.endswith(".gz") else data)
    np.testing.assert_array_equal(load(tmp_path / name).X, arr)
    assert default_scaling(tmp_path / name) == "divide"


# --------------------------------------------------------------------------------------------
# error paths
# --------------------------------------------------------------------------------------------

def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(DataError) as ei:
        load("foo")
    check_error(ei, "'foo'", "no such built-in data set or file", "digits", "gaussian-mixture",
                ".npy")
    with pytest.raises(DataError) as ei:
        load("Digits")
    check_error(ei, "'Digits'", "did you mean 'digits'")
    missing = tmp_path / "nope.npy"
    with pytest.raises(DataError) as ei:
        load(missing)
    check_error(ei, "nope.npy")
    with pytest.raises(DataError) as ei:
        load(42)
    check_error(ei, "42", "int")


def test_unknown_extension_and_directory(tmp_path):
    write(tmp_path / "x.txt", b"1,2\n")
    with pytest.raises(DataError) as ei:
        load(tmp_path / "x.txt")
    check_error(ei, "x.txt", ".npy", ".npz", ".csv", "IDX")
    write(tmp_path / "x.npy.gz", gzip.compress(npy_bytes(np.ones((2, 2)))))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "x.npy.gz")
    check_error(ei, "x.npy.gz", "gzip only for IDX")
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(DataError) as ei:
        load(tmp_path / "d.npy")
    check_error(ei, "d.npy", "directory")


@pytest.mark.parametrize("name", ["e.npy", "e.npz", "e.csv", "e.idx", "e.idx.gz"])
def test_empty_files(tmp_path, name):
    write(tmp_path / name, b"")
    with pytest.raises(DataError) as ei:
        load(tmp_path / name)
    check_error(ei, name)


@pytest.mark.parametrize("content,needle", [
    ("\n\n", "no data rows"),
    ("a,b\n", "only a header row"),
])
def test_csv_without_data(tmp_path, content, needle):
    (tmp_path / "h.csv").write_text(content)
    with pytest.raises(DataError) as ei:
        load(tmp_path / "h.csv")
    check_error(ei, "h.csv", needle)


def test_empty_arrays(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((0, 3)))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "z.npy")
    check_error(ei, "z.npy", "(0, 3)")
    np.savez(tmp_path / "z.npz", X=np.zeros((4, 0)))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "z.npz")
    check_error(ei, "z.npz", "(4, 0)")
    write(tmp_path / "z.idx", idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "z.idx")
    check_error(ei, "z.idx", "(0, 28, 28)")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_in_files(tmp_path, bad):
    X = np.ones((5, 3))
    X[2, 1] = bad
    X[4, 0] = np.nan
    np.save(tmp_path / "n.npy", X)
    with pytest.raises(DataError) as ei:
        load(tmp_path / "n.npy")
    check_error(ei, "n.npy", "row 2, column 1", "NaN", "infinite")
    np.savez(tmp_path / "n.npz", X=X.astype(np.float32))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "n.npz")
    check_error(ei, "n.npz", "row 2, column 1")
    write(tmp_path / "n.idx", idx_bytes(X.astype(">f4")))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "n.idx")
    check_error(ei, "n.idx", "row 2, column 1")
    text = "a,b,c\n" + "\n".join(",".join(str(v) for v in row) for row in X)
    (tmp_path / "n.csv").write_text(text)
    with pytest.raises(DataError) as ei:
        load(tmp_path / "n.csv")
    check_error(ei, "n.csv", "row 4 column 2", repr(str(bad)), "2 NaN" if bad != bad else "1 NaN")


def test_csv_non_numeric_cell(tmp_path):
    (tmp_path / "c.csv").write_text("a,b\n1,2\n3,abc\n")
    with pytest.raises(DataError) as ei:
        load(tmp_path / "c.csv")
    check_error(ei, "c.csv", "row 3 column 2", "'abc'", "remove the row")
    (tmp_path / "e.csv").write_text("1,2\n3,\n")
    with pytest.raises(DataError) as ei:
        load(tmp_path / "e.csv")
    check_error(ei, "e.csv", "row 2 column 2", "empty cell")


def test_csv_ragged(tmp_path):
    (tmp_path / "r.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(DataError) as ei:
        load(tmp_path / "r.csv")
    check_error(ei, "r.csv", "row 2 has 2 columns", "first row has 3")
    (tmp_path / "rh.csv").write_text("a,b\n1,2,3\n")
    with pytest.raises(DataError) as ei:
        load(tmp_path / "rh.csv")
    check_error(ei, "rh.csv", "row 2 has 3 columns", "header has 2")


def test_csv_not_utf8(tmp_path):
    write(tmp_path / "b.csv", b"1,2\n\xff\xfe,3\n")
    with pytest.raises(DataError) as ei:
        load(tmp_path / "b.csv")
    check_error(ei, "b.csv", "UTF-8", "0xff")


@pytest.mark.parametrize("arr,needle", [
    (np.array([1, "a", None], dtype=object), "dtype object"),
    (np.ones((3, 2), dtype=complex), "dtype complex128"),
    (np.array([["a", "b"], ["c", "d"]]), "dtype <U1"),
    (np.zeros(3, dtype=[("a", "f8"), ("b", "i4")]), "dtype"),
    (np.array(["2020-01-01"], dtype="datetime64[D]").reshape(1, 1), "datetime64"),
])
def test_npy_bad_dtypes(tmp_path, arr, needle):
    write(tmp_path / "d.npy", npy_bytes(arr, allow_pickle=True))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "d.npy")
    check_error(ei, "d.npy", needle, "expected real numbers")


def test_npy_shapes(tmp_path):
    np.save(tmp_path / "one.npy", np.arange(5.0))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "one.npy")
    check_error(ei, "one.npy", "(5,)", "reshape(-1, 1)")
    np.save(tmp_path / "three.npy", np.ones((2, 3, 4)))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "three.npy")
    check_error(ei, "three.npy", "(2, 3, 4)", "reshape(len(X), -1)")
    np.save(tmp_path / "scalar.npy", np.float64(3.5))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "scalar.npy")
    check_error(ei, "scalar.npy", "3.5")


def test_npy_corrupt(tmp_path):
    good = npy_bytes(np.ones((10, 10)))
    write(tmp_path / "t.npy", good[:-16])
    with pytest.raises(DataError) as ei:
        load(tmp_path / "t.npy")
    check_error(ei, "t.npy", "(10, 10)", "truncated")
    write(tmp_path / "m.npy", b"PK\x03\x04" + good[4:])
    with pytest.raises(DataError) as ei:
        load(tmp_path / "m.npy")
    check_error(ei, "m.npy", "magic", "504b0304")
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (4000000000, 1000000), }"
    raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + 1) + header.encode() + b"\n"
    write(tmp_path / "h.npy", raw + b"\x00" * 64)
    start = time.perf_counter()
    with pytest.raises(DataError) as ei:
        load(tmp_path / "h.npy")
    assert time.perf_counter() - start < 1.0
    check_error(ei, "h.npy", "(4000000000, 1000000)", "truncated")
    write(tmp_path / "g.npy",
          b"\x93NUMPY\x01\x00" + struct.pack("<H", 20) + b"{'descr': nonsense }")
    with pytest.raises(DataError) as ei:
        load(tmp_path / "g.npy")
    check_error(ei, "g.npy", "header")


def test_npz_bad_keys(tmp_path):
    np.savez(tmp_path / "k.npz", a=np.ones((2, 2)), b=np.ones((2, 2)))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "k.npz")
    check_error(ei, "k.npz", "['a', 'b']", "'X'")
    np.savez(tmp_path / "y.npz", y=np.ones(3))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "y.npz")
    check_error(ei, "y.npz", "['y']")
    np.savez(tmp_path / "o.npz", X=np.array([[1, None]], dtype=object))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "o.npz")
    check_error(ei, "o.npz", "dtype object")
    np.savez(tmp_path / "l.npz", X=np.ones((3, 2)), y=np.ones(4))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "l.npz")
    check_error(ei, "l.npz", "(4,)", "(3,)")
    np.savez(tmp_path / "s.npz", X=np.ones((2, 2)), y=np.array(["a", "b"]))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "s.npz")
    check_error(ei, "s.npz", "<U1", "labels")
    write(tmp_path / "nz.npz", b"this is not a zip archive")
    with pytest.raises(DataError) as ei:
        load(tmp_path / "nz.npz")
    check_error(ei, "nz.npz", "npz")


def test_npz_member_claims_huge_shape(tmp_path):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2147483648, 784), }"
    member = (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + 1) + header.encode()
              + b"\n" + b"\x00" * 80)
    with zipfile.ZipFile(tmp_path / "h.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("X.npy", member)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError) as ei:
            load(tmp_path / "h.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0 and peak < 20 * 2**20
    check_error(ei, "h.npz", "(2147483648, 784)", "truncated")


def test_npz_zip_bomb_sizes_refused(tmp_path):
    # a stored member whose declared uncompressed size disagrees with its stored size
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("X.npy", npy_bytes(np.ones((2, 2))))
    raw = bytearray(buf.getvalue())
    cd = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<I", raw, cd + 24, 10**9)  # central directory: uncompressed size
    write(tmp_path / "b.npz", bytes(raw))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "b.npz")
    check_error(ei, "b.npz", "1000000000")


@pytest.mark.parametrize("gz", [False, True])
def test_idx_header_claims_2_31_images(tmp_path, gz):
    data = idx_bytes(code=0x08, dims=(2**31, 28, 28), payload=b"\x00" * 784 * 4)
    name = "huge-ubyte" + (".gz" if gz else "")
    write(tmp_path / name, gzip.compress(data) if gz else data)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError) as ei:
            load(tmp_path / name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 20 * 2**20
    check_error(ei, name, "(2147483648, 28, 28)")


def test_idx_gzip_bomb(tmp_path):
    # header says 1000 x 1000 bytes (1 MB), the stream holds 50 MB of zeros: decompression
    # must stop right after the declared size
    body = idx_bytes(code=0x08, dims=(1000, 1000)) + bytes(50 * 2**20)
    write(tmp_path / "bomb.idx.gz", gzip.compress(body, compresslevel=1))
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as ei:
            load(tmp_path / "bomb.idx.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20
    check_error(ei, "bomb.idx.gz", "1000000", "more than")


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, gz):
    data = idx_bytes(np.ones((10, 28, 28), np.uint8))[:-100]
    name = "t.idx" + (".gz" if gz else "")
    write(tmp_path / name, gzip.compress(data) if gz else data)
    with pytest.raises(DataError) as ei:
        load(tmp_path / name)
    check_error(ei, name, "(10, 28, 28)", "truncated", "7740")


def test_idx_header_errors(tmp_path):
    cases = {
        "magic.idx": (idx_bytes(np.ones((2, 2), np.uint8), magic=b"\x01\x02"), "0x01020802"),
        "code.idx": (idx_bytes(np.ones((2, 2), np.uint8), code=0x07), "0x07"),
        "labels.idx": (idx_bytes(np.ones(5, np.uint8)), "1-D labels"),
        "ndim0.idx": (b"\x00\x00\x08\x00", "0 dimensions"),
        "short.idx": (b"\x00\x00", "2 bytes"),
        "hdr.idx": (b"\x00\x00\x08\x03\x00\x00\x00\x05", "4 of 12"),
        "long.idx": (idx_bytes(np.ones((2, 2), np.uint8)) + b"extra", "9 bytes"),
    }
    for name, (data, needle) in cases.items():
        write(tmp_path / name, data)
        with pytest.raises(DataError) as ei:
            load(tmp_path / name)
        check_error(ei, name, needle)
    write(tmp_path / "notgz.idx.gz", idx_bytes(np.ones((2, 2), np.uint8)))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "notgz.idx.gz")
    check_error(ei, "notgz.idx.gz", "gzip")
    write(tmp_path / "longer.idx.gz", gzip.compress(idx_bytes(np.ones((2, 2), np.uint8)) + b"x"))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "longer.idx.gz")
    check_error(ei, "longer.idx.gz", "more than the 4 data bytes")


# --------------------------------------------------------------------------------------------
# validate_matrix and Dataset
# --------------------------------------------------------------------------------------------

def test_validate_matrix_conversions():
    X = np.ones((3, 2))
    assert validate_matrix(X) is X
    out = validate_matrix([[1, 2], [3, 4]])
    assert out.dtype == np.float64 and out.flags.c_contiguous
    np.testing.assert_array_equal(validate_matrix(np.asfortranarray(X)), X)
    np.testing.assert_array_equal(validate_matrix(np.ones((3, 2), np.float32)), X)
    torch = pytest.importorskip("torch")
    t = torch.ones(3, 2, requires_grad=True)
    np.testing.assert_array_equal(validate_matrix(t), X)
    np.testing.assert_array_equal(validate_matrix(torch.ones(3, 2, dtype=torch.bfloat16)), X)
    with pytest.raises(DataError) as ei:
        validate_matrix(torch.ones(2, 2, dtype=torch.complex64), "Z")
    check_error(ei, "Z", "complex")
    with pytest.raises(DataError) as ei:
        validate_matrix(torch.full((2, 2), float("nan")))
    check_error(ei, "4 NaN")
    assert validate_matrix(np.zeros((0, 3)), min_rows=0).shape == (0, 3)


@pytest.mark.parametrize("X,what,needles", [
    ([[1, 2], [3]], "data", ["data", "list", "same length"]),
    (np.arange(4.0), "X", ["(4,)", "reshape(-1, 1)"]),
    (np.zeros((0, 4)), "X", ["(0, 4)", "0 samples"]),
    (np.zeros((4, 0)), "X", ["(4, 0)", "no features"]),
    (np.ones((2, 2), complex), "X", ["complex128"]),
    (np.array([["1", "2"]]), "X", ["<U1"]),
    (np.array([[1.0, np.inf], [np.nan, np.nan]]), "batch",
     ["batch", "2 NaN and 1 infinite", "row 0, column 1"]),
    (np.array([[np.finfo(np.longdouble).max]], dtype=np.longdouble), "X", ["infinite"]),
])
def test_validate_matrix_errors(X, what, needles):
    if isinstance(X, np.ndarray) and X.dtype == np.longdouble and \
            np.finfo(np.longdouble).max <= np.finfo(np.float64).max:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(DataError) as ei:
        validate_matrix(X, what)
    check_error(ei, *needles)


def test_validate_matrix_min_rows_and_sparse():
    with pytest.raises(DataError) as ei:
        validate_matrix(np.ones((2, 3)), min_rows=5)
    check_error(ei, "(2, 3)", "at least 5")
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(DataError) as ei:
        validate_matrix(sparse.csr_matrix(np.eye(3)))
    check_error(ei, "csr_matrix", "toarray")


def test_dataset_checks():
    with pytest.raises(DataError) as ei:
        Dataset(X=np.ones((3, 2), np.float32), y=None, name="a")
    check_error(ei, "float32", "validate_matrix")
    with pytest.raises(DataError) as ei:
        Dataset(X=np.ones((3, 2)), y=np.ones(4), name="a")
    check_error(ei, "(4,)", "(3,)")
    ds = Dataset(X=np.ones((3, 2)), y=None, name="a")
    assert ds.n_samples == 3 and ds.n_features == 2
    with pytest.raises(AttributeError):
        ds.name = "b"


# --------------------------------------------------------------------------------------------
# scaling
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", SCALINGS)
def test_scaler_round_trip(kind):
    rng = np.random.default_rng(5)
    X = rng.normal(3.0, 2.0, size=(50, 4)) * [1, 10, 100, 0]  # last column constant 0
    X[:, 3] = 7.0
    s = Scaler.fit(X, kind)
    Z = s.transform(X)
    assert Z is not X and Z.dtype == np.float64
    np.testing.assert_allclose(s.inverse_transform(Z), X, rtol=1e-12, atol=1e-12)
    if kind == "minmax":
        np.testing.assert_allclose(Z[:, :3].min(0), 0, atol=1e-15)
        np.testing.assert_allclose(Z[:, :3].max(0), 1, atol=1e-15)
        assert s.scale[3] == 1.0 and np.all(Z[:, 3] == 0)
    elif kind == "standard":
        np.testing.assert_allclose(Z[:, :3].mean(0), 0, atol=1e-12)
        np.testing.assert_allclose(Z[:, :3].std(0), 1, atol=1e-12)
        assert s.scale[3] == 1.0
    elif kind == "divide":
        assert s.offset is None and s.scale.shape == (1,)
        assert Z.max() == 1.0
    else:
        np.testing.assert_array_equal(Z, X)
    d = json.loads(json.dumps(s.to_dict()))
    s2 = Scaler.from_dict(d)
    assert s2.kind == kind and s2.to_dict() == s.to_dict()
    np.testing.assert_array_equal(s2.transform(X), Z)
    if s.scale is not None:
        with pytest.raises(ValueError):
            s.scale[0] = 5.0  # read-only


def test_scaler_divide_nonpositive_and_images():
    assert Scaler.fit(-np.ones((2, 2)), "divide").scale[0] == 1.0
    X = np.array([[0, 255], [128, 3]], dtype=np.uint8)
    np.testing.assert_allclose(Scaler.fit(X, "divide").transform(X), X / 255.0)


def test_scaler_errors():
    with pytest.raises(ConfigError) as ei:
        Scaler.fit(np.ones((2, 2)), "robust")
    assert "'robust'" in str(ei.value) and "minmax" in str(ei.value)
    s = Scaler.fit(np.ones((4, 3)), "standard")
    with pytest.raises(DataError) as ei:
        s.transform(np.ones((4, 2)))
    check_error(ei, "2 columns", "fitted on 3")
    with pytest.raises(DataError) as ei:
        Scaler.fit([[1.0, np.nan]], "minmax")
    check_error(ei, "NaN")


@pytest.mark.parametrize("d,needle", [
    ([1, 2], "list"),
    ({"kind": "none"}, "['kind']"),
    ({"kind": "none", "offset": None, "scale": None, "x": 1}, "'x'"),
    ({"kind": "zscore", "offset": None, "scale": None}, "'zscore'"),
    ({"kind": 3, "offset": None, "scale": None}, "kind 3"),
    ({"kind": "minmax", "offset": [0.0], "scale": "1"}, "'1'"),
    ({"kind": "minmax", "offset": [0.0], "scale": [True]}, "[True]"),
    ({"kind": "minmax", "offset": [0.0], "scale": [float("nan")]}, "[nan]"),
    ({"kind": "minmax", "offset": [0.0], "scale": []}, "[]"),
    ({"kind": "minmax", "offset": [0.0], "scale": [0.0]}, "[0.0]"),
    ({"kind": "minmax", "offset": [0.0, 1.0], "scale": [1.0]}, "2 entries"),
    ({"kind": "standard", "offset": None, "scale": [1.0]}, "offset=None"),
    ({"kind": "none", "offset": None, "scale": [1.0]}, "scale=array"),
    ({"kind": "divide", "offset": None, "scale": [1.0, 2.0]}, "2 scale entries"),
])
def test_scaler_from_dict_garbage(d, needle):
    with pytest.raises(DataError) as ei:
        Scaler.from_dict(d)
    check_error(ei, needle)


def test_default_scaling(tmp_path):
    for name in BUILTIN:
        assert default_scaling(name) == "none"
    assert default_scaling("train-images-idx3-ubyte.gz") == "divide"
    assert default_scaling(tmp_path / "a.idx") == "divide"
    assert default_scaling("a.csv") == "standard"
    assert default_scaling(tmp_path / "a.npy") == "standard"
    assert default_scaling("x.npz") == "standard"


# --------------------------------------------------------------------------------------------
# fuzzing: arbitrary bytes either load as valid data or raise DataError
# --------------------------------------------------------------------------------------------

def _npz_bytes(compressed=False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


_RNG = np.random.default_rng(0)
_IDX_BASES = [idx_bytes(_RNG.integers(0, 255, (3, 4, 4)).astype(np.uint8)),
              idx_bytes(_RNG.standard_normal((4, 3)).astype(">f8")),
              idx_bytes(_RNG.integers(-9, 9, (2, 5)).astype(">i2")),
              idx_bytes(np.array([[np.nan, 1.0]], dtype=">f4"))]
BASES = {
    "x.npy": [npy_bytes(_RNG.standard_normal((4, 3))),
              npy_bytes(np.arange(24, dtype=np.int8).reshape(2, 3, 4)),
              npy_bytes(np.asfortranarray(_RNG.standard_normal((3, 5)).astype(np.float32))),
              npy_bytes(np.array([[1.0, np.nan]])), npy_bytes(np.zeros((0, 3)))],
    "x.npz": [_npz_bytes(X=_RNG.standard_normal((4, 3)), y=np.arange(4)),
              _npz_bytes(True, data=np.ones((3, 2), np.float32)),
              _npz_bytes(a=np.ones(3), b=np.ones((2, 2)))],
    "x.csv": [b"a,b\n1,2\n3,4\n", b"1.5e3,-2\n0,nan\n", b"\xef\xbb\xbf1\n2\n3\n"],
    "x.idx": _IDX_BASES,
    "x-ubyte.gz": [gzip.compress(b) for b in _IDX_BASES],
}


@st.composite
def mutated(draw, kind):
    data = bytearray(draw(st.sampled_from(BASES[kind])))
    for op, pos, chunk in draw(st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert"]),
                                                  st.integers(0, 2**16),
                                                  st.binary(min_size=1, max_size=8)),
                                        max_size=3)):
        pos %= len(data) + 1
        if op == "flip" and pos < len(data):
            data[pos:pos + len(chunk)] = chunk[:len(data) - pos]
        elif op == "cut":
            del data[pos:]
        else:
            data[pos:pos] = chunk
        if not data:
            break
    return bytes(data)


def _contents(kind):
    options = [st.binary(max_size=300), mutated(kind)]
    if kind == "x.csv":
        options.append(st.text(alphabet="0123456789.,-+eE\n\r naifINF\"x", max_size=120)
                       .map(str.encode))
    if kind == "x-ubyte.gz":
        options.append(mutated("x.idx").map(gzip.compress))
    return st.one_of(*options)


def _check_fuzz(kind, content):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, kind)
        write(path, content)
        try:
            ds = load(path)
        except DataError as exc:
            assert "\n" not in str(exc) and "\r" not in str(exc), str(exc)
            return
        assert_valid(ds)
        del ds  # release a memory map before the directory goes


_FUZZ = settings(max_examples=60, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])


@_FUZZ
@given(content=_contents("x.npy"))
def test_fuzz_npy(content):
    _check_fuzz("x.npy", content)


@_FUZZ
@given(content=_contents("x.npz"))
def test_fuzz_npz(content):
    _check_fuzz("x.npz", content)


@_FUZZ
@given(content=_contents("x.csv"))
def test_fuzz_csv(content):
    _check_fuzz("x.csv", content)


@_FUZZ
@given(content=_contents("x.idx"))
def test_fuzz_idx(content):
    _check_fuzz("x.idx", content)


@_FUZZ
@given(content=_contents("x-ubyte.gz"))
def test_fuzz_idx_gz(content):
    _check_fuzz("x-ubyte.gz", content)
