"""Shared set-up for the benchmarks: seeded data, and the baselines that targets are ratios of.

Concrete benchmark classes only declare ``params``/``param_names`` and
``setup``; a combination that does not apply raises ``NotImplementedError`` in
``setup``, which asv records as skipped.  Every target is a ratio of two timings
taken in the same run (compiled vs reference, vs a streaming baseline), never
an absolute time: the machine is shared and noisy.
"""

import functools
import inspect
import os

import numpy as np

import refnet

DTYPES = ["float32", "float64"]
BACKENDS = ["compiled", "reference"]
# Threads for the compiled updates and sigmoid/tanh: one (the default), or every core (set_num_threads).
THREADS = ["1", "all"]


def random_array(shape, dtype, seed=0, scale=4.0):
    """Seeded normal data of ``dtype``."""
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal(shape)).astype(dtype)


class Warm:
    """Base class: ``setup`` ends by calling each ``time_`` method once, untimed.

    asv times each call right after a fresh ``setup``, and ``asv run --quick`` (the
    README's command) times just one, so without this it would time first-call costs
    instead of the work: PyTorch's lazy initialisation (measured 85 ms on a first
    ``torch.sigmoid`` of 10^7 float32 elements that then takes 6 ms) and the page faults
    of a fresh output array (a first ``np.copyto`` of 10^7 float32: 7.4 ms, then 4.4 ms).
    Every ratio is then of two steady states.  ``command.Tour`` times a cold start on
    purpose and ``peers.AdamEpochMemory`` measures peak memory (which a warm-up's
    allocations would count): neither derives from this class.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        setup = cls.__dict__.get("setup")
        if setup is None:
            return

        @functools.wraps(setup)
        def setup_then_warm_up(self, *params):
            # A subclass's setup may call super().setup(): only the outermost call warms up,
            # once everything is set up.
            outermost = not getattr(self, "_setting_up", False)
            self._setting_up = True
            try:
                setup(self, *params)
            finally:
                if outermost:
                    self._setting_up = False
            if outermost:
                for name in dir(self):
                    if name.startswith("time_"):
                        getattr(self, name)(*params)

        # asv versions a benchmark by its setup's source (read through __wrapped__) and checks
        # setup's arity: say that this one warms up, and keep the wrapped signature.
        setup_then_warm_up.pretty_source = inspect.getsource(setup) + "# then each time_ method once (Warm)\n"
        setup_then_warm_up.__signature__ = inspect.signature(setup)
        cls.setup = setup_then_warm_up


class Benchmark(Warm):
    """Base class: runs the timed body on the backend named in the parameters."""

    timeout = 300
    backend = "compiled"

    def setup_backend(self, backend):
        self._previous_backend = refnet.get_backend()
        refnet.set_backend(backend)

    def setup_threads(self, threads):
        if threads == "all":
            self._previous_threads = refnet.get_num_threads()
            refnet.set_num_threads(os.cpu_count() or 1)

    def teardown(self, *params):
        if hasattr(self, "_previous_backend"):
            refnet.set_backend(self._previous_backend)
        if hasattr(self, "_previous_threads"):
            refnet.set_num_threads(self._previous_threads)
