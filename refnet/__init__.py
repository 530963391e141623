"""refnet: the math of "tips for training deep networks", readable and verified.

Every kernel exists twice under one name: a NumPy transcription of its formula
(:mod:`refnet.reference`) and a compiled twin (:mod:`refnet._core`).  The
functions here validate their arguments and run the active backend
(:func:`use_backend`, :func:`set_backend`).  On top of them: layers
(:class:`Dense`, the activation layers, :class:`Dropout`), :class:`Sequential`
networks that train with any optimizer having ``step(params, grads)``, the
optimizers themselves in every major convention (:class:`SGD`,
:class:`Adagrad`, :class:`RMSProp`, :class:`Adam`), losses averaged over the
batch, regularisers, callbacks, :func:`gradcheck` and :mod:`refnet.datasets`.
"""

from . import bayes, datasets, ensemble, experiments, regularizers
from .backend import get_backend, get_num_threads, set_backend, set_num_threads, use_backend
from .callbacks import EarlyStopping, GradientNorms
from .functional import *  # noqa: F403 -- every validated public function
from .functional import __all__ as _functions
from .gradcheck import GradcheckResult, gradcheck
from .layers import Dense, Dropout, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Tanh
from .losses import binary_cross_entropy_with_logits, cross_entropy, mean_squared_error, softmax_cross_entropy
from .network import History, NonFiniteError, Sequential
from .optim import SGD, Adagrad, Adam, Constant, InverseTime, RMSProp, StepDecay

__version__ = "0.1.0"

__all__ = [
    "bayes",
    "datasets",
    "ensemble",
    "experiments",
    "regularizers",
    "get_backend",
    "set_backend",
    "use_backend",
    "get_num_threads",
    "set_num_threads",
    *_functions,
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "mean_squared_error",
    "softmax_cross_entropy",
    "Dense",
    "Dropout",
    "LeakyReLU",
    "Maxout",
    "PReLU",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Sequential",
    "History",
    "NonFiniteError",
    "GradientNorms",
    "EarlyStopping",
    "gradcheck",
    "GradcheckResult",
    "SGD",
    "Adagrad",
    "RMSProp",
    "Adam",
    "Constant",
    "StepDecay",
    "InverseTime",
]
