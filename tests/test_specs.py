"""The specification tables cover what refnet implements, and what they state holds."""

import inspect

import numpy as np
import pytest

import refnet
from refnet import _core, _verify, reference
from refnet.testing.specs import CLAIMS, KERNELS, OPTIMIZERS


def test_every_reference_kernel_has_one_spec_and_every_spec_a_kernel_and_twin():
    names = [kernel.name for kernel in KERNELS]
    assert sorted(names) == sorted(reference.__all__), set(names) ^ set(reference.__all__)
    for kernel in KERNELS:
        assert getattr(reference, kernel.name).__module__ == f"refnet.reference.{kernel.family}"
        assert callable(getattr(_core, kernel.name))


def test_every_public_optimizer_class_has_a_spec():
    public = {obj for obj in vars(refnet).values()
              if inspect.isclass(obj) and issubclass(obj, refnet.optim.Optimizer)}
    assert public == {spec.cls for spec in OPTIMIZERS}


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k.kinks], ids=lambda k: k.name)
def test_each_kink_has_the_stated_derivative(kernel, each_backend):
    for kink in kernel.kinks:
        z = np.array([[kink.at, -kink.at]])   # 0 and -0
        if kernel.name.endswith("_backward") and kernel.name != "maxout_backward":
            got = getattr(refnet, kernel.name)(np.ones_like(z), z)
        elif kernel.name == "maxout_backward":
            # Maxout over [0, z] at z = 0: the gradient goes to the zero piece, none to z.
            got = refnet.maxout_backward(np.ones((1, 1)), np.array([[0.0, kink.at]]), 2)[:, 1:]
        else:
            got = getattr(refnet, kernel.name)(z)
        np.testing.assert_array_equal(got, kink.derivative, err_msg=kink.rule)


def test_the_claims_table_is_verifys():
    assert CLAIMS is _verify.CLAIMS
    assert len({claim.id for claim in CLAIMS}) == len(CLAIMS)
    assert all(claim.statement and callable(claim.measure) for claim in CLAIMS)
