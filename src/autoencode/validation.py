"""Checks of hyperparameters at the entry points, each failing with a one-line ConfigError."""

from __future__ import annotations

import math
import numbers

from .errors import ConfigError

__all__ = ["number", "integer", "choice"]


def number(value, name: str, low: float = -math.inf, high: float = math.inf, *,
           low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number in the interval ``[low, high]`` (ends open on request)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if value < low or (low_open and value == low) or value > high or (high_open and value == high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{name} must be in {interval}, got {value!r}")
    return value


def integer(value, name: str, low: int = 0) -> int:
    """An integer ``>= low`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def choice(value, name: str, options) -> str:
    """One of ``options``."""
    if value not in options:
        raise ConfigError(f"unknown {name} {value!r}; expected one of {', '.join(map(str, options))}")
    return value
