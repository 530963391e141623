"""Gradient clipping: refnet.reference.clipping and the optimizers' clip_* options.

Oracles, none of them refnet's code: the formula evaluated directly in long double (its exponent
range holds the sum of squares of any float64, so no scaling is needed there); NumPy transcriptions
of Keras' and optax's sources (file and lines cited at each); PyTorch's clip_grad_norm_ /
clip_grad_value_ followed by a torch.optim step; and the installed Keras and optax themselves
where present (they check the transcriptions).

Tolerances: float64 rtol 1e-13 -- the factor min(1, c/(||g|| + eps)) is one sum of at most 108
squares (error <= 108 u relative to the sum, halved by the root) and two roundings; float32
rtol 2e-5 for the same reason with u = 6e-8 (a float32 gradient's squares are summed in
float32).  atol 2 * the smallest subnormal, for elements that round to a subnormal.
"""

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import refnet
from refnet.optim import clip_by_global_norm, clip_by_norm, clip_by_rms, clip_by_value, grad_norm
from refnet.testing.strategies import DTYPES, arrays
from refnet.testing.tolerances import Relative, assert_within

RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-13}
OPTIMIZERS = [
    lambda **kw: refnet.SGD(0.1, momentum=0.9, **kw),
    lambda **kw: refnet.Adagrad(0.1, **kw),
    lambda **kw: refnet.RMSProp(0.01, **kw),
    lambda **kw: refnet.Adam(0.01, **kw),
]
IDS = ["SGD", "Adagrad", "RMSProp", "Adam"]


def tolerance(dtype):
    dtype = np.dtype(dtype)
    return Relative(RTOL[dtype], 2 * float(np.finfo(dtype).smallest_subnormal))


def long_norm(grads, p=2.0):
    """The p-norm in long double, straight from the definition."""
    flat = np.concatenate([np.asarray(g, np.longdouble).reshape(-1) for g in grads] + [np.zeros(0, np.longdouble)])
    if p == math.inf:
        return np.max(np.abs(flat)) if flat.size else np.longdouble(0)
    return np.sum(np.abs(flat) ** p) ** (1 / np.longdouble(p))


def oracle(grads, threshold, p=2.0, eps=0.0):
    norm = long_norm(grads, p)
    factor = np.longdouble(1) if norm + eps == 0 else min(np.longdouble(1), threshold / (norm + eps))
    return [(np.asarray(g, np.longdouble) * factor).astype(g.dtype) for g in grads]


@st.composite
def gradient_lists(draw, **elements):
    dtype = draw(st.sampled_from(DTYPES))
    shapes = draw(st.lists(st.lists(st.integers(0, 6), min_size=1, max_size=2).map(tuple), min_size=1, max_size=3))
    return [draw(arrays(dtype, shape, **elements)) for shape in shapes]


def moderate(dtype):
    # Squares far from overflow and underflow, so that the long-double oracle is the plain formula.
    return dict(min_value=-1e15, max_value=1e15) if dtype == np.float64 else dict(min_value=-1e6, max_value=1e6)


# --- the functions, against the formula -----------------------------------------------------

@given(gradient_lists(min_value=-1e6, max_value=1e6), st.floats(1e-3, 1e3), st.sampled_from([1.0, 2.0, 3.0, math.inf]),
       st.sampled_from([0.0, 1e-6]))
@example([np.zeros(3)], 1.0, 2.0, 0.0)
@example([np.zeros(0), np.array([3.0, 4.0])], 5.0, 2.0, 0.0)  # norm exactly c: unchanged
@example([np.array([1e-300, -1e-300])], 1.0, 2.0, 0.0)
def test_global_norm_clipping_is_the_formula(grads, threshold, p, eps):
    before = [g.copy() for g in grads]
    clipped, norm = clip_by_global_norm(grads, threshold, norm_type=p, eps=eps)
    dtype = grads[0].dtype
    assert all(np.array_equal(g, b) for g, b in zip(grads, before)), "the input was modified"
    assert math.isclose(norm, float(long_norm(grads, p)), rel_tol=RTOL[dtype], abs_tol=1e-300)
    assert math.isclose(grad_norm(grads, p), norm, rel_tol=0, abs_tol=0)
    for got, want in zip(clipped, oracle(grads, threshold, p, eps)):
        assert got.dtype == dtype and got.shape == want.shape
        assert_within(got, want, tolerance(dtype))
    # Clipping never raises the norm and leaves at most the threshold (the factor min(1, c / (n + eps)));
    # a float32 element scaled into the subnormals may round up by one subnormal unit.
    # Regression (review of issue 11): this read `or after <= norm`, true of any factor <= 1.
    after = float(long_norm(clipped, p))
    slack = sum(g.size for g in grads) * float(np.finfo(dtype).smallest_subnormal)
    assert after <= min(norm, threshold) * (1 + 4 * RTOL[dtype]) + slack


