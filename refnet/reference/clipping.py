r"""Gradient clipping: by value, by the norm or RMS of each array, by the norm of all arrays together.

Clipping bounds the step a single bad batch can cause (Pascanu et al. 2013,
"On the difficulty of training recurrent neural networks": exploding
gradients).  Each library offers a few forms, with small differences written
out here as formulas, :math:`c` the threshold and :math:`g` the gradients:

=================  ===========================================  =================================================
form               library                                      formula (as its source computes it)
=================  ===========================================  =================================================
by value           Keras ``clipvalue``, torch                   :math:`\min(\max(g, -c), c)`
                   ``clip_grad_value_``, optax ``clip``
norm of each       Keras ``clipnorm``                           :math:`g\,c / \max(\lVert g\rVert_2, c)`
array
RMS of each array  optax ``clip_by_block_rms``                  :math:`g / \max(1, \operatorname{rms}(g) / c)`
global norm        torch ``clip_grad_norm_``                    :math:`g \min(1, c / (\lVert g\rVert_p + 10^{-6}))`
global norm        Keras ``global_clipnorm``                    :math:`g\, c\min(1/\lVert g\rVert_2, 1/c)`
global norm        optax ``clip_by_global_norm``                :math:`g` if :math:`\lVert g\rVert_2 < c`, else
                                                                :math:`(g / \lVert g\rVert_2)\,c`
=================  ===========================================  =================================================

Sources: ``torch/nn/utils/clip_grad.py`` (2.13.0: ``_clip_grads_with_norm_``,
``clip_coef = max_norm / (total_norm + 1e-6)`` then ``clamp(max=1.0)``;
``clip_grad_value_`` clamps); ``keras/src/optimizers/base_optimizer.py`` (3.15:
``_clip_gradients``, ``_clip_by_norm``, ``clip_by_global_norm``; only one of the
three may be set); ``optax/transforms/_clipping.py`` (0.2.8: ``clip``,
``clip_by_block_rms``, ``clip_by_global_norm``).  Keras 3.15.1 on its torch
backend rounds the :math:`\max` / :math:`\min` of ``clipnorm`` and
``global_clipnorm`` to float32 even under floatx float64 (``ops.maximum`` of a
tensor and the Python float :math:`c` returns float32), so its clipped
gradients differ from the formula by up to :math:`2^{-24}` relative (3e-8
measured; tested against that rounding exactly); refnet computes the formula in
the arrays' own dtype.

Here every norm form is one formula,

.. math::

    g \leftarrow g \cdot \min\!\Big(1, \frac{c}{\lVert g\rVert + \varepsilon}\Big),

with ε = 10⁻⁶ reproducing PyTorch and ε = 0 Keras and optax (the three
agree for finite norms up to rounding; PyTorch's ε also scales by
:math:`c/(\lVert g\rVert + 10^{-6}) < 1` a gradient whose norm lies within
10⁻⁶ below :math:`c`).  :math:`\lVert g\rVert` is the :math:`p`-norm
(PyTorch's ``norm_type``; ``inf`` is :math:`\max|g|`), computed as
:math:`m\,(\sum (|g|/m)^p)^{1/p}` with :math:`m = \max|g|` (for :math:`p = 2` only where
the plain :math:`\sum g^2` overflows or nears underflow), so that no finite
gradient overflows it (a direct :math:`\sum g^2` overflows from
:math:`|g| \approx 10^{154}` in float64, :math:`10^{19}` in float32, and
PyTorch then zeroes the gradient); where the norm itself exceeds the largest
float the factor is computed as :math:`(c/m) / ((\sum (|g|/m)^p)^{1/p} + \varepsilon/m)`.

Edge cases, stated and tested: a zero gradient (norm 0) is left as is; an
empty array has norm 0 and is left as is (optax's RMS of an empty array is
NaN); a gradient holding ±inf has norm inf and factor 0, so its finite
elements become 0 and its infinite ones NaN (PyTorch and optax do the same;
Keras' ``global_clipnorm`` makes every element NaN); a NaN anywhere makes
the norm and every clipped element NaN.  By value, NaN stays NaN and ±inf
becomes ±c.  The input arrays are never modified.

Not a kernel: clipping has no compiled twin.  Both backends run this NumPy code
(allocation-free, into buffers the optimizer keeps) before their fused update.
"""

import math
import numbers

import numpy as np

from .. import _validate

__all__ = ["grad_norm", "clip_by_value", "clip_by_norm", "clip_by_rms", "clip_by_global_norm"]

# The one ε PyTorch adds to the norm (torch/nn/utils/clip_grad.py, _clip_grads_with_norm_).
TORCH_EPS = 1e-6


def check_threshold(value, name):
    """A clipping threshold: a finite real > 0."""
    number = _validate.finite_scalar(value, name)
    if number <= 0:
        raise ValueError(f"{name} must be > 0, got {number}")
    return number


