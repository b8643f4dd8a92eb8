"""Mean-field training sharded over particles with ``torch.distributed``.

Particles are independent given θ, so every training method needs only sums over
particles: the weighted terminal cost and the costate-weighted control gradient
``Σ_i (∂x_{j+1}/∂θ_j)^T p_{j+1}^i``. Each process holds a contiguous shard of the
particles (with their global masses ω_i) and all-reduces those sums, one call per forward
pass and one per costate pass: ``1 + Σ_j (w_j w_{j-1} + w_j)`` numbers per sweep. Every
decision that depends on them (ρ accept/reject in E-MSA, divergence) is therefore taken
identically on all ranks. PCA alignment is computed from the full data on every rank.

Entry points: :func:`fit` spawns ``workers`` local processes (gloo on CPU, nccl on CUDA);
under ``torchrun`` the command line calls :func:`init_from_env` and the estimator shards
automatically whenever a process group with more than one rank is active.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from .errors import ConfigError

__all__ = ["Shard", "active", "is_writer", "current_shard", "init_from_env", "fit", "timeout"]


def timeout() -> timedelta:
    """Collective timeout: a dead rank makes the others fail after this long instead of
    hanging (``AUTOENCODE_DIST_TIMEOUT`` seconds, default 120)."""
    return timedelta(seconds=float(os.environ.get("AUTOENCODE_DIST_TIMEOUT", "120")))


def active() -> bool:
    """Whether a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_writer() -> bool:
    """Whether this process writes files: rank 0, or the only process."""
    return not active() or dist.get_rank() == 0


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class Shard:
    """Rows ``[start, stop)`` of ``total`` particles held by this rank."""

    def __init__(self, total: int, rank: int, world: int):
        if world > total:
            raise ConfigError(f"{world} workers for {total} particles; use at most {total} "
                              f"workers (each needs at least one particle)")
        self.total, self.rank, self.world = total, rank, world
        self.start = rank * total // world
        self.stop = (rank + 1) * total // world

    reduce = staticmethod(_all_reduce_sum)


def current_shard(total: int):
    """This rank's :class:`Shard` of ``total`` particles, or ``None`` outside a group."""
    if not active():
        return None
    return Shard(total, dist.get_rank(), dist.get_world_size())


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group described by torchrun's environment (``WORLD_SIZE`` > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=timeout())
    return True


def _worker(rank: int, world: int, port: int, model, X, fit_kwargs: dict, out: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(max(1, torch.get_num_threads() // world))
    init_from_env(model.device)
    try:
        model.fit(X, **fit_kwargs)
        if rank == 0:
            model.save(Path(out) / "model")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fit(model, X, workers: int, **fit_kwargs):
    """Fit ``model`` on ``X`` with particles sharded over ``workers`` local processes.

    Returns the fitted model loaded from rank 0's result; equal to ``model.fit(X)`` in one
    process up to floating-point summation order.
    """
    from .data import validate_matrix
    from .estimator import AutoencODE
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    X = validate_matrix(X, "X")
    if workers > X.shape[0]:
        raise ConfigError(f"{workers} workers for {X.shape[0]} particles; use at most "
                          f"{X.shape[0]} workers")
    if workers == 1:
        return model.fit(X, **fit_kwargs)
    import torch.multiprocessing as mp
    with tempfile.TemporaryDirectory(prefix="autoencode-dist-") as out:
        mp.spawn(_worker, args=(workers, _free_port(), model, X, fit_kwargs, out),
                 nprocs=workers, join=True)
        return AutoencODE.load(Path(out) / "model")
