"""The reference backend: every kernel as a readable NumPy transcription of its formula.

One module per family; each kernel has a compiled twin of the same name and
signature in :mod:`refnet._core`.
"""

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
