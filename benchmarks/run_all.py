"""Run the whole benchmark suite and write ``results.json`` and ``results.md``.

    python benchmarks/run_all.py [--quick] [--out benchmarks/results] [--only speed,optim]

Each benchmark module also runs alone (``python benchmarks/bench_speed.py --quick``).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (first: sets OMP_WAIT_POLICY before torch is loaded)
import bench_distributed  # noqa: E402
import bench_memory  # noqa: E402
import bench_optim  # noqa: E402
import bench_quality  # noqa: E402
import bench_scaling  # noqa: E402
import bench_speed  # noqa: E402
from common import fmt, table  # noqa: E402

# Not here, run by hand: bench_soak.py (minutes) and gpu_check.py (needs a CUDA device).
MODULES = [bench_speed, bench_memory, bench_scaling, bench_optim, bench_quality,
           bench_distributed]


def summary(results: list[dict]) -> dict:
    """The DESIGN 4 targets in one table (those whose benchmark ran)."""
    data = {r["name"]: r["data"] for r in results if "error" not in r["data"]}
    rows = []
    if "speed" in data:
        for s in data["speed"]["shapes"]:
            t = s["targets"]
            rows += [
                [f"speed, {s['shape']}", "iteration time ÷ torchdiffeq euler (a)", "<= 0.2",
                 t["vs_torchdiffeq_a"], t["vs_torchdiffeq_a"] <= 0.2],
                [f"speed, {s['shape']}", "iteration time ÷ nn.Linear loop (c)", "<= 1.2",
                 t["vs_linear_loop_c"], t["vs_linear_loop_c"] <= 1.2],
                [f"speed, {s['shape']}", "throughput ÷ torch.mm throughput (d)", ">= 0.6",
                 t["throughput_fraction_of_matmul"], t["throughput_fraction_of_matmul"] >= 0.6],
            ]
    if "memory" in data:
        plain = [r for r in data["memory"]["rows"] if r["kind"] == "sweep"]
        worst = max(r["peak_over_trajectory"] for r in plain)
        rows.append(["memory", "peak ÷ trajectory of Problem.sweep (worst shape)",
                     "~<= 2, else checkpointing", worst, worst <= 2.0])
        ck = [r for r in data["memory"]["rows"] if r["kind"] == "checkpointed"]
        if ck:
            worst_ck = max(r["peak_over_trajectory"] for r in ck)
            rows.append(["memory", "peak ÷ trajectory, recompute=True sweep (worst shape)",
                         "~<= 2", worst_ck, worst_ck <= 2.0])
    if "scaling" in data:
        sN = data["scaling"]["slopes"]["N"]["time"]
        rows.append(["scaling", "log-log slope of time against N", "<= 1.1 (linear)", sN,
                     sN <= 1.1])
    if "optim" in data:
        o = data["optim"]
        rows.append(["optimisation, digits λ=1e-3",
                     f"emsa sweeps to best Adam's final J (Adam: {fmt(o['adam_sweeps'])} sweeps)",
                     f"<= {fmt(o['adam_sweeps'])}",
                     o["emsa_sweeps_to_target"] if o["emsa_sweeps_to_target"] is not None
                     else "not reached", o["target_met"]])
    if "quality" in data:
        d = next(r for r in data["quality"]["results"] if r["dataset"] == "digits")
        rows.append(["quality, digits k=8", "test MSE ÷ PCA", "<= 0.8", d["ratio_to_pca"],
                     d["ratio_to_pca"] <= 0.8])
        rows.append(["quality, digits k=8", "test MSE ÷ MLP (same widths, same sweeps)",
                     "< 1", d["ratio_to_mlp"], d["ratio_to_mlp"] < 1.0])
    if "distributed" in data:
        counts = data["distributed"]["counting"]["rows"]
        ok = all(r["match"] and r["ranks_agree"] for r in counts)
        rows.append(["distributed", "all-reduced floats per iteration = 1 + dim θ per sweep "
                     "(+1 per extra E-MSA trial, +1 per mini-batch)", "exact",
                     "matches" if ok else "differs", ok])
    return {"rows": rows, "markdown": table(["area", "measure", "target", "value", "met"], rows)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run every autoencode benchmark.")
    parser.add_argument("--quick", action="store_true",
                        help="short versions of every benchmark (about a minute)")
    parser.add_argument("--out", type=Path, default=common.DEFAULT_OUT,
                        help="results folder (default: benchmarks/results)")
    parser.add_argument("--only", default=None,
                        help="comma-separated subset: " + ",".join(m.NAME for m in MODULES))
    args = parser.parse_args(argv)
    common.setup()
    info = common.machine()
    only = None if args.only is None else set(args.only.split(","))
    start = time.perf_counter()
    results = []
    for module in MODULES:
        if only is not None and module.NAME not in only:
            continue
        t0 = time.perf_counter()
        print(f"[{module.NAME}] running ...", file=sys.stderr, flush=True)
        try:
            result = module.run(args.quick, args.out)
        except Exception as exc:  # keep going: one broken benchmark must not hide the rest
            tb = traceback.format_exc()
            print(tb, file=sys.stderr)
            result = {"name": module.NAME, "title": module.TITLE,
                      "markdown": f"**failed**: `{type(exc).__name__}: {exc}`",
                      "data": {"error": tb}}
        seconds = time.perf_counter() - t0
        result["data"]["benchmark_seconds"] = seconds
        result["markdown"] += f"\n\n_({module.NAME}: {seconds:.0f} s)_"
        results.append(result)
        print(f"[{module.NAME}] done in {seconds:.1f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - start
    info["load_average_at_end"] = [round(v, 2) for v in __import__("os").getloadavg()]
    summ = summary(results)
    head = {"name": "summary", "title": "Targets (DESIGN 4) at a glance",
            "markdown": summ["markdown"], "data": {"rows": summ["rows"]}}
    json_path, md_path = common.write_results([head] + results, args.out, info, wall,
                                              args.quick)
    print(md_path.read_text())
    print(f"\nwall time {wall:.0f} s; wrote {md_path} and {json_path}", file=sys.stderr)
    return 1 if any("error" in r["data"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
