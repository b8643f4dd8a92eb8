"""Data sets: built-in generators, file loaders, validation and scaling.

Everything that enters the library as data passes through :func:`validate_matrix`, the single
validator shared by :func:`load` and the estimator. It returns a 2-D, C-contiguous float64
array with at least one row and one column and only finite entries, or raises a one-line
:class:`~autoencode.errors.DataError` naming the value received, what was expected and how
to fix it.

Sources accepted by :func:`load`
--------------------------------
* Built-in names (case-sensitive, see :data:`BUILTIN` and :func:`list_datasets`):
  ``digits``, ``s-curve``, ``swiss-roll``, ``moons``, ``circle``, ``gaussian-mixture``.
  The generated ones take ``n`` and ``seed``; ``digits`` is fixed (1797 x 64).
  A built-in name wins over a file of the same name in the working directory.
* Files, chosen by extension (case-insensitive):

  - ``.npy``: read with ``allow_pickle=False`` and memory-mapped; a float64 C-ordered file
    stays memory-mapped (``Dataset.X`` is then a read-only view), anything else is
    converted to float64 in memory.
  - ``.npz``: the array ``X``, else ``data``, else the only array that is not ``y``;
    an optional ``y`` array holds labels.
  - ``.csv``: numeric, comma-separated; the first row is a header when any of its cells is
    not a number. Blank lines are skipped.
  - MNIST IDX: ``.idx`` (also ``.idx1`` ... ``.idx9``) or a name ending in ``-ubyte``,
    each optionally ``.gz``. Headers are validated against the actual byte count before
    anything is allocated, and gzip decompression is capped at the size the header implies.
    Arrays with three or more dimensions are flattened to ``(N, prod(rest))``.

For fixed data (``digits`` and files), ``load(..., n=k)`` draws a random subset of ``k``
rows without replacement (original order kept) using ``seed`` (default 0); ``seed`` alone
has no effect on fixed data.

Scaling policy
--------------
Loaders never rescale. :class:`Scaler` does, and :func:`default_scaling` picks its kind:

* ``"none"`` for built-in data sets (``digits`` is already divided by 16, the generated sets
  are of order one by construction);
* ``"divide"`` (one global divisor, the maximum) for IDX files, which hold raw pixel values;
* ``"standard"`` (per-column zero mean, unit variance) for every other file.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import numbers
import os
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import ConfigError, DataError

__all__ = [
    "is_memory_mapped",
    "BUILTIN",
    "SCALINGS",
    "Dataset",
    "Scaler",
    "circle",
    "default_scaling",
    "digits",
    "gaussian_mixture",
    "list_datasets",
    "load",
    "load_csv",
    "load_idx",
    "load_npy",
    "load_npz",
    "moons",
    "s_curve",
    "swiss_roll",
    "validate_matrix",
]

#: Scaling kinds understood by :class:`Scaler`.
SCALINGS = ("none", "minmax", "standard", "divide")

_FILE_KINDS = ".npy, .npz, .csv or MNIST IDX (.idx or a name ending in -ubyte, optionally .gz)"
_MAX_NAME = 200
_CHUNK_ELEMENTS = 1 << 22
# Deflate cannot expand data by more than about 1032:1; anything claiming more is corrupt or
# a decompression bomb.
_MAX_DEFLATE_RATIO = 1100
_MAX_NPY_HEADER = 1 << 16


def _q(value) -> str:
    """Quote a name for a one-line message (repr escapes newlines; long names are cut)."""
    text = str(value)
    if len(text) > _MAX_NAME:
        text = text[:_MAX_NAME] + "..."
    return repr(text)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _as_array(X, what: str) -> np.ndarray:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(X, torch.Tensor):
        try:
            t = X.detach()
            if t.is_complex():
                raise DataError(
                    f"{what} is a complex tensor of dtype {t.dtype}; expected real numbers; "
                    "take the real part or the absolute value first")
            if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32,
                                                         torch.float64):
                t = t.to(torch.float64)
            return np.asarray(t.cpu().numpy())
        except DataError:
            raise
        except (RuntimeError, TypeError, ValueError, NotImplementedError) as exc:
            raise DataError(f"{what}: cannot convert the tensor to an array ({_one_line(exc)}); "
                            "pass a CPU tensor or a NumPy array") from None
    if isinstance(X, np.ndarray):
        return np.asarray(X)
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise DataError(f"{what} is a sparse matrix of type {type(X).__name__}; "
                        "expected a dense array; convert it with X.toarray()")
    try:
        return np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{what} of type {type(X).__name__} cannot be read as an array "
                        f"({_one_line(exc)}); expected a 2-D array or a list of equal-length "
                        "rows of numbers; make every row the same length") from None


def _check_dtype(dtype: np.dtype, what: str) -> None:
    if dtype.kind in "biuf" and dtype.fields is None:
        return
    if dtype.kind == "c":
        fix = "take the real part (X.real) or the absolute value (abs(X)) first"
    elif dtype.fields is not None or dtype.kind == "V":
        fix = ("store a plain numeric array, e.g. "
               "numpy.lib.recfunctions.structured_to_unstructured(X)")
    elif dtype.kind in "US":
        fix = "convert the strings to numbers first, e.g. X.astype(float)"
    elif dtype.kind == "O":
        fix = "convert it to a numeric array, e.g. numpy.asarray(X, dtype=float)"
    else:
        fix = "convert it to a numeric array, e.g. X.astype(float)"
    raise DataError(f"{what} has dtype {dtype}; expected real numbers (float, int or bool); {fix}")


def is_memory_mapped(X) -> bool:
    """Whether ``X`` is (a view of) a memory-mapped array, i.e. its rows live on disk."""
    import mmap
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


def validate_matrix(X, what: str = "X", *, min_rows: int = 1) -> np.ndarray:
    """Check data and return it as a 2-D, C-contiguous float64 NumPy array.

    Parameters
    ----------
    X:
        A NumPy array (memory-mapped arrays included), a torch tensor (detached and moved to
        the CPU), or a nested list of numbers.
    what:
        How to name ``X`` in error messages, e.g. ``"data file 'x.npy'"``.
    min_rows:
        The least number of rows (samples) accepted.

    Returns
    -------
    numpy.ndarray
        ``X`` itself when it already is a C-contiguous float64 ndarray (a memory-mapped one
        stays memory-mapped, as a plain ndarray view), otherwise a float64 copy.

    Raises
    ------
    DataError
        For a non-numeric or complex dtype, a shape that is not 2-D, fewer than ``min_rows``
        rows or no columns, and NaN or infinite entries (their count and the first
        offending position, 0-based, are reported).
    """
    arr = _as_array(X, what)
    _check_dtype(arr.dtype, what)
    if arr.ndim != 2:
        if arr.ndim == 0:
            raise DataError(f"{what} is a scalar (0-D) {arr.item()!r}; expected a 2-D array "
                            "(N samples, d features); wrap it as [[value]]")
        if arr.ndim == 1:
            raise DataError(f"{what} is 1-D with shape {arr.shape}; expected a 2-D array "
                            "(N samples, d features); use X.reshape(-1, 1) for one feature or "
                            "X.reshape(1, -1) for one sample")
        raise DataError(f"{what} has {arr.ndim} dimensions, shape {arr.shape}; expected a 2-D "
                        "array (N samples, d features); flatten it with X.reshape(len(X), -1)")
    n, d = arr.shape
    if n < min_rows:
        raise DataError(f"{what} has shape {arr.shape}, i.e. {n} samples; expected at least "
                        f"{min_rows}; give non-empty data")
    if d < 1:
        raise DataError(f"{what} has shape {arr.shape}, i.e. no features; expected at least one "
                        "column; give non-empty data")
    if arr.dtype == np.float64 and arr.flags.c_contiguous:
        out = arr
        copy = False
    else:
        out = np.empty(arr.shape, dtype=np.float64)
        copy = True
    check = arr.dtype.kind == "f"
    step = max(1, _CHUNK_ELEMENTS // d)
    n_nan = n_inf = 0
    first = None
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, step):
            block = arr[start:start + step]
            if copy:
                out[start:start + step] = block
                block = out[start:start + step]
            if check:
                finite = np.isfinite(block)
                if not finite.all():
                    nan = np.isnan(block)
                    n_nan += int(nan.sum())
                    n_inf += int((~finite).sum()) - int(nan.sum())
                    if first is None:
                        r, c = np.argwhere(~finite)[0]
                        first = (start + int(r), int(c))
    if first is not None:
        raise DataError(f"{what} has {n_nan} NaN and {n_inf} infinite entries (first at row "
                        f"{first[0]}, column {first[1]}, 0-based); expected finite numbers; "
                        "remove or impute those entries")
    return out


def _validate_labels(y, n: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "biuf" or y.dtype.fields is not None:
        raise DataError(f"{what} has dtype {y.dtype}; expected numeric labels; encode them as "
                        "integers, e.g. numpy.unique(y, return_inverse=True)[1]")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{what} has shape {y.shape}; expected one label per sample, shape "
                        f"({n},); give labels of the same length as the data")
    if y.dtype.kind == "f":
        y = np.ascontiguousarray(y, dtype=np.float64)
        bad = ~np.isfinite(y)
        if bad.any():
            raise DataError(f"{what} has {int(bad.sum())} non-finite labels (first at index "
                            f"{int(np.argmax(bad))}); expected finite labels; fix or drop them")
        return y
    if y.dtype == np.uint64 and y.size and int(y.max()) > np.iinfo(np.int64).max:
        return y.astype(np.float64)
    return np.ascontiguousarray(y, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Dataset:
    """A validated data set.

    Attributes
    ----------
    X:
        float64 array of shape ``(N, d)``, C-contiguous, finite (see :func:`validate_matrix`).
        It may be a read-only view of a memory-mapped ``.npy`` file.
    y:
        Labels or a colouring parameter, shape ``(N,)`` (int64 or float64), or ``None``.
    name:
        The built-in name or the path the data came from.

    Construction checks types and shapes but not finiteness; build ``X`` with
    :func:`validate_matrix` (as :func:`load` does). Equality is identity (arrays have no
    single truth value).
    """

    X: np.ndarray
    y: np.ndarray | None
    name: str

    def __post_init__(self):
        X = self.X
        if (not isinstance(X, np.ndarray) or X.dtype != np.float64 or X.ndim != 2
                or not X.flags.c_contiguous):
            desc = (f"{type(X).__name__} of dtype {X.dtype} and shape {X.shape}"
                    if isinstance(X, np.ndarray) else type(X).__name__)
            raise DataError(f"Dataset X is a {desc}; expected a C-contiguous float64 array of "
                            "shape (N, d); build it with validate_matrix(X)")
        if self.y is not None:
            y = self.y
            if not isinstance(y, np.ndarray) or y.ndim != 1 or y.shape[0] != X.shape[0]:
                shape = getattr(y, "shape", type(y).__name__)
                raise DataError(f"Dataset y has shape {shape}; expected ({X.shape[0]},), one "
                                "label per row of X; give matching labels or y=None")
        if not isinstance(self.name, str):
            raise DataError(f"Dataset name is {self.name!r} of type {type(self.name).__name__}; "
                            "expected a string; pass name=str(...)")

    @property
    def n_samples(self) -> int:
        """Number of rows N."""
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        """Number of columns d."""
        return self.X.shape[1]


# --------------------------------------------------------------------------------------------
# Built-in data sets
# --------------------------------------------------------------------------------------------

def _int_arg(value, name: str, low: int, high: int | None = None) -> int:
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low
            or (high is not None and value > high)):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise DataError(f"{name} is {value!r}; expected an integer {rng}; pass a valid {name}")
    return int(value)


def _noise_arg(value) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < 0):
        raise DataError(f"noise is {value!r}; expected a finite number >= 0; pass e.g. noise=0.05")
    return float(value)


def _seed_arg(seed) -> int:
    return _int_arg(seed, "seed", 0, 2**32 - 1)


def _make(X, y, name: str) -> Dataset:
    X = validate_matrix(X, f"built-in data set {name!r}")
    if y is not None:
        y = _validate_labels(y, X.shape[0], f"labels of {name!r}")
    return Dataset(X=X, y=y, name=name)


def digits() -> Dataset:
    """scikit-learn's 8x8 handwritten digits: X of shape (1797, 64) in [0, 1] (pixels / 16),
    y the digit 0-9. Fixed data: no size or seed."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return _make(np.asarray(X, dtype=np.float64) / 16.0, y, "digits")


