"""GPU check: CUDA results equal CPU results, and how fast a sweep runs on the GPU.

    python benchmarks/gpu_check.py [--out DIR] [--repeats 10] [--threads N]
    python benchmarks/gpu_check.py --allow-cpu   # no GPU: run every check with "cpu" on
                                                 # both sides (exercises the code path)

Not part of ``run_all.py``: run it by hand on a machine with a CUDA device (about a minute
on one GPU, well under 5). Without CUDA (and without ``--allow-cpu``) it prints
"no CUDA device: nothing to check" and exits with status 0.

Checks (float64, digits rows 0..499, widths 64,32,16,8,16,32,64, 2 steps per width, T = 4,
λ = 1e-3, seed 0):

1. training: ``AutoencODE(device=cpu).fit`` and ``AutoencODE(device=cuda).fit`` for a few
   iterations of ``emsa`` and of ``adam`` give the same controls,
   ``max |θ_cpu − θ_cuda| <= 1e-9 · max(1, max |θ_cpu|)``, and the same accept/reject
   decisions (sweep counts);
2. one sweep at the same random controls: ``|J_cpu − J_cuda| <= 1e-9 |J_cpu|`` and
   ``max |∇J_cpu − ∇J_cuda| <= 1e-9 max |∇J_cpu|``;
3. with >= 2 GPUs: ``distributed.fit(..., workers=2)`` over nccl equals the one-GPU fit
   (same tolerance); skipped with fewer (with ``--allow-cpu`` it runs over gloo on CPU).

Timing: one ``Adam().update`` (forward + costate sweep + Adam step) on the MNIST shape,
5000 x 784 uniform random data, widths 784,256,64,16,64,256,784, 2 steps per width
(K = 14), float32: median of ``--repeats`` calls after 2 warm-ups, with
``torch.cuda.synchronize()`` before and after each call on CUDA, against the same on the
CPU (``--threads`` torch threads, default: all usable cores); GFLOP/s = the sweep's GEMM
FLOPs (``common.sweep_flops``) over the median. On CUDA a second row allows TF32 matmuls.

Exit status: 0 when every check passes (or there is nothing to check), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402  first: sets OMP_WAIT_POLICY before torch is loaded

try:  # run from a plain checkout (no editable install), e.g. on a fresh GPU machine
    import autoencode  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(HERE.parent / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import DIGITS, LAM, MNIST, fmt, table  # noqa: E402

NAME = "gpu_check"
RTOL = 1e-9
SMALL = dict(widths=DIGITS["widths"], steps_per_width=2, T=4.0, lam=LAM, seed=0,
             dtype="float64")
ROWS = 500


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(1.0, float(np.abs(a).max())))


def check_training(X, dev_a: str, dev_b: str, iters: int) -> list[dict]:
    from autoencode import AutoencODE
    out = []
    for method in ("emsa", "adam"):
        a = AutoencODE(**SMALL, method=method, max_iter=iters, device=dev_a).fit(X)
        b = AutoencODE(**SMALL, method=method, max_iter=iters, device=dev_b).fit(X)
        err = _rel(a.get_controls(), b.get_controls())
        same_sweeps = [r["sweeps"] for r in a.history_] == [r["sweeps"] for r in b.history_]
        J_err = max(abs(r1["J"] - r2["J"]) / abs(r1["J"]) for r1, r2 in zip(a.history_, b.history_))
        out.append({"check": f"training, {method}, {iters} iterations: controls",
                    "value": err, "tolerance": RTOL, "ok": err <= RTOL and same_sweeps,
                    "detail": f"max rel. J difference {J_err:.2e}; same sweep counts: "
                              f"{same_sweeps}"})
    return out


def check_sweep(X, dev_a: str, dev_b: str) -> list[dict]:
    x = torch.as_tensor(X, dtype=torch.float64)
    results = []
    for dev in (dev_a, dev_b):
        problem, theta = common.build_problem(SMALL["widths"], SMALL["steps_per_width"],
                                              SMALL["T"], x.to(dev), LAM, seed=0)
        sweep = problem.sweep(theta)
        results.append((sweep.J, sweep.grad.cpu().numpy()))
    (Ja, ga), (Jb, gb) = results
    eJ = abs(Ja - Jb) / abs(Ja)
    eg = float(np.abs(ga - gb).max() / np.abs(ga).max())
    return [{"check": "one sweep: J", "value": eJ, "tolerance": RTOL, "ok": eJ <= RTOL,
             "detail": f"J = {Ja:.17g}"},
            {"check": "one sweep: ∇J (max abs diff / max abs)", "value": eg, "tolerance": RTOL,
             "ok": eg <= RTOL, "detail": f"dim θ = {ga.size}"}]


def check_two_processes(X, device: str, iters: int) -> list[dict]:
    import torch.distributed as dist
    from autoencode import AutoencODE, distributed
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda") and torch.cuda.device_count() < 2:
        return [{"check": "2-process nccl equals 1 process", "value": None, "tolerance": RTOL,
                 "ok": None, "detail": f"skipped: {torch.cuda.device_count()} GPU(s), need 2"}]
    if backend == "nccl" and not dist.is_nccl_available():
        return [{"check": "2-process nccl equals 1 process", "value": None, "tolerance": RTOL,
                 "ok": None, "detail": "skipped: torch built without nccl"}]
    out = []
    for method in ("emsa", "adam"):
        kw = dict(SMALL, method=method, max_iter=iters, device=device)
        single = AutoencODE(**kw).fit(X)
        sharded = distributed.fit(AutoencODE(**kw), X, workers=2)
        err = _rel(single.get_controls(), sharded.get_controls())
        same = [r["sweeps"] for r in single.history_] == [r["sweeps"] for r in sharded.history_]
        out.append({"check": f"2-process {backend} equals 1 process, {method}",
                    "value": err, "tolerance": RTOL, "ok": err <= RTOL and same,
                    "detail": f"same sweep counts: {same}"})
    return out


def time_update(device: str, repeats: int, tf32: bool = False) -> dict:
    from autoencode.methods import Adam
    x = common.random_data(MNIST["N"], MNIST["widths"][0]).to(device)
    problem, theta = common.build_problem(MNIST["widths"], MNIST["spw"], MNIST["T"], x, LAM)
    adam = Adam(lr=1e-2)
    state = adam.init(problem, theta)
    cuda = device.startswith("cuda")
    old = torch.backends.cuda.matmul.allow_tf32 if cuda else None
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        times = []
        for i in range(2 + repeats):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            adam.update(problem, state)
            if cuda:
                torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - start)
    finally:
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = old
    flops = common.sweep_flops(problem.flow.profile, MNIST["N"])
    med = statistics.median(times)
    return {"device": device, "tf32": tf32, "median_s": med, "min_s": min(times),
            "gflops": flops / med / 1e9, "flops": flops, "times": times}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allow-cpu", action="store_true",
                        help="without CUDA, run every check with device 'cpu' on both sides")
    parser.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="results folder")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per device")
    parser.add_argument("--iters", type=int, default=5, help="training iterations compared")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: all usable cores)")
    args = parser.parse_args(argv)

    has_cuda = torch.cuda.is_available()
    if not has_cuda and not args.allow_cpu:
        print("no CUDA device: nothing to check")
        return 0
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    device = "cuda" if has_cuda else "cpu"
    start = time.perf_counter()
    info = common.machine()
    if has_cuda:
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = f"{props.name}, {props.total_memory / 2 ** 30:.0f} GiB, " \
                      f"{torch.cuda.device_count()} device(s), CUDA {torch.version.cuda}"
    else:
        info["gpu"] = "none (--allow-cpu: 'cuda' side replaced by 'cpu')"
    from autoencode.data import digits
    X = digits().X[:ROWS]

    checks = check_sweep(X, "cpu", device)
    checks += check_training(X, "cpu", device, args.iters)
    checks += check_two_processes(X, device, args.iters)
    timings = [time_update("cpu", args.repeats), time_update(device, args.repeats)]
    if has_cuda:
        timings.append(time_update(device, args.repeats, tf32=True))
    wall = time.perf_counter() - start

    failed = [c for c in checks if c["ok"] is False]
    md = [f"- {info['cpu']}, {threads} torch CPU thread(s); GPU: {info['gpu']}",
          f"- torch {info['torch']}; load average at start {info['load_average_at_start']}; "
          f"wall time {wall:.0f} s", "",
          f"Equality checks (float64, digits rows 0..{ROWS - 1}, widths {SMALL['widths']}, "
          f"2 steps per width, seed 0; 'cpu' vs '{device}'):", "",
          table(["check", "value", "tolerance", "pass", "detail"],
                [[c["check"], c["value"], c["tolerance"],
                  "skipped" if c["ok"] is None else c["ok"], c["detail"]] for c in checks]),
          "", f"Timing: one `Adam().update` (sweep + update) on the MNIST shape "
              f"({MNIST['N']} x {MNIST['widths'][0]}, widths {MNIST['widths']}, "
              f"{MNIST['spw']} steps per width), float32, median of {args.repeats} after 2 "
              f"warm-ups" + (", torch.cuda.synchronize() around each call" if has_cuda else "")
          + f"; {fmt(timings[0]['flops'] / 1e9)} GFLOP per sweep (GEMMs).", "",
          table(["device", "TF32", "median ms", "min ms", "GFLOP/s", "speed-up vs cpu"],
                [[t["device"], t["tf32"] if t["device"] != "cpu" else "-", t["median_s"] * 1e3,
                  t["min_s"] * 1e3, t["gflops"], timings[0]["median_s"] / t["median_s"]]
                 for t in timings]),
          "", "all checks passed" if not failed else
          f"**{len(failed)} check(s) FAILED**: " + ", ".join(c["check"] for c in failed)]
    text = "\n".join(md)
    print(f"## GPU check{' (--allow-cpu: cpu vs cpu)' if not has_cuda else ''}\n\n{text}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{NAME}.md").write_text(f"## GPU check\n\n{text}\n")
    (args.out / f"{NAME}.json").write_text(json.dumps(common.jsonable(
        {"machine": info, "allow_cpu": not has_cuda, "threads": threads, "wall_time_s": wall,
         "checks": checks, "timings": timings}), indent=1))
    print(f"\n[{NAME}: {wall:.1f} s; written to {args.out}]", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
