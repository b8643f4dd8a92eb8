"""Run directories (DESIGN 2.2): train, evaluate and redraw from the command line's files.

A run directory holds

* ``model.safetensors``, ``model.json``: the trained model (:meth:`AutoencODE.save`);
* ``config.json``: the full configuration (data source, scaler, seed, split, widths, ...),
  enough to recompute the exact train/test split;
* ``metrics.json``: MSEs of the model, the comparison method and PCA, status, sweeps, time;
* ``history.csv``: one row per iteration and method
  (``iteration,J,mse,residual,rho,sweeps,seconds,method``);
* ``figures/*.png`` and ``report.html``.

Every file is written atomically, and a run is written into a hidden temporary sibling that
is renamed into place only once complete, so a failed or interrupted run never leaves a
directory that looks complete.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import data as data_module
from .errors import AutoencodeError, DataError, DivergenceWarning
from .io import atomic_write_text, read_json_object

__all__ = [
    "HISTORY_COLUMNS",
    "RUN_FILES",
    "RunDirError",
    "RunResult",
    "Split",
    "check_out",
    "evaluate",
    "load_run",
    "load_split",
    "read_history",
    "redraw",
    "train",
    "write_history",
]

CONFIG_FORMAT = "autoencode-run"
CONFIG_VERSION = 1
#: Files every complete run directory holds (besides ``figures/*.png``).
RUN_FILES = ("model.safetensors", "model.json", "config.json", "metrics.json", "history.csv",
             "report.html")
HISTORY_COLUMNS = ("iteration", "J", "mse", "residual", "rho", "sweeps", "seconds", "method")
#: Training state written by ``--checkpoint-every`` (kept in the finished run for ``--resume``).
CHECKPOINT = "checkpoint.safetensors"


class RunDirError(AutoencodeError):
    """A run directory is missing, incomplete, modified, or in the way of a new run."""


Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------------------------
# JSON and CSV files
# --------------------------------------------------------------------------------------------

def _clean(value):
    """JSON-safe copy: NaN/inf become null, numpy scalars plain numbers, tuples lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n")


def read_json(path, what: str) -> dict:
    path = Path(path)
    return read_json_object(path, what, RunDirError,
                            f"is {str(path.parent)!r} a run directory written by 'autoencode "
                            f"train' or 'autoencode demo'?")


def write_history(path, histories: dict) -> None:
    """``histories``: method name -> list of per-iteration dicts; NaN is written empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for method, history in histories.items():
        for h in history:
            row = []
            for key in HISTORY_COLUMNS[:-1]:
                v = h.get(key, math.nan)
                if key == "iteration":
                    row.append(str(int(v)))
                else:
                    v = float(v)
                    row.append(repr(v) if math.isfinite(v) else "")
            row.append(method)
            writer.writerow(row)
    atomic_write_text(path, buffer.getvalue())


def read_history(path) -> dict:
    """Read ``history.csv`` back: method name -> list of dicts (floats, NaN for empty)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunDirError(f"history file {str(path)!r} not found; the run directory is "
                          f"incomplete") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"cannot read history file {str(path)!r}: {exc}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != HISTORY_COLUMNS:
        raise RunDirError(f"history file {str(path)!r} does not start with the header "
                          f"{','.join(HISTORY_COLUMNS)}; the file was modified")
    out: dict = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(HISTORY_COLUMNS):
            raise RunDirError(f"history file {str(path)!r} line {number} has {len(row)} "
                              f"fields, expected {len(HISTORY_COLUMNS)}; the file was modified")
        try:
            record = {"iteration": int(row[0])}
            for key, cell in zip(HISTORY_COLUMNS[1:-1], row[1:-1]):
                record[key] = float(cell) if cell else math.nan
        except ValueError:
            raise RunDirError(f"history file {str(path)!r} line {number} holds a non-number; "
                              f"the file was modified") from None
        out.setdefault(row[-1], []).append(record)
    return out


# --------------------------------------------------------------------------------------------
# Data and split
# --------------------------------------------------------------------------------------------

