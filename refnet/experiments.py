r"""Experiments: runs that show the lecture's claims, returning plain data to print or plot.

* :func:`compare_optimizers` trains one network with each optimizer from the
  same initial weights, on the same data in the same batch order, and returns
  the loss curves (the adaptive-learning-rate part of the lecture).
* :func:`overfitting` trains a wide network on a small slice of MNIST, with no
  regularisation, L2, dropout in each mode and early stopping, and returns the
  training and test accuracy of each ("dropout lowers training accuracy and
  raises test accuracy", claim 9 of the lecture).

The results are dataclasses of lists, dicts, ints and floats (``to_dict()``
gives the plain dict), so a command line can print or plot them without
knowing refnet's types.
"""

import copy
import dataclasses

import numpy as np

from . import _validate
from .callbacks import EarlyStopping
from .datasets import load_digits, load_mnist
from .ensemble import dropout_parameter_groups
from .layers import Dense, Dropout
from .network import Sequential
from .optim import SGD, Adagrad, Adam, RMSProp

__all__ = [
    "OptimizerComparison",
    "compare_optimizers",
    "default_optimizers",
    "OverfittingResult",
    "overfitting",
    "OVERFITTING_METHODS",
]

LOSS = "softmax_cross_entropy"


def _seeds(seed, count):
    """``count`` independent int seeds derived from ``seed`` (one per use, so no two streams coincide)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count)]


def _classification_data(data, name):
    """``(x, y)``: a float matrix and one integer label per row, or raise naming ``name``."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (x, y), got {type(data).__name__}")
    x = _validate.matrix(data[0], f"{name}[0]", min_rows=1)
    y = _validate.labels(data[1], f"{name}[1]", len(x), np.iinfo(np.intp).max)
    return x, y


def _plain(values):
    return [float(v) for v in values]


# --- optimizers --------------------------------------------------------------------

def default_optimizers():
    """One optimizer of each family, in the lecture's convention and PyTorch's (Keras' too for RMSProp and Adam).

    Within a family every convention gets the same learning rate, so their
    curves differ by the convention alone (for example the first RMSProp step
    is :math:`\\eta` under Lee's, about :math:`10\\eta` under PyTorch's and
    :math:`3.16\\eta` under Keras' defaults).  Some pairs coincide, as the
    lecture says they should: Lee's and PyTorch's momentum at a constant
    learning rate, and Lee's and PyTorch's Adagrad (whose
    :math:`\\varepsilon = 10^{-10}` is negligible next to the root of summed
    squared gradients).  The rates are ones at which every curve on the
    default data (the 8×8 digits) falls.

    Returns
    -------
    dict
        Readable label -> a fresh optimizer.
    """
    return {
        "SGD lr=0.1": SGD(0.1),
        "SGD+momentum 0.9 (lee) lr=0.01": SGD(0.01, momentum=0.9, convention="lee"),
        "SGD+momentum 0.9 (torch) lr=0.01": SGD(0.01, momentum=0.9),
        "Adagrad (lee) lr=0.01": Adagrad(0.01, convention="lee"),
        "Adagrad (torch) lr=0.01": Adagrad(0.01),
        "RMSProp (lee) lr=0.001": RMSProp(0.001, convention="lee"),
        "RMSProp (torch) lr=0.001": RMSProp(0.001),
        "RMSProp (keras) lr=0.001": RMSProp(0.001, convention="keras"),
        "Adam (torch) lr=0.001": Adam(0.001),
        "Adam (keras) lr=0.001": Adam(0.001, convention="keras"),
    }


def _default_classifier(n_in, n_classes, hidden, dtype, seed):
    """``n_in``-``hidden``-``n_classes`` ReLU network (He init for the ReLU layer, Glorot for the output)."""
    first, second = _seeds(seed, 2)
    return Sequential([
        Dense(n_in, hidden, activation="relu", init="he", dtype=dtype, seed=first),
        Dense(hidden, n_classes, dtype=dtype, seed=second),
    ])


