r"""Regularisers in the loss: L2 and L1 penalties on the weights, with their gradients [Lee]_.

.. math:: L'(\theta) = L(\theta) + \frac{\lambda}{2}\lVert\theta\rVert_2^2
          \quad\Rightarrow\quad w \leftarrow (1 - \eta\lambda)\,w - \eta\,\frac{\partial L}{\partial w}
          \quad\text{(plain SGD: "weight decay")}

.. math:: L'(\theta) = L(\theta) + \lambda\lVert\theta\rVert_1
          \quad\Rightarrow\quad w \leftarrow w - \eta\,\frac{\partial L}{\partial w} - \eta\lambda\operatorname{sgn}(w),
          \qquad \operatorname{sgn}(0) = 0

Biases are excluded by default (they do not multiply inputs, and shrinking
them does not simplify the function), switchable with ``include_biases``.
PReLU's slopes are always excluded: decay would push them to zero, towards a
plain ReLU, which is why He et al. (2015, §2.1), who introduced them, train
them without it (Keras' ``PReLU`` has its own ``alpha_regularizer``, None by
default).  Parameters are recognised by the names of
:meth:`Sequential.named_parameters`: a name ending in ``.bias`` is a bias, one
ending in ``.slope`` a slope.

Conventions elsewhere: Keras' ``l2(l)`` has no ½ (its gradient is 2·l·θ);
scikit-learn's MLP divides its ``alpha`` penalty by the batch size.  With plain
SGD, loss-side L2 gives the same trajectory as optimizer-side coupled weight
decay (``refnet.SGD(weight_decay=λ)``) applied to the same parameters: that
decays every parameter, so it equals ``L2(λ, include_biases=True)``, or the
default ``L2(λ)`` when a parameter group turns the biases' decay off (and
PReLU's, if the network has one); with RMSProp or Adam it does not equal
decoupled decay (AdamW).

Pass one to :meth:`Sequential.fit` as ``regularizer=``: after each backward
pass it adds its gradient to the parameters' gradients, and the epoch's
``loss`` in the history includes the penalty (``val_loss`` is the data loss).

References
----------
.. [Lee] Hung-yi Lee, "Tips for Training DNN", NTU (regularisation).
"""

import numpy as np

from . import _validate

__all__ = ["L2", "L1"]


class _Penalty:
    def __init__(self, lam, *, include_biases=False):
        self.lam = _validate.finite_scalar(lam, "lam")
        if self.lam < 0:
            raise ValueError(f"lam must be non-negative, got {self.lam}")
        self.include_biases = bool(include_biases)
        self._work = {}

    def _work_array(self, w):
        """A scratch array of ``w``'s shape and dtype, kept: fit adds the gradient on every step,
        and a fresh parameter-sized temporary per call was the step's largest allocation."""
        key = (w.shape, w.dtype)
        if key not in self._work:
            self._work[key] = np.empty(w.shape, w.dtype)
        return self._work[key]

    def __repr__(self):
        return f"{type(self).__name__}({self.lam!r}, include_biases={self.include_biases})"

    def _selected(self, named_parameters):
        return [
            (index, array)
            for index, (name, array) in enumerate(named_parameters)
            if not name.endswith(".slope") and (self.include_biases or not name.endswith(".bias"))
        ]

    def penalty(self, named_parameters):
        """The penalty's value for ``(name, array)`` pairs."""
        return float(sum(self._value(array, self._work_array(array))
                         for _, array in self._selected(list(named_parameters))))

    def add_gradient(self, named_parameters, gradients):
        """Add the penalty's gradient to ``gradients`` (aligned with the pairs) in place; return the penalty."""
        named_parameters = list(named_parameters)
        if len(gradients) != len(named_parameters):
            raise ValueError(f"gradients must have one array per parameter ({len(named_parameters)}), got {len(gradients)}")
        selected = self._selected(named_parameters)
        for index, array in selected:   # all checked before any gradient changes
            if gradients[index].shape != array.shape:
                raise ValueError(
                    f"gradients[{index}] must have the shape of parameter {named_parameters[index][0]!r} "
                    f"{array.shape}, got {gradients[index].shape}"
                )
        total = 0.0
        for index, array in selected:
            work = self._work_array(array)
            total += self._value(array, work)
            gradients[index] += self._gradient(array, work)
        return total


class L2(_Penalty):
    r"""L2 penalty :math:`\frac{\lambda}{2}\sum w^2` over the weights; gradient :math:`\lambda w`.

    Parameters
    ----------
    lam : float
        :math:`\lambda \ge 0`.
    include_biases : bool, default False
        Penalise the biases too (by default only the weights).
    """

    def _value(self, w, work):
        return 0.5 * self.lam * float(np.dot(w.ravel(), w.ravel()))

    def _gradient(self, w, work):
        return np.multiply(w, w.dtype.type(self.lam), out=work)


class L1(_Penalty):
    r"""L1 penalty :math:`\lambda\sum |w|` over the weights; gradient :math:`\lambda\operatorname{sgn}(w)`, sgn(0) = 0.

    The subgradient 0 at :math:`w = 0` is the one that leaves exact zeros in
    place, which is how L1 keeps weights sparse.

    Parameters
    ----------
    lam : float
        :math:`\lambda \ge 0`.
    include_biases : bool, default False
        Penalise the biases too (by default only the weights).
    """

    def _value(self, w, work):
        return self.lam * float(np.abs(w, out=work).sum())

    def _gradient(self, w, work):
        return np.multiply(np.sign(w, out=work), w.dtype.type(self.lam), out=work)
