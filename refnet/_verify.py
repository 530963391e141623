"""The verification report behind ``refnet verify``: the lecture's identities, measured.

:data:`CLAIMS` holds each identity as a :class:`Claim`: a stable id (what
``refnet verify ID`` names), the statement, and a function that computes both
sides independently and compares them with a stated tolerance, on both
backends where that applies, returning ``(measured, holds)``.
"""

import collections
import warnings

import numpy as np

from . import backend, bayes, ensemble, functional as F
from .layers import Dense, Dropout, Sigmoid
from .network import Sequential
from .optim import SGD, Adam, RMSProp
from .testing.tolerances import ulp_distance

_GRID = np.linspace(-50.0, 50.0, 200_001)


def _ulp_distance(a, b):
    """Largest count of representable floats between two arrays (NumPy's measure)."""
    return int(np.max(ulp_distance(a, b), initial=0))


Claim = collections.namedtuple("Claim", "id statement measure")
Claim.__doc__ = "One identity: a stable ``id``, its ``statement``, and ``measure() -> (measured text, holds)``."

# Tolerances below: derived from the kernels' accuracy bounds in refnet.testing.specs, in u = 2^-53.
_U = 2.0**-53


def _sigmoid_maximum():
    z = _GRID
    ds = F.sigmoid_derivative(z)
    return f"max {ds.max():.17g} at z = {z[ds.argmax()]:g}", ds.max() == 0.25 and np.all(ds[np.abs(z) > 1e-7] < 0.25)


def _sigmoid_derivative_product():
    from .testing.specs import sigmoid_product_tolerance   # specs imports this module

    z = _GRID
    s = F.sigmoid(z)
    gap, tolerance = np.max(np.abs(F.sigmoid_derivative(z) - s * (1 - s))), sigmoid_product_tolerance(np.float64)
    return f"max |difference| {gap / _U:.2f} u (tolerance {tolerance:g} u, u = 2^-53)", gap <= tolerance * _U


def _sigmoid_symmetry():
    from .testing.specs import sigmoid_symmetry_tolerance

    z = _GRID
    gap, tolerance = np.max(np.abs(F.sigmoid(-z) - (1 - F.sigmoid(z)))), sigmoid_symmetry_tolerance(np.float64)
    return f"max |difference| {gap / _U:.2f} u (tolerance {tolerance:g} u)", gap <= tolerance * _U


def _sigmoid_saturation():
    # Warnings as errors: a sigmoid that computed exp(800) would warn of the overflow (a
    # textbook 1 / (1 + exp(-z)) gives the same two values, so they alone cannot tell).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            tails = F.sigmoid(np.array([-800.0, 800.0]))
        except (RuntimeWarning, FloatingPointError) as warning:
            return f"warned: {warning}", False
    return f"{tails[0]:g}, {tails[1]:g}, no warning", tails.tolist() == [0.0, 1.0]


def _sigmoid_derivative_tail():
    tail = float(F.sigmoid_derivative(40.0))
    naive = float(F.sigmoid(40.0) * (1 - F.sigmoid(40.0)))
    return (f"{tail:.6e} vs e^-40 = {np.exp(-40.0):.6e}; naive {naive:g}",
            abs(tail / np.exp(-40.0) - 1) < 1e-14)


def _bayes_posterior():
    rng = np.random.default_rng(2024)
    worst = 0.0
    for _ in range(20):
        d = int(rng.integers(1, 6))
        a = rng.normal(size=(d, d))
        cov = a @ a.T + d * np.eye(d)
        mean1, mean2 = rng.normal(size=d), rng.normal(size=d)
        prior1 = float(rng.uniform(0.05, 0.95))
        x = rng.normal(scale=2.0, size=(50, d))
        w, b = bayes.shared_covariance_logistic(mean1, mean2, cov, prior1)
        direct = bayes.gaussian_posterior(x, mean1, mean2, cov, prior1)
        worst = max(worst, np.max(np.abs(F.sigmoid(x @ w + b) - direct)))
    return f"max |difference| {worst:.2e} over 20 random problems (tolerance 1e-12)", worst <= 1e-12


