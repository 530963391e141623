"""Dense kernels: compiled == reference == an independent NumPy recomputation; validation at the boundary."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import refnet
from refnet.reference.dense import DENSE_ACTIVATIONS

from refnet.testing.strategies import DTYPES, dtypes
from refnet.testing.tolerances import UNIT_ROUNDOFF

ACTIVATIONS = [None, "sigmoid", "tanh", "relu", "leaky_relu"]
SLOPE = 0.01


def _activation_and_derivative(name, z):
    """f(z) and f'(z) in float64, written out here rather than taken from refnet."""
    z = z.astype(np.float64)
    if name is None:
        return z, np.ones_like(z)
    # Derivatives as sech^2, which keeps the tails (1 - tanh^2 rounds to 0 there).
    sech2 = lambda t: 1 / np.cosh(np.clip(t, -350, 350)) ** 2  # noqa: E731 -- sech^2 underflows past 350
    if name == "sigmoid":
        return 1 / (1 + np.exp(-np.clip(z, -700, 700))), sech2(z / 2) / 4
    if name == "tanh":
        return np.tanh(z), sech2(z)
    slope = 0.0 if name == "relu" else SLOPE
    return np.where(z > 0, z, slope * z), np.where(z > 0, 1.0, slope)


def _assert_within(got, expected, magnitude, dtype, ops):
    """|got - expected| <= ops * u * magnitude, with u the unit roundoff of ``dtype``.

    A product or sum of ``ops`` terms errs by at most about ops * u times the sum
    of the magnitudes of its terms (Higham, *Accuracy and Stability*, §3.1);
    ``magnitude`` is that sum, computed in float64 from absolute values.  The
    float64 "expected" values carry an error of the same order, which the factor
    2 in the callers covers.  The tiny floor covers results that underflow.
    """
    u = UNIT_ROUNDOFF[np.dtype(dtype)]
    bound = ops * u * np.asarray(magnitude) + np.finfo(dtype).tiny
    assert np.all(np.abs(got.astype(np.float64) - expected) <= bound), (
        np.max(np.abs(got.astype(np.float64) - expected) - bound)
    )


