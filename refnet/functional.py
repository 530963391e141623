r"""The public activation functions: validated, then run on the active backend.

Each function checks its arguments in Python (see :mod:`refnet._validate`),
allocates the result or checks ``out=``, and calls the kernel of the same name
on the active backend (:mod:`refnet.backend`).  The formulas, their sources and
their accuracy are documented on the reference kernels in
:mod:`refnet.reference.activations`.

Conventions, as NumPy's ufuncs: elementwise functions take any shape; the result
has the input's dtype (float32 or float64; other dtypes raise ``TypeError``);
``out=`` must have the result's shape and dtype, be C-contiguous and writeable,
and is returned; a 0-d input without ``out`` gives a NumPy scalar.  Empty input
gives empty output.  Backward functions take ``grad_output`` = ∂L/∂(output) and
what the forward pass saw, and return ∂L/∂(input).
"""

import math
import sys

import numpy as np

from . import _validate
from .reference import activations as _reference_activations
from .backend import active
from .reference.dense import DENSE_ACTIVATIONS

# One validated public function per reference activation kernel, under its name; the dense layer; dropout.
__all__ = [*_reference_activations.__all__, "dense", "dense_backward", "dropout", "dropout_backward"]

DEFAULT_LEAKY_SLOPE = 0.01


# --- plumbing shared by every function ------------------------------------------

def _elementwise(kernel, arrays, out, params=()):
    """Run an elementwise ``kernel(*arrays, *params, out)`` on flattened views.

    ``arrays`` are validated arrays of one shape and dtype; the last is the one
    the result is shaped like.
    """
    shape_source = arrays[-1]
    target, result = _validate.output(out, shape_source.shape, shape_source.dtype, arrays)
    getattr(active(), kernel)(*(a.reshape(-1) for a in arrays), *params, target.reshape(-1))
    return _finish(target, result, out)


def _finish(target, result, out):
    if target is not result:
        np.copyto(result, target)
    if out is None and result.ndim == 0:
        return result[()]
    return result


def _rows(array):
    """View an array of ndim >= 1 as (rows, last axis); a 0-d array as (1, 1)."""
    width = array.shape[-1] if array.ndim else 1
    return array.reshape(math.prod(array.shape[:-1]), width)


def _input_and_grad(grad_output, x, x_name="z"):
    x = _validate.float_array(x, x_name)
    return _validate.like(grad_output, "grad_output", x.dtype, x.shape, x_name), x


# --- sigmoid and tanh -------------------------------------------------------------

def sigmoid(z, out=None):
    r"""Logistic sigmoid :math:`\sigma(z) = 1/(1 + e^{-z})`, elementwise.

    Accurate and warning-free for every finite input (5 ulp in float64, 1 ulp in
    float32): :math:`\sigma(-800) = 0` and :math:`\sigma(800) = 1` in float64,
    with no overflow and no clipping.

    Parameters
    ----------
    z : array_like of float32 or float64
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray or scalar

    Examples
    --------
    >>> import refnet
    >>> float(refnet.sigmoid(0.0))
    0.5
    >>> refnet.sigmoid([-800.0, 800.0])
    array([0., 1.])
    """
    return _elementwise("sigmoid", [_validate.float_array(z, "z")], out)


def sigmoid_derivative(z, out=None):
    r"""Derivative :math:`\sigma'(z) = \sigma(z)\,\sigma(-z) \in (0, 1/4]`, elementwise.

    Accurate in the tails, where :math:`\sigma(1-\sigma)` from a rounded
    :math:`\sigma` is 0 although :math:`\sigma'(z) \approx e^{-|z|}` is representable.

    Parameters
    ----------
    z : array_like of float32 or float64
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        σ'(z), shaped like ``z``.

    Examples
    --------
    >>> import refnet
    >>> float(refnet.sigmoid_derivative(0.0))
    0.25
    >>> float(refnet.sigmoid_derivative(40.0)) > 0
    True
    """
    return _elementwise("sigmoid_derivative", [_validate.float_array(z, "z")], out)


