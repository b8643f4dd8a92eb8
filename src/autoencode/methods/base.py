"""The contract shared by every training method (DESIGN 1.5).

A method is a strategy object with two calls, in the style of optax:

    state = method.init(problem, theta)          # one sweep at the initial controls
    state, metrics = method.update(problem, state)

``state`` is a flat ``dict`` of tensors (controls, the sweep at the current controls, the
method's own variables, the running sweep count), so that it can be checkpointed with
safetensors and resumed by any method. ``metrics`` describes the controls *after* the
update: ``J``, ``mse``, ``residual`` (PMP), ``rho`` (NaN where it does not apply), ``sweeps``
(cumulative; one forward + costate pass over all particles is one sweep, a forward pass
alone is half a sweep).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..pmp import Problem, Sweep

__all__ = ["Method", "evaluate", "record", "metrics_of", "mini_batch"]


def _scalar(value: float, like: Tensor) -> Tensor:
    return torch.tensor(value, dtype=torch.float64, device=like.device)


def evaluate(problem: Problem, theta: Tensor, state: dict, cost: float = 1.0) -> dict:
    """Run one sweep at ``theta`` and store it in ``state`` (adding ``cost`` sweeps)."""
    return record(state, problem.sweep(theta), cost)


def record(state: dict, sweep: Sweep, cost: float) -> dict:
    """Store a sweep's results in ``state`` and add ``cost`` to its sweep count."""
    like = sweep.grad
    state.update(theta=sweep.theta, grad=sweep.grad, J=_scalar(sweep.J, like),
                 mse=_scalar(sweep.mse, like), residual=_scalar(sweep.residual, like),
                 sweeps=state.get("sweeps", _scalar(0.0, like)) + cost)
    return state


def metrics_of(state: dict) -> dict:
    """The per-iteration record of a state."""
    rho = state.get("rho")
    return {"J": float(state["J"]), "mse": float(state["mse"]),
            "residual": float(state["residual"]),
            "rho": math.nan if rho is None else float(rho), "sweeps": float(state["sweeps"])}


def mini_batch(problem: Problem, state: dict, batch_size):
    """The problem on the next mini-batch (and its share of a sweep), or the full problem.

    The sampler's generator state travels in ``state["rng"]`` so that checkpoints resume
    the same sequence of batches.
    """
    n = problem.shard[1]  # particles over all shards
    if batch_size is None or batch_size >= n:
        return problem, 1.0
    generator = torch.Generator()
    generator.set_state(state["rng"])
    index = torch.randperm(n, generator=generator)[:batch_size]
    state["rng"] = generator.get_state()
    return problem.subset(index), batch_size / n


class Method:
    """Base class: ``init(problem, theta) -> state``, ``update(problem, state) -> (state, metrics)``."""

    name = "method"

    def init(self, problem: Problem, theta: Tensor) -> dict:
        return evaluate(problem, theta, {})

    def update(self, problem: Problem, state: dict):
        raise NotImplementedError
