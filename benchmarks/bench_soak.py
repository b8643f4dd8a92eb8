"""Soak test: does a long training run with checkpointing leak memory?

    python benchmarks/bench_soak.py [--quick] [--iters N] [--out DIR]

Not part of ``run_all.py`` (it takes minutes): run it alone. A fresh subprocess trains
``AutoencODE(method="emsa")`` on digits (1797 x 64, widths 64,32,16,8,16,32,64, 4 steps
per width, T = 4, λ = 1e-3, float32, seed 0) for 3000 iterations (``--quick``: 300) with
``checkpoint_every=100`` to a temporary folder. The ``callback`` reads ``VmRSS`` from
``/proc/self/status`` every 50 iterations (and the checkpoint file's size); a checkpoint
write is detected as a change of the file's (inode, mtime) after an iteration (the file is
replaced atomically by rename). Reported: RSS before ``fit``, at the first, middle and last
sample, max − min over the samples, the least-squares slope of RSS against iteration in MiB
per 1000 iterations (after the first 10% of iterations: the verdict's; all samples; the
second half), the number of checkpoints
written, and the Python-side size of ``history_`` at the end (which grows by design: one
dict per iteration, also stored in every checkpoint). The verdict is "flat" when the slope
after the first 10% of iterations is under 1 MiB per 1000 iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402  first: sets OMP_WAIT_POLICY before torch is loaded
from common import DIGITS, LAM, fmt, table  # noqa: E402

NAME = "soak"
TITLE = "Soak (RSS over a long emsa run with checkpointing)"
EVERY = 50
CHECKPOINT_EVERY = 100
FLAT_MIB_PER_1000 = 1.0
FLOOR_WINDOW = 5  # samples per window of the floor (250 iterations)
WARMUP_FRACTION = 0.1  # samples in the first 10% of iterations are left out of the verdict
MIB = 2 ** 20


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _deep_size(obj, seen=None) -> int:
    """Bytes of a structure of dicts, lists and scalars (``sys.getsizeof`` summed)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        size += sum(_deep_size(v, seen) for v in obj)
    return size


def child(iters: int, result_path: str) -> None:
    """Runs in the subprocess: the training run, sampling RSS through ``callback``."""
    common.setup()
    from autoencode import AutoencODE
    from autoencode.checkpoint import load_checkpoint
    from autoencode.data import digits
    X = digits().X
    samples = []
    with tempfile.TemporaryDirectory(prefix="autoencode-soak-") as tmp:
        path = Path(tmp) / "checkpoint.safetensors"
        written = {"count": 0, "last": None}
        start = time.perf_counter()

        def callback(iteration, state, metrics):
            try:
                st = path.stat()
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                key, st = None, None
            if key is not None and key != written["last"]:
                written["count"] += 1
                written["last"] = key
            if iteration % EVERY == 0:
                samples.append({"iteration": iteration, "rss": _rss(),
                                "seconds": time.perf_counter() - start,
                                "checkpoint_bytes": st.st_size if st else 0,
                                "J": metrics["J"]})
            return False

        model = AutoencODE(widths=DIGITS["widths"], steps_per_width=DIGITS["spw"],
                           T=DIGITS["T"], method="emsa", lam=LAM, max_iter=iters, seed=0)
        rss_before = _rss()
        model.fit(X, callback=callback, checkpoint_path=path,
                  checkpoint_every=CHECKPOINT_EVERY)
        wall = time.perf_counter() - start
        final = load_checkpoint(path)
        result = {"iters": iters, "rss_before_fit": rss_before, "rss_after_fit": _rss(),
                  "samples": samples, "checkpoints_written": written["count"],
                  "expected_checkpoints": iters // CHECKPOINT_EVERY,
                  "final_checkpoint_iteration": final.iteration,
                  "final_checkpoint_bytes": path.stat().st_size,
                  "history_rows": len(model.history_),
                  "history_bytes": _deep_size(model.history_),
                  "fit_seconds": wall, "J_final": model.history_[-1]["J"],
                  "sweeps": model.history_[-1]["sweeps"], "status": model.status_,
                  "load_average_end": [round(v, 2) for v in os.getloadavg()]}
    Path(result_path).write_text(json.dumps(result))


def _floor(samples, window: int) -> list:
    """The lowest sample of each run of ``window`` samples: the baseline without the
    transient peaks (a sweep's freed buffers not yet returned to the OS)."""
    return [min(samples[i:i + window], key=lambda x: x["rss"])
            for i in range(0, len(samples), window)]


def _slope(samples) -> float:
    import numpy as np
    if len(samples) < 2:
        return float("nan")
    it = np.array([s["iteration"] for s in samples], float)
    rss = np.array([s["rss"] for s in samples], float) / MIB
    return float(np.polyfit(it, rss, 1)[0] * 1000)


