"""The conformance kit accepts correct optimizers, activations and dropout, and names each planted mistake.

"Correct" here: refnet's own implementations, hand-written NumPy transcriptions
and, where installed, torch.optim.  Each planted mistake is one the lecture's
conventions make easy (ε on the wrong side of the root, a missing bias
correction, the learning rate inside the momentum buffer, ReLU'(0) = 1, dropout
scaled twice), and the test checks the kit names that very mistake.
"""

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
