r"""Experiments: runs that show the lecture's claims, returning plain data to print or plot.

* :func:`compare_optimizers` trains one network with each optimizer from the
  same initial weights, on the same data in the same batch order, and returns
  the loss curves (the adaptive-learning-rate part of the lecture).
* :func:`overfitting` trains a wide network on a small slice of MNIST, with no
  regularisation, L2, dropout in each mode and early stopping, and returns the
  training and test accuracy of each ("dropout lowers training accuracy and
  raises test accuracy", claim 9 of the lecture).
* :func:`vanishing` measures the norm of each hidden layer's mean bias
  gradient in a deep sigmoid, ReLU and Maxout network, at initialisation and
  while it trains (claim 3: the sigmoid's shrink towards the input).
* :func:`depth` trains sigmoid and ReLU networks of 1 to 10 hidden layers for
  one budget and returns their training accuracy (claim 10: deeper sigmoid
  nets train worse, ReLU ones do not).

Each takes ``progress=``, a callable ``progress(done, total)`` called after
every epoch (what the command's progress bar follows).  ``vanishing`` and
``depth`` return ``results[variant][metric]``; their results, like the others,
state the lecture's claim (``CLAIM``) and whether the run shows it
(``shows_claim()``).

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
from .layers import Dense, Dropout, Maxout
from .losses import cross_entropy
from .network import Sequential
from .optim import SGD, Adagrad, Adam, RMSProp

__all__ = [
    "OptimizerComparison",
    "compare_optimizers",
    "default_optimizers",
    "COINCIDING_OPTIMIZERS",
    "OverfittingResult",
    "overfitting",
    "OVERFITTING_METHODS",
    "VanishingResult",
    "vanishing",
    "VANISHING_ACTIVATIONS",
    "DepthResult",
    "depth",
    "DEPTH_ACTIVATIONS",
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


def _subset(values, allowed, name):
    """``values`` (a str or a sequence of them) as a tuple, checked to be a non-empty subset of ``allowed``."""
    values = (values,) if isinstance(values, str) else tuple(values)
    if not values or any(v not in allowed for v in values):
        raise ValueError(f"{name} must be a non-empty subset of {list(allowed)}, got {list(values)}")
    return values


def _progress(progress):
    """``progress`` checked: None or a callable ``progress(done, total)``."""
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be None or a callable progress(done, total), got {progress!r}")
    return progress


class _EpochProgress:
    """Callback: after each epoch of one run, ``progress(before + epochs done, total)``."""

    def __init__(self, progress, before, total):
        self.progress, self.before, self.total = progress, before, total

    def on_epoch_end(self, network, epoch, logs):
        if self.progress is not None:
            self.progress(self.before + epoch + 1, self.total)


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


# Pairs of default_optimizers() whose curves coincide by design (to rounding): Lee's
# velocity is -lr times PyTorch's buffer at a constant rate; PyTorch's Adagrad eps
# (1e-10) is negligible next to the root of the summed squared gradients.
COINCIDING_OPTIMIZERS = (
    ("SGD+momentum 0.9 (lee) lr=0.01", "SGD+momentum 0.9 (torch) lr=0.01"),
    ("Adagrad (lee) lr=0.01", "Adagrad (torch) lr=0.01"),
)


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

    CLAIM = ("Adaptive learning rates and momentum, in every convention, train: from one shared start each "
             "lowers the training loss; Lee's and PyTorch's momentum coincide at a constant learning rate, "
             "as do Lee's and PyTorch's Adagrad.")

    def shows_claim(self):
        """``(shown, measured)``: every final loss below the initial one, and the curves of
        :data:`COINCIDING_OPTIMIZERS` present here within 1e-6 of each other."""
        falling = [label for label, curve in self.loss.items() if curve[-1] < curve[0]]
        gaps = {f"{a} / {b}": max(abs(p - q) for p, q in zip(self.loss[a], self.loss[b]))
                for a, b in COINCIDING_OPTIMIZERS if a in self.loss and b in self.loss}
        shown = len(falling) == len(self.loss) and all(gap <= 1e-6 for gap in gaps.values())
        measured = f"{len(falling)} of {len(self.loss)} training losses fell"
        if gaps:
            measured += "; largest gap between coinciding curves " + f"{max(gaps.values()):.1e}"
        return bool(shown), measured

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
                       batch_size=32, hidden=32, seed=0, per_batch=False, progress=None):
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
    progress : callable, optional
        Called as ``progress(done, total)`` after each epoch, counting the
        epochs of all optimizers (``total = len(optimizers) * epochs``).

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
    progress = _progress(progress)

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
    for run, (label, optimizer) in enumerate(optimizers.items()):
        net = copy.deepcopy(start)
        recorder = _Recorder(x, y, per_batch)
        recorder.record(net)
        kwargs = {}
        if validation_data is not None:
            kwargs["validation_data"] = (x_val, y_val)
            initial = net.evaluate(x_val, y_val, loss=LOSS)
        history = net.fit(x, y, loss=LOSS, optimizer=copy.deepcopy(optimizer), epochs=epochs,
                          batch_size=batch_size, seed=order_seed, **kwargs,
                          callbacks=[recorder, _EpochProgress(progress, run * epochs, len(optimizers) * epochs)])
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

    CLAIM = "Dropout lowers the training accuracy and raises the test accuracy of a network that overfits."

    def shows_claim(self):
        """``(shown, measured)``: each dropout method's ``fit_accuracy`` below and ``test_accuracy``
        above those of ``"none"`` (a run without both shows nothing)."""
        dropout = [m for m in ("dropout-inverted", "dropout-scale-at-test") if m in self.test_accuracy]
        if "none" not in self.test_accuracy or not dropout:
            return False, "needs the methods none and a dropout one"
        shown = all(self.fit_accuracy[m] < self.fit_accuracy["none"]
                    and self.test_accuracy[m] > self.test_accuracy["none"] for m in dropout)
        measured = "; ".join(
            f"{m}: training {self.fit_accuracy[m]:.3f} vs {self.fit_accuracy['none']:.3f}, "
            f"test {self.test_accuracy[m]:.3f} vs {self.test_accuracy['none']:.3f}" for m in dropout)
        return bool(shown), measured

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
                seed=0, dtype=np.float32, progress=None):
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
    progress : callable, optional
        Called as ``progress(done, total)`` after each epoch, counting the
        epochs of all methods (``total = len(methods) * epochs``; a run that
        stops early counts its remaining epochs as done when it ends).

    Returns
    -------
    OverfittingResult
    """
    methods = _subset(methods, OVERFITTING_METHODS, "methods")
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
    n_validation = max(1, round(validation_fraction * train_size))
    if "early-stopping" in methods and n_validation >= train_size:
        raise ValueError(f"train_size ({train_size}) leaves no rows to train on after early stopping's validation "
                         f"split ({n_validation} of them, validation_fraction={validation_fraction}); use at least "
                         f"2 training rows or leave 'early-stopping' out of methods")
    # The optimizer checks lr, momentum and weight_decay (naming them) when built here, before any training.
    SGD(lr, momentum=momentum, weight_decay=weight_decay)
    progress = _progress(progress)

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
    for run, method in enumerate(methods):
        mode = {"dropout-inverted": "inverted", "dropout-scale-at-test": "scale-at-test"}.get(method)
        net = _wide_network(images.shape[1], hidden, n_classes, images.dtype, network_seed,
                            dropout=None if mode is None else (input_p, p, mode))
        groups, decay, fit_x, fit_y, extra = [], 0.0, x_train, y_train, {}
        callbacks = [_EpochProgress(progress, run * epochs, len(methods) * epochs)]
        if method == "l2":
            groups, decay = [{"params": ["*.bias"], "weight_decay": False}], weight_decay
        elif mode == "scale-at-test" and match_dropout_modes:
            groups = _scale_at_test_groups(net)
        elif method == "early-stopping":
            order = np.random.default_rng(validation_seed).permutation(train_size)
            val, kept = np.sort(order[:n_validation]), np.sort(order[n_validation:])
            fit_x, fit_y = x_train[kept], y_train[kept]
            extra = {"validation_data": (x_train[val], y_train[val])}
            callbacks.append(EarlyStopping("val_loss", patience=patience, restore_best_weights=True))
        optimizer = SGD(lr, momentum=momentum, weight_decay=decay, groups=groups)
        history = net.fit(fit_x, fit_y, loss=LOSS, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                          seed=order_seed, callbacks=callbacks, **extra)
        if progress is not None:
            progress((run + 1) * epochs, len(methods) * epochs)
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


