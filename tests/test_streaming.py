"""Data larger than memory: memory-mapped .npy files trained by mini-batches from disk."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from autoencode import AutoencODE
from autoencode.data import load

KW = dict(widths=(8, 4, 2, 4, 8), steps_per_width=1, method="adam", batch_size=64,
          dtype="float64", max_iter=15, seed=1)


def test_streamed_equals_in_memory(tmp_path):
    X = np.random.default_rng(0).standard_normal((500, 8))
    np.save(tmp_path / "x.npy", X)
    mapped = load(str(tmp_path / "x.npy")).X
    streamed = AutoencODE(**KW).fit(mapped)
    in_memory = AutoencODE(**KW).fit(np.array(X))
    # same batches; only the order of particles inside a batch (a summation order) differs
    assert np.allclose(streamed.get_controls(), in_memory.get_controls(), rtol=0, atol=1e-12)
    # the reported objective is tracked on a fixed evaluation subset (all 500 rows here)
    assert streamed.history_[-1]["J"] == pytest.approx(streamed.objective(X), rel=1e-12)


def test_streaming_stays_within_memory_budget(tmp_path):
    """A 320 MB file trains with far less anonymous memory than its size."""
    path = tmp_path / "big.npy"
    rows, d = 400_000, 100
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(rows, d))
    rng = np.random.default_rng(0)
    for i in range(0, rows, 50_000):
        mm[i:i + 50_000] = rng.standard_normal((50_000, d))
    mm.flush()
    del mm
    budget_mb = 120
    script = textwrap.dedent(f"""
        import re
        from autoencode import AutoencODE
        from autoencode.data import load
        def anon_mb():
            text = open("/proc/self/status").read()
            return int(re.search(r"RssAnon:\\s+(\\d+)", text).group(1)) / 1024
        X = load({str(path)!r}).X
        base = anon_mb()
        peak = [0.0]
        def watch(i, state, metrics):
            peak[0] = max(peak[0], anon_mb() - base)
        AutoencODE(widths=({d}, 16, 4, 16, {d}), steps_per_width=1, method="adam",
                   batch_size=512, max_iter=20).fit(X, callback=watch)
        print(peak[0], anon_mb() - base)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    peak, end = map(float, result.stdout.split())
    file_mb = rows * d * 8 / 2 ** 20
    assert max(peak, end) < budget_mb < file_mb, (peak, end, file_mb)
