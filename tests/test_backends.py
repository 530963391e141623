"""The two backends are twins: same kernels, same signatures; the switch works and is scoped."""

import inspect
import threading

import numpy as np
import pytest

import refnet
from refnet import _core, reference
from refnet.testing.specs import KERNELS


def _kernels(module):
    return {
        name: obj
        for name, obj in vars(module).items()
        if callable(obj) and not name.startswith("_") and not inspect.isclass(obj)
        and getattr(obj, "__module__", module.__name__).startswith(("refnet", "_cython"))
    }


COMPILED = _kernels(_core)


def test_the_compiled_kernels_are_the_specs():
    """A compiled kernel without a spec (and so without a reference twin) fails here."""
    assert set(COMPILED) == {kernel.name for kernel in KERNELS}, set(COMPILED) ^ {kernel.name for kernel in KERNELS}


@pytest.mark.parametrize("name", [kernel.name for kernel in KERNELS])
def test_compiled_kernel_has_reference_twin_with_same_signature(name):
    assert hasattr(reference, name), f"refnet.reference has no twin of _core.{name}"
    compiled = inspect.signature(getattr(_core, name))
    twin = inspect.signature(getattr(reference, name))
    assert [(p.name, p.default, p.kind) for p in compiled.parameters.values()] == [
        (p.name, p.default, p.kind) for p in twin.parameters.values()
    ]


def test_every_reference_kernel_has_compiled_twin():
    assert set(reference.__all__) <= set(COMPILED)


def test_default_backend_is_compiled():
    assert refnet.get_backend() == "compiled"


def test_use_backend_runs_the_reference_and_restores(monkeypatch):
    calls = []
    original = reference.sigmoid
    monkeypatch.setattr(reference, "sigmoid", lambda z, out: calls.append(1) or original(z, out))
    with refnet.use_backend("reference"):
        assert refnet.get_backend() == "reference"
        refnet.sigmoid([0.0])
    assert refnet.get_backend() == "compiled"
    refnet.sigmoid([0.0])
    assert calls == [1]


def test_use_backend_restores_after_an_exception():
    with pytest.raises(RuntimeError):
        with refnet.use_backend("reference"):
            raise RuntimeError
    assert refnet.get_backend() == "compiled"


def test_use_backend_without_with_switches_for_good():
    """Regression: called without `with`, it silently did nothing."""
    try:
        refnet.use_backend("reference")
        assert refnet.get_backend() == "reference"
    finally:
        refnet.set_backend("compiled")
    with pytest.raises(ValueError, match="backend must be one of"):
        refnet.use_backend("fast")


def test_set_backend_is_per_thread():
    seen = []

    def worker():
        refnet.set_backend("reference")
        seen.append(refnet.get_backend())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == ["reference"]
    assert refnet.get_backend() == "compiled"


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="backend must be one of"):
        refnet.set_backend("cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        with refnet.use_backend("fast"):
            pass



def test_stub_file_declares_every_compiled_kernel_with_its_parameters():
    """The hand-written _core.pyi is installed beside the module and matches it."""
    import ast
    from pathlib import Path

    stub = Path(refnet.__file__).with_name("_core.pyi")
    declared = {
        node.name: [arg.arg for arg in node.args.args]
        for node in ast.parse(stub.read_text()).body
        if isinstance(node, ast.FunctionDef)
    }
    actual = {name: list(inspect.signature(f).parameters) for name, f in COMPILED.items()}
    assert declared == actual
