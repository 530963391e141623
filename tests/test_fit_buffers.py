"""fit's lean training step: the same bits as the public layer API, and no allocation per step."""

import tracemalloc

import numpy as np
import pytest

import refnet
from refnet import Dense, Dropout, LeakyReLU, Maxout, PReLU, ReLU, Sequential, Sigmoid, Tanh

from refnet.testing.strategies import DTYPES

# Every layer type fit trains through its own work arrays, each in a small network.
LAYER_STACKS = {
    **{f"dense_{act}": lambda dt, act=act: [Dense(5, 8, activation=act, dtype=dt, seed=1), Dense(8, 3, dtype=dt, seed=2)]
       for act in (None, "sigmoid", "tanh", "relu", "leaky_relu")},
    **{cls.__name__: lambda dt, cls=cls: [Dense(5, 8, dtype=dt, seed=1), cls(), Dense(8, 3, dtype=dt, seed=2)]
       for cls in (Sigmoid, Tanh, ReLU, LeakyReLU)},
    **{f"dropout_{mode}": lambda dt, mode=mode: [Dropout(0.2, mode, seed=5), Dense(5, 8, activation="relu", dtype=dt, seed=1),
                                                 Dropout(0.5, mode, seed=6), Dense(8, 3, dtype=dt, seed=2)]
       for mode in ("inverted", "scale-at-test")},
    "maxout": lambda dt: [Dense(5, 8, dtype=dt, seed=1), Maxout(2), Dense(4, 3, dtype=dt, seed=2)],
    "prelu_shared": lambda dt: [Dense(5, 8, dtype=dt, seed=1), PReLU(dtype=dt), Dense(8, 3, dtype=dt, seed=2)],
    "prelu_units": lambda dt: [Dense(5, 8, dtype=dt, seed=1), PReLU(8, dtype=dt), Dense(8, 3, dtype=dt, seed=2)],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stack", sorted(LAYER_STACKS))
def test_fit_trains_exactly_as_the_public_layer_api(stack, dtype, each_backend):
    """fit (work arrays, in-place shuffle, loss into a kept gradient) against the loop a user would
    write with forward(training=True), the loss, backward and step: the same parameters, bit for bit.
    22 rows in batches of 4 end each epoch on a smaller batch."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((22, 5)).astype(dtype), rng.integers(0, 3, 22)
    fitted, by_hand = Sequential(LAYER_STACKS[stack](dtype)), Sequential(LAYER_STACKS[stack](dtype))
    fitted.fit(x, y, loss="softmax_cross_entropy", optimizer=refnet.Adam(lr=0.01), epochs=3, batch_size=4, seed=7)
    optimizer, order_rng = refnet.Adam(lr=0.01), np.random.default_rng(7)
    names = [name for name, _ in by_hand.named_parameters()]
    for _ in range(3):
        order = order_rng.permutation(len(x))
        for start in range(0, len(x), 4):
            rows = order[start : start + 4]
            _, grad = refnet.softmax_cross_entropy(by_hand.forward(x[rows], training=True), y[rows])
            by_hand.backward(grad, input_gradient=False)
            optimizer.step(by_hand.parameters(), by_hand.gradients(), names=names)
    for (name, trained), expected in zip(fitted.named_parameters(), by_hand.parameters()):
        assert trained.tobytes() == expected.tobytes(), name


class _EpochMemory:
    """Traces the second epoch: how far the traced memory rises above its start, and the NumPy
    data still allocated at its end that was not at its start (NumPy reports its array data to
    tracemalloc under np.lib.tracemalloc_domain)."""

    def on_epoch_begin(self, network, epoch, logs):
        if epoch == 1:
            tracemalloc.start()
            self.start = tracemalloc.get_traced_memory()[0]
            self.snapshot = tracemalloc.take_snapshot()

    def on_epoch_end(self, network, epoch, logs):
        if epoch == 1:
            peak = tracemalloc.get_traced_memory()[1]
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
            numpy_only = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]
            self.rise = peak - self.start
            self.numpy_kept = sum(stat.size_diff for stat in snapshot.filter_traces(numpy_only).compare_to(
                self.snapshot.filter_traces(numpy_only), "filename"))


@pytest.mark.parametrize("regularizer", [None, refnet.regularizers.L2(1e-4), refnet.regularizers.L1(1e-4)], ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_an_epoch_after_the_first_allocates_nothing_per_step(dtype, regularizer):
    """Before the work arrays, each step allocated the batch, every layer's output and input
    gradient and the loss gradient: the epoch's traced memory rose by 250-480 kB here (several
    batches' worth), and the last batch's arrays stayed allocated; a regularizer added a
    parameter-sized temporary or two.  Now what remains per step is
    a few small Python objects and the accuracy's two row-long temporaries: the rise must stay far
    below ONE batch of inputs (51-102 kB), whatever the number of steps."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((630, 200)).astype(dtype), rng.integers(0, 10, 630)   # last batch: 54 rows
    net = Sequential([Dropout(0.1, seed=1), Dense(200, 64, activation="tanh", dtype=dtype, seed=0), Maxout(2),
                      PReLU(32, dtype=dtype), Dense(32, 10, dtype=dtype, seed=1)])
    probe = _EpochMemory()
    net.fit(x, y, loss="softmax_cross_entropy", optimizer=refnet.Adam(lr=1e-3), epochs=2, batch_size=64,
            callbacks=[probe], seed=0, regularizer=regularizer)
    one_batch = 64 * x.shape[1] * x.itemsize
    assert probe.rise < 16_000 < one_batch / 3
    assert probe.numpy_kept <= 0


def _epoch_rise(x, y, loss, batch_size):
    net = Sequential([Dense(x.shape[1], y.shape[1] if y.ndim == 2 else 10, seed=0)])
    probe = _EpochMemory()
    net.fit(x, y, loss=loss, optimizer=refnet.SGD(0.01), epochs=2, batch_size=batch_size, callbacks=[probe], seed=0)
    return probe.rise


def test_labels_of_any_integer_dtype_and_unit_interval_targets_allocate_nothing_per_step():
    """Regressions: labels of another integer dtype than intp were converted on every step (a
    batch of intp: 16 kB here), and the [0, 1] check of binary cross-entropy's targets made two
    boolean temporaries of the batch (2 x 51 kB here)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, 8))
    labels = rng.integers(0, 10, len(x))
    intp_rise = _epoch_rise(x, labels.astype(np.intp), "softmax_cross_entropy", 2048)
    for dtype in (np.int32, np.uint8):
        assert _epoch_rise(x, labels.astype(dtype), "softmax_cross_entropy", 2048) <= intp_rise + 1024, dtype
    targets = rng.integers(0, 2, (len(x), 100)).astype(float)
    assert _epoch_rise(x, targets, "binary_cross_entropy_with_logits", 512) < 16_000 < 512 * 100


class _Double(refnet.layers.Layer):
    """A layer of the user's own, without fit's private methods: fit calls its public ones."""

    def forward(self, x, training=False):
        return 2 * x

    def backward(self, grad_output, input_gradient=True):
        return 2 * grad_output


def _squared_error(output, target):   # a loss of the user's own (no out=)
    return float(((output - target) ** 2).sum() / len(output)), 2 * (output - target) / len(output)


def test_fit_with_own_layer_and_loss_and_batch_sizes_that_change_between_fits():
    """The work arrays follow the batch: one batch larger than the data, then smaller ones (their
    first rows), then a larger one again (new arrays); a user's layer and loss go through as before."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((22, 5)), rng.standard_normal((22, 3))
    def stack():
        return Sequential([Dense(5, 8, activation="tanh", seed=1), _Double(), Dropout(0.3, seed=2), Dense(8, 3, seed=3)])
    fitted, by_hand = stack(), stack()
    optimizer, by_hand_optimizer = refnet.SGD(0.05, momentum=0.9), refnet.SGD(0.05, momentum=0.9)
    for batch_size, seed in ((30, 0), (4, 1), (8, 2)):
        fitted.fit(x, y, loss=_squared_error, optimizer=optimizer, epochs=2, batch_size=batch_size, seed=seed)
        order_rng = np.random.default_rng(seed)
        for _ in range(2):
            order = order_rng.permutation(len(x))
            for start in range(0, len(x), batch_size):
                rows = order[start : start + batch_size]
                by_hand.backward(_squared_error(by_hand.forward(x[rows], training=True), y[rows])[1], False)
                by_hand_optimizer.step(by_hand.parameters(), by_hand.gradients(),
                                       names=[name for name, _ in by_hand.named_parameters()])
    for (name, trained), expected in zip(fitted.named_parameters(), by_hand.parameters()):
        assert trained.tobytes() == expected.tobytes(), name
