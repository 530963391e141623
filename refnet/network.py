r"""A stack of layers, and how it trains: :class:`Sequential`, callbacks, history, files.

``Sequential.fit`` runs mini-batch gradient descent with any optimizer that has
``step(params, grads)``: for each batch, forward, the loss and its gradient
(averaged over the batch), backward (which overwrites the live gradient
arrays), the callbacks' ``on_batch_end``, then ``optimizer.step``.

Callbacks are plain objects with any of the hooks ``on_train_begin``,
``on_epoch_begin``, ``on_batch_end``, ``on_epoch_end`` and ``on_train_end``,
each called as ``hook(network, index, logs)`` (``index`` the epoch, or the
batch within the epoch; ``logs`` a dict such as ``{"loss": 0.3}``); see
:mod:`refnet.callbacks`.  A hook stops training by
setting ``network.stop_training = True``, as in Keras; training then ends after
the current batch.

:meth:`Sequential.save` writes a network to a ``.npz`` file that
:meth:`Sequential.load` reads back as data only (float and text arrays, never a
pickle), every size checked against the file's headers and a limit before
anything is allocated or decompressed: the architecture as JSON text, the
parameters as plain arrays, nothing executable.
"""

import inspect
import io
import json
import math
import signal
import threading
import zipfile
import zlib

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from . import _validate
from .backend import active
from .layers import Dense, Dropout, Layer, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Tanh
from .losses import ACCURACY, LOSSES

__all__ = ["Sequential", "History", "PlainSGD", "NonFiniteError", "LOAD_LIMIT"]

FILE_FORMAT = "refnet.Sequential/1"

# The only layers a file may name; anything else is refused, never looked up.
LAYER_TYPES = {cls.__name__: cls for cls in (Dense, Sigmoid, Tanh, ReLU, LeakyReLU, PReLU, Maxout, Dropout)}

# The shapes a layer's parameters must have, from its config, checked before the
# layer is built (so a tampered config cannot make it allocate something huge).
_PARAMETER_SHAPES = {
    "Dense": lambda c: {"weight": (c["n_in"], c["n_out"]), "bias": (c["n_out"],)},
    "PReLU": lambda c: {"slope": (1 if c["units"] is None else c["units"],)},
}

# The most bytes Sequential.load unpacks a file to, unless told otherwise: ~130 million
# float64 parameters, far above any network here, far below what would exhaust memory.
LOAD_LIMIT = 2**30

# What a damaged or foreign archive makes NumPy and zipfile raise (zipfile raises
# NotImplementedError for a flipped compression or encryption flag, RuntimeError
# for an encrypted member).
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, NotImplementedError, RuntimeError,
                OverflowError, zipfile.BadZipFile, zlib.error)


class History(dict):
    """Per-epoch lists keyed like Keras': ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``.

    A dict; ``history.history`` is the dict itself, as on a Keras ``History``.
    """

    @property
    def history(self):
        return self

    def _append(self, logs):
        for key, value in logs.items():
            self.setdefault(key, []).append(value)


class NonFiniteError(FloatingPointError):
    """``fit`` met a NaN or infinite loss or gradient and stopped before stepping on it.

    The network keeps the parameters of the last good step.  Attributes:
    ``epoch`` and ``batch`` (0-based) where it happened, ``loss`` (the batch's),
    ``parameter`` (the name of the first parameter, in layer order, whose gradient
    is not finite, or None) and ``history`` (the epochs completed before).
    """

    def __init__(self, message, *, epoch, batch, loss, parameter, history):
        super().__init__(message)
        self.epoch, self.batch, self.loss, self.parameter, self.history = epoch, batch, loss, parameter, history


