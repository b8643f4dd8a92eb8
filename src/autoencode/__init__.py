"""autoencode: AutoencODEs, width-varying neural ODE autoencoders trained as mean-field
optimal control problems through the Pontryagin maximum principle.

The user-facing model is :class:`AutoencODE`; the layers under it (width profiles,
controlled fields, time steppers, the PMP sweep and the training methods) are public for
research use.
"""

from .errors import AutoencodeError, ConfigError, DataError, DivergenceWarning, ModelFileError
from .estimator import AutoencODE
from .fields import Layer, TwoLayer
from .methods import EMSA, SGD, Adam, Method, Shooting
from .pmp import Flow, Problem
from .profile import WidthProfile
from .solvers import EULER, HEUN, RK4, ExplicitRK

__version__ = "0.1.0"

__all__ = [
    "AutoencODE",
    "WidthProfile",
    "Layer",
    "TwoLayer",
    "ExplicitRK",
    "EULER",
    "HEUN",
    "RK4",
    "Flow",
    "Problem",
    "Method",
    "EMSA",
    "Adam",
    "SGD",
    "Shooting",
    "AutoencodeError",
    "ConfigError",
    "DataError",
    "ModelFileError",
    "DivergenceWarning",
    "__version__",
]
