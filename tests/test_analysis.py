"""Second-order tools: Hessian-vector products, Lanczos, the convexity probe, helpers."""

import math

import numpy as np
import pytest
import torch

from autoencode.analysis import (certify_locally_convex, convexity_probe, distinct_solutions,
                                 fit_power_law, hessian_extremes, hessian_matrix,
                                 hessian_vector_product, lanczos, lanczos_extremes,
                                 relative_distance)
from autoencode.errors import ConfigError
from autoencode.fields import make_field
from autoencode.pmp import Flow, Problem
from autoencode.profile import WidthProfile
from autoencode.solvers import get_solver


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_problem(widths=(4, 2, 4), steps=2, solver="euler", field="layer", lam=1e-2,
                 activation="tanh", n=30, seed=0):
    flow = Flow(WidthProfile.build(widths, steps, 2.0), make_field(field, activation, 3),
                get_solver(solver))
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, widths[0], dtype=torch.float64, generator=generator)
    theta = flow.layout.initial("normal", 1.0, generator, torch.float64, "cpu")
    return Problem(flow, x, lam), theta


def gradient_differences(problem, theta, v, eps=1e-5):
    return (problem.sweep(theta + eps * v).grad - problem.sweep(theta - eps * v).grad) / (2 * eps)


@pytest.mark.parametrize("solver,field,activation", [
    ("euler", "layer", "tanh"), ("rk4", "layer", "tanh"), ("heun", "two-layer", "tanh"),
    ("euler", "layer", "softplus"), ("euler", "two-layer", "identity")])
def test_hvp_matches_finite_differences_of_the_gradient(solver, field, activation):
    problem, theta = tiny_problem(solver=solver, field=field, activation=activation)
    for seed in range(2):
        v = torch.randn(theta.shape, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(10 + seed))
        hv = hessian_vector_product(problem, theta, v)
        fd = gradient_differences(problem, theta, v)
        assert float((hv - fd).norm() / fd.norm()) < 1e-6
    # linear in v, and theta is left untouched
    before = theta.clone()
    a = hessian_vector_product(problem, theta, 2.0 * v)
    assert torch.allclose(a, 2.0 * hessian_vector_product(problem, theta, v), rtol=1e-12, atol=1e-14)
    assert torch.equal(theta, before) and not theta.requires_grad


