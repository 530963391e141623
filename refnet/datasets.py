r"""Datasets: MNIST from IDX files, scikit-learn's 8×8 digits, and two Gaussian classes.

* :func:`load_mnist` reads the IDX files of MNIST [LeCun1998]_ from a directory
  the caller names (gzip-compressed or raw); nothing is downloaded.
* :func:`load_digits` is the default embedded dataset for examples: the 1,797
  8×8 handwritten digits that scikit-learn ships (``pip install
  'refnet[examples]'``).
* :func:`two_gaussians` samples two classes with Gaussian class-conditionals
  sharing one covariance, whose Bayes posterior is exactly a sigmoid of a
  linear function (see :mod:`refnet.bayes`).

Images are scaled to [0, 1] in the requested float dtype; labels are int64.

References
----------
Defined once in the documentation's bibliography (``docs/bibliography.rst``);
the notes here say which part of each source this module follows.

* [LeCun1998] Y. LeCun, C. Cortes and C. J. C. Burges, "The MNIST database of
  handwritten digits" (the IDX file format is described on that page).
"""

import math
import os
import stat
import zlib

import numpy as np

from ._validate import FLOAT_DTYPES, generator, positive_int
from .bayes import _check as _gaussian_parameters

__all__ = ["read_idx", "load_mnist", "load_digits", "two_gaussians", "IDX_LIMIT"]

# IDX type codes (the third byte of the magic number) and their big-endian dtypes.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

MNIST_FILES = {"train": "train", "test": "t10k"}


# The most bytes read_idx unpacks a file to unless told otherwise: MNIST's training
# images are 47 MB; a forged header or a gzip bomb is refused before it costs memory.
IDX_LIMIT = 2**30

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path, *, max_bytes=IDX_LIMIT):
    """Read one IDX file (gzip-compressed or raw, told apart by its first bytes) into an array.

    The header is a magic number ``0x00 0x00 <type> <ndim>`` followed by
    ``ndim`` big-endian uint32 sizes; the data follow, big-endian, row-major.

    Nothing is allocated or decompressed beyond the header before the sizes it
    states are checked against ``max_bytes`` (:data:`IDX_LIMIT`, 1 GiB, by
    default) and, for a raw file, against the file's size; a gzip stream is
    decompressed only up to the size its header states.  A size of 0 gives an
    empty array (of a shape NumPy can hold: at most 64 sizes, each within its index range).

    Parameters
    ----------
    path : str or path-like
    max_bytes : int, default :data:`IDX_LIMIT`
        The largest data size accepted.

    Returns
    -------
    ndarray
        Of the header's type and shape, in native byte order.

    Raises
    ------
    ValueError
        For a wrong magic number, a header that does not fit, data shorter or
        longer than the sizes say (a truncated or foreign file), or more than
        ``max_bytes``.
    """
    max_bytes = positive_int(max_bytes, "max_bytes")
    # O_NONBLOCK: opening a named pipe would otherwise wait for a writer, before the check below
    # could refuse it (it does nothing to a regular file's reads).
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as file:
        # (file.read(n) reserves n bytes up front: every read below is of a size already checked.)
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):   # a pipe or device has no size to check against
            raise ValueError(f"{path} is not a regular file")
        file_size = status.st_size
        compressed = file.read(2) == _GZIP_MAGIC
        file.seek(0)
        if compressed:
            # Deflate expands incompressible data by at most ~0.1 %: a bigger file is not one we would read.
            if file_size > max_bytes + max_bytes // 64 + 2**16:
                raise ValueError(f"{path}: {file_size} bytes compressed, more than max_bytes={max_bytes} allows")
            stream = file.read()
            read = lambda size: _gunzip(stream, size, path)  # noqa: E731
        else:
            read = lambda size: file.read(min(size, file_size))  # noqa: E731
        dtype, shape, header = _idx_header(read(4 + 4 * 255), path)
        expected = header + dtype.itemsize * math.prod(shape)   # Python ints: a forged header cannot wrap around
        if expected > max_bytes:
            raise ValueError(f"{path}: shape {shape} needs {expected} bytes, more than max_bytes={max_bytes}")
        if not compressed:
            file.seek(0)
        data = read(expected + 1)
    if len(data) < expected:
        raise ValueError(f"{path}: truncated: {len(data)} bytes where shape {shape} needs {expected}")
    if len(data) > expected:
        raise ValueError(f"{path}: longer than its header says: shape {shape} needs {expected} bytes")
    try:
        array = np.frombuffer(data, dtype, math.prod(shape), header).reshape(shape)
    except ValueError as error:   # a shape NumPy cannot hold: over 64 sizes, or huge ones beside a 0
        raise ValueError(f"{path}: a header that does not fit: shape {shape} ({error})") from None
    return array.astype(dtype.newbyteorder("="))


