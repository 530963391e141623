"""Activations: compiled equals reference, the closed forms hold, gradients match finite differences."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp

import refnet
from refnet.testing.specs import KERNELS, kernel, sigmoid_product_tolerance, sigmoid_symmetry_tolerance
from refnet.testing.strategies import DTYPES, arrays, dtype_and_array, dtypes, floats, nonscalar_shapes, shapes
from refnet.testing.tolerances import UNIT_ROUNDOFF, Exact, assert_within

BACKENDS = ["compiled", "reference"]

# The elementwise activations f(z) (those the conformance kit checks), their derivatives f'(z)
# and backwards g * f'(z), from the kernel specs.
ELEMENTWISE = [spec.name for spec in KERNELS if spec.conformance and not spec.name.endswith("_derivative")]


def on_both(function, *args, **kwargs):
    """(compiled result, reference result) of a public function."""
    compiled = function(*args, **kwargs)
    with refnet.use_backend("reference"):
        return compiled, function(*args, **kwargs)


def assert_same_bits(a, b):
    """Equal values, NaN where NaN, same dtype: what selections and single roundings must give."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)
    numbers = ~np.isnan(a)
    np.testing.assert_array_equal(np.signbit(a[numbers]), np.signbit(b[numbers]))   # -0.0 is not +0.0


@st.composite
def rows_and_groups(draw, max_pieces=4):
    """(dtype, z of shape (..., units * pieces), pieces)."""
    dtype = draw(dtypes)
    pieces = draw(st.integers(1, max_pieces))
    lead = draw(hynp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4))
    units = draw(st.integers(0, 4))
    z = draw(arrays(dtype, lead + (units * pieces,), allow_nan=True))
    return dtype, z, pieces


# --- compiled == reference --------------------------------------------------------

def test_relu_of_minus_zero_is_minus_zero_as_in_pytorch(each_backend):
    """Regression: -0.0 on the compiled backend, +0.0 (NumPy's maximum) on the reference.

    The convention is PyTorch's: ReLU passes every z that is not below 0 unchanged.
    """
    z = np.array([-0.0, 0.0, -1.0])
    got = refnet.relu(z)
    np.testing.assert_array_equal(np.signbit(got), [True, False, False])
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(np.signbit(torch.relu(torch.from_numpy(z)).numpy()), np.signbit(got))


# The exponential tails underflow (exp(-800) = 0 in float64); an overflow gives inf.
EXTREMES = np.array([-800.0, 800.0, -1e308, 1e308, -np.inf, np.inf, -0.0, 5e-324])


# The public functions taking (z) or (grad_output, z): the kernels of those strategies.  Every
# kernel itself is checked on its drawn arguments in test_kernel_inputs.
PUBLIC_ELEMENTWISE = [spec.name for spec in KERNELS if spec.inputs in ("elementwise_arguments", "softmax_arguments")]


@pytest.mark.parametrize("name", PUBLIC_ELEMENTWISE)
def test_the_callers_floating_point_error_state_changes_nothing(name):
    """Regression: under np.errstate(all="raise") the reference raised FloatingPointError (exp
    underflow at z = -800) where the compiled backend returns the IEEE result."""
    function = getattr(refnet, name)
    args = (np.ones(8), EXTREMES) if name.endswith("_backward") else (EXTREMES,)
    expected = on_both(function, *args)
    with np.errstate(all="raise"):
        got = on_both(function, *args)
    for before, after in zip(expected, got):
        assert_same_bits(after, before)


EXACT = {"float64": Exact(), "float32": Exact()}
EXACT_UNARY = [name for f in ELEMENTWISE for name in (f, f"{f}_derivative") if kernel(name).twin == EXACT]
EXACT_BACKWARD = [f"{f}_backward" for f in ELEMENTWISE if kernel(f"{f}_backward").twin == EXACT]


@pytest.mark.parametrize("name", EXACT_UNARY)
@given(z=dtype_and_array(allow_nan=True, allow_infinity=True))
@example(z=np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324]))
@example(z=np.array([], dtype=np.float32))
def test_relu_family_twins_agree_to_the_bit(name, z):
    """Selections and one rounded product: no room for the backends to differ."""
    assert_same_bits(*on_both(getattr(refnet, name), z))


