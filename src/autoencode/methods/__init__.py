"""Training methods: strategy objects with ``init(problem, theta)`` and ``update(problem, state)``."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Method
from .emsa import EMSA
from .gradient import SGD, Adam
from .shooting import Shooting

__all__ = ["Method", "EMSA", "Adam", "SGD", "Shooting", "METHODS", "make_method"]

METHODS = {m.name: m for m in (EMSA, Adam, SGD, Shooting)}


def make_method(method, **options) -> Method:
    """A method from its name (``emsa``, ``adam``, ``sgd``, ``shooting``) and options."""
    if isinstance(method, Method):
        return method
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    try:
        return METHODS[method](**options)
    except TypeError as exc:
        raise ConfigError(f"bad options {options!r} for method {method!r}: {exc}") from None
