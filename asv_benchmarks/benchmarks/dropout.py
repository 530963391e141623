"""Dropout on 10^7 elements: compiled vs reference, with the floors measured in the same run.

Targets (issue 5), float64: the compiled forward (mask drawn and applied) at most
1.2x ``time_random`` (``Generator.random`` for as many doubles: drawing them is
the floor); the backward's effective bandwidth, (8 + 1 + 8) bytes per element
(gradient and mask read, result written), at least 50% of ``time_copyto``'s
16 bytes per element: ``ratio = (17 / 16) * time_copyto / time_backward``.
"""

import numpy as np

import refnet

from .common import BACKENDS, DTYPES, Benchmark, Warm, random_array

SIZE = 10_000_000
P = 0.5   # the hardest case for a branch on the mask bit


class Forward(Benchmark):
    params = [BACKENDS, DTYPES]
    param_names = ["backend", "dtype"]

    def setup(self, backend, dtype):
        self.setup_backend(backend)
        self.z = random_array(SIZE, dtype)
        self.rng = np.random.default_rng(0)
        self.out = (np.empty_like(self.z), np.empty(SIZE, dtype=np.bool_))

    def time_forward(self, backend, dtype):
        refnet.dropout(self.z, P, self.rng, out=self.out)


class Backward(Benchmark):
    params = [BACKENDS, DTYPES]
    param_names = ["backend", "dtype"]

    def setup(self, backend, dtype):
        self.setup_backend(backend)
        self.grad = random_array(SIZE, dtype)
        _, self.mask = refnet.dropout(self.grad, P, np.random.default_rng(0))
        self.out = np.empty_like(self.grad)

    def time_backward(self, backend, dtype):
        refnet.dropout_backward(self.grad, self.mask, P, out=self.out)


class Floors(Warm):
    """What the targets are ratios of: drawing the random numbers, and copying the array."""

    params = [DTYPES]
    param_names = ["dtype"]

    def setup(self, dtype):
        self.z = random_array(SIZE, dtype)
        self.out = np.empty_like(self.z)
        self.rng = np.random.default_rng(0)
        self.doubles = np.empty(SIZE)

    def time_random(self, dtype):
        self.rng.random(out=self.doubles)

    def time_copyto(self, dtype):
        np.copyto(self.out, self.z)
