"""The experiment functions: what they promise about their runs, and the lecture's claims they show."""

import numpy as np
import pytest

import refnet
from refnet.experiments import OVERFITTING_METHODS, compare_optimizers, depth, overfitting, vanishing
from conftest import MNIST_DIR

needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"MNIST test files not in {MNIST_DIR}")


def _blobs(rows=60, seed=0):
    """Three separable Gaussian classes in 4-D: small data any sane optimizer learns."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, rows)
    x = rng.standard_normal((rows, 4)) + 3.0 * np.eye(3, 4)[y]
    return x, y


# --- compare_optimizers --------------------------------------------------------------

def test_default_comparison_on_digits_starts_every_curve_at_one_point_and_learns():
    """The defaults: every optimizer family and convention, on the digits, falls from the same start."""
    pytest.importorskip("sklearn")
    result = compare_optimizers(epochs=3, per_batch=True)
    labels = list(refnet.experiments.default_optimizers())
    assert list(result.loss) == labels
    assert result.epochs == [0, 1, 2, 3]
    for curves in (result.loss, result.val_loss, result.accuracy, result.val_accuracy):
        assert {len(curve) for curve in curves.values()} == {4}
        # Identical initial weights: the same initial values, to the bit.
        assert len({curve[0] for curve in curves.values()}) == 1
    # Identical weights and the same first batch: the same first batch loss.
    assert len({curve[0] for curve in result.batch_loss.values()}) == 1
    batches = -(-(1797 - 1797 // 4) // 32)
    assert {len(curve) for curve in result.batch_loss.values()} == {3 * batches}
    # Ten classes from a near-uniform start: the initial loss is near ln 10.
    assert abs(result.loss[labels[0]][0] - np.log(10)) < 0.3
    for label in labels:
        assert result.loss[label][-1] < 0.6 * result.loss[label][0], label
        assert result.val_loss[label][-1] < 0.6 * result.val_loss[label][0], label


def test_same_batch_order_and_start_make_identical_optimizers_give_identical_curves():
    x, y = _blobs()
    result = compare_optimizers({"a": refnet.SGD(0.1), "b": refnet.SGD(0.1), "c": refnet.SGD(0.05)},
                                data=(x, y), epochs=4, batch_size=8, hidden=5, per_batch=True)
    assert result.loss["a"] == result.loss["b"]
    assert result.batch_loss["a"] == result.batch_loss["b"]
    assert result.loss["a"] != result.loss["c"]
    assert result.val_loss is None and result.val_accuracy is None


def test_a_network_with_dropout_sees_the_same_masks_under_every_optimizer():
    x, y = _blobs()
    net = refnet.Sequential([refnet.Dense(4, 8, activation="relu", seed=1), refnet.Dropout(0.5, seed=2),
                             refnet.Dense(8, 3, seed=3)])
    before = [p.copy() for p in net.parameters()]
    result = compare_optimizers({"a": refnet.SGD(0.1), "b": refnet.SGD(0.1)}, network=net, data=(x, y),
                                epochs=3, batch_size=8)
    assert result.loss["a"] == result.loss["b"]
    # The caller's network is a template: copied, never trained.
    assert all(np.array_equal(p, q) for p, q in zip(net.parameters(), before))


def test_caller_optimizers_are_copied_not_stepped():
    x, y = _blobs()
    optimizer = refnet.Adam(0.01)
    compare_optimizers({"Adam": optimizer}, data=(x, y), epochs=1, hidden=3)
    assert optimizer.steps == 0


def test_network_factory_is_called_with_an_int_seed_and_validation_curves_are_recorded():
    x, y = _blobs()
    x_val, y_val = _blobs(30, seed=1)
    seeds = []

    def factory(seed):
        seeds.append(seed)
        return refnet.Sequential([refnet.Dense(4, 3, seed=seed)])

    result = compare_optimizers({"SGD": refnet.SGD(0.1), "RMSProp (lee)": refnet.RMSProp(0.01, convention="lee")},
                                network=factory, data=(x, y), validation_data=(x_val, y_val), epochs=5, seed=7)
    assert len(seeds) == 1 and isinstance(seeds[0], int)
    assert result.val_loss["SGD"][0] == result.val_loss["RMSProp (lee)"][0]
    assert all(curve[-1] < curve[0] for curve in result.val_loss.values())
    # Plain data: a command line can dump it without refnet's types.
    plain = result.to_dict()
    assert type(plain) is dict and all(type(v) is float for v in plain["loss"]["SGD"])


def test_same_seed_same_curves_other_seed_other_curves():
    x, y = _blobs()
    run = lambda seed: compare_optimizers({"SGD": refnet.SGD(0.1)}, data=(x, y), epochs=2, seed=seed).loss
    assert run(3) == run(3)
    assert run(3) != run(4)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"optimizers": {}}, TypeError, "optimizers"),
    ({"optimizers": [refnet.SGD(0.1)]}, TypeError, "optimizers"),
    ({"optimizers": {1: refnet.SGD(0.1)}}, TypeError, "str labels"),
    ({"optimizers": {"x": object()}}, TypeError, r"optimizers\['x'\]"),
    ({"epochs": 0}, ValueError, "epochs"),
    ({"batch_size": 1.5}, TypeError, "batch_size"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": np.random.default_rng(0)}, TypeError, "seed"),
    ({"network": "mlp"}, TypeError, "network"),
    ({"network": lambda seed: None}, TypeError, r"network\(seed\)"),
    ({"data": (np.zeros((3, 2)), np.array([0.5, 1, 0]))}, TypeError, r"data\[1\]"),
    ({"data": (np.zeros((3, 2)), np.array([0, 1]))}, ValueError, r"data\[1\]"),
    ({"data": np.zeros((3, 2))}, TypeError, "data"),
    ({"data": None, "validation_data": _blobs()}, ValueError, "validation_data"),
])
def test_bad_arguments_are_refused_by_name(kwargs, error, match):
    kwargs.setdefault("optimizers", {"SGD": refnet.SGD(0.1)})
    if "data" not in kwargs:
        kwargs["data"] = _blobs()
    with pytest.raises(error, match=match):
        compare_optimizers(**kwargs)


# --- overfitting ---------------------------------------------------------------------

@needs_mnist
def test_dropout_lowers_training_accuracy_and_raises_test_accuracy_on_mnist():
    """The lecture's claim 9, on a 784-256-10 ReLU network trained on 1,000 MNIST images.

    Without regularisation the network fits every training image; dropout (0.2 on
    the inputs, 0.5 on the hidden layer) in either mode fits fewer of them and
    classifies more of 2,000 held-out images correctly.  Seeds 0-5 all show it, by
    1.1-2.0 test points (inverted) and 0.2-1.5 (scale-at-test).  With dropout off the
    dropout networks miss only 1-9 of the 1,000 training images: trained much longer
    they fit them all too, so this part of the claim holds for the default 30 epochs.
    """
    result = overfitting(MNIST_DIR, methods=["none", "dropout-inverted", "dropout-scale-at-test"], seed=0)
    assert result.train_accuracy["none"] == 1.0    # it overfits: every training image right
    for method in ("dropout-inverted", "dropout-scale-at-test"):
        assert result.fit_accuracy[method] < result.fit_accuracy["none"], method
        assert result.train_accuracy[method] < result.train_accuracy["none"], method
        assert result.test_accuracy[method] > result.test_accuracy["none"], method
    # The gap between training and test accuracy is what overfitting means.
    assert result.train_accuracy["none"] - result.test_accuracy["none"] > 0.05


@needs_mnist
def test_early_stopping_stops_before_the_last_epoch_of_a_run_that_overfits():
    """The validation loss of the overfitting network has its minimum well before 30 epochs."""
    result = overfitting(MNIST_DIR, methods=["early-stopping"], patience=3, seed=0)
    assert result.epochs["early-stopping"] < result.settings["epochs"]


def _tiny_mnist_like(rows=120, seed=0):
    """Random 'images' with learnable labels: for the bookkeeping tests, which need no MNIST."""
    rng = np.random.default_rng(seed)
    x = rng.random((rows, 16)).astype(np.float32)
    return x, (x[:, :4].argmax(axis=1) + 4 * (x[:, 4] > 0.5)).astype(np.int64)


def test_every_method_runs_from_arrays_and_reports_plain_numbers():
    x, y = _tiny_mnist_like()
    result = overfitting(x=x, y=y, train_size=60, test_size=40, hidden=(8, 8), epochs=4, batch_size=10,
                         patience=0, seed=1)
    for table in (result.train_accuracy, result.test_accuracy, result.fit_accuracy):
        assert list(table) == list(OVERFITTING_METHODS)
        assert all(type(v) is float and 0 <= v <= 1 for v in table.values())
    assert result.epochs["none"] == 4
    assert 1 <= result.epochs["early-stopping"] <= 4
    assert result.settings["test_size"] == 40 and result.settings["dtype"] == "float32"
    assert result.to_dict()["settings"]["hidden"] == [8, 8]
    # Deterministic given the seed.
    again = overfitting(x=x, y=y, train_size=60, test_size=40, hidden=(8, 8), epochs=4, batch_size=10,
                        patience=0, seed=1)
    assert again.to_dict() == result.to_dict()


def test_scale_at_test_weights_after_dropout_get_the_conversion_learning_rates():
    """The groups that make plain SGD step a scale-at-test network as its inverted twin:
    1/(1-p)^2 on the weights after each Dropout layer, nothing on anything else."""
    net = refnet.Sequential([refnet.Dropout(0.2, "scale-at-test"), refnet.Dense(4, 6, activation="relu"),
                             refnet.Dropout(0.5, "scale-at-test"), refnet.Dense(6, 3)])
    groups = refnet.experiments._scale_at_test_groups(net)
    assert [g["params"] for g in groups] == [["1.dense.weight"], ["3.dense.weight"]]
    assert [g["lr_scale"] for g in groups] == pytest.approx([1 / 0.8**2, 1 / 0.5**2], rel=1e-15)
    assert all(layer.mode == "scale-at-test" for layer in net.layers if isinstance(layer, refnet.Dropout))


def test_match_dropout_modes_changes_only_the_scale_at_test_run():
    x, y = _tiny_mnist_like()
    kwargs = dict(x=x, y=y, train_size=60, test_size=None, hidden=8, epochs=3, batch_size=10,
                  methods=["dropout-inverted", "dropout-scale-at-test"])
    matched = overfitting(**kwargs)
    unmatched = overfitting(**kwargs, match_dropout_modes=False)
    assert matched.train_loss["dropout-inverted"] == unmatched.train_loss["dropout-inverted"]
    assert matched.train_loss["dropout-scale-at-test"] != unmatched.train_loss["dropout-scale-at-test"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({}, ValueError, "exactly one of directory"),
    ({"directory": "somewhere", "x": np.zeros((3, 2))}, ValueError, "exactly one of directory"),
    ({"x": np.zeros((3, 2))}, ValueError, "labels y"),
    ({"methods": ["dropout"]}, ValueError, "methods"),
    ({"methods": []}, ValueError, "methods"),
    ({"train_size": 200}, ValueError, "train_size"),
    ({"test_size": 500}, ValueError, "test_size"),
    ({"hidden": ()}, ValueError, "hidden"),
    ({"hidden": (4, 0)}, ValueError, r"hidden\[1\]"),
    ({"p": 1.0}, ValueError, "p must"),
    ({"input_p": -0.1}, ValueError, "input_p"),
    ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
    ({"patience": -1}, ValueError, "patience"),
    ({"lr": -1.0}, ValueError, "lr"),
    ({"weight_decay": "a lot"}, TypeError, "weight_decay"),
    ({"match_dropout_modes": "yes"}, TypeError, "match_dropout_modes"),
    ({"seed": 1.5}, TypeError, "seed"),
    # Regression: early stopping's validation split took the only training row, and fit then
    # refused "x must have at least 1 row(s)" (also what `refnet overfitting --train-size 1` said).
    ({"train_size": 1, "test_size": 10}, ValueError, r"train_size \(1\) leaves no rows to train on"),
    ({"train_size": 2, "test_size": 10, "validation_fraction": 0.9}, ValueError, r"train_size \(2\) leaves no"),
])
def test_overfitting_refuses_bad_arguments_by_name(kwargs, error, match):
    if "directory" not in kwargs and kwargs != {}:
        x, y = _tiny_mnist_like()
        kwargs = {"x": x, "y": y, "train_size": 60, **kwargs}
        if kwargs["x"] is not x:
            kwargs.pop("y")
    with pytest.raises(error, match=match):
        overfitting(**kwargs)


# --- progress ---------------------------------------------------------------------------

class _Calls(list):
    def __call__(self, done, total):
        self.append((done, total))


def test_progress_counts_every_epoch_of_every_run_up_to_the_total():
    x, y = _tiny_mnist_like()
    runs = {
        "optimizers": lambda p: compare_optimizers({"a": refnet.SGD(0.1), "b": refnet.SGD(0.2)}, data=(x, y),
                                                   epochs=3, hidden=4, progress=p),
        "overfitting": lambda p: overfitting(x=x, y=y, train_size=60, test_size=None, hidden=4, epochs=3, patience=0,
                                             methods=["none", "early-stopping"], progress=p),
        "vanishing": lambda p: vanishing((x, y), hidden=(3, 3), epochs=2, progress=p),
        "depth": lambda p: depth((x, y), depths=[1, 2], width=3, epochs=2, progress=p),
    }
    totals = {"optimizers": 6, "overfitting": 6, "vanishing": 6, "depth": 8}
    for name, run in runs.items():
        calls = _Calls()
        run(calls)
        done = [d for d, _ in calls]
        assert {t for _, t in calls} == {totals[name]}, name
        assert done == sorted(done) and done[-1] == totals[name], name
    with pytest.raises(TypeError, match="progress"):
        depth((x, y), depths=[1], progress="bar")


# --- vanishing ------------------------------------------------------------------------------

def test_hidden_bias_gradients_match_back_propagation_written_out():
    """The norms are of ∂C/∂b_l = Σ_rows δ_l, δ_L = (a - t)/N, δ_l = (δ_{l+1} W_{l+1}ᵀ) ⊙ σ'(z_l),
    recomputed here in NumPy from the network's weights (cross-entropy on sigmoid outputs)."""
    from refnet.experiments import _hidden_bias_gradient_norms, _vanishing_network

    rng = np.random.default_rng(3)
    x, labels = rng.random((7, 5)), rng.integers(0, 3, 7)
    t = np.eye(3)[labels]
    net = _vanishing_network("sigmoid", [5, 4, 4, 4, 3], np.float64, seed=11)
    dense = net.layers
    activations, zs = [x], []
    for layer in dense:
        zs.append(activations[-1] @ layer.weight + layer.bias)
        activations.append(1 / (1 + np.exp(-zs[-1])))
    delta = (activations[-1] - t) / len(x)
    expected = []
    for layer, z in zip(reversed(dense[1:]), reversed(zs[:-1])):
        s = 1 / (1 + np.exp(-z))
        delta = (delta @ layer.weight.T) * s * (1 - s)
        expected.append(np.linalg.norm(delta.sum(axis=0)))
    measured = _hidden_bias_gradient_norms(net, x, t)
    np.testing.assert_allclose(measured, expected[::-1], rtol=1e-12)


