r"""The public losses: validated, then run on the active backend.

Each loss takes the network's output for a batch (2-D: rows × classes or
units) and the targets, and returns ``(loss, grad)``: the loss summed over a
row and **averaged over the batch**, as a Python float, and its gradient with
respect to the output, shaped and typed like it.  The formulas and sources are
on the reference kernels in :mod:`refnet.reference.losses`.

An empty batch is a ``ValueError`` (the mean over no rows is undefined).
``out=``, if given, receives the gradient, as in :mod:`refnet.functional`.

:data:`LOSSES` maps each loss's name to its function (what
:meth:`refnet.Sequential.fit` accepts as ``loss=``), and :data:`ACCURACY` the
names of the classification losses to how their predictions are read.
"""

import numpy as np

from . import _validate
from .backend import active
from .functional import _finish

__all__ = [
    "softmax_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "mean_squared_error",
    "LOSSES",
    "ACCURACY",
]


def _run(kernel, output, target, out):
    grad_target, grad = _validate.output(out, output.shape, output.dtype, [output, target])
    loss = getattr(active(), kernel)(output, target, grad_target)
    return loss, _finish(grad_target, grad, out)


def _output_and_targets(output, targets, output_name):
    output = _validate.matrix(output, output_name, min_rows=1)
    return output, _validate.like(targets, "targets", output.dtype, output.shape, output_name)


def softmax_cross_entropy(logits, labels, out=None):
    r"""Softmax cross-entropy over integer class labels, fused and stable.

    .. math:: L = \frac1N \sum_r \Bigl(\log \sum_k e^{z_{rk}} - z_{r y_r}\Bigr),
              \qquad \nabla_z L = (\operatorname{softmax}(z) - \operatorname{onehot}(y)) / N

    Parameters
    ----------
    logits : array_like, shape (rows, classes)
        Unnormalised scores (no softmax layer before this loss).
    labels : array_like of int, shape (rows,)
        Class indices in ``[0, classes)``.
    out : ndarray, optional
        Where to write the gradient.

    Returns
    -------
    loss : float
        Averaged over the batch.
    grad : ndarray
        ∂L/∂(output), shaped and typed like the output (``out`` if given).

    Examples
    --------

    >>> import numpy as np, refnet
    >>> refnet.softmax_cross_entropy(np.array([[1000.0, 0.0]]), [1])   # no overflow
    (1000.0, array([[ 1., -1.]]))
    """
    logits = _validate.matrix(logits, "logits", min_rows=1)
    labels = _validate.labels(labels, "labels", logits.shape[0], logits.shape[1])
    return _run("softmax_cross_entropy", logits, labels, out)


def binary_cross_entropy_with_logits(logits, targets, out=None):
    r"""Binary cross-entropy with the sigmoid folded in: :math:`\sigma(z)` is :math:`P(C_1 \mid x)`.

    .. math:: L = \frac1N \sum_{r,j} \bigl(\max(z, 0) - z t + \ln(1 + e^{-|z|})\bigr),
              \qquad \nabla_z L = (\sigma(z) - t) / N

    (computed as :math:`(1 - t) z` or :math:`-t z`, with :math:`0 \cdot \pm\infty = 0`:
    see :func:`refnet.reference.losses.binary_cross_entropy_with_logits`).

    Parameters
    ----------
    logits : array_like, shape (rows, units)
        Unnormalised scores :math:`z` (no sigmoid layer before this loss).
    targets : array_like, shape and dtype of ``logits``
        :math:`t \in [0, 1]`.
    out : ndarray, optional
        Where to write the gradient.

    Returns
    -------
    loss : float
        Averaged over the batch.
    grad : ndarray
        ∂L/∂(output), shaped and typed like the output (``out`` if given).
    """
    logits, targets = _output_and_targets(logits, targets, "logits")
    _in_unit_interval(targets, "targets")
    return _run("binary_cross_entropy_with_logits", logits, targets, out)


def cross_entropy(outputs, targets, out=None):
    r"""Cross-entropy of sigmoid outputs against (one-hot) targets, the classic per-unit cost.

    .. math:: L = -\frac1N \sum_{r,j} \bigl(t \ln a + (1 - t) \ln(1 - a)\bigr),
              \qquad \nabla_a L = \frac{a - t}{N a (1 - a)}

    An output of exactly 0 or 1 against the opposite target gives ``inf``.

    Parameters
    ----------
    outputs : array_like, shape (rows, units)
        A sigmoid layer's outputs :math:`a \in [0, 1]`.
    targets : array_like, shape and dtype of ``outputs``
        :math:`t \in [0, 1]` (one-hot, or any).
    out : ndarray, optional
        Where to write the gradient.

    Returns
    -------
    loss : float
        Averaged over the batch.
    grad : ndarray
        ∂L/∂(output), shaped and typed like the output (``out`` if given).
    """
    outputs, targets = _output_and_targets(outputs, targets, "outputs")
    _in_unit_interval(outputs, "outputs")
    _in_unit_interval(targets, "targets")
    return _run("cross_entropy", outputs, targets, out)


def mean_squared_error(outputs, targets, out=None):
    r"""Squared error summed over a row, averaged over the batch.

    .. math:: L = \frac1N \sum_r \lVert a_r - t_r \rVert^2, \qquad \nabla_a L = 2 (a - t) / N

    Parameters
    ----------
    outputs : array_like, shape (rows, units)
    targets : array_like, shape and dtype of ``outputs``
    out : ndarray, optional
        Where to write the gradient.

    Returns
    -------
    loss : float
        Averaged over the batch.
    grad : ndarray
        ∂L/∂(output), shaped and typed like the output (``out`` if given).
    """
    outputs, targets = _output_and_targets(outputs, targets, "outputs")
    return _run("mean_squared_error", outputs, targets, out)


def _in_unit_interval(array, name):
    # Two reductions, no temporary: fit checks every batch's targets (a NaN fails both).
    if array.size and not (array.min() >= 0 and array.max() <= 1):
        raise ValueError(f"{name} must lie in [0, 1]")


def _classes(values, threshold):
    """Class of each row: the argmax, or ``value > threshold`` for a single unit."""
    if values.shape[1] == 1:
        return (values[:, 0] > threshold).astype(np.intp)
    return values.argmax(axis=1)


LOSSES = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "cross_entropy": cross_entropy,
    "mean_squared_error": mean_squared_error,
}

# How each classification loss's output is read as a class: logits by their
# argmax (or their sign, for one unit); sigmoid outputs and targets likewise at 0.5.
ACCURACY = {
    "softmax_cross_entropy": lambda logits, labels: np.mean(logits.argmax(axis=1) == labels),
    "binary_cross_entropy_with_logits": lambda logits, targets: np.mean(
        _classes(logits, 0.0) == _classes(targets, 0.5)
    ),
    "cross_entropy": lambda outputs, targets: np.mean(
        _classes(outputs, 0.5) == _classes(targets, 0.5)
    ),
}