def sigmoid_backward(grad_output, z, out=None):
    r"""∂L/∂z = ∂L/∂σ · σ'(z), from the forward input ``z`` (not the output, for accuracy).

    Parameters
    ----------
    grad_output : array_like of float32 or float64
        ∂L/∂a = ∂L/∂σ(z), shaped like ``z``.
    z : array_like of float32 or float64
        The forward pass's input.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        ∂L/∂z = ∂L/∂a · σ(z)σ(−z), shaped like ``z``.
    """
    return _elementwise("sigmoid_backward", _input_and_grad(grad_output, z), out)


def tanh(z, out=None):
    r"""Hyperbolic tangent, elementwise.

    Parameters
    ----------
    z : array_like of float32 or float64
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        tanh(z) ∈ [−1, 1], shaped like ``z``.

    Examples
    --------
    >>> import refnet
    >>> float(refnet.tanh(0.0))
    0.0
    """
    return _elementwise("tanh", [_validate.float_array(z, "z")], out)


def tanh_derivative(z, out=None):
    r"""Derivative :math:`\tanh'(z) = 1 - \tanh^2 z = \operatorname{sech}^2 z`, accurate in the tails.

    Parameters
    ----------
    z : array_like of float32 or float64
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        sech²(z) ∈ (0, 1], shaped like ``z``.
    """
    return _elementwise("tanh_derivative", [_validate.float_array(z, "z")], out)


def tanh_backward(grad_output, z, out=None):
    r"""∂L/∂z = ∂L/∂a · sech²(z), from the forward input ``z``.

    Parameters
    ----------
    grad_output : array_like of float32 or float64
        ∂L/∂a = ∂L/∂tanh(z), shaped like ``z``.
    z : array_like of float32 or float64
        The forward pass's input.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        ∂L/∂z = ∂L/∂a · sech²(z), shaped like ``z``.
    """
    return _elementwise("tanh_backward", _input_and_grad(grad_output, z), out)


# --- the ReLU family --------------------------------------------------------------

def relu(z, out=None):
    r"""ReLU :math:`\max(0, z)`, elementwise; NaN propagates.

    Parameters
    ----------
    z : array_like of float32 or float64
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        max(0, z), shaped like ``z``.

    Examples
    --------
    >>> import refnet
    >>> refnet.relu([-1.0, 0.0, 2.0])
    array([0., 0., 2.])
    """
    return _elementwise("relu", [_validate.float_array(z, "z")], out)


def relu_derivative(z, out=None):
    r"""ReLU' = 1 where z > 0, else 0 — **0 at the kink z = 0** (as PyTorch and scikit-learn).

    Parameters
    ----------
    z : array_like of float32 or float64
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        1 where z > 0, else 0, shaped like ``z``.

    Examples
    --------
    >>> import refnet
    >>> refnet.relu_derivative([-1.0, 0.0, 2.0])
    array([0., 0., 1.])
    """
    return _elementwise("relu_derivative", [_validate.float_array(z, "z")], out)


def relu_backward(grad_output, z, out=None):
    r"""∂L/∂z = ∂L/∂a where z > 0, else 0 (a selection, so ∞ upstream at a dead unit gives 0).

    Parameters
    ----------
    grad_output : array_like of float32 or float64
        ∂L/∂a, shaped like ``z``.
    z : array_like of float32 or float64
        The forward pass's input.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        ∂L/∂z: ∂L/∂a where z > 0, else 0 (also at z = 0), shaped like ``z``.
    """
    return _elementwise("relu_backward", _input_and_grad(grad_output, z), out)


