"""Dropout kernels: the mask rule, one random stream on both backends, the backward pass."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnet import _core, reference
from floats import arrays, dtypes

KERNELS = {"compiled": _core, "reference": reference}


def forward(backend, z, p, scale, seed):
    generator = np.random.default_rng(seed)
    mask = np.empty(z.shape, np.uint8)
    out = np.empty_like(z)
    KERNELS[backend].dropout_forward(z, p, scale, generator, mask, out)
    return out, mask, generator


@given(
    data=st.data(),
    p=st.floats(0, 1, exclude_max=True),
    seed=st.integers(0, 2**63),
)
def test_both_backends_draw_the_same_mask_and_leave_the_stream_in_the_same_state(data, p, seed):
    dtype = data.draw(dtypes)
    z = data.draw(arrays(dtype, st.integers(0, 50), min_value=-(2.0**100), max_value=2.0**100))
    scale = 1 / (1 - p)
    out_c, mask_c, gen_c = forward("compiled", z, p, scale, seed)
    out_r, mask_r, gen_r = forward("reference", z, p, scale, seed)
    np.testing.assert_array_equal(mask_c, mask_r)
    np.testing.assert_array_equal(out_c, out_r)
    assert gen_c.random() == gen_r.random()
    # The rule itself, recomputed from the stream: keep unit i iff the i-th double >= p.
    np.testing.assert_array_equal(mask_c, np.random.default_rng(seed).random(z.size) >= p)
    # Kept units scaled (one rounding, in the array's dtype), dropped ones exactly 0.
    np.testing.assert_array_equal(out_c, np.where(mask_c, dtype(scale) * z, 0))


@pytest.mark.parametrize("backend", list(KERNELS))
@given(data=st.data())
def test_backward_routes_the_gradient_through_the_kept_units(backend, data):
    dtype = data.draw(dtypes)
    n = data.draw(st.integers(0, 50))
    grad = data.draw(arrays(dtype, n, min_value=-(2.0**100), max_value=2.0**100))
    mask = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.uint8)
    scale = data.draw(st.floats(1, 10))
    out = np.empty_like(grad)
    KERNELS[backend].dropout_backward(grad, mask, scale, out)
    np.testing.assert_array_equal(out, np.where(mask.astype(bool), dtype(scale) * grad, 0))


@pytest.mark.parametrize("backend", list(KERNELS))
def test_a_dropped_infinite_input_gives_zero_not_nan(backend):
    z = np.full(64, np.inf)
    out, mask, _ = forward(backend, z, 0.5, 2.0, seed=3)
    assert 0 < mask.sum() < 64
    np.testing.assert_array_equal(out, np.where(mask, np.inf, 0.0))
    grad = np.empty_like(z)
    KERNELS[backend].dropout_backward(z, mask, 2.0, grad)
    np.testing.assert_array_equal(grad, out)
