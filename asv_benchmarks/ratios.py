"""Print the issue-9 target ratios from an asv results file, so nobody computes them by hand.

    python ratios.py [results/<machine>/<commit>-<environment>.json]

Without an argument it reads the newest results file under ``results/``.  Each ratio is of
two timings from the same file (one run); a row whose benchmarks are missing or skipped
(torch or scikit-learn not installed, no MNIST files) says so.
"""

import ast
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks.optimizers import BYTES_PER_ELEMENT  # noqa: E402  (the file's own folder)
from benchmarks.peers import TORCH_RULES  # noqa: E402

EPOCH = "peers.AdamEpoch.time_epoch"
STEP = "optimizers.Step.time_step"
TORCH_STEP = "peers.TorchStep.time_step"
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
        rows.append((f"epoch batch {batch}: torch / refnet", (EPOCH, ("torch", batch)), (EPOCH, ("refnet", batch)),
                     1, ">=", 2 if batch == "128" else 3))
        rows.append((f"epoch batch {batch}: MLPClassifier / refnet", (EPOCH, ("sklearn", batch)),
                     (EPOCH, ("refnet", batch)), 1, ">=", 2))
    for function, dtype in itertools.product(("sigmoid", "tanh"), DTYPES):
        refnet_row = ("peers.Transcendental.time_forward", (function, "refnet", dtype))
        rows.append((f"{function} {dtype}: torch / refnet", ("peers.Transcendental.time_forward", (function, "torch", dtype)),
                     refnet_row, 1, ">=", 1))
        rows.append((f"{function} {dtype}: refnet / copyto", refnet_row,
                     ("peers.StreamingCopy.time_copyto", (dtype,)), 1, "<=", 2.5))
    for rule, dtype in itertools.product(BYTES_PER_ELEMENT, DTYPES):
        refnet_row = (STEP, (rule, "compiled", dtype, "1"))
        rows.append((f"{rule} {dtype}: in-place stream / step, per byte", ("optimizers.StreamingBaseline.time_in_place_scale", (dtype,)),
                     refnet_row, BYTES_PER_ELEMENT[rule] / 2, ">=", 0.7))
        if rule in TORCH_RULES:
            rows.append((f"{rule} {dtype}: torch.optim (foreach) / refnet", (TORCH_STEP, (rule, dtype)), refnet_row,
                         1, ">=", 4))
    for dtype in DTYPES:
        rows.append((f"adam {dtype}: torch fused Adam / refnet", (TORCH_STEP, ("adam_fused", dtype)),
                     (STEP, ("adam", "compiled", dtype, "1")), 1, ">=", 1))
    for batch in ("128", "16"):
        rows.append((f"epoch batch {batch}: peak memory / needed", ("peers.AdamEpochMemory.track_peak_over_needed", (batch,)),
                     None, 1, "<=", 1.5))
    return rows


def main(argv):
    if len(argv) > 1:
        path = Path(argv[1])
    else:
        files = [f for f in Path(__file__).resolve().parent.glob("results/*/*.json") if f.name != "machine.json"]
        if not files:
            sys.exit("no asv results: run `asv run` first, or pass a results file")
        path = max(files, key=lambda f: f.stat().st_mtime)
    values = read(path)
    print(f"{path}\n{'target':66s} {'ratio':>8s}  bound   met")
    for what, numerator, denominator, scale, comparison, bound in targets():
        top = values.get(numerator)
        bottom = 1.0 if denominator is None else values.get(denominator)
        if top is None or bottom is None:
            print(f"{what:66s} {'-':>8s}  {comparison} {bound:<4}  (not measured)")
            continue
        ratio = scale * top / bottom
        met = ratio >= bound if comparison == ">=" else ratio <= bound
        print(f"{what:66s} {ratio:8.2f}  {comparison} {bound:<4}  {'yes' if met else 'NO'}")


if __name__ == "__main__":
    main(sys.argv)
