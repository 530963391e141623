"""Hypothesis profiles and shared fixtures.

Profiles: ``dev`` (default), ``ci`` (Hypothesis' own, derandomised, loaded when
``CI`` is set; extended here) and ``thorough`` (ten times the examples; choose
it with ``HYPOTHESIS_PROFILE=thorough``).  Example counts are sized so the whole
suite stays quick on 2 cores.
"""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import refnet

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, **_COMMON)
settings.register_profile("ci", parent=settings.get_profile("ci"), max_examples=100, **_COMMON)
settings.register_profile("thorough", max_examples=1000, **_COMMON)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def pytest_report_header(config):
    return [
        f"refnet from {Path(refnet.__file__).parent}",
        f"hypothesis profile: {settings._current_profile}",
    ]


@pytest.fixture(params=["compiled", "reference"])
def each_backend(request):
    """Run a test once on each backend."""
    with refnet.use_backend(request.param):
        yield request.param
