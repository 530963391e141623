"""refnet: the math of "tips for training deep networks", readable and verified.

Every kernel exists twice under one name: a NumPy transcription of its formula
(:mod:`refnet.reference`) and a compiled twin (:mod:`refnet._core`).  The
functions here validate their arguments and run the active backend
(:func:`use_backend`, :func:`set_backend`).
"""

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
from .optim import SGD, Adagrad, Adam, Constant, InverseTime, RMSProp, StepDecay

__version__ = "0.1.0"

__all__ = [
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
    "SGD",
    "Adagrad",
    "RMSProp",
    "Adam",
    "Constant",
    "StepDecay",
    "InverseTime",
]