def test_vanishing_networks_follow_the_classic_setup():
    from refnet.experiments import _vanishing_network

    widths = [784, 30, 30, 30, 30, 10]
    sigmoid = _vanishing_network("sigmoid", widths, np.float64, seed=0)
    assert [(l.n_in, l.n_out, l.activation, l.init) for l in sigmoid.layers] == [
        (n, m, "sigmoid", "classic") for n, m in zip(widths[:-1], widths[1:])]
    relu = _vanishing_network("relu", widths, np.float64, seed=0)
    assert [l.activation for l in relu.layers] == ["relu"] * 4 + ["sigmoid"]
    assert all(not l.bias.any() for l in relu.layers[:-1])   # He: zero biases
    maxout = _vanishing_network("maxout", widths, np.float64, seed=0)
    assert [type(l).__name__ for l in maxout.layers] == ["Dense", "Maxout"] * 4 + ["Dense"]
    assert maxout.layers[0].n_out == 60 and maxout.layers[2].n_in == 30
    assert all(not l.bias.any() for l in maxout.layers[:-1:2])
    # N(0, 1/n_in) pieces: the variance of 784 x 60 draws is within 3% of 1/784 (its sd is 0.8%).
    assert maxout.layers[0].weight.var() * 784 == pytest.approx(1, rel=0.03)


