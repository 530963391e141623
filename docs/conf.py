"""Sphinx configuration: refnet's derivations and API reference.

Built with no network: no intersphinx, and MathJax is served from the local
copy that ``sphinx-mathjax-offline`` ships (copied into ``_static``), never from
a CDN.  Build with warnings as errors::

    sphinx-build -W -b html docs docs/_build/html
    sphinx-build -W -b doctest docs docs/_build/doctest
"""

import sys
from pathlib import Path

import refnet

# docs/_ext: the refnet-table directive (tables rendered from refnet.testing.specs).
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "refnet"
author = "the refnet developers"
copyright = "refnet developers"
release = version = refnet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "numpydoc",
    "sphinx-mathjax-offline",
    "refnet_tables",
]

exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "refnet"

autodoc_default_options = {"member-order": "bysource"}
# The API pages list every public name explicitly (tests/test_api_docs.py keeps them
# complete), so numpydoc's automatic member tables would list methods twice.
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# Only our own files: a docstring's ``>>>`` examples run under tests/test_docs.py.
doctest_test_doctest_blocks = ""
# HAVE_TORCH: the guides' PyTorch blocks say ``:skipif: not HAVE_TORCH`` (found, not imported).
doctest_global_setup = """
import importlib.util
import numpy as np
import refnet
HAVE_TORCH = importlib.util.find_spec("torch") is not None
"""