# --- vanishing gradients ---------------------------------------------------------------

VANISHING_ACTIVATIONS = ("sigmoid", "relu", "maxout")


@dataclasses.dataclass
class VanishingResult:
    """Per-layer gradient norms of :func:`vanishing`, keyed by activation.

    Attributes
    ----------
    layers : list of int
        The widths, input first (``[784, 30, 30, 30, 30, 10]`` on MNIST).
    epochs : list of int
        ``[0, 1, ..., n]``: epochs trained at each point of the histories.
    results : dict of str -> dict
        For each activation: ``init_norms``, the norm of the mean over the
        probe images of :math:`\\partial C/\\partial b` for each hidden layer,
        first hidden layer first, at initialisation; ``norm_history``, those
        norms after each epoch (``norm_history[0]`` is ``init_norms``);
        ``ratio_last_first``, the last hidden layer's initial norm over the
        first's; ``loss`` and ``accuracy`` on the training rows after each
        epoch.
    settings : dict
        The sizes and hyper-parameters of the run.
    """

    layers: list
    epochs: list
    results: dict
    settings: dict

    CLAIM = ("Deep sigmoid nets: the hidden layer nearest the output gets a much larger gradient than the "
             "first (sigma' <= 1/4 at every layer); with ReLU and Maxout the per-layer gradients stay of "
             "similar size.")

    def shows_claim(self):
        """``(shown, measured)``: the sigmoid ratio last/first at least 10, every other within [1/10, 10]."""
        ratios = {name: run["ratio_last_first"] for name, run in self.results.items()}
        shown = all((ratio >= 10) if name == "sigmoid" else (0.1 <= ratio <= 10) for name, ratio in ratios.items())
        measured = ", ".join(f"{name} {ratio:.3g}" for name, ratio in ratios.items())
        return bool(shown), f"ratio last/first hidden layer at initialisation: {measured}"

    def to_dict(self):
        """The result as a plain dict (of lists, dicts and numbers)."""
        return dataclasses.asdict(self)


