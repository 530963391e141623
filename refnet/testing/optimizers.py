r"""Check an optimizer against the textbook update of a convention, and name the one it follows.

:func:`check_optimizer` runs the user's optimizer and a plain NumPy transcription
of the chosen convention side by side, on three parameter arrays whose random
gradients have scales 1, 1e-3 and 30 (at 1e-3, :math:`g^2 \approx 10^{-6}` is
comparable with the ε of every library, so where ε sits shows), for
:data:`STEPS` steps, in float64.  Where the two differ it searches a small space
of variants (ε inside or outside the root, ε among the conventions' defaults,
the bias corrections of :math:`m` and :math:`v` separately, optax's ``eps_root``,
AMSGrad's maximum of :math:`v` or of :math:`\hat v`, NAdam's momentum schedule,
Lee's :math:`\sigma^0 = |g^0|`, the initial accumulator, RMSProp's bias
correction, the learning rate inside or outside the momentum buffer, Nesterov,
coupled or decoupled weight decay, gradient clipping missing or of another
kind) within three switches of the checked convention or two of another
one, and names the one the code does follow, relative to the nearest
convention ("Your RMSProp is Keras' with ε = 1e-7 outside the root").

The transcriptions below are the formulas as the sources write them
(:mod:`refnet.reference.optimizers` has their sources and refnet's bit-exact
versions); they are deliberately not refnet's kernels, so that refnet's
optimizers are checked by them too.  Where a denominator is exactly 0 (ε = 0
and every gradient so far 0) the step is 0.  A centred RMSProp's variance
cancels; the comparison there allows what 8 ulp of the cancelling terms change
in the step, and a configuration where that is as large as the step is refused
(see the guide *Check your framework's optimizer*).
"""

import dataclasses
import itertools
import math
import numbers

import numpy as np

from .conformance import ConformanceError, join_phrases
from .tolerances import CONFORMANCE

__all__ = ["check_optimizer", "CONVENTIONS", "FAMILIES", "STEPS", "SCALES", "textbook_trajectory"]

STEPS = 30
SCALES = (1.0, 1e-3, 30.0)
_SHAPES = ((3,), (2, 2), (3,))

# The switches and defaults of each convention, per family.  "optax" is optax's
# defaults (optax/_src/alias.py and transform.py, 0.2.8: rmsprop: decay 0.9, eps 1e-8 inside the
# root, the learning rate applied before the momentum trace; adagrad: initial_accumulator_value 0.1,
# eps 1e-7 inside; sgd: the learning rate applied after the trace); Keras' weight_decay is decoupled
# in every optimizer.
_ADAM = dict(eps=1e-8, eps_in_sqrt=False, eps_hat=False, bias_correction_m=True, bias_correction_v=True,
             decoupled=False, eps_root=0.0, amsgrad=False, nesterov=False, momentum_decay=None)
_ADAM_KERAS = dict(_ADAM, eps=1e-7, eps_hat=True)
# NAdam (Dozat 2016): the momentum factor of step t is u_t = β1 (1 - 0.96^(ψ t) / 2): torch ψ = 0.004
# (``momentum_decay``), Keras 3 ψ = 1 (keras/src/optimizers/nadam.py: 0.96 ** (iterations + 1)); optax's
# nadam (``adam(nesterov=True)``) keeps u_t = β1 (momentum_decay None).  Keras' Nadam is not the ε-hat form.
_NADAM = dict(_ADAM, nesterov=True)
CONVENTIONS = {
    "sgd": {
        "lee": dict(lr_in_momentum=True, decoupled=False), "torch": dict(lr_in_momentum=False, decoupled=False),
        "keras": dict(lr_in_momentum=True, decoupled=True), "optax": dict(lr_in_momentum=False, decoupled=False),
    },
    "adagrad": {
        "lee": dict(eps=0.0, eps_in_sqrt=False, initial_accumulator=0.0, decoupled=False),
        "torch": dict(eps=1e-10, eps_in_sqrt=False, initial_accumulator=0.0, decoupled=False),
        "keras": dict(eps=1e-7, eps_in_sqrt=True, initial_accumulator=0.1, decoupled=True),
        "optax": dict(eps=1e-7, eps_in_sqrt=True, initial_accumulator=0.1, decoupled=False),
    },
    "rmsprop": {
        "lee": dict(alpha=0.9, eps=0.0, eps_in_sqrt=False, initial_average="first", lr_in_momentum=True,
                    decoupled=False),
        "torch": dict(alpha=0.99, eps=1e-8, eps_in_sqrt=False, initial_average=0.0, lr_in_momentum=False,
                      decoupled=False),
        "keras": dict(alpha=0.9, eps=1e-7, eps_in_sqrt=True, initial_average=0.0, lr_in_momentum=True,
                      decoupled=True),
        # optax.rmsprop chains scale_by_learning_rate before trace: the learning rate inside the buffer.
        "optax": dict(alpha=0.9, eps=1e-8, eps_in_sqrt=True, initial_average=0.0, lr_in_momentum=True,
                      decoupled=False),
    },
    "adam": {"lee": _ADAM, "torch": _ADAM, "keras": dict(_ADAM_KERAS, decoupled=True), "optax": _ADAM},
    # AMSGrad: PyTorch and Keras keep the maximum of v (then correct it), optax the maximum of the corrected v̂.
    "amsgrad": {"torch": dict(_ADAM, amsgrad=True), "keras": dict(_ADAM_KERAS, amsgrad=True, decoupled=True),
                "optax": dict(_ADAM, amsgrad="corrected")},
    "nadam": {"torch": dict(_NADAM, momentum_decay=0.004), "keras": dict(_NADAM, eps=1e-7, momentum_decay=1.0,
                                                                         decoupled=True),
              "optax": _NADAM},
    "adamw": {
        "torch": dict(_ADAM, weight_decay=0.01, decoupled=True),
        "keras": dict(_ADAM_KERAS, weight_decay=0.004, decoupled=True),
        "optax": dict(_ADAM, weight_decay=1e-4, decoupled=True),
    },
}
FAMILIES = tuple(CONVENTIONS)
_NAMES = {"lee": "Lee's", "torch": "PyTorch's", "keras": "Keras'", "optax": "optax's"}
_TITLES = {"sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSProp", "adam": "Adam", "adamw": "AdamW",
           "amsgrad": "AMSGrad", "nadam": "NAdam"}

