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

Two modes.  ``mode="full"`` compares every coordinate (the whole gradient, one
central difference per coordinate: two evaluations each).  ``mode="fast"``
compares directional derivatives along a few random unit vectors :math:`u`
over all the arrays at once [PyTorch]_ (``fast_mode``), :math:`\nabla L \cdot u`
against :math:`(L(\theta + \epsilon u) - L(\theta - \epsilon u))/2\epsilon`:
two evaluations per direction whatever the size, and a wrong gradient
component shows in every random direction except with probability 0.

Kinks.  At or near a point where :math:`L` is not differentiable (a ReLU or
Maxout input at 0), the central difference averages the two one-sided
derivatives and disagrees with any analytic choice there, a false failure.
Where a coordinate's (or direction's) error exceeds ``SUSPECT``, the one-sided
differences :math:`D_\pm(h)` are compared at :math:`h = \epsilon` and
:math:`\epsilon/10`: for a smooth :math:`L` their gap :math:`D_+ - D_-
\approx h L''` shrinks tenfold with :math:`h`.

* If the gap does not shrink (and stands far above rounding), :math:`L` is not
  differentiable within :math:`\epsilon/10` of the point, and the coordinate is
  not judged: one line can cross several kinks at once (moving one input of a
  Dense layer moves every unit of its row through 0), where the analytic value
  is a sum of choices, one per kink, that nothing measured along the line bounds.
* If it shrinks and, at :math:`h = \epsilon`, explains the disagreement
  (:math:`|D_+ - D_-| \ge |g - \hat g|`), a kink lies between :math:`\epsilon/10`
  and :math:`\epsilon` away, and the analytic value is judged against the
  central difference with step :math:`\epsilon/10`: a wrong gradient still fails.

