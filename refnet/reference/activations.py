r"""Activation functions as readable NumPy: each formula transcribed as written.

These are the *reference kernels*: :mod:`refnet._core` holds a compiled twin of
every function here, with the same name and the same parameters, and the tests
prove that the twins agree with each other and with the closed forms.

Kernels do no input validation.  The public functions in
:mod:`refnet.functional` check the arguments, allocate ``out`` and then call
the active backend, so every kernel may assume:

* all arrays are C-contiguous and of one dtype, ``float32`` or ``float64``;
* elementwise kernels get 1-D arrays of equal length;
* row-wise kernels (softmax, PReLU, Maxout) get 2-D arrays whose last axis is
  the one the formula runs along;
* ``out`` is writeable, has the result's shape, and either is exactly an input
  or shares no memory with one.

``float32`` results of transcendental formulas (sigmoid, tanh, softmax) are
evaluated in ``float64`` and rounded once, which makes them correctly rounded
except in rare near-halfway cases; ``float64`` results are within a few ulp
(the bounds are stated per function and tested against an extended-precision
oracle in ``tests/test_accuracy.py``).

References
----------
Defined once in the documentation's bibliography (``docs/bibliography.rst``);
the notes here say which part of each source this module follows.

* [Lee] Hung-yi Lee, "Tips for Training DNN", Machine Learning course, National
  Taiwan University.
* [Bishop] C. M. Bishop, *Pattern Recognition and Machine Learning*, §4.2 and §5.3.
* [He2015] K. He et al., "Delving Deep into Rectifiers", ICCV 2015 (PReLU).
* [Goodfellow2013] I. Goodfellow et al., "Maxout Networks", ICML 2013.
"""

import numpy as np

__all__ = [
    "sigmoid",
    "sigmoid_derivative",
    "sigmoid_backward",
    "tanh",
    "tanh_derivative",
    "tanh_backward",
    "relu",
    "relu_derivative",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_derivative",
    "leaky_relu_backward",
    "prelu",
    "prelu_backward",
    "softmax",
    "softmax_backward",
    "maxout",
    "maxout_backward",
]


def _logistic_halves(z):
    r"""Return :math:`\sigma(|z|)` and :math:`\sigma(-|z|)` in float64, from
    :math:`e = e^{-|z|} \in (0, 1]`, which can neither overflow nor lose the tails:

    .. math:: \sigma(|z|) = \frac{1}{1 + e}, \qquad \sigma(-|z|) = \frac{e}{1 + e}.
    """
    e = np.exp(-np.abs(z, dtype=np.float64))
    return 1 / (1 + e), e / (1 + e)


# Cody and Waite's split of ln 2 (fdlibm's): LN2_HI has its low 21 bits zero, so k * LN2_HI is
# exact for |k| < 2^21 and x - k * LN2_HI is exact where x is within ln 2 of k ln 2.
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10


def _times_exp(g, x, extra=0):
    r""":math:`g\,e^{x}\,2^{\text{extra}}` for float64 ``g`` and ``x``, with no underflow before the product.

    With :math:`x = k \ln 2 + r`, :math:`|r| \le \tfrac12 \ln 2`: :math:`(g/2) e^r` is rounded once
    (halved first: :math:`e^r` reaches :math:`\sqrt 2`, and :math:`g` the largest float) and then
    scaled by :math:`2^{k + 1 + \text{extra}}` exactly (``ldexp``; one more rounding only where
    the result itself is subnormal).  Error: :math:`r` rounds once (:math:`2^{-55}` absolute,
    0.25 ulp of :math:`e^r`), libm's exp < 1 ulp, the product 0.5: < 1.75 ulp.  For
    :math:`|x| \le 3000` (:math:`|k| < 2^{12}`).
    """
    k = np.rint(x / np.log(2))
    r = (x - k * _LN2_HI) - k * _LN2_LO
    return np.ldexp(g * 0.5 * np.exp(r), k.astype(np.int32) + (extra + 1))


