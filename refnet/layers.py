r"""Layers as objects: :class:`Dense` and the activation layers.

A layer has ``forward(x, training=False)``, which keeps what its backward pass
needs, and ``backward(grad_output)``, which returns ∂L/∂(input) and writes the
gradients of its parameters into arrays it owns.  ``parameters()`` and
``gradients()`` are two aligned lists of those *live* arrays (an optimizer
updates the parameters in place and the next backward pass overwrites the
gradients in place), and ``named_parameters()`` names them.

Layers validate their input, then run the active backend's kernel
(:mod:`refnet.backend`), so ``refnet.use_backend("reference")`` runs a whole
network on the readable NumPy formulas.  :class:`Dense` initialises its weights
as Glorot and Bengio [Glorot2010]_ (``init="glorot"``), He et al. [He2015]_
(``"he"``) or Nielsen [Nielsen]_ (``"classic"``).

References
----------
Defined once in the documentation's bibliography (``docs/bibliography.rst``);
the notes here say which part of each source this module follows.

* [Glorot2010] X. Glorot and Y. Bengio, "Understanding the difficulty of
  training deep feedforward neural networks", AISTATS 2010, eq. 16.
* [He2015] K. He et al., "Delving Deep into Rectifiers", ICCV 2015, §2.2.
* [Nielsen] M. Nielsen, *Neural Networks and Deep Learning*, 2015, ch. 3
  ("Weight initialization") and ch. 5 (the vanishing-gradient experiment).
"""

import math
import sys

import numpy as np

from . import _validate, functional
from .backend import active
from .functional import DEFAULT_LEAKY_SLOPE, _dense_activation, _dense_input

__all__ = [
    "INITIALISERS",
    "Layer",
    "Dense",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "Maxout",
    "Dropout",
]


def _classic(rng, n_in, n_out):
    r""":math:`W_{ij} \sim \mathcal N(0, 1/n_{in})`, :math:`b_j \sim \mathcal N(0, 1)` [Nielsen]_."""
    return rng.normal(0.0, 1.0 / math.sqrt(n_in), (n_in, n_out)), rng.normal(0.0, 1.0, n_out)


def _glorot(rng, n_in, n_out):
    r""":math:`W_{ij} \sim U(-r, r)`, :math:`r = \sqrt{6 / (n_{in} + n_{out})}`, :math:`b = 0` [Glorot2010]_."""
    limit = math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, (n_in, n_out)), np.zeros(n_out)


def _he(rng, n_in, n_out):
    r""":math:`W_{ij} \sim \mathcal N(0, 2/n_{in})`, :math:`b = 0` [He2015]_, for ReLU layers."""
    return rng.normal(0.0, math.sqrt(2.0 / n_in), (n_in, n_out)), np.zeros(n_out)


# Weight and bias initialisers by name; each draws in float64 from a Generator,
# so a seed gives the same numbers whatever the layer's dtype.
INITIALISERS = {"classic": _classic, "glorot": _glorot, "he": _he}


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _validate.FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class Layer:
    """Base class: a layer without parameters.  Subclasses define ``forward`` and ``backward``."""

    def parameters(self):
        """The parameter arrays, live (updating them in place updates the layer)."""
        return [array for _, array in self.named_parameters()]

    def gradients(self):
        """The gradient arrays, aligned with :meth:`parameters`; the backward pass overwrites them."""
        return []

    def named_parameters(self):
        """(name, array) pairs, e.g. ``("weight", W)``."""
        return []

    def config(self):
        """The constructor's keyword arguments, as JSON-able values (for saving)."""
        return {}

    def _output_width(self, width):
        """The width of the output for inputs ``width`` wide, or raise ``ValueError`` saying why not.

        None means unknown: ``width`` None gives None where the output's width
        depends on it, and a layer that does not say (a subclass of this one)
        gives None, so nothing after it is checked.  ``Sequential`` chains these
        to check a stack of layers, and its inputs, before any data flows.
        """
        return None

    # What forward keeps for backward.  Inference through Sequential.predict or
    # evaluate (from a callback during fit, say) puts it back afterwards, so the
    # next backward pass sees the training forward it belongs to.
    _BACKWARD_STATE = ("_x", "_z", "_mask")

    def _backward_state(self):
        return {key: self.__dict__[key] for key in self._BACKWARD_STATE if key in self.__dict__}

    def _restore_backward_state(self, state):
        for key in self._BACKWARD_STATE:
            self.__dict__.pop(key, None)
        self.__dict__.update(state)

    # fit's training step.  ``Sequential.fit`` calls these instead of ``forward(x,
    # True)`` and ``backward``: the same kernels and bits, but a layer may write its
    # output and ∂L/∂(input) into work arrays it keeps (see ``_work_array``), since
    # fit reads each only until the next step.  A layer of the user's own needs
    # nothing more: these default to the public methods.
    def _fit_forward(self, x):
        return self.forward(x, True)

    def _fit_backward(self, grad_output, input_gradient):
        return self.backward(grad_output, input_gradient)

    def _work_array(self, name, shape, dtype):
        """A work array of ``shape`` kept between calls (never handed to a caller of the public API).

        The first rows of one kept for the largest batch so far, so an epoch's
        smaller last batch, and the full batches after it, allocate nothing.
        """
        array = self.__dict__.get(name)
        if array is None or array.dtype != dtype or array.shape[1:] != shape[1:] or len(array) < shape[0]:
            array = np.empty(shape, dtype=dtype)
            setattr(self, name, array)
        return array[: shape[0]]

    def _saved(self, attribute):
        if not hasattr(self, attribute):
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return getattr(self, attribute)

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"{type(self).__name__}({arguments})"