def s_curve(n: int = 1500, noise: float = 0.05, seed: int = 0) -> Dataset:
    """The 3-D S-curve (a 2-D manifold), ``make_s_curve``; y is the position along the curve."""
    from sklearn.datasets import make_s_curve

    n, noise, seed = _int_arg(n, "n", 1), _noise_arg(noise), _seed_arg(seed)
    X, t = make_s_curve(n_samples=n, noise=noise, random_state=seed)
    return _make(X, t, "s-curve")


def swiss_roll(n: int = 1500, noise: float = 0.05, seed: int = 0) -> Dataset:
    """The 3-D Swiss roll (a 2-D manifold), ``make_swiss_roll``; y is the position along the
    roll."""
    from sklearn.datasets import make_swiss_roll

    n, noise, seed = _int_arg(n, "n", 1), _noise_arg(noise), _seed_arg(seed)
    X, t = make_swiss_roll(n_samples=n, noise=noise, random_state=seed)
    return _make(X, t, "swiss-roll")


def moons(n: int = 1000, noise: float = 0.05, seed: int = 0) -> Dataset:
    """Two interleaving half circles in 2-D, ``make_moons``; y is the moon, 0 or 1."""
    from sklearn.datasets import make_moons

    n, noise, seed = _int_arg(n, "n", 1), _noise_arg(noise), _seed_arg(seed)
    X, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return _make(X, y, "moons")


