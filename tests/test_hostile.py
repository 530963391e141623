"""Hostile inputs to every public function and class: the right result or the documented error.

Each family draws what a careless or malicious caller could pass: wrong dtypes
(integers, bools, float16, complex, objects, strings), 0-d, empty and
many-dimensional arrays, Fortran order, non-contiguous and negative-stride
views, read-only and broadcast (zero-stride) arrays, NaN and ±inf,
``out=`` that is an input or partly overlaps one, absurd hyper-parameters
(NaN, inf, 10**400, negative, bools, strings), mismatched parameter and
gradient lists, foreign or tampered state dicts, truncated and forged files.

The outcome must be one of two: a result equal, to the bit, to the result for
a clean C-contiguous copy of the same values (so the layout never matters), or
a ``TypeError``/``ValueError`` naming an argument, with every array the caller
passed unchanged.  Anything else (another exception, a crash) fails.

``REFNET_HOSTILE_COUNTS=<file>`` writes how many inputs each family tried
(the figures in the README's "Reliability").
"""

import collections
import contextlib
import json
import os
import re

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp

import refnet

COUNTS = collections.Counter()
DOCUMENTED = (TypeError, ValueError)
REFUSED = object()   # what outcome() returns after a documented error


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    path = os.environ.get("REFNET_HOSTILE_COUNTS")
    if path:
        with open(path, "w") as file:
            json.dump(dict(sorted(COUNTS.items())), file, indent=1)


# --- what a hostile caller passes ----------------------------------------------------

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_, np.complex128]
FLOAT_DTYPES = [np.float64, np.float32]

hostile_scalars = st.sampled_from([
    0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-320, 1e308, float("nan"), float("inf"), -float("inf"),
    10**400, -(10**400), 3, True, False, None, "0.5", b"1", [0.5], (1, 2), np.float32(0.25),
    np.array(0.5), np.array([0.5]), 1 + 2j, object(),
])


@st.composite
def layouts(draw, array):
    """The values of ``array`` in a hostile layout: F order, strided, reversed, read-only, broadcast."""
    kind = draw(st.sampled_from(["c", "fortran", "strided", "reversed", "read-only", "broadcast"]))
    note(f"layout {kind}")
    if kind == "fortran":
        return np.asfortranarray(array)
    if kind == "strided" and array.ndim:
        wide = np.repeat(array, 2, axis=-1)
        return wide[..., ::2]
    if kind == "reversed" and array.ndim:
        return np.ascontiguousarray(array[..., ::-1])[..., ::-1]
    if kind == "read-only":
        array = array.copy()
        array.flags.writeable = False
        return array
    if kind == "broadcast" and array.size and not (array != array.reshape(-1)[0]).any():
        return np.broadcast_to(array.reshape(-1)[:1].reshape((1,) * array.ndim), array.shape)
    return array


@st.composite
def hostile_arrays(draw, dtypes=DTYPES, max_dims=5, shape=None):
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    if shape is None:
        shape = draw(hynp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=4))
    if dtype.kind == "f":
        elements = st.floats(width=dtype.itemsize * 8, allow_nan=True, allow_infinity=True)
    elif dtype.kind == "c":
        elements = st.complex_numbers(allow_nan=True, allow_infinity=True, width=128)
    else:
        elements = None
    array = draw(hynp.arrays(dtype, shape, elements=elements))
    return draw(layouts(array))


anything = st.one_of(hostile_arrays(), hostile_scalars,
                     st.just([[1.0, 2.0], [3.0]]), st.just("z"), st.just(np.array(["a", "b"])),
                     st.just(np.array([1.0, None], dtype=object)))


def _snapshot(values):
    """Copies of every ndarray among ``values`` (and the arrays inside lists), to compare after."""
    arrays = []
    for value in values:
        if isinstance(value, np.ndarray):
            arrays.append((value, value.copy()))
        elif isinstance(value, (list, tuple)):
            arrays.extend(_snapshot(value))
    return arrays


def _unchanged(snapshot):
    for array, copy in snapshot:
        if copy.dtype.kind == "O":
            assert all(a is b or a == b for a, b in zip(array.reshape(-1), copy.reshape(-1)))
        else:
            np.testing.assert_array_equal(array, copy)


