"""Shared set-up for the benchmarks: seeded data, and the baselines that targets are ratios of.

Concrete benchmark classes only declare ``params``/``param_names`` and
``setup``; a combination that does not apply raises ``NotImplementedError`` in
``setup``, which asv records as skipped.  Every target is a ratio of two timings
taken in the same run (compiled vs reference, vs a streaming baseline), never
an absolute time: the machine is shared and noisy.
"""

import numpy as np
from threadpoolctl import threadpool_limits

import refnet

DTYPES = ["float32", "float64"]
BACKENDS = ["compiled", "reference"]
# OpenMP threads for the compiled optimizer updates: every one OpenMP offers, or one.
THREADS = ["all", "1"]


def random_array(shape, dtype, seed=0, scale=4.0):
    """Seeded normal data of ``dtype``."""
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal(shape)).astype(dtype)


class Benchmark:
    """Base class: runs the timed body on the backend named in the parameters."""

    timeout = 300
    backend = "compiled"

    def setup_backend(self, backend):
        self._previous_backend = refnet.get_backend()
        refnet.set_backend(backend)

    def setup_threads(self, threads):
        if threads == "1":
            self._thread_limits = threadpool_limits(1, user_api="openmp")

    def teardown(self, *params):
        if hasattr(self, "_previous_backend"):
            refnet.set_backend(self._previous_backend)
        if hasattr(self, "_thread_limits"):
            self._thread_limits.restore_original_limits()
