"""The command line: every command, the run directory, and every kind of bad input."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from autoencode import cli, run  # noqa: E402

METRIC_KEYS = {"train_mse", "test_mse", "pca_test_mse", "pca_train_mse", "latent_dim", "method",
               "lam", "iterations", "sweeps", "wall_time_s", "status", "comparison", "data",
               "n_train", "n_test", "d"}
HISTORY_HEADER = ["iteration", "J", "mse", "residual", "rho", "sweeps", "seconds", "method"]


def call(capsys, *argv):
    """Run the CLI in-process: (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, *words):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word.lower() in lines[0].lower(), (word, err)


def assert_no_run(out: Path):
    """Nothing that looks like a run: no metrics.json and no staging leftovers."""
    assert not (out / "metrics.json").exists()
    assert not list(out.parent.glob(f".{out.name}.*")), list(out.parent.iterdir())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(80, 2))
    X = np.tanh(latent @ rng.normal(size=(2, 4))) + 0.05 * rng.normal(size=(80, 4))
    np.save(root / "good.npy", X)
    with open(root / "good.csv", "w") as f:
        f.write("a,b,c\n")
        for row in X[:, :3]:
            f.write(",".join(f"{v:.6f}" for v in row) + "\n")
    bad = X.copy()
    bad[5, 1] = np.nan
    np.save(root / "nan.npy", bad)
    with open(root / "inf.csv", "w") as f:
        f.write("1,2\n3,inf\n5,6\n")
    with open(root / "text.csv", "w") as f:
        f.write("x,y\n1,2\n3,abc\n")
    (root / "empty.csv").write_text("")
    (root / "empty.npy").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """``autoencode demo --iters 5`` (shared by the tests that read a run)."""
    out = tmp_path_factory.mktemp("demo") / "run"
    code = cli.main(["demo", "--iters", "5", "--out", str(out), "--quiet"])
    assert code == 0
    return out