def outcome(family, function, *args, **kwargs):
    """``function(*args, **kwargs)``, or REFUSED after a documented error that left the inputs alone."""
    COUNTS[family] += 1
    snapshot = _snapshot([*args, *kwargs.values()])
    try:
        result = function(*args, **kwargs)
    except DOCUMENTED as error:
        # The message names what was wrong: an argument, a parameter, or the thing refused.
        assert str(error), f"{type(error).__name__} without a message"
        _unchanged(snapshot)
        return REFUSED
    return result


def clean(value):
    """A C-contiguous, writeable copy of an array (other values as they are)."""
    return np.array(value, order="C", copy=True) if isinstance(value, np.ndarray) else value


def assert_same_bits(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    numbers = ~np.isnan(got) if got.dtype.kind in "fc" else np.ones(got.shape, bool)
    if got.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(got[numbers]), np.signbit(expected[numbers]))


# --- the activation functions ---------------------------------------------------------

UNARY = ["sigmoid", "sigmoid_derivative", "tanh", "tanh_derivative", "relu", "relu_derivative",
         "leaky_relu", "leaky_relu_derivative", "softmax"]
BACKWARD = ["sigmoid_backward", "tanh_backward", "relu_backward", "leaky_relu_backward", "softmax_backward"]


@pytest.mark.parametrize("backend", ["compiled", "reference"])
@given(name=st.sampled_from(UNARY), z=anything)
def test_unary_functions_on_anything(backend, name, z):
    with refnet.use_backend(backend):
        function = getattr(refnet, name)
        result = outcome("activations", function, z)
        if result is not REFUSED:
            assert_same_bits(result, function(clean(z)))
            assert np.asarray(z).dtype in FLOAT_DTYPES   # Python floats count as float64; all else is refused


@given(name=st.sampled_from(BACKWARD), grad=anything, z=anything)
def test_backward_functions_on_anything(name, grad, z):
    function = getattr(refnet, name)
    result = outcome("activations", function, grad, z)
    if result is not REFUSED:
        assert_same_bits(result, function(clean(grad), clean(z)))


@st.composite
def overlapping_out(draw, arrays=1):
    """(inputs, out): float arrays sharing one buffer with ``out``, exactly or partly (any offset)."""
    dtype = np.dtype(draw(st.sampled_from(FLOAT_DTYPES)))
    n = draw(st.integers(1, 12))
    buffer = draw(hynp.arrays(dtype, 3 * n, elements=st.floats(-50, 50, width=dtype.itemsize * 8)))
    offsets = [draw(st.integers(0, 2 * n)) for _ in range(arrays)]
    out_offset = draw(st.sampled_from([*offsets, draw(st.integers(0, 2 * n))]))
    return [buffer[o : o + n] for o in offsets], buffer[out_offset : out_offset + n]


@given(name=st.sampled_from(UNARY + BACKWARD), case=st.data())
def test_out_that_is_or_overlaps_an_input(name, case):
    function = getattr(refnet, name)
    inputs, out = case.draw(overlapping_out(1 if name in UNARY else 2))
    expected = function(*[x.copy() for x in inputs])
    COUNTS["out= aliasing"] += 1
    got = function(*inputs, out=out)
    assert got is out
    assert_same_bits(out, expected)


