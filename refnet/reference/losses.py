r"""Losses and their gradients as readable NumPy, averaged over the batch.

Every loss here is a sum over a row's classes or units, averaged over the
``rows`` of the batch (the mean, so that learning rates and penalties do not
scale with the batch size):

.. math:: L = \frac{1}{N} \sum_{r=1}^{N} \ell(\text{row}_r),

and each kernel writes :math:`\partial L / \partial(\text{input})` into
``grad`` and returns :math:`L` as a Python float.  Sums and gradients are
evaluated in float64 for both dtypes; float32 gradients are rounded once.

Kernels do no input validation (see :mod:`refnet.losses`): a batch of at least
one row, 2-D C-contiguous arrays of one float dtype, integer labels of dtype
``intp`` in ``[0, classes)``, and a ``grad`` sharing no memory with the inputs.

References
----------
Defined once in the documentation's bibliography (``docs/bibliography.rst``);
the notes here say which part of each source this module follows.

* [Bishop] C. M. Bishop, *Pattern Recognition and Machine Learning*, 2006,
  §4.3.2 (logistic regression) and §4.3.4 (softmax cross-entropy, eq. 4.108-4.109).
* [Nielsen] M. Nielsen, *Neural Networks and Deep Learning*, 2015, ch. 3
  (the cross-entropy cost on sigmoid outputs, eq. 57 and 61).
"""

import numpy as np

from . import activations

__all__ = [
    "softmax_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "mean_squared_error",
]


def softmax_cross_entropy(logits, labels, grad):
    r"""Softmax cross-entropy over integer class labels, fused with the softmax [Bishop]_.

    .. math:: L = \frac1N \sum_r \Bigl(\log \sum_k e^{z_{rk}} - z_{r y_r}\Bigr), \qquad
              \frac{\partial L}{\partial z_{rk}} = \frac{\operatorname{softmax}(z_r)_k
              - [k = y_r]}{N}

    Everything is computed from the shifted logits :math:`s_k = z_k - m`,
    :math:`m = \max_k z_k` (the first maximum, index :math:`w`), whose exponents
    :math:`e_k = e^{s_k} \le 1` cannot overflow:

    .. math:: \ell = \log\Bigl(1 + \sum_{k \ne w} e_k\Bigr) - s_y, \qquad
              \operatorname{softmax}_k = \frac{e_k}{T}, \qquad
              \operatorname{softmax}_y - 1 = -\frac{\sum_{k \ne y} e_k}{T},
              \qquad T = 1 + \sum_{k \ne w} e_k

    Forming :math:`m + \log T` and subtracting :math:`z_y` would cost
    :math:`\varepsilon |m|`: the whole loss at logits :math:`(10^{15}, 10^{15} - 10)`.
    ``log1p`` keeps the loss of a confident right answer, and the label's
    gradient as a sum of the other classes, not :math:`e_y/T - 1`, keeps its
    small magnitude.

    Parameters
    ----------
    logits : ndarray, shape (rows, classes or units)
        Unnormalised scores :math:`z`.
    labels : ndarray of int, shape (rows,)
        Class indices :math:`y_r`.
    grad : ndarray, shaped like the output
        Receives the gradient ∂L/∂(output).

    Returns
    -------
    float
        The loss :math:`L`; the gradient is in ``grad``.
    """
    rows, classes = logits.shape
    z = logits.astype(np.float64)
    every_row = np.arange(rows)
    winner = z.argmax(axis=1)
    shifted = z - z[every_row, winner][:, None]
    e = np.exp(shifted)
    column = np.arange(classes)
    rest = np.where(column == winner[:, None], 0, e).sum(axis=1)
    is_label = column == labels[:, None]
    others = np.where(is_label, 0, e).sum(axis=1)
    total = 1 + rest
    grad[...] = np.where(is_label, -others[:, None], e) / total[:, None] / rows
    return float((np.log1p(rest) - shifted[every_row, labels]).sum() / rows)