@dataclass
class Split:
    """Scaled train/test data of a run and what produced it."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    scaler: "data_module.Scaler"
    name: str

    @property
    def d(self) -> int:
        return self.X_train.shape[1]

    def shown(self):
        """``(X, y, which)``: the data the figures show (test split, else training split)."""
        if len(self.X_test):
            return self.X_test, self.y_test, "test split"
        return self.X_train, self.y_train, "training split"


_LABEL_NAMES = {"digits": "digit", "moons": "moon", "s-curve": "position along the curve",
                "swiss-roll": "position along the roll", "circle": "angle",
                "gaussian-mixture": "component"}


def label_name(name: str) -> str:
    """What the labels ``y`` of a data set mean (for figure legends)."""
    return _LABEL_NAMES.get(name, "label")


def resolve_source(source: str) -> str:
    """A built-in name unchanged; a file path made absolute (so a run can be reloaded from
    any working directory)."""
    if source in data_module.BUILTIN:
        return source
    return os.path.abspath(source)


def _split_indices(n: int, fraction: float, seed: int):
    if fraction == 0:
        return np.arange(n), np.arange(0)
    n_test = math.ceil(fraction * n)
    if n - n_test < 2 or n_test < 1:
        raise DataError(f"data has {n} samples: a test fraction of {fraction:g} leaves "
                        f"{n - n_test} for training and {n_test} for testing; need at least 2 "
                        f"and 1; give more data or change --test-fraction (0 trains on all)")
    from sklearn.model_selection import train_test_split
    train, test = train_test_split(np.arange(n), test_size=fraction, random_state=seed)
    return np.sort(train), np.sort(test)


def load_split(config: dict, fit_scaler: bool = False) -> Split:
    """Load the run's data and recompute its train/test split.

    With ``fit_scaler`` the scaler of kind ``config["scaling"]`` (``auto`` picks
    :func:`autoencode.data.default_scaling`) is fitted on the training split and stored
    back into ``config["scaling"]`` as a dict; otherwise the stored scaler is used.
    """
    source = config["data"]
    ds = data_module.load(source, n=config.get("n"), seed=config.get("seed"))
    train, test = _split_indices(ds.n_samples, float(config["test_fraction"]),
                                 int(config["seed"]))
    X_train, X_test = ds.X[train], ds.X[test]
    if fit_scaler:
        kind = config["scaling"]
        if kind == "auto":
            kind = data_module.default_scaling(source)
        scaler = data_module.Scaler.fit(X_train, kind)
        config["scaling"] = scaler.to_dict()
    else:
        scaler = data_module.Scaler.from_dict(config["scaling"])
    y = ds.y
    return Split(scaler.transform(X_train), scaler.transform(X_test) if len(test) else
                 np.zeros((0, ds.n_features)),
                 None if y is None else y[train], None if y is None else y[test], scaler,
                 ds.name)


def _pca(X_train, k: int):
    if k > min(X_train.shape):
        return None
    from sklearn.decomposition import PCA
    return PCA(n_components=k, svd_solver="full").fit(X_train)


def _pca_mse(pca, X) -> Optional[float]:
    if pca is None or len(X) == 0:
        return None
    return float(np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2))


def _mse(model, X) -> Optional[float]:
    if len(X) == 0:
        return None
    return float(np.mean((model.reconstruct(X) - X) ** 2))


# --------------------------------------------------------------------------------------------
# Output directory
# --------------------------------------------------------------------------------------------

def _is_replaceable(out: Path) -> bool:
    """A previous *demo* run: holds metrics.json and a config.json whose command is demo."""
    if (out / CHECKPOINT).is_file():  # checkpointed run: replaced by its own continuation
        return True
    if not (out / "metrics.json").is_file():
        return False
    try:
        return read_json(out / "config.json", "run configuration").get("command") == "demo"
    except RunDirError:
        return False


def check_out(out, replace: bool = False) -> None:
    """Refuse an ``--out`` that is a file or a non-empty directory (except, with
    ``replace``, a previous demo run)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {str(out)!r} exists and is not a directory; choose another "
                          f"--out")
    if out.is_dir() and any(out.iterdir()) and not (replace and _is_replaceable(out)):
        hint = " (it holds a checkpoint: add --resume to continue it)" \
            if (out / CHECKPOINT).is_file() else ""
        raise RunDirError(f"--out {str(out)!r} already exists and is not empty{hint}; choose "
                          f"another --out or delete that directory")