@pytest.mark.parametrize("name", EXACT_BACKWARD)
@given(data=st.data())
def test_relu_family_backward_twins_agree_to_the_bit(name, data):
    dtype, shape = data.draw(dtypes), data.draw(shapes)
    grad = data.draw(arrays(dtype, shape, allow_nan=True, allow_infinity=True))
    z = data.draw(arrays(dtype, shape, allow_nan=True, allow_infinity=True))
    assert_same_bits(*on_both(getattr(refnet, name), grad, z))


@given(data=st.data(), slope=st.floats(0, 1))  # slope <= 1: slope * z cannot overflow
def test_leaky_relu_with_any_slope_twins_agree(data, slope):
    z = data.draw(dtype_and_array())
    assert_same_bits(*on_both(refnet.leaky_relu, z, slope=slope))
    assert_same_bits(*on_both(refnet.leaky_relu_backward, np.ones_like(z), z, slope=slope))


@given(data=st.data())
def test_prelu_twins_agree_to_the_bit(data):
    dtype = data.draw(dtypes)
    shape = data.draw(nonscalar_shapes)
    z = data.draw(arrays(dtype, shape, min_value=-1e6, max_value=1e6))
    grad = data.draw(arrays(dtype, shape, min_value=-1e3, max_value=1e3))
    slope = data.draw(arrays(dtype, (shape[-1],), min_value=-1, max_value=1))
    assert_same_bits(*on_both(refnet.prelu, z, slope))
    (compiled_input, compiled_slope), (reference_input, reference_slope) = on_both(
        refnet.prelu_backward, grad, z, slope
    )
    assert_same_bits(compiled_input, reference_input)
    # The slope gradient sums over the rows: the spec's tolerance grows with their number.
    _, slope_tolerance = kernel("prelu_backward").twin_tolerance(dict(grad_output=grad, z=z, slope=slope))
    assert_within(compiled_slope, reference_slope, slope_tolerance, "prelu_backward's slope gradient")


@given(args=rows_and_groups())
@example(args=(np.float64, np.array([[0.0, 0.0, 1.0, 1.0]]), 2))
@example(args=(np.float64, np.array([[np.nan, 1.0, 2.0, np.nan]]), 2))
@example(args=(np.float32, np.zeros((0, 6), np.float32), 3))
def test_maxout_twins_agree_to_the_bit(args):
    dtype, z, pieces = args
    assert_same_bits(*on_both(refnet.maxout, z, pieces))
    grad = np.arange(1, refnet.maxout(z, pieces).size + 1, dtype=dtype).reshape(refnet.maxout(z, pieces).shape)
    assert_same_bits(*on_both(refnet.maxout_backward, grad, z, pieces))


@given(z=dtype_and_array(shape=nonscalar_shapes))
@example(z=np.array([[1e308, -1e308, 0.0]]))
@example(z=np.array([[5e-324, -0.0]]))
@example(z=np.zeros((2, 0)))
def test_softmax_twins_agree(z):
    compiled, reference = on_both(refnet.softmax, z)
    assert_within(compiled, reference, kernel("softmax").twin_tolerance(dict(z=z)), "softmax")


@given(data=st.data())
def test_softmax_backward_twins_agree(data):
    dtype = data.draw(dtypes)
    shape = data.draw(nonscalar_shapes)
    s = refnet.softmax(data.draw(arrays(dtype, shape, min_value=-30, max_value=30)))
    grad = data.draw(arrays(dtype, shape, min_value=-10, max_value=10))
    compiled, reference = on_both(refnet.softmax_backward, grad, s)
    tolerance = kernel("softmax_backward").twin_tolerance(dict(grad_output=grad, output=s))
    assert_within(compiled, reference, tolerance, "softmax_backward")


# --- closed forms -------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@given(z=dtype_and_array(min_value=-700, max_value=700))
@example(z=np.array([0.0, -0.0, 1e-300, 36.0, 37.0]))
def test_sigmoid_derivative_equals_sigma_times_one_minus_sigma(backend, z):
    with refnet.use_backend(backend):
        s, ds = refnet.sigmoid(z), refnet.sigmoid_derivative(z)
    # Absolute, derived from both kernels' accuracy bounds (s * (1 - s) in z's dtype).
    tolerance = sigmoid_product_tolerance(z.dtype) * UNIT_ROUNDOFF[z.dtype]
    assert np.all(np.abs(ds.astype(np.float64) - s * (1.0 - s)) <= tolerance)


