"""Datasets: the real MNIST test files, hand-made IDX files (good and broken), digits, two Gaussians."""

import gzip
import math
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from conftest import MNIST_DIR

import refnet
from refnet.datasets import load_mnist, read_idx, two_gaussians

needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"MNIST test files not in {MNIST_DIR}")


@needs_mnist
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reads_the_real_mnist_test_set(dtype):
    x, y = load_mnist(MNIST_DIR, "test", dtype=dtype)
    assert x.shape == (10000, 784) and x.dtype == dtype and y.dtype == np.int64
    assert x.min() == 0 and x.max() == 1
    # Published facts about the MNIST test set: its first digits, and how many of each.
    assert y[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    images, _ = load_mnist(MNIST_DIR, flatten=False, dtype=dtype)
    assert images.shape == (10000, 28, 28) and np.array_equal(images.reshape(10000, -1), x)


def _idx(array, type_code=0x08):
    """IDX bytes written here from the format's description, independently of the reader."""
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_mnist(directory, images, labels, compress):
    for name, array in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        data = _idx(array)
        (directory / (name + ".gz" if compress else name)).write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [False, True])
def test_reads_hand_made_idx_files_raw_or_gzip(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    _write_mnist(tmp_path, images, labels, compress)
    x, y = load_mnist(tmp_path, flatten=False)
    assert np.array_equal(x * 255, images) and y.tolist() == [3, 1, 4, 1, 5]
    floats = np.array([[1.5, -2.0]], ">f8")
    (tmp_path / "floats.idx").write_bytes(_idx(floats, 0x0E))
    got = read_idx(tmp_path / "floats.idx")
    assert got.tolist() == [[1.5, -2.0]] and got.dtype.isnative


@pytest.mark.parametrize("damage, message", [
    (lambda d: b"\x01\x02" + d[2:], "wrong magic number"),
    (lambda d: d[:2] + b"\x07" + d[3:], "wrong magic number"),
    (lambda d: b"", "wrong magic number"),
    (lambda d: d[:9], "truncated header"),
    (lambda d: d[:-1], "truncated: "),
    (lambda d: d + b"\x00", "longer than its header says"),
    (lambda d: gzip.compress(d)[:-9], "gzip stream is damaged or truncated"),
])
def test_broken_idx_files_are_refused(tmp_path, damage, message):
    data = _idx(np.zeros((2, 3, 4), np.uint8))
    path = tmp_path / "broken"
    path.write_bytes(damage(data))
    with pytest.raises(ValueError, match=message):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_empty_idx_files_load_as_empty_arrays(tmp_path, compress):
    """Regression: valid files of zero images were refused with a reshape error."""
    _write_mnist(tmp_path, np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), compress)
    x, y = load_mnist(tmp_path, dtype=np.float32)
    assert x.shape == (0, 784) and x.dtype == np.float32 and y.shape == (0,) and y.dtype == np.int64
    assert load_mnist(tmp_path, flatten=False)[0].shape == (0, 28, 28)


