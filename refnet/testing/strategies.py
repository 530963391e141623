"""Hypothesis strategies for refnet's kernels: floats of a NumPy dtype, arrays, shapes, dtypes.

Needs Hypothesis (``pip install 'refnet[testing]'``).  The floating-point
comparisons that go with them are in :mod:`refnet.testing.tolerances`.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp

__all__ = ["DTYPES", "floats", "arrays", "dtypes", "shapes", "nonscalar_shapes", "dtype_and_array"]

DTYPES = (np.float32, np.float64)


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
