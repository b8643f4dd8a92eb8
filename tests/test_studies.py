"""The study commands on tiny configurations: well-formed study.json, figures, report."""

import argparse
import json
import math
import re

import numpy as np
import pytest
import torch

from autoencode.errors import ConfigError, DataError
from autoencode.studies import (STUDIES, _flow, _initial, _prolong, add_study_parser,
                                mean_field_study, study_options, tikhonov_study,
                                time_limit_study, train_problem, write_study)
from autoencode.pmp import Problem


pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {
    "tikhonov": ["--data", "s-curve", "--n", "40", "--lambdas", "1e-3,100", "--seeds", "0,1",
                 "--iters", "15", "--lanczos-iters", "6", "--probe-directions", "2",
                 "--probe-points", "3"],
    "mean-field": ["--data", "s-curve", "--sizes", "20,40", "--n-test", "50", "--seeds", "0,1",
                   "--iters", "10"],
    "time-limit": ["--data", "s-curve", "--n", "30", "--steps", "1,2,4", "--seeds", "0",
                   "--iters", "10"],
}


def parser():
    p = argparse.ArgumentParser(prog="autoencode")
    add_study_parser(p.add_subparsers(dest="command"))
    return p


def run_cli(argv):
    args = parser().parse_args(argv)
    return args.func(args)


def check_files(out, figures):
    study = json.loads((out / "study.json").read_text())   # strict JSON: no NaN/inf
    names = sorted(p.name for p in (out / "figures").iterdir())
    assert names == sorted(f"{f}.png" for f in figures)
    for name in names:
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(figures)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]*", "", page)   # self-contained:
    assert "<script" not in text and "http" not in text and "<link" not in text
    return study


@pytest.mark.parametrize("kind", STUDIES)
def test_study_command_writes_a_well_formed_study(kind, tmp_path, capsys):
    out = tmp_path / kind
    assert run_cli(["study", kind, "--out", str(out), "--quiet"] + TINY[kind]) == 0
    assert "report.html" in capsys.readouterr().out
    figures = {"tikhonov": ("training_curves", "hessian_spectrum", "distinct_solutions",
                            "convexity_radius", "outcomes", "control_maps"),
               "mean-field": ("generalisation_gap", "control_convergence"),
               "time-limit": ("objective_convergence", "control_convergence", "control_maps")}
    study = check_files(out, figures[kind])
    assert study["kind"] == kind and study["format"] == "autoencode-study"
    assert study["findings"] and study["wall_time_s"] > 0
    if kind == "tikhonov":
        rows = study["rows"]
        assert len(rows) == 2 * 2 * 2   # lambdas x methods x seeds
        for row in rows:
            for key in ("lam", "method", "seed", "converged", "iterations", "J", "mse",
                        "residual", "hessian_min_eig", "hessian_max_eig"):
                assert key in row, key
            assert isinstance(row["converged"], bool) and row["method"] in ("shooting", "emsa")
            assert row["hessian_min_eig"] <= row["hessian_max_eig"]
        assert set(study["distinct_solutions"]) == {"0.001", "100"}
        for counts in study["distinct_solutions"].values():
            assert set(counts) == {"shooting", "emsa"}
            assert all(isinstance(c, int) and 0 <= c <= 2 for c in counts.values())
        # at λ = 100 shooting is a contraction: it converges, to one solution
        high = [r for r in rows if r["lam"] == 100 and r["method"] == "shooting"]
        assert all(r["converged"] for r in high)
        assert study["distinct_solutions"]["100"]["shooting"] == 1
        assert all(r["shooting_contraction"] < 1 for r in high)
    elif kind == "mean-field":
        assert [s["N"] for s in study["summary"]] == [20, 40]
        assert len(study["rows"]) == 4 and "gap" in study["fits"]
        assert all(math.isfinite(r["mse_test"]) for r in study["rows"])
        assert all(r["distance_to_largest"] == 0 for r in study["rows"] if r["N"] == 40)
    else:
        assert [s["K"] for s in study["summary"]] == [3, 6, 12]
        assert study["summary"][-1]["control_distance_to_finest"] == 0
        assert set(study["fits"]) >= {"J_difference", "control_distance_to_next"}