class _FiniteCheck:
    """Whether a batch's loss and every gradient are finite, in BLAS calls that allocate nothing.

    The dot product of a gradient with zeros is exactly 0 when every element is
    finite and NaN as soon as one is not (0 * inf = NaN, and NaN propagates), so
    ``0 * loss + sum of the dots`` is 0 or NaN.  The gradients are the live arrays
    (backward overwrites them in place), viewed flat once, in blocks of at most
    ``_BLOCK`` elements: OpenBLAS runs a longer dot on several threads, and on a
    busy machine waiting for them cost milliseconds at the 90th percentile
    (measured: 28 us median, 4.8 ms p90 for 269,322 gradients; blocks: 42 us, 50 us).
    The dots are SciPy's (42 us; NumPy's ``np.dot`` took 70 us): on one thread each,
    they never wake SciPy's thread pool against NumPy's, which runs the products.
    """

    _BLOCK = 10_000   # OpenBLAS's ?dot stays on one thread up to 10,000 elements

    def __init__(self, grads):
        fast = [g for g in grads if g.dtype in _validate.FLOAT_DTYPES and g.flags.c_contiguous]
        zeros = {g.dtype: np.zeros(self._BLOCK, g.dtype) for g in fast}
        self._dots = [(get_blas_funcs("dot", (g,)), block, zeros[g.dtype][: block.size])
                      for g in fast for block in np.split(g.reshape(-1), range(self._BLOCK, g.size, self._BLOCK))]
        # A custom layer's gradient of another dtype or layout: checked the slow way.
        self._others = [g for g in grads if not any(g is f for f in fast)]

    def __call__(self, loss):
        total = 0.0 * loss
        for dot, block, zeros in self._dots:
            total += dot(block, zeros)
        return total == 0 and all(np.isfinite(g).all() for g in self._others)


class _StepGuard:
    """Holds back SIGINT (Ctrl-C) while an optimizer step runs, then delivers it.

    A step updates the parameter arrays one after another from Python, and
    Python runs a signal handler between any two bytecodes: a KeyboardInterrupt
    could leave some layers stepped and others not.  While ``fit`` runs (in the
    main thread, under a Python-level SIGINT handler), this handler notes a
    SIGINT that arrives during a step and calls the previous handler (which
    raises KeyboardInterrupt) as soon as the step is complete; at any other
    moment it calls it at once.  Outside the main thread nothing is installed
    (signals reach only the main thread).
    """

    def __init__(self):
        self._previous = self._pending = None
        self._stepping = False

    def install(self):
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)

    def restore(self):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        if self._stepping:
            self._pending = (signum, frame)
        else:
            self._previous(signum, frame)

    def step(self, optimizer, params, grads, names):
        self._stepping = True
        try:
            optimizer.step(params, grads, **names)
        finally:
            self._stepping = False
            if self._pending is not None:
                pending, self._pending = self._pending, None
                self._previous(*pending)


class PlainSGD:
    r"""Plain gradient descent :math:`\theta \leftarrow \theta - \eta\, g`, in place.

    A minimal optimizer for tests and examples; :mod:`refnet`'s optimizers
    follow the same ``step(params, grads)`` protocol.

    Parameters
    ----------
    learning_rate : float
        :math:`\eta`, finite.
    """

    def __init__(self, learning_rate):
        self.learning_rate = _validate.finite_scalar(learning_rate, "learning_rate")

    def step(self, params, grads):
        for param, grad in zip(params, grads):
            # The backend's sgd kernel updates in place in one pass, on refnet's threads;
            # `param -= lr * grad` makes a temporary and a second pass (a tenth of a
            # training epoch's time), and BLAS axpy from SciPy would wake SciPy's thread
            # pool against NumPy's, which runs the products (measured: 4x slower epochs).
            if param.flags.c_contiguous and grad.flags.c_contiguous and param.dtype == grad.dtype \
                    and param.shape == grad.shape and param.dtype in _validate.FLOAT_DTYPES:
                active().sgd(param.reshape(-1), grad.reshape(-1), self.learning_rate, 0.0, 0.0, 1.0)
            else:   # reshape would copy, and the update would be lost
                param -= self.learning_rate * grad


