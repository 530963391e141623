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
import math

import numpy as np

from .. import _verify
from .tolerances import UNIT_ROUNDOFF, Exact, Relative, Ulp
from ..layers import Dense, Dropout, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Tanh
from ..optim import SGD, Adagrad, Adam, RMSProp

__all__ = ["CORRECTLY_ROUNDED", "Kink", "Kernel", "LayerSpec", "OptimizerSpec", "KERNELS", "LAYERS", "OPTIMIZERS",
           "CLAIMS", "kernel", "sigmoid_product_tolerance", "sigmoid_symmetry_tolerance"]


@dataclasses.dataclass(frozen=True)
class Kink:
    """A point where a function is not differentiable, and the derivative refnet takes there.

    Parameters
    ----------
    at : float
        The input where the function is not differentiable.
    derivative : float
        The derivative refnet takes there.
    rule : str
        The choice in words, and whose convention it follows.
    """

    at: float
    derivative: float
    rule: str


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One reference kernel (``refnet.reference.<name>``, twin ``refnet._core.<name>``).

    Parameters
    ----------
    name : str
        The kernel's name in :mod:`refnet.reference` and :mod:`refnet._core`.
    family : str
        The module of :mod:`refnet.reference` it lives in (``"activations"``, ``"dense"``,
        ``"dropout"``, ``"losses"``, ``"optimizers"``).
    kinks : tuple of Kink, default ()
        Its points of non-differentiability, with the derivative taken at each.
    conformance : str, optional
        The :func:`~refnet.testing.check_activation` name that checks its public function;
        ``None`` if none does.
    accuracy : dict of str -> tolerance, default empty
        dtype name -> largest error against the exact value (an extended-precision oracle), for
        the kernels whose accuracy is proven and measured; empty for the others.
    twin : dict of str -> tolerance or callable, default empty
        dtype name -> largest distance between the compiled kernel and its reference, or, where
        it depends on the arguments (a sum along a row), a function of the kernel's arguments (a
        dict as :meth:`arguments` draws them) returning it, documented by its first line; empty
        where the spec has none.  :meth:`twin_tolerance` gives it for given arguments.
    inputs : str, optional
        The name of the function in :mod:`refnet.testing.strategies` drawing valid arguments
        of this kernel; :meth:`arguments` calls it.
    """

    name: str
    family: str
    kinks: tuple = ()
    conformance: str = None
    accuracy: dict = dataclasses.field(default_factory=dict)
    twin: dict = dataclasses.field(default_factory=dict)
    inputs: str = None

    def arguments(self):
        """A Hypothesis strategy of valid keyword arguments of this kernel, output buffers
        included (needs Hypothesis)."""
        from . import strategies

        return getattr(strategies, self.inputs)(self.name)

    def twin_tolerance(self, args):
        """The twin tolerance on the keyword arguments ``args``: one tolerance for every
        returned array, or a tuple of one per returned array; ``None`` if the spec has none."""
        if not self.twin:
            return None
        floating = next(v for v in args.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f")
        tolerance = self.twin[floating.dtype.name]
        return tolerance(args) if callable(tolerance) else tolerance


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """A public layer class, the kernels its passes run, and a small instance to check.

    Parameters
    ----------
    cls : type
        The layer class.
    kernels : tuple of str
        The names of the reference kernels its forward and backward passes run.
    example : callable
        ``example()`` returns a fresh small float64 instance of ``cls``.
    n_in : int
        The width of the example's input.
    """

    cls: type
    kernels: tuple
    example: object
    n_in: int


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """A public optimizer class: the conformance family it implements, configurations to check
    against the textbook, and the kernel paths to check its compiled twin along.

    Parameters
    ----------
    cls : type
        The optimizer class.
    family : str
        The :func:`~refnet.testing.check_optimizer` family it implements (a key of
        :data:`refnet.testing.optimizers.CONVENTIONS`).
    configurations : tuple of dict
        Hyper-parameters to check against the textbook in every convention, each given both to
        ``cls`` (with the ``convention``) and to :func:`~refnet.testing.check_optimizer`.
    kernel_paths : tuple of dict, default ()
        Constructor arguments covering every path of the compiled kernel (each convention,
        every structural variant and regularisation term), for the compiled-versus-reference tests.
    """

    cls: type
    family: str
    configurations: tuple
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


# The twins of the kernels that sum along a row differ by the order of the sum: NumPy sums
# pairwise (or sequentially), the compiled kernels sequentially, each within (n - 1) u of
# sum |terms| of the exact sum for n terms.  As functions of the arguments, with the shapes
# the public functions give (rows along the last axis).

def _softmax_twin(args):
    """n + 2 ulp, n the row's width"""
    # The row sum errs by (n - 1) u on each backend; exp and the division round once each.  In
    # float32 both backends round one double-precision value: 1 ulp apart.
    return Ulp(args["z"].shape[-1] + 2)


