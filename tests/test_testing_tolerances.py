"""refnet.testing.tolerances: each comparison accepts what it should, rejects what it should, and says where."""

import numpy as np
import pytest

from refnet.testing.tolerances import Exact, Relative, Ulp, assert_within


def test_exact_accepts_signed_zeros_and_nans_and_names_the_first_difference():
    assert Exact().compare([0.0, np.nan, 1.0], [-0.0, np.nan, 1.0]).holds
    report = Exact().compare([1.0, 2.0, 3.0], [1.0, np.nextafter(2.0, 3.0), 3.0])
    assert (report.holds, report.index, report.failures) == (False, (1,), 1)


def test_ulp_counts_representable_floats_between():
    one = np.float32(1)
    three_up = np.nextafter(np.nextafter(np.nextafter(one, 2), 2), 2)
    assert Ulp(3).compare([three_up], [one]).holds
    report = Ulp(2).compare([one, three_up, one, three_up], [one, one, three_up, one])
    assert (report.holds, report.error, report.index, report.first, report.failures) == (False, 3.0, (1,), (1,), 3)
    assert "3 ulp at index (1,)" in str(report)


def test_relative_scales_with_the_wanted_value_and_floors_at_atol():
    tolerance = Relative(rtol=1e-6, atol=1e-12)
    assert tolerance.compare([1e6 + 0.9], [1e6]).holds
    assert not tolerance.compare([1e6 + 1.1], [1e6]).holds
    assert tolerance.compare([5e-13], [0.0]).holds
    assert tolerance.compare([1.0, 3.0, 1e6 + 9], [1.0, 2.0, 1e6]).first == (1,)   # not the worst, (2,)
    assert not tolerance.compare([np.nan], [0.0]).holds
    assert tolerance.compare([np.nan, np.inf], [np.nan, np.inf]).holds


def test_assert_within_raises_with_the_report():
    with pytest.raises(AssertionError, match=r"weights: 1 element\(s\) out of tolerance; worst .* index \(0, 1\)"):
        assert_within(np.array([[1.0, 2.5]]), np.array([[1.0, 2.0]]), Relative(1e-3), what="weights")
    assert assert_within([], [], Exact()).holds
