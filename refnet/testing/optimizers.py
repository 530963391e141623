r"""Check an optimizer against the textbook update of a convention, and name the one it follows.

:func:`check_optimizer` runs the user's optimizer and a plain NumPy transcription
of the chosen convention side by side, on three parameter arrays whose random
gradients have scales 1, 1e-3 and 30 (at 1e-3, :math:`g^2 \approx 10^{-6}` is
comparable with the ε of every library, so where ε sits shows), for
:data:`STEPS` steps, in float64.  Where the two differ it searches a small space
of variants (ε inside or outside the root, ε among the conventions' defaults,
the bias corrections of :math:`m` and :math:`v` separately, Lee's
:math:`\sigma^0 = |g^0|`, the initial accumulator, the learning rate inside or
outside the momentum buffer, Nesterov, coupled or decoupled weight decay) and
names the one the code does follow.

The transcriptions below are the formulas as the sources write them
(:mod:`refnet.reference.optimizers` has their sources and refnet's bit-exact
versions); they are deliberately not refnet's kernels, so that refnet's
optimizers are checked by them too.  Where a denominator is exactly 0 (ε = 0
and every gradient so far 0) the step is 0.
"""

import itertools
import math

import numpy as np

from .conformance import ConformanceError, join_phrases
from .tolerances import CONFORMANCE

__all__ = ["check_optimizer", "CONVENTIONS", "FAMILIES", "STEPS", "SCALES", "textbook_trajectory"]

STEPS = 30
SCALES = (1.0, 1e-3, 30.0)
_SHAPES = ((3,), (2, 2), (3,))

# The switches and defaults of each convention, per family.  "optax" is optax's
# documented defaults (rmsprop: decay 0.9, eps 1e-8 inside the root; adagrad:
# initial_accumulator_value 0.1, eps 1e-7 inside; sgd: lr applied after the trace); Keras'
# weight_decay is decoupled in every optimizer.
_ADAM = dict(eps=1e-8, eps_in_sqrt=False, eps_hat=False, bias_correction_m=True, bias_correction_v=True,
             decoupled=False)
_ADAM_KERAS = dict(_ADAM, eps=1e-7, eps_hat=True)
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
    "adamw": {
        "torch": dict(_ADAM, weight_decay=0.01, decoupled=True),
        "keras": dict(_ADAM_KERAS, weight_decay=0.004, decoupled=True),
        "optax": dict(_ADAM, weight_decay=1e-4, decoupled=True),
    },
}
FAMILIES = tuple(CONVENTIONS)
_NAMES = {"lee": "Lee's", "torch": "PyTorch's", "keras": "Keras'", "optax": "optax's"}
_TITLES = {"sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSProp", "adam": "Adam", "adamw": "AdamW"}

# Hyper-parameters every convention shares, and which a user may set.
_COMMON = {
    "sgd": dict(momentum=0.0, nesterov=False, weight_decay=0.0),
    "adagrad": dict(weight_decay=0.0),
    "rmsprop": dict(momentum=0.0, centered=False, weight_decay=0.0),
    "adam": dict(beta1=0.9, beta2=0.999, weight_decay=0.0),
    "adamw": dict(beta1=0.9, beta2=0.999),
}


def _settings(family, convention, hyper):
    if family not in CONVENTIONS:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    if convention not in CONVENTIONS[family]:
        raise ValueError(f"convention for {family} must be one of {list(CONVENTIONS[family])}, got {convention!r}")
    settings = {**_COMMON[family], **CONVENTIONS[family][convention]}
    if "lr" not in hyper:
        raise TypeError("check_optimizer needs lr=, the learning rate the optimizer was built with")
    unknown = set(hyper) - set(settings) - {"lr"}
    if unknown:
        raise TypeError(f"unknown hyper-parameters for {family}: {sorted(unknown)}; known: lr, {', '.join(settings)}")
    settings.update(hyper)
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


