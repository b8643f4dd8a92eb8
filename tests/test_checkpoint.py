"""Checkpoints: resuming reaches the uninterrupted result bitwise (float64, CPU)."""

import numpy as np
import pytest

from autoencode import AutoencODE
from autoencode.checkpoint import load_checkpoint, save_checkpoint
from autoencode.errors import ConfigError, ModelFileError

SETTINGS = dict(widths=(64, 16, 4, 16, 64), steps_per_width=1, dtype="float64", seed=2)


@pytest.mark.parametrize("method, options", [
    ("emsa", {}), ("adam", {}), ("sgd", {"lr": 0.05}), ("shooting", {}),
    ("adam", {"batch_size": 40}),
])
def test_resume_is_bitwise_identical(digits, tmp_path, method, options):
    X = digits[:120]
    batch = options.pop("batch_size", None)
    lam = 10.0 if method == "shooting" else 1e-3
    kw = dict(SETTINGS, method=method, method_options=options or None, lam=lam, batch_size=batch)
    full = AutoencODE(max_iter=12, **kw).fit(X)
    path = tmp_path / "ckpt.safetensors"

    def save_at_7(iteration, state, metrics):
        if iteration == 7:
            save_checkpoint(path, partial.checkpoint(iteration, state))
            return True  # simulate an interruption right after the checkpoint

    partial = AutoencODE(max_iter=12, **kw)
    partial.fit(X, callback=save_at_7)
    assert partial.status_ == "stopped"
    resumed = AutoencODE(max_iter=12, **kw).fit(X, resume=load_checkpoint(path))
    assert np.array_equal(resumed.get_controls(), full.get_controls())
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]
    np.testing.assert_equal(strip(resumed.history_), strip(full.history_))  # NaN == NaN


def test_resume_refuses_other_settings_and_data(digits, tmp_path):
    X = digits[:60]
    model = AutoencODE(max_iter=3, **SETTINGS)
    path = tmp_path / "c.safetensors"
    model.fit(X, callback=lambda i, s, m: save_checkpoint(path, model.checkpoint(i, s)))
    ckpt = load_checkpoint(path)
    with pytest.raises(ConfigError, match="lam was 0.001 in the checkpoint but is 0.01"):
        AutoencODE(max_iter=5, **dict(SETTINGS, lam=0.01)).fit(X, resume=ckpt)
    with pytest.raises(ConfigError, match="training data differ"):
        AutoencODE(max_iter=5, **SETTINGS).fit(digits[1:61], resume=ckpt)
    AutoencODE(max_iter=5, **SETTINGS).fit(X, resume=ckpt)  # more iterations is fine


def test_damaged_checkpoints(tmp_path):
    path = tmp_path / "c.safetensors"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(ModelFileError, match="truncated or not a safetensors"):
        load_checkpoint(path)
    with pytest.raises(ModelFileError, match="not found"):
        load_checkpoint(tmp_path / "none.safetensors")
