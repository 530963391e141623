"""Which implementation the public functions run: compiled (default) or reference.

The two backends have the same kernels under the same names and signatures
(a test proves it): :mod:`refnet._core`, compiled, and :mod:`refnet.reference`,
the formulas as readable NumPy.  Run on the reference to step through the math
in a debugger, or to check a result against its plain transcription::

    with refnet.use_backend("reference"):
        refnet.sigmoid(z)          # runs refnet.reference.activations.sigmoid

    refnet.set_backend("reference")    # for the rest of this thread / task

The choice is held in a :class:`contextvars.ContextVar`, so threads and asyncio
tasks each have their own and a ``with`` block never leaks into another.
"""

import contextvars

from . import _validate, reference

try:
    from . import _core
except ImportError as error:  # pragma: no cover - depends on how refnet was imported
    raise ImportError(
        "refnet's compiled core (refnet._core) is missing. If you are inside the "
        "repository, Python imported the source folder: run from another directory, "
        "use the `pytest` or `refnet` commands rather than `python -m ...`, or install "
        "with `pip install --no-build-isolation -e .`."
    ) from error

__all__ = ["BACKENDS", "get_backend", "set_backend", "use_backend", "active", "get_num_threads",
           "set_num_threads"]

BACKENDS = {"compiled": _core, "reference": reference}

_current = contextvars.ContextVar("refnet_backend", default="compiled")


def _checked(name):
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {name!r}")
    return name


def get_backend():
    """Name of the active backend: ``"compiled"`` or ``"reference"``.

    Returns
    -------
    str
        ``"compiled"`` unless :func:`set_backend` or :class:`use_backend` chose otherwise
        in this thread or task.
    """
    return _current.get()


def set_backend(name):
    """Make ``name`` the active backend, for the rest of this thread or asyncio task.

    Parameters
    ----------
    name : {"compiled", "reference"}
        A key of :data:`BACKENDS`; anything else raises :class:`ValueError`.
    """
    _current.set(_checked(name))


class use_backend:
    """Make ``name`` the active backend; as a ``with`` block, only for its body.

    ``with use_backend("reference"): ...`` restores the previous backend at the
    end of the block, even on an exception.  Called on its own, without ``with``,
    it switches at once and for good, as :func:`set_backend` (it used to do
    nothing at all, silently).

    Parameters
    ----------
    name : {"compiled", "reference"}
        A key of :data:`BACKENDS`.
    """

    def __init__(self, name):
        self._token = _current.set(_checked(name))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        _current.reset(self._token)
        return False


def active():
    """The module of kernels the public functions dispatch to now.

    Returns
    -------
    module
        :mod:`refnet._core` or :mod:`refnet.reference`.
    """
    return BACKENDS[_current.get()]


def get_num_threads():
    """Threads the compiled updates and sigmoid/tanh kernels may use (1 unless :func:`set_num_threads` said more).

    Returns
    -------
    int
        The count last set (process-wide); OpenMP's own limit may still run fewer.
    """
    return _core._get_num_threads()


def set_num_threads(threads):
    """Let the compiled elementwise kernels split arrays of 2 x 8,192 elements or more across ``threads``.

    The kernels are the optimizer updates and the sigmoid and tanh functions
    with their derivatives and backward passes.  The default, 1, leaves the
    cores to BLAS, whose own threads run the matrix products of a training step
    (two pools on the same cores slow training many-fold).  More threads pay for
    large arrays outside such a loop.  OpenMP's limit (``OMP_NUM_THREADS``, ``threadpoolctl``) still caps the
    count, a build without OpenMP uses one thread, and the results are the same
    bits for any count.  Process-wide, unlike the backend.

    Parameters
    ----------
    threads : int
        At least 1.
    """
    # Capped to a C int; OpenMP caps it far lower anyway.
    _core._set_num_threads(min(_validate.positive_int(threads, "threads"), 2**31 - 1))
