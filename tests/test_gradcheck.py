"""Analytic gradients of random networks match central differences; gradcheck itself catches bugs."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import refnet

# Central differences in float64 with eps = 1e-6 err by ~1e-10 absolutely (rounding
# of the loss / eps, plus eps^2 L'''), i.e. at most ~1e-6 in gradcheck's measure with
# atol = 1e-4 (3e-6 was the worst of 300 random networks); a wrong gradient gives ~1.
TOLERANCE = 1e-4

DENSE_ACTIVATIONS = [None, "sigmoid", "tanh", "relu", "leaky_relu"]
SEPARATE = ["none", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "prelu_shared", "maxout"]


@st.composite
def network_case(draw):
    """A random network (depth 1-3, widths 1-6, any activation), a loss, a batch of 1-5, seeded data."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    depth = draw(st.integers(1, 3))
    width = n_in = draw(st.integers(1, 6))
    layers = []
    for i in range(depth):
        separate = draw(st.sampled_from(SEPARATE))
        pieces = draw(st.integers(2, 3)) if separate == "maxout" else 1
        n_out = draw(st.integers(1, 6))
        # "classic" init: N(0, 1) biases keep every pre-activation off ReLU's kink.
        layers.append(refnet.Dense(width, n_out * pieces, activation=draw(st.sampled_from(DENSE_ACTIVATIONS)),
                                   init="classic", seed=rng))
        layers += {
            "none": [], "sigmoid": [refnet.Sigmoid()], "tanh": [refnet.Tanh()], "relu": [refnet.ReLU()],
            "leaky_relu": [refnet.LeakyReLU(0.1)], "prelu": [refnet.PReLU(n_out * pieces, init=0.3)],
            "prelu_shared": [refnet.PReLU(init=0.3)], "maxout": [refnet.Maxout(pieces)],
        }[separate]
        width = n_out
    loss = draw(st.sampled_from([None, "softmax_cross_entropy", "binary_cross_entropy_with_logits",
                                 "cross_entropy", "mean_squared_error"]))
    batch = draw(st.integers(1, 5))
    x = rng.standard_normal((batch, n_in))
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, width, batch)
    elif loss == "cross_entropy":
        layers.append(refnet.Sigmoid())   # the loss takes sigmoid outputs
        y = np.eye(width)[rng.integers(0, width, batch)]
    else:
        y = rng.random((batch, width))
    return refnet.Sequential(layers), x, y, loss


@given(network_case())
def test_random_networks_backpropagate_the_true_gradient(case):
    net, x, y, loss = case
    result = refnet.gradcheck(net, x, y, loss=loss)
    assert result.max_error < TOLERANCE, (result, net)


@pytest.mark.parametrize("backend", ["compiled", "reference"])
def test_a_batch_of_one_on_each_backend(backend):
    net = refnet.Sequential([refnet.Dense(3, 4, activation="sigmoid", init="classic", seed=0),
                             refnet.Maxout(2), refnet.Dense(2, 3, activation="tanh", seed=1)])
    with refnet.use_backend(backend):
        assert refnet.gradcheck(net, np.array([[0.5, -1.0, 2.0]]), [2], loss="softmax_cross_entropy").max_error < TOLERANCE


@given(st.sampled_from(sorted(refnet.losses.LOSSES)), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1))
@example("softmax_cross_entropy", 1, 1, 0)
def test_every_loss_gradient(name, rows, units, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, units))
    if name == "softmax_cross_entropy":
        y = rng.integers(0, units, rows)
    elif name == "cross_entropy":
        x, y = 1 / (1 + np.exp(-x)), np.eye(units)[rng.integers(0, units, rows)]
    else:
        y = rng.random((rows, units))
    assert refnet.gradcheck(refnet.losses.LOSSES[name], x, y).max_error < TOLERANCE


class SlightlyWrongDense(refnet.Dense):
    """A Dense layer whose weight gradient is 1% too large: the kind of bug gradcheck is for."""

    def backward(self, grad_output, input_gradient=True):
        grad_input = super().backward(grad_output, input_gradient)
        self.grad_weight *= 1.01
        return grad_input