def _vanishing_network(activation, widths, dtype, seed):
    """Hidden layers of ``activation``, then sigmoid outputs with the classic initialisation.

    Sigmoid hidden layers take the classic :math:`W \\sim \\mathcal N(0, 1/n_{in})`,
    :math:`b \\sim \\mathcal N(0, 1)` of Nielsen's experiment; ReLU takes He's
    :math:`\\mathcal N(0, 2/n_{in})`, zero biases.  Maxout (two pieces per unit)
    takes :math:`\\mathcal N(0, 1/n_{in})` with zero biases: the larger of two
    symmetric pieces has the second moment of one (:math:`\\max(a,b)^2` and
    :math:`\\min(a,b)^2` share a distribution and sum to :math:`a^2 + b^2`), so
    that variance keeps the signal's size from layer to layer, where He's, made
    for ReLU's halving, doubles it at every layer (and SGD at 0.1 diverged on
    MNIST).  The output layer is the same for all, so the activations differ in
    their hidden layers only.
    """
    seeds = _seeds(seed, len(widths) - 1)
    layers = []
    for i, (n, m) in enumerate(zip(widths[:-1], widths[1:])):
        if i == len(widths) - 2 or activation == "sigmoid":
            layers.append(Dense(n, m, activation="sigmoid", init="classic", dtype=dtype, seed=seeds[i]))
        elif activation == "relu":
            layers.append(Dense(n, m, activation="relu", init="he", dtype=dtype, seed=seeds[i]))
        else:
            pieces = Dense(n, 2 * m, init="classic", dtype=dtype, seed=seeds[i])
            pieces.bias[...] = 0
            layers += [pieces, Maxout(2)]
    return Sequential(layers)