# Gradient clipping, before the update and before coupled L2 (torch's clip_grad_norm_ then step(),
# Keras' _clip_gradients, an optax chain(clip..., ...)); at most one kind.
_CLIP_KINDS = ("clip_value", "clip_norm", "clip_rms", "global_clip_norm")
_NORM_CLIP_KINDS = ("clip_norm", "global_clip_norm")   # the kinds clip_norm_type and clip_eps apply to
# PyTorch's maximize (every optimizer) ascends: the gradient negated before anything else.
_CLIP = dict(clip_value=None, clip_norm=None, clip_rms=None, global_clip_norm=None, clip_norm_type=2.0,
             clip_eps=None, maximize=False)
# ε added to the global norm: torch/nn/utils/clip_grad.py's max_norm / (total_norm + 1e-6); none elsewhere.
_CLIP_EPS = {"torch": 1e-6}

# Adam's options no convention's plain Adam has on.
_OFF = dict(eps_root=0.0, amsgrad=False, nesterov=False, momentum_decay=None)

# Hyper-parameters every convention shares, and which a user may set.
_ADAM_COMMON = dict(beta1=0.9, beta2=0.999, weight_decay=0.0, **_CLIP)
_COMMON = {
    "sgd": dict(momentum=0.0, nesterov=False, dampening=0.0, weight_decay=0.0, **_CLIP),
    "adagrad": dict(weight_decay=0.0, **_CLIP),
    "rmsprop": dict(momentum=0.0, centered=False, nesterov=False, bias_correction=False, weight_decay=0.0, **_CLIP),
    "adam": _ADAM_COMMON, "amsgrad": _ADAM_COMMON, "nadam": _ADAM_COMMON,
    "adamw": dict(beta1=0.9, beta2=0.999, **_CLIP),
}


# The ranges of the hyper-parameters a user may give, as refnet's optimizers bound them: a value
# out of range or of the wrong type would surface as a NumPy warning or a diagnosis of NaN
# trajectories, so it is refused by name.  (low, high, brackets); inf only where _INFINITE says.
_RANGES = {
    "lr": (0.0, math.inf, "[]"), "beta1": (0.0, 1.0, "[)"), "beta2": (0.0, 1.0, "[)"),
    "alpha": (0.0, 1.0, "[)"), "momentum": (0.0, 1.0, "[]"), "dampening": (0.0, 1.0, "[]"),
    "eps": (0.0, math.inf, "[]"), "eps_root": (0.0, math.inf, "[]"), "weight_decay": (0.0, math.inf, "[]"),
    "initial_accumulator": (0.0, math.inf, "[]"), "initial_average": (0.0, math.inf, "[]"),
    "momentum_decay": (0.0, math.inf, "[]"), "clip_eps": (0.0, math.inf, "[]"),
    "clip_norm_type": (1.0, math.inf, "[]"), **{kind: (0.0, math.inf, "(]") for kind in _CLIP_KINDS},
}
_INFINITE = ("momentum_decay", "clip_norm_type")   # NAdam's constant momentum (optax); the max norm
_WORDS = {"amsgrad": "corrected", "initial_average": "first"}   # optax's AMSGrad; Lee's first RMSProp step
_OPTIONAL = ("momentum_decay", "clip_eps", *_CLIP_KINDS)   # None: not used, or the convention's value


def _check_value(name, value, default):
    if (value is None and name in _OPTIONAL) or (isinstance(value, str) and value == _WORDS.get(name)):
        return
    if isinstance(default, (bool, np.bool_)):
        if not isinstance(value, (bool, np.bool_)):
            also = f' or "{_WORDS[name]}"' if name in _WORDS else ""
            raise TypeError(f"{name} must be True or False{also}, got {value!r}")
    elif name in _RANGES:
        low, high, brackets = _RANGES[name]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        above = value > low if brackets[0] == "(" else value >= low
        below = value < high if brackets[1] == ")" else value <= high
        if not (above and below) or (math.isinf(value) and name not in _INFINITE):   # NaN fails both
            raise ValueError(f"{name} must be in {brackets[0]}{low}, {high}{brackets[1]}, got {value!r}")


