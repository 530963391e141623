r"""Check a dropout function: the fraction dropped, the scale of kept units at train time, the scale at test.

Lee and Srivastava et al. keep units unscaled while training and multiply by
:math:`1-p` at test (``"scale-at-test"``); PyTorch and Keras scale kept units by
:math:`1/(1-p)` while training and are the identity at test (``"inverted"``).
Either way the expected output is the same at train and test time.
"""

import math

import numpy as np

from .conformance import ConformanceError

__all__ = ["check_dropout", "MODES"]

MODES = {
    "inverted": "inverted dropout (PyTorch, Keras)",
    "scale-at-test": "scale-at-test dropout (Lee, Srivastava et al.)",
}

_SHAPE = (200, 100)
# How far the dropped fraction of 20 000 units may stray from p: 5 binomial standard deviations
# (a false alarm about once in 3.5 million checks).
_SIGMAS = 5.0


def _scales(p, mode):
    """(scale of kept units while training, scale at test) in ``mode``."""
    return (1 / (1 - p), 1.0) if mode == "inverted" else (1.0, 1 - p)


def _common_ratio(y, x, what):
    """The one factor y / x over the units (all of them equal to within rounding), or raise."""
    ratios = y / x
    factor = float(np.median(ratios))
    if not np.allclose(ratios, factor, rtol=1e-6, atol=0):
        raise ConformanceError(f"dropout: {what}, the outputs are not the inputs times one factor "
                               f"(ratios from {ratios.min():g} to {ratios.max():g})")
    return factor


def _name_variant(p, dropped, train_scale, test_scale):
    if abs(dropped - (1 - p)) < abs(dropped - p):
        return "dropout with p as the keep probability (TensorFlow 1's keep_prob), not the drop probability"
    close = (lambda a, b: math.isclose(a, b, rel_tol=1e-6))
    for mode, words in MODES.items():
        if close(train_scale, _scales(p, mode)[0]) and close(test_scale, _scales(p, mode)[1]):
            return words
    if close(train_scale, 1 / (1 - p)) and close(test_scale, 1 - p):
        return "dropout scaled at both train and test (×1/(1−p) while training and ×(1−p) at test)"
    if close(train_scale, 1.0) and close(test_scale, 1.0):
        return "dropout scaled at neither (its expected training output is (1−p) times its test output)"
    return None


def check_dropout(fn, p, mode="inverted", *, seed=0):
    """Check that ``fn(x, training)`` is dropout with drop probability ``p`` in ``mode``.

    Parameters
    ----------
    fn : callable or layer
        ``fn(x, training)`` returns the output for a float64 array ``x``: with a fresh
        random mask when ``training`` is true, deterministic otherwise.  An object
        with ``forward(x, training=...)`` (a refnet :class:`~refnet.Dropout`) is used
        through its ``forward``.
    p : float in [0, 1)
        The drop probability ``fn`` was built with.
    mode : {"inverted", "scale-at-test"}

    Raises
    ------
    ConformanceError
        Naming what differs (dropped fraction, training scale, test scale) and
        the convention the code follows (``error.matches``).

    Examples
    --------
    >>> import refnet
    >>> from refnet.testing import check_dropout
    >>> check_dropout(refnet.Dropout(0.3, seed=0), 0.3)
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1) for the check to see anything, got {p}")
    forward = fn.forward if callable(getattr(fn, "forward", None)) else fn
    # Inputs in [1, 2): never 0, so a 0 output is a dropped unit.
    x = np.random.default_rng(seed).uniform(1.0, 2.0, _SHAPE)
    first, second = (np.asarray(forward(x.copy(), True), dtype=np.float64) for _ in range(2))
    kept = first != 0
    dropped = 1 - kept.mean()
    train_scale = _common_ratio(first[kept], x[kept], "while training")
    test_scale = _common_ratio(np.asarray(forward(x.copy(), False), dtype=np.float64), x, "at test")
    want_train, want_test = _scales(p, mode)
    allowed = _SIGMAS * math.sqrt(p * (1 - p) / x.size)
    problems = []
    if abs(dropped - p) > allowed:
        problems.append(f"it dropped {dropped:.4f} of the units, want p = {p} ± {allowed:.4f}")
    if not math.isclose(train_scale, want_train, rel_tol=1e-6):
        problems.append(f"while training it multiplies kept units by {train_scale:.6g}, want {want_train:.6g}")
    if not math.isclose(test_scale, want_test, rel_tol=1e-6):
        problems.append(f"at test it multiplies by {test_scale:.6g}, want {want_test:.6g}")
    if np.array_equal(first != 0, second != 0):
        problems.append("two training calls dropped the same units: the mask must be drawn afresh each call")
    if problems:
        matched = _name_variant(p, dropped, train_scale, test_scale)
        sentence = f" It matches {matched}." if matched else ""
        raise ConformanceError(f"dropout (p = {p}) does not follow {MODES[mode]}: {'; '.join(problems)}.{sentence}",
                               matches=matched)
