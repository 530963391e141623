"""The examples in the docstrings run and print what they say."""

import doctest

import pytest

import refnet
from refnet import bayes, functional


@pytest.mark.parametrize("module", [functional, bayes, refnet.reference.activations], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
