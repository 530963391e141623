"""Adapters that let :func:`refnet.testing.check_optimizer` drive other libraries' optimizers.

Each adapter is an object with ``step(params, grads)`` on lists of NumPy arrays
and a writable ``lr``, the protocol the check drives: ``step`` steps copies of the
arrays in the library (made on the first step, with the library's optimizer) and
writes the results back into ``params`` in place; ``lr`` is ``None`` before the
first step, and a value set then is applied once the optimizer is made.  Each
runs its library in float64, as the check's textbook does: PyTorch with float64
tensors and default dtype, optax with JAX's 64-bit mode switched on
(``jax_enable_x64``, a global JAX setting the adapter turns on), Keras with
float64 variables and ``floatx``.
The libraries are imported only when an adapter is made (``pip install
'refnet[conformance]'`` installs optax, JAX and Keras).
"""

import os
import warnings

import numpy as np

__all__ = ["torch_optimizer", "optax_transformation", "keras_optimizer"]


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

    Parameters
    ----------
    factory : callable
        ``factory(tensors)`` returns a fresh ``torch.optim`` optimizer over them.
    before_step : callable, optional
        ``before_step(tensors)`` runs after the gradients are set and before
        ``step()``: gradient clipping, ``lambda ts: torch.nn.utils.clip_grad_norm_(ts, 1.0)``.

    Returns
    -------
    object
        The adapter (see the module notes), whose first step calls ``factory`` on the tensors it makes.

    Examples
    --------
    >>> import torch                                             # doctest: +SKIP
    >>> opt = torch_optimizer(lambda ps: torch.optim.RMSprop(ps, lr=0.01))   # doctest: +SKIP
    >>> check_optimizer(opt, "rmsprop", "torch", lr=0.01)        # doctest: +SKIP
    """
    if not callable(factory):
        raise TypeError("factory must be a function of a list of tensors returning a torch.optim optimizer")
    if before_step is not None and not callable(before_step):
        raise TypeError("before_step must be a function of the list of tensors, or None")
    return _TorchOptimizer(factory, before_step)


class _OptaxTransformation:
    """An optax ``GradientTransformation`` stepping JAX copies of NumPy arrays (state made on the first step)."""

    def __init__(self, transformation):
        self._transformation = transformation
        self._state = self._pending_lr = None

    @property
    def lr(self):
        return None if self._state is None else float(self._hyperparams()["learning_rate"])

    @lr.setter
    def lr(self, value):
        if self._state is None:
            self._pending_lr = value
        else:
            self._hyperparams()["learning_rate"] = value

    def _hyperparams(self):
        hyperparams = getattr(self._state, "hyperparams", None)
        if hyperparams is None or "learning_rate" not in hyperparams:
            raise TypeError("a schedule needs optax.inject_hyperparams(...)(learning_rate=...) to set the rate")
        return hyperparams

    def step(self, params, grads):
        import jax.numpy as jnp
        import optax

        tree = [jnp.asarray(p, dtype=jnp.float64) for p in params]
        if self._state is None:
            self._state = self._transformation.init(tree)
            if self._pending_lr is not None:
                self.lr = self._pending_lr
        updates, self._state = self._transformation.update([jnp.asarray(g, dtype=jnp.float64) for g in grads],
                                                           self._state, tree)
        for param, new in zip(params, optax.apply_updates(tree, updates)):
            param[...] = np.asarray(new)


def optax_transformation(transformation):
    """Wrap an optax ``GradientTransformation`` as an optimizer of NumPy arrays.

    Under a ``schedule`` the learning rate must be settable: build the
    transformation with ``optax.inject_hyperparams(optax.adam)(learning_rate=...)``.
    Switches JAX's 64-bit mode on (``jax.config.update("jax_enable_x64", True)``).

    Parameters
    ----------
    transformation : optax.GradientTransformation
        ``optax.adam(1e-3)``, ``optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1))``, ...

    Returns
    -------
    object
        The adapter (see the module notes), with ``transformation``'s state made on its first step.

    Examples
    --------
    >>> import optax                                                   # doctest: +SKIP
    >>> check_optimizer(optax_transformation(optax.rmsprop(0.01)), "rmsprop", "optax", lr=0.01)  # doctest: +SKIP
    """
    import jax

    if not (callable(getattr(transformation, "init", None)) and callable(getattr(transformation, "update", None))):
        raise TypeError(f"transformation must be an optax GradientTransformation, got {type(transformation).__name__}")
    jax.config.update("jax_enable_x64", True)
    return _OptaxTransformation(transformation)


class _KerasOptimizer:
    """A Keras 3 optimizer over float64 variables mirroring NumPy arrays (created on the first step)."""

    def __init__(self, keras, factory):
        self._keras = keras
        self._factory = factory
        self._variables = self._optimizer = self._pending_lr = None

    @property
    def lr(self):
        return None if self._optimizer is None else float(self._optimizer.learning_rate)

    @lr.setter
    def lr(self, value):
        if self._optimizer is None:
            self._pending_lr = value
        else:
            self._optimizer.learning_rate = value

    def step(self, params, grads):
        keras = self._keras
        floatx = keras.config.floatx()
        # The learning-rate variable and the Python constants (weight_decay) take floatx: float32
        # would round them by ~1e-8, more than the conformance tolerance.
        keras.config.set_floatx("float64")
        try:
            self._step(keras, params, grads)
        finally:
            keras.config.set_floatx(floatx)

    def _step(self, keras, params, grads):
        if self._optimizer is None:
            self._variables = [keras.Variable(np.array(p), dtype="float64") for p in params]
            self._optimizer = self._factory()
            if self._pending_lr is not None:
                self.lr = self._pending_lr
        tensors = [keras.ops.convert_to_tensor(np.asarray(g), dtype="float64") for g in grads]
        with warnings.catch_warnings():
            # Keras' torch Nadam converts a tensor with np.array(tensor, copy=False), which torch's
            # __array__ does not accept: a DeprecationWarning under NumPy 2, not the user's doing.
            warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy", DeprecationWarning)
            self._optimizer.apply_gradients(zip(tensors, self._variables))
        for param, variable in zip(params, self._variables):
            param[...] = _to_numpy(variable.value)


def _to_numpy(tensor):
    detach = getattr(tensor, "detach", None)  # the torch backend: keras' own conversion warns under NumPy 2
    return np.asarray(detach().cpu().numpy() if detach is not None else tensor)


def keras_optimizer(factory):
    """Wrap ``factory() -> keras.optimizers.Optimizer`` (Keras 3) as an optimizer of NumPy arrays.

    Keras is imported with ``KERAS_BACKEND=torch`` unless another backend is set;
    the factory is called with ``floatx`` float64 so that the learning rate and
    the optimizer's variables are float64.

    Parameters
    ----------
    factory : callable
        A function of no arguments returning a fresh optimizer, e.g.
        ``lambda: keras.optimizers.RMSprop(0.01)``.

    Returns
    -------
    object
        The adapter (see the module notes); it calls ``factory`` once, on its first step.

    Examples
    --------
    >>> opt = keras_optimizer(lambda: keras.optimizers.Adam(1e-3))     # doctest: +SKIP
    >>> check_optimizer(opt, "adam", "keras", lr=1e-3)                # doctest: +SKIP
    """
    if not callable(factory):
        raise TypeError("factory must be a function of no arguments returning a Keras optimizer")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    return _KerasOptimizer(keras, factory)
