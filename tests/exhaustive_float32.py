"""Run tests/exhaustive_float32.c over every float32 input and settle its HARD samples exactly.

Usage (from the repository root, a C compiler on PATH and mpmath installed -- torch's sympy
brings it, else ``pip install mpmath``; ~7 minutes of one idle core for 2^32 inputs on every
clone): ``python tests/exhaustive_float32.py [STRIDE]``.  Not collected by
pytest: it is the proof run behind the README's float32 accuracy claim; CI checks a strided
subset through tests/test_accuracy.py.

For each HARD input the C program printed (within 2^-46 of a float32 rounding midpoint), mpmath
evaluates the formula to 60 digits and reports whether refnet's result is the correctly
rounded one and its error in ulp.
"""

import pathlib
import subprocess
import sys
import sysconfig
import tempfile

import mpmath
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]   # meson.build's c_args

EXACT = {
    "sigmoid": lambda z: 1 / (1 + mpmath.exp(-z)),
    "sigmoid_derivative": lambda z: mpmath.exp(-abs(z)) / (1 + mpmath.exp(-abs(z))) ** 2,
    "tanh": mpmath.tanh,
    "tanh_derivative": lambda z: 1 / mpmath.cosh(z) ** 2,
}


def _float(bits):
    return np.array([int(bits, 16)], dtype=np.uint32).view(np.float32)[0]


def settle(name, z, y):
    """(correctly rounded?, error in ulp) of result y at input z, exactly."""
    exact = EXACT[name](mpmath.mpf(float(z)))
    below, above = np.nextafter(y, np.float32(-np.inf)), np.nextafter(y, np.float32(np.inf))
    low = (mpmath.mpf(float(below)) + mpmath.mpf(float(y))) / 2
    high = (mpmath.mpf(float(y)) + mpmath.mpf(float(above))) / 2
    tie_ok = int(np.float32(y).view(np.uint32)) % 2 == 0
    rounded = low < exact < high or (tie_ok and exact in (low, high))
    ulp = mpmath.mpf(float(np.spacing(np.float32(abs(y)) if abs(exact) >= abs(y) else below)))
    return rounded, float(abs(mpmath.mpf(float(y)) - exact) / abs(ulp))


def main(stride=1):
    mpmath.mp.dps = 60
    with tempfile.TemporaryDirectory() as tmp:
        exe = pathlib.Path(tmp) / "exhaustive"
        cc = (sysconfig.get_config_var("CC") or "cc").split()
        subprocess.run([*cc, *FLAGS, f"-I{HERE.parent / 'refnet'}", str(HERE / "exhaustive_float32.c"), "-o", str(exe),
                        "-lm"], check=True)
        lines = subprocess.run([str(exe), str(stride)], check=True, capture_output=True, text=True).stdout.splitlines()
    settled = {}
    for line in lines:
        kind, *fields = line.split()
        if kind == "HARD":
            name, z, y = fields
            rounded, error = settle(name, _float(z), _float(y))
            count, not_rounded, worst = settled.get(name, (0, 0, 0.0))
            settled[name] = (count + 1, not_rounded + (not rounded), max(worst, error))
        else:
            print(line)
    for name, (count, not_rounded, worst) in settled.items():
        print(f"SETTLED {name}: {count} hard samples, {not_rounded} not correctly rounded, largest error {worst:.9f} ulp")
    return 0 if not any(line.startswith(("OVER", "CLONE")) for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
