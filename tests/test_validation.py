"""Bad input gets a clear TypeError or ValueError naming the argument; good input is never modified."""

import sys

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import refnet
from refnet.testing.strategies import dtype_and_array, nonscalar_shapes

ELEMENTWISE = [
    refnet.sigmoid, refnet.sigmoid_derivative, refnet.tanh, refnet.tanh_derivative,
    refnet.relu, refnet.relu_derivative, refnet.leaky_relu, refnet.leaky_relu_derivative,
]
BACKWARD = [refnet.sigmoid_backward, refnet.tanh_backward, refnet.relu_backward, refnet.leaky_relu_backward]


def call(function, z, **kwargs):
    """Call any public activation with suitable companions for ``z``."""
    if function in BACKWARD:
        return function(np.ones_like(z), z, **kwargs)
    if function is refnet.softmax_backward:
        return function(np.ones_like(z), z, **kwargs)
    if function is refnet.prelu:
        return function(z, np.ones(np.shape(z)[-1:], np.asarray(z).dtype), **kwargs)
    if function in (refnet.maxout, refnet.maxout_backward):
        if function is refnet.maxout:
            return function(z, 1, **kwargs)
        return function(np.ones_like(z), z, 1, **kwargs)
    return function(z, **kwargs)


ALL = ELEMENTWISE + BACKWARD + [refnet.softmax, refnet.softmax_backward, refnet.prelu, refnet.maxout, refnet.maxout_backward]
IDS = [f.__name__ for f in ALL]


@pytest.mark.parametrize("function", ALL, ids=IDS)
@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint8, np.bool_, np.complex128, np.float16, object])
def test_non_float_dtypes_are_a_type_error_naming_the_dtype(function, dtype):
    z = np.ones((2, 2), dtype=dtype)
    with pytest.raises(TypeError, match=rf"float32 or float64, got {np.dtype(dtype)}"):
        call(function, z)


@pytest.mark.parametrize("function", ELEMENTWISE, ids=lambda f: f.__name__)
def test_lists_and_python_floats_are_converted(function):
    assert call(function, [0.5, -1.5]).dtype == np.float64
    result = call(function, 0.5)
    assert isinstance(result, np.float64)


@pytest.mark.parametrize("function", ALL, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_are_preserved(function, dtype):
    z = np.linspace(-2, 2, 12, dtype=dtype).reshape(3, 4)
    result = call(function, z)
    assert result.dtype == dtype and result.shape == z.shape


def test_strings_and_ragged_lists_are_type_errors_naming_the_argument():
    with pytest.raises(TypeError, match="z must"):
        refnet.sigmoid("abc")
    with pytest.raises(TypeError, match="z must"):
        refnet.sigmoid([[1.0], [1.0, 2.0]])


@pytest.mark.parametrize("function", BACKWARD + [refnet.softmax_backward], ids=lambda f: f.__name__)
def test_mismatched_companions_are_rejected(function):
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"grad_output must have the shape of \w+ \(2, 3\), got \(3, 2\)"):
        function(np.zeros((3, 2)), z)
    with pytest.raises(TypeError, match="grad_output must have the dtype of .* got float32"):
        function(np.zeros((2, 3), np.float32), z)


class TestOut:
    def test_out_is_filled_and_returned(self):
        z = np.linspace(-3, 3, 7)
        out = np.empty_like(z)
        assert refnet.sigmoid(z, out=out) is out
        np.testing.assert_array_equal(out, refnet.sigmoid(z))

    @pytest.mark.parametrize(
        "out, error, message",
        [
            ([0.0] * 6, TypeError, "out must be a numpy.ndarray, got list"),
            (np.empty(6, np.float32), TypeError, "out must have dtype float64, got float32"),
            (np.empty(5), ValueError, r"out must have shape \(6,\), got \(5,\)"),
            (np.empty(12)[::2], ValueError, "out must be C-contiguous"),
        ],
    )
    def test_bad_out(self, out, error, message):
        with pytest.raises(error, match=message):
            refnet.relu(np.ones(6), out=out)

    def test_read_only_out_is_rejected_and_untouched(self):
        out = np.full(4, 7.0)
        out.flags.writeable = False
        with pytest.raises(ValueError, match="out must be writeable"):
            refnet.tanh(np.zeros(4), out=out)
        np.testing.assert_array_equal(out, 7.0)

    @pytest.mark.parametrize("function", ALL, ids=IDS)
    def test_in_place_matches_out_of_place(self, function):
        z = np.linspace(-2, 2, 12).reshape(3, 4)
        expected = call(function, z)
        if expected.shape != z.shape:
            pytest.skip("output shape differs from the input's")
        if function is refnet.prelu:
            got = function(z, np.ones(4), out=z)
        elif function is refnet.maxout:
            got = function(z, 1, out=z)
        elif function in BACKWARD or function in (refnet.softmax_backward, refnet.maxout_backward):
            return  # covered by test_overlapping_out
        else:
            got = function(z, out=z)
        assert got is z
        np.testing.assert_array_equal(z, expected)

    @pytest.mark.parametrize("backend", ["compiled", "reference"])
    def test_overlapping_out_is_computed_as_if_separate(self, backend):
        """out overlapping an input without being it: written via a temporary, as NumPy's ufuncs."""
        with refnet.use_backend(backend):
            z = np.arange(8.0) - 4
            expected = refnet.softmax(z[1:])
            refnet.softmax(z[1:], out=z[:-1])
            np.testing.assert_allclose(z[:-1], expected, rtol=1e-15)

            z = np.array([[1.0, 3.0, -2.0, 5.0, 0.0, 0.0]])
            expected = refnet.maxout(z, 2)
            refnet.maxout(z, 2, out=z[:, :3])
            np.testing.assert_array_equal(z[:, :3], expected)

            grad, z = np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([[0.5, -1.0, 2.0, 3.0]])
            expected = refnet.sigmoid_backward(grad, z)
            refnet.sigmoid_backward(grad, z, out=grad)
            np.testing.assert_array_equal(grad, expected)