def _settings(family, convention, hyper):
    if family not in CONVENTIONS:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    if convention not in CONVENTIONS[family]:
        raise ValueError(f"convention for {family} must be one of {list(CONVENTIONS[family])}, got {convention!r}")
    settings = {**_COMMON[family], **CONVENTIONS[family][convention]}
    if "lr" not in hyper:
        raise TypeError("check_optimizer needs lr=, the learning rate the optimizer was built with")
    hyper = dict(hyper)
    if family != "rmsprop" and isinstance(hyper.get("bias_correction"), (bool, np.bool_, tuple, list)):
        # refnet's Adam(bias_correction=(m, v)): both corrections, or each one.
        both = hyper.pop("bias_correction")
        hyper["bias_correction_m"], hyper["bias_correction_v"] = (both, both) if isinstance(both, (bool, np.bool_)) \
            else both
    unknown = set(hyper) - set(settings) - {"lr"}
    if unknown:
        raise TypeError(f"unknown hyper-parameters for {family}: {sorted(unknown)}; known: lr, {', '.join(settings)}")
    for name, value in hyper.items():
        _check_value(name, value, settings.get(name))
    settings.update(hyper)
    if settings.get("nesterov") and "amsgrad" in settings and "momentum_decay" not in hyper:
        # Adam with Nesterov momentum is the convention's NAdam (refnet's Adam(nesterov=True)).
        nadam = CONVENTIONS["nadam"].get(convention, CONVENTIONS["nadam"]["optax"])
        settings["momentum_decay"] = nadam["momentum_decay"]
        settings["eps_hat"] = hyper.get("eps_hat", False)
    if settings.get("eps_hat") and (settings["eps_in_sqrt"] or settings["eps_root"]
                                    or settings["amsgrad"] == "corrected"):
        raise ValueError("eps_hat=True adds eps to the uncorrected root; it cannot be combined with eps_in_sqrt, "
                         "eps_root or amsgrad='corrected', which correct v before the root")
    kinds = [kind for kind in _CLIP_KINDS if settings[kind] is not None]
    if len(kinds) > 1:
        raise TypeError(f"at most one of {', '.join(_CLIP_KINDS)} may be set, got {kinds}")
    if not set(kinds) & set(_NORM_CLIP_KINDS) and (settings["clip_eps"] is not None
                                                   or settings["clip_norm_type"] != 2.0):
        raise ValueError(f"clip_eps and clip_norm_type shape the norm of clip_norm and global_clip_norm; "
                        f"got them with {kinds or 'no clipping'}")
    if settings["clip_eps"] is None:
        settings["clip_eps"] = _CLIP_EPS.get(convention, 0.0) if kinds == ["global_clip_norm"] else 0.0
    return settings


# --- the textbook updates, one step each, on flat float64 arrays --------------------------