@given(gradient_lists(min_value=-1e6, max_value=1e6), st.floats(1e-3, 1e3))
def test_per_array_norm_and_rms_clipping_are_the_formula(grads, threshold):
    dtype = grads[0].dtype
    for got, g in zip(clip_by_norm(grads, threshold), grads):
        assert_within(got, oracle([g], threshold)[0], tolerance(dtype))
    for got, g in zip(clip_by_rms(grads, threshold), grads):
        # rms(g) <= c  <=>  ||g|| <= c sqrt(n)
        assert_within(got, oracle([g], threshold * math.sqrt(max(g.size, 1)))[0], tolerance(dtype))


@given(gradient_lists(allow_nan=True, allow_infinity=True), st.floats(1e-3, 1e3))
def test_value_clipping_clamps_and_keeps_nan(grads, threshold):
    for got, g in zip(clip_by_value(grads, threshold), grads):
        c = g.dtype.type(threshold)
        assert np.array_equal(got, np.where(np.isnan(g), g, np.minimum(np.maximum(g, -c), c)), equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_finite_gradients_are_scaled_not_zeroed(dtype):
    """sum(g**2) overflows (PyTorch then zeroes the gradient); the scaled norm does not."""
    big = np.finfo(dtype).max / 1.5
    g = np.array([big, -big, big, big], dtype=dtype)
    (clipped,), norm = clip_by_global_norm([g], 1.0, eps=0.0)
    # The norm (2 big) is a Python float: beyond float64's range for float64 gradients, exact for float32 ones.
    assert math.isinf(norm) if dtype == np.float64 else math.isclose(norm, 2 * float(big))
    assert_within(clipped, np.array([0.5, -0.5, 0.5, 0.5], dtype), tolerance(dtype))
    g = np.array([1e154, 1e154]) if dtype == np.float64 else np.array([1e19, 1e19], np.float32)
    (clipped,), norm = clip_by_global_norm([g], 2.0)
    assert math.isclose(norm, float(g[0]) * math.sqrt(2), rel_tol=RTOL[np.dtype(dtype)])
    assert_within(clipped, np.array([math.sqrt(2)] * 2, dtype), tolerance(dtype))


def test_non_finite_gradients_follow_the_stated_rule():
    g = [np.array([1.0, -2.0, np.inf]), np.array([3.0])]
    clipped, norm = clip_by_global_norm(g, 1.0)
    assert norm == math.inf
    assert np.array_equal(clipped[0], [0.0, -0.0, np.nan], equal_nan=True) and np.array_equal(clipped[1], [0.0])
    clipped, norm = clip_by_global_norm([np.array([1.0, np.nan]), np.array([2.0])], 1.0)
    assert math.isnan(norm) and all(np.isnan(c).all() for c in clipped)
    # Per array: only the array holding the inf or NaN is affected.
    a, b = clip_by_norm([np.array([np.inf, 1.0]), np.array([3.0, 4.0])], 1.0)
    assert np.array_equal(a, [np.nan, 0.0], equal_nan=True) and np.allclose(b, [0.6, 0.8])
    assert np.array_equal(clip_by_value([np.array([np.inf, -np.inf, np.nan])], 2.0)[0], [2.0, -2.0, np.nan],
                          equal_nan=True)


def test_empty_and_zero_gradients_are_left_alone():
    assert [c.shape for c in clip_by_rms([np.zeros(0), np.zeros((2, 0))], 1.0)] == [(0,), (2, 0)]
    assert clip_by_global_norm([np.zeros(0)], 1.0)[1] == 0.0
    assert np.array_equal(clip_by_norm([np.zeros(4)], 1.0)[0], np.zeros(4))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: clip_by_value([np.ones(2)], 0.0), "clip_value must be > 0"),
    (lambda: clip_by_norm([np.ones(2)], -1.0), "max_norm must be > 0"),
    (lambda: clip_by_global_norm([np.ones(2)], 1.0, norm_type=0.5), "norm_type must be >= 1"),
    (lambda: clip_by_global_norm([np.ones(2)], 1.0, eps=-1e-6), "eps must be >= 0"),
    (lambda: clip_by_rms(np.ones(2), 1.0), "grads must be a list or tuple"),
    (lambda: clip_by_value([np.ones(2)], float("nan")), "clip_value"),
    (lambda: grad_norm([np.ones(2)], True), "norm_type must be a real"),
])
def test_function_arguments_are_checked(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


# --- the optimizers' options --------------------------------------------------------------

KINDS = [("clip_value", clip_by_value, {}), ("clip_norm", clip_by_norm, {}), ("clip_rms", clip_by_rms, {}),
         ("global_clip_norm", lambda g, c: clip_by_global_norm(g, c, eps=1e-6)[0], {}),
         ("global_clip_norm", lambda g, c: clip_by_global_norm(g, c, norm_type=math.inf, eps=0.0)[0],
          dict(clip_norm_type=math.inf, convention="keras"))]


@pytest.mark.parametrize("make", OPTIMIZERS, ids=IDS)
@pytest.mark.parametrize(("option", "function", "extra"), KINDS, ids=[k[0] + str(i) for i, k in enumerate(KINDS)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_clipped_step_is_the_step_on_clipped_gradients(make, option, function, extra, dtype, each_backend):
    rng = np.random.default_rng(1)
    params = [rng.standard_normal(5).astype(dtype), rng.standard_normal((2, 3)).astype(dtype)]
    clipped_params = [p.copy() for p in params]
    kwargs = {k: v for k, v in extra.items() if k == "convention"}
    clipping = make(**{option: 0.5}, **extra)
    plain = make(**kwargs)
    # (That no step after the first allocates is test_optimizers.py's
    # test_maximising_and_clipping_allocate_nothing_after_the_first_step.)
    for _ in range(3):
        grads = [3 * rng.standard_normal(p.shape).astype(dtype) for p in params]
        before = [g.copy() for g in grads]
        clipping.step(clipped_params, grads)
        assert all(np.array_equal(g, b) for g, b in zip(grads, before)), "the caller's gradients changed"
        plain.step(params, function(grads, 0.5))
    # The same NumPy passes on the same values (flat or not, the optimizer's buffers or new arrays).
    for got, want in zip(clipped_params, params):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("make", OPTIMIZERS, ids=IDS)
def test_clipping_options_are_checked_naming_the_argument(make):
    for kwargs, message in [
        (dict(clip_value=0), "clip_value must be > 0"), (dict(clip_norm=-1.0), "clip_norm must be > 0"),
        (dict(clip_rms=float("inf")), "clip_rms"), (dict(global_clip_norm="1"), "global_clip_norm must be a real"),
        (dict(clip_value=True), "clip_value must be a real"),
        (dict(clip_value=1.0, global_clip_norm=1.0), "at most one of clip_value, clip_norm, clip_rms and "
                                                     "global_clip_norm"),
        (dict(global_clip_norm=1.0, clip_norm_type=0), "clip_norm_type must be >= 1"),
        (dict(global_clip_norm=1.0, clip_eps=-1.0), "clip_eps must be >= 0"),
    ]:
        with pytest.raises((TypeError, ValueError), match=message):
            make(**kwargs)


def test_clip_eps_follows_the_convention_and_state_dict_keeps_the_clipping():
    assert refnet.SGD(0.1, global_clip_norm=1.0).clipping["eps"] == 1e-6
    assert refnet.SGD(0.1, global_clip_norm=1.0, convention="keras").clipping["eps"] == 0.0
    assert refnet.SGD(0.1, clip_norm=1.0).clipping["eps"] == 0.0  # Keras' clipnorm: no torch counterpart
    assert refnet.Adam(0.1, clip_norm=2.0, clip_eps=0.5).clipping == dict(kind="norm", threshold=2.0, norm_type=2.0,
                                                                          eps=0.5)
    assert "global_clip_norm=1.0" in repr(refnet.RMSProp(0.1, global_clip_norm=1.0))
    saved = refnet.SGD(0.1, clip_value=1.0).state_dict()
    refnet.SGD(0.1, clip_value=1.0).load_state_dict(saved)
    with pytest.raises(ValueError, match="clipping"):
        refnet.SGD(0.1, clip_value=2.0).load_state_dict(saved)
    with pytest.raises(ValueError, match="clipping"):
        refnet.SGD(0.1).load_state_dict(saved)
    refnet.SGD(0.1).load_state_dict(refnet.SGD(0.1).state_dict())


# --- other libraries: their sources transcribed, and the libraries where installed ----------------

def _as_float64(value):
    return value


def _through_float32(value):
    return np.float64(np.float32(value))


def keras_clipnorm(g, c, rounded=_as_float64):
    """keras/src/optimizers/base_optimizer.py (3.15.1) lines 1108-1119, ``_clip_by_norm``.
    ``rounded`` models what the torch backend does to ``ops.maximum`` of a tensor and a
    Python float (see test_the_transcriptions_are_the_installed_libraries)."""
    l2sum = np.sum(np.square(g))
    l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
    return g * c / rounded(np.maximum(l2norm, c))


def keras_global_clipnorm(grads, c, rounded=_as_float64):
    """keras/src/optimizers/base_optimizer.py (3.15.1) lines 1181-1197, ``global_norm`` and
    ``clip_by_global_norm``; ``rounded`` as in keras_clipnorm, for ``ops.minimum``."""
    use_norm = np.sqrt(np.sum(np.stack([np.sum(np.square(g)) for g in grads])))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = c * rounded(np.minimum(1.0 / use_norm, 1.0 / c)) + (use_norm - use_norm)
    return [g * scale for g in grads]


def optax_block_rms(g, c):
    """optax/transforms/_clipping.py (0.2.8) lines 66-70, ``clip_by_block_rms``'s ``_clip_fn``."""
    return g / np.maximum(1.0, np.sqrt(np.mean(np.abs(g) ** 2)) / c)


def optax_global_norm(grads, c):
    """optax/transforms/_clipping.py (0.2.8) lines 96-106, ``clip_by_global_norm``'s ``update_fn``."""
    g_norm = np.sqrt(sum(np.sum(np.abs(g) ** 2) for g in grads))
    return [g if g_norm < c else (g / g_norm) * c for g in grads]


def random_grads(seed, scale):
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(shape) for shape in ((4,), (2, 3), (1,))]


@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0])
def test_refnet_matches_the_keras_and_optax_transcriptions(scale):
    grads = random_grads(0, scale)
    tol = tolerance(np.float64)
    for got, want in zip(clip_by_norm(grads, 1.0), [keras_clipnorm(g, 1.0) for g in grads]):
        assert_within(got, want, tol)
    for got, want in zip(clip_by_global_norm(grads, 1.0, eps=0.0)[0], keras_global_clipnorm(grads, 1.0)):
        assert_within(got, want, tol)
    for got, want in zip(clip_by_global_norm(grads, 1.0, eps=0.0)[0], optax_global_norm(grads, 1.0)):
        assert_within(got, want, tol)
    for got, want in zip(clip_by_rms(grads, 0.5), [optax_block_rms(g, 0.5) for g in grads]):
        assert_within(got, want, tol)
    # Non-finite: optax agrees with refnet, Keras' global_clipnorm makes everything NaN.
    bad = [np.array([np.inf, 1.0]), np.array([2.0])]
    with np.errstate(invalid="ignore"):
        assert all(np.array_equal(a, b, equal_nan=True)
                   for a, b in zip(clip_by_global_norm(bad, 1.0, eps=0.0)[0], optax_global_norm(bad, 1.0)))
        assert all(np.isnan(g).all() for g in keras_global_clipnorm(bad, 1.0))


