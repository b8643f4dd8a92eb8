"""Numerical studies of the mean-field control problem (``autoencode study ...``).

* :func:`tikhonov_study`: the low-Tikhonov regime. For λ on a log grid and several seeds,
  train with ``shooting`` and ``emsa`` from the same initial controls and record
  convergence, J, MSE, PMP residual, control norm, the extreme Hessian eigenvalues at the
  end (Lanczos on Hessian-vector products), a convexity probe, and the number of distinct
  solutions across seeds.
* :func:`mean_field_study`: train on N samples of a distribution for N on a grid, evaluate
  on fresh samples: generalisation gap against N with a fitted rate, and the distance
  between controls trained on different N.
* :func:`time_limit_study`: fixed T and λ, the number of steps K doubling: convergence of
  the objective and of the control θ(t) as a function of time, with fitted rates.

Each returns a JSON-serialisable dict (the content of ``study.json``);
:func:`write_study` writes ``study.json`` (atomically), the figures and a self-contained
``report.html``. :func:`add_study_parser` and :func:`run_study` provide the
``autoencode study tikhonov|mean-field|time-limit`` command.

Conventions shared by the studies (also stored under ``definitions`` in ``study.json``):

* float64, explicit Euler, single-layer tanh field, initial controls ``normal`` with
  ``init_scale`` (the estimator's default initialisation) drawn from the seed.
* The data are preprocessed **once per study** (``align``): ``pca`` (default of the λ and
  mean-field studies) centres and rotates to the principal axes of the whole data set the
  study draws from, the estimator's ``pca_align`` but fixed across runs, so that controls
  trained on different samples or grids live in the same coordinates and can be compared;
  θ = 0 is then exactly k-component PCA and a stationary point. ``center`` (default of the
  time-limit study) only centres, so that the high-λ solution is not θ = 0.
* *converged*: the PMP residual ``|∇_θ H|`` fell to ``rtol`` times its initial value;
  *diverged*: J became non-finite or rose above ``1e6`` times its initial value (the
  estimator's rule); *not_converged*: the iteration budget ended first.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .analysis import (convexity_probe, distinct_solutions, fit_power_law, hessian_extremes,
                       relative_distance)
from .errors import ConfigError, DataError
from .fields import make_field
from .io import atomic_write_bytes, atomic_write_text
from .methods import make_method
from .plotting import DPI, new_figure
from .methods.base import metrics_of
from .pmp import Flow, Problem
from .profile import WidthProfile, default_widths
from .solvers import get_solver
from .validation import integer, number

__all__ = [
    "ALIGNMENTS",
    "STUDIES",
    "TrainingRun",
    "add_study_parser",
    "control_map",
    "mean_field_study",
    "render_study_report",
    "run_study",
    "study_options",
    "tikhonov_study",
    "time_limit_study",
    "train_problem",
    "write_study",
]

STUDIES = ("tikhonov", "mean-field", "time-limit")
FORMAT = "autoencode-study"
FORMAT_VERSION = 1
BLOW_UP = 1e6          # J above BLOW_UP × J_0 counts as diverged (the estimator's rule)
DTYPE = torch.float64

TIKHONOV_LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2)
MEAN_FIELD_SIZES = (100, 300, 1000, 3000, 10000)
TIME_LIMIT_STEPS = (2, 4, 8, 16, 32)

Log = Optional[Callable[[str], None]]


# --------------------------------------------------------------------------------------------
# Shared plumbing
# --------------------------------------------------------------------------------------------

@dataclass
class TrainingRun:
    """Outcome of :func:`train_problem`: final controls, per-iteration history (iteration
    0 is the initial point), ``reason`` (``converged``, ``diverged``, ``not_converged``),
    the number of accepted iterations and wall-clock seconds."""

    theta: torch.Tensor
    history: list
    reason: str
    iterations: int
    seconds: float

    @property
    def converged(self) -> bool:
        return self.reason == "converged"

    @property
    def final(self) -> dict:
        return self.history[-1]


def train_problem(problem: Problem, method, theta: torch.Tensor, iters: int,
                  rtol: float = 1e-6) -> TrainingRun:
    """Run ``method`` (a name or a :class:`~autoencode.methods.Method`) on ``problem`` from
    ``theta`` for at most ``iters`` iterations.

    Stops early when the PMP residual reaches ``rtol`` × its initial value (``converged``)
    or when J is non-finite or above ``1e6`` × its initial value (``diverged``; the
    controls of the last good iteration are kept, as the estimator does).
    """
    method = make_method(method)
    start = time.perf_counter()
    state = method.init(problem, theta)
    first = metrics_of(state)
    history = [{"iteration": 0, **first}]
    limit = BLOW_UP * max(first["J"], 1e-12)
    target = rtol * first["residual"]
    reason = "converged" if first["residual"] <= target else "not_converged"
    iterations = 0
    if reason != "converged":
        for iteration in range(1, iters + 1):
            new_state, metrics = method.update(problem, state)
            if not (math.isfinite(metrics["J"]) and math.isfinite(metrics["residual"])
                    and metrics["J"] <= limit):
                reason = "diverged"
                break
            state = new_state
            iterations = iteration
            history.append({"iteration": iteration, **metrics})
            if metrics["residual"] <= target:
                reason = "converged"
                break
    return TrainingRun(state["theta"].detach().clone(), history, reason, iterations,
                       time.perf_counter() - start)


ALIGNMENTS = ("pca", "center", "none")


class _Alignment:
    """Preprocessing fitted once per study: ``pca`` centres and rotates to principal axes
    (``x ↦ (x − μ) V``, the estimator's ``pca_align``), ``center`` only centres, ``none``
    leaves the data as it is."""

    def __init__(self, X: np.ndarray, kind: str = "pca"):
        if kind not in ALIGNMENTS:
            raise ConfigError(f"unknown alignment {kind!r}; expected one of "
                              f"{', '.join(ALIGNMENTS)}")
        d = X.shape[1]
        self.mean = X.mean(axis=0) if kind != "none" else np.zeros(d)
        self.rotation = np.eye(d)
        if kind == "pca":
            _, _, vt = np.linalg.svd(X - self.mean, full_matrices=True)
            self.rotation = np.ascontiguousarray(vt.T)

    def __call__(self, X: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((X - self.mean) @ self.rotation, dtype=DTYPE)


def _flow(widths, steps_per_width, T: float) -> Flow:
    return Flow(WidthProfile.build(widths, steps_per_width, T), make_field("layer", "tanh"),
                get_solver("euler"))


def _initial(flow: Flow, seed: int, scale: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(int(seed))
    return flow.layout.initial("normal", scale, generator, DTYPE, "cpu")


def _widths(d: int, widths, latent_dim, reduced: bool) -> tuple:
    """The width profile: given, else halving to ``latent_dim`` (``reduced``: one
    intermediate level ``(d, 2k, k, 2k, d)`` only, to keep the Hessian work small)."""
    if widths is not None:
        widths = tuple(widths)
        if widths[0] != d:
            raise ConfigError(f"widths {widths} start at {widths[0]} but the data has {d} "
                              f"features; make the first and last width {d}")
        return widths
    k = (8 if d >= 16 else max(1, d - 1)) if latent_dim is None else integer(latent_dim,
                                                                             "latent_dim", 1)
    if k > d:
        raise ConfigError(f"latent_dim {k} exceeds the data dimension {d}; choose 1..{d}")
    if reduced:
        return (d, 2 * k, k, 2 * k, d) if 2 * k < d else ((d, k, d) if k < d else (d, d))
    return default_widths(d, k)


def control_map(flow: Flow, theta: torch.Tensor) -> list:
    """``d × K`` nested list: the norm of the row of ``(W_j, b_j)`` writing state component
    ``i`` at step ``j`` (``None`` where the component is inactive)."""
    profile = flow.profile
    out = [[None] * profile.K for _ in range(profile.d)]
    for j, step in enumerate(flow.layout.split(theta.detach())):
        W, b = step[0], step[1]
        rows = (W.pow(2).sum(1) + b.pow(2)).sqrt()
        for i, value in enumerate(rows.tolist()):
            out[i][j] = value
    return out


def _check_align(align: str) -> None:
    if align not in ALIGNMENTS:
        raise ConfigError(f"unknown alignment {align!r}; expected one of {', '.join(ALIGNMENTS)}")


def _lam_key(lam: float) -> str:
    return f"{lam:g}"


def _seconds_since(start: float) -> float:
    return round(time.perf_counter() - start, 3)


def _finite(value) -> Optional[float]:
    """JSON has no NaN/inf: store them as ``None``."""
    value = float(value)
    return value if math.isfinite(value) else None


def _environment() -> dict:
    return {"torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads(),
            "machine": platform.machine()}


_ALIGN_TEXT = {
    "pca": "data centred and rotated to principal axes once per study (PCA of the whole data "
           "the study draws from); the flow acts on aligned data, and theta = 0 is then exactly "
           "k-component PCA and a stationary point of J",
    "center": "data centred once per study (no rotation): theta = 0 is not stationary, so the "
              "high-lambda solution is small but not zero",
    "none": "raw data, no centring or rotation",
}


def _definitions(rtol: float, align: str = "pca") -> dict:
    return {
        "converged": f"PMP residual |grad_theta H| <= {rtol:g} x its initial value",
        "diverged": f"J non-finite or above {BLOW_UP:g} x its initial value "
                    f"(controls of the last good iteration kept)",
        "not_converged": "iteration budget ended before convergence",
        "alignment": _ALIGN_TEXT[align],
        "J": "sum_i w_i |x_K^i - x_0^i|^2 + (lam/2) h sum_j |theta_j|^2 (summed over components)",
        "mse": "mean squared reconstruction error per component",
    }


def _load(data, n: Optional[int] = None, seed: int = 0):
    """``(X, name, is_generated)`` from a built-in name, a path or an array; ``n`` rows
    (generated data: ``n`` samples drawn with ``seed``; fixed data: a random subset of
    ``n`` rows, all of them when it has fewer)."""
    from .data import BUILTIN, Scaler, default_scaling, load, validate_matrix
    if isinstance(data, np.ndarray) or torch.is_tensor(data):
        X = validate_matrix(np.asarray(data), "data")
        name, generated = "array", False
    else:
        generated = isinstance(data, str) and data in BUILTIN and data != "digits"
        if generated:
            ds = load(data, n=n, seed=seed)
        else:
            ds = load(data)
        X = Scaler.fit(ds.X, default_scaling(data)).transform(ds.X)
        name = str(data)
    if not generated and n is not None and n < X.shape[0]:
        index = np.sort(np.random.default_rng(seed).choice(X.shape[0], size=n, replace=False))
        X = np.ascontiguousarray(X[index])
    return X, name, generated


def _seeds(seeds) -> tuple:
    seeds = tuple(integer(s, "seed") for s in seeds)
    if not seeds:
        raise ConfigError("seeds is empty; give at least one seed, e.g. 0,1,2")
    return seeds


def _sorted_positive(values, name: str) -> tuple:
    values = tuple(sorted(number(v, name, 0, low_open=True) for v in values))
    if not values:
        raise ConfigError(f"{name} is empty; give at least one value")
    return values


def _say(log: Log, text: str):
    if log is not None:
        log(text)


# --------------------------------------------------------------------------------------------
# Tikhonov study
# --------------------------------------------------------------------------------------------

def tikhonov_study(data="digits", *, n: Optional[int] = 300, data_seed: int = 0,
                   lambdas: Sequence[float] = TIKHONOV_LAMBDAS, seeds: Sequence[int] = (0, 1, 2),
                   methods: Sequence[str] = ("shooting", "emsa"), iters: int = 1000,
                   widths=None, latent_dim: Optional[int] = None, steps_per_width=1,
                   T: float = 4.0, init_scale: float = 0.5, rtol: float = 1e-6,
                   lanczos_iters: int = 60, probe_directions: int = 8,
                   probe_radius: float = 1.0, probe_points: int = 20,
                   cluster_rtol: float = 1e-2, align: str = "pca", log: Log = None) -> dict:
    """The λ study (see the module docstring); returns the ``study.json`` content.

    ``data`` (name, path or array) with ``n`` rows; the width profile defaults to
    ``(d, 2k, k, 2k, d)`` with one step per width. Every (λ, method, seed) run starts from
    the controls drawn with ``seed``. At the final controls: Lanczos (``lanczos_iters``
    Hessian-vector products) for the extreme eigenvalues, and the convexity probe along
    ``probe_directions`` random unit directions and along the Ritz vector of the smallest
    eigenvalue, up to a radius ``probe_radius × |θ_0|`` (``|θ_0|`` the mean initial control
    norm) on ``probe_points`` grid points per side. Distinct solutions: final controls of
    the runs that did not diverge, clustered by ``|θ_a − θ_b| / max(|θ_a|, |θ_b|, |θ_0|) <
    cluster_rtol`` (the ``|θ_0|`` floor makes two runs that both shrink to θ ≈ 0 one
    solution).
    """
    start = time.perf_counter()
    _check_align(align)
    lambdas = _sorted_positive(lambdas, "lambdas")
    seeds = _seeds(seeds)
    methods = tuple(methods)
    for method in methods:
        make_method(method)
    iters = integer(iters, "iters", 1)
    X, name, _ = _load(data, n, data_seed)
    d = X.shape[1]
    widths = _widths(d, widths, latent_dim, reduced=True)
    flow = _flow(widths, steps_per_width, T)
    x0 = _Alignment(X, align)(X)
    inits = {seed: _initial(flow, seed, init_scale) for seed in seeds}
    scale = float(np.mean([float(t.norm()) for t in inits.values()]))
    max_radius = probe_radius * scale
    _say(log, f"tikhonov: {name}, {X.shape[0]} x {d}, widths {widths}, K = {flow.profile.K}, "
              f"{flow.layout.size} controls; {len(lambdas)} lambdas x {len(methods)} methods "
              f"x {len(seeds)} seeds")
    rows, histories, maps = [], [], {}
    finals = {}
    for lam in lambdas:
        problem = Problem(flow, x0, lam)
        objective = lambda t, p=problem: p.objective(t)[0]
        for method in methods:
            for seed in seeds:
                t0 = time.perf_counter()
                run = train_problem(problem, method, inits[seed], iters, rtol)
                final, first = run.final, run.history[0]
                hess = hessian_extremes(problem, run.theta, iters=lanczos_iters, seed=seed)
                probe = convexity_probe(objective, run.theta, directions=probe_directions,
                                        max_radius=max_radius, points=probe_points, seed=seed,
                                        grid="geometric")
                along = convexity_probe(objective, run.theta, directions=hess["min_vector"][None],
                                        max_radius=max_radius, points=probe_points,
                                        grid="geometric")
                row = {
                    "lam": lam, "method": method, "seed": seed,
                    "converged": run.converged, "reason": run.reason,
                    "iterations": run.iterations, "sweeps": final["sweeps"],
                    "J": final["J"], "J_initial": first["J"], "mse": final["mse"],
                    "residual": final["residual"], "residual_initial": first["residual"],
                    "residual_ratio": final["residual"] / first["residual"],
                    "J_increased": final["J"] > first["J"],
                    "control_norm": float(run.theta.norm()),
                    "hessian_min_eig": hess["min_eig"], "hessian_max_eig": hess["max_eig"],
                    "hessian_min_residual": hess["min_residual"],
                    "hessian_max_residual": hess["max_residual"],
                    "lanczos_iterations": hess["iterations"],
                    "certified_locally_convex": hess["certified"],
                    "lam_h": hess["lam_h"],
                    "shooting_contraction": _finite(hess["shooting_contraction"]),
                    "convexity_radius_median": probe.median, "convexity_radius_q25": probe.q25,
                    "convexity_radius_q75": probe.q75, "convexity_radius_min": probe.min,
                    "convexity_radius_censored": probe.censored,
                    "convexity_radius_min_eigvec": along.median,
                    "seconds": _seconds_since(t0),
                }
                rows.append(row)
                finals[(lam, method, seed)] = run.theta
                histories.append({"lam": lam, "method": method, "seed": seed,
                                  "J": [h["J"] for h in run.history],
                                  "residual": [h["residual"] for h in run.history]})
                if seed == seeds[0]:
                    maps.setdefault(_lam_key(lam), {})[method] = control_map(flow, run.theta)
                _say(log, f"  lam={lam:<7g} {method:<8} seed={seed}: {run.reason:<13} "
                          f"it={run.iterations:<4d} J={final['J']:.4g} "
                          f"r/r0={row['residual_ratio']:.1e} |theta|={row['control_norm']:.3g} "
                          f"eig=[{hess['min_eig']:.3g}, {hess['max_eig']:.3g}] "
                          f"({row['seconds']:.1f}s)")
    distinct, distinct_converged, summary = {}, {}, []
    for lam in lambdas:
        key = _lam_key(lam)
        distinct[key], distinct_converged[key] = {}, {}
        for method in methods:
            group = [r for r in rows if r["lam"] == lam and r["method"] == method]
            kept = [finals[(lam, method, r["seed"])] for r in group if r["reason"] != "diverged"]
            conv = [finals[(lam, method, r["seed"])] for r in group if r["converged"]]
            count, labels = distinct_solutions(kept, cluster_rtol, scale)
            distinct[key][method] = count
            distinct_converged[key][method] = distinct_solutions(conv, cluster_rtol, scale)[0]
            Js = [r["J"] for r in group if r["reason"] != "diverged"]
            summary.append({
                "lam": lam, "method": method, "runs": len(group),
                "converged": sum(r["converged"] for r in group),
                "diverged": sum(r["reason"] == "diverged" for r in group),
                "not_converged": sum(r["reason"] == "not_converged" for r in group),
                "J_increased": sum(r["J_increased"] for r in group),
                "distinct_solutions": count,
                "distinct_converged_solutions": distinct_converged[key][method],
                "certified_locally_convex": sum(r["certified_locally_convex"] for r in group
                                                if r["reason"] != "diverged"),
                "J_min": min(Js) if Js else None, "J_max": max(Js) if Js else None,
                "median_residual_ratio": float(np.median([r["residual_ratio"] for r in group])),
            })
    result = {
        "format": FORMAT, "version": FORMAT_VERSION, "kind": "tikhonov",
        "data": {"name": name, "n": int(X.shape[0]), "d": int(d)},
        "settings": {"lambdas": list(lambdas), "seeds": list(seeds), "methods": list(methods),
                     "iters": iters, "widths": list(widths),
                     "steps_per_width": steps_per_width if isinstance(steps_per_width, int)
                     else list(steps_per_width),
                     "K": flow.profile.K, "T": float(T), "h": flow.profile.h,
                     "controls": flow.layout.size, "init_scale": init_scale, "rtol": rtol,
                     "lanczos_iters": lanczos_iters, "probe_directions": probe_directions,
                     "probe_radius": probe_radius, "probe_points": probe_points,
                     "probe_max_radius": max_radius, "probe_min_radius": 1e-3 * max_radius,
                     "probe_grid": "geometric", "initial_control_norm": scale,
                     "cluster_rtol": cluster_rtol, "data_seed": data_seed, "align": align},
        "definitions": dict(_definitions(rtol, align), **{
            "distinct_solutions": f"clusters of the final controls of the runs that did not "
                                  f"diverge, |a-b|/max(|a|,|b|,|theta_0|) < {cluster_rtol:g} "
                                  f"(single linkage), |theta_0| = {scale:.4g} the mean initial "
                                  f"control norm; distinct_converged_solutions: the same over "
                                  f"converged runs only",
            "certified_locally_convex": "smallest Lanczos Ritz value of the Hessian >= -1e-6 x "
                                        "|largest|; Ritz values lie inside the spectrum, so an "
                                        "unconverged smallest Ritz value (see "
                                        "hessian_min_residual) can overstate it",
            "shooting_contraction": "max |1 - mu/(lam h)| over the Ritz extremes mu: the local "
                                    "contraction factor of the shooting map theta - grad J/(lam "
                                    "h); < 1 predicts local convergence of shooting",
            "convexity_radius": "per random unit direction u, the largest radius r of a geometric "
                                "grid (probe_points radii from probe_min_radius to "
                                "probe_max_radius) such that J(theta + t u) is discretely convex "
                                "on [-r, r] (slopes of the interpolant non-decreasing, within "
                                "rounding); median, quartiles, min over directions; censored: "
                                "fraction of directions convex on the whole probed segment; "
                                "_min_eigvec: along the Ritz vector of the smallest eigenvalue",
        }),
        "rows": rows,
        "distinct_solutions": distinct,
        "distinct_converged_solutions": distinct_converged,
        "summary": summary,
        "histories": histories,
        "control_maps": {"T": float(T), "widths": list(widths), "maps": maps},
        "environment": _environment(),
        "wall_time_s": _seconds_since(start),
    }
    result["findings"] = _tikhonov_findings(result)
    return result


def _lams(values) -> str:
    return "{" + ", ".join(f"{v:g}" for v in values) + "}" if values else "none"


def _tikhonov_findings(result: dict) -> list:
    out = []
    summary = {(s["lam"], s["method"]): s for s in result["summary"]}
    rows = result["rows"]
    settings = result["settings"]
    lambdas, methods = settings["lambdas"], settings["methods"]
    for method in methods:
        group = [summary[(lam, method)] for lam in lambdas]
        runs = group[0]["runs"]
        allconv = [s["lam"] for s in group if s["converged"] == s["runs"]]
        anydiv = [s["lam"] for s in group if s["diverged"] > 0]
        rest = [s["lam"] for s in group if s["lam"] not in allconv and s["lam"] not in anydiv]
        text = (f"{method} ({settings['iters']} iterations at most): all {runs} seeds converged "
                f"at lam in {_lams(allconv)}; at least one seed diverged at lam in "
                f"{_lams(anydiv)}")
        if rest:
            worse = [s["lam"] for s in group if s["lam"] in rest and s["J_increased"] > 0]
            text += (f"; otherwise (budget ended, or only some seeds converged) at lam in "
                     f"{_lams(rest)}"
                     + (f", with J ending above its start at lam in {_lams(worse)}" if worse else ""))
        out.append(text + ".")
        norms = []
        for lam in lambdas:
            kept = [r["control_norm"] for r in rows if r["lam"] == lam and r["method"] == method
                    and r["reason"] != "diverged"]
            norms.append(f"{lam:g}: {np.median(kept):.2g}" if kept else f"{lam:g}: –")
        out.append(f"{method}: median final control norm |theta| per lam (runs that did not "
                   f"diverge; initial norm {settings['initial_control_norm']:.3g}): "
                   + ", ".join(norms) + ".")
        out.append(f"{method}: distinct final controls per lam over the runs that did not "
                   f"diverge: " + ", ".join(f"{s['lam']:g}: {s['distinct_solutions']}"
                                            for s in group)
                   + "; over converged runs only: "
                   + ", ".join(f"{s['lam']:g}: {s['distinct_converged_solutions']}"
                               for s in group) + ".")
    for lam, label in ((lambdas[-1], "highest"), (lambdas[0], "lowest")):
        parts = []
        for method in methods:
            s = summary[(lam, method)]
            kept = s["runs"] - s["diverged"]
            J = (f", final J {s['J_min']:.4g}–{s['J_max']:.4g}" if s["J_min"] is not None else "")
            parts.append(f"{method}: {s['converged']}/{s['runs']} converged, {s['diverged']} "
                         f"diverged, {s['distinct_solutions']} distinct final controls "
                         f"({s['distinct_converged_solutions']} among converged), "
                         f"{s['certified_locally_convex']}/{kept} certified locally convex, "
                         f"median residual ratio {s['median_residual_ratio']:.1e}{J}")
        out.append(f"at the {label} lam = {lam:g}: " + "; ".join(parts) + ".")
    kept = [r for r in rows if r["reason"] != "diverged"]
    negative = [r for r in kept if not r["certified_locally_convex"]]
    if negative:
        out.append(f"{len(negative)} of {len(kept)} non-diverged final points have a negative "
                   f"smallest Ritz value (beyond the tolerance), which proves a direction of "
                   f"negative curvature there, since a Ritz value is a Rayleigh quotient: "
                   + ", ".join(f"({r['lam']:g}, {r['method']}, seed {r['seed']}: "
                               f"{r['hessian_min_eig']:.2g})" for r in negative[:12])
                   + (" ..." if len(negative) > 12 else "") + ".")
    certified = [r for r in kept if r["certified_locally_convex"]]
    unresolved = [r for r in certified if r["hessian_min_residual"] > abs(r["hessian_min_eig"])]
    if certified:
        out.append(f"{len(certified)} non-diverged final points are certified locally convex; "
                   f"for {len(unresolved)} of them the Lanczos residual bound exceeds the "
                   f"smallest Ritz value, so the sign of the smallest eigenvalue is not resolved"
                   + (" (at lam in " + _lams(sorted({r['lam'] for r in unresolved})) + ")"
                      if unresolved else "") + ".")
    if "shooting" in methods:
        reference = "emsa" if "emsa" in methods else None
        if reference is not None:
            predicted, observed = [], []
            for lam in lambdas:
                q = [r["shooting_contraction"] for r in rows if r["lam"] == lam
                     and r["method"] == reference and r["converged"]
                     and r["shooting_contraction"] is not None]
                if q:
                    predicted.append((lam, float(np.median(q))))
                    observed.append(summary[(lam, "shooting")]["converged"]
                                    == summary[(lam, "shooting")]["runs"])
            if predicted:
                out.append("shooting's local contraction factor max|1 − mu/(lam h)| at emsa's "
                           "converged points (median over seeds): "
                           + ", ".join(f"{lam:g}: {q:.3g}" for lam, q in predicted)
                           + f"; it is < 1 (local convergence of shooting predicted) at lam in "
                           f"{_lams([lam for lam, q in predicted if q < 1])}, and shooting "
                           f"converged for every seed at lam in "
                           f"{_lams([lam for (lam, _), o in zip(predicted, observed) if o])}.")
    return out


# --------------------------------------------------------------------------------------------
# Mean-field study
# --------------------------------------------------------------------------------------------

def mean_field_study(data="gaussian-mixture", *, sizes: Sequence[int] = MEAN_FIELD_SIZES,
                     seeds: Sequence[int] = (0, 1, 2), n_test: int = 5000, lam: float = 1e-2,
                     method: str = "emsa", iters: int = 300, widths=None,
                     latent_dim: Optional[int] = 2, steps_per_width=2, T: float = 4.0,
                     init_scale: float = 0.5, rtol: float = 1e-6, data_seed: int = 0,
                     align: str = "pca", log: Log = None) -> dict:
    """The mean-field limit study (see the module docstring); returns the ``study.json``
    content.

    A pool is drawn once: for generated data ``n_test + 2 max(sizes)`` samples with
    ``data_seed``; fixed data (``digits``, files) is the pool itself. The last ``n_test``
    rows are the test set (fresh samples never trained on); for each seed the training
    sets are the first N rows of a seed-dependent permutation of the rest (nested in N),
    and training starts from the controls drawn with the same seed, so that for a seed
    only N changes. Sizes beyond the training pool are dropped (and listed).
    """
    start = time.perf_counter()
    _check_align(align)
    sizes = tuple(sorted({integer(s, "size", 2) for s in sizes}))
    if not sizes:
        raise ConfigError("sizes is empty; give at least one training set size")
    seeds = _seeds(seeds)
    n_test = integer(n_test, "n_test", 1)
    make_method(method)
    iters = integer(iters, "iters", 1)
    number(lam, "lam", 0)
    X, name, generated = _load(data, n_test + 2 * max(sizes) if _is_generated(data) else None,
                               data_seed)
    total = X.shape[0]
    if not generated:
        n_test = min(n_test, max(1, total // 3))
    pool, test = X[:total - n_test], X[total - n_test:]
    if not generated:  # fixed data may be ordered (e.g. by class): shuffle before splitting
        order = np.random.default_rng(data_seed).permutation(total)
        pool, test = X[order[:total - n_test]], X[order[total - n_test:]]
    dropped = [s for s in sizes if s > pool.shape[0]]
    sizes = tuple(s for s in sizes if s <= pool.shape[0])
    if not sizes:
        raise DataError(f"data {name!r} has {pool.shape[0]} training rows after holding out "
                        f"{n_test} for testing, fewer than every requested size; give smaller "
                        f"--sizes")
    d = X.shape[1]
    widths = _widths(d, widths, latent_dim, reduced=False)
    flow = _flow(widths, steps_per_width, T)
    transform = _Alignment(pool, align)
    test_problem = Problem(flow, transform(test), lam)
    _say(log, f"mean-field: {name}, d = {d}, sizes {list(sizes)}, {n_test} test samples, "
              f"widths {widths}, K = {flow.profile.K}, lam = {lam:g}, {method}, {iters} iterations")
    rows, finals = [], {}
    for seed in seeds:
        order = np.random.default_rng(10_000 + seed).permutation(pool.shape[0])
        theta0 = _initial(flow, seed, init_scale)
        for N in sizes:
            t0 = time.perf_counter()
            problem = Problem(flow, transform(pool[order[:N]]), lam)
            run = train_problem(problem, method, theta0, iters, rtol)
            J_test, mse_test = test_problem.objective(run.theta)
            final = run.final
            finals[(seed, N)] = run.theta
            rows.append({"N": N, "seed": seed, "converged": run.converged, "reason": run.reason,
                         "iterations": run.iterations, "J": final["J"], "mse": final["mse"],
                         "J_test": J_test, "mse_test": mse_test,
                         "gap": mse_test - final["mse"],
                         "residual": final["residual"],
                         "residual_ratio": final["residual"] / run.history[0]["residual"],
                         "control_norm": float(run.theta.norm()),
                         "seconds": _seconds_since(t0)})
            _say(log, f"  seed={seed} N={N:<6d} {run.reason:<13} it={run.iterations:<4d} "
                      f"train mse={final['mse']:.4g} test mse={mse_test:.4g} "
                      f"gap={mse_test - final['mse']:+.2e} ({rows[-1]['seconds']:.1f}s)")
    largest = sizes[-1]
    for row in rows:
        seed, N = row["seed"], row["N"]
        row["distance_to_largest"] = relative_distance(finals[(seed, N)], finals[(seed, largest)])
        nxt = [s for s in sizes if s > N]
        row["distance_to_next"] = (relative_distance(finals[(seed, N)], finals[(seed, nxt[0])])
                                   if nxt else None)
    summary = []
    for N in sizes:
        group = [r for r in rows if r["N"] == N]
        gaps = np.array([r["gap"] for r in group])
        summary.append({
            "N": N, "runs": len(group), "converged": sum(r["converged"] for r in group),
            "diverged": sum(r["reason"] == "diverged" for r in group),
            "mse": float(np.mean([r["mse"] for r in group])),
            "mse_test": float(np.mean([r["mse_test"] for r in group])),
            "gap_mean": float(gaps.mean()), "gap_std": float(gaps.std()),
            "gap_min": float(gaps.min()), "gap_max": float(gaps.max()),
            "distance_to_largest": float(np.mean([r["distance_to_largest"] for r in group])),
            "distance_to_next": (float(np.mean([r["distance_to_next"] for r in group]))
                                 if N != largest else None),
        })
    Ns = [s["N"] for s in summary]
    gap_fit = fit_power_law(Ns, [s["gap_mean"] for s in summary])
    abs_gap_fit = fit_power_law(Ns, [float(np.mean([abs(r["gap"]) for r in rows if r["N"] == N]))
                                     for N in Ns])
    dist_fit = fit_power_law(Ns[:-1], [s["distance_to_largest"] for s in summary[:-1]])
    next_fit = fit_power_law(Ns[:-1], [s["distance_to_next"] for s in summary[:-1]])
    result = {
        "format": FORMAT, "version": FORMAT_VERSION, "kind": "mean-field",
        "data": {"name": name, "d": int(d), "pool": int(pool.shape[0]), "n_test": int(n_test),
                 "generated": generated},
        "settings": {"sizes": list(sizes), "dropped_sizes": dropped, "seeds": list(seeds),
                     "n_test": n_test, "lam": lam, "method": method, "iters": iters,
                     "widths": list(widths), "steps_per_width": steps_per_width
                     if isinstance(steps_per_width, int) else list(steps_per_width),
                     "K": flow.profile.K, "T": float(T), "controls": flow.layout.size,
                     "init_scale": init_scale, "rtol": rtol, "data_seed": data_seed,
                     "align": align},
        "definitions": dict(_definitions(rtol, align), **{
            "gap": "test MSE (fresh samples) minus training MSE, per component",
            "distance_to_largest": "|theta_N - theta_Nmax| / max(|theta_N|, |theta_Nmax|), same "
                                   "seed (same initial controls, nested training sets)",
            "distance_to_next": "the same between consecutive sizes of the grid",
            "fits": "least squares of log y = log c + rate log N over points with y > 0",
            "alignment": _ALIGN_TEXT[align] + "; fitted on the training pool, the same for "
                                                "every N and seed",
        }),
        "rows": rows, "summary": summary,
        "fits": {"gap": gap_fit, "abs_gap": abs_gap_fit, "distance_to_largest": dist_fit,
                 "distance_to_next": next_fit},
        "environment": _environment(),
        "wall_time_s": _seconds_since(start),
    }
    result["findings"] = _mean_field_findings(result)
    return result


def _is_generated(data) -> bool:
    from .data import BUILTIN
    return isinstance(data, str) and data in BUILTIN and data != "digits"


def _rate_text(fit: dict) -> str:
    if not math.isfinite(fit["rate"]):
        return "no fit (fewer than two positive points)"
    return f"rate {fit['rate']:.2f} (R² = {fit['r2']:.2f}, {fit['points']} points)"


def _mean_field_findings(result: dict) -> list:
    summary, fits = result["summary"], result["fits"]
    out = []
    negative = [s["N"] for s in summary if s["gap_mean"] <= 0]
    out.append("mean generalisation gap (test - train MSE) per N: "
               + ", ".join(f"{s['N']}: {s['gap_mean']:+.2e} ± {s['gap_std']:.1e}" for s in summary)
               + (f"; non-positive at N in {negative}" if negative else "") + ".")
    out.append(f"fitted mean gap ~ N^p: {_rate_text(fits['gap'])}"
               + (" (only the N with a positive mean gap enter)" if negative else "")
               + f"; mean |gap| over seeds: {_rate_text(fits['abs_gap'])}.")
    out.append("relative distance of the control to the one trained on the largest N: "
               + ", ".join(f"{s['N']}: {s['distance_to_largest']:.3g}" for s in summary[:-1])
               + f"; fitted {_rate_text(fits['distance_to_largest'])}.")
    conv = sum(s["converged"] for s in summary)
    runs = sum(s["runs"] for s in summary)
    out.append(f"{conv} of {runs} runs converged to the residual tolerance; the others are the "
               f"iterates after the iteration budget (or divergence: "
               f"{sum(s['diverged'] for s in summary)}).")
    return out


# --------------------------------------------------------------------------------------------
# Time-continuum limit study
# --------------------------------------------------------------------------------------------

def _prolong(coarse: Flow, theta: torch.Tensor, fine: Flow) -> torch.Tensor:
    """The piecewise-constant-in-time control of ``coarse`` on the finer grid of ``fine``
    (same widths, each width's steps a multiple of the coarse ones).

    A fine step takes the control of the coarse step covering it. The first step of each
    width reads the components alive before it (the previous width), the later steps the
    current width, so a fine step can read fewer columns than its coarse step (it takes
    the leading ones: the dropped columns act on components being switched off) or more
    (a decoder step reading a re-activated component, which is zero when the coarse step
    starts: the missing columns are zero)."""
    params = coarse.layout.split(theta)
    specs = fine.layout.specs
    pieces = []
    j_coarse = j_fine = 0
    for s_coarse, s_fine in zip(coarse.profile.steps, fine.profile.steps):
        ratio = s_fine // s_coarse
        for m in range(s_fine):
            source = params[j_coarse + m // ratio]
            for tensor, (shape, _) in zip(source, specs[j_fine]):
                block = tuple(slice(0, min(a, b)) for a, b in zip(shape, tensor.shape))
                piece = torch.zeros(shape, dtype=tensor.dtype, device=tensor.device)
                piece[block] = tensor[block]
                pieces.append(piece.reshape(-1))
            j_fine += 1
        j_coarse += s_coarse
    return torch.cat(pieces)


def _time_l2(flows: dict, thetas: dict, a, b, finest) -> float:
    """``(∫_0^T |θ_a(t) − θ_b(t)|² dt)^{1/2}`` for piecewise-constant controls."""
    fa = _prolong(flows[a], thetas[a], flows[finest])
    fb = _prolong(flows[b], thetas[b], flows[finest])
    return math.sqrt(flows[finest].profile.h) * float((fa - fb).norm())


def _time_norm(flows: dict, thetas: dict, a) -> float:
    return math.sqrt(flows[a].profile.h) * float(thetas[a].norm())


def time_limit_study(data="s-curve", *, steps: Sequence[int] = TIME_LIMIT_STEPS, n: int = 500,
                     seeds: Sequence[int] = (0, 1), lam: float = 1.0, method: str = "emsa",
                     iters: int = 400, widths=None, latent_dim: Optional[int] = None,
                     T: float = 4.0, init_scale: float = 0.5, rtol: float = 1e-6,
                     data_seed: int = 0, align: str = "center", start: str = "continuation",
                     log: Log = None) -> dict:
    """The time-continuum limit study (see the module docstring); returns the
    ``study.json`` content.

    ``steps`` are steps per width (K = steps × number of width entries); each must be a
    multiple of the smallest. The coarsest grid starts from controls drawn with the seed.
    ``start="continuation"`` (default) starts every finer grid from the trained control of
    the previous grid, held constant on the finer steps, so that one branch of solutions is
    followed as K grows (the problem need not have a unique solution); ``"common"`` starts
    every grid from the same initial control θ(t) of the coarsest grid, so independent
    runs that may land on different solutions. Convergence is measured between
    consecutive grids (no reference solution needed): ``|J_K − J_2K|`` and
    ``|θ_K − θ_2K|_{L²(0,T)}``, and against the finest grid; rates are fitted against
    ``h = T/K``. ``J`` at the coarsest initial control on every grid, a pure Euler
    discretisation error, is reported as a reference.

    The default preprocessing is ``align="center"``: with the PCA rotation θ = 0 is a
    stationary point, and at the default λ = 1 it is the solution on every grid, which
    converges trivially.
    """
    clock = time.perf_counter()
    _check_align(align)
    steps = tuple(sorted({integer(s, "steps", 1) for s in steps}))
    if len(steps) < 2:
        raise ConfigError(f"steps {list(steps)} needs at least two grids to measure convergence")
    if any(s % steps[0] for s in steps):
        raise ConfigError(f"steps {list(steps)}: each must be a multiple of the smallest "
                          f"({steps[0]}) so that the grids nest; use doubling, e.g. 2,4,8,16")
    seeds = _seeds(seeds)
    make_method(method)
    iters = integer(iters, "iters", 1)
    number(lam, "lam", 0)
    if start not in ("continuation", "common"):
        raise ConfigError(f"unknown start {start!r}; expected 'continuation' or 'common'")
    X, name, _ = _load(data, n, data_seed)
    d = X.shape[1]
    widths = _widths(d, widths, latent_dim, reduced=False)
    flows = {s: _flow(widths, s, T) for s in steps}
    Ks = {s: flows[s].profile.K for s in steps}
    x0 = _Alignment(X, align)(X)
    coarse, finest = steps[0], steps[-1]
    _say(log, f"time-limit: {name}, {X.shape[0]} x {d}, widths {widths}, K = "
              f"{[Ks[s] for s in steps]}, T = {T:g}, lam = {lam:g}, {method}, {iters} iterations")
    rows, maps = [], {}
    for seed in seeds:
        theta_c = _initial(flows[coarse], seed, init_scale)
        thetas = {}
        previous = None
        for s in steps:
            t0 = time.perf_counter()
            flow = flows[s]
            problem = Problem(flow, x0, lam)
            common = _prolong(flows[coarse], theta_c, flow)
            theta0 = (common if start == "common" or previous is None
                      else _prolong(flows[previous], thetas[previous], flow))
            run = train_problem(problem, method, theta0, iters, rtol)
            thetas[s] = run.theta
            previous = s
            final = run.final
            rows.append({"K": Ks[s], "steps_per_width": s, "h": flow.profile.h, "seed": seed,
                         "converged": run.converged, "reason": run.reason,
                         "iterations": run.iterations, "J": final["J"], "mse": final["mse"],
                         "J_start": run.history[0]["J"],
                         "J_initial": problem.objective(common)[0], "residual": final["residual"],
                         "residual_ratio": final["residual"] / run.history[0]["residual"],
                         "control_l2": _time_norm(flows, thetas, s),
                         "seconds": _seconds_since(t0)})
            if seed == seeds[0]:
                maps[str(Ks[s])] = control_map(flow, run.theta)
            _say(log, f"  seed={seed} K={Ks[s]:<4d} {run.reason:<13} it={run.iterations:<4d} "
                      f"J={final['J']:.6g} ({rows[-1]['seconds']:.1f}s)")
        ref = _time_norm(flows, thetas, finest)
        for row in rows:
            if row["seed"] != seed:
                continue
            s = row["steps_per_width"]
            finer = [t for t in steps if t > s]
            row["control_distance_to_finest"] = _time_l2(flows, thetas, s, finest, finest) / ref
            row["control_distance_to_next"] = (_time_l2(flows, thetas, s, finer[0], finest) / ref
                                               if finer else None)
            J_by = {r["steps_per_width"]: r for r in rows if r["seed"] == seed}
            row["J_difference_to_next"] = abs(row["J"] - J_by[finer[0]]["J"]) if finer else None
            row["J_initial_difference_to_next"] = (abs(row["J_initial"] - J_by[finer[0]]["J_initial"])
                                                   if finer else None)
    summary = []
    for s in steps:
        group = [r for r in rows if r["steps_per_width"] == s]
        mean = lambda key: (float(np.mean([r[key] for r in group]))
                            if group[0][key] is not None else None)
        summary.append({"K": Ks[s], "h": flows[s].profile.h, "runs": len(group),
                        "converged": sum(r["converged"] for r in group),
                        "J": mean("J"), "mse": mean("mse"), "J_initial": mean("J_initial"),
                        "J_difference_to_next": mean("J_difference_to_next"),
                        "J_initial_difference_to_next": mean("J_initial_difference_to_next"),
                        "control_distance_to_next": mean("control_distance_to_next"),
                        "control_distance_to_finest": mean("control_distance_to_finest")})
    head = summary[:-1]
    hs = [r["h"] for r in head]
    fits = {"J_difference": fit_power_law(hs, [r["J_difference_to_next"] for r in head]),
            "J_initial_difference": fit_power_law(hs, [r["J_initial_difference_to_next"]
                                                       for r in head]),
            "control_distance_to_next": fit_power_law(hs, [r["control_distance_to_next"]
                                                           for r in head]),
            "control_distance_to_finest": fit_power_law(hs, [r["control_distance_to_finest"]
                                                             for r in head])}
    result = {
        "format": FORMAT, "version": FORMAT_VERSION, "kind": "time-limit",
        "data": {"name": name, "n": int(X.shape[0]), "d": int(d)},
        "settings": {"steps": list(steps), "K": [Ks[s] for s in steps], "seeds": list(seeds),
                     "n": int(X.shape[0]), "lam": lam, "method": method, "iters": iters,
                     "widths": list(widths), "T": float(T), "init_scale": init_scale,
                     "rtol": rtol, "data_seed": data_seed, "align": align, "start": start},
        "definitions": dict(_definitions(rtol, align), **{
            "start": ("continuation: the coarsest grid starts from controls drawn with the "
                      "seed, every finer grid from the trained control of the previous grid "
                      "(held constant on the finer steps), following one branch of solutions"
                      if start == "continuation" else
                      "common: every grid starts from the control drawn with the seed on the "
                      "coarsest grid, held constant on the finer steps (independent runs)"),
            "control_distance": "|theta_K - theta_K'|_{L2(0,T)} / |theta_finest|_{L2(0,T)}, "
                                "controls piecewise constant in time",
            "J_difference_to_next": "|J_K - J_2K| (consecutive grids)",
            "J_initial": "J at the coarsest grid's initial control held constant on the steps of "
                         "grid K (pure Euler discretisation error, no training)",
            "J_start": "J where training on grid K started",
            "fits": "least squares of log y = log c + rate log h over the grids but the finest",
        }),
        "rows": rows, "summary": summary, "fits": fits,
        "control_maps": {"T": float(T), "widths": list(widths), "maps": maps},
        "environment": _environment(),
        "wall_time_s": _seconds_since(clock),
    }
    result["findings"] = _time_limit_findings(result)
    return result


def _time_limit_findings(result: dict) -> list:
    summary, fits = result["summary"], result["fits"]
    return [
        "J after training per K: " + ", ".join(f"{s['K']}: {s['J']:.6g}" for s in summary) + ".",
        f"|J_K - J_2K| ~ h^p: {_rate_text(fits['J_difference'])}; at the initial control "
        f"(Euler discretisation alone): {_rate_text(fits['J_initial_difference'])}.",
        "relative L2-in-time distance of consecutive trained controls: "
        + ", ".join(f"{a['K']}->{b['K']}: {a['control_distance_to_next']:.3g}"
                    for a, b in zip(summary[:-1], summary[1:]))
        + f"; fitted {_rate_text(fits['control_distance_to_next'])}.",
        f"{sum(s['converged'] for s in summary)} of {sum(s['runs'] for s in summary)} runs "
        f"converged to the residual tolerance; the others are the iterates after the budget.",
    ]


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

_METHOD_COLOURS = {"shooting": "#d62728", "emsa": "#1f77b4", "adam": "#2ca02c", "sgd": "#9467bd"}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _colour(method: str, i: int = 0) -> str:
    fallback = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b")
    return _METHOD_COLOURS.get(method, fallback[i % len(fallback)])


def _lam_colours(lambdas):
    from matplotlib import colormaps
    cmap = colormaps["viridis"]
    logs = np.log10(np.asarray(lambdas, dtype=float))
    span = max(float(np.ptp(logs)), 1e-12)
    return {lam: cmap(0.9 * (np.log10(lam) - logs.min()) / span) for lam in lambdas}



def _fit_line(ax, x, fit: dict, variable: str, label: str = "fit", **style) -> None:
    """Draw the fitted power law ``c x^rate`` (when the fit exists)."""
    if math.isfinite(fit["rate"]):
        ax.plot(x, fit["constant"] * x ** fit["rate"],
                label=f"{label}: {variable}^{fit['rate']:.2f}", **style)


def _log_axes(ax, xlabel: str, ylabel: str, title: Optional[str] = None) -> None:
    """Log-log axes with labels, grid and legend."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)

def _positive(values):
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    return np.where(v > 0, v, np.nan)


def _map_array(rows_of_map) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows_of_map], dtype=float)