@needs_mnist
def test_sigmoid_gradients_vanish_towards_the_input_on_mnist_and_relu_ones_do_not():
    """Nielsen's [784, 30, 30, 30, 30, 10] network on the first 1,000 MNIST test images.

    Measured over seeds 0-2: sigmoid ratio last/first 121, 87, 181 (the issue's independent
    reproduction: 110-150 over seeds; Nielsen's training images about 96); ReLU 1.1-2.1,
    Maxout 1.6-2.7.  Each sigmoid layer's norm is several times the one before it.
    """
    x, y = refnet.datasets.load_mnist(MNIST_DIR, "test")
    result = vanishing((x, y), epochs=0, seed=0)
    assert result.layers == [784, 30, 30, 30, 30, 10]
    sigmoid = result.results["sigmoid"]
    assert sigmoid["ratio_last_first"] == pytest.approx(sigmoid["init_norms"][-1] / sigmoid["init_norms"][0])
    assert 30 < sigmoid["ratio_last_first"] < 400
    assert all(b > 2 * a for a, b in zip(sigmoid["init_norms"], sigmoid["init_norms"][1:]))
    for other in ("relu", "maxout"):
        assert 0.1 < result.results[other]["ratio_last_first"] < 5, other
        assert sigmoid["ratio_last_first"] > 10 * result.results[other]["ratio_last_first"], other
    assert result.shows_claim()[0]