class Dense(Layer):
    r"""Fully connected layer :math:`a = f(x W + b)`, with :math:`W` of shape (n_in, n_out).

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    activation : None or str
        An activation fused into the layer's kernel: ``None`` (identity),
        ``"sigmoid"``, ``"tanh"``, ``"relu"`` or ``"leaky_relu"``.  Fusing
        saves a pass over the output; a separate activation layer gives the
        same result.
    slope : float
        Leaky ReLU's slope, when ``activation="leaky_relu"``.
    init : {"glorot", "he", "classic"}
        Glorot/Xavier uniform, He normal (both with zero biases), or the
        classic :math:`\mathcal N(0, 1/n_{in})` weights with :math:`\mathcal N(0, 1)`
        biases of the vanishing-gradient experiments.
    dtype : float32 or float64
    seed : None, int or numpy.random.Generator
        Makes the initial parameters reproducible.

    Attributes
    ----------
    weight, bias : ndarray
        The parameters; ``grad_weight`` and ``grad_bias`` hold their gradients
        after :meth:`backward` (∂L/∂W = xᵀδ, ∂L/∂b = Σ_rows δ).
    """

    def __init__(self, n_in, n_out, *, activation=None, slope=DEFAULT_LEAKY_SLOPE, init="glorot",
                 dtype=np.float64, seed=None):
        self.n_in = _validate.positive_int(n_in, "n_in")
        self.n_out = _validate.positive_int(n_out, "n_out")
        self.activation = _dense_activation(activation)
        if not isinstance(init, str) or init not in INITIALISERS:
            raise ValueError(f"init must be one of {sorted(INITIALISERS)}, got {init!r}")
        self.init = init
        self.dtype = _float_dtype(dtype)
        self.slope = _validate.leaky_slope(slope, dtype=self.dtype)
        if self.n_in * self.n_out > sys.maxsize // self.dtype.itemsize:
            raise ValueError(f"n_in * n_out ({self.n_in} * {self.n_out}) is too large for one array")
        weight, bias = INITIALISERS[init](_validate.generator(seed), self.n_in, self.n_out)
        self.weight = weight.astype(self.dtype)
        self.bias = bias.astype(self.dtype)
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)

    def forward(self, x, training=False):
        """:math:`f(x W + b)` for a batch ``x`` of shape (rows, n_in) and the layer's dtype."""
        x = _dense_input(x, self.weight)
        shape = (x.shape[0], self.n_out)
        if self.activation == "identity":
            z = out = np.empty(shape, dtype=self.dtype)   # z is the output, so it is the caller's
        elif training:
            z, out = self._work_array("_z_work", shape, self.dtype), np.empty(shape, dtype=self.dtype)
        else:   # not into the work array, which holds the z of a training pass not yet back-propagated
            z, out = np.empty(shape, dtype=self.dtype), np.empty(shape, dtype=self.dtype)
        return self._forward(x, z, out)

    def _fit_forward(self, x):
        x = _dense_input(x, self.weight)
        shape = (x.shape[0], self.n_out)
        out = self._work_array("_out_work", shape, self.dtype)
        return self._forward(x, out if self.activation == "identity" else self._work_array("_z_work", shape, self.dtype),
                             out)

    def _forward(self, x, z, out):
        active().dense_forward(x, self.weight, self.bias, self.activation, self.slope, z, out)
        self._x, self._z = x, z
        return out

    def backward(self, grad_output, input_gradient=True):
        """Fill ``grad_weight`` and ``grad_bias``; return ∂L/∂x (``None`` if not ``input_gradient``)."""
        return self._backward(grad_output, np.empty_like(self._saved("_x")) if input_gradient else None)

    def _fit_backward(self, grad_output, input_gradient):
        x = self._saved("_x")
        return self._backward(grad_output, self._work_array("_grad_x_work", x.shape, self.dtype) if input_gradient else None)

    def _backward(self, grad_output, grad_input):
        z = self._saved("_z")
        grad_output = _validate.like(grad_output, "grad_output", self.dtype, z.shape, "the layer's output")
        active().dense_backward(grad_output, self._x, self.weight, z, self.activation, self.slope,
                                self._work_array("_grad_z_work", z.shape, self.dtype), grad_input,
                                self.grad_weight, self.grad_bias)
        return grad_input

    def _output_width(self, width):
        if width is not None and width != self.n_in:
            raise ValueError(f"takes {self.n_in} inputs (n_in), got {width}")
        return self.n_out

    def gradients(self):
        return [self.grad_weight, self.grad_bias]

    def named_parameters(self):
        return [("weight", self.weight), ("bias", self.bias)]

    def config(self):
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.activation,
                "slope": self.slope, "init": self.init, "dtype": self.dtype.name}


