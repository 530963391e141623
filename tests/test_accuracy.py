"""Accuracy of the transcendental activations against an extended-precision oracle.

The oracle evaluates each formula in ``np.longdouble`` (x87 extended, 64-bit
significand, on x86-64): its own error is ~2^-63 relative, 2^10 times below one
float64 ulp, so the measured error is refnet's.  Where ``longdouble`` is plain
double (Windows, some ARM builds) these tests are skipped.

The bounds are the kernel specs' ``accuracy`` (:mod:`refnet.testing.specs`, the
one copy), in ulp of the result: for float64 from the error analysis of each
formula below; float32 results are computed in double and rounded once, so they
are within 0.5 ulp plus a double-precision error far below one float32 ulp.
"""

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import refnet
from refnet.testing.specs import KERNELS, kernel
from refnet.testing.strategies import DTYPES, floats
from refnet.testing.tolerances import assert_within, ulp_error

pytestmark = pytest.mark.skipif(
    np.finfo(np.longdouble).nmant < 63, reason="np.longdouble is not an extended-precision type here"
)

L = np.longdouble


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _sigmoid_derivative(z):
    e = np.exp(-np.abs(z))
    return e / (1 + e) ** 2


def _tanh_derivative(z):
    return 1 / np.cosh(z) ** 2


def oracle(name, z):
    """The exact value of ``name`` at ``z``, to ~2^-63; exp and cosh overflow to inf
    where the true result is 0 or 1 to far beyond float64, which the formulas honour."""
    with np.errstate(over="ignore"):
        return ORACLES[name](z.astype(L))


ORACLES = {
    "sigmoid": _sigmoid,
    "sigmoid_derivative": _sigmoid_derivative,
    "tanh": np.tanh,
    "tanh_derivative": _tanh_derivative,
}

# The float64 bounds of the specs, proven.  exp: < 1 ulp in the compiled core (fdlibm's rational form, see
# refnet/_vmath.h), in glibc and in NumPy.  sigmoid: exp, 1 + e and the division (0.5 ulp
# each) give <= 2.5u relative for z >= 0 and <= 4.5u for z < 0, i.e. <= 5 ulp.  sigma'
# multiplies two such factors (+0.5): <= 9.5.  sech^2 = 4e/(1+e)^2: exp, the sum (doubled
# by squaring), the square and the division: <= 8.  tanh = -t/(2 + t), t = expm1(-2|z|):
# the compiled expm1 is within 1 ulp where |2z| <= ln2/2 (t >= -0.29) and 1.25 ulp below
# (_vmath.h); the quotient carries t's error through the numerator and, scaled by
# |t|/(2 + t) <= 1, through the denominator, plus 0.5 ulp for the sum and 0.5 for the
# division: <= 1.17 + 1 = 2.2 for t >= -0.29 and <= 2 * 1.25 + 1 = 3.5 below.  The
# reference's np.tanh: libm's documented 2 ulp, +1 for NumPy's SIMD tanh: <= 3.
# Measured maxima (compiled / reference): 2.07 / 2.07, 3.37 / 3.50, 2.40 / 1.12, 3.39 / 3.13.


def bound(name, dtype):
    """The largest error in ulp the spec allows ``name`` in ``dtype``."""
    return kernel(name).accuracy[np.dtype(dtype).name].maxulp


def test_every_kernel_with_an_accuracy_bound_has_an_oracle():
    assert {spec.name for spec in KERNELS if spec.accuracy} == set(ORACLES)


def _dense_sample(dtype, seed=0):
    """Every decade of magnitude from the smallest subnormal to the largest float, both signs."""
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    magnitudes = np.concatenate([
        np.geomspace(float(info.smallest_subnormal), float(info.max) / 4, 20_000),
        rng.uniform(0, 50, 20_000),
        rng.uniform(0, 1e-3, 5_000),
        [0.0, info.smallest_subnormal, info.tiny, 1.0, 36.0, 37.0, 709.0, 710.0, 745.0, 800.0, info.max],
    ]).astype(dtype)
    return np.concatenate([magnitudes, -magnitudes])


@pytest.mark.parametrize("backend", ["compiled", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ORACLES))
def test_error_within_bound_over_the_whole_range(name, dtype, backend):
    z = _dense_sample(dtype)
    with refnet.use_backend(backend):
        got = getattr(refnet, name)(z)
    error = ulp_error(got, oracle(name, z), dtype)
    worst = int(np.argmax(error))
    assert error[worst] <= bound(name, dtype), f"{error[worst]:.2f} ulp at z = {z[worst]!r}"


