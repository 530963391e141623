"""Floating-point comparisons: exact, in ulp, and relative, each with a report of the worst element.

A :class:`Tolerance` (:class:`Exact`, :class:`Ulp`, :class:`Relative`) compares
``got`` with ``want`` elementwise and returns a :class:`Report` naming the worst
element; :func:`assert_within` raises an ``AssertionError`` with that report.

Two kinds of tolerance are kept apart: refnet's *twin* tolerances (compiled
kernel against its NumPy reference, usually exact or a few ulp, stated in the
tests) and the *conformance* tolerances below, which a user's implementation of
a formula must meet against the textbook transcription in :mod:`refnet.testing`:
loose enough for any sound float64 evaluation order, tight enough that a change
of convention (where ε goes, a missing bias correction, a different default)
exceeds them by orders of magnitude.
"""

import dataclasses
from typing import NamedTuple

import numpy as np

__all__ = ["UNIT_ROUNDOFF", "ulp_error", "ulp_distance", "Report", "Exact", "Ulp", "Relative",
           "assert_within", "CONFORMANCE"]

# Unit roundoff u = 2^-(p) per dtype: one rounding to nearest errs by at most u relatively.
UNIT_ROUNDOFF = {np.dtype(np.float32): 2.0**-24, np.dtype(np.float64): 2.0**-53}


def ulp_error(got, exact, dtype):
    r""":math:`|\mathrm{got} - \mathrm{exact}|` in units of the spacing at ``exact`` rounded to ``dtype``.

    0.5 means correctly rounded; in the subnormal range the unit is the subnormal spacing.

    Parameters
    ----------
    got : array_like
        The computed values, of ``dtype``.
    exact : array_like of longdouble
        An extended-precision (``np.longdouble``) oracle, broadcastable with ``got``.
    dtype : float32 or float64
        The dtype whose spacing is the unit.

    Returns
    -------
    ndarray of longdouble
        The error elementwise; exactly 0 where ``got`` equals ``exact`` rounded to ``dtype``.
    """
    rounded = np.asarray(exact).astype(dtype)
    spacing = np.spacing(np.abs(rounded)).astype(np.longdouble)
    error = np.abs(np.asarray(got, dtype=np.longdouble) - exact) / spacing
    return np.where(np.asarray(got) == rounded, 0, error)


def ulp_distance(a, b):
    """How many representable floats lie between ``a`` and ``b``, elementwise (-0 == +0, NaN == NaN).

    NumPy's ``assert_array_max_ulp`` returns these counts; an infinite ``maxulp``
    makes it only measure (it returns an extra leading axis, removed here).

    Parameters
    ----------
    a, b : array_like
        Floats of one dtype, broadcast together.

    Returns
    -------
    ndarray
        The counts, of the broadcast shape, as floats of that dtype.
    """
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    return np.testing.assert_array_max_ulp(a, b, maxulp=np.inf).reshape(a.shape)


class Report(NamedTuple):
    """The outcome of a comparison, naming its worst element.

    Attributes
    ----------
    holds : bool
        Whether every element is within the tolerance.
    error : float
        The worst element's error, in ``unit``; a NaN error (a NaN compared with a number)
        counts as inf, and no elements give 0.
    index : tuple of int
        The worst element's index in the broadcast shape of ``got`` and ``want``.
    got, want : float
        The values at ``index`` (NaN for no elements).
    failures : int
        How many elements are out of tolerance.
    unit : str
        The unit of ``error``: ``"ulp"``, ``"x tolerance"`` (1 = at the limit) or
        ``"(1 = differs)"``.
    first : tuple of int or None, default None
        The index of the first element out of tolerance, in C order; ``None`` if none is.
    """

    holds: bool
    error: float
    index: tuple
    got: float
    want: float
    failures: int
    unit: str
    first: tuple = None

    def __str__(self):
        verdict = "within tolerance" if self.holds else f"{self.failures} element(s) out of tolerance"
        return (f"{verdict}; worst {self.error:.3g} {self.unit} at index {self.index}: "
                f"got {self.got!r}, want {self.want!r}")


