"""Losses: closed forms, an independent extended-precision recomputation, compiled == reference, validation."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import refnet
from refnet.losses import ACCURACY, LOSSES

from refnet.testing.strategies import DTYPES, dtypes
from refnet.testing.tolerances import UNIT_ROUNDOFF

# The loss is a sum of rows*units terms accumulated in float64, and each term
# has a few roundings of its own (log, exp): its relative error is bounded by
# (terms + 8) * u64 * sum|terms| / |sum|.  Gradients are elementwise, evaluated in
# float64 and rounded once to the dtype: 1/2 ulp of the dtype plus float64's few
# ulp, relative to the magnitude of the terms (sigma - t cancels when sigma ~ t).
GRAD_RTOL = {np.dtype(np.float32): 2 * UNIT_ROUNDOFF[np.dtype(np.float32)], np.dtype(np.float64): 16 * 2.0**-53}


def _oracle(name, output, target):
    """(loss, grad, sum of |loss terms|, |grad terms|) recomputed in np.longdouble from the textbook formulas."""
    a = output.astype(np.longdouble)
    rows = a.shape[0]
    if name == "softmax_cross_entropy":
        t = np.eye(a.shape[1], dtype=np.longdouble)[target]
        shifted = a - a.max(axis=1, keepdims=True)   # rounded 2^11 times finer than float64's u
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        # Long double has only 11 bits more than float64: not enough for log(1 + tiny) or for
        # p_y - 1 with p_y near 1.  So the plain identities log T = log1p(sum of the e_k
        # other than one maximum's 1) and p_y - 1 = -(sum of the other p_k).
        first_max = np.arange(a.shape[1]) == a.argmax(axis=1)[:, None]
        terms = np.log1p(np.where(first_max, 0, e).sum(axis=1)) - (shifted * t).sum(axis=1)
        grad = np.where(t == 1, -np.where(t == 1, 0, e).sum(axis=1, keepdims=True), e) / total
        # Rounding the shifted logit s costs u|s| in e^s, relative; the loss's terms are
        # log T (relative error of T) and -s_y (exact or u|s_y|).  Nothing scales with
        # the logits' size itself, only with their differences.
        spread = 4 + np.abs(shifted).max(axis=1, keepdims=True)
        magnitude = (np.abs(terms) * spread[:, 0]).sum() / rows
        return terms.sum() / rows, grad / rows, magnitude, np.abs(grad) * spread / rows
    t = target.astype(np.longdouble)
    if name == "binary_cross_entropy_with_logits":
        terms = np.logaddexp(0, a) - a * t          # -ln(1 - sigma) - z t, written another way
        sigma = 1 / (1 + np.exp(-a))
        magnitude = (np.abs(a) * (1 + t) + np.log(2)).sum() / rows   # max(z, 0), z t and the log term
        return terms.sum() / rows, (sigma - t) / rows, magnitude, (sigma + t) / rows
    if name == "cross_entropy":
        terms = -(t * np.log(a) + (1 - t) * np.log(1 - a))
        return (terms.sum() / rows, (a - t) / (a * (1 - a)) / rows, np.abs(terms).sum() / rows,
                (t / a + (1 - t) / (1 - a)) / rows)
    terms = (a - t) ** 2
    return terms.sum() / rows, 2 * (a - t) / rows, terms.sum() / rows, 2 * (abs(a) + abs(t)) / rows


@st.composite
def loss_case(draw, name=None):
    name = name or draw(st.sampled_from(sorted(LOSSES)))
    dtype = draw(dtypes)
    rows = draw(st.integers(1, 6))
    units = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 20.0]))
    z = (scale * rng.standard_normal((rows, units))).astype(dtype)
    if name == "softmax_cross_entropy":
        return name, z, rng.integers(0, units, rows)
    if name == "cross_entropy":
        # Sigmoid outputs kept inside (0, 1) (the loss is infinite at the ends)
        # against one-hot targets, the classic use.
        z = (1 / (1 + np.exp(-np.clip(z.astype(np.float64), -15, 15)))).astype(dtype)
        return name, z, np.eye(units, dtype=dtype)[rng.integers(0, units, rows)]
    return name, z, rng.random((rows, units)).astype(dtype)


@given(loss_case())
@example(("softmax_cross_entropy", np.array([[1000.0, -1000.0]]), np.array([1])))
@example(("binary_cross_entropy_with_logits", np.array([[800.0, -800.0]]), np.array([[0.0, 1.0]])))
def test_losses_match_an_extended_precision_oracle_on_both_backends(case):
    name, output, target = case
    loss, grad, magnitude, grad_magnitude = _oracle(name, output, target)
    terms = output.size
    for backend in ("compiled", "reference"):
        with refnet.use_backend(backend):
            got_loss, got_grad = LOSSES[name](output, target)
        assert isinstance(got_loss, float)
        assert got_grad.dtype == output.dtype and got_grad.shape == output.shape
        assert abs(got_loss - float(loss)) <= (terms + 8) * 2.0**-53 * float(magnitude) + 1e-300
        error = np.abs(got_grad.astype(np.longdouble) - grad)
        assert np.all(error <= GRAD_RTOL[output.dtype] * grad_magnitude + np.finfo(output.dtype).tiny)


@pytest.mark.parametrize("top", [1e4, 1e15, 2.0**53])
@pytest.mark.parametrize("label", [0, 1])
def test_softmax_cross_entropy_of_huge_close_logits_is_exact(top, label, each_backend):
    """Regression: logits (m, m - 10) lost eps*m of the loss (all of it at m = 1e15).

    The closed form, r = e^-10: loss = log1p(r) + 10 [label 1]; gradient
    (-r, r) / (1 + r) for label 0, (1, -1) / (1 + r) for label 1, summing to 0.
    """
    logits = np.array([[top, top - 10]])
    assert logits[0, 0] - logits[0, 1] == 10   # integers below 2^53: the gap is exact
    r = np.exp(np.longdouble(-10))
    exact_loss = np.log1p(r) + 10 * label
    exact_grad = np.array([-r, r]) / (1 + r) if label == 0 else np.array([1, -1]) / (1 + r)
    loss, grad = refnet.softmax_cross_entropy(logits, [label])
    assert abs(loss - exact_loss) <= 2 * 2.0**-53 * exact_loss
    np.testing.assert_array_less(np.abs(grad[0] - exact_grad), 4 * 2.0**-53 * np.abs(exact_grad))
    assert grad.sum() == 0


def test_softmax_cross_entropy_matches_pytorch_on_shifted_logits(each_backend):
    """An oracle nobody here wrote: torch's cross_entropy in float64, near-exact on these rows."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = 1e12 + rng.standard_normal((64, 5)) * 3   # large offset, small spread
    labels = rng.integers(0, 5, 64)
    loss, _ = refnet.softmax_cross_entropy(logits, labels)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    assert loss == pytest.approx(expected, rel=1e-13)


