"""Memory: peak memory of one iteration against the size of the stored trajectory.

Method (CPU, no allocator hooks): every configuration runs in a fresh subprocess. The
child calls ``mallopt(M_MMAP_THRESHOLD, 64 KiB)`` first, which pins glibc's mmap
threshold so that every tensor buffer of 64 KiB or more is its own mapping, returned to
the OS when the tensor is freed: the resident set size then follows the live tensor
bytes. It builds the data and controls, runs one warm-up iteration, resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``),
reads ``VmRSS`` as the baseline, runs one iteration and reads ``VmHWM``: the growth is the
iteration's peak memory (tensors plus whatever BLAS and the allocator add). Then it sets
glibc's thresholds to their steady-state maxima (mmap 32 MiB, trim 64 MiB: large blocks are
reused from the heap, as in a long run) and times a few iterations (median after a
warm-up); forcing every buffer through mmap would charge page faults to the timing.
The trajectory is ``x_0..x_K`` on the active blocks
(what the sweep must keep for its costate pass): ``N Σ_j w_j`` floats.

Rows: autoencode's ``Problem.sweep``; the same with ``segment = ceil(sqrt K)`` (the estimator's ``recompute=True``: keeps
every ``ceil(sqrt K)``-th state and recomputes segments: the compute-for-memory option);
peers (c) and (a) forward + backward for reference.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import common  # first: sets OMP_WAIT_POLICY before torch is loaded
from common import DIGITS, LAM, MNIST, table

NAME = "memory"
TITLE = "Memory (peak of one iteration against the stored trajectory)"
KINDS = {
    "sweep": "autoencode Problem.sweep",
    "checkpointed": "autoencode sweep, recompute (Problem segment=ceil(sqrt K))",
    "peer_c": "nn.Linear loop (c), fwd+bwd",
    "peer_a": "torchdiffeq masked (a), fwd+bwd",
}



def checkpointed_sweep(problem, theta):
    """The library's recomputing sweep (``AutoencODE(recompute=True)``)."""
    problem.segment = default_every(problem.flow.profile.K)
    try:
        return problem.sweep(theta)
    finally:
        problem.segment = None


def default_every(K: int) -> int:
    return max(1, math.ceil(math.sqrt(K)))


def stored_floats(profile, every: int | None, N: int) -> dict:
    """Floats per particle held at the peak, by the plain and the checkpointed sweep
    (states and ``σ'`` caches; the plain sweep stores all of them)."""
    K = profile.K
    widths = (profile.d,) + tuple(profile.step_widths)
    plain = sum(widths) + sum(profile.step_widths)
    every = default_every(K) if every is None else every
    starts = list(range(0, K, every))
    seg = max(sum(widths[s:min(s + every, K) + 1]) + sum(profile.step_widths[s:s + every])
              for s in starts)
    ckpt = sum(widths[s] for s in starts) + seg
    return {"plain": plain * N, "checkpointed": ckpt * N}

def _status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(config: dict) -> dict:
    """Runs inside the subprocess: one configuration, one kind."""
    import gc
    import statistics

    import torch

    common.setup()
    from peers import PEERS, peer_sweep

    x = common.random_data(config["N"], config["widths"][0])
    problem, theta = common.build_problem(config["widths"], config["spw"], config["T"], x, LAM)
    kind = config["kind"]
    if kind == "sweep":
        def fn():
            return problem.sweep(theta)
    elif kind == "checkpointed":
        def fn():
            return checkpointed_sweep(problem, theta)
    else:
        model = PEERS[kind.split("_")[1]][1](problem.flow.profile, theta)
        fn = peer_sweep(model, x)
    # 1. memory, with glibc's mmap threshold pinned at 64 KiB (set before the first
    #    iteration) so that freed tensors leave the RSS
    pinned = _mallopt(mmap_threshold=65536)
    fn()
    gc.collect()
    reset = _reset_peak()
    before = _status()
    result = fn()
    after = _status()
    del result
    # 2. time, with the allocator in glibc's steady state (large blocks reused from the heap)
    _mallopt(mmap_threshold=32 << 20, trim_threshold=64 << 20)
    times = []
    for _ in range(config["warmup"] + config["repeats"]):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times = times[config["warmup"]:]
    return {"peak_bytes": after["VmHWM"] - before["VmRSS"], "baseline_rss": before["VmRSS"],
            "peak_reset": reset, "mmap_threshold_pinned": pinned,
            "seconds": statistics.median(times), "threads": torch.get_num_threads()}


def _mallopt(mmap_threshold: int, trim_threshold: int | None = None) -> bool:
    """glibc ``mallopt(M_MMAP_THRESHOLD / M_TRIM_THRESHOLD)``; False where unavailable."""
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = bool(libc.mallopt(-3, mmap_threshold))  # M_MMAP_THRESHOLD
        if trim_threshold is not None:
            ok = bool(libc.mallopt(-1, trim_threshold)) and ok  # M_TRIM_THRESHOLD
        return ok
    except (OSError, AttributeError):
        return False


