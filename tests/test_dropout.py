"""Dropout kernels: the mask rule, one random stream on both backends, the backward pass."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnet import _core, reference
from refnet.testing.strategies import arrays, dtypes

KERNELS = {"compiled": _core, "reference": reference}


def forward(backend, z, p, scale, seed):
    generator = np.random.default_rng(seed)
    mask = np.empty(z.shape, np.uint8)
    out = np.empty_like(z)
    KERNELS[backend].dropout_forward(z, p, scale, generator, mask, out)
    return out, mask, generator


@given(
    data=st.data(),
    # p <= 0.99 keeps the scale 1/(1-p) <= 100, so scale * z cannot overflow for |z| <= 2^100.
    p=st.floats(0, 0.99),
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


# --- the public functions and the layer ------------------------------------------------

import refnet  # noqa: E402
from scipy import stats  # noqa: E402

# Statistical bounds are exact binomial (or Hoeffding) quantiles at this false-failure
# probability per assertion; with the fixed seeds the tests are also deterministic.
FALSE_FAILURE = 1e-9


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_kept_fraction_is_one_minus_p(p):
    n = 1_000_000
    _, mask = refnet.dropout(np.ones(n), p, np.random.default_rng(11))
    low, high = stats.binom.ppf(FALSE_FAILURE / 2, n, 1 - p), stats.binom.isf(FALSE_FAILURE / 2, n, 1 - p)
    assert low <= mask.sum() <= high


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_inverted_dropout_keeps_the_mean(p):
    """E[y_i] = z_i.  sum(y) - sum(z) = s * sum((m_i - (1 - p)) z_i), a sum of independent
    terms in intervals of width s|z_i|: Hoeffding bounds it by s * sqrt(sum z^2 ln(2/a) / 2)."""
    n = 1_000_000
    z = np.random.default_rng(5).uniform(-2, 3, n)
    y, _ = refnet.dropout(z, p, np.random.default_rng(12))
    scale = 1 / (1 - p)
    bound = scale * np.sqrt(np.sum(z**2) * np.log(2 / FALSE_FAILURE) / 2)
    assert abs(y.sum() - z.sum()) <= bound
    assert bound / n < 0.1 * abs(z.mean())   # tight enough to catch a wrong scale (1/(1-p) vs 1)


def test_p_outside_zero_one_is_refused():
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"p must be a drop probability in \[0, 1\)"):
            refnet.Dropout(p)
        with pytest.raises(ValueError, match="p must be a drop probability"):
            refnet.dropout(np.ones(3), p, np.random.default_rng())
    with pytest.raises(ValueError, match="mode must be one of"):
        refnet.Dropout(0.5, mode="lee")
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        refnet.dropout(np.ones(3), 0.5, 42)
    with pytest.raises(TypeError, match="mask must be a bool array"):
        refnet.dropout_backward(np.ones(3), np.ones(3), 0.5)


@pytest.mark.parametrize("mode", ["inverted", "scale-at-test"])
def test_p_zero_is_the_identity_in_training_and_at_test(mode):
    z = np.random.default_rng(0).normal(size=(4, 5))
    layer = refnet.Dropout(0.0, mode=mode, seed=1)
    np.testing.assert_array_equal(layer.forward(z, training=True), z)
    np.testing.assert_array_equal(layer.backward(np.ones_like(z)), np.ones_like(z))
    np.testing.assert_array_equal(layer.forward(z), z)


@pytest.mark.parametrize("mode, train_scale, test_scale", [("inverted", 1 / 0.75, 1.0), ("scale-at-test", 1.0, 0.75)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_masks_scales_and_backward(mode, train_scale, test_scale, dtype):
    z = np.random.default_rng(0).uniform(0.5, 2.0, (8, 50)).astype(dtype)
    layer = refnet.Dropout(0.25, mode=mode, seed=3)
    first = layer.forward(z, training=True)
    kept = first != 0   # inputs are nonzero, so an output is 0 exactly where the unit was dropped
    np.testing.assert_array_equal(first[kept], dtype(train_scale) * z[kept])
    grad = np.random.default_rng(1).normal(size=z.shape).astype(dtype)
    np.testing.assert_array_equal(layer.backward(grad), np.where(kept, dtype(train_scale) * grad, 0))
    second = layer.forward(z, training=True)
    assert not np.array_equal(second != 0, kept), "a fresh mask every training pass"
    np.testing.assert_array_equal(layer.forward(z), z * dtype(test_scale))
    np.testing.assert_array_equal(layer.backward(grad), grad * dtype(test_scale))


def test_same_seed_same_masks_on_both_backends():
    z = np.ones((16, 16))
    masks = []
    for backend in ("compiled", "reference"):
        with refnet.use_backend(backend):
            layer = refnet.Dropout(0.5, seed=2024)
            masks.append([layer.forward(z, training=True) != 0 for _ in range(3)])
    for compiled, reference_mask in zip(*masks):
        np.testing.assert_array_equal(compiled, reference_mask)
    generator = np.random.default_rng(2024)
    np.testing.assert_array_equal(masks[0][0].ravel(), generator.random(256) >= 0.5)


def test_dropout_on_the_inputs_of_a_network_trains():
    x = np.random.default_rng(0).normal(size=(32, 6))
    y = (x[:, 0] > 0).astype(np.int64)
    net = refnet.Sequential([refnet.Dropout(0.2, seed=0), refnet.Dense(6, 2, seed=1)])
    history = net.fit(x, y, loss="softmax_cross_entropy", optimizer=refnet.SGD(0.5), epochs=20, batch_size=8, seed=0)
    assert history["loss"][-1] < history["loss"][0]


def test_out_takes_the_output_and_the_mask():
    z = np.arange(1.0, 9.0)
    output, mask = np.empty_like(z), np.empty(8, dtype=np.bool_)
    got_output, got_mask = refnet.dropout(z, 0.5, np.random.default_rng(4), out=(output, mask))
    assert got_output is output and got_mask is mask
    np.testing.assert_array_equal(mask, np.random.default_rng(4).random(8) >= 0.5)
    np.testing.assert_array_equal(output, np.where(mask, 2 * z, 0))
    with pytest.raises(TypeError, match=r"out\[1\] must have dtype bool"):
        refnet.dropout(z, 0.5, np.random.default_rng(4), out=(output, np.empty(8, np.uint8)))


@pytest.mark.parametrize("offset", [0, 8, 100])
def test_backward_into_out_overlapping_the_mask(offset, each_backend):
    """Regression: the compiled kernel read mask bytes it had already overwritten."""
    memory = np.zeros(16 * 8 + 16, np.uint8)
    out = memory[:128].view(np.float64)
    mask = memory[offset : offset + 16].view(np.bool_)
    mask[...] = np.arange(16) % 3 != 0
    kept = mask.copy()
    grad = np.arange(1.0, 17.0)
    result = refnet.dropout_backward(grad, mask, 0.5, out=out)
    assert result is out
    np.testing.assert_array_equal(out, np.where(kept, 2 * grad, 0))


def test_dropout_takes_its_seed_positionally_as_the_issue_names_it():
    layer = refnet.Dropout(0.5, "inverted", 0)
    np.testing.assert_array_equal(layer.forward(np.ones(8), training=True) != 0,
                                  np.random.default_rng(0).random(8) >= 0.5)