def _report(errors, allowed, got, want, unit):
    got, want = np.broadcast_arrays(np.asarray(got), np.asarray(want))
    errors = np.broadcast_to(np.asarray(errors, dtype=np.float64), got.shape)
    if got.size == 0:
        return Report(True, 0.0, (), float("nan"), float("nan"), 0, unit, None)
    # NaN errors (a NaN where a number was wanted) count as the worst.
    ranked = np.where(np.isnan(errors), np.inf, errors)
    index = np.unravel_index(int(np.argmax(ranked)), got.shape)
    failing = ~(ranked <= allowed)
    failures = int(np.count_nonzero(failing))
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(failing)), got.shape)) if failures else None
    return Report(failures == 0, float(ranked[index]), tuple(int(i) for i in index),
                  got[index].item(), want[index].item(), failures, unit, first)


def _both_nan(got, want):
    return np.isnan(np.asarray(got, dtype=np.float64)) & np.isnan(np.asarray(want, dtype=np.float64))


@dataclasses.dataclass(frozen=True)
class Exact:
    """Bit-for-bit equality of the values (``-0 == +0``; NaN equals NaN)."""

    def compare(self, got, want):
        equal = (np.asarray(got) == np.asarray(want)) | _both_nan(got, want)
        return _report(np.where(equal, 0.0, 1.0), 0.0, got, want, "(1 = differs)")


@dataclasses.dataclass(frozen=True)
class Ulp:
    """At most ``maxulp`` representable floats between ``got`` and ``want`` (same dtype).

    Parameters
    ----------
    maxulp : float
        The largest :func:`ulp_distance` allowed.
    """

    maxulp: float

    def compare(self, got, want):
        return _report(ulp_distance(got, want), self.maxulp, got, want, "ulp")


@dataclasses.dataclass(frozen=True)
class Relative:
    r""":math:`|got - want| \le \text{rtol}\,|want| + \text{atol}`; the error is reported in
    units of that allowance (1 = at the limit).

    Computed in float64; ``got == want`` (NaN with NaN included) holds whatever the allowance.

    Parameters
    ----------
    rtol : float
        The relative part of the allowance.
    atol : float or ndarray, default 0
        The absolute part; an array is broadcast against ``want`` (an allowance per element).
    """

    rtol: float
    atol: float = 0.0

    def compare(self, got, want):
        got64, want64 = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            difference = np.abs(got64 - want64)
            allowance = self.rtol * np.abs(want64) + self.atol
            errors = np.where(difference == 0, 0.0, difference / allowance)
        errors = np.where(_both_nan(got, want) | (got64 == want64), 0.0, errors)
        return _report(errors, 1.0, got, want, "x tolerance")


def assert_within(got, want, tolerance, what="result"):
    """Raise ``AssertionError`` with the report unless ``got`` is within ``tolerance`` of ``want``.

    Parameters
    ----------
    got, want : array_like
        Compared elementwise, broadcast together.
    tolerance : Exact, Ulp or Relative
        Any object whose ``compare(got, want)`` returns a :class:`Report`.
    what : str, default "result"
        Names the compared values in the message.

    Returns
    -------
    Report
        The report, which holds.

    Raises
    ------
    AssertionError
        ``"{what}: {report}"`` where the report does not hold.
    """
    report = tolerance.compare(got, want)
    if not report.holds:
        raise AssertionError(f"{what}: {report}")
    return report


# Conformance tolerances (see the module doc), float64 results of O(1) functions and
# optimizer trajectories.  A float64 evaluation of a formula in another order errs by a
# few u ~ 1e-15 relatively, and 50 optimizer steps compound that to ~1e-13; the
# conventions differ by 1e-6 relatively and more (ε = 1e-8 inside vs outside the root
# at gradients of 1e-3; a missing bias correction: a factor 1 - β^t).
CONFORMANCE = {
    "optimizer": Relative(rtol=1e-9, atol=1e-15),
    np.dtype(np.float64): Relative(rtol=1e-9, atol=1e-15),
    # float32 code computing in float32: a few u = 6e-8 per operation, and O(1)-valued
    # formulas that cancel (1 - tanh², PyTorch's own tanh backward) err by ~1 ulp of 1
    # absolutely, so atol is 16 u; a wrong kink or slope differs by 0.01 or more.
    np.dtype(np.float32): Relative(rtol=1e-5, atol=1e-6),
}