def _backward_tails(grad_output, z, band, doubled):
    """Where f'(z) = c e^(-s|z|) (1 + ...) is subnormal in float64 but g f'(z) need not be, the
    mask and g e^(-s|z|) c by :func:`_times_exp` (s = 2 and c = 4 for sech^2, ``doubled``; s = c = 1
    for sigma'), in place of the product with a subnormal f'(z); None if no element is there.
    There e^(-s|z|) < 2^-1021, so the factor 1 / (1 + e)^2 is 1 within 2^-1020 relative.
    ``band``: the |z| between which that holds for some float64 g; beyond it g f'(z) rounds to 0,
    as the plain product gives.  Read before ``out`` is written: it may be ``grad_output`` or ``z``."""
    if z.dtype != np.float64:
        return None   # float32: |g| < 2^128, so g f'(z) rounds to 0 in float32 wherever f'(z) is subnormal
    magnitude = np.abs(z)
    tails = (magnitude > band[0]) & (magnitude < band[1])
    if not tails.any():
        return None
    x = -2 * magnitude[tails] if doubled else -magnitude[tails]
    return tails, _times_exp(grad_output[tails], x, 2 if doubled else 0)


def sigmoid(z, out):
    r"""Logistic sigmoid, the two-class Bayes posterior [Bishop]_.

    .. math:: \sigma(z) = \frac{1}{1 + e^{-z}}

    Evaluated through :math:`e^{-|z|}` (see ``_logistic_halves``) so that no
    input overflows: :math:`\sigma(z) = \sigma(|z|)` for :math:`z \ge 0`, else
    :math:`\sigma(-|z|)`.  Error bound: 5 ulp in float64 (3 for :math:`z \ge 0`),
    1 ulp in float32.

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    upper, lower = _logistic_halves(z)
    out[...] = np.where(z >= 0, upper, lower)
    return out


def sigmoid_derivative(z, out):
    r"""Derivative of the sigmoid [Lee]_.

    .. math:: \sigma'(z) = \sigma(z)\,\bigl(1 - \sigma(z)\bigr) = \sigma(z)\,\sigma(-z)
              \in \left(0, \tfrac14\right]

    Computed as the product :math:`\sigma(|z|)\,\sigma(-|z|)` of two accurate
    factors, not as :math:`\sigma(1-\sigma)` from a rounded :math:`\sigma`,
    which collapses to 0 for :math:`z \gtrsim 37` while
    :math:`\sigma'(z) \approx e^{-z}` is still representable.
    Error bound: 9.5 ulp in float64, 1 ulp in float32.

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    upper, lower = _logistic_halves(z)
    out[...] = upper * lower
    return out


def sigmoid_backward(grad_output, z, out):
    r"""Chain rule through the sigmoid, from the forward *input* ``z``.

    .. math:: \frac{\partial L}{\partial z} = \frac{\partial L}{\partial a}\,\sigma'(z)

    The input rather than the output :math:`a = \sigma(z)` is taken because
    :math:`\sigma'` cannot be recovered accurately from a rounded :math:`a`
    (see :func:`sigmoid_derivative`).  In float64, where :math:`\sigma'(z)` is
    subnormal (:math:`708 < |z| < 1455`), the product is formed as
    :math:`g e^{-|z|}` without first rounding :math:`e^{-|z|}` to a few bits.

    Parameters
    ----------
    grad_output : ndarray
        ∂L/∂(this kernel's output), shaped like that output.
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    tails = _backward_tails(grad_output, z, _SIGMOID_TAILS, doubled=False)
    upper, lower = _logistic_halves(z)
    out[...] = grad_output * (upper * lower)
    if tails is not None:
        out[tails[0]] = tails[1]
    return out


# |z| where e^-|z| is below 2^-1021 (subnormal σ') and g e^-|z| reaches half the smallest
# subnormal, 2^-1075, for some float64 g: up to ln(max) + 1075 ln 2 = 1454.92.
_SIGMOID_TAILS = (708.0, 1455.0)


def tanh(z, out):
    r"""Hyperbolic tangent.

    .. math:: \tanh z = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}} = 2\sigma(2z) - 1

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    out[...] = np.tanh(z, dtype=np.float64)
    return out


