"""Dropout is an ensemble: the exact oracle, weight scaling, and the conversions between conventions."""

import copy
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refnet
from refnet.ensemble import convert_dropout, dropout_ensemble, dropout_parameter_groups

MODES = ["inverted", "scale-at-test"]


@st.composite
def linear_networks(draw):
    """Dense layers without non-linearities, Dropout layers (any p, any mode) in between and on the input."""
    widths = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    seed = draw(st.integers(0, 2**32 - 1))
    layers, units = [], 0
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        if draw(st.booleans()) and units + n_in <= 8:
            layers.append(refnet.Dropout(draw(st.floats(0.05, 0.9)), mode=draw(st.sampled_from(MODES)), seed=i))
            units += n_in
        layers.append(refnet.Dense(n_in, n_out, init="classic", seed=seed + i))
    x = np.random.default_rng(seed).normal(size=(3, widths[0]))
    return refnet.Sequential(layers), x


def _tolerance(ensemble):
    # Sums of 2^M weighted terms and products through a few layers: a few hundred
    # ulp of the largest magnitude involved is round-off, a real gap is far larger.
    return 1e-13 * (1 + np.abs(ensemble.arithmetic_mean).max())


def test_the_oracle_enumerates_every_mask_with_its_bernoulli_weight():
    """Two droppable input units, written out by hand: four masks, weights p^dropped (1-p)^kept."""
    p = 0.3
    net = refnet.Sequential([refnet.Dropout(p, mode="scale-at-test"), refnet.Dense(2, 1, seed=0), refnet.Sigmoid()])
    x = np.array([[1.5, -2.0]])
    w, b = net.layers[1].weight[:, 0], net.layers[1].bias[0]
    expected = sum(
        p ** (2 - sum(m)) * (1 - p) ** sum(m) / (1 + np.exp(-(m[0] * x[0, 0] * w[0] + m[1] * x[0, 1] * w[1] + b)))
        for m in itertools.product([0, 1], repeat=2)
    )
    result = dropout_ensemble(net, x)
    assert result.masks == 4
    np.testing.assert_allclose(result.arithmetic_mean[0, 0], expected, rtol=1e-14)


@given(linear_networks())
def test_weight_scaling_is_the_exact_ensemble_mean_of_a_linear_network(network_and_x):
    network, x = network_and_x
    result = dropout_ensemble(network, x)
    assert np.all(np.abs(result.weight_scaled - result.arithmetic_mean) <= _tolerance(result))


@given(linear_networks())
def test_under_a_softmax_weight_scaling_is_the_normalised_geometric_mean(network_and_x):
    network, x = network_and_x
    result = dropout_ensemble(network, x, output="softmax")
    np.testing.assert_allclose(result.weight_scaled, result.geometric_mean, rtol=1e-12, atol=1e-14)


