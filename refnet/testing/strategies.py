"""Hypothesis strategies for refnet's kernels: floats of a NumPy dtype, arrays, shapes, dtypes.

Needs Hypothesis (``pip install 'refnet[testing]'``).  The floating-point
comparisons that go with them are in :mod:`refnet.testing.tolerances`.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp

__all__ = ["DTYPES", "floats", "arrays", "dtypes", "shapes", "nonscalar_shapes", "dtype_and_array", "edge_values",
           "matrix_shapes", "vector_shapes", "elementwise_arguments", "prelu_arguments", "softmax_arguments", "maxout_arguments",
           "dropout_arguments", "dense_arguments", "loss_arguments", "optimizer_arguments"]

DTYPES = (np.float32, np.float64)


def floats(dtype, **kwargs):
    """Hypothesis floats of a NumPy dtype; subnormals and ±0 included, NaN and ±inf not by default.

    Parameters
    ----------
    dtype : float32 or float64
        The dtype whose values are drawn.
    **kwargs
        Passed to ``hypothesis.strategies.floats`` (``min_value``, ``max_value``,
        ``allow_subnormal``, ...); ``allow_nan`` and ``allow_infinity`` default to False.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Python floats, each exactly a value of ``dtype``.
    """
    kwargs.setdefault("allow_nan", False)
    kwargs.setdefault("allow_infinity", False)
    return st.floats(width=np.finfo(dtype).bits, **kwargs)


def arrays(dtype, shape, **kwargs):
    """Arrays of ``dtype`` with elements from :func:`floats`.

    Parameters
    ----------
    dtype : float32 or float64
        The arrays' dtype.
    shape : int, tuple of int, or a strategy of them
        The arrays' shape, as ``hypothesis.extra.numpy.arrays`` takes it.
    **kwargs
        Passed to :func:`floats` for the elements.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Arrays of ``dtype`` and ``shape``.
    """
    return hynp.arrays(dtype, shape, elements=floats(dtype, **kwargs))


dtypes = st.sampled_from(DTYPES)
shapes = hynp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)
nonscalar_shapes = hynp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6)


@st.composite
def dtype_and_array(draw, shape=shapes, **kwargs):
    """A dtype, then an array of it: the shape is drawn first, then the values."""
    dtype = draw(dtypes)
    return draw(arrays(dtype, draw(shape), **kwargs))


# --- valid arguments of each kernel ------------------------------------------------
#
# Each function below draws every argument of a kernel (``refnet.reference.<name>`` and its
# compiled twin ``refnet._core.<name>``), output buffers included, as a dict keyed by the
# kernel's parameter names, satisfying the kernel's constraints: the compiled kernels take
# contiguous 1-D (elementwise, dropout, optimizers) or 2-D (rows) arrays, the public functions
# reshape to those.  A kernel's spec names its strategy (:attr:`refnet.testing.specs.Kernel.inputs`).
# The kernels do not validate (the public functions do): a draw outside the constraints would
# be a bug here, not a finding.

def edge_values(dtype):
    """The values where kernels go wrong: ±0, the smallest subnormal, values either side of the
    kinks at 0, ±1, the exponential's over/underflow region and ±the largest finite value.

    Parameters
    ----------
    dtype : type
        ``numpy.float32`` or ``numpy.float64``: a scalar type, called on each value.

    Returns
    -------
    list of float
        24 values of ``dtype``: each of 0, the smallest subnormal, the smallest normal,
        ``eps``, 1, 36, 40, 88, 700, 800 and the largest finite value, followed by its
        negation (so 0 and -0 appear twice each).
    """
    info = np.finfo(dtype)
    edges = [0.0, -0.0, float(info.smallest_subnormal), float(info.tiny), float(info.eps), 1.0, 36.0, 40.0,
             88.0, 700.0, 800.0, float(info.max)]
    return [float(dtype(sign * value)) for value in edges for sign in (1, -1)]


def _values(dtype, **kwargs):
    """Any finite value of ``dtype`` or an edge value within the bounds given."""
    low, high = kwargs.get("min_value", -np.inf), kwargs.get("max_value", np.inf)
    edges = [value for value in edge_values(dtype) if low <= value <= high]
    return st.one_of(floats(dtype, **kwargs), st.sampled_from(edges))


def _array(draw, dtype, shape, **kwargs):
    return draw(hynp.arrays(dtype, shape, elements=_values(dtype, **kwargs)))


def _parameters(name):
    import inspect

    from .. import reference

    return list(inspect.signature(getattr(reference, name)).parameters)


def _in_order(name, args):
    """``args`` in the order of the kernel's parameters (which the compiled kernels take
    positionally); a parameter without a value is a KeyError here."""
    return {parameter: args[parameter] for parameter in _parameters(name)}


#: Shapes of a batch: empty, a batch of 1, and up to 5 rows of up to 5 columns.
matrix_shapes = hynp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=5)
#: Lengths of the flat arrays the elementwise kernels take: empty, 1, and up to 12.
vector_shapes = hynp.array_shapes(min_dims=1, max_dims=1, min_side=0, max_side=12)


@st.composite
def elementwise_arguments(draw, name):
    """``z`` (and ``grad_output`` of its shape for a backward), Leaky ReLU's ``slope`` in [0, 1],
    ``out``: flat, empty included, either dtype, edge values."""
    dtype, shape = draw(dtypes), draw(vector_shapes)
    parameters = _parameters(name)
    args = {"z": _array(draw, dtype, shape), "out": np.empty(shape, dtype)}
    if "grad_output" in parameters:
        args["grad_output"] = _array(draw, dtype, shape)
    if "slope" in parameters:
        args["slope"] = draw(st.sampled_from([0.0, 0.01, 1.0]) | st.floats(0, 1))
    return _in_order(name, args)


@st.composite
def prelu_arguments(draw, name):
    """``z`` of shape (rows, units), one ``slope`` per unit in [-1, 1], ``grad_output`` of
    ``z``'s shape for the backward, and the output buffers.  Values within ±1e6 (gradient
    ±1e3) so that the slope gradient's sum over rows stays finite."""
    dtype, shape = draw(dtypes), draw(matrix_shapes)
    args = {"z": _array(draw, dtype, shape, min_value=-1e6, max_value=1e6),
            "slope": _array(draw, dtype, shape[-1:], min_value=-1, max_value=1)}
    if name.endswith("_backward"):
        args.update(grad_output=_array(draw, dtype, shape, min_value=-1e3, max_value=1e3),
                    grad_input=np.empty(shape, dtype), grad_slope=np.empty(shape[-1:], dtype))
    else:
        args["out"] = np.empty(shape, dtype)
    return _in_order(name, args)


