"""Print the issue-9 target ratios from asv results files, so nobody computes them by hand.

    python ratios.py [results/<machine>/<commit>-<environment>.json ...]

Without an argument it reads the newest results file under ``results/``.  Each ratio is of
two timings from the same file (one run); given several files (copies of repeated runs), it
prints the median ratio and each run's.  A row whose benchmarks are missing or skipped
(torch or scikit-learn not installed, no MNIST files) says so.  Indented ``ceiling`` rows divide
the peer by a floor no implementation here can go below (the epoch's matrix products alone; one
thread streaming the update's bytes): where a ceiling misses its bound, so must the target.
Indented ``all cores`` rows repeat a target with ``refnet.set_num_threads`` at every core
(against the same floors: ``np.copyto`` stays one thread).
"""

import ast
import itertools
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks.optimizers import BYTES_PER_ELEMENT  # noqa: E402  (the file's own folder)
from benchmarks.peers import TORCH_RULES  # noqa: E402

EPOCH = "peers.AdamEpoch.time_epoch"
STEP = "optimizers.Step.time_step"
TORCH_STEP = "peers.TorchStep.time_step"
PRODUCTS = "dense.EpochMatmulBaseline.time_epoch_matmuls"
STREAM = "optimizers.StreamingBaseline.time_in_place_scale"
# A ceiling row divides the peer by what no implementation on this machine can beat (the epoch's
# matrix products on this BLAS; one thread streaming the update's bytes): below its bound, the
# target above it cannot be met here, whatever refnet does.
CEILING = "  ceiling: "
# The same target with refnet.set_num_threads(every core), where a benchmark has that switch:
# not the default (the target), but what a user who asks for the cores gets.
ALL_CORES = "  all cores: "
TRANSCENDENTAL = "peers.Transcendental.time_forward"
ACCURACY_AFTER = "peers.AdamEpochAccuracy.track_accuracy"
DTYPES = ("float32", "float64")


def read(path):
    """{(benchmark, (param, ...)): value} for every measured combination in an asv results file."""
    data = json.loads(Path(path).read_text())
    columns = data["result_columns"]
    values = {}
    for name, row in data["results"].items():
        entry = dict(zip(columns, row))
        params = [[ast.literal_eval(p) for p in axis] for axis in entry.get("params") or []]
        for combination, value in zip(itertools.product(*params), entry["result"] or []):
            values[(name, tuple(str(p) for p in combination))] = value
    return values


def targets():
    """(what, numerator, denominator, scale, comparison, bound): ratio = scale * numerator / denominator."""
    rows = []
    for batch in ("128", "16"):
        products = (PRODUCTS, ("float32", batch))
        for library, name, bound in (("torch", "torch", 2 if batch == "128" else 3), ("sklearn", "MLPClassifier", 2)):
            rows.append((f"epoch batch {batch}: {name} / refnet", (EPOCH, (library, batch)), (EPOCH, ("refnet", batch)),
                         1, ">=", bound))
            rows.append((f"{CEILING}batch {batch}: {name} / the epoch's products alone", (EPOCH, (library, batch)), products,
                         1, ">=", bound))
    for function, dtype in itertools.product(("sigmoid", "tanh"), DTYPES):
        torch_row = (TRANSCENDENTAL, (function, "torch", dtype, "1"))
        for threads, label in (("1", ""), ("all", ALL_CORES)):
            refnet_row = (TRANSCENDENTAL, (function, "refnet", dtype, threads))
            rows.append((f"{label}{function} {dtype}: torch / refnet", torch_row, refnet_row, 1, ">=", 1))
            rows.append((f"{label}{function} {dtype}: refnet / copyto", refnet_row,
                         ("peers.StreamingCopy.time_copyto", (dtype,)), 1, "<=", 2.5))
    for rule, dtype in itertools.product(BYTES_PER_ELEMENT, DTYPES):
        refnet_row = (STEP, (rule, "compiled", dtype, "1"))
        rows.append((f"{rule} {dtype}: in-place stream / step, per byte", (STREAM, (dtype,)),
                     refnet_row, BYTES_PER_ELEMENT[rule] / 2, ">=", 0.7))
        if rule in TORCH_RULES:
            rows.append((f"{rule} {dtype}: torch.optim (foreach) / refnet", (TORCH_STEP, (rule, dtype)), refnet_row,
                         1, ">=", 4))
            rows.append((f"{CEILING}{rule} {dtype}: torch.optim / one thread streaming its bytes", (TORCH_STEP, (rule, dtype)),
                         (STREAM, (dtype,)), 2 / BYTES_PER_ELEMENT[rule], ">=", 4))
    for dtype in DTYPES:
        for threads, label in (("1", ""), ("all", ALL_CORES)):
            rows.append((f"{label}adam {dtype}: torch fused Adam / refnet", (TORCH_STEP, ("adam_fused", dtype)),
                         (STEP, ("adam", "compiled", dtype, threads)), 1, ">=", 1))
        rows.append((f"{CEILING}adam {dtype}: fused Adam / one thread streaming its bytes", (TORCH_STEP, ("adam_fused", dtype)),
                     (STREAM, (dtype,)), 2 / BYTES_PER_ELEMENT["adam"], ">=", 1))
    for batch in ("128", "16"):
        # "The same final accuracy within noise": the means' noise is about 0.3 points each.
        rows.append((f"epoch batch {batch}: refnet's accuracy / torch's (same init)", (ACCURACY_AFTER, ("refnet", batch)),
                     (ACCURACY_AFTER, ("torch", batch)), 1, ">=", 0.985))
    for batch in ("128", "16"):
        rows.append((f"epoch batch {batch}: peak memory / needed", ("peers.AdamEpochMemory.track_peak_over_needed", (batch,)),
                     None, 1, "<=", 1.5))
    return rows


def ratio(values, numerator, denominator, scale):
    """scale * numerator / denominator, or None where either was not measured (asv stores a
    skipped combination as NaN, a missing benchmark not at all)."""
    top = values.get(numerator)
    bottom = 1.0 if denominator is None else values.get(denominator)
    if top is None or bottom is None or math.isnan(top) or math.isnan(bottom):
        return None
    return scale * top / bottom


def main(argv):
    if len(argv) > 1:
        paths = [Path(arg) for arg in argv[1:]]
    else:
        files = [f for f in Path(__file__).resolve().parent.glob("results/*/*.json") if f.name != "machine.json"]
        if not files:
            sys.exit("no asv results: run `asv run` first, or pass a results file")
        paths = [max(files, key=lambda f: f.stat().st_mtime)]
    runs = [read(path) for path in paths]
    print("\n".join(map(str, paths)))
    rows = targets()
    width = max(len(row[0]) for row in rows)
    print(f"{'target':{width}s} {'ratio':>8s}  bound   met" + ("   each run" if len(runs) > 1 else ""))
    for what, numerator, denominator, scale, comparison, bound in rows:
        measured = [r for r in (ratio(values, numerator, denominator, scale) for values in runs) if r is not None]
        if not measured:
            print(f"{what:{width}s} {'-':>8s}  {comparison} {bound:<4}  (not measured)")
            continue
        median = statistics.median(measured)
        met = median >= bound if comparison == ">=" else median <= bound
        each = "  " + " ".join(f"{r:.2f}" for r in measured) if len(runs) > 1 else ""
        print(f"{what:{width}s} {median:8.2f}  {comparison} {bound:<4}  {'yes' if met else 'NO '}{each}")


if __name__ == "__main__":
    main(sys.argv)