def _sgd(s, theta, g, lr, state, t):
    r"""Lee/Sutskever/Keras: :math:`v \leftarrow \mu v - \eta g,\ \theta \leftarrow \theta + v`
    (Nesterov: :math:`\theta \leftarrow \theta + \mu v - \eta g`); PyTorch/optax:
    :math:`b \leftarrow \mu b + g,\ \theta \leftarrow \theta - \eta b` (Nesterov: :math:`\eta(g + \mu b)`)."""
    mu = s["momentum"]
    if not mu:
        theta -= lr * g
    elif s["lr_in_momentum"]:
        v = state["v"] = mu * state.get("v", 0.0) - lr * g
        theta += mu * v - lr * g if s["nesterov"] else v
    else:
        b = state["b"] = mu * state.get("b", 0.0) + g
        theta -= lr * (g + mu * b if s["nesterov"] else b)


def _denominator(s, average):
    return np.sqrt(average + s["eps"]) if s["eps_in_sqrt"] else np.sqrt(average) + s["eps"]


def _adagrad(s, theta, g, lr, state, t):
    r""":math:`G \leftarrow G + g^2,\ \theta \leftarrow \theta - \eta g / d`, :math:`G_0` the initial
    accumulator, :math:`d = \sqrt G + \varepsilon` or :math:`\sqrt{G + \varepsilon}` (Lee: ε = 0)."""
    state["G"] = state.get("G", s["initial_accumulator"]) + g * g
    theta -= lr * _divide(g, _denominator(s, state["G"]))


def _rmsprop(s, theta, g, lr, state, t):
    r""":math:`v \leftarrow \alpha v + (1-\alpha) g^2` from :math:`v_0` (Lee: :math:`v = (g^0)^2` at the
    first step, :math:`\sigma^0 = |g^0|`); centered: :math:`v - \bar g^2`; then
    :math:`\theta \leftarrow \theta - \eta g/d`, or with momentum :math:`B \leftarrow \mu B + \eta g/d,\
    \theta \leftarrow \theta - B` (lr inside, Keras) or :math:`B \leftarrow \mu B + g/d,\ \theta \leftarrow
    \theta - \eta B` (PyTorch)."""
    a = s["alpha"]
    if s["initial_average"] == "first" and t == 1:
        state["v"] = g * g
    else:
        start = 0.0 if s["initial_average"] == "first" else s["initial_average"]
        state["v"] = a * state.get("v", start) + (1 - a) * g * g
    variance = state["v"]
    if s["centered"]:
        state["mean"] = a * state.get("mean", 0.0) + (1 - a) * g
        variance = variance - state["mean"] ** 2
    direction = _divide(g, _denominator(s, variance))
    mu = s["momentum"]
    if not mu:
        theta -= lr * direction
    elif s["lr_in_momentum"]:
        state["B"] = mu * state.get("B", 0.0) + lr * direction
        theta -= state["B"]
    else:
        state["B"] = mu * state.get("B", 0.0) + direction
        theta -= lr * state["B"]


def _adam(s, theta, g, lr, state, t):
    r"""Kingma & Ba, Algorithm 1: :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
    :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`, :math:`\hat m = m/(1-\beta_1^t)`,
    :math:`\hat v = v/(1-\beta_2^t)` (each correction switchable),
    :math:`\theta \leftarrow \theta - \eta \hat m/(\sqrt{\hat v} + \varepsilon)`; ε inside the root:
    :math:`\sqrt{\hat v + \varepsilon}`; the ε-hat form (Keras):
    :math:`\theta \leftarrow \theta - \eta \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t} \frac{m}{\sqrt v + \hat\varepsilon}`."""
    b1, b2 = s["beta1"], s["beta2"]
    m = state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    v = state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    c1 = 1 - b1**t if s["bias_correction_m"] else 1.0
    c2 = 1 - b2**t if s["bias_correction_v"] else 1.0
    if s["eps_hat"]:
        theta -= lr * math.sqrt(c2) / c1 * _divide(m, np.sqrt(v) + s["eps"])
    else:
        theta -= lr * _divide(m / c1, _denominator(s, v / c2))


_UPDATES = {"sgd": _sgd, "adagrad": _adagrad, "rmsprop": _rmsprop, "adam": _adam, "adamw": _adam}


def textbook_trajectory(family, settings, theta0, grads, lrs):
    """θ after each step of the textbook update: ``(len(grads) + 1, n)``, row 0 is ``theta0``.

    ``theta0`` is a flat float64 array; ``grads[t]`` the gradient of step
    ``t + 1``; ``lrs[t]`` its learning rate.
    """
    theta, state = np.array(theta0, dtype=np.float64), {}
    rows = [theta.copy()]
    for t, (grad, lr) in enumerate(zip(grads, lrs), start=1):
        g = _decay_and_gradient(settings, theta, np.asarray(grad, dtype=np.float64), lr)
        _UPDATES[family](settings, theta, g, lr, state, t)
        rows.append(theta.copy())
    return np.array(rows)


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


