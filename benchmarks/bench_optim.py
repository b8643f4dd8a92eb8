"""Optimisation quality: the objective J against sweeps and seconds, per method, λ = 1e-3.

The demo configuration: digits / 16, 80/20 split with ``train_test_split(random_state=0)``,
training split only; widths 64,32,16,8,16,32,64, 4 steps per width, T = 4, λ = 1e-3,
``AutoencODE(..., seed=0)`` defaults otherwise (PCA alignment, init "normal"), float32.
Each run is ``AutoencODE(method=..., method_options=...).fit(X_train)``; its
``history_`` gives J, sweeps and seconds per iteration (iteration 0 is the initial sweep).

* ``adam``: learning rates 3e-3 .. 1e-1, 150 iterations each; the best is the lowest
  final J (J after the 150th iteration).
* ``sgd`` (heavy-ball momentum 0.9): a small learning-rate grid, 150 iterations.
* ``shooting``: relaxations α = 1 (plain) down to 1e-5, 150 iterations (the estimator
  stops a diverging run and keeps its history up to there).
* ``emsa``: default options, up to 300 iterations; reported: the sweeps (and seconds) it
  needs to reach the best Adam's final J, against the sweeps Adam used.

Curves are written to ``optim_J_vs_sweeps.png`` and ``optim_J_vs_seconds.png``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import common  # first: sets OMP_WAIT_POLICY before torch is loaded
from common import DIGITS, LAM, table

NAME = "optim"
TITLE = "Optimisation quality (J against sweeps and seconds, digits, λ = 1e-3)"


def fit_history(X, method: str, options: dict | None, max_iter: int) -> dict:
    from autoencode import AutoencODE
    model = AutoencODE(widths=DIGITS["widths"], steps_per_width=DIGITS["spw"], T=DIGITS["T"],
                       method=method, method_options=options, lam=LAM, max_iter=max_iter,
                       seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    h = model.history_
    return {"method": method, "options": options or {}, "max_iter": max_iter,
            "status": model.status_, "iterations": len(h) - 1,
            "J": [r["J"] for r in h], "sweeps": [r["sweeps"] for r in h],
            "seconds": [r["seconds"] for r in h], "mse": [r["mse"] for r in h],
            "model": model}


def crossing(run: dict, target: float):
    """(sweeps, seconds, iteration) at the first J <= target, or None."""
    for i, J in enumerate(run["J"]):
        if J <= target:
            return run["sweeps"][i], run["seconds"][i], i
    return None


def _label(run: dict) -> str:
    opts = ", ".join(f"{k}={v:g}" for k, v in run["options"].items())
    return f"{run['method']}({opts})" if opts else run["method"]


def _plot(runs: list[dict], best: dict, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = []
    for xkey, xlabel in (("sweeps", "sweeps (forward + costate passes)"),
                         ("seconds", "seconds (wall)")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for run in runs:
            emph = run is best["emsa"] or run is best["adam"] or run is best.get("sgd") \
                or run is best.get("shooting")
            ax.plot(run[xkey], run["J"], lw=2 if emph else 0.8, alpha=1 if emph else 0.45,
                    ls="-" if emph else "--", label=_label(run) + ("" if emph else " (grid)"))
        ax.axhline(best["adam"]["J"][-1], color="grey", lw=0.8, ls=":",
                   label="best Adam final J")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("J (sum over components + Tikhonov)")
        ax.set_title("digits, widths 64..8..64, λ = 1e-3 (training split)")
        lo = min(min(r["J"]) for r in runs)
        hi = max(r["J"][0] for r in runs)
        ax.set_ylim(lo * 0.9, hi * 1.5)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out / f"optim_J_vs_{xkey}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path.name)
    return files


def run(quick: bool, out: Path) -> dict:
    common.setup()
    out.mkdir(parents=True, exist_ok=True)
    X, _ = common.digits_split()
    if quick:
        adam_lrs, adam_iter = [1e-2, 3e-2], 40
        sgd_lrs, relaxations, emsa_iter = [1e-1], [1.0, 1e-4], 80
    else:
        adam_lrs, adam_iter = [3e-3, 1e-2, 2e-2, 3e-2, 5e-2, 1e-1], 150
        sgd_lrs, relaxations, emsa_iter = [3e-2, 1e-1, 3e-1], [1.0, 1e-3, 1e-4, 1e-5], 300
    adam = [fit_history(X, "adam", {"lr": lr}, adam_iter) for lr in adam_lrs]
    sgd = [fit_history(X, "sgd", {"lr": lr}, adam_iter) for lr in sgd_lrs]
    shooting = [fit_history(X, "shooting", {"relaxation": a}, adam_iter) for a in relaxations]
    emsa = fit_history(X, "emsa", None, emsa_iter)

    def final(r):
        return r["J"][-1] if r["status"] != "diverged" else math.inf

    best = {"adam": min(adam, key=lambda r: r["J"][-1]), "emsa": emsa,
            "sgd": min(sgd, key=final), "shooting": min(shooting, key=final)}
    target = best["adam"]["J"][-1]
    adam_sweeps = best["adam"]["sweeps"][-1]
    adam_seconds = best["adam"]["seconds"][-1]
    hit = crossing(emsa, target)
    runs = adam + sgd + shooting + [emsa]
    figures = _plot(runs, best, out)

    def at_sweeps(r, s):
        J = [J for J, sw in zip(r["J"], r["sweeps"]) if sw <= s]
        return J[-1] if J else None

    rows = []
    for r in runs:
        c = crossing(r, target)
        rows.append([_label(r), r["iterations"], r["status"], r["sweeps"][-1], r["seconds"][-1],
                     r["J"][0], r["J"][-1], min(r["J"]), at_sweeps(r, adam_sweeps),
                     c[0] if c else None])
    md = [f"Digits train split ({X.shape[0]} x {X.shape[1]}), widths {DIGITS['widths']}, "
          f"{DIGITS['spw']} steps per width, T = {DIGITS['T']:g}, λ = {LAM:g}, estimator "
          f"defaults (PCA alignment, init normal, seed 0). A sweep is one forward + costate "
          f"pass over all particles (EMSA's rejected trials count half a sweep each). "
          f"Target J = best Adam's final J = {target:.4g} "
          f"({_label(best['adam'])}, {best['adam']['iterations']} iterations, "
          f"{adam_sweeps:g} sweeps, {adam_seconds:.1f} s).", ""]
    md.append(table(["run", "iterations", "status", "sweeps", "seconds", "J initial", "J final",
                     "J min", f"J at {adam_sweeps:g} sweeps", "sweeps to target J"], rows))
    if hit:
        verdict = "met" if hit[0] <= adam_sweeps else "not met"
        line = (f"emsa reaches Adam's final J = {target:.4g} after **{hit[0]:g} sweeps** "
                f"({hit[2]} iterations, {hit[1]:.1f} s) against Adam's {adam_sweeps:g} sweeps "
                f"({adam_seconds:.1f} s): target (no more sweeps than Adam) **{verdict}**.")
    else:
        verdict = "not met"
        line = (f"emsa does **not reach** Adam's final J = {target:.4g} in "
                f"{emsa['sweeps'][-1]:g} sweeps ({emsa['iterations']} iterations; its final J "
                f"is {emsa['J'][-1]:.4g}): target **not met**.")
    md += ["", line, "", "Figures: " + ", ".join(f"`{f}`" for f in figures) + "."]
    data = {"target_J": target, "adam_best": _label(best["adam"]), "adam_sweeps": adam_sweeps,
            "adam_seconds": adam_seconds,
            "emsa_sweeps_to_target": hit[0] if hit else None,
            "emsa_seconds_to_target": hit[1] if hit else None,
            "emsa_iterations_to_target": hit[2] if hit else None,
            "target_met": verdict == "met", "figures": figures,
            "runs": [{k: v for k, v in r.items() if k != "model"} for r in runs]}
    return {"name": NAME, "title": TITLE, "markdown": "\n".join(md), "data": data}


if __name__ == "__main__":
    common.standalone(run, __doc__.splitlines()[0])
