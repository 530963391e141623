"""The verification report behind ``python -m refnet``: the lecture's identities, measured.

Each check computes both sides of an identity independently and compares them
with a stated tolerance, on both backends where that applies.
"""

import numpy as np

from . import backend, bayes, functional as F

_GRID = np.linspace(-50.0, 50.0, 200_001)


def _ulp_distance(a, b):
    """Largest count of representable floats between two arrays (NumPy's measure)."""
    return int(np.max(np.testing.assert_array_max_ulp(a, b, maxulp=np.inf), initial=0))


def _checks():
    z = _GRID
    s, ds = F.sigmoid(z), F.sigmoid_derivative(z)
    yield (
        "max sigma'(z) = 1/4, attained at z = 0 only",
        f"max {ds.max():.17g} at z = {z[ds.argmax()]:g}",
        ds.max() == 0.25 and np.all(ds[np.abs(z) > 1e-7] < 0.25),
    )
    # Tolerances: the error bounds of both sides (see refnet.reference.activations), in u = 2^-53.
    u = 2.0**-53
    gap = np.max(np.abs(ds - s * (1 - s)))
    yield ("sigma' = sigma (1 - sigma)", f"max |difference| {gap / u:.2f} u (tolerance 8 u, u = 2^-53)", gap <= 8 * u)
    gap = np.max(np.abs(F.sigmoid(-z) - (1 - s)))
    yield ("sigma(-z) = 1 - sigma(z)", f"max |difference| {gap / u:.2f} u (tolerance 6 u)", gap <= 6 * u)
    tails = F.sigmoid(np.array([-800.0, 800.0]))
    yield ("sigma(-800) = 0 and sigma(800) = 1, no overflow", f"{tails[0]:g}, {tails[1]:g}", tails.tolist() == [0.0, 1.0])
    tail = float(F.sigmoid_derivative(40.0))
    naive = float(F.sigmoid(40.0) * (1 - F.sigmoid(40.0)))
    yield (
        "sigma'(40) keeps its tail (~e^-40) where sigma(1-sigma) is 0",
        f"{tail:.6e} vs e^-40 = {np.exp(-40.0):.6e}; naive {naive:g}",
        abs(tail / np.exp(-40.0) - 1) < 1e-14,
    )

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
    yield (
        "Bayes posterior of shared-covariance Gaussians = sigma(w.x + b)",
        f"max |difference| {worst:.2e} over 20 random problems (tolerance 1e-12)",
        worst <= 1e-12,
    )

    pairs = np.stack([np.zeros_like(z), z], axis=-1).reshape(1, -1)
    same_forward = np.array_equal(F.maxout(pairs, 2)[0], F.relu(z))
    grad = F.maxout_backward(np.ones((1, z.size)), pairs, 2).reshape(-1, 2)[:, 1]
    same_backward = np.array_equal(grad, F.relu_derivative(z))
    yield (
        "Maxout over [0, z] = ReLU, forward and backward (ties to the lowest index)",
        f"forward equal: {same_forward}, backward equal: {same_backward}",
        same_forward and same_backward,
    )

    logits = rng.normal(scale=300.0, size=(1000, 10))
    p = F.softmax(logits)
    total_gap = np.max(np.abs(p.sum(axis=-1) - 1))
    shift_gap = np.max(np.abs(F.softmax(logits + 1e3) - p))
    yield (
        "softmax rows sum to 1 and ignore a shift, logits of scale 300",
        f"max |sum - 1| {total_gap:.1e}, max |shifted - original| {shift_gap:.1e}",
        total_gap <= 1e-14 and shift_gap <= 1e-12,
    )

    worst_ulp = 0
    for name in ("sigmoid", "sigmoid_derivative", "tanh", "tanh_derivative"):
        compiled = getattr(F, name)(z)
        with backend.use_backend("reference"):
            reference = getattr(F, name)(z)
        worst_ulp = max(worst_ulp, _ulp_distance(compiled, reference))
    yield (
        "compiled = reference for sigmoid, sigma', tanh, tanh' on [-50, 50]",
        f"max distance {worst_ulp} ulp (tolerance 8)",
        worst_ulp <= 8,
    )


def report(stream):
    """Write one line per identity to ``stream``; return True if all hold."""
    ok = True
    stream.write("refnet: the lecture's identities, checked (float64)\n\n")
    for claim, measured, holds in _checks():
        ok &= bool(holds)
        stream.write(f"[{'PASS' if holds else 'FAIL'}] {claim}\n       {measured}\n")
    stream.write(f"\n{'All identities hold.' if ok else 'Some identities FAILED.'}\n")
    return ok