def _idx_header(data, path):
    """(big-endian dtype, shape, header length) from the first bytes of an IDX file."""
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file: wrong magic number {data[:4].hex() or '(empty)'}")
    dtype, ndim = np.dtype(IDX_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated header ({len(data)} bytes, {ndim} sizes need {header})")
    return dtype, tuple(int(size) for size in np.frombuffer(data, ">u4", ndim, offset=4)), header


def _gunzip(stream, size, path):
    """The first ``size`` bytes (fewer if it ends sooner) of gzip data of one or more members.

    Decompressed with zlib's ``max_length``, so a gzip bomb costs at most ``size`` bytes.
    """
    out = bytearray()
    try:
        while stream and len(out) < size:
            member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += member.decompress(stream, size - len(out))
            if not member.eof:
                if member.unconsumed_tail:   # stopped at size
                    break
                raise EOFError("the stream ends inside a gzip member")
            # gzip(1) and Python's gzip module accept zero bytes padding the end of the file.
            stream = member.unused_data.lstrip(b"\0")
    except (EOFError, zlib.error) as error:
        raise ValueError(f"{path}: the gzip stream is damaged or truncated ({error})") from None
    return bytes(out)


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _find(directory, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no {name}.gz or {name} in {directory}")


def load_mnist(directory, subset="test", *, dtype=np.float64, flatten=True):
    """Load the MNIST ``"train"`` or ``"test"`` set from the IDX files in ``directory``.

    Reads ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (or the
    ``t10k-`` pair for the test set), each ``.gz`` or raw.

    Parameters
    ----------
    directory : str or path-like
    subset : {"test", "train"}
    dtype : float32 or float64, default float64
    flatten : bool, default True
        Rows of 784 pixels rather than 28 × 28 images.

    Returns
    -------
    x : ndarray, shape (n, 784), or (n, 28, 28) when not ``flatten``
        Pixels scaled to [0, 1] in ``dtype``.
    y : ndarray of int64, shape (n,)
        Digits 0-9.
    """
    if subset not in MNIST_FILES:
        raise ValueError(f"subset must be one of {sorted(MNIST_FILES)}, got {subset!r}")
    dtype = _float_dtype(dtype)
    prefix = MNIST_FILES[subset]
    images_path = _find(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{images_path}: expected unsigned bytes of 3 dimensions (magic 0x00000803), "
                         f"got {images.dtype} with {images.ndim}")
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: MNIST's images are 28x28, got {images.shape[1]}x{images.shape[2]}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected unsigned bytes of 1 dimension (magic 0x00000801), "
                         f"got {labels.dtype} with {labels.ndim}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be digits 0-9, found {labels.max()}")
    x = images.astype(dtype) / dtype.type(255)
    return (x.reshape(len(x), math.prod(x.shape[1:])) if flatten else x), labels.astype(np.int64)


def load_digits(*, dtype=np.float64):
    """scikit-learn's 1,797 8×8 digits: ``x`` of shape (1797, 64) in [0, 1], ``y`` of int64 0-9.

    Needs scikit-learn (``pip install 'refnet[examples]'``); it reads the copy
    scikit-learn ships, with no download.

    Parameters
    ----------
    dtype : float32 or float64, default float64

    Returns
    -------
    x : ndarray, shape (1797, 64)
    y : ndarray of int64, shape (1797,)
    """
    dtype = _float_dtype(dtype)
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError(
            "load_digits needs scikit-learn, an optional dependency: pip install scikit-learn "
            "(or pip install 'refnet[examples]')"
        ) from None
    digits = sklearn_digits()
    # Pixel values are counts 0-16 (4x4 blocks of the original 32x32 bitmaps).
    return (digits.data / 16).astype(dtype), digits.target.astype(np.int64)


def two_gaussians(n, mean1, mean2, cov, prior1=0.5, *, seed=None, dtype=np.float64):
    r"""Sample ``n`` points of two classes with Gaussian class-conditionals sharing ``cov``.

    Each point is of class 1 with probability ``prior1`` (label 1), else of
    class 2 (label 0), and is drawn from :math:`\mathcal N(\mu_1, \Sigma)` or
    :math:`\mathcal N(\mu_2, \Sigma)`.  The Bayes posterior of label 1 is then
    :math:`\sigma(w^\top x + b)`, with :math:`w, b` from
    :func:`refnet.bayes.shared_covariance_logistic`.

    Parameters
    ----------
    n : int
        Number of points.
    mean1, mean2 : array_like, shape (d,)
        Class means :math:`\mu_1, \mu_2`.
    cov : array_like, shape (d, d)
        The shared covariance :math:`\Sigma`.
    prior1 : float, default 0.5
        :math:`\pi_1`, the probability of label 1.
    seed : int or None
        For :func:`numpy.random.default_rng`.
    dtype : float32 or float64, default float64

    Returns
    -------
    x : ndarray, shape (n, d), of ``dtype``
    y : ndarray of int64, shape (n,)
    """
    n = positive_int(n, "n")
    mean1, mean2, cov, prior1 = _gaussian_parameters(mean1, mean2, cov, prior1)
    dtype = _float_dtype(dtype)
    rng = generator(seed)
    y = (rng.random(n) < prior1).astype(np.int64)
    noise = rng.standard_normal((n, len(mean1))) @ np.linalg.cholesky(cov).T
    x = np.where(y[:, None] == 1, mean1, mean2) + noise
    return x.astype(dtype), y
