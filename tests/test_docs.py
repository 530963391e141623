"""The examples in the docstrings run and print what they say."""

import doctest

import pytest

from refnet import experiments, functional


@pytest.mark.parametrize("module", [functional, experiments], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
