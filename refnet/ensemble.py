r"""Dropout as an ensemble, exactly: every mask enumerated, and the conversions between conventions.

A network with :math:`M` droppable units is an ensemble of :math:`2^M`
thinned networks that share their weights [Srivastava2014]_; mask :math:`m`
has the Bernoulli weight :math:`\pi(m) = \prod_i p^{1 - m_i} (1 - p)^{m_i}`.
At test time dropout uses *weight scaling* instead of averaging them.

* For a network that is linear in its dropped units (no non-linearity after
  the first dropout layer; any depth, independent masks per layer), the output
  is affine in each mask separately, so weight scaling equals the
  :math:`\pi`-weighted arithmetic mean of the ensemble *exactly*.
* Under a softmax it equals the normalised *geometric* mean of the predicted
  probabilities, :math:`G_k \propto \exp \sum_m \pi(m) \log P_k(m)`, not their
  arithmetic mean [Baldi2013]_.
* For sigmoid, ReLU or Maxout hidden layers it is an approximation;
  :func:`dropout_ensemble` measures the gap.

:func:`convert_dropout` and :func:`dropout_parameter_groups` turn a network
and its plain-SGD hyper-parameters from one convention into the other.

References
----------
Defined once in the documentation's bibliography (``docs/bibliography.rst``);
the notes here say which part of each source this module follows.

* [Srivastava2014] N. Srivastava et al., "Dropout: A Simple Way to Prevent Neural
  Networks from Overfitting", JMLR 15, 2014, §4 and §7.5.
* [Baldi2013] P. Baldi and P. Sadowski, "Understanding Dropout", NIPS 2013
  (the geometric mean under a softmax).
"""

import copy
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

from . import _validate
from .functional import DROPOUT_MODES, softmax
from .layers import Dense, Dropout

__all__ = ["DropoutEnsemble", "dropout_ensemble", "convert_dropout", "dropout_parameter_groups"]


@dataclass(frozen=True)
class DropoutEnsemble:
    """What :func:`dropout_ensemble` measured, each of shape (rows, outputs), in float64.

    The means sum :math:`2^M` weighted terms, so they are accumulated in float64
    whatever the network's dtype; ``weight_scaled`` is converted to match.
    ``geometric_mean`` is ``None`` unless ``output="softmax"``.

    Attributes
    ----------
    arithmetic_mean : ndarray
        The mean of the :math:`2^M` masked networks' outputs, each weighted by its mask's probability.
    geometric_mean : ndarray or None
        Their renormalised weighted geometric mean (``output="softmax"`` only).
    weight_scaled : ndarray
        The one network with the weights scaled, as used at test time.
    masks : int
        :math:`2^M`, the number of masks summed over.
    """

    arithmetic_mean: np.ndarray
    geometric_mean: np.ndarray | None
    weight_scaled: np.ndarray
    masks: int

    @property
    def gap(self):
        r"""Largest :math:`|\text{weight scaling} - \text{arithmetic mean}|`: 0 to round-off for linear networks."""
        return float(np.max(np.abs(self.weight_scaled - self.arithmetic_mean), initial=0.0))


def _dropout_widths(network, x):
    """[(layer index, units)] for every Dropout layer, from one test-time pass."""
    widths, h = [], x
    for index, layer in enumerate(network.layers):
        if isinstance(layer, Dropout):
            widths.append((index, h.shape[1]))
        h = layer.forward(h, training=False)
    return widths


def dropout_ensemble(network, x, *, output="identity", max_units=16):
    r"""Average a network over every dropout mask, weighted by its probability.

    Each thinned network applies its mask as the layer's mode does while
    training (kept units scaled by :math:`1/(1-p)` when inverted); a mask is
    shared by all rows of ``x``, which gives each row's expectation.

    .. math:: \bar y = \sum_{m \in \{0,1\}^M} \pi(m)\, y(x; m), \qquad
              \pi(m) = \prod_{i=1}^{M} p_i^{1 - m_i} (1 - p_i)^{m_i}

    Parameters
    ----------
    network : Sequential
    x : array_like, shape (rows, n_in)
    output : {"identity", "softmax"}
        ``"softmax"`` treats the outputs as logits: the means are then of the
        probabilities, and the geometric mean is computed too.
    max_units : int
        Refuse networks with more droppable units than this (there are
        :math:`2^M` masks).

    Returns
    -------
    DropoutEnsemble
    """
    if output not in ("identity", "softmax"):
        raise ValueError(f"output must be 'identity' or 'softmax', got {output!r}")
    x = _validate.matrix(x, "x", network.dtype, min_rows=1)
    widths = _dropout_widths(network, x)
    units = sum(width for _, width in widths)
    if units > _validate.positive_int(max_units, "max_units"):
        raise ValueError(f"the network has {units} droppable units (2**{units} masks); max_units is {max_units}")

    # Row k of `bits` is mask k; every thinned network runs on a copy of x, all at once.
    count = 2**units
    bits = (np.arange(count)[:, None] >> np.arange(units)) & 1
    log_weight = np.zeros(count)
    h = np.broadcast_to(x, (count,) + x.shape).reshape(count * len(x), -1)
    offset = 0
    masks_by_layer = {}
    for index, width in widths:
        layer_bits = bits[:, offset : offset + width]
        p = network.layers[index].p
        with np.errstate(divide="ignore"):   # p = 0: log 0 for masks that drop a unit, weight 0
            log_weight += np.where(layer_bits == 1, np.log1p(-p), np.log(p)).sum(axis=1)
        masks_by_layer[index] = np.repeat(layer_bits, len(x), axis=0)
        offset += width
    for index, layer in enumerate(network.layers):
        if index in masks_by_layer:
            scale = 1 / (1 - layer.p) if layer.mode == "inverted" else 1.0
            h = np.where(masks_by_layer[index] == 1, h * h.dtype.type(scale), 0)
        else:
            h = layer.forward(h, training=False)
    members = h.reshape(count, len(x), -1)
    weights = np.exp(log_weight)[:, None, None]

    weight_scaled = network.forward(x, training=False).astype(np.float64)
    members = members.astype(np.float64)
    geometric = None
    if output == "softmax":
        weight_scaled = softmax(weight_scaled)
        # log P from the logits (log-sum-exp), not log(softmax(z)): a probability that
        # underflows to 0 would give log 0 and a geometric mean of exactly 0 where it is not.
        log_mean = np.sum(weights * log_softmax(members, axis=-1), axis=0)
        geometric = softmax(log_mean)   # exp, then normalised over the classes
        members = softmax(members)
    return DropoutEnsemble(np.sum(weights * members, axis=0), geometric, weight_scaled, count)


