"""Peer implementations of one training iteration on the same model and objective.

All peers compute the gradient of the same J as ``Problem.sweep`` for the same controls
(``W_j`` of shape ``(w_j, w_{j-1})``, ``b_j``): the terminal part
``mean_i |x_K^i - x_0^i|^2`` by autograd, and the Tikhonov part ``(λ/2) h |θ|^2`` through
``torch.optim.Adam(weight_decay=λh)``, which adds exactly its gradient ``λ h θ``.
:func:`check_gradients` verifies that in float64 before anything is timed.

* ``MaskedODE`` (peer a): a fixed-shape field on R^d solved by torchdiffeq's Euler on the
  grid ``t_j``: ``f(t, x) = pad(σ(W_j x[:, :w_{j-1}] + b_j)) - (1/h)(I - Π_j) x`` for
  ``t`` in step ``j``, so that ``x + h f = Π_j(x + h F_j)``.
* ``MaskedDenseODE`` (peer a', context only): the same field with ``d x d`` weights
  (``W_j`` zero-padded) and masks, the fully fixed-shape way to write it.
* ``PhaseODE`` (peer b): one ``odeint`` per constant-width phase; the state is resized
  between phases (a shrinking phase runs on the wider input width with the masked term,
  so that its first step still reads all ``w_{j-1}`` inputs, then is truncated).
* ``LinearLoop`` (peer c): ``x = resize(x, w_j) + h tanh(Linear_j(x))``, plain autograd.
* :class:`MatmulOnly` (peer d): the sweep's GEMMs alone, the hardware limit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def resize(x: Tensor, width: int) -> Tensor:
    w = x.shape[1]
    if width == w:
        return x
    if width < w:
        return x[:, :width]
    return F.pad(x, (0, width - w))


class _Peer(nn.Module):
    """Holds ``W_j, b_j`` as separate parameters, copied from a flat ``theta``."""

    def __init__(self, profile, theta: Tensor):
        super().__init__()
        from autoencode.fields import Layer
        from autoencode.pmp import ControlLayout
        layout = ControlLayout(profile, Layer("tanh"))
        self.profile = profile
        self.h = profile.h
        self.w_in = list(profile.input_widths)
        self.w_out = list(profile.step_widths)
        self.K = profile.K
        self.d = profile.d
        self.build([(W.detach().clone(), b.detach().clone()) for W, b in layout.split(theta)])

    def build(self, params):
        self.W = nn.ParameterList([nn.Parameter(W) for W, _ in params])
        self.b = nn.ParameterList([nn.Parameter(b) for _, b in params])

    def ordered(self):
        """Parameters in the library's flat order (W_0, b_0, W_1, b_1, ...)."""
        out = []
        for j in range(self.K):
            out += [self.W[j], self.b[j]]
        return out

    def flat_grad(self, lam: float) -> Tensor:
        return torch.cat([(p.grad + lam * self.h * p.detach()).reshape(-1)
                          for p in self.ordered()])

    def loss(self, x0: Tensor) -> Tensor:
        xK = self(x0)
        return ((xK - x0) ** 2).sum(1).mean()

    def step_index(self, t) -> int:
        return min(max(int(round(float(t) / self.h)), 0), self.K - 1)


class LinearLoop(_Peer):
    """Peer (c): residual loop of ``nn.Linear`` layers on the active blocks."""

    def build(self, params):
        self.layers = nn.ModuleList()
        for W, b in params:
            layer = nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype)
            with torch.no_grad():
                layer.weight.copy_(W)
                layer.bias.copy_(b)
            self.layers.append(layer)

    def ordered(self):
        out = []
        for layer in self.layers:
            out += [layer.weight, layer.bias]
        return out

    def forward(self, x):
        h = self.h
        for layer, w in zip(self.layers, self.w_out):
            x = resize(x, w) + h * torch.tanh(layer(x))
        return x


class MaskedODE(_Peer):
    """Peer (a): masked fixed-shape field on R^d, one torchdiffeq Euler solve."""

    def field(self, t, x):
        j = self.step_index(t)
        w_in, w_out = self.w_in[j], self.w_out[j]
        s = torch.tanh(F.linear(x[:, :w_in], self.W[j], self.b[j]))
        if w_out == x.shape[1]:
            return s
        return torch.cat([s, x[:, w_out:] * (-1.0 / self.h)], 1)

    def forward(self, x0):
        from torchdiffeq import odeint
        t = torch.tensor(self.profile.times(), dtype=x0.dtype)
        return odeint(self.field, x0, t, method="euler")[-1]