class _LossOutput:
    """Calls a loss on a batch; refnet's own losses write the gradient into one array kept for all batches.

    A loss of the user's own is called as ``loss(output, target)``, allocating as it likes.
    """

    def __init__(self, loss_function, rows):
        self._loss, self._rows, self._grad = loss_function, rows, None
        self._takes_out = any(loss_function is known for known in LOSSES.values())

    def __call__(self, output, target):
        if not self._takes_out:
            return self._loss(output, target)
        if self._grad is None or self._grad.dtype != output.dtype or self._grad.shape[1:] != output.shape[1:]:
            self._grad = np.empty((self._rows, *output.shape[1:]), output.dtype)
        return self._loss(output, target, out=self._grad[: len(output)])


def _resolve_loss(loss):
    """(function, accuracy reader or None) for a loss given by name or as a callable."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"loss must be a callable or one of {sorted(LOSSES)}, got {loss!r}")
        return LOSSES[loss], ACCURACY.get(loss)
    if callable(loss):
        return loss, None
    raise TypeError(f"loss must be a loss name or a callable (output, target) -> (loss, grad), got {loss!r}")


def _progress_bar(total):
    try:
        from tqdm import tqdm
    except ImportError:
        raise ImportError(
            "progress=True needs tqdm, an optional dependency: pip install tqdm "
            "(or pip install 'refnet[examples]')"
        ) from None
    return tqdm(total=total, unit="batch")


def _takes_names(step):
    try:
        return "names" in inspect.signature(step).parameters
    except (TypeError, ValueError):   # a callable without a signature Python can read
        return False


_HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_train_end")


def _callbacks(callbacks):
    """``callbacks`` as a list of callback objects, or raise (a lone callback, a class)."""
    if any(hasattr(callbacks, hook) for hook in _HOOKS) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callbacks, got {callbacks!r} (pass [callback] for one)")
    for i, callback in enumerate(callbacks):
        if isinstance(callback, type):
            raise TypeError(f"callbacks[{i}] must be a callback object, got the class {callback.__name__} "
                            f"(call it: {callback.__name__}())")
        if not any(callable(getattr(callback, hook, None)) for hook in _HOOKS):
            raise TypeError(f"callbacks[{i}] must be an object with any of the methods {', '.join(_HOOKS)}, "
                            f"got {callback!r}")
    return list(callbacks)


def _call(callbacks, hook, network, index, logs):
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is not None:
            method(network, index, logs)


class Sequential:
    """Layers applied one after the other.

    Parameters
    ----------
    layers : sequence of Layer
        Layers with parameters (Dense, PReLU) must share one dtype.

    Examples
    --------
    >>> import numpy as np, refnet
    >>> net = refnet.Sequential([refnet.Dense(2, 3, seed=0), refnet.ReLU(), refnet.Dense(3, 1, seed=1)])
    >>> net.forward(np.zeros((4, 2))).shape
    (4, 1)
    >>> [name for name, _ in net.named_parameters()]
    ['0.dense.weight', '0.dense.bias', '2.dense.weight', '2.dense.bias']
    """

    def __init__(self, layers):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("layers must hold at least one layer")
        first_position = {}
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a refnet layer, got {type(layer).__name__}")
            # A layer keeps what its forward pass saw for its backward pass: a second use would
            # overwrite what the first saved, and the gradients would be wrong.
            if id(layer) in first_position:
                raise ValueError(f"layers[{i}] is the same object as layers[{first_position[id(layer)]}]; "
                                 f"each position needs its own layer (a layer keeps its input for the "
                                 f"backward pass)")
            first_position[id(layer)] = i
        dtypes = {layer.dtype for layer in self.layers if hasattr(layer, "dtype")}
        if len(dtypes) > 1:
            raise TypeError(f"layers must share one dtype, got {sorted(d.name for d in dtypes)}")
        self.dtype = dtypes.pop() if dtypes else None
        self._output_width(None, "layers do not fit together")
        self.stop_training = False

    def _output_width(self, width, problem):
        """The network's output width for inputs ``width`` wide (None: unknown), or raise.

        The error names the first layer that cannot take what reaches it.
        """
        for i, layer in enumerate(self.layers):
            try:
                width = layer._output_width(width)
            except ValueError as error:
                source = "" if i == 0 else f" (from layers[{i - 1}] {type(self.layers[i - 1]).__name__})"
                raise ValueError(f"{problem}: layers[{i}] {type(layer).__name__} {error}{source}") from None
        return width

    def __repr__(self):
        return "Sequential([" + ", ".join(map(repr, self.layers)) + "])"

    # --- files -------------------------------------------------------------------

    def save(self, path):
        """Write the architecture and parameters to ``path`` (an ``.npz`` file, written as named).

        >>> import os, tempfile, numpy as np, refnet
        >>> net = refnet.Sequential([refnet.Dense(2, 2, seed=0), refnet.Tanh()])
        >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
        >>> net.save(path)
        >>> np.array_equal(refnet.Sequential.load(path).forward(np.ones((1, 2))), net.forward(np.ones((1, 2))))
        True
        """
        architecture = [{"type": type(layer).__name__, "config": layer.config()} for layer in self.layers]
        for entry in architecture:
            if entry["type"] not in LAYER_TYPES:
                raise TypeError(f"cannot save a {entry['type']} layer: only {sorted(LAYER_TYPES)} are saved")
        with open(path, "wb") as file:
            np.savez(file, __refnet__=np.array(FILE_FORMAT), __layers__=np.array(json.dumps(architecture)),
                     **dict(self.named_parameters()))

    @classmethod
    def load(cls, path, *, max_bytes=LOAD_LIMIT):
        """Read a network written by :meth:`save`.

        The file is read as data only: float and text arrays, never a pickle, so
        it can hold no code.  Nothing is allocated or decompressed before its
        size is checked: the archive may unpack to at most ``max_bytes`` bytes
        (:data:`LOAD_LIMIT`, 1 GiB, by default), each member to the size its zip
        entry declares, and each array must have exactly the bytes its header's
        shape needs.  A truncated, tampered, oversized or foreign file raises
        ``ValueError`` saying so; a missing one, ``FileNotFoundError``.
        """
        max_bytes = _validate.positive_int(max_bytes, "max_bytes")
        # A missing file is the caller's FileNotFoundError.
        with open(path, "rb") as file:
            try:
                arrays = _read_npz(file, max_bytes)
            except _READ_ERRORS as error:
                raise ValueError(f"{path} is not a readable .npz file: {error}") from None
        marker = arrays.pop("__refnet__", None)
        if marker is None or marker.shape != () or marker.dtype.kind != "U" or str(marker) != FILE_FORMAT:
            raise ValueError(f"{path} is not a refnet network file (no {FILE_FORMAT!r} marker)")
        layers = [
            _layer_from_file(i, entry, arrays, path)
            for i, entry in enumerate(_architecture(arrays.pop("__layers__", None), path))
        ]
        if arrays:
            raise ValueError(f"{path} has arrays no layer owns: {sorted(arrays)}")
        try:
            return cls(layers)
        except (TypeError, ValueError) as error:   # layers of two dtypes, widths that do not meet
            raise ValueError(f"{path}: its layers do not form a network: {error}") from None

    # --- the layer protocol --------------------------------------------------------

    def forward(self, x, training=False):
        """The network's output for a batch ``x``."""
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, grad_output, input_gradient=True):
        """Back-propagate ∂L/∂(output); fill every layer's gradients; return ∂L/∂(input).

        With ``input_gradient=False`` the first layer may skip ∂L/∂(input) (a
        matrix product, for a Dense layer) and ``None`` may be returned.
        """
        for layer in reversed(self.layers[1:]):
            grad_output = layer.backward(grad_output)
        return self.layers[0].backward(grad_output, input_gradient)

    def named_parameters(self):
        """(name, array) pairs named ``"<index>.<layer type>.<parameter>"``, e.g. ``"0.dense.bias"``."""
        return [
            (f"{i}.{type(layer).__name__.lower()}.{name}", array)
            for i, layer in enumerate(self.layers)
            for name, array in layer.named_parameters()
        ]

    def parameters(self):
        """All parameter arrays, live, in :meth:`named_parameters` order."""
        return [array for _, array in self.named_parameters()]

    def gradients(self):
        """All gradient arrays, live, aligned with :meth:`parameters`."""
        return [grad for layer in self.layers for grad in layer.gradients()]

    # --- training and inference ----------------------------------------------------

    def _fit_forward(self, x):
        """``forward(x, training=True)`` into the layers' kept work arrays (see ``Layer._fit_forward``)."""
        for layer in self.layers:
            x = layer._fit_forward(x)
        return x

    def _fit_backward(self, grad_output):
        """``backward(grad_output, input_gradient=False)`` into the layers' kept work arrays."""
        for layer in reversed(self.layers[1:]):
            grad_output = layer._fit_backward(grad_output, True)
        self.layers[0]._fit_backward(grad_output, False)

    def _infer(self, x):
        """``forward(x)`` for inference, leaving what the next ``backward`` reads as it was.

        So ``predict`` or ``evaluate`` from a callback (or a loss) during ``fit``
        cannot change the gradients of the batch being trained on.
        """
        saved = [layer._backward_state() for layer in self.layers]
        try:
            return self.forward(x)
        finally:
            for layer, state in zip(self.layers, saved):
                layer._restore_backward_state(state)

    def _non_finite(self, epoch, batch, loss, history):
        """The NonFiniteError for a batch whose loss or gradients are not all finite."""
        parameter = next((name for (name, _), grad in zip(self.named_parameters(), self.gradients())
                          if not np.isfinite(grad).all()), None)
        where = ("every gradient is finite" if parameter is None else
                 f"the first parameter whose gradient is not finite is {parameter} "
                 f"(layers[{parameter.split('.')[0]}])")
        return NonFiniteError(
            f"fit stopped at epoch {epoch}, batch {batch}: the loss is {loss} and {where}; the network "
            f"keeps the parameters of the last good step. Check the data for NaN/inf, lower the "
            f"learning rate, or pass check_finite=False to train on regardless.",
            epoch=epoch, batch=batch, loss=loss, parameter=parameter, history=history)

    def _inputs(self, x, name="x"):
        x = _validate.matrix(x, name, self.dtype, min_rows=1)
        self._output_width(x.shape[1], f"{name} of shape {x.shape} does not fit the network")
        return x

    def _targets(self, y, x, loss_function, name="y", x_name="x"):
        """``y`` as an array (float targets in the network's dtype), checked against the loss once, up front."""
        # A network of parameter-free layers has no dtype of its own: its outputs take x's.
        dtype = x.dtype if self.dtype is None else self.dtype
        y = np.asarray(y)
        if y.dtype.kind == "f":
            y = y.astype(dtype, copy=False)
        if y.ndim == 0 or len(y) != len(x):
            got = "a scalar" if y.ndim == 0 else f"{len(y)}"
            raise ValueError(f"{name} must have one target per row of {x_name} ({len(x)}), got {got}")
        # Run the loss's checks on all targets at once, so a bad label fails
        # before any parameter has changed (rather than in some later batch).
        width = self._output_width(x.shape[1], x_name)
        if width is None:   # a layer of the user's own does not say: ask the network
            width = self._infer(x[:1]).shape[1]
        try:
            loss_function(np.full((len(x), width), 0.5, dtype=dtype), y)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{name} does not suit the loss: {error}") from None
        # Integer labels as intp, once: the loss kernels index with intp, and a batch of another
        # integer dtype would be converted (allocated) on every step.
        if y.dtype.kind in "iu" and np.can_cast(y.dtype, np.intp):
            y = y.astype(np.intp, copy=False)
        return y

    def predict(self, x, batch_size=None):
        """The network's outputs for ``x``, computed ``batch_size`` rows at a time (all at once by default)."""
        x = self._inputs(x)
        step = len(x) if batch_size is None else _validate.positive_int(batch_size, "batch_size")
        return np.concatenate([self._infer(x[i : i + step]) for i in range(0, len(x), step)])

    def evaluate(self, x, y, *, loss, batch_size=None):
        """``{"loss": ..., "accuracy": ...}`` over ``(x, y)`` (accuracy for classification losses)."""
        loss_function, accuracy = _resolve_loss(loss)
        x = self._inputs(x)
        y = self._targets(y, x, loss_function)
        output = self.predict(x, batch_size)
        logs = {"loss": loss_function(output, y)[0]}
        if accuracy is not None:
            logs["accuracy"] = float(accuracy(output, y))
        return logs

    def fit(self, x, y, *, loss, optimizer, epochs, batch_size, validation_data=None, callbacks=(),
            shuffle=True, seed=None, progress=False, regularizer=None, check_finite=True):
        """Train by mini-batch gradient descent; return the :class:`History` of each epoch.

        Parameters
        ----------
        x : array_like, shape (rows, n_in), the network's dtype
        y : array_like
            Integer labels (``"softmax_cross_entropy"``) or targets shaped like the output.
        loss : str or callable
            A name in :data:`refnet.losses.LOSSES`, or ``f(output, target) -> (loss, grad)``.
        optimizer : object with ``step(params, grads)``
        epochs, batch_size : int
            The last batch of an epoch may be smaller.
        validation_data : (x_val, y_val), optional
            Evaluated after each epoch into ``val_loss`` (and ``val_accuracy``).
        callbacks : list or tuple
            Objects with any of ``on_train_begin``, ``on_epoch_begin``, ``on_batch_end``,
            ``on_epoch_end``, ``on_train_end`` (one with none of them is refused: it is
            a mistake such as ``None`` or a bound method).
        shuffle : bool
            Visit the rows in a new random order each epoch.
        seed : None, int or numpy.random.Generator
            For the shuffling.
        progress : bool
            Show a tqdm progress bar (tqdm is an optional dependency).
        regularizer : refnet.regularizers.L2 or L1, optional
            A penalty in the loss: its gradient is added after each backward
            pass (before ``on_batch_end``), and its value to the epoch's ``loss``.
        check_finite : bool
            After each backward pass, check that the batch's loss and every
            gradient are finite (a few BLAS calls, no allocation); if not, raise
            :class:`NonFiniteError` naming the epoch, the batch and the first
            parameter whose gradient is not finite, before any callback or
            optimizer sees them, so the network keeps the parameters of the last
            good step.  ``False`` trains on regardless (the history then shows
            ``nan``).

        While ``fit`` runs, ``network.history`` is the :class:`History` so far:
        after an exception it holds the epochs completed before it.  An epoch is
        recorded after its ``on_epoch_end`` callbacks, with what they added to its
        logs, as Keras' ``History`` records it.
        """
        loss_function, accuracy = _resolve_loss(loss)
        if isinstance(optimizer, type) or not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"optimizer must be an object with a step(params, grads) method, such as "
                            f"refnet.Adam(lr=0.001), got {optimizer!r}")
        if regularizer is not None and (isinstance(regularizer, type)
                                        or not callable(getattr(regularizer, "add_gradient", None))):
            raise TypeError(f"regularizer must be refnet.regularizers.L2 or L1 (or have add_gradient), got {regularizer!r}")
        epochs = _validate.positive_int(epochs, "epochs")
        batch_size = _validate.positive_int(batch_size, "batch_size")
        x = self._inputs(x)
        y = self._targets(y, x, loss_function)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError(f"validation_data must be a pair (x_val, y_val), got {type(validation_data).__name__}")
            x_val = self._inputs(validation_data[0], "validation_data[0]")
            y_val = self._targets(validation_data[1], x_val, loss_function, "validation_data[1]", "validation_data[0]")
        callbacks = _callbacks(callbacks)
        shuffle, progress = _validate.flag(shuffle, "shuffle"), _validate.flag(progress, "progress")
        metrics = ["loss", *(["accuracy"] if accuracy is not None else [])]
        metrics += [f"val_{key}" for key in metrics] if validation_data is not None else []
        rng = _validate.generator(seed)
        batches = range(0, len(x), batch_size)
        bar = _progress_bar(epochs * len(batches)) if progress else None
        params, grads = self.parameters(), self.gradients()
        # refnet's optimizers select parameter groups by these names; PlainSGD and
        # other step(params, grads) optimizers are called without them.
        step_names = ({"names": [name for name, _ in self.named_parameters()]}
                      if _takes_names(optimizer.step) else {})
        check = _FiniteCheck(grads) if _validate.flag(check_finite, "check_finite") else None
        # No allocation per step: each batch is gathered into these, the loss
        # writes its gradient into a kept array, and each layer keeps its outputs
        # and input gradients (Layer._fit_forward); the smaller last batch uses
        # their first rows.  The row order is shuffled in place (Generator.permutation(n)
        # is shuffle(arange(n)): the same order, draw for draw).
        rows_in_order = np.arange(len(x))
        order = rows_in_order.copy()
        x_batch = np.empty((min(batch_size, len(x)), *x.shape[1:]), x.dtype)
        y_batch = np.empty((len(x_batch), *y.shape[1:]), y.dtype)
        loss_out = _LossOutput(loss_function, len(x_batch))
        history = self.history = History()
        self.stop_training = False
        _call(callbacks, "on_train_begin", self, 0, {"metrics": metrics})
        guard = _StepGuard()
        try:
            guard.install()
            for epoch in range(epochs):
                _call(callbacks, "on_epoch_begin", self, epoch, {})
                if shuffle:
                    np.copyto(order, rows_in_order)
                    rng.shuffle(order)
                total_loss = total_correct = seen = 0
                for batch, start in enumerate(batches):
                    rows = order[start : start + batch_size]
                    # mode="clip" (the rows are in range anyway): "raise" gathers into a temporary first.
                    targets = np.take(y, rows, axis=0, out=y_batch[: len(rows)], mode="clip")
                    output = self._fit_forward(np.take(x, rows, axis=0, out=x_batch[: len(rows)], mode="clip"))
                    batch_loss, grad = loss_out(output, targets)
                    self._fit_backward(grad)
                    if regularizer is not None:
                        batch_loss += regularizer.add_gradient(self.named_parameters(), grads)
                    if check is not None and not check(batch_loss):
                        raise self._non_finite(epoch, batch, batch_loss, history)
                    total_loss += batch_loss * len(rows)
                    if accuracy is not None:
                        total_correct += accuracy(output, targets) * len(rows)
                    seen += len(rows)
                    _call(callbacks, "on_batch_end", self, batch, {"loss": batch_loss})
                    guard.step(optimizer, params, grads, step_names)
                    if bar is not None:
                        bar.update()
                    if self.stop_training:
                        break
                logs = {"loss": total_loss / seen}
                if accuracy is not None:
                    logs["accuracy"] = float(total_correct / seen)
                if validation_data is not None:
                    logs.update({f"val_{key}": value for key, value in
                                 self.evaluate(x_val, y_val, loss=loss).items()})
                if bar is not None:
                    bar.set_postfix(logs)
                _call(callbacks, "on_epoch_end", self, epoch, logs)
                # After the callbacks, as Keras' History (the last callback) does: what they add
                # to the logs, such as a learning rate, is recorded too.
                history._append(logs)
                if self.stop_training:
                    break
        finally:
            guard.restore()
            if bar is not None:
                bar.close()
        _call(callbacks, "on_train_end", self, len(history.get("loss", ())), dict(history))
        return history