def _dropout_dense_pairs(network):
    """(Dropout index, index of the Dense layer right after it) for every Dropout layer."""
    pairs = []
    for index, layer in enumerate(network.layers):
        if isinstance(layer, Dropout):
            following = network.layers[index + 1] if index + 1 < len(network.layers) else None
            if not isinstance(following, Dense):
                raise ValueError(
                    f"layer {index} (Dropout) must be followed by a Dense layer, whose weights absorb "
                    f"the (1 - p) scale; got {type(following).__name__ if following else 'the end of the network'}"
                )
            pairs.append((index, index + 1))
    return pairs


def convert_dropout(network, mode):
    r"""A copy of ``network`` with every Dropout layer in ``mode``, making the same predictions.

    The weights that multiply dropped units (those of the Dense layer after each
    Dropout layer) absorb the scale:

    .. math:: W_\text{inverted} = (1 - p)\, W_\text{scale-at-test}

    Biases and every other parameter are unchanged.  Each Dropout layer must be
    followed by a Dense layer.  The copies of the Dropout layers keep their
    random streams' current state, so both networks draw the same masks.

    Parameters
    ----------
    network : Sequential
    mode : {"inverted", "scale-at-test"}
        The convention of the copy's Dropout layers.

    Returns
    -------
    Sequential
        The converted copy; ``network`` is unchanged.
    """
    if mode not in DROPOUT_MODES:
        raise ValueError(f"mode must be one of {list(DROPOUT_MODES)}, got {mode!r}")
    converted = copy.deepcopy(network)
    for dropout_index, dense_index in _dropout_dense_pairs(converted):
        dropout = converted.layers[dropout_index]
        if dropout.mode != mode:
            keep = 1 - dropout.p
            dense = converted.layers[dense_index]
            factor = keep if mode == "inverted" else 1 / keep
            dense.weight *= dense.weight.dtype.type(factor)
            dropout.mode = mode
    return converted


def dropout_parameter_groups(network, *, to="inverted"):
    r"""Optimizer groups under which SGD trains the converted network alike.

    For the weights :math:`W` after a Dropout layer, the inverted convention's
    gradient is :math:`1/(1-p)` times the other's while the weight itself is
    :math:`(1-p)` times it, so matching steps need

    .. math:: \eta_\text{inverted} = (1-p)^2\, \eta, \qquad
              \lambda_\text{inverted} = \lambda / (1-p)^2, \qquad
              \lambda_{1,\text{inverted}} = \lambda_1 / (1-p)

    while every other parameter keeps :math:`\eta` and :math:`\lambda` (the
    gradients reaching them are the same in both conventions).  One global
    learning rate cannot do this in a network with more than one layer.  The
    update must be linear in the gradient: plain SGD, with or without momentum
    (coupled weight decay and L1 included), not RMSProp, Adagrad or Adam, whose
    normalisation by the gradient's size undoes the scale.

    Parameters
    ----------
    network : Sequential
        The network as it is (its Dropout layers in either mode).
    to : {"inverted", "scale-at-test"}
        The mode of the network converted by :func:`convert_dropout` that the groups train.

    Returns
    -------
    list of dict
        ``groups=`` for :class:`refnet.SGD`: one
        ``{"params": [name], "lr_scale": s, "weight_decay_scale": 1 / s, "l1_scale": 1 / sqrt(s)}`` per
        weight after a Dropout layer not yet in mode ``to``, named as in
        :meth:`Sequential.named_parameters`; towards ``"scale-at-test"`` the
        factors are the reciprocals.
    """
    if to not in DROPOUT_MODES:
        raise ValueError(f"to must be one of {list(DROPOUT_MODES)}, got {to!r}")
    groups = []
    names = [name for name, _ in network.named_parameters()]
    for dropout_index, dense_index in _dropout_dense_pairs(network):
        dropout = network.layers[dropout_index]
        if dropout.mode == to:
            continue
        keep = 1 - dropout.p
        factor = keep**2 if to == "inverted" else 1 / keep**2
        weight_name = next(name for name in names if name.startswith(f"{dense_index}.") and name.endswith(".weight"))
        groups.append({"params": [weight_name], "lr_scale": factor, "weight_decay_scale": 1 / factor,
                       "l1_scale": 1 / math.sqrt(factor)})
    return groups