def _float32_bit_patterns(stride=4099):
    """Every stride-th of the 2^32 float32 bit patterns (an odd stride: every low mantissa bit
    pattern, both signs, subnormals, inf; NaNs left out), ~1M inputs."""
    z = np.arange(0, 2**32, stride, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return z[~np.isnan(z)]


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_float32_strided_over_every_bit_pattern_on_every_clone(name):
    """A CI-sized slice of the exhaustive proof (tests/exhaustive_float32.py checks all 2^32
    inputs): the float32 kernels stay within CORRECTLY_ROUNDED on each instruction set."""
    from refnet import _core

    z = _float32_bit_patterns()
    exact = oracle(name, z)
    try:
        for isa in _core.ISA_CLONES:
            chosen = _core._select_isa(isa)
            error = ulp_error(getattr(refnet, name)(z), exact, np.float32)
            worst = int(np.argmax(error))
            assert error[worst] <= bound(name, np.float32), f"{error[worst]:.9f} ulp at z = {z[worst]!r} on {chosen}"
    finally:
        _core._select_isa()


@pytest.mark.parametrize("backend", ["compiled", "reference"])
@pytest.mark.parametrize("name", sorted(ORACLES))
@given(data=st.data())
def test_error_within_bound_for_drawn_inputs(name, backend, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    z = np.array(data.draw(st.lists(floats(dtype), min_size=1, max_size=20)), dtype=dtype)
    with refnet.use_backend(backend):
        got = getattr(refnet, name)(z)
    error = ulp_error(got, oracle(name, z), dtype)
    assert error.max() <= bound(name, dtype)


@pytest.mark.parametrize("name", sorted(ORACLES))
@given(data=st.data())
@example(data=None)
def test_compiled_and_reference_agree_within_both_bounds(name, data):
    """Each backend is within its bound of the truth, so they are within twice it of each other."""
    if data is None:
        dtype, z = np.float64, _dense_sample(np.float64)
    else:
        dtype = data.draw(st.sampled_from(DTYPES))
        z = np.array(data.draw(st.lists(floats(dtype), min_size=1, max_size=20)), dtype=dtype)
    compiled = getattr(refnet, name)(z)
    with refnet.use_backend("reference"):
        reference = getattr(refnet, name)(z)
    assert_within(compiled, reference, kernel(name).twin[np.dtype(dtype).name], name)


def test_sigmoid_tails_are_exact_where_the_answer_is_known():
    assert refnet.sigmoid(np.float64(-800.0)) == 0.0
    assert refnet.sigmoid(np.float64(800.0)) == 1.0
    assert refnet.sigmoid(np.float32(-200.0)) == 0.0
    assert refnet.sigmoid(np.float32(200.0)) == 1.0
    finfo = np.finfo(np.float64)
    np.testing.assert_array_equal(refnet.sigmoid(np.array([-finfo.max, finfo.max])), [0.0, 1.0])


@pytest.mark.parametrize("dtype, z", [(np.float64, 37.0), (np.float64, 700.0), (np.float32, 20.0), (np.float32, 100.0)])
def test_sigmoid_derivative_keeps_the_tail_where_the_naive_formula_is_zero(dtype, z):
    z = dtype(z)
    naive = refnet.sigmoid(z) * (1 - refnet.sigmoid(z))
    exact = _sigmoid_derivative(L(z))
    got = refnet.sigmoid_derivative(z)
    assert naive == 0
    assert got > 0
    assert ulp_error(got, exact, dtype) <= bound("sigmoid_derivative", dtype)


def _backward_oracle(name, g, z):
    """g f'(z) in long double, whose exponent range holds e^-1454 (no underflow before the product)."""
    derivative = _sigmoid_derivative if name == "sigmoid_backward" else _tanh_derivative
    with np.errstate(over="ignore"):
        return g.astype(L) * derivative(z.astype(L))


# Where f'(z) is subnormal in float64 (|z| > 708.4 for sigma', > 354.2 for sech^2) but g f'(z)
# is not, for |g| up to the largest float64: |z| up to 1454.92 (sigma') or 728.15 (sech^2).
_SUBNORMAL_DERIVATIVE = {"sigmoid_backward": (708.0, 1454.9), "tanh_backward": (354.0, 728.15)}


@pytest.mark.parametrize("backend", ["compiled", "reference"])
@pytest.mark.parametrize("name", sorted(_SUBNORMAL_DERIVATIVE))
@given(magnitude=st.floats(0, 1), scale=st.floats(0, 1), signs=st.tuples(st.booleans(), st.booleans()))
@example(magnitude=0.0, scale=1.0, signs=(False, False)).via("the largest gradient at the band's start")
@example(magnitude=1.0, scale=1.0, signs=(True, False)).via("the largest gradient at the band's end")
@example(magnitude=0.5, scale=0.0, signs=(False, True)).via("a gradient of 1e250")
def test_backward_keeps_g_times_a_subnormal_derivative(name, backend, magnitude, scale, signs):
    """Regression: sigma'(z) and sech^2(z) were formed first, so where they are subnormal (few
    significant bits) g f'(z) lost all but those: at z = 740, g = 1e308, sigmoid_backward was off by
    1.7e13 ulp, and tanh_backward(1e300, 400) returned 0 for 1e-47.  Both backends stay within the
    derivative's float64 bound plus the product's 0.5 ulp, as everywhere else."""
    low, high = _SUBNORMAL_DERIVATIVE[name]
    z = np.array([(low + magnitude * (high - low)) * (-1 if signs[0] else 1)])
    g = np.array([10.0 ** (250 + 58.25 * scale) * (-1 if signs[1] else 1)])
    with refnet.use_backend(backend):
        got = getattr(refnet, name)(g, z)
    exact = _backward_oracle(name, g, z)
    assume(exact.astype(np.float64)[0] != 0)   # past the band's end for a smaller g: 0 is right
    derivative = name.replace("backward", "derivative")
    assert ulp_error(got, exact, np.float64)[0] <= bound(derivative, np.float64) + 0.5
    # In place, over the gradient or the input, among elements of ordinary size: the same bits.
    big_g, big_z = np.concatenate([np.ones(1500), g]), np.concatenate([np.linspace(-5, 5, 1500), z])
    with refnet.use_backend(backend):
        apart = getattr(refnet, name)(big_g, big_z)
        for which in ("g", "z"):
            inputs = {"g": big_g.copy(), "z": big_z.copy()}
            getattr(refnet, name)(inputs["g"], inputs["z"], out=inputs[which])
            np.testing.assert_array_equal(inputs[which], apart)
    assert apart[-1] == got[0]


def test_a_nan_gradient_in_the_band_gives_numpys_nan():
    """Review: the band's scaling passed a NaN gradient's sign and payload through, where every
    other compiled backward result that is NaN is np.nan; and just past the band's first upper
    limits the largest gradient still gave 0 for a nonzero subnormal product."""
    negative_nan = -np.float64(np.nan)
    for name, z in (("sigmoid_backward", 800.0), ("tanh_backward", 400.0)):
        got = getattr(refnet, name)(np.array([negative_nan]), np.array([z]))
        assert got.view(np.uint64)[0] == np.array([np.nan]).view(np.uint64)[0]
    largest = np.finfo(np.float64).max
    assert refnet.sigmoid_backward(np.array([largest]), np.array([1454.9]))[0] == np.finfo(np.float64).smallest_subnormal
    assert refnet.tanh_backward(np.array([largest]), np.array([727.5]))[0] > 0


# --- the same bits on every instruction set ------------------------------------------

def _specials(dtype):
    info = np.finfo(dtype)
    return np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, info.max, -info.max, info.tiny, -info.smallest_subnormal],
                    dtype=dtype)