def test_gradcheck_finds_a_wrong_gradient_and_says_where():
    net = refnet.Sequential([SlightlyWrongDense(3, 2, seed=0), refnet.Tanh(), refnet.Dense(2, 2, seed=1)])
    result = refnet.gradcheck(net, np.random.default_rng(0).standard_normal((4, 3)))
    assert result.where == "0.slightlywrongdense.weight"
    assert result.max_error == pytest.approx(0.01 / 1.01, rel=1e-3)
    assert result.analytic == pytest.approx(1.01 * result.numeric, rel=1e-6)
    wrong_derivative = refnet.Sequential([refnet.Dense(2, 2, seed=0), refnet.Sigmoid()])
    wrong_derivative.layers[1].__class__ = type("Wrong", (refnet.Sigmoid,), {"_backward": refnet.tanh_backward})
    assert refnet.gradcheck(wrong_derivative, np.ones((1, 2))).max_error > 0.1


def test_float32_is_refused_with_the_reason():
    with pytest.raises(TypeError, match="gradcheck needs float64: float32 rounds"):
        refnet.gradcheck(refnet.Dense(2, 2, dtype=np.float32), np.ones((1, 2)))
    with pytest.raises(TypeError, match="gradcheck needs float64"):
        refnet.gradcheck(refnet.softmax_cross_entropy, np.ones((1, 2), np.float32), [0])
    with pytest.raises(TypeError, match="target must be a layer"):
        refnet.gradcheck(3, np.ones((1, 2)))
    # Regression (hostile suite): a callable that is not a loss failed with an IndexError.
    with pytest.raises(TypeError, match=r"target must be a loss function returning \(loss, grad"):
        refnet.gradcheck(refnet.sigmoid, np.ones((1, 2)))


def test_gradcheck_leaves_inputs_and_parameters_exactly_as_they_were():
    net = refnet.Sequential([refnet.Dense(3, 2, activation="relu", seed=0), refnet.PReLU(2)])
    x = np.random.default_rng(0).standard_normal((2, 3))
    before = [p.copy() for p in net.parameters()] + [x.copy()]
    refnet.gradcheck(net, x)
    for got, want in zip(net.parameters() + [x], before):
        assert np.array_equal(got, want)


# --- fast mode and kinks -------------------------------------------------------------------

@given(network_case())
def test_fast_mode_accepts_the_random_networks_too(case):
    net, x, y, loss = case
    result = refnet.gradcheck(net, x, y, loss=loss, mode="fast")
    assert result.max_error < TOLERANCE, (result, net)


def test_fast_mode_finds_a_wrong_gradient_in_every_random_direction():
    net = refnet.Sequential([SlightlyWrongDense(3, 2, seed=0), refnet.Tanh(), refnet.Dense(2, 2, seed=1)])
    x = np.random.default_rng(0).standard_normal((4, 3))
    # A 1% error in one array's gradient shifts ∇L·u by 1% of that array's share of it,
    # more where the shares of the other arrays cancel.
    for seed in range(5):
        result = refnet.gradcheck(net, x, mode="fast", seed=seed)
        assert 1e-4 < result.max_error < 0.1 and result.where == "direction" and result.kinks == (), result
    assert refnet.gradcheck(net, x, mode="fast", directions=1).index == (0,)


class ReLUOneAtZero(refnet.ReLU):
    """ReLU with the other one-sided derivative at the kink, relu'(0) = 1: as valid a choice as 0."""

    def forward(self, x, training=False):
        self._z = np.asarray(x, dtype=np.float64)
        return super().forward(x, training)

    def backward(self, grad_output, input_gradient=True):
        return grad_output * (self._z >= 0)


