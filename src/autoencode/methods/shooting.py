"""Fixed-point shooting for the mean-field PMP (the method of the NeurODE control literature).

Stationarity of the Hamiltonian, ``λ h θ_j = Σ_i (∂x_{j+1}/∂θ_j)^T p_{j+1}^i``, read as a
fixed point and iterated with relaxation ``α``:

    θ_j ← (1 − α) θ_j + α (1/(λh)) Σ_i (∂x_{j+1}/∂θ_j)^T p_{j+1}^i  =  θ_j − (α/(λh)) ∇_{θ_j} J

It is a contraction, hence converges to the unique solution, when λ is large; at small λ
the map expands and the iteration diverges (the estimator then stops at the last good
controls).
"""

from __future__ import annotations

from ..errors import ConfigError
from ..validation import number
from .base import Method, evaluate, metrics_of

__all__ = ["Shooting"]


class Shooting(Method):
    """Relaxed fixed-point iteration of the PMP stationarity condition (``relaxation = α``)."""

    name = "shooting"

    def __init__(self, relaxation: float = 1.0):
        self.relaxation = number(relaxation, "relaxation", 0, 1, low_open=True)

    def init(self, problem, theta):
        if not problem.lam > 0:
            raise ConfigError(
                f"shooting divides by λ h and needs lam > 0, got lam={problem.lam}; "
                f"use method='emsa' or a positive lam"
            )
        return super().init(problem, theta)

    def update(self, problem, state):
        step = self.relaxation / (problem.lam * problem.h)
        state = evaluate(problem, state["theta"] - step * state["grad"], dict(state))
        return state, metrics_of(state)
