"""Scaling: time per iteration against the number of particles N, depth K and width d.

One iteration = ``Adam().update`` on a fixed state (one full-batch sweep plus the
element-wise update), median over repeats after a warm-up, random uniform data, float32.

* N in 1e3..1e5 on the digits profile (64,32,16,8,16,32,64; 4 steps per width);
* depth: steps per width 1, 2, 4, 8 (K = 7..56) on the digits profile, N = 1e4;
* width: d = 32, 64, 128, 256 with the proportional profile (d, d/2, d/4, d/8, ..., d),
  4 steps per width, N = 1e4.

Slopes are least-squares fits of log(time) on log(variable) (``numpy.polyfit``); the FLOP
slope is the same fit of the sweep's GEMM FLOP count, what the time would follow if the
GEMMs were all that mattered.
"""

from __future__ import annotations

from pathlib import Path

import common  # first: sets OMP_WAIT_POLICY before torch is loaded
from common import DIGITS, LAM, loglog_slope, table

NAME = "scaling"
TITLE = "Scaling (time per iteration against N, depth K and width d)"


def _time(widths, spw, N, repeats) -> dict:
    from autoencode.methods import Adam
    x = common.random_data(N, widths[0])
    problem, theta = common.build_problem(widths, spw, 4.0, x, LAM)
    adam = Adam(lr=1e-2)
    state = adam.init(problem, theta)
    t = common.timeit(lambda: adam.update(problem, state), repeats=repeats, warmup=1)
    flops = common.sweep_flops(problem.flow.profile, N)
    return {"seconds": t["median"], "min_seconds": t["min"], "flops": flops,
            "gflops": flops / t["median"] / 1e9, "K": problem.flow.profile.K}


def run(quick: bool, out: Path) -> dict:
    common.setup()
    repeats = 3 if quick else 5
    Ns = [1000, 10000] if quick else [1000, 3000, 10000, 30000, 100000]
    spws = [1, 4] if quick else [1, 2, 4, 8]
    ds = [32, 128] if quick else [32, 64, 128, 256]
    n_fixed = 10000
    series = {"N": [], "K": [], "d": []}
    for N in Ns:
        series["N"].append({"value": N, **_time(DIGITS["widths"], DIGITS["spw"], N, repeats)})
    for spw in spws:
        r = _time(DIGITS["widths"], spw, n_fixed, repeats)
        series["K"].append({"value": r["K"], "steps_per_width": spw, **r})
    for d in ds:
        widths = (d, d // 2, d // 4, d // 8, d // 4, d // 2, d)
        series["d"].append({"value": d, "widths": widths,
                            **_time(widths, DIGITS["spw"], n_fixed, repeats)})
    slopes = {}
    for key, rows in series.items():
        x = [r["value"] for r in rows]
        slopes[key] = {"time": loglog_slope(x, [r["seconds"] for r in rows]),
                       "min_time": loglog_slope(x, [r["min_seconds"] for r in rows]),
                       "flops": loglog_slope(x, [r["flops"] for r in rows])}
        if len(rows) >= 4:
            slopes[key]["time_top3"] = loglog_slope(x[-3:], [r["seconds"] for r in rows[-3:]])

    labels = {"N": "particles N (digits profile, K=28)",
              "K": f"depth K (digits profile, N={n_fixed})",
              "d": f"width d (profile d..d/8..d, K=28, N={n_fixed})"}
    md = [f"Median of {repeats} `Adam().update` calls after a warm-up, float32, random data.", ""]
    md.append(table(["variable", "value", "median s", "min s", "GFLOP/s"],
                    [[labels[k], r["value"], r["seconds"], r["min_seconds"], r["gflops"]]
                     for k, rows in series.items() for r in rows]))
    md += ["", "Fitted log-log slopes (time ∝ variable^slope):", ""]
    md.append(table(["variable", "slope of median time", "same, 3 largest values",
                     "slope of min time", "slope of FLOPs"],
                    [[labels[k], v["time"], v.get("time_top3"), v["min_time"], v["flops"]]
                     for k, v in slopes.items()]))
    md += ["", "On a machine shared with other jobs the min time is the better estimate of the "
               "undisturbed cost (outside load only ever adds time); compare both slopes."]
    sN = slopes["N"]["time"]
    md += ["", f"Target (DESIGN 4) 'time per iteration linear in N': slope {sN:.2f} "
               f"({'met' if sN <= 1.1 else 'not met'}: at most linear, i.e. <= 1.1; below 1 "
               f"where fixed per-step costs dominate at small N)."]
    return {"name": NAME, "title": TITLE, "markdown": "\n".join(md),
            "data": {"series": series, "slopes": slopes, "repeats": repeats}}


if __name__ == "__main__":
    common.standalone(run, __doc__.splitlines()[0])
