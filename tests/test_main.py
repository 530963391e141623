"""`refnet verify`: a verification report that passes, and that can fail."""

import io
import shutil
import subprocess

import numpy as np
import pytest

import refnet
from refnet import _verify


def test_report_passes_and_names_every_identity():
    stream = io.StringIO()
    assert _verify.report(stream)
    text = stream.getvalue()
    assert "FAIL" not in text
    for claim in ["1/4", "Bayes", "Maxout", "softmax", "sigma(-z)", "RMSProp", "momentum", "weight decay", "dropout"]:
        assert claim in text


def test_report_fails_when_an_identity_is_broken(monkeypatch):
    """A sigmoid derivative computed the naive way loses the tail: the report must say so."""
    naive = lambda z, out=None: refnet.sigmoid(z) * (1 - refnet.sigmoid(z))  # noqa: E731
    monkeypatch.setattr(_verify.F, "sigmoid_derivative", naive)
    stream = io.StringIO()
    assert not _verify.report(stream)
    assert "[FAIL] sigma'(40) keeps its tail" in stream.getvalue()


def test_every_claim_has_a_stable_id_and_is_selectable_alone():
    assert len(set(_verify.CLAIM_IDS)) == len(_verify.CLAIMS)
    for claim in _verify.CLAIMS:
        stream = io.StringIO()
        assert _verify.report(stream, [claim.id])
        assert stream.getvalue().count("[PASS]") == 1 and f"({claim.id})" in stream.getvalue()


@pytest.mark.skipif(shutil.which("refnet") is None, reason="the refnet command is not on PATH")
def test_console_script_verify_exits_zero(tmp_path):
    result = subprocess.run(["refnet", "verify"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All identities hold." in result.stdout
