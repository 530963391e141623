"""Optimizers: compiled twin == reference, the lecture's closed forms, regularisation, groups,
schedules, resume, and refusal of bad input.

Expected values are computed here, independently of refnet: closed forms, or the update rule
re-derived in a few lines of NumPy (float64) from its source.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import refnet
from refnet import reference

from refnet.testing import specs
from refnet.testing.strategies import arrays, dtypes, shapes
from refnet.testing.tolerances import UNIT_ROUNDOFF

OPTIMIZERS = tuple(spec.cls for spec in specs.OPTIMIZERS)
BACKENDS = ("compiled", "reference")

# Configurations covering every kernel path, from the optimizer specs.
CONFIGS = [(spec.cls, kwargs) for spec in specs.OPTIMIZERS for kwargs in spec.kernel_paths]
CONFIG_IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for cls, kw in CONFIGS]


def run(optimizer, params, grads_per_step, names=None):
    for grads in grads_per_step:
        optimizer.step(params, grads, names=names)
    return params


# --- compiled twin == reference ------------------------------------------------------

@st.composite
def problems(draw):
    """A dtype, a list of 1-3 parameter arrays (any shape, empty and 0-d included) and 3 gradient sets."""
    dtype = draw(dtypes)
    elements = dict(min_value=-1e3, max_value=1e3)
    shape_list = draw(st.lists(shapes, min_size=1, max_size=3))
    params = [draw(arrays(dtype, s, **elements)) for s in shape_list]
    grads = [[draw(arrays(dtype, s, **elements)) for s in shape_list] for _ in range(3)]
    return params, grads


@pytest.mark.parametrize(("cls", "kwargs"), CONFIGS, ids=CONFIG_IDS)
@given(problem=problems())
@example(problem=([np.array([1.0, -1.0, 0.0])], [[np.array([1e-200, -1e-200, 0.0])]] * 3))
@example(problem=([np.zeros(4, np.float32)], [[np.zeros(4, np.float32)]] * 3))
@example(problem=([np.empty((0, 3))], [[np.empty((0, 3))]] * 3))
def test_compiled_equals_reference_bit_for_bit(cls, kwargs, problem):
    # The twins perform the same IEEE operations in the same order, so they agree exactly,
    # over many steps (each gradient set is used 4 times: 12 steps).
    params, grads = problem
    results = {}
    for backend in ("compiled", "reference"):
        with refnet.use_backend(backend):
            own = [p.copy() for p in params]
            run(cls(0.01, schedule=refnet.StepDecay(5, 0.5), **kwargs), own, grads * 4)
            results[backend] = own
    for got, want in zip(results["compiled"], results["reference"]):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


# Elements that the compiled path splits across threads where OpenMP offers several: well
# above twice its smallest block (2^13), and odd, so that no block is a whole number of vectors.
SPLIT_SIZE = 3 * 2**16 + 37


@pytest.fixture
def threads():
    """Updates split across two threads (one is the default), restored afterwards."""
    refnet.set_num_threads(2)
    yield
    refnet.set_num_threads(1)


def compiled_and_reference_after_steps(cls, kwargs, dtype, size=SPLIT_SIZE, steps=3):
    rng = np.random.default_rng(0)
    param = rng.standard_normal(size).astype(dtype)
    grads = [[rng.standard_normal(size).astype(dtype)] for _ in range(steps)]
    results = {}
    for backend in ("compiled", "reference"):
        with refnet.use_backend(backend):
            results[backend] = run(cls(0.01, **kwargs), [param.copy()], grads)[0]
    return results["compiled"], results["reference"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_compiled_equals_reference_when_split_across_threads(cls, kwargs, dtype, threads):
    compiled, reference_result = compiled_and_reference_after_steps(cls, kwargs, dtype)
    np.testing.assert_array_equal(compiled, reference_result)


def test_any_thread_count_gives_the_same_bits(tmp_path):
    """Three and seven threads (more than this machine may have cores; OpenMP runs them anyway)
    split the arrays into uneven blocks; every split must give the reference's bits."""
    script = (
        "import sys, numpy as np, refnet; sys.path.insert(0, sys.argv[1]); import test_optimizers as t\n"
        "refnet.set_num_threads(8)\n"
        "for cls, kwargs in t.CONFIGS:\n"
        "    for size in (2 * 2**16, t.SPLIT_SIZE, 7 * 2**16 + 5):\n"
        "        c, r = t.compiled_and_reference_after_steps(cls, kwargs, np.float64, size, steps=2)\n"
        "        assert np.array_equal(c, r), (cls.__name__, kwargs, size)\n"
    )
    for threads in ("3", "7"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        # From another directory: run from the repository, `import refnet` would find the source folder.
        result = subprocess.run([sys.executable, "-c", script, os.path.dirname(__file__)], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in Linux's /proc")
def test_updates_start_no_threads_unless_asked(tmp_path):
    """By default the updates leave the cores to BLAS's pool: a split-size update starts no
    OpenMP thread; after set_num_threads(2) it does (where the build has OpenMP)."""
    script = (
        "import os, numpy as np, refnet\n"
        "from refnet import _core\n"
        "count = lambda: len(os.listdir('/proc/self/task'))\n"
        f"p = np.ones({SPLIT_SIZE}); opt = refnet.Adam(0.1); before = count()\n"
        "opt.step([p], [p.copy()]); assert count() == before, (before, count())\n"
        "refnet.set_num_threads(2); opt.step([p], [p.copy()])\n"
        "assert count() > before or _core._openmp_threads() == 1, (before, count())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert result.returncode == 0, result.stderr


def test_num_threads_is_validated():
    with pytest.raises(ValueError, match="threads"):
        refnet.set_num_threads(0)
    with pytest.raises(TypeError, match="threads"):
        refnet.set_num_threads(2.0)
    assert refnet.get_num_threads() == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_updates_in_a_forked_child_do_not_hang(tmp_path):
    """GNU OpenMP's threads do not survive fork(): a child that used them would wait forever.
    The parent updates a split-size array first, so its thread pool exists when it forks."""
    script = (
        "import multiprocessing as mp, numpy as np, refnet\n"
        "refnet.set_num_threads(2)\n"
        "def update(_):\n"
        f"    p = np.ones({SPLIT_SIZE}); refnet.SGD(0.5).step([p], [p.copy()]); return float(p[0])\n"
        "if __name__ == '__main__':\n"
        "    update(0)\n"
        "    with mp.get_context('fork').Pool(2) as pool:\n"
        "        assert pool.map(update, range(4)) == [0.5] * 4\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def float_edges(dtype, signed=False):
    """Every binade boundary the root-state scaling treats specially, with zero, inf and NaN."""
    info = np.finfo(dtype)
    top = 2.0 ** (info.maxexp - 3)   # the largest sum whose exponent is not clipped
    edges = [0.0, info.smallest_subnormal, 2.0 ** (info.minexp - 1), np.nextafter(info.tiny, 0),
             info.tiny, 1e-30, 1.0, top / 2, top, np.nextafter(dtype(top), np.inf), info.max / 2,
             info.max, np.inf, np.nan]
    edges = np.array(edges, dtype)
    return np.concatenate([edges, -edges]) if signed else edges


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_momentum", [False, True])
def test_lees_root_state_twins_agree_at_every_edge(dtype, with_momentum):
    """Bit for bit (NaN equal to NaN) for sigma and g on every pair of edges: power-of-two
    scalings agree away from the edges whatever exponent each twin picks, so only here can
    a different clip or exponent show."""
    sigma_edges, grad_edges = float_edges(dtype), float_edges(dtype, signed=True)
    sigma = np.repeat(sigma_edges, grad_edges.size)
    grad = np.tile(grad_edges, sigma_edges.size)
    empty = np.zeros(0, dtype)
    results = []
    for kernels in (refnet._core, reference):
        state, param = sigma.copy(), np.ones_like(sigma)
        buffer = np.full_like(sigma, 0.5) if with_momentum else empty
        with np.errstate(all="ignore"):   # inf and NaN are inputs here, their warnings expected
            kernels.rmsprop(param, grad, state, empty, buffer, 0.1, 0.9, 0.1, 0.5, False, 0.0, False, False,
                            True, 1.0, 0.0, 0.0, 1.0)
        results.append((state, param, buffer))
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)


# --- closed forms -------------------------------------------------------------------

def constant_gradient_steps(optimizer, g, steps, dtype=np.float64):
    """Steps theta_{t-1} - theta_t of ``optimizer`` under the constant gradient ``g``."""
    theta = np.zeros_like(np.asarray(g, dtype=dtype))
    grad = np.asarray(g, dtype=dtype)
    taken = []
    for _ in range(steps):
        before = theta.copy()
        optimizer.step([theta], [grad])
        taken.append(before - theta)
    return np.array(taken)


gradients = st.floats(-1e3, 1e3, allow_nan=False).filter(lambda x: abs(x) > 1e-150)
learning_rates = st.floats(1e-4, 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@given(g=gradients, lr=learning_rates)
@example(g=1e-200, lr=0.1)   # g^2 underflows to 0 in float64: only the scaled root keeps sigma > 0
@example(g=-1e-300, lr=0.01)
def test_lee_adagrad_steps_are_lr_sign_over_sqrt_t(backend, g, lr):
    with refnet.use_backend(backend):
        taken = constant_gradient_steps(refnet.Adagrad(lr, convention="lee"), [g], 20)
        t = np.arange(1, 21)[:, None]
        # sigma_t = sqrt(t)|g| is rebuilt by one hypot per step: a few ulp of error per step.
        np.testing.assert_allclose(taken, lr * np.sign(g) / np.sqrt(t), rtol=64 * 20 * UNIT_ROUNDOFF[np.dtype("f8")])


@pytest.mark.parametrize("backend", BACKENDS)
@given(g=gradients, lr=learning_rates)
@example(g=1e-200, lr=0.1)
@example(g=-1e-300, lr=0.5)
def test_lee_rmsprop_steps_are_lr_sign_every_step(backend, g, lr):
    with refnet.use_backend(backend):
        if abs(g) < 1e-160:
            # The case that needs the scaling: the unscaled formula loses sigma entirely.
            assert np.sqrt(0.9 * np.float64(g) ** 2 + 0.1 * np.float64(g) ** 2) == 0
        taken = constant_gradient_steps(refnet.RMSProp(lr, convention="lee"), [g], 20)
        # sigma = |g| exactly in exact arithmetic; alpha + (1 - alpha) rounds to 1 for alpha = 0.9,
        # so the step itself has 2 roundings (4 u); measuring it as a difference of parameters
        # of size <= 20 lr adds an absolute error of a few u * 20 lr.
        u = UNIT_ROUNDOFF[np.dtype("f8")]
        np.testing.assert_allclose(taken, np.full((20, 1), lr * np.sign(g)), rtol=4 * u, atol=4 * u * 20 * lr)


@pytest.mark.parametrize("cls", [refnet.Adagrad, refnet.RMSProp])
def test_lee_zero_gradient_gives_zero_step_then_recovers(each_backend, cls):
    theta = np.array([0.5, -0.5])
    optimizer = cls(0.1, convention="lee")
    optimizer.step([theta], [np.zeros(2)])   # 0/0 in the lecture's formula: refnet's step is 0
    np.testing.assert_array_equal(theta, [0.5, -0.5])
    optimizer.step([theta], [np.array([1e-200, -3.0])])
    assert np.all(np.isfinite(theta)) and theta[0] < 0.5 and theta[1] > -0.5


@pytest.mark.parametrize("backend", BACKENDS)
@given(g=gradients.filter(lambda x: abs(x) > 1e-3), lr=learning_rates)
def test_torch_rmsprop_first_step(backend, g, lr):
    with refnet.use_backend(backend):
        alpha, eps = 0.99, 1e-8
        taken = constant_gradient_steps(refnet.RMSProp(lr), [g], 1)[0, 0]
        # v = (1 - alpha) g^2 from v0 = 0; a handful of roundings: 8 u.
        expected = lr * g / (math.sqrt(1 - alpha) * abs(g) + eps)
        assert taken == pytest.approx(expected, rel=8 * UNIT_ROUNDOFF[np.dtype("f8")])
        if abs(g) > 1:   # eps / (0.1 |g|) < 1e-7: the first step is 10 lr
            assert taken == pytest.approx(10 * lr * np.sign(g), rel=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@given(g=gradients.filter(lambda x: abs(x) > 1e-3), lr=learning_rates)
@example(g=1e-3, lr=0.01)
def test_keras_rmsprop_first_step(backend, g, lr):
    with refnet.use_backend(backend):
        rho, eps = 0.9, 1e-7
        taken = constant_gradient_steps(refnet.RMSProp(lr, convention="keras"), [g], 1)[0, 0]
        expected = lr * g / math.sqrt((1 - rho) * g * g + eps)
        assert taken == pytest.approx(expected, rel=8 * UNIT_ROUNDOFF[np.dtype("f8")])
        if abs(g) > 1:   # |g| >> sqrt(eps) ~ 3e-4: the first step is sqrt(10) lr
            assert taken == pytest.approx(math.sqrt(10) * lr * np.sign(g), rel=1e-6)


def test_keras_rmsprop_first_step_at_small_gradient_is_2_24_lr():
    taken = constant_gradient_steps(refnet.RMSProp(0.01, convention="keras"), [1e-3], 1)[0, 0]
    assert taken == pytest.approx(2.236 * 0.01, rel=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("convention", ["lee", "torch", "keras"])
@given(g=gradients.filter(lambda x: abs(x) > 1e-2), lr=learning_rates)
def test_adam_first_step_is_about_lr_sign(backend, convention, g, lr):
    with refnet.use_backend(backend):
        taken = constant_gradient_steps(refnet.Adam(lr, convention=convention), [g], 1)[0, 0]
        # exactly lr g / (|g| + eps') with eps' = eps (torch) or eps / sqrt(1 - beta2) (Keras):
        # within 3.2e-6 / 1e-2 of lr sign(g).
        assert taken == pytest.approx(lr * np.sign(g), rel=4e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("convention", ["lee", "torch", "keras"])
@given(grads=st.lists(st.floats(-10, 10), min_size=1, max_size=30), momentum=st.floats(0.0, 0.99))
def test_momentum_velocity_is_exponentially_weighted_sum_of_gradients(backend, convention, grads, momentum):
    with refnet.use_backend(backend):
        lr = 0.1
        theta = np.zeros(1)
        optimizer = refnet.SGD(lr, momentum=momentum, convention=convention)
        for t, g in enumerate(grads, start=1):
            before = theta.copy()
            optimizer.step([theta], [np.array([g])])
            velocity = theta - before
            weighted_sum = sum(momentum ** (t - k) * grads[k - 1] for k in range(1, t + 1))
            # a sum of at most 30 terms of size <= 10/(1 - 0.99): absolute error ~ 30 * 1000 * u * lr
            np.testing.assert_allclose(velocity, [-lr * weighted_sum], rtol=1e-12, atol=1e-10)


def test_lee_and_torch_momentum_agree_at_constant_lr_and_differ_under_a_schedule(each_backend):
    rng = np.random.default_rng(4)
    grads = [[rng.standard_normal(5)] for _ in range(30)]
    start = rng.standard_normal(5)
    final = {}
    for schedule in (refnet.Constant(), refnet.StepDecay(step_size=10, gamma=0.1)):
        for convention in ("lee", "torch"):
            theta = start.copy()
            run(refnet.SGD(0.1, momentum=0.9, convention=convention, schedule=schedule), [theta], grads)
            final[schedule, convention] = theta
    # Constant lr: v = -lr b, equal but for rounding (30 steps, values O(10)).
    np.testing.assert_allclose(final[refnet.Constant(), "lee"], final[refnet.Constant(), "torch"], rtol=1e-12, atol=1e-12)
    decayed_lee, decayed_torch = final[refnet.StepDecay(10, 0.1), "lee"], final[refnet.StepDecay(10, 0.1), "torch"]
    assert np.max(np.abs(decayed_lee - decayed_torch)) > 1e-3
    # And each matches its own form: Lee v = mu v - lr_t g, theta += v; torch b = mu b + g, theta -= lr_t b.
    theta_lee, v, theta_torch, b = start.copy(), np.zeros(5), start.copy(), np.zeros(5)
    for t, (g,) in enumerate(grads):
        lr_t = 0.1 * 0.1 ** (t // 10)
        v = 0.9 * v - lr_t * g
        theta_lee = theta_lee + v
        b = 0.9 * b + g
        theta_torch = theta_torch - lr_t * b
    np.testing.assert_allclose(decayed_lee, theta_lee, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(decayed_torch, theta_torch, rtol=1e-12, atol=1e-12)


# --- regularisation -----------------------------------------------------------------

def _two_runs(cls, lam, **kwargs):
    rng = np.random.default_rng(7)
    start = rng.standard_normal(8)
    grads = [[rng.standard_normal(8)] for _ in range(20)]
    coupled, decoupled = start.copy(), start.copy()
    run(cls(0.05, weight_decay=lam, decoupled=False, **kwargs), [coupled], grads)
    run(cls(0.05, weight_decay=lam, decoupled=True, **kwargs), [decoupled], grads)
    return start, grads, coupled, decoupled


def test_coupled_l2_equals_weight_decay_for_sgd(each_backend):
    start, grads, coupled, decoupled = _two_runs(refnet.SGD, 0.1)
    # theta - lr (g + lam theta) vs (1 - lr lam) theta - lr g: equal but for rounding.
    np.testing.assert_allclose(coupled, decoupled, rtol=1e-13, atol=1e-15)
    expected = start.copy()   # Lee's form, w <- (1 - eta lambda) w - eta dL/dw
    for (g,) in grads:
        expected = (1 - 0.05 * 0.1) * expected - 0.05 * g
    np.testing.assert_allclose(coupled, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("cls", [refnet.Adam, refnet.RMSProp])
def test_coupled_l2_is_not_weight_decay_for_adaptive_methods(each_backend, cls):
    _, _, coupled, decoupled = _two_runs(cls, 0.5)
    assert np.max(np.abs(coupled - decoupled)) > 1e-2


def test_adamw_decays_before_the_adam_step(each_backend):
    theta, g = np.array([2.0]), np.array([0.5])
    refnet.Adam(0.1, weight_decay=0.2, decoupled=True).step([theta], [g])
    # (1 - lr lam) theta, then Adam's first step lr g / (|g| + eps)
    assert theta[0] == pytest.approx((1 - 0.1 * 0.2) * 2.0 - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-15)


def test_l1_uses_sign_with_sgn_0_equal_0(each_backend):
    theta = np.array([1.0, -1.0, 0.0])
    refnet.SGD(0.1, l1=0.5).step([theta], [np.zeros(3)])
    np.testing.assert_array_equal(theta, [1.0 - 0.05, -1.0 + 0.05, 0.0])


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_without_a_penalty_the_gradient_is_used_as_it_is(each_backend, cls):
    """As PyTorch adds weight_decay * theta only when weight_decay != 0: no 0 * inf = NaN in the
    gradient of an infinite parameter, which stays infinite after a finite step."""
    theta = np.array([np.inf])
    cls(0.1).step([theta], [np.array([1.0])])
    assert theta[0] == np.inf
    with np.errstate(invalid="ignore"):
        penalised = np.array([np.inf])
        cls(0.1, weight_decay=0.01).step([penalised], [np.array([1.0])])
    assert not np.isfinite(penalised[0])   # the penalty's gradient is infinite: no finite result


def test_keras_weight_decay_is_decoupled_in_every_optimizer():
    for cls in OPTIMIZERS:
        assert cls(0.1, convention="keras").settings["decoupled"] is True
        assert cls(0.1).settings["decoupled"] is False


# --- groups and schedules --------------------------------------------------------------

def test_groups_by_name_and_position(each_backend):
    weight, bias, other = np.ones(3), np.ones(2), np.ones(1)
    optimizer = refnet.SGD(0.1, weight_decay=0.5, l1=0.25, groups=[
        {"params": ["*.bias"], "weight_decay": False},
        {"params": [2], "lr_scale": 0.5},
    ])
    optimizer.step([weight, bias, other], [np.zeros(3), np.zeros(2), np.zeros(1)],
                   names=["dense.weight", "dense.bias", "out.weight"])
    np.testing.assert_allclose(weight, 1 - 0.1 * (0.5 + 0.25))
    np.testing.assert_array_equal(bias, 1.0)
    np.testing.assert_allclose(other, 1 - 0.05 * (0.5 + 0.25))


def test_group_lr_scale_scales_decoupled_decay_too(each_backend):
    theta = np.ones(1)
    refnet.Adam(0.1, weight_decay=0.5, decoupled=True, groups=[{"params": [0], "lr_scale": 0.0}]).step(
        [theta], [np.ones(1)])
    np.testing.assert_array_equal(theta, [1.0])


@pytest.mark.parametrize(("groups", "names", "message"), [
    ([{"params": ["*.bias"]}], None, "pass names="),
    ([{"params": ["*.bais"]}], ["a.bias"], "matches no parameter name"),
    ([{"params": [3]}], None, "selects position 3"),
])
def test_group_selection_errors(groups, names, message):
    theta = np.ones(2)
    with pytest.raises(ValueError, match=message):
        refnet.SGD(0.1, groups=groups).step([theta], [np.ones(2)], names=names)
    np.testing.assert_array_equal(theta, [1.0, 1.0])


@pytest.mark.parametrize(("groups", "error"), [
    ({"params": [0]}, TypeError),
    ([{"params": [0], "momentum": 0.5}], ValueError),
    ([{"lr_scale": 2.0}], ValueError),
    ([{"params": 0}], TypeError),
    ([{"params": [0], "lr_scale": -1.0}], ValueError),
    ([{"params": [0], "weight_decay": "no"}], TypeError),
])
def test_bad_groups_are_refused_at_construction(groups, error):
    with pytest.raises(error, match="groups"):
        refnet.SGD(0.1, groups=groups)


@given(t=st.integers(0, 10_000))
def test_schedules_closed_forms(t):
    assert refnet.Constant().factor(t) == 1.0
    assert refnet.StepDecay(7, 0.5).factor(t) == 0.5 ** (t // 7)
    assert refnet.InverseTime(0.1).factor(t) == pytest.approx(1 / (1 + 0.1 * t), rel=1e-15)
    # Lee's eta / sqrt(t + 1)
    assert refnet.InverseTime(1.0, power=0.5).factor(t) == pytest.approx(1 / math.sqrt(t + 1), rel=1e-15)


def test_schedule_sets_the_learning_rate_of_each_step(each_backend):
    steps = constant_gradient_steps(refnet.SGD(0.1, schedule=refnet.InverseTime(1.0, power=0.5)), [2.0], 4)
    np.testing.assert_allclose(steps[:, 0], [0.1 * 2 / math.sqrt(t + 1) for t in range(4)], rtol=1e-15)


# --- conventions and switches ----------------------------------------------------------

def test_presets_supply_defaults_and_explicit_switches_override():
    assert refnet.RMSProp(0.1).settings["alpha"] == 0.99
    assert refnet.RMSProp(0.1, convention="keras").settings["alpha"] == 0.9
    assert refnet.Adagrad(0.1, convention="keras").settings["initial_accumulator"] == 0.1
    assert refnet.Adam(0.1, convention="keras").settings["eps"] == 1e-7
    # torch RMSProp with eps inside the root: lr g / sqrt((1 - alpha) g^2 + eps)
    taken = constant_gradient_steps(refnet.RMSProp(0.1, eps=1e-2, eps_in_sqrt=True), [0.1], 1)[0, 0]
    assert taken == pytest.approx(0.1 * 0.1 / math.sqrt(0.01 * 0.01 + 1e-2), rel=1e-14)


def test_keras_formulas_recomputed_independently(each_backend):
    """Keras 3's update_step formulas (sgd.py, adagrad.py, rmsprop.py, adam.py), transcribed here."""
    rng = np.random.default_rng(11)
    grads = [rng.standard_normal(6) for _ in range(15)]
    start = rng.standard_normal(6)
    lr, wd = 0.01, 0.1

    def keras_run(update, state):
        theta = start.copy()
        for t, g in enumerate(grads):
            theta = theta - theta * wd * lr   # base_optimizer._apply_weight_decay
            theta = update(theta, g, state, t + 1)
        return theta

    def sgd(theta, g, s, t):
        s["m"] = s["m"] * 0.9 - g * lr
        return theta + (s["m"] * 0.9 - g * lr)   # nesterov

    def adagrad(theta, g, s, t):
        s["acc"] = s["acc"] + g * g
        return theta - lr * g / np.sqrt(s["acc"] + 1e-7)

    def rmsprop(theta, g, s, t):
        s["v"] = 0.9 * s["v"] + 0.1 * g * g
        s["avg"] = 0.9 * s["avg"] + 0.1 * g
        s["m"] = 0.5 * s["m"] + lr * g / np.sqrt(s["v"] - s["avg"] ** 2 + 1e-7)
        return theta - s["m"]

    def adam(theta, g, s, t):
        alpha = lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        s["m"] = s["m"] + (g - s["m"]) * 0.1
        s["v"] = s["v"] + (g * g - s["v"]) * 0.001
        return theta - s["m"] * alpha / (np.sqrt(s["v"]) + 1e-7)

    zeros = lambda *keys: {k: np.zeros(6) for k in keys}  # noqa: E731
    cases = [
        (refnet.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd, convention="keras"), sgd, zeros("m")),
        (refnet.Adagrad(lr, weight_decay=wd, convention="keras"), adagrad, {"acc": np.full(6, 0.1)}),
        (refnet.RMSProp(lr, momentum=0.5, centered=True, weight_decay=wd, convention="keras"), rmsprop,
         zeros("v", "avg", "m")),
        (refnet.Adam(lr, weight_decay=wd, convention="keras"), adam, zeros("m", "v")),
    ]
    for optimizer, update, state in cases:
        theta = start.copy()
        run(optimizer, [theta], [[g] for g in grads])
        # Same formulas, operations in a slightly different order: rounding only, 15 steps.
        np.testing.assert_allclose(theta, keras_run(update, state), rtol=1e-12, atol=1e-14)


# --- the other libraries' Adam and RMSProp options -----------------------------------------
# Each library's update transcribed here from its source (float64), independently of refnet's
# kernels; refnet must follow it to rounding (other operation orders, 30 steps, values of order 1).

ADAM_STEPS = 30


def _adam_problem(seed=21, size=6):
    rng = np.random.default_rng(seed)
    start = rng.choice([-1.0, 1.0], size) * rng.uniform(1.0, 2.0, size)
    # Gradients at three scales, so that eps's placement shows (as the conformance kit draws them).
    grads = [rng.standard_normal(size) * np.array([1.0, 1e-3, 30.0] * (size // 3)) for _ in range(ADAM_STEPS)]
    return start, grads


def _library_run(update, state, start, grads, lr, decoupled_decay=0.0):
    theta = start.copy()
    for t, g in enumerate(grads, start=1):
        theta = theta - theta * decoupled_decay * lr   # Keras: base_optimizer._apply_weight_decay
        theta = update(theta, g, state, t)
    return theta


def _refnet_run(optimizer, start, grads):
    theta = start.copy()
    run(optimizer, [theta], [[g] for g in grads])
    return theta


def optax_adam(lr, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=False):
    """optax/_src/transform.py (commit 2edbcbe) scale_by_adam, lines 281-300, then scale_by_learning_rate;
    the moments are tree_update_moment(_per_elem_norm) of optax/tree_utils/_tree_math.py, lines 394-439."""
    def update(theta, g, s, t):
        s["mu"] = (1 - b1) * g + b1 * s["mu"]
        s["nu"] = (1 - b2) * g**2 + b2 * s["nu"]
        if nesterov:
            mu_hat = b1 * (s["mu"] / (1 - b1 ** (t + 1))) + (1 - b1) * (g / (1 - b1**t))
        else:
            mu_hat = s["mu"] / (1 - b1**t)
        nu_hat = s["nu"] / (1 - b2**t)
        return theta + -lr * (mu_hat / (np.sqrt(nu_hat + eps_root) + eps))
    return update


def optax_amsgrad(lr, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, bias_correction_mu=True, bias_correction_nu=True):
    """optax/_src/transform.py (commit 2edbcbe) scale_by_amsgrad, lines 362-385: the maximum of the
    *corrected* second moment."""
    def update(theta, g, s, t):
        s["mu"] = (1 - b1) * g + b1 * s["mu"]
        s["nu"] = (1 - b2) * g**2 + b2 * s["nu"]
        mu_hat = s["mu"] / (1 - b1**t) if bias_correction_mu else s["mu"]
        nu_eff = s["nu"] / (1 - b2**t) if bias_correction_nu else s["nu"]
        s["nu_max"] = np.maximum(s["nu_max"], nu_eff)
        return theta + -lr * (mu_hat / (np.sqrt(s["nu_max"] + eps_root) + eps))
    return update


def keras_amsgrad(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """keras/src/optimizers/adam.py (commit 3422977) update_step, lines 103-136, amsgrad=True: the maximum
    of the uncorrected v, in the epsilon-hat form."""
    def update(theta, g, s, t):
        alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        s["m"] = s["m"] + (g - s["m"]) * (1 - beta_1)
        s["v"] = s["v"] + (g * g - s["v"]) * (1 - beta_2)
        s["v_hat"] = np.maximum(s["v_hat"], s["v"])
        return theta - s["m"] * alpha / (np.sqrt(s["v_hat"]) + epsilon)
    return update


def keras_nadam(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """keras/src/optimizers/nadam.py (commit 3422977): _backend_update_step, lines 95-107 (the running
    product of u, updated before the step), and update_step, lines 109-146."""
    def update(theta, g, s, t):
        s["u_product"] = s["u_product"] * beta_1 * (1.0 - 0.5 * 0.96**t)
        u_t = beta_1 * (1.0 - 0.5 * 0.96**t)
        u_t_1 = beta_1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        u_product_t_1 = s["u_product"] * u_t_1
        s["m"] = s["m"] + (g - s["m"]) * (1 - beta_1)
        s["v"] = s["v"] + (g * g - s["v"]) * (1 - beta_2)
        m_hat = u_t_1 * s["m"] / (1 - u_product_t_1) + (1 - u_t) * g / (1 - s["u_product"])
        v_hat = s["v"] / (1 - beta_2**t)
        return theta - m_hat * lr / (np.sqrt(v_hat) + epsilon)
    return update


LR, WD = 0.01, 0.1
ZEROS = lambda *keys: {key: np.zeros(6) for key in keys}  # noqa: E731
LIBRARY_UPDATES = {
    "optax adam(eps_root)": (lambda: refnet.Adam(LR, eps_root=1e-6), optax_adam(LR, eps_root=1e-6),
                             lambda: ZEROS("mu", "nu"), 0.0),
    "optax nadam": (lambda: refnet.Adam(LR, nesterov=True, momentum_decay=math.inf),
                    optax_adam(LR, nesterov=True), lambda: ZEROS("mu", "nu"), 0.0),
    "optax adam(nesterov, eps_root)": (lambda: refnet.Adam(LR, nesterov=True, momentum_decay=math.inf, eps_root=1e-6,
                                                           beta1=0.8),
                                       optax_adam(LR, b1=0.8, nesterov=True, eps_root=1e-6),
                                       lambda: ZEROS("mu", "nu"), 0.0),
    "optax amsgrad": (lambda: refnet.Adam(LR, amsgrad="corrected"), optax_amsgrad(LR),
                      lambda: ZEROS("mu", "nu", "nu_max"), 0.0),
    "optax amsgrad(no mu correction, eps_root)": (
        lambda: refnet.Adam(LR, amsgrad="corrected", bias_correction=(False, True), eps_root=1e-6),
        optax_amsgrad(LR, eps_root=1e-6, bias_correction_mu=False), lambda: ZEROS("mu", "nu", "nu_max"), 0.0),
    "optax amsgrad(paper: no corrections)": (
        lambda: refnet.Adam(LR, amsgrad="corrected", bias_correction=False),
        optax_amsgrad(LR, bias_correction_mu=False, bias_correction_nu=False), lambda: ZEROS("mu", "nu", "nu_max"),
        0.0),
    "keras Adam(amsgrad)": (lambda: refnet.Adam(LR, amsgrad=True, weight_decay=WD, convention="keras"),
                            keras_amsgrad(LR), lambda: ZEROS("m", "v", "v_hat"), WD),
    "keras Nadam": (lambda: refnet.Adam(LR, nesterov=True, weight_decay=WD, convention="keras"), keras_nadam(LR),
                    lambda: {**ZEROS("m", "v"), "u_product": 1.0}, WD),
}


def optax_rmsprop(lr, decay=0.9, eps=1e-8, eps_in_sqrt=True, centered=False, momentum=None, nesterov=False,
                  bias_correction=False):
    """optax/_src/alias.py (commit 2edbcbe) rmsprop, lines 2041-2071: scale_by_rms (transform.py lines
    130-151) or scale_by_stddev (lines 203-226), then scale_by_learning_rate, then trace
    (optax/transforms/_accumulation.py lines 66-77): the trace follows the learning rate."""
    def update(theta, g, s, t):
        s["nu"] = (1 - decay) * g**2 + decay * s["nu"]
        nu_hat = s["nu"] / (1 - decay**t) if bias_correction else s["nu"]
        if centered:
            s["mu"] = (1 - decay) * g + decay * s["mu"]
            mu_hat = s["mu"] / (1 - decay**t) if bias_correction else s["mu"]
            nu_hat = nu_hat - mu_hat**2
        scaling = 1 / np.sqrt(nu_hat + eps) if eps_in_sqrt else 1 / (np.sqrt(nu_hat) + eps)
        u = -lr * (scaling * g)
        if momentum is not None:
            s["trace"] = u + momentum * s["trace"]
            u = u + momentum * s["trace"] if nesterov else s["trace"]
        return theta + u
    return update


OPTAX_RMSPROP = dict(alpha=0.9, eps=1e-8, eps_in_sqrt=True, lr_in_momentum=True)
LIBRARY_UPDATES.update({
    "optax rmsprop(nesterov)": (lambda: refnet.RMSProp(LR, momentum=0.9, nesterov=True, **OPTAX_RMSPROP),
                                optax_rmsprop(LR, momentum=0.9, nesterov=True), lambda: ZEROS("nu", "trace"), 0.0),
    "optax rmsprop(bias_correction, eps outside)": (
        lambda: refnet.RMSProp(LR, bias_correction=True, **dict(OPTAX_RMSPROP, eps_in_sqrt=False)),
        optax_rmsprop(LR, eps_in_sqrt=False, bias_correction=True), lambda: ZEROS("nu"), 0.0),
    # Corrected and centered, the first step's variance g^2 - g^2 is 0 up to rounding: with eps = 1
    # inside the root, a last-bit difference there stays a last-bit difference of the step.
    "optax rmsprop(centered, bias_correction, nesterov)": (
        lambda: refnet.RMSProp(LR, centered=True, bias_correction=True, momentum=0.5, nesterov=True,
                               **dict(OPTAX_RMSPROP, eps=1.0)),
        optax_rmsprop(LR, eps=1.0, centered=True, bias_correction=True, momentum=0.5, nesterov=True),
        lambda: ZEROS("nu", "mu", "trace"), 0.0),
    "optax rmsprop(centered, nesterov)": (
        lambda: refnet.RMSProp(LR, centered=True, momentum=0.5, nesterov=True, **OPTAX_RMSPROP),
        optax_rmsprop(LR, centered=True, momentum=0.5, nesterov=True), lambda: ZEROS("nu", "mu", "trace"), 0.0),
})


@pytest.mark.parametrize("make", [lambda: refnet.SGD(0.1, momentum=0.5, maximize=True),
                                  lambda: refnet.Adagrad(0.1, maximize=True),
                                  lambda: refnet.RMSProp(0.1, maximize=True),
                                  lambda: refnet.Adam(0.1, amsgrad=True, maximize=True)])
def test_maximize_ascends_without_touching_the_gradient(each_backend, make):
    """maximize on g is the minimising step on -g (PyTorch negates the gradient first), bit for bit."""
    grad = np.array([0.5, -2.0, 0.0, 3.0])
    kept = grad.copy()
    ascended = run(make(), [np.ones(4)], [[grad]] * 3)[0]
    np.testing.assert_array_equal(grad, kept)
    optimizer = make()
    optimizer.settings["maximize"] = False
    np.testing.assert_array_equal(ascended, run(optimizer, [np.ones(4)], [[-grad]] * 3)[0])


def test_a_subclass_passing_keywords_on_is_an_optimizer_like_its_base():
    """Regression (review of this fix): the check of unknown keywords read the subclass's signature,
    so a subclass taking **kwargs refused its base's own settings."""
    class WarmSGD(refnet.SGD):
        def __init__(self, lr, warm_steps=3, **kwargs):
            super().__init__(lr, **kwargs)
            self.warm_steps = warm_steps

    class MyAdam(refnet.Adam):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    assert WarmSGD(0.1, momentum=0.9, clip_norm=1.0).settings["momentum"] == 0.9
    assert MyAdam(1e-3, amsgrad=True).settings["amsgrad"] is True
    with pytest.raises(TypeError, match="WarmSGD\\(\\) got an unexpected keyword argument 'momentm'"):
        WarmSGD(0.1, momentm=0.9)


@pytest.mark.parametrize("clipping", [{}, {"global_clip_norm": 1.0}, {"clip_value": 0.05}], ids=repr)
@pytest.mark.parametrize("cls", [refnet.SGD, refnet.Adagrad, refnet.RMSProp, refnet.Adam])
def test_maximising_and_clipping_allocate_nothing_after_the_first_step(cls, clipping):
    """The negated and clipped gradients go into buffers kept from the first step.  Regression
    (review of issue 11): maximize allocated a negated copy of every gradient on every step, 80 kB
    here, where fit's other work allocates nothing per step."""
    import tracemalloc
    params, grads = [np.ones(10_000), np.ones(30)], [np.full(10_000, 0.1), np.full(30, -0.1)]
    optimizer = cls(1e-3, maximize=True, **clipping)
    optimizer.step(params, grads)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            optimizer.step(params, grads)
        rise = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert rise < 10_000 * 8 // 4


def test_optax_presets_are_optax_defaults():
    """optax/_src/alias.py (commit 2edbcbe): adagrad(initial_accumulator_value=0.1, eps=1e-7), lines 347-351
    (eps inside the root: scale_by_rss, transform.py line 72); rmsprop(decay=0.9, eps=1e-8, initial_scale=0.0,
    eps_in_sqrt=True), lines 1960-1970, its trace after scale_by_learning_rate (lines 2062-2071); adam(eps=1e-8),
    lines 432-437; nadam = adam(nesterov=True) with b1 constant (transform.py lines 286-291)."""
    adagrad = refnet.Adagrad(0.1, convention="optax").settings
    assert (adagrad["initial_accumulator"], adagrad["eps"], adagrad["eps_in_sqrt"]) == (0.1, 1e-7, True)
    rmsprop = refnet.RMSProp(0.1, convention="optax").settings
    assert (rmsprop["alpha"], rmsprop["eps"], rmsprop["initial_average"], rmsprop["eps_in_sqrt"],
            rmsprop["lr_in_momentum"], rmsprop["bias_correction"]) == (0.9, 1e-8, 0.0, True, True, False)
    adam = refnet.Adam(0.1, nesterov=True, convention="optax").settings
    assert (adam["eps"], adam["eps_root"], adam["bias_correction"], adam["eps_hat"], adam["momentum_decay"]) == \
        (1e-8, 0.0, True, False, math.inf)
    assert not refnet.SGD(0.1, convention="optax").settings["lr_in_momentum"]


@pytest.mark.parametrize("name", LIBRARY_UPDATES)
def test_options_follow_the_libraries_sources(each_backend, name):
    make, update, state, decay = LIBRARY_UPDATES[name]
    start, grads = _adam_problem()
    want = _library_run(update, state(), start, grads, LR, decay)
    np.testing.assert_allclose(_refnet_run(make(), start, grads), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("kwargs", "convention", "textbook"), [
    (dict(eps=1e-4, eps_in_sqrt=True), "torch", dict(eps=1e-4, eps_in_sqrt=True)),
    (dict(bias_correction=(True, False)), "torch", dict(bias_correction_v=False)),
    (dict(bias_correction=(False, True), eps=1e-4, eps_in_sqrt=True), "torch",
     dict(bias_correction_m=False, eps=1e-4, eps_in_sqrt=True)),
    (dict(bias_correction=(False, True), convention="keras"), "keras", dict(bias_correction_m=False)),
])
def test_eps_inside_the_root_and_each_bias_correction_follow_the_textbook(each_backend, kwargs, convention, textbook):
    """Against the conformance kit's textbook Adam (refnet/testing/optimizers.py, written from the
    formulas), driven by the kit: a step schedule, gradients at scales 1, 1e-3 and 30."""
    from refnet.testing import check_optimizer
    check_optimizer(refnet.Adam(LR, **kwargs), "adam", convention, lr=LR, schedule="step", **textbook)


def test_bias_correction_pair_of_equal_flags_is_the_flag(each_backend):
    start, grads = _adam_problem()
    for flag in (True, False):
        assert refnet.Adam(LR, bias_correction=(flag, flag)).settings["bias_correction"] is flag
        np.testing.assert_array_equal(_refnet_run(refnet.Adam(LR, bias_correction=(flag, flag)), start, grads),
                                      _refnet_run(refnet.Adam(LR, bias_correction=flag), start, grads))


def test_keras_nadam_adds_eps_to_the_corrected_root_whatever_bool_type():
    """Keras' Nadam, unlike its Adam, adds epsilon after the bias correction (eps_hat=False).
    Regression (review of issue 11): NumPy's True, accepted as nesterov, gave Keras' Adam's eps_hat."""
    for flag in (True, np.True_):
        assert refnet.Adam(0.1, nesterov=flag, convention="keras").settings["eps_hat"] is False
    assert refnet.Adam(0.1, nesterov=np.False_, convention="keras").settings["eps_hat"] is True


@pytest.mark.parametrize("backend", BACKENDS)
@given(g=gradients.filter(lambda x: abs(x) > 1e-2), lr=learning_rates)
def test_nadam_first_step_closed_form(backend, g, lr):
    """Step 1 from rest: m = (1 - b1) g, v = (1 - b2) g^2, so v_hat = g^2 and
    the step theta_0 - theta_1 = lr (mu_2 (1 - b1) / (1 - mu_1 mu_2) + (1 - mu_1) / (1 - mu_1)) g / (|g| + eps)."""
    b1, psi = 0.9, 0.004
    mu1, mu2 = (b1 * (1 - 0.5 * 0.96 ** (t * psi)) for t in (1, 2))
    want = lr * (mu2 * (1 - b1) / (1 - mu1 * mu2) + 1.0) * g / (abs(g) + 1e-8)
    with refnet.use_backend(backend):
        got = constant_gradient_steps(refnet.Adam(lr, nesterov=True), [g], 1)[0, 0]
    assert got == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nadam_kernel_corrects_v_before_the_root_whatever_correct_first(dtype):
    """The kernel's NAdam divides v by its correction before the root (as the reference does)
    whether or not correct_first is also passed.  Regression (review of issue 11): the compiled
    kernel took the root of the correction when correct_first was False, a step 1/sqrt(c2) off."""
    from refnet import _core
    rng = np.random.default_rng(7)
    grad = rng.standard_normal(33).astype(dtype)
    results = []
    for kernel in (_core.adam, reference.adam):
        param, exp_avg, exp_avg_sq = np.ones(33, dtype), np.full(33, 0.1, dtype), np.full(33, 0.01, dtype)
        kernel(param, grad, exp_avg, exp_avg_sq, np.empty(0, dtype), 1e-3, 0.9, 0.999, 0.0, 1e-8, 0.1, 0.001,
               False, False, False, True, 0.9, 0.8, 0.19, 0.0, 0.0, 1.0)
        results.append(param)
    np.testing.assert_allclose(*results, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_amsgrad_divides_by_the_largest_second_moment_so_far(each_backend):
    """A large gradient then small ones: v decays, AMSGrad's maximum does not, so its steps are smaller
    than Adam's; with equal gradients v never falls, and AMSGrad is Adam."""
    spike = [[np.array([10.0])]] + [[np.array([0.1])]] * 20
    adam = run(refnet.Adam(0.01), [np.zeros(1)], spike)[0]
    amsgrad = run(refnet.Adam(0.01, amsgrad=True), [np.zeros(1)], spike)[0]
    assert 0 > amsgrad[0] > adam[0]
    steady = [[np.array([0.3])]] * 20
    np.testing.assert_array_equal(run(refnet.Adam(0.01, amsgrad=True), [np.zeros(1)], steady)[0],
                                  run(refnet.Adam(0.01), [np.zeros(1)], steady)[0])


# --- resume -----------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_state_dict_resumes_bit_for_bit(cls, kwargs):
    rng = np.random.default_rng(3)
    start = [rng.standard_normal((3, 2)), rng.standard_normal(4).astype(np.float32)]
    grads = [[rng.standard_normal((3, 2)), rng.standard_normal(4).astype(np.float32)] for _ in range(10)]
    make = lambda: cls(0.01, schedule=refnet.StepDecay(3, 0.5), **kwargs)  # noqa: E731
    straight = [p.copy() for p in start]
    run(make(), straight, grads)
    resumed = [p.copy() for p in start]
    first = make()
    run(first, resumed, grads[:5])
    saved = first.state_dict()
    run(first, [p.copy() for p in resumed], grads[5:7])   # must not leak into the saved copy
    second = make()
    second.load_state_dict(saved)
    run(second, resumed, grads[5:])
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_refuses_another_configuration():
    saved = refnet.Adam(0.1).state_dict()
    with pytest.raises(ValueError, match="from Adam, not SGD"):
        refnet.SGD(0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="lr=0.1"):
        refnet.Adam(0.2).load_state_dict(saved)
    with pytest.raises(ValueError, match="state_dict must be"):
        refnet.Adam(0.1).load_state_dict({"state": []})
    # Regression (hostile suite): a tampered config failed with AttributeError / NumPy's ambiguity error.
    for config in ("0.5", {**saved["config"], "lr": np.array([0.1, 0.1])}):
        with pytest.raises(ValueError, match=r"state_dict\['config'\] must be a dict|state_dict has lr="):
            refnet.Adam(0.1).load_state_dict({**saved, "config": config})
    with pytest.raises(ValueError, match=r"state_dict\['steps'\] must be an int in \[0, "):
        refnet.Adam(0.1).load_state_dict({**saved, "steps": 10**400})   # overflowed at the next step


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: refnet.SGD(-0.1), ValueError, "lr must be >= 0"),
    (lambda: refnet.SGD(float("nan")), ValueError, "lr must be finite"),
    (lambda: refnet.SGD("fast"), TypeError, "lr must be a real number"),
    (lambda: refnet.SGD(0.1, momentum=-0.5), ValueError, "momentum"),
    (lambda: refnet.SGD(0.1, nesterov=True), ValueError, "nesterov=True needs momentum"),
    (lambda: refnet.SGD(0.1, momentum=0.9, nesterov=True, convention="lee"), ValueError, "'lee' convention"),
    (lambda: refnet.SGD(0.1, momentum=0.9, dampening=1.5), ValueError, r"dampening must be in \[0.0, 1.0\]"),
    (lambda: refnet.SGD(0.1, momentum=0.9, dampening=0.1, convention="lee"), ValueError, "'lee' convention"),
    (lambda: refnet.SGD(0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "needs dampening=0"),
    (lambda: refnet.SGD(0.1, maximize="yes"), TypeError, "maximize must be True or False"),
    (lambda: refnet.Adam(0.1, maximize=1), TypeError, "maximize must be True or False"),
    (lambda: refnet.RMSProp(0.1, centered=True, convention="lee"), ValueError, "'lee' convention"),
    (lambda: refnet.RMSProp(0.1, alpha=1.0), ValueError, "alpha must be in"),
    (lambda: refnet.RMSProp(0.1, root_state=True, eps_in_sqrt=True), ValueError, "root_state"),
    (lambda: refnet.RMSProp(0.1, root_state=True, centered=True), ValueError, "root_state"),
    (lambda: refnet.RMSProp(0.1, initial_average="last"), TypeError, "initial_average"),
    (lambda: refnet.RMSProp(0.1, nesterov=True), ValueError, "nesterov=True needs momentum"),
    (lambda: refnet.RMSProp(0.1, momentum=0.5, nesterov=True, convention="lee"), ValueError, "'lee' convention"),
    (lambda: refnet.RMSProp(0.1, nesterov=1, momentum=0.5), TypeError, "nesterov must be True or False"),
    (lambda: refnet.RMSProp(0.1, bias_correction="yes"), TypeError, "bias_correction must be True or False"),
    (lambda: refnet.RMSProp(0.1, bias_correction=True, root_state=True), ValueError, "bias_correction=True"),
    (lambda: refnet.RMSProp(0.1, bias_correction=True, initial_average="first"), ValueError, "bias_correction=True"),
    (lambda: refnet.Adam(0.1, beta1=1.0), ValueError, r"beta1 must be in \[0.0, 1.0\)"),
    (lambda: refnet.Adam(0.1, beta2=-0.1), ValueError, "beta2"),
    (lambda: refnet.Adam(0.1, eps=-1e-8), ValueError, "eps"),
    (lambda: refnet.Adam(0.1, decoupled="yes"), TypeError, "decoupled must be True or False"),
    (lambda: refnet.Adam(0.1, eps_root=-1e-8), ValueError, "eps_root must be >= 0"),
    (lambda: refnet.Adam(0.1, eps_in_sqrt=1), TypeError, "eps_in_sqrt must be True or False"),
    (lambda: refnet.Adam(0.1, eps_in_sqrt=True, eps_root=1e-8), ValueError, "eps_in_sqrt=True puts eps inside"),
    (lambda: refnet.Adam(0.1, eps=0.0), ValueError, "eps must be positive unless eps_root"),
    (lambda: refnet.Adam(0.1, eps_hat=True, eps_root=1e-8), ValueError, "eps_hat=True"),
    (lambda: refnet.Adam(0.1, amsgrad="corrected", convention="keras"), ValueError, "eps_hat=True"),
    (lambda: refnet.Adam(0.1, bias_correction=(True,)), ValueError, "bias_correction must be True, False or a pair"),
    (lambda: refnet.Adam(0.1, bias_correction=(True, "no")), TypeError, r"bias_correction\[1\] must be True"),
    (lambda: refnet.Adam(0.1, bias_correction="m"), TypeError, "bias_correction"),
    (lambda: refnet.Adam(0.1, amsgrad="max"), TypeError, "amsgrad"),
    (lambda: refnet.Adam(0.1, amsgrad=True, convention="lee"), ValueError, "'lee' convention"),
    (lambda: refnet.Adam(0.1, nesterov=True, convention="lee"), ValueError, "'lee' convention"),
    (lambda: refnet.Adam(0.1, momentum_decay=0.004), ValueError, "momentum_decay .* needs nesterov=True"),
    (lambda: refnet.Adam(0.1, nesterov=True, momentum_decay=-1), ValueError, "momentum_decay must be >= 0"),
    (lambda: refnet.Adam(0.1, nesterov=True, momentum_decay=float("nan")), ValueError, "momentum_decay must be"),
    (lambda: refnet.Adam(0.1, nesterov="yes"), TypeError, "nesterov must be True or False"),
    (lambda: refnet.Adagrad(0.1, initial_accumulator=-1), ValueError, "initial_accumulator"),
    (lambda: refnet.Adagrad(0.1, convention="tf"), ValueError, "convention must be one of"),
    (lambda: refnet.SGD(0.1, l1=-1), ValueError, "l1"),
    # Regression (review of issue 11): the clipping options are collected as **clipping, and a
    # misspelt one was taken as a setting and silently ignored.
    (lambda: refnet.SGD(1.0, clipnorm=0.5), TypeError, "unexpected keyword argument 'clipnorm'; did you mean 'clip_norm'"),
    (lambda: refnet.Adagrad(0.1, clip_vlaue=1.0), TypeError, "unexpected keyword argument 'clip_vlaue'"),
    (lambda: refnet.RMSProp(0.1, global_clipnorm=1.0), TypeError, "unexpected keyword argument 'global_clipnorm'"),
    (lambda: refnet.Adam(0.1, betas=(0.9, 0.99)), TypeError, "unexpected keyword argument 'betas'"),
    # Regression (review of issue 11): a norm type or eps with clipping that has no norm was ignored.
    (lambda: refnet.SGD(0.1, clip_rms=1.0, clip_eps=1e-6), ValueError, "clip_eps=1e-06 given with clip_rms: .* apply to clip_norm and global"),
    (lambda: refnet.SGD(0.1, clip_value=1.0, clip_norm_type=1), ValueError, "clip_norm_type=1.0 given with clip_value"),
    (lambda: refnet.Adam(0.1, clip_eps=0.0), ValueError, "clip_eps=0.0 given without clipping"),
    (lambda: refnet.SGD(0.1, clip_value=1.0, clip_eps=2.0), ValueError, "^clip_eps=2.0 given with clip_value"),
    (lambda: refnet.SGD(0.1, clip_rms=1.0, clip_norm_type=3, clip_eps=2.0), ValueError,
     "^clip_norm_type=3.0, clip_eps=2.0 given with clip_rms"),
    (lambda: refnet.SGD(0.1, schedule=0.5), TypeError, "schedule"),
    (lambda: refnet.StepDecay(0), ValueError, "step_size"),
    # Python ints beyond float's range: a ValueError naming the argument, not OverflowError.
    (lambda: refnet.SGD(10**400), ValueError, "lr must be finite"),
    (lambda: refnet.Adam(0.1, beta1=-(10**400)), ValueError, "beta1 must be finite"),
    (lambda: refnet.InverseTime(10**400), ValueError, "decay must be finite"),
    (lambda: refnet.SGD(0.1, groups=[{"params": [0], "lr_scale": 10**309}]), ValueError, "lr_scale"),
])
def test_bad_hyper_parameters_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


class _Factor:
    def __init__(self, value):
        self.value = value

    def factor(self, t):
        return self.value


@pytest.mark.parametrize(("factor", "error", "message"), [
    (float("nan"), ValueError, "factor at step 1 must be finite"),
    (float("inf"), ValueError, "factor at step 1 must be finite"),
    (-0.5, ValueError, "factor at step 1 must be >= 0"),
    (1e308, ValueError, r"lr \* its factor at step 1 must be finite"),
    ("0.5", TypeError, "factor at step 1 must be a real number"),
])
@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_a_bad_schedule_factor_is_refused_before_anything_is_written(cls, factor, error, message):
    """Regression: a NaN, infinite or negative factor silently corrupted the parameters."""
    schedule = _Factor(1.0)
    optimizer = cls(10.0, schedule=schedule)
    param = np.ones(3)
    optimizer.step([param], [np.ones(3)])
    state, before = optimizer.state_dict(), param.copy()
    schedule.value = factor
    with pytest.raises(error, match=message):
        optimizer.step([param], [np.ones(3)])
    np.testing.assert_array_equal(param, before)
    assert optimizer.steps == 1
    for saved, now in zip(state["state"], optimizer.state_dict()["state"]):
        for key in saved:
            np.testing.assert_array_equal(now[key], saved[key])


def _read_only():
    a = np.ones(3)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize(("params", "grads", "error", "message"), [
    (np.ones(3), [np.ones(3)], TypeError, "params must be a list"),
    ([np.ones(3)], np.ones(3), TypeError, "grads must be a list"),
    ([np.ones(3)], [np.ones(3), np.ones(3)], ValueError, "one array per parameter"),
    ([[1.0, 2.0, 3.0]], [np.ones(3)], TypeError, r"params\[1\] must be a numpy.ndarray"),
    ([np.ones(3, dtype=int)], [np.ones(3)], TypeError, r"params\[1\] must have dtype"),
    ([np.ones(6)[::2]], [np.ones(3)], ValueError, r"params\[1\] must be C-contiguous"),
    ([_read_only()], [np.ones(3)], ValueError, r"params\[1\] must be writeable"),
    ([np.ones(3)], [np.ones(4)], ValueError, r"grads\[1\] must have the shape of params\[1\]"),
    ([np.ones(3)], [np.ones(3, np.float32)], TypeError, r"grads\[1\] must have the dtype of params\[1\]"),
])
@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_bad_arrays_are_refused_before_anything_is_written(cls, params, grads, error, message):
    first = np.ones(2)
    with pytest.raises(error, match=message):
        cls(0.1).step([first, *params] if isinstance(params, list) else params,
                      [np.ones(2), *grads] if isinstance(grads, list) else grads)
    np.testing.assert_array_equal(first, [1.0, 1.0])


@pytest.mark.parametrize("make", [
    lambda: refnet.SGD(0.1, momentum=0.5), refnet.Adagrad, refnet.RMSProp, refnet.Adam])
def test_params_must_keep_the_shapes_of_their_state(make):
    optimizer = make(0.1) if isinstance(make, type) else make()
    first, second = np.ones(2), np.ones(3)
    optimizer.step([first, second], [np.ones(2), np.ones(3)])
    snapshot = first.copy()
    with pytest.raises(ValueError, match=r"params\[1\] has shape \(4,\)"):
        optimizer.step([first, np.ones(4)], [np.ones(2), np.ones(4)])
    with pytest.raises(ValueError, match="the 2 arrays this optimizer has stepped"):
        optimizer.step([first], [np.ones(2)])
    np.testing.assert_array_equal(first, snapshot)
    assert optimizer.steps == 1


def test_gradient_aliasing_its_parameter_is_read_before_it_changes(each_backend):
    theta = np.arange(6.0)
    refnet.SGD(0.5).step([theta[1:]], [theta[:-1]])
    np.testing.assert_array_equal(theta[1:], np.arange(1.0, 6.0) - 0.5 * np.arange(5.0))


def test_reference_kernels_have_sources_and_formulas():
    for name in reference.optimizers.__all__:
        doc = getattr(reference.optimizers, name).__doc__
        assert ".. math::" in doc and "]_" in doc, name


@pytest.mark.parametrize("backend", ["compiled", "reference"])
@given(data=st.data())
@example(data=None)
def test_lees_root_state_matches_an_extended_precision_oracle_over_the_whole_range(backend, data):
    """sigma <- sqrt(a sigma^2 + b g^2), scaled as hypot does: within 3 ulp of the same
    formula in np.longdouble (whose exponent range cannot under- or overflow here) for sigma
    and g anywhere from the smallest subnormal to half the largest float, across the
    thresholds where the scaling's exponent is clipped."""
    if np.finfo(np.longdouble).nmant < 63:
        pytest.skip("np.longdouble is not an extended-precision type here")
    if data is None:
        dtype = np.float64
        edges = list(float_edges(dtype)[1:-3]) + [1e-200]   # positive, finite, up to max / 2
        sigma = np.array([e for e in edges for _ in edges], dtype)
        grad = np.array([e for _ in edges for e in edges], dtype)
    else:
        dtype = data.draw(dtypes)
        info = np.finfo(dtype)
        # Up to max / 2: sqrt(0.9 m^2 + 0.1 m^2) may round just above the largest float itself.
        magnitudes = st.floats(float(info.smallest_subnormal), float(info.max) / 2, width=info.bits)
        n = data.draw(st.integers(1, 20))
        sigma = np.array(data.draw(st.lists(magnitudes, min_size=n, max_size=n)), dtype)
        grad = np.array(data.draw(st.lists(magnitudes, min_size=n, max_size=n)), dtype)
        grad *= np.array(data.draw(st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n)), dtype)
    a, b = dtype(0.9), dtype(0.1)
    exact = np.sqrt(a.astype(np.longdouble) * sigma.astype(np.longdouble) ** 2
                    + b.astype(np.longdouble) * grad.astype(np.longdouble) ** 2)
    state, param, empty = sigma.copy(), np.zeros_like(sigma), np.zeros(0, dtype)
    kernels = {"compiled": refnet._core, "reference": refnet.reference}[backend]
    kernels.rmsprop(param, grad, state, empty, empty, 1.0, float(a), float(b), 0.0, False, 0.0, False, False, True, 1.0,
                    0.0, 0.0, 1.0)
    spacing = np.spacing(exact.astype(dtype)).astype(np.longdouble)
    # Two squares, two products, a sum and a root, each rounded once, in a well-conditioned sum
    # (the power-of-two scalings are exact, the last one rounds only into the subnormals):
    # observed within 2 ulp, asserted within 3.
    assert np.all(np.abs(state.astype(np.longdouble) - exact) <= 3 * spacing)


# --- a lean step: checked once, nothing allocated -------------------------------------

def test_repeated_steps_allocate_nothing():
    """After the first step (state created), a step with the same arrays allocates no array:
    an allocation of any one would show as at least its 8 * 10^5 bytes."""
    import tracemalloc

    params = [np.ones((100, 1000)), np.ones(1000)]
    grads = [np.full_like(p, 0.5) for p in params]
    opt = refnet.Adam(0.1)
    opt.step(params, grads)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for _ in range(3):
            opt.step(params, grads)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8_000, peak


@pytest.mark.parametrize("change", ["swap_param", "bad_grad", "aliased_grad", "names"])
def test_a_changed_argument_is_checked_again(change):
    """The checks are skipped only for the very same arrays: any other argument is checked in full."""
    w, b = np.ones(4), np.ones(2)
    grads = [np.full(4, 0.5), np.full(2, 0.5)]
    opt = refnet.SGD(0.1, groups=[{"params": ["*.b"], "lr_scale": 0.0}])
    opt.step([w, b], grads, names=["0.w", "0.b"])
    before = (w.copy(), b.copy())
    params = [w, b]
    if change == "swap_param":
        params[1] = np.ones(3)        # same list object, other array
        with pytest.raises(ValueError, match=r"grads\[1\]|params\[1\]"):
            opt.step(params, grads, names=["0.w", "0.b"])
    elif change == "bad_grad":
        grads[0] = np.full(4, 0.5, dtype=np.float32)
        with pytest.raises(TypeError, match=r"grads\[0\]"):
            opt.step(params, grads, names=["0.w", "0.b"])
    elif change == "names":
        with pytest.raises(ValueError, match="matches no parameter name"):
            opt.step(params, grads, names=["0.w", "0.c"])
    else:
        # The gradient is the parameter itself: read from a copy, so w - 0.1 w.
        opt.step(params, [w, grads[1]], names=["0.w", "0.b"])
        np.testing.assert_array_equal(w, before[0] - np.float64(0.1) * before[0])
        return
    np.testing.assert_array_equal(w, before[0])
    np.testing.assert_array_equal(b, before[1])


def test_a_loaded_state_is_used_by_the_next_step():
    """load_state_dict replaces the state the checked step holds views of."""
    w = np.ones(3)
    opt = refnet.SGD(0.1, momentum=0.9)
    opt.step([w], [np.ones(3)])
    saved = opt.state_dict()
    opt.step([w], [np.ones(3)])
    opt.load_state_dict(saved)
    w[...] = 0
    opt.step([w], [np.ones(3)])
    # b = 0.9 * 1 + 1 = 1.9 from the saved buffer (1), not from the later one (1.9).
    np.testing.assert_array_equal(w, np.full(3, -0.1 * 1.9))


def test_the_same_arrays_are_checked_once(monkeypatch):
    calls = []
    check = refnet.optim._param
    monkeypatch.setattr(refnet.optim, "_param", lambda array, index: calls.append(index) or check(array, index))
    params, grads = [np.ones(3), np.ones(2)], [np.ones(3), np.ones(2)]
    opt = refnet.Adam(0.1)
    for _ in range(4):
        opt.step(params, grads)
    assert calls == [0, 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_every_instruction_set_gives_the_reference_bits(cls, kwargs, dtype):
    """Adam's and RMSProp/Adagrad's loops are cloned per instruction set (AVX-512, AVX2,
    baseline): each clone this CPU runs performs the reference's operations, so gives its bits."""
    from refnet import _core

    try:
        for isa in _core.ISA_CLONES:
            _core._select_isa(isa)
            compiled, reference_result = compiled_and_reference_after_steps(cls, kwargs, dtype, size=1001)
            np.testing.assert_array_equal(compiled, reference_result, err_msg=isa)
    finally:
        _core._select_isa()


def every_loop_variant():
    """One configuration per compiled loop of Adam (16) and RMSProp/Adagrad (30): every combination
    of the structural switches the loops are specialised on (a penalty, each AMSGrad, Nesterov, v
    corrected before the root; the root state, centering, momentum, Nesterov, bias correction)."""
    adam = [dict(l1=l1, nesterov=nesterov, amsgrad=amsgrad, eps_in_sqrt=inside)
            for l1 in (0.0, 0.001) for nesterov in (False, True) for amsgrad in (False, True, "corrected")
            for inside in (False, True) if not (inside and (nesterov or amsgrad == "corrected"))]
    rmsprop = [dict(l1=l1, root_state=root, eps=0.0 if root else 1e-8, centered=centered, momentum=momentum,
                    nesterov=nesterov, bias_correction=corrected)
               for l1 in (0.0, 0.001) for root in (False, True) for centered in (False, True)
               for momentum in (0.0, 0.5) for nesterov in (False, True) for corrected in (False, True)
               if not (root and (centered or corrected)) and not (nesterov and not momentum)]
    adagrad = [dict(l1=l1, root_state=root, eps=0.0 if root else 1e-10) for l1 in (0.0, 0.001) for root in (False, True)]
    return [(refnet.Adam, kw) for kw in adam] + [(refnet.RMSProp, kw) for kw in rmsprop] + \
        [(refnet.Adagrad, kw) for kw in adagrad]


def test_every_loop_variant_is_checked():
    assert len([1 for cls, _ in every_loop_variant() if cls is refnet.Adam]) == 16
    assert len([1 for cls, _ in every_loop_variant() if cls is not refnet.Adam]) == 30 + 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_loop_variant_on_every_instruction_set_gives_the_reference_bits(dtype):
    """The spec's kernel paths run under Hypothesis; here every compiled loop, on every clone, on
    edge values (zeros of both signs, subnormals, tiny and huge) and random ones, 67 elements (whole
    vectors and a remainder), 4 steps."""
    from refnet import _core

    info = np.finfo(dtype)
    edges = np.array([0.0, -0.0, info.smallest_subnormal, -info.tiny, 1e-30, 1.0, -3.0, 1e3], dtype)
    rng = np.random.default_rng(4)
    start = np.concatenate([edges, rng.standard_normal(59).astype(dtype)])
    grads = [[np.concatenate([edges[::-1], rng.standard_normal(59).astype(dtype)])] for _ in range(4)]
    try:
        for cls, kwargs in every_loop_variant():
            with refnet.use_backend("reference"):
                want = run(cls(0.01, **kwargs), [start.copy()], grads)[0]
            for isa in _core.ISA_CLONES:
                _core._select_isa(isa)
                with refnet.use_backend("compiled"):
                    got = run(cls(0.01, **kwargs), [start.copy()], grads)[0]
                np.testing.assert_array_equal(got, want, err_msg=f"{isa} {cls.__name__}({kwargs})")
    finally:
        _core._select_isa()


@pytest.mark.parametrize(
    "make",
    [
        lambda: refnet.SGD(0.1, momentum=None, nesterov=None, weight_decay=None),
        lambda: refnet.Adagrad(0.1, weight_decay=None),
        lambda: refnet.RMSProp(0.1, momentum=None, centered=None, weight_decay=None),
        lambda: refnet.Adam(0.1, beta1=None, beta2=None, weight_decay=None),
    ],
)
def test_none_means_the_presets_value_for_every_hyper_parameter(make):
    optimizer, default = make(), type(make())(0.1)
    assert optimizer.settings == default.settings


@pytest.mark.parametrize(
    "make",
    [lambda: refnet.RMSProp(0.01, eps=0.0), lambda: refnet.Adagrad(0.01, eps=0.0), lambda: refnet.Adam(0.01, eps=0.0),
     lambda: refnet.RMSProp(0.01, eps=0.0, convention="keras")],
)
def test_eps_zero_is_refused_outside_lees_root_form(make):
    # Adam's own way out is optax's eps_root inside the root.
    with pytest.raises(ValueError, match="eps must be positive unless (root_state=True|eps_root > 0)"):
        make()


def test_lees_forms_need_no_eps_and_handle_tiny_gradients():
    for optimizer in (refnet.RMSProp(0.01, convention="lee"), refnet.Adagrad(0.01, convention="lee")):
        theta = np.zeros(1)
        optimizer.step([theta], [np.array([1e-200])])
        optimizer.step([theta], [np.array([1e-170])])
        assert np.all(np.isfinite(theta)) and abs(theta[0]) < 0.05


def test_a_gradient_sharing_memory_with_another_parameter_is_read_before_the_step():
    a, b = np.ones(3), np.ones(3)
    refnet.SGD(1.0).step([a, b], [np.full(3, 0.5), a])   # b's gradient is a, as it was before the step
    np.testing.assert_array_equal(a, 0.5)
    np.testing.assert_array_equal(b, 0.0)


@pytest.mark.parametrize("duplicate", ["deepcopy", "pickle"])
def test_a_copied_network_and_optimizer_train_the_copy(duplicate):
    """Regression: the checked step's views of the parameters were copied detached from the
    copied parameters, so the copy's steps changed nothing anyone could see."""
    import copy
    import pickle

    w = np.ones(3)
    opt = refnet.Adam(0.1)
    opt.step([w], [np.full(3, 0.5)])
    original = w.copy()
    w2, opt2 = copy.deepcopy((w, opt)) if duplicate == "deepcopy" else pickle.loads(pickle.dumps((w, opt)))
    opt2.step([w2], [np.full(3, 0.5)])
    assert np.all(w2 < original)                     # the copy moved, by about lr each step ...
    np.testing.assert_allclose(w2, original - 0.1, rtol=1e-6)
    # ... its first moment is the two-step EW average of 0.5, and the original is untouched
    np.testing.assert_allclose(opt2.state_dict()["state"][0]["exp_avg"], 0.5 * (1 - 0.9**2), rtol=1e-15)
    np.testing.assert_array_equal(w, original)


def test_group_options_edited_between_steps_take_effect():
    """Regression: options were read once, so freezing a group (as with torch's param_groups) was ignored."""
    w, b = np.ones(2), np.ones(2)
    opt = refnet.SGD(0.1, groups=[{"params": [1], "lr_scale": 1.0}])
    opt.step([w, b], [np.ones(2), np.ones(2)])
    opt.groups[0]["lr_scale"] = 0.0
    opt.step([w, b], [np.ones(2), np.ones(2)])
    np.testing.assert_array_equal(b, np.full(2, 0.9))
    np.testing.assert_array_equal(w, np.full(2, 1 - 0.1 - 0.1))


@pytest.mark.parametrize("change", ["read_only", "dtype"])
def test_a_parameter_changed_in_place_is_checked_again(change):
    """Regression: a parameter made read-only, or reinterpreted as another dtype, passed the once-only check."""
    a, b = np.ones(4), np.ones(4)
    opt = refnet.SGD(0.1, momentum=0.9)     # a state per parameter, which a new dtype no longer fits
    opt.step([a, b], [np.ones(4), np.ones(4)])
    if change == "read_only":
        b.flags.writeable = False
        error, message = ValueError, r"params\[1\] must be writeable"
    else:
        b.dtype = np.float32      # the same 32 bytes seen as 8 float32
        error, message = ValueError, r"params\[1\] has shape \(8,\) and dtype float32"
    before = (a.copy(), b.copy())
    with pytest.raises(error, match=message):
        opt.step([a, b], [np.ones(4), np.ones(b.shape, b.dtype)])
    np.testing.assert_array_equal(a, before[0])
    np.testing.assert_array_equal(b, before[1])
    assert opt.steps == 1


# --- found by an adversarial review (2026-12-03) ---------------------------------------------

@pytest.mark.parametrize("key, value, error, message", [
    ("lr_scale", "0.5", TypeError, r"groups\[0\]\['lr_scale'\] must be a real number"),
    ("lr_scale", -5.0, ValueError, r"groups\[0\]\['lr_scale'\] must be >= 0.0"),
    ("lr", 0.0, ValueError, r"groups\[0\] has unknown keys \['lr'\]"),
    ("weight_decay", 0.01, TypeError, r"groups\[0\]\['weight_decay'\] must be True or False"),
])
def test_group_options_edited_between_steps_are_checked_before_any_write(key, value, error, message):
    """Regression: edited group dicts (public, as torch's param_groups) were re-planned but not
    re-checked: a string scale failed half-way through a step, a negative one ascended, an
    unknown key was ignored and a coefficient was read as a flag."""
    a, b = np.ones(2), np.ones(2)
    optimizer = refnet.SGD(0.1, groups=[{"params": [1], "lr_scale": 1.0}])
    optimizer.step([a, b], [np.ones(2), np.ones(2)])
    optimizer.groups[0][key] = value
    with pytest.raises(error, match=message):
        optimizer.step([a, b], [np.ones(2), np.ones(2)])
    np.testing.assert_array_equal(a, 0.9)   # neither parameter was written
    np.testing.assert_array_equal(b, 0.9)
    assert optimizer.steps == 1


def test_a_negative_lr_attribute_is_refused_naming_lr():
    """Regression: lr is a public attribute (the kit's schedule protocol sets it); a negative one
    ascended, and a string was blamed on the schedule."""
    w = np.ones(3)
    optimizer = refnet.SGD(0.1)
    for value, error in ((-0.1, ValueError), ("0.1", TypeError)):
        optimizer.lr = value
        with pytest.raises(error, match=r"^lr must be"):
            optimizer.step([w], [np.ones(3)])
    np.testing.assert_array_equal(w, 1.0)


class _Cosine:
    """A schedule of the caller's own, without __eq__."""

    def __init__(self, total):
        self.total = total

    def factor(self, t):
        return 0.5 * (1 + math.cos(math.pi * min(t, self.total) / self.total))


def test_a_schedule_of_the_callers_own_class_resumes():
    """Regression: load_state_dict compared configurations with !=, which is identity for an
    object without __eq__: no optimizer could load a state saved with such a schedule."""
    import pickle

    w, g = np.ones(3), np.full(3, 0.5)
    optimizer = refnet.Adam(1e-2, schedule=_Cosine(10))
    optimizer.step([w], [g])
    saved = pickle.loads(pickle.dumps(optimizer.state_dict()))
    resumed_w = w.copy()
    resumed = refnet.Adam(1e-2, schedule=_Cosine(10))
    resumed.load_state_dict(saved)
    for _ in range(3):
        optimizer.step([w], [g])
        resumed.step([resumed_w], [g])
    np.testing.assert_array_equal(resumed_w, w)
    with pytest.raises(ValueError, match="state_dict has schedule="):   # another type is still refused
        refnet.Adam(1e-2, schedule=refnet.StepDecay(5, 0.5)).load_state_dict(saved)


def test_nadam_resumes_at_a_huge_step_count_at_once():
    """Regression: after a load, NAdam rebuilt the product of its momentum factors mu_1...mu_t in a
    Python loop of t passes (4 s at 10^7 steps, never at sys.maxsize).  The product reaches a
    fixed point (here the smallest subnormal: mu near 0.9 rounds it back to itself) after a few
    thousand steps, so the loop stops there, with the bits the whole loop would give."""
    import time

    w, g = np.ones(3), np.full(3, 0.5)
    optimizer = refnet.Adam(1e-3, nesterov=True)
    optimizer.step([w], [g])
    state = optimizer.state_dict()
    state["steps"] = sys.maxsize - 1
    resumed = refnet.Adam(1e-3, nesterov=True)
    resumed.load_state_dict(state)
    start = time.perf_counter()
    resumed.step([w], [g])
    assert time.perf_counter() - start < 5.0   # seconds, against never
    assert resumed._mu_product(sys.maxsize) == np.finfo(np.float64).smallest_subnormal
    # The product itself, before it underflows, is unchanged: a product of mu_i by hand.
    fresh = refnet.Adam(1e-3, nesterov=True)
    expected = 1.0
    for i in range(1, 20_001):   # through the fixed point: the whole loop, by hand
        expected *= fresh._mu(i)
        if i in (100, 20_000):
            assert refnet.Adam(1e-3, nesterov=True)._mu_product(i) == expected, i