def _divide(g, d):
    """g / d, and 0 where d is 0 (the stated policy for ε = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, g / np.where(d > 0, d, 1.0), 0.0)


def _decay_and_gradient(s, theta, g, lr):
    """Coupled L2 adds λθ to g (PyTorch's weight_decay); decoupled decay shrinks θ by ηλθ (AdamW, Keras)."""
    if not s["weight_decay"]:
        return g
    if s["decoupled"]:
        theta -= lr * s["weight_decay"] * theta
        return g
    return g + s["weight_decay"] * theta


def _clip(s, g, sizes):
    r"""Gradient clipping as the libraries write it: each element to :math:`[-c, c]`; or
    :math:`g \min(1, c / (\lVert g\rVert + \varepsilon))` with the :math:`p`-norm of each array
    (``clip_norm``, Keras), the RMS of each array (``clip_rms``, optax ``clip_by_block_rms``) or the
    norm of all arrays together (``global_clip_norm``: torch ``clip_grad_norm_``, ε = 1e-6)."""
    if s["clip_value"] is not None:
        return np.clip(g, -s["clip_value"], s["clip_value"])
    p = s["clip_norm_type"]

    def norm(x):
        return np.max(np.abs(x), initial=0.0) if p == math.inf else np.sum(np.abs(x) ** p) ** (1 / p)

    def scaled(x, n, c):
        return x * (1.0 if n + s["clip_eps"] == 0 else min(1.0, c / (n + s["clip_eps"])))

    if s["global_clip_norm"] is not None:
        return scaled(g, norm(g), s["global_clip_norm"])
    pieces = np.split(g, np.cumsum(sizes)[:-1])
    if s["clip_norm"] is not None:
        return np.concatenate([scaled(x, norm(x), s["clip_norm"]) for x in pieces])
    if s["clip_rms"] is not None:
        return np.concatenate([scaled(x, np.sqrt(np.mean(x * x)) if x.size else 0.0, s["clip_rms"]) for x in pieces])
    return g


def _sgd(s, theta, g, lr, state, t):
    r"""Lee/Sutskever/Keras: :math:`v \leftarrow \mu v - \eta g,\ \theta \leftarrow \theta + v`
    (Nesterov: :math:`\theta \leftarrow \theta + \mu v - \eta g`); PyTorch/optax:
    :math:`b \leftarrow \mu b + (1 - d) g` (:math:`b_1 = g`, d PyTorch's dampening),
    :math:`\theta \leftarrow \theta - \eta b` (Nesterov: :math:`\eta(g + \mu b)`); dampening in the velocity
    form as refnet's: :math:`v \leftarrow \mu v - \eta (1 - d) g` after the first step."""
    mu = s["momentum"]
    # PyTorch's first step copies g into the buffer undamped; in the velocity form likewise.
    undamped = 1 - s["dampening"] if state else 1.0
    if not mu:
        theta -= lr * g
    elif s["lr_in_momentum"]:
        v = state["v"] = mu * state.get("v", 0.0) - lr * undamped * g
        theta += mu * v - lr * g if s["nesterov"] else v
    else:
        b = state["b"] = mu * state.get("b", 0.0) + undamped * g
        theta -= lr * (g + mu * b if s["nesterov"] else b)


def _denominator(s, average):
    r""":math:`\sqrt{a + \varepsilon_{root}} + \varepsilon`, or :math:`\sqrt{a + \varepsilon}` with ε inside
    (optax's ``eps_root`` is an ε inside the root that may sit beside one outside)."""
    inside = average + s.get("eps_root", 0.0)
    return np.sqrt(inside + s["eps"]) if s["eps_in_sqrt"] else np.sqrt(inside) + s["eps"]


def _adagrad(s, theta, g, lr, state, t):
    r""":math:`G \leftarrow G + g^2,\ \theta \leftarrow \theta - \eta g / d`, :math:`G_0` the initial
    accumulator, :math:`d = \sqrt G + \varepsilon` or :math:`\sqrt{G + \varepsilon}` (Lee: ε = 0)."""
    state["G"] = state.get("G", s["initial_accumulator"]) + g * g
    theta -= lr * _divide(g, _denominator(s, state["G"]))


def _rmsprop(s, theta, g, lr, state, t):
    r""":math:`v \leftarrow \alpha v + (1-\alpha) g^2` from :math:`v_0` (Lee: :math:`v = (g^0)^2` at the
    first step, :math:`\sigma^0 = |g^0|`); optax's bias correction :math:`\hat v = v / (1 - \alpha^t)`;
    centered: :math:`v - \bar g^2`; then :math:`\theta \leftarrow \theta - \eta g/d`, or with momentum
    :math:`B \leftarrow \mu B + \eta g/d,\ \theta \leftarrow \theta - B` (lr inside, Keras, optax) or
    :math:`B \leftarrow \mu B + g/d,\ \theta \leftarrow \theta - \eta B` (PyTorch); Nesterov (optax's
    ``trace(nesterov=True)``) steps by :math:`u + \mu B` instead of :math:`B`, u the new term."""
    a = s["alpha"]
    if s["initial_average"] == "first" and t == 1:
        state["v"] = g * g
    else:
        start = 0.0 if s["initial_average"] == "first" else s["initial_average"]
        state["v"] = a * state.get("v", start) + (1 - a) * g * g
    correction = 1 - a**t if s["bias_correction"] else 1.0
    variance = state["v"] / correction
    rounding = 0.0
    if s["centered"]:
        state["mean"] = a * state.get("mean", 0.0) + (1 - a) * g
        mean_square = (state["mean"] / correction) ** 2
        # The two terms cancel, to exactly 0 at the bias-corrected first step (v/c = g² = (m/c)²):
        # another order of evaluation leaves a few ulp of them, which ε turns into another step.
        spread = _CANCELLATION_ULPS * np.finfo(np.float64).eps * (variance + mean_square)
        variance = variance - mean_square
    direction = _divide(g, _denominator(s, variance))
    if s["centered"]:
        # The true variance is never below 0 (Cauchy-Schwarz), so neither is the lower end.
        rounding = np.maximum(np.abs(_divide(g, _denominator(s, np.maximum(variance - spread, 0.0))) - direction),
                              np.abs(_divide(g, _denominator(s, variance + spread)) - direction))
    mu = s["momentum"]
    if not mu:
        theta -= lr * direction
        state["rounding"] = state.get("rounding", 0.0) + lr * rounding
        return
    term = lr * direction if s["lr_in_momentum"] else direction
    state["B"] = mu * state.get("B", 0.0) + term
    step = term + mu * state["B"] if s["nesterov"] else state["B"]
    theta -= step if s["lr_in_momentum"] else lr * step
    # The rounding bound goes through the buffer as the step does (a linear map with
    # coefficients >= 0), and stays in θ once taken.
    scale = 1.0 if s["lr_in_momentum"] else lr
    term_rounding = scale * rounding
    state["B_rounding"] = mu * state.get("B_rounding", 0.0) + term_rounding
    step_rounding = term_rounding + mu * state["B_rounding"] if s["nesterov"] else state["B_rounding"]
    state["rounding"] = state.get("rounding", 0.0) + step_rounding * (1.0 if s["lr_in_momentum"] else lr)


def _adam(s, theta, g, lr, state, t):
    r"""Kingma & Ba, Algorithm 1: :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
    :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`, :math:`\hat m = m/(1-\beta_1^t)`,
    :math:`\hat v = v/(1-\beta_2^t)` (each correction switchable),
    :math:`\theta \leftarrow \theta - \eta \hat m/(\sqrt{\hat v + \varepsilon_{root}} + \varepsilon)`; ε inside the
    root: :math:`\sqrt{\hat v + \varepsilon}`; the ε-hat form (Keras):
    :math:`\theta \leftarrow \theta - \eta \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t} \frac{m}{\sqrt v + \hat\varepsilon}`.
    AMSGrad divides by the running maximum of :math:`v` (PyTorch, Keras; corrected after) or of
    :math:`\hat v` (``"corrected"``, optax).  NAdam (Dozat; PyTorch ``NAdam``, Keras ``Nadam``, optax
    ``nadam``): :math:`\hat m = u_{t+1} m / (1 - \prod_{i \le t+1} u_i) + (1 - u_t) g / (1 - \prod_{i \le t} u_i)`,
    :math:`u_t = \beta_1 (1 - 0.96^{\psi t}/2)`, or :math:`u_t = \beta_1` (optax)."""
    b1, b2 = s["beta1"], s["beta2"]
    m = state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    v = state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    c1 = 1 - b1**t if s["bias_correction_m"] else 1.0
    c2 = 1 - b2**t if s["bias_correction_v"] else 1.0
    if s["amsgrad"] == "corrected":
        v_hat = state["v_max"] = np.maximum(state.get("v_max", 0.0), v / c2)
    else:
        if s["amsgrad"]:
            v = state["v_max"] = np.maximum(state.get("v_max", 0.0), v)
        v_hat = v / c2
    if s["nesterov"]:
        psi = s["momentum_decay"]
        u_now, u_next = (b1, b1) if psi is None else (b1 * (1 - 0.5 * 0.96 ** (psi * t)),
                                                      b1 * (1 - 0.5 * 0.96 ** (psi * (t + 1))))
        product = state["u_product"] = state.get("u_product", 1.0) * u_now
        if s["bias_correction_m"]:
            m_hat = u_next * m / (1 - product * u_next) + (1 - u_now) * g / (1 - product)
        else:
            m_hat = u_next * m + (1 - u_now) * g
    else:
        m_hat = m / c1
    if s["eps_hat"]:
        theta -= lr * math.sqrt(c2) * _divide(m_hat, np.sqrt(v) + s["eps"])
    else:
        theta -= lr * _divide(m_hat, _denominator(s, v_hat))


_UPDATES = {"sgd": _sgd, "adagrad": _adagrad, "rmsprop": _rmsprop, "adam": _adam, "adamw": _adam,
            "amsgrad": _adam, "nadam": _adam}


# How many ulp of the cancelling terms another evaluation of the centred variance may differ by.
_CANCELLATION_ULPS = 8


def textbook_trajectory(family, settings, theta0, grads, lrs, sizes=None):
    """θ after each step of the textbook update.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    settings : dict
        The switches and hyper-parameters (:data:`CONVENTIONS`); the options a convention
        leaves off (clipping, maximize, momentum, AMSGrad, NAdam, ``eps_root``, ...) may be
        left out, but a norm clipping needs its ``clip_eps``.
    theta0 : array_like of shape (n,)
        θ before the first step, flat; copied as float64.
    grads : sequence of array_like of shape (n,)
        ``grads[t]``, the gradient of step ``t + 1``.
    lrs : sequence of float
        ``lrs[t]``, the learning rate of step ``t + 1``; one per gradient.
    sizes : sequence of int, optional
        The sizes of the parameter arrays laid end to end in ``theta0``, for the per-array
        clipping (``clip_norm``, ``clip_rms``); by default one array.

    Returns
    -------
    ndarray of float64, shape (len(grads) + 1, n)
        Row ``t`` is θ after ``t`` steps; row 0 is ``theta0``.
    """
    return _trajectory(family, settings, theta0, grads, lrs, sizes)[0]


def _trajectory(family, settings, theta0, grads, lrs, sizes):
    """``textbook_trajectory``'s rows, and per row how far another float64 evaluation of an
    ill-conditioned formula (the centred variance) may move θ: 0 but there."""
    settings = {**_COMMON[family], **_OFF, **settings}
    theta, state = np.array(theta0, dtype=np.float64), {}
    sizes = [theta.size] if sizes is None else list(sizes)
    rows, rounding = [theta.copy()], [np.zeros_like(theta)]
    # A variant the search tries may take the root of a negative centered variance: its NaN
    # trajectory matches nothing, quietly.
    with np.errstate(invalid="ignore", over="ignore"):
        for t, (grad, lr) in enumerate(zip(grads, lrs), start=1):
            g = np.asarray(grad, dtype=np.float64)
            g = _clip(settings, -g if settings["maximize"] else g, sizes)
            g = _decay_and_gradient(settings, theta, g, lr)
            _UPDATES[family](settings, theta, g, lr, state, t)
            rows.append(theta.copy())
            rounding.append(np.broadcast_to(state.get("rounding", 0.0), theta.shape))
    return np.array(rows), np.array(rounding)


# --- driving the user's optimizer ----------------------------------------------------------

def _cases(seed):
    """θ₀ per array and ``STEPS`` gradients per array, the arrays' gradients of scales SCALES."""
    rng = np.random.default_rng(seed)
    theta0 = [rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape) for shape in _SHAPES]
    grads = [[scale * rng.standard_normal(shape) for shape, scale in zip(_SHAPES, SCALES)] for _ in range(STEPS)]
    return theta0, grads


