r"""Gradient checking: analytic gradients against central differences, in float64.

For a scalar :math:`L(\theta)` and each coordinate :math:`\theta_i`,

.. math:: \frac{\partial L}{\partial \theta_i} \approx
          \frac{L(\theta + \epsilon e_i) - L(\theta - \epsilon e_i)}{2\epsilon},

whose truncation error is :math:`\epsilon^2 L'''/6` and whose rounding error is
about :math:`u |L| / \epsilon` (:math:`u` the unit roundoff) [NocedalWright]_
(§8.1).  In float64 (:math:`u \approx 1.1 \times 10^{-16}`) with
:math:`\epsilon = 10^{-6}` both are around :math:`10^{-10}`; in float32
(:math:`u \approx 6 \times 10^{-8}`) the rounding term alone is
:math:`\approx 0.06 |L|`, which swamps the gradient.  So float32 is refused.

The error reported for each coordinate is

.. math:: \frac{|g_i - \hat g_i|}{\max(|g_i|, |\hat g_i|, \text{atol})},

relative where the gradient is large and absolute (scaled by ``atol``) where
it is near 0, since a relative error of two numbers that should both be 0
means nothing.

References
----------
.. [NocedalWright] J. Nocedal and S. J. Wright, *Numerical Optimization*,
   2nd ed., 2006, §8.1 (finite-difference derivative approximations).
"""

from typing import NamedTuple

import numpy as np

from . import _validate
from .network import _resolve_loss

__all__ = ["gradcheck", "GradcheckResult"]

_FLOAT32_REFUSAL = (
    "gradcheck needs float64: float32 rounds each loss to about 6e-8 relative, and a central "
    "difference divides that by the step, which makes its error (~1e-2) larger than the "
    "differences it should detect; build the {what} with dtype=numpy.float64"
)


class GradcheckResult(NamedTuple):
    """The worst coordinate: its error, which array (``"input"`` or a parameter name) and where in it."""

    max_error: float
    where: str
    index: tuple
    analytic: float
    numeric: float


def _is_model(target):
    return callable(getattr(target, "forward", None)) and callable(getattr(target, "backward", None))


def _named_parameters(model):
    return list(model.named_parameters()) if hasattr(model, "named_parameters") else []


def gradcheck(target, x, y=None, *, loss=None, eps=1e-6, atol=1e-4, seed=0):
    r"""Compare the analytic gradients of a layer, network or loss with central differences.

    Parameters
    ----------
    target : layer, Sequential, or loss function
        A model (``forward``/``backward``) or a loss ``f(output, y) -> (loss, grad)``.
    x : array_like of float64
        The model's input, or the loss's first argument.
    y : array_like, optional
        Targets: the loss's second argument.
    loss : str or callable, optional
        For a model: the scalar checked is ``loss(model.forward(x), y)``.  Without
        one it is :math:`\sum_{ij} \text{output}_{ij} R_{ij}` for a fixed random
        :math:`R` (seeded by ``seed``), which exercises every output.
    eps : float
        The step :math:`\epsilon`.
    atol : float
        Gradients smaller than this are compared absolutely (see the module doc).

    Returns
    -------
    GradcheckResult
        ``max_error`` over the input and every parameter, and where it occurred.
        Correct gradients of small float64 networks give 1e-6 or less (3e-6 was
        the largest over 300 random networks); a wrong one gives errors near 1.

    Raises
    ------
    TypeError
        For float32 inputs or parameters (see the module doc for why).

    >>> import numpy as np, refnet
    >>> net = refnet.Sequential([refnet.Dense(3, 2, activation="tanh", seed=0)])
    >>> refnet.gradcheck(net, np.ones((4, 3))).max_error < 1e-6
    True
    """
    eps = _validate.finite_scalar(eps, "eps")
    atol = _validate.finite_scalar(atol, "atol")
    if eps <= 0 or atol < 0:
        raise ValueError(f"eps must be positive and atol non-negative, got eps={eps}, atol={atol}")
    x = _validate.float_array(x, "x")
    if x.dtype != np.float64:
        raise TypeError(_FLOAT32_REFUSAL.format(what="input x"))
    x = x.copy()   # perturbed in place below; the caller's array is left alone
    if _is_model(target):
        parameters = _named_parameters(target)
        for name, array in parameters:
            if array.dtype != np.float64:
                raise TypeError(_FLOAT32_REFUSAL.format(what=f"model (parameter {name} is {array.dtype})"))
        scalar, analytic = _model_objective(target, x, y, loss, seed)
    elif callable(target):
        parameters = []
        scalar, analytic = _loss_objective(target, x, y)
    else:
        raise TypeError(f"target must be a layer, a network or a loss function, got {target!r}")
    arrays = [("input", x)] + parameters
    grads = analytic()
    worst = GradcheckResult(0.0, "input", (), 0.0, 0.0)
    for (name, array), grad in zip(arrays, grads):
        for index in np.ndindex(array.shape):
            numeric = _central_difference(scalar, array, index, eps)
            error = abs(grad[index] - numeric) / max(abs(grad[index]), abs(numeric), atol)
            if error > worst.max_error or not np.isfinite(error):
                worst = GradcheckResult(float(error), name, index, float(grad[index]), float(numeric))
    return worst


def _central_difference(scalar, array, index, eps):
    """(L(θ + ε e_i) − L(θ − ε e_i)) / 2ε, restoring θ_i exactly afterwards."""
    original = array[index]
    try:
        array[index] = original + eps
        upper = scalar()
        array[index] = original - eps
        lower = scalar()
    finally:
        array[index] = original
    return (upper - lower) / (2 * eps)


def _model_objective(model, x, y, loss, seed):
    """(scalar(), analytic()) for a model; analytic() gives [∂L/∂x] + the parameters' gradients."""
    if loss is None:
        projection = np.random.default_rng(seed).standard_normal(np.shape(model.forward(x)))

        def scalar():
            return float((model.forward(x) * projection).sum())

        def output_gradient(output):
            return projection
    else:
        loss_function, _ = _resolve_loss(loss)

        def scalar():
            return loss_function(model.forward(x), y)[0]

        def output_gradient(output):
            return loss_function(output, y)[1]

    def analytic():
        grad_input = model.backward(output_gradient(model.forward(x)))
        return [grad_input.copy()] + [g.copy() for g in model.gradients()]

    return scalar, analytic


def _loss_objective(loss_function, x, y):
    def evaluated():
        result = loss_function(x, y)
        if not (isinstance(result, tuple) and len(result) == 2 and np.shape(result[1]) == x.shape):
            raise TypeError(f"target must be a loss function returning (loss, grad shaped like x {x.shape}), "
                            f"got {type(result).__name__} from {loss_function!r}")
        return result

    def scalar():
        return evaluated()[0]

    def analytic():
        return [np.array(evaluated()[1], dtype=np.float64)]

    return scalar, analytic