def _hidden_bias_gradient_norms(network, x, targets):
    """‖∂C/∂b‖ of every hidden Dense layer, C the cross-entropy averaged over the rows of ``x``."""
    output = network.forward(x, training=True)
    network.backward(cross_entropy(output, targets)[1], input_gradient=False)
    dense = [layer for layer in network.layers if isinstance(layer, Dense)][:-1]
    return [float(np.linalg.norm(layer.grad_bias)) for layer in dense]


class _NormRecorder:
    """Callback: the probe's per-layer norms, the training loss and accuracy after each epoch."""

    def __init__(self, probe, probe_targets, x, targets):
        self.probe, self.probe_targets, self.x, self.targets = probe, probe_targets, x, targets
        self.norms, self.loss, self.accuracy = [], [], []

    def record(self, network):
        self.norms.append(_hidden_bias_gradient_norms(network, self.probe, self.probe_targets))
        logs = network.evaluate(self.x, self.targets, loss="cross_entropy")
        self.loss.append(float(logs["loss"]))
        self.accuracy.append(float(logs["accuracy"]))

    def on_epoch_end(self, network, epoch, logs):
        self.record(network)


def vanishing(data=None, *, activations=VANISHING_ACTIVATIONS, hidden=(30, 30, 30, 30), probe_size=1000,
              epochs=5, batch_size=10, lr=0.1, seed=0, progress=None):
    r"""Per-layer gradient norms of a deep network, at initialisation and while it trains.

    The classic experiment (Nielsen, *Neural Networks and Deep Learning*,
    ch. 5): a network of widths ``[n_in, *hidden, n_classes]`` (on MNIST
    ``[784, 30, 30, 30, 30, 10]``) with sigmoid outputs and the cross-entropy
    cost :math:`C = -\frac1N \sum_{r,j} t \ln a + (1-t)\ln(1-a)` of one-hot
    targets.  For each hidden layer :math:`l` the result holds
    :math:`\lVert \partial C / \partial b_l \rVert`, the gradient averaged
    over the first ``probe_size`` rows, i.e. the norm of the mean of the
    per-image gradients.  Back-propagation multiplies by
    :math:`\sigma' \le 1/4` at every sigmoid layer, so with the classic
    initialisation the first hidden layer's norm is about a hundred times
    smaller than the last's; ReLU's derivative is 0 or 1 and Maxout's picks
    one piece, so theirs stay of similar size.

    The hidden layers differ by activation, everything else is shared (the
    output layer is sigmoid with the classic initialisation): sigmoid hidden
    layers with :math:`W \sim \mathcal N(0, 1/n_{in})`,
    :math:`b \sim \mathcal N(0, 1)`; ReLU with He's initialisation; Maxout
    (two pieces) with :math:`\mathcal N(0, 1/n_{in})` and zero biases, which
    keeps its signal's size from layer to layer.  Each then trains with plain SGD
    (Nielsen's :math:`\eta = 0.1`, batches of 10) on all rows, and the norms
    are measured again after each epoch.

    Parameters
    ----------
    data : (x, y), optional
        Rows and integer labels.  Default: scikit-learn's 8×8 digits (needs
        scikit-learn).
    activations : sequence of str
        A subset of :data:`VANISHING_ACTIVATIONS`.
    hidden : sequence of int
        Hidden-layer widths (at least two, for a first and a last).
    probe_size : int
        How many of the first rows the gradient is averaged over (all rows if
        there are fewer).
    epochs, batch_size, lr : the SGD run (``epochs=0``: initialisation only)
    seed : int
        Derives the initial weights (the same widths and seed give every
        activation's network its own, reproducible draw) and the batch order.
    progress : callable, optional
        ``progress(done, total)`` after each epoch of each activation.

    Returns
    -------
    VanishingResult

    Examples
    --------
    >>> import numpy as np, refnet
    >>> x = np.random.default_rng(0).random((50, 6)); y = np.arange(50) % 3
    >>> result = refnet.experiments.vanishing((x, y), hidden=(5, 5, 5), epochs=1)
    >>> len(result.results["sigmoid"]["init_norms"]), len(result.results["relu"]["norm_history"])
    (3, 2)
    """
    activations = _subset(activations, VANISHING_ACTIVATIONS, "activations")
    hidden = _hidden_widths(hidden)
    if len(hidden) < 2:
        raise ValueError(f"hidden must name at least two hidden layers (a first and a last), got {list(hidden)}")
    probe_size = _validate.positive_int(probe_size, "probe_size")
    epochs = _validate.non_negative_int(epochs, "epochs")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    seed = _validate.non_negative_int(seed, "seed")
    progress = _progress(progress)
    SGD(lr)   # checks lr, naming it, before any work
    x, y = load_digits() if data is None else _classification_data(data, "data")
    n_classes = int(y.max()) + 1
    targets = np.eye(n_classes, dtype=x.dtype)[y]
    probe, probe_targets = x[:probe_size], targets[:probe_size]
    widths = [x.shape[1], *hidden, n_classes]
    network_seed, order_seed = _seeds(seed, 2)

    result = VanishingResult(layers=widths, epochs=list(range(epochs + 1)), results={}, settings=dict(
        rows=len(x), probe_size=len(probe), epochs=epochs, batch_size=batch_size, lr=float(lr), seed=seed,
        optimizer="SGD", cost="cross-entropy on sigmoid outputs", dtype=np.dtype(x.dtype).name))
    for run, activation in enumerate(activations):
        net = _vanishing_network(activation, widths, x.dtype, network_seed)
        recorder = _NormRecorder(probe, probe_targets, x, targets)
        recorder.record(net)
        if epochs:
            net.fit(x, targets, loss="cross_entropy", optimizer=SGD(lr), epochs=epochs, batch_size=batch_size,
                    seed=order_seed, callbacks=[recorder, _EpochProgress(progress, run * epochs,
                                                                         len(activations) * epochs)])
        init = recorder.norms[0]
        result.results[activation] = dict(init_norms=init, norm_history=recorder.norms,
                                          ratio_last_first=init[-1] / init[0] if init[0] else float("inf"),
                                          loss=recorder.loss, accuracy=recorder.accuracy)
    return result