def _first_difference(user, reference):
    """(step, flat index, got, want) of the first element of the first step where the
    displacements from θ₀ differ, or None."""
    tolerance = CONFORMANCE["optimizer"]
    for t in range(1, len(user)):
        got, want = user[t] - user[0], reference[t] - reference[0]
        report = tolerance.compare(got, want)
        if not report.holds:
            (index,) = report.first
            return t, index, got[index], want[index]
    return None


def _where(flat_index):
    sizes = np.cumsum([0] + [int(np.prod(shape)) for shape in _SHAPES])
    case = int(np.searchsorted(sizes, flat_index, side="right")) - 1
    index = np.unravel_index(flat_index - sizes[case], _SHAPES[case])
    return f"params[{case}] (gradient scale {SCALES[case]:g}) at {tuple(int(i) for i in index)}"


# --- naming what the code does -----------------------------------------------------------

def _variants(family, expected):
    """Every combination of the switches and the conventions' defaults, from ``expected``."""
    presets = CONVENTIONS[family].values()
    choices = {}
    for key in ("eps", "alpha", "initial_accumulator", "initial_average"):
        if key in expected:
            values = [expected[key], *(p[key] for p in presets)]
            if key == "initial_average":
                values.append(1.0)  # TensorFlow 1's RMSProp
            choices[key] = list(dict.fromkeys(values))
    for key in ("eps_in_sqrt", "bias_correction_m", "bias_correction_v", "eps_hat"):
        if key in expected:
            choices[key] = [expected[key], not expected[key]]
    if expected.get("momentum"):
        choices["lr_in_momentum"] = [expected["lr_in_momentum"], not expected["lr_in_momentum"]]
        if family == "sgd":
            choices["nesterov"] = [expected["nesterov"], not expected["nesterov"]]
    if expected.get("weight_decay"):
        choices["decoupled"] = [expected["decoupled"], not expected["decoupled"]]
    keys = list(choices)
    for values in itertools.product(*(choices[k] for k in keys)):
        variant = dict(expected, **dict(zip(keys, values)))
        if not (variant.get("eps_hat") and variant.get("eps_in_sqrt")):
            yield variant


def _number(x):
    """1e-07 -> 1e-7."""
    return f"{x:g}".replace("e-0", "e-").replace("e+0", "e+")


def _describe(expected, variant):
    """How ``variant`` differs from ``expected``, in words."""
    phrases = []
    if "alpha" in variant and variant["alpha"] != expected["alpha"]:
        phrases.append(f"α = {_number(variant['alpha'])}")
    if variant.get("eps_hat") and not expected.get("eps_hat"):
        phrases.append(f"ε = {_number(variant['eps'])} added to the uncorrected root (the ε-hat form)")
    elif expected.get("eps_hat") and not variant.get("eps_hat"):
        phrases.append(f"ε = {_number(variant['eps'])} {'inside' if variant['eps_in_sqrt'] else 'outside'} the root, "
                       "not the ε-hat form")
    elif "eps_in_sqrt" in variant and variant["eps_in_sqrt"] != expected["eps_in_sqrt"]:
        where = "inside" if variant["eps_in_sqrt"] else "outside"
        phrases.append(f"ε = {_number(variant['eps'])} {where} the root" if variant["eps"] != expected["eps"]
                       else f"ε {where} the root")
    elif "eps" in variant and variant["eps"] != expected["eps"]:
        phrases.append(f"ε = {_number(variant['eps'])}")
    if "initial_average" in variant and variant["initial_average"] != expected["initial_average"]:
        phrases.append("σ⁰ = |g⁰| (Lee's first step)" if variant["initial_average"] == "first"
                       else f"the average starting at {_number(variant['initial_average'])}")
    if "initial_accumulator" in variant and variant["initial_accumulator"] != expected["initial_accumulator"]:
        phrases.append(f"the accumulator starting at {_number(variant['initial_accumulator'])}")
    for key, moment in (("bias_correction_m", "m"), ("bias_correction_v", "v")):
        if key in variant and variant[key] != expected[key]:
            phrases.append(f"{'' if variant[key] else 'no '}bias correction of {moment}")
    if variant.get("lr_in_momentum") != expected.get("lr_in_momentum"):
        phrases.append(f"the learning rate {'inside' if variant['lr_in_momentum'] else 'outside'} the momentum buffer")
    if variant.get("nesterov") != expected.get("nesterov"):
        phrases.append("Nesterov momentum" if variant["nesterov"] else "no Nesterov momentum")
    if variant.get("decoupled") != expected.get("decoupled"):
        phrases.append("decoupled weight decay" if variant["decoupled"]
                       else "weight decay added to the gradient (coupled L2)")
    return phrases


