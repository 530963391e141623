"""refnet: the math of "tips for training deep networks", readable and verified.

Every kernel exists twice under one name: a NumPy transcription of its formula
(:mod:`refnet.reference`) and a compiled twin (:mod:`refnet._core`).  The
functions here validate their arguments and run the active backend
(:func:`use_backend`, :func:`set_backend`).  On top of them: layers
(:class:`Dense`, the activation layers), :class:`Sequential` networks that
train with any optimizer having ``step(params, grads)``, losses averaged over
the batch, :func:`gradcheck`, and :mod:`refnet.datasets`.
"""

from . import bayes, datasets
from .backend import get_backend, set_backend, use_backend
from .functional import (
    leaky_relu,
    leaky_relu_backward,
    leaky_relu_derivative,
    maxout,
    maxout_backward,
    prelu,
    prelu_backward,
    relu,
    relu_backward,
    relu_derivative,
    sigmoid,
    sigmoid_backward,
    sigmoid_derivative,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
    tanh_derivative,
)
from .functional import dense, dense_backward, dropout, dropout_backward
from .gradcheck import GradcheckResult, gradcheck
from .layers import Dense, Dropout, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Tanh
from .losses import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    mean_squared_error,
    softmax_cross_entropy,
)
from .callbacks import EarlyStopping, GradientNorms
from .network import History, Sequential

__version__ = "0.1.0"

__all__ = [
    "bayes",
    "datasets",
    "get_backend",
    "set_backend",
    "use_backend",
    "leaky_relu",
    "leaky_relu_backward",
    "leaky_relu_derivative",
    "maxout",
    "maxout_backward",
    "prelu",
    "prelu_backward",
    "relu",
    "relu_backward",
    "relu_derivative",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_derivative",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_backward",
    "tanh_derivative",
    "dense",
    "dense_backward",
    "dropout",
    "dropout_backward",
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
    "GradientNorms",
    "EarlyStopping",
    "gradcheck",
    "GradcheckResult",
]