@given(loss_case())
def test_compiled_loss_equals_reference(case):
    name, output, target = case
    results = []
    for backend in ("compiled", "reference"):
        with refnet.use_backend(backend):
            results.append(LOSSES[name](output, target))
    (loss_c, grad_c), (loss_r, grad_r) = results
    _, _, magnitude, grad_magnitude = _oracle(name, output, target)
    # Both sum the same float64 terms, in other orders: within twice the oracle test's bound.
    assert abs(loss_c - loss_r) <= 2 * (output.size + 8) * 2.0**-53 * float(magnitude) + 1e-300
    error = np.abs(grad_c.astype(np.longdouble) - grad_r)
    assert np.all(error <= 2 * GRAD_RTOL[output.dtype] * grad_magnitude + np.finfo(output.dtype).tiny)


@pytest.mark.parametrize("dtype", DTYPES)
def test_closed_forms(dtype, each_backend):
    k, rows = 4, 3
    # Equal logits: every class has probability 1/k.
    loss, grad = refnet.softmax_cross_entropy(np.zeros((rows, k), dtype), [0, 1, 3])
    assert loss == pytest.approx(np.log(k), rel=1e-6)
    expected = (np.full((rows, k), 1 / k) - np.eye(k)[[0, 1, 3]]) / rows
    np.testing.assert_allclose(grad, expected, rtol=1e-6)
    # Huge logits: the winner's loss is exactly 0 and a confident mistake costs the logit gap.
    assert refnet.softmax_cross_entropy(np.array([[1000.0, 0.0]], dtype), [0])[0] == 0
    assert refnet.softmax_cross_entropy(np.array([[1000.0, 0.0]], dtype), [1])[0] == 1000
    # BCE at z = 0 is ln 2 per unit; at |z| = 800 no overflow: the loss is |z|.
    assert refnet.binary_cross_entropy_with_logits(np.zeros((2, 3), dtype), np.ones((2, 3), dtype))[0] == pytest.approx(3 * np.log(2), rel=1e-6)
    assert refnet.binary_cross_entropy_with_logits(np.array([[800.0]], dtype), np.array([[0.0]], dtype))[0] == 800
    # Cross-entropy of a perfect sigmoid output is 0; of a = 1/2, ln 2 per unit.
    eye = np.eye(3, dtype=dtype)
    assert refnet.cross_entropy(eye, eye)[0] == 0
    loss, grad = refnet.cross_entropy(np.full((2, 3), 0.5, dtype), eye[:2])
    assert loss == pytest.approx(3 * np.log(2), rel=1e-6)
    np.testing.assert_allclose(grad, (0.5 - eye[:2]) / 0.25 / 2, rtol=1e-6)
    # A confident mistake is infinitely costly, without a warning.
    assert refnet.cross_entropy(np.array([[0.0]], dtype), np.array([[1.0]], dtype))[0] == np.inf
    # MSE: squared error summed over units, averaged over rows.
    loss, grad = refnet.mean_squared_error(np.ones((2, 3), dtype), np.zeros((2, 3), dtype))
    assert loss == 3 and np.array_equal(grad, np.full((2, 3), 1.0))