def _read_npz(file, max_bytes):
    """The arrays of an ``.npz`` archive by name, read with every size checked first.

    Only stored or deflated members (what ``np.savez`` and ``np.savez_compressed``
    write) are read, each to at most the size its zip entry declares (zipfile
    stops there, and the CRC check catches a lie), after the declared sizes were
    summed and checked against ``max_bytes``.  Each member's ``.npy`` header is
    parsed without running anything (``ast.literal_eval``), its dtype must be a
    float or text one (never object: no pickle), and its shape must need exactly
    the bytes that follow before an array is made of them.
    """
    with zipfile.ZipFile(file) as archive:
        members = archive.infolist()
        total = sum(member.file_size for member in members)
        if total > max_bytes:
            raise ValueError(f"it would unpack to {total} bytes, more than max_bytes={max_bytes}")
        arrays = {}
        for member in members:
            name = member.filename.removesuffix(".npy")
            if name == member.filename or name in arrays:
                raise ValueError(f"member {member.filename!r} is not a single .npy array")
            if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ValueError(f"member {member.filename!r} uses compression {member.compress_type}; "
                                 "only stored or deflated members are read")
            with archive.open(member) as stream:
                data = stream.read(member.file_size + 1)
            if len(data) != member.file_size:
                raise ValueError(f"member {member.filename!r} has {len(data)} bytes, "
                                 f"its entry declares {member.file_size}")
            arrays[name] = _npy_array(data, member.filename)
    return arrays