@st.composite
def dense_case(draw):
    """A dtype, shapes (rows down to 0) and seeded normal data for one dense layer."""
    dtype = draw(dtypes)
    rows = draw(st.integers(0, 7))
    n_in = draw(st.integers(1, 7))
    n_out = draw(st.integers(1, 7))
    activation = draw(st.sampled_from(ACTIVATIONS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    x = (scale * rng.standard_normal((rows, n_in))).astype(dtype)
    weight = rng.standard_normal((n_in, n_out)).astype(dtype)
    bias = rng.standard_normal(n_out).astype(dtype)
    grad_output = rng.standard_normal((rows, n_out)).astype(dtype)
    return activation, x, weight, bias, grad_output


def _both_backends(activation, x, weight, bias, grad_output):
    results = {}
    for backend in ("compiled", "reference"):
        with refnet.use_backend(backend):
            out, z = refnet.dense(x, weight, bias, activation, SLOPE)
            grads = refnet.dense_backward(grad_output, x, weight, z, activation, SLOPE)
        results[backend] = (out, z) + tuple(grads)
    return results


@given(dense_case())
@example((None, np.ones((1, 1)), np.full((1, 1), 2.0), np.array([0.5]), np.ones((1, 1))))
@example(("relu", np.zeros((0, 3)), np.ones((3, 2)), np.zeros(2), np.zeros((0, 2))))
def test_compiled_and_reference_dense_match_an_independent_recomputation(case):
    """Both backends within a rounding bound of one float64 oracle, so within twice it of each other.

    (Bitwise equality is not expected: BLAS and NumPy's matmul may sum in other orders.)
    """
    activation, x, weight, bias, grad_output = case
    dtype = x.dtype
    x64, w64, b64, g64 = (a.astype(np.float64) for a in (x, weight, bias, grad_output))
    z = x64 @ w64 + b64
    z_magnitude = np.abs(x64) @ np.abs(w64) + np.abs(b64)
    n_in, rows = x.shape[1], x.shape[0]
    for backend, (out, got_z, grad_x, grad_w, grad_b) in _both_backends(*case).items():
        assert out.dtype == got_z.dtype == grad_x.dtype == grad_w.dtype == grad_b.dtype == dtype
        _assert_within(got_z, z, z_magnitude, dtype, 2 * (n_in + 2))
        # The activation is applied to the *computed* z: compare on that, with
        # a few ulp for the activation's own rounding (its error bounds are
        # tested in test_activations; 1-Lipschitz, so z's error does not grow).
        f, df = _activation_and_derivative(activation, got_z)
        _assert_within(out, f, np.abs(f) + z_magnitude * (activation is not None), dtype, 2 * (n_in + 12))
        delta = g64 * df
        _assert_within(grad_b, delta.sum(axis=0), np.abs(delta).sum(axis=0), dtype, 2 * (rows + 12))
        _assert_within(grad_w, x64.T @ delta, np.abs(x64).T @ np.abs(delta), dtype, 2 * (rows + 12))
        _assert_within(grad_x, delta @ w64.T, np.abs(delta) @ np.abs(w64).T, dtype, 2 * (weight.shape[1] + 12))


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_gives_empty_output_and_zero_gradients(dtype, each_backend):
    weight = np.ones((3, 2), dtype)
    out, z = refnet.dense(np.zeros((0, 3), dtype), weight, np.zeros(2, dtype), "relu")
    assert out.shape == z.shape == (0, 2)
    grad_x, grad_w, grad_b = refnet.dense_backward(np.zeros((0, 2), dtype), np.zeros((0, 3), dtype), weight, z, "relu")
    assert grad_x.shape == (0, 3)
    assert np.array_equal(grad_w, np.zeros((3, 2))) and np.array_equal(grad_b, np.zeros(2))


def test_relu_kink_and_identity_closed_form(each_backend):
    # z = 0 exactly: ReLU'(0) = 0 (the activations' convention), so no gradient passes.
    x, weight, bias = np.array([[1.0, -1.0]]), np.array([[1.0], [1.0]]), np.array([0.0])
    out, z = refnet.dense(x, weight, bias, "relu")
    assert out[0, 0] == 0 and z[0, 0] == 0
    grad_x, grad_w, grad_b = refnet.dense_backward(np.ones((1, 1)), x, weight, z, "relu")
    assert not grad_x.any() and not grad_w.any() and not grad_b.any()
    # Identity: y = x W + b by hand.
    out, _ = refnet.dense([[1.0, 2.0]], [[1.0, 0.0, 3.0], [0.0, 1.0, -1.0]], [0.5, 0.0, 0.0])
    assert out.tolist() == [[1.5, 2.0, 1.0]]


def test_activation_names_are_the_same_on_both_backends():
    assert refnet._core.DENSE_ACTIVATIONS == DENSE_ACTIVATIONS


def test_bad_arguments_are_named():
    x, weight, bias = np.ones((2, 3)), np.ones((3, 4)), np.ones(4)
    with pytest.raises(TypeError, match="x must have dtype float64"):
        refnet.dense(x.astype(np.float32), weight, bias)
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        refnet.dense(np.ones((2, 3), dtype=int), weight, bias)
    with pytest.raises(ValueError, match="x must have 3 columns"):
        refnet.dense(np.ones((2, 2)), weight, bias)
    with pytest.raises(ValueError, match="x must be 2-D"):
        refnet.dense(np.ones(3), weight, bias)
    with pytest.raises(ValueError, match=r"bias must have the shape of weight's columns \(4,\)"):
        refnet.dense(x, weight, np.ones(3))
    with pytest.raises(ValueError, match="activation must be None or one of"):
        refnet.dense(x, weight, bias, "softplus")
    with pytest.raises(ValueError, match="weight must have at least one column"):
        refnet.dense(x, np.ones((3, 0)), np.ones(0))
    out, z = refnet.dense(x, weight, bias)
    with pytest.raises(ValueError, match="grad_output must have the shape of z"):
        refnet.dense_backward(np.ones((2, 5)), x, weight, z)
    with pytest.raises(TypeError, match="z must have the dtype of x @ weight"):
        refnet.dense_backward(out, x, weight, z.astype(np.float32))


def test_inputs_are_not_modified(each_backend):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in ((4, 3), (3, 2), (2,))]
    copies = [a.copy() for a in arrays]
    out, z = refnet.dense(*arrays, "tanh")
    z_copy, grad = z.copy(), np.ones_like(out)
    refnet.dense_backward(grad, arrays[0], arrays[1], z, "tanh")
    for a, c in zip(arrays + [z, grad], copies + [z_copy, np.ones_like(out)]):
        assert np.array_equal(a, c)


def test_an_init_that_is_not_a_name_is_refused():
    with pytest.raises(ValueError, match="init must be one of"):
        refnet.Dense(2, 3, init=["x"])
