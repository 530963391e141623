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

Each kernel carries the one copy of its accuracy bound per dtype (against the
exact value; ``tests/test_accuracy.py`` and the README's accuracy table read it)
and of its twin tolerance per dtype (compiled against reference; the tests and
``refnet verify`` read it), both as :mod:`~refnet.testing.tolerances` objects.
"""

import dataclasses

from .. import _verify
from .tolerances import Exact, Ulp
from ..layers import Dense, Dropout, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Tanh
from ..optim import SGD, Adagrad, Adam, RMSProp

__all__ = ["CORRECTLY_ROUNDED", "Kink", "Kernel", "LayerSpec", "OptimizerSpec", "KERNELS", "LAYERS", "OPTIMIZERS",
           "CLAIMS", "kernel"]


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
    #: dtype name -> largest error against the exact value (an extended-precision oracle), for
    #: the kernels whose accuracy is proven and measured; empty for the others.
    accuracy: dict = dataclasses.field(default_factory=dict)
    #: dtype name -> largest distance between the compiled kernel and its reference, where
    #: it does not depend on the input's shape; empty where the test derives it from the shape.
    twin: dict = dataclasses.field(default_factory=dict)


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
    """A public optimizer class: the conformance family it implements, configurations to check
    against the textbook, and the kernel paths to check its compiled twin along."""

    cls: type
    family: str
    configurations: tuple
    #: Constructor arguments covering every path of the compiled kernel (each convention,
    #: every structural variant and regularisation term), for the compiled-versus-reference tests.
    kernel_paths: tuple = ()


_RELU_KINK = Kink(0.0, 0.0, "relu'(0) = 0, as PyTorch, scikit-learn, jax.nn.relu and the lecture")
# Leaky ReLU's derivative at 0 is the slope α (PyTorch); 0.01 is the default slope.
_LEAKY_KINK = Kink(0.0, 0.01, "leaky_relu'(0) = α, as PyTorch")
_MAXOUT_TIE = Kink(0.0, 0.0, "ties go to the lowest index: Maxout over [0, z] has derivative 0 at z = 0")


#: The float32 accuracy of the transcendental kernels: computed in double and rounded once, within
#: half an ulp of the exact value plus twice the double computation's error (<= 2^-49 relative,
#: proven in refnet/_vmath.h: ~2^-24 of a float32 ulp; checked on all 2^32 inputs by
#: tests/exhaustive_float32.py).
CORRECTLY_ROUNDED = Ulp(0.5 + 2.0**-20)

# float64 bounds in ulp, proven in tests/test_accuracy.py from each formula's operations.
_FLOAT64_BOUND = {"sigmoid": 5, "sigmoid_derivative": 9.5, "tanh": 3.5, "tanh_derivative": 8}
_ACCURACY = {name: {"float64": Ulp(bound), "float32": CORRECTLY_ROUNDED} for name, bound in _FLOAT64_BOUND.items()}
_EXACT = {"float64": Exact(), "float32": Exact()}
_TWIN = {
    # Each backend within its bound of the exact value, so within twice it of the other; in
    # float32 both round one double-precision value: at most one ulp apart.
    **{name: {"float64": Ulp(2 * bound), "float32": Ulp(1)} for name, bound in _FLOAT64_BOUND.items()},
    # g * f'(z) in double, rounded once: both backends' f' bounds plus 1 for the product.
    "sigmoid_backward": {"float64": Ulp(2 * _FLOAT64_BOUND["sigmoid_derivative"] + 1), "float32": Ulp(1)},
    "tanh_backward": {"float64": Ulp(2 * _FLOAT64_BOUND["tanh_derivative"] + 1), "float32": Ulp(1)},
    # Selections and one rounded product: no room for the backends to differ.
    **{name: _EXACT for name in ["relu", "relu_derivative", "relu_backward", "leaky_relu", "leaky_relu_derivative",
                                 "leaky_relu_backward", "prelu", "maxout", "maxout_backward"]},
}


def _kernels(family, names, kinks=None, conformance=None):
    kinks, conformance = kinks or {}, conformance or {}
    return tuple(Kernel(name, family, kinks.get(name, ()), conformance.get(name), _ACCURACY.get(name, {}),
                        _TWIN.get(name, {})) for name in names)


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
    OptimizerSpec(SGD, "sgd", (dict(lr=0.1), dict(lr=0.1, momentum=0.9)), (
        dict(convention="lee"),
        dict(momentum=0.9, convention="lee", weight_decay=0.01, l1=0.001),
        dict(momentum=0.9, nesterov=True, weight_decay=0.01),
        dict(momentum=0.5, nesterov=True, weight_decay=0.01, convention="keras"),
    )),
    OptimizerSpec(Adagrad, "adagrad", (dict(lr=0.1),), (
        dict(convention="lee", l1=0.001),
        dict(weight_decay=0.1),
        dict(weight_decay=0.1, convention="keras"),
    )),
    OptimizerSpec(RMSProp, "rmsprop", (dict(lr=0.01), dict(lr=0.01, momentum=0.5)), (
        dict(convention="lee"),
        dict(momentum=0.9, convention="lee", weight_decay=0.01),
        dict(momentum=0.9, centered=True, weight_decay=0.01),
        dict(centered=True, convention="keras", weight_decay=0.01),
        dict(momentum=0.5, convention="keras", l1=0.01),
        dict(momentum=0.5, initial_average="first", eps_in_sqrt=True),
    )),
    OptimizerSpec(Adam, "adam", (dict(lr=1e-3), dict(lr=1e-3, weight_decay=0.1)), (
        dict(convention="lee"),
        dict(weight_decay=0.1, l1=0.001),
        dict(weight_decay=0.1, decoupled=True),
        dict(weight_decay=0.1, convention="keras"),
        dict(bias_correction=False, eps=1e-12),
    )),
)

CLAIMS = _verify.CLAIMS


def kernel(name):
    """The spec of the kernel called ``name``."""
    return next(spec for spec in KERNELS if spec.name == name)