@given(loss_case())
def test_loss_is_a_mean_over_the_batch(case):
    """Repeating the batch leaves the loss unchanged and halves each row's gradient."""
    name, output, target = case
    loss, grad = LOSSES[name](output, target)
    loss2, grad2 = LOSSES[name](np.concatenate([output, output]), np.concatenate([target, target]))
    assert loss2 == pytest.approx(loss, rel=1e-12, abs=1e-300)
    # Dividing by 2N instead of N changes the float64 rounding of each gradient;
    # both are within the oracle's bound of the true value.
    _, _, _, grad_magnitude = _oracle(name, output, target)
    error = np.abs(2 * grad2[: len(output)].astype(np.longdouble) - grad)
    assert np.all(error <= 2 * GRAD_RTOL[output.dtype] * grad_magnitude + 2 * np.finfo(output.dtype).tiny)


def test_accuracy_readers():
    assert ACCURACY["softmax_cross_entropy"](np.array([[0.0, 1.0], [2.0, 1.0]]), np.array([1, 1])) == 0.5
    assert ACCURACY["binary_cross_entropy_with_logits"](np.array([[-1.0], [3.0]]), np.array([[0.0], [0.0]])) == 0.5
    assert ACCURACY["cross_entropy"](np.array([[0.2, 0.8]]), np.array([[0.0, 1.0]])) == 1


def test_bad_arguments_are_named():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        refnet.softmax_cross_entropy(z, [0, 3])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        refnet.softmax_cross_entropy(z, [-1, 0])
    with pytest.raises(TypeError, match="labels must be integer class labels"):
        refnet.softmax_cross_entropy(z, [0.0, 1.0])
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        refnet.softmax_cross_entropy(z, [0])
    with pytest.raises(ValueError, match="logits must have at least 1 row"):
        refnet.softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, int))
    with pytest.raises(ValueError, match="targets must lie in"):
        refnet.binary_cross_entropy_with_logits(z, np.full((2, 3), 2.0))
    with pytest.raises(ValueError, match="outputs must lie in"):
        refnet.cross_entropy(np.full((2, 3), -0.1), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="targets must have the dtype of outputs"):
        refnet.mean_squared_error(z, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="targets must have the shape of outputs"):
        refnet.mean_squared_error(z, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="outputs must be 2-D"):
        refnet.mean_squared_error(np.zeros(3), np.zeros(3))