def _recover_replaced(out: Path) -> None:
    """Undo a replacement interrupted between its two renames (:meth:`_Staging.commit`
    moves the previous run aside to ``.NAME.old-PID`` before moving the new one in)."""
    for old in sorted(out.parent.glob(f".{out.name}.old-*")):
        if (old / CHECKPOINT).is_file():
            os.rename(old, out)
            return


class _Staging:
    """A hidden temporary sibling of ``out`` that becomes ``out`` on :meth:`commit`."""

    def __init__(self, out: Path, replace: bool):
        self.out, self.replace = out, replace
        out.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial",
                                          dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.path, 0o777 & ~umask)

    def commit(self) -> None:
        check_out(self.out, self.replace)  # again: something may have appeared meanwhile
        old = None
        if self.out.is_dir():
            if any(self.out.iterdir()):
                old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
                os.rename(self.out, old)
            else:
                self.out.rmdir()
        os.rename(self.path, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def __enter__(self) -> "_Staging":
        return self

    def __exit__(self, *exc) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

@dataclass
class RunResult:
    """What :func:`train` produced."""

    out: Path
    metrics: dict
    figures: list = field(default_factory=list)

    @property
    def diverged(self) -> bool:
        return self.metrics.get("status") == "diverged"

    @property
    def report(self) -> Path:
        return self.out / "report.html"


def model_params(config: dict, method: str, verbose: bool, comparison: bool = False) -> dict:
    """``AutoencODE`` keyword arguments for ``method`` from a run configuration. The
    comparison model takes the same settings with its method's default options."""
    options = None
    if not comparison and config.get("lr") is not None:
        options = {"lr": config["lr"]}
    batch = config.get("batch_size")
    if comparison and method not in ("adam", "sgd"):
        batch = None
    widths = config.get("widths")
    return dict(widths=None if widths is None else tuple(widths),
                latent_dim=config.get("latent_dim"),
                steps_per_width=config["steps_per_width"], T=config["T"],
                activation=config["activation"], field=config["field"],
                solver=config["solver"], method=method, method_options=options,
                lam=config["lam"], max_iter=config["iters"], batch_size=batch,
                dtype=config["dtype"], device=config["device"], seed=config["seed"],
                verbose=verbose)


def _fit(model, X, workers: int = 1, **fit_kwargs):
    """Fit (sharded over ``workers`` local processes when > 1); ``(model, seconds)``."""
    from . import distributed
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        model = distributed.fit(model, X, workers, **fit_kwargs)
    return model, time.perf_counter() - start


def _model_metrics(model, split: Split, wall: float) -> dict:
    last = model.history_[-1] if model.history_ else {}
    return {"method": model.method,
            "train_mse": _mse(model, split.X_train), "test_mse": _mse(model, split.X_test),
            "J": last.get("J"), "residual": last.get("residual"),
            "iterations": int(last.get("iteration", 0)), "sweeps": last.get("sweeps", 0.0),
            "wall_time_s": wall, "status": model.status_,
            "diverged_at": getattr(model, "diverged_at_", None)}


def train(config: dict, out, *, verbose: bool = True, replace: bool = False,
          log: Log = _quiet, warn: Log = _quiet, workers: int = 1,
          checkpoint_every: int = 0, resume: bool = False) -> RunResult:
    """Train the run described by ``config`` and write its directory at ``out``.

    ``config`` keys: ``command``, ``data`` (built-in name or path), ``n``, ``seed``,
    ``test_fraction``, ``scaling`` (a kind or ``auto``), ``widths`` (or None) and
    ``latent_dim``, ``steps_per_width``, ``T``, ``activation``, ``field``, ``solver``,
    ``method``, ``lam``, ``iters``, ``lr``, ``batch_size``, ``compare`` (a method or
    ``None``), ``device``, ``dtype``. It is completed (resolved widths, fitted scaler) and
    stored as ``config.json``. ``replace`` lets a previous demo run at ``out`` be replaced.
    ``log`` receives progress messages, ``warn`` one-line warnings (a figure not drawn).
    A diverged training still writes the run; check :attr:`RunResult.diverged`.
    ``workers`` shards training over local processes; ``checkpoint_every`` writes the
    training state to ``out/checkpoint.safetensors``; ``resume`` continues from it. Under
    torchrun only rank 0 writes.
    """
    from .checkpoint import load_checkpoint
    from .distributed import is_writer
    from .estimator import AutoencODE
    from . import __version__

    out = Path(out)
    checkpoint = out / CHECKPOINT
    if resume and not out.exists():
        _recover_replaced(out)
    if resume:
        if not checkpoint.is_file():
            raise RunDirError(f"--resume: {str(out)!r} holds no {CHECKPOINT}; start the run "
                              f"with --checkpoint-every N first")
        resume_from = load_checkpoint(checkpoint)
    else:
        check_out(out, replace)
        resume_from = None
    if checkpoint_every and is_writer():
        out.mkdir(parents=True, exist_ok=True)
    config = dict(config, data=resolve_source(config["data"]))
    config.update(format=CONFIG_FORMAT, version=CONFIG_VERSION, autoencode=__version__)
    split = load_split(config, fit_scaler=True)

    model = AutoencODE(**model_params(config, config["method"], verbose))
    model, wall = _fit(model, split.X_train, workers, resume=resume_from,
                       checkpoint_path=checkpoint if checkpoint_every else None,
                       checkpoint_every=checkpoint_every)
    profile = model.flow_.profile
    config["widths"] = list(profile.widths)
    config["latent_dim"] = profile.k
    histories = {config["method"]: model.history_}
    metrics = _model_metrics(model, split, wall)

    comparison = None
    compare = config.get("compare")
    if compare and compare != config["method"]:
        other = AutoencODE(**model_params(config, compare, verbose, comparison=True))
        other, other_wall = _fit(other, split.X_train, workers)
        comparison = _model_metrics(other, split, other_wall)
        histories[compare] = other.history_

    pca = _pca(split.X_train, profile.k)
    metrics.update(
        data=config["data"], data_name=split.name, n_train=len(split.X_train),
        n_test=len(split.X_test), d=split.d, latent_dim=profile.k, widths=list(profile.widths),
        lam=config["lam"], pca_train_mse=_pca_mse(pca, split.X_train),
        pca_test_mse=_pca_mse(pca, split.X_test), comparison=comparison)
    metrics["ratio_to_pca"] = _ratio(metrics)
    if comparison is not None:
        comparison["ratio_to_pca"] = _ratio(dict(comparison, pca_test_mse=metrics["pca_test_mse"],
                                                 pca_train_mse=metrics["pca_train_mse"]))

    if not is_writer():
        return RunResult(out, metrics)
    from . import plotting, report
    with _Staging(out, replace or bool(checkpoint_every) or resume) as staging:
        tmp = staging.path
        log(f"writing figures and report to {out} ...")
        model.save(tmp / "model")
        write_json(tmp / "config.json", config)
        write_json(tmp / "metrics.json", metrics)
        write_history(tmp / "history.csv", histories)
        X, y, _ = split.shown()
        figures = plotting.draw_all(tmp / "figures", model, histories, X=X, y=y, pca=pca,
                                    scaler=split.scaler, label_name=label_name(split.name),
                                    warn=lambda m: warn(f"warning: {m}"))
        report.write_report(tmp)
        if checkpoint.is_file():
            shutil.copy2(checkpoint, tmp / CHECKPOINT)
        staging.commit()
    return RunResult(out, metrics, [out / "figures" / p.name for p in figures])


def _ratio(metrics: dict) -> Optional[float]:
    """Model MSE over PCA MSE on the test split (training split when there is no test)."""
    for key in ("test", "train"):
        mse, pca = metrics.get(f"{key}_mse"), metrics.get(f"pca_{key}_mse")
        if mse is not None and pca:
            return mse / pca
    return None


# --------------------------------------------------------------------------------------------
# Reading a run back
# --------------------------------------------------------------------------------------------

_REQUIRED_CONFIG = ("data", "seed", "test_fraction", "scaling", "method")


def load_run(run_dir):
    """``(model, config)`` of a run directory, each validated."""
    from .estimator import AutoencODE

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {str(run_dir)!r} not found; pass --run DIR with a "
                          f"directory written by 'autoencode train' or 'autoencode demo'")
    model = AutoencODE.load(run_dir / "model")
    config = read_json(run_dir / "config.json", "run configuration")
    if config.get("format") != CONFIG_FORMAT:
        raise RunDirError(f"{str(run_dir / 'config.json')!r} is not an autoencode run "
                          f"configuration (format field missing or not {CONFIG_FORMAT!r})")
    missing = [k for k in _REQUIRED_CONFIG if k not in config]
    if missing:
        raise RunDirError(f"run configuration {str(run_dir / 'config.json')!r} lacks "
                          f"{', '.join(missing)}; the file was modified")
    return model, config


