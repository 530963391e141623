"""An Adam step with and without gradient clipping, on 10^6 parameters in four arrays.

Target: clipping is NumPy passes into the optimizer's own buffers, no allocation: by value
one pass (clip), by a norm three (square, sum, scale; plus two more, abs and max, only
where the plain sum of squares overflows or nears underflow).  ``ratio = time_step(kind) /
time_step("none")``, same run.  Measured here (machine shared, medians of 5): by value 1.4 in
float64, 1.7 in float32; by a norm 1.8-1.9 in float64, 2.5-2.6 in float32 (Adam's fused pass
moves half the bytes there, NumPy's passes do not speed up as much).
"""

import refnet

from .common import DTYPES, Benchmark, random_array

SIZE = 250_000
KINDS = {"none": {}, "clip_value": dict(clip_value=0.1), "clip_norm": dict(clip_norm=1.0),
         "global_clip_norm": dict(global_clip_norm=1.0)}


class ClippedStep(Benchmark):
    params = [list(KINDS), DTYPES]
    param_names = ["kind", "dtype"]

    def setup(self, kind, dtype):
        self.setup_backend("compiled")
        self.optimizer = refnet.Adam(1e-3, **KINDS[kind])
        self.params = [random_array(SIZE, dtype, seed=i) for i in range(4)]
        self.grads = [random_array(SIZE, dtype, seed=10 + i) for i in range(4)]

    def time_step(self, kind, dtype):
        self.optimizer.step(self.params, self.grads)