@st.composite
def softmax_arguments(draw, name):
    """Rows ``z`` (softmax over each row); for the backward, the ``output`` is a softmax of
    such rows and ``grad_output`` has its shape."""
    dtype, shape = draw(dtypes), draw(matrix_shapes)
    if name.endswith("_backward"):
        import refnet

        output = refnet.softmax(_array(draw, dtype, shape, min_value=-30, max_value=30))
        return _in_order(name, {"grad_output": _array(draw, dtype, shape, min_value=-10, max_value=10),
                                "output": output, "out": np.empty(shape, dtype)})
    return _in_order(name, {"z": _array(draw, dtype, shape), "out": np.empty(shape, dtype)})


@st.composite
def maxout_arguments(draw, name):
    """``pieces`` in 1..4 and ``z`` of shape (rows, units * pieces) with ties (values drawn
    from a few), ``grad_output`` of shape (rows, units) for the backward, and ``out``."""
    dtype, pieces, units = draw(dtypes), draw(st.integers(1, 4)), draw(st.integers(0, 4))
    lead = (draw(st.integers(0, 4)),)
    # A small pool of values makes ties (which go to the lowest index) frequent.
    pool = draw(st.lists(_values(dtype), min_size=1, max_size=4))
    z = draw(hynp.arrays(dtype, lead + (units * pieces,), elements=st.sampled_from(pool) | _values(dtype)))
    args = {"z": z, "pieces": pieces}
    if name.endswith("_backward"):
        args.update(grad_output=_array(draw, dtype, lead + (units,)), out=np.empty(z.shape, dtype))
    else:
        args["out"] = np.empty(lead + (units,), dtype)
    return _in_order(name, args)