class _Activation(Layer):
    """An activation layer: the public function forward, its ``*_backward`` from the saved input."""

    _function = _backward = None
    _argument = None   # the name of the one constructor argument the functions take after x, if any

    def _arguments(self):
        return () if self._argument is None else (getattr(self, self._argument),)

    def _output_width(self, width):
        return width   # elementwise (Maxout overrides)

    def config(self):
        return {} if self._argument is None else {self._argument: getattr(self, self._argument)}

    def forward(self, x, training=False):
        self._x = _validate.float_array(x, "x")
        return type(self)._function(self._x, *self._arguments())

    def backward(self, grad_output, input_gradient=True):
        return type(self)._backward(grad_output, self._saved("_x"), *self._arguments())

    def _fit_forward(self, x):
        self._x = x = _validate.float_array(x, "x")
        shape = x.shape[:-1] + (self._output_width(x.shape[-1]),)
        return type(self)._function(x, *self._arguments(), out=self._work_array("_out_work", shape, x.dtype))

    def _fit_backward(self, grad_output, input_gradient):
        x = self._saved("_x")
        return type(self)._backward(grad_output, x, *self._arguments(),
                                    out=self._work_array("_grad_x_work", x.shape, x.dtype))


class Sigmoid(_Activation):
    r"""Elementwise :math:`\sigma(z) = 1/(1 + e^{-z})` (see :func:`refnet.sigmoid`)."""

    _function, _backward = functional.sigmoid, functional.sigmoid_backward


class Tanh(_Activation):
    r"""Elementwise :math:`\tanh z` (see :func:`refnet.tanh`)."""

    _function, _backward = functional.tanh, functional.tanh_backward


class ReLU(_Activation):
    r"""Elementwise :math:`\max(0, z)`, with ReLU'(0) = 0 (see :func:`refnet.relu`)."""

    _function, _backward = functional.relu, functional.relu_backward


class LeakyReLU(_Activation):
    r"""Elementwise :math:`z` for :math:`z > 0`, else ``slope``·z (see :func:`refnet.leaky_relu`).

    Parameters
    ----------
    slope : float, default 0.01
        The slope for :math:`z \le 0`, fixed (:class:`PReLU` learns it).
    """

    _function, _backward, _argument = functional.leaky_relu, functional.leaky_relu_backward, "slope"

    def __init__(self, slope=DEFAULT_LEAKY_SLOPE):
        self.slope = _validate.leaky_slope(slope)


class Maxout(_Activation):
    """The maximum of each group of ``pieces`` inputs (see :func:`refnet.maxout`); width / pieces outputs.

    Parameters
    ----------
    pieces : int
        Inputs per group; must divide the width of the layer before.
    """

    _function, _backward, _argument = functional.maxout, functional.maxout_backward, "pieces"

    def __init__(self, pieces):
        self.pieces = _validate.positive_int(pieces, "pieces")

    def _output_width(self, width):
        if width is None:
            return None
        if width % self.pieces:
            raise ValueError(f"takes a width divisible by pieces={self.pieces}, got {width}")
        return width // self.pieces


