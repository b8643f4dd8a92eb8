"""Sharded training over 2 gloo processes equals the single-process run (float64)."""

import numpy as np
import pytest

from autoencode import AutoencODE
from autoencode import distributed
from autoencode.errors import ConfigError

SETTINGS = dict(widths=(64, 16, 4, 16, 64), steps_per_width=1, dtype="float64", seed=3,
                max_iter=8)

CASES = [("emsa", None, 1e-3), ("adam", None, 1e-3), ("sgd", None, 1e-3),
         ("shooting", None, 10.0), ("adam", 30, 1e-3)]


@pytest.mark.parametrize("method, batch_size, lam", CASES)
def test_two_workers_equal_one(digits, method, batch_size, lam):
    X = digits[:101]  # odd: shards of unequal size
    kw = dict(SETTINGS, method=method, batch_size=batch_size, lam=lam)
    single = AutoencODE(**kw).fit(X)
    sharded = distributed.fit(AutoencODE(**kw), X, workers=2)
    a, b = single.get_controls(), sharded.get_controls()
    assert np.abs(a - b).max() <= 1e-9 * max(1.0, np.abs(a).max())
    assert [r["sweeps"] for r in single.history_] == [r["sweeps"] for r in sharded.history_]
    for r1, r2 in zip(single.history_, sharded.history_):
        assert r2["J"] == pytest.approx(r1["J"], rel=1e-9, abs=1e-12)
        if method == "emsa":
            assert r2["rho"] == r1["rho"]  # the same accept/reject decisions


def test_worker_count_validation(digits):
    with pytest.raises(ConfigError, match="workers must be a positive integer"):
        distributed.fit(AutoencODE(), digits[:10], workers=0)
    with pytest.raises(ConfigError, match="at most 3 workers"):
        distributed.fit(AutoencODE(widths=(64, 8, 64)), digits[:3], workers=4)
