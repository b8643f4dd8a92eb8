"""Controlled vector fields ``F_j(x, θ_j)`` on the active block of the state.

A field maps the ``w_{j-1}`` components alive before step ``j`` to the ``w_j`` components
it writes, and provides its own vector-Jacobian product, so that the costate sweep in
:mod:`autoencode.pmp` is exact and allocation-light without a global autograd tape.

* :class:`Layer`: ``F(x, θ) = σ(W x + b)``, ``θ = (W, b)``, ``W ∈ R^{w_j × w_{j-1}}``.
* :class:`TwoLayer`: ``F(x, θ) = A σ(W x + b)``, ``θ = (W, b, A)`` with an inner width ``m``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from .errors import ConfigError
from .validation import integer

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "Field", "Layer", "TwoLayer", "make_field"]


@dataclass(frozen=True)
class Activation:
    """σ with a fused backward: ``forward(a) -> (σ(a), saved)``,
    ``backward(g, saved) -> g ⊙ σ'(a)``."""

    name: str
    forward: Callable[[Tensor], tuple[Tensor, Optional[Tensor]]]
    backward: Callable[[Tensor, Optional[Tensor]], Tensor]


_aten = torch.ops.aten

ACTIVATIONS = {
    # fields pass a fresh pre-activation, so tanh and relu may overwrite it
    "tanh": Activation("tanh", lambda a: (a.tanh_(), a), lambda g, s: _aten.tanh_backward(g, s)),
    "relu": Activation("relu", lambda a: (a.relu_(), a),
                       lambda g, s: _aten.threshold_backward(g, s, 0)),
    "softplus": Activation("softplus", lambda a: (torch.nn.functional.softplus(a), a),
                           lambda g, a: _aten.softplus_backward(g, a, 1, 20)),
    "identity": Activation("identity", lambda a: (a, None), lambda g, _: g),
}


def get_activation(name: str) -> Activation:
    """Look up an activation by name, with a clear error for unknown names."""
    if name not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]


ParamSpec = tuple[tuple[int, ...], int]  # (shape, fan-in used to scale the initialisation)


class Field:
    """Interface of a controlled field on active blocks.

    ``specs(w_in, w_out)`` lists the control tensors of one step (shape, fan-in) in flat
    order; ``__call__(params, u) -> (F(u), cache)``; ``vjp(params, cache, c, scale, base)
    -> (base + scale c·∂F/∂u, scale c·∂F/∂θ)`` with the parameter gradients in the order of
    ``specs`` (``base = None`` adds nothing). ``scale`` (the step size) is applied to
    parameter-sized tensors or as a GEMM's alpha, never in a pass over ``N × w`` blocks, and
    ``base`` (the costate carried through the residual connection) is the GEMM's addend.
    """

    name: str = "field"

    def specs(self, w_in: int, w_out: int) -> list[ParamSpec]:
        raise NotImplementedError

    def __call__(self, params, u: Tensor):
        raise NotImplementedError

    def vjp(self, params, cache, cot: Tensor, scale: float = 1.0, base=None):
        raise NotImplementedError


class Layer(Field):
    """Single-layer field ``F(x) = σ(W x + b)`` (the NeurODE / ResNet layer)."""

    name = "layer"

    def __init__(self, activation: str = "tanh"):
        self.activation = get_activation(activation)

    def specs(self, w_in, w_out):
        return [((w_out, w_in), w_in), ((w_out,), w_in)]

    def __call__(self, params, u):
        W, b = params
        s, saved = self.activation.forward(torch.addmm(b, u, W.t()))
        return s, (u, saved)

    def vjp(self, params, cache, cot, scale=1.0, base=None):
        W, _ = params
        u, saved = cache
        g_a = self.activation.backward(cot, saved)
        g_u = g_a @ (W * scale) if base is None else torch.addmm(base, g_a, W, alpha=scale)
        return g_u, ((g_a.t() @ u).mul_(scale), g_a.sum(0).mul_(scale))


class TwoLayer(Field):
    """Two-layer field ``F(x) = A σ(W x + b)`` with inner width ``m``."""

    name = "two-layer"

    def __init__(self, activation: str = "tanh", inner_width: int = 32):
        self.activation = get_activation(activation)
        self.inner_width = integer(inner_width, "inner_width", 1)

    def specs(self, w_in, w_out):
        m = self.inner_width
        return [((m, w_in), w_in), ((m,), w_in), ((w_out, m), m)]

    def __call__(self, params, u):
        W, b, A = params
        s, saved = self.activation.forward(torch.addmm(b, u, W.t()))
        return s @ A.t(), (u, s, saved)

    def vjp(self, params, cache, cot, scale=1.0, base=None):
        W, _, A = params
        u, s, saved = cache
        g_a = self.activation.backward(cot @ (A * scale), saved)
        g_u = g_a @ W if base is None else torch.addmm(base, g_a, W)
        return g_u, (g_a.t() @ u, g_a.sum(0), (cot.t() @ s).mul_(scale))


def make_field(field: str | Field = "layer", activation: str = "tanh",
               inner_width: Optional[int] = None) -> Field:
    """Build a field from its name (``"layer"`` or ``"two-layer"``) or pass one through."""
    if isinstance(field, Field):
        return field
    if field == "layer":
        return Layer(activation)
    if field == "two-layer":
        return TwoLayer(activation, 32 if inner_width is None else inner_width)
    raise ConfigError(f"unknown field {field!r}; expected 'layer' or 'two-layer'")
