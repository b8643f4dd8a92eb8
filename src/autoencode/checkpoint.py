"""Training checkpoints: the full training state in one atomically written safetensors file.

A checkpoint holds the method state (controls, the sweep at the controls, ρ or Adam
moments, the mini-batch generator state, the sweep count), the PCA alignment, the
iteration and the history, plus the estimator's settings and a fingerprint of the training
data so that resuming with different settings or data is refused. JSON metadata travels in
the safetensors header; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, ModelFileError
from .io import atomic_write_bytes

__all__ = ["Checkpoint", "data_fingerprint", "save_checkpoint", "load_checkpoint"]

FORMAT = "autoencode-checkpoint"
VERSION = 1
# Settings that may change between a checkpoint and its resumption.
RESUMABLE = frozenset({"max_iter", "verbose", "device"})


def data_fingerprint(X: np.ndarray) -> str:
    """SHA-256 of the training array's shape and bytes."""
    digest = hashlib.sha256(repr(X.shape).encode())
    digest.update(np.ascontiguousarray(X).tobytes())
    return digest.hexdigest()


@dataclass
class Checkpoint:
    iteration: int
    state: dict
    history: list
    params: dict
    fingerprint: str
    mean: torch.Tensor | None = None
    rotation: torch.Tensor | None = None

    def check_compatible(self, params: dict, fingerprint: str) -> None:
        """Refuse to resume with other settings or data, naming the first difference."""
        for key in sorted(set(params) | set(self.params)):
            if key in RESUMABLE:
                continue
            then, now = self.params.get(key), _jsonable(params.get(key))
            if then != now:
                raise ConfigError(f"cannot resume: {key} was {then!r} in the checkpoint but is "
                                  f"{now!r} now; use the original settings or a new output folder")
        if fingerprint != self.fingerprint:
            raise ConfigError("cannot resume: the training data differ from the checkpoint's "
                              "(different file, split, scaling or seed); use the original data "
                              "or a new output folder")


def _jsonable(value):
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else list(v)))


def save_checkpoint(path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` atomically (temporary file, fsync, rename)."""
    from safetensors.torch import save
    tensors = {f"state.{k}": v.detach().cpu().contiguous() for k, v in checkpoint.state.items()}
    if checkpoint.mean is not None:
        tensors["mean"] = checkpoint.mean.cpu().contiguous()
        tensors["rotation"] = checkpoint.rotation.cpu().contiguous()
    # history as a float64 table (a JSON header would grow without bound: safetensors caps it)
    columns = list(checkpoint.history[0]) if checkpoint.history else []
    tensors["history"] = torch.tensor([[float(row[c]) for c in columns] for row in checkpoint.history],
                                      dtype=torch.float64).reshape(len(checkpoint.history), len(columns))
    meta = {"format": FORMAT, "version": str(VERSION), "iteration": str(checkpoint.iteration),
            "history_columns": json.dumps(columns),
            "params": json.dumps(_jsonable(checkpoint.params)),
            "fingerprint": checkpoint.fingerprint}
    atomic_write_bytes(path, save(tensors, metadata=meta))


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, validating it."""
    from safetensors import SafetensorError, safe_open
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise ModelFileError(f"checkpoint {path} not found; run with --checkpoint-every first") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"checkpoint {path} is truncated or not a safetensors file "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                             f"delete it to start over") from None
    if meta.get("format") != FORMAT or meta.get("version") != str(VERSION):
        raise ModelFileError(f"{path} is not an autoencode checkpoint of version {VERSION}")
    try:
        iteration = int(meta["iteration"])
        columns = json.loads(meta["history_columns"])
        table = tensors["history"].tolist()
        history = [{c: int(v) if c == "iteration" else v for c, v in zip(columns, row)}
                   for row in table]
        params = json.loads(meta["params"])
        fingerprint = str(meta["fingerprint"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"checkpoint {path} has damaged metadata ({exc}); delete it to "
                             f"start over") from None
    state = {k[len("state."):]: v for k, v in tensors.items() if k.startswith("state.")}
    if "theta" not in state or not isinstance(history, list) or not isinstance(params, dict):
        raise ModelFileError(f"checkpoint {path} lacks the training state; delete it to start over")
    return Checkpoint(iteration, state, history, params, fingerprint,
                      tensors.get("mean"), tensors.get("rotation"))
