"""Activations on 10^6 elements: compiled vs reference vs a streaming copy of the same bytes."""

import numpy as np

import refnet
from refnet.testing.specs import KERNELS

from .common import BACKENDS, DTYPES, Benchmark, Warm, random_array

SIZE = 1_000_000
# The elementwise activations and their derivatives (the kernels the conformance kit checks), from the specs.
ELEMENTWISE = [spec.name for spec in KERNELS if spec.conformance]
BACKWARD = [f"{name}_backward" for name in ELEMENTWISE if not name.endswith("_derivative")]


class Elementwise(Benchmark):
    params = [ELEMENTWISE, BACKENDS, DTYPES]
    param_names = ["function", "backend", "dtype"]

    def setup(self, function, backend, dtype):
        self.setup_backend(backend)
        self.function = getattr(refnet, function)
        self.z = random_array(SIZE, dtype)
        self.out = np.empty_like(self.z)

    def time_forward(self, function, backend, dtype):
        self.function(self.z, out=self.out)


class Backward(Benchmark):
    params = [BACKWARD, BACKENDS, DTYPES]
    param_names = ["function", "backend", "dtype"]

    def setup(self, function, backend, dtype):
        self.setup_backend(backend)
        self.function = getattr(refnet, function)
        self.z = random_array(SIZE, dtype)
        self.grad = random_array(SIZE, dtype, seed=1)
        self.out = np.empty_like(self.z)

    def time_backward(self, function, backend, dtype):
        self.function(self.grad, self.z, out=self.out)


class RowWise(Benchmark):
    """Softmax over 10 classes and Maxout with 4 pieces, batch 10^5."""

    params = [["softmax", "softmax_backward", "maxout", "maxout_backward"], BACKENDS, DTYPES]
    param_names = ["function", "backend", "dtype"]

    def setup(self, function, backend, dtype):
        self.setup_backend(backend)
        z = random_array((100_000, 12), dtype)
        grad_shape = (100_000, 3) if function == "maxout_backward" else z.shape
        grad = random_array(grad_shape, dtype, seed=1)
        s = refnet.softmax(z)
        calls = {
            "softmax": lambda: refnet.softmax(z),
            "softmax_backward": lambda: refnet.softmax_backward(grad, s),
            "maxout": lambda: refnet.maxout(z, 4),
            "maxout_backward": lambda: refnet.maxout_backward(grad, z, 4),
        }
        self.call = calls[function]

    def time_rowwise(self, function, backend, dtype):
        self.call()


class StreamingBaseline(Warm):
    """A copy of the same bytes: the memory-bandwidth floor for an elementwise kernel."""

    params = [DTYPES]
    param_names = ["dtype"]
    size = SIZE

    def setup(self, dtype):
        self.z = random_array(self.size, dtype)
        self.out = np.empty_like(self.z)

    def time_copyto(self, dtype):
        np.copyto(self.out, self.z)