class TestArguments:
    @pytest.mark.parametrize("pieces", [0, -2])
    def test_pieces_must_be_positive(self, pieces):
        with pytest.raises(ValueError, match=f"pieces must be a positive integer, got {pieces}"):
            refnet.maxout(np.zeros((2, 4)), pieces)

    @pytest.mark.parametrize("pieces", [2.0, "2", True, None])
    def test_pieces_must_be_an_integer(self, pieces):
        with pytest.raises(TypeError, match="pieces must be an integer"):
            refnet.maxout(np.zeros((2, 4)), pieces)

    def test_pieces_beyond_a_c_integer_are_refused(self):
        """Regression (hostile suite): 10**400 pieces divide an empty axis, then overflowed the kernel's ssize_t."""
        with pytest.raises(ValueError, match="pieces must be at most"):
            refnet.maxout(np.zeros((2, 0)), 10**400)

    @pytest.mark.parametrize("backend", ["compiled", "reference"])
    @pytest.mark.parametrize("pieces", [2**60, sys.maxsize])
    def test_the_largest_pieces_divide_an_empty_axis_on_both_backends(self, backend, pieces):
        """Regression: the reference reshaped z to (..., 0, pieces), which NumPy refuses as too
        big from pieces = 2**60; the compiled twin returned the empty result."""
        z = np.zeros((2, 0))
        with refnet.use_backend(backend):
            assert refnet.maxout(z, pieces).shape == (2, 0)
            assert refnet.maxout_backward(np.zeros((2, 0)), z, pieces).shape == (2, 0)

    def test_prelu_slope_beyond_the_dtype_is_refused(self):
        """Regression (hostile suite): a Python slope of 1e308 for float32 z warned of an overflow in a cast."""
        with pytest.raises(ValueError, match=r"slope must fit in z's dtype \(float32\)"):
            refnet.prelu(np.zeros(3, np.float32), 1e308)

    def test_pieces_must_divide_the_width(self):
        with pytest.raises(ValueError, match=r"pieces must divide the last axis of z \(6\) into whole groups, got 4"):
            refnet.maxout(np.zeros((2, 6)), 4)
        with pytest.raises(ValueError, match="pieces must divide"):
            refnet.maxout_backward(np.zeros((2, 1)), np.zeros((2, 6)), 4)

    def test_maxout_backward_grad_must_have_the_output_shape(self):
        with pytest.raises(ValueError, match=r"grad_output must have the shape of maxout\(z, pieces\) \(2, 3\)"):
            refnet.maxout_backward(np.zeros((2, 6)), np.zeros((2, 6)), 2)

    @pytest.mark.parametrize("function", [refnet.softmax, refnet.maxout], ids=["softmax", "maxout"])
    def test_scalars_have_no_axis(self, function):
        with pytest.raises(ValueError, match="z must have at least 1 dimension"):
            call(function, np.float64(1.0))

    @pytest.mark.parametrize("slope", [np.nan, np.inf, 10**400, -(10**400)])
    def test_slope_must_be_finite(self, slope):
        with pytest.raises(ValueError, match="slope must be finite"):
            refnet.leaky_relu(np.zeros(3), slope)

    @pytest.mark.parametrize("make", [
        lambda: refnet.leaky_relu(np.zeros(3), -1), lambda: refnet.leaky_relu_derivative(np.zeros(3), -0.5),
        lambda: refnet.leaky_relu_backward(np.zeros(3), np.zeros(3), -1), lambda: refnet.LeakyReLU(-1),
        lambda: refnet.Dense(2, 2, activation="leaky_relu", slope=-0.1)])
    def test_leaky_slope_must_not_be_negative(self, make):
        """Regression: slope=-1 was accepted (a sign flip, not a leaky ReLU; Keras refuses it too)."""
        with pytest.raises(ValueError, match="slope must be >= 0"):
            make()

    @pytest.mark.parametrize("make", [
        lambda z: refnet.leaky_relu(z, 1e39), lambda z: refnet.leaky_relu_derivative(z, 1e39),
        lambda z: refnet.leaky_relu_backward(z, z, 1e39), lambda z: refnet.LeakyReLU(1e39).forward(z),
        lambda z: refnet.Dense(3, 2, activation="leaky_relu", slope=1e39, dtype=z.dtype),
        lambda z: refnet.dense(z[None], np.eye(3, dtype=z.dtype), np.zeros(3, z.dtype), "leaky_relu", slope=1e39)])
    def test_leaky_slope_beyond_float32_is_refused_for_float32(self, make):
        """Regression: 1e39 passed the float64 finiteness check, became inf in float32, and
        leaky_relu(0) was inf * 0 = NaN (PyTorch refuses such a slope too)."""
        z = np.array([-1.0, 0.0, 2.0], np.float32)
        with pytest.raises(ValueError, match=r"slope must fit in z's dtype \(float32\), got 1e\+39"):
            make(z)
        np.testing.assert_array_equal(refnet.leaky_relu(z.astype(np.float64), 1e39), [-1e39, 0.0, 2.0])

    @pytest.mark.parametrize("slope", ["0.1", [0.1, 0.2], True])
    def test_slope_must_be_a_number(self, slope):
        with pytest.raises(TypeError, match="slope must be a real number"):
            refnet.leaky_relu(np.zeros(3), slope)

    def test_prelu_slope_shape_and_dtype(self):
        z = np.zeros((2, 3))
        with pytest.raises(ValueError, match=r"slope must have shape \(\), \(1,\) or \(3,\)"):
            refnet.prelu(z, np.ones(2))
        with pytest.raises(TypeError, match="slope must have the dtype of z"):
            refnet.prelu(z, np.ones(3, np.float32))
        # Python numbers and lists take z's dtype.
        assert refnet.prelu(z.astype(np.float32), 0.25).dtype == np.float32
        assert refnet.prelu(z.astype(np.float32), [0.1, 0.2, 0.3]).dtype == np.float32
        # Regression: Python integers, such as Keras' initial slope 0, were refused as int64.
        negative = -np.ones((1, 3), np.float32)
        for slope, expected in ((0, [0.0, 0.0, 0.0]), (1, [-1.0, -1.0, -1.0]), ([0, 1, 2], [0.0, -1.0, -2.0])):
            result = refnet.prelu(negative, slope)
            assert result.dtype == np.float32 and result.tolist() == [expected], slope
        with pytest.raises(TypeError, match="slope must have dtype float32 or float64, got bool"):
            refnet.prelu(z, True)

    def test_prelu_backward_out_must_be_a_pair(self):
        with pytest.raises(TypeError, match=r"out must be None or a tuple \(grad_input, grad_slope\)"):
            refnet.prelu_backward(np.zeros(3), np.zeros(3), 0.25, out=np.zeros(3))