def _learning_rates(lr, schedule):
    if schedule is None:
        return [lr] * STEPS
    if schedule == "step":
        return [lr * 0.5 ** (t // 10) for t in range(STEPS)]
    if callable(schedule):
        return [float(schedule(t)) for t in range(STEPS)]
    raise ValueError(f"schedule must be None, 'step' or a function of the step index t = 0, 1, ..., got {schedule!r}")


def _flat(arrays):
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])


def _user_trajectory(target, theta0, grads, lrs, schedule):
    params = [a.copy() for a in theta0]
    rows = [_flat(params)]
    is_object = callable(getattr(target, "step", None))
    if not is_object and not callable(target):
        raise TypeError("the optimizer must have .step(params, grads) or be a function step(params, grads, state, lr)")
    state = {}
    for grad, lr in zip(grads, lrs):
        grad = [g.copy() for g in grad]
        if is_object:
            if schedule is not None:
                try:
                    target.lr = lr
                except AttributeError as error:
                    raise TypeError("a schedule needs an optimizer object with a writable .lr") from error
            result = target.step(params, grad)
        else:
            result = target(params, grad, state, lr)
        if result is not None and not is_object:
            params = [np.array(r, dtype=np.float64) for r in result]
        rows.append(_flat(params))
    return np.array(rows)


def _first_difference(user, reference, rounding=None):
    """(step, flat index, got, want) of the first element of the first step where the
    displacements from θ₀ differ by more than the tolerance, widened by ``rounding`` (per step and
    element, from ``_trajectory``) if given, or None."""
    tolerance = CONFORMANCE["optimizer"]
    for t in range(1, len(user)):
        got, want = user[t] - user[0], reference[t] - reference[0]
        widen = rounding is not None and rounding[t].any()
        allowed = dataclasses.replace(tolerance, atol=tolerance.atol + rounding[t]) if widen else tolerance
        report = allowed.compare(got, want)
        if not report.holds:
            (index,) = report.first
            return t, index, got[index], want[index]
    return None


