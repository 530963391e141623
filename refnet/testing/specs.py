"""Specification tables: what refnet implements, written once as plain data for tests to loop over.

Specs describe; the kernels stay where they are.  Three tables:

* :data:`KERNELS` -- every reference kernel (each has a compiled twin of the
  same name in :mod:`refnet._core`): its family (the module of
  :mod:`refnet.reference` it lives in), its kinks with the derivative chosen
  there, and the :func:`~refnet.testing.check_activation` name that checks its
  public function, if any;
* :data:`LAYERS` -- every public layer class, the kernels its passes run, a
  small float64 instance to check, and the width of its input;
* :data:`OPTIMIZERS` -- every public optimizer class, the
  :func:`~refnet.testing.check_optimizer` family it implements, and
  configurations to check in every convention;
* :data:`CLAIMS` -- the lecture's identities behind ``refnet verify`` (id,
  statement, a function measuring it), the table of :mod:`refnet._verify`.

Not here yet: the twin tolerances and the accuracy bounds, which are still
stated in the tests that use them (``tests/test_activations.py``,
``tests/test_accuracy.py``).
"""

import dataclasses

from .. import _verify
from ..layers import Dense, Dropout, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Tanh
from ..optim import SGD, Adagrad, Adam, RMSProp

__all__ = ["Kink", "Kernel", "LayerSpec", "OptimizerSpec", "KERNELS", "LAYERS", "OPTIMIZERS", "CLAIMS"]


@dataclasses.dataclass(frozen=True)
class Kink:
    """A point where a function is not differentiable, and the derivative refnet takes there."""

    at: float
    derivative: float
    rule: str


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One reference kernel (``refnet.reference.<name>``, twin ``refnet._core.<name>``)."""

    name: str
    family: str
    kinks: tuple = ()
    conformance: str = None


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """A public layer class: the kernels its forward and backward passes run, and a small
    float64 instance (``example()``, a fresh one per call) taking inputs of width ``n_in``."""

    cls: type
    kernels: tuple
    example: object
    n_in: int


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """A public optimizer class: the conformance family it implements, and configurations to check."""

    cls: type
    family: str
    configurations: tuple


_RELU_KINK = Kink(0.0, 0.0, "relu'(0) = 0, as PyTorch, scikit-learn, jax.nn.relu and the lecture")
# Leaky ReLU's derivative at 0 is the slope α (PyTorch); 0.01 is the default slope.
_LEAKY_KINK = Kink(0.0, 0.01, "leaky_relu'(0) = α, as PyTorch")
_MAXOUT_TIE = Kink(0.0, 0.0, "ties go to the lowest index: Maxout over [0, z] has derivative 0 at z = 0")


def _kernels(family, names, kinks=None, conformance=None):
    kinks, conformance = kinks or {}, conformance or {}
    return tuple(Kernel(name, family, kinks.get(name, ()), conformance.get(name)) for name in names)


KERNELS = (
    *_kernels("activations", [
        "sigmoid", "sigmoid_derivative", "sigmoid_backward", "tanh", "tanh_derivative", "tanh_backward",
        "relu", "relu_derivative", "relu_backward", "leaky_relu", "leaky_relu_derivative", "leaky_relu_backward",
        "prelu", "prelu_backward", "softmax", "softmax_backward", "maxout", "maxout_backward",
    ], kinks={
        "relu_derivative": (_RELU_KINK,), "relu_backward": (_RELU_KINK,),
        "leaky_relu_derivative": (_LEAKY_KINK,), "leaky_relu_backward": (_LEAKY_KINK,),
        "maxout_backward": (_MAXOUT_TIE,),
    }, conformance={name: name for name in [
        "sigmoid", "sigmoid_derivative", "tanh", "tanh_derivative", "relu", "relu_derivative",
        "leaky_relu", "leaky_relu_derivative",
    ]}),
    *_kernels("dense", ["dense_forward", "dense_backward"]),
    *_kernels("dropout", ["dropout_forward", "dropout_backward"]),
    *_kernels("losses", ["softmax_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
                         "mean_squared_error"]),
    *_kernels("optimizers", ["sgd", "sgd_momentum", "rmsprop", "adam"]),
)

LAYERS = (
    # Glorot initialisation starts the bias at 0, so an input row of zeros puts relu's input at its kink.
    LayerSpec(Dense, ("dense_forward", "dense_backward"), lambda: Dense(4, 3, activation="relu", seed=0), 4),
    LayerSpec(Sigmoid, ("sigmoid", "sigmoid_backward"), Sigmoid, 4),
    LayerSpec(Tanh, ("tanh", "tanh_backward"), Tanh, 4),
    LayerSpec(ReLU, ("relu", "relu_backward"), ReLU, 4),
    LayerSpec(LeakyReLU, ("leaky_relu", "leaky_relu_backward"), LeakyReLU, 4),
    LayerSpec(PReLU, ("prelu", "prelu_backward"), lambda: PReLU(4), 4),
    LayerSpec(Maxout, ("maxout", "maxout_backward"), lambda: Maxout(2), 4),
    LayerSpec(Dropout, ("dropout_forward", "dropout_backward"), lambda: Dropout(0.3, seed=0), 4),
)

OPTIMIZERS = (
    OptimizerSpec(SGD, "sgd", (dict(lr=0.1), dict(lr=0.1, momentum=0.9))),
    OptimizerSpec(Adagrad, "adagrad", (dict(lr=0.1),)),
    OptimizerSpec(RMSProp, "rmsprop", (dict(lr=0.01), dict(lr=0.01, momentum=0.5))),
    OptimizerSpec(Adam, "adam", (dict(lr=1e-3), dict(lr=1e-3, weight_decay=0.1))),
)

CLAIMS = _verify.CLAIMS