class ReLUTwiceAboveZero(ReLUOneAtZero):
    def backward(self, grad_output, input_gradient=True):
        return grad_output * np.where(self._z > 0, 2.0, 0.0)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_check_at_a_relu_kink_reports_the_kink_not_a_failure(mode):
    x = np.array([[0.0, 1.0, -2.0]])
    for layer in (refnet.ReLU(), ReLUOneAtZero()):
        result = refnet.gradcheck(layer, x, mode=mode)
        assert result.max_error < TOLERANCE and result.kinks == (("input", (0, 0)),), result
    # Without the kink, the same layer gives no kinks; with it, a wrong derivative elsewhere still fails.
    assert refnet.gradcheck(refnet.ReLU(), np.array([[0.5, 1.0, -2.0]]), mode=mode).kinks == ()
    wrong = refnet.gradcheck(ReLUTwiceAboveZero(), x, mode=mode)
    assert wrong.max_error > 0.1 and wrong.index == (0, 1), wrong


def test_one_input_moving_several_units_through_their_kinks_at_once_is_not_a_failure():
    # A zero row into Dense(relu) with zero bias: moving one input moves all three units'
    # pre-activations through 0 together (31 of 50 seeds failed when such lines were judged
    # by their one-sided derivatives).
    for seed in range(10):
        x = np.random.default_rng(seed).standard_normal((3, 4))
        x[0] = 0.0
        result = refnet.gradcheck(refnet.Dense(4, 3, activation="relu", seed=seed), x, seed=seed)
        assert result.max_error < TOLERANCE and ("input", (0, 0)) in result.kinks, result


def test_a_kink_just_off_the_evaluation_point_is_judged_with_a_smaller_step():
    # 3e-7 and -4e-7 lie within eps = 1e-6 of the kink, beyond eps / 10; 5e-8 within eps / 10.
    x = np.array([[3e-7, -4e-7, 5e-8, 2.0]])
    result = refnet.gradcheck(refnet.ReLU(), x)
    assert result.max_error < 1e-8 and [index for _, index in result.kinks] == [(0, 0), (0, 1), (0, 2)]
    # Maxout's ties (the kink of a max) are kinks too.
    ties = refnet.gradcheck(refnet.Maxout(2), np.array([[0.5, 0.5, 1.0, -1.0]]))
    assert ties.max_error < 1e-8 and ties.kinks == (("input", (0, 0)), ("input", (0, 1)))


def test_smooth_wrong_gradients_are_not_excused_as_kinks():
    net = refnet.Sequential([SlightlyWrongDense(3, 2, seed=0), refnet.Tanh(), refnet.Dense(2, 2, seed=1)])
    result = refnet.gradcheck(net, np.random.default_rng(0).standard_normal((4, 3)))
    assert result.kinks == () and result.max_error > 1e-3


def test_mode_and_directions_are_checked():
    with pytest.raises(ValueError, match="mode must be 'full' or 'fast'"):
        refnet.gradcheck(refnet.ReLU(), np.ones((1, 2)), mode="quick")
    with pytest.raises(ValueError, match="directions"):
        refnet.gradcheck(refnet.ReLU(), np.ones((1, 2)), mode="fast", directions=0)


def test_eps_zero_is_refused():
    with pytest.raises(ValueError, match="eps must be positive"):
        refnet.gradcheck(refnet.Dense(2, 2), np.ones((1, 2)), np.zeros((1, 2)), loss="mean_squared_error", eps=0.0)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_atol_zero_with_exactly_zero_gradients_is_no_error(mode):
    """Regression: atol=0 (allowed) divided 0 by 0 where both derivatives are exactly 0, a dead
    ReLU here: "full" reported max_error nan and "fast" raised ZeroDivisionError."""
    net = refnet.Sequential([refnet.Dense(3, 2, activation="relu", seed=0)])
    net.layers[0].weight[...] = 1.0
    net.layers[0].bias[...] = 0.0
    x = -np.ones((2, 3))   # every unit's input is -3: dead, every gradient exactly 0
    result = refnet.gradcheck(net, x, mode=mode, atol=0.0)
    assert result.max_error == 0.0, result