def check_norm_type(value, name="norm_type"):
    """The p of a p-norm: a real >= 1, or inf."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 1 or inf, got {value!r}")
    number = float(value)
    if not number >= 1:
        raise ValueError(f"{name} must be >= 1 (a norm) or inf, got {number}")
    return number


def check_eps(value, name="eps"):
    number = _validate.finite_scalar(value, name)
    if number < 0:
        raise ValueError(f"{name} must be >= 0, got {number}")
    return number


# --- the in-place core, shared with refnet.optim (allocation-free given ``out``) --------------

def _max_abs(grad, out):
    """max |g| of one array, |g| left in ``out``; 0 for an empty array, NaN if g holds a NaN."""
    np.abs(grad, out=out)
    return float(out.max()) if out.size else 0.0


def _largest(values):
    """max of floats, NaN if any is NaN (Python's max ignores a NaN depending on its place)."""
    largest = 0.0
    for value in values:
        if math.isnan(value):
            return math.nan
        largest = max(largest, value)
    return largest


def _scaled_power_sum(out, m, norm_type):
    r""":math:`\sum (|g|/m)^p` of one array whose :math:`|g|` is in ``out`` (overwritten)."""
    if not out.size or norm_type == math.inf:
        return 0.0
    np.divide(out, m, out=out)
    # Squares and NumPy's pairwise sum rather than a BLAS dot product: as fast where BLAS runs
    # on one thread, 20x faster where its threads contend for busy cores, and more accurate.
    if norm_type == 2:
        np.square(out, out=out)
    elif norm_type != 1:
        np.power(out, norm_type, out=out)
    return float(out.sum())


def _factor(norm, m, root, threshold, eps):
    r""":math:`\min(1, c / (\lVert g\rVert + \varepsilon))`, ``norm = m * root``; see the module's edge cases."""
    if math.isnan(norm):
        return math.nan
    if math.isinf(norm) and math.isfinite(m):
        # Finite gradients whose norm overflows: the same ratio, without forming the norm.
        return min(1.0, threshold / m / (root + eps / m))
    denominator = norm + eps
    return 1.0 if denominator == 0 else min(1.0, threshold / denominator)


def _plain_sum_of_squares(grads, outs):
    r""":math:`\sum g^2` summed directly (two passes instead of four), or None where that could overflow
    or lose precision to underflow: a sum that is not finite, or below ``size * tiny / eps``, beneath
    which the squares lost to the subnormal range could weigh more than a rounding."""
    total = 0.0
    for g, o in zip(grads, outs):
        np.square(g, out=o)
        part = float(o.sum())
        info = np.finfo(g.dtype)
        if not math.isfinite(part) or (g.size and part < g.size * float(info.tiny) / float(info.eps)):
            return None
        total += part
    return total


def _norm_parts(grads, outs, norm_type):
    """(norm, m, root) of all ``grads`` together, ``norm = m * root``; ``outs`` is scratch."""
    if norm_type == 2:
        total = _plain_sum_of_squares(grads, outs)
        if total is not None:
            norm = math.sqrt(total)
            return norm, norm, 1.0
    m = _largest([_max_abs(g, o) for g, o in zip(grads, outs)])
    if m == 0 or not math.isfinite(m) or norm_type == math.inf:
        return m, m, 1.0
    root = math.fsum(_scaled_power_sum(o, m, norm_type) for o in outs) ** (1.0 / norm_type)
    return m * root, m, root


def clip_into(kind, grads, outs, threshold, norm_type=2.0, eps=0.0):
    """Write the clipped ``grads`` into ``outs`` (same shapes and dtypes) and return the norm
    ``kind`` clipped by (None for ``"value"``).

    ``kind`` is ``"value"``, ``"norm"`` (each array), ``"rms"`` (each array) or
    ``"global_norm"``.  Allocates nothing but Python floats: the optimizers call it every step.
    """
    if kind == "value":
        for g, o in zip(grads, outs):
            np.clip(g, -threshold, threshold, out=o)
        return None
    if kind == "global_norm":
        norm, m, root = _norm_parts(grads, outs, norm_type)
        factor = _factor(norm, m, root, threshold, eps)
        for g, o in zip(grads, outs):
            np.multiply(g, factor, out=o)
        return norm
    norms = []
    for g, o in zip(grads, outs):
        norm, m, root = _norm_parts([g], [o], 2.0 if kind == "rms" else norm_type)
        if kind == "rms":
            # rms(g) = ||g||_2 / sqrt(n): the same factor with m / sqrt(n) in place of m, and no eps (optax).
            size = math.sqrt(g.size) if g.size else 1.0
            norm, m, eps = norm / size, m / size, 0.0
        np.multiply(g, _factor(norm, m, root, threshold, eps), out=o)
        norms.append(norm)
    return norms


# --- the public functions: new arrays, the inputs untouched ---------------------------------

def _arrays(grads):
    if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
        raise TypeError(f"grads must be a list or tuple of arrays, got {type(grads).__name__}")
    return [_validate.float_array(g, f"grads[{i}]") for i, g in enumerate(grads)]


def _clipped(kind, grads, threshold, norm_type=2.0, eps=0.0):
    grads = _arrays(grads)
    outs = [np.empty_like(g) for g in grads]
    with np.errstate(all="ignore"):
        norm = clip_into(kind, grads, outs, threshold, norm_type, eps)
    return outs, norm


def grad_norm(grads, norm_type=2.0):
    r"""The :math:`p`-norm of all arrays together, :math:`\lVert g\rVert_p = (\sum_i |g_i|^p)^{1/p}`.

    Computed as :math:`m\,(\sum (|g_i|/m)^p)^{1/p}`, :math:`m = \max|g_i|`, so it
    overflows only when the norm itself exceeds the largest float (then inf).
    PyTorch's ``torch.nn.utils.get_total_norm``; Keras' and optax's global norm for :math:`p = 2`.

    Parameters
    ----------
    grads : list of array_like
        Float32 or float64 arrays of any shapes.
    norm_type : float >= 1 or inf, default 2
        :math:`p`; ``inf`` gives :math:`\max |g_i|`.

    Returns
    -------
    float
        0 for no elements, inf if any element is infinite, NaN if any is NaN.
    """
    norm_type = check_norm_type(norm_type)
    grads = _arrays(grads)
    with np.errstate(all="ignore"):
        return _norm_parts(grads, [np.empty_like(g) for g in grads], norm_type)[0]


def clip_by_value(grads, clip_value):
    r"""Each element clipped to :math:`[-c, c]`: :math:`\min(\max(g, -c), c)`.

    Keras' ``clipvalue``, PyTorch's ``clip_grad_value_``, optax's ``clip``.
    NaN stays NaN, ±inf becomes ±c.

    Parameters
    ----------
    grads : list of array_like
        Float32 or float64 arrays (not modified).
    clip_value : float > 0
        :math:`c`.

    Returns
    -------
    list of numpy.ndarray
        The clipped gradients, new arrays.
    """
    return _clipped("value", grads, check_threshold(clip_value, "clip_value"))[0]


def clip_by_norm(grads, max_norm, norm_type=2.0, eps=0.0):
    r"""Each array scaled on its own: :math:`g \min(1, c / (\lVert g\rVert_p + \varepsilon))`.

    Keras' ``clipnorm`` (:math:`p = 2`, ε = 0:
    ``_clip_by_norm`` computes :math:`g c / \max(\lVert g\rVert_2, c)`).

    Parameters
    ----------
    grads : list of array_like
        Float32 or float64 arrays (not modified).
    max_norm : float > 0
        :math:`c`, the largest norm an array keeps.
    norm_type : float >= 1 or inf, default 2
        :math:`p`.
    eps : float >= 0, default 0
        Added to the norm (PyTorch adds 1e-6 in ``clip_grad_norm_``).

    Returns
    -------
    list of numpy.ndarray
        The clipped gradients, new arrays.
    """
    return _clipped("norm", grads, check_threshold(max_norm, "max_norm"), check_norm_type(norm_type),
                    check_eps(eps))[0]


def clip_by_rms(grads, max_rms):
    r"""Each array scaled on its own so that its root mean square is at most :math:`c`:
    :math:`g \min(1, c / \operatorname{rms}(g))`, :math:`\operatorname{rms}(g) = \sqrt{\operatorname{mean}(g^2)}`.

    optax's ``clip_by_block_rms`` (which computes :math:`g / \max(1, \operatorname{rms}(g)/c)`).

    Parameters
    ----------
    grads : list of array_like
        Float32 or float64 arrays (not modified).
    max_rms : float > 0
        :math:`c`.

    Returns
    -------
    list of numpy.ndarray
        The clipped gradients, new arrays (an empty array stays empty, with no NaN).
    """
    return _clipped("rms", grads, check_threshold(max_rms, "max_rms"))[0]


def clip_by_global_norm(grads, max_norm, norm_type=2.0, eps=TORCH_EPS):
    r"""All arrays scaled by one factor: :math:`g \min(1, c / (\lVert g\rVert_p + \varepsilon))`,
    :math:`\lVert g\rVert_p` the norm of all of them together (:func:`grad_norm`).

    PyTorch's ``clip_grad_norm_`` (the default ε = 1e-6 is its constant), without
    modifying the arrays; ``eps=0`` is Keras' ``global_clipnorm`` and optax's
    ``clip_by_global_norm`` for finite norms (see the module for the non-finite ones).

    Parameters
    ----------
    grads : list of array_like
        Float32 or float64 arrays (not modified).
    max_norm : float > 0
        :math:`c`, the largest norm the gradients keep.
    norm_type : float >= 1 or inf, default 2
        :math:`p` (PyTorch's ``norm_type``).
    eps : float >= 0, default 1e-6
        Added to the norm.

    Returns
    -------
    clipped : list of numpy.ndarray
        New arrays.
    total_norm : float
        The norm before clipping, as PyTorch returns it.
    """
    return _clipped("global_norm", grads, check_threshold(max_norm, "max_norm"), check_norm_type(norm_type),
                    check_eps(eps))
