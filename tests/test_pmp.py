"""The PMP sweep against independent references: finite differences, matrix exponentials,
torchdiffeq, and the exactness of the bottleneck."""

import math

import numpy as np
import pytest
import torch

from autoencode.fields import make_field
from autoencode.pmp import Flow, Problem
from autoencode.profile import WidthProfile
from autoencode.solvers import get_solver

DT = torch.float64


def make_problem(field="layer", activation="tanh", solver="euler", lam=0.3, seed=0,
                 widths=(5, 4, 2, 3, 5), steps=(1, 2, 1, 2, 1), n=7, target=False):
    profile = WidthProfile.build(widths, list(steps), T=1.3)
    flow = Flow(profile, make_field(field, activation, 3), get_solver(solver))
    g = torch.Generator().manual_seed(seed)
    theta = flow.layout.initial("normal", 1.0, g, DT, "cpu")
    x = torch.randn(n, profile.d, dtype=DT, generator=g)
    w = torch.rand(n, dtype=DT, generator=g) + 0.1
    y = torch.randn(n, profile.d, dtype=DT, generator=g) if target else None
    return Problem(flow, x, lam, w / w.sum(), target=y), theta


def central_differences(problem, theta, eps=1e-6):
    fd = torch.zeros_like(theta)
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[i] = eps
        fd[i] = (problem.objective(theta + e)[0] - problem.objective(theta - e)[0]) / (2 * eps)
    return fd


@pytest.mark.parametrize("solver", ["euler", "heun", "rk4"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "identity"])
@pytest.mark.parametrize("field", ["layer", "two-layer"])
def test_gradient_matches_finite_differences(field, activation, solver):
    problem, theta = make_problem(field, activation, solver)
    sweep = problem.sweep(theta)
    fd = central_differences(problem, theta)
    # central differences with eps=1e-6 in float64 are accurate to ~1e-9 relative
    assert float((fd - sweep.grad).norm() / sweep.grad.norm()) < 1e-6
    assert sweep.residual == pytest.approx(float(sweep.grad.norm()))


def test_supervised_cost_gradient():
    problem, theta = make_problem(target=True)
    assert float((central_differences(problem, theta) - problem.sweep(theta).grad).norm()
                 / problem.sweep(theta).grad.norm()) < 1e-6


def test_costates_satisfy_pmp_relations():
    """p_K = −ω ∇ℓ, and the Hamiltonian gradient equals the autograd gradient of
    Σ_i p_{j+1}·x_{j+1}(x_j, θ_j) − (λ/2) h |θ_j|² (DESIGN 1.4)."""
    problem, theta = make_problem()
    sweep = problem.sweep(theta, keep=True)
    K = problem.flow.profile.K
    assert len(sweep.states) == K + 1 and len(sweep.costates) == K + 1
    xK = sweep.states[-1]
    expected = -2 * (xK - problem.x0) * problem.weights[:, None]
    assert torch.allclose(sweep.costates[-1], expected)
    flow, h, lam = problem.flow, problem.h, problem.lam
    for j in range(K):
        th = theta.clone().requires_grad_(True)
        params = flow.layout.split(th)[j]
        x_next, _ = flow.solver.step(flow.field, params, sweep.states[j],
                                     flow.profile.step_widths[j], h)
        start = flow.layout.offsets[j]
        size = flow.layout.step_sizes[j]
        H = (sweep.costates[j + 1] * x_next).sum() - 0.5 * lam * h * th[start:start + size].pow(2).sum()
        (grad_H,) = torch.autograd.grad(H, th)
        assert torch.allclose(-sweep.grad[start:start + size], grad_H[start:start + size],
                              atol=1e-12)