def _every_transcendental_kernel(dtype):
    """What each compiled kernel built on the vector exp returns on the whole range."""
    z = np.concatenate([_dense_sample(dtype), _specials(dtype)])
    g = np.random.default_rng(1).standard_normal(z.shape).astype(dtype)
    results = {name: getattr(refnet, name)(z) for name in ORACLES}
    results["sigmoid_backward"] = refnet.sigmoid_backward(g, z)
    results["tanh_backward"] = refnet.tanh_backward(g, z)
    rows = z[: len(z) // 16 * 16].reshape(-1, 16)
    with np.errstate(invalid="ignore"):   # rows holding inf - inf give NaN, on every clone
        results["softmax"] = refnet.softmax(rows)
    for activation in ("sigmoid", "tanh"):
        layer = refnet.Dense(16, 16, activation=activation, dtype=dtype, seed=0)
        results[f"dense_{activation}"] = layer.forward(np.clip(rows, -30, 30), training=True)
        layer.backward(rows[:, :16] * 0 + 1)
        results[f"dense_{activation}_grad"] = layer.grad_weight.copy()
    return results


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_instruction_set_gives_the_same_bits(dtype):
    """The loops run on the widest clone the CPU has (AVX-512, AVX2, or the baseline build):
    with no fused multiply-add anywhere, every clone this CPU runs gives the baseline's bits."""
    from refnet import _core

    try:
        results = {}
        for isa in _core.ISA_CLONES:
            chosen = _core._select_isa(isa)
            if chosen not in results:
                results[chosen] = _every_transcendental_kernel(dtype)
    finally:
        _core._select_isa()
    baseline = results.pop("baseline")
    for isa, clone in results.items():
        for name, result in clone.items():
            np.testing.assert_array_equal(result.view(f"u{result.itemsize}"), baseline[name].view(f"u{result.itemsize}"),
                                          err_msg=f"{name} on {isa}")