def test_the_transcriptions_are_the_installed_libraries():
    """Where Keras (torch backend) or optax are installed, they compute what their transcriptions do."""
    grads = random_grads(1, 30.0)
    tol = tolerance(np.float64)
    checked = 0
    try:
        import optax
    except ImportError:
        pass
    else:
        import jax

        jax.config.update("jax_enable_x64", True)
        for transform, transcription in [(optax.clip_by_global_norm(1.0), lambda g: optax_global_norm(g, 1.0)),
                                         (optax.clip_by_block_rms(0.5), lambda g: [optax_block_rms(x, 0.5) for x in g]),
                                         (optax.clip(0.5), lambda g: clip_by_value(g, 0.5))]:
            got, _ = transform.update([jax.numpy.asarray(g) for g in grads], transform.init(grads))
            for a, b in zip(got, transcription(grads)):
                assert_within(np.asarray(a), b, tol)
        checked += 1
    keras = _keras()
    if keras is not None:
        # On the torch backend, ops.maximum / ops.minimum of a float64 tensor and a Python float
        # (the threshold c, or 1/c) return float32 even with floatx float64: Keras' clipped
        # gradients carry that one rounding (up to 2^-24 relative, ~3e-8 measured), and are
        # otherwise the float64 formula, which refnet computes.
        for kwargs, transcription in [(dict(clipnorm=1.0), lambda g: [keras_clipnorm(x, 1.0, _through_float32) for x in g]),
                                      (dict(global_clipnorm=1.0), lambda g: keras_global_clipnorm(g, 1.0, _through_float32)),
                                      (dict(clipvalue=0.5), lambda g: clip_by_value(g, 0.5))]:
            for keras_grads in (grads, random_grads(2, 1.0), random_grads(3, 1e3)):
                got = keras.optimizers.SGD(1.0, **kwargs)._clip_gradients(
                    [keras.ops.convert_to_tensor(g) for g in keras_grads])
                for a, b in zip(got, transcription(keras_grads)):
                    assert_within(a.detach().numpy(), b, tol)   # a torch tensor (the torch backend)
        checked += 1
    if not checked:
        pytest.skip("neither optax nor keras is installed")