def leaky_relu(z, slope=DEFAULT_LEAKY_SLOPE, out=None):
    r"""Leaky ReLU: z where z > 0, else slope·z (slope 0.01 as Lee and PyTorch; Keras uses 0.3).

    Parameters
    ----------
    z : array_like of float32 or float64
    slope : float, default 0.01
        The slope for :math:`z \le 0`.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        z where z > 0, else slope·z, shaped like ``z``.

    Examples
    --------
    >>> import refnet
    >>> refnet.leaky_relu([-100.0, 3.0])
    array([-1.,  3.])
    """
    z = _validate.float_array(z, "z")
    return _elementwise("leaky_relu", [z], out, (_validate.leaky_slope(slope, dtype=z.dtype),))


def leaky_relu_derivative(z, slope=DEFAULT_LEAKY_SLOPE, out=None):
    r"""Leaky ReLU' = 1 where z > 0, else slope — **slope at the kink z = 0** (as PyTorch).

    Parameters
    ----------
    z : array_like of float32 or float64
    slope : float, default 0.01
        The slope for :math:`z \le 0`.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        1 where z > 0, else slope, shaped like ``z``.
    """
    z = _validate.float_array(z, "z")
    return _elementwise("leaky_relu_derivative", [z], out, (_validate.leaky_slope(slope, dtype=z.dtype),))


def leaky_relu_backward(grad_output, z, slope=DEFAULT_LEAKY_SLOPE, out=None):
    r"""∂L/∂z = ∂L/∂a where z > 0, else slope·∂L/∂a.

    Parameters
    ----------
    grad_output : array_like of float32 or float64
        ∂L/∂a, shaped like ``z``.
    z : array_like of float32 or float64
        The forward pass's input.
    slope : float, default 0.01
        The slope for :math:`z \le 0`.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        ∂L/∂z, shaped like ``z``.
    """
    arrays = _input_and_grad(grad_output, z)
    return _elementwise("leaky_relu_backward", arrays, out, (_validate.leaky_slope(slope, dtype=arrays[1].dtype),))


def _prelu_slope(slope, z):
    """Return (slope as given, one slope per unit) for PReLU input ``z``.

    A Python number or list takes ``z``'s dtype; an ndarray must already have it.
    Shape () or (1,) is one slope shared by all units; shape (units,) is one per
    unit of the last axis.
    """
    if isinstance(slope, np.ndarray):
        slope = _validate.float_array(slope, "slope")
        if slope.dtype != z.dtype:
            raise TypeError(f"slope must have the dtype of z ({z.dtype}), got {slope.dtype}")
    else:
        given = np.asarray(slope)
        if given.dtype.kind in "iu":   # Python integers (0: Keras' initial slope) are numbers too
            given = given.astype(np.float64)
        given = _validate.float_array(given, "slope")
        with np.errstate(over="ignore"):
            slope = given.astype(z.dtype)
        if np.isinf(slope).any() and np.isfinite(given).all():
            raise ValueError(f"slope must fit in z's dtype ({z.dtype}), got {given.max()!r} beyond its range")
    units = z.shape[-1] if z.ndim else 1
    if slope.shape in ((), (1,)):
        return slope, np.full(units, slope.reshape(()), dtype=z.dtype)
    if slope.shape == (units,):
        return slope, slope
    raise ValueError(
        f"slope must have shape (), (1,) or ({units},) (one per unit of z's last axis), "
        f"got {slope.shape}"
    )


def prelu(z, slope, out=None):
    r"""Parametric ReLU: z where z > 0, else α·z, with α learned.

    Parameters
    ----------
    z : array_like of float32 or float64
        Units along the last axis.
    slope : scalar or array_like
        One slope shared by all units (shape () or (1,)), or one per unit of
        ``z``'s last axis.  PyTorch initialises it to 0.25, Keras to 0.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        z where z > 0, else α·z, shaped like ``z``.
    """
    z = _validate.float_array(z, "z")
    _, per_unit = _prelu_slope(slope, z)
    target, result = _validate.output(out, z.shape, z.dtype, [z, per_unit])
    active().prelu(_rows(z), per_unit, _rows(target))
    return _finish(target, result, out)


