"""Argument checks shared by every public function.

Everything a compiled kernel assumes is established here, in Python, before any
``nogil`` code runs: the dtype, C-contiguity, shapes, and an ``out`` that is safe
to write.  Errors name the argument and say what was expected.  Nothing here
modifies a caller's array.
"""

import math
import numbers
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(x, name):
    """Return ``x`` as a C-contiguous float32 or float64 ndarray.

    Lists and scalars are converted with :func:`numpy.asarray` (so Python floats
    become float64); any other dtype, integers included, is a ``TypeError``
    rather than a silent cast.  Non-contiguous input is copied, never modified.
    """
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{name} must be an array of floats; {error}") from None
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {array.dtype}"
        )
    # Not np.ascontiguousarray: it turns a 0-d array into a 1-d one.
    return array if array.flags.c_contiguous else array.copy(order="C")


def like(x, name, dtype, shape, source):
    """Return ``x`` as an array of the given dtype and shape, or raise.

    ``source`` names where the expectation comes from, for the message
    (for example ``"z"``).
    """
    array = float_array(x, name)
    if array.dtype != dtype:
        raise TypeError(f"{name} must have the dtype of {source} ({dtype}), got {array.dtype}")
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape of {source} {tuple(shape)}, got {array.shape}")
    return array


def at_least_1d(array, name):
    """Raise unless ``array`` has an axis to work along."""
    if array.ndim == 0:
        raise ValueError(f"{name} must have at least 1 dimension, got a 0-d array")


def finite_scalar(value, name):
    """Return ``value`` as a finite Python float, or raise.

    Real numbers (Python or NumPy, or a 0-d real array) only: not bools, not
    strings, not sequences.
    """
    is_real_array = isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"
    if isinstance(value, (bool, np.bool_)) or not (isinstance(value, numbers.Real) or is_real_array):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:   # an int beyond float's range, such as 10**400
        raise ValueError(f"{name} must be finite, got an integer of {value.bit_length()} bits") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def leaky_slope(value, name="slope", dtype=None):
    """Return a Leaky ReLU slope as a float >= 0, or raise.

    A negative slope would flip the sign of the negative side (not a leaky ReLU);
    Keras refuses it too.  PReLU's learned slopes are not limited.  With ``dtype``,
    the slope must also be finite in it, as PyTorch requires: the kernels round it
    to the arrays' dtype, and an infinite slope would make slope * 0 a NaN.
    """
    number = finite_scalar(value, name)
    if number < 0:
        raise ValueError(f"{name} must be >= 0 (a leaky ReLU keeps the sign of z), got {number}")
    if dtype is not None and number > float(np.finfo(dtype).max):
        raise ValueError(f"{name} must fit in z's dtype ({np.dtype(dtype)}), got {number} beyond its range")
    return number


def generator(seed, name="seed"):
    """``numpy.random.default_rng(seed)`` (a Generator is returned as it is), or raise naming ``name``."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{name} must be None, a non-negative integer or a numpy.random.Generator, "
                          f"got {seed!r} ({error})") from None


def flag(value, name):
    """Return ``value`` as a bool, or raise unless it is True or False (not 0, 1 or "yes")."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def positive_int(value, name):
    """Return ``value`` as an int >= 1, or raise."""
    return _integer(value, name, 1, "a positive integer")


def non_negative_int(value, name):
    """Return ``value`` as an int >= 0, or raise."""
    return _integer(value, name, 0, "a non-negative integer")


def _integer(value, name, low, expected):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if number < low:
        raise ValueError(f"{name} must be {expected}, got {number}")
    return number


def output(out, shape, dtype, inputs, name="out"):
    """Check a caller's ``out`` (or allocate one) and say where the kernel writes.

    Returns ``(target, result)``: the kernel writes into ``target``; ``result``
    is what the caller gets back.  ``target`` is ``result`` unless ``out``
    partly overlaps an input, which the kernels do not allow: then the kernel
    writes a fresh array that is copied into ``out`` afterwards, as NumPy's
    ufuncs do.  ``out`` that *is* an input (same memory, same layout) is
    written in place.
    """
    if out is None:
        result = np.empty(shape, dtype=dtype)
        return result, result
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable, got a read-only array")
    for array in inputs:
        if np.may_share_memory(out, array) and not _same_view(out, array):
            return np.empty(shape, dtype=dtype), out
    return out, out


def _same_view(a, b):
    # The dtype too: a float view of a bool mask's memory is not the mask.
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.dtype == b.dtype
        and a.shape == b.shape
        and a.strides == b.strides
    )


def matrix(x, name, dtype=None, min_rows=0):
    """Return ``x`` as a C-contiguous 2-D float array (of ``dtype`` if given), or raise.

    ``min_rows=1`` refuses an empty batch (a mean over no rows is undefined).
    """
    array = float_array(x, name)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, columns), got {array.ndim}-D shape {array.shape}")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {array.dtype}")
    if array.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} row(s), got shape {array.shape}")
    if array.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column, got shape {array.shape}")
    return array


def labels(y, name, rows, classes):
    """Return integer class labels as a C-contiguous ``intp`` vector of length ``rows``, or raise.

    Every label must lie in ``[0, classes)``: a kernel indexes with it.
    """
    array = np.asarray(y)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer class labels, got dtype {array.dtype}")
    if array.shape != (rows,):
        raise ValueError(f"{name} must have shape ({rows},) (one label per row), got {array.shape}")
    if rows and (array.min() < 0 or array.max() >= classes):
        raise ValueError(
            f"{name} must lie in [0, {classes}) (one per class), got values in "
            f"[{array.min()}, {array.max()}]"
        )
    return np.ascontiguousarray(array, dtype=np.intp)