def _draw_maps(fig, panels, T: float, title: str):
    """Heat maps ``(label, d × K array)`` side by side on one shared log colour scale."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm
    cmap = colormaps["viridis"].with_extremes(bad="#e6e6e6", under="#440154")
    values = np.concatenate([a[np.isfinite(a)].ravel() for _, a in panels])
    top = float(values.max()) if values.size and values.max() > 0 else 1.0
    norm = LogNorm(vmin=top * 1e-6, vmax=top)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    image = None
    for ax, (label, array) in zip(axes, panels):
        d = array.shape[0]
        floored = np.where(np.isnan(array), np.nan, np.maximum(array, top * 1e-7))
        image = ax.imshow(np.ma.masked_invalid(floored), aspect="auto", cmap=cmap, norm=norm,
                          interpolation="nearest", origin="upper",
                          extent=(0.0, T, d - 0.5, -0.5))
        finite = array[np.isfinite(array)]
        ax.set_title(f"{label}\nmax {finite.max():.2g}" if finite.size else label, fontsize=9)
        ax.set_xlabel("time t")
        from matplotlib.ticker import MaxNLocator
        ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    axes[0].set_ylabel("state component i")
    fig.colorbar(image, ax=list(axes), label="row norm |θ_j[i, :]| (log scale, grey: inactive)",
                 pad=0.01)
    fig.suptitle(title, fontsize=11)


def _tikhonov_figures(result: dict) -> list:
    rows, settings = result["rows"], result["settings"]
    lambdas, methods, seeds = settings["lambdas"], settings["methods"], settings["seeds"]
    colours = _lam_colours(lambdas)
    figures = []

    # training curves
    fig = new_figure(4.2 * len(methods) + 1.2, 6.4)
    axes = fig.subplots(2, len(methods), squeeze=False)
    for col, method in enumerate(methods):
        for hist in result["histories"]:
            if hist["method"] != method:
                continue
            first = hist["seed"] == seeds[0]
            for row, key in enumerate(("J", "residual")):
                y = _positive(hist[key])
                axes[row, col].plot(np.arange(len(y)), y, color=colours[hist["lam"]],
                                    lw=1.5 if first else 0.8, alpha=1.0 if first else 0.45,
                                    ls="-" if first else "--",
                                    label=f"λ = {hist['lam']:g}" if first else None)
        for row, label in enumerate(("objective J", "PMP residual |∇θH|")):
            ax = axes[row, col]
            ax.set_yscale("log")
            ax.set_xlabel("iteration")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
            if row == 0:
                ax.set_title(method)
    axes[0, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"Training per λ (solid: seed {seeds[0]}, dashed: other seeds; a line ends "
                 f"where a run converged or diverged)", fontsize=11)
    figures.append(("training_curves", fig,
                    "Objective J and PMP residual against iterations for each λ (colour) and "
                    "method (column). A run that diverged ends where J blew up (its last good "
                    "iterate is kept); a converged run ends when the residual reached the "
                    "tolerance."))

    # Hessian spectrum extremes
    fig = new_figure(10.5, 4.2)
    left, right = fig.subplots(1, 2)
    lam_h = {r["lam"]: r["lam_h"] for r in rows}
    xs = np.array(lambdas)
    for i, method in enumerate(methods):
        group = [r for r in rows if r["method"] == method and r["reason"] != "diverged"]
        c = _colour(method, i)
        offset = 1.0 + 0.06 * (i - (len(methods) - 1) / 2)
        left.scatter([r["lam"] * offset for r in group], [r["hessian_max_eig"] for r in group],
                     color=c, s=22, label=method)
        pos = [r for r in group if r["hessian_min_eig"] > 0]
        neg = [r for r in group if r["hessian_min_eig"] < 0]
        right.scatter([r["lam"] * offset for r in pos], [r["hessian_min_eig"] for r in pos],
                      color=c, s=22, label=f"{method}: positive")
        right.scatter([r["lam"] * offset for r in neg],
                      [max(-r["hessian_min_eig"], 1e-300) for r in neg], facecolor="none",
                      edgecolor=c, marker="v", s=30, label=f"{method}: negative, |value|")
    for ax in (left, right):
        ax.plot(xs, [lam_h[l] for l in lambdas], color="#555555", ls=":", lw=1.2,
                label="λh (Tikhonov part alone)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Tikhonov weight λ")
        ax.grid(True, alpha=0.3)
    left.set_ylabel("largest eigenvalue of ∇²J")
    left.set_title("Largest Hessian eigenvalue at the final controls", fontsize=10)
    right.set_ylabel("|smallest Ritz value of ∇²J|")
    right.set_title("Smallest eigenvalue (Lanczos): filled > 0, hollow ▽ < 0", fontsize=10)
    right.legend(fontsize=7)
    left.legend(fontsize=8)
    fig.suptitle("Hessian spectrum extremes against λ (runs that did not diverge)", fontsize=11)
    figures.append(("hessian_spectrum", fig,
                    f"Extreme eigenvalues of the Hessian of J at the final controls, from "
                    f"{settings['lanczos_iters']} Lanczos steps on Hessian-vector products. "
                    f"The dotted line is λh, the Hessian of the Tikhonov term alone. A negative "
                    f"smallest Ritz value proves a direction of negative curvature (it is a "
                    f"Rayleigh quotient); a positive one is an upper estimate of the smallest "
                    f"eigenvalue, exact only once Lanczos has converged (see "
                    f"hessian_min_residual in study.json). Shooting converges locally iff all "
                    f"eigenvalues lie in (0, 2λh)."))

    # distinct solutions
    fig = new_figure(7.5, 4.0)
    ax = fig.subplots()
    for i, method in enumerate(methods):
        c = _colour(method, i)
        ax.plot(xs, [result["distinct_solutions"][_lam_key(l)][method] for l in lambdas],
                color=c, marker="o", label=f"{method}: runs that did not diverge")
        ax.plot(xs, [result["distinct_converged_solutions"][_lam_key(l)][method]
                     for l in lambdas], color=c, marker="s", ls="--", mfc="none",
                label=f"{method}: converged runs only")
    ax.set_xscale("log")
    ax.set_ylim(-0.2, len(seeds) + 0.5)
    ax.set_yticks(range(len(seeds) + 1))
    ax.set_xlabel("Tikhonov weight λ")
    ax.set_ylabel(f"distinct final controls (of {len(seeds)} seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Distinct solutions across seeds", fontsize=11)
    figures.append(("distinct_solutions", fig,
                    f"Number of clusters of final controls across {len(seeds)} seeds: "
                    f"{result['definitions']['distinct_solutions']}. Non-converged final "
                    f"controls are iterates, not solutions, so the solid count is an upper "
                    f"bound on the number of distinct solutions reached."))

    # convexity radius
    fig = new_figure(10.0, 4.2)
    ax = fig.subplots()
    for i, method in enumerate(methods):
        group = [r for r in rows if r["method"] == method and r["reason"] != "diverged"]
        if not group:
            continue
        c = _colour(method, i)
        offset = 1.0 + 0.08 * (i - (len(methods) - 1) / 2)
        x = np.array([r["lam"] * offset for r in group])
        med = np.array([r["convexity_radius_median"] for r in group])
        err = np.array([[m - r["convexity_radius_q25"], r["convexity_radius_q75"] - m]
                        for m, r in zip(med, group)]).T
        ax.errorbar(x, med, yerr=err, fmt="o", color=c, ms=4, capsize=3,
                    label=f"{method}: random directions (median, quartiles)")
        ax.scatter(x, [r["convexity_radius_min_eigvec"] for r in group], marker="x", color=c,
                   s=30, label=f"{method}: along the smallest Ritz vector")
    ax.axhline(settings["probe_max_radius"], color="#555555", ls=":",
               label="largest radius probed")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=settings.get("probe_min_radius", 1e-3))
    ax.set_ylim(0.0, 2.0 * settings["probe_max_radius"])
    ax.set_xlabel("Tikhonov weight λ")
    ax.set_ylabel("convexity radius (control-space units, symlog)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Local convexity probe at the final controls", fontsize=11)
    figures.append(("convexity_radius", fig,
                    f"Largest radius r such that J restricted to the line through the final "
                    f"controls is convex on [−r, r] (discrete convexity on a geometric grid of "
                    f"{settings['probe_points']} radii per side from "
                    f"{settings.get('probe_min_radius', 0):.3g} to "
                    f"{settings['probe_max_radius']:.3g}), along "
                    f"{settings['probe_directions']} random unit directions (median and "
                    f"quartiles) and along the Ritz vector of the smallest Hessian eigenvalue "
                    f"(x). Radii at the dotted line are censored: convex on the whole probed "
                    f"segment. Runs that diverged are left out."))

    # outcomes
    fig = new_figure(11.0, 4.0)
    axes = fig.subplots(1, 3)
    for i, method in enumerate(methods):
        c = _colour(method, i)
        offset = 1.0 + 0.06 * (i - (len(methods) - 1) / 2)
        for r in rows:
            if r["method"] != method:
                continue
            marker = "x" if r["reason"] == "diverged" else ("o" if r["converged"] else "^")
            x = r["lam"] * offset
            axes[0].scatter(x, r["J"], color=c, marker=marker, s=22)
            axes[1].scatter(x, r["mse"], color=c, marker=marker, s=22)
            axes[2].scatter(x, r["residual_ratio"], color=c, marker=marker, s=22)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=_colour(m, i), marker="o", ls="", label=m)
               for i, m in enumerate(methods)]
    handles += [Line2D([], [], color="#555555", marker=mk, ls="", label=lb) for mk, lb in
                (("o", "converged"), ("^", "not converged"), ("x", "diverged (last good)"))]
    for ax, label in zip(axes, ("final J", "final MSE per component",
                                "final residual / initial residual")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Tikhonov weight λ")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[2].axhline(settings["rtol"], color="#555555", ls=":", lw=1)
    axes[0].legend(handles=handles, fontsize=7)
    fig.suptitle("Where each run ended", fontsize=11)
    figures.append(("outcomes", fig,
                    "Final objective, reconstruction MSE and relative PMP residual of every "
                    "run (one marker per seed). The dotted line is the convergence tolerance. "
                    "Diverged runs show their last good iterate."))

    # control maps
    maps = result["control_maps"]["maps"]
    method = "emsa" if "emsa" in methods else methods[0]
    panels = [(f"λ = {lam:g}", _map_array(maps[_lam_key(lam)][method])) for lam in lambdas
              if method in maps.get(_lam_key(lam), {})]
    if panels:
        fig = new_figure(min(2.1 * len(panels) + 1.6, 18.0), 4.8)
        _draw_maps(fig, panels, result["control_maps"]["T"],
                   f"Controls θ(t) of {method} (seed {seeds[0]}), low to high λ")
        figures.append(("control_maps", fig,
                        f"Heat maps of the final controls θ(t) of {method} for each λ, low λ "
                        f"on the left: the norm of the row of (W_j, b_j) that writes state "
                        f"component i at step j, on one logarithmic colour scale (grey: "
                        f"inactive component). Each panel's maximum is in its title."))
    return figures


def _mean_field_figures(result: dict) -> list:
    rows, summary, fits = result["rows"], result["summary"], result["fits"]
    Ns = np.array([s["N"] for s in summary], dtype=float)
    figures = []
    fig = new_figure(11.0, 4.3)
    left, right = fig.subplots(1, 2)
    pos = [r for r in rows if r["gap"] > 0]
    neg = [r for r in rows if r["gap"] <= 0]
    left.scatter([r["N"] for r in pos], [r["gap"] for r in pos], color="#1f77b4", s=18,
                 label="gap > 0 (one seed)")
    left.scatter([r["N"] for r in neg], [abs(r["gap"]) if r["gap"] else np.nan for r in neg],
                 facecolor="none", edgecolor="#1f77b4", s=18, label="|gap|, gap <= 0")
    left.plot(Ns, _positive([s["gap_mean"] for s in summary]), color="#1f77b4", lw=1.5,
              label="mean gap over seeds")
    all_positive = all(s["gap_mean"] > 0 for s in summary)
    for key, colour, name in (("gap", "#d62728", "fit to mean gap"),
                              ("abs_gap", "#ff7f0e", "fit to mean |gap|")):
        if key != "gap" or all_positive:
            _fit_line(left, Ns, fits[key], "N", name, color=colour, ls="--", lw=1)
    _log_axes(left, "training samples N", "test MSE − training MSE", "Generalisation gap")
    right.plot(Ns, [s["mse"] for s in summary], marker="o", color="#2ca02c", label="training MSE")
    right.plot(Ns, [s["mse_test"] for s in summary], marker="s", color="#9467bd",
               label="test MSE (fresh samples)")
    _log_axes(right, "training samples N", "MSE per component (mean over seeds)",
              "Training and test error")
    fig.suptitle(f"Mean-field limit on {result['data']['name']} (λ = "
                 f"{result['settings']['lam']:g}, {result['settings']['method']})", fontsize=11)
    figures.append(("generalisation_gap", fig,
                    "Left: generalisation gap (test MSE on fresh samples minus training MSE) "
                    "against the number of training samples N, log-log, per seed and the mean "
                    "over seeds, with power-law fits. Right: training and test MSE."))

    fig = new_figure(7.5, 4.3)
    ax = fig.subplots()
    for seed in result["settings"]["seeds"]:
        group = [r for r in rows if r["seed"] == seed and r["N"] != Ns[-1]]
        ax.plot([r["N"] for r in group], _positive([r["distance_to_largest"] for r in group]),
                color="#1f77b4", alpha=0.35, lw=0.8, marker=".")
    ax.plot(Ns[:-1], _positive([s["distance_to_largest"] for s in summary[:-1]]), color="#1f77b4",
            marker="o", lw=1.6, label=f"to N = {int(Ns[-1])} (mean; thin: seeds)")
    ax.plot(Ns[:-1], _positive([s["distance_to_next"] for s in summary[:-1]]), color="#d62728",
            marker="s", lw=1.2, label="to the next N of the grid (mean)")
    _fit_line(ax, Ns[:-1], fits["distance_to_largest"], "N", color="#555555", ls="--")
    _log_axes(ax, "training samples N", "relative distance between trained controls")
    ax.set_title("Convergence of the trained control as N grows", fontsize=11)
    figures.append(("control_convergence", fig,
                    "Relative distance |θ_N − θ_N'| / max(|θ_N|, |θ_N'|) between the controls "
                    "trained on nested samples of size N from the same initial controls: to "
                    "the largest N, and to the next N of the grid."))
    return figures


def _time_limit_figures(result: dict) -> list:
    summary, fits, settings = result["summary"], result["fits"], result["settings"]
    figures = []
    Ks = np.array([s["K"] for s in summary], dtype=float)
    hs = np.array([s["h"] for s in summary], dtype=float)

    fig = new_figure(11.0, 4.3)
    left, right = fig.subplots(1, 2)
    for r in result["rows"]:
        left.scatter(r["K"], r["J"], color="#1f77b4", s=12, alpha=0.5)
    left.plot(Ks, [s["J"] for s in summary], color="#1f77b4", marker="o", label="after training")
    twin = left.twinx()
    twin.plot(Ks, [s["J_initial"] for s in summary], color="#ff7f0e", marker="s", ls="--",
              label="at the initial control (right axis)")
    twin.set_ylabel("J at the initial control", color="#ff7f0e")
    left.set_xscale("log", base=2)
    left.set_xlabel("time steps K")
    left.set_ylabel("objective J after training")
    left.set_title("Objective against K", fontsize=10)
    left.grid(True, alpha=0.3)
    lines = left.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8)
    for key, colour, name in (("J_difference", "#1f77b4", "|J_K − J_next| after training"),
                              ("J_initial_difference", "#ff7f0e",
                               "|J_K − J_next| at the initial control")):
        fieldname = "J_difference_to_next" if key == "J_difference" else "J_initial_difference_to_next"
        right.plot(hs[:-1], _positive([s[fieldname] for s in summary[:-1]]), color=colour,
                   marker="o", label=name)
        _fit_line(right, hs[:-1], fits[key], "h", color=colour, ls=":")
    _log_axes(right, "step size h = T/K", "difference between consecutive grids",
              "Convergence of the objective")
    fig.suptitle(f"Time-continuum limit on {result['data']['name']} (T = {settings['T']:g}, "
                 f"λ = {settings['lam']:g}, {settings['method']})", fontsize=11)
    figures.append(("objective_convergence", fig,
                    "Left: the objective after training against the number of steps K (dots: "
                    "seeds) and at the common initial control. Right: differences between "
                    "consecutive grids against h, log-log, with fitted rates; at the initial "
                    "control the difference is the Euler discretisation error alone."))

    fig = new_figure(11.0, 4.3)
    left, right = fig.subplots(1, 2)
    for key, fieldname, colour, name in (
            ("control_distance_to_next", "control_distance_to_next", "#1f77b4",
             "to the next finer grid"),
            ("control_distance_to_finest", "control_distance_to_finest", "#d62728",
             f"to the finest grid (K = {int(Ks[-1])})")):
        left.plot(hs[:-1], _positive([s[fieldname] for s in summary[:-1]]), color=colour,
                  marker="o", label=name)
        _fit_line(left, hs[:-1], fits[key], "h", color=colour, ls=":")
    _log_axes(left, "step size h = T/K", "relative L²(0,T) distance of controls",
              "Convergence of θ(t)")
    from matplotlib import colormaps
    cmap = colormaps["viridis"]
    T = result["control_maps"]["T"]
    for i, (K, array) in enumerate(result["control_maps"]["maps"].items()):
        a = _map_array(array)
        norms = np.sqrt(np.nansum(a ** 2, axis=0))
        edges = np.linspace(0.0, T, a.shape[1] + 1)
        right.stairs(norms, edges, color=cmap(0.9 * i / max(len(Ks) - 1, 1)), lw=1.4,
                     baseline=None, label=f"K = {K}")
    right.set_xlabel("time t")
    right.set_ylabel("|θ(t)| (per-step Frobenius norm)")
    right.set_title(f"Control norm against time (seed {settings['seeds'][0]})", fontsize=10)
    right.grid(True, alpha=0.3)
    right.legend(fontsize=8)
    figures.append(("control_convergence", fig,
                    "Left: relative L²(0,T) distance between the trained controls θ(t) "
                    "(piecewise constant in time) of consecutive grids and to the finest grid, "
                    "against h, with fitted rates. Right: the norm of the control against time "
                    "for every K."))

    maps = result["control_maps"]["maps"]
    panels = [(f"K = {K}", _map_array(array)) for K, array in maps.items()]
    fig = new_figure(min(2.3 * len(panels) + 1.6, 18.0), 4.2)
    _draw_maps(fig, panels, T, f"Controls θ(t) as K grows (seed {settings['seeds'][0]})")
    figures.append(("control_maps", fig,
                    "Heat maps of the trained controls for each K: the norm of the row of "
                    "(W_j, b_j) that writes state component i during step j, on one logarithmic "
                    "colour scale (grey: inactive)."))
    return figures


_FIGURES = {"tikhonov": _tikhonov_figures, "mean-field": _mean_field_figures,
            "time-limit": _time_limit_figures}


# --------------------------------------------------------------------------------------------
# Report and writing
# --------------------------------------------------------------------------------------------

_CSS = """
body { margin:0; background:#f6f7f9; color:#1d2330;
       font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1120px; margin:0 auto; padding:28px 32px 48px; background:#fff;
       min-height:100vh; box-shadow:0 0 0 1px #d9dee7; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:19px; margin:30px 0 10px; padding-bottom:4px; border-bottom:2px solid #d9dee7; }
p.sub { color:#5b6475; margin:0 0 18px; }
ul.findings li { margin:4px 0; }
table { border-collapse:collapse; font-size:13px; margin:6px 0 4px; }
th, td { padding:4px 9px; border-bottom:1px solid #d9dee7; text-align:right; white-space:nowrap; }
th { background:#eef1f6; font-weight:600; }
td.l, th.l { text-align:left; white-space:normal; }
.scroll { overflow-x:auto; }
figure { margin:24px 0 8px; }
figure img { display:block; max-width:100%; height:auto; margin:0 auto;
             border:1px solid #d9dee7; border-radius:4px; }
figcaption { color:#5b6475; font-size:14px; margin:8px auto 0; max-width:920px; }
footer { margin-top:40px; color:#5b6475; font-size:12px; }
"""

_TITLES = {"tikhonov": "The low-Tikhonov regime", "mean-field": "The mean-field limit",
           "time-limit": "The time-continuum limit"}

_SUMMARY_COLUMNS = {
    "tikhonov": ("lam", "method", "runs", "converged", "diverged", "not_converged",
                 "J_increased", "distinct_solutions", "distinct_converged_solutions",
                 "certified_locally_convex", "J_min", "J_max", "median_residual_ratio"),
    "mean-field": ("N", "runs", "converged", "diverged", "mse", "mse_test", "gap_mean",
                   "gap_std", "distance_to_largest", "distance_to_next"),
    "time-limit": ("K", "h", "runs", "converged", "J", "mse", "J_initial",
                   "J_difference_to_next", "control_distance_to_next",
                   "control_distance_to_finest"),
}


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return html.escape(str(value))


def _table(items: list, columns) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(item.get(c))}</td>" for c in columns) + "</tr>"
                   for item in items)
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _kv(mapping: dict) -> str:
    rows = "".join(f'<tr><td class="l">{html.escape(str(k))}</td><td class="l">'
                   f'{html.escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>'
                   for k, v in mapping.items())
    return f"<table>{rows}</table>"


def render_study_report(kind: str, result: dict, figures: list) -> str:
    """The self-contained HTML page of a study; ``figures`` holds ``(name, png_bytes,
    caption)`` triples (embedded as base64 ``data:`` URIs)."""
    data = result.get("data", {})
    sub = (f"data {html.escape(str(data.get('name')))} · d = {data.get('d')} · "
           f"wall time {result.get('wall_time_s', 0):.1f} s")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>autoencode study: {html.escape(kind)}</title><style>{_CSS}</style></head>"
             f"<body><main><h1>{html.escape(_TITLES.get(kind, kind))}</h1>"
             f"<p class='sub'>{sub}</p>"]
    parts.append("<h2>Findings</h2><ul class='findings'>"
                 + "".join(f"<li>{html.escape(f)}</li>" for f in result.get("findings", []))
                 + "</ul>")
    parts.append("<h2>Summary</h2>" + _table(result.get("summary", []), _SUMMARY_COLUMNS[kind]))
    if "fits" in result:
        fits = [dict(quantity=k, **v) for k, v in result["fits"].items()]
        parts.append("<h2>Fitted rates</h2>"
                     + _table(fits, ("quantity", "rate", "constant", "r2", "points")))
    parts.append("<h2>Figures</h2>")
    for name, png, caption in figures:
        encoded = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,"
                     f"{encoded}'><figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("<h2>Settings</h2>" + _kv(result.get("settings", {})))
    parts.append("<h2>Definitions</h2>" + _kv(result.get("definitions", {})))
    parts.append("<h2>Environment</h2>" + _kv(result.get("environment", {})))
    parts.append("<footer>Every run is listed in study.json (key <code>rows</code>).</footer>"
                 "</main></body></html>")
    return "".join(parts)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if torch.is_tensor(value):
        return _json_safe(value.tolist())
    return value


def write_study(kind: str, result: dict, out_dir) -> list:
    """Write ``study.json`` (atomically; NaN and inf stored as ``null``), the figures
    (``figures/*.png``) and ``report.html`` (figures embedded) into ``out_dir``; returns the
    paths written."""
    if kind not in STUDIES:
        raise ConfigError(f"unknown study {kind!r}; expected one of {', '.join(STUDIES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    path = out / "study.json"
    atomic_write_text(path, json.dumps(_json_safe(result), indent=1, allow_nan=False))
    written.append(path)
    figures = []
    for name, fig, caption in _FIGURES[kind](result):
        png = _png(fig)
        path = out / "figures" / f"{name}.png"
        atomic_write_bytes(path, png)
        written.append(path)
        figures.append((name, png, caption))
    path = out / "report.html"
    atomic_write_text(path, render_study_report(kind, result, figures))
    written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def _list_of(convert, what: str):
    def parse(text: str):
        try:
            values = [convert(part) for part in text.replace(" ", "").split(",") if part]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") \
                from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
        return values
    parse.__name__ = f"list of {what}"
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


# option dest -> (keyword of the study functions, studies it applies to)
_ALL = STUDIES
_OPTIONS = {
    "seeds": ("seeds", _ALL), "iters": ("iters", _ALL), "widths": ("widths", _ALL),
    "latent_dim": ("latent_dim", _ALL), "T": ("T", _ALL), "rtol": ("rtol", _ALL),
    "init_scale": ("init_scale", _ALL), "data_seed": ("data_seed", _ALL),
    "align": ("align", _ALL),
    "lambdas": ("lambdas", ("tikhonov",)), "methods": ("methods", ("tikhonov",)),
    "lanczos_iters": ("lanczos_iters", ("tikhonov",)),
    "probe_directions": ("probe_directions", ("tikhonov",)),
    "probe_radius": ("probe_radius", ("tikhonov",)),
    "probe_points": ("probe_points", ("tikhonov",)),
    "cluster_rtol": ("cluster_rtol", ("tikhonov",)),
    "n": ("n", ("tikhonov", "time-limit")),
    "steps_per_width": ("steps_per_width", ("tikhonov", "mean-field")),
    "lam": ("lam", ("mean-field", "time-limit")),
    "method": ("method", ("mean-field", "time-limit")),
    "sizes": ("sizes", ("mean-field",)), "n_test": ("n_test", ("mean-field",)),
    "steps": ("steps", ("time-limit",)),
}
_DEFAULT_DATA = {"tikhonov": "digits", "mean-field": "gaussian-mixture", "time-limit": "s-curve"}
_FUNCTIONS = {"tikhonov": tikhonov_study, "mean-field": mean_field_study,
              "time-limit": time_limit_study}

_STUDY_HELP = """studies (defaults finish within minutes on 2 CPU cores):
  tikhonov    lambda grid x {shooting, emsa} x seeds on a data subset: convergence,
              J, MSE, PMP residual, Hessian extremes (Lanczos), convexity probe,
              distinct solutions across seeds
              (defaults: --data digits --n 300 --lambdas 1e-4,1e-3,...,1e2 --seeds 0,1,2
              --iters 1000, widths d,2k,k,2k,d with k = 8)
  mean-field  train on N samples for N on a grid, test on fresh samples:
              generalisation gap against N, distance between trained controls
              (defaults: --data gaussian-mixture --sizes 100,300,1000,3000,10000
              --seeds 0,1,2 --lam 1e-2 --method emsa --iters 300 --latent-dim 2)
  time-limit  fixed T and lambda, steps per width doubling: convergence of J and of
              theta(t) with fitted rates
              (defaults: --data s-curve --n 500 --steps 2,4,8,16,32 --seeds 0,1
              --lam 1 --method emsa --iters 400 --align center, each grid starting
              from the previous grid's control)

output (--out DIR, default runs/study-KIND): study.json, figures/*.png, report.html"""


def add_study_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``study tikhonov|mean-field|time-limit`` on an argparse subparsers object;
    the handler is :func:`run_study` (``args.func``)."""
    parser = subparsers.add_parser(
        "study", help="numerical studies: tikhonov, mean-field, time-limit",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one of the numerical studies of the mean-field control problem and "
                    "write study.json, figures and a self-contained report.html.",
        epilog=_STUDY_HELP)
    parser.add_argument("kind", choices=STUDIES, help="which study")
    parser.add_argument("--data", metavar="NAME|PATH", default=None,
                        help="built-in data set or file (default per study, see below)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default runs/study-KIND)")
    parser.add_argument("--seeds", type=_list_of(int, "integers"), metavar="S,S,...",
                        help="seeds of the initial controls (mean-field: also of the samples)")
    parser.add_argument("--iters", type=_count, metavar="N", help="iterations per run")
    parser.add_argument("--widths", type=_list_of(int, "integers"), metavar="W,W,...",
                        help="width profile (default derived from the data and --latent-dim)")
    parser.add_argument("--latent-dim", type=_count, metavar="K", help="latent dimension k")
    parser.add_argument("--T", type=_positive_float, metavar="T", help="final time")
    parser.add_argument("--rtol", type=_positive_float, metavar="R",
                        help="converged when the PMP residual <= R x its initial value")
    parser.add_argument("--init-scale", type=_positive_float, metavar="S",
                        help="scale of the normal initial controls")
    parser.add_argument("--data-seed", type=int, metavar="S",
                        help="seed of the data sample or subset")
    parser.add_argument("--align", choices=ALIGNMENTS, default=None,
                        help="preprocessing fitted once per study (default: pca for tikhonov "
                             "and mean-field, center for time-limit)")
    group = parser.add_argument_group("tikhonov")
    group.add_argument("--lambdas", type=_list_of(float, "numbers"), metavar="L,L,...",
                       help="Tikhonov weights")
    group.add_argument("--methods", type=_list_of(str, "names"), metavar="M,M,...",
                       help="methods to compare (default shooting,emsa)")
    group.add_argument("--lanczos-iters", type=_count, metavar="N",
                       help="Lanczos steps (Hessian-vector products) per final point")
    group.add_argument("--probe-directions", type=_count, metavar="N",
                       help="random directions of the convexity probe")
    group.add_argument("--probe-radius", type=_positive_float, metavar="R",
                       help="probe up to R x the initial control norm")
    group.add_argument("--probe-points", type=_count, metavar="N",
                       help="probe grid points per side")
    group.add_argument("--cluster-rtol", type=_positive_float, metavar="R",
                       help="relative distance below which two final controls are one solution")
    group.add_argument("--steps-per-width", type=_count, metavar="S",
                       help="time steps per width (tikhonov, mean-field)")
    group.add_argument("--n", type=_count, metavar="N",
                       help="number of data rows used (tikhonov, time-limit)")
    group = parser.add_argument_group("mean-field and time-limit")
    group.add_argument("--lam", type=float, metavar="L", help="Tikhonov weight")
    group.add_argument("--method", metavar="M", help="training method")
    group.add_argument("--sizes", type=_list_of(int, "integers"), metavar="N,N,...",
                       help="training set sizes (mean-field)")
    group.add_argument("--n-test", type=_count, metavar="N",
                       help="fresh test samples (mean-field)")
    group.add_argument("--steps", type=_list_of(int, "integers"), metavar="S,S,...",
                       help="steps per width, each a multiple of the smallest (time-limit)")
    parser.add_argument("--threads", type=_count, default=1, metavar="N",
                        help="torch threads (the studies run many small problems, for which "
                             "one thread is fastest)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run_study)
    return parser


def study_options(args) -> dict:
    """The keyword arguments of the study function from parsed ``args``; refuses options
    that do not apply to the chosen study with a :class:`ConfigError`."""
    kind = args.kind
    options = {}
    for dest, (keyword, kinds) in _OPTIONS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if kind not in kinds:
            flag = "--" + dest.replace("_", "-")
            raise ConfigError(f"option {flag} does not apply to the {kind} study (it is for "
                              f"{', '.join(kinds)}); remove it")
        options[keyword] = tuple(value) if isinstance(value, list) else value
    return options


def run_study(args) -> int:
    """Handler of ``autoencode study``: run the study, write its folder, print where the
    report is. Returns 0; user errors raise :class:`~autoencode.errors.AutoencodeError`
    (the command line turns them into ``error: ...`` and status 2)."""
    kind = args.kind
    options = study_options(args)
    out = Path(args.out) if args.out is not None else Path("runs") / f"study-{kind}"
    log = None if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        result = _FUNCTIONS[kind](args.data or _DEFAULT_DATA[kind], log=log, **options)
    finally:
        torch.set_num_threads(threads)
    write_study(kind, result, out)
    if not args.quiet:
        for line in result["findings"]:
            print(f"- {line}")
    print(f"study {kind} finished in {result['wall_time_s']:.1f} s; report: {out / 'report.html'}")
    return 0