@st.composite
def dropout_arguments(draw, name):
    """A flat ``z`` (or ``grad_output``), ``p`` in [0, 1), the inverted or scale-at-test
    ``scale``, a seeded generator and a uint8 ``mask``, and ``out``."""
    dtype, size = draw(dtypes), draw(st.integers(0, 40))
    p = draw(st.sampled_from([0.0, 0.5]) | st.floats(0, 1, exclude_max=True))
    scale = draw(st.sampled_from([1.0, 1.0 / (1.0 - p)]))
    args = {"scale": scale, "out": np.empty(size, dtype)}
    if name.endswith("_backward"):
        args.update(grad_output=_array(draw, dtype, size),
                    mask=draw(hynp.arrays(np.uint8, size, elements=st.integers(0, 1))))
    else:
        args.update(z=_array(draw, dtype, size), p=p, mask=np.empty(size, np.uint8),
                    generator=np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
    return _in_order(name, args)


@st.composite
def dense_arguments(draw, name):
    """``x`` (batch, n_in), ``weight`` (n_in, n_out), ``bias`` (n_out,), an activation of
    :data:`refnet.reference.DENSE_ACTIVATIONS` with Leaky ReLU's ``slope``, and the buffers
    of the pass; for the backward ``z`` and ``grad_output`` (batch, n_out), ``grad_input`` may
    be ``None``.  Values within ±1e3 so that no sum overflows; zeros put ``z`` at the kinks."""
    from ..reference.dense import DENSE_ACTIVATIONS

    dtype = draw(dtypes)
    batch, n_in, n_out = (draw(st.integers(0 if i else 1, 5)) for i in range(3))
    bounds = dict(min_value=-1e3, max_value=1e3)
    args = {"x": _array(draw, dtype, (batch, n_in), **bounds), "weight": _array(draw, dtype, (n_in, n_out), **bounds),
            "activation": draw(st.sampled_from(DENSE_ACTIVATIONS)), "slope": draw(st.floats(0, 1)),
            "z": np.empty((batch, n_out), dtype)}
    if name.endswith("_backward"):
        args.update(z=_array(draw, dtype, (batch, n_out), **bounds),
                    grad_output=_array(draw, dtype, (batch, n_out), **bounds),
                    grad_z=np.empty((batch, n_out), dtype),
                    grad_input=draw(st.sampled_from([None, np.empty((batch, n_in), dtype)])),
                    grad_weight=np.empty((n_in, n_out), dtype), grad_bias=np.empty(n_out, dtype))
    else:
        args.update(bias=_array(draw, dtype, (n_out,), **bounds), out=np.empty((batch, n_out), dtype))
    return _in_order(name, args)


@st.composite
def loss_arguments(draw, name):
    """(rows >= 1, columns >= 1) ``logits`` or ``outputs`` and what each loss needs with them:
    integer ``labels`` in range (softmax cross-entropy), ``targets`` in [0, 1] (the binary
    cross-entropies; ``outputs`` in [0, 1] too) or any ``targets`` (squared error); ``grad``."""
    dtype = draw(dtypes)
    shape = draw(hynp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5))
    unit = dict(min_value=0, max_value=1)
    args = {"grad": np.empty(shape, dtype)}
    if name == "softmax_cross_entropy":
        args.update(logits=_array(draw, dtype, shape),
                    labels=draw(hynp.arrays(np.intp, shape[:1], elements=st.integers(0, shape[1] - 1))))
    elif name == "binary_cross_entropy_with_logits":
        args.update(logits=_array(draw, dtype, shape), targets=_array(draw, dtype, shape, **unit))
    elif name == "cross_entropy":
        args.update(outputs=_array(draw, dtype, shape, **unit), targets=_array(draw, dtype, shape, **unit))
    else:
        bounds = dict(min_value=-1e10, max_value=1e10)  # squares of the differences stay finite
        args.update(outputs=_array(draw, dtype, shape, **bounds), targets=_array(draw, dtype, shape, **bounds))
    return _in_order(name, args)


# Valid values of the optimizer kernels' scalar arguments, by name (the union over the kernels'
# versions, so a kernel that gains an argument needs only its name here).
_HYPER = {
    "lr": st.sampled_from([0.0, 1e-3, 0.1, 1.0]), "l2": st.sampled_from([0.0, 0.01]),
    "l1": st.sampled_from([0.0, 0.001]), "keep": st.sampled_from([1.0, 0.99]),
    "momentum": st.sampled_from([0.0, 0.5, 0.9]), "dampening": st.sampled_from([0.0, 0.5]),
    "nesterov": st.booleans(), "lr_in_momentum": st.booleans(), "eps_in_sqrt": st.booleans(),
    "root_state": st.booleans(), "eps_hat": st.booleans(), "correct_first": st.booleans(),
    "amsgrad_corrected": st.booleans(), "old_weight": st.sampled_from([0.9, 0.99]),
    "new_weight": st.sampled_from([0.1, 0.01]), "eps": st.sampled_from([1e-8, 1e-7]),
    "eps_in": st.sampled_from([0.0, 1e-8]), "eps_out": st.sampled_from([0.0, 1e-8]),
    "beta1": st.sampled_from([0.0, 0.9]), "beta2": st.sampled_from([0.999, 0.99]),
    "bias_correction": st.sampled_from([1.0, 0.1]), "bias_correction1": st.sampled_from([1.0, 0.1]),
    "bias_correction2": st.sampled_from([1.0, 0.001]), "bias_correction1_next": st.sampled_from([1.0, 0.19]),
    "mu": st.sampled_from([0.9, 0.8]), "mu_next": st.sampled_from([0.9, 0.8]),
}
# State arrays that hold averages of squares: never negative.
_NONNEGATIVE_STATE = {"square_avg", "exp_avg_sq", "max_exp_avg_sq"}


@st.composite
def optimizer_arguments(draw, name):
    """``param`` and ``grad`` of one shape and dtype, every state array of that shape (the
    averages of squares non-negative), and valid hyperparameters.  Values within ±1e6 so that
    squares and updates stay finite."""
    dtype, shape = draw(dtypes), draw(vector_shapes)
    bounds = dict(min_value=-1e6, max_value=1e6)
    args = {}
    for parameter in _parameters(name):
        if parameter in _HYPER:
            args[parameter] = draw(_HYPER[parameter])
        elif parameter in _NONNEGATIVE_STATE:
            args[parameter] = _array(draw, dtype, shape, min_value=0, max_value=1e6)
        else:
            args[parameter] = _array(draw, dtype, shape, **bounds)
    if args.get("eps_in") == args.get("eps_out") == 0.0:  # ε inside or outside the root, not neither
        args["eps_out"] = 1e-8
    if "grad_avg" in args:  # centered RMSProp: the mean square is at least the squared mean
        args["square_avg"] += np.square(args["grad_avg"])
    return _in_order(name, args)
