"""The ``refnet`` command: each subcommand's JSON and the claim it shows, plots, and bad input.

Most runs call :func:`refnet._cli.main` in this process (fast); the ones about
exit statuses, stderr and closed pipes run the command in a subprocess from a
temporary directory (from the repository root, ``python -m refnet`` would
import the source folder instead of the installed package).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from refnet import _cli, _verify
from conftest import MNIST_DIR

needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"MNIST test files not in {MNIST_DIR}")


def run_json(capsys, *argv):
    """Run the command in-process with ``--json``; its exit status and the one JSON document on stdout."""
    status = _cli.main([*argv, "--json"])
    out, err = capsys.readouterr()
    return status, json.loads(out)   # json.loads refuses anything after the document


def png_size(path):
    """(width, height) of a PNG, decoded by matplotlib."""
    image = pytest.importorskip("matplotlib.image").imread(path)
    return image.shape[1], image.shape[0]


def command(*argv, cwd, **kwargs):
    return subprocess.run([sys.executable, "-m", "refnet", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, **kwargs)


# --- the experiments -------------------------------------------------------------------------

def test_vanishing_json_holds_the_norms_and_the_embedded_data_shows_the_claim(capsys):
    status, doc = run_json(capsys, "vanishing", "--dataset", "gaussians", "--epochs", "1", "--rows", "400",
                           "--backend", "reference")
    assert status == 0 and doc["backend"] == "reference"
    assert doc["command"] == "vanishing" and doc["data"]["rows"] == 400 and doc["layers"] == [16, 30, 30, 30, 30, 2]
    assert set(doc["results"]) == {"sigmoid", "relu", "maxout"}
    for run in doc["results"].values():
        assert len(run["init_norms"]) == 4 and run["norm_history"][0] == run["init_norms"]
        assert len(run["norm_history"]) == 2
        assert run["ratio_last_first"] == pytest.approx(run["init_norms"][-1] / run["init_norms"][0], rel=1e-12)
    # Measured on these 400 rows: sigmoid 138, relu 1.6, maxout 1.9.
    assert doc["results"]["sigmoid"]["ratio_last_first"] > 30
    assert doc["shown"] is True and "sigmoid" in doc["measured"]


@needs_mnist
def test_vanishing_on_mnist_sigmoid_ratio_is_large_and_far_above_relus(capsys):
    """Nielsen's [784, 30, 30, 30, 30, 10] on the first 1,000 MNIST test images: measured 121 (seed 0)."""
    status, doc = run_json(capsys, "vanishing", "--data-dir", str(MNIST_DIR), "--rows", "1000", "--epochs", "0")
    assert status == 0 and doc["layers"] == [784, 30, 30, 30, 30, 10] and doc["epochs"] == [0]
    sigmoid, relu = doc["results"]["sigmoid"]["ratio_last_first"], doc["results"]["relu"]["ratio_last_first"]
    assert sigmoid > 30 and sigmoid > 10 * relu
    assert doc["shown"] is True


@needs_mnist
def test_depth_on_mnist_sigmoid_training_accuracy_falls_and_relus_does_not(capsys, tmp_path):
    """500 MNIST test images, 4 epochs of Adam (64 steps): measured over seeds 0-3, sigmoid 0.69-0.76
    with 1 hidden layer, 0.13-0.36 with 2 and 0.13-0.14 (chance) with 3 or 4; ReLU 0.82-0.87 with 1,
    0.67-0.79 with 4.  At so small a budget deep ReLU nets lag too (the claim's own check, a fall of at
    most 0.1, holds at the default budget: seeds 0-4 on the digits, ReLU 0.94-0.95 -> 0.95-0.98), so
    this test asks for the qualitative picture only.  The plot is drawn at the stated size."""
    plot = tmp_path / "depth.png"
    status, doc = run_json(capsys, "depth", "--data-dir", str(MNIST_DIR), "--rows", "500", "--max-depth", "3",
                           "--epochs", "4", "--plot", str(plot))
    assert status == 0 and doc["depths"] == [1, 2, 3]
    sigmoid, relu = doc["results"]["sigmoid"]["train_accuracy"], doc["results"]["relu"]["train_accuracy"]
    assert sigmoid[-1] < sigmoid[0] - 0.3 and sigmoid[-1] < 0.2   # 10 classes: chance is about 0.1
    assert relu[-1] > relu[0] - 0.2 and relu[-1] > sigmoid[-1] + 0.4
    assert png_size(plot) == (700, 450)


