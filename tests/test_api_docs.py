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


# --- numpydoc sections -------------------------------------------------------------

try:
    from numpydoc.docscrape import FunctionDoc
except ImportError:  # the docs extra is not installed: look for the underlined headings instead
    FunctionDoc = None


def sections(obj):
    """The numpydoc sections of ``obj``'s docstring that have content, by heading."""
    doc = inspect.getdoc(obj) or ""
    if FunctionDoc is not None:
        parsed = FunctionDoc(obj, doc=doc, config={})
        return {heading for heading in ("Parameters", "Attributes", "Returns", "Yields") if parsed[heading]}
    return set(re.findall(r"^(Parameters|Attributes|Returns|Yields)\n-+\n", doc, re.M))


def takes_parameters(obj):
    """Whether a caller passes anything (a class: to its constructor)."""
    try:
        return bool(inspect.signature(obj).parameters)
    except (TypeError, ValueError):  # no signature to read (a class with object's constructor)
        return False


def returns_a_value(function):
    """Whether the function's own body returns something other than None, or yields."""
    import ast
    import textwrap
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    outer = tree.body[0]
    for node in ast.walk(outer):
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            return True
    return False


def public_callables():
    """Each public function and class once; exceptions (their argument is the message) and
    objects made by other libraries (Hypothesis strategies) have no sections of refnet's to check."""
    seen = set()
    for module_name, name in public_names():
        obj = inspect.unwrap(getattr(importlib.import_module(module_name), name))
        if isinstance(obj, type) and issubclass(obj, BaseException):
            continue
        if not getattr(obj, "__module__", "").startswith("refnet"):
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and id(obj) not in seen:
            seen.add(id(obj))
            yield f"{obj.__module__}.{obj.__qualname__}", obj


def missing_sections(obj):
    """The sections ``help()`` and the API page lack: each parameter, and the result."""
    found, missing = sections(obj), []
    if inspect.isclass(obj):
        # A class documents its constructor's parameters in its own docstring (numpydoc); a
        # result record (dataclass, named tuple) documents its fields as Attributes instead.
        if takes_parameters(obj) and not found & {"Parameters", "Attributes"}:
            missing.append("Parameters")
        return missing
    if takes_parameters(obj) and "Parameters" not in found:
        missing.append("Parameters")
    if returns_a_value(obj) and not found & {"Returns", "Yields"}:
        missing.append("Returns")
    return missing


CALLABLES = list(public_callables())


@pytest.mark.parametrize("qualname, obj", CALLABLES, ids=lambda v: v if isinstance(v, str) else "")
def test_public_callable_has_numpydoc_sections(qualname, obj):
    assert not missing_sections(obj), f"{qualname}: no {' or '.join(missing_sections(obj))} section"


def section_before_examples(obj):
    """The numpydoc heading the docstring's first ``>>>`` line falls under (None: no heading)."""
    doc = inspect.getdoc(obj) or ""
    headings = re.findall(r"^(\w[\w ]*)\n-{3,}$", doc[:doc.find(">>>")], re.M) if ">>>" in doc else []
    return headings[-1] if headings else None


@pytest.mark.parametrize("qualname, obj", CALLABLES, ids=lambda v: v if isinstance(v, str) else "")
def test_examples_sit_under_an_examples_heading(qualname, obj):
    """numpydoc reads ``>>>`` lines after Raises or Returns as more entries of that section (the
    rendered page showed ``>>> import refnet`` as an exception type)."""
    assert section_before_examples(obj) in (None, "Examples"), f"{qualname}: >>> lines under a heading"


def test_the_section_check_sees_a_bare_docstring():
    def bare(x):
        """A summary and nothing else."""
        return x

    assert missing_sections(bare) == ["Parameters", "Returns"]


# --- API <-> derivations ---------------------------------------------------------------

DERIVATIONS = API.parent / "derivations"
ENTRY = re.compile(r"^\.\. auto(?:function|class|exception|data)::\s+(\S+)\n((?:[ \t]*\n|   .*\n)*)", re.M)
ROLE = re.compile(r":(?:func|class|data|meth|exc|attr):`[~!]?([A-Za-z_][\w.]*)`")


def api_links():
    """Each API entry's target -> the derivation labels its body links to."""
    return {target: set(re.findall(r":ref:`(derivation-[\w-]+)`", body))
            for target, body in ENTRY.findall(API.read_text())}


def derivation_references():
    """(label of a derivation page, API entry it refers to) for each API name a page cites."""
    links = api_links()
    for page in sorted(DERIVATIONS.glob("*.rst")):
        text = page.read_text()
        label = re.search(r"^\.\. _(derivation-[\w-]+):", text, re.M).group(1)
        for name in sorted(set(ROLE.findall(text))):
            while name and name not in links:   # a method's entry is its class's
                name = name.rpartition(".")[0]
            if name and name != "refnet":
                yield label, name


@pytest.mark.parametrize("label, target", list(derivation_references()), ids=lambda v: v)
def test_api_entry_links_back_to_the_derivation_citing_it(label, target):
    assert label in api_links()[target], f"docs/api.rst: {target} does not link to :ref:`{label}`"


def test_api_links_name_existing_derivations():
    labels = {m for page in DERIVATIONS.glob("*.rst")
              for m in re.findall(r"^\.\. _(derivation-[\w-]+):", page.read_text(), re.M)}
    linked = set().union(*api_links().values())
    assert linked and linked <= labels
