"""Every kernel's input strategy (its spec's ``inputs``) draws valid arguments, on which the
compiled kernel agrees with its reference twin whatever the caller's floating-point state."""

import copy
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnet import _core, reference
from refnet.testing import strategies
from refnet.testing.specs import KERNELS
from refnet.testing.tolerances import assert_within

STRATEGIES = [name for name in strategies.__all__ if name.endswith("_arguments")]


def test_every_kernel_has_an_input_strategy_and_every_strategy_a_kernel():
    assert all(spec.inputs in STRATEGIES for spec in KERNELS), [spec.name for spec in KERNELS
                                                                if spec.inputs not in STRATEGIES]
    assert {spec.inputs for spec in KERNELS} == set(STRATEGIES)


def run(function, args):
    """``function(**args)`` on a copy of ``args`` (the kernels write into their buffers, the
    optimizers into ``param`` and state, dropout draws from its generator): what it returns,
    and every array argument afterwards."""
    args = copy.deepcopy(args)
    result = function(*args.values())
    arrays = {name: value for name, value in args.items() if isinstance(value, np.ndarray)}
    return result, arrays


def _flat(result):
    return list(result) if isinstance(result, tuple) else [result]


def _dtype(args):
    return next(value.dtype for value in args.values() if isinstance(value, np.ndarray) and value.dtype.kind == "f")


# A quarter of the profile's examples per kernel: the test's value is its breadth (every kernel,
# every edge value); each kernel's own tests run the full count.  Keeps it ~4 s in CI.
@pytest.mark.parametrize("spec", KERNELS, ids=lambda spec: spec.name)
@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(data=st.data())
def test_both_backends_accept_the_drawn_arguments_and_agree(spec, data):
    """Within the spec's twin tolerance where it has one (each returned array), else to 1e-10
    (float64) or 1e-4 (float32) relatively: those kernels' own tests hold them closer.

    Under ``np.errstate(all="raise")``: each backend returns the IEEE result (an underflow to
    0, an overflow to inf) whatever the caller's floating-point error state (regression: the
    reference raised FloatingPointError for exp's underflow at z = -800).  The drawn edge
    values reach that: without the reference's errstate wrapper 22 of the 30 kernels fail (CI profile)."""
    args = data.draw(spec.arguments(), label="args")
    assert list(args) == list(inspect.signature(getattr(reference, spec.name)).parameters)
    with np.errstate(all="raise"):
        (compiled, compiled_arrays), (twin, twin_arrays) = (run(getattr(_core, spec.name), args),
                                                              run(getattr(reference, spec.name), args))
    tolerance = spec.twin_tolerance(args)
    if tolerance is not None:
        tolerances = tolerance if isinstance(tolerance, tuple) else (tolerance,) * len(_flat(compiled))
        for got, want, each in zip(_flat(compiled), _flat(twin), tolerances, strict=True):
            assert got.shape == want.shape and got.dtype == want.dtype
            assert_within(got, want, each, spec.name)
    rtol = 1e-4 if _dtype(args) == np.float32 else 1e-10
    for got, want in zip(_flat(compiled) + list(compiled_arrays.values()), _flat(twin) + list(twin_arrays.values())):
        if got is None or want is None:
            assert got is want
        else:
            assert np.shape(got) == np.shape(want)
            np.testing.assert_allclose(got, want, rtol=rtol, atol=0)