@dataclasses.dataclass
class OptimizerComparison:
    """Loss curves of :func:`compare_optimizers`, keyed by optimizer label.

    Attributes
    ----------
    epochs : list of int
        ``[0, 1, ..., n]``: the number of epochs trained at each point; 0 is the
        initial network, the same for every optimizer.
    loss, accuracy : dict of str -> list of float
        The loss and accuracy over the whole training set at each point of
        ``epochs``, evaluated with the weights fixed (dropout off).  Not Keras'
        running mean over an epoch's batches, whose weights change from batch
        to batch, so that every curve starts from one point.
    val_loss, val_accuracy : dict of str -> list of float, or None
        The same on the validation data, when there is some.
    batch_loss : dict of str -> list of float, or None
        With ``per_batch=True``: the loss of every minibatch as training saw
        it, before the step it caused (the first is the same for every
        optimizer).
    """

    epochs: list
    loss: dict
    accuracy: dict
    val_loss: dict = None
    val_accuracy: dict = None
    batch_loss: dict = None

    def to_dict(self):
        """The result as a plain dict (of lists, dicts and numbers)."""
        return dataclasses.asdict(self)


class _Recorder:
    """Callback: the training set's loss after each epoch and, if asked, each batch's loss."""

    def __init__(self, x, y, per_batch):
        self.x, self.y = x, y
        self.loss, self.accuracy = [], []
        self.batch_loss = [] if per_batch else None

    def record(self, network):
        logs = network.evaluate(self.x, self.y, loss=LOSS)
        self.loss.append(float(logs["loss"]))
        self.accuracy.append(float(logs["accuracy"]))

    def on_batch_end(self, network, batch, logs):
        if self.batch_loss is not None:
            self.batch_loss.append(float(logs["loss"]))

    def on_epoch_end(self, network, epoch, logs):
        self.record(network)


