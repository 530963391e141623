"""The examples in the docstrings run and print what they say."""

import doctest
import importlib

import pytest

from refnet import experiments, functional
from refnet.testing import activations, dropout, optimizers


@pytest.mark.parametrize("module", [functional, experiments, importlib.import_module("refnet.gradcheck"), optimizers, activations, dropout], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_the_readme_tour_runs(tmp_path, monkeypatch):
    """Every ```python block of the README, in order, in one namespace."""
    import re
    from pathlib import Path

    from conftest import MNIST_DIR

    pytest.importorskip("sklearn")
    if not MNIST_DIR.is_dir():
        pytest.skip("../shared/data/mnist is absent")
    readme = Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)   # the tour saves a file
    namespace = {"MNIST_DIR": MNIST_DIR}
    for block in blocks:
        exec(compile(block, str(readme), "exec"), namespace)
    assert namespace["images"].shape == (10_000, 784)


# --- the documentation's tables (docs/_ext/refnet_tables.py) are the specs' -----------------------

def _tables_extension():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "refnet_tables.py"
    spec = importlib.util.spec_from_file_location("refnet_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _literal(cell):
    """The Python value shown in a ````repr```` cell."""
    import ast

    assert cell.startswith("``") and cell.endswith("``"), cell
    shown = cell[2:-2]
    # repr(math.inf) is "inf", a name rather than a literal (optax's NAdam momentum_decay)
    return float(shown) if shown in ("inf", "-inf") else ast.literal_eval(shown)


def test_the_accuracy_table_is_the_specs():
    from refnet.testing import specs

    header, rows = _tables_extension().accuracy()
    assert header == ["kernel", "family", "float64", "float32"]
    bounded = [kernel for kernel in specs.KERNELS if kernel.accuracy]
    assert [row[0] for row in rows] == [f"``{kernel.name}``" for kernel in bounded]
    for row, kernel in zip(rows, bounded):
        assert row[1] == kernel.family
        assert float(row[2].removesuffix(" ulp")) == kernel.accuracy["float64"].maxulp, kernel.name
        assert (row[3] == "correctly rounded") == (kernel.accuracy["float32"] == specs.CORRECTLY_ROUNDED), kernel.name


def test_the_twin_table_is_the_specs():
    from refnet.testing import specs, tolerances

    _, rows = _tables_extension().twins()
    twinned = [kernel for kernel in specs.KERNELS if kernel.twin]
    assert [row[0] for row in rows] == [f"``{kernel.name}``" for kernel in twinned]
    for row, kernel in zip(rows, twinned):
        for cell, dtype in zip(row[2:], ("float64", "float32")):
            tolerance = kernel.twin[dtype]
            if callable(tolerance):   # a rule of the arguments, shown as the function's first line
                want = tolerance.__doc__.strip().splitlines()[0]
                assert cell.replace("\\", "") == want, (kernel.name, dtype)
                continue
            want = "exact" if isinstance(tolerance, tolerances.Exact) else f"{tolerance.maxulp:g} ulp"
            assert cell == want, (kernel.name, dtype)


def test_the_conventions_table_is_every_optimizers_presets(monkeypatch):
    """Every (class, key, convention) of the presets is a cell showing its value, and a key added to a
    class's presets appears without a change to the extension."""
    from refnet.optim import CONVENTIONS
    from refnet.testing import specs

    tables = _tables_extension()
    monkeypatch.setitem(specs.OPTIMIZERS[0].cls._PRESETS, "torch",
                        {**specs.OPTIMIZERS[0].cls._PRESETS["torch"], "planted_switch": 1e-3})
    header, rows = tables.conventions()
    conventions = [name.strip('`"') for name in header[2:]]
    assert conventions == list(CONVENTIONS)
    cells = {(row[0], row[1].strip("`")): row[2:] for row in rows}
    assert len(cells) == len(rows)
    want = {(f":class:`~refnet.{spec.cls.__name__}`", key)
            for spec in specs.OPTIMIZERS for preset in spec.cls._PRESETS.values() for key in preset}
    assert set(cells) == want
    assert (":class:`~refnet.SGD`", "planted_switch") in cells
    for spec in specs.OPTIMIZERS:
        for (cls, key), values in cells.items():
            if cls != f":class:`~refnet.{spec.cls.__name__}`":
                continue
            for convention, cell in zip(conventions, values):
                preset = spec.cls._PRESETS[convention]
                if key in preset:
                    assert _literal(cell) == preset[key] and type(_literal(cell)) is type(preset[key])
                else:
                    assert cell == "--"


def test_the_claims_table_is_the_specs():
    from refnet.testing import specs

    header, rows = _tables_extension().claims(measure=False)
    assert header == ["id", "statement"]
    assert [(row[0].strip("`"), row[1].replace("\\", "")) for row in rows] == \
        [(claim.id, claim.statement) for claim in specs.CLAIMS]


@pytest.mark.parametrize("name", ["accuracy", "twins", "conventions", "claims"])
def test_the_directive_renders_the_rows(name, monkeypatch):
    """``.. refnet-table:: NAME`` through docutils: the table's text is the rows' (markup removed)."""
    pytest.importorskip("sphinx")   # the docs extra, which CI installs after the tests
    import re

    from docutils import nodes
    from docutils.core import publish_doctree
    from docutils.parsers.rst import roles

    def class_role(role, rawtext, text, lineno, inliner, options=None, content=None):   # Sphinx's, as text
        return [nodes.literal(rawtext, text.lstrip("~").rsplit(".", 1)[-1])], []

    monkeypatch.setitem(roles._roles, "class", class_role)

    tables = _tables_extension()
    tables.setup(None)
    doctree = publish_doctree(f".. refnet-table:: {name}\n", settings_overrides={"report_level": 2, "halt_level": 2})
    rendered = [[entry.astext() for entry in row.findall(nodes.entry)] for row in doctree.findall(nodes.row)]
    header, rows = tables.TABLES[name](measure=False) if name == "claims" else tables.TABLES[name]()

    def plain(cell):     # the text docutils makes of a cell's markup
        cell = re.sub(r":class:`~refnet\.(\w+)`", r"\1", cell)
        return re.sub(r"\\(.)", r"\1", cell.replace("``", "").replace("**", ""))

    assert rendered[0][:2] == [plain(cell) for cell in header][:2]
    assert [row[:2] for row in rendered[1:]] == [[plain(cell) for cell in row][:2] for row in rows]
    if name != "claims":       # the claims' last columns are measured afresh
        assert rendered == [[plain(cell) for cell in row] for row in [header, *rows]]


def test_every_derivation_page_links_the_api_it_derives():
    """Each page under docs/derivations/ names refnet's functions or classes with a role that links to
    the API reference, and ends in an executable check (issue 13)."""
    import re
    from pathlib import Path

    pages = sorted((Path(__file__).resolve().parents[1] / "docs" / "derivations").glob("*.rst"))
    assert len(pages) >= 14
    for page in pages:
        text = page.read_text()
        assert re.search(r":(func|class|meth):`~?refnet\.", text), f"{page.name} links no refnet name"
        assert ".. testcode::" in text and ".. testoutput::" in text, f"{page.name} has no check"