def _npy_array(data, name):
    """The array in ``.npy`` bytes ``data``, if its header is plain and its shape fits the bytes."""
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"member {name!r} has .npy version {version}, not 1.0 or 2.0")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(stream)
    if dtype.hasobject or dtype.kind not in "fU":
        raise ValueError(f"member {name!r} holds dtype {dtype}; a network file holds only float and text arrays")
    count, offset = math.prod(shape), stream.tell()
    if count * dtype.itemsize != len(data) - offset:   # Python ints: a forged shape cannot wrap around
        raise ValueError(f"member {name!r}: shape {shape} of {dtype} needs {count * dtype.itemsize} bytes, "
                         f"it has {len(data) - offset}")
    return np.frombuffer(data, dtype, count, offset).reshape(shape, order="F" if fortran_order else "C")


def _architecture(text, path):
    """The list of {"type", "config"} entries stored in ``__layers__``, or raise."""
    try:
        if text is None or text.shape != () or text.dtype.kind != "U":
            raise ValueError("missing")
        entries = json.loads(str(text))
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and set(e) == {"type", "config"} and isinstance(e["config"], dict)
            for e in entries
        ):
            raise ValueError("not a list of layers")
    except (ValueError, RecursionError) as error:   # RecursionError: JSON nested beyond Python's stack
        raise ValueError(f"{path} has no valid layer list (__layers__): {error}") from None
    return entries


def _layer_from_file(i, entry, arrays, path):
    """Build layer ``i`` from its file entry and move its parameters out of ``arrays``."""
    kind, config = entry["type"], entry["config"]
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        raise ValueError(f"{path}: layer {i} has an unknown type {kind!r}")
    prefix = f"{i}.{kind.lower()}."
    try:
        shapes = _PARAMETER_SHAPES.get(kind, lambda c: {})(config)
        for name, shape in shapes.items():
            stored = arrays.get(prefix + name)
            if stored is None or stored.shape != shape or stored.dtype != np.dtype(config["dtype"]):
                raise ValueError(f"parameter {prefix + name} is missing or does not match the config")
        layer = LAYER_TYPES[kind](**config)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: layer {i} ({kind}) is damaged: {error}") from None
    for name, array in layer.named_parameters():
        array[...] = arrays.pop(prefix + name)
    return layer