def _softmax_backward_twin(args):
    """2 u relative + 2 (n + 2) u64 s (|g| + sum |g| s) for output s, gradient g"""
    # Both compute in double s * (g - d) with the row sum d = sum g s (n u |g| s per term on
    # each backend), then round once to the dtype (2 u of the result between the two).
    g, s = args["grad_output"].astype(np.float64), args["output"].astype(np.float64)
    dtype = args["output"].dtype
    scale = s * (np.abs(g) + (np.abs(g) * s).sum(axis=-1, keepdims=True))
    atol = 2 * (g.shape[-1] + 2) * UNIT_ROUNDOFF[np.dtype(np.float64)] * scale + np.finfo(dtype).smallest_subnormal
    return Relative(rtol=2 * UNIT_ROUNDOFF[dtype], atol=atol)


def _prelu_backward_twin(args):
    """input's gradient exact; slope's within 2 m u sum |terms| over m rows"""
    # The input's gradient is a selection and one rounded product.  The slope's gradient sums
    # g z over the rows in the dtype: each backend within (m - 1) u of the sum of |g z|.
    z, grad = args["z"], args["grad_output"]
    terms = np.where(z > 0, 0, grad.astype(np.float64) * z).reshape(int(np.prod(z.shape[:-1])), z.shape[-1])
    return Exact(), Relative(rtol=0, atol=2 * terms.shape[0] * UNIT_ROUNDOFF[z.dtype] * np.abs(terms).sum(axis=0))


_TWIN.update(softmax={"float64": _softmax_twin, "float32": Ulp(1)},
             **{name: dict.fromkeys(["float64", "float32"], function) for name, function in [
                 ("softmax_backward", _softmax_backward_twin), ("prelu_backward", _prelu_backward_twin)]})


def _kernels(family, names, inputs, kinks=None, conformance=None):
    """Specs of ``names``; ``inputs`` is the name of their strategy, or a dict name -> strategy."""
    kinks, conformance = kinks or {}, conformance or {}
    inputs = inputs if isinstance(inputs, dict) else dict.fromkeys(names, inputs)
    return tuple(Kernel(name, family, kinks.get(name, ()), conformance.get(name), _ACCURACY.get(name, {}),
                        _TWIN.get(name, {}), inputs[name]) for name in names)


_ELEMENTWISE = ["sigmoid", "sigmoid_derivative", "sigmoid_backward", "tanh", "tanh_derivative", "tanh_backward",
                "relu", "relu_derivative", "relu_backward", "leaky_relu", "leaky_relu_derivative",
                "leaky_relu_backward"]


