"""Dense layers and a training epoch: compiled vs reference vs the bare matrix products they need.

Targets (ratios within one run): a dense forward+backward within 1.15x of its
three bare products for the large layer and 1.5x for the small one; one epoch
of a 784-256-256-10 ReLU network on the 10,000 MNIST test images within 1.3x
of the products it performs.
"""

from pathlib import Path

import numpy as np

import refnet
from refnet.network import PlainSGD

from .common import BACKENDS, DTYPES, Benchmark, Warm, random_array

# (batch, n_in, n_out): one overhead-dominated layer, one product-dominated.
LAYERS = {"small": (32, 64, 64), "large": (256, 784, 512)}

# The MNIST test set lives beside the repository, never inside it.
MNIST_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
WIDTHS = (784, 256, 256, 10)
BATCH = 128


class DenseForwardBackward(Benchmark):
    """A ReLU Dense layer's forward and backward (with ∂L/∂x): 3 products + the fused passes."""

    params = [list(LAYERS), BACKENDS, DTYPES]
    param_names = ["layer", "backend", "dtype"]

    def setup(self, layer, backend, dtype):
        self.setup_backend(backend)
        batch, n_in, n_out = LAYERS[layer]
        self.layer = refnet.Dense(n_in, n_out, activation="relu", dtype=dtype, seed=0)
        self.x = random_array((batch, n_in), dtype)
        self.grad = random_array((batch, n_out), dtype, seed=1)

    def time_forward_backward(self, layer, backend, dtype):
        self.layer.forward(self.x, training=True)
        self.layer.backward(self.grad)


class DenseMatmulBaseline(Warm):
    """The three bare products of the same shapes: x W, xᵀ δ and δ Wᵀ."""

    params = [list(LAYERS), DTYPES]
    param_names = ["layer", "dtype"]

    def setup(self, layer, dtype):
        batch, n_in, n_out = LAYERS[layer]
        self.x = random_array((batch, n_in), dtype)
        self.weight = random_array((n_in, n_out), dtype, seed=2)
        self.grad = random_array((batch, n_out), dtype, seed=1)

    def time_three_matmuls(self, layer, dtype):
        self.x @ self.weight
        self.x.T @ self.grad
        self.grad @ self.weight.T


def _mnist(dtype):
    if not MNIST_DIR.is_dir():
        raise NotImplementedError(f"no MNIST files in {MNIST_DIR}")
    return refnet.datasets.load_mnist(MNIST_DIR, "test", dtype=dtype)


class TrainingEpoch(Benchmark):
    """One epoch of plain SGD, 784-256-256-10 ReLU, batch 128, on the 10,000 MNIST test images."""

    params = [BACKENDS, DTYPES]
    param_names = ["backend", "dtype"]
    timeout = 600

    def setup(self, backend, dtype):
        self.setup_backend(backend)
        self.x, self.y = _mnist(dtype)
        self.network = refnet.Sequential([
            refnet.Dense(WIDTHS[0], WIDTHS[1], activation="relu", init="he", dtype=dtype, seed=0),
            refnet.Dense(WIDTHS[1], WIDTHS[2], activation="relu", init="he", dtype=dtype, seed=1),
            refnet.Dense(WIDTHS[2], WIDTHS[3], dtype=dtype, seed=2),
        ])
        self.optimizer = PlainSGD(0.01)

    def time_epoch(self, backend, dtype):
        self.network.fit(self.x, self.y, loss="softmax_cross_entropy", optimizer=self.optimizer,
                         epochs=1, batch_size=BATCH, seed=0)


class EpochMatmulBaseline(Warm):
    """The products that epoch performs, as bare NumPy matmuls of the same shapes.

    Per batch: a forward product per layer, a weight-gradient product per layer,
    and an input-gradient product for every layer but the first (the input needs
    no gradient, and fit does not compute it).  Any implementation on this BLAS
    spends at least this long on an epoch: ``ratios.py`` divides the peers' epochs
    by it to show the best ratio reachable at each batch size.
    """

    params = [DTYPES, [16, BATCH]]
    param_names = ["dtype", "batch"]
    timeout = 600

    def setup(self, dtype, batch):
        n = len(_mnist(dtype)[1])
        self.batches = [min(batch, n - start) for start in range(0, n, batch)]
        self.weights = [random_array(shape, dtype, seed=i) for i, shape in enumerate(zip(WIDTHS, WIDTHS[1:]))]
        self.acts = {b: [random_array((b, w), dtype, seed=3) for w in WIDTHS] for b in set(self.batches)}

    def time_epoch_matmuls(self, dtype, batch):
        for rows in self.batches:
            acts = self.acts[rows]
            for i, weight in enumerate(self.weights):
                acts[i] @ weight                      # forward
                acts[i].T @ acts[i + 1]               # grad W = xᵀ δ (δ has the output's shape)
                if i:
                    acts[i + 1] @ weight.T            # grad x = δ Wᵀ