class MaskedDenseODE(MaskedODE):
    """Peer (a'): the masked field with ``d x d`` weights (zero-padded ``W_j``) and masks."""

    def build(self, params):
        super().build(params)
        d = params[0][0].shape[1]
        masks = [torch.zeros(d, dtype=params[0][0].dtype) for _ in params]
        for m, (W, _) in zip(masks, params):
            m[:W.shape[0]] = 1.0
        self.masks = masks

    def field(self, t, x):
        j = self.step_index(t)
        d = self.d
        W = F.pad(self.W[j], (0, d - self.w_in[j], 0, d - self.w_out[j]))
        b = F.pad(self.b[j], (0, d - self.w_out[j]))
        m = self.masks[j]
        return torch.tanh(F.linear(x, W, b)) * m - x * ((1.0 - m) / self.h)


class PhaseODE(_Peer):
    """Peer (b): one torchdiffeq Euler solve per constant-width phase."""

    def build(self, params):
        super().build(params)
        phases, start = [], 0
        for w, s in zip(self.profile.widths, self.profile.steps):
            w_prev = self.profile.d if start == 0 else self.w_out[start - 1]
            phases.append((start, start + s, max(w, w_prev), w))
            start += s
        self.phases = phases

    def _phase_field(self, width_out: int):
        def f(t, y):
            j = self.step_index(t)
            s = torch.tanh(F.linear(y[:, :self.w_in[j]], self.W[j], self.b[j]))
            if width_out == y.shape[1]:
                return s
            return torch.cat([s, y[:, width_out:] * (-1.0 / self.h)], 1)
        return f

    def forward(self, x):
        from torchdiffeq import odeint
        t = torch.tensor(self.profile.times(), dtype=x.dtype)
        for start, stop, m, w in self.phases:
            y = odeint(self._phase_field(w), resize(x, m), t[start:stop + 1], method="euler")[-1]
            x = resize(y, w)
        return x


PEERS = {
    "a": ("torchdiffeq, masked field (a)", MaskedODE),
    "a_dense": ("torchdiffeq, masked d x d field (a', context)", MaskedDenseODE),
    "b": ("torchdiffeq, one solve per phase (b)", PhaseODE),
    "c": ("nn.Linear residual loop (c)", LinearLoop),
}


def peer_iteration(model: _Peer, x0: Tensor, lam: float, lr: float = 1e-2):
    """A closure running one full-batch iteration: forward, backward, Adam step."""
    opt = torch.optim.Adam(model.ordered(), lr=lr, weight_decay=lam * model.h, foreach=True)

    def iteration():
        opt.zero_grad(set_to_none=True)
        loss = model.loss(x0)
        loss.backward()
        opt.step()
        return loss
    return iteration


def peer_sweep(model: _Peer, x0: Tensor):
    """A closure running forward + backward only (no update)."""
    params = model.ordered()

    def sweep():
        for p in params:
            p.grad = None
        loss = model.loss(x0)
        loss.backward()
        return loss
    return sweep


def check_gradients(widths, spw, T, N: int, lam: float, names=("a", "a_dense", "b", "c"),
                    seed: int = 0) -> dict:
    """float64: each peer's J and ∇J against ``Problem.sweep(theta)``; relative errors."""
    from common import build_problem, random_data
    x = random_data(N, widths[0], torch.float64, seed)
    problem, theta = build_problem(widths, spw, T, x, lam, seed)
    sweep = problem.sweep(theta)
    ref = sweep.grad
    out = {}
    for name in names:
        model = PEERS[name][1](problem.flow.profile, theta)
        loss = model.loss(x)
        loss.backward()
        g = model.flat_grad(lam)
        J = float(loss.detach()) + 0.5 * lam * model.h * float(theta.dot(theta))
        out[name] = {"grad_rel_err": float((g - ref).norm() / ref.norm()),
                     "J_rel_err": abs(J - sweep.J) / abs(sweep.J)}
    return out


class MatmulOnly:
    """Peer (d): the GEMMs of one sweep (forward ``u W^T``; backward ``g W`` and ``g^T u``),
    on preallocated inputs and outputs, nothing else."""

    def __init__(self, profile, N: int, dtype=torch.float32):
        gen = torch.Generator().manual_seed(0)
        self.ops = []
        for w_in, w_out in zip(profile.input_widths, profile.step_widths):
            u = torch.randn(N, w_in, generator=gen, dtype=dtype)
            W = torch.randn(w_out, w_in, generator=gen, dtype=dtype)
            g = torch.randn(N, w_out, generator=gen, dtype=dtype)
            self.ops.append((u, W.t(), torch.empty(N, w_out, dtype=dtype)))     # forward
            self.ops.append((g, W, torch.empty(N, w_in, dtype=dtype)))          # costate
            self.ops.append((g.t(), u, torch.empty(w_out, w_in, dtype=dtype)))  # ∂/∂W

    def __call__(self):
        for a, b, out in self.ops:
            torch.mm(a, b, out=out)
