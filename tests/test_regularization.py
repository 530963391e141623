"""Regularisers in the loss (L2, L1) and early stopping."""

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refnet
from refnet.network import PlainSGD
from refnet.regularizers import L1, L2
from refnet.testing.strategies import arrays


def _pairs(data):
    weight = data.draw(arrays(np.float64, (3, 2), min_value=-5, max_value=5))
    bias = data.draw(arrays(np.float64, 2, min_value=-5, max_value=5))
    return [("0.dense.weight", weight), ("0.dense.bias", bias)]


@given(data=st.data(), lam=st.floats(0, 10), include_biases=st.booleans())
def test_l2_value_and_gradient(data, lam, include_biases):
    pairs = _pairs(data)
    grads = [np.ones((3, 2)), np.ones(2)]
    penalty = L2(lam, include_biases=include_biases).add_gradient(pairs, grads)
    weight, bias = pairs[0][1], pairs[1][1]
    expected = lam / 2 * (np.sum(weight**2) + (np.sum(bias**2) if include_biases else 0))
    np.testing.assert_allclose(penalty, expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(grads[0], 1 + lam * weight, rtol=1e-15)
    np.testing.assert_allclose(grads[1], 1 + lam * bias if include_biases else 1, rtol=1e-15)


@given(data=st.data(), lam=st.floats(0, 10))
def test_l1_value_and_gradient_with_sgn_zero_zero(data, lam):
    pairs = _pairs(data)
    pairs[0][1][0, 0] = 0.0   # an exact zero gets no push
    grads = [np.zeros((3, 2)), np.zeros(2)]
    penalty = L1(lam).add_gradient(pairs, grads)
    weight = pairs[0][1]
    np.testing.assert_allclose(penalty, lam * np.abs(weight).sum(), rtol=1e-12)
    expected = np.where(weight > 0, lam, np.where(weight < 0, -lam, 0.0))
    np.testing.assert_array_equal(grads[0], expected)
    np.testing.assert_array_equal(grads[1], 0)   # biases excluded by default


def test_penalties_refuse_bad_arguments():
    with pytest.raises(ValueError, match="lam must be non-negative"):
        L2(-1.0)
    with pytest.raises(TypeError, match="lam must be a real number"):
        L1("0.1")
    with pytest.raises(ValueError, match="gradients must have one array per parameter"):
        L2(0.1).add_gradient([("w", np.ones(2))], [])


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 4))
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def _net(seed=0):
    return refnet.Sequential([refnet.Dense(4, 6, activation="tanh", seed=seed), refnet.Dense(6, 2, seed=seed + 1)])


def test_loss_side_l2_with_sgd_follows_the_weight_decay_formula():
    """One step by hand: w <- (1 - eta lam) w - eta dL/dw, biases untouched by the penalty."""
    x, y = _data()
    eta, lam = 0.1, 0.3
    net = _net()
    before = [p.copy() for p in net.parameters()]
    _, grad = refnet.softmax_cross_entropy(net.forward(x), y)
    net.backward(grad)
    data_grads = [g.copy() for g in net.gradients()]
    after = _net()
    after.fit(x, y, loss="softmax_cross_entropy", optimizer=PlainSGD(eta), epochs=1, batch_size=len(x),
              shuffle=False, regularizer=L2(lam))
    for (name, param), old, g in zip(after.named_parameters(), before, data_grads):
        expected = old - eta * g if name.endswith("bias") else (1 - eta * lam) * old - eta * g
        np.testing.assert_allclose(param, expected, rtol=1e-13, atol=1e-15)


