"""The reference backend: every kernel as a readable NumPy transcription of its formula.

One module per family; each kernel has a compiled twin of the same name and
signature in :mod:`refnet._core`.
"""

from .activations import *  # noqa: F403 -- the kernels are this package's namespace
from .activations import __all__ as _activations
from .optimizers import *  # noqa: F403
from .optimizers import __all__ as _optimizers

__all__ = list(_activations) + list(_optimizers)