class PReLU(Layer):
    r"""Parametric ReLU with a learned slope :math:`\alpha` (see :func:`refnet.prelu`).

    Parameters
    ----------
    units : None or int
        ``None``: one slope shared by all units; an int: one slope per unit of
        the input's last axis.
    init : float
        Initial slope (0.25 as PyTorch; Keras uses 0).
    dtype : float32 or float64
    """

    def __init__(self, units=None, *, init=0.25, dtype=np.float64):
        self.units = None if units is None else _validate.positive_int(units, "units")
        self.init = _validate.finite_scalar(init, "init")
        self.dtype = _float_dtype(dtype)
        self.slope = np.full(1 if units is None else self.units, self.init, dtype=self.dtype)
        self.grad_slope = np.zeros_like(self.slope)

    def forward(self, x, training=False):
        self._x = _validate.float_array(x, "x")
        return functional.prelu(self._x, self.slope)

    def backward(self, grad_output, input_gradient=True):
        grad_input, _ = functional.prelu_backward(grad_output, self._saved("_x"), self.slope,
                                                  out=(None, self.grad_slope))
        return grad_input

    def _fit_forward(self, x):
        self._x = x = _validate.float_array(x, "x")
        return functional.prelu(x, self.slope, out=self._work_array("_out_work", x.shape, x.dtype))

    def _fit_backward(self, grad_output, input_gradient):
        x = self._saved("_x")
        grad_input, _ = functional.prelu_backward(
            grad_output, x, self.slope, out=(self._work_array("_grad_x_work", x.shape, x.dtype), self.grad_slope))
        return grad_input

    def _output_width(self, width):
        if width is not None and self.units is not None and width != self.units:
            raise ValueError(f"takes {self.units} inputs (units), got {width}")
        return width if self.units is None else self.units

    def gradients(self):
        return [self.grad_slope]

    def named_parameters(self):
        return [("slope", self.slope)]

    def config(self):
        return {"units": self.units, "init": self.init, "dtype": self.dtype.name}


class Dropout(Layer):
    r"""Dropout [Srivastava2014]_: while training, drop each unit with probability ``p``.

    A fresh mask is drawn on every training forward pass (every minibatch) and
    the matching backward pass uses it; nothing is dropped when not training.
    Works on the network's inputs too (as the first layer).

    Parameters
    ----------
    p : float in [0, 1)
        Drop probability; 0 is the identity.
    mode : {"inverted", "scale-at-test"}
        ``"inverted"`` (PyTorch, Keras): kept units are scaled by 1/(1−p)
        while training; the identity at test.  ``"scale-at-test"`` (Lee, the
        original paper): no scaling while training; outputs multiplied by
        (1−p) at test, which equals multiplying the outgoing weights by (1−p).
    seed : None, int or numpy.random.Generator
        The random stream of the masks (see :func:`refnet.dropout` for the rule).

    References
    ----------
    .. [Srivastava2014] N. Srivastava et al., "Dropout: A Simple Way to Prevent
       Neural Networks from Overfitting", JMLR 15, 2014.
    """

    def __init__(self, p, mode="inverted", seed=None):
        self.p, _ = functional._dropout_arguments(p, mode)
        self.mode = mode
        self.rng = _validate.generator(seed)

    @property
    def test_scale(self):
        """What the layer multiplies by when not training: 1 (inverted) or 1 − p (scale-at-test)."""
        return 1.0 if self.mode == "inverted" else 1.0 - self.p

    def forward(self, x, training=False):
        x = _validate.float_array(x, "x")
        if training:
            # The mask array is reused from pass to pass: backward needs only the latest.
            mask = self.__dict__.get("_mask")
            if mask is None or mask.shape != x.shape:
                mask = np.empty(x.shape, dtype=np.bool_)
            out, self._mask = functional.dropout(x, self.p, self.rng, mode=self.mode, out=(None, mask))
            return out
        self._mask = None
        return x * x.dtype.type(self.test_scale)

    def backward(self, grad_output, input_gradient=True):
        mask = self._saved("_mask")
        if mask is None:
            grad_output = _validate.float_array(grad_output, "grad_output")
            return grad_output * grad_output.dtype.type(self.test_scale)
        return functional.dropout_backward(grad_output, mask, self.p, mode=self.mode)

    def _fit_forward(self, x):
        x = _validate.float_array(x, "x")
        out, self._mask = functional.dropout(x, self.p, self.rng, mode=self.mode, out=(
            self._work_array("_out_work", x.shape, x.dtype), self._work_array("_mask_work", x.shape, np.bool_)))
        return out

    def _fit_backward(self, grad_output, input_gradient):
        mask, grad_output = self._saved("_mask"), _validate.float_array(grad_output, "grad_output")
        return functional.dropout_backward(grad_output, mask, self.p, mode=self.mode,
                                           out=self._work_array("_grad_x_work", grad_output.shape, grad_output.dtype))

    def _output_width(self, width):
        return width

    def config(self):
        return {"p": self.p, "mode": self.mode}
