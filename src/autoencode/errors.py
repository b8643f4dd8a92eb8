"""Errors raised at the entry points.

Every user error is a :class:`ValueError` subclass whose one-line message names the value
received, what was expected and how to fix it.
"""

__all__ = ["AutoencodeError", "ConfigError", "DataError", "ModelFileError", "DivergenceWarning"]


class AutoencodeError(ValueError):
    """Base class of the library's user errors."""


class ConfigError(AutoencodeError):
    """A hyperparameter, width profile or option is invalid."""


class DataError(AutoencodeError):
    """Input data is missing, malformed, non-finite or of the wrong shape."""


class ModelFileError(AutoencodeError):
    """A saved model is truncated, tampered with or not an autoencode model."""


class DivergenceWarning(RuntimeWarning):
    """Training produced a non-finite objective and stopped at the last good controls."""
