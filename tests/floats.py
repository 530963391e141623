"""Hypothesis strategies and floating-point helpers shared by the tests."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp

DTYPES = (np.float32, np.float64)

# Unit roundoff u = 2^-(p) per dtype: one rounding to nearest errs by at most u relatively.
UNIT_ROUNDOFF = {np.dtype(np.float32): 2.0**-24, np.dtype(np.float64): 2.0**-53}


def floats(dtype, **kwargs):
    """Hypothesis floats of a NumPy dtype; subnormals and ±0 included, NaN and ±inf not by default."""
    kwargs.setdefault("allow_nan", False)
    kwargs.setdefault("allow_infinity", False)
    return st.floats(width=np.finfo(dtype).bits, **kwargs)


def arrays(dtype, shape, **kwargs):
    """Arrays of ``dtype`` with elements from :func:`floats`."""
    return hynp.arrays(dtype, shape, elements=floats(dtype, **kwargs))


dtypes = st.sampled_from(DTYPES)
shapes = hynp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)
nonscalar_shapes = hynp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6)


@st.composite
def dtype_and_array(draw, shape=shapes, **kwargs):
    """A dtype, then an array of it: the shape is drawn first, then the values."""
    dtype = draw(dtypes)
    return draw(arrays(dtype, draw(shape), **kwargs))


def ulp_error(got, exact, dtype):
    """|got - exact| in units of the spacing at ``exact`` rounded to ``dtype``.

    ``exact`` is an extended-precision (``np.longdouble``) oracle.  0.5 means
    correctly rounded; in the subnormal range the unit is the subnormal spacing.
    """
    rounded = np.asarray(exact).astype(dtype)
    spacing = np.spacing(np.abs(rounded)).astype(np.longdouble)
    error = np.abs(np.asarray(got, dtype=np.longdouble) - exact) / spacing
    return np.where(np.asarray(got) == rounded, 0, error)


def ulp_distance(a, b):
    """How many representable floats lie between ``a`` and ``b``, elementwise (-0 == +0, NaN == NaN).

    NumPy's ``assert_array_max_ulp`` returns these counts; an infinite ``maxulp``
    makes it only measure.
    """
    return np.testing.assert_array_max_ulp(np.asarray(a), np.asarray(b), maxulp=np.inf)