def test_optimizers_json_every_curve_falls_and_designed_twins_coincide(capsys, tmp_path):
    plot = tmp_path / "optimizers.png"
    status, doc = run_json(capsys, "optimizers", "--dataset", "gaussians", "--rows", "400", "--epochs", "2",
                           "--plot", str(plot))
    assert status == 0 and doc["epochs"] == [0, 1, 2]
    assert len(doc["results"]) == 10
    for run in doc["results"].values():
        assert run["loss"][-1] < run["loss"][0] and len(run["val_accuracy"]) == 3
    for a, b in doc["coinciding"]:
        np.testing.assert_allclose(doc["results"][a]["loss"], doc["results"][b]["loss"], rtol=1e-6)
    assert doc["shown"] is True
    assert png_size(plot) == (900, 600)


def test_overfitting_json_has_every_method_and_a_bar_plot(capsys, tmp_path):
    """Dropout lowers the training accuracy training sees even in 2 epochs (seeds 0-2: by 0.02-0.08);
    that it raises the test accuracy needs a network that overfits, which takes MNIST and 30 epochs
    (test_experiments.py checks it there; 15 s, too long to repeat through the command)."""
    plot = tmp_path / "overfitting.png"
    status, doc = run_json(capsys, "overfitting", "--dataset", "gaussians", "--rows", "300", "--train-size", "100",
                           "--epochs", "2", "--plot", str(plot))
    assert status == 0
    assert list(doc["results"]) == ["none", "l2", "dropout-inverted", "dropout-scale-at-test", "early-stopping"]
    assert doc["settings"]["train_size"] == 100 and doc["settings"]["test_size"] == 200
    assert all(0 <= run["test_accuracy"] <= 1 for run in doc["results"].values())
    for method in ("dropout-inverted", "dropout-scale-at-test"):
        assert doc["results"][method]["fit_accuracy"] < doc["results"]["none"]["fit_accuracy"]
    assert isinstance(doc["shown"], bool)
    assert png_size(plot) == (900, 500)


def test_tour_runs_everything_into_one_document_and_one_figure(capsys, tmp_path, monkeypatch):
    """At the tour's own sizes this takes seconds (asv times it); here at smaller ones."""
    monkeypatch.setattr(_cli, "TOUR", {"vanishing": dict(epochs=1), "depth": dict(max_depth=2, epochs=1),
                                       "optimizers": dict(epochs=1), "overfitting": dict(epochs=1, train_size=None)})
    plot = tmp_path / "tour.png"
    status, doc = run_json(capsys, "tour", "--dataset", "gaussians", "--rows", "300", "--plot", str(plot))
    assert status == 0 and doc["command"] == "tour"
    assert list(doc["results"]) == ["verify", "vanishing", "depth", "optimizers", "overfitting"]
    assert doc["results"]["verify"]["ok"] is True
    assert doc["results"]["depth"]["depths"] == [1, 2]
    assert png_size(plot) == (2000, 1000)


