"""Checkpoint, kill and resume from the command line: nothing is lost.

A training subprocess is killed with SIGKILL at a random moment (including during a
checkpoint write); resuming it reaches exactly the tensors of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from autoencode import AutoencODE, cli  # noqa: E402

ARGS = ["train", "--data", "s-curve", "--n", "300", "--widths", "3,2,3", "--steps-per-width",
        "3", "--dtype", "float64", "--compare", "none", "--quiet"]


def cli_train(out, *extra):
    return cli.main([*ARGS, "--out", str(out), *map(str, extra)])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert cli_train(out, "--iters", 40) == 0
    return AutoencODE.load(out / "model").get_controls()


def test_resume_after_clean_stop_and_extension(tmp_path, reference):
    out = tmp_path / "run"
    assert cli_train(out, "--iters", 25, "--checkpoint-every", 10) == 0
    assert (out / "checkpoint.safetensors").is_file() and (out / "metrics.json").is_file()
    # a finished run can be extended: 15 more iterations equal 40 from scratch
    assert cli_train(out, "--iters", 40, "--checkpoint-every", 10, "--resume") == 0
    assert np.array_equal(AutoencODE.load(out / "model").get_controls(), reference)
    assert json.loads((out / "metrics.json").read_text())["iterations"] == 40


def test_resume_refuses_other_settings(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_train(out, "--iters", 5, "--checkpoint-every", 5) == 0
    capsys.readouterr()
    assert cli_train(out, "--iters", 10, "--lam", "0.1", "--resume") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot resume: lam was 0.001") and "\\n" not in err


def test_out_with_checkpoint_suggests_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_train(out, "--iters", 3, "--checkpoint-every", 1) == 0
    capsys.readouterr()
    assert cli_train(out, "--iters", 3) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_random_moment_then_resume(tmp_path, reference, seed):
    """Kill a checkpointing run (every iteration: kills often land inside a write)."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "autoencode", *ARGS, "--out", str(out), "--iters", "40",
            "--checkpoint-every", "1"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (out / "checkpoint.safetensors").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists() or proc.returncode == 0
    code = subprocess.run(argv + ["--resume"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert code.returncode == 0, code.stderr
    assert np.array_equal(AutoencODE.load(out / "model").get_controls(), reference)
    assert not list(out.glob(".*.tmp"))


def test_workers_two_equal_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli_train(one, "--iters", 6) == 0
    assert cli_train(two, "--iters", 6, "--workers", 2) == 0
    a = AutoencODE.load(one / "model").get_controls()
    b = AutoencODE.load(two / "model").get_controls()
    assert np.abs(a - b).max() < 1e-9


def test_resume_after_kill_between_the_final_renames(tmp_path, reference):
    """A kill after the old run was moved aside but before the new one was moved in."""
    out = tmp_path / "run"
    assert cli_train(out, "--iters", 25, "--checkpoint-every", 5) == 0
    out.rename(tmp_path / ".run.old-4242")  # what commit() does first
    assert cli_train(out, "--iters", 40, "--checkpoint-every", 5, "--resume") == 0
    assert np.array_equal(AutoencODE.load(out / "model").get_controls(), reference)