KERNELS = (
    *_kernels("activations", [
        *_ELEMENTWISE, "prelu", "prelu_backward", "softmax", "softmax_backward", "maxout", "maxout_backward",
    ], {**dict.fromkeys(_ELEMENTWISE, "elementwise_arguments"),
        **{name: f"{name.split('_')[0]}_arguments" for name in ["prelu", "prelu_backward", "softmax",
                                                               "softmax_backward", "maxout", "maxout_backward"]}},
        kinks={
        "relu_derivative": (_RELU_KINK,), "relu_backward": (_RELU_KINK,),
        "leaky_relu_derivative": (_LEAKY_KINK,), "leaky_relu_backward": (_LEAKY_KINK,),
        "maxout_backward": (_MAXOUT_TIE,),
    }, conformance={name: name for name in [
        "sigmoid", "sigmoid_derivative", "tanh", "tanh_derivative", "relu", "relu_derivative",
        "leaky_relu", "leaky_relu_derivative",
    ]}),
    *_kernels("dense", ["dense_forward", "dense_backward"], "dense_arguments"),
    *_kernels("dropout", ["dropout_forward", "dropout_backward"], "dropout_arguments"),
    *_kernels("losses", ["softmax_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
                         "mean_squared_error"], "loss_arguments"),
    *_kernels("optimizers", ["sgd", "sgd_momentum", "rmsprop", "adam"], "optimizer_arguments"),
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
        dict(momentum=0.9, dampening=0.5, weight_decay=0.01),
        dict(momentum=0.5, dampening=0.1, convention="keras", l1=0.001, maximize=True),
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
        # optax's options: Nesterov momentum (on the root state too) and bias correction.
        dict(momentum=0.9, nesterov=True, weight_decay=0.01),
        dict(momentum=0.9, nesterov=True, lr_in_momentum=True, eps_in_sqrt=True, bias_correction=True),
        dict(bias_correction=True, centered=True, l1=0.01),
        dict(bias_correction=True, convention="keras"),
        dict(momentum=0.5, nesterov=True, centered=True, bias_correction=True, convention="keras"),
        dict(momentum=0.5, nesterov=True, root_state=True, eps=0.0, l1=0.01),
    )),
    OptimizerSpec(Adam, "adam", (dict(lr=1e-3), dict(lr=1e-3, weight_decay=0.1)), (
        dict(convention="lee"),
        dict(weight_decay=0.1, l1=0.001),
        dict(weight_decay=0.1, decoupled=True),
        dict(weight_decay=0.1, convention="keras"),
        dict(bias_correction=False, eps=1e-12),
        # The other libraries' options: each structural variant of the compiled loop (penalty, v
        # corrected before the root, AMSGrad of v or of the corrected v, Nesterov) once, the two
        # corrections switched apart, eps_hat, AMSGrad and NAdam in each convention's form.
        dict(eps_in_sqrt=True, bias_correction=(True, False)),
        dict(eps_root=1e-10, eps=0.0, bias_correction=(False, True), weight_decay=0.1),
        dict(amsgrad=True, weight_decay=0.1, l1=0.001),
        dict(amsgrad=True, convention="keras"),
        dict(amsgrad=True, eps_root=1e-8),
        dict(amsgrad=True, eps_in_sqrt=True, l1=0.001),
        dict(amsgrad="corrected", eps_root=1e-8, weight_decay=0.1, decoupled=True),
        dict(amsgrad="corrected", bias_correction=(True, False), l1=0.001),
        dict(nesterov=True),
        dict(nesterov=True, convention="keras", bias_correction=(False, True), l1=0.001),
        dict(nesterov=True, eps_hat=True, amsgrad=True, bias_correction=False),
        dict(nesterov=True, momentum_decay=math.inf, weight_decay=0.1, amsgrad=True),
        dict(nesterov=True, amsgrad="corrected", eps_root=1e-8),
        dict(nesterov=True, amsgrad="corrected", weight_decay=0.1),
    )),
)

CLAIMS = _verify.CLAIMS


# Tolerances of identities between kernels, derived once from the accuracy bounds above.  In
# units of u, the unit roundoff of the dtype: the ulp of a value in [2^e, 2^(e+1)) is 2u 2^e,
# so u for a value in [1/2, 1), at most u/2 below 1/2 and u/4 in [1/8, 1/4).

def _bound(name, dtype):
    return kernel(name).accuracy[np.dtype(dtype).name].maxulp


def sigmoid_product_tolerance(dtype):
    """Largest ``|sigmoid_derivative(z) - s (1 - s)|``, ``s = sigmoid(z)``, with ``s (1 - s)``
    computed in ``dtype``, as a multiple of ``dtype``'s unit roundoff ``u``.

    σ'(z) lies in (0, 1/4) (exactly 1/4 only at z = 0, where it is exact): its error is at most
    its bound times u/4.  s is within its bound times u (s < 1); s (1 - s) moves by
    the absolute value of 1 - 2s (at most 1) times that.  1 - s is exact for s >= 1/2 (Sterbenz) and rounded by at most
    s u/2 <= u/4 below; the product, below 1/4, by u/8.

    Parameters
    ----------
    dtype : float32 or float64
        The dtype of ``z`` and of the kernels' results.

    Returns
    -------
    float
        The bound, in units of ``u``.
    """
    return _bound("sigmoid_derivative", dtype) / 4 + _bound("sigmoid", dtype) + 3 / 8


def sigmoid_symmetry_tolerance(dtype):
    """Largest ``|sigmoid(-z) - (1 - sigmoid(z))|``, ``1 - sigmoid(z)`` computed in float64,
    as a multiple of ``dtype``'s unit roundoff ``u``.

    Of σ(z) and σ(-z) one is at least 1/2 (error at most its bound times u), the other at most
    1/2 (its bound times u/2); 1 - s in float64 is exact for s >= 1/2 and rounded by at most
    2^-54 otherwise (a fraction 2^-54 / u of ``dtype``'s u).

    Parameters
    ----------
    dtype : float32 or float64
        The dtype of ``z`` and of the kernel's results.

    Returns
    -------
    float
        The bound, in units of ``u``.
    """
    return 1.5 * _bound("sigmoid", dtype) + 2.0**-54 / UNIT_ROUNDOFF[np.dtype(dtype)]


def kernel(name):
    """The spec of the kernel called ``name``.

    Parameters
    ----------
    name : str
        A kernel's name, as in :data:`KERNELS`.

    Returns
    -------
    Kernel
        Its spec.

    Raises
    ------
    StopIteration
        No kernel has that name.
    """
    return next(spec for spec in KERNELS if spec.name == name)