def test_tables_state_the_claim_and_whether_the_run_shows_it(capsys):
    assert _cli.main(["depth", "--dataset", "gaussians", "--rows", "200", "--max-depth", "2", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "Claim: Deeper sigmoid nets" in out
    assert "Shown by this run: " in out and "hidden layers" in out


# --- verify -----------------------------------------------------------------------------------

def test_verify_lists_its_claims_and_checks_one_by_id(capsys):
    assert _cli.main(["verify", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(_verify.CLAIM_IDS)
    assert len(set(_verify.CLAIM_IDS)) == len(_verify.CLAIMS)
    status, doc = run_json(capsys, "verify", "maxout-relu", "rmsprop-first-step")
    assert status == 0 and doc["ok"] is True
    assert list(doc["results"]) == ["maxout-relu", "rmsprop-first-step"]


def test_verify_exits_one_when_a_claim_fails(capsys, monkeypatch):
    naive = lambda z, out=None: _verify.F.sigmoid(z) * (1 - _verify.F.sigmoid(z))  # noqa: E731
    monkeypatch.setattr(_verify.F, "sigmoid_derivative", naive)
    status, doc = run_json(capsys, "verify")
    assert status == 1 and doc["ok"] is False
    assert doc["results"]["sigmoid-derivative-tail"]["holds"] is False
    assert doc["results"]["bayes-posterior"]["holds"] is True


def test_bare_command_prints_help_and_version_prints_the_version(tmp_path):
    bare = command(cwd=tmp_path)
    assert bare.returncode == 0 and "SUBCOMMAND" in bare.stdout and "tour" in bare.stdout
    version = command("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"refnet {_cli.__version__}"
    listed = command("verify", "--list", cwd=tmp_path)
    assert listed.returncode == 0 and "sigmoid-max" in listed.stdout and listed.stderr == ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal as on Linux")
@pytest.mark.parametrize("quiet", [False, True])
def test_a_terminal_gets_a_progress_bar_unless_quiet(tmp_path, quiet):
    """stderr (and stdout) on a pseudo-terminal 100 columns wide: tqdm's bar, labelled with the subcommand."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    argv = ["depth", "--dataset", "gaussians", "--rows", "200", "--max-depth", "2", "--epochs", "2"]
    process = subprocess.Popen([sys.executable, "-m", "refnet", *argv, *(["--quiet"] if quiet else [])],
                               cwd=tmp_path, stdin=child, stdout=child, stderr=child)
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:   # EIO: the child closed its end
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    assert process.wait(timeout=60) == 0
    text = output.decode(errors="replace")
    assert "training accuracy after 2 epochs" in text
    assert ("depth:" in text and "/8 [" in text) is not quiet   # tqdm: "depth:  0%|...| 0/8 [00:00<?, ?epoch/s]"


def test_json_alone_on_stdout_and_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path):
    result = command("depth", "--dataset", "gaussians", "--rows", "100", "--max-depth", "2", "--epochs", "1",
                     "--json", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert json.loads(result.stdout)["depths"] == [1, 2]


# --- bad input -----------------------------------------------------------------------------------

def _bad_inputs(tmp):
    empty = tmp / "empty"
    empty.mkdir()
    broken = tmp / "broken"
    broken.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (broken / name).write_bytes(b"not an IDX file at all")
    no_images = tmp / "no_images"   # well-formed IDX files of 0 images and 0 labels
    no_images.mkdir()
    (no_images / "t10k-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + (0).to_bytes(4, "big")
                                                       + (28).to_bytes(4, "big") * 2)
    (no_images / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (0).to_bytes(4, "big"))
    return {
        "unknown subcommand": (["vanish"], "invalid choice: 'vanish'"),
        "unknown option": (["depth", "--bogus"], "unrecognized arguments: --bogus"),
        "unknown dataset": (["depth", "--dataset", "cifar"], "invalid choice: 'cifar'"),
        "mnist without a folder": (["depth", "--dataset", "mnist"], "needs --data-dir"),
        "missing data folder": (["depth", "--data-dir", tmp / "nowhere"], "no such folder"),
        "data folder without MNIST": (["depth", "--data-dir", empty], "no t10k-images-idx3-ubyte"),
        "malformed MNIST files": (["depth", "--data-dir", broken], "is not an IDX file"),
        "MNIST files of no images": (["vanishing", "--data-dir", no_images], "holds no images"),
        "negative epochs": (["depth", "--epochs", "-3"], "expected a positive integer, got '-3'"),
        "non-integer epochs": (["optimizers", "--epochs", "2.5"], "expected a positive integer, got '2.5'"),
        "negative epochs (vanishing)": (["vanishing", "--epochs", "-1"], "expected an integer >= 0, got '-1'"),
        "plot into a missing folder": (["depth", "--plot", tmp / "missing" / "x.png"], "no such folder"),
        "plot onto a folder": (["depth", "--plot", tmp], "is a folder"),
        "unknown claim": (["verify", "sigmoid-maximum"], "no claim 'sigmoid-maximum'"),
        "no rows left to test": (["overfitting", "--dataset", "gaussians", "--rows", "50", "--train-size", "50"],
                                 "--train-size 50 leaves no rows to test on (50 rows)"),
        # Regression: named --train-size, which was not given (and which tour does not have).
        "no rows left by default": (["overfitting", "--rows", "200"],
                                    "the digits default of 200 training rows (pass more --rows) leaves no rows to test on (200 rows)"),
        "no rows left in the tour": (["tour", "--rows", "200"], "default of 200 training rows (pass more --rows)"),
        "too few rows": (["optimizers", "--dataset", "gaussians", "--rows", "3"], "at least 4 rows"),
    }


def test_every_bad_input_exits_two_with_one_line_on_stderr(tmp_path):
    for case, (argv, message) in _bad_inputs(tmp_path).items():
        result = command(*argv, cwd=tmp_path)
        assert result.returncode == 2, (case, result.stderr)
        assert result.stdout == "", case
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("refnet: error: "), (case, result.stderr)
        assert message in result.stderr, (case, result.stderr)


def test_a_run_that_diverges_is_one_line_and_exit_status_one(capsys, monkeypatch):
    def diverge(*args, **kwargs):
        raise FloatingPointError("the loss is nan")

    monkeypatch.setattr(_cli.experiments, "depth", diverge)
    assert _cli.main(["depth", "--dataset", "gaussians"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "refnet: depth: training diverged: the loss is nan\n"


def test_experiments_run_on_one_blas_and_openmp_thread(capsys, monkeypatch):
    """The products are small: on a busy machine their threads cost 12x (see _cli._one_thread)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []

    def depth(*args, **kwargs):
        seen.extend(pool["num_threads"] for pool in threadpoolctl.threadpool_info())
        raise FloatingPointError("stop here")

    monkeypatch.setattr(_cli.experiments, "depth", depth)
    assert _cli.main(["depth", "--dataset", "gaussians"]) == 1
    assert seen and set(seen) == {1}


@pytest.mark.parametrize("missing, argv, message", [
    ("matplotlib", ["depth", "--plot", "x.png"],
     "--plot needs matplotlib, an optional dependency: pip install 'refnet[plot]'"),
    ("sklearn", ["depth"],
     "--dataset digits needs scikit-learn: pip install 'refnet[examples]' (or use --dataset gaussians)"),
])
def test_a_missing_optional_dependency_exits_two_naming_the_extra(tmp_path, missing, argv, message):
    """As without the package installed: sys.modules[name] = None makes its import fail."""
    code = (f"import sys; sys.modules[{missing!r}] = None; from refnet._cli import main; "
            f"sys.exit(main({argv!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == f"refnet: error: {message}\n"
    assert not (tmp_path / "x.png").exists()


def test_a_closed_stdout_ends_quietly(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "refnet", "verify"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()   # the reader is gone before the first line is written
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=120) == 1
    assert stderr == b""


def test_the_saturation_claim_fails_for_a_sigmoid_that_overflows(monkeypatch):
    """Regression: the claim compared the two values only, which a textbook 1 / (1 + exp(-z))
    also gives (exp(800) overflows to inf, 1 / inf = 0): its 'no overflow' went untested."""
    assert _verify._sigmoid_saturation()[1]
    monkeypatch.setattr(_verify.F, "sigmoid", lambda z: 1 / (1 + np.exp(-np.asarray(z))))
    detail, passed = _verify._sigmoid_saturation()
    assert not passed and "overflow" in detail
