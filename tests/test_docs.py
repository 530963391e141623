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