def _maxout_relu():
    z = _GRID
    pairs = np.stack([np.zeros_like(z), z], axis=-1).reshape(1, -1)
    same_forward = np.array_equal(F.maxout(pairs, 2)[0], F.relu(z))
    grad = F.maxout_backward(np.ones((1, z.size)), pairs, 2).reshape(-1, 2)[:, 1]
    same_backward = np.array_equal(grad, F.relu_derivative(z))
    return f"forward equal: {same_forward}, backward equal: {same_backward}", same_forward and same_backward


def _softmax_stability():
    logits = np.random.default_rng(2024).normal(scale=300.0, size=(1000, 10))
    p = F.softmax(logits)
    total_gap = np.max(np.abs(p.sum(axis=-1) - 1))
    shift_gap = np.max(np.abs(F.softmax(logits + 1e3) - p))
    return (f"max |sum - 1| {total_gap:.1e}, max |shifted - original| {shift_gap:.1e}",
            total_gap <= 1e-14 and shift_gap <= 1e-12)


def _backends_agree():
    # The twin tolerances are the kernel specs'; imported here because the specs import this table.
    from .testing.specs import kernel

    z = _GRID
    distances, holds = [], True
    for name in ("sigmoid", "sigmoid_derivative", "tanh", "tanh_derivative"):
        # Both named: under `refnet verify --backend reference` the active one is the reference.
        with backend.use_backend("compiled"):
            compiled = getattr(F, name)(z)
        with backend.use_backend("reference"):
            reference = getattr(F, name)(z)
        tolerance = kernel(name).twin[z.dtype.name].maxulp
        distance = _ulp_distance(compiled, reference)
        distances.append(f"{name} {distance}/{tolerance:g}")
        holds = holds and distance <= tolerance
    return f"distance/tolerance in ulp: {', '.join(distances)}", holds


def _first_step(optimizer, g=1.0):
    """The size of an optimizer's first step from 0 under a constant gradient g."""
    theta = np.zeros(1)
    optimizer.step([theta], [np.full(1, g)])
    return -theta[0]


def _rmsprop_first_step():
    lr = 1e-3
    lee, torch, keras = (_first_step(RMSProp(lr, convention=c)) for c in ("lee", "torch", "keras"))
    return (
        f"{lee / lr:.6f} lr, {torch / lr:.6f} lr, {keras / lr:.6f} lr",
        # lr g / (sqrt(1 - alpha) |g| + eps), alpha = 0.99, eps = 1e-8; lr g / sqrt((1 - rho) g^2 + eps), rho = 0.9, eps = 1e-7
        lee == lr
        and abs(torch / lr - 1 / (np.sqrt(1 - 0.99) + 1e-8)) < 1e-9
        and abs(keras / lr - 1 / np.sqrt((1 - 0.9) + 1e-7)) < 1e-9,
    )


def _momentum_sum():
    rng = np.random.default_rng(6)
    grads, eta, decay = rng.normal(size=(30, 4)), 0.1, 0.9
    optimizer, theta = SGD(eta, momentum=decay, convention="lee"), np.zeros(4)
    previous, worst = theta.copy(), 0.0
    for t, g in enumerate(grads):
        optimizer.step([theta], [g.copy()])
        velocity = -eta * sum(decay ** (t - i) * grads[i] for i in range(t + 1))
        worst = max(worst, np.max(np.abs((theta - previous) - velocity)))
        previous = theta.copy()
    return f"max |step - (-eta sum lambda^(t-i) g_i)| {worst:.1e} over 30 steps (tolerance 1e-14)", worst <= 1e-14


def _l2_weight_decay():
    rng = np.random.default_rng(7)
    eta, w0, g, lam = 0.1, rng.normal(size=5), rng.normal(size=5), 0.2

    def after(optimizer, grad):
        w = w0.copy()
        optimizer.step([w], [grad.copy()])
        return w

    sgd_gap = np.max(np.abs(after(SGD(eta, weight_decay=lam), g) - ((1 - eta * lam) * w0 - eta * g)))
    adam_gap = np.max(np.abs(after(Adam(eta, weight_decay=lam), g) - after(Adam(eta, weight_decay=lam, decoupled=True), g)))
    return (f"SGD max |difference| {sgd_gap:.1e}; Adam coupled vs decoupled {adam_gap:.2e}",
            sgd_gap <= 1e-15 and adam_gap > 1e-3)


