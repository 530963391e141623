"""The four losses with their gradients, batch 10^5 x 10 classes: compiled vs reference."""

import numpy as np

import refnet

from .common import BACKENDS, DTYPES, Benchmark, random_array

ROWS, CLASSES = 100_000, 10


class LossAndGradient(Benchmark):
    params = [list(refnet.losses.LOSSES), BACKENDS, DTYPES]
    param_names = ["loss", "backend", "dtype"]

    def setup(self, loss, backend, dtype):
        self.setup_backend(backend)
        self.function = refnet.losses.LOSSES[loss]
        rng = np.random.default_rng(0)
        self.output = random_array((ROWS, CLASSES), dtype)
        labels = rng.integers(0, CLASSES, ROWS)
        if loss == "softmax_cross_entropy":
            self.target = labels
        else:
            self.target = np.eye(CLASSES, dtype=dtype)[labels]
            if loss == "cross_entropy":   # outputs of a sigmoid, strictly inside (0, 1)
                self.output = refnet.sigmoid(self.output)

    def time_loss_and_gradient(self, loss, backend, dtype):
        self.function(self.output, self.target)
