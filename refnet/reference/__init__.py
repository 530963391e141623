"""The reference backend: every kernel as a readable NumPy transcription of its formula.

One module per family; each kernel has a compiled twin of the same name and
signature in :mod:`refnet._core`.

Each kernel here runs under ``np.errstate(all="ignore")``: like its compiled
twin it returns the IEEE result (an underflow to 0, an overflow to inf, a NaN)
whatever floating-point error state the caller has set, so that
``np.errstate(all="raise")`` makes neither backend raise.
"""

import functools

import numpy as np

from .activations import *  # noqa: F403 -- the kernels are this package's namespace
from .activations import __all__ as _activations
from .dense import *  # noqa: F403
from .dense import __all__ as _dense
from .dropout import *  # noqa: F403
from .dropout import __all__ as _dropout
from .losses import *  # noqa: F403
from .losses import __all__ as _losses
from .optimizers import *  # noqa: F403
from .optimizers import __all__ as _optimizers

__all__ = [
    *_activations,
    *(name for name in _dense if name != "DENSE_ACTIVATIONS"),
    *_dropout,
    *_losses,
    *_optimizers,
]


def _ieee(kernel):
    @functools.wraps(kernel)
    def run(*args):
        with np.errstate(all="ignore"):
            return kernel(*args)
    return run


globals().update({name: _ieee(globals()[name]) for name in __all__})
