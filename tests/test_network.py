"""Layers, Sequential and its training loop: closed forms, independent recomputations, callbacks."""

import contextlib
import io
import subprocess
import sys
import tracemalloc
import types
import zipfile

import numpy as np
import pytest

import refnet
from refnet.network import PlainSGD

from refnet.testing.strategies import DTYPES
from refnet.testing.tolerances import UNIT_ROUNDOFF


def _net(dtype=np.float64, seed=0):
    return refnet.Sequential([
        refnet.Dense(4, 5, activation="tanh", init="classic", dtype=dtype, seed=seed),
        refnet.PReLU(5, dtype=dtype),
        refnet.Dense(5, 6, dtype=dtype, seed=seed + 1),
        refnet.Maxout(2),
        refnet.Sigmoid(),
        refnet.Dense(3, 3, dtype=dtype, seed=seed + 2),
    ])


def test_named_parameters_are_stable_aligned_and_live():
    net = _net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["0.dense.weight", "0.dense.bias", "1.prelu.slope", "2.dense.weight",
                     "2.dense.bias", "5.dense.weight", "5.dense.bias"]
    params, grads = net.parameters(), net.gradients()
    assert [p.shape for p in params] == [g.shape for g in grads]
    assert params[0] is net.layers[0].weight and params[0].shape == (4, 5)
    x = np.random.default_rng(0).standard_normal((3, 4))
    net.forward(x)
    net.backward(np.ones((3, 3)))
    assert grads[0] is net.layers[0].grad_weight and grads[0].any()


def test_backward_matches_the_chain_rule_written_out():
    """A Dense-ReLU-Dense network's gradients, recomputed by hand in NumPy."""
    rng = np.random.default_rng(3)
    dense1, dense2 = refnet.Dense(3, 4, init="classic", seed=1), refnet.Dense(4, 2, seed=2)
    net = refnet.Sequential([dense1, refnet.ReLU(), dense2])
    x, g = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    w1, b1, w2, b2 = (p.copy() for p in net.parameters())
    z1 = x @ w1 + b1
    h = np.maximum(z1, 0)
    np.testing.assert_allclose(net.forward(x), h @ w2 + b2, rtol=1e-13)
    grad_x = net.backward(g)
    delta1 = (g @ w2.T) * (z1 > 0)
    expected = [x.T @ delta1, delta1.sum(0), h.T @ g, g.sum(0)]
    for got, want in zip(net.gradients(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad_x, delta1 @ w1.T, rtol=1e-12, atol=1e-14)
    assert net.backward(g, input_gradient=False) is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_equals_reference_for_every_layer(dtype):
    rng = np.random.default_rng(5)
    layers = [refnet.Dense(6, 4, activation=a, dtype=dtype, seed=1)
              for a in (None, "sigmoid", "tanh", "relu", "leaky_relu")]
    layers += [refnet.Sigmoid(), refnet.Tanh(), refnet.ReLU(), refnet.LeakyReLU(0.2),
               refnet.PReLU(6, dtype=dtype), refnet.PReLU(dtype=dtype), refnet.Maxout(3)]
    x = rng.standard_normal((7, 6)).astype(dtype)
    # Products of 6 terms and one activation: a few dozen ulp of the largest term at most.
    tol = 64 * UNIT_ROUNDOFF[np.dtype(dtype)]
    for layer in layers:
        results = []
        for backend in ("compiled", "reference"):
            with refnet.use_backend(backend):
                out = layer.forward(x)
                grad_in = layer.backward(np.ones_like(out))
                results.append([out, grad_in] + [g.copy() for g in layer.gradients()])
        for got, want in zip(*results):
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 8, err_msg=repr(layer))


def test_initialisers_have_their_stated_distributions():
    n_in, n_out = 400, 300
    # Standard errors of a sample std over 120,000 draws are ~0.2%: 2% is >9 sigma.
    classic = refnet.Dense(n_in, n_out, init="classic", seed=0)
    assert classic.weight.std() == pytest.approx(1 / np.sqrt(n_in), rel=0.02)
    big_bias = refnet.Dense(2, 20000, init="classic", seed=0).bias
    assert big_bias.std() == pytest.approx(1.0, rel=0.03) and abs(big_bias.mean()) < 0.03
    glorot = refnet.Dense(n_in, n_out, init="glorot", seed=0)
    limit = np.sqrt(6 / (n_in + n_out))
    assert np.abs(glorot.weight).max() <= limit and glorot.weight.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    he = refnet.Dense(n_in, n_out, init="he", seed=0)
    assert he.weight.std() == pytest.approx(np.sqrt(2 / n_in), rel=0.02)
    assert not glorot.bias.any() and not he.bias.any()


def test_seed_or_generator_makes_initialisation_reproducible():
    a = refnet.Dense(3, 2, seed=7)
    b = refnet.Dense(3, 2, seed=np.random.default_rng(7))
    assert np.array_equal(a.weight, b.weight)
    c = refnet.Dense(3, 2, dtype=np.float32, seed=7)
    assert c.weight.dtype == np.float32 and np.array_equal(c.weight, a.weight.astype(np.float32))


