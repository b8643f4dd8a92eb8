"""``AutoencODE``: the scikit-learn style estimator (DESIGN 2.1).

The model is the flow ``x_0 ↦ x_K`` of :mod:`autoencode.pmp` wrapped by an optional PCA
alignment ``x ↦ (x − μ) V`` (``V`` the principal axes of the training data) and its
inverse. With ``θ = 0`` the flow is the identity on active components and the bottleneck
keeps the first ``k`` coordinates, so the aligned model is exactly ``k``-component PCA.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from .checkpoint import Checkpoint, data_fingerprint, save_checkpoint
from .data import is_memory_mapped, validate_matrix
from .distributed import current_shard, is_writer
from .errors import ConfigError, DataError, DivergenceWarning, ModelFileError
from .fields import make_field
from .io import atomic_write_bytes, atomic_write_text, read_json_object
from .methods import make_method
from .methods.base import metrics_of
from .pmp import Flow, Problem, StreamedProblem
from .profile import WidthProfile, default_widths
from .progress import Progress
from .solvers import get_solver
from .validation import choice, integer, number

__all__ = ["AutoencODE"]

FORMAT = "autoencode-model"
FORMAT_VERSION = 1
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_ESCAPE_SCALE = 1e-3  # perturbation that moves θ = 0 off the stationary PCA point
# J finite but a millionfold above its start is a blow-up (tanh keeps states bounded, so
# shooting at small λ grows J through |θ| without ever overflowing).
_BLOW_UP = 1e6
_CHUNK_ELEMENTS = 1 << 22  # rows read at a time from (possibly memory-mapped) data
_EVAL_ROWS = 2048  # fixed evaluation subset that tracks J when streaming mini-batches


def _device(name) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {name!r} is not a torch device; use 'cpu' or 'cuda'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use the cpu device")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} does not exist: this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {name!r} is not supported; use 'cpu' or 'cuda'")
    return device


class AutoencODE(TransformerMixin, BaseEstimator):
    """A width-varying NeurODE autoencoder trained as a mean-field optimal control problem.

    Parameters
    ----------
    widths : width profile ``(d, ..., k, ..., d)``; ``None`` derives one from the data
        dimension and ``latent_dim`` (halving down to ``k``).
    latent_dim : ``k`` when ``widths`` is ``None`` (default: 8 if d >= 16, else d − 1).
    steps_per_width : time steps each width lasts (an int or one per entry).
    T : final time.
    activation : ``tanh``, ``relu``, ``softplus`` or ``identity``.
    field : ``layer`` (σ(Wx+b)) or ``two-layer`` (A σ(Wx+b), inner width ``inner_width``).
    solver : ``euler`` (residual network), ``heun`` or ``rk4``.
    method : ``emsa`` (default), ``adam``, ``sgd`` or ``shooting``; ``method_options``
        are passed to the method (e.g. ``{"lr": 1e-2}`` for adam).
    lam : Tikhonov weight λ in ``J = Σ ω_i |x_K − x_0|² + (λ/2) h Σ_j |θ_j|²``.
    max_iter : training iterations (0 only initialises).
    tol : stop when the PMP residual ``|∇_θ H|`` falls to ``tol`` (0: never).
    init, init_scale : ``normal`` (entries ``~ N(0, init_scale²/fan_in)``) or ``zeros``.
    pca_align : rotate centred data to its principal axes before the flow.
    batch_size : mini-batch size for ``adam``/``sgd`` (``None``: full batch). With a
        memory-mapped ``X`` (e.g. ``np.load(path, mmap_mode="r")``) the rows stay on disk
        and are read a batch at a time; J is then tracked on a fixed subset of 2048 rows.
    recompute : trade compute for memory: store every ⌈√K⌉-th state in the forward pass
        and recompute the others in the costate pass (same results, bitwise).
    dtype, device, seed : numerics, placement and the seed of every random choice.
    verbose : show progress (a bar on a terminal, log lines otherwise).
    """

    def __init__(self, widths=None, latent_dim=None, steps_per_width=4, T=4.0,
                 activation="tanh", field="layer", inner_width=None, solver="euler",
                 method="emsa", method_options=None, lam=1e-3, max_iter=300, tol=0.0,
                 init="normal", init_scale=0.5, pca_align=True, batch_size=None,
                 recompute=False, dtype="float32", device="cpu", seed=0, verbose=False):
        self.widths = widths
        self.latent_dim = latent_dim
        self.steps_per_width = steps_per_width
        self.T = T
        self.activation = activation
        self.field = field
        self.inner_width = inner_width
        self.solver = solver
        self.method = method
        self.method_options = method_options
        self.lam = lam
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.init_scale = init_scale
        self.pca_align = pca_align
        self.batch_size = batch_size
        self.recompute = recompute
        self.dtype = dtype
        self.device = device
        self.seed = seed
        self.verbose = verbose

    # ----------------------------------------------------------------- configuration
    def _build(self, d: int):
        """Validate every hyperparameter and build the flow and the method."""
        if self.widths is None:
            latent = (8 if d >= 16 else max(1, d - 1)) if self.latent_dim is None \
                else integer(self.latent_dim, "latent_dim", 1)
            widths = default_widths(d, latent)
        else:
            widths = self.widths
        profile = WidthProfile.build(widths, self.steps_per_width, self.T)
        if profile.d != d:
            raise DataError(
                f"data has {d} features but widths {profile.widths} start at {profile.d}; "
                f"make the first and last width {d}"
            )
        number(self.lam, "lam", 0)
        integer(self.max_iter, "max_iter", 0)
        number(self.tol, "tol", 0)
        choice(self.init, "init", ("normal", "zeros"))
        number(self.init_scale, "init_scale", 0, low_open=True)
        for name in ("pca_align", "recompute"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        integer(self.seed, "seed", 0)
        self._dtype = _DTYPES[choice(self.dtype, "dtype", tuple(_DTYPES))]
        self._device = _device(self.device)
        flow = Flow(profile, make_field(self.field, self.activation, self.inner_width),
                    get_solver(self.solver))
        options = dict(self.method_options or {})
        if self.batch_size is not None:
            options["batch_size"] = integer(self.batch_size, "batch_size", 1)
        if self.method in ("adam", "sgd"):
            options.setdefault("seed", self.seed)
        elif self.batch_size is not None:
            raise ConfigError(f"batch_size is for the gradient methods adam and sgd, not "
                              f"{self.method!r}; remove batch_size or choose method='adam'")
        return flow, make_method(self.method, **options)

    def _tensor(self, X) -> torch.Tensor:
        return torch.as_tensor(X, dtype=self._dtype, device=self._device)

    def _check_fitted(self):
        if not hasattr(self, "theta_"):
            raise ConfigError("this AutoencODE is not fitted yet; call fit(X) or load a model first")

    def _input(self, X, width: int, what: str = "X") -> torch.Tensor:
        X = validate_matrix(X, what)
        if X.shape[1] != width:
            raise DataError(f"{what} has {X.shape[1]} columns, expected {width} "
                            f"(the model's {'latent' if what == 'Z' else 'data'} dimension)")
        return self._tensor(X)

    # ----------------------------------------------------------------- alignment
    def _align(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean_) @ self.rotation_ if self.pca_align else x

    def _unalign(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.rotation_.T + self.mean_ if self.pca_align else x

    def _fit_alignment(self, X: np.ndarray, weights: np.ndarray):
        """Weighted mean and principal axes (eigenvectors of the covariance, by decreasing
        variance), accumulated in row chunks so that memory-mapped data stay on disk."""
        if not self.pca_align:
            return
        d = X.shape[1]
        chunk = max(1, _CHUNK_ELEMENTS // d)
        mean = sum(weights[i:i + chunk] @ X[i:i + chunk] for i in range(0, len(X), chunk))
        cov = np.zeros((d, d))
        for i in range(0, len(X), chunk):
            centred = X[i:i + chunk] - mean
            cov += centred.T @ (centred * weights[i:i + chunk, None])
        _, vectors = np.linalg.eigh(cov)
        self.mean_ = self._tensor(mean)
        self.rotation_ = self._tensor(vectors[:, ::-1].copy())  # copy: torch refuses negative strides

    # ----------------------------------------------------------------- training
    def fit(self, X, y=None, sample_weight=None, callback: Optional[Callable] = None,
            resume: Optional[Checkpoint] = None, checkpoint_path=None,
            checkpoint_every: int = 0):
        """Train on the rows of ``X`` (the particles of μ_0); returns ``self``.

        ``sample_weight`` gives the masses ω_i (normalised to sum 1). ``callback(iteration,
        state, metrics)`` is called after every iteration; returning ``True`` stops training.
        With ``checkpoint_every = n > 0`` the full training state is written atomically to
        ``checkpoint_path`` every ``n`` iterations and at the end (by rank 0 only when
        distributed). ``resume`` continues from such a
        :class:`~autoencode.checkpoint.Checkpoint` on the same data and settings, up to
        ``max_iter`` iterations in total, reaching the same result as an uninterrupted run.
        """
        checkpoint_every = integer(checkpoint_every, "checkpoint_every", 0)
        if checkpoint_every and checkpoint_path is None:
            raise ConfigError("checkpoint_every needs a checkpoint_path to write to")
        self._checkpointing = (Path(checkpoint_path), checkpoint_every) if checkpoint_every else None
        X = validate_matrix(X, "X")
        flow, method = self._build(X.shape[1])
        weights = self._weights(sample_weight, X.shape[0])
        self.flow_ = flow
        self.n_features_in_ = X.shape[1]
        self.latent_dim_ = flow.profile.k
        self.fingerprint_ = data_fingerprint(np.concatenate([X, weights[:, None]], axis=1))
        self.history_ = []
        self.status_ = "initialised"
        if resume is not None:
            resume.check_compatible(self.get_params(deep=False), self.fingerprint_)
            if self.pca_align:
                self.mean_, self.rotation_ = self._tensor(resume.mean), self._tensor(resume.rotation)
            self.theta_ = self._tensor(resume.state["theta"])
        else:
            self._fit_alignment(X, weights)
            generator = torch.Generator().manual_seed(int(self.seed))
            theta = flow.layout.initial(self.init, self.init_scale, generator, self._dtype,
                                        self._device)
            if self.init == "zeros" and self.max_iter > 0:
                theta = theta + flow.layout.initial("normal", _ESCAPE_SCALE, generator,
                                                    self._dtype, self._device)
            self.theta_ = theta
        if self.max_iter == 0:
            return self
        problem = self._training_problem(X, weights)
        self._evaluation = None
        if isinstance(problem, StreamedProblem):
            if sample_weight is not None:
                raise ConfigError("sample_weight is not supported when streaming memory-mapped "
                                  "data by mini-batches; load the data into memory instead")
            rows = np.sort(np.random.default_rng(self.seed).permutation(len(X))[:_EVAL_ROWS])
            self._evaluation = Problem(flow, self._align(self._tensor(X[rows])), self.lam)
        self._train(problem, method, callback, resume)
        return self

    def _monitored(self, metrics: dict, state: dict) -> dict:
        """Streaming: J and MSE on the fixed evaluation subset instead of the last batch."""
        if self._evaluation is None:
            return metrics
        J, mse = self._evaluation.objective(state["theta"])
        return dict(metrics, J=J, mse=mse)

    def _training_problem(self, X: np.ndarray, weights: np.ndarray) -> Problem:
        """The problem on this process's particles: all of them, or its shard of them when
        a ``torch.distributed`` group is active (sums are then all-reduced). Memory-mapped
        data trained by mini-batches stay on disk: rows are read a batch at a time."""
        shard = current_shard(X.shape[0])
        segment = math.ceil(math.sqrt(self.flow_.profile.K)) if self.recompute else None
        start, stop = (0, len(X)) if shard is None else (shard.start, shard.stop)
        common = dict(reduce=None if shard is None else shard.reduce, shard=(start, len(X)),
                      segment=segment)
        if self.batch_size is not None and is_memory_mapped(X):
            return StreamedProblem(self.flow_, X[start:stop], self.lam,
                                   lambda rows: self._align(self._tensor(rows)), **common)
        return Problem(self.flow_, self._align(self._tensor(X[start:stop])), self.lam,
                       self._tensor(weights[start:stop]), **common)

    def checkpoint(self, iteration: int, state: dict) -> Checkpoint:
        """The training state after ``iteration`` (for ``callback``), ready to save."""
        return Checkpoint(iteration, state, list(self.history_), self.get_params(deep=False),
                          self.fingerprint_, getattr(self, "mean_", None),
                          getattr(self, "rotation_", None))

    def _save_checkpoint(self, iteration: int, state: dict, final: bool = False) -> None:
        if self._checkpointing is None or not is_writer():
            return
        path, every = self._checkpointing
        if final or iteration % every == 0:
            save_checkpoint(path, self.checkpoint(iteration, state))

    def _weights(self, sample_weight, n: int) -> np.ndarray:
        if sample_weight is None:
            return np.full(n, 1.0 / n)
        w = validate_matrix(np.asarray(sample_weight, dtype=float).reshape(-1, 1),
                            "sample_weight")[:, 0]
        if w.shape[0] != n or (w < 0).any() or not w.sum() > 0:
            raise DataError(f"sample_weight must be {n} non-negative numbers with a positive "
                            f"sum, got shape {w.shape} with min {w.min():g} and sum {w.sum():g}")
        return w / w.sum()

    def _train(self, problem: Problem, method, callback, resume):
        if resume is None:
            start = time.perf_counter()
            state = method.init(problem, self.theta_)
            self._record(0, self._monitored(metrics_of(state), state), start)
            begin = 1
        else:
            self.history_ = [dict(row) for row in resume.history]
            start = time.perf_counter() - (self.history_[-1]["seconds"] if self.history_ else 0.0)
            state = {k: v.to(self._device) if v.is_floating_point() else v
                     for k, v in resume.state.items()}
            begin = resume.iteration + 1
        first = self.history_[0]
        limit = _BLOW_UP * max(first["J"], 1e-12)
        progress = Progress(self.max_iter, desc=method.name,
                            mode="auto" if self.verbose else "quiet")
        self.status_ = "max_iter"
        try:
            progress.update(begin - 1, self.history_[-1])
            for iteration in range(begin, self.max_iter + 1):
                new_state, metrics = method.update(problem, state)
                metrics = self._monitored(metrics, new_state)
                if not (math.isfinite(metrics["J"]) and math.isfinite(metrics["residual"])
                        and metrics["J"] <= limit):
                    self.status_ = "diverged"
                    self.diverged_at_ = iteration
                    warnings.warn(
                        f"{method.name} diverged at iteration {iteration} (J = {metrics['J']:.4g}, "
                        f"initially {first['J']:.4g}); "
                        f"kept the controls of iteration {iteration - 1}. Try a larger lam or "
                        f"method='emsa'", DivergenceWarning, stacklevel=3)
                    break
                state = new_state
                self._record(iteration, metrics, start)
                progress.update(iteration, metrics)
                self._save_checkpoint(iteration, state, final=iteration == self.max_iter)
                stop = callback is not None and callback(iteration, state, metrics)
                if self.tol > 0 and metrics["residual"] <= self.tol:
                    self.status_ = "converged"
                    break
                if stop:
                    self.status_ = "stopped"
                    break
        finally:
            progress.close()
            self.theta_ = state["theta"]
            self.state_ = state
        if self.status_ != "max_iter":  # stopped early: the end state is worth keeping too
            self._save_checkpoint(int(self.history_[-1]["iteration"]), state, final=True)

    def _record(self, iteration: int, metrics: dict, start: float):
        self.history_.append({"iteration": iteration, **metrics,
                              "seconds": time.perf_counter() - start})

    # ----------------------------------------------------------------- inference
    def transform(self, X) -> np.ndarray:
        """Latent codes ``z = x_{j*+1}`` (the state after the last step of width k)."""
        self._check_fitted()
        x = self._align(self._input(X, self.n_features_in_))
        z, _, _ = self.flow_.forward(self.theta_, x, stop=self.flow_.profile.bottleneck_step + 1)
        return z.cpu().numpy()

    def inverse_transform(self, Z) -> np.ndarray:
        """Decode latent codes: run the steps after the bottleneck and undo the alignment."""
        self._check_fitted()
        z = self._input(Z, self.latent_dim_, "Z")
        x, _, _ = self.flow_.forward(self.theta_, z, start=self.flow_.profile.bottleneck_step + 1)
        return self._unalign(x).cpu().numpy()

    encode = transform
    decode = inverse_transform

    def reconstruct(self, X) -> np.ndarray:
        """``x ↦ x_K`` in one pass (equal bitwise to ``decode(encode(X))``)."""
        self._check_fitted()
        x = self._align(self._input(X, self.n_features_in_))
        j = self.flow_.profile.bottleneck_step + 1
        z, _, _ = self.flow_.forward(self.theta_, x, stop=j)
        x, _, _ = self.flow_.forward(self.theta_, z, start=j)
        return self._unalign(x).cpu().numpy()

    def score(self, X, y=None) -> float:
        """Negative mean squared reconstruction error per component (higher is better)."""
        X = validate_matrix(X, "X")
        return -float(np.mean((self.reconstruct(X) - X) ** 2))

    def _problem(self, X) -> Problem:
        self._check_fitted()
        x0 = self._align(self._input(X, self.n_features_in_))
        return Problem(self.flow_, x0, self.lam)

    def objective(self, X) -> float:
        """``J(θ)`` on ``X`` with uniform weights."""
        return self._problem(X).objective(self.theta_)[0]

    def gradient(self, X) -> np.ndarray:
        """``∇_θ J`` on ``X`` from the costate sweep, flat, in :meth:`get_controls` order."""
        return self._problem(X).sweep(self.theta_).grad.cpu().numpy()

    def trajectory(self, X) -> np.ndarray:
        """States ``x_0..x_K`` (aligned coordinates), shape ``(K+1, N, d)``, zeros on
        inactive components."""
        problem = self._problem(X)
        _, states, _ = self.flow_.forward(self.theta_, problem.x0, keep=True)
        d = self.n_features_in_
        out = torch.zeros((len(states), problem.x0.shape[0], d), dtype=self._dtype)
        for j, state in enumerate(states):
            out[j, :, :state.shape[1]] = state.cpu()
        return out.numpy()

    def get_controls(self) -> np.ndarray:
        """Flat controls: for each step, ``W_j`` row-major then ``b_j`` (then ``A_j``)."""
        self._check_fitted()
        return self.theta_.cpu().numpy().copy()

    def set_controls(self, flat) -> "AutoencODE":
        """Replace the controls by a flat vector in :meth:`get_controls` order."""
        self._check_fitted()
        flat = np.asarray(flat)
        size = self.flow_.layout.size
        if flat.ndim != 1 or flat.shape[0] != size:
            raise DataError(f"controls of shape {flat.shape} given, expected a flat vector of "
                            f"{size} numbers (see get_controls())")
        validate_matrix(flat.reshape(-1, 1), "controls")
        self.theta_ = self._tensor(flat).clone()
        return self

    # ----------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write ``<path>.safetensors`` (tensors) and ``<path>.json`` (everything else)."""
        from safetensors.torch import save as save_tensors
        self._check_fitted()
        base = _base(path)
        tensors = {"theta": self.theta_.detach().cpu().contiguous()}
        if self.pca_align:
            tensors["mean"] = self.mean_.cpu().contiguous()
            tensors["rotation"] = self.rotation_.cpu().contiguous()
        blob = save_tensors(tensors)
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "params": self.get_params(deep=False),
                "n_features_in": self.n_features_in_, "status": self.status_,
                "tensors_sha256": hashlib.sha256(blob).hexdigest(), "history": self.history_}
        atomic_write_bytes(base.with_suffix(".safetensors"), blob)
        atomic_write_text(base.with_suffix(".json"), json.dumps(meta, indent=1, default=_jsonable))

    @classmethod
    def load(cls, path) -> "AutoencODE":
        """Load a model written by :meth:`save`; never unpickles, validates everything."""
        base = _base(path)
        meta = _read_meta(base.with_suffix(".json"))
        params = dict(meta["params"])
        for key in ("widths", "steps_per_width"):  # JSON turned these tuples into lists
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])
        try:
            model = cls(**params)
            flow, _ = model._build(int(meta["n_features_in"]))
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"model file {base.with_suffix('.json')} holds invalid "
                                 f"settings ({exc}); re-save the model") from None
        tensors = _read_tensors(base.with_suffix(".safetensors"), meta["tensors_sha256"])
        d = flow.profile.d
        expected = {"theta": (flow.layout.size,)}
        if model.pca_align:
            expected.update(mean=(d,), rotation=(d, d))
        got = {k: tuple(v.shape) for k, v in tensors.items()}
        if got != expected:
            raise ModelFileError(f"model tensors {got} do not match the settings in "
                                 f"{base.with_suffix('.json')} (expected {expected}); the files "
                                 f"are from different models or were modified")
        if not all(torch.isfinite(v).all() for v in tensors.values()):
            raise ModelFileError(f"model tensors in {base.with_suffix('.safetensors')} hold "
                                 f"NaN or inf; the file is corrupt")
        model.flow_, model.n_features_in_, model.latent_dim_ = flow, d, flow.profile.k
        model.theta_ = model._tensor(tensors["theta"])
        if model.pca_align:
            model.mean_ = model._tensor(tensors["mean"])
            model.rotation_ = model._tensor(tensors["rotation"])
        model.history_ = meta.get("history", [])
        model.status_ = meta.get("status", "loaded")
        if model.status_ == "diverged" and model.history_:
            model.diverged_at_ = model.history_[-1].get("iteration", 0) + 1
        return model