# --- depth -------------------------------------------------------------------------------

DEPTH_ACTIVATIONS = ("sigmoid", "relu")


@dataclasses.dataclass
class DepthResult:
    """Training accuracy against depth of :func:`depth`, keyed by activation.

    Attributes
    ----------
    depths : list of int
        Hidden layers of each network.
    results : dict of str -> dict
        For each activation: ``train_accuracy`` and ``train_loss`` on the
        training rows after the budget, one per depth, with the final weights.
    settings : dict
    """

    depths: list
    results: dict
    settings: dict

    CLAIM = ("Deeper sigmoid nets are worse on the *training* data (a training problem, not overfitting); "
             "ReLU nets of the same depth train.")

    def shows_claim(self):
        """``(shown, measured)``: from the shallowest to the deepest net, sigmoid's training accuracy
        falls by more than 0.1 and ReLU's by at most 0.1 (a run without one of them shows nothing)."""
        if "sigmoid" not in self.results or "relu" not in self.results or len(self.depths) < 2:
            return False, "needs sigmoid and relu at two depths or more"
        sigmoid, relu = self.results["sigmoid"]["train_accuracy"], self.results["relu"]["train_accuracy"]
        shown = sigmoid[-1] < sigmoid[0] - 0.1 and relu[-1] >= relu[0] - 0.1
        return bool(shown), (f"training accuracy from {self.depths[0]} to {self.depths[-1]} hidden layers: "
                             f"sigmoid {sigmoid[0]:.3f} -> {sigmoid[-1]:.3f}, relu {relu[0]:.3f} -> {relu[-1]:.3f}")

    def to_dict(self):
        """The result as a plain dict (of lists, dicts and numbers)."""
        return dataclasses.asdict(self)


