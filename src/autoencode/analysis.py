"""Second-order analysis of the reduced cost ``J(θ)``: Hessian-vector products, Lanczos
estimates of the extreme Hessian eigenvalues, a local convexity probe, and the small
numerical helpers the studies share (clustering of solutions, power-law fits).

Hessian-vector products
-----------------------
:func:`hessian_vector_product` differentiates the costate sweep itself: ``∇_θ J`` comes
from :meth:`autoencode.pmp.Problem.sweep`, which is built from differentiable torch
operations, so ``H v = d/dε ∇_θ J(θ + ε v)`` at ``ε = 0`` is one forward-mode (dual number)
pass through the sweep: *forward-over-reverse*, exact up to rounding, at the cost of about
two to three sweeps. (Double backward, ``autograd.grad(∇J · v, θ)``, is not used: the sweep
writes per-step gradients into views of one buffer that are created before the first write,
and reverse-mode autograd rejects that pattern; forward mode accepts it.)

Lanczos
-------
:func:`lanczos` runs the symmetric Lanczos iteration with full reorthogonalisation (the
basis is stored, fine for the ~10^4 parameters of the studies) and returns the Ritz values
of the tridiagonal matrix; :func:`lanczos_extremes` returns the smallest and largest. Ritz
values lie *inside* the spectrum: the smallest Ritz value is an upper bound of the smallest
eigenvalue and the largest a lower bound of the largest. Hence a negative smallest Ritz
value proves negative curvature (it is a Rayleigh quotient), while a certificate of local
convexity (:func:`certify_locally_convex`) is only as good as the convergence of the
smallest Ritz value; :class:`LanczosResult` carries the residual bound ``|β_m s_m|`` of each
extreme Ritz pair (some eigenvalue lies within it) so that this can be judged.

Convexity probe
---------------
:func:`convexity_probe` looks at ``J`` restricted to lines ``t ↦ J(θ + t u)`` through a
point along unit directions ``u`` (random, or given, e.g. the Ritz vector of the smallest
eigenvalue) and reports, per direction, the largest radius ``r`` of a linear or geometric
grid such that the restriction is discretely convex on ``[−r, r]`` (within a rounding
tolerance), with the median and quartiles over directions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field as dataclass_field
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from .errors import ConfigError
from .validation import integer, number

__all__ = [
    "ConvexityProbe",
    "LanczosResult",
    "certify_locally_convex",
    "convexity_probe",
    "distinct_solutions",
    "fit_power_law",
    "hessian_extremes",
    "hessian_matrix",
    "hessian_operator",
    "hessian_vector_product",
    "lanczos",
    "lanczos_extremes",
    "relative_distance",
]


# --------------------------------------------------------------------------------------------
# Hessian-vector products
# --------------------------------------------------------------------------------------------

def hessian_vector_product(problem, theta: Tensor, v: Tensor) -> Tensor:
    """``H v`` with ``H = ∇²_θ J(θ)``, by forward-mode differentiation of the costate sweep.

    ``problem`` is a :class:`~autoencode.pmp.Problem`; ``theta`` and ``v`` are flat tensors
    of the layout's size (same dtype and device). Exact up to rounding (use float64 for
    analysis). Single-process only: the tangent does not pass through a distributed
    ``problem.reduce``.
    """
    theta = theta.detach()
    v = v.detach().to(dtype=theta.dtype, device=theta.device)
    if v.shape != theta.shape:
        raise ConfigError(f"direction v has shape {tuple(v.shape)}, expected {tuple(theta.shape)} "
                          f"(the flat control vector)")
    import torch.autograd.forward_ad as fwAD
    with warnings.catch_warnings():
        # torch loads its jvp decompositions on first use through torch.jit.script, which
        # warns that it is deprecated; that is torch's business, not the caller's.
        warnings.simplefilter("ignore", DeprecationWarning)
        with fwAD.dual_level():
            dual = fwAD.make_dual(theta, v)
            grad = problem.sweep(dual).grad
            tangent = fwAD.unpack_dual(grad).tangent
    if tangent is None:  # J does not depend on θ at all (cannot happen with λ > 0)
        return torch.zeros_like(theta)
    return tangent.detach().clone()


def hessian_operator(problem, theta: Tensor) -> Callable[[Tensor], Tensor]:
    """The matvec ``v ↦ ∇²J(θ) v`` at a fixed point (for :func:`lanczos`)."""
    theta = theta.detach().clone()
    return lambda v: hessian_vector_product(problem, theta, v)


def hessian_matrix(problem, theta: Tensor, symmetrize: bool = True) -> Tensor:
    """The dense Hessian from ``n`` Hessian-vector products (tiny problems only); with
    ``symmetrize`` (default) returns ``(H + Hᵀ)/2``, which removes rounding asymmetry."""
    n = theta.numel()
    columns = [hessian_vector_product(problem, theta, e) for e in
               torch.eye(n, dtype=theta.dtype, device=theta.device)]
    H = torch.stack(columns, dim=1)
    return 0.5 * (H + H.T) if symmetrize else H


# --------------------------------------------------------------------------------------------
# Lanczos
# --------------------------------------------------------------------------------------------

@dataclass
class LanczosResult:
    """Outcome of :func:`lanczos`.

    ``ritz`` holds the Ritz values in increasing order, ``min_eig``/``max_eig`` the extreme
    ones, ``min_residual``/``max_residual`` the bounds ``|β_m s_{m,i}|``: an eigenvalue of
    the operator lies within that distance of the Ritz value (not necessarily the extreme
    one). ``iterations`` is the Krylov dimension reached (less than asked when an invariant
    subspace was found, then the Ritz values are exact eigenvalues). ``min_vector`` and
    ``max_vector`` are the unit Ritz vectors of the extreme Ritz values.
    """

    min_eig: float
    max_eig: float
    min_residual: float
    max_residual: float
    iterations: int
    ritz: np.ndarray = dataclass_field(repr=False)
    min_vector: Optional[Tensor] = dataclass_field(default=None, repr=False)
    max_vector: Optional[Tensor] = dataclass_field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"min_eig": self.min_eig, "max_eig": self.max_eig,
                "min_residual": self.min_residual, "max_residual": self.max_residual,
                "iterations": self.iterations}


def lanczos(matvec: Callable[[Tensor], Tensor], n: int, iters: int = 30, seed: int = 0,
            dtype: torch.dtype = torch.float64, device=None, start: Optional[Tensor] = None
            ) -> LanczosResult:
    """Symmetric Lanczos with full reorthogonalisation for an ``n × n`` operator ``matvec``.

    Runs ``min(iters, n)`` steps from a random unit start vector (``seed``; or ``start``),
    storing the basis; each new vector is orthogonalised twice against all previous ones
    ("twice is enough"), so no spurious copies of converged Ritz values appear.
    """
    n = integer(n, "n", 1)
    m = min(integer(iters, "iters", 1), n)
    if start is None:
        generator = torch.Generator().manual_seed(int(seed))
        q = torch.randn(n, generator=generator, dtype=dtype).to(device)
    else:
        q = start.detach().to(dtype=dtype, device=device).reshape(-1).clone()
    q = q / q.norm()
    basis = torch.zeros((m, n), dtype=dtype, device=q.device)
    alphas, betas = [], []
    beta_prev = 0.0
    scale = 0.0
    for j in range(m):
        basis[j] = q
        w = matvec(q).reshape(-1).to(dtype)
        alpha = float(q.dot(w))
        alphas.append(alpha)
        w = w - alpha * q
        if j > 0:
            w = w - beta_prev * basis[j - 1]
        Q = basis[:j + 1]
        for _ in range(2):
            w = w - Q.T @ (Q @ w)
        beta = float(w.norm())
        scale = max(scale, abs(alpha), beta_prev)
        if j == m - 1:
            betas.append(beta)
            break
        if not math.isfinite(beta):
            raise FloatingPointError(f"Lanczos met a non-finite vector at step {j}; the "
                                     f"operator returned NaN or inf")
        if beta <= 1e-12 * max(scale, 1e-300):
            betas.append(0.0)  # invariant subspace: the Ritz values are eigenvalues
            break
        betas.append(beta)
        beta_prev = beta
        q = w / beta
    k = len(alphas)
    T = np.diag(np.array(alphas))
    if k > 1:
        off = np.array(betas[:k - 1])
        T += np.diag(off, 1) + np.diag(off, -1)
    values, vectors = np.linalg.eigh(T)
    last = abs(betas[k - 1]) * np.abs(vectors[-1, :])
    extremes = torch.as_tensor(vectors[:, [0, -1]], dtype=dtype, device=basis.device)
    ritz_vectors = basis[:k].T @ extremes
    return LanczosResult(min_eig=float(values[0]), max_eig=float(values[-1]),
                         min_residual=float(last[0]), max_residual=float(last[-1]),
                         iterations=k, ritz=values, min_vector=ritz_vectors[:, 0].clone(),
                         max_vector=ritz_vectors[:, 1].clone())


def lanczos_extremes(matvec: Callable[[Tensor], Tensor], n: int, iters: int = 30,
                     seed: int = 0, dtype: torch.dtype = torch.float64,
                     device=None) -> tuple[float, float]:
    """``(smallest, largest)`` Ritz value of :func:`lanczos` (estimates of the extreme
    eigenvalues; the smallest Ritz value is never below the smallest eigenvalue)."""
    result = lanczos(matvec, n, iters=iters, seed=seed, dtype=dtype, device=device)
    return result.min_eig, result.max_eig


def certify_locally_convex(min_eig: float, max_eig: float, rtol: float = 1e-6) -> bool:
    """``True`` when ``min_eig >= −rtol·|max_eig|``: the Hessian is positive semidefinite
    within the tolerance, i.e. ``J`` is locally convex at the point (to second order).

    Non-finite inputs are never certified.
    """
    if not (math.isfinite(min_eig) and math.isfinite(max_eig)):
        return False
    return min_eig >= -number(rtol, "rtol", 0) * abs(max_eig)


def hessian_extremes(problem, theta: Tensor, iters: int = 30, seed: int = 0,
                     rtol: float = 1e-6) -> dict:
    """Lanczos on ``∇²J(θ)``: ``min_eig``, ``max_eig``, their residual bounds, the Krylov
    dimension, ``certified`` (:func:`certify_locally_convex`), the Tikhonov floor
    ``lam_h = λh`` (the Hessian of the penalty alone) and ``shooting_contraction``.

    The shooting iteration ``θ ← θ − ∇J(θ)/(λh)`` has Jacobian ``I − H/(λh)`` at a fixed
    point, so it is locally a contraction iff every eigenvalue ``μ`` of ``H`` satisfies
    ``|1 − μ/(λh)| < 1``; ``shooting_contraction = max(|1 − μ_min/(λh)|, |1 − μ_max/(λh)|)``
    from the Ritz extremes estimates that factor (``inf`` for ``λ = 0``). The field
    ``min_vector`` holds the Ritz vector of ``min_eig`` (a tensor, not JSON)."""
    theta = theta.detach()
    result = lanczos(hessian_operator(problem, theta), theta.numel(), iters=iters, seed=seed,
                     dtype=theta.dtype, device=theta.device)
    out = result.to_dict()
    out["certified"] = certify_locally_convex(result.min_eig, result.max_eig, rtol)
    lam_h = problem.lam * problem.h
    out["lam_h"] = lam_h
    out["shooting_contraction"] = (max(abs(1 - result.min_eig / lam_h),
                                       abs(1 - result.max_eig / lam_h))
                                   if lam_h > 0 else math.inf)
    out["min_vector"] = result.min_vector
    return out


# --------------------------------------------------------------------------------------------
# Convexity probe
# --------------------------------------------------------------------------------------------

@dataclass
class ConvexityProbe:
    """Outcome of :func:`convexity_probe`.

    ``radii`` (one per direction) are the largest grid radii ``r`` such that ``t ↦ f(θ + t u)``
    is discretely convex on ``[−r, r]``; a radius equal to ``max_radius`` is censored (convex
    on the whole probed segment). ``nodes`` are the positive grid radii; a radius is resolved
    to within the spacing of the nodes around it (``step`` for the linear grid, a factor
    ``nodes[1] / nodes[0]`` for the geometric one).
    """

    radii: np.ndarray
    max_radius: float
    grid: str
    nodes: np.ndarray
    median: float
    q25: float
    q75: float
    min: float
    max: float
    censored: float  # fraction of directions convex on the whole probed segment

    @property
    def step(self) -> float:
        """Spacing of the linear grid (the first node for the geometric one)."""
        return float(self.nodes[0])

    def to_dict(self) -> dict:
        return {"median": self.median, "q25": self.q25, "q75": self.q75, "min": self.min,
                "max": self.max, "censored": self.censored, "max_radius": self.max_radius,
                "grid": self.grid, "min_node": float(self.nodes[0]),
                "radii": [float(r) for r in self.radii]}


def _directions(directions, n: int, seed: int, dtype, device) -> Tensor:
    if isinstance(directions, (int, np.integer)) and not isinstance(directions, bool):
        count = integer(directions, "directions", 1)
        generator = torch.Generator().manual_seed(int(seed))
        U = torch.randn((count, n), generator=generator, dtype=dtype)
    else:
        U = torch.as_tensor(directions, dtype=dtype)
        if U.ndim == 1:
            U = U[None, :]
        if U.ndim != 2 or U.shape[1] != n:
            raise ConfigError(f"directions has shape {tuple(U.shape)}, expected (m, {n}) or "
                              f"a number of random directions")
    norms = U.norm(dim=1, keepdim=True)
    if not bool((norms > 0).all()):
        raise ConfigError("directions contains a zero vector; every direction must be non-zero")
    return (U / norms).to(device)


def convexity_probe(f: Callable[[Tensor], float], theta: Tensor, directions=8,
                    max_radius: float = 1.0, points: int = 16, seed: int = 0,
                    grid: str = "linear", min_radius: Optional[float] = None,
                    rtol: float = 1e-10, atol: float = 0.0) -> ConvexityProbe:
    """Largest convexity radius of ``f`` along lines through ``theta``.

    For each unit direction ``u`` (``directions`` random ones drawn with ``seed``, or the
    rows of a given array), ``g(t) = f(θ + t u)`` is evaluated at ``t = 0`` and ``±r_k``,
    ``k = 1..points``, with ``r_k = k · max_radius / points`` (``grid="linear"``) or
    geometrically spaced from ``min_radius`` (default ``1e-3 · max_radius``) to
    ``max_radius`` (``grid="geometric"``, which resolves curvature near θ and far from it
    alike). ``g`` is discretely convex at an interior node when the slopes of the piecewise
    linear interpolant do not decrease there, ``s_i − s_{i−1} ≥ −tol_i (1/Δ_i + 1/Δ_{i−1})``
    with ``tol_i = atol + rtol · max(|g_{i−1}|, |g_i|, |g_{i+1}|)`` the rounding allowance of
    the three values involved (on the linear grid this is
    ``g(t_{i+1}) − 2 g(t_i) + g(t_{i−1}) ≥ −2 tol_i``). The radius is
    the largest node ``r_m`` such that every interior node with ``|t| < r_m`` passes (``0``
    when the node ``t = 0`` already fails); a non-finite value of ``g`` fails its
    neighbours. So a radius ``r`` says ``g`` is convex, at the grid's resolution, on
    ``[−r, r]``.

    Costs ``directions · (2 points + 1)`` evaluations of ``f``.
    """
    theta = theta.detach()
    number(max_radius, "max_radius", 0, low_open=True)
    points = integer(points, "points", 1)
    if grid == "linear":
        nodes = np.arange(1, points + 1) * (max_radius / points)
    elif grid == "geometric":
        low = 1e-3 * max_radius if min_radius is None else number(
            min_radius, "min_radius", 0, max_radius, low_open=True)
        nodes = np.geomspace(low, max_radius, points) if points > 1 else np.array([max_radius])
    else:
        raise ConfigError(f"unknown grid {grid!r}; expected 'linear' or 'geometric'")
    offsets = np.concatenate([-nodes[::-1], [0.0], nodes])
    U = _directions(directions, theta.numel(), seed, theta.dtype, theta.device)
    radii = []
    for u in U:
        g = np.array([float(f(theta + t * u.reshape(theta.shape))) for t in offsets])
        g[~np.isfinite(g)] = np.nan                  # a non-finite value stops the radius
        scale = np.abs(g)
        tol = atol + rtol * np.maximum(np.maximum(scale[:-2], scale[1:-1]), scale[2:])
        spacing = np.diff(offsets)
        slopes = np.diff(g) / spacing
        allowance = tol * (1.0 / spacing[1:] + 1.0 / spacing[:-1])
        ok = np.diff(slopes) >= -allowance           # at interior nodes; NaN compares False
        m = 0                                        # ok[points - 1 ± k] is the node ±r_k
        for k in range(0, points):                   # (k = 0: the node t = 0)
            if not (ok[points - 1 + k] and ok[points - 1 - k]):
                break
            m = k + 1
        radii.append(0.0 if m == 0 else float(nodes[m - 1]))
    radii = np.array(radii)
    q25, median, q75 = np.percentile(radii, [25, 50, 75])
    return ConvexityProbe(radii=radii, max_radius=float(max_radius), grid=grid, nodes=nodes,
                          median=float(median), q25=float(q25), q75=float(q75),
                          min=float(radii.min()), max=float(radii.max()),
                          censored=float(np.mean(radii >= nodes[-1] * (1 - 1e-12))))


# --------------------------------------------------------------------------------------------
# Solutions and rates
# --------------------------------------------------------------------------------------------

def relative_distance(a, b, scale: float = 0.0) -> float:
    """``|a − b| / max(|a|, |b|, scale)`` (0 when all three are zero).

    ``scale`` is a floor for the denominator: two controls that both converge to (nearly)
    zero are the same solution although their relative distance ``|a − b|/max(|a|, |b|)``
    is of order one."""
    a = torch.as_tensor(a, dtype=torch.float64).reshape(-1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1)
    denominator = max(float(a.norm()), float(b.norm()), float(scale))
    return 0.0 if denominator == 0 else float((a - b).norm()) / denominator


def distinct_solutions(controls: Sequence, rtol: float = 1e-2,
                       scale: float = 0.0) -> tuple[int, list[int]]:
    """Cluster final controls: two are the same solution when their
    :func:`relative_distance` (with the denominator floor ``scale``) is below ``rtol``
    (single linkage, i.e. the connected components of that relation). Returns
    ``(count, labels)``; an empty list gives 0."""
    number(rtol, "rtol", 0, low_open=True)
    n = len(controls)
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if relative_distance(controls[i], controls[j], scale) < rtol:
                parent[root(j)] = root(i)
    roots = [root(i) for i in range(n)]
    names = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return len(names), [names[r] for r in roots]


def fit_power_law(x, y) -> dict:
    """Least-squares fit of ``log y = log c + p log x`` over the points with finite,
    positive ``x`` and ``y``: ``{"rate": p, "constant": c, "points": m, "r2": R²}``
    (rate NaN with fewer than two usable points)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    m = int(keep.sum())
    if m < 2 or np.ptp(np.log(x[keep])) == 0:
        return {"rate": math.nan, "constant": math.nan, "points": m, "r2": math.nan}
    lx, ly = np.log(x[keep]), np.log(y[keep])
    p, logc = np.polyfit(lx, ly, 1)
    fitted = logc + p * lx
    ss = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ly - fitted) ** 2)) / ss if ss > 0 else 1.0
    return {"rate": float(p), "constant": float(math.exp(logc)), "points": m, "r2": r2}