def compare_optimizers(optimizers=None, *, network=None, data=None, validation_data=None, epochs=20,
                       batch_size=32, hidden=32, seed=0, per_batch=False):
    """Train one network with each optimizer from the same start and return the loss curves.

    Every optimizer trains its own copy of one initialised network, on the
    same data in the same batch order (and, if the network has Dropout
    layers, with the same masks, their random streams being copied too), so
    the curves differ by the optimizer alone.  The loss is the softmax cross
    entropy of integer labels.

    Parameters
    ----------
    optimizers : dict of str -> optimizer, optional
        Label -> an object with ``step(params, grads)``, such as
        :class:`refnet.SGD`.  Each is deep-copied before training, so the
        caller's objects are left as they were.  Default:
        :func:`default_optimizers`.
    network : Sequential or callable, optional
        The network to start from (copied, never trained itself), or a factory
        ``network(seed) -> Sequential`` called once with an int seed.  Default:
        a ``n_in``-``hidden``-``n_classes`` ReLU network.
    data : (x, y), optional
        Training rows (float32 or float64, the network's dtype) and integer
        labels.  Default: scikit-learn's 8×8 digits
        (:func:`refnet.datasets.load_digits`, needs scikit-learn), a random
        three quarters of them, the other quarter being ``validation_data``.
    validation_data : (x, y), optional
        Evaluated before training and after each epoch.  Cannot be given
        without ``data``.
    epochs, batch_size : int
    hidden : int
        Width of the default network's hidden layer (ignored with ``network``).
    seed : int
        Derives the default network's initial weights, the default data split
        and the batch order.
    per_batch : bool
        Also record each minibatch's loss.

    Returns
    -------
    OptimizerComparison

    Examples
    --------
    >>> import numpy as np, refnet
    >>> x = np.random.default_rng(0).standard_normal((40, 3)); y = (x[:, 0] > 0).astype(int)
    >>> result = refnet.experiments.compare_optimizers(
    ...     {"SGD": refnet.SGD(0.5), "Adam": refnet.Adam(0.05)}, data=(x, y), epochs=5, hidden=4)
    >>> result.epochs
    [0, 1, 2, 3, 4, 5]
    >>> result.loss["SGD"][0] == result.loss["Adam"][0]
    True
    """
    # An int, not a Generator: the first run would consume a Generator, and every run needs the same stream.
    seed = _validate.non_negative_int(seed, "seed")
    split_seed, network_seed, order_seed = _seeds(seed, 3)
    if optimizers is None:
        optimizers = default_optimizers()
    if not isinstance(optimizers, dict) or not optimizers:
        raise TypeError(f"optimizers must be a non-empty dict of label -> optimizer, got {optimizers!r}")
    for label, optimizer in optimizers.items():
        if not isinstance(label, str):
            raise TypeError(f"optimizers must be keyed by str labels, got {label!r}")
        if not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"optimizers[{label!r}] must have a step(params, grads) method, got {optimizer!r}")
    epochs = _validate.positive_int(epochs, "epochs")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    hidden = _validate.positive_int(hidden, "hidden")

    if data is None:
        if validation_data is not None:
            raise ValueError("validation_data needs data: the default data are split into their own validation set")
        x, y = load_digits()
        order = np.random.default_rng(split_seed).permutation(len(x))
        held_out, kept = order[: len(x) // 4], order[len(x) // 4 :]
        x, y, validation_data = x[kept], y[kept], (x[held_out], y[held_out])
    else:
        x, y = _classification_data(data, "data")
    if validation_data is not None:
        x_val, y_val = _classification_data(validation_data, "validation_data")

    if network is None:
        n_classes = int(max(y.max(), y_val.max() if validation_data is not None else 0)) + 1
        start = _default_classifier(x.shape[1], n_classes, hidden, x.dtype, network_seed)
    elif isinstance(network, Sequential):
        start = network
    elif callable(network):
        start = network(network_seed)
        if not isinstance(start, Sequential):
            raise TypeError(f"network(seed) must return a refnet.Sequential, got {type(start).__name__}")
    else:
        raise TypeError(f"network must be a refnet.Sequential or a callable seed -> Sequential, got {network!r}")

    result = OptimizerComparison(epochs=list(range(epochs + 1)), loss={}, accuracy={},
                                 val_loss={} if validation_data is not None else None,
                                 val_accuracy={} if validation_data is not None else None,
                                 batch_loss={} if per_batch else None)
    for label, optimizer in optimizers.items():
        net = copy.deepcopy(start)
        recorder = _Recorder(x, y, per_batch)
        recorder.record(net)
        kwargs = {}
        if validation_data is not None:
            kwargs["validation_data"] = (x_val, y_val)
            initial = net.evaluate(x_val, y_val, loss=LOSS)
        history = net.fit(x, y, loss=LOSS, optimizer=copy.deepcopy(optimizer), epochs=epochs,
                          batch_size=batch_size, callbacks=[recorder], seed=order_seed, **kwargs)
        result.loss[label], result.accuracy[label] = recorder.loss, recorder.accuracy
        if validation_data is not None:
            result.val_loss[label] = _plain([initial["loss"], *history["val_loss"]])
            result.val_accuracy[label] = _plain([initial["accuracy"], *history["val_accuracy"]])
        if per_batch:
            result.batch_loss[label] = recorder.batch_loss
    return result


# --- overfitting ---------------------------------------------------------------------

OVERFITTING_METHODS = ("none", "l2", "dropout-inverted", "dropout-scale-at-test", "early-stopping")


@dataclasses.dataclass
class OverfittingResult:
    """Accuracies of :func:`overfitting`, keyed by method (see :data:`OVERFITTING_METHODS`).

    Attributes
    ----------
    train_accuracy, test_accuracy : dict of str -> float
        Accuracy on the rows the method trained on and on the held-out test
        rows, of the final weights with dropout off (the network as it would
        be used).
    fit_accuracy : dict of str -> float
        The last epoch's training accuracy as training saw it: the running
        mean over the epoch's batches, with dropout *on* (Keras' ``accuracy``).
    train_loss, test_loss : dict of str -> float
    epochs : dict of str -> int
        Epochs trained (fewer than asked when early stopping stopped).
    settings : dict
        The sizes and hyper-parameters of the run.
    """

    train_accuracy: dict
    test_accuracy: dict
    fit_accuracy: dict
    train_loss: dict
    test_loss: dict
    epochs: dict
    settings: dict

    def to_dict(self):
        """The result as a plain dict (of dicts and numbers)."""
        return dataclasses.asdict(self)


def _mnist_or_arrays(directory, x, y, dtype):
    if (directory is None) == (x is None):
        raise ValueError("pass exactly one of directory (MNIST's IDX files) and x (with y)")
    if directory is not None:
        if y is not None:
            raise ValueError("y goes with x, not with directory")
        return load_mnist(directory, "test", dtype=dtype)
    if y is None:
        raise ValueError("x needs its labels y")
    x = _validate.matrix(x, "x", min_rows=1)
    return x, _validate.labels(y, "y", len(x), np.iinfo(np.intp).max)


def _wide_network(n_in, hidden, n_classes, dtype, seed, dropout=None):
    """The ReLU network of widths ``n_in``, ``*hidden``, ``n_classes``; with ``dropout=(p_in, p, mode)``
    a Dropout layer before every Dense layer.  The same ``seed`` gives the same Dense weights either way."""
    widths = [n_in, *hidden, n_classes]
    seeds = _seeds(seed, 2 * len(widths))
    layers = []
    for i, (n, m) in enumerate(zip(widths[:-1], widths[1:])):
        if dropout is not None:
            input_p, p, mode = dropout
            if i > 0 or input_p > 0:
                layers.append(Dropout(p if i > 0 else input_p, mode, seed=seeds[len(widths) + i]))
        last = i == len(widths) - 2
        layers.append(Dense(n, m, activation=None if last else "relu", init="glorot" if last else "he",
                            dtype=dtype, seed=seeds[i]))
    return Sequential(layers)


def _hidden_widths(hidden):
    if isinstance(hidden, (tuple, list)):
        if not hidden:
            raise ValueError("hidden must name at least one hidden layer width")
        return tuple(_validate.positive_int(h, f"hidden[{i}]") for i, h in enumerate(hidden))
    return (_validate.positive_int(hidden, "hidden"),)


def _probability(value, name):
    number = _validate.finite_scalar(value, name)
    if not 0 <= number < 1:
        raise ValueError(f"{name} must be in [0, 1), got {number}")
    return number


def overfitting(directory=None, *, x=None, y=None, train_size=1000, test_size=2000, hidden=256, epochs=30,
                batch_size=32, lr=0.01, momentum=0.9, weight_decay=0.01, p=0.5, input_p=0.2,
                match_dropout_modes=True, patience=5, validation_fraction=0.2, methods=OVERFITTING_METHODS,
                seed=0, dtype=np.float32):
    r"""Overfit a wide network on a small slice of MNIST, then fight it; return the accuracies.

    The first ``train_size`` images train; ``test_size`` of the others, drawn
    at random, test.  Every method starts from the same initial weights, trains
    with the same optimizer (:class:`refnet.SGD` with momentum, PyTorch
    convention) for ``epochs`` epochs of ``batch_size``, in the same batch
    order:

    ``"none"``
        no regularisation: training accuracy reaches 1 while the test accuracy
        stays well below;
    ``"l2"``
        optimizer-side weight decay ``weight_decay`` (for plain SGD the same as
        loss-side L2 :math:`\lambda/2\,\|w\|^2`), biases excluded through the
        group ``{"params": ["*.bias"], "weight_decay": False}``;
    ``"dropout-inverted"``, ``"dropout-scale-at-test"``
        :class:`refnet.Dropout` with ``input_p`` on the inputs and ``p`` on
        every hidden layer, in each mode.  With ``match_dropout_modes`` the
        weights after a Dropout layer of the scale-at-test network take the
        learning-rate scale :math:`1/(1-p)^2` of
        :func:`refnet.ensemble.dropout_parameter_groups`, the exact conversion
        of plain SGD's steps between the modes; without it both modes train at
        the same ``lr``, where scale-at-test learns more slowly (its
        activations are :math:`1-p` times smaller);
    ``"early-stopping"``
        a random ``validation_fraction`` of the training slice (never the test
        rows) is held out; :class:`refnet.EarlyStopping` on ``val_loss`` with
        ``patience`` stops and restores the best weights.  Its training
        accuracy is on the rows it trained on.

    The lecture's claim (dropout lowers the training accuracy and raises the
    test accuracy) shows in ``fit_accuracy`` (training accuracy with dropout
    on, what training sees) and ``test_accuracy``; the training accuracy of
    the final weights with dropout off (``train_accuracy``) is also lower as
    long as training stops before the dropout network too fits every training
    image (about 30 epochs at the defaults).

    Parameters
    ----------
    directory : str or path, optional
        A folder with MNIST's test-set IDX files (``t10k-images-idx3-ubyte``
        and ``t10k-labels-idx1-ubyte``, ``.gz`` or raw).  Give it or ``x``.
    x, y : array_like, optional
        Rows in order (float32 or float64) and integer labels, instead of
        ``directory``.
    train_size, test_size : int
        ``test_size=None`` tests on every row after the training slice.
    hidden : int or sequence of int
        Hidden-layer widths (ReLU).
    epochs, batch_size, lr, momentum : the optimizer's run
    weight_decay : float
        L2's :math:`\lambda`.
    p, input_p : float in [0, 1)
        Dropout on the hidden layers and on the inputs (0: no input dropout).
    match_dropout_modes : bool
    patience : int
        Early stopping's patience, in epochs.
    validation_fraction : float in (0, 1)
    methods : sequence of str
        A subset of :data:`OVERFITTING_METHODS` to run.
    seed : int
        Derives the initial weights, the test rows, the validation rows, the
        batch order and the dropout masks.
    dtype : float32 or float64
        For images read from ``directory`` (``x`` keeps its own).

    Returns
    -------
    OverfittingResult
    """
    methods = tuple(methods) if not isinstance(methods, str) else (methods,)
    unknown = [m for m in methods if m not in OVERFITTING_METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(OVERFITTING_METHODS)}, got {list(methods)}")
    seed = _validate.non_negative_int(seed, "seed")
    train_size = _validate.positive_int(train_size, "train_size")
    test_size = None if test_size is None else _validate.positive_int(test_size, "test_size")
    hidden = _hidden_widths(hidden)
    epochs = _validate.positive_int(epochs, "epochs")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    patience = _validate.non_negative_int(patience, "patience")
    p, input_p = _probability(p, "p"), _probability(input_p, "input_p")
    validation_fraction = _validate.finite_scalar(validation_fraction, "validation_fraction")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if not isinstance(match_dropout_modes, (bool, np.bool_)):
        raise TypeError(f"match_dropout_modes must be True or False, got {match_dropout_modes!r}")
    # The optimizer checks lr, momentum and weight_decay (naming them) when built here, before any training.
    SGD(lr, momentum=momentum, weight_decay=weight_decay)

    images, labels = _mnist_or_arrays(directory, x, y, dtype)
    if len(images) <= train_size:
        raise ValueError(f"train_size ({train_size}) must leave rows to test on; there are {len(images)}")
    test_seed, validation_seed, network_seed, order_seed = _seeds(seed, 4)
    held_out = np.arange(train_size, len(images))
    if test_size is not None:
        if test_size > len(held_out):
            raise ValueError(f"test_size ({test_size}) must be at most the {len(held_out)} rows after the training slice")
        held_out = np.sort(np.random.default_rng(test_seed).choice(held_out, test_size, replace=False))
    x_train, y_train = images[:train_size], labels[:train_size]
    x_test, y_test = images[held_out], labels[held_out]
    n_classes = int(labels.max()) + 1

    result = OverfittingResult({}, {}, {}, {}, {}, {}, settings=dict(
        train_size=train_size, test_size=len(held_out), hidden=list(hidden), epochs=epochs,
        batch_size=batch_size, lr=float(lr), momentum=float(momentum), weight_decay=float(weight_decay), p=p,
        input_p=input_p, match_dropout_modes=bool(match_dropout_modes), patience=patience,
        validation_fraction=validation_fraction, seed=seed, dtype=np.dtype(images.dtype).name))
    for method in methods:
        mode = {"dropout-inverted": "inverted", "dropout-scale-at-test": "scale-at-test"}.get(method)
        net = _wide_network(images.shape[1], hidden, n_classes, images.dtype, network_seed,
                            dropout=None if mode is None else (input_p, p, mode))
        groups, decay, fit_x, fit_y, extra = [], 0.0, x_train, y_train, {}
        if method == "l2":
            groups, decay = [{"params": ["*.bias"], "weight_decay": False}], weight_decay
        elif mode == "scale-at-test" and match_dropout_modes:
            groups = _scale_at_test_groups(net)
        elif method == "early-stopping":
            order = np.random.default_rng(validation_seed).permutation(train_size)
            n_val = max(1, round(validation_fraction * train_size))
            val, kept = np.sort(order[:n_val]), np.sort(order[n_val:])
            fit_x, fit_y = x_train[kept], y_train[kept]
            extra = {"validation_data": (x_train[val], y_train[val]),
                     "callbacks": [EarlyStopping("val_loss", patience=patience, restore_best_weights=True)]}
        optimizer = SGD(lr, momentum=momentum, weight_decay=decay, groups=groups)
        history = net.fit(fit_x, fit_y, loss=LOSS, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                          seed=order_seed, **extra)
        trained = net.evaluate(fit_x, fit_y, loss=LOSS)
        tested = net.evaluate(x_test, y_test, loss=LOSS)
        result.train_accuracy[method] = float(trained["accuracy"])
        result.test_accuracy[method] = float(tested["accuracy"])
        result.train_loss[method] = float(trained["loss"])
        result.test_loss[method] = float(tested["loss"])
        result.fit_accuracy[method] = float(history["accuracy"][-1])
        result.epochs[method] = len(history["loss"])
    return result


def _scale_at_test_groups(network):
    """Groups that give a scale-at-test network's weights the steps of its inverted twin.

    :func:`refnet.ensemble.dropout_parameter_groups` computes them for a network
    converting *to* scale-at-test, so it is asked about the inverted twin
    (same layers and names).
    """
    twin = copy.deepcopy(network)
    for layer in twin.layers:
        if isinstance(layer, Dropout):
            layer.mode = "inverted"
    return dropout_parameter_groups(twin, to="scale-at-test")