def _deep_classifier(activation, n_in, width, depth, n_classes, dtype, seed):
    """``depth`` hidden layers of ``width`` (sigmoid: classic initialisation; ReLU: He), linear outputs."""
    widths = [n_in, *[width] * depth, n_classes]
    seeds = _seeds(seed, len(widths) - 1)
    init = "classic" if activation == "sigmoid" else "he"
    return Sequential([
        Dense(n, m, activation=None if i == depth else activation, init="glorot" if i == depth else init,
              dtype=dtype, seed=seeds[i])
        for i, (n, m) in enumerate(zip(widths[:-1], widths[1:]))
    ])


def depth(data=None, *, depths=tuple(range(1, 11)), activations=DEPTH_ACTIVATIONS, width=30, epochs=10,
          batch_size=32, lr=1e-3, seed=0, progress=None):
    r"""Training accuracy after a fixed budget, against depth, for sigmoid and ReLU networks.

    The lecture's "do not always blame overfitting": a deeper sigmoid network
    is worse on the data it *trains* on, because its first layers barely
    learn (see :func:`vanishing`); ReLU networks of the same depth train.
    Every network has ``depth`` hidden layers of ``width`` units (sigmoid
    with :math:`W \sim \mathcal N(0, 1/n_{in})`, :math:`b \sim \mathcal N(0,
    1)`; ReLU with He's initialisation), linear outputs and the softmax
    cross-entropy, and trains with :class:`refnet.Adam` (``lr``) for
    ``epochs`` epochs of ``batch_size`` rows, in one batch order.  The
    accuracy is that of the final weights on all training rows.

    Parameters
    ----------
    data : (x, y), optional
        Rows and integer labels.  Default: scikit-learn's 8×8 digits.
    depths : sequence of int
        Hidden-layer counts, each at least 1.
    activations : sequence of str
        A subset of :data:`DEPTH_ACTIVATIONS`.
    width, epochs, batch_size, lr : int, int, int, float
    seed : int
    progress : callable, optional
        ``progress(done, total)`` after each epoch of each network.

    Returns
    -------
    DepthResult

    Examples
    --------
    >>> import numpy as np, refnet
    >>> x = np.random.default_rng(0).random((40, 5)); y = np.arange(40) % 2
    >>> result = refnet.experiments.depth((x, y), depths=[1, 3], width=4, epochs=1)
    >>> result.depths, len(result.results["relu"]["train_accuracy"])
    ([1, 3], 2)
    """
    if isinstance(depths, (str, bytes)) or not hasattr(depths, "__iter__"):
        raise TypeError(f"depths must be a sequence of positive ints, got {depths!r}")
    depths = [_validate.positive_int(d, f"depths[{i}]") for i, d in enumerate(depths)]
    if not depths:
        raise ValueError("depths must name at least one depth")
    activations = _subset(activations, DEPTH_ACTIVATIONS, "activations")
    width = _validate.positive_int(width, "width")
    epochs = _validate.positive_int(epochs, "epochs")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    seed = _validate.non_negative_int(seed, "seed")
    progress = _progress(progress)
    Adam(lr)   # checks lr, naming it, before any work
    x, y = load_digits() if data is None else _classification_data(data, "data")
    n_classes = int(y.max()) + 1
    network_seed, order_seed = _seeds(seed, 2)

    result = DepthResult(depths=depths, results={}, settings=dict(
        rows=len(x), width=width, epochs=epochs, batch_size=batch_size, lr=float(lr), seed=seed,
        optimizer="Adam", dtype=np.dtype(x.dtype).name))
    total = len(activations) * len(depths) * epochs
    for a, activation in enumerate(activations):
        accuracy, loss = [], []
        for d, hidden_layers in enumerate(depths):
            net = _deep_classifier(activation, x.shape[1], width, hidden_layers, n_classes, x.dtype, network_seed)
            counter = _EpochProgress(progress, (a * len(depths) + d) * epochs, total)
            net.fit(x, y, loss=LOSS, optimizer=Adam(lr), epochs=epochs, batch_size=batch_size, seed=order_seed,
                    callbacks=[counter])
            logs = net.evaluate(x, y, loss=LOSS)
            accuracy.append(float(logs["accuracy"]))
            loss.append(float(logs["loss"]))
        result.results[activation] = dict(train_accuracy=accuracy, train_loss=loss)
    return result
