r"""Dropout as readable NumPy [Srivastava2014]_, with the random stream made explicit.

The mask rule, shared with the compiled twin: draw :math:`u_i` with
``generator.random(n)`` (one double in :math:`[0, 1)` per unit, in order) and
keep unit :math:`i` iff :math:`u_i \ge p`, so :math:`P(\text{keep}) = 1 - p`.
The compiled kernel draws the same doubles from the same bit generator, so one
seed gives the same masks on both backends.

Two conventions differ only in where the :math:`1/(1-p)` goes: *inverted*
dropout (PyTorch, Keras) scales kept units by :math:`s = 1/(1-p)` while
training and is the identity at test; the lecture's *scale-at-test* dropout
keeps :math:`s = 1` while training and multiplies by :math:`1 - p` at test.

References
----------
Defined once in the documentation's bibliography (``docs/bibliography.rst``);
the notes here say which part of each source this module follows.

* [Srivastava2014] N. Srivastava et al., "Dropout: A Simple Way to Prevent Neural
  Networks from Overfitting", JMLR 15, 2014.
* [Lee] Hung-yi Lee, "Tips for Training DNN", National Taiwan University.
"""

import numpy as np

__all__ = ["dropout_forward", "dropout_backward"]


def dropout_forward(z, p, scale, generator, mask, out):
    r"""Draw a fresh mask and apply it: the training-time forward pass.

    .. math:: u_i \sim \mathcal U[0, 1), \qquad m_i = [u_i \ge p], \qquad
              y_i = \begin{cases} s\, z_i & m_i = 1 \\ 0 & m_i = 0 \end{cases}

    ``mask`` (uint8, 0 or 1) receives :math:`m`, for the backward pass.  A
    selection rather than :math:`m_i s z_i`, so a dropped infinite input gives 0.

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    p : float
        Probability of dropping a unit, in [0, 1).
    scale : float
        :math:`s`, the factor on kept units: 1/(1 − p) (inverted) or 1 (original).
    generator : numpy.random.Generator
        Draws :math:`u`.
    mask : ndarray of uint8
        The mask :math:`m` (0 or 1), shaped like the input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    u = generator.random(z.shape[0])
    mask[...] = u >= p
    out[...] = np.where(mask, scale * z, 0)
    return out


def dropout_backward(grad_output, mask, scale, out):
    r"""Chain rule through dropout with the forward pass's mask.

    .. math:: \frac{\partial L}{\partial z_i} = \begin{cases}
              s\, \partial L / \partial y_i & m_i = 1 \\ 0 & m_i = 0 \end{cases}

    Parameters
    ----------
    grad_output : ndarray
        ∂L/∂(this kernel's output), shaped like that output.
    mask : ndarray of uint8
        The mask :math:`m` (0 or 1), shaped like the input.
    scale : float
        :math:`s`, the factor on kept units: 1/(1 − p) (inverted) or 1 (original).
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    out[...] = np.where(mask, scale * grad_output, 0)
    return out