def test_bad_layers_and_networks_are_refused():
    with pytest.raises(ValueError, match="init must be one of"):
        refnet.Dense(2, 2, init="zeros")
    with pytest.raises(ValueError, match="n_out must be a positive integer"):
        refnet.Dense(2, 0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        refnet.Dense(2, 2, dtype=np.float16)
    with pytest.raises(TypeError, match="layers must share one dtype"):
        refnet.Sequential([refnet.Dense(2, 2), refnet.Dense(2, 2, dtype=np.float32)])
    with pytest.raises(ValueError, match="layers must hold at least one layer"):
        refnet.Sequential([])
    with pytest.raises(TypeError, match=r"layers\[1\] must be a refnet layer"):
        refnet.Sequential([refnet.Dense(2, 2), np.tanh])
    # Regression: one layer object at two positions was accepted, and the second use overwrote
    # the input the first had saved for backward (gradcheck error 1.33 in an adversarial review).
    tanh, dense = refnet.Tanh(), refnet.Dense(2, 2)
    with pytest.raises(ValueError, match=r"layers\[3\] is the same object as layers\[1\]"):
        refnet.Sequential([refnet.Dense(2, 2), tanh, refnet.Dense(2, 2), tanh])
    with pytest.raises(ValueError, match=r"layers\[2\] is the same object as layers\[0\]"):
        refnet.Sequential([dense, refnet.ReLU(), dense])
    with pytest.raises(ValueError, match=r"n_in \* n_out .* is too large for one array"):
        refnet.Dense(10**400, 3)   # regression (hostile suite): was an OverflowError in the initialiser
    with pytest.raises(RuntimeError, match="backward called before forward"):
        refnet.Dense(2, 2).backward(np.ones((1, 2)))
    for make in (lambda seed: refnet.Dense(2, 2, seed=seed), lambda seed: refnet.Dropout(0.5, seed=seed)):
        with pytest.raises(ValueError, match="seed must be None, a non-negative integer or a numpy.random.Generator"):
            make(-1)
        with pytest.raises(TypeError, match="seed must be None, a non-negative integer or a numpy.random.Generator"):
            make(1.5)
    with pytest.raises(TypeError, match="x must have dtype float32"):
        refnet.Dense(2, 2, dtype=np.float32).forward(np.ones((1, 2)))


def _blobs(n=120, seed=0):
    """Three well-separated classes in 4-D."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 4)) * 0.3 + np.eye(3, 4)[y] * 3
    return x, y


def test_fit_learns_and_returns_a_keras_like_history():
    x, y = _blobs()
    net = refnet.Sequential([refnet.Dense(4, 8, activation="relu", init="he", seed=0), refnet.Dense(8, 3, seed=1)])
    history = net.fit(x, y, loss="softmax_cross_entropy", optimizer=PlainSGD(0.1), epochs=5,
                      batch_size=16, validation_data=(x[:30], y[:30]), seed=0)
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.history is history and all(len(v) == 5 for v in history.values())
    assert history["loss"][-1] < history["loss"][0] and history["accuracy"][-1] == 1.0
    assert history["val_loss"][-1] == net.evaluate(x[:30], y[:30], loss="softmax_cross_entropy")["loss"]
    mse = net.fit(x, np.eye(3)[y], loss="mean_squared_error", optimizer=PlainSGD(0.01), epochs=1, batch_size=7)
    assert sorted(mse) == ["loss"]


def test_one_epoch_without_shuffling_is_plain_sgd_written_out():
    """Two full-batch steps of θ ← θ − η∇L, recomputed independently."""
    x, y = _blobs(20)
    net = refnet.Sequential([refnet.Dense(4, 3, seed=0)])
    w, b = net.layers[0].weight.copy(), net.layers[0].bias.copy()
    net.fit(x, y, loss="softmax_cross_entropy", optimizer=PlainSGD(0.5), epochs=2, batch_size=20, shuffle=False)
    for _ in range(2):
        z = x @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        delta = (p - np.eye(3)[y]) / len(x)
        w, b = w - 0.5 * x.T @ delta, b - 0.5 * delta.sum(0)
    np.testing.assert_allclose(net.layers[0].weight, w, rtol=1e-12)
    np.testing.assert_allclose(net.layers[0].bias, b, rtol=1e-12, atol=1e-15)


def test_plain_sgd_updates_in_place_whatever_the_layout():
    params = [np.ones((3, 2), np.float32), np.ones((4, 3))[:, ::2]]
    grads = [np.full((3, 2), 2, np.float32), np.arange(8.0).reshape(4, 2)]
    live = list(params)
    PlainSGD(0.5).step(params, grads)
    assert all(a is b for a, b in zip(params, live))
    assert np.array_equal(params[0], np.zeros((3, 2))) and np.array_equal(params[1], 1 - 0.5 * grads[1])


def test_plain_sgd_refuses_a_gradient_of_another_shape():
    """Review: the kernel path read past the end of a shorter gradient (the sgd kernel loops over
    the parameter's size); the other path broadcasts or raises, as NumPy does."""
    base = np.arange(1.0, 11.0)
    param = np.zeros(5)
    with pytest.raises(ValueError):
        PlainSGD(1.0).step([param], [base[:2]])
    np.testing.assert_array_equal(param, 0)


def test_same_seed_same_training():
    x, y = _blobs()
    runs = []
    for _ in range(2):
        net = refnet.Sequential([refnet.Dense(4, 3, seed=0)])
        runs.append(net.fit(x, y, loss="softmax_cross_entropy", optimizer=PlainSGD(0.1), epochs=2, batch_size=8, seed=5))
    assert runs[0] == runs[1]


_DETERMINISM_SCRIPT = """
import hashlib, numpy as np, refnet
rng = np.random.default_rng(0)
x, y = rng.standard_normal((96, 8)), rng.integers(0, 4, 96)
net = refnet.Sequential([refnet.Dense(8, 32, activation="relu", seed=1), refnet.Dropout(0.3, seed=2),
                         refnet.Dense(32, 16, activation="tanh", seed=3), refnet.Maxout(2), refnet.Dense(8, 4, seed=4)])
history = net.fit(x, y, loss="softmax_cross_entropy", optimizer=refnet.Adam(0.01, weight_decay=1e-3), epochs=3,
                  batch_size=16, seed=5, validation_data=(x[:20], y[:20]))
print(hashlib.sha256(b"".join(p.tobytes() for p in net.parameters()) + repr(dict(history)).encode()).hexdigest())
"""


def _trained_digest():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(_DETERMINISM_SCRIPT, {})
    return out.getvalue().strip()


def test_same_seed_same_bits_within_and_across_processes(tmp_path):
    """Same seed, build and thread settings: bit-identical parameters and history (README, "Reliability")."""
    digest = _trained_digest()
    assert _trained_digest() == digest
    # From another directory: run from the repository, `import refnet` would find the source folder.
    result = subprocess.run([sys.executable, "-c", _DETERMINISM_SCRIPT], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == digest


class Recorder:
    def __init__(self, stop_at=None):
        self.events, self.stop_at = [], stop_at

    def on_epoch_begin(self, network, epoch, logs):
        self.events.append(("begin", epoch))

    def on_batch_end(self, network, batch, logs):
        # Called after backward, before the step: parameters minus lr * gradients
        # must be what the optimizer leaves.
        self.before = [(p.copy(), g.copy()) for p, g in zip(network.parameters(), network.gradients())]
        self.events.append(("batch", batch, logs["loss"]))
        if self.stop_at == len(self.events):
            network.stop_training = True

    def on_epoch_end(self, network, epoch, logs):
        self.events.append(("end", epoch, sorted(logs)))


def test_callbacks_see_gradients_before_the_step_and_can_stop():
    x, y = _blobs(30)
    net = refnet.Sequential([refnet.Dense(4, 3, seed=0)])
    recorder = Recorder(stop_at=3)
    history = net.fit(x, y, loss="softmax_cross_entropy", optimizer=PlainSGD(0.25), epochs=4,
                      batch_size=10, callbacks=[recorder, types.SimpleNamespace(on_train_end=lambda *args: None)])
    kinds = [event[0] for event in recorder.events]
    assert kinds == ["begin", "batch", "batch", "end"]   # stopped after the 2nd batch
    assert recorder.events[-1][2] == ["accuracy", "loss"] and len(history["loss"]) == 1
    for (before, grad), after in zip(recorder.before, net.parameters()):
        np.testing.assert_array_equal(after, before - 0.25 * grad)


def test_inference_during_fit_does_not_change_training():
    """Regression: predict/evaluate between a training forward and its backward (from a loss
    or a callback) overwrote the layers' saved inputs and a shared work array."""
    x, y = _blobs(40)
    loss_calls = 0

    def watched_loss(output, target):
        nonlocal loss_calls
        loss_calls += 1
        net.predict(x[:10])                    # the batch's shape: the same work arrays
        net.evaluate(x[:3], y[:3], loss="softmax_cross_entropy")
        return refnet.softmax_cross_entropy(output, target)

    class Monitor:
        def on_batch_end(self, network, batch, logs):
            network.predict(x)

    final = []
    for loss, callbacks in (("softmax_cross_entropy", []), (watched_loss, [Monitor()])):
        net = refnet.Sequential([refnet.Dense(4, 6, activation="relu", seed=0), refnet.Dropout(0.2, seed=3),
                                 refnet.Dense(6, 6, activation="tanh", seed=1), refnet.Maxout(2),
                                 refnet.Dense(3, 3, seed=2)])
        net.fit(x, y, loss=loss, optimizer=refnet.Adam(0.05), epochs=2, batch_size=10, seed=1,
                callbacks=callbacks)
        final.append(net.parameters())
    assert loss_calls > 4   # the watched run really ran its inference inside training
    for quiet, watched in zip(*final):
        np.testing.assert_array_equal(watched, quiet)


def test_gradient_norms_callback_records_each_parameter_per_batch():
    x, y = _blobs(40)
    net = refnet.Sequential([refnet.Dense(4, 5, activation="sigmoid", seed=0), refnet.Dense(5, 3, seed=1)])
    norms, recorder = refnet.GradientNorms(), Recorder()
    net.fit(x, y, loss="softmax_cross_entropy", optimizer=PlainSGD(0.1), epochs=2, batch_size=10,
            callbacks=[recorder, norms])
    assert sorted(norms.norms) == sorted(name for name, _ in net.named_parameters())
    assert all(len(v) == 8 for v in norms.norms.values())
    last = dict(zip([n for n, _ in net.named_parameters()], (g for _, g in recorder.before)))
    for name, grad in last.items():
        assert norms.norms[name][-1] == pytest.approx(np.sqrt((grad**2).sum()), rel=1e-12)
    layer0 = np.sqrt((last["0.dense.weight"] ** 2).sum() + (last["0.dense.bias"] ** 2).sum())
    assert sorted(norms.by_layer()) == ["0.dense", "1.dense"]
    assert norms.by_layer()["0.dense"][-1] == pytest.approx(layer0, rel=1e-12)


def test_progress_bar_and_its_missing_dependency(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    x, y = _blobs(20)
    net = refnet.Sequential([refnet.Dense(4, 3, seed=0)])
    fit = dict(loss="softmax_cross_entropy", optimizer=PlainSGD(0.1), epochs=2, batch_size=10)
    net.fit(x, y, progress=True, **fit)
    assert "4/4" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(ImportError, match="progress=True needs tqdm"):
        net.fit(x, y, progress=True, **fit)


def test_bad_fit_arguments_fail_before_training():
    x, y = _blobs(20)
    net = refnet.Sequential([refnet.Dense(4, 3, seed=0)])
    before = [p.copy() for p in net.parameters()]
    fit = dict(optimizer=PlainSGD(0.1), epochs=1, batch_size=5)
    bad_last_label = y.copy()
    bad_last_label[-1] = 3
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        net.fit(x, bad_last_label, loss="softmax_cross_entropy", **fit)
    with pytest.raises(ValueError, match="y must have one target per row of x"):
        net.fit(x, y[:-1], loss="softmax_cross_entropy", **fit)
    with pytest.raises(ValueError, match="loss must be a callable or one of"):
        net.fit(x, y, loss="hinge", **fit)
    with pytest.raises(TypeError, match="optimizer must be an object with a step"):
        net.fit(x, y, loss="softmax_cross_entropy", optimizer=0.1, epochs=1, batch_size=5)
    with pytest.raises(TypeError, match="x must have dtype float32"):
        refnet.Sequential([refnet.Dense(4, 3, dtype=np.float32)]).fit(x, y, loss="softmax_cross_entropy", **fit)
    # Regressions: each of these failed late, or with a message naming the wrong thing.
    problems = [
        (dict(x=x[:, :3]), ValueError, r"x of shape \(20, 3\) does not fit the network: layers\[0\] Dense takes 4 inputs"),
        (dict(validation_data=(x[:5, :3], y[:5])), ValueError, r"validation_data\[0\] of shape \(5, 3\)"),
        (dict(validation_data=(x[:5], y[:4])), ValueError, r"validation_data\[1\] must have one target per row of validation_data\[0\] \(5\)"),
        (dict(validation_data=x), TypeError, r"validation_data must be a pair"),
        (dict(y=y + 3), ValueError, r"y does not suit the loss: labels must lie in \[0, 3\)"),
        (dict(y=np.float64(1)), ValueError, "y must have one target per row of x"),
        (dict(optimizer=refnet.Adam), TypeError, r"optimizer must be an object .* got <class"),
        (dict(callbacks=refnet.EarlyStopping()), TypeError, r"callbacks must be a list .*pass \[callback\]"),
        (dict(callbacks=[refnet.GradientNorms]), TypeError, r"callbacks\[0\] must be a callback object, got the class"),
        (dict(callbacks=[refnet.EarlyStopping()]), ValueError, r"monitors 'val_loss', which fit's epoch logs will not have"),
        (dict(callbacks=[refnet.EarlyStopping("val_acc")], validation_data=(x, y)), ValueError, "monitors 'val_acc'"),
        # Regressions (an adversarial review): accepted and read by truthiness, silently
        # ignored, or refused by NumPy without naming the argument.
        (dict(shuffle="no"), TypeError, "shuffle must be True or False, got 'no'"),
        (dict(progress=None), TypeError, "progress must be True or False, got None"),
        (dict(callbacks=[None]), TypeError, r"callbacks\[0\] must be an object with any of the methods on_train_begin"),
        (dict(callbacks=[refnet.EarlyStopping(monitor="loss").on_epoch_end]), TypeError,
         r"callbacks\[0\] must be an object with any of the methods"),
        (dict(seed=-1), ValueError, "seed must be None, a non-negative integer or a numpy.random.Generator, got -1"),
        (dict(seed="abc"), TypeError, "seed must be None, a non-negative integer or a numpy.random.Generator, got 'abc'"),
    ]
    for change, error, message in problems:
        arguments = dict(x=x, y=y, loss="softmax_cross_entropy", **fit) | change
        with pytest.raises(error, match=message):
            net.fit(arguments.pop("x"), arguments.pop("y"), **arguments)
    for p, b in zip(net.parameters(), before):
        assert np.array_equal(p, b)


def test_layers_that_do_not_fit_together_are_refused_naming_the_layer():
    """Regression: accepted, then failing at forward without naming the layer."""
    with pytest.raises(ValueError, match=r"layers\[1\] Dense takes 32 inputs \(n_in\), got 16 \(from layers\[0\] Dense\)"):
        refnet.Sequential([refnet.Dense(64, 16), refnet.Dense(32, 10)])
    with pytest.raises(ValueError, match=r"layers\[2\] Maxout takes a width divisible by pieces=2, got 5"):
        refnet.Sequential([refnet.Dense(4, 5), refnet.ReLU(), refnet.Maxout(2)])
    with pytest.raises(ValueError, match=r"layers\[1\] PReLU takes 3 inputs \(units\), got 5"):
        refnet.Sequential([refnet.Dense(4, 5), refnet.PReLU(3)])
    # A layer of the user's own says nothing about widths: nothing after it is checked up front.
    class Flatten(refnet.layers.Layer):
        def forward(self, x, training=False):
            return x.reshape(len(x), -1)

    net = refnet.Sequential([refnet.Dense(4, 6), Flatten(), refnet.Dense(6, 2)])
    assert net.predict(np.ones((1, 4))).shape == (1, 2)
    assert net.evaluate(np.ones((3, 4)), [0, 1, 1], loss="softmax_cross_entropy")["loss"] > 0
    refnet.Sequential([refnet.Dense(4, 6), Flatten(), refnet.Dense(5, 2)])
    # Widths flow through elementwise layers and Maxout; an unknown width is checked once known.
    net = refnet.Sequential([refnet.Tanh(), refnet.Maxout(2), refnet.Dense(3, 2)])
    assert net.predict(np.ones((2, 6))).shape == (2, 2)
    with pytest.raises(ValueError, match=r"x of shape \(2, 4\) does not fit the network: layers\[2\] Dense takes 3 inputs"):
        net.predict(np.ones((2, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_in_batches_equals_one_pass(dtype):
    net = _net(dtype)
    x = np.random.default_rng(1).standard_normal((11, 4)).astype(dtype)
    assert np.array_equal(net.predict(x, batch_size=4), net.forward(x))


def test_digits_64_32_10_reaches_95_percent_on_a_held_out_quarter():
    """The issue's bar: a 64-32-10 network, >= 95% on a quarter of scikit-learn's digits it never saw."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data / 16.0, digits.target
    order = np.random.default_rng(0).permutation(len(x))
    test, train = order[: len(x) // 4], order[len(x) // 4 :]
    net = refnet.Sequential([refnet.Dense(64, 32, activation="relu", init="he", seed=1), refnet.Dense(32, 10, seed=2)])
    net.fit(x[train], y[train], loss="softmax_cross_entropy", optimizer=PlainSGD(0.1), epochs=30,
            batch_size=32, seed=0)
    accuracy = net.evaluate(x[test], y[test], loss="softmax_cross_entropy")["accuracy"]
    assert accuracy >= 0.95, accuracy


# --- save and load ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_save_then_load_gives_identical_predictions(tmp_path, dtype):
    net = _net(dtype)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = refnet.Sequential.load(path)
    x = np.random.default_rng(2).standard_normal((9, 4)).astype(dtype)
    assert np.array_equal(loaded.predict(x), net.predict(x))
    assert repr(loaded) == repr(net)
    assert [n for n, _ in loaded.named_parameters()] == [n for n, _ in net.named_parameters()]
    assert all(p.dtype == dtype for p in loaded.parameters())


def _saved(tmp_path):
    net = refnet.Sequential([refnet.Dense(3, 4, activation="relu", seed=0), refnet.PReLU(4), refnet.Dense(4, 2, seed=1)])
    path = tmp_path / "net.npz"
    net.save(path)
    return net, path


def test_truncated_and_corrupted_files_raise_value_error(tmp_path):
    net, path = _saved(tmp_path)
    data = path.read_bytes()
    damaged = tmp_path / "damaged.npz"
    for size in range(0, len(data), 11):
        damaged.write_bytes(data[:size])
        with pytest.raises(ValueError):
            refnet.Sequential.load(damaged)
    # Random byte changes: either refused, or (in a zip field nothing reads,
    # such as a timestamp) the very same network.
    rng = np.random.default_rng(0)
    x = np.ones((2, 3))
    for _ in range(300):
        corrupted = bytearray(data)
        corrupted[rng.integers(len(data))] = rng.integers(256)
        damaged.write_bytes(bytes(corrupted))
        try:
            loaded = refnet.Sequential.load(damaged)
        except ValueError:
            continue
        assert np.array_equal(loaded.forward(x), net.forward(x))


def _rewrite(path, **changes):
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)


@pytest.mark.parametrize("change, message", [
    ({"__refnet__": None}, "not a refnet network file"),
    ({"__refnet__": np.array("keras/2")}, "not a refnet network file"),
    ({"__layers__": np.array("[{")}, "no valid layer list"),
    ({"__layers__": np.array('[{"type": "system", "config": {}}]')}, "unknown type 'system'"),
    ({"__layers__": np.array('[{"type": "Dense", "config": {"n_in": 3, "n_out": 5, "activation": "relu", '
                             '"slope": 0.01, "init": "he", "dtype": "float64"}}]')}, "does not match the config"),
    ({"__layers__": np.array('[{"type": "Dense", "config": {"n_in": 3, "n_out": 4, "activation": "relu", '
                             '"slope": 0.01, "init": "he", "dtype": "float64", "evil": 1}}]')}, "damaged"),
    ({"0.dense.bias": np.zeros(4, np.float32)}, "does not match the config"),
    ({"9.extra": np.zeros(1)}, "arrays no layer owns"),
    # Regressions (an adversarial review): these two raised TypeError, naming neither file nor layer.
    ({"__layers__": np.array('[{"type": ["Dense"], "config": {}}]')}, r"unknown type \['Dense'\]"),
    ({"__layers__": np.array(
        '[{"type": "Dense", "config": {"n_in": 3, "n_out": 4, "activation": "relu", "slope": 0.01, '
        '"init": "he", "dtype": "float64"}}, {"type": "Dense", "config": {"n_in": 4, "n_out": 2, '
        '"activation": "identity", "slope": 0.01, "init": "he", "dtype": "float32"}}]'),
      "1.dense.weight": np.zeros((4, 2), np.float32), "1.dense.bias": np.zeros(2, np.float32),
      "1.prelu.slope": None, "2.dense.weight": None, "2.dense.bias": None},
     "its layers do not form a network: layers must share one dtype"),
])
def test_tampered_contents_are_refused(tmp_path, change, message):
    _, path = _saved(tmp_path)
    _rewrite(path, **change)
    with pytest.raises(ValueError, match=message):
        refnet.Sequential.load(path)


class _Payload:
    """Unpickling this would run code: it must never happen."""

    def __reduce__(self):
        return exec, ("import os; os.environ['REFNET_UNPICKLED'] = '1'",)


def test_foreign_and_pickled_files_never_run_code(tmp_path, monkeypatch):
    import pickle

    monkeypatch.delenv("REFNET_UNPICKLED", raising=False)
    plain_pickle = tmp_path / "pickle.npz"
    plain_pickle.write_bytes(pickle.dumps(_Payload()))
    object_member = tmp_path / "object.npz"
    np.savez(object_member, __refnet__=np.array("refnet.Sequential/1"), payload=np.array([_Payload()], dtype=object))
    text = tmp_path / "notes.npz"
    text.write_text("not numpy at all")
    single_array = tmp_path / "array.npy"
    np.save(single_array, np.ones(3))
    for path in (plain_pickle, object_member, text, single_array):
        with pytest.raises(ValueError, match="not a r"):
            refnet.Sequential.load(path)
    with pytest.raises(FileNotFoundError):
        refnet.Sequential.load(tmp_path / "missing.npz")
    assert "REFNET_UNPICKLED" not in __import__("os").environ


def _zip_with(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy_header(shape, descr="<f8"):
    """A .npy version 1.0 header, written from the format's description."""
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def _refused_without_allocating(path, message, **load):
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message):
            refnet.Sequential.load(path, **load)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20   # no array of the claimed size was made


def test_forged_sizes_are_refused_before_anything_is_allocated(tmp_path):
    """Regression: a member header claiming a huge array made load raise MemoryError (it allocated)."""
    _, path = _saved(tmp_path)
    with np.load(path) as archive:
        members = {name + ".npy": None for name in archive.files}
    good = {}
    with zipfile.ZipFile(path) as archive:
        good = {name: archive.read(name) for name in members}
    forged = tmp_path / "forged.npz"
    # The header claims 10^12 doubles; the member holds 32 bytes of them.
    _zip_with(forged, good | {"0.dense.weight.npy": _npy_header((10**6, 10**6)) + bytes(32)})
    _refused_without_allocating(forged, r"shape \(1000000, 1000000\) of float64 needs 8000000000000 bytes")
    # A zip entry declaring 4 GiB (its size fields rewritten): refused before decompressing.
    _zip_with(forged, good | {"big.npy": _npy_header((10,)) + bytes(80)}, zipfile.ZIP_DEFLATED)
    data = bytearray(forged.read_bytes())
    directory = data.rfind(b"PK\x01\x02")
    data[directory + 24 : directory + 28] = (2**32 - 16).to_bytes(4, "little")
    forged.write_bytes(bytes(data))
    _refused_without_allocating(forged, "more than max_bytes=1073741824")
    # A zip bomb: 64 MiB of zeros in 64 KiB, refused under a 1 MiB limit before it is unpacked.
    _zip_with(forged, good | {"bomb.npy": _npy_header((2**23,)) + bytes(2**26)}, zipfile.ZIP_DEFLATED)
    assert forged.stat().st_size < 2**17
    _refused_without_allocating(forged, "more than max_bytes=1048576", max_bytes=2**20)
    # An entry understating its size: read up to the declared size only, then refused.
    _zip_with(forged, good | {"liar.npy": _npy_header((2**20,)) + bytes(2**23)}, zipfile.ZIP_DEFLATED)
    data = bytearray(forged.read_bytes())
    directory = data.rfind(b"PK\x01\x02")
    data[directory + 24 : directory + 28] = (1000).to_bytes(4, "little")
    forged.write_bytes(bytes(data))
    _refused_without_allocating(forged, "not a readable .npz file")
    # Other compressions (bz2: no bound on one chunk's output in zipfile) and object arrays.
    _zip_with(forged, good, zipfile.ZIP_BZIP2)
    _refused_without_allocating(forged, "only stored or deflated members are read")
    _zip_with(forged, good | {"code.npy": _npy_header((1,), "|O") + b"\x80\x04N."})
    _refused_without_allocating(forged, "holds dtype object; a network file holds only float and text")
    assert refnet.Sequential.load(path).layers[0].weight.shape == (3, 4)   # the real file still loads
    with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
        refnet.Sequential.load(path, max_bytes=0)


# --- numerical failure and interruption ------------------------------------------

def test_a_nan_in_the_data_stops_fit_keeping_the_last_good_step():
    """Regression: a NaN in the data trained on silently (loss [nan])."""
    x, y = _blobs(40)
    x[25, 1] = np.nan                       # batch 2 of 10 rows, unshuffled
    make = lambda: refnet.Sequential([refnet.Dense(4, 5, activation="relu", seed=0), refnet.Dense(5, 3, seed=1)])  # noqa: E731
    fit = dict(loss="softmax_cross_entropy", epochs=3, batch_size=10, shuffle=False)
    net = make()
    with pytest.raises(refnet.NonFiniteError, match=r"epoch 0, batch 2: the loss is nan .* 0\.dense\.weight") as caught:
        net.fit(x, y, optimizer=refnet.Adam(0.01), **fit)
    assert (caught.value.epoch, caught.value.batch, caught.value.parameter) == (0, 2, "0.dense.weight")
    good = make()                           # the same two steps, on the good rows only
    good.fit(x[:20], y[:20], optimizer=refnet.Adam(0.01), **fit | dict(epochs=1))
    for got, expected in zip(net.parameters(), good.parameters()):
        np.testing.assert_array_equal(got, expected)
    # The documented opt-out trains on and shows it.
    history = make().fit(x, y, optimizer=refnet.Adam(0.01), check_finite=False, **fit)
    assert np.isnan(history["loss"]).all()
    with pytest.raises(TypeError, match="check_finite must be True or False"):
        make().fit(x, y, optimizer=refnet.Adam(0.01), check_finite="yes", **fit)


def test_a_non_finite_loss_later_keeps_the_history_so_far():
    x, y = _blobs(40)
    calls = 0

    def loss(output, target):
        nonlocal calls
        calls += 1
        value, grad = refnet.softmax_cross_entropy(output, target)
        return (np.inf if calls == 8 else value), grad   # call 1 checks the targets; 8: epoch 1, batch 2

    net = refnet.Sequential([refnet.Dense(4, 3, seed=0)])
    with pytest.raises(refnet.NonFiniteError, match="epoch 1, batch 2: the loss is inf and every gradient is finite") as caught:
        net.fit(x, y, loss=loss, optimizer=PlainSGD(0.1), epochs=3, batch_size=10)
    assert caught.value.parameter is None
    assert len(net.history["loss"]) == 1 and caught.value.history is net.history


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_the_finiteness_check_sees_one_bad_element_anywhere(dtype, bad):
    from refnet.network import _FiniteCheck
    grads = [np.zeros((3, 4), dtype), np.ones(5, dtype), np.full(2, np.finfo(dtype).max, dtype),
             np.zeros((4, 3), dtype)[:, ::2]]   # the last one non-contiguous (a custom layer's)
    check = _FiniteCheck(grads)
    assert check(1.0) and not check(bad)
    for grad in grads:
        for index in np.ndindex(grad.shape):
            saved = grad[index]
            grad[index] = bad
            assert not check(0.5)
            grad[index] = saved
    assert check(0.0)
    big = np.zeros(25_000, dtype)   # checked in blocks of 10,000: every block's edges count
    check = _FiniteCheck([big])
    tracemalloc.start()
    for _ in range(10):
        check(0.5)
    assert tracemalloc.get_traced_memory()[1] < 1024   # no array allocated, only a few Python floats
    tracemalloc.stop()
    for index in (0, 9_999, 10_000, 19_999, 20_000, 24_999):
        big[index] = bad
        assert not check(0.5)
        big[index] = 0
    assert check(0.5)


def test_a_real_sigint_never_leaves_a_torn_step():
    """Regression: SIGINT during fit left some layers stepped and others not (6 of 40 tries).

    A thread sends the process a real SIGINT at a random moment; after the
    KeyboardInterrupt, every parameter must be either before or after the same
    step (Adam moves every array on every step here), the optimizer's step count
    must match, and the history so far must be kept.
    """
    import signal

    x, y = _blobs(64)
    timing = np.random.default_rng(0)
    # Python's own handler, whatever the process inherited: a shell starts a background job
    # with SIGINT ignored, and Python then installs none.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_fits(x, y, timing)
    finally:
        signal.signal(signal.SIGINT, inherited)


def _interrupt_fits(x, y, timing):
    import signal
    import threading
    import time

    torn = interrupted = 0
    for attempt in range(40):
        layers = [refnet.Dense(4, 16, activation="tanh", seed=attempt)]
        layers += [refnet.Dense(16, 16, activation="tanh", seed=attempt + i) for i in range(1, 7)]
        net = refnet.Sequential(layers + [refnet.Dense(16, 3, seed=attempt + 7)])
        optimizer = refnet.Adam(0.01)

        class Snapshot:
            def on_batch_end(self, network, batch, logs):
                self.before = [p.copy() for p in network.parameters()]
                self.steps = optimizer.steps
                network.stop_training = time.monotonic() > deadline   # a lost signal fails, never hangs

        deadline = time.monotonic() + 30
        snapshot = Snapshot()
        snapshot.before, snapshot.steps = [p.copy() for p in net.parameters()], 0   # if it lands before any batch
        # Sent to the main thread: a process-directed SIGINT (os.kill) that the kernel hands to
        # another thread can wait in CPython 3.11 until the main thread's eval loop next looks
        # (seen once in CI: minutes), which is CPython's behaviour, not the guard's.
        sender = threading.Timer(timing.uniform(0.01, 0.06), signal.pthread_kill,
                                 (threading.main_thread().ident, signal.SIGINT))
        sender.start()
        try:
            net.fit(x, y, loss="softmax_cross_entropy", optimizer=optimizer, epochs=10**6, batch_size=8,
                    callbacks=[snapshot])
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            sender.join()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # fit put it back
        assert isinstance(net.history, refnet.History)
        unchanged = [np.array_equal(p, b) for p, b in zip(net.parameters(), snapshot.before)]
        if any(unchanged) and not all(unchanged):
            torn += 1
        else:
            assert optimizer.steps == snapshot.steps + (not all(unchanged))
    assert (interrupted, torn) == (40, 0)


def test_a_file_with_deeply_nested_json_is_refused_cleanly(tmp_path):
    path = tmp_path / "nested.npz"
    np.savez(path, __refnet__=np.array("refnet.Sequential/1"), __layers__=np.array("[" * 100_000 + "]" * 100_000))
    with pytest.raises(ValueError, match="no valid layer list"):
        refnet.Sequential.load(path)


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mean_squared_error", "binary_cross_entropy_with_logits"])
def test_fit_trains_the_same_on_targets_of_any_accepted_dtype(loss):
    """Labels of any integer dtype, and float targets of either dtype, train exactly as int64
    labels and targets of the network's dtype do."""
    x, y = _blobs(64)
    if loss == "softmax_cross_entropy":
        given = [y.astype(np.uint8), y.astype(np.int32), y.astype(np.int64)]
    else:
        given = [np.eye(3, dtype=np.float32)[y], np.eye(3)[y]]
    results = []
    for targets in given:
        net = refnet.Sequential([refnet.Dense(4, 3, seed=0)])
        history = net.fit(x, targets, loss=loss, optimizer=PlainSGD(0.1), epochs=2, batch_size=16, seed=0)
        results.append((history["loss"], net.parameters()[0]))
    for losses_seen, weight in results[:-1]:
        assert losses_seen == results[-1][0]
        np.testing.assert_array_equal(weight, results[-1][1])


def test_fit_takes_an_unhashable_loss_of_the_users_own():
    """A callable dataclass (eq=True makes it unhashable) is a loss like any other callable."""
    import dataclasses

    @dataclasses.dataclass
    class HalfSquaredError:
        scale: float = 0.5

        def __call__(self, output, target):
            diff = output - target
            return self.scale * float(np.mean(np.sum(diff**2, axis=1))), 2 * self.scale * diff / len(output)

    x, y = _blobs(32)
    net = refnet.Sequential([refnet.Dense(4, 3, seed=0)])
    history = net.fit(x, np.eye(3)[y], loss=HalfSquaredError(), optimizer=PlainSGD(0.1), epochs=3, batch_size=8,
                      seed=0)
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_network_without_parameters_takes_float_targets_in_its_inputs_dtype(dtype):
    """Regression: a network of parameter-free layers has no dtype, and float targets were cast
    with astype(None), to float64, which a float32 output then refused in evaluate and fit."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3)).astype(dtype)
    net = refnet.Sequential([refnet.Sigmoid()])
    for targets in (rng.random((6, 3)).astype(np.float32), rng.random((6, 3))):
        # mean_squared_error: the squared error summed over a row, averaged over the rows.
        expected = np.sum((1 / (1 + np.exp(-x.astype(np.float64))) - targets.astype(dtype)) ** 2) / len(x)
        loss = net.evaluate(x, targets, loss="mean_squared_error")["loss"]
        np.testing.assert_allclose(loss, expected, rtol=10 * np.finfo(dtype).eps)
        history = net.fit(x, targets, loss="mean_squared_error", optimizer=refnet.SGD(0.1), epochs=1,
                          batch_size=6, shuffle=False)
        np.testing.assert_allclose(history["loss"][0], expected, rtol=10 * np.finfo(dtype).eps)


def test_what_callbacks_add_to_an_epochs_logs_is_recorded_as_keras_records_it():
    """Regression: the history took the epoch's logs before on_epoch_end, so a key a callback
    adds there (Keras' ReduceLROnPlateau adds "learning_rate") was lost; Keras' History is the
    last callback and records it."""
    x, y = _blobs(30)

    class LearningRateLog:
        def on_epoch_end(self, network, epoch, logs):
            assert len(network.history.get("loss", [])) == epoch   # this epoch is recorded after the callbacks
            logs["learning_rate"] = 0.5 / (epoch + 1)

    history = refnet.Sequential([refnet.Dense(4, 3, seed=0)]).fit(
        x, y, loss="softmax_cross_entropy", optimizer=PlainSGD(0.1), epochs=3, batch_size=10,
        callbacks=[LearningRateLog()])
    assert history["learning_rate"] == [0.5, 0.25, 0.5 / 3]
    assert len(history["loss"]) == 3