def test_hvp_on_digits_sized_problem(digits):
    flow = Flow(WidthProfile.build((64, 16, 8, 16, 64), 1, 4.0), make_field(), get_solver("euler"))
    x = torch.as_tensor(digits[:100], dtype=torch.float64)
    theta = flow.layout.initial("normal", 0.5, torch.Generator().manual_seed(0), torch.float64, "cpu")
    problem = Problem(flow, x, 1e-3)
    v = torch.randn(theta.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    fd = gradient_differences(problem, theta, v)
    assert float((hessian_vector_product(problem, theta, v) - fd).norm() / fd.norm()) < 1e-6


def test_dense_hessian_is_symmetric_and_penalty_shifts_it():
    problem, theta = tiny_problem(lam=0.0, steps=1)
    columns = hessian_matrix(problem, theta, symmetrize=False)
    assert float((columns - columns.T).abs().max()) < 1e-10 * float(columns.abs().max())
    H0 = 0.5 * (columns + columns.T)
    lam = 0.3
    problem_lam = Problem(problem.flow, problem.x0, lam)
    H1 = hessian_matrix(problem_lam, theta)
    shift = lam * problem.h * torch.eye(theta.numel(), dtype=torch.float64)
    assert torch.allclose(H1, H0 + shift, atol=1e-10)


def test_lanczos_matches_dense_eigenvalues_of_a_symmetric_matrix():
    generator = torch.Generator().manual_seed(0)
    A = torch.randn(60, 60, dtype=torch.float64, generator=generator)
    A = 0.5 * (A + A.T)
    exact = torch.linalg.eigvalsh(A)
    lo, hi = lanczos_extremes(lambda v: A @ v, 60, iters=60, seed=1)
    assert lo == pytest.approx(float(exact[0]), abs=1e-9)
    assert hi == pytest.approx(float(exact[-1]), abs=1e-9)
    # fewer iterations: Ritz values stay inside the spectrum (interlacing)
    result = lanczos(lambda v: A @ v, 60, iters=15, seed=1)
    assert result.min_eig >= float(exact[0]) - 1e-12 and result.max_eig <= float(exact[-1]) + 1e-12
    assert result.iterations == 15 and len(result.ritz) == 15
    # the Ritz vector is a unit vector whose residual matches the bound
    u = result.min_vector
    assert float(u.norm()) == pytest.approx(1.0, abs=1e-10)
    assert float((A @ u - result.min_eig * u).norm()) == pytest.approx(result.min_residual, rel=1e-6)


def test_lanczos_stops_on_an_invariant_subspace():
    D = torch.diag(torch.tensor([3.0, 3.0, 3.0, -1.0, -1.0], dtype=torch.float64))
    result = lanczos(lambda v: D @ v, 5, iters=5, seed=0)
    assert result.iterations == 2   # two distinct eigenvalues
    assert result.min_eig == pytest.approx(-1.0) and result.max_eig == pytest.approx(3.0)


def test_lanczos_matches_dense_hessian_of_a_tiny_problem():
    problem, theta = tiny_problem(lam=1e-3, steps=1)
    n = theta.numel()
    exact = torch.linalg.eigvalsh(hessian_matrix(problem, theta))
    out = hessian_extremes(problem, theta, iters=n, seed=0)
    scale = float(exact.abs().max())
    assert out["min_eig"] == pytest.approx(float(exact[0]), abs=1e-8 * scale)
    assert out["max_eig"] == pytest.approx(float(exact[-1]), abs=1e-8 * scale)
    assert out["certified"] == (float(exact[0]) >= -1e-6 * scale)
    assert out["lam_h"] == pytest.approx(1e-3 * problem.h)
    assert out["shooting_contraction"] == pytest.approx(
        max(abs(1 - exact[0].item() / out["lam_h"]), abs(1 - exact[-1].item() / out["lam_h"])),
        rel=1e-6)


def test_certificate():
    assert certify_locally_convex(0.0, 5.0)
    assert certify_locally_convex(-1e-7, 1.0)            # within rtol·|max|
    assert not certify_locally_convex(-1e-5, 1.0)
    assert certify_locally_convex(-1e-5, 1.0, rtol=1e-4)
    assert not certify_locally_convex(math.nan, 1.0)
    with pytest.raises(ConfigError):
        certify_locally_convex(0.0, 1.0, rtol=-1)


def quartic(theta):
    """|θ|²/2 − |θ|⁴/12: along any unit direction from 0, g''(t) = 1 − t², radius 1."""
    s = float(theta.dot(theta))
    return 0.5 * s - s * s / 12.0


def test_probe_finds_known_radius():
    theta = torch.zeros(7, dtype=torch.float64)
    probe = convexity_probe(quartic, theta, directions=6, max_radius=2.0, points=40, seed=0)
    # D_i = δ²(1 − t_i² − δ²/6) >= 0 exactly for |t_i| <= 0.998…: radius 1 at resolution δ
    assert probe.step == pytest.approx(0.05) and probe.grid == "linear"
    assert np.allclose(probe.radii, 1.0, atol=probe.step + 1e-12)
    assert probe.median == pytest.approx(1.0, abs=probe.step)
    assert probe.censored == 0.0
    d = probe.to_dict()
    assert set(d) >= {"median", "q25", "q75", "min", "max", "censored", "radii"}


def test_probe_geometric_grid_finds_known_radius():
    theta = torch.zeros(5, dtype=torch.float64)
    probe = convexity_probe(quartic, theta, directions=5, max_radius=10.0, points=40,
                            grid="geometric", min_radius=1e-3)
    ratio = probe.nodes[1] / probe.nodes[0]
    assert probe.nodes[0] == pytest.approx(1e-3) and probe.nodes[-1] == pytest.approx(10.0)
    assert np.all(probe.radii <= 1.0 * ratio + 1e-12) and np.all(probe.radii >= 1.0 / ratio - 1e-12)
    # small negative curvature is seen near θ on the geometric grid, not on a coarse linear one
    # curvature −0.001 + 12 t² along e1: concave only for |t| < 0.009
    f = lambda t: -0.0005 * float(t[0]) ** 2 + float(t.dot(t)) ** 2
    e1 = torch.eye(5, dtype=torch.float64)[:1]
    assert convexity_probe(f, theta, e1, max_radius=10.0, points=40, grid="geometric").max == 0.0
    assert convexity_probe(f, theta, e1, max_radius=10.0, points=10).max > 0.0
    with pytest.raises(ConfigError):
        convexity_probe(quartic, theta, 2, grid="spiral")


def test_probe_off_centre_and_given_directions():
    # from θ = a e1 along e1: g(t) = f((a + t) e1), g'' = 1 − (a + t)², convex for |a+t| <= 1,
    # so the symmetric radius is 1 − |a|; along e2 (orthogonal): g'' = 1 − a² − 3 t²... use
    # a direction where the answer is simple: e1 only.
    a = 0.4
    theta = torch.tensor([a, 0.0, 0.0], dtype=torch.float64)
    probe = convexity_probe(quartic, theta, directions=torch.tensor([[1.0, 0, 0], [-2.0, 0, 0]]),
                            max_radius=1.5, points=60)
    assert np.allclose(probe.radii, 1 - a, atol=probe.step + 1e-12)


def test_probe_convex_and_concave_functions():
    theta = torch.zeros(5, dtype=torch.float64)
    convex = convexity_probe(lambda t: float((t ** 2).sum()), theta, directions=4, max_radius=3.0)
    assert convex.censored == 1.0 and convex.median == 3.0
    concave = convexity_probe(lambda t: -float((t ** 2).sum()), theta, directions=4)
    assert concave.max == 0.0
    # a non-finite value ends the radius
    cliff = convexity_probe(lambda t: float((t ** 2).sum()) if float(t.norm()) < 0.5 else math.inf,
                            theta, directions=3, max_radius=1.0, points=10)
    assert np.all(cliff.radii <= 0.5)
    with pytest.raises(ConfigError):
        convexity_probe(quartic, theta, directions=torch.zeros(1, 5))
    with pytest.raises(ConfigError):
        convexity_probe(quartic, theta, directions=torch.ones(2, 4))


def test_probe_on_a_training_problem_matches_hessian_sign():
    """At a point the probe calls convex on a tiny radius, the directional curvature
    uᵀHu is non-negative (and vice versa for a concave start)."""
    problem, theta = tiny_problem(lam=1e-2)
    f = lambda t: problem.objective(t)[0]
    u = torch.randn(theta.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    u = u / u.norm()
    curvature = float(u.dot(hessian_vector_product(problem, theta, u)))
    probe = convexity_probe(f, theta, directions=u[None], max_radius=1e-3, points=2)
    assert (probe.radii[0] > 0) == (curvature > 0)


def test_distinct_solutions_and_distances():
    a = np.ones(10)
    assert relative_distance(a, a) == 0.0
    assert relative_distance(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_distance(a, 2 * a) == pytest.approx(0.5)
    count, labels = distinct_solutions([a, a * (1 + 1e-4), -a, -a * 1.001, 3 * a], rtol=1e-2)
    assert count == 3 and labels == [0, 0, 1, 1, 2]
    assert distinct_solutions([], 1e-2) == (0, [])
    # two tiny controls: distinct relative to each other, equal relative to a floor scale
    tiny = [1e-6 * np.eye(4)[0], 1e-6 * np.eye(4)[1]]
    assert distinct_solutions(tiny, 1e-2)[0] == 2
    assert distinct_solutions(tiny, 1e-2, scale=1.0)[0] == 1


def test_power_law_fit():
    x = np.array([10.0, 100.0, 1000.0, 1e4])
    fit = fit_power_law(x, 3.0 * x ** -0.5)
    assert fit["rate"] == pytest.approx(-0.5) and fit["constant"] == pytest.approx(3.0)
    assert fit["r2"] == pytest.approx(1.0) and fit["points"] == 4
    # non-positive values are ignored; too few points give NaN
    fit = fit_power_law([1.0, 2.0, 4.0], [1.0, -1.0, 0.25])
    assert fit["points"] == 2 and fit["rate"] == pytest.approx(-1.0)
    assert math.isnan(fit_power_law([1.0], [1.0])["rate"])