def circle(n: int = 1000, noise: float = 0.02, seed: int = 0) -> Dataset:
    """Points on the unit circle in R^2 plus Gaussian noise of standard deviation ``noise``;
    y is the angle in [0, 2 pi)."""
    n, noise, seed = _int_arg(n, "n", 1), _noise_arg(noise), _seed_arg(seed)
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.0, 2.0 * np.pi, size=n)
    X = np.column_stack([np.cos(theta), np.sin(theta)]) + noise * rng.standard_normal((n, 2))
    return _make(X, theta, "circle")


def gaussian_mixture(n: int = 2000, dim: int = 16, latent_dim: int = 2, components: int = 4,
                     noise: float = 0.05, seed: int = 0) -> Dataset:
    """A mixture of ``components`` Gaussians living in a random ``latent_dim``-dimensional
    linear subspace of R^dim, plus isotropic noise of standard deviation ``noise``.

    The subspace has a random orthonormal basis; component means are drawn from
    N(0, 2^2 I) and covariance factors from N(0, 0.5^2) within the subspace; components are
    equally likely. y is the component index.
    """
    n = _int_arg(n, "n", 1)
    dim = _int_arg(dim, "dim", 1)
    latent_dim = _int_arg(latent_dim, "latent_dim", 1, dim)
    components = _int_arg(components, "components", 1)
    noise, seed = _noise_arg(noise), _seed_arg(seed)
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, latent_dim)))
    means = 2.0 * rng.standard_normal((components, latent_dim))
    factors = 0.5 * rng.standard_normal((components, latent_dim, latent_dim))
    labels = rng.integers(components, size=n)
    eps = rng.standard_normal((n, latent_dim))
    z = means[labels] + np.einsum("nij,nj->ni", factors[labels], eps)
    X = z @ basis.T + noise * rng.standard_normal((n, dim))
    return _make(X, labels, "gaussian-mixture")