def test_tikhonov_study_in_process_details():
    result = tikhonov_study(np.random.default_rng(0).normal(size=(30, 3)), lambdas=(10.0, 100.0),
                            seeds=(0, 1), methods=("shooting",), iters=60, lanczos_iters=12,
                            probe_directions=3, probe_points=4)
    rows = result["rows"]
    high = [r for r in rows if r["lam"] == 100]
    low = [r for r in rows if r["lam"] == 10]
    # λ = 100: contraction (factor < 1 from the Hessian), convergence, one solution,
    # locally convex; λ = 10: factor > 1 and shooting does not converge
    assert all(r["converged"] and r["shooting_contraction"] < 1 for r in high)
    assert all(not r["converged"] and r["shooting_contraction"] > 1 for r in low)
    assert result["distinct_solutions"]["100"]["shooting"] == 1
    assert all(r["certified_locally_convex"] and r["hessian_min_eig"] > 0 for r in high)
    assert len(result["histories"]) == 4 and result["histories"][0]["J"][0] == rows[0]["J_initial"]
    assert result["control_maps"]["maps"]["100"]["shooting"][0][0] is not None


def test_train_problem_reports_divergence_and_convergence():
    flow = _flow((3, 2, 3), 1, 4.0)
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(40, 3)))
    theta = _initial(flow, 0, 0.5)
    # λh = 1e-9 · 4/3: the first shooting step has |θ| ~ |∇J|/(λh), J ~ |∇J|²/(2λh) >> 1e6 J_0
    diverged = train_problem(Problem(flow, x, 1e-9), "shooting", theta, 50)
    assert diverged.reason == "diverged" and diverged.iterations < 50
    assert all(math.isfinite(h["J"]) for h in diverged.history)   # last good iterate kept
    assert diverged.final["J"] <= 1e6 * diverged.history[0]["J"]
    converged = train_problem(Problem(flow, x, 100.0), "shooting", theta, 100)
    assert converged.converged and converged.final["residual"] <= 1e-6 * converged.history[0]["residual"]
    budget = train_problem(Problem(flow, x, 1e-2), "emsa", theta, 3)
    assert budget.reason == "not_converged" and budget.iterations == 3 and len(budget.history) == 4


def test_prolongation_keeps_the_control_as_a_function_of_time():
    coarse, fine = _flow((3, 2, 3), 1, 2.0), _flow((3, 2, 3), 4, 2.0)
    theta = _initial(coarse, 0, 1.0)
    prolonged = _prolong(coarse, theta, fine)
    assert prolonged.numel() == fine.layout.size
    c, f = coarse.layout.split(theta), fine.layout.split(prolonged)
    assert torch.equal(f[0][0], c[0][0]) and torch.equal(f[3][0], c[0][0])       # width 3
    assert torch.equal(f[4][0], c[1][0])                                          # 2 x 3 step
    assert torch.equal(f[5][0], c[1][0][:, :2])                                   # 2 x 2 steps
    assert torch.equal(f[8][0][:, :2], c[2][0]) and torch.equal(f[9][0][:, 2], torch.zeros(3))
    assert torch.equal(f[8][1], c[2][1])
    # identity on the same grid
    assert torch.equal(_prolong(coarse, theta, coarse), theta)


def test_options_are_checked(tmp_path):
    p = parser()
    args = p.parse_args(["study", "mean-field", "--lambdas", "1,2"])
    with pytest.raises(ConfigError, match="--lambdas does not apply to the mean-field"):
        study_options(args)
    with pytest.raises(SystemExit):
        p.parse_args(["study", "tikhonov", "--seeds", "a,b"])
    with pytest.raises(SystemExit):
        p.parse_args(["study", "nonsense"])
    with pytest.raises(ConfigError, match="multiple of the smallest"):
        time_limit_study("s-curve", steps=(2, 3), n=20, iters=1)
    with pytest.raises(ConfigError, match="unknown alignment"):
        mean_field_study("s-curve", sizes=(10,), n_test=10, iters=1, align="rotate")
    with pytest.raises(DataError):
        mean_field_study("digits", sizes=(5000,), iters=1)
    with pytest.raises(DataError):
        tikhonov_study("no-such-data-set", iters=1)
    with pytest.raises(ConfigError):
        write_study("nonsense", {}, tmp_path)