def _refuse_undecidable(reference, rounding):
    """A ValueError where float64 cannot tell the textbook step from others: the rounding allowance
    as large as the displacement itself (a centred variance that cancels to 0 beside ε = 0 or ε
    outside the root, at the first step of a bias-corrected RMSProp)."""
    with np.errstate(invalid="ignore"):
        undecidable = (rounding > 0) & ~(rounding < np.abs(reference - reference[0]))
    if undecidable.any():
        step = int(np.flatnonzero(undecidable.any(axis=1))[0])
        raise ValueError(
            f"this configuration cannot be checked in float64: at step {step} its centred variance cancels "
            f"(to 0 at the first step with bias correction), and with this ε the few ulp that rounding leaves "
            f"there change the step by as much as the step itself; put ε inside the root and above 0")


def _where(flat_index):
    sizes = np.cumsum([0] + [int(np.prod(shape)) for shape in _SHAPES])
    case = int(np.searchsorted(sizes, flat_index, side="right")) - 1
    index = np.unravel_index(flat_index - sizes[case], _SHAPES[case])
    return f"params[{case}] (gradient scale {SCALES[case]:g}) at {tuple(int(i) for i in index)}"


# --- naming what the code does -----------------------------------------------------------

# Switches whose alternatives the search tries, and how many may differ at once from the checked
# convention and from another convention (the product of all of them is thousands of trajectories).
_MOST_FROM_CHECKED, _MOST_FROM_OTHER = 3, 2
_SIZES = tuple(int(np.prod(shape)) for shape in _SHAPES)


def _choices(family, expected):
    """Each switch the search varies, with its alternatives to ``expected``'s value."""
    presets = CONVENTIONS[family].values()
    choices = {}
    for key in ("eps", "alpha", "initial_accumulator", "initial_average"):
        if key in expected:
            values = [*(p[key] for p in presets)] + ([1.0] if key == "initial_average" else [])  # TF1's RMSProp
            choices[key] = [v for v in dict.fromkeys(values) if v != expected[key]]
    for key in ("eps_in_sqrt", "bias_correction_m", "bias_correction_v", "eps_hat"):
        if key in expected:
            choices[key] = [not expected[key]]
    if "amsgrad" in expected:
        choices["amsgrad"] = [v for v in (False, True, "corrected") if v != expected["amsgrad"]]
        choices["eps_root"] = [v for v in dict.fromkeys((0.0, 1e-8, expected["eps"])) if v != expected["eps_root"]]
        choices["nesterov"] = [not expected["nesterov"]]
        choices["momentum_decay"] = [v for v in (None, 0.004, 1.0) if v != expected["momentum_decay"]]
    if family == "rmsprop":
        choices["bias_correction"] = [not expected["bias_correction"]]
    if expected.get("momentum"):
        choices["lr_in_momentum"] = [not expected["lr_in_momentum"]]
        if expected.get("dampening"):
            choices["dampening"] = [0.0]
        if family in ("sgd", "rmsprop"):
            choices["nesterov"] = [not expected["nesterov"]]
    if expected.get("weight_decay"):
        choices["decoupled"] = [not expected["decoupled"]]
    choices["maximize"] = [not expected["maximize"]]
    kind = next((k for k in _CLIP_KINDS if expected[k] is not None), None)
    if kind is not None:
        # Clipping left out, or another kind with the same threshold; ε on the norm or not.
        choices["clip"] = [(other, None) for other in (None, *_CLIP_KINDS) if other != kind and other != "clip_rms"]
        if kind in _NORM_CLIP_KINDS:
            choices["clip_eps"] = [v for v in (0.0, 1e-6) if v != expected["clip_eps"]]
    return choices


def _apply(variant, key, value):
    if key != "clip":
        return dict(variant, **{key: value})
    threshold = next(variant[k] for k in _CLIP_KINDS if variant[k] is not None)
    cleared = dict(variant, **{k: None for k in _CLIP_KINDS})
    return cleared if value[0] is None else dict(cleared, **{value[0]: threshold})


def _valid(variant):
    """The combinations ``_settings`` accepts (the ε-hat form corrects v after the root)."""
    return not (variant.get("eps_hat") and (variant.get("eps_in_sqrt") or variant.get("eps_root")
                                             or variant.get("amsgrad") == "corrected"))


def _variants(family, expected):
    """Variants of ``expected`` within a few switches of it, or of another convention's settings."""
    choices = _choices(family, expected)
    shared = set(_COMMON[family])
    bases = [(expected, _MOST_FROM_CHECKED)] + [
        (dict(expected, **{k: v for k, v in preset.items() if k not in shared}), _MOST_FROM_OTHER)
        for preset in CONVENTIONS[family].values()]
    seen = set()
    for base, most in bases:
        for count in range(most + 1):
            for keys in itertools.combinations(choices, count):
                for values in itertools.product(*(choices[k] for k in keys)):
                    variant = base
                    for key, value in zip(keys, values):
                        variant = _apply(variant, key, value)
                    identity = tuple(sorted((k, repr(v)) for k, v in variant.items()))
                    if identity not in seen and _valid(variant):
                        seen.add(identity)
                        yield variant


def _number(x):
    """1e-07 -> 1e-7."""
    return f"{x:g}".replace("e-0", "e-").replace("e+0", "e+")


def _clip_phrase(settings):
    kind = next((k for k in _CLIP_KINDS if settings[k] is not None), None)
    if kind is None:
        return "no gradient clipping"
    what = {"clip_value": "each element", "clip_norm": "the norm of each array", "clip_rms": "the RMS of each array",
            "global_clip_norm": "the global norm"}[kind]
    return f"gradients clipped by {what} at {_number(settings[kind])}"


