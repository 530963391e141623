r"""Where the sigmoid comes from: the two-class Bayes posterior of Gaussians sharing a covariance.

By Bayes' rule, :math:`P(C_1 \mid x) = \sigma(z)` with
:math:`z = \ln \frac{P(x \mid C_1) P(C_1)}{P(x \mid C_2) P(C_2)}`; when both
class-conditionals are Gaussian with one covariance :math:`\Sigma`, the
quadratic terms cancel and :math:`z` is linear in :math:`x` [Bishop]_ (§4.2.1):

.. math:: P(C_1 \mid x) = \sigma(w^\top x + b), \qquad
          w = \Sigma^{-1}(\mu_1 - \mu_2), \qquad
          b = -\tfrac12 \mu_1^\top \Sigma^{-1} \mu_1 + \tfrac12 \mu_2^\top \Sigma^{-1} \mu_2
              + \ln \frac{\pi_1}{\pi_2}.

References
----------
Defined once in the documentation's bibliography (``docs/bibliography.rst``);
the notes here say which part of each source this module follows.

* [Bishop] C. M. Bishop, *Pattern Recognition and Machine Learning*, 2006.
"""

import numpy as np

from . import _validate

__all__ = ["shared_covariance_logistic", "gaussian_posterior"]


def _finite(value, name):
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of real numbers; {error}") from None
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array


def _check(mean1, mean2, cov, prior1):
    mean1, mean2, cov = _finite(mean1, "mean1"), _finite(mean2, "mean2"), _finite(cov, "cov")
    prior1 = _validate.finite_scalar(prior1, "prior1")
    if mean1.ndim != 1 or mean1.shape != mean2.shape:
        raise ValueError(f"mean1 and mean2 must be vectors of one length, got {mean1.shape} and {mean2.shape}")
    d = mean1.shape[0]
    if cov.shape != (d, d):
        raise ValueError(f"cov must have shape ({d}, {d}), got {cov.shape}")
    # Cholesky reads only the lower triangle: symmetry is checked on its own (exactly, as a
    # covariance matrix built as one is).
    if not np.array_equal(cov, cov.T):
        raise ValueError("cov must be symmetric positive definite, got a matrix that is not symmetric")
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError("cov must be symmetric positive definite") from None
    if not 0 < prior1 < 1:
        raise ValueError(f"prior1 must lie strictly between 0 and 1, got {prior1}")
    return mean1, mean2, cov, float(prior1)


def shared_covariance_logistic(mean1, mean2, cov, prior1):
    r"""The weights :math:`(w, b)` with :math:`P(C_1 \mid x) = \sigma(w^\top x + b)`.

    Parameters
    ----------
    mean1, mean2 : array_like, shape (d,)
        Class means :math:`\mu_1, \mu_2`.
    cov : array_like, shape (d, d)
        The shared covariance :math:`\Sigma`, symmetric positive definite.
    prior1 : float
        :math:`\pi_1 = P(C_1)`; :math:`\pi_2 = 1 - \pi_1`.

    Returns
    -------
    w : ndarray, shape (d,)
    b : float
    """
    mean1, mean2, cov, prior1 = _check(mean1, mean2, cov, prior1)
    w = np.linalg.solve(cov, mean1 - mean2)
    b = (
        -0.5 * mean1 @ np.linalg.solve(cov, mean1)
        + 0.5 * mean2 @ np.linalg.solve(cov, mean2)
        + np.log(prior1 / (1 - prior1))
    )
    return w, float(b)


def gaussian_posterior(x, mean1, mean2, cov, prior1):
    r""":math:`P(C_1 \mid x)` by Bayes' rule, from the two Gaussian densities directly.

    .. math:: P(C_1 \mid x) = \frac{\pi_1 \mathcal N(x; \mu_1, \Sigma)}
              {\pi_1 \mathcal N(x; \mu_1, \Sigma) + \pi_2 \mathcal N(x; \mu_2, \Sigma)}

    The densities are scaled by a common factor before the division so that
    points far from both means do not underflow to 0/0.  A point whose squared
    Mahalanobis distances to both means overflow (about :math:`10^{154}`
    standard deviations away) is refused: both log-densities are :math:`-\infty`
    there, and no rescaling of the two densities recovers their ratio
    (:func:`shared_covariance_logistic` does, as :math:`\sigma(w \cdot x + b)`).

    Parameters
    ----------
    x : array_like, shape (n, d) or (d,)
        Finite real points, one per row.
    mean1, mean2, cov, prior1
        As for :func:`shared_covariance_logistic`.

    Returns
    -------
    ndarray, shape (n,)
        :math:`P(C_1 \mid x)` for each row of ``x``.
    """
    mean1, mean2, cov, prior1 = _check(mean1, mean2, cov, prior1)
    x = np.atleast_2d(_finite(x, "x"))
    if x.ndim != 2 or x.shape[1] != mean1.shape[0]:
        raise ValueError(f"x must have shape (n, {mean1.shape[0]}) (one point per row), got {x.shape}")
    log_joint1 = np.log(prior1) + _log_gaussian(x, mean1, cov)
    log_joint2 = np.log(1 - prior1) + _log_gaussian(x, mean2, cov)
    unresolved = np.flatnonzero(np.isneginf(log_joint1) & np.isneginf(log_joint2))
    if unresolved.size:
        raise ValueError(f"x[{unresolved[0]}] is too far from both means for their densities to be compared "
                         f"in float64 (both squared Mahalanobis distances overflow); shared_covariance_logistic "
                         f"gives the posterior there")
    scale = np.maximum(log_joint1, log_joint2)
    joint1, joint2 = np.exp(log_joint1 - scale), np.exp(log_joint2 - scale)
    return joint1 / (joint1 + joint2)


def _log_gaussian(x, mean, cov):
    r""":math:`\ln \mathcal N(x; \mu, \Sigma) = -\tfrac12 \bigl(d \ln 2\pi + \ln|\Sigma| + (x-\mu)^\top \Sigma^{-1} (x-\mu)\bigr)`"""
    d = mean.shape[0]
    diff = x - mean
    mahalanobis = np.einsum("ij,ij->i", diff, np.linalg.solve(cov, diff.T).T)
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (d * np.log(2 * np.pi) + logdet + mahalanobis)