def test_out_receives_the_gradient_and_inputs_are_untouched(each_backend):
    z = np.array([[1.0, -2.0], [0.5, 0.0]])
    z_copy = z.copy()
    out = np.empty_like(z)
    loss, grad = refnet.softmax_cross_entropy(z, [1, 0], out=out)
    assert grad is out and np.array_equal(z, z_copy)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_the_callers_floating_point_error_state_changes_nothing(name, each_backend):
    """Under np.errstate(all="raise") both backends return what they return by default
    (the reference used to raise on exp underflow, which the compiled backend ignores)."""
    logits = np.array([[-800.0, 800.0, 0.0], [1e308, -1e308, 5e-324]])
    output = 1 / (1 + np.exp(-np.clip(logits, -30, 30)))
    args = {"softmax_cross_entropy": (logits, [2, 1]), "binary_cross_entropy_with_logits": (logits, np.eye(2, 3)),
            "cross_entropy": (output, np.eye(2, 3)), "mean_squared_error": (output, np.eye(2, 3))}[name]
    loss, grad = LOSSES[name](*args)
    with np.errstate(all="raise"):
        raised_loss, raised_grad = LOSSES[name](*args)
    assert raised_loss == loss or (np.isnan(loss) and np.isnan(raised_loss))
    np.testing.assert_array_equal(raised_grad, grad)


@pytest.mark.parametrize("bad_label", [-1, 3, 1 << 40])
def test_the_compiled_kernel_refuses_a_label_written_after_validation(bad_label):
    """Regression: the labels are the caller's array, validated in Python and then read by the
    nogil kernel; another thread writing one in between made the kernel index the logits out of
    bounds (a bus error).  The kernel is called here as if that had happened: a label outside
    [0, classes) in the middle row must raise, never be read through."""
    from refnet import _core

    logits, grad = np.zeros((3, 3)), np.zeros((3, 3))
    labels = np.array([0, bad_label, 2], dtype=np.intp)
    with pytest.raises(ValueError, match=r"labels\[1\] left \[0, 3\) during the call"):
        _core.softmax_cross_entropy(logits, labels, grad)
    # The good rows before it were handled as usual: row 0's gradient is softmax - onehot, / 3.
    np.testing.assert_allclose(grad[0], np.array([-2.0, 1.0, 1.0]) / 9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_cross_entropy_of_infinite_logits_is_the_limit(dtype, each_backend):
    """Regression: max(z, 0) - z t gave NaN (inf - inf, or inf * 0) where the loss's limit is
    0 or inf; by hand, -t ln sigma(z) - (1 - t) ln(1 - sigma(z)) with sigma(inf) = 1, sigma(-inf) = 0."""
    z = np.array([[np.inf, np.inf, np.inf, -np.inf, -np.inf, -np.inf]], dtype)
    t = np.array([[0.0, 0.5, 1.0, 0.0, 0.5, 1.0]], dtype)
    limits = [np.inf, np.inf, 0.0, 0.0, np.inf, np.inf]
    for column, limit in enumerate(limits):
        loss, grad = refnet.binary_cross_entropy_with_logits(z[:, column : column + 1], t[:, column : column + 1])
        assert loss == limit, (z[0, column], t[0, column], loss)
        assert grad[0, 0] == ((1.0 if z[0, column] > 0 else 0.0) - t[0, column])


def test_binary_cross_entropy_does_not_cancel_for_targets_near_1(each_backend):
    """(1 - t) z is exact here (1 - t = 2**-30, a power of 2 times z); max(z, 0) - z t cancelled
    to a relative error of 1e-7 (9.313224792480469)."""
    loss, _ = refnet.binary_cross_entropy_with_logits(np.array([[1e10]]), np.array([[1 - 2.0**-30]]))
    assert loss == 1e10 * 2.0**-30   # + ln(1 + e^(-1e10)) = 0 in float64