@pytest.mark.parametrize("solver, order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_convergence_order_linear_flow(solver, order):
    """Identity activation, constant width, constant W and b = 0: x(T) = expm(T W) x_0."""
    d, T = 4, 1.0
    g = torch.Generator().manual_seed(3)
    W = torch.randn(d, d, dtype=DT, generator=g) / 2
    x0 = torch.randn(6, d, dtype=DT, generator=g)
    exact = x0 @ torch.linalg.matrix_exp(T * W).T
    errors, ks = [], [8, 16, 32, 64]
    for K in ks:
        flow = Flow(WidthProfile.build((d, d), K // 2, T), make_field("layer", "identity"),
                    get_solver(solver))
        theta = torch.cat([torch.cat([W.reshape(-1), torch.zeros(d, dtype=DT)])] * K)
        xK, _, _ = flow.forward(theta, x0)
        errors.append(float((xK - exact).norm()))
    slope = -np.polyfit(np.log(ks), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.15, (errors, slope)


def test_forward_agrees_with_torchdiffeq():
    """Euler on a masked fixed-shape field f(t, x) = −(1/h)(I − Π_j) x + pad(F_j(x))."""
    torchdiffeq = pytest.importorskip("torchdiffeq")
    problem, theta = make_problem(solver="euler")
    flow = problem.flow
    prof = flow.profile
    params = flow.layout.split(theta)
    d, h = prof.d, prof.h

    def f(t, x):
        j = min(int(round(float(t) / h)), prof.K - 1)
        w_in, w_out = prof.input_widths[j], prof.step_widths[j]
        out = torch.zeros_like(x)
        out[:, :w_out] = flow.field(params[j], x[:, :w_in])[0]
        out[:, w_out:] -= x[:, w_out:] / h
        return out

    times = torch.tensor(prof.times(), dtype=DT)
    ref = torchdiffeq.odeint(f, problem.x0, times, method="euler")[-1]
    xK, _, _ = flow.forward(theta, problem.x0)
    assert torch.allclose(ref, xK, atol=1e-12)


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_bottleneck_is_exact(solver):
    """The input-output Jacobian of x_0 ↦ x_K has rank k (finite differences)."""
    problem, theta = make_problem(solver=solver, widths=(6, 4, 2, 4, 6), steps=(1, 1, 2, 1, 1))
    flow = problem.flow
    x = problem.x0[:1].clone()
    eps = 1e-6
    cols = []
    for i in range(flow.profile.d):
        e = torch.zeros_like(x)
        e[0, i] = eps
        cols.append((flow.forward(theta, x + e)[0] - flow.forward(theta, x - e)[0])[0] / (2 * eps))
    s = torch.linalg.svdvals(torch.stack(cols, 1))
    assert s[1] > 1e-3 * s[0]  # two informative directions ...
    assert float(s[2:].max()) < 1e-8 * float(s[0])  # ... and no more


def test_inactive_components_stay_zero():
    problem, theta = make_problem()
    _, states, _ = problem.flow.forward(theta, problem.x0, keep=True)
    widths = (problem.flow.profile.d,) + problem.flow.profile.step_widths
    assert [s.shape[1] for s in states] == list(widths)


def test_flops_use_active_blocks_only():
    """The sweep never touches a d x d matrix when the widths shrink."""
    profile = WidthProfile.build((64, 8, 64), 1, 1.0)
    flow = Flow(profile, make_field(), get_solver("euler"))
    assert flow.layout.size == 8 * 64 + 8 + 64 * 8 + 64 + 64 * 64 + 64


def test_mini_batch_subset_renormalises():
    problem, theta = make_problem()
    sub = problem.subset(torch.arange(3))
    assert math.isclose(float(sub.weights.sum()), 1.0)
    full = Problem(problem.flow, problem.x0[:3], problem.lam, sub.weights)
    assert sub.objective(theta) == full.objective(theta)


@pytest.mark.parametrize("segment", [1, 2, 3, 7, 50])
@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_recomputing_sweep_is_bitwise_identical(segment, solver):
    """Storing every m-th state and recomputing the rest changes memory, not results."""
    problem, theta = make_problem(solver=solver)
    plain = problem.sweep(theta, keep=True)
    problem.segment = segment
    lean = problem.sweep(theta, keep=True)
    assert lean.J == plain.J and torch.equal(lean.grad, plain.grad)
    assert all(torch.equal(a, b) for a, b in zip(lean.costates, plain.costates))
    assert len(lean.costates) == len(plain.costates)
