"""The conformance kit accepts correct optimizers, activations and dropout, and names each planted mistake.

"Correct" here: refnet's own implementations, hand-written NumPy transcriptions
and, where installed, torch.optim.  Each planted mistake is one the lecture's
conventions make easy (ε on the wrong side of the root, a missing bias
correction, the learning rate inside the momentum buffer, ReLU'(0) = 1, dropout
scaled twice), and the test checks the kit names that very mistake.
"""

import math

import numpy as np
import pytest

import refnet
from refnet.testing import (ConformanceError, check_activation, check_dropout, check_optimizer,
                            parametrize_with_checks)
from refnet.testing.adapters import torch_optimizer
from refnet.testing.specs import KERNELS, OPTIMIZERS

@pytest.mark.parametrize("convention", refnet.optim.CONVENTIONS)
@pytest.mark.parametrize("spec, hyper", [(spec, hyper) for spec in OPTIMIZERS for hyper in spec.configurations],
                         ids=lambda value: getattr(value, "family", None))
def test_refnet_optimizers_follow_their_conventions_under_a_schedule(spec, hyper, convention):
    check_optimizer(spec.cls(**hyper, convention=convention), spec.family, convention, schedule="step", **hyper)


def test_refnet_options_beyond_the_presets():
    check_optimizer(refnet.SGD(0.1, momentum=0.9, nesterov=True), "sgd", "torch", lr=0.1, momentum=0.9, nesterov=True)
    check_optimizer(refnet.SGD(0.1, momentum=0.9, nesterov=True, convention="keras"), "sgd", "keras",
                    schedule="step", lr=0.1, momentum=0.9, nesterov=True)
    check_optimizer(refnet.RMSProp(0.01, centered=True, momentum=0.9), "rmsprop", "torch",
                    lr=0.01, centered=True, momentum=0.9)
    check_optimizer(refnet.Adam(1e-3, weight_decay=0.01, decoupled=True), "adamw", "torch", lr=1e-3)


