"""Explicit Runge–Kutta time steppers on width-varying states, with exact discrete adjoints.

Step ``j`` maps the active block ``x ∈ R^{N × w_in}`` to ``x' ∈ R^{N × w_out}``:

    u_s = x + h Σ_{r<s} a_{sr} R_in(k_r),      k_s = F(u_s, θ_j)        (s = 1..S)
    x'  = R_out(x) + h Σ_s b_s k_s

where ``R_w`` keeps the first ``w`` columns or pads with zeros to ``w``. This is
``x' = Π_j(x + h Φ(x))`` with the field extended by zero to ``R^d``: the projection ``Π_j``
acts at step ends only, as DESIGN 1.2 prescribes. Euler (S = 1) is the residual layer.

The reverse step propagates a costate ``p' ∈ R^{N × w_out}`` to ``p = (∂x'/∂x)^T p'`` and
accumulates ``(∂x'/∂θ)^T p'``, the exact adjoint of the discrete map (not of the ODE).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import ConfigError
from .fields import Field

__all__ = ["ExplicitRK", "EULER", "HEUN", "RK4", "SOLVERS", "get_solver", "resize"]


def resize(v: Tensor, width: int) -> Tensor:
    """``R_w``: keep the first ``width`` columns, or pad with zero columns up to ``width``."""
    current = v.shape[-1]
    if width <= current:
        return v[..., :width]
    return torch.nn.functional.pad(v, (0, width - current))


def _add_resized(base: Tensor, v: Tensor, alpha: float) -> Tensor:
    """``R_{w(v)}(base) + alpha v`` as one new tensor, without padding ``base``."""
    w_base, w = base.shape[-1], v.shape[-1]
    if w <= w_base:
        return torch.add(base[..., :w], v, alpha=alpha)
    out = v * alpha
    out[..., :w_base] += base
    return out


@dataclass(frozen=True)
class ExplicitRK:
    """An explicit Runge–Kutta scheme given by its Butcher tableau ``(a, b)``."""

    name: str
    a: tuple[tuple[float, ...], ...]  # a[s] has s entries: coefficients of k_0..k_{s-1}
    b: tuple[float, ...]
    order: int

    @property
    def stages(self) -> int:
        return len(self.b)

    def step(self, field: Field, params, x: Tensor, w_out: int, h: float):
        """One step ``x -> x'``; returns ``(x', caches)`` for :meth:`reverse`."""
        ks, caches = [], []
        for s in range(self.stages):
            u = x
            for r, coeff in enumerate(self.a[s]):
                if coeff:
                    u = _add_resized(u, resize(ks[r], x.shape[-1]), h * coeff)
            k, cache = field(params, u)
            ks.append(k)
            caches.append(cache)
        out = _add_resized(x, ks[0], h * self.b[0])
        for s in range(1, self.stages):
            out.add_(ks[s], alpha=h * self.b[s])
        return out, caches

    def reverse(self, field: Field, params, caches, p_out: Tensor, w_in: int, h: float):
        """Adjoint step: ``(p, g)`` with ``p = (∂x'/∂x)^T p'``, ``g = (∂x'/∂θ)^T p'``.

        Stage cotangents are ``h c̃_s`` with ``c̃_s = b_s p' + Σ_{t>s} a_{ts} R_out(G_t)``,
        ``G_t`` the cotangent of ``u_t``; the factor ``h`` is applied by the field to
        parameter-sized tensors only.
        """
        w_out = p_out.shape[-1]
        if self.stages == 1:  # Euler: p = R_in(p') + G_0, the addition fused into the GEMM
            return field.vjp(params, caches[0], p_out if self.b[0] == 1.0 else p_out * self.b[0],
                             h, base=resize(p_out, w_in))
        p_in, grads = None, None
        g_u = [None] * self.stages
        for s in reversed(range(self.stages)):
            cot = p_out if self.b[s] == 1.0 else p_out * self.b[s]
            for t in range(s + 1, self.stages):
                if self.a[t][s]:
                    cot = _add_resized(cot, resize(g_u[t], w_out), self.a[t][s])
            g_u[s], g_params = field.vjp(params, caches[s], cot, h)
            if p_in is None:  # G_s is read again by earlier stages: accumulate into a copy
                p_in = g_u[s].clone()
            else:
                p_in.add_(g_u[s])
            grads = g_params if grads is None else tuple(g.add_(q) for g, q in zip(grads, g_params))
        shared = min(w_in, w_out)
        p_in[..., :shared] += p_out[..., :shared]
        return p_in, grads


EULER = ExplicitRK("euler", ((),), (1.0,), 1)
HEUN = ExplicitRK("heun", ((), (1.0,)), (0.5, 0.5), 2)
RK4 = ExplicitRK("rk4", ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6), 4)
SOLVERS = {s.name: s for s in (EULER, HEUN, RK4)}


def get_solver(name: str | ExplicitRK) -> ExplicitRK:
    """Look up a time stepper by name (``euler``, ``heun``, ``rk4``) or pass one through."""
    if isinstance(name, ExplicitRK):
        return name
    if name not in SOLVERS:
        raise ConfigError(f"unknown solver {name!r}; expected one of {', '.join(SOLVERS)}")
    return SOLVERS[name]
