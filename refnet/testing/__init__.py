"""refnet.testing: check refnet, and your own optimizer, activation or dropout, against the lecture's conventions.

The conformance kit (NumPy only; PyTorch optimizers through :mod:`refnet.testing.adapters`):

* :func:`check_optimizer` -- SGD (momentum, Nesterov, dampening), Adagrad, RMSProp
  (centered, Nesterov, bias correction), Adam, AdamW, AMSGrad, NAdam, with or without
  gradient clipping, in Lee's, PyTorch's, Keras' or optax's convention;
* :func:`check_activation` -- sigmoid, tanh, ReLU, Leaky ReLU and their derivatives, kinks included;
* :func:`check_dropout` -- inverted or scale-at-test dropout;
* :func:`parametrize_with_checks` -- the checks as one pytest parametrisation.

Each compares the user's code with a textbook transcription and, on a
difference, raises :class:`ConformanceError` (an ``AssertionError``) naming the
first step and element that differ and the known variant the code follows.

Also :mod:`refnet.testing.strategies` (Hypothesis strategies for float arrays;
needs the ``testing`` extra) and :mod:`refnet.testing.tolerances` (exact, ulp and
relative comparisons with a report of the worst element).
"""

from .activations import check_activation
from .conformance import ConformanceError, parametrize_with_checks
from .dropout import check_dropout
from .optimizers import check_optimizer

__all__ = ["check_optimizer", "check_activation", "check_dropout", "ConformanceError", "parametrize_with_checks"]
