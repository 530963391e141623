r"""Callbacks for :meth:`Sequential.fit`: objects with any of its hooks.

The hooks are ``on_train_begin(network, 0, logs)`` (``logs["metrics"]``: the
keys every epoch's logs will have), ``on_epoch_begin``,
``on_batch_end`` (after the backward pass, before the optimizer's step, with
the gradients readable), ``on_epoch_end`` and ``on_train_end``, each called as
``hook(network, index, logs)``; a hook stops training by setting
``network.stop_training = True``, as in Keras.
"""

import math

import numpy as np

from . import _validate

__all__ = ["GradientNorms", "EarlyStopping"]


class GradientNorms:
    """Callback recording the L2 norm of every parameter's gradient after each batch.

    ``norms`` maps each name of :meth:`Sequential.named_parameters` (for example
    ``"0.dense.bias"``) to a list with one norm per batch.  The gradients are the
    batch means of the loss's, read after the backward pass and before the
    optimizer's step: the quantities whose decay towards the input layers is the
    vanishing-gradient problem (Nielsen, ch. 5).
    """

    def __init__(self):
        self.norms = {}

    def on_batch_end(self, network, batch, logs):
        names = [name for name, _ in network.named_parameters()]
        for name, grad in zip(names, network.gradients()):
            self.norms.setdefault(name, []).append(float(np.linalg.norm(grad)))

    def by_layer(self):
        """Per layer (``"0.dense"``, ...): the norm of all its parameters' gradients, per batch."""
        squares = {}
        for name, norms in self.norms.items():
            layer = name.rsplit(".", 1)[0]
            squares[layer] = squares.get(layer, 0) + np.square(norms)
        return {layer: np.sqrt(total).tolist() for layer, total in squares.items()}


class EarlyStopping:
    r"""Stop where the monitored quantity stops improving, and keep the best weights [Lee]_.

    "Stop where the validation loss is lowest": after each epoch the monitored
    value (``logs[monitor]``, ``"val_loss"`` by default) counts as an improvement
    if it beats the best so far by more than ``min_delta``; the first value is the
    first best whatever it is (an infinite loss too), as in Keras, but a NaN never
    is.  After ``patience`` epochs in a row without an improvement (at least one),
    training stops, never after the first epoch, as in Keras; with ``restore_best_weights``
    the parameters are then (and at the end of training in any case) copied
    back from the best epoch, as Keras 3 does.

    Parameters
    ----------
    monitor : str
        A key of the epoch's logs: ``"val_loss"``, ``"val_accuracy"``, ``"loss"``...
    patience : int
        Epochs in a row without improvement after which training stops.
    min_delta : float
        The smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}
        Whether lower or higher is better; ``"auto"`` means higher for accuracy.
    restore_best_weights : bool

    Attributes
    ----------
    best, best_epoch : float, int
    stopped_epoch : int or None
        The epoch after which training stopped, or None.

    References
    ----------
    .. [Lee] Hung-yi Lee, "Tips for Training DNN" (early stopping).
    """

    def __init__(self, monitor="val_loss", *, patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=True):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be the name of a logged value such as 'val_loss', got {monitor!r}")
        self.monitor = monitor
        self.patience = _validate.non_negative_int(patience, "patience")
        self.min_delta = abs(_validate.finite_scalar(min_delta, "min_delta"))
        self.higher_is_better = mode == "max" or (mode == "auto" and "acc" in monitor)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, network, index, logs):
        # fit names the keys every epoch's logs will have: a monitor that is not
        # among them ("val_loss" without validation data, a typo such as
        # "val_acc") fails now, not after the first epoch.
        metrics = logs.get("metrics")
        if metrics is not None and self.monitor not in metrics:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which fit's epoch logs will not have "
                f"(they will have {sorted(metrics)}; val_* needs validation_data)"
            )
        self.best = -np.inf if self.higher_is_better else np.inf
        self.best_epoch, self.stopped_epoch, self.wait = None, None, 0
        self._best_weights = None

    def _improved(self, value):
        if self.best_epoch is None:
            return not math.isnan(value)
        if self.higher_is_better:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, network, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r}, which the epoch's logs lack "
                f"(they have {sorted(logs)}; val_* needs validation_data)"
            )
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_weights = [param.copy() for param in network.parameters()]
            return
        self.wait += 1
        # Keras' rule: stop once `patience` epochs in a row brought no improvement
        # (patience 0 acts as 1: the first such epoch stops), but not after epoch 0.
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            network.stop_training = True

    def on_train_end(self, network, index, logs):
        if self.restore_best_weights and self._best_weights is not None:
            for param, best in zip(network.parameters(), self._best_weights):
                param[...] = best