# ------------------------------------------------------------------------------ demo
def test_demo_writes_complete_run_dir(demo_run):
    for name in run.RUN_FILES:
        assert (demo_run / name).is_file(), name
    figures = sorted(p.stem for p in (demo_run / "figures").glob("*.png"))
    assert figures == sorted(["training", "profile", "trajectories", "latent", "reconstructions",
                              "controls"])
    metrics = json.loads((demo_run / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["method"] == "emsa" and metrics["latent_dim"] == 8 and metrics["d"] == 64
    assert metrics["iterations"] == 5 and metrics["lam"] == 1e-3
    assert (metrics["n_train"], metrics["n_test"]) == (1437, 360)
    assert metrics["comparison"]["method"] == "adam"
    assert {"train_mse", "test_mse", "sweeps"} <= set(metrics["comparison"])
    assert metrics["status"] == "max_iter"
    with open(demo_run / "history.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == HISTORY_HEADER
    assert {r[-1] for r in rows[1:]} == {"emsa", "adam"}
    assert len(rows) == 1 + 2 * 6  # iterations 0..5 for both methods
    config = json.loads((demo_run / "config.json").read_text())
    assert config["data"] == "digits" and config["seed"] == 0
    assert config["test_fraction"] == 0.2 and config["scaling"]["kind"] == "none"
    assert config["widths"] == [64, 32, 16, 8, 16, 32, 64]
    assert not list(demo_run.parent.glob(".run.*"))  # no staging directory left


def test_demo_prints_summary_and_replaces_previous_demo(demo_run, tmp_path, capsys):
    out = tmp_path / "demo"
    shutil.copytree(demo_run, out)
    (out / "marker").write_text("from the previous run")
    code, stdout, err = call(capsys, "demo", "--iters", "2", "--out", out, "--quiet")
    assert code == 0 and err == ""
    assert "PCA (k = 8)" in stdout and "adam (comparison)" in stdout
    assert str(out / "report.html") in stdout
    assert not (out / "marker").exists()          # replaced as a whole
    assert json.loads((out / "metrics.json").read_text())["iterations"] == 2
    assert not list(tmp_path.glob(".demo.*"))
    # train never replaces an existing run
    code, _, err = call(capsys, "train", "--data", "moons", "--out", out, "--quiet")
    assert_user_error(code, err, "already exists")


def test_demo_default_iterations_beat_pca(tmp_path, capsys):
    out = tmp_path / "demo150"
    code, stdout, _ = call(capsys, "demo", "--out", out, "--quiet")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 150
    assert metrics["test_mse"] < 0.8 * metrics["pca_test_mse"], metrics
    assert metrics["ratio_to_pca"] == pytest.approx(metrics["test_mse"] / metrics["pca_test_mse"])


# ------------------------------------------------------------------------------ train
@pytest.mark.parametrize("name, d, k", [("moons", 2, 1), ("s-curve", 3, 2)])
def test_train_builtin(tmp_path, capsys, name, d, k):
    out = tmp_path / name
    code, stdout, err = call(capsys, "train", "--data", name, "--n", 200, "--iters", 5,
                             "--out", out, "--quiet")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["d"], metrics["latent_dim"]) == (d, k)
    assert (metrics["n_train"], metrics["n_test"]) == (160, 40)
    assert metrics["widths"] == [d, k, d]
    figures = {p.stem for p in (out / "figures").glob("*.png")}
    assert figures == {"training", "profile", "trajectories", "latent", "controls"}
    assert "report.html" in stdout


@pytest.mark.parametrize("fname, d", [("good.npy", 4), ("good.csv", 3)])
def test_train_file(tmp_path, capsys, files, fname, d):
    out = tmp_path / "run"
    code, _, err = call(capsys, "train", "--data", files / fname, "--iters", 3, "--method",
                        "adam", "--lr", "0.02", "--compare", "none", "--out", out, "--quiet")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert metrics["d"] == d and metrics["comparison"] is None
    assert config["scaling"]["kind"] == "standard"      # auto scaling of a file
    assert config["lr"] == 0.02 and config["data"] == str(files / fname)
    assert metrics["iterations"] == 3 and metrics["method"] == "adam"


def test_train_explicit_widths_and_options(tmp_path, capsys, files):
    out = tmp_path / "run"
    code, _, err = call(capsys, "train", "--data", files / "good.npy", "--widths", "4,3,2,3,4",
                        "--steps-per-width", 2, "--T", 2, "--solver", "heun", "--dtype",
                        "float64", "--scaling", "minmax", "--test-fraction", 0, "--iters", 2,
                        "--compare", "none", "--out", out, "--quiet")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["widths"] == [4, 3, 2, 3, 4] and metrics["n_test"] == 0
    assert metrics["test_mse"] is None and metrics["train_mse"] > 0


def test_train_progress_lines_unless_quiet(tmp_path, capsys):
    code, _, err = call(capsys, "train", "--data", "moons", "--n", 100, "--iters", 2,
                        "--compare", "none", "--out", tmp_path / "a")
    assert code == 0
    assert "emsa: iteration 2/2" in err  # stderr is not a terminal: log lines
    # (--quiet silences them: see the err == "" checks of the other tests)


def test_train_divergence_exit_3(tmp_path, capsys):
    out = tmp_path / "div"
    code, _, err = call(capsys, "train", "--data", "moons", "--n", 100, "--method", "shooting",
                        "--lam", "1e-4", "--activation", "relu", "--T", 20, "--iters", 10,
                        "--compare", "none", "--out", out, "--quiet")
    assert code == 3
    assert err.startswith("error: ") and "diverged" in err and len(err.splitlines()) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["diverged_at"] >= 1
    assert (out / "report.html").is_file() and (out / "model.safetensors").is_file()


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    from autoencode import plotting

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(plotting, "draw_all", broken)  # fails after the model files are written
    out = tmp_path / "run"
    config = dict(cli.DEMO_CONFIG, command="train", data="moons", n=60, iters=1, compare=None,
                  widths=None)
    with pytest.raises(RuntimeError):
        run.train(config, out, verbose=False)
    assert not out.exists()
    assert_no_run(out)


# ------------------------------------------------------------------------------ bad input
BAD_TRAIN = [
    (["--data", "{files}/nan.npy"], ["nan"]),
    (["--data", "{files}/inf.csv"], ["infinite"]),
    (["--data", "{files}/text.csv"], ["abc"]),
    (["--data", "{files}/empty.csv"], ["empty.csv"]),
    (["--data", "{files}/empty.npy"], ["empty.npy"]),
    (["--data", "{files}/missing.npy"], ["missing.npy"]),
    (["--data", "no-such-set"], ["no-such-set"]),
    (["--data", "moons", "--method", "newton"], ["--method", "newton"]),
    (["--data", "moons", "--widths", "64,32,16,8,16,32,64"], ["2 features", "widths"]),
    (["--data", "{files}/good.npy", "--widths", "4,2,4,2,4"], ["widths", "minimum"]),
    (["--data", "{files}/good.npy", "--widths", "4,2,3,1,3,4"], ["grow", "minimum"]),
    (["--data", "{files}/good.npy", "--widths", "4,2,3"], ["end"]),
    (["--data", "{files}/good.npy", "--widths", "4,x,4"], ["--widths"]),
    (["--data", "moons", "--lam", "-1"], ["--lam"]),
    (["--data", "moons", "--lam", "nan"], ["--lam"]),
    (["--data", "moons", "--T", "0"], ["--T"]),
    (["--data", "moons", "--iters", "-3"], ["--iters"]),
    (["--data", "moons", "--test-fraction", "1"], ["--test-fraction"]),
    (["--data", "moons", "--n", "3", "--test-fraction", "0.5"], ["samples"]),
    (["--data", "moons", "--latent", "5"], ["latent"]),
    (["--data", "moons", "--lr", "0.1"], ["--lr", "emsa"]),
    (["--data", "moons", "--batch-size", "10"], ["--batch-size"]),
    (["--data", "moons", "--device", "tpu"], ["tpu"]),
    (["--data", "moons", "--n", "3", "--test-fraction", "0", "--workers", "4"],
     ["4 workers", "3 particles"]),
    (["--data", "moons", "--workers", "0"], ["--workers"]),
    (["--data", "moons", "--checkpoint-every", "-1"], ["--checkpoint-every"]),
    (["--data", "moons", "--resume"], ["--resume", "checkpoint"]),
    (["--data", "moons", "--bogus"], ["--bogus"]),
    ([], ["--data"]),
]


@pytest.mark.parametrize("args, words", BAD_TRAIN, ids=[" ".join(a) for a, _ in BAD_TRAIN])
def test_train_bad_input(tmp_path, capsys, files, args, words):
    out = tmp_path / "run"
    argv = ["train", *[a.format(files=files) for a in args], "--iters", "1", "--out", str(out)]
    code, stdout, err = call(capsys, *argv)
    assert_user_error(code, err, *words)
    assert_no_run(out)


def test_usage_errors(capsys):
    code, _, err = call(capsys)
    assert_user_error(code, err, "command")
    code, _, err = call(capsys, "frobnicate")
    assert_user_error(code, err, "frobnicate")


def test_out_is_a_file(tmp_path, capsys):
    out = tmp_path / "file"
    out.write_text("x")
    code, _, err = call(capsys, "train", "--data", "moons", "--out", out)
    assert_user_error(code, err, "not a directory")


# ------------------------------------------------------------------------------ evaluate
def test_evaluate_own_test_split(demo_run, capsys):
    before = {p: p.stat().st_mtime_ns for p in demo_run.rglob("*")}
    code, stdout, err = call(capsys, "evaluate", "--run", demo_run)
    assert code == 0 and err == ""
    metrics = json.loads((demo_run / "metrics.json").read_text())
    values = dict(line.split(":", 1) for line in stdout.splitlines())
    assert float(values["model MSE"]) == pytest.approx(metrics["test_mse"], rel=1e-4)
    assert float(values["PCA MSE"].split()[0]) == pytest.approx(metrics["pca_test_mse"], rel=1e-4)
    assert "360 samples" in values["data"]
    assert {p: p.stat().st_mtime_ns for p in demo_run.rglob("*")} == before  # writes nothing


def test_evaluate_other_data(demo_run, capsys):
    code, stdout, _ = call(capsys, "evaluate", "--run", demo_run, "--data", "digits")
    assert code == 0
    assert "1797 samples" in stdout and "PCA MSE:" in stdout
    code, _, err = call(capsys, "evaluate", "--run", demo_run, "--data", "moons")
    assert_user_error(code, err, "features")


def _damaged(demo_run, tmp_path, name, content: bytes):
    copy = tmp_path / "copy"
    shutil.copytree(demo_run, copy)
    (copy / name).write_bytes(content)
    return copy


@pytest.mark.parametrize("name, content, words", [
    ("model.safetensors", None, ["truncated"]),
    ("model.json", None, ["truncated"]),
    ("model.json", b'{"format": "something-else", "weights": [1, 2]}', ["not an autoencode model"]),
    ("model.json", bytes(range(256)) * 4, ["model"]),
    ("model.safetensors", os.urandom(4096), ["safetensors"]),
    ("config.json", b"[1, 2, 3]", ["config.json"]),
])
def test_evaluate_bad_model_files(demo_run, tmp_path, capsys, name, content, words):
    if content is None:  # truncate to half
        content = (demo_run / name).read_bytes()[: (demo_run / name).stat().st_size // 2]
    copy = _damaged(demo_run, tmp_path, name, content)
    code, _, err = call(capsys, "evaluate", "--run", copy)
    assert_user_error(code, err, *words)


def test_evaluate_missing_run(tmp_path, capsys):
    code, _, err = call(capsys, "evaluate", "--run", tmp_path / "nothing")
    assert_user_error(code, err, "not found")


# ------------------------------------------------------------------------------ plot
def test_plot_redraws_figures_and_report(demo_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(demo_run, copy)
    shutil.rmtree(copy / "figures")
    (copy / "report.html").unlink()
    code, stdout, err = call(capsys, "plot", "--run", copy)
    assert code == 0 and err == ""
    assert len(list((copy / "figures").glob("*.png"))) == 6
    assert (copy / "report.html").is_file()
    assert str(copy / "report.html") in stdout


def test_plot_bad_history(demo_run, tmp_path, capsys):
    copy = _damaged(demo_run, tmp_path, "history.csv", b"a,b\n1,2\n")
    code, _, err = call(capsys, "plot", "--run", copy)
    assert_user_error(code, err, "history")


# ------------------------------------------------------------------------------ datasets, help
def test_datasets(capsys):
    code, stdout, _ = call(capsys, "datasets")
    assert code == 0
    for name in ("digits", "s-curve", "swiss-roll", "moons", "gaussian-mixture", "circle"):
        assert any(line.startswith(name + " ") for line in stdout.splitlines()), name


@pytest.mark.parametrize("command", ["demo", "train", "evaluate", "plot", "datasets", "study"])
def test_help(capsys, command):
    code, stdout, _ = call(capsys, command, "--help")
    assert code == 0
    assert stdout.startswith(f"usage: autoencode {command}")
    if command == "train":
        for text in ("(default: 0.001)", "(default: emsa)", "(default: 0.2)", "(default: 4)",
                     "--workers", "exit status", "3 "):
            assert text in stdout, text
    if command == "demo":
        assert "(default: 150)" in stdout and "(default: runs/demo)" in stdout


def test_python_m_autoencode_datasets():
    result = subprocess.run([sys.executable, "-m", "autoencode", "datasets"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "digits" in result.stdout and "moons" in result.stdout


def test_console_script_help():
    script = Path(sys.executable).parent / "autoencode"
    if not script.exists():
        found = shutil.which("autoencode")
        if found is None:
            pytest.skip("console script 'autoencode' is not installed")
        script = Path(found)
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("demo", "train", "evaluate", "plot", "datasets"):
        assert command in result.stdout