#: Built-in data sets: name -> (function, one-line description).
BUILTIN: dict[str, tuple[Callable[..., Dataset], str]] = {
    "digits": (digits, "scikit-learn 8x8 handwritten digits, 1797 x 64, pixels / 16 in [0, 1], "
                       "labels 0-9"),
    "s-curve": (s_curve, "3-D S-curve (a 2-D manifold), 1500 x 3, noise 0.05, "
                         "y = position along the curve"),
    "swiss-roll": (swiss_roll, "3-D Swiss roll (a 2-D manifold), 1500 x 3, noise 0.05, "
                               "y = position along the roll"),
    "moons": (moons, "two interleaving half circles in 2-D, 1000 x 2, noise 0.05, labels 0/1"),
    "circle": (circle, "unit circle in R^2 (a 1-D manifold), 1000 x 2, noise 0.02, y = angle"),
    "gaussian-mixture": (gaussian_mixture, "4 Gaussians in a random 2-D subspace of R^16, "
                                           "2000 x 16, noise 0.05, labels = component"),
}

_FIXED = frozenset({"digits"})


def list_datasets() -> list[tuple[str, str]]:
    """The built-in data sets as ``(name, description)`` pairs, in registry order."""
    return [(name, desc) for name, (_, desc) in BUILTIN.items()]


# --------------------------------------------------------------------------------------------
# File loaders
# --------------------------------------------------------------------------------------------

def _file_label(path) -> str:
    return f"data file {_q(os.fspath(path))}"


def _read_exact(fp, size: int) -> bytes:
    """Read up to ``size`` bytes, in bounded chunks (never one huge request)."""
    parts = []
    left = size
    while left > 0:
        chunk = fp.read(min(left, 1 << 24))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _read_npy_header(fp, available: int, label: str):
    """Parse a .npy header from ``fp`` holding ``available`` bytes in all.

    Returns ``(shape, fortran_order, dtype, header_bytes)``; every size is checked against
    ``available`` before it is read.
    """
    magic = _read_exact(fp, 8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
        raise DataError(f"{label} does not start with the .npy magic bytes (got "
                        f"{magic[:8].hex() or 'an empty file'}); expected a file written by "
                        "numpy.save; re-save it with numpy.save")
    version = (magic[6], magic[7])
    if version == (1, 0):
        len_fmt = "<H"
    elif version in ((2, 0), (3, 0)):
        len_fmt = "<I"
    else:
        raise DataError(f"{label} has .npy format version {version[0]}.{version[1]}; expected "
                        "1.0, 2.0 or 3.0; re-save it with numpy.save")
    raw_len = _read_exact(fp, struct.calcsize(len_fmt))
    if len(raw_len) < struct.calcsize(len_fmt):
        raise DataError(f"{label} is truncated inside its .npy header ({available} bytes); "
                        "expected a complete file; re-save it with numpy.save")
    (hlen,) = struct.unpack(len_fmt, raw_len)
    offset = 8 + len(raw_len) + hlen
    if hlen > _MAX_NPY_HEADER or offset > available:
        raise DataError(f"{label} declares a .npy header of {hlen} bytes but holds {available} "
                        "bytes in all; the file is truncated or corrupt; re-save it with "
                        "numpy.save")
    header = _read_exact(fp, hlen)
    if len(header) < hlen:
        raise DataError(f"{label} is truncated inside its .npy header; expected {hlen} header "
                        "bytes; re-save it with numpy.save")
    try:
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = reader(io.BytesIO(raw_len + header))
    except Exception as exc:  # numpy parses untrusted text: any failure means a bad header
        raise DataError(f"{label} has a corrupt .npy header ({_one_line(exc)}); expected a file "
                        "written by numpy.save; re-save it") from None
    if any(dim < 0 for dim in shape):
        raise DataError(f"{label} declares the negative shape {shape}; the file is corrupt; "
                        "re-save it with numpy.save")
    _check_dtype(dtype, label)
    return tuple(shape), fortran, dtype, offset


def _empty_error(label: str, shape) -> DataError:
    return DataError(f"{label} holds an empty array of shape {tuple(shape)}; expected at least "
                     "one sample and one feature; give non-empty data")


def _open_guard(path, label: str):
    try:
        path = os.fspath(path)
    except TypeError:
        raise DataError(f"data source {path!r} has type {type(path).__name__}; expected a "
                        "built-in name or a path") from None
    if os.path.isdir(path):
        raise DataError(f"{label} is a directory; expected a data file; give the path of a "
                        f"{_FILE_KINDS} file")
    return path


def load_npy(path) -> Dataset:
    """Load a ``.npy`` file (``allow_pickle=False``, memory-mapped) as a :class:`Dataset`."""
    label = _file_label(path)
    path = _open_guard(path, label)
    try:
        size = os.path.getsize(path)
        if size == 0:
            raise DataError(f"{label} is empty (0 bytes); expected a .npy file written by "
                            "numpy.save; re-save the data")
        with open(path, "rb") as fp:
            shape, fortran, dtype, offset = _read_npy_header(fp, size, label)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if offset + nbytes > size:
            raise DataError(f"{label} declares shape {shape} of dtype {dtype} ({nbytes} bytes) "
                            f"but holds only {size - offset} bytes of data; the file is "
                            "truncated; re-save it with numpy.save")
        if count == 0:
            raise _empty_error(label, shape)
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, TypeError, OverflowError, MemoryError) as exc:
        raise DataError(f"{label}: cannot read it as .npy ({_one_line(exc)}); expected a file "
                        "written by numpy.save; check the path or re-save it") from None
    X = validate_matrix(arr, label)
    return Dataset(X=X, y=None, name=os.fspath(path))


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
               NotImplementedError, RuntimeError, ValueError, struct.error, OverflowError,
               MemoryError)