def binary_cross_entropy_with_logits(logits, targets, grad):
    r"""Binary cross-entropy of targets :math:`t \in [0, 1]` given logits :math:`z`, with the
    sigmoid :math:`\sigma(z) = P(C_1 \mid x)` as the Bayes posterior [Bishop]_ (eq. 4.90-4.91).

    .. math:: L = -\frac1N \sum_{r,j} \bigl(t \ln \sigma(z) + (1 - t) \ln(1 - \sigma(z))\bigr)
                = \frac1N \sum_{r,j} \bigl(c\, z + \ln(1 + e^{-|z|})\bigr),
              \quad c = \begin{cases} 1 - t & z > 0 \\ -t & z \le 0 \end{cases},
              \qquad \frac{\partial L}{\partial z} = \frac{\sigma(z) - t}{N}

    The second form is exact and never overflows (:math:`e^{-|z|} \le 1`).  It is
    :math:`\max(z, 0) - z t` with the subtraction done on the coefficient, where it is
    exact for :math:`t \ge \tfrac12` (Sterbenz), not on the products, which cancel for
    :math:`t` near 1 (:math:`z = 10^{10}`, :math:`t = 1 - 2^{-30}`: a relative error of
    :math:`10^{-7}` in :math:`z - z t`, none in :math:`(1 - t) z`).  A term whose
    coefficient is 0 counts 0, the limit, so an infinite logit gives the true loss (0 or
    :math:`\infty`), where :math:`\infty \cdot 0` would be NaN.

    Parameters
    ----------
    logits : ndarray, shape (rows, classes or units)
        Unnormalised scores :math:`z`.
    targets : ndarray, shaped like the output
        :math:`t \in [0, 1]`.
    grad : ndarray, shaped like the output
        Receives the gradient ∂L/∂(output).

    Returns
    -------
    float
        The loss :math:`L`; the gradient is in ``grad``.
    """
    rows = logits.shape[0]
    z = logits.astype(np.float64)
    t = targets.astype(np.float64)
    sigma = activations.sigmoid(z, np.empty_like(z))
    grad[...] = (sigma - t) / rows
    c = np.where(z > 0, 1 - t, -t)
    linear = np.multiply(c, z, out=np.zeros_like(z), where=c != 0)
    return float((linear + np.log1p(np.exp(-np.abs(z)))).sum() / rows)


def cross_entropy(outputs, targets, grad):
    r"""Cross-entropy of sigmoid outputs :math:`a \in [0, 1]` against targets :math:`t`
    (one-hot, or any in [0, 1]), the classic per-unit cost [Nielsen]_ (eq. 57).

    .. math:: L = -\frac1N \sum_{r,j} \bigl(t \ln a + (1 - t) \ln(1 - a)\bigr), \qquad
              \frac{\partial L}{\partial a} = \frac1N \Bigl(-\frac{t}{a} + \frac{1 - t}{1 - a}\Bigr)
              = \frac{a - t}{N\,a(1 - a)}

    A term whose coefficient (:math:`t` or :math:`1 - t`) is 0 counts 0, the
    limit :math:`0 \ln 0 = 0`; an output that reaches 0 or 1 against the
    opposite target gives an infinite loss, the true value.  Through a sigmoid
    layer, :math:`\partial L / \partial z = (a - t)/N`: the :math:`\sigma'` that
    slows learning under the quadratic cost cancels [Nielsen]_ (eq. 61).

    Parameters
    ----------
    outputs : ndarray, shape (rows, units)
        The network's output :math:`a`.
    targets : ndarray, shaped like the output
        :math:`t \in [0, 1]`.
    grad : ndarray, shaped like the output
        Receives the gradient ∂L/∂(output).

    Returns
    -------
    float
        The loss :math:`L`; the gradient is in ``grad``.
    """
    rows = outputs.shape[0]
    a = outputs.astype(np.float64)
    t = targets.astype(np.float64)
    loss_terms = np.zeros_like(a)
    grad_terms = np.zeros_like(a)
    hit, miss = t != 0, t != 1
    with np.errstate(divide="ignore"):   # a = 0 or 1 against the opposite target: inf is right
        loss_terms[hit] -= t[hit] * np.log(a[hit])
        grad_terms[hit] -= t[hit] / a[hit]
        loss_terms[miss] -= (1 - t[miss]) * np.log1p(-a[miss])
        grad_terms[miss] += (1 - t[miss]) / (1 - a[miss])
    grad[...] = grad_terms / rows
    return float(loss_terms.sum() / rows)


def mean_squared_error(outputs, targets, grad):
    r"""Squared error summed over a row's units, averaged over the batch [Lee]_.

    .. math:: L = \frac1N \sum_{r} \lVert a_r - t_r \rVert^2, \qquad
              \frac{\partial L}{\partial a} = \frac{2 (a - t)}{N}

    This is Lee's :math:`\sum (\hat y - y)^2` per example.  PyTorch's
    ``MSELoss`` and Keras also divide by the number of units; Nielsen's
    quadratic cost has an extra :math:`\tfrac12`.

    Parameters
    ----------
    outputs : ndarray, shape (rows, units)
        The network's output :math:`a`.
    targets : ndarray, shaped like the output
        :math:`t \in [0, 1]`.
    grad : ndarray, shaped like the output
        Receives the gradient ∂L/∂(output).

    Returns
    -------
    float
        The loss :math:`L`; the gradient is in ``grad``.
    """
    rows = outputs.shape[0]
    d = outputs.astype(np.float64) - targets.astype(np.float64)
    grad[...] = 2 * d / rows
    return float((d * d).sum() / rows)
