"""Shared helpers of the benchmark suite: machine description, timing, models, tables.

Every benchmark module exposes ``run(quick: bool, out: Path) -> dict`` returning
``{"name", "title", "markdown", "data"}`` and a ``main()`` for running it alone.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

# Before torch is imported (libgomp reads it once): idle OpenMP threads sleep instead of
# spinning. On a machine shared with other processes the default (spinning) makes a
# 2-thread torch 10-100x slower on small operations; see README.md.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

THREADS = 2
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"

# The two shapes of the issue. Digits: the demo configuration. MNIST: random data of
# MNIST's shape; two steps per width keep the full suite within its time budget.
DIGITS = dict(name="digits", N=1797, widths=(64, 32, 16, 8, 16, 32, 64), spw=4, T=4.0)
MNIST = dict(name="mnist-shape", N=5000, widths=(784, 256, 64, 16, 64, 256, 784), spw=2, T=4.0)
LAM = 1e-3


def setup(threads: int = THREADS) -> None:
    """Fix the thread count (the suite is specified for 2 cores)."""
    torch.set_num_threads(threads)
    # sklearn/numpy BLAS: keep them from oversubscribing the cores as well
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


# ----------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = os.cpu_count()
    try:
        mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
        mem_gib = round(int(mem) / 2 ** 20, 1)
    except (OSError, StopIteration):
        mem_gib = None
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "memory_gib": mem_gib,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def machine_markdown(info: dict) -> str:
    return "\n".join([
        f"- CPU: {info['cpu']} ({info['logical_cores']} logical cores, "
        f"{info['usable_cores']} usable), {info['memory_gib']} GiB RAM",
        f"- torch {info['torch']} with {info['torch_threads']} threads, numpy {info['numpy']}, "
        f"Python {info['python']}",
        f"- {info['platform']}",
        f"- OMP_WAIT_POLICY={info.get('omp_wait_policy')}; date {info['date']}; "
        f"load average (1, 5, 15 min) at start {info['load_average_at_start']}"
        + (f", at end {info['load_average_at_end']}" if "load_average_at_end" in info else ""),
    ])


# ----------------------------------------------------------------------------- timing
def timeit(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> dict:
    """Median (and min/max) wall time of ``fn()`` in seconds over ``repeats`` calls after
    ``warmup`` untimed calls. The garbage collector is run before and paused during each
    call so that a collection of earlier garbage is not charged to it."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "times": times}


def timeit_interleaved(fns: dict, repeats: int = 5, warmup: int = 1) -> dict:
    """Like :func:`timeit` for several candidates, timed round-robin (candidate 1, 2, ...,
    then again), so that a burst of load from other processes is shared between them
    instead of falling on one."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
            finally:
                gc.enable()
    return {name: {"median": statistics.median(t), "min": min(t), "max": max(t), "times": t}
            for name, t in times.items()}


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


# ----------------------------------------------------------------------------- models
def build_problem(widths, spw, T, x: torch.Tensor, lam: float = LAM, seed: int = 0,
                  init_scale: float = 0.5):
    """The library's problem on data ``x`` (tanh layer field, Euler) and random controls
    drawn like the estimator's ``init="normal"``."""
    from autoencode.fields import Layer
    from autoencode.pmp import Flow, Problem
    from autoencode.profile import WidthProfile
    from autoencode.solvers import EULER

    profile = WidthProfile.build(widths, spw, T)
    flow = Flow(profile, Layer("tanh"), EULER)
    theta = flow.layout.initial("normal", init_scale, torch.Generator().manual_seed(seed),
                                x.dtype, x.device)
    return Problem(flow, x, lam), theta


def random_data(N: int, d: int, dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    """Uniform [0, 1) data (pixel-like), generated straight in ``dtype``."""
    return torch.rand(N, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def digits_data(dtype=torch.float32) -> torch.Tensor:
    from autoencode.data import digits
    return torch.as_tensor(digits().X, dtype=dtype)


def digits_split(seed: int = 0):
    """Full digits / 16, 80/20 split as the CLI does it (``train_test_split``, seed 0)."""
    from sklearn.model_selection import train_test_split
    from autoencode.data import digits
    X = digits().X
    train, test = train_test_split(X, test_size=0.2, random_state=seed)
    return np.ascontiguousarray(train), np.ascontiguousarray(test)


def s_curve_split(seed: int = 0, n: int = 1500):
    from sklearn.model_selection import train_test_split
    from autoencode.data import s_curve
    X = s_curve(n=n, seed=seed).X
    train, test = train_test_split(X, test_size=0.2, random_state=seed)
    return np.ascontiguousarray(train), np.ascontiguousarray(test)


def sweep_flops(profile, N: int) -> float:
    """GEMM FLOPs of one sweep: forward ``2 N w_j w_{j-1}`` per step, backward twice that
    (``g_a @ W`` and ``g_a^T @ u``). Element-wise work is not counted."""
    forward = sum(2.0 * N * a * b for a, b in zip(profile.input_widths, profile.step_widths))
    return 3.0 * forward


def trajectory_bytes(profile, N: int, itemsize: int) -> int:
    """Bytes of the stored trajectory ``x_0..x_K`` on active blocks (what a sweep keeps)."""
    widths = (profile.d,) + tuple(profile.step_widths)
    return int(sum(N * w * itemsize for w in widths))


# ----------------------------------------------------------------------------- output
def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if value != value:  # NaN
        return "nan"
    if value == 0:
        return "0"
    a = abs(value)
    if a >= 1e5 or a < 1e-3:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if a < 1000 else f"{value:.0f}"


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines)


def jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj


def write_results(results: list[dict], out: Path, info: dict, wall: float,
                  quick: bool) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, "quick": quick, "wall_time_s": wall,
               "benchmarks": {r["name"]: r["data"] for r in results}}
    json_path = out / "results.json"
    json_path.write_text(json.dumps(jsonable(payload), indent=1))
    parts = ["# autoencode benchmark results" + (" (quick)" if quick else ""), "",
             machine_markdown(info), f"- wall time of the run: {wall:.0f} s", ""]
    for r in results:
        parts += [f"## {r['title']}", "", r["markdown"].strip(), ""]
    md_path = out / "results.md"
    md_path.write_text("\n".join(parts))
    return json_path, md_path


def standalone(run: Callable[[bool, Path], dict], description: str) -> None:
    """``main()`` of a benchmark module run on its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="short version (about a minute)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    args = parser.parse_args()
    setup()
    info = machine()
    start = time.perf_counter()
    result = run(args.quick, args.out)
    wall = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{result['name']}.json").write_text(
        json.dumps(jsonable({"machine": info, "quick": args.quick, "wall_time_s": wall,
                             "data": result["data"]}), indent=1))
    (args.out / f"{result['name']}.md").write_text(
        f"## {result['title']}\n\n{machine_markdown(info)}\n- wall time {wall:.0f} s\n\n"
        f"{result['markdown'].strip()}\n")
    print(f"## {result['title']}\n\n{result['markdown']}")
    print(f"\n[{result['name']}: {wall:.1f} s; written to {args.out}]", file=sys.stderr)