def prelu_backward(grad_output, z, slope, out=None):
    r"""Gradients of PReLU with respect to its input and its slope.

    Parameters
    ----------
    grad_output : array_like of float32 or float64
        ∂L/∂(output), shaped like ``z``.
    z : array_like of float32 or float64
        The forward pass's input.
    slope : float or array_like
        The slope :math:`\alpha` of the forward pass: one shared, or one per unit (last axis).
    out : tuple (grad_input, grad_slope), optional
        Arrays for the two results, as NumPy's two-output ufuncs take ``out``.

    Returns
    -------
    grad_input : ndarray
        ∂L/∂z, shaped like ``z``.
    grad_slope : ndarray
        ∂L/∂α = Σ ∂L/∂a · z over the entries with z ≤ 0 (summed over all units
        when the slope is shared), shaped like ``slope``.
    """
    grad_output, z = _input_and_grad(grad_output, z)
    slope, per_unit = _prelu_slope(slope, z)
    if out is None:
        out_input = out_slope = None
    elif isinstance(out, tuple) and len(out) == 2:
        out_input, out_slope = out
    else:
        raise TypeError("out must be None or a tuple (grad_input, grad_slope)")
    target, grad_input = _validate.output(out_input, z.shape, z.dtype, [grad_output, z, per_unit], "out[0]")
    slope_target, grad_slope = _validate.output(
        out_slope, slope.shape, z.dtype, [grad_output, z, slope, per_unit, target], "out[1]"
    )
    per_unit_grad = np.empty(per_unit.shape, dtype=z.dtype)
    active().prelu_backward(_rows(grad_output), _rows(z), per_unit, _rows(target), per_unit_grad)
    slope_target[...] = per_unit_grad if slope.shape == per_unit.shape else per_unit_grad.sum()
    return _finish(target, grad_input, out_input), _finish(slope_target, grad_slope, out_slope)


# --- softmax ------------------------------------------------------------------------

def softmax(z, out=None):
    r"""Softmax along the last axis, :math:`e^{z_j - m} / \sum_k e^{z_k - m}` with :math:`m = \max_k z_k`.

    Stable for huge logits.  Rows sum to 1 within a few ulp (at most 2 ulp measured,
    for rows of 10 to 10\ :sup:`7` random logits: both backends sum a row pairwise);
    an empty last axis gives an empty result.

    Parameters
    ----------
    z : array_like of float32 or float64
        Logits, at least 1-d; the last axis is normalised.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        Probabilities, shaped like ``z``; each row along the last axis sums to 1.

    Examples
    --------
    >>> import refnet
    >>> refnet.softmax([1000.0, 1000.0])
    array([0.5, 0.5])
    """
    z = _validate.float_array(z, "z")
    _validate.at_least_1d(z, "z")
    target, result = _validate.output(out, z.shape, z.dtype, [z])
    active().softmax(_rows(z), _rows(target))
    return _finish(target, result, out)


def softmax_backward(grad_output, output, out=None):
    r"""∂L/∂z_j = s_j (∂L/∂s_j − Σ_k ∂L/∂s_k s_k), from the softmax output ``s``.

    Parameters
    ----------
    grad_output : array_like of float32 or float64
        ∂L/∂(output), shaped like ``output``.
    output : array_like of float32 or float64
        The forward pass's result :math:`s = \operatorname{softmax}(z)`, along the last axis.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``output``).

    Returns
    -------
    ndarray
        ∂L/∂z, shaped like ``output``.
    """
    grad_output, output = _input_and_grad(grad_output, output, "output")
    _validate.at_least_1d(output, "output")
    target, result = _validate.output(out, output.shape, output.dtype, [grad_output, output])
    active().softmax_backward(_rows(grad_output), _rows(output), _rows(target))
    return _finish(target, result, out)


# --- Maxout -------------------------------------------------------------------------