Both are listed in ``kinks``; the first are left out of ``max_error``.  A wrong
gradient of a smooth function fails as before: its gap is :math:`\epsilon L''`,
which shrinks, and is far smaller than its error.  In ``mode="fast"`` every
random direction crosses every kink at the point, so where a direction finds
one the coordinates are checked instead (the full mode's result is returned).

References
----------
.. [NocedalWright] J. Nocedal and S. J. Wright, *Numerical Optimization*,
   2nd ed., 2006, §8.1 (finite-difference derivative approximations).
.. [PyTorch] ``torch.autograd.gradcheck(..., fast_mode=True)``: the Jacobian
   projected on random vectors.
"""

from typing import NamedTuple

import numpy as np

from . import _validate
from .network import _resolve_loss

__all__ = ["gradcheck", "GradcheckResult", "SUSPECT"]

# Errors above this are examined for a kink.  Correct gradients of smooth float64
# networks err by 1e-6 or less (3e-6 the worst of 300 random networks), and each
# examination costs four evaluations of the loss.
SUSPECT = 1e-5

_FLOAT32_REFUSAL = (
    "gradcheck needs float64: float32 rounds each loss to about 6e-8 relative, and a central "
    "difference divides that by the step, which makes its error (~1e-2) larger than the "
    "differences it should detect; build the {what} with dtype=numpy.float64"
)


class GradcheckResult(NamedTuple):
    """The worst coordinate: its error, which array (``"input"`` or a parameter name) and where in it.

    In ``mode="fast"`` ``where`` is ``"direction"`` and ``index`` the direction's
    number (unless a kink made it check the coordinates).  ``kinks`` lists
    ``(where, index)`` of each coordinate found at or near a non-differentiable
    point: judged with a smaller step, or, within ε/10 of it, not judged (see the module doc).

    Attributes
    ----------
    max_error : float
        The largest error found.
    where : str
        ``"input"``, a parameter's name, or ``"direction"``.
    index : tuple
        The coordinate (or direction number) of that error.
    analytic, numeric : float
        The two derivatives compared there.
    kinks : tuple
        ``(where, index)`` of each coordinate at or near a kink.
    """

    max_error: float
    where: str
    index: tuple
    analytic: float
    numeric: float
    kinks: tuple = ()


def _is_model(target):
    return callable(getattr(target, "forward", None)) and callable(getattr(target, "backward", None))


def _named_parameters(model):
    return list(model.named_parameters()) if hasattr(model, "named_parameters") else []


def gradcheck(target, x, y=None, *, loss=None, eps=1e-6, atol=1e-4, seed=0, mode="full", directions=4):
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
    mode : {"full", "fast"}
        Every coordinate, or ``directions`` random directions (see the module doc).
    directions : int
        How many random unit vectors ``mode="fast"`` tries (seeded by ``seed``).

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

    Examples
    --------
    >>> import numpy as np, refnet
    >>> net = refnet.Sequential([refnet.Dense(3, 2, activation="tanh", seed=0)])
    >>> refnet.gradcheck(net, np.ones((4, 3))).max_error < 1e-6
    True
    >>> refnet.gradcheck(net, np.ones((4, 3)), mode="fast").max_error < 1e-6
    True
    >>> at_the_kink = refnet.gradcheck(refnet.ReLU(), np.array([[0.0, 1.0]]))
    >>> at_the_kink.max_error < 1e-6, at_the_kink.kinks
    (True, (('input', (0, 0)),))
    """
    eps = _validate.finite_scalar(eps, "eps")
    atol = _validate.finite_scalar(atol, "atol")
    if eps <= 0 or atol < 0:
        raise ValueError(f"eps must be positive and atol non-negative, got eps={eps}, atol={atol}")
    if mode not in ("full", "fast"):
        raise ValueError(f"mode must be 'full' or 'fast', got {mode!r}")
    directions = _validate.positive_int(directions, "directions")
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
    if mode == "fast":
        result = _worst(_random_directions(scalar, arrays, grads, directions, seed), eps, atol)
        if not result.kinks:
            return result
        # Every direction crosses every kink at θ: only coordinate lines can avoid them.
    return _worst(_coordinates(scalar, arrays, grads), eps, atol)


def _worst(lines, eps, atol):
    """The GradcheckResult of the worst line, with every kink found."""
    worst = GradcheckResult(0.0, "input", (), 0.0, 0.0)
    kinks = []
    for where, index, line, derivative in lines:
        numeric = _central_difference(line, eps)
        error = _error(derivative, numeric, atol)
        if error > SUSPECT:
            kink_error = _kink_error(line, eps, derivative, numeric, atol)
            if kink_error is not None:
                error = kink_error
                kinks.append((where, index))
        if error > worst.max_error or not np.isfinite(error):
            worst = GradcheckResult(float(error), where, index, float(derivative), float(numeric))
    return worst._replace(kinks=tuple(kinks))


def _error(analytic, numeric, atol):
    difference = abs(analytic - numeric)
    # Equal derivatives are no error, also where both are 0 and atol is 0 (0 / 0).
    return 0.0 if difference == 0 else difference / max(abs(analytic), abs(numeric), atol)


def _coordinates(scalar, arrays, grads):
    """(where, index, L along the coordinate, the analytic partial derivative) for every coordinate."""
    for (name, array), grad in zip(arrays, grads):
        for index in np.ndindex(array.shape):
            yield name, index, _coordinate_line(scalar, array, index), grad[index]


def _coordinate_line(scalar, array, index):
    """``line(t)`` = L(θ + t e_i) (L(θ) for ``t=None``), restoring θ_i exactly afterwards."""
    def line(t):
        if t is None:
            return scalar()
        original = array[index]
        try:
            array[index] = original + t
            return scalar()
        finally:
            array[index] = original
    return line


def _random_directions(scalar, arrays, grads, count, seed):
    """(``"direction"``, (k,), L along u_k, ∇L·u_k) for ``count`` random unit vectors over all arrays."""
    rng = _validate.generator(seed)
    for k in range(count):
        direction = [rng.standard_normal(array.shape) for _, array in arrays]
        norm = np.sqrt(sum(float((d * d).sum()) for d in direction))
        direction = [d / norm for d in direction]
        derivative = sum(float((g * d).sum()) for g, d in zip(grads, direction))
        yield "direction", (k,), _direction_line(scalar, [a for _, a in arrays], direction), derivative


def _direction_line(scalar, arrays, direction):
    """``line(t)`` = L(θ + t u) over all arrays at once (L(θ) for ``t=None``), restoring θ exactly."""
    def line(t):
        if t is None:
            return scalar()
        originals = [a.copy() for a in arrays]
        try:
            for array, original, d in zip(arrays, originals, direction):
                array[...] = original + t * d
            return scalar()
        finally:
            for array, original in zip(arrays, originals):
                array[...] = original
    return line


def _central_difference(line, eps):
    """(L(θ + ε d) − L(θ − ε d)) / 2ε along the line."""
    return (line(eps) - line(-eps)) / (2 * eps)


def _kink_error(line, eps, analytic, numeric, atol):
    """The error judged as near a kink (0 where one lies within ε/10: not judged; see the
    module doc), or None where no kink shows."""
    center = line(None)
    forward, backward = (line(eps) - center) / eps, (center - line(-eps)) / eps
    small = eps / 10
    forward_small, backward_small = (line(small) - center) / small, (center - line(-small)) / small
    gap, gap_small = abs(forward - backward), abs(forward_small - backward_small)
    # Each one-sided difference at step h errs by ~2u|L|/h from rounding; a gap a thousand
    # times that, which does not shrink with the step as a smooth L's h L'' does, is a kink.
    noise = 1e3 * np.finfo(np.float64).eps * abs(center) / small
    if gap_small > max(0.5 * gap, noise):
        return 0.0
    if gap >= abs(analytic - numeric):
        return _error(analytic, (forward_small + backward_small) / 2, atol)
    return None


def _model_objective(model, x, y, loss, seed):
    """(scalar(), analytic()) for a model; analytic() gives [∂L/∂x] + the parameters' gradients."""
    if loss is None:
        projection = _validate.generator(seed).standard_normal(np.shape(model.forward(x)))

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