@pytest.mark.parametrize("backend", BACKENDS)
@given(z=dtype_and_array(allow_infinity=True))
@example(z=np.array([0.0, -0.0, 5e-324, -1e308, 1e308]))
def test_sigmoid_derivative_is_at_most_a_quarter_and_positive_where_representable(backend, z):
    with refnet.use_backend(backend):
        ds = refnet.sigmoid_derivative(z)
    assert np.all(ds <= 0.25)
    assert np.all(ds >= 0)
    # sigma'(z) ~ e^-|z| is above the smallest subnormal while |z| < ~744 (float64), ~103 (float32).
    limit = 740.0 if z.dtype == np.float64 else 100.0
    assert np.all(ds[np.abs(z) < limit] > 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_derivative_is_a_quarter_exactly_at_zero_only_up_to_rounding(backend, dtype):
    # sigma'(z) = 1/4 - z^2/16 + ..., which rounds to 1/4 while z^2/16 < u/4 * ...:
    # |z| < ~1.5e-8 (float64), ~3.5e-4 (float32).  Beyond twice that it must be below.
    tiny = 1.5e-8 if dtype == np.float64 else 3.5e-4
    with refnet.use_backend(backend):
        assert refnet.sigmoid_derivative(dtype(0)) == 0.25
        assert refnet.sigmoid_derivative(dtype(-0.0)) == 0.25
        assert np.all(refnet.sigmoid_derivative(np.array([-4 * tiny, 4 * tiny, 1, -1], dtype)) < 0.25)


@pytest.mark.parametrize("backend", BACKENDS)
@given(z=dtype_and_array(allow_infinity=True))
@example(z=np.array([0.0, 1e-17, 37.0, -37.0, 800.0]))
def test_sigmoid_of_minus_z_is_one_minus_sigmoid(backend, z):
    with refnet.use_backend(backend):
        lhs, s = refnet.sigmoid(-z), refnet.sigmoid(z)
    # Absolute, derived from sigmoid's accuracy bound (1 - sigma(z) in float64).
    tolerance = sigmoid_symmetry_tolerance(z.dtype) * UNIT_ROUNDOFF[z.dtype]
    assert np.all(np.abs(lhs.astype(np.float64) - (1.0 - s.astype(np.float64))) <= tolerance)


@pytest.mark.parametrize("backend", BACKENDS)
@given(z=dtype_and_array(allow_infinity=True))
def test_sigmoid_is_in_the_unit_interval_and_monotone(backend, z):
    with refnet.use_backend(backend):
        s = refnet.sigmoid(np.sort(z.ravel()))
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s) >= 0)


@pytest.mark.parametrize(("mean1", "cov", "prior1", "error"), [
    ([0.0, 10**400], np.eye(2), 0.5, TypeError),       # an int beyond float: was OverflowError
    ([0.0, 1.0], [[1.0, 2.0], [3.0]], 0.5, TypeError),  # ragged: was ValueError from NumPy's depths
    ([0.0, 1.0], np.eye(2) * 1j, 0.5, TypeError),       # complex: was a ComplexWarning
    ([0.0, np.nan], np.eye(2), 0.5, ValueError),
    ([0.0, 1.0], np.eye(2), 10**400, ValueError),
])
def test_bayes_arguments_are_named(mean1, cov, prior1, error):
    """Regression (hostile suite)."""
    with pytest.raises(error, match="mean1|cov|prior1"):
        refnet.bayes.shared_covariance_logistic(mean1, [0.0, 0.0], cov, prior1)


