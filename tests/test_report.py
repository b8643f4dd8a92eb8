"""report.html is self-contained and complete; figures are drawn without pyplot state."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from autoencode import AutoencODE, cli, plotting, report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    code = cli.main(["train", "--data", "s-curve", "--n", "150", "--iters", "3", "--out",
                     str(out), "--quiet"])
    assert code == 0
    return out


def test_report_is_self_contained(small_run):
    html = (small_run / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html and "https://" not in html
    assert 'src="figures/' not in html and "<script" not in html and "<link" not in html
    sources = re.findall(r'<img src="([^"]*)"', html)
    assert len(sources) == len(list((small_run / "figures").glob("*.png"))) == 5
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "url(" not in html


def test_report_contains_metrics_and_config(small_run):
    html = (small_run / "report.html").read_text(encoding="utf-8")
    metrics = json.loads((small_run / "metrics.json").read_text())
    for key in ("test_mse", "train_mse", "pca_test_mse"):
        assert report._num(metrics[key]) in html, key
    assert f"{metrics['ratio_to_pca']:.3f}" in html
    assert "emsa (this run)" in html and "adam (comparison)" in html and "PCA (k = 2)" in html
    assert "s-curve" in html and "3 → 2 → 3" in html
    for name in ("Training curves", "Width profile", "Particle trajectories", "Latent codes",
                 "Controls"):
        assert name in html
    assert html.count("<figcaption>") == 5


def test_report_escapes_text():
    config = {"data": "<script>alert(1)</script>.csv", "widths": [3, 1, 3], "method": "emsa"}
    metrics = {"method": "emsa", "latent_dim": 1, "test_mse": 0.5, "pca_test_mse": 1.0,
               "ratio_to_pca": 0.5, "status": "diverged", "diverged_at": 4,
               "data_name": "<b>x</b>"}
    html = report.render_report(config, metrics, [])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "diverged" in html and "50% below" in html


def _model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 16))
    return AutoencODE(widths=(16, 8, 4, 8, 16), steps_per_width=2, max_iter=2).fit(X), X


def test_figures_return_paths_and_leave_no_pyplot_state(tmp_path):
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    model, X = _model()
    paths = plotting.draw_all(tmp_path, model, {"emsa": model.history_}, X=X,
                              y=np.arange(40) % 3)
    assert [p.stem for p in paths] == ["training", "profile", "trajectories", "latent",
                                       "reconstructions", "controls"]
    for p in paths:
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == before


def test_reconstructions_only_for_square_images(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 5))
    model = AutoencODE(widths=(5, 2, 5), max_iter=1).fit(X)
    assert plotting.reconstructions_figure(model, X, tmp_path / "r.png") is None
    assert not (tmp_path / "r.png").exists()
    assert plotting.is_image_data(64) and plotting.is_image_data(784)
    assert not plotting.is_image_data(4) and not plotting.is_image_data(50)


def test_latent_histogram_for_k1(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    model = AutoencODE(widths=(2, 1, 2), max_iter=1).fit(X)
    assert plotting.latent_figure(model, X, tmp_path / "l.png", y=np.arange(30) % 2).is_file()


@pytest.mark.skipif(shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists(),
                    reason="chromium is not installed")
def test_screenshot_renders(small_run, tmp_path):
    png = tmp_path / "shot.png"
    result = subprocess.run(["bash", str(ROOT / "scripts" / "screenshot_report.sh"),
                             str(small_run), str(png), "1000", "1400"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert png.stat().st_size > 20_000
    from PIL import Image
    image = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert image.shape == (1400, 1000)
    assert image.std() > 10  # not a blank page