def run(quick: bool, out: Path, iters: int | None = None) -> dict:
    iters = iters or (300 if quick else 3000)
    with tempfile.TemporaryDirectory(prefix="autoencode-soak-result-") as tmp:
        result_path = Path(tmp) / "result.json"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                               str(iters), str(result_path)], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"soak child failed (status {proc.returncode}):\n{proc.stderr}")
        r = json.loads(result_path.read_text())
    s = r["samples"]
    rss = [x["rss"] for x in s]
    warm = [x for x in s if x["iteration"] > WARMUP_FRACTION * iters] or s
    slope = _slope(warm)  # the verdict's slope: warm-up (first import, first write) dropped
    slope_all = _slope(s)
    slope_half = _slope(s[len(s) // 2:])
    floor = _floor(warm, FLOOR_WINDOW if len(warm) >= 4 * FLOOR_WINDOW else 1)
    slope_floor = _slope(floor)
    history_growth = r["history_bytes"] / MIB / r["history_rows"] * 1000
    first_ckpt = next((x["checkpoint_bytes"] for x in s if x["checkpoint_bytes"]), 0)
    flat = slope < FLAT_MIB_PER_1000
    mid = s[len(s) // 2]
    rows = [
        ["RSS before fit (MiB)", r["rss_before_fit"] / MIB],
        [f"RSS at start (iteration {s[0]['iteration']}) (MiB)", s[0]["rss"] / MIB],
        [f"RSS in the middle (iteration {mid['iteration']}) (MiB)", mid["rss"] / MIB],
        [f"RSS at end (iteration {s[-1]['iteration']}) (MiB)", s[-1]["rss"] / MIB],
        ["max − min over samples (MiB)", (max(rss) - min(rss)) / MIB],
        [f"slope from iteration {warm[0]['iteration']} on (MiB per 1000 iterations)",
         slope],
        ["slope, all samples (MiB per 1000 iterations)", slope_all],
        [f"slope of the floor (min of each {FLOOR_WINDOW} samples, from iteration "
         f"{warm[0]['iteration']} on) (MiB per 1000 iterations)", slope_floor],
        ["slope, second half (MiB per 1000 iterations)", slope_half],
        ["history_ size at end (MiB; Python objects)", r["history_bytes"] / MIB],
        ["history_ growth (MiB per 1000 iterations, by design)", history_growth],
        ["checkpoints written (expected)", f"{r['checkpoints_written']} "
                                           f"({r['expected_checkpoints']})"],
        ["checkpoint file after the first write / at end (kB)",
         f"{fmt(first_ckpt / 1e3)} / {fmt(r['final_checkpoint_bytes'] / 1e3)}"],
        ["final checkpoint iteration", r["final_checkpoint_iteration"]],
        ["J at end; sweeps; status", f"{fmt(r['J_final'], 4)}; {fmt(r['sweeps'])}; "
                                      f"{r['status']}"],
        ["training time (s); ms per iteration", f"{fmt(r['fit_seconds'])}; "
                                                 f"{fmt(r['fit_seconds'] / iters * 1e3)}"],
    ]
    share = f", {fmt(history_growth / slope * 100)}% of the slope" if slope > 0 else ""
    md = [f"emsa on digits, {iters} iterations, checkpoint every {CHECKPOINT_EVERY} to a "
          f"temporary folder, VmRSS sampled every {EVERY} iterations in the callback, in a "
          f"fresh subprocess (load average at end {r['load_average_end']}). Samples at "
          f"multiples of {CHECKPOINT_EVERY} are taken right after a checkpoint write.", "",
          table(["measure", "value"], rows), "",
          f"Verdict: **{'flat' if flat else 'growing'}** (slope {fmt(slope)} MiB per 1000 "
          f"iterations; threshold {FLAT_MIB_PER_1000:g}). The history_ list grows by "
          f"{fmt(history_growth)} MiB per 1000 iterations by design (one record per "
          f"iteration){share}; the floor of the samples (transient peaks of about one sweep's "
          f"buffers removed) rises by {fmt(slope_floor)} MiB per 1000 iterations. Every "
          f"checkpoint stores the whole history (as a float64 table), so the file grows "
          f"linearly too ({fmt((r['final_checkpoint_bytes'] - first_ckpt) / max(1, iters - CHECKPOINT_EVERY))} "
          f"bytes per iteration)."]
    return {"name": NAME, "title": TITLE, "markdown": "\n".join(md),
            "data": dict(r, slope_mib_per_1000=slope, slope_all_mib_per_1000=slope_all,
                         slope_second_half_mib_per_1000=slope_half,
                         slope_floor_mib_per_1000=slope_floor,
                         flat=flat, subprocess_wall_s=wall)}


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(int(argv[1]), argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 iterations instead of 3000")
    parser.add_argument("--iters", type=int, default=None, help="iterations (overrides --quick)")
    parser.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="results folder")
    args = parser.parse_args(argv)
    common.setup()
    info = common.machine()
    start = time.perf_counter()
    result = run(args.quick, args.out, args.iters)
    wall = time.perf_counter() - start
    info["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{NAME}.json").write_text(json.dumps(common.jsonable(
        {"machine": info, "quick": args.quick, "wall_time_s": wall, "data": result["data"]}),
        indent=1))
    (args.out / f"{NAME}.md").write_text(
        f"## {result['title']}\n\n{common.machine_markdown(info)}\n- wall time {wall:.0f} s\n\n"
        f"{result['markdown'].strip()}\n")
    print(f"## {result['title']}\n\n{common.machine_markdown(info)}\n- wall time {wall:.0f} s"
          f"\n\n{result['markdown']}")
    print(f"\n[{NAME}: {wall:.1f} s; written to {args.out}]", file=sys.stderr)


if __name__ == "__main__":
    main()
