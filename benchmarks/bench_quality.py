"""Reconstruction quality: test MSE of emsa against PCA and a discrete MLP autoencoder.

Data sets (80/20 split, ``train_test_split(random_state=0)``):

* digits / 16 (1797 x 64), widths 64,32,16,8,16,32,64 (k = 8);
* s-curve (1500 x 3, noise 0.05, seed 0), widths 3,2,3 (k = 2).

autoencode: ``AutoencODE(widths, steps_per_width=4, T=4, lam=1e-3, method="emsa",
max_iter=300, seed=0)`` fitted on the training split; its sweep count S (from
``history_``) is the budget of the MLP baselines.

Baselines, fitted on the training split only:

* PCA with the same k (scikit-learn);
* MLP: ``nn.Sequential`` of Linear + tanh layers with the profile widths (e.g.
  64→32→16→8→16→32→64), the last layer linear, PyTorch's default initialisation, inputs
  centred by the training mean; full-batch Adam for S steps (one step = one forward +
  backward over the training split = one sweep); learning rate chosen on a small grid by
  the final *training* loss (never by the test set);
* deep MLP: the same with one Linear + tanh layer per ODE time step (the unrolled widths,
  K layers), the discrete network without residual connections.

Reported: test MSE per component (mean over entries), ratios to PCA and to the MLPs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import common  # first: sets OMP_WAIT_POLICY before torch is loaded
import numpy as np
import torch
from common import LAM, table

NAME = "quality"
TITLE = "Reconstruction quality (test MSE against PCA and MLP autoencoders)"

DATASETS = {
    "digits": dict(widths=(64, 32, 16, 8, 16, 32, 64), split=common.digits_split),
    "s-curve": dict(widths=(3, 2, 3), split=common.s_curve_split),
}


def mlp(widths, seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def train_mlp(widths, train: np.ndarray, test: np.ndarray, sweeps: int, lrs) -> dict:
    """Full-batch Adam on the MSE for ``sweeps`` steps per learning rate; the run with the
    lowest final training loss is reported."""
    mean = train.mean(0)
    xtr = torch.as_tensor(train - mean, dtype=torch.float32)
    xte = torch.as_tensor(test - mean, dtype=torch.float32)
    runs = []
    for lr in lrs:
        net = mlp(widths)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for _ in range(sweeps):
            opt.zero_grad(set_to_none=True)
            loss = ((net(xtr) - xtr) ** 2).mean()
            loss.backward()
            opt.step()
        with torch.no_grad():
            train_mse = float(((net(xtr) - xtr) ** 2).mean())
            test_mse = float(((net(xte) - xte) ** 2).mean())
        if not np.isfinite(train_mse):
            train_mse = float("inf")
        runs.append({"lr": lr, "train_mse": train_mse, "test_mse": test_mse})
    best = min(runs, key=lambda r: r["train_mse"])
    return {"best": best, "grid": runs}


def run(quick: bool, out: Path) -> dict:
    from sklearn.decomposition import PCA

    from autoencode import AutoencODE
    from autoencode.profile import WidthProfile

    common.setup()
    max_iter = 60 if quick else 300
    lrs = [3e-3, 1e-2] if quick else [1e-3, 3e-3, 1e-2, 3e-2]
    results = []
    for name, cfg in DATASETS.items():
        train, test = cfg["split"]()
        widths = cfg["widths"]
        k = min(widths)
        model = AutoencODE(widths=widths, steps_per_width=4, T=4.0, lam=LAM, method="emsa",
                           max_iter=max_iter, seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(train)
        sweeps = int(round(model.history_[-1]["sweeps"]))
        ae = {"train_mse": -model.score(train), "test_mse": -model.score(test),
              "sweeps": model.history_[-1]["sweeps"], "iterations": len(model.history_) - 1,
              "seconds": model.history_[-1]["seconds"]}
        pca = PCA(k).fit(train)
        pca_mse = {"train_mse": float(np.mean((pca.inverse_transform(pca.transform(train))
                                                - train) ** 2)),
                   "test_mse": float(np.mean((pca.inverse_transform(pca.transform(test))
                                              - test) ** 2))}
        shallow = train_mlp(widths, train, test, sweeps, lrs)
        unrolled = (widths[0],) + WidthProfile.build(widths, 4, 4.0).step_widths
        deep = train_mlp(unrolled, train, test, sweeps, lrs)
        results.append({"dataset": name, "n_train": len(train), "n_test": len(test), "k": k,
                        "widths": widths, "autoencode": ae, "pca": pca_mse, "mlp": shallow,
                        "deep_mlp": deep, "deep_widths": unrolled,
                        "ratio_to_pca": ae["test_mse"] / pca_mse["test_mse"],
                        "ratio_to_mlp": ae["test_mse"] / shallow["best"]["test_mse"],
                        "ratio_to_deep_mlp": ae["test_mse"] / deep["best"]["test_mse"]})

    md = [f"Test MSE per component (mean over all test entries), 80/20 split, seed 0. "
          f"autoencode: emsa, {max_iter} iterations, λ = {LAM:g}, 4 steps per width, T = 4; "
          f"the MLPs get the same number of sweeps, learning rate from {lrs} by final "
          f"training loss.", ""]
    rows = []
    for r in results:
        n = r["dataset"]
        rows.append([n, f"autoencode emsa ({r['autoencode']['sweeps']:g} sweeps)",
                     r["autoencode"]["train_mse"], r["autoencode"]["test_mse"], 1.0])
        rows.append([n, f"PCA (k={r['k']})", r["pca"]["train_mse"], r["pca"]["test_mse"],
                     r["ratio_to_pca"]])
        rows.append([n, f"MLP {'-'.join(map(str, r['widths']))} (Adam lr "
                        f"{r['mlp']['best']['lr']:g})", r["mlp"]["best"]["train_mse"],
                     r["mlp"]["best"]["test_mse"], r["ratio_to_mlp"]])
        rows.append([n, f"deep MLP, one layer per step ({len(r['deep_widths']) - 1} layers, "
                        f"Adam lr {r['deep_mlp']['best']['lr']:g})",
                     r["deep_mlp"]["best"]["train_mse"], r["deep_mlp"]["best"]["test_mse"],
                     r["ratio_to_deep_mlp"]])
    md.append(table(["data", "model", "train MSE", "test MSE", "autoencode ÷ row (test)"],
                    rows))
    d = next(r for r in results if r["dataset"] == "digits")
    met_pca = d["ratio_to_pca"] <= 0.8
    met_mlp = d["ratio_to_mlp"] < 1.0
    md += ["", f"Targets (DESIGN 4, digits, k = 8): test MSE at least 20% below PCA: ratio "
               f"{d['ratio_to_pca']:.3f} (**{'met' if met_pca else 'not met'}**); below the "
               f"MLP autoencoder of the same widths trained by Adam for the same sweeps: ratio "
               f"{d['ratio_to_mlp']:.3f} (**{'met' if met_mlp else 'not met'}**)."]
    return {"name": NAME, "title": TITLE, "markdown": "\n".join(md),
            "data": {"results": results, "max_iter": max_iter, "lr_grid": lrs}}


if __name__ == "__main__":
    common.standalone(run, __doc__.splitlines()[0])
