"""The ``refnet`` command: the lecture's claims, checked and watched.

``refnet verify`` checks the identities (:mod:`refnet._verify`); ``vanishing``,
``depth``, ``optimizers`` and ``overfitting`` run the experiments of
:mod:`refnet.experiments` and print a table under the claim each shows, with
whether this run shows it; ``tour`` runs them all at small sizes.  Every
subcommand takes ``--json`` (one JSON document on stdout, nothing else there)
and the experiments ``--plot FILE.png`` (matplotlib, an optional dependency).

Bad input (an unknown subcommand or dataset, a missing or malformed data
folder, a bad count, an unwritable plot path, matplotlib missing for
``--plot``) is one line on stderr and exit status 2; a failed identity, or a
run that diverged, is exit status 1; a closed stdout (``refnet verify | head``)
ends quietly.
"""

import argparse
import contextlib
import json
import math
import os
import sys

import numpy as np

from . import __version__, _verify, backend, datasets, experiments

DPI = 100


class UsageError(Exception):
    """Bad input from the command line: reported as one line on stderr, exit status 2."""


class RunError(Exception):
    """A run that failed on good input (training diverged): one line on stderr, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is a :class:`UsageError` (one line) rather than usage text and exit."""

    def error(self, message):
        raise UsageError(message)


# --- argument types ---------------------------------------------------------------------

def _integer(text, least, what):
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive(text):
    return _integer(text, 1, "a positive integer")


def _non_negative(text):
    return _integer(text, 0, "an integer >= 0")


# --- data ---------------------------------------------------------------------------------

# The embedded data set: two Gaussian classes in 16-D, unit covariance, means 2 apart
# (Bayes accuracy Phi(1) = 0.84), always drawn with the same seed.
GAUSSIANS = dict(n=2000, mean1=np.full(16, 0.25), mean2=np.full(16, -0.25), cov=np.eye(16), seed=0)

# Per data set: the overfitting run's training rows and hidden width (a small slice, a wide layer).
OVERFITTING_SIZES = {"mnist": (1000, 256), "digits": (200, 128), "gaussians": (200, 128)}


def _mnist(directory):
    if not os.path.isdir(directory):
        raise UsageError(f"--data-dir {directory}: no such folder")
    # The training set where its files are there, else the test set (all that some copies hold).
    subset = "train" if any(os.path.exists(os.path.join(directory, "train-images-idx3-ubyte" + ext))
                            for ext in ("", ".gz")) else "test"
    try:
        x, y = datasets.load_mnist(directory, subset)
    except (OSError, ValueError) as error:
        raise UsageError(f"--data-dir {directory}: {error}") from None
    if len(x) == 0:
        raise UsageError(f"--data-dir {directory}: the MNIST {subset} set there holds no images")
    return x, y, f"MNIST {subset} set"


def load_data(args):
    """``(x, y, description)`` for the data set the arguments name."""
    name = args.dataset or ("mnist" if args.data_dir else "digits")
    if args.data_dir and name != "mnist":
        raise UsageError(f"--data-dir goes with --dataset mnist, not --dataset {name}")
    if name == "mnist":
        if not args.data_dir:
            raise UsageError("--dataset mnist needs --data-dir DIR, the folder of MNIST's IDX files (gzip or raw)")
        x, y, source = _mnist(args.data_dir)
    elif name == "digits":
        try:
            x, y = datasets.load_digits()
        except ImportError:
            raise UsageError("--dataset digits needs scikit-learn: pip install 'refnet[examples]' "
                             "(or use --dataset gaussians)") from None
        source = "scikit-learn's 8x8 digits"
    else:
        x, y = datasets.two_gaussians(**GAUSSIANS)
        source = "two Gaussian classes in 16-D (embedded)"
    if args.rows is not None:
        x, y = x[: args.rows], y[: args.rows]
    info = dict(dataset=name, source=source, rows=len(x), features=x.shape[1], classes=int(y.max()) + 1)
    return x, y, info


# --- progress -------------------------------------------------------------------------------

