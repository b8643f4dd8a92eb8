"""Costs of the mean-field control problem (DESIGN 1.3).

    J(θ) = Σ_i ω_i ℓ(x_K^i, y^i) + (λ/2) h Σ_j |θ_j|²,     ℓ(x, y) = |x − y|²

with ``y^i = x_0^i`` for reconstruction and a given target for supervised NeurODE tasks.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["SquaredError", "tikhonov"]


class SquaredError:
    """Terminal cost ``ℓ(x, y) = |x − y|²`` summed over components."""

    name = "squared-error"

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-particle values ``ℓ(x^i, y^i)`` (shape ``(N,)``) and gradients ``∇_x ℓ``."""
        diff = x - y
        return (diff * diff).sum(-1), 2.0 * diff


def tikhonov(theta: Tensor, lam: float, h: float) -> Tensor:
    """Tikhonov term ``(λ/2) h |θ|²`` (θ flat over all steps); its gradient ``λ h θ`` is
    added in place by :meth:`autoencode.pmp.Problem.backward`."""
    return 0.5 * lam * h * theta.dot(theta)