def test_loss_side_l2_and_optimizer_side_decay_give_one_trajectory_with_sgd():
    x, y = _data()
    loss_side, optimizer_side = _net(), _net()
    loss_side.fit(x, y, loss="softmax_cross_entropy", optimizer=refnet.SGD(0.1), epochs=15, batch_size=8,
                  seed=3, regularizer=L2(0.05))
    optimizer_side.fit(
        x, y, loss="softmax_cross_entropy", epochs=15, batch_size=8, seed=3,
        optimizer=refnet.SGD(0.1, weight_decay=0.05, groups=[{"params": ["*.bias"], "weight_decay": False}]),
    )
    for a, b in zip(loss_side.parameters(), optimizer_side.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_the_history_loss_includes_the_penalty():
    x, y = _data()
    net = _net()
    history = net.fit(x, y, loss="softmax_cross_entropy", optimizer=PlainSGD(0.0), epochs=1, batch_size=len(x),
                      regularizer=L2(2.0))
    data_loss = net.evaluate(x, y, loss="softmax_cross_entropy")["loss"]
    penalty = L2(2.0).penalty(net.named_parameters())
    np.testing.assert_allclose(history["loss"][0], data_loss + penalty, rtol=1e-12)


# --- early stopping -------------------------------------------------------------------------

class _Scripted:
    """A stand-in network: early stopping only reads parameters() and sets stop_training."""

    def __init__(self):
        self.weight = np.zeros(1)
        self.stop_training = False

    def parameters(self):
        return [self.weight]


def _run(callback, values, key="val_loss"):
    network = _Scripted()
    callback.on_train_begin(network, 0, {})
    for epoch, value in enumerate(values):
        network.weight[...] = epoch   # the weights "are" the epoch they come from
        callback.on_epoch_end(network, epoch, {key: value})
        if network.stop_training:
            break
    callback.on_train_end(network, 0, {})
    return network


@pytest.mark.parametrize(
    "patience, min_delta, stopped",
    [(0, 0.0, 3), (1, 0.0, 3), (2, 0.0, None), (0, 0.15, 2)],
)
def test_patience_and_min_delta(patience, min_delta, stopped):
    # Improvements of 0.3, 0.1, then 0.2 above the best, 0.05 below it, then worse.
    values = [1.0, 0.7, 0.6, 0.8, 0.55, 0.9, 0.95]
    callback = refnet.EarlyStopping(patience=patience, min_delta=min_delta)
    network = _run(callback, values[:6])
    assert callback.stopped_epoch == stopped
    assert network.weight[0] == callback.best_epoch   # the best epoch's weights are back


@pytest.mark.parametrize(
    "values, patience, stopped, best_epoch, weights",
    [
        ([np.inf, 1.0, 0.9, 0.8], 0, None, 3, 3),   # an infinite first loss is the first best, as in Keras
        ([np.inf, np.inf, 0.9], 0, 1, 0, 0),        # and a second one does not beat it
        ([np.nan, 1.0, 1.2], 0, 2, 1, 1),           # a NaN is never the best (Keras' would be),
        ([np.nan, np.nan, 1.0], 1, 1, None, 1),     # no stop comes after epoch 0, and with no best
    ],                                              # the last weights stay
)
def test_the_first_value_is_the_first_best_and_epoch_0_never_stops(values, patience, stopped, best_epoch, weights):
    """Regression: the best started at inf, so a first val_loss of inf (a saturated
    cross_entropy) was no improvement and training stopped after epoch 0 with nothing to
    restore; Keras 3 counts its first value as the best and never stops after epoch 0."""
    callback = refnet.EarlyStopping(patience=patience)
    network = _run(callback, values)
    assert (callback.stopped_epoch, callback.best_epoch) == (stopped, best_epoch)
    assert network.weight[0] == weights


@pytest.mark.parametrize(
    "values, patience, min_delta",
    [([1.0, 0.7, 0.6, 0.8, 0.55, 0.9, 0.95], p, d) for p in (0, 1, 2) for d in (0.0, 0.15)]
    + [([np.inf, 1.0, 0.9, 0.8], 0, 0.0), ([np.inf, np.inf, 0.9], 0, 0.0), ([2.0, 2.0, 2.0], 1, 0.0),
       ([3.0, np.inf, 2.0, 2.5, 2.6], 1, 0.0)],
)
def test_early_stopping_is_keras_on_sequences_without_nan(values, patience, min_delta):
    """The same epochs stop, and the same weights come back, as Keras 3's EarlyStopping
    (restore_best_weights=True) run on the same sequence of val_loss values."""
    os.environ.setdefault("KERAS_BACKEND", "torch")   # the backend the conformance extra installs
    keras_callbacks = pytest.importorskip("keras.callbacks")

    class Model:   # what Keras' callback touches: the weights and stop_training
        def __init__(self):
            self.weights, self.stop_training = [np.zeros(1)], False

        def get_weights(self):
            return [w.copy() for w in self.weights]

        def set_weights(self, weights):
            self.weights = [w.copy() for w in weights]

    keras_stopper = keras_callbacks.EarlyStopping(patience=patience, min_delta=min_delta, restore_best_weights=True)
    model = Model()
    keras_stopper.set_model(model)
    keras_stopper.on_train_begin()
    for epoch, value in enumerate(values):
        model.weights[0][...] = epoch
        keras_stopper.on_epoch_end(epoch, {"val_loss": value})
        if model.stop_training:
            break
    keras_stopper.on_train_end()
    callback = refnet.EarlyStopping(patience=patience, min_delta=min_delta)
    network = _run(callback, values)
    assert callback.stopped_epoch == (keras_stopper.stopped_epoch or None)
    assert network.weight[0] == model.weights[0][0]


def test_accuracy_is_maximised():
    callback = refnet.EarlyStopping("val_accuracy", patience=0)
    network = _run(callback, [0.5, 0.7, 0.6], key="val_accuracy")
    assert callback.best == 0.7 and callback.stopped_epoch == 2 and network.weight[0] == 1


def test_a_missing_key_says_which_keys_there_are():
    with pytest.raises(KeyError, match="val_loss.*needs validation_data"):
        _run(refnet.EarlyStopping(), [1.0], key="loss")


def test_monitor_must_be_a_name():
    with pytest.raises(TypeError, match="monitor must be the name of a logged value"):
        refnet.EarlyStopping(3)


@pytest.mark.parametrize("patience", [2.5, -1, "3", True])
def test_patience_must_be_a_non_negative_integer(patience):
    """Regression: 2.5 said "patience + 1 must be an integer"."""
    with pytest.raises((TypeError, ValueError), match="^patience must be"):
        refnet.EarlyStopping(patience=patience)


def test_early_stopping_on_a_run_that_overfits():
    """A wide network on 30 noisy-label digits overfits: validation loss turns up, training stops
    there and the weights of the best validation epoch come back."""
    pytest.importorskip("sklearn")
    x, y = refnet.datasets.load_digits()
    rng = np.random.default_rng(0)
    train = rng.choice(len(x), 30, replace=False)
    val = np.setdiff1d(np.arange(len(x)), train)[:300]
    noisy = y[train].copy()
    noisy[:10] = rng.integers(0, 10, 10)   # label noise to memorise
    net = refnet.Sequential([refnet.Dense(64, 256, activation="relu", init="he", seed=1), refnet.Dense(256, 10, seed=2)])
    stopper = refnet.EarlyStopping(patience=3)
    history = net.fit(x[train], noisy, loss="softmax_cross_entropy", optimizer=refnet.SGD(0.1, momentum=0.9),
                      epochs=200, batch_size=10, validation_data=(x[val], y[val]), callbacks=[stopper], seed=0)
    assert stopper.stopped_epoch is not None and len(history["val_loss"]) < 200
    assert history["loss"][-1] < history["loss"][stopper.best_epoch]   # training loss kept falling
    assert min(history["val_loss"]) == history["val_loss"][stopper.best_epoch]
    restored = net.evaluate(x[val], y[val], loss="softmax_cross_entropy")["loss"]
    np.testing.assert_allclose(restored, history["val_loss"][stopper.best_epoch], rtol=1e-12)


def test_a_gradient_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="must have the shape of parameter"):
        L2(0.1).add_gradient([("0.dense.weight", np.ones((2, 2)))], [np.ones(2)])


@pytest.mark.parametrize("penalty", [L2, L1])
@pytest.mark.parametrize("include_biases", [False, True])
def test_prelu_slopes_are_never_penalised(penalty, include_biases):
    """Regression: only names ending in .bias were exempt, so L1/L2 also decayed PReLU's slopes,
    which He et al. (2015) leave undecayed (decay pushes them to 0, towards a ReLU)."""
    net = refnet.Sequential([refnet.Dense(3, 4, seed=0), refnet.PReLU(4), refnet.Dense(4, 2, seed=1)])
    net.layers[1].slope[...] = [0.25, -0.5, 0.75, 2.0]
    named = net.named_parameters()
    grads = [np.zeros_like(p) for _, p in named]
    value = penalty(0.3, include_biases=include_biases).add_gradient(named, grads)
    penalised = [p for name, p in named if name.endswith(".weight") or (include_biases and name.endswith(".bias"))]
    expected = 0.3 * (sum(np.sum(p**2) for p in penalised) / 2 if penalty is L2 else sum(np.sum(np.abs(p)) for p in penalised))
    np.testing.assert_allclose(value, expected, rtol=1e-14)
    for (name, _), grad in zip(named, grads):
        if name.endswith(".slope"):
            assert not grad.any(), name