def torch_adam_step(params, grads, state, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam as Kingma & Ba's Algorithm 1, written from the paper (PyTorch's convention)."""
    t = state["t"] = state.get("t", 0) + 1
    for i, (theta, g) in enumerate(zip(params, grads)):
        m = state[i, "m"] = beta1 * state.get((i, "m"), 0) + (1 - beta1) * g
        v = state[i, "v"] = beta2 * state.get((i, "v"), 0) + (1 - beta2) * g**2
        theta -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)


def test_a_hand_written_adam_function_is_accepted_in_place_and_returning_new_params():
    check_optimizer(torch_adam_step, "adam", "torch", lr=1e-3, schedule="step")

    def functional(params, grads, state, lr):
        new = [p.copy() for p in params]
        torch_adam_step(new, grads, state, lr)
        return new

    check_optimizer(functional, "adam", "torch", lr=1e-3)


def test_adam_with_eps_inside_the_root_and_no_bias_correction_of_v_is_named():
    def step(params, grads, state, lr):
        t = state["t"] = state.get("t", 0) + 1
        for i, (theta, g) in enumerate(zip(params, grads)):
            m = state[i, "m"] = 0.9 * state.get((i, "m"), 0) + 0.1 * g
            v = state[i, "v"] = 0.999 * state.get((i, "v"), 0) + 0.001 * g**2
            theta -= lr * (m / (1 - 0.9**t)) / np.sqrt(v + 1e-8)

    with pytest.raises(ConformanceError, match="Your Adam has ε inside the root and no bias correction of v") as error:
        check_optimizer(step, "adam", "torch", lr=1e-3)
    assert error.value.step == 1
    assert error.value.matches["eps_in_sqrt"] and not error.value.matches["bias_correction_v"]


def test_a_missing_bias_correction_of_m_is_named():
    with pytest.raises(ConformanceError, match=r"differs at step 1,.*Your Adam has no bias correction of m\.$"):
        check_optimizer(lambda p, g, s, lr: torch_adam_step(p, g, s, lr * (1 - 0.9 ** (s.get("t", 0) + 1))),
                        "adam", "torch", lr=1e-3)


def test_rmsprop_with_eps_in_the_wrong_place_and_other_conventions_are_named():
    with pytest.raises(ConformanceError, match=r"Your RMSProp has ε inside the root\.$"):
        check_optimizer(refnet.RMSProp(0.01, eps_in_sqrt=True), "rmsprop", "torch", lr=0.01)
    keras = r"step 1, params\[0\] \(gradient scale 1\) at \(0,\).*matches Keras' \(α = 0.9 and ε = 1e-7 inside"
    with pytest.raises(ConformanceError, match=keras):
        check_optimizer(refnet.RMSProp(0.01, convention="keras"), "rmsprop", "torch", lr=0.01)
    with pytest.raises(ConformanceError, match=r"matches Lee's \(.*σ⁰ = \|g⁰\| \(Lee's first step\)\)"):
        check_optimizer(refnet.RMSProp(0.01, convention="lee"), "rmsprop", "torch", lr=0.01)
    with pytest.raises(ConformanceError, match=r"Adagrad matches Keras' and optax's \(.*accumulator starting at 0.1\)"):
        check_optimizer(refnet.Adagrad(0.1, convention="keras"), "adagrad", "torch", lr=0.1)


def centred_rmsprop_step(correction=True):
    """optax's rmsprop(centered=True, bias_correction=True, eps_in_sqrt=True) as a user may write it:
    the centred variance as (v - m^2 / c) / c, where the textbook takes v / c - (m / c)^2."""
    def step(params, grads, state, lr):
        t = state["t"] = state.get("t", 0) + 1
        c = 1 - 0.9**t if correction else 1.0
        for i, (theta, g) in enumerate(zip(params, grads)):
            v = state[i, "v"] = 0.9 * state.get((i, "v"), 0) + 0.1 * g * g
            m = state[i, "m"] = 0.9 * state.get((i, "m"), 0) + 0.1 * g
            theta -= lr * g / np.sqrt((v - m * m / c) / c + 1e-8)
    return step


CENTRED = dict(lr=1e-3, alpha=0.9, eps=1e-8, centered=True, bias_correction=True, eps_in_sqrt=True)


def test_rounding_of_an_ill_conditioned_step_is_allowed_and_mistakes_still_refused():
    """Regression: at step 1 the bias-corrected centred variance is g^2 - g^2 = 0, and the few ulp
    of g^2 that each float64 evaluation leaves, under eps = 1e-8 inside the root, moved the step by
    3e-9 relatively (optax's own rmsprop too): above the kit's rtol of 1e-9, so correct code was
    refused.  The allowance follows how far 8 ulp of the cancelling terms move the textbook step,
    so eps outside the root (a change of 1e4 times the step) is still refused at step 1, and the
    search that names a mistake does not use it (review: with it, an eps = 0 variant, whose
    allowance is as large as its step, "matched" a missing bias correction)."""
    check_optimizer(centred_rmsprop_step(), "rmsprop", "optax", **CENTRED)
    with pytest.raises(ConformanceError, match=r"differs at step 1,") as error:
        check_optimizer(refnet.RMSProp(1e-3, alpha=0.9, centered=True, bias_correction=True), "rmsprop", "optax",
                        **CENTRED)
    with pytest.raises(ConformanceError, match=r"differs at step 1,.*no bias correction") as error:
        check_optimizer(centred_rmsprop_step(correction=False), "rmsprop", "optax", **CENTRED)
    assert error.value.matches["eps"] == 1e-8


@pytest.mark.parametrize("eps, eps_in_sqrt", [(0.0, True), (1e-8, False)])
def test_a_configuration_float64_cannot_decide_is_refused_before_the_optimizer_runs(eps, eps_in_sqrt):
    """With eps = 0, or outside the root, the first step of a centred, bias-corrected RMSProp divides by
    the few ulp that rounding leaves of a variance that is exactly 0: any step would "conform"."""
    def never_called(params, grads, state, lr):
        raise AssertionError("the optimizer ran")

    with pytest.raises(ValueError, match="cannot be checked in float64: at step 1"):
        check_optimizer(never_called, "rmsprop", "optax", **{**CENTRED, "eps": eps, "eps_in_sqrt": eps_in_sqrt})


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_of_one_carries_the_allowance_without_inf_or_nan(nesterov):
    """Review: the allowance was scaled by (1 + mu) / (1 - mu), inf at mu = 1: a centred RMSProp that never
    moved conformed, and 0 * inf = NaN refused correct non-centred code.  It now goes through the buffer
    as the step does: 0 without a centred variance, finite with one, growing with the steps at mu = 1."""
    from refnet.testing.optimizers import _SIZES, _cases, _flat, _settings, _trajectory

    theta0, grads = _cases(0)
    for centered in (False, True):
        settings = _settings("rmsprop", "optax", {**CENTRED, "centered": centered, "momentum": 1.0,
                                                    "nesterov": nesterov})
        _, rounding = _trajectory("rmsprop", settings, _flat(theta0), [_flat(g) for g in grads], [1e-3] * len(grads),
                                  _SIZES)
        assert np.isfinite(rounding).all()
        assert (rounding == 0).all() != centered
    with pytest.raises(ConformanceError, match="differs at step 1"):
        check_optimizer(lambda params, grads, state, lr: None, "rmsprop", "optax",
                        **{**CENTRED, "momentum": 1.0, "nesterov": nesterov})


def test_the_learning_rate_inside_the_momentum_buffer_shows_only_under_a_schedule():
    keras_sgd = dict(lr=0.1, momentum=0.9)
    # Equal while the learning rate is constant (v = -lr b), so that passes.
    check_optimizer(refnet.SGD(**keras_sgd, convention="keras"), "sgd", "torch", **keras_sgd)
    with pytest.raises(ConformanceError, match=r"step 11,.*matches Lee's and Keras' \(the learning rate inside the "
                                               r"momentum buffer\)") as error:
        check_optimizer(refnet.SGD(**keras_sgd, convention="keras"), "sgd", "torch", schedule="step", **keras_sgd)
    assert error.value.step == 11   # the first step after the learning rate halves


def test_nesterov_and_coupled_decay_are_named_and_a_foreign_rule_matches_nothing():
    with pytest.raises(ConformanceError, match=r"Your SGD has no Nesterov momentum\.$"):
        check_optimizer(refnet.SGD(0.1, momentum=0.9), "sgd", "torch", lr=0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ConformanceError, match=r"AdamW has weight decay added to the gradient \(coupled L2\)\.$"):
        check_optimizer(refnet.Adam(1e-3, weight_decay=0.01), "adamw", "torch", lr=1e-3)

    def sign_descent(params, grads, state, lr):
        for theta, g in zip(params, grads):
            theta -= lr * np.sign(g)

    with pytest.raises(ConformanceError, match="matches none of the RMSProp variants tried") as error:
        check_optimizer(sign_descent, "rmsprop", "torch", lr=0.01)
    assert error.value.matches is None


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="family must be one of"):
        check_optimizer(torch_adam_step, "adamax", lr=1e-3)
    with pytest.raises(ValueError, match="convention for adamw must be one of"):
        check_optimizer(torch_adam_step, "adamw", "lee", lr=1e-3)
    with pytest.raises(TypeError, match="needs lr="):
        check_optimizer(torch_adam_step, "adam")
    with pytest.raises(TypeError, match=r"unknown hyper-parameters for adam: \['rho'\]"):
        check_optimizer(torch_adam_step, "adam", lr=1e-3, rho=0.9)
    # Regression (review of issue 11): values were taken unchecked, to fail later as NumPy errors.
    for hyper, error, message in [(dict(lr=-1.0), ValueError, r"lr must be in \[0.0, inf\], got -1.0"),
                                  (dict(lr="fast"), TypeError, "lr must be a real number"),
                                  (dict(lr=1e-3, beta1=float("nan")), ValueError, "beta1 must be in"),
                                  (dict(lr=1e-3, eps=math.inf), ValueError, "eps must be in"),
                                  (dict(lr=1e-3, amsgrad="max"), TypeError, 'amsgrad must be True or False or "corrected"'),
                                  (dict(lr=1e-3, nesterov=1), TypeError, "nesterov must be True or False"),
                                  (dict(lr=1e-3, global_clip_norm=-1.0), ValueError, "global_clip_norm must be in"),
                                  (dict(lr=1e-3, beta2=1.0), ValueError, r"beta2 must be in \[0.0, 1.0\), got 1.0"),
                                  (dict(lr=1e-3, clip_value=0.0), ValueError, r"clip_value must be in \(0.0, inf\]")]:
        with pytest.raises(error, match=message):
            check_optimizer(torch_adam_step, "adam", **hyper)
    with pytest.raises(TypeError, match="writable .lr"):
        check_optimizer(type("Fixed", (), {"step": lambda self, p, g: None, "lr": property(lambda s: 1)})(),
                        "sgd", lr=0.1, schedule="step")


TORCH_CASES = {
    "RMSprop": ("rmsprop", dict(lr=0.01), {}),
    "Adam": ("adam", dict(lr=1e-3), {}),
    "AdamW": ("adamw", dict(lr=1e-3), {}),
    "SGD": ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True), {}),
    "Adagrad": ("adagrad", dict(lr=0.1), {}),
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_torch_optimizers_are_recognised_as_the_torch_convention(name):
    torch = pytest.importorskip("torch")
    family, hyper, _ = TORCH_CASES[name]
    factory = getattr(torch.optim, name)
    check_optimizer(torch_optimizer(lambda ps: factory(ps, **hyper)), family, "torch", schedule="step", **hyper)


def test_torch_rmsprop_checked_as_keras_is_named_pytorchs():
    torch = pytest.importorskip("torch")
    with pytest.raises(ConformanceError, match=r"Your RMSProp matches PyTorch's \(α = 0.99 and ε = 1e-8 outside"):
        check_optimizer(torch_optimizer(lambda ps: torch.optim.RMSprop(ps, lr=0.01)), "rmsprop", "keras", lr=0.01)


# --- activations --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", [k for k in KERNELS if k.conformance], ids=lambda k: k.name)
def test_refnet_activations_conform(kernel, dtype, each_backend):
    check_activation(getattr(refnet, kernel.name), kernel.conformance, dtype=dtype)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_hand_written_formulas_conform(dtype):
    check_activation(_sigmoid, "sigmoid", dtype)
    check_activation(lambda z: _sigmoid(z) * (1 - _sigmoid(z)), "sigmoid_derivative", dtype)
    check_activation(lambda z: (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z)), "tanh", dtype)
    check_activation(lambda z: 1 - np.tanh(z) ** 2, "tanh_derivative", dtype)
    check_activation(lambda z: (z > 0).astype(z.dtype), "relu_derivative", dtype)
    check_activation(lambda z: np.where(z > 0, z, z.dtype.type(0.3) * z), "leaky_relu", dtype, slope=0.3)


def test_kink_and_slope_mistakes_are_named():
    with pytest.raises(ConformanceError, match=r"first at z = 0.0 \(input 0\): got 1.0, want 0.0.*Your "
                                               r"relu_derivative has ReLU'\(0\) = 1\.$") as error:
        check_activation(lambda z: (z >= 0).astype(z.dtype), "relu_derivative")
    assert error.value.matches == {"kink": 1.0}
    with pytest.raises(ConformanceError, match=r"ReLU'\(0\) = 1/2 \(JAX's"):
        check_activation(lambda z: np.where(z == 0, 0.5, z > 0), "relu_derivative")
    with pytest.raises(ConformanceError, match=r"Your leaky_relu has slope α = 0.3\.$"):
        check_activation(lambda z: np.where(z > 0, z, 0.3 * z), "leaky_relu")
    with pytest.raises(ConformanceError, match=r"Leaky ReLU'\(0\) = 1\.$"):
        check_activation(lambda z: np.where(z >= 0, 1.0, 0.01), "leaky_relu_derivative")
    with pytest.raises(ConformanceError, match="matches none"):
        check_activation(np.tanh, "sigmoid")


def test_activation_shape_dtype_and_argument_errors():
    with pytest.raises(ConformanceError, match="returned float64 of shape"):
        check_activation(lambda z: _sigmoid(z.astype(np.float64)), "sigmoid", np.float32)
    with pytest.raises(ValueError, match="name must be one of"):
        check_activation(_sigmoid, "swish")
    with pytest.raises(TypeError, match=r"relu takes no settings \['slope'\]"):
        check_activation(refnet.relu, "relu", slope=0.1)


# --- dropout -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["inverted", "scale-at-test"])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_refnet_dropout_conforms(p, mode):
    check_dropout(refnet.Dropout(p, mode=mode, seed=0), p, mode)


def masked(p, train_scale, test_scale, keep=None, seed=1):
    rng = np.random.default_rng(seed)
    keep = 1 - p if keep is None else keep
    return lambda x, training: np.where(rng.random(x.shape) < keep, train_scale * x, 0) if training else test_scale * x


def test_dropout_mistakes_are_named():
    p = 0.3
    check_dropout(masked(p, 1 / (1 - p), 1.0), p)
    with pytest.raises(ConformanceError, match=r"at test it multiplies by 0.7, want 1\. It matches dropout scaled "
                                               r"at both train and test"):
        check_dropout(masked(p, 1 / (1 - p), 1 - p), p)
    with pytest.raises(ConformanceError, match="It matches inverted dropout"):
        check_dropout(masked(p, 1 / (1 - p), 1.0), p, "scale-at-test")
    with pytest.raises(ConformanceError, match="It matches dropout scaled at neither"):
        check_dropout(masked(p, 1.0, 1.0), p)
    with pytest.raises(ConformanceError, match=r"dropped 0\.[67]\d* of the units.* keep probability"):
        check_dropout(masked(p, 1 / p, 1.0, keep=p), p)
    frozen = np.random.default_rng(0).random((200, 100)) >= p
    with pytest.raises(ConformanceError, match="dropped the same units"):
        check_dropout(lambda x, training: np.where(frozen, x / (1 - p), 0) if training else x, p)
    with pytest.raises(ConformanceError, match="not the inputs times one factor"):
        check_dropout(lambda x, training: np.where(np.random.default_rng().random(x.shape) >= p, x * x, 0)
                      if training else x, p)


# --- the pytest helper, used as another project would -------------------------------------

@parametrize_with_checks({
    "refnet-rmsprop": lambda: check_optimizer(refnet.RMSProp(0.01), "rmsprop", lr=0.01),
    "hand-written-adam": lambda: check_optimizer(torch_adam_step, "adam", lr=1e-3),
    "numpy-sigmoid": lambda: check_activation(_sigmoid, "sigmoid"),
    "refnet-dropout": lambda: check_dropout(refnet.Dropout(0.5, seed=0), 0.5),
})
def test_parametrize_with_checks_runs_each_check(check):
    check()


def test_parametrize_with_checks_names_each_case_and_refuses_a_list():
    mark = parametrize_with_checks({"a": lambda: None})
    assert mark.args[0] == "check" and mark.kwargs["ids"] == ["a"]
    with pytest.raises(TypeError, match="checks must be a dict"):
        parametrize_with_checks([lambda: None])
    assert issubclass(ConformanceError, AssertionError)


# --- every option of the four families, hand-written, and each planted mistake named ---------------

def adam_step(eps=1e-8, inside=False, correct_v=True, amsgrad=False, eps_root=0.0, nadam=None, beta1=0.9,
              beta2=0.999):
    """Adam written from the sources with the options as arguments (not the kit's transcription):
    ``amsgrad`` False / "v" (PyTorch: the maximum of v) / "v_hat" (optax: of the corrected v);
    ``nadam`` None, "optax" (u_t = beta1) or PyTorch's psi."""
    def step(params, grads, state, lr):
        t = state["t"] = state.get("t", 0) + 1
        if nadam is not None:
            u = [beta1 if nadam == "optax" else beta1 * (1 - 0.5 * 0.96 ** (nadam * k)) for k in (t, t + 1)]
            state["prod"] = state.get("prod", 1.0) * u[0]
        for i, (theta, g) in enumerate(zip(params, grads)):
            m = state[i, "m"] = beta1 * state.get((i, "m"), 0) + (1 - beta1) * g
            v = state[i, "v"] = beta2 * state.get((i, "v"), 0) + (1 - beta2) * g**2
            correction = 1 - beta2**t if correct_v else 1.0
            if amsgrad == "v":
                v = state[i, "max"] = np.maximum(state.get((i, "max"), 0), v)
            v_hat = v / correction
            if amsgrad == "v_hat":
                v_hat = state[i, "max"] = np.maximum(state.get((i, "max"), 0), v_hat)
            if nadam is None:
                m_hat = m / (1 - beta1**t)
            else:
                m_hat = u[1] * m / (1 - state["prod"] * u[1]) + (1 - u[0]) * g / (1 - state["prod"])
            root = np.sqrt(v_hat + eps_root + eps) if inside else np.sqrt(v_hat + eps_root) + eps
            theta -= lr * m_hat / root
    return step


def rmsprop_step(alpha=0.9, eps=1e-8, inside=True, momentum=0.0, nesterov=False, bias_correction=False):
    """optax.rmsprop written from optax/_src/alias.py and transform.py: scale_by_rms, then the learning
    rate, then trace(momentum, nesterov)."""
    def step(params, grads, state, lr):
        t = state["t"] = state.get("t", 0) + 1
        for i, (theta, g) in enumerate(zip(params, grads)):
            v = state[i, "v"] = alpha * state.get((i, "v"), 0) + (1 - alpha) * g**2
            if bias_correction:
                v = v / (1 - alpha**t)
            u = lr * g / (np.sqrt(v + eps) if inside else np.sqrt(v) + eps)
            if momentum:
                trace = state[i, "trace"] = u + momentum * state.get((i, "trace"), 0)
                u = u + momentum * trace if nesterov else trace
            theta -= u
    return step


def clipped(step, kind, c, eps=0.0):
    """``step`` after clipping the gradients: "global" (norm of all arrays + eps), "each" (each array)."""
    def run(params, grads, state, lr):
        if kind == "global":
            factor = min(1.0, c / (np.sqrt(sum(np.sum(g**2) for g in grads)) + eps))
            grads = [g * factor for g in grads]
        else:
            grads = [g * min(1.0, c / np.sqrt(np.sum(g**2))) for g in grads]
        return step(params, grads, state, lr)
    return run


def test_hand_written_versions_of_every_option_are_accepted():
    check_optimizer(adam_step(amsgrad="v"), "amsgrad", "torch", lr=1e-3, schedule="step")
    check_optimizer(adam_step(amsgrad="v"), "adam", "torch", lr=1e-3, amsgrad=True)
    check_optimizer(adam_step(amsgrad="v_hat"), "amsgrad", "optax", lr=1e-3)
    check_optimizer(adam_step(eps=0.0, eps_root=1e-8), "adam", "optax", lr=1e-3, eps=0.0, eps_root=1e-8)
    check_optimizer(adam_step(nadam=0.004), "nadam", "torch", lr=1e-3, schedule="step")
    check_optimizer(adam_step(nadam="optax"), "nadam", "optax", lr=1e-3)
    check_optimizer(adam_step(nadam=1.0, eps=1e-7), "nadam", "keras", lr=1e-3)
    check_optimizer(adam_step(inside=True, correct_v=False), "adam", "torch", lr=1e-3, eps_in_sqrt=True,
                    bias_correction=(True, False))
    check_optimizer(rmsprop_step(momentum=0.9, nesterov=True, bias_correction=True), "rmsprop", "optax",
                    schedule="step", lr=0.01, momentum=0.9, nesterov=True, bias_correction=True)
    check_optimizer(clipped(adam_step(), "global", 1.0, eps=1e-6), "adam", "torch", lr=1e-3, global_clip_norm=1.0)
    check_optimizer(clipped(adam_step(eps=1e-8), "each", 0.5), "adam", "optax", lr=1e-3, clip_norm=0.5)


@pytest.mark.parametrize(("step", "family", "convention", "hyper", "named"), [
    (adam_step(), "amsgrad", "torch", {}, r"Your AMSGrad has no AMSGrad\.$"),
    (adam_step(amsgrad="v_hat"), "amsgrad", "torch", {},
     r"Your AMSGrad matches optax's \(AMSGrad on the corrected v̂"),
    (adam_step(amsgrad="v"), "adam", "torch", {},
     r"Your Adam has AMSGrad \(the maximum of v, as PyTorch and Keras\)\.$"),
    (adam_step(eps=0.0, eps_root=1e-8), "adam", "optax", dict(eps=0.0),
     r"Your Adam has ε_root = 1e-8 inside the root \(optax's eps_root\)\.$"),
    (adam_step(nadam="optax"), "nadam", "torch", {}, r"Your NAdam matches optax's \(NAdam's momentum factor constant"),
    (adam_step(), "nadam", "torch", {}, r"Your NAdam has no Nesterov momentum \(not NAdam\)\.$"),
    (adam_step(nadam=0.004), "adam", "torch", {},
     r"Your Adam has Nesterov momentum \(NAdam\) and NAdam's momentum schedule with ψ = 0.004 \(PyTorch's\)\.$"),
    (adam_step(inside=True, correct_v=False), "adam", "torch", {},
     r"Your Adam has ε inside the root and no bias correction of v\.$"),
    (rmsprop_step(eps=1e-7, inside=False), "rmsprop", "torch", {},
     r"Your RMSProp is Keras' with ε = 1e-7 outside the root\.$"),
    (rmsprop_step(momentum=0.9), "rmsprop", "optax", dict(momentum=0.9, nesterov=True),
     r"Your RMSProp has no Nesterov momentum\.$"),
    (rmsprop_step(bias_correction=True), "rmsprop", "optax", {},
     r"Your RMSProp has bias correction of v \(optax's\)\.$"),
    (adam_step(), "adam", "torch", dict(global_clip_norm=1.0), r"Your Adam has no gradient clipping\.$"),
    (clipped(adam_step(), "each", 1.0), "adam", "torch", dict(global_clip_norm=1.0),
     r"Your Adam has gradients clipped by the norm of each array at 1\.$"),
    (clipped(adam_step(), "global", 1.0), "adam", "torch", dict(global_clip_norm=1.0),
     r"Your Adam has no ε added to the norm \(Keras', optax's\)\.$"),
])
def test_each_planted_mistake_is_named(step, family, convention, hyper, named):
    lr = 0.01 if family == "rmsprop" else 1e-3
    with pytest.raises(ConformanceError, match=named):
        check_optimizer(step, family, convention, lr=lr, **hyper)


def keras_adam_step(params, grads, state, lr, beta1=0.9, beta2=0.999, eps=1e-7):
    """Keras 3's Adam (keras/src/optimizers/adam.py): the corrections folded into the step size,
    eps added to the uncorrected root."""
    t = state["t"] = state.get("t", 0) + 1
    alpha = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
    for i, (theta, g) in enumerate(zip(params, grads)):
        m = state[i, "m"] = beta1 * state.get((i, "m"), 0) + (1 - beta1) * g
        v = state[i, "v"] = beta2 * state.get((i, "v"), 0) + (1 - beta2) * g**2
        theta -= alpha * m / (np.sqrt(v) + eps)


def test_nesterov_and_the_bias_correction_of_m_count_in_every_adam_form():
    """Regression (review of issue 11): the textbook's eps-hat form ignored Nesterov momentum, so
    Keras' plain Adam passed as an eps-hat NAdam; under Nesterov it ignored bias_correction of m."""
    check_optimizer(keras_adam_step, "adam", "keras", lr=1e-3)
    with pytest.raises(ConformanceError, match="Nesterov"):
        check_optimizer(keras_adam_step, "adam", "keras", lr=1e-3, nesterov=True, eps_hat=True)
    check_optimizer(refnet.Adam(1e-3, nesterov=True, eps_hat=True, convention="keras"), "adam", "keras",
                    lr=1e-3, nesterov=True, eps_hat=True)
    # ... and the search tries that form, so an eps-hat NAdam checked as Keras' Nadam is named.
    with pytest.raises(ConformanceError, match=r"Your NAdam has ε = 1e-7 added to the uncorrected root"):
        check_optimizer(refnet.Adam(1e-3, nesterov=True, eps_hat=True, convention="keras"), "nadam", "keras", lr=1e-3)
    uncorrected_m = dict(nesterov=True, bias_correction=(False, True))
    check_optimizer(refnet.Adam(1e-3, **uncorrected_m), "adam", "torch", lr=1e-3, **uncorrected_m)
    with pytest.raises(ConformanceError):
        check_optimizer(adam_step(nadam=0.004), "adam", "torch", lr=1e-3, **uncorrected_m)
    with pytest.raises(ValueError, match="eps_hat=True adds eps to the uncorrected root"):
        check_optimizer(keras_adam_step, "adam", "keras", lr=1e-3, eps_in_sqrt=True)


def test_sgd_dampening_is_torchs_and_clipping_must_be_one_kind():
    def damped(params, grads, state, lr):
        for i, (theta, g) in enumerate(zip(params, grads)):
            b = state[i] = 0.9 * state[i] + 0.5 * g if i in state else g.copy()
            theta -= lr * b

    check_optimizer(damped, "sgd", "torch", lr=0.1, momentum=0.9, dampening=0.5)
    # Regression (review of issue 11): a missing dampening was named as something else, and
    # refnet's dampening in the velocity form (convention="keras") was refused.
    with pytest.raises(ConformanceError, match=r"has no dampening\.$"):
        check_optimizer(refnet.SGD(0.1, momentum=0.9), "sgd", "torch", lr=0.1, momentum=0.9, dampening=0.5)
    check_optimizer(refnet.SGD(0.1, momentum=0.9, dampening=0.3, convention="keras"), "sgd", "keras",
                    schedule="step", lr=0.1, momentum=0.9, dampening=0.3)
    with pytest.raises(TypeError, match="at most one of clip_value"):
        check_optimizer(damped, "sgd", lr=0.1, clip_value=1.0, clip_norm=1.0)
    # Regression (review of issue 11): an eps or a norm type where no norm is taken was ignored.
    with pytest.raises(ValueError, match="clip_eps and clip_norm_type shape the norm"):
        check_optimizer(damped, "sgd", lr=0.1, clip_rms=1.0, clip_eps=1e-6)
    with pytest.raises(ValueError, match="clip_eps and clip_norm_type shape the norm"):
        check_optimizer(damped, "sgd", lr=0.1, clip_norm_type=1.0)


@pytest.mark.parametrize("convention", refnet.optim.CONVENTIONS)
@pytest.mark.parametrize("clip", [dict(clip_value=0.5), dict(clip_norm=1.0), dict(clip_rms=0.3),
                                  dict(global_clip_norm=1.0), dict(global_clip_norm=2.0, clip_norm_type=1.0)],
                         ids=lambda c: "-".join(map(str, c.values())))
def test_refnet_clipping_follows_the_kit(clip, convention):
    for cls, family, hyper in [(refnet.SGD, "sgd", dict(lr=0.1, momentum=0.9)), (refnet.Adagrad, "adagrad", dict(lr=0.1)),
                               (refnet.RMSProp, "rmsprop", dict(lr=0.01)), (refnet.Adam, "adam", dict(lr=1e-3))]:
        check_optimizer(cls(**hyper, **clip, convention=convention), family, convention, **hyper, **clip)


TORCH_OPTIONS = {
    "Adam-amsgrad": ("Adam", "amsgrad", dict(lr=1e-3), dict(amsgrad=True), None),
    "NAdam": ("NAdam", "nadam", dict(lr=1e-3), {}, None),
    "RMSprop-centered": ("RMSprop", "rmsprop", dict(lr=0.01), dict(centered=True, momentum=0.9), None),
    "SGD-dampening": ("SGD", "sgd", dict(lr=0.1), dict(momentum=0.9, dampening=0.3), None),
    "SGD-nesterov-clip": ("SGD", "sgd", dict(lr=0.1, global_clip_norm=1.0), dict(momentum=0.9, nesterov=True),
                          lambda ts: __import__("torch").nn.utils.clip_grad_norm_(ts, 1.0)),
    "Adam-clip-value": ("Adam", "adam", dict(lr=1e-3, clip_value=0.5), {},
                        lambda ts: __import__("torch").nn.utils.clip_grad_value_(ts, 0.5)),
}


@pytest.mark.parametrize("name", sorted(TORCH_OPTIONS))
def test_torch_options_are_recognised_as_the_torch_convention(name):
    torch = pytest.importorskip("torch")
    cls, family, hyper, options, before = TORCH_OPTIONS[name]
    lr = hyper["lr"]
    check_optimizer(torch_optimizer(lambda ps: getattr(torch.optim, cls)(ps, lr=lr, **options), before),
                    family, "torch", schedule="step", **hyper, **{k: v for k, v in options.items() if k != "amsgrad"})


# --- optax and Keras, where installed (the `conformance` extra) ------------------------------

OPTAX_CASES = {
    "adam": ("adam", dict(learning_rate=1e-3), dict(lr=1e-3)),
    "adamw": ("adamw", dict(learning_rate=1e-3), dict(lr=1e-3)),
    "rmsprop": ("rmsprop", dict(learning_rate=0.01), dict(lr=0.01)),
    "rmsprop-momentum-nesterov": ("rmsprop", dict(learning_rate=0.01, momentum=0.9, nesterov=True),
                                  dict(lr=0.01, momentum=0.9, nesterov=True)),
    "sgd-momentum": ("sgd", dict(learning_rate=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9)),
    "adagrad": ("adagrad", dict(learning_rate=0.1), dict(lr=0.1)),
    "amsgrad": ("amsgrad", dict(learning_rate=1e-3), dict(lr=1e-3)),
    "nadam": ("nadam", dict(learning_rate=1e-3), dict(lr=1e-3)),
}


@pytest.mark.parametrize("name", sorted(OPTAX_CASES))
def test_optax_optimizers_are_recognised_as_the_optax_convention(name):
    optax = pytest.importorskip("optax")
    from refnet.testing.adapters import optax_transformation

    alias, arguments, hyper = OPTAX_CASES[name]
    family = {"sgd": "sgd", "adagrad": "adagrad", "rmsprop": "rmsprop"}.get(alias, alias)
    injected = optax.inject_hyperparams(getattr(optax, alias))(**arguments)
    check_optimizer(optax_transformation(injected), family, "optax", schedule="step", **hyper)


def test_optax_clipping_and_eps_root_are_named():
    optax = pytest.importorskip("optax")
    from refnet.testing.adapters import optax_transformation

    chained = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    check_optimizer(optax_transformation(chained), "adam", "optax", lr=1e-3, global_clip_norm=1.0)
    chained = optax.chain(optax.clip_by_block_rms(0.5), optax.sgd(0.1))
    check_optimizer(optax_transformation(chained), "sgd", "optax", lr=0.1, clip_rms=0.5)
    with pytest.raises(ConformanceError, match=r"Your Adam has ε_root = 1e-8 inside the root \(optax's eps_root\)"):
        check_optimizer(optax_transformation(optax.adam(1e-3, eps=0.0, eps_root=1e-8)), "adam", "optax", lr=1e-3,
                        eps=0.0)
    with pytest.raises(TypeError, match="inject_hyperparams"):
        check_optimizer(optax_transformation(optax.sgd(0.1)), "sgd", "optax", lr=0.1, schedule="step")


KERAS_CASES = {
    "Adam": ("adam", dict(learning_rate=1e-3), dict(lr=1e-3)),
    "Adam-amsgrad": ("amsgrad", dict(learning_rate=1e-3, amsgrad=True), dict(lr=1e-3)),
    "AdamW": ("adamw", dict(learning_rate=1e-3), dict(lr=1e-3)),
    "RMSprop": ("rmsprop", dict(learning_rate=0.01, momentum=0.9), dict(lr=0.01, momentum=0.9)),
    "SGD": ("sgd", dict(learning_rate=0.1, momentum=0.9, nesterov=True), dict(lr=0.1, momentum=0.9, nesterov=True)),
    "Adagrad": ("adagrad", dict(learning_rate=0.1), dict(lr=0.1)),
    "Nadam": ("nadam", dict(learning_rate=1e-3), dict(lr=1e-3)),
}


@pytest.mark.parametrize("name", sorted(KERAS_CASES))
def test_keras_optimizers_are_recognised_as_the_keras_convention(name):
    import os

    if os.environ.setdefault("KERAS_BACKEND", "torch") != "torch":
        pytest.skip("the Keras adapter is tested with the torch backend")
    keras = pytest.importorskip("keras")
    from refnet.testing.adapters import keras_optimizer

    family, arguments, hyper = KERAS_CASES[name]
    cls = getattr(keras.optimizers, name.split("-")[0])
    check_optimizer(keras_optimizer(lambda: cls(**arguments)), family, "keras", schedule="step", **hyper)


def test_adapters_refuse_what_they_cannot_drive():
    with pytest.raises(TypeError, match="before_step must be a function"):
        torch_optimizer(lambda ps: None, before_step=1)
    pytest.importorskip("optax")
    from refnet.testing.adapters import optax_transformation

    with pytest.raises(TypeError, match="optax GradientTransformation"):
        optax_transformation(lambda g: g)


def test_maximize_is_recognised_and_its_absence_named():
    def ascend(params, grads, state, lr):
        for theta, g in zip(params, grads):
            theta += lr * g

    check_optimizer(ascend, "sgd", "torch", lr=0.1, maximize=True)
    with pytest.raises(ConformanceError, match=r"Your SGD has the gradient negated \(maximize: it ascends\)\.$"):
        check_optimizer(ascend, "sgd", "torch", lr=0.1)
    torch = pytest.importorskip("torch")
    check_optimizer(torch_optimizer(lambda ps: torch.optim.Adam(ps, lr=1e-3, maximize=True)), "adam", "torch",
                    lr=1e-3, maximize=True)
    check_optimizer(torch_optimizer(lambda ps: torch.optim.NAdam(ps, lr=1e-3)), "adam", "torch", lr=1e-3,
                    nesterov=True)


def test_textbook_trajectory_takes_the_options_a_convention_leaves_off_as_off():
    from refnet.testing.optimizers import textbook_trajectory

    settings = dict(eps=1e-8, eps_in_sqrt=False, eps_hat=False, bias_correction_m=True, bias_correction_v=True,
                    decoupled=False, beta1=0.9, beta2=0.999, weight_decay=0.0)
    rows = textbook_trajectory("adam", settings, np.zeros(2), [np.array([1.0, -2.0])], [0.1])
    np.testing.assert_allclose(rows[1], [-0.1, 0.1], rtol=1e-7)   # the first Adam step is about lr * sign(g)