def _maxout_input(z, pieces):
    z = _validate.float_array(z, "z")
    _validate.at_least_1d(z, "z")
    pieces = _validate.positive_int(pieces, "pieces")
    width = z.shape[-1]
    if pieces > sys.maxsize:   # divides an empty axis, but the kernels take a C ssize_t
        raise ValueError(f"pieces must be at most {sys.maxsize}, got {pieces}")
    if width % pieces:
        raise ValueError(
            f"pieces must divide the last axis of z ({width}) into whole groups, got {pieces}"
        )
    return z, pieces, z.shape[:-1] + (width // pieces,)


def maxout(z, pieces, out=None):
    r"""Maxout: the maximum of each contiguous group of ``pieces`` entries along the last axis.

    ``z`` of shape (..., units·pieces) gives shape (..., units).

    Parameters
    ----------
    z : array_like of float32 or float64
        At least 1-d, its last axis a whole number of groups of ``pieces``.
    pieces : int
        Entries per group (≥ 1; 1 is the identity).
    out : ndarray, optional
        Where to write the result (dtype of ``z``, shape (..., units)).

    Returns
    -------
    ndarray
        Each group's maximum, shape (..., units).

    Examples
    --------
    >>> import refnet
    >>> refnet.maxout([[1.0, 5.0, -2.0, -3.0]], pieces=2)
    array([[ 5., -2.]])
    """
    z, pieces, out_shape = _maxout_input(z, pieces)
    target, result = _validate.output(out, out_shape, z.dtype, [z])
    active().maxout(_rows(z), pieces, _rows(target))
    return _finish(target, result, out)


def maxout_backward(grad_output, z, pieces, out=None):
    r"""∂L/∂z: each unit's gradient goes to its group's winning piece; **ties to the lowest index**.

    The winners are recomputed from the forward input ``z``.  With the zero
    piece first, Maxout over [0, z] reproduces ReLU'(0) = 0.

    Parameters
    ----------
    grad_output : array_like of float32 or float64
        ∂L/∂(output), shaped like ``maxout(z, pieces)``.
    z : array_like of float32 or float64
        The forward pass's input; its last axis holds ``pieces`` consecutive entries per unit.
    pieces : int
        Pieces per unit, as in :func:`maxout`.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``z``).

    Returns
    -------
    ndarray
        ∂L/∂z, nonzero only at each group's winner, shaped like ``z``.
    """
    z, pieces, out_shape = _maxout_input(z, pieces)
    grad_output = _validate.like(grad_output, "grad_output", z.dtype, out_shape, "maxout(z, pieces)")
    target, result = _validate.output(out, z.shape, z.dtype, [grad_output, z])
    active().maxout_backward(_rows(grad_output), _rows(z), pieces, _rows(target))
    return _finish(target, result, out)


# --- dense layers -------------------------------------------------------------------

def _dense_activation(activation):
    """The kernel name of a Dense activation: ``None`` means ``"identity"``."""
    name = "identity" if activation is None else activation
    if name not in DENSE_ACTIVATIONS:
        raise ValueError(f"activation must be None or one of {list(DENSE_ACTIVATIONS)}, got {activation!r}")
    return name


def _dense_parameters(weight, bias):
    weight = _validate.matrix(weight, "weight")
    bias = _validate.like(bias, "bias", weight.dtype, (weight.shape[1],), "weight's columns")
    return weight, bias


def _dense_input(x, weight):
    """``x`` checked against ``weight`` (every kernel path passes here)."""
    x = _validate.matrix(x, "x", weight.dtype)
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"x must have {weight.shape[0]} columns (weight's rows), got shape {x.shape}")
    return x