def _conventions_matching(family, variant, convention):
    """The other conventions whose switches are ``variant``'s where they matter and differ from the checked one's."""
    # Weight decay is the user's to set; without momentum, where lr sits cannot matter, nor
    # coupled or decoupled decay without decay.
    ignored = {"weight_decay"}
    ignored |= {"lr_in_momentum"} if not variant.get("momentum") else set()
    ignored |= {"decoupled"} if not variant.get("weight_decay") else set()
    presets = CONVENTIONS[family]
    names = []
    for name, preset in presets.items():
        active = {k: v for k, v in preset.items() if k not in ignored}
        checked = {k: v for k, v in presets[convention].items() if k not in ignored}
        if active != checked and all(variant.get(k) == v for k, v in active.items()):
            names.append(_NAMES[name])
    return names


def _diagnosis(family, convention, expected, user, theta0, grads, lrs):
    """(the sentence naming what the code matches, the matched variant or None)."""
    title = _TITLES[family]
    best, best_key = None, None
    for variant in _variants(family, expected):
        if _first_difference(user, textbook_trajectory(family, variant, theta0, grads, lrs)) is None:
            differences = _describe(expected, variant)
            named = _conventions_matching(family, variant, convention)
            key = (len(differences), not named)
            if best_key is None or key < best_key:
                best, best_key = (variant, differences, named), key
    if best is None:
        return (f"It matches none of the {title} variants tried (ε inside or outside the root and its "
                f"conventional values, each bias correction, the initial average, where the learning rate "
                f"sits, Nesterov, coupled or decoupled weight decay)."), None
    variant, differences, named = best
    what = join_phrases(differences) if differences else f"the {convention} settings"
    if named:
        return f"Your {title} matches {join_phrases(named)} ({what}).", variant
    return f"Your {title} has {what}.", variant


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
    family : {"sgd", "adagrad", "rmsprop", "adam", "adamw"}
    convention : {"lee", "torch", "keras", "optax"}
        Whose defaults and switches the code should follow (see :data:`CONVENTIONS`).
    schedule : None, "step" or callable
        Change the learning rate between steps (``"step"`` halves it every 10
        steps; a function maps the step index 0, 1, ... to a learning rate), which
        tells apart a learning rate inside or outside the momentum buffer.  An
        optimizer object then needs a writable ``.lr``.
    **hyper
        ``lr`` (required) and anything the code was built with that differs from
        the convention's defaults: ``momentum``, ``nesterov``, ``weight_decay``,
        ``beta1``, ``beta2``, ``eps``, ``alpha``, ``centered``, and the switches
        ``eps_in_sqrt``, ``eps_hat``, ``bias_correction_m``, ``bias_correction_v``,
        ``initial_average`` (a number or ``"first"``), ``initial_accumulator``,
        ``lr_in_momentum``, ``decoupled``.

    Raises
    ------
    ConformanceError
        Naming the first step and element that differ, the values, and the known
        variant the code follows instead (``error.matches``).

    >>> import refnet
    >>> from refnet.testing import check_optimizer
    >>> check_optimizer(refnet.RMSProp(lr=0.01, convention="keras"), "rmsprop", "keras", lr=0.01)
    """
    expected = _settings(family, convention, hyper)
    theta0, grads = _cases(seed)
    lrs = _learning_rates(expected["lr"], schedule)
    flat_grads = [_flat(g) for g in grads]
    user = _user_trajectory(optimizer, theta0, grads, lrs, schedule)
    reference = textbook_trajectory(family, expected, _flat(theta0), flat_grads, lrs)
    difference = _first_difference(user, reference)
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