@given(
    d=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    prior1=st.floats(0.02, 0.98),
)
def test_bayes_posterior_of_shared_covariance_gaussians_is_a_sigmoid(d, seed, prior1):
    """P(C1|x) from Bayes' rule with the densities written out here equals sigma(w.x + b)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d))
    cov = a @ a.T + 0.5 * np.eye(d)
    mean1, mean2 = rng.normal(size=d), rng.normal(size=d)
    x = rng.normal(scale=1.5, size=(20, d))
    precision = np.linalg.inv(cov)

    def density(mean):
        diff = x - mean
        quadratic = np.einsum("ij,jk,ik->i", diff, precision, diff)
        return np.exp(-0.5 * quadratic) / np.sqrt((2 * np.pi) ** d * np.linalg.det(cov))

    joint1, joint2 = prior1 * density(mean1), (1 - prior1) * density(mean2)
    assume(np.all(joint1 + joint2 > 1e-250))
    posterior = joint1 / (joint1 + joint2)

    w, b = refnet.bayes.shared_covariance_logistic(mean1, mean2, cov, prior1)
    w_closed = precision @ (mean1 - mean2)
    b_closed = -0.5 * mean1 @ precision @ mean1 + 0.5 * mean2 @ precision @ mean2 + np.log(prior1 / (1 - prior1))
    np.testing.assert_allclose(w, w_closed, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b, b_closed, rtol=1e-8, atol=1e-10)
    # The posterior is conditioned like z = w.x + b: an error dz moves it by at most dz/4.
    z = x @ w_closed + b_closed
    tolerance = 1e-12 * (1 + np.abs(z))
    np.testing.assert_array_less(np.abs(refnet.sigmoid(z) - posterior), tolerance)
    np.testing.assert_array_less(np.abs(refnet.bayes.gaussian_posterior(x, mean1, mean2, cov, prior1) - posterior), tolerance)


@pytest.mark.parametrize("backend", BACKENDS)
@given(z=dtype_and_array(allow_nan=True, allow_infinity=True))
def test_relu_derivative_is_zero_or_one_and_zero_at_the_kink(backend, z):
    with refnet.use_backend(backend):
        d = refnet.relu_derivative(z)
        assert refnet.relu_derivative(z.dtype.type(0)) == 0
    assert set(np.unique(d)) <= {0.0, 1.0}
    np.testing.assert_array_equal(d, z > 0)


@pytest.mark.parametrize("backend", BACKENDS)
@given(z=dtype_and_array(shape=nonscalar_shapes, allow_infinity=True))
@example(z=np.array([0.0, -0.0, 1.0, -1.0]))
def test_maxout_over_zero_and_z_is_relu_forward_and_backward(backend, z):
    pairs = np.stack([np.zeros_like(z), z], axis=-1).reshape(z.shape[:-1] + (2 * z.shape[-1],))
    grad = np.linspace(1, 2, z.size, dtype=z.dtype).reshape(z.shape)
    with refnet.use_backend(backend):
        np.testing.assert_array_equal(refnet.maxout(pairs, 2), refnet.relu(z))
        through_maxout = refnet.maxout_backward(grad, pairs, 2).reshape(z.shape + (2,))
        # The z piece gets the gradient exactly where ReLU passes it (z > 0; not at the
        # tie z = 0, which goes to the zero piece, the lowest index).
        np.testing.assert_array_equal(through_maxout[..., 1], refnet.relu_backward(grad, z))
        np.testing.assert_array_equal(through_maxout[..., 0], np.where(z > 0, 0, grad))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_maxout_ties_go_to_the_lowest_index(backend, dtype):
    with refnet.use_backend(backend):
        # [0, z] at z = 0: the zero piece wins, so d/dz = 0 (ReLU's convention) ...
        np.testing.assert_array_equal(refnet.maxout_backward(np.ones((1, 1), dtype), np.zeros((1, 2), dtype), 2), [[1, 0]])
        # ... and among three equal pieces the first one takes the whole gradient.
        np.testing.assert_array_equal(refnet.maxout_backward(np.full((1, 1), 3, dtype), np.full((1, 3), 2, dtype), 3), [[3, 0, 0]])


@pytest.mark.parametrize("backend", BACKENDS)
@given(args=rows_and_groups())
def test_maxout_output_is_each_groups_max_and_gradient_goes_to_the_first_winner(backend, args):
    dtype, z, pieces = args
    assume(not np.isnan(z).any())
    with refnet.use_backend(backend):
        h = refnet.maxout(z, pieces)
        grad = refnet.maxout_backward(np.ones_like(h), z, pieces)
    groups = [list(group) for group in z.reshape(-1, pieces)]
    np.testing.assert_array_equal(h.reshape(-1), [max(group) for group in groups])
    one_hot = np.zeros((len(groups), pieces))
    one_hot[np.arange(len(groups)), [group.index(max(group)) for group in groups]] = 1
    np.testing.assert_array_equal(grad.reshape(-1, pieces), one_hot)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("width", [10, 1000, 10**5, 10**6])
def test_long_softmax_rows_sum_to_one_within_a_few_ulp(backend, width):
    """Regression: the compiled row sum ran in order, its error growing with the width: rows of
    10^5 and 10^6 summed to 1 - 87 u and 1 - 131 u (u = 2**-53); both twins now sum pairwise.
    math.fsum is the exact sum of the rounded outputs."""
    z = np.random.default_rng(0).standard_normal(width)
    with refnet.use_backend(backend):
        p = refnet.softmax(z)
    assert abs(math.fsum(p) - 1) <= 8 * 2.0**-53


@pytest.mark.parametrize("backend", BACKENDS)
@given(z=dtype_and_array(shape=nonscalar_shapes, min_value=-1e4, max_value=1e4), shift=st.floats(-1e3, 1e3))
@example(z=np.array([[1e308, 1e308 - 1e293, -1e308]]), shift=0.0)
def test_softmax_sums_to_one_and_ignores_shifts(backend, z, shift):
    assume(z.shape[-1] > 0)
    with refnet.use_backend(backend):
        p = refnet.softmax(z)
        shifted = refnet.softmax((z.astype(np.float64) + shift).astype(z.dtype))
    u = UNIT_ROUNDOFF[z.dtype]
    # Each entry within 1 ulp (float32) or (n + 2) ulp (float64) of exact: the sum within n of that.
    n = z.shape[-1]
    assert np.all(np.abs(p.sum(axis=-1, dtype=np.float64) - 1) <= (n + 2) * n * u + 2 * n * u)
    assert np.all(p >= 0)
    # Adding `shift` rounds z by up to 1 ulp of |z| + |shift|; softmax moves by at most
    # that times p (its Lipschitz constant in the max norm is below 1), plus its own error.
    perturbation = 2 * u * (np.abs(z).max(axis=-1, keepdims=True) + abs(shift))
    assert np.all(np.abs(shifted.astype(np.float64) - p) <= 2 * perturbation + 4 * (n + 2) * u)


# --- gradients by central differences (float64, away from kinks) ---------------------

def central_difference(f, z, h=1e-6):
    """d f(z)_i / d z_i for an elementwise f."""
    return (f(z + h) - f(z - h)) / (2 * h)


ELEMENTWISE_TRIPLES = {
    **{f: tuple(getattr(refnet, name) for name in (f, f"{f}_derivative", f"{f}_backward")) for f in ELEMENTWISE},
    "leaky_relu(0.3)": (
        lambda z: refnet.leaky_relu(z, 0.3),
        lambda z: refnet.leaky_relu_derivative(z, 0.3),
        lambda g, z: refnet.leaky_relu_backward(g, z, 0.3),
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ELEMENTWISE_TRIPLES)
@given(data=st.data())
def test_derivative_and_backward_match_central_differences(backend, name, data):
    forward, derivative, backward = ELEMENTWISE_TRIPLES[name]
    n = data.draw(st.integers(1, 20))
    z = data.draw(arrays(np.float64, n, min_value=-8, max_value=8))
    grad = data.draw(arrays(np.float64, n, min_value=-3, max_value=3))
    assume(np.all(np.abs(z) > 1e-3))  # away from the kinks at 0
    with refnet.use_backend(backend):
        # h = 1e-6: truncation error h^2/6 |f'''| <= 1e-13, rounding 1e-16 / h = 1e-10.
        slope = central_difference(forward, z)
        np.testing.assert_allclose(derivative(z), slope, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(backward(grad, z), grad * slope, rtol=1e-7, atol=1e-9)


def loss_gradient(loss, z, h=1e-6):
    """Central-difference gradient of a scalar loss(z), coordinate by coordinate."""
    grad = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[index] = h
        grad[index] = (loss(z + step) - loss(z - step)) / (2 * h)
    return grad


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data())
def test_softmax_backward_matches_finite_differences(backend, data):
    rows, width = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5))
    z = data.draw(arrays(np.float64, (rows, width), min_value=-5, max_value=5))
    weights = data.draw(arrays(np.float64, (rows, width), min_value=-2, max_value=2))
    with refnet.use_backend(backend):
        got = refnet.softmax_backward(weights, refnet.softmax(z))
        expected = loss_gradient(lambda v: np.sum(weights * refnet.softmax(v)), z)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), shared=st.booleans())
def test_prelu_backward_matches_finite_differences(backend, data, shared):
    rows, units = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    z = data.draw(arrays(np.float64, (rows, units), min_value=-5, max_value=5))
    assume(np.all(np.abs(z) > 1e-3))
    slope = np.array(0.25) if shared else data.draw(arrays(np.float64, units, min_value=-1, max_value=1))
    weights = data.draw(arrays(np.float64, (rows, units), min_value=-2, max_value=2))
    with refnet.use_backend(backend):
        grad_input, grad_slope = refnet.prelu_backward(weights, z, slope)
        expected_input = loss_gradient(lambda v: np.sum(weights * refnet.prelu(v, slope)), z)
        expected_slope = loss_gradient(lambda a: np.sum(weights * refnet.prelu(z, a)), slope.astype(np.float64))
    np.testing.assert_allclose(grad_input, expected_input, rtol=1e-6, atol=1e-8)
    assert grad_slope.shape == slope.shape
    np.testing.assert_allclose(grad_slope, expected_slope, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data())
def test_maxout_backward_matches_finite_differences(backend, data):
    rows, units, pieces = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    z = data.draw(arrays(np.float64, (rows, units * pieces), min_value=-5, max_value=5))
    groups = np.sort(z.reshape(rows, units, pieces), axis=-1)
    assume(pieces == 1 or np.all(groups[..., -1] - groups[..., -2] > 1e-3))  # a clear winner
    weights = data.draw(arrays(np.float64, (rows, units), min_value=-2, max_value=2))
    with refnet.use_backend(backend):
        got = refnet.maxout_backward(weights, z, pieces)
        expected = loss_gradient(lambda v: np.sum(weights * refnet.maxout(v, pieces)), z)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", ["compiled", "reference"])
def test_prelu_out_overlapping_the_slope_is_computed_as_if_separate(backend):
    with refnet.use_backend(backend):
        buffer = np.empty((3, 2))
        buffer[0] = 0.5
        slope = buffer[0]
        expected = refnet.prelu(-np.ones((3, 2)), slope.copy())
        refnet.prelu(-np.ones((3, 2)), slope, out=buffer)
        np.testing.assert_array_equal(buffer, expected)

        buffer[0] = 0.5
        expected_input, _ = refnet.prelu_backward(2 * np.ones((3, 2)), -np.ones((3, 2)), slope.copy())
        refnet.prelu_backward(2 * np.ones((3, 2)), -np.ones((3, 2)), slope, out=(buffer, None))
        np.testing.assert_array_equal(buffer, expected_input)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("written", ["grad_output", "z"])
def test_prelu_backward_into_its_own_input_gives_the_separate_result(backend, written):
    """Regression: the reference wrote grad_input first, then formed the slope's gradient from
    the grad_output or z it had just overwritten (-0.5 or 0 for -2 here)."""
    grad_output, z = np.array([[1.0, 1.0], [3.0, -1.0]]), np.array([[-2.0, 3.0], [-0.5, -4.0]])
    slope = np.array([0.25, 0.5])
    # By hand: dL/dz = g where z > 0, slope * g elsewhere; dL/dslope_j = sum of g z over z <= 0.
    expected_input = np.array([[0.25, 1.0], [0.75, -0.5]])
    expected_slope = np.array([1.0 * -2.0 + 3.0 * -0.5, -1.0 * -4.0])
    with refnet.use_backend(backend):
        arguments = {"grad_output": grad_output, "z": z}
        grad_input, grad_slope = refnet.prelu_backward(grad_output, z, slope, out=(arguments[written], None))
    assert grad_input is arguments[written]
    np.testing.assert_array_equal(grad_input, expected_input)
    np.testing.assert_array_equal(grad_slope, expected_slope)


# The kernels refnet.set_num_threads splits (its docstring names them), as the compiled module
# names them; each takes (z, out) or (grad_output, z, out).
SPLIT_KERNELS = ("sigmoid", "sigmoid_derivative", "sigmoid_backward", "tanh", "tanh_derivative",
                 "tanh_backward")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in Linux's /proc")
@pytest.mark.parametrize("omp_threads", ["2", "3", "7"])
def test_split_sigmoid_and_tanh_give_the_same_bits_and_start_threads_only_when_asked(tmp_path, omp_threads):
    """Two, three and seven threads (more than the cores, which OpenMP runs anyway) cut an odd
    length into uneven blocks; each block's loop must give the one-thread bits, edges
    included, and write every element of its output and nothing past it (the outputs are
    views into a buffer filled with a sentinel, -NaN, that no kernel returns for these
    inputs).  By default no thread starts."""
    script = (
        "import os, sys, numpy as np, refnet\n"
        "from refnet import _core\n"
        "if _core._openmp_threads() == 1: sys.exit(77)\n"
        "count = lambda: len(os.listdir('/proc/self/task'))\n"
        "z = np.ones(3 * 2**16 + 37); before = count()\n"
        "_core.sigmoid(z, z.copy()); assert count() == before, (before, count())\n"
        "refnet.set_num_threads(8); _core.sigmoid(z, z.copy())\n"
        "assert count() > before, (before, count())\n"
        "rng = np.random.default_rng(0)\n"
        "for dtype in (np.float32, np.float64):\n"
        "    info = np.finfo(dtype)\n"
        "    z = (30 * rng.standard_normal(3 * 2**16 + 37)).astype(dtype)\n"
        "    z[:9] = [0, -0.0, np.inf, -np.inf, 0.5, info.tiny / 4, -info.max, info.max, 1e-30]\n"
        "    g = rng.standard_normal(z.size).astype(dtype)\n"
        "    for name in sys.argv[1:]:\n"
        "        kernel = getattr(_core, name)\n"
        "        args = (g, z) if name.endswith('_backward') else (z,)\n"
        "        results = []\n"
        "        for threads in (1, 8):\n"
        "            refnet.set_num_threads(threads)\n"
        "            buffer = np.full(z.size + 64, -np.nan, dtype)\n"
        "            kernel(*args, buffer[:z.size])\n"
        "            assert not np.isnan(buffer[:z.size]).any(), (name, dtype, threads, 'element left unwritten')\n"
        "            assert np.isnan(buffer[z.size:]).all(), (name, dtype, threads, 'written past the end')\n"
        "            results.append(buffer[:z.size])\n"
        "        assert np.array_equal(*results), (name, dtype)\n"
        "        assert np.array_equal(*map(np.signbit, results)), (name, dtype)\n"
    )
    # Threads exactly as asked: no dynamic adjustment, no limit below the count.
    env = {key: value for key, value in os.environ.items() if key != "OMP_THREAD_LIMIT"}
    env.update(OMP_NUM_THREADS=omp_threads, OMP_DYNAMIC="false")
    # From another directory: run from the repository, `import refnet` would find the source folder.
    result = subprocess.run([sys.executable, "-c", script, *SPLIT_KERNELS], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=env)
    if result.returncode == 77:
        pytest.skip("this build has no OpenMP: every kernel runs on one thread")
    assert result.returncode == 0, result.stderr


def test_gaussian_posterior_refuses_points_whose_densities_cannot_be_compared():
    """Regression: a point 1e155 from both means overflowed both squared Mahalanobis distances, and
    gaussian_posterior returned NaN with a RuntimeWarning.  One overflowing distance is still fine:
    the point is then infinitely more likely under the other class."""
    means, cov = (np.zeros(2), np.array([1.0, 0.0])), np.eye(2)
    with pytest.raises(ValueError, match=r"x\[1\] is too far from both means"):
        refnet.bayes.gaussian_posterior([[0.5, 0.0], [1e155, 0.0]], *means, cov, 0.5)
    # Exactly halfway the densities are equal, whatever the prior; near the means the posterior
    # is the written-out Bayes rule (the densities differ by exp(-(0.5 - x)) at x on the axis).
    np.testing.assert_allclose(refnet.bayes.gaussian_posterior([[0.5, 0.0], [0.0, 0.0]], *means, cov, 0.3),
                               [0.3, 0.3 / (0.3 + 0.7 * np.exp(-0.5))], rtol=1e-15)
