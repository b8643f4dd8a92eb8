"""The mean-field Pontryagin sweep: forward states, backward costates, Hamiltonian gradients.

For controls ``θ = (θ_0, ..., θ_{K-1})`` and particles ``x_0^i`` with weights ``ω_i``:

    forward   x_{j+1}^i = Φ_j(x_j^i, θ_j)                       (explicit RK step + Π_j)
    costate   p_K^i = −ω_i ∇ℓ(x_K^i, y^i),   p_j^i = (∂Φ_j/∂x)^T p_{j+1}^i
    gradient  ∇_{θ_j} H_j = Σ_i (∂Φ_j/∂θ)^T p_{j+1}^i − λ h θ_j = −∇_{θ_j} J
    residual  r = (Σ_j |∇_{θ_j} H_j|²)^{1/2}

This module is the one place gradients come from: every training method, the estimator's
``gradient`` and the analysis tools call :meth:`Problem.sweep`. Particle sums pass through
``Problem.reduce`` so that a sharded (distributed) run all-reduces them and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from .costs import SquaredError, tikhonov
from .fields import Field
from .profile import WidthProfile
from .solvers import ExplicitRK

__all__ = ["ControlLayout", "Flow", "Forward", "Problem", "StreamedProblem", "Sweep"]


class ControlLayout:
    """Where each step's control tensors live in the flat control vector.

    Order (DESIGN 2.1): for each step ``j`` in time order, ``W_j`` row-major, then ``b_j``
    (then ``A_j`` for the two-layer field).
    """

    def __init__(self, profile: WidthProfile, field: Field):
        self.specs = [field.specs(w_in, w_out)
                      for w_in, w_out in zip(profile.input_widths, profile.step_widths)]
        self.offsets = []
        offset = 0
        for step in self.specs:
            self.offsets.append(offset)
            offset += sum(_numel(shape) for shape, _ in step)
        self.size = offset
        self.step_sizes = [sum(_numel(shape) for shape, _ in step) for step in self.specs]

    def split(self, flat: Tensor) -> list[tuple[Tensor, ...]]:
        """Per-step tuples of views into ``flat`` (no copies)."""
        out = []
        for offset, step in zip(self.offsets, self.specs):
            views = []
            for shape, _ in step:
                n = _numel(shape)
                views.append(flat[offset:offset + n].view(shape))
                offset += n
            out.append(tuple(views))
        return out

    def initial(self, kind: str, scale: float, generator: torch.Generator,
                dtype: torch.dtype, device) -> Tensor:
        """``zeros``, or ``normal``: entries ``~ N(0, scale² / fan_in)``."""
        flat = torch.zeros(self.size, dtype=dtype)
        if kind == "normal":
            for views, step in zip(self.split(flat), self.specs):
                for view, (shape, fan_in) in zip(views, step):
                    view.copy_(torch.randn(shape, generator=generator, dtype=dtype)
                               * (scale / fan_in ** 0.5))
        return flat.to(device)

    def step_norms(self, flat: Tensor) -> Tensor:
        """``|θ_j|`` for each step (shape ``(K,)``)."""
        return torch.stack([flat[o:o + n].norm() for o, n in zip(self.offsets, self.step_sizes)])


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


@dataclass
class Flow:
    """The controlled dynamics: profile, field and time stepper on active blocks."""

    profile: WidthProfile
    field: Field
    solver: ExplicitRK

    def __post_init__(self):
        self.layout = ControlLayout(self.profile, self.field)
        self._out = self.profile.step_widths
        self._in = self.profile.input_widths

    def forward(self, theta: Tensor, x: Tensor, start: int = 0, stop: Optional[int] = None,
                keep: bool = False):
        """Run steps ``start..stop-1`` from ``x`` (active block of width ``w_{start-1}``).

        Returns the final state, and with ``keep`` the lists of states ``x_start..x_stop``
        and per-step caches for :meth:`costate`.
        """
        stop = self.profile.K if stop is None else stop
        params = self.layout.split(theta)
        h = self.profile.h
        states, caches = [x], []
        for j in range(start, stop):
            x, cache = self.solver.step(self.field, params[j], x, self._out[j], h)
            if keep:
                states.append(x)
                caches.append(cache)
        return x, states, caches

    def costate(self, theta: Tensor, caches: Sequence, p_final: Tensor,
                keep: bool = False, start: int = 0, grad: Optional[Tensor] = None):
        """Backward sweep over steps ``start..start+len(caches)-1`` from the costate after
        them: writes ``g_j = Σ_i (∂Φ_j/∂θ)^T p_{j+1}^i`` (unreduced) into ``grad`` (flat, new
        if ``None``) and returns ``(grad, p_start, costates)``, the costates with ``keep``."""
        params = self.layout.split(theta)
        grad = torch.empty_like(theta) if grad is None else grad
        grad_views = self.layout.split(grad)
        h = self.profile.h
        p = p_final
        costates = [p]
        for j in reversed(range(start, start + len(caches))):
            p, g = self.solver.reverse(self.field, params[j], caches[j - start], p, self._in[j], h)
            for view, value in zip(grad_views[j], g):
                view.copy_(value)
            if keep:
                costates.append(p)
        costates.reverse()
        return grad, p, costates


@dataclass
class Forward:
    """A forward pass at ``theta``: objective and the tape for the costate pass."""

    theta: Tensor
    J: float
    mse: float
    states: list
    caches: list                     # caches of the steps from ``segments[-1]`` on
    terminal_grad: Optional[Tensor]  # ∇_x ℓ(x_K^i, y^i), unweighted
    checkpoints: dict = dataclass_field(default_factory=dict)  # segment start -> state


@dataclass
class Sweep:
    """Result of one forward + costate pass at controls ``theta``."""

    theta: Tensor
    J: float
    mse: float
    grad: Tensor          # ∇_θ J = −∇_θ H (flat)
    residual: float       # |∇_θ H|
    states: list = dataclass_field(default_factory=list)
    costates: list = dataclass_field(default_factory=list)


def _identity(t: Tensor) -> Tensor:
    return t


class Problem:
    """A mean-field optimal control problem: dynamics, data measure, cost and λ.

    ``x0`` holds the particles (rows), ``weights`` their masses ``ω_i`` (summing to 1
    over *all* shards), ``target`` the supervised targets (``None``: reconstruction).
    ``reduce`` sums a tensor over shards (identity in a single process); ``shard =
    (start, total)`` says which rows of the whole data set ``x0`` holds. With ``segment =
    m`` the forward pass stores only every m-th state and the costate pass recomputes each
    segment from it: memory ``O(K/m + m)`` states instead of ``O(K)`` for at most one extra
    forward pass (``m = ⌈√K⌉`` minimises the memory).
    """

    def __init__(self, flow: Flow, x0: Tensor, lam: float, weights: Optional[Tensor] = None,
                 target: Optional[Tensor] = None, cost=None,
                 reduce: Optional[Callable[[Tensor], Tensor]] = None, shard=None,
                 segment: Optional[int] = None):
        self.flow, self.x0, self.lam = flow, x0, float(lam)
        self.weights = (torch.full((x0.shape[0],), 1.0 / x0.shape[0], dtype=x0.dtype,
                                   device=x0.device) if weights is None else weights)
        self.target = x0 if target is None else target
        self.cost = SquaredError() if cost is None else cost
        self.reduce = _identity if reduce is None else reduce
        self.shard = (0, x0.shape[0]) if shard is None else shard
        self.segment = segment

    @property
    def h(self) -> float:
        return self.flow.profile.h

    def subset(self, index: Tensor) -> "Problem":
        """The problem on global particle numbers ``index`` (those in this shard), with
        weights renormalised over all shards: a mini-batch of the empirical measure."""
        index = index.to(self.x0.device)
        start, total = self.shard
        local = index[(index >= start) & (index < start + self.x0.shape[0])] - start
        w = self.weights[local]
        w = w / self.reduce(w.sum().reshape(1))[0]
        return Problem(self.flow, self.x0[local], self.lam, w,
                       None if self.target is self.x0 else self.target[local],
                       self.cost, self.reduce, shard=(0, len(index)), segment=self.segment)

    def forward(self, theta: Tensor, keep: bool = True) -> "Forward":
        """Forward pass: ``J``, ``mse``, and with ``keep`` what :meth:`backward` needs."""
        checkpoints, x, start = {}, self.x0, 0
        if keep and self.segment:
            K, m = self.flow.profile.K, self.segment
            for start in range(0, K - m, m):  # all segments but the last: keep their start
                checkpoints[start] = x
                x, _, _ = self.flow.forward(theta, x, start, start + m)
            start += m if checkpoints else 0
        xK, states, caches = self.flow.forward(theta, x, start, keep=keep)
        values, dl = self.cost(xK, self.target)
        terminal = float(self.reduce(self.weights.dot(values).reshape(1))[0])
        reg = tikhonov(theta, self.lam, self.h)
        return Forward(theta, terminal + float(reg), terminal / self.flow.profile.d,
                       states if not checkpoints else [], caches, dl if keep else None,
                       checkpoints)

    def backward(self, forward: "Forward", keep: bool = False) -> Sweep:
        """Costate pass after :meth:`forward`: ``∇_θ J`` and the PMP residual."""
        theta, K = forward.theta, self.flow.profile.K
        p = forward.terminal_grad * (-self.weights)[:, None]
        start = K - len(forward.caches)
        g, p, costates = self.flow.costate(theta, forward.caches, p, keep=keep, start=start)
        if forward.checkpoints:
            forward.caches = []  # the tape is consumed: free each segment once reversed
        for start in sorted(forward.checkpoints, reverse=True):  # recompute, then reverse
            stop = start + self.segment
            _, _, caches = self.flow.forward(theta, forward.checkpoints.pop(start), start, stop,
                                             keep=True)
            g, p, more = self.flow.costate(theta, caches, p, keep=keep, start=start, grad=g)
            del caches
            costates = more[:-1] + costates
        grad = self.reduce(g).neg_().add_(theta, alpha=self.lam * self.h)  # λhθ − g, in place
        return Sweep(theta=theta, J=forward.J, mse=forward.mse, grad=grad,
                     residual=float(grad.norm()), states=forward.states if keep else [],
                     costates=costates if keep else [])

    def sweep(self, theta: Tensor, keep: bool = False) -> Sweep:
        """Forward states, costates and ``∇_θ J``; with ``keep`` all states and costates."""
        return self.backward(self.forward(theta), keep=keep)

    def objective(self, theta: Tensor) -> tuple[float, float]:
        """``(J, mse)`` from a forward pass only."""
        forward = self.forward(theta, keep=False)
        return forward.J, forward.mse


class StreamedProblem:
    """A problem whose particles stay on disk (a memory-mapped array, rows ``shard[0]..``
    of ``shard[1]``) and are read one mini-batch at a time: stochastic approximation of
    μ_0 for data larger than memory. ``load`` turns rows into aligned tensors."""

    def __init__(self, flow: Flow, rows, lam: float, load: Callable, reduce=None, shard=None,
                 segment: Optional[int] = None):
        self.flow, self.rows, self.lam, self.load, self.segment = flow, rows, float(lam), load, segment
        self.reduce = _identity if reduce is None else reduce
        self.shard = (0, len(rows)) if shard is None else shard

    @property
    def h(self) -> float:
        return self.flow.profile.h

    def subset(self, index: Tensor) -> Problem:
        """The in-memory problem on global particle numbers ``index`` held by this shard."""
        start, _ = self.shard
        index = index.cpu()
        local = index[(index >= start) & (index < start + len(self.rows))] - start
        local = torch.sort(local).values.numpy()  # sequential reads from disk
        x = self.load(self.rows[local])
        weights = torch.full((len(local),), 1.0 / len(index), dtype=x.dtype, device=x.device)
        return Problem(self.flow, x, self.lam, weights, reduce=self.reduce, shard=(0, len(index)),
                       segment=self.segment)
