r"""The fully connected (dense) layer as readable NumPy.

A dense layer maps a batch :math:`x` of shape (rows, n_in) to

.. math:: z = x W + b, \qquad a = f(z),

with :math:`W` of shape (n_in, n_out), :math:`b` of shape (n_out,) broadcast
over the rows, and :math:`f` an elementwise activation (one of
:data:`ACTIVATIONS`).  Back-propagation [Bishop]_ (§5.3) with
:math:`\delta = \partial L / \partial z`:

.. math:: \delta = \frac{\partial L}{\partial a} \odot f'(z), \quad
          \frac{\partial L}{\partial W} = x^\top \delta, \quad
          \frac{\partial L}{\partial b} = \sum_{\text{rows}} \delta, \quad
          \frac{\partial L}{\partial x} = \delta\, W^\top .

Kernels do no input validation (see :mod:`refnet.functional`): arrays are
C-contiguous, of one float dtype and of matching shapes with rows >= 0 and
n_in, n_out >= 1; outputs are writeable and share no memory with inputs, except
that ``out`` may be ``z`` itself and ``grad_z`` may be ``grad_output`` itself.

References
----------
Defined once in the documentation's bibliography (``docs/bibliography.rst``);
the notes here say which part of each source this module follows.

* [Bishop] C. M. Bishop, *Pattern Recognition and Machine Learning*, 2006, §5.3
  (error back-propagation).
"""

import numpy as np

from . import activations

__all__ = ["DENSE_ACTIVATIONS", "dense_forward", "dense_backward"]

DENSE_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")


def _activate(activation, slope, z, out):
    """out := f(z) with the reference activation kernel of that name."""
    if activation == "identity":
        out[...] = z
    elif activation == "leaky_relu":
        activations.leaky_relu(z, slope, out)
    else:
        getattr(activations, activation)(z, out)


def _activation_backward(activation, slope, grad_output, z, out):
    """out := grad_output * f'(z) with the reference backward kernel of that name."""
    if activation == "identity":
        out[...] = grad_output
    elif activation == "leaky_relu":
        activations.leaky_relu_backward(grad_output, z, slope, out)
    else:
        getattr(activations, activation + "_backward")(grad_output, z, out)


def dense_forward(x, weight, bias, activation, slope, z, out):
    r"""Forward pass of a dense layer: the affine map, then the activation.

    .. math:: z = x W + b, \qquad \text{out} = f(z)

    ``activation`` names :math:`f` (one of :data:`DENSE_ACTIVATIONS`);
    ``slope`` is Leaky ReLU's :math:`\alpha` and is ignored by the others.
    ``z`` is kept for the backward pass.

    Parameters
    ----------
    x : ndarray, shape (rows, inputs)
        The layer's input.
    weight : ndarray, shape (inputs, units)
    bias : ndarray, shape (units,)
    activation : str
        One of :data:`DENSE_ACTIVATIONS`.
    slope : float
        Leaky ReLU's :math:`\alpha`; ignored by the other activations.
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    np.matmul(x, weight, out=z)
    z += bias
    _activate(activation, slope, z, out)
    return out


def dense_backward(grad_output, x, weight, z, activation, slope, grad_z, grad_input, grad_weight,
                   grad_bias):
    r"""Backward pass of a dense layer [Bishop]_ (§5.3.1).

    .. math:: \delta = \frac{\partial L}{\partial a} \odot f'(z), \quad
              \frac{\partial L}{\partial W} = x^\top \delta, \quad
              \frac{\partial L}{\partial b_j} = \sum_r \delta_{rj}, \quad
              \frac{\partial L}{\partial x} = \delta W^\top

    ``grad_z`` receives :math:`\delta`.  ``grad_input`` may be ``None`` when
    :math:`\partial L / \partial x` is not needed (the first layer of a
    network).

    Parameters
    ----------
    grad_output : ndarray
        ∂L/∂(this kernel's output), shaped like that output.
    x : ndarray, shape (rows, inputs)
        The layer's input.
    weight : ndarray, shape (inputs, units)
    z : ndarray of float32 or float64
        The forward input.
    activation : str
        One of :data:`DENSE_ACTIVATIONS`.
    slope : float
        Leaky ReLU's :math:`\alpha`; ignored by the other activations.
    grad_z : ndarray, shape (rows, units)
        Receives :math:`\delta = \partial L/\partial z`.
    grad_input : ndarray or None
        Receives ∂L/∂(input); ``None`` skips it.
    grad_weight : ndarray, shape (inputs, units)
        Receives ∂L/∂W.
    grad_bias : ndarray, shape (units,)
        Receives ∂L/∂b.

    Returns
    -------
    (ndarray or None, ndarray, ndarray)
        ``(grad_input, grad_weight, grad_bias)``.
    """
    _activation_backward(activation, slope, grad_output, z, grad_z)
    grad_bias[...] = grad_z.sum(axis=0)
    np.matmul(x.T, grad_z, out=grad_weight)
    if grad_input is not None:
        np.matmul(grad_z, weight.T, out=grad_input)
    return grad_input, grad_weight, grad_bias
