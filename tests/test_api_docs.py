"""The API reference (docs/api.rst) documents every public name, without building it."""

import importlib
import inspect
import re
import types
from pathlib import Path

import pytest

import refnet

API = Path(__file__).resolve().parents[1] / "docs" / "api.rst"
# refnet's namespace, the submodules it exports, the reference kernels, and the modules whose
# public tables (CONVENTIONS, LOSSES, LOAD_LIMIT, ...) the README and docstrings point to.
MODULES = [
    "refnet", "refnet.bayes", "refnet.datasets", "refnet.ensemble", "refnet.experiments",
    "refnet.regularizers", "refnet.reference", "refnet.optim", "refnet.layers", "refnet.network",
    "refnet.losses", "refnet.callbacks", "refnet.backend",
    "refnet.testing", "refnet.testing.conformance", "refnet.testing.optimizers", "refnet.testing.activations",
    "refnet.testing.dropout", "refnet.testing.adapters", "refnet.testing.tolerances", "refnet.testing.strategies",
    "refnet.testing.specs",
]


def documented():
    """Each ``.. autoX:: dotted.path`` target of the API page, resolved to its object."""
    targets = re.findall(r"^\.\. auto(?:function|class|exception|data)::\s+(\S+)$",
                         API.read_text(), re.M)
    resolved = {}
    for target in targets:
        module, _, name = target.rpartition(".")
        resolved[target] = getattr(importlib.import_module(module), name)
    return resolved


def public_names():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if not isinstance(getattr(module, name), types.ModuleType):
                yield module_name, name


@pytest.mark.parametrize("module_name, name", list(public_names()), ids=lambda v: v)
def test_public_name_is_documented(module_name, name):
    # refnet.reference wraps each kernel of its submodules (errstate): the page documents
    # the submodule's function, the formula itself.
    obj = inspect.unwrap(getattr(importlib.import_module(module_name), name))
    paths = [path for path, target in documented().items()
             if path.rpartition(".")[2] == name and inspect.unwrap(target) is obj]
    assert paths, f"{module_name}.{name} is missing from docs/api.rst"


def test_every_exported_module_is_documented():
    modules = set(re.findall(r"^\.\. automodule::\s+(\S+)$", API.read_text(), re.M))
    exported = {f"refnet.{name}" for name in refnet.__all__
                if isinstance(getattr(refnet, name), types.ModuleType)}
    assert exported <= modules


def test_the_check_sees_a_missing_name(monkeypatch):
    """A name added to __all__ without its entry is reported."""
    monkeypatch.setattr(refnet.bayes, "__all__", [*refnet.bayes.__all__, "_check"])
    assert ("refnet.bayes", "_check") in set(public_names())
    obj = refnet.bayes._check
    assert not any(target is obj for target in documented().values())
