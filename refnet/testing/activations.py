r"""Check an activation function (or its derivative) against the textbook formula, kinks included.

:func:`check_activation` evaluates the user's function on edge values (0 and
-0 for the kinks, the smallest subnormal and normal numbers, 1e-8, and
magnitudes up to where a plain formula would still not overflow) and on random
inputs, and compares with the formula evaluated in ``np.longdouble``.  Where a
derivative differs at a kink it names the value the code takes there:
ReLU'(0) = 0 (PyTorch, Keras, ``jax.nn.relu``, the lecture, refnet), 1, or 1/2
(JAX's derivative of ``jnp.maximum(z, 0)``); a Leaky ReLU slope of 0.01
(PyTorch, the lecture, JAX), 0.2 (TensorFlow's ``tf.nn.leaky_relu``) or 0.3
(Keras' layer).
"""

import numpy as np

from .conformance import ConformanceError
from .tolerances import CONFORMANCE

__all__ = ["check_activation", "ACTIVATIONS"]

_L = np.longdouble


def _sigmoid(z, s):
    with np.errstate(over="ignore"):  # exp(-z) = inf far left, where 1/(1+inf) = 0 is right
        return 1 / (1 + np.exp(-z))


def _sigmoid_derivative(z, s):
    # σ(z)σ(-z) = e/(1+e)², e = exp(-|z|): the textbook σ(1-σ) without losing the tail.
    e = np.exp(-np.abs(z))
    return e / (1 + e) ** 2


def _tanh_derivative(z, s):
    with np.errstate(over="ignore"):
        return 1 / np.cosh(z) ** 2


def _relu_derivative(z, s):
    return np.where(z > 0, _L(1), np.where(z < 0, _L(0), _L(s["kink"])))


def _leaky_relu(z, s):
    return np.where(z > 0, z, s["slope"] * z)


def _leaky_relu_derivative(z, s):
    kink = s["slope"] if s["kink"] == "slope" else s["kink"]
    return np.where(z > 0, _L(1), np.where(z < 0, _L(s["slope"]), _L(kink)))


# name: (textbook formula in longdouble, default settings, the settings' variants tried)
ACTIVATIONS = {
    "sigmoid": (_sigmoid, {}, {}),
    "sigmoid_derivative": (_sigmoid_derivative, {}, {}),
    "tanh": (lambda z, s: np.tanh(z), {}, {}),
    "tanh_derivative": (_tanh_derivative, {}, {}),
    "relu": (lambda z, s: np.maximum(z, _L(0)), {}, {}),
    "relu_derivative": (_relu_derivative, {"kink": 0.0}, {"kink": [0.0, 1.0, 0.5]}),
    "leaky_relu": (_leaky_relu, {"slope": 0.01}, {"slope": [0.01, 0.2, 0.3]}),
    "leaky_relu_derivative": (_leaky_relu_derivative, {"slope": 0.01, "kink": "slope"},
                              {"slope": [0.01, 0.2, 0.3], "kink": ["slope", 1.0, 0.0]}),
}

_KINK_WORDS = {
    0.0: "{f}'(0) = 0", 1.0: "{f}'(0) = 1", 0.5: "{f}'(0) = 1/2 (JAX's derivative of jnp.maximum(z, 0))",
    "slope": "{f}'(0) = the slope α",
}


def _inputs(dtype, seed):
    info = np.finfo(dtype)
    # Up to where exp, cosh² and e^z - e^-z of a plain formula stay finite in the dtype.
    largest = 300.0 if dtype == np.float64 else 40.0
    magnitudes = [0.0, float(info.smallest_subnormal), float(info.tiny), 1e-8, 1e-3, 0.5, 1.0, 2.0, 5.0,
                  20.0, largest]
    edges = np.array(magnitudes + [-m for m in magnitudes], dtype=dtype)
    random = np.random.default_rng(seed).normal(0.0, 3.0, 200).astype(dtype)
    return np.concatenate([edges, random])


def _describe(name, expected, variant):
    function = "ReLU" if name.startswith("relu") else "Leaky ReLU"
    phrases = []
    if variant.get("slope") != expected.get("slope"):
        phrases.append(f"slope α = {variant['slope']:g}")
    if variant.get("kink") != expected.get("kink"):
        phrases.append(_KINK_WORDS[variant["kink"]].format(f=function))
    return " and ".join(phrases)


def check_activation(fn, name, dtype=np.float64, *, seed=0, **settings):
    """Check that ``fn(z) -> array`` computes the activation ``name`` elementwise.

    Parameters
    ----------
    fn : callable
        Takes a 1-D array of ``dtype`` and returns an array of its shape and dtype.
    name : str
        One of :data:`ACTIVATIONS`: ``"sigmoid"``, ``"tanh"``, ``"relu"``,
        ``"leaky_relu"`` and their ``"_derivative"``.
    dtype : float32 or float64
    **settings
        ``slope=`` for Leaky ReLU (default 0.01), ``kink=`` the derivative's value
        at 0 (ReLU: 0; Leaky ReLU: ``"slope"``, i.e. α, as PyTorch).

    Raises
    ------
    ConformanceError
        Naming the first input that differs and, at a kink or for a slope, the
        value the code uses (``error.matches``).

    Examples
    --------
    >>> import numpy as np, refnet
    >>> from refnet.testing import check_activation
    >>> check_activation(refnet.relu_derivative, "relu_derivative")
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"name must be one of {list(ACTIVATIONS)}, got {name!r}")
    dtype = np.dtype(dtype)
    if dtype not in CONFORMANCE:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    formula, defaults, choices = ACTIVATIONS[name]
    unknown = set(settings) - set(defaults)
    if unknown:
        raise TypeError(f"{name} takes no settings {sorted(unknown)}; it takes {sorted(defaults) or 'none'}")
    expected = {**defaults, **settings}
    z = _inputs(dtype, seed)
    got = np.asarray(fn(z.copy()))
    if got.shape != z.shape or got.dtype != dtype:
        raise ConformanceError(f"{name}: for a {dtype} array of shape {z.shape} the function returned "
                               f"{got.dtype} of shape {got.shape}")
    want = formula(z.astype(_L), expected).astype(np.float64)
    report = CONFORMANCE[dtype].compare(got, want)
    if report.holds:
        return
    (index,) = report.first
    matched = None
    for slope in dict.fromkeys([expected.get("slope"), *choices.get("slope", [])]):
        for kink in dict.fromkeys([expected.get("kink"), *choices.get("kink", [])]):
            variant = {key: value for key, value in (("slope", slope), ("kink", kink)) if key in expected}
            if variant != expected and CONFORMANCE[dtype].compare(
                    got, formula(z.astype(_L), variant).astype(np.float64)).holds:
                matched = matched or variant
    sentence = (f" Your {name} has {_describe(name, expected, matched)}." if matched
                else " It matches none of the kink and slope variants tried.")
    raise ConformanceError(
        f"{name} differs from the textbook formula ({expected or 'no settings'}) first at z = {float(z[index])!r} "
        f"(input {index}): got {got[index].item()!r}, want {want[index].item()!r}; {report.failures} input(s) "
        f"differ.{sentence}",
        matches=matched, index=index,
    )