def tanh_derivative(z, out):
    r"""Derivative of tanh.

    .. math:: \tanh'(z) = 1 - \tanh^2 z = \operatorname{sech}^2 z
              = \frac{4e}{(1 + e)^2}, \quad e = e^{-2|z|}

    The last form keeps the tails, where :math:`1 - \tanh^2` of a rounded
    :math:`\tanh` is 0 (from :math:`|z| \approx 19` in float64).
    Error bound: 8 ulp in float64, 1 ulp in float32.

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    out[...] = _sech_squared(z)
    return out


def tanh_backward(grad_output, z, out):
    r"""Chain rule through tanh, from the forward input ``z``.

    .. math:: \frac{\partial L}{\partial z} = \frac{\partial L}{\partial a}\,\operatorname{sech}^2 z

    In float64, where :math:`\operatorname{sech}^2 z` is subnormal (:math:`354 < |z| < 728.2`),
    the product is formed as :math:`4 g e^{-2|z|}` without first rounding the derivative.

    Parameters
    ----------
    grad_output : ndarray
        ∂L/∂(this kernel's output), shaped like that output.
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    tails = _backward_tails(grad_output, z, _TANH_TAILS, doubled=True)
    out[...] = grad_output * _sech_squared(z)
    if tails is not None:
        out[tails[0]] = tails[1]
    return out


# sech^2 z = 4 e^-2|z| (1 + ...): from half of 708 up to (ln(4 max) + 1075 ln 2) / 2 = 728.15.
_TANH_TAILS = (354.0, 728.2)


def _sech_squared(z):
    r""":math:`\operatorname{sech}^2 z = 4e/(1+e)^2` with :math:`e = e^{-2|z|}`, in float64."""
    with np.errstate(over="ignore"):  # -2|z| is -inf beyond |z| = max/2; exp(-inf) = 0 is exact
        e = np.exp(-2 * np.abs(z, dtype=np.float64))
    return 4 * e / (1 + e) ** 2


def relu(z, out):
    r"""Rectified linear unit [Lee]_.

    .. math:: \operatorname{relu}(z) = \max(0, z)

    Written as "0 where :math:`z < 0`, else :math:`z`": NaN and :math:`-0.0` are
    not below 0 and pass through unchanged, as in PyTorch's ``relu``
    (``torch.relu(torch.tensor(-0.0))`` is ``-0.``).  NumPy's ``maximum(z, 0)``
    gives :math:`+0.0` there instead.

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    out[...] = np.where(z < 0, 0, z)
    return out


def relu_derivative(z, out):
    r"""Derivative of ReLU, with the kink convention :math:`\operatorname{relu}'(0) = 0`.

    .. math:: \operatorname{relu}'(z) = \begin{cases} 1 & z > 0 \\ 0 & z \le 0 \end{cases}

    The value at 0 is the one PyTorch, scikit-learn and ``jax.nn.relu`` use (and
    Lee's "ignore it"); JAX's ``jnp.maximum(z, 0)`` differentiates to 1/2 there.
    NaN gives 0, so :math:`\operatorname{relu}' \in \{0, 1\}` for every input.

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    out[...] = z > 0
    return out


def relu_backward(grad_output, z, out):
    r"""Chain rule through ReLU: the gradient passes where :math:`z > 0`.

    .. math:: \frac{\partial L}{\partial z} = \begin{cases}
              \partial L / \partial a & z > 0 \\ 0 & z \le 0 \end{cases}

    A selection, not a product, so an infinite upstream gradient at a dead
    unit gives 0, not NaN (as PyTorch's ``threshold_backward``).

    Parameters
    ----------
    grad_output : ndarray
        ∂L/∂(this kernel's output), shaped like that output.
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    out[...] = np.where(z > 0, grad_output, 0)
    return out


def leaky_relu(z, slope, out):
    r"""Leaky ReLU [Lee]_ (slope 0.01 in Lee and PyTorch, 0.3 in Keras).

    .. math:: \operatorname{lrelu}(z) = \begin{cases} z & z > 0 \\ \alpha z & z \le 0 \end{cases}

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    slope : float
        :math:`\alpha`, the slope for :math:`z \le 0`.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    out[...] = np.where(z > 0, z, slope * z)
    return out


def leaky_relu_derivative(z, slope, out):
    r"""Derivative of Leaky ReLU, :math:`\alpha` at the kink (as PyTorch).

    .. math:: \operatorname{lrelu}'(z) = \begin{cases} 1 & z > 0 \\ \alpha & z \le 0 \end{cases}

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    slope : float
        :math:`\alpha`, the slope for :math:`z \le 0`.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    out[...] = np.where(z > 0, 1, slope)
    return out


def leaky_relu_backward(grad_output, z, slope, out):
    r"""Chain rule through Leaky ReLU.

    .. math:: \frac{\partial L}{\partial z} = \frac{\partial L}{\partial a}\,\operatorname{lrelu}'(z)

    Parameters
    ----------
    grad_output : ndarray
        ∂L/∂(this kernel's output), shaped like that output.
    z : ndarray of float32 or float64
        The forward input.
    slope : float
        :math:`\alpha`, the slope for :math:`z \le 0`.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    out[...] = np.where(z > 0, grad_output, slope * grad_output)
    return out


def prelu(z, slope, out):
    r"""Parametric ReLU [He2015]_: Leaky ReLU with a learned slope per unit.

    ``z`` has shape (rows, units) and ``slope`` shape (units,).

    .. math:: \operatorname{prelu}(z_{ij}) = \begin{cases} z_{ij} & z_{ij} > 0 \\
              \alpha_j z_{ij} & z_{ij} \le 0 \end{cases}

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    slope : ndarray, shape (units,)
        :math:`\alpha_j`, one per unit.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    out[...] = np.where(z > 0, z, slope * z)
    return out


def prelu_backward(grad_output, z, slope, grad_input, grad_slope):
    r"""Chain rule through PReLU, to the input and to the slopes.

    .. math:: \frac{\partial L}{\partial z_{ij}} = \frac{\partial L}{\partial a_{ij}}
              \begin{cases} 1 & z_{ij} > 0 \\ \alpha_j & z_{ij} \le 0 \end{cases},
              \qquad
              \frac{\partial L}{\partial \alpha_j} = \sum_i \frac{\partial L}{\partial a_{ij}}
              \begin{cases} 0 & z_{ij} > 0 \\ z_{ij} & z_{ij} \le 0 \end{cases}

    Parameters
    ----------
    grad_output : ndarray
        ∂L/∂(this kernel's output), shaped like that output.
    z : ndarray of float32 or float64
        The forward input.
    slope : ndarray, shape (units,)
        :math:`\alpha_j`, one per unit.
    grad_input : ndarray
        Receives ∂L/∂z.
    grad_slope : ndarray, shape (units,)
        Receives ∂L/∂α.

    Returns
    -------
    (ndarray, ndarray)
        ``(grad_input, grad_slope)``.
    """
    # Both are computed before either is written: grad_input may be grad_output or z itself.
    to_input = np.where(z > 0, grad_output, slope * grad_output)
    to_slope = np.where(z > 0, 0, grad_output * z).sum(axis=0)
    grad_input[...] = to_input
    grad_slope[...] = to_slope
    return grad_input, grad_slope


def softmax(z, out):
    r"""Softmax along the last axis.

    .. math:: \operatorname{softmax}(z)_j = \frac{e^{z_j - m}}{\sum_k e^{z_k - m}},
              \qquad m = \max_k z_k

    Subtracting the row maximum (which changes nothing in exact arithmetic)
    keeps every exponent :math:`\le 0`, so huge logits do not overflow.

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    row_max = z.max(axis=-1, keepdims=True, initial=-np.inf)
    # Logits 1e308 apart give z - m = -inf, and exp(-inf) = 0 is exact; an infinite
    # logit gives inf - inf = NaN, a NaN row as on the compiled backend, which does not warn either.
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(np.subtract(z, row_max, dtype=np.float64))
    out[...] = e / e.sum(axis=-1, keepdims=True)
    return out


def softmax_backward(grad_output, output, out):
    r"""Chain rule through softmax, from its output :math:`s`.

    .. math:: \frac{\partial L}{\partial z_j} = s_j\Bigl(\frac{\partial L}{\partial s_j}
              - \sum_k \frac{\partial L}{\partial s_k}\, s_k\Bigr)

    (the Jacobian :math:`\operatorname{diag}(s) - s s^\top` applied to the
    upstream gradient).

    Parameters
    ----------
    grad_output : ndarray
        ∂L/∂(this kernel's output), shaped like that output.
    output : ndarray
        The forward pass's result :math:`\operatorname{softmax}(z)`.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    g = grad_output.astype(np.float64)
    s = output.astype(np.float64)
    dot = (g * s).sum(axis=-1, keepdims=True)
    out[...] = s * (g - dot)
    return out


def maxout(z, pieces, out):
    r"""Maxout [Goodfellow2013]_: the maximum of each group of ``pieces`` inputs.

    ``z`` has shape (rows, units·k) in contiguous groups of k = ``pieces``;
    ``out`` has shape (rows, units).

    .. math:: h_{ij} = \max_{0 \le p < k} z_{i,\,jk + p}

    NaN propagates (the first NaN of a group wins, as in NumPy's ``argmax``).

    Parameters
    ----------
    z : ndarray of float32 or float64
        The forward input.
    pieces : int
        Entries per group along the last axis.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    if z.size == 0:   # no groups; and NumPy refuses the shape (..., 0, pieces) for pieces near 2**63
        return out
    groups = z.reshape(out.shape + (pieces,))
    out[...] = np.take_along_axis(groups, _winners(groups), axis=-1)[..., 0]
    return out


def maxout_backward(grad_output, z, pieces, out):
    r"""Chain rule through Maxout: each unit's gradient goes to its winning piece.

    .. math:: \frac{\partial L}{\partial z_{i,\,jk + p}} = \begin{cases}
              \partial L / \partial h_{ij} & p = \operatorname{argmax}_q z_{i,\,jk+q} \\
              0 & \text{otherwise} \end{cases}

    Ties go to the lowest index, so Maxout over :math:`[0, z]` reproduces
    :math:`\operatorname{relu}'(0) = 0`, and over :math:`[z, 0]` gives 1 there.

    Parameters
    ----------
    grad_output : ndarray
        ∂L/∂(this kernel's output), shaped like that output.
    z : ndarray of float32 or float64
        The forward input.
    pieces : int
        Entries per group along the last axis.
    out : ndarray
        Written in place: shape and dtype of the result.

    Returns
    -------
    ndarray
        ``out``.
    """
    if z.size == 0:   # as in maxout
        return out
    groups = z.reshape(grad_output.shape + (pieces,))
    grad_groups = np.zeros(groups.shape, dtype=out.dtype)
    np.put_along_axis(grad_groups, _winners(groups), grad_output[..., None], axis=-1)
    out[...] = grad_groups.reshape(out.shape)
    return out


def _winners(groups):
    """Index of each group's winning piece, shape (rows, units, 1).

    ``np.argmax`` returns the first maximum, which is the lowest-index tie rule.
    """
    return groups.argmax(axis=-1)[..., None]
