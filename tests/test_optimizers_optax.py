"""Parity with optax itself (float64, 100 steps), where optax and JAX are installed.

Skipped otherwise (``pip install optax jax jaxlib``, measured here: 32 s and 628 MB for a fresh venv
with NumPy and SciPy, so not part of CI; the same updates are checked against transcriptions of
optax's source in tests/test_optimizers.py).
XLA may fuse a multiply and an add, refnet does not: the two differ by a few ulp of the terms of
each update, so parameters start in ±[2, 3], away from 0, and must agree to 1e-12 relative.
"""

import math

import numpy as np
import pytest

import refnet

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")

STEPS = 100
SIZE = 64

CASES = {
    "adam(eps_root)": (lambda: refnet.Adam(1e-2, eps_root=1e-6), lambda: optax.adam(1e-2, eps_root=1e-6)),
    "nadam": (lambda: refnet.Adam(1e-2, nesterov=True, momentum_decay=math.inf), lambda: optax.nadam(1e-2)),
    "adam(nesterov, b1=0.8)": (lambda: refnet.Adam(1e-2, beta1=0.8, nesterov=True, momentum_decay=math.inf),
                               lambda: optax.adam(1e-2, b1=0.8, nesterov=True)),
    "amsgrad": (lambda: refnet.Adam(1e-2, amsgrad="corrected"), lambda: optax.amsgrad(1e-2)),
    "amsgrad(eps_root, no mu correction)": (
        lambda: refnet.Adam(1e-2, amsgrad="corrected", eps_root=1e-6, bias_correction=(False, True)),
        lambda: optax.amsgrad(1e-2, eps_root=1e-6, bias_correction_mu=False)),
    "adamw": (lambda: refnet.Adam(1e-2, weight_decay=0.1, decoupled=True),
              lambda: optax.adamw(1e-2, weight_decay=0.1)),
    # optax's rmsprop: eps 1e-8 inside the root by default, its trace after the learning rate.
    "rmsprop(nesterov)": (lambda: refnet.RMSProp(1e-3, alpha=0.9, eps=1e-8, eps_in_sqrt=True, lr_in_momentum=True,
                                                 momentum=0.9, nesterov=True),
                          lambda: optax.rmsprop(1e-3, momentum=0.9, nesterov=True)),
    # Centered and corrected, the first variance g^2 - g^2 is 0 up to rounding: eps = 1 keeps a
    # last-bit difference there from growing to the size of the step.
    "rmsprop(centered, bias_correction, momentum)": (
        lambda: refnet.RMSProp(1e-3, alpha=0.9, eps=1.0, eps_in_sqrt=True, centered=True, bias_correction=True,
                               momentum=0.5, lr_in_momentum=True),
        lambda: optax.rmsprop(1e-3, eps=1.0, centered=True, bias_correction=True, momentum=0.5)),
    "rmsprop(bias_correction, eps outside)": (
        lambda: refnet.RMSProp(1e-3, alpha=0.9, eps=1e-8, bias_correction=True),
        lambda: optax.rmsprop(1e-3, eps_in_sqrt=False, bias_correction=True)),
}


# convention="optax" with nothing else given, under a schedule (the step halving every 10 steps), so that
# where the learning rate sits in a momentum buffer shows.
PRESETS = {
    "sgd(momentum, nesterov)": (lambda lr: refnet.SGD(lr, momentum=0.9, nesterov=True, convention="optax"),
                                lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True)),
    "adagrad": (lambda lr: refnet.Adagrad(lr, convention="optax"), lambda lr: optax.adagrad(lr)),
    "rmsprop(momentum)": (lambda lr: refnet.RMSProp(lr, momentum=0.9, convention="optax"),
                          lambda lr: optax.rmsprop(lr, momentum=0.9)),
    "adam": (lambda lr: refnet.Adam(lr, convention="optax"), lambda lr: optax.adam(lr)),
    "nadam": (lambda lr: refnet.Adam(lr, nesterov=True, convention="optax"), lambda lr: optax.nadam(lr)),
    "adamw": (lambda lr: refnet.Adam(lr, weight_decay=1e-4, decoupled=True, convention="optax"),
              lambda lr: optax.adamw(lr)),
}


@pytest.fixture(scope="module", autouse=True)
def float64_jax():
    enabled = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", enabled)


@pytest.mark.parametrize("backend", ["compiled", "reference"])
@pytest.mark.parametrize("name", CASES)
def test_parity_with_optax(backend, name):
    make, make_optax = CASES[name]
    rng = np.random.default_rng(7)
    start = rng.choice([-1.0, 1.0], SIZE) * rng.uniform(2.0, 3.0, SIZE)
    ours = start.copy()
    transformation = make_optax()
    theirs = jax.numpy.asarray(start)
    state = transformation.init(theirs)
    worst = 0.0
    with refnet.use_backend(backend):
        optimizer = make()
        for _ in range(STEPS):
            g = rng.standard_normal(SIZE)
            optimizer.step([ours], [g])
            updates, state = transformation.update(jax.numpy.asarray(g), state, theirs)
            theirs = optax.apply_updates(theirs, updates)
            want = np.asarray(theirs)
            assert want.dtype == np.float64
            worst = max(worst, float(np.max(np.abs(ours - want) / np.abs(want))))
    assert worst <= 1e-12, worst


@pytest.mark.parametrize("name", PRESETS)
def test_the_optax_convention_is_optax_under_a_schedule(name):
    make, make_optax = PRESETS[name]
    rng = np.random.default_rng(8)
    start = rng.choice([-1.0, 1.0], SIZE) * rng.uniform(2.0, 3.0, SIZE)
    ours = start.copy()
    optimizer = make(1e-3)
    optimizer.schedule = refnet.StepDecay(10, 0.5)
    # optax.exponential_decay(staircase=True) is this schedule, but computes it in float32 from its int32 count.
    float64 = jax.numpy.float64
    transformation = make_optax(lambda count: 1e-3 * 0.5 ** (count // 10).astype(float64))
    theirs = jax.numpy.asarray(start)
    state = transformation.init(theirs)
    worst = 0.0
    for _ in range(40):
        g = rng.standard_normal(SIZE)
        optimizer.step([ours], [g])
        updates, state = transformation.update(jax.numpy.asarray(g), state, theirs)
        theirs = optax.apply_updates(theirs, updates)
        worst = max(worst, float(np.max(np.abs(ours - np.asarray(theirs)) / np.abs(np.asarray(theirs)))))
    assert worst <= 1e-12, worst


def test_the_kit_accepts_optax_rmsprop_centred_with_bias_correction():
    """Regression: at step 1 the bias-corrected centred variance cancels to 0, and optax's rounding of
    it, under eps = 1e-8 inside the root, moved the step by 3e-9 relatively: the kit refused optax's own
    rmsprop as not following the optax convention."""
    from refnet.testing import check_optimizer
    from refnet.testing.adapters import optax_transformation

    check_optimizer(optax_transformation(optax.rmsprop(1e-3, centered=True, bias_correction=True)), "rmsprop", "optax",
                    lr=1e-3, centered=True, bias_correction=True)