def _describe(expected, variant, values=False):
    """How ``variant`` differs from ``expected``, in words (``values``: say ε's value wherever it is placed)."""
    phrases = []
    eps = f"ε = {_number(variant['eps'])}" if "eps" in variant else "ε"
    if "alpha" in variant and variant["alpha"] != expected["alpha"]:
        phrases.append(f"α = {_number(variant['alpha'])}")
    if variant.get("eps_hat") and not expected.get("eps_hat"):
        phrases.append(f"{eps} added to the uncorrected root (the ε-hat form)")
    elif expected.get("eps_hat") and not variant.get("eps_hat"):
        phrases.append(f"{eps} {'inside' if variant['eps_in_sqrt'] else 'outside'} the root, not the ε-hat form")
    elif "eps_in_sqrt" in variant and variant["eps_in_sqrt"] != expected["eps_in_sqrt"]:
        where = "inside" if variant["eps_in_sqrt"] else "outside"
        phrases.append(f"{eps} {where} the root" if values or variant["eps"] != expected["eps"]
                       else f"ε {where} the root")
    elif "eps" in variant and variant["eps"] != expected["eps"]:
        phrases.append(eps)
    if variant.get("eps_root", 0.0) != expected.get("eps_root", 0.0):
        phrases.append(f"ε_root = {_number(variant['eps_root'])} inside the root (optax's eps_root)")
    if "initial_average" in variant and variant["initial_average"] != expected["initial_average"]:
        phrases.append("σ⁰ = |g⁰| (Lee's first step)" if variant["initial_average"] == "first"
                       else f"the average starting at {_number(variant['initial_average'])}")
    if "initial_accumulator" in variant and variant["initial_accumulator"] != expected["initial_accumulator"]:
        phrases.append(f"the accumulator starting at {_number(variant['initial_accumulator'])}")
    for key, moment in (("bias_correction_m", "m"), ("bias_correction_v", "v")):
        if key in variant and variant[key] != expected[key]:
            phrases.append(f"{'' if variant[key] else 'no '}bias correction of {moment}")
    if isinstance(variant.get("bias_correction"), bool) and variant["bias_correction"] != expected["bias_correction"]:
        phrases.append("bias correction of v (optax's)" if variant["bias_correction"] else "no bias correction of v")
    if variant.get("amsgrad", False) != expected.get("amsgrad", False):
        phrases.append({False: "no AMSGrad", True: "AMSGrad (the maximum of v, as PyTorch and Keras)",
                        "corrected": "AMSGrad on the corrected v̂ (optax's)"}[variant["amsgrad"]])
    if variant.get("nesterov") != expected.get("nesterov"):
        if "amsgrad" in variant:
            phrases.append("Nesterov momentum (NAdam)" if variant["nesterov"] else "no Nesterov momentum (not NAdam)")
        else:
            phrases.append("Nesterov momentum" if variant["nesterov"] else "no Nesterov momentum")
    if variant.get("nesterov") and variant.get("momentum_decay") != expected.get("momentum_decay"):
        decay = variant["momentum_decay"]
        phrases.append("NAdam's momentum factor constant at β1 (optax's)" if decay is None else
                       f"NAdam's momentum schedule with ψ = {_number(decay)}"
                       + {0.004: " (PyTorch's)", 1.0: " (Keras')"}.get(decay, ""))
    if variant.get("dampening", 0.0) != expected.get("dampening", 0.0) and variant.get("momentum"):
        phrases.append(f"dampening τ = {_number(variant['dampening'])} (PyTorch's)" if variant["dampening"]
                       else "no dampening")
    if variant.get("lr_in_momentum") != expected.get("lr_in_momentum") and variant.get("momentum"):
        phrases.append(f"the learning rate {'inside' if variant['lr_in_momentum'] else 'outside'} the momentum buffer")
    if variant.get("decoupled") != expected.get("decoupled") and variant.get("weight_decay"):
        phrases.append("decoupled weight decay" if variant["decoupled"]
                       else "weight decay added to the gradient (coupled L2)")
    if variant["maximize"] != expected["maximize"]:
        phrases.append("the gradient negated (maximize: it ascends)" if variant["maximize"]
                       else "no maximize (it descends)")
    if any(variant[k] != expected[k] for k in _CLIP_KINDS):
        phrases.append(_clip_phrase(variant))
    elif variant["clip_eps"] != expected["clip_eps"] and any(variant[k] is not None for k in _NORM_CLIP_KINDS):
        phrases.append("no ε added to the norm (Keras', optax's)" if variant["clip_eps"] == 0 else
                       f"ε = {_number(variant['clip_eps'])} added to the norm"
                       + (" (PyTorch's clip_grad_norm_)" if variant["clip_eps"] == 1e-6 else ""))
    return phrases


def _convention_settings(family, expected, name):
    """``expected`` with convention ``name``'s switches and defaults (the user's hyper-parameters kept)."""
    shared = set(_COMMON[family])
    return dict(expected, **{k: v for k, v in CONVENTIONS[family][name].items() if k not in shared})


def _naming(family, convention, expected, variant):
    """(number of differences, the sentence) for ``variant``, told from the nearest convention."""
    title = _TITLES[family]
    differences = _describe(expected, variant)
    others = {name: _describe(_convention_settings(family, expected, name), variant, values=True)
              for name in CONVENTIONS[family] if name != convention}
    exact = [_NAMES[name] for name, phrases in others.items()
             if not phrases and CONVENTIONS[family][name] != CONVENTIONS[family][convention]]
    what = join_phrases(differences) if differences else f"the {convention} settings"
    if exact:
        return 0, f"Your {title} matches {join_phrases(exact)} ({what})."
    nearest = min(others, key=lambda name: len(others[name]), default=None)
    if nearest is not None and len(others[nearest]) < len(differences):
        return len(others[nearest]), f"Your {title} is {_NAMES[nearest]} with {join_phrases(others[nearest])}."
    return len(differences), f"Your {title} has {what}."


