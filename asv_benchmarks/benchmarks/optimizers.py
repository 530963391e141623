"""One optimizer step on 10^7 parameters: compiled vs reference vs an in-place streaming pass.

Target (issue 4): every compiled update's effective bandwidth, the bytes its formula must read
plus write (``BYTES_PER_ELEMENT`` arrays of the dtype per parameter), at least 50% of the
in-place scale's (2 arrays per element: read and write), both measured in the same run:
``ratio = (BYTES_PER_ELEMENT[rule] / 2) * time_in_place_scale / time_step``.

The compiled updates run on one thread by default (``threads="1"``, the target);
``threads="all"`` splits them across every core (``refnet.set_num_threads``).  NumPy's
baseline and reference run on one thread.
"""

import numpy as np

import refnet

from .common import BACKENDS, DTYPES, THREADS, Benchmark, Warm, random_array

SIZE = 10_000_000

RULES = {
    "sgd": lambda: refnet.SGD(1e-3),
    "sgd_momentum": lambda: refnet.SGD(1e-3, momentum=0.9),
    "sgd_nesterov": lambda: refnet.SGD(1e-3, momentum=0.9, nesterov=True),
    "adagrad": lambda: refnet.Adagrad(1e-2),
    "adagrad_lee": lambda: refnet.Adagrad(1e-2, convention="lee"),
    "rmsprop": lambda: refnet.RMSProp(1e-3),
    "rmsprop_lee": lambda: refnet.RMSProp(1e-3, convention="lee"),
    "rmsprop_centered_momentum": lambda: refnet.RMSProp(1e-3, momentum=0.9, centered=True),
    "adam": lambda: refnet.Adam(1e-3),
    "adamw_keras": lambda: refnet.Adam(1e-3, weight_decay=0.01, convention="keras"),
}

# Arrays of the dtype each rule must read or write per parameter: the parameter (read, write),
# the gradient (read), and each state array (read, write).
BYTES_PER_ELEMENT = {
    "sgd": 3, "sgd_momentum": 5, "sgd_nesterov": 5, "adagrad": 5, "adagrad_lee": 5, "rmsprop": 5,
    "rmsprop_lee": 5, "rmsprop_centered_momentum": 9, "adam": 7, "adamw_keras": 7,
}


class Step(Benchmark):
    params = [list(RULES), BACKENDS, DTYPES, THREADS]
    param_names = ["rule", "backend", "dtype", "threads"]

    def setup(self, rule, backend, dtype, threads):
        if backend == "reference" and threads != "1":
            raise NotImplementedError("the NumPy reference runs on one thread")
        self.setup_backend(backend)
        self.setup_threads(threads)
        self.optimizer = RULES[rule]()
        self.params = [random_array(SIZE, dtype)]
        self.grads = [random_array(SIZE, dtype, seed=1)]

    def time_step(self, rule, backend, dtype, threads):
        self.optimizer.step(self.params, self.grads)


class StreamingBaseline(Warm):
    """An in-place scale of one array of the same size: read and write, the bandwidth reference."""

    params = [DTYPES]
    param_names = ["dtype"]

    def setup(self, dtype):
        self.a = random_array(SIZE, dtype)

    def time_in_place_scale(self, dtype):
        # By -1, not 0.5: repeated halving would reach subnormals, which are slow on x86.
        np.multiply(self.a, -1.0, out=self.a)