@given(slope=hostile_scalars, pieces=hostile_scalars, z=hostile_arrays(FLOAT_DTYPES, max_dims=3))
def test_hyper_parameters_of_the_activations(slope, pieces, z):
    for function, args in ((refnet.leaky_relu, (z, slope)), (refnet.leaky_relu_backward, (z, z, slope)),
                           (refnet.maxout, (z, pieces)), (refnet.maxout_backward, (z, z, pieces)),
                           (refnet.prelu, (z, slope)), (refnet.prelu_backward, (z, z, slope))):
        result = outcome("hyper-parameters", function, *args)
        if result is not REFUSED and function is refnet.maxout:
            assert result.shape == z.shape[:-1] + (z.shape[-1] // int(pieces),)


@given(p=hostile_scalars, mode=st.sampled_from(["inverted", "scale-at-test", "INVERTED", None, 1]),
       z=hostile_arrays(max_dims=3), seed=st.integers(0, 2**32))
def test_dropout_on_anything(p, mode, z, seed):
    result = outcome("dropout", refnet.dropout, z, p, np.random.default_rng(seed), mode=mode)
    if result is not REFUSED:
        output, mask = result
        assert 0 <= float(p) < 1 and mask.dtype == np.bool_ and output.shape == mask.shape == np.shape(z)
        expected, expected_mask = refnet.dropout(clean(z), p, np.random.default_rng(seed), mode=mode)
        assert_same_bits(output, expected)
        assert_same_bits(mask, expected_mask)
        back = outcome("dropout", refnet.dropout_backward, z, mask, p, mode=mode)
        assert back is not REFUSED
    outcome("dropout", refnet.dropout_backward, z, z, p, mode=mode)   # a float "mask": refused
    outcome("dropout", refnet.dropout, z, 0.5, seed)                   # an int, not a Generator: refused


@given(x=hostile_arrays(max_dims=3), weight=hostile_arrays(max_dims=3), bias=hostile_arrays(max_dims=2),
       activation=st.sampled_from([None, "relu", "tanh", "sigmoid", "leaky_relu", "softmax", "", 3]))
def test_dense_on_anything(x, weight, bias, activation):
    result = outcome("dense", refnet.dense, x, weight, bias, activation)
    if result is not REFUSED:
        for got, expected in zip(result, refnet.dense(clean(x), clean(weight), clean(bias), activation)):
            assert_same_bits(got, expected)
        grad = np.ones_like(result[0])
        outcome("dense", refnet.dense_backward, grad, x, weight, result[1], activation)
    outcome("dense", refnet.dense_backward, x, x, weight, bias, activation)


# --- losses ------------------------------------------------------------------------------

@given(name=st.sampled_from(sorted(refnet.losses.LOSSES)), output=anything,
       target=st.one_of(anything, hostile_arrays([np.int64, np.int8, np.uint8, np.bool_], max_dims=2)))
def test_losses_on_anything(name, output, target):
    function = refnet.losses.LOSSES[name]
    result = outcome("losses", function, output, target)
    if result is not REFUSED:
        loss, grad = result
        expected_loss, expected_grad = function(clean(output), clean(target))
        assert isinstance(loss, float) and (loss == expected_loss or (np.isnan(loss) and np.isnan(expected_loss)))
        assert_same_bits(grad, expected_grad)


# --- optimizers ---------------------------------------------------------------------------

OPTIMIZERS = {
    refnet.SGD: ["momentum", "nesterov", "weight_decay", "l1", "dampening", "maximize"],
    refnet.Adagrad: ["eps", "initial_accumulator", "weight_decay", "l1", "maximize"],
    refnet.RMSProp: ["alpha", "eps", "momentum", "centered", "weight_decay", "initial_average", "nesterov",
                     "bias_correction"],
    refnet.Adam: ["beta1", "beta2", "eps", "weight_decay", "decoupled", "bias_correction", "eps_in_sqrt", "eps_root",
                  "amsgrad", "nesterov", "momentum_decay"],
}


@given(cls=st.sampled_from(sorted(OPTIMIZERS, key=lambda c: c.__name__)), lr=hostile_scalars, data=st.data(),
       convention=st.sampled_from(["torch", "keras", "lee", "tf", None]))
def test_optimizer_hyper_parameters(cls, lr, data, convention):
    option = data.draw(st.sampled_from(OPTIMIZERS[cls]))
    value = data.draw(hostile_scalars)
    optimizer = outcome("optimizers", cls, lr, convention=convention, **{option: value})
    if optimizer is not REFUSED:
        assert outcome("optimizers", optimizer.step, [np.ones(3)], [np.full(3, 0.5)]) is not REFUSED
        assert optimizer.steps == 1


@st.composite
def parameter_lists(draw):
    """(params, grads): lists that may mismatch in length, shape, dtype, layout or memory."""
    count = draw(st.integers(0, 3))
    params = [draw(hostile_arrays([np.float64, np.float32, np.int64], max_dims=2)) for _ in range(count)]
    kind = draw(st.sampled_from(["matching", "drawn", "aliasing", "fewer", "tuple", "array"]))
    if kind == "matching":
        grads = [np.ones_like(p) for p in params]
    elif kind == "aliasing":
        grads = [params[draw(st.integers(0, count - 1))] if count else np.ones(1) for _ in params]
    elif kind == "fewer":
        grads = [np.ones_like(p) for p in params][1:]
    elif kind == "tuple":
        grads = tuple(np.ones_like(p) for p in params)
    elif kind == "array":
        grads = np.ones(3)
    else:
        grads = [draw(hostile_arrays([np.float64, np.float32], max_dims=2)) for _ in params]
    return params, grads


@given(cls=st.sampled_from(sorted(OPTIMIZERS, key=lambda c: c.__name__)), lists=parameter_lists(),
       names=st.sampled_from([None, ["a"], ("a", "b"), [1, 2]]))
def test_optimizer_steps_on_anything(cls, lists, names):
    params, grads = lists
    optimizer = cls(0.1, groups=[{"params": [0]}] if names is None else [])
    before = [np.array(p, copy=True) for p in params]
    stepped = outcome("optimizers", optimizer.step, params, grads, names)
    if stepped is REFUSED:   # outcome compared the arrays; the step count did not move either
        assert optimizer.steps == 0
        return
    assert optimizer.steps == 1
    for param, old, grad in zip(params, before, grads):
        changed = ~((param == old) | (np.isnan(param) & np.isnan(old)))
        assert not changed.any() or param.flags.writeable


@given(cls=st.sampled_from(sorted(OPTIMIZERS, key=lambda c: c.__name__)), data=st.data())
def test_foreign_and_tampered_state_dicts(cls, data):
    optimizer = cls(0.1, **({"momentum": 0.9} if cls in (refnet.SGD, refnet.RMSProp) else {}))
    param = np.ones(4)
    optimizer.step([param], [np.ones(4)])
    state = optimizer.state_dict()
    key = data.draw(st.sampled_from(["optimizer", "config", "steps", "state", "extra", "whole"]))
    value = data.draw(st.one_of(hostile_scalars, st.just({}), st.just([{}]), st.just([{"sum": "x"}]),
                                st.just([{k: np.ones(5) for k in (state["state"] or [{}])[0]}])))
    tampered = value if key == "whole" else {**state, key: value}
    other = cls(0.1, **({"momentum": 0.9} if cls in (refnet.SGD, refnet.RMSProp) else {}))
    if outcome("state dicts", other.load_state_dict, tampered) is not REFUSED or other.steps:
        outcome("state dicts", other.step, [np.ones(4)], [np.ones(4)])   # loaded: it steps, or says why not
    foreign = (refnet.Adam if cls is not refnet.Adam else refnet.SGD)(0.1)
    assert outcome("state dicts", foreign.load_state_dict, state) is REFUSED


# --- layers, networks, callbacks, regularizers ------------------------------------------

LAYER_MAKERS = [
    lambda a, b: refnet.Dense(a, b), lambda a, b: refnet.Dense(3, 2, activation=a, slope=b),
    lambda a, b: refnet.Dense(3, 2, init=a, dtype=b), lambda a, b: refnet.LeakyReLU(a),
    lambda a, b: refnet.Maxout(a), lambda a, b: refnet.PReLU(a, init=b), lambda a, b: refnet.Dropout(a, mode=b),
    lambda a, b: refnet.EarlyStopping(a, patience=b), lambda a, b: refnet.EarlyStopping(min_delta=a, mode=b),
    lambda a, b: refnet.regularizers.L2(a), lambda a, b: refnet.regularizers.L1(a, include_biases=b),
    lambda a, b: refnet.StepDecay(a, b), lambda a, b: refnet.InverseTime(a, b),
]


@given(make=st.sampled_from(LAYER_MAKERS), a=hostile_scalars, b=hostile_scalars)
def test_constructors_on_anything(make, a, b):
    outcome("constructors", make, a, b)


def _network():
    return refnet.Sequential([refnet.Dense(4, 6, activation="relu", seed=0), refnet.Dropout(0.25, seed=1),
                              refnet.Dense(6, 6, seed=2), refnet.Maxout(2), refnet.PReLU(3),
                              refnet.Dense(3, 3, seed=3)])


@given(x=anything, y=st.one_of(anything, hostile_arrays([np.int64, np.uint8], max_dims=2)), data=st.data())
def test_networks_on_anything(x, y, data):
    net = _network()
    params = [p.copy() for p in net.parameters()]
    outcome("networks", net.predict, x)
    outcome("networks", net.evaluate, x, y, loss="softmax_cross_entropy")
    arguments = dict(loss="softmax_cross_entropy", optimizer=refnet.SGD(0.1), epochs=1, batch_size=4)
    option = data.draw(st.sampled_from(["loss", "optimizer", "epochs", "batch_size", "validation_data",
                                        "callbacks", "shuffle", "regularizer", "check_finite", None]))
    if option is not None:
        arguments[option] = data.draw(st.one_of(hostile_scalars, st.just(refnet.Adam), st.just([object]),
                                                st.just((x, y)), st.just(refnet.EarlyStopping())))
    history = outcome("networks", net.fit, x, y, **arguments)
    if history is REFUSED:
        for param, before in zip(net.parameters(), params):
            np.testing.assert_array_equal(param, before)   # refused up front: nothing trained


@given(data=st.binary(max_size=400), cut=st.integers(0, 4000), flips=st.lists(st.integers(0, 10**6), max_size=3))
def test_files_truncated_forged_or_random(tmp_path_factory, data, cut, flips):
    directory = tmp_path_factory.mktemp("files", numbered=True)
    path = directory / "net.npz"
    _network().save(path)
    good = bytearray(path.read_bytes())
    for position in flips:
        good[position % len(good)] ^= 0xFF
    for content in (data, bytes(good[:cut]), bytes(good)):
        path.write_bytes(content)
        COUNTS["files"] += 1
        try:
            refnet.Sequential.load(path)
        except ValueError as error:
            assert re.search(r"not a|damaged|unpack|member|layer|arrays|marker", str(error))
        COUNTS["files"] += 1
        try:
            refnet.datasets.read_idx(path)
        except ValueError as error:
            assert str(path) in str(error)


@given(mean1=anything, cov=anything, prior=hostile_scalars, n=hostile_scalars)
def test_bayes_and_datasets_on_anything(mean1, cov, prior, n):
    outcome("other functions", refnet.bayes.shared_covariance_logistic, mean1, [0.0, 0.0], cov, prior)
    outcome("other functions", refnet.datasets.two_gaussians, n, mean1, [0.0, 0.0], cov, prior)
    outcome("other functions", refnet.gradcheck, refnet.sigmoid, mean1)


@given(x=anything, max_units=hostile_scalars, mode=st.sampled_from(["inverted", "scale-at-test", "x", 0]))
def test_ensemble_functions_on_anything(x, max_units, mode):
    net = refnet.Sequential([refnet.Dense(2, 3, seed=0), refnet.Dropout(0.5, seed=1), refnet.Dense(3, 2, seed=2)])
    outcome("other functions", refnet.ensemble.dropout_ensemble, net, x, max_units=max_units)
    outcome("other functions", refnet.ensemble.convert_dropout, net, mode)
    outcome("other functions", refnet.ensemble.dropout_parameter_groups, net, to=mode)


@given(value=st.one_of(hostile_scalars, st.just("reference"), st.just("compiled"), st.just("Compiled")),
       groups=st.one_of(hostile_scalars, st.lists(st.one_of(hostile_scalars, st.fixed_dictionaries(
           {"params": st.one_of(hostile_scalars, st.lists(st.one_of(hostile_scalars, st.just("*.bias")), max_size=2))},
           optional={"lr_scale": hostile_scalars, "weight_decay": hostile_scalars, "l1_scale": hostile_scalars})),
           max_size=2)))
def test_backends_groups_and_small_classes_on_anything(value, groups):
    previous = refnet.get_backend()
    try:
        outcome("other functions", refnet.set_backend, value)
    finally:
        refnet.set_backend(previous)
    with pytest.raises(DOCUMENTED) if value not in ("reference", "compiled") else contextlib.nullcontext():
        with refnet.use_backend(value):
            assert refnet.get_backend() == value
    assert refnet.get_backend() == previous
    optimizer = outcome("optimizers", refnet.Adam, 0.1, groups=groups)
    if optimizer is not REFUSED:
        outcome("optimizers", optimizer.step, [np.ones(2), np.ones(3)], [np.ones(2), np.ones(3)], ["0.w", "0.bias"])
    outcome("other functions", refnet.network.PlainSGD, value)
    net = _network()
    named, grads = net.named_parameters(), net.gradients()
    for penalty in (refnet.regularizers.L2(0.1), refnet.regularizers.L1(0.1)):
        outcome("other functions", penalty.add_gradient, named, grads[:-1] if value is None else grads)
    outcome("other functions", refnet.datasets.load_mnist, "/nonexistent-dir" if value is None else ".",
            value, dtype=np.float32)