def _read_npz_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> np.ndarray:
    if info.compress_type == zipfile.ZIP_STORED:
        plausible = info.file_size == info.compress_size
    else:
        plausible = info.file_size <= _MAX_DEFLATE_RATIO * info.compress_size + 4096
    if not plausible:
        raise DataError(f"{label} claims {info.file_size} bytes uncompressed from "
                        f"{info.compress_size} compressed bytes; the archive is corrupt or a "
                        "decompression bomb; re-save it with numpy.savez")
    with zf.open(info) as fp:
        shape, fortran, dtype, offset = _read_npy_header(fp, info.file_size, label)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if offset + nbytes > info.file_size:
        raise DataError(f"{label} declares shape {shape} of dtype {dtype} ({nbytes} bytes) but "
                        f"holds only {info.file_size - offset} bytes of data; the archive is "
                        "truncated or corrupt; re-save it with numpy.savez")
    if count == 0:
        raise _empty_error(label, shape)
    with zf.open(info) as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)


def load_npz(path) -> Dataset:
    """Load a ``.npz`` archive: array ``X``, else ``data``, else the only array besides ``y``;
    ``y`` (optional) holds labels."""
    label = _file_label(path)
    path = _open_guard(path, label)
    try:
        if os.path.getsize(path) == 0:
            raise DataError(f"{label} is empty (0 bytes); expected a .npz archive written by "
                            "numpy.savez; re-save the data")
        with zipfile.ZipFile(path) as zf:
            members = {}
            for info in zf.infolist():
                if info.filename.endswith(".npy") and not info.is_dir():
                    members.setdefault(info.filename[:-4], info)
            keys = sorted(members)
            if "X" in members:
                key = "X"
            elif "data" in members:
                key = "data"
            else:
                candidates = [k for k in keys if k != "y"]
                if len(candidates) != 1:
                    raise DataError(
                        f"{label} holds the arrays {keys}; expected an array named 'X' or "
                        "'data' (or exactly one array besides 'y'); save the data as "
                        "numpy.savez(path, X=X) or numpy.savez(path, X=X, y=y)")
                key = candidates[0]
            what = f"{label} array {_q(key)}"
            X = _read_npz_member(zf, members[key], what)
            y = None
            if "y" in members and key != "y":
                y = _read_npz_member(zf, members["y"], f"{label} labels 'y'")
    except DataError:
        raise
    except _ZIP_ERRORS as exc:
        raise DataError(f"{label}: cannot read it as .npz ({_one_line(exc)}); expected a zip "
                        "archive written by numpy.savez; check the path or re-save it") from None
    X = validate_matrix(X, what)
    if y is not None:
        y = _validate_labels(y, X.shape[0], f"{label} labels 'y'")
    return Dataset(X=X, y=y, name=os.fspath(path))


def load_csv(path) -> Dataset:
    """Load a numeric, comma-separated ``.csv`` file with an optional header row.

    The first non-blank row is a header when any of its cells is not a number; every other
    row must be numeric, finite and as long as the first. Blank lines are skipped. Errors
    name the 1-based line (``row``) and column.
    """
    label = _file_label(path)
    path = _open_guard(path, label)
    fix = "expected numeric CSV (an optional header row is allowed)"
    try:
        with open(path, "rb") as fp:
            raw = fp.read()
    except OSError as exc:
        raise DataError(f"{label}: cannot read it ({_one_line(exc)}); check the path and "
                        "permissions") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{label} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
                        f"{exc.start}); {fix}; save it as UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    header_line = None
    ncols = None
    rows: list[list[float]] = []
    n_nan = n_inf = 0
    first_bad = None
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            try:
                values = [float(c) for c in cells]
            except ValueError:
                values = None
            if values is None and header_line is None and ncols is None:
                header_line, ncols = line, len(cells)
                continue
            if ncols is None:
                ncols = len(cells)
            elif len(cells) != ncols:
                first = ("the header" if header_line is not None else "the first row")
                raise DataError(f"{label} row {line} has {len(cells)} columns but {first} has "
                                f"{ncols}; {fix} with the same number of columns in every row; "
                                "fix or remove the row")
            if values is None:
                for j, cell in enumerate(cells):
                    try:
                        float(cell)
                    except ValueError:
                        shown = repr(cell[:40] + ("..." if len(cell) > 40 else ""))
                        what = ("an empty cell" if not cell.strip()
                                else f"cannot parse {shown} as a number")
                        raise DataError(f"{label} row {line} column {j + 1}: {what}; {fix}; fix "
                                        "the cell or remove the row") from None
            for j, v in enumerate(values):
                if not math.isfinite(v):
                    if math.isnan(v):
                        n_nan += 1
                    else:
                        n_inf += 1
                    if first_bad is None:
                        first_bad = (line, j + 1, cells[j].strip()[:40])
            rows.append(values)
    except csv.Error as exc:
        raise DataError(f"{label} line {reader.line_num}: malformed CSV ({_one_line(exc)}); "
                        f"{fix}; fix the line") from None
    if not rows:
        what = (f"only a header row (line {header_line})" if header_line is not None
                else "no data rows")
        raise DataError(f"{label} has {what}; {fix} with at least one data row; add data")
    if first_bad is not None:
        line, col, cell = first_bad
        raise DataError(f"{label} has {n_nan} NaN and {n_inf} infinite cells (first {cell!r} at "
                        f"row {line} column {col}); expected finite numbers; fix or remove "
                        "those rows")
    X = validate_matrix(np.array(rows, dtype=np.float64), label)
    return Dataset(X=X, y=None, name=os.fspath(path))


