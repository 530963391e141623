"""The reference backend: every kernel as a readable NumPy transcription of its formula.

One module per family; each kernel has a compiled twin of the same name and
signature in :mod:`refnet._core`.
"""

from .activations import *  # noqa: F403 -- the kernels are this package's namespace
from .activations import __all__ as _activations
from .dropout import *  # noqa: F403
from .dropout import __all__ as _dropout

__all__ = [*_activations, *_dropout]