def _base(path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".safetensors") else path


def _jsonable(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in model.json")


def _read_meta(path: Path) -> dict:
    meta = read_json_object(path, "model file", ModelFileError,
                            "pass the path given to save() or a run directory's model.json")
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an autoencode model (format field missing or "
                             f"not {FORMAT!r}); pass a model.json written by AutoencODE.save")
    if meta.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"model file {path} has format version {meta.get('version')!r}, "
                             f"this autoencode reads version {FORMAT_VERSION}; re-save the model")
    for key, kind in (("params", dict), ("n_features_in", int), ("tensors_sha256", str)):
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise ModelFileError(f"model file {path}: key {key!r} missing or not a "
                                 f"{kind.__name__}; the file was modified")
    if not isinstance(meta.get("history", []), list):
        raise ModelFileError(f"model file {path}: 'history' is not a list; the file was modified")
    return meta


def _read_tensors(path: Path, sha256: str) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"model tensors {path} not found; it is written next to "
                             f"model.json by AutoencODE.save") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelFileError(f"model tensors {path} do not match the checksum in model.json: "
                             f"the file is truncated, modified or from another save; re-save "
                             f"the model")
    try:
        return load_tensors(data)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise ModelFileError(f"model tensors {path} are truncated or not a safetensors file "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
