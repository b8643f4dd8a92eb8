"""Gradient baselines on ``∇_θ J`` from the costate sweep: Adam and (momentum) SGD.

Full batch by default; with ``batch_size`` each update uses a fresh mini-batch of the
empirical measure (a stochastic approximation of μ_0) and counts ``batch_size / N`` sweeps.
"""

from __future__ import annotations

import torch

from ..validation import integer, number
from .base import Method, evaluate, metrics_of, mini_batch

__all__ = ["Adam", "SGD"]


class _GradientMethod(Method):
    def __init__(self, lr: float, batch_size=None, seed: int = 0):
        number(lr, "lr", 0, low_open=True)
        if batch_size is not None:
            integer(batch_size, "batch_size", 1)
        self.lr, self.batch_size, self.seed = lr, batch_size, integer(seed, "seed")

    def init(self, problem, theta):
        state = {"rng": torch.Generator().manual_seed(self.seed).get_state(),
                 **self._init_moments(theta)}
        batch, cost = mini_batch(problem, state, self.batch_size)
        return evaluate(batch, theta, state, cost)

    def update(self, problem, state):
        state = dict(state)
        theta = state["theta"] - self._direction(state)
        batch, cost = mini_batch(problem, state, self.batch_size)
        state = evaluate(batch, theta, state, cost)
        return state, metrics_of(state)


class Adam(_GradientMethod):
    """Adam (Kingma & Ba) on ``∇_θ J``: ``θ ← θ − lr m̂ / (√v̂ + ε)``."""

    name = "adam"

    def __init__(self, lr: float = 1e-2, betas=(0.9, 0.999), eps: float = 1e-8,
                 batch_size=None, seed: int = 0):
        super().__init__(lr, batch_size, seed)
        self.betas, self.eps = tuple(betas), eps

    def _init_moments(self, theta):
        return {"m": torch.zeros_like(theta), "v": torch.zeros_like(theta),
                "t": torch.zeros((), dtype=torch.float64)}

    def _direction(self, state):
        b1, b2 = self.betas
        g = state["grad"]
        state["t"] = state["t"] + 1
        t = float(state["t"])
        state["m"] = b1 * state["m"] + (1 - b1) * g
        state["v"] = b2 * state["v"] + (1 - b2) * g * g
        m_hat = state["m"] / (1 - b1 ** t)
        v_hat = state["v"] / (1 - b2 ** t)
        return self.lr * m_hat / (v_hat.sqrt() + self.eps)


class SGD(_GradientMethod):
    """Gradient descent with heavy-ball momentum: ``v ← μ v + ∇J``, ``θ ← θ − lr v``."""

    name = "sgd"

    def __init__(self, lr: float = 1e-1, momentum: float = 0.9, batch_size=None, seed: int = 0):
        super().__init__(lr, batch_size, seed)
        self.momentum = number(momentum, "momentum", 0, 1, high_open=True)

    def _init_moments(self, theta):
        return {"velocity": torch.zeros_like(theta)}

    def _direction(self, state):
        state["velocity"] = self.momentum * state["velocity"] + state["grad"]
        return self.lr * state["velocity"]