def dense(x, weight, bias, activation=None, slope=DEFAULT_LEAKY_SLOPE):
    r"""Dense layer forward: :math:`z = x W + b`, :math:`a = f(z)`, fused in one pass after the product.

    Parameters
    ----------
    x : array_like, shape (rows, n_in)
        A batch; ``rows`` may be 0.
    weight : array_like, shape (n_in, n_out)
    bias : array_like, shape (n_out,)
        Same dtype as ``weight``; ``x`` too.
    activation : None or str
        ``None`` (identity), ``"sigmoid"``, ``"tanh"``, ``"relu"`` or ``"leaky_relu"``.
    slope : float
        Leaky ReLU's slope (ignored by the others).

    Returns
    -------
    output, z : ndarray, shape (rows, n_out)
        :math:`f(z)` and the pre-activation :math:`z`, which :func:`dense_backward` takes.

    Examples
    --------
    >>> import numpy as np, refnet
    >>> a, z = refnet.dense(np.ones((1, 2)), np.eye(2), np.array([0.0, -3.0]), "relu")
    >>> a, z
    (array([[1., 0.]]), array([[ 1., -2.]]))
    """
    weight, bias = _dense_parameters(weight, bias)
    x = _dense_input(x, weight)
    name = _dense_activation(activation)
    slope = _validate.leaky_slope(slope, dtype=weight.dtype)
    z = np.empty((x.shape[0], weight.shape[1]), dtype=weight.dtype)
    out = z if name == "identity" else np.empty_like(z)
    active().dense_forward(x, weight, bias, name, slope, z, out)
    return out, z


def dense_backward(grad_output, x, weight, z, activation=None, slope=DEFAULT_LEAKY_SLOPE):
    r"""Dense layer backward, from ∂L/∂a and what the forward pass saw (``x``, ``z``).

    Parameters
    ----------
    grad_output : array_like, shape (rows, n_out)
        ∂L/∂a, the gradient of the layer's output :math:`a = f(z)`.
    x : array_like, shape (rows, n_in)
        The forward pass's input.
    weight : ndarray, shape (n_in, n_out)
        :math:`W`; its dtype (float32 or float64) is the computation's.
    z : array_like, shape (rows, n_out)
        The forward pass's pre-activation :math:`z = xW + b`.
    activation : {None, "identity", "sigmoid", "tanh", "relu", "leaky_relu"}, optional
        The fused activation :math:`f` of the forward pass (``None``: identity).
    slope : float, default 0.01
        Leaky ReLU's slope, when ``activation="leaky_relu"``.

    Returns
    -------
    grad_input, grad_weight, grad_bias : ndarray
        ∂L/∂x = δWᵀ, ∂L/∂W = xᵀδ and ∂L/∂b = Σ_rows δ, with δ = ∂L/∂a ⊙ f'(z).
        ``f'`` follows the activations' kink conventions (ReLU'(0) = 0).
    """
    weight = _validate.matrix(weight, "weight")
    x = _dense_input(x, weight)
    shape = (x.shape[0], weight.shape[1])
    z = _validate.like(z, "z", weight.dtype, shape, "x @ weight")
    grad_output = _validate.like(grad_output, "grad_output", weight.dtype, shape, "z")
    name = _dense_activation(activation)
    slope = _validate.leaky_slope(slope, dtype=weight.dtype)
    grad_z = np.empty_like(z)
    grad_input = np.empty_like(x)
    grad_weight = np.empty_like(weight)
    grad_bias = np.empty(weight.shape[1], dtype=weight.dtype)
    return active().dense_backward(
        grad_output, x, weight, z, name, slope, grad_z, grad_input, grad_weight, grad_bias
    )


# --- dropout --------------------------------------------------------------------------

DROPOUT_MODES = ("inverted", "scale-at-test")


def _dropout_arguments(p, mode):
    """Validate p and mode; return (p, the training-time scale of kept units)."""
    p = _validate.finite_scalar(p, "p")
    if not 0 <= p < 1:
        raise ValueError(f"p must be a drop probability in [0, 1), got {p}")
    if mode not in DROPOUT_MODES:
        raise ValueError(f"mode must be one of {list(DROPOUT_MODES)}, got {mode!r}")
    return p, 1 / (1 - p) if mode == "inverted" else 1.0