def _run_split(config: dict, metrics: Optional[dict] = None) -> Split:
    split = load_split(config)
    if metrics is not None:
        recorded = (metrics.get("n_train"), metrics.get("n_test"))
        if recorded != (None, None) and recorded != (len(split.X_train), len(split.X_test)):
            raise RunDirError(f"data {config['data']!r} now gives {len(split.X_train)} training "
                              f"and {len(split.X_test)} test samples, the run recorded "
                              f"{recorded[0]} and {recorded[1]}; the data changed since training")
    return split


def evaluate(run_dir, source: Optional[str] = None) -> dict:
    """Reconstruction MSE of a run's model on its own test split (recomputed from the
    recorded data source, seed and test fraction) or, with ``source``, on that data scaled
    with the run's scaler. PCA with the same k, fitted on the run's training split, is
    reported where the run's data can be reloaded. Writes nothing."""
    model, config = load_run(run_dir)
    k = model.latent_dim_
    result = {"run": str(run_dir), "method": model.method, "latent_dim": k}
    own = None
    own_error = None
    try:
        metrics = read_json(Path(run_dir) / "metrics.json", "run metrics")
    except RunDirError:
        metrics = None
    if source is None:
        own = _run_split(config, metrics)
        if not len(own.X_test):
            raise RunDirError(f"run {str(run_dir)!r} was trained without a test split "
                              f"(--test-fraction 0); pass --data to evaluate on other data")
        X, what = own.X_test, f"{own.name} test split"
    else:
        scaler = data_module.Scaler.from_dict(config["scaling"])
        ds = data_module.load(source)
        if ds.n_features != model.n_features_in_:
            raise DataError(f"data {source!r} has {ds.n_features} features but the model of "
                            f"{str(run_dir)!r} expects {model.n_features_in_}")
        X, what = scaler.transform(ds.X), ds.name
        try:
            own = _run_split(config, metrics)
        except (AutoencodeError, OSError) as exc:
            own_error = " ".join(str(exc).split())
    result.update(data=what, n=len(X), scaling=config["scaling"].get("kind"),
                  mse=_mse(model, X))
    pca = None if own is None else _pca(own.X_train, k)
    result["pca_mse"] = _pca_mse(pca, X)
    result["pca_note"] = (own_error if own_error else
                          None if pca is not None else "PCA needs at least k training samples")
    result["ratio_to_pca"] = (result["mse"] / result["pca_mse"]) if result["pca_mse"] else None
    return result


def redraw(run_dir, warn: Log = _quiet) -> list:
    """(Re)draw ``figures/*.png`` and ``report.html`` of a run from its files; the data for
    the data-dependent figures is reloaded from the recorded source (skipped, with a
    warning, when that is no longer possible)."""
    from . import plotting, report

    run_dir = Path(run_dir)
    model, config = load_run(run_dir)
    metrics = read_json(run_dir / "metrics.json", "run metrics")
    histories = read_history(run_dir / "history.csv")
    try:
        split = _run_split(config, metrics)
    except (AutoencodeError, OSError) as exc:
        warn(f"warning: data-dependent figures skipped: {' '.join(str(exc).split())}")
        split = None
    X = y = pca = scaler = None
    labels = "label"
    if split is not None:
        X, y, _ = split.shown()
        pca, scaler = _pca(split.X_train, model.latent_dim_), split.scaler
        labels = label_name(split.name)
    figures = plotting.draw_all(run_dir / "figures", model, histories, X=X, y=y, pca=pca,
                                scaler=scaler, label_name=labels,
                                warn=lambda m: warn(f"warning: {m}"))
    report.write_report(run_dir)
    return figures