def test_the_geometric_mean_survives_a_member_probability_that_underflows():
    """Logits 0 and 800 with the input kept (P_0 = e^-800 underflows to 0), 0 and 0 with it
    dropped: G_0 / G_1 = exp(0.5 (-800) + 0.5 log 1/2 - 0.5 log 1/2) = e^-400, not 0."""
    network = refnet.Sequential([refnet.Dropout(0.5, mode="scale-at-test"), refnet.Dense(1, 2)])
    network.layers[1].weight[...] = [[0.0, 800.0]]
    network.layers[1].bias[...] = 0.0
    result = dropout_ensemble(network, np.array([[1.0]]), output="softmax")
    expected = np.array([[math.exp(-400) / (1 + math.exp(-400)), 1 / (1 + math.exp(-400))]])
    np.testing.assert_allclose(result.geometric_mean, expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(result.weight_scaled, expected, rtol=1e-12, atol=0)


def test_under_a_softmax_it_is_not_the_arithmetic_mean():
    network = refnet.Sequential([refnet.Dropout(0.5), refnet.Dense(4, 3, init="classic", seed=7)])
    network.layers[1].weight *= 5   # logits far apart: the two means differ clearly
    result = dropout_ensemble(network, np.random.default_rng(0).normal(size=(5, 4)), output="softmax")
    np.testing.assert_allclose(result.arithmetic_mean.sum(axis=1), 1, rtol=1e-12)
    assert np.abs(result.weight_scaled - result.arithmetic_mean).max() > 1e-2


@pytest.mark.parametrize(
    "hidden",
    [lambda: refnet.Sigmoid(), lambda: refnet.ReLU(), lambda: refnet.Tanh(), lambda: refnet.Maxout(2)],
    ids=["sigmoid", "relu", "tanh", "maxout"],
)
@pytest.mark.parametrize("mode", MODES)
def test_a_non_linearity_after_dropout_leaves_a_measurable_gap(hidden, mode):
    layer = hidden()
    n_hidden = 6
    network = refnet.Sequential([
        refnet.Dropout(0.5, mode=mode),
        refnet.Dense(5, n_hidden, init="classic", seed=1),
        layer,
        refnet.Dropout(0.3, mode=mode),
        refnet.Dense(n_hidden // 2 if isinstance(layer, refnet.Maxout) else n_hidden, 2, init="classic", seed=2),
    ])
    result = dropout_ensemble(network, np.random.default_rng(3).normal(size=(4, 5)))
    assert result.gap > 1e-4


def test_relu_with_every_unit_active_has_no_gap():
    """All pre-activations positive under every mask: the ReLU network is linear there."""
    network = refnet.Sequential([
        refnet.Dropout(0.5), refnet.Dense(3, 4, seed=0), refnet.ReLU(), refnet.Dropout(0.4), refnet.Dense(4, 2, seed=1),
    ])
    dense = network.layers[1]
    dense.weight[...] = np.abs(dense.weight)
    dense.bias[...] = 1.0
    result = dropout_ensemble(network, np.abs(np.random.default_rng(0).normal(size=(3, 3))))
    assert result.gap <= _tolerance(result)


def test_the_oracle_refuses_too_many_units():
    network = refnet.Sequential([refnet.Dropout(0.5), refnet.Dense(20, 1)])
    with pytest.raises(ValueError, match="20 droppable units"):
        dropout_ensemble(network, np.ones((1, 20)))


# --- conversions between the conventions ---------------------------------------------------

def _network(mode, p=0.4, seed=0):
    return refnet.Sequential([
        refnet.Dropout(0.2, mode=mode, seed=10),
        refnet.Dense(5, 8, activation="tanh", seed=seed),
        refnet.Dropout(p, mode=mode, seed=11),
        refnet.Dense(8, 3, seed=seed + 1),
    ])


@pytest.mark.parametrize("source, target", [("scale-at-test", "inverted"), ("inverted", "scale-at-test")])
def test_converted_networks_predict_the_same(source, target):
    network = _network(source)
    x = np.random.default_rng(0).normal(size=(6, 5))
    converted = convert_dropout(network, target)
    assert all(layer.mode == target for layer in converted.layers if isinstance(layer, refnet.Dropout))
    np.testing.assert_allclose(converted.forward(x), network.forward(x), rtol=1e-14, atol=1e-15)
    # Only the weights after a Dropout layer changed, by exactly the keep factor.
    keep = 1 - network.layers[2].p
    factor = keep if target == "inverted" else 1 / keep
    np.testing.assert_allclose(converted.layers[3].weight, factor * network.layers[3].weight, rtol=1e-15)
    np.testing.assert_array_equal(converted.layers[3].bias, network.layers[3].bias)


def test_conversion_needs_a_dense_layer_after_each_dropout():
    with pytest.raises(ValueError, match="must be followed by a Dense layer"):
        convert_dropout(refnet.Sequential([refnet.Dense(3, 3), refnet.Dropout(0.5)]), "inverted")
    with pytest.raises(ValueError, match="must be followed by a Dense layer"):
        dropout_parameter_groups(refnet.Sequential([refnet.Dropout(0.5), refnet.ReLU(), refnet.Dense(3, 3)]))


def _train_side_by_side(lee, inverted, lee_optimizer, inverted_optimizer, steps=25):
    """Step both networks on the same batches; return the largest prediction gap seen."""
    rng = np.random.default_rng(1)
    x, labels = rng.normal(size=(64, 5)), rng.integers(0, 3, 64)
    x_test = rng.normal(size=(16, 5))
    worst = 0.0
    for step in range(steps):
        rows = rng.choice(64, 16, replace=False)
        for network, optimizer in ((lee, lee_optimizer), (inverted, inverted_optimizer)):
            _, grad = refnet.softmax_cross_entropy(network.forward(x[rows], training=True), labels[rows])
            network.backward(grad, input_gradient=False)
            optimizer.step(network.parameters(), network.gradients(),
                           names=[name for name, _ in network.named_parameters()])
        gap = np.abs(lee.forward(x_test) - inverted.forward(x_test)).max()
        worst = max(worst, gap / np.abs(lee.forward(x_test)).max())
    return worst


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_per_parameter_scales_make_the_two_conventions_train_alike(weight_decay):
    """Same initial weights (converted), same masks (same streams), same batches: same predictions."""
    lee = _network("scale-at-test")
    inverted = convert_dropout(lee, "inverted")
    groups = dropout_parameter_groups(lee, to="inverted")
    assert [g["params"] for g in groups] == [["1.dense.weight"], ["3.dense.weight"]]
    gap = _train_side_by_side(
        lee, inverted,
        refnet.SGD(0.1, weight_decay=weight_decay),
        refnet.SGD(0.1, weight_decay=weight_decay, groups=groups),
    )
    assert gap < 1e-12


def test_one_global_learning_rate_cannot_make_them_train_alike():
    lee = _network("scale-at-test")
    inverted = convert_dropout(lee, "inverted")
    keep = 1 - lee.layers[2].p
    gap = _train_side_by_side(lee, inverted, refnet.SGD(0.1), refnet.SGD(0.1 * keep**2))
    assert gap > 1e-3
    # ... nor the unscaled one.
    lee, inverted = _network("scale-at-test"), convert_dropout(_network("scale-at-test"), "inverted")
    assert _train_side_by_side(lee, inverted, refnet.SGD(0.1), refnet.SGD(0.1)) > 1e-3


def test_the_converted_copy_is_independent():
    network = _network("scale-at-test")
    before = copy.deepcopy(network.layers[3].weight)
    convert_dropout(network, "inverted").layers[3].weight[...] = 0
    np.testing.assert_array_equal(network.layers[3].weight, before)


def test_dropout_groups_scale_l1_too():
    """With L1 on, the two conventions still train alike (l1 / (1 - p) on the converted weights)."""
    lee = _network("scale-at-test")
    inverted = convert_dropout(lee, "inverted")
    groups = dropout_parameter_groups(lee)
    gap = _train_side_by_side(lee, inverted, refnet.SGD(0.1, momentum=0.5, l1=0.05),
                              refnet.SGD(0.1, momentum=0.5, l1=0.05, groups=groups))
    assert gap < 1e-12


def test_the_ensemble_oracle_returns_float64_for_float32_networks():
    network = refnet.Sequential([refnet.Dropout(0.5), refnet.Dense(3, 2, dtype=np.float32)])
    result = refnet.ensemble.dropout_ensemble(network, np.ones((2, 3), np.float32))
    assert result.arithmetic_mean.dtype == result.weight_scaled.dtype == np.float64
