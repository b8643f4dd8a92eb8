"""Width profile of an AutoencODE: how many state components are active at each time step.

A profile ``widths = (w_0, ..., w_P)`` with ``w_0 = w_P = d`` shrinks to its minimum ``k``
(the latent dimension) and grows back. ``steps_per_width`` says how many explicit time
steps each entry lasts; unrolled, step ``j = 0..K-1`` has width ``w_j``, step size
``h = T / K`` and reads the ``w_{j-1}`` components alive before it (``w_{-1} = d``).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Sequence

from .errors import ConfigError

__all__ = ["WidthProfile", "default_widths"]


def _as_int(value, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ConfigError(f"{what} must be an integer, got {value!r}; pass a whole number") from None


@dataclass(frozen=True)
class WidthProfile:
    """A validated, unrolled width profile.

    Attributes
    ----------
    widths : the profile entries ``(w_0, ..., w_P)``.
    steps : the number of time steps each entry lasts.
    T : final time; ``h = T / K``.
    """

    widths: tuple[int, ...]
    steps: tuple[int, ...]
    T: float

    @classmethod
    def build(cls, widths: Sequence[int], steps_per_width: int | Sequence[int] = 1,
              T: float = 1.0) -> "WidthProfile":
        """Validate user input and return the profile (the one entry point for profiles)."""
        try:
            widths = tuple(_as_int(w, "each width") for w in widths)
        except TypeError:
            raise ConfigError(
                f"widths must be a sequence of integers, got {widths!r}; pass e.g. (64, 32, 8, 32, 64)"
            ) from None
        if len(widths) < 2:
            raise ConfigError(
                f"widths {widths} has {len(widths)} entries, expected at least 2 starting and "
                f"ending at the data dimension; use (d, d) for a constant-width NeurODE"
            )
        d = widths[0]
        if widths[-1] != d:
            raise ConfigError(
                f"widths {widths} start at {d} but end at {widths[-1]}; an autoencoder must end "
                f"at the data dimension it starts from: make the last width {d}"
            )
        for w in widths:
            if not 1 <= w <= d:
                raise ConfigError(
                    f"width {w} in {widths} is outside 1..{d}; every width must be between 1 and "
                    f"the data dimension d={d}"
                )
        k = min(widths)
        first_min = widths.index(k)
        for i in range(first_min):
            if widths[i + 1] > widths[i]:
                raise ConfigError(
                    f"widths {widths} grow from {widths[i]} to {widths[i + 1]} before their minimum "
                    f"{k}; the encoder part must be non-increasing"
                )
        for i in range(first_min, len(widths) - 1):
            if widths[i + 1] < widths[i]:
                raise ConfigError(
                    f"widths {widths} shrink from {widths[i]} to {widths[i + 1]} after their minimum "
                    f"{k}; the decoder part must be non-decreasing"
                )
        if isinstance(steps_per_width, Sequence) and not isinstance(steps_per_width, str):
            steps = tuple(_as_int(s, "each steps_per_width entry") for s in steps_per_width)
            if len(steps) != len(widths):
                raise ConfigError(
                    f"steps_per_width has {len(steps)} entries but widths has {len(widths)}; give "
                    f"one int for all entries or one per width"
                )
        else:
            steps = (_as_int(steps_per_width, "steps_per_width"),) * len(widths)
        for s in steps:
            if s < 1:
                raise ConfigError(
                    f"steps_per_width contains {s}; every width must last at least 1 time step"
                )
        try:
            T = float(T)
        except (TypeError, ValueError):
            raise ConfigError(f"T must be a positive number, got {T!r}") from None
        if not T > 0 or T == float("inf"):
            raise ConfigError(f"T must be a positive finite number, got {T}; pass e.g. T=4.0")
        return cls(widths, steps, T)

    @property
    def d(self) -> int:
        """Data dimension ``w_0 = w_P``."""
        return self.widths[0]

    @property
    def k(self) -> int:
        """Latent dimension: the minimum width."""
        return min(self.widths)

    @property
    def step_widths(self) -> tuple[int, ...]:
        """Output width ``w_j`` of each step ``j = 0..K-1``."""
        return tuple(w for w, s in zip(self.widths, self.steps) for _ in range(s))

    @property
    def input_widths(self) -> tuple[int, ...]:
        """Input width ``w_{j-1}`` of each step (``w_{-1} = d``)."""
        return (self.d,) + self.step_widths[:-1]

    @property
    def K(self) -> int:
        """Total number of time steps."""
        return sum(self.steps)

    @property
    def h(self) -> float:
        """Step size ``T / K``."""
        return self.T / self.K

    @property
    def bottleneck_step(self) -> int:
        """``j*``: the last step of width ``k``; the latent code is ``x_{j*+1}``."""
        widths = self.step_widths
        return max(j for j, w in enumerate(widths) if w == self.k)

    def times(self) -> tuple[float, ...]:
        """Grid ``t_j = j h`` for ``j = 0..K``."""
        return tuple(j * self.h for j in range(self.K + 1))


def default_widths(d: int, latent: int) -> tuple[int, ...]:
    """A symmetric profile that halves ``d`` down to ``latent`` and grows back.

    ``default_widths(64, 8) == (64, 32, 16, 8, 16, 32, 64)``.
    """
    if not 1 <= latent <= d:
        raise ConfigError(f"latent dimension {latent} is outside 1..{d} (the data dimension); "
                          f"choose a latent size between 1 and {d}")
    encoder = [d]
    while encoder[-1] // 2 > latent:
        encoder.append(encoder[-1] // 2)
    if encoder[-1] != latent:
        encoder.append(latent)
    if len(encoder) == 1:
        return (d, d)
    return tuple(encoder + encoder[-2::-1])
