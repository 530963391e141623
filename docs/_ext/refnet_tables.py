"""``.. refnet-table:: NAME``: tables rendered at build time from refnet's specification tables.

Each table is computed from the data that the tests and ``refnet verify`` loop over, so the
documentation cannot drift from them by a hand-made copy:

``accuracy``
    every kernel of :data:`refnet.testing.specs.KERNELS` with an accuracy bound: its bound
    against the exact value per dtype;
``twins``
    every kernel with a twin tolerance: how far the compiled kernel may be from its reference;
``conventions``
    every optimizer class of :data:`refnet.testing.specs.OPTIMIZERS`: its ``_PRESETS``, one
    row per key (whatever keys the classes have), one column per convention;
``claims``
    :data:`refnet.testing.specs.CLAIMS`: each identity's id and statement, and what it measures
    now (each claim is run during the build; one that fails is a build warning, so ``-W``
    fails).

The row functions are plain Python (``tests/test_docs.py`` compares them with the specs);
docutils is imported only by :func:`setup`.
"""

import re

from refnet.testing import specs, tolerances


def _tolerance(tolerance):
    if tolerance == specs.CORRECTLY_ROUNDED:
        return "correctly rounded"
    if isinstance(tolerance, tolerances.Exact):
        return "exact"
    if isinstance(tolerance, tolerances.Ulp):
        return f"{tolerance.maxulp:g} ulp"
    if callable(tolerance):  # one that depends on the arguments: its rule, the function's first line
        return _text(tolerance.__doc__.strip().splitlines()[0])
    return repr(tolerance)


def _dtype_columns(attribute):
    kernels = [kernel for kernel in specs.KERNELS if getattr(kernel, attribute)]
    dtypes = list(dict.fromkeys(dtype for kernel in kernels for dtype in getattr(kernel, attribute)))
    rows = [[f"``{kernel.name}``", kernel.family,
             *(_tolerance(getattr(kernel, attribute)[dtype]) if dtype in getattr(kernel, attribute) else "--"
               for dtype in dtypes)]
            for kernel in kernels]
    return ["kernel", "family", *dtypes], rows


def accuracy():
    """(header, rows): each kernel's bound against the exact value, per dtype."""
    return _dtype_columns("accuracy")


def twins():
    """(header, rows): each kernel's largest distance between compiled kernel and reference."""
    return _dtype_columns("twin")


def _text(text):
    """Free text (a claim's statement, a measurement) as reStructuredText that shows it verbatim."""
    return re.sub(r"([\\*`|_\[\]])", r"\\\1", text)


def _value(value):
    if isinstance(value, str):
        return f'``"{value}"``'
    return f"``{value!r}``"


def conventions():
    """(header, rows): each optimizer's presets, a row per (class, key), a column per convention."""
    classes = [spec.cls for spec in specs.OPTIMIZERS]
    names = list(dict.fromkeys(name for cls in classes for name in cls._PRESETS))
    rows = []
    for cls in classes:
        keys = dict.fromkeys(key for preset in cls._PRESETS.values() for key in preset)
        for key in keys:
            rows.append([f":class:`~refnet.{cls.__name__}`", f"``{key}``",
                         *(_value(cls._PRESETS[name][key]) if key in cls._PRESETS.get(name, {}) else "--"
                           for name in names)])
    return ["optimizer", "option", *(f'``"{name}"``' for name in names)], rows


def claims(measure=True):
    """(header, rows): each claim's id and statement, and (``measure``) what it measures and whether it holds."""
    header = ["id", "statement"] + (["measured", "holds"] if measure else [])
    rows = []
    for claim in specs.CLAIMS:
        row = [f"``{claim.id}``", _text(claim.statement)]
        if measure:
            measured, holds = claim.measure()
            row += [_text(measured), "yes" if holds else "**NO**"]
        rows.append(row)
    return header, rows


TABLES = {"accuracy": accuracy, "twins": twins, "conventions": conventions, "claims": claims}


def setup(app):
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives
    from docutils.statemachine import StringList
    from sphinx.util import logging

    logger = logging.getLogger(__name__)

    class RefnetTable(Directive):
        """``.. refnet-table:: NAME``."""

        required_arguments = 1

        def run(self):
            name = self.arguments[0]
            if name not in TABLES:
                raise self.error(f"refnet-table: no table {name!r}; the tables are {', '.join(TABLES)}")
            header, rows = TABLES[name]()
            if name == "claims":
                for row in rows:
                    if row[-1] != "yes":
                        logger.warning("refnet claim %s does not hold: %s", row[0], row[2],
                                       location=self.state_machine.get_source_and_line(self.lineno))
            lines = [".. list-table::", "   :header-rows: 1", ""]
            for row in [header, *rows]:
                lines.append(f"   * - {row[0]}")
                lines.extend(f"     - {cell}" for cell in row[1:])
            container = nodes.container(classes=["refnet-table"])
            self.state.nested_parse(StringList(lines, source=f"<refnet-table {name}>"), self.content_offset,
                                    container)
            return container.children

    directives.register_directive("refnet-table", RefnetTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
