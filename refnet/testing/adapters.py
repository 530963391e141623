"""Adapters that let :func:`refnet.testing.check_optimizer` drive other libraries' optimizers.

Each adapter is an object with ``step(params, grads)`` on lists of NumPy arrays
and a writable ``lr``, the protocol the check drives.
"""

import numpy as np

__all__ = ["torch_optimizer"]


class _TorchOptimizer:
    """A ``torch.optim`` optimizer over tensors mirroring NumPy arrays (created on the first step)."""

    def __init__(self, factory, before_step):
        self._factory = factory
        self._before_step = before_step
        self._tensors = self._optimizer = None

    @property
    def lr(self):
        return self._optimizer.param_groups[0]["lr"] if self._optimizer else None

    @lr.setter
    def lr(self, value):
        if self._optimizer is None:
            self._pending_lr = value
        else:
            for group in self._optimizer.param_groups:
                group["lr"] = value

    def step(self, params, grads):
        import torch

        # torch.optim keeps scalar state (NAdam's mu_product) in the default dtype: float32 would
        # differ from the float64 textbook by ~1e-8, more than the conformance tolerance.
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            self._step(torch, params, grads)
        finally:
            torch.set_default_dtype(default)

    def _step(self, torch, params, grads):
        if self._optimizer is None:
            self._tensors = [torch.tensor(np.array(p), requires_grad=True) for p in params]
            self._optimizer = self._factory(self._tensors)
            if hasattr(self, "_pending_lr"):
                self.lr = self._pending_lr
        for tensor, grad in zip(self._tensors, grads):
            tensor.grad = torch.tensor(np.array(grad))
        if self._before_step is not None:
            self._before_step(self._tensors)
        self._optimizer.step()
        for param, tensor in zip(params, self._tensors):
            param[...] = tensor.detach().numpy()


def torch_optimizer(factory, before_step=None):
    """Wrap ``factory(tensors) -> torch.optim.Optimizer`` as an optimizer of NumPy arrays.

    ``before_step(tensors)``, if given, runs after the gradients are set and before
    ``step()``: gradient clipping, ``lambda ts: torch.nn.utils.clip_grad_norm_(ts, 1.0)``.

    >>> import torch                                             # doctest: +SKIP
    >>> opt = torch_optimizer(lambda ps: torch.optim.RMSprop(ps, lr=0.01))   # doctest: +SKIP
    >>> check_optimizer(opt, "rmsprop", "torch", lr=0.01)        # doctest: +SKIP
    """
    if not callable(factory):
        raise TypeError("factory must be a function of a list of tensors returning a torch.optim optimizer")
    if before_step is not None and not callable(before_step):
        raise TypeError("before_step must be a function of the list of tensors, or None")
    return _TorchOptimizer(factory, before_step)