def _keras():
    import os

    if os.environ.get("KERAS_BACKEND", "torch") != "torch":
        return None
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        return None
    keras.config.set_floatx("float64")
    return keras


# --- PyTorch: clip_grad_norm_ / clip_grad_value_, then a torch.optim step ---------------------

TORCH = [
    (lambda **kw: refnet.SGD(0.01, momentum=0.9, **kw), "SGD", dict(lr=0.01, momentum=0.9)),
    (lambda **kw: refnet.RMSProp(0.001, **kw), "RMSprop", dict(lr=0.001)),
    (lambda **kw: refnet.Adam(0.01, weight_decay=0.1, **kw), "Adam", dict(lr=0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize(("make", "name", "torch_kwargs"), TORCH, ids=[t[1] for t in TORCH])
@pytest.mark.parametrize("clip", [("norm", 2.0), ("norm", 1.0), ("norm", math.inf), ("norm", 3.0), ("value", None)],
                         ids=["norm2", "norm1", "norminf", "norm3", "value"])
def test_parity_with_torch_clipping_then_step(make, name, torch_kwargs, clip):
    torch = pytest.importorskip("torch")
    kind, p = clip
    rng = np.random.default_rng(2)
    ours = [rng.uniform(2, 3, 8), rng.uniform(2, 3, (2, 4))]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in ours]
    optimizer = make(global_clip_norm=1.0, clip_norm_type=p) if kind == "norm" else make(clip_value=0.1)
    reference = getattr(torch.optim, name)(theirs, **torch_kwargs)
    for step in range(20):
        # Scales around the threshold: some steps are clipped, some not.
        grads = [(0.05 if step % 3 else 1.0) * rng.standard_normal(a.shape) for a in ours]
        optimizer.step(ours, grads)
        for tensor, g in zip(theirs, grads):
            tensor.grad = torch.tensor(g)
        if kind == "norm":
            torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=p)
        else:
            torch.nn.utils.clip_grad_value_(theirs, 0.1)
        reference.step()
    for a, t in zip(ours, theirs):
        assert_within(a, t.detach().numpy(), Relative(1e-12))


def test_torch_non_finite_rule_is_refnets():
    torch = pytest.importorskip("torch")
    for grads in ([np.array([1.0, -2.0, np.inf]), np.array([3.0])], [np.array([1.0, np.nan]), np.array([2.0])]):
        tensors = [torch.tensor(g, requires_grad=True) for g in grads]
        for tensor, g in zip(tensors, grads):
            tensor.grad = torch.tensor(g)
        torch_norm = torch.nn.utils.clip_grad_norm_(tensors, 1.0)
        clipped, norm = clip_by_global_norm(grads, 1.0)
        assert np.array_equal(norm, float(torch_norm), equal_nan=True)
        for ours, tensor in zip(clipped, tensors):
            assert np.array_equal(ours, tensor.grad.numpy(), equal_nan=True)
