"""Progress reporting during training: a bar on a terminal, log lines otherwise, or nothing."""

from __future__ import annotations

import math
import sys
import time

__all__ = ["Progress"]


def _fmt(metrics: dict) -> dict:
    out = {"J": f"{metrics['J']:.4g}", "mse": f"{metrics['mse']:.4g}",
           "res": f"{metrics['residual']:.2e}"}
    if not math.isnan(metrics.get("rho", math.nan)):
        out["rho"] = f"{metrics['rho']:.3g}"
    return out


class Progress:
    """Show iteration, J, MSE, PMP residual and ρ.

    ``mode``: ``"auto"`` (a tqdm bar when stderr is a terminal, else a log line every
    ``log_every`` seconds), ``"bar"``, ``"log"`` or ``"quiet"``.
    """

    def __init__(self, total: int, desc: str = "train", mode: str = "auto",
                 log_every: float = 5.0, stream=None):
        self.stream = sys.stderr if stream is None else stream
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "log"
        self.mode, self.total, self.desc, self.log_every = mode, total, desc, log_every
        self._last = -math.inf
        self._bar = None
        if mode == "bar":
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, desc=desc, file=self.stream, leave=False)

    def update(self, iteration: int, metrics: dict) -> None:
        if self.mode == "bar":
            self._bar.set_postfix(_fmt(metrics), refresh=False)
            self._bar.update(iteration - self._bar.n)
        elif self.mode == "log":
            now = time.monotonic()
            if now - self._last >= self.log_every or iteration == self.total:
                self._last = now
                fields = " ".join(f"{k}={v}" for k, v in _fmt(metrics).items())
                print(f"{self.desc}: iteration {iteration}/{self.total} {fields}",
                      file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