class TestEmpty:
    @pytest.mark.parametrize("function", ELEMENTWISE + BACKWARD, ids=lambda f: f.__name__)
    @pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4)])
    def test_empty_elementwise_gives_empty(self, function, shape):
        assert call(function, np.zeros(shape)).shape == shape

    def test_empty_rowwise(self):
        assert refnet.softmax(np.zeros((0, 3))).shape == (0, 3)
        assert refnet.softmax(np.zeros((2, 0))).shape == (2, 0)
        assert refnet.maxout(np.zeros((0, 6)), 3).shape == (0, 2)
        assert refnet.maxout(np.zeros((2, 0)), 3).shape == (2, 0)
        grad_input, grad_slope = refnet.prelu_backward(np.zeros((0, 3)), np.zeros((0, 3)), np.ones(3))
        assert grad_input.shape == (0, 3)
        np.testing.assert_array_equal(grad_slope, np.zeros(3))


@pytest.mark.parametrize("backend", ["compiled", "reference"])
# Bounded so that no sum overflows: what is under test here is that nothing is written.
@given(z=dtype_and_array(shape=nonscalar_shapes, min_value=-(2.0**100), max_value=2.0**100))
@example(z=np.array([[np.nan, -0.0, 1.0]]))
def test_inputs_are_never_modified(backend, z):
    original = z.copy()
    grad = np.ones_like(z)
    with refnet.use_backend(backend):
        for function in ALL:
            if function in (refnet.maxout, refnet.maxout_backward, refnet.softmax_backward) or function in BACKWARD:
                continue
            call(function, z)
        for function in BACKWARD:
            function(grad, z)
        refnet.prelu_backward(grad, z, np.ones(z.shape[-1], z.dtype))
    np.testing.assert_array_equal(z, original)
    np.testing.assert_array_equal(grad, 1)


def test_read_only_and_strided_inputs_are_accepted():
    z = np.linspace(-3, 3, 20)
    z.flags.writeable = False
    np.testing.assert_array_equal(refnet.relu(z), np.maximum(z, 0))
    strided = np.linspace(-3, 3, 40)[::2]
    np.testing.assert_array_equal(refnet.relu(strided), np.maximum(strided, 0))
    fortran = np.asfortranarray(np.linspace(-3, 3, 12).reshape(3, 4))
    np.testing.assert_allclose(refnet.softmax(fortran), refnet.softmax(np.ascontiguousarray(fortran)))
