"""Regression tests for defects found in review: each failed before its fix."""

import gzip

import numpy as np
import pytest

import refnet
from refnet.ensemble import convert_dropout, dropout_parameter_groups
from refnet.regularizers import L2


@pytest.mark.parametrize("backend", ["compiled", "reference"])
def test_prelu_out_overlapping_the_slope_is_computed_as_if_separate(backend):
    with refnet.use_backend(backend):
        buffer = np.empty((3, 2))
        buffer[0] = 0.5
        slope = buffer[0]
        expected = refnet.prelu(-np.ones((3, 2)), slope.copy())
        refnet.prelu(-np.ones((3, 2)), slope, out=buffer)
        np.testing.assert_array_equal(buffer, expected)

        buffer[0] = 0.5
        expected_input, _ = refnet.prelu_backward(2 * np.ones((3, 2)), -np.ones((3, 2)), slope.copy())
        refnet.prelu_backward(2 * np.ones((3, 2)), -np.ones((3, 2)), slope, out=(buffer, None))
        np.testing.assert_array_equal(buffer, expected_input)


@pytest.mark.parametrize(
    "make",
    [
        lambda: refnet.SGD(0.1, momentum=None, nesterov=None, weight_decay=None),
        lambda: refnet.Adagrad(0.1, weight_decay=None),
        lambda: refnet.RMSProp(0.1, momentum=None, centered=None, weight_decay=None),
        lambda: refnet.Adam(0.1, beta1=None, beta2=None, weight_decay=None),
    ],
)
def test_none_means_the_presets_value_for_every_hyper_parameter(make):
    optimizer, default = make(), type(make())(0.1)
    assert optimizer.settings == default.settings


@pytest.mark.parametrize(
    "make",
    [lambda: refnet.RMSProp(0.01, eps=0.0), lambda: refnet.Adagrad(0.01, eps=0.0), lambda: refnet.Adam(0.01, eps=0.0),
     lambda: refnet.RMSProp(0.01, eps=0.0, convention="keras")],
)
def test_eps_zero_is_refused_outside_lees_root_form(make):
    with pytest.raises(ValueError, match="eps must be positive unless root_state=True"):
        make()


def test_lees_forms_need_no_eps_and_handle_tiny_gradients():
    for optimizer in (refnet.RMSProp(0.01, convention="lee"), refnet.Adagrad(0.01, convention="lee")):
        theta = np.zeros(1)
        optimizer.step([theta], [np.array([1e-200])])
        optimizer.step([theta], [np.array([1e-170])])
        assert np.all(np.isfinite(theta)) and abs(theta[0]) < 0.05


def test_a_gradient_sharing_memory_with_another_parameter_is_read_before_the_step():
    a, b = np.ones(3), np.ones(3)
    refnet.SGD(1.0).step([a, b], [np.full(3, 0.5), a])   # b's gradient is a, as it was before the step
    np.testing.assert_array_equal(a, 0.5)
    np.testing.assert_array_equal(b, 0.0)


def test_dropout_groups_scale_l1_too():
    """With L1 on, the two conventions still train alike (l1 / (1 - p) on the converted weights)."""
    from test_ensemble import _network, _train_side_by_side

    lee = _network("scale-at-test")
    inverted = convert_dropout(lee, "inverted")
    groups = dropout_parameter_groups(lee)
    gap = _train_side_by_side(lee, inverted, refnet.SGD(0.1, momentum=0.5, l1=0.05),
                              refnet.SGD(0.1, momentum=0.5, l1=0.05, groups=groups))
    assert gap < 1e-12


def test_a_file_with_deeply_nested_json_is_refused_cleanly(tmp_path):
    path = tmp_path / "nested.npz"
    np.savez(path, __refnet__=np.array("refnet.Sequential/1"), __layers__=np.array("[" * 100_000 + "]" * 100_000))
    with pytest.raises(ValueError, match="no valid layer list"):
        refnet.Sequential.load(path)


def test_an_idx_header_whose_size_wraps_around_64_bits_is_refused(tmp_path):
    # magic: 0, 0, dtype 0x08 (uint8), 3 dimensions; sizes 2^31, 2^31, 4: product 2^64.
    header = bytes([0, 0, 0x08, 3]) + (2**31).to_bytes(4, "big") * 2 + (4).to_bytes(4, "big")
    path = tmp_path / "forged-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header))
    with pytest.raises(ValueError, match=r"needs 18446744073709551632 bytes"):   # 2^64 + 16: no wrap to 16
        refnet.datasets.read_idx(path)


def test_dropout_takes_its_seed_positionally_as_the_issue_names_it():
    layer = refnet.Dropout(0.5, "inverted", 0)
    np.testing.assert_array_equal(layer.forward(np.ones(8), training=True) != 0,
                                  np.random.default_rng(0).random(8) >= 0.5)


def test_argument_checks():
    with pytest.raises(ValueError, match="eps must be positive"):
        refnet.gradcheck(refnet.Dense(2, 2), np.ones((1, 2)), np.zeros((1, 2)), loss="mean_squared_error", eps=0.0)
    with pytest.raises(ValueError, match="init must be one of"):
        refnet.Dense(2, 3, init=["x"])
    with pytest.raises(ValueError, match="must have the shape of parameter"):
        L2(0.1).add_gradient([("0.dense.weight", np.ones((2, 2)))], [np.ones(2)])


def test_the_ensemble_oracle_returns_float64_for_float32_networks():
    network = refnet.Sequential([refnet.Dropout(0.5), refnet.Dense(3, 2, dtype=np.float32)])
    result = refnet.ensemble.dropout_ensemble(network, np.ones((2, 3), np.float32))
    assert result.arithmetic_mean.dtype == result.weight_scaled.dtype == np.float64