def _spawn(config: dict) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                           json.dumps(config)], capture_output=True, text=True,
                          cwd=str(common.HERE))
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed for {config}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_checkpointed() -> float:
    """float64: the checkpointed sweep against Problem.sweep (max abs difference)."""
    import torch
    worst = 0.0
    for widths, spw in ((DIGITS["widths"], 4), (DIGITS["widths"], 1), (MNIST["widths"], 2)):
        x = common.random_data(32, widths[0], torch.float64)
        problem, theta = common.build_problem(widths, spw, 4.0, x, LAM)
        a, b = problem.sweep(theta), checkpointed_sweep(problem, theta)
        worst = max(worst, float((a.grad - b.grad).abs().max()), abs(a.J - b.J))
    return worst


def run(quick: bool, out: Path) -> dict:
    from autoencode.profile import WidthProfile

    common.setup()
    check = _check_checkpointed()
    if quick:
        shapes = [dict(MNIST, N=1000, name="MNIST shape, N=1000")]
        kinds, repeats = ("sweep", "checkpointed"), 1
    else:
        shapes = [dict(DIGITS, name="digits, N=1797"),
                  # torchdiffeq (a) takes ~35 s per iteration here (its backward through
                  # the in-place writes of the solution tensor grows like K^2 N d)
                  dict(DIGITS, N=100000, name="digits shape, N=1e5", skip=("peer_a",)),
                  dict(MNIST, name="MNIST shape, N=5000")]
        kinds, repeats = tuple(KINDS), 3
    rows = []
    for shape in shapes:
        profile = WidthProfile.build(shape["widths"], shape["spw"], shape["T"])
        traj = common.trajectory_bytes(profile, shape["N"], 4)
        dense = (profile.K + 1) * shape["N"] * profile.d * 4
        model = stored_floats(profile, None, shape["N"])
        from autoencode.fields import Layer
        from autoencode.pmp import ControlLayout
        theta_bytes = 4 * ControlLayout(profile, Layer("tanh")).size
        for kind in kinds:
            if kind in shape.get("skip", ()):
                continue
            config = {k: shape[k] for k in ("N", "widths", "spw", "T")}
            config.update(kind=kind, repeats=repeats, warmup=1)
            res = _spawn(config)
            rows.append({"shape": shape["name"], "N": shape["N"], "K": profile.K,
                         "kind": kind, "trajectory_bytes": traj, "dense_trajectory_bytes": dense,
                         "model_bytes": 4 * model.get(kind, model["plain"]),
                         "theta_bytes": theta_bytes,
                         "checkpoint_every": default_every(profile.K), **res,
                         "peak_over_trajectory": res["peak_bytes"] / traj})
    mib = 2 ** 20
    md = [f"Peak = growth of the process's peak RSS during one iteration, in a fresh "
          f"subprocess per row (glibc mmap threshold pinned at 64 KiB so that freed tensors "
          f"leave the RSS, peak counter reset after a warm-up iteration); trajectory = `x_0..x_K` on active blocks, float32. "
          f"'model' is what the sweep holds by construction (states + σ' caches; for the "
          f"checkpointed sweep the checkpoints plus one segment); the rest of the peak is "
          f"costate/cotangent blocks and θ-sized buffers (the sweep allocates ∇J, λhθ and their "
          f"difference: about 3|θ|, which dominates the excess when |θ| is comparable to the "
          f"trajectory, as on the MNIST shape). Seconds: median of "
          f"{repeats} iterations after a warm-up, allocator in glibc's steady state. The checkpointed sweep keeps "
          f"every ceil(√K)-th state and equals `Problem.sweep` (float64, max |Δ| = {check:.1e} "
          f"over J and ∇J).", ""]
    md.append(table(["shape", "iteration", "trajectory MiB", "θ MiB", "peak MiB",
                     "peak ÷ trajectory", "model MiB", "seconds"],
                    [[r["shape"], KINDS[r["kind"]], r["trajectory_bytes"] / mib,
                      r["theta_bytes"] / mib, r["peak_bytes"] / mib, r["peak_over_trajectory"],
                      r["model_bytes"] / mib if r["kind"] in ("sweep", "checkpointed") else None,
                      r["seconds"]] for r in rows]))
    plain = [r for r in rows if r["kind"] == "sweep"]
    worst = max(r["peak_over_trajectory"] for r in plain)
    md += ["", f"Largest peak ÷ trajectory of `Problem.sweep`: {worst:.2f} "
               f"({'above' if worst > 2.0 else 'within'} the 2x threshold of the issue)."]
    ck = {r["shape"]: r for r in rows if r["kind"] == "checkpointed"}
    for r in plain:
        c = ck.get(r["shape"])
        if c:
            md.append(f"- {r['shape']}: checkpointing (every {c['checkpoint_every']} of "
                      f"{c['K']} steps) cuts the peak by {r['peak_bytes'] / max(c['peak_bytes'], 1):.1f}x "
                      f"at {c['seconds'] / r['seconds']:.2f}x the time.")
    return {"name": NAME, "title": TITLE, "markdown": "\n".join(md),
            "data": {"checkpointed_matches_sweep_max_abs": check, "rows": rows}}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
    else:
        common.standalone(run, __doc__.splitlines()[0])