def _dropout_ensemble():
    x = np.random.default_rng(8).normal(size=(4, 3))
    linear = Sequential([Dropout(0.5), Dense(3, 4, init="classic", seed=1), Dropout(0.3), Dense(4, 2, seed=2)])
    curved = Sequential([Dropout(0.5), Dense(3, 4, init="classic", seed=1), Sigmoid(), Dropout(0.3), Dense(4, 2, seed=2)])
    linear_gap, curved_gap = ensemble.dropout_ensemble(linear, x).gap, ensemble.dropout_ensemble(curved, x).gap
    return (f"gap over all 2^7 masks: linear {linear_gap:.1e}, sigmoid {curved_gap:.1e}",
            linear_gap <= 1e-14 and curved_gap > 1e-4)


CLAIMS = (
    Claim("sigmoid-max", "max sigma'(z) = 1/4, attained at z = 0 only", _sigmoid_maximum),
    Claim("sigmoid-derivative", "sigma' = sigma (1 - sigma)", _sigmoid_derivative_product),
    Claim("sigmoid-symmetry", "sigma(-z) = 1 - sigma(z)", _sigmoid_symmetry),
    Claim("sigmoid-saturation", "sigma(-800) = 0 and sigma(800) = 1, no overflow (no warning)", _sigmoid_saturation),
    Claim("sigmoid-derivative-tail", "sigma'(40) keeps its tail (~e^-40) where sigma(1-sigma) is 0",
          _sigmoid_derivative_tail),
    Claim("bayes-posterior", "Bayes posterior of shared-covariance Gaussians = sigma(w.x + b)", _bayes_posterior),
    Claim("maxout-relu", "Maxout over [0, z] = ReLU, forward and backward (ties to the lowest index)", _maxout_relu),
    Claim("softmax-stable", "softmax rows sum to 1 and ignore a shift, logits of scale 300", _softmax_stability),
    Claim("backends-agree", "compiled = reference for sigmoid, sigma', tanh, tanh' on [-50, 50]", _backends_agree),
    Claim("rmsprop-first-step", "first RMSProp step, g = 1: Lee eta, PyTorch ~10 lr, Keras ~3.16 lr",
          _rmsprop_first_step),
    Claim("momentum-sum", "momentum: the velocity is an exponentially weighted sum of past gradients",
          _momentum_sum),
    Claim("l2-weight-decay", "L2 in the gradient = weight decay (1 - eta lambda) w for SGD, not for Adam",
          _l2_weight_decay),
    Claim("dropout-ensemble",
          "dropout: weight scaling = the exact ensemble mean for a linear net, not for a sigmoid net",
          _dropout_ensemble),
)

CLAIM_IDS = tuple(claim.id for claim in CLAIMS)


def select(ids=None):
    """The claims named by ``ids`` (all of them for None), in :data:`CLAIMS` order; KeyError for an unknown id."""
    if ids is None:
        return CLAIMS
    unknown = [i for i in ids if i not in CLAIM_IDS]
    if unknown:
        raise KeyError(f"no claim {unknown[0]!r}; the ids are {', '.join(CLAIM_IDS)}")
    return tuple(claim for claim in CLAIMS if claim.id in ids)


def measure(claims=CLAIMS):
    """``[(claim, measured, holds)]`` for each claim, ``holds`` a bool."""
    results = []
    for claim in claims:
        measured, holds = claim.measure()
        results.append((claim, measured, bool(holds)))
    return results


def write(results, stream):
    """Write one entry per measured claim to ``stream``; return True if all hold."""
    ok = all(holds for _, _, holds in results)
    stream.write("refnet: the lecture's identities, checked (float64)\n\n")
    for claim, measured, holds in results:
        stream.write(f"[{'PASS' if holds else 'FAIL'}] {claim.statement}  ({claim.id})\n       {measured}\n")
    stream.write(f"\n{'All identities hold.' if ok else 'Some identities FAILED.'}\n")
    return ok


def report(stream, ids=None):
    """Check the claims named by ``ids`` (all by default) and write the report to ``stream``; True if all hold."""
    return write(measure(select(ids)), stream)