def _read_refused_without_allocating(path, message, **options):
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message):
            read_idx(path, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**21   # the stated sizes were never allocated nor decompressed


@pytest.mark.parametrize("compress", [False, True])
def test_forged_sizes_and_gzip_bombs_are_refused_before_they_cost_memory(tmp_path, compress):
    """Regression: a gzip-bombed IDX file was decompressed without a bound."""
    path = tmp_path / "forged"
    write = lambda data: path.write_bytes(gzip.compress(data) if compress else data)  # noqa: E731
    # A header stating 60000 x 2^16 x 2^16 bytes (2.6e14) over 10 bytes of data.
    write(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (60000, 2**16, 2**16)) + bytes(10))
    _read_refused_without_allocating(path, r"needs 257698037760016 bytes, more than max_bytes=1073741824")
    # An honest header over 64 MiB of zeros (64 KiB gzipped): over a 1 MiB limit, refused unread.
    write(_idx(np.zeros((2**20, 64), np.uint8)))
    _read_refused_without_allocating(path, "more than max_bytes=1048576", max_bytes=2**20)
    # A small header followed by a bomb: decompressed only one byte past the stated size.
    write(_idx(np.zeros((2, 3), np.uint8)) + bytes(2**26))
    _read_refused_without_allocating(path, "longer than its header says")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_is_refused_unread():
    with pytest.raises(ValueError, match="/dev/zero is not a regular file"):
        read_idx("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    """Regression: open() of a pipe waits for a writer, so read_idx (and load_mnist, and the
    refnet command's --data-dir) hung there, before the regular-file check could refuse it.
    In a subprocess, so that a regression fails by its timeout rather than hang the suite."""
    pipe = tmp_path / "t10k-images-idx3-ubyte"
    os.mkfifo(pipe)
    script = f"from refnet.datasets import read_idx\ntry:\n    read_idx({str(pipe)!r})\nexcept ValueError as e:\n    print(e)"
    # cwd: not the repository root, whose refnet/ folder would shadow the installed package.
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"{pipe} is not a regular file", result


def test_gzip_of_several_members_is_read_whole(tmp_path):
    data = _idx(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    (tmp_path / "two.gz").write_bytes(gzip.compress(data[:10]) + gzip.compress(data[10:]))
    assert read_idx(tmp_path / "two.gz").tolist() == np.arange(24).reshape(2, 3, 4).tolist()
    with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
        read_idx(tmp_path / "two.gz", max_bytes=-1)


def test_gzip_padded_with_zero_bytes_is_read_as_gzip_reads_it(tmp_path):
    """Regression: zero bytes after the last member (which gzip(1) and Python's gzip accept) were refused."""
    data = _idx(np.arange(5, dtype=np.uint8))
    (tmp_path / "padded.gz").write_bytes(gzip.compress(data) + bytes(8))
    assert gzip.decompress((tmp_path / "padded.gz").read_bytes()) == data
    np.testing.assert_array_equal(read_idx(tmp_path / "padded.gz"), np.arange(5))


def test_mnist_files_that_do_not_fit_together_are_refused(tmp_path):
    images = np.zeros((3, 28, 28), np.uint8)
    _write_mnist(tmp_path, images, np.array([1, 2], np.uint8), compress=False)
    with pytest.raises(ValueError, match="has 3 images but .* has 2 labels"):
        load_mnist(tmp_path)
    _write_mnist(tmp_path, images, np.array([1, 2, 10], np.uint8), compress=False)
    with pytest.raises(ValueError, match="labels must be digits 0-9"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.zeros((3, 1), np.uint8)))
    with pytest.raises(ValueError, match="expected unsigned bytes of 1 dimension"):
        load_mnist(tmp_path)
    # Regression: images of another size were read as MNIST, and the experiments ran on them.
    _write_mnist(tmp_path, np.zeros((3, 5, 5), np.uint8), np.array([1, 2, 3], np.uint8), compress=False)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte: MNIST's images are 28x28, got 5x5"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte.gz or train-images-idx3-ubyte"):
        load_mnist(tmp_path, "train")
    with pytest.raises(ValueError, match="subset must be one of"):
        load_mnist(tmp_path, "validation")


def test_digits_from_scikit_learn():
    pytest.importorskip("sklearn")
    x, y = refnet.datasets.load_digits(dtype=np.float32)
    assert x.shape == (1797, 64) and x.dtype == np.float32 and x.min() == 0 and x.max() == 1
    assert sorted(set(y.tolist())) == list(range(10))


def test_two_gaussians_have_the_stated_distribution():
    mean1, mean2, cov = np.array([1.0, 0.0]), np.array([-1.0, 2.0]), np.array([[1.0, 0.3], [0.3, 0.5]])
    x, y = two_gaussians(40000, mean1, mean2, cov, prior1=0.25, seed=0)
    # Standard errors with ~10,000-30,000 draws per class are ~0.01: 0.05 is > 4 sigma.
    assert y.mean() == pytest.approx(0.25, abs=0.02)
    for label, mean in ((1, mean1), (0, mean2)):
        np.testing.assert_allclose(x[y == label].mean(0), mean, atol=0.05)
        np.testing.assert_allclose(np.cov(x[y == label].T), cov, atol=0.05)
    again = two_gaussians(10, mean1, mean2, cov, prior1=0.25, seed=0, dtype=np.float32)
    assert again[0].dtype == np.float32 and np.array_equal(again[1], two_gaussians(10, mean1, mean2, cov, 0.25, seed=0)[1])
    with pytest.raises(ValueError, match="cov must be symmetric positive definite"):
        two_gaussians(10, mean1, mean2, -cov)
    # Regression: Cholesky reads only the lower triangle, so a matrix that is not symmetric
    # passed, and was sampled (and solved with) as another matrix than the one given.
    for call in (lambda c: two_gaussians(10, mean1, mean2, c),
                 lambda c: refnet.bayes.shared_covariance_logistic(mean1, mean2, c, 0.5),
                 lambda c: refnet.bayes.gaussian_posterior(np.zeros((1, 2)), mean1, mean2, c, 0.5)):
        with pytest.raises(ValueError, match="cov must be symmetric positive definite, got a matrix that is not symmetric"):
            call(np.array([[1.0, 0.9], [0.0, 1.0]]))
    # Regression: x was not checked: a column was broadcast to every coordinate, other widths
    # failed inside NumPy, and a complex x lost its imaginary part.
    posterior = refnet.bayes.gaussian_posterior
    for x, error, message in ((np.ones((4, 1)), ValueError, r"x must have shape \(n, 2\) \(one point per row\), got \(4, 1\)"),
                              (np.ones((2, 3)), ValueError, r"x must have shape \(n, 2\)"),
                              (np.ones((2, 2), complex), TypeError, "x must be an array of real numbers"),
                              ([[np.nan, 0.0]], ValueError, "x must be finite")):
        with pytest.raises(error, match=message):
            posterior(x, mean1, mean2, cov, 0.25)
    assert posterior(mean1, mean1, mean2, cov, 0.25).shape == (1,)   # one point as a vector


def test_an_idx_header_whose_size_wraps_around_64_bits_is_refused(tmp_path):
    # magic: 0, 0, dtype 0x08 (uint8), 3 dimensions; sizes 2^31, 2^31, 4: product 2^64.
    header = bytes([0, 0, 0x08, 3]) + (2**31).to_bytes(4, "big") * 2 + (4).to_bytes(4, "big")
    path = tmp_path / "forged-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header))
    with pytest.raises(ValueError, match=r"needs 18446744073709551632 bytes"):   # 2^64 + 16: no wrap to 16
        refnet.datasets.read_idx(path)


@pytest.mark.parametrize("sizes", [[1] * 70, [0] + [2**32 - 1] * 3, [2**32 - 1] * 3 + [0]])
def test_an_idx_shape_numpy_cannot_hold_is_refused_naming_the_file(tmp_path, sizes):
    """Regression: 70 sizes, or huge sizes beside a 0 (0 bytes of data, within max_bytes), raised
    NumPy's own ValueError from reshape, naming neither the file nor its header."""
    path = tmp_path / "forged-idx"
    path.write_bytes(bytes([0, 0, 0x08, len(sizes)]) + b"".join(n.to_bytes(4, "big") for n in sizes)
                     + bytes(math.prod(sizes)))
    with pytest.raises(ValueError, match=f"{path}: a header that does not fit: shape"):
        refnet.datasets.read_idx(path)