def test_vanishing_history_starts_at_initialisation_and_moves_with_training():
    x, y = _tiny_mnist_like()
    result = vanishing((x, y), activations=["sigmoid", "relu"], hidden=(6, 6, 6), probe_size=50, epochs=2, seed=4)
    assert result.epochs == [0, 1, 2] and result.layers == [16, 6, 6, 6, 8]
    assert result.settings["probe_size"] == 50
    for run in result.results.values():
        assert run["norm_history"][0] == run["init_norms"]
        assert len(run["norm_history"]) == 3 and all(len(n) == 3 for n in run["norm_history"])
        assert run["norm_history"][2] != run["norm_history"][0]   # training changed the weights
        assert len(run["loss"]) == len(run["accuracy"]) == 3
    assert vanishing((x, y), hidden=(6, 6), epochs=1, seed=4).to_dict() == \
        vanishing((x, y), hidden=(6, 6), epochs=1, seed=4).to_dict()


# --- depth -------------------------------------------------------------------------------------

def test_deeper_sigmoid_nets_train_worse_and_relu_nets_do_not_on_the_digits():
    """Claim 10 on the 8x8 digits, 3 epochs of Adam: measured sigmoid 0.72 (1 hidden layer) -> 0.10
    (8, chance), ReLU 0.76 -> 0.83; with 10 epochs (the default) sigmoid 0.89 -> 0.10, ReLU 0.94 -> 0.96."""
    pytest.importorskip("sklearn")
    result = depth(depths=[1, 4, 8], epochs=3)
    sigmoid, relu = result.results["sigmoid"]["train_accuracy"], result.results["relu"]["train_accuracy"]
    assert sigmoid[0] > 0.5 and sigmoid[-1] < sigmoid[0] - 0.3
    assert relu[-1] > relu[0] - 0.05 and relu[-1] > sigmoid[-1] + 0.3
    assert result.shows_claim()[0]


@pytest.mark.parametrize("function, kwargs, error, match", [
    (vanishing, {"activations": ["tanh"]}, ValueError, "activations"),
    (vanishing, {"hidden": (5,)}, ValueError, "two hidden layers"),
    (vanishing, {"epochs": -1}, ValueError, "epochs"),
    (vanishing, {"probe_size": 0}, ValueError, "probe_size"),
    (vanishing, {"lr": float("nan")}, ValueError, "lr"),
    (depth, {"depths": []}, ValueError, "depths"),
    (depth, {"depths": [1, 0]}, ValueError, r"depths\[1\]"),
    (depth, {"depths": 3}, TypeError, "depths"),
    (depth, {"activations": ["maxout"]}, ValueError, "activations"),
    (depth, {"epochs": 0}, ValueError, "epochs"),
])
def test_vanishing_and_depth_refuse_bad_arguments_by_name(function, kwargs, error, match):
    with pytest.raises(error, match=match):
        function(_tiny_mnist_like(), **kwargs)