def _diagnosis(family, convention, expected, user, theta0, grads, lrs):
    """(the sentence naming what the code matches, the matched variant or None)."""
    best, best_key = None, None
    for variant in _variants(family, expected):
        # Without the rounding allowance: it is wide only where a variant's step is ill-conditioned
        # (ε = 0 beside a cancelling variance), and would let that variant "match" anything.
        if _first_difference(user, textbook_trajectory(family, variant, theta0, grads, lrs, _SIZES)) is None:
            count, sentence = _naming(family, convention, expected, variant)
            key = (count, len(_describe(expected, variant)))
            if best_key is None or key < best_key:
                best, best_key = (variant, sentence), key
    if best is None:
        return (f"It matches none of the {_TITLES[family]} variants tried (ε inside or outside the root and its "
                f"conventional values, each bias correction, AMSGrad, NAdam, the initial average, where the learning "
                f"rate sits, Nesterov, coupled or decoupled weight decay, clipping)."), None
    variant, sentence = best
    return sentence, variant


def check_optimizer(optimizer, family, convention="torch", *, schedule=None, seed=0, **hyper):
    r"""Check that ``optimizer`` performs the textbook update of ``family`` in ``convention``.

    Parameters
    ----------
    optimizer : object or function
        Either an optimizer object with ``step(params, grads)`` updating a list of
        float64 NumPy arrays in place (refnet's optimizers; a PyTorch optimizer
        through :func:`refnet.testing.adapters.torch_optimizer`), used for one
        run, so pass a fresh one; or a function ``step(params, grads, state, lr)``
        that updates ``params`` in place or returns the new list, keeping
        whatever it needs between steps in the dict ``state`` (empty at the first
        step; step ``t`` is the ``t``-th call).
    family : {"sgd", "adagrad", "rmsprop", "adam", "adamw", "amsgrad", "nadam"}
        ``"amsgrad"`` and ``"nadam"`` are Adam with the conventions' AMSGrad and NAdam
        (PyTorch ``Adam(amsgrad=True)`` / ``NAdam``, Keras ``Adam(amsgrad=True)`` /
        ``Nadam``, optax ``amsgrad`` / ``nadam``).
    convention : {"lee", "torch", "keras", "optax"}
        Whose defaults and switches the code should follow (see :data:`CONVENTIONS`).
    schedule : None, "step" or callable
        Change the learning rate between steps (``"step"`` halves it every 10
        steps; a function maps the step index 0, 1, ... to a learning rate), which
        tells apart a learning rate inside or outside the momentum buffer.  An
        optimizer object then needs a writable ``.lr``.
    **hyper
        ``lr`` (required) and anything the code was built with that differs from
        the convention's defaults: ``momentum``, ``nesterov``, ``dampening`` (SGD,
        PyTorch's), ``weight_decay``, ``beta1``, ``beta2``, ``eps``, ``alpha``,
        ``centered``, and the switches ``eps_in_sqrt``, ``eps_hat``,
        ``bias_correction_m``, ``bias_correction_v`` (or refnet's
        ``bias_correction=bool or (m, v)``), ``eps_root``, ``amsgrad`` (False, True: the
        maximum of :math:`v`, or ``"corrected"``: of :math:`\hat v`), ``momentum_decay``
        (NAdam's ψ, None for a constant :math:`\beta_1`), ``bias_correction``
        (RMSProp, optax's), ``initial_average`` (a number or ``"first"``),
        ``initial_accumulator``, ``lr_in_momentum``, ``decoupled``; gradient clipping
        before the update: ``clip_value``, ``clip_norm`` (each array), ``clip_rms``
        (each array), ``global_clip_norm``, with ``clip_norm_type`` (p, default 2) and
        ``clip_eps`` (ε added to the norm; default 1e-6 for ``global_clip_norm`` under
        ``"torch"``, as ``clip_grad_norm_``, else 0); ``maximize`` (PyTorch's: ascend).
        ``nesterov=True`` with an Adam family means the convention's NAdam (see ``"nadam"``).

    Raises
    ------
    ConformanceError
        Naming the first step and element that differ, the values, and the known
        variant the code follows instead (``error.matches``).
    TypeError, ValueError
        An unknown family, convention or hyper-parameter, or a hyper-parameter of the wrong
        type or out of its range (``lr`` missing, ``beta1`` NaN, ``eps`` negative, ...);
        a configuration float64 cannot check (a centred, bias-corrected RMSProp with ε = 0 or
        ε outside the root), before the optimizer runs.

    Examples
    --------
    >>> import refnet
    >>> from refnet.testing import check_optimizer
    >>> check_optimizer(refnet.RMSProp(lr=0.01, convention="keras"), "rmsprop", "keras", lr=0.01)
    """
    expected = _settings(family, convention, hyper)
    theta0, grads = _cases(seed)
    lrs = _learning_rates(expected["lr"], schedule)
    flat_grads = [_flat(g) for g in grads]
    reference, rounding = _trajectory(family, expected, _flat(theta0), flat_grads, lrs, _SIZES)
    _refuse_undecidable(reference, rounding)
    user = _user_trajectory(optimizer, theta0, grads, lrs, schedule)
    difference = _first_difference(user, reference, rounding)
    if difference is None:
        return
    step, index, got, want = difference
    sentence, variant = _diagnosis(family, convention, expected, user, _flat(theta0), flat_grads, lrs)
    raise ConformanceError(
        f"{_TITLES[family]} does not follow the {convention!r} convention: it first differs at step {step}, "
        f"{_where(index)}: θ moved by {float(got)!r} from θ₀, the {convention} update by {float(want)!r}. "
        f"{sentence}",
        matches=variant, step=step, index=index,
    )
