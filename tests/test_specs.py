"""The specification tables cover what refnet implements, and what they state holds."""

import inspect

import numpy as np
import pytest

import refnet
from refnet import _core, _verify, reference
from refnet.testing import specs
from refnet.testing.specs import CLAIMS, KERNELS, LAYERS, OPTIMIZERS


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


def test_every_public_layer_class_has_a_spec_naming_real_kernels():
    public = {obj for obj in vars(refnet).values()
              if inspect.isclass(obj) and issubclass(obj, refnet.layers.Layer)}
    assert public == {spec.cls for spec in LAYERS}
    for spec in LAYERS:
        assert set(spec.kernels) <= set(reference.__all__), spec
        assert type(spec.example()) is spec.cls


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("spec", LAYERS, ids=lambda spec: spec.cls.__name__)
def test_every_layer_passes_gradcheck_at_its_kinks_too(spec, mode, each_backend):
    """Random inputs with a row of exact zeros (ReLU family, Dense+ReLU at their kink) and a tie
    (Maxout's first group): the kinks are reported as such, never as failures."""
    x = np.random.default_rng(1).standard_normal((3, spec.n_in))
    x[0] = 0.0
    x[1, 1] = x[1, 0]
    result = refnet.gradcheck(spec.example(), x, mode=mode)
    assert result.max_error < 1e-4, result
    has_kinks = spec.cls in (refnet.Dense, refnet.ReLU, refnet.LeakyReLU, refnet.PReLU, refnet.Maxout)
    assert bool(result.kinks) == has_kinks, result


def _readme_accuracy_table():
    """{function: (float64 bound, float32 cell)} from the README's "## Accuracy" table."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text()
    section = text.split("\n## Accuracy\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| `")]
    return {cells[0].strip().strip("`"): (float(cells[1]), cells[3].strip()) for cells in rows}


def test_the_readme_accuracy_table_is_the_specs():
    """The README copies the bounds by hand; this keeps the copy equal to the one in the specs."""
    table = _readme_accuracy_table()
    assert set(table) == {kernel.name for kernel in KERNELS if kernel.accuracy}
    for name, (float64, float32) in table.items():
        accuracy = specs.kernel(name).accuracy
        assert float64 == accuracy["float64"].maxulp, name
        assert (accuracy["float32"] == specs.CORRECTLY_ROUNDED) == float32.startswith("correctly rounded"), name


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k.accuracy], ids=lambda k: k.name)
def test_the_reference_docstrings_state_the_specs_bounds(kernel):
    """Where a reference kernel's docstring states its error bound, it is the spec's."""
    import re

    stated = re.search(r"Error bound: ([\d.]+) ulp in float64", getattr(reference, kernel.name).__doc__)
    if stated:
        assert float(stated.group(1)) == kernel.accuracy["float64"].maxulp