class _Bar:
    """A tqdm bar on stderr following ``progress(done, total)``; nothing without tqdm or a terminal."""

    def __init__(self, label, quiet):
        self.label, self.bar, self.tqdm = label, None, None
        if not quiet and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:   # the bar is a nicety: without tqdm there is none
                tqdm = None
            self.tqdm = tqdm

    def __call__(self, done, total):
        if self.tqdm is None:
            return
        if self.bar is None:
            self.bar = self.tqdm(total=total, desc=self.label, unit="epoch", leave=False, file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


# --- the experiments: each runs, tabulates and plots ----------------------------------------

def _transpose(table, metrics):
    """``{metric: {variant: value}}`` -> ``{variant: {metric: value}}``."""
    return {v: {m: table[m][v] for m in metrics if table.get(m) is not None} for v in table[metrics[0]]}


def _document(command, result, info, results, **extra):
    shown, measured = result.shows_claim()
    return dict(command=command, claim=result.CLAIM, shown=shown, measured=measured, data=info,
                **extra, results=results)


def run_vanishing(args, x, y, info, progress):
    result = experiments.vanishing((x, y), epochs=args.epochs, seed=args.seed, progress=progress)
    return _document("vanishing", result, info, result.results, layers=result.layers, epochs=result.epochs,
                     settings=result.settings)


def run_depth(args, x, y, info, progress):
    result = experiments.depth((x, y), depths=range(1, args.max_depth + 1), epochs=args.epochs, seed=args.seed,
                               progress=progress)
    return _document("depth", result, info, result.results, depths=result.depths, settings=result.settings)


def run_optimizers(args, x, y, info, progress):
    if len(x) < 4:
        raise UsageError(f"optimizers needs at least 4 rows (a quarter is held out for validation), got {len(x)}")
    order = np.random.default_rng(args.seed).permutation(len(x))
    held_out, kept = order[: len(x) // 4], order[len(x) // 4 :]
    result = experiments.compare_optimizers(
        data=(x[kept], y[kept]), validation_data=(x[held_out], y[held_out]),
        epochs=args.epochs, seed=args.seed, progress=progress)
    results = _transpose(result.to_dict(), ["loss", "accuracy", "val_loss", "val_accuracy"])
    return _document("optimizers", result, info, results, epochs=result.epochs,
                     coinciding=[list(pair) for pair in experiments.COINCIDING_OPTIMIZERS],
                     settings=dict(train_rows=len(kept), validation_rows=len(held_out), seed=args.seed))


def run_overfitting(args, x, y, info, progress):
    train_size, hidden = OVERFITTING_SIZES[info["dataset"]]
    train_size = args.train_size or train_size
    if train_size >= len(x):
        # Name what set the training size: the user's --train-size, or the dataset's default
        # (tour has no --train-size: more --rows is the way out there).
        source = (f"--train-size {train_size}" if args.train_size else
                  f"the {info['dataset']} default of {train_size} training rows (pass more --rows)")
        raise UsageError(f"{source} leaves no rows to test on ({len(x)} rows)")
    result = experiments.overfitting(x=x, y=y, train_size=train_size, test_size=None, hidden=hidden,
                                     epochs=args.epochs, seed=args.seed, progress=progress)
    metrics = ["fit_accuracy", "train_accuracy", "test_accuracy", "train_loss", "test_loss", "epochs"]
    return _document("overfitting", result, info, _transpose(result.to_dict(), metrics),
                     settings=result.settings)


def _format_table(header, rows):
    """Columns as wide as their widest cell: the first (the variant) left-aligned, numbers right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        return "  ".join(str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
                         for i, (cell, w) in enumerate(zip(row, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def table_vanishing(doc):
    hidden = len(doc["layers"]) - 2
    header = ["activation", *[f"layer {i + 1}" for i in range(hidden)], "last/first",
              f"after {doc['epochs'][-1]} ep.: last/first", "train acc."]
    rows = []
    for name, run in doc["results"].items():
        final = run["norm_history"][-1]
        rows.append([name, *[f"{n:.2e}" for n in run["init_norms"]], f"{run['ratio_last_first']:.3g}",
                     f"{final[-1] / final[0]:.3g}" if final[0] else "inf", f"{run['accuracy'][-1]:.3f}"])
    return ("||mean over the probe rows of dC/db|| per hidden layer at initialisation "
            f"(widths {doc['layers']}):\n" + _format_table(header, rows))


def table_depth(doc):
    names = list(doc["results"])
    rows = [[depth, *[f"{doc['results'][n]['train_accuracy'][i]:.3f}" for n in names]]
            for i, depth in enumerate(doc["depths"])]
    return (f"training accuracy after {doc['settings']['epochs']} epochs of Adam:\n"
            + _format_table(["hidden layers", *names], rows))


def table_optimizers(doc):
    rows = [[label, f"{run['loss'][0]:.4f}", f"{run['loss'][-1]:.4f}", f"{run['accuracy'][-1]:.3f}",
             f"{run['val_accuracy'][-1]:.3f}"] for label, run in doc["results"].items()]
    return (f"training loss and accuracy after {doc['epochs'][-1]} epochs:\n"
            + _format_table(["optimizer", "loss at start", "loss at end", "train acc.", "validation acc."], rows))


def table_overfitting(doc):
    rows = [[method, f"{run['fit_accuracy']:.3f}", f"{run['train_accuracy']:.3f}", f"{run['test_accuracy']:.3f}",
             run["epochs"]] for method, run in doc["results"].items()]
    settings = doc["settings"]
    return (f"{settings['train_size']} training rows, {settings['test_size']} test rows, hidden {settings['hidden']}:\n"
            + _format_table(["method", "train acc. (dropout on)", "train acc.", "test acc.", "epochs"], rows))


# --- plots -----------------------------------------------------------------------------------

NORM_LABEL = "‖mean over the probe rows of ∂C/∂b‖ (log)"


def _norm_panel(ax, doc, activation):
    run = doc["results"][activation]
    history = np.array(run["norm_history"])
    for layer in range(history.shape[1]):
        ax.plot(doc["epochs"], history[:, layer], marker="o", label=f"hidden layer {layer + 1}")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_title(f"{activation}, while training (SGD)")
    ax.set_xlabel("epochs trained")
    ax.set_ylabel(NORM_LABEL)
    ax.legend(fontsize="small")


def _init_panel(ax, doc):
    layers = range(1, len(doc["layers"]) - 1)
    for activation, run in doc["results"].items():
        ax.plot(layers, run["init_norms"], marker="o",
                label=f"{activation} (last/first {run['ratio_last_first']:.3g})")
    ax.set_yscale("log")
    ax.set_xticks(list(layers))
    ax.set_title("Per hidden layer, at initialisation")
    ax.set_xlabel("hidden layer (1 = nearest the input)")
    ax.set_ylabel(NORM_LABEL)
    ax.legend(fontsize="small")


def plot_vanishing(fig, doc, axes=None):
    # One y axis for all panels: the sigmoid's first layer against ReLU's is the point.
    axes = axes or fig.subplots(1, 1 + len(doc["results"]), sharey=True)
    _init_panel(axes[0], doc)
    for ax, activation in zip(axes[1:], doc["results"]):
        _norm_panel(ax, doc, activation)


def plot_depth(fig, doc, axes=None):
    ax = (axes or [fig.subplots()])[0]
    for activation, run in doc["results"].items():
        ax.plot(doc["depths"], run["train_accuracy"], marker="o", label=activation)
    ax.axhline(1 / doc["data"]["classes"], color="grey", linestyle=":", label="chance")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(doc["depths"])
    ax.set_title(f"Training accuracy against depth ({doc['settings']['epochs']} epochs of Adam)")
    ax.set_xlabel("hidden layers")
    ax.set_ylabel("training accuracy")
    ax.legend(fontsize="small")


def plot_optimizers(fig, doc, axes=None):
    ax = (axes or [fig.subplots()])[0]
    twins = {b: a for a, b in doc["coinciding"]}
    for label, run in doc["results"].items():
        if label in twins:   # drawn dashed over its twin, so both stay visible
            ax.plot(doc["epochs"], run["loss"], linestyle="--", linewidth=2.5,
                    label=f"{label} (= {twins[label].split(' lr=')[0]} by design)")
        else:
            ax.plot(doc["epochs"], run["loss"], label=label)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_title("Training loss from one shared start")
    ax.set_xlabel("epochs")
    ax.set_ylabel("softmax cross-entropy (log)")
    ax.legend(fontsize="x-small", loc="upper right")   # the curves fall from the upper left


def plot_overfitting(fig, doc, axes=None):
    ax = (axes or [fig.subplots()])[0]
    methods = list(doc["results"])
    positions = np.arange(len(methods))
    bars = [("fit_accuracy", "training (dropout on, as training saw it)"), ("train_accuracy", "training"),
            ("test_accuracy", "test")]
    for i, (metric, label) in enumerate(bars):
        ax.bar(positions + (i - 1) * 0.27, [doc["results"][m][metric] for m in methods], 0.27, label=label)
    low = min(doc["results"][m][metric] for m in methods for metric, _ in bars)
    ax.set_ylim(max(0.0, low - 0.1), 1.12)   # room for the legend above the bars
    ax.set_yticks([t for t in ax.get_yticks() if t <= 1.0])
    ax.set_xticks(positions)
    ax.set_xticklabels(methods, rotation=15, fontsize="small")
    ax.set_title(f"Training vs test accuracy ({doc['settings']['train_size']} training rows)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize="small", loc="upper center", ncol=3)


EXPERIMENTS = {
    "vanishing": dict(run=run_vanishing, table=table_vanishing, plot=plot_vanishing, size=(16, 4.5),
                      help="per-layer gradient norms of deep sigmoid, ReLU and Maxout networks"),
    "depth": dict(run=run_depth, table=table_depth, plot=plot_depth, size=(7, 4.5),
                  help="training accuracy against depth, sigmoid vs ReLU"),
    "optimizers": dict(run=run_optimizers, table=table_optimizers, plot=plot_optimizers, size=(9, 6),
                       help="loss curves of every optimizer and convention from one start"),
    "overfitting": dict(run=run_overfitting, table=table_overfitting, plot=plot_overfitting, size=(9, 5),
                        help="training and test accuracy with no regularisation, L2, dropout, early stopping"),
}

# The tour's settings of each experiment: seconds on 2 cores with the digits.
TOUR = {"vanishing": dict(epochs=3), "depth": dict(max_depth=10, epochs=10), "optimizers": dict(epochs=10),
        "overfitting": dict(epochs=30, train_size=None)}
TOUR_SIZE = (20, 10)
# The tour's rows unless --rows says otherwise: all the digits, a slice of MNIST.
TOUR_ROWS = 3000


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _figure(size):
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _save(fig, path):
    try:
        fig.savefig(path, dpi=DPI, format="png")
    except OSError as error:
        raise UsageError(f"--plot {path}: cannot write it ({error.strerror or error})") from None


def _check_plot(path):
    """Fail before any work if ``--plot`` cannot succeed: matplotlib missing, or a path not writable."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib, an optional dependency: pip install 'refnet[plot]'") from None
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"--plot {path}: is a folder, not a file name")
    if not os.path.isdir(folder):
        raise UsageError(f"--plot {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"--plot {path}: not writable")


# --- output ------------------------------------------------------------------------------------

def _finite(value):
    """``value`` with every non-finite float replaced by None (strict JSON has no NaN or Infinity)."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(doc):
    sys.stdout.write(json.dumps(_finite(doc), indent=1, allow_nan=False) + "\n")


def _claim_block(doc):
    verdict = "yes" if doc["shown"] else "NO"
    return f"Claim: {doc['claim']}\nShown by this run: {verdict} ({doc['measured']})\n"


def _print_experiment(name, doc):
    sys.stdout.write(f"== refnet {name}: {doc['data']['source']}, {doc['data']['rows']} rows ==\n")
    sys.stdout.write(_claim_block(doc) + "\n" + EXPERIMENTS[name]["table"](doc) + "\n\n")


# --- subcommands --------------------------------------------------------------------------------

def _one_thread():
    """Limit BLAS's and OpenMP's thread pools to one thread while the experiments run, if threadpoolctl is there.

    Their products (batches of 10-32 rows, at most 1,000 x 784 by 784 x 30) and
    updates are too small to share out: on 2 busy cores, ``refnet tour
    --data-dir MNIST`` took 145 s with OpenBLAS's threads and 12 s on one.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _experiment(name, args, data):
    bar = _Bar(name, args.quiet)
    try:
        with backend.use_backend(args.backend), _one_thread():
            return {**EXPERIMENTS[name]["run"](args, *data, bar), "backend": args.backend}
    except ValueError as error:   # the experiments' own checks, of sizes the data cannot fill (--rows 3)
        raise UsageError(str(error)) from None
    except FloatingPointError as error:   # a run that diverged (fit's check of the loss, where it has one)
        raise RunError(f"{name}: training diverged: {error}") from None
    finally:
        bar.close()


def command_experiment(args):
    if args.plot:
        _check_plot(args.plot)
    doc = _experiment(args.command, args, load_data(args))
    if args.plot:
        spec = EXPERIMENTS[args.command]
        fig = _figure(spec["size"])
        spec["plot"](fig, doc)
        fig.suptitle(f"refnet {args.command}: {doc['data']['source']}, {doc['data']['rows']} rows")
        _save(fig, args.plot)
    if args.json:
        _write_json(doc)
    else:
        _print_experiment(args.command, doc)
        if args.plot:
            sys.stdout.write(f"Plot written to {args.plot}\n")
    return 0


def _verify_document(results):
    return dict(command="verify", ok=all(holds for _, _, holds in results), results={
        claim.id: dict(statement=claim.statement, measured=measured, holds=holds)
        for claim, measured, holds in results})


def command_verify(args):
    if args.list:
        if args.json:
            _write_json({claim.id: claim.statement for claim in _verify.CLAIMS})
        else:
            width = max(map(len, _verify.CLAIM_IDS))
            sys.stdout.writelines(f"{claim.id:<{width}}  {claim.statement}\n" for claim in _verify.CLAIMS)
        return 0
    try:
        claims = _verify.select(args.ids or None)
    except KeyError:
        unknown = next(i for i in args.ids if i not in _verify.CLAIM_IDS)
        raise UsageError(f"no claim {unknown!r}: refnet verify --list names them") from None
    with backend.use_backend(args.backend):
        results = _verify.measure(claims)
    if args.json:
        _write_json(_verify_document(results))
    else:
        _verify.write(results, sys.stdout)
    return 0 if all(holds for _, _, holds in results) else 1


def command_tour(args):
    if args.plot:
        _check_plot(args.plot)
    with backend.use_backend(args.backend):
        checks = _verify.measure(_verify.CLAIMS)
    data = load_data(argparse.Namespace(**{**vars(args), "rows": args.rows or TOUR_ROWS}))
    docs = {name: _experiment(name, argparse.Namespace(**{**vars(args), **TOUR[name]}), data)
            for name in EXPERIMENTS}
    if args.plot:
        fig = _figure(TOUR_SIZE)
        grid = fig.subplots(2, 3)
        _init_panel(grid[0, 0], docs["vanishing"])
        for ax, activation in ((grid[0, 1], "sigmoid"), (grid[0, 2], "relu")):
            ax.sharey(grid[0, 0])
            _norm_panel(ax, docs["vanishing"], activation)
        plot_depth(fig, docs["depth"], [grid[1, 0]])
        plot_optimizers(fig, docs["optimizers"], [grid[1, 1]])
        plot_overfitting(fig, docs["overfitting"], [grid[1, 2]])
        info = docs["depth"]["data"]
        fig.suptitle(f"refnet tour: {info['source']}, {info['rows']} rows")
        _save(fig, args.plot)
    if args.json:
        _write_json(dict(command="tour", results={"verify": _verify_document(checks), **docs}))
    else:
        _verify.write(checks, sys.stdout)
        sys.stdout.write("\n")
        for name, doc in docs.items():
            _print_experiment(name, doc)
        if args.plot:
            sys.stdout.write(f"Plot written to {args.plot}\n")
    return 0 if all(holds for _, _, holds in checks) else 1


# --- the parser ---------------------------------------------------------------------------------

JSON_SHAPES = {
    "vanishing": "results.<activation>.{init_norms, norm_history, ratio_last_first, loss, accuracy}; "
                 "layers, epochs, settings",
    "depth": "results.<activation>.{train_accuracy, train_loss} (one per depth); depths, settings",
    "optimizers": "results.<optimizer>.{loss, accuracy, val_loss, val_accuracy} (one per epoch, 0 first); "
                  "epochs, coinciding",
    "overfitting": "results.<method>.{fit_accuracy, train_accuracy, test_accuracy, train_loss, test_loss, epochs}; "
                   "settings",
}
COMMON_JSON = "; and claim, shown, measured, data, backend"


def build_parser():
    parser = _Parser(prog="refnet", description="refnet: the lecture's claims, checked (verify) and watched "
                     "(vanishing, depth, optimizers, overfitting; tour runs them all at small sizes).",
                     epilog="refnet SUBCOMMAND --help describes each.  Exit status: 0; 1 if an identity fails or a run "
                     "diverges; 2 for bad input.")
    parser.add_argument("--version", action="version", version=f"refnet {__version__}")
    commands = parser.add_subparsers(dest="command", title="subcommands", metavar="SUBCOMMAND")

    data = _Parser(add_help=False)
    group = data.add_argument_group("data and run")
    group.add_argument("--dataset", choices=["digits", "mnist", "gaussians"],
                       help="digits: scikit-learn's 8x8 digits (default; needs scikit-learn); mnist: the IDX "
                       "files in --data-dir (its training set if there, else its test set); gaussians: two "
                       "Gaussian classes in 16-D, embedded")
    group.add_argument("--data-dir", metavar="DIR", help="folder of MNIST's IDX files, gzip or raw (implies mnist)")
    group.add_argument("--rows", type=_positive, metavar="N", help="use the first N rows only")
    group.add_argument("--seed", type=_non_negative, default=0, help="seed of weights, splits and batches (0)")
    group.add_argument("--backend", choices=["compiled", "reference"], default="compiled",
                       help="compiled kernels (default) or the readable NumPy reference")
    output = _Parser(add_help=False)
    group = output.add_argument_group("output")
    group.add_argument("--json", action="store_true", help="print one JSON document on stdout, nothing else")
    group.add_argument("--plot", metavar="FILE.png", help="also draw the results to a PNG (needs matplotlib)")
    group.add_argument("--quiet", action="store_true", help="no progress bar (there is none unless stderr is a terminal)")

    verify = commands.add_parser("verify", help="check the lecture's identities (exit 1 if one fails)",
                                 description="Check the lecture's identities, each by computing both sides "
                                 "independently.  --json: ok, and results.<id>.{statement, measured, holds}.")
    verify.add_argument("ids", nargs="*", metavar="ID", help="check only these claims (see --list)")
    verify.add_argument("--list", action="store_true", help="list the claims' ids and statements")
    verify.add_argument("--json", action="store_true", help="print one JSON document on stdout, nothing else")
    verify.add_argument("--backend", choices=["compiled", "reference"], default="compiled",
                        help="the backend the checks run on besides their own comparisons")
    verify.set_defaults(handler=command_verify)

    for name, spec in EXPERIMENTS.items():
        sub = commands.add_parser(name, help=spec["help"], parents=[data, output],
                                  description=f"{spec['help'][0].upper()}{spec['help'][1:]}.  --json: {JSON_SHAPES[name]}{COMMON_JSON}.")
        epochs = _non_negative if name == "vanishing" else _positive
        defaults = {"vanishing": 5, "depth": 10, "optimizers": 20, "overfitting": 30}
        sub.add_argument("--epochs", type=epochs, default=defaults[name],
                         help=f"epochs of training ({defaults[name]})")
        if name == "depth":
            sub.add_argument("--max-depth", type=_positive, default=10, help="networks of 1 to N hidden layers (10)")
        if name == "overfitting":
            sub.add_argument("--train-size", type=_positive, metavar="N",
                             help="training rows, the first N (1000 on MNIST, else 200); the rest test")
        sub.set_defaults(handler=command_experiment)

    tour = commands.add_parser("tour", parents=[data, output], help="everything at small sizes (seconds on the digits)",
                               description="The identities, then every experiment at small sizes, on at most "
                               f"{TOUR_ROWS:,} rows unless --rows says otherwise.  --json: "
                               "results.verify (as verify's) and results.<experiment> (as each subcommand's).")
    tour.set_defaults(handler=command_tour)
    return parser


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return 0
    status = args.handler(args)
    sys.stdout.flush()
    return status


def main(argv=None):
    """Run the command with ``argv`` (``sys.argv[1:]`` by default); return the exit status."""
    try:
        return _main(argv)
    except UsageError as error:
        sys.stderr.write(f"refnet: error: {error}\n")
        return 2
    except RunError as error:
        sys.stderr.write(f"refnet: {error}\n")
        return 1
    except BrokenPipeError:
        # The reader went away (refnet verify | head): send what is left to /dev/null, so the
        # interpreter's final flush does not fail again, and end without a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("refnet: interrupted\n")
        return 130