#: IDX type code -> (big-endian dtype, description).
_IDX_TYPES = {
    0x08: (np.dtype(">u1"), "unsigned byte"),
    0x09: (np.dtype(">i1"), "signed byte"),
    0x0B: (np.dtype(">i2"), "short"),
    0x0C: (np.dtype(">i4"), "int"),
    0x0D: (np.dtype(">f4"), "float"),
    0x0E: (np.dtype(">f8"), "double"),
}


def load_idx(path) -> Dataset:
    """Load an MNIST IDX file (``.idx``, ``*-ubyte``, optionally gzip-compressed ``.gz``).

    The header (magic ``0x0000``, type byte, dimension count, big-endian uint32 sizes) is
    checked against the file size before anything is allocated; a compressed file is
    decompressed only up to the size its header implies, and a header implying more than
    gzip can expand the file to is refused at once. 1-D files (labels) are refused; three or
    more dimensions are flattened to ``(N, prod(rest))``. Values are not rescaled.
    """
    label = _file_label(path)
    path = _open_guard(path, label)
    gz = path.lower().endswith(".gz")
    fix = "re-download or re-create the file"
    try:
        size = os.path.getsize(path)
        if size == 0:
            raise DataError(f"{label} is empty (0 bytes); expected an IDX file; {fix}")
        with open(path, "rb") as raw:
            fp = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
            head = _read_exact(fp, 4)
            if len(head) < 4:
                where = " after decompression" if gz else ""
                raise DataError(f"{label} holds {len(head)} bytes{where}; "
                                f"expected at least the 4-byte IDX header; {fix}")
            if head[:2] != b"\x00\x00":
                raise DataError(f"{label} starts with bytes 0x{head.hex()}; expected the IDX magic "
                                f"0x0000 followed by a type byte and a dimension count; {fix}")
            code, ndim = head[2], head[3]
            if code not in _IDX_TYPES:
                known = ", ".join(f"{c:#04x} ({d})" for c, (_, d) in _IDX_TYPES.items())
                raise DataError(f"{label} has IDX type code {code:#04x}; expected one of "
                                f"{known}; {fix}")
            if ndim == 0:
                raise DataError(f"{label} declares 0 dimensions; expected an IDX file of images "
                                f"(3 or more dimensions) or a matrix (2); {fix}")
            raw_dims = _read_exact(fp, 4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{label} is truncated inside its header ({ndim} dimensions "
                                f"declared, {len(raw_dims)} of {4 * ndim} size bytes present); "
                                f"{fix}")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            if ndim == 1:
                raise DataError(f"{label} holds 1-D labels of shape {dims}; expected images (an "
                                "IDX file of 2 or more dimensions); pass the images file, not "
                                "the labels file")
            dtype, tname = _IDX_TYPES[code]
            count = math.prod(dims)
            nbytes = count * dtype.itemsize
            hlen = 4 + 4 * ndim
            if not gz:
                if size - hlen != nbytes:
                    raise DataError(f"{label} header claims shape {dims} of {tname} "
                                    f"({nbytes} bytes) but the file holds {size - hlen} bytes "
                                    f"after the header; the file is truncated or corrupt; {fix}")
            else:
                bound = _MAX_DEFLATE_RATIO * size + 4096
                if nbytes > bound:
                    raise DataError(f"{label} header claims shape {dims} of {tname} ({nbytes} "
                                    f"bytes) but a {size}-byte gzip file cannot expand to more "
                                    f"than about {bound} bytes; the file is truncated, corrupt "
                                    f"or a decompression bomb; {fix}")
            if count == 0:
                raise _empty_error(label, dims)
            data = _read_exact(fp, nbytes)
            if len(data) < nbytes:
                raise DataError(f"{label} header claims shape {dims} of {tname} ({nbytes} bytes) "
                                f"but the data holds only {len(data)} bytes; the file is "
                                f"truncated; {fix}")
            if gz and fp.read(1):
                raise DataError(f"{label} decompresses to more than the {nbytes} data bytes its "
                                f"header shape {dims} implies; the file is corrupt; {fix}")
    except DataError:
        raise
    except (OSError, EOFError, zlib.error, ValueError, struct.error, MemoryError) as exc:
        raise DataError(f"{label}: cannot read it as {'gzip-compressed ' if gz else ''}IDX "
                        f"({_one_line(exc)}); expected an MNIST IDX file; {fix}") from None
    arr = np.frombuffer(data, dtype=dtype).reshape(dims[0], math.prod(dims[1:]))
    X = validate_matrix(arr, label)
    return Dataset(X=X, y=None, name=os.fspath(path))


def _file_kind(path: str) -> str | None:
    """'npy', 'npz', 'csv', 'idx', or None for an unsupported name."""
    name = os.path.basename(path).lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    root, ext = os.path.splitext(name)
    if name.endswith("-ubyte") or ext == ".idx" or (ext.startswith(".idx") and ext[4:].isdigit()):
        return "idx"
    if gz:
        return None
    return {".npy": "npy", ".npz": "npz", ".csv": "csv"}.get(ext)


_LOADERS = {"npy": load_npy, "npz": load_npz, "csv": load_csv, "idx": load_idx}


def _subsample(ds: Dataset, n, seed) -> Dataset:
    n = _int_arg(n, "n", 1)
    seed = 0 if seed is None else _seed_arg(seed)
    total = ds.X.shape[0]
    if n > total:
        raise DataError(f"n is {n} but {ds.name!r} has only {total} samples; expected "
                        f"n <= {total}; ask for fewer samples or omit n")
    if n == total:
        return ds
    idx = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    y = None if ds.y is None else ds.y[idx]
    return Dataset(X=np.ascontiguousarray(ds.X[idx]), y=y, name=ds.name)


def load(source, *, n: int | None = None, seed: int | None = None) -> Dataset:
    """Load a built-in data set by name or a data file by path; always validated.

    Parameters
    ----------
    source:
        A built-in name (exact, see :func:`list_datasets`) or a path (``str`` or
        ``os.PathLike``) to a ``.npy``, ``.npz``, ``.csv`` or IDX file.
    n, seed:
        For generated built-ins, the sample count and random seed (``None``: the function's
        default). For fixed data (``digits`` and files), ``n`` draws a random subset of
        ``n`` rows with ``seed`` (default 0); ``seed`` alone changes nothing.

    Raises
    ------
    DataError
        For an unknown name, a missing or unreadable file, an unsupported extension or data
        that fails :func:`validate_matrix`.
    """
    if isinstance(source, str) and source in BUILTIN:
        func = BUILTIN[source][0]
        if source in _FIXED:
            ds = func()
            return ds if n is None else _subsample(ds, n, seed)
        kwargs = {}
        if n is not None:
            kwargs["n"] = n
        if seed is not None:
            kwargs["seed"] = seed
        return func(**kwargs)
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(f"data source {source!r} has type {type(source).__name__}; expected a "
                        f"built-in name ({', '.join(BUILTIN)}) or a path to a {_FILE_KINDS} file")
    path = os.fspath(source)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not os.path.exists(path):
        hint = ""
        close = [name for name in BUILTIN if name.lower() == str(path).strip().lower()]
        if close:
            hint = f"; did you mean {close[0]!r}?"
        raise DataError(f"data {_q(path)}: no such built-in data set or file; built-ins are "
                        f"{', '.join(BUILTIN)}{hint}; give one of those or a path to a "
                        f"{_FILE_KINDS} file")
    kind = _file_kind(path)
    if kind is None:
        raise DataError(f"data file {_q(path)} has an unsupported extension; expected "
                        f"{_FILE_KINDS} (gzip only for IDX); convert the data to one of those")
    ds = _LOADERS[kind](path)
    return ds if n is None else _subsample(ds, n, seed)


def default_scaling(name_or_path) -> str:
    """The default :class:`Scaler` kind for a data source (see the module docstring):
    ``"none"`` for built-ins, ``"divide"`` for IDX files, ``"standard"`` otherwise."""
    if isinstance(name_or_path, str) and name_or_path in BUILTIN:
        return "none"
    try:
        path = os.fsdecode(os.fspath(name_or_path))
    except TypeError:
        return "standard"
    return "divide" if _file_kind(path) == "idx" else "standard"


# --------------------------------------------------------------------------------------------
# Scaling
# --------------------------------------------------------------------------------------------

def _frozen_vector(values) -> np.ndarray:
    arr = np.array(values, dtype=np.float64).reshape(-1)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Scaler:
    """An affine rescaling of data columns: ``transform(X) = (X - offset) / scale``.

    Kinds (see :data:`SCALINGS`):

    * ``"none"``: identity; ``offset`` and ``scale`` are ``None``.
    * ``"minmax"``: each column to [0, 1]; ``offset`` the column minima, ``scale`` the ranges
      (1 for constant columns).
    * ``"standard"``: each column to zero mean and unit variance; ``scale`` is the standard
      deviation (1 for constant columns).
    * ``"divide"``: one global divisor ``scale = [max(X)]`` (1 when ``max(X) <= 0``);
      ``offset`` is ``None``. Meant for image data (raw pixels to [0, 1]).

    ``offset`` and ``scale`` are read-only float64 vectors. Build one with :meth:`fit` or
    :meth:`from_dict`; equality is identity.
    """

    kind: str
    offset: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __post_init__(self):
        kind = self.kind
        if not isinstance(kind, str) or kind not in SCALINGS:
            raise ConfigError(f"unknown scaling {kind!r}; expected one of {', '.join(SCALINGS)}; "
                              "pick one of those")
        off = None if self.offset is None else _frozen_vector(self.offset)
        sc = None if self.scale is None else _frozen_vector(self.scale)
        need_off = kind in ("minmax", "standard")
        need_sc = kind != "none"
        if (off is not None) != need_off or (sc is not None) != need_sc:
            got_off = "None" if off is None else "array"
            got_sc = "None" if sc is None else "array"
            raise DataError(f"scaler of kind {kind!r} got offset={got_off} and scale={got_sc}; "
                            "expected "
                            f"offset {'an array' if need_off else 'None'} and scale "
                            f"{'an array' if need_sc else 'None'}; build it with Scaler.fit")
        if sc is not None:
            if sc.size == 0 or (kind == "divide" and sc.size != 1):
                raise DataError(f"scaler of kind {kind!r} has {sc.size} scale entries; expected "
                                f"{'exactly 1' if kind == 'divide' else 'one per column'}; "
                                "build it with Scaler.fit")
            if not (np.isfinite(sc).all() and (sc > 0).all()):
                raise DataError(f"scaler scale {sc.tolist()[:8]} has entries that are not finite "
                                "and positive; expected positive finite divisors; refit it")
        if off is not None:
            if off.shape != sc.shape:
                raise DataError(f"scaler offset has {off.size} entries but scale has {sc.size}; "
                                "expected one of each per column; refit it")
            if not np.isfinite(off).all():
                raise DataError(f"scaler offset {off.tolist()[:8]} has non-finite entries; "
                                "expected finite numbers; refit it")
        object.__setattr__(self, "offset", off)
        object.__setattr__(self, "scale", sc)

    @classmethod
    def fit(cls, X, kind: str) -> "Scaler":
        """Fit a scaler of ``kind`` (one of :data:`SCALINGS`) to data ``X``."""
        if not isinstance(kind, str) or kind not in SCALINGS:
            raise ConfigError(f"unknown scaling {kind!r}; expected one of {', '.join(SCALINGS)}; "
                              "pick one of those")
        X = validate_matrix(X, "data to scale")
        if kind == "none":
            return cls("none")
        if kind == "divide":
            top = float(X.max())
            return cls("divide", None, [top if top > 0 else 1.0])
        lo, hi = X.min(axis=0), X.max(axis=0)
        constant = lo == hi
        with np.errstate(over="ignore", invalid="ignore"):
            if kind == "minmax":
                offset, scale = lo, hi - lo
            else:
                offset, scale = X.mean(axis=0), X.std(axis=0)
        scale = np.where(constant, 1.0, scale)
        if not (np.isfinite(scale).all() and np.isfinite(offset).all() and (scale > 0).all()):
            raise DataError(f"data to scale has values too large for {kind!r} scaling (column "
                            f"ranges overflow float64, largest magnitude {np.abs(X).max():g}); "
                            "expected values below about 1e307; divide the data first")
        return cls(kind, offset, scale)

    def _check(self, X, what: str) -> np.ndarray:
        X = validate_matrix(X, what, min_rows=0)
        if self.offset is not None and X.shape[1] != self.offset.size:
            raise DataError(f"{what} has {X.shape[1]} columns but the scaler was fitted on "
                            f"{self.offset.size}; give data with {self.offset.size} columns")
        return X

    def transform(self, X) -> np.ndarray:
        """``(X - offset) / scale`` as a new float64 array."""
        X = self._check(X, "data to transform")
        if self.kind == "none":
            return X.copy()
        if self.kind == "divide":
            return X / self.scale[0]
        return (X - self.offset) / self.scale

    def inverse_transform(self, X) -> np.ndarray:
        """``X * scale + offset`` as a new float64 array (undoes :meth:`transform`)."""
        X = self._check(X, "data to inverse-transform")
        if self.kind == "none":
            return X.copy()
        if self.kind == "divide":
            return X * self.scale[0]
        return X * self.scale + self.offset

    def to_dict(self) -> dict:
        """A JSON-serialisable dict ``{"kind", "offset", "scale"}`` (lists of floats or None)."""
        return {
            "kind": self.kind,
            "offset": None if self.offset is None else self.offset.tolist(),
            "scale": None if self.scale is None else self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, d) -> "Scaler":
        """Rebuild a scaler from :meth:`to_dict` output, validating keys, types and lengths."""
        if not isinstance(d, dict):
            raise DataError(f"scaler description is a {type(d).__name__}; expected a dict with "
                            "keys 'kind', 'offset', 'scale'; pass Scaler.to_dict() output")
        keys = set(d)
        if keys != {"kind", "offset", "scale"}:
            raise DataError(f"scaler description has keys {sorted(map(str, keys))}; expected "
                            "exactly ['kind', 'offset', 'scale']; pass Scaler.to_dict() output")
        kind = d["kind"]
        if not isinstance(kind, str) or kind not in SCALINGS:
            raise DataError(f"scaler description has kind {kind!r}; expected one of "
                            f"{', '.join(SCALINGS)}; pass Scaler.to_dict() output")
        vectors = {}
        for key in ("offset", "scale"):
            value = d[key]
            if value is None:
                vectors[key] = None
                continue
            if (not isinstance(value, (list, tuple)) or not value or not all(
                    isinstance(v, numbers.Real) and not isinstance(v, bool)
                    and math.isfinite(v) for v in value)):
                shown = repr(value)[:80]
                raise DataError(f"scaler description has {key} {shown}; expected null or a "
                                "non-empty list of finite numbers; pass Scaler.to_dict() output")
            vectors[key] = [float(v) for v in value]
        try:
            return cls(kind, vectors["offset"], vectors["scale"])
        except ConfigError as exc:  # unreachable (kind checked), kept for safety
            raise DataError(str(exc)) from None