def dropout(z, p, rng, *, mode="inverted", out=None):
    r"""Training-time dropout: drop each unit with probability ``p``; return ``(output, mask)``.

    The mask rule: draw ``rng.random(z.size)`` (one double per unit, in C
    order) and keep unit *i* iff its double is :math:`\ge p`.  Both backends
    follow it draw for draw, so a seed gives the same mask on either.

    .. math:: y_i = \begin{cases} s\, z_i & \text{kept} \\ 0 & \text{dropped} \end{cases},
              \qquad s = \begin{cases} 1/(1-p) & \text{mode="inverted" (PyTorch, Keras)} \\
              1 & \text{mode="scale-at-test" (Lee, Srivastava et al.)} \end{cases}

    Parameters
    ----------
    z : array_like of float32 or float64
    p : float in [0, 1)
        Drop probability; ``p = 0`` is the identity and draws nothing.
    rng : numpy.random.Generator
        The random stream; it advances by ``z.size`` doubles.
    mode : {"inverted", "scale-at-test"}
    out : ndarray or tuple (output, mask), optional
        Where to write the output, or the output and the mask (a bool array of
        ``z``'s shape), as NumPy's two-output ufuncs take ``out``; reusing a
        mask array saves an allocation per call.

    Returns
    -------
    output : ndarray
    mask : ndarray of bool
        True where the unit was kept; :func:`dropout_backward` takes it.

    Examples
    --------
    >>> import numpy as np, refnet
    >>> y, mask = refnet.dropout(np.ones(6), 0.5, np.random.default_rng(0))
    >>> y, mask
    (array([2., 0., 0., 0., 2., 2.]), array([ True, False, False, False,  True,  True]))
    >>> np.random.default_rng(0).random(6) >= 0.5     # the rule, by hand
    array([ True, False, False, False,  True,  True])
    """
    z = _validate.float_array(z, "z")
    p, scale = _dropout_arguments(p, mode)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    out_output, out_mask = out if isinstance(out, tuple) else (out, None)
    target, result = _validate.output(out_output, z.shape, z.dtype, [z], "out[0]" if isinstance(out, tuple) else "out")
    mask_target, mask = _validate.output(out_mask, z.shape, np.dtype(np.bool_), [z, target], "out[1]")
    bits = mask_target.view(np.uint8)
    if p == 0:
        np.copyto(target, z)
        bits.fill(1)
    else:
        active().dropout_forward(z.reshape(-1), p, scale, rng, bits.reshape(-1), target.reshape(-1))
    return _finish(target, result, out_output), _finish(mask_target, mask, out_mask)


def dropout_backward(grad_output, mask, p, *, mode="inverted", out=None):
    r"""∂L/∂z = s·∂L/∂y where the forward pass kept the unit, else 0 (``mask`` from :func:`dropout`).

    Parameters
    ----------
    grad_output : array_like of float32 or float64
        ∂L/∂(output), shaped like the forward output.
    mask : ndarray of bool
        The mask :func:`dropout` returned: True where the unit was kept.
    p : float in [0, 1)
        The drop probability of the forward pass.
    mode : {"inverted", "scale-at-test"}
        The forward pass's mode: kept units' gradients are scaled by :math:`1/(1-p)` when inverted.
    out : ndarray, optional
        Where to write the result (shape and dtype of ``grad_output``).

    Returns
    -------
    ndarray
        ∂L/∂z, shaped like ``grad_output``.
    """
    grad_output = _validate.float_array(grad_output, "grad_output")
    p, scale = _dropout_arguments(p, mode)
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be a bool array (from refnet.dropout), got dtype {mask.dtype}")
    if mask.shape != grad_output.shape:
        raise ValueError(f"mask must have the shape of grad_output {grad_output.shape}, got {mask.shape}")
    mask = np.ascontiguousarray(mask)
    target, result = _validate.output(out, grad_output.shape, grad_output.dtype, [grad_output, mask])
    active().dropout_backward(grad_output.reshape(-1), mask.view(np.uint8).reshape(-1), scale,
                              target.reshape(-1))
    return _finish(target, result, out)
