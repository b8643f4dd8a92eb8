"""``report.html``: one self-contained page per run (inline CSS, figures embedded as base64
``data:`` URIs, no scripts and no external resources), so it can be mailed or archived as a
single file."""

from __future__ import annotations

import base64
import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from .io import atomic_write_text

__all__ = ["render_report", "write_report"]

_CSS = """
:root { --ink:#1d2330; --muted:#5b6475; --line:#d9dee7; --accent:#1f5fa8; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1080px; margin:0 auto; padding:28px 32px 48px; background:#fff;
       min-height:100vh; box-shadow:0 0 0 1px var(--line); }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:19px; margin:34px 0 10px; padding-bottom:4px; border-bottom:2px solid var(--line); }
p.sub { color:var(--muted); margin:0 0 18px; }
.status { display:inline-block; padding:2px 10px; border-radius:12px; font-weight:600;
          font-size:13px; background:#e3f1e6; color:#1f6b34; }
.status.bad { background:#fbe3e3; color:#9b1c1c; }
.status.warn { background:#fdf1d8; color:#7a5200; }
.summary { font-size:16px; margin:14px 0 6px; }
.summary b { color:var(--accent); }
table { border-collapse:collapse; width:100%; font-size:14px; margin:6px 0 4px; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:right;
         white-space:nowrap; }
th { background:#eef1f6; font-weight:600; }
th:first-child, td:first-child { text-align:left; }
tr.main td { font-weight:600; }
td.best { color:#1f6b34; }
table.kv { width:auto; min-width:48%; }
table.kv td { text-align:left; white-space:normal; overflow-wrap:anywhere; }
table.kv td:first-child { color:var(--muted); padding-right:24px; }
.kvgrid { display:flex; flex-wrap:wrap; gap:0 32px; align-items:flex-start; }
.kvgrid table { flex:1 1 420px; }
.note { color:var(--muted); font-size:13px; margin:4px 0 0; }
figure { margin:26px 0 8px; }
figure img { display:block; max-width:100%; height:auto; margin:0 auto;
             border:1px solid var(--line); border-radius:4px; }
figcaption { color:var(--muted); font-size:14px; margin:8px auto 0; max-width:900px; }
figcaption b { color:var(--ink); }
footer { margin-top:40px; color:var(--muted); font-size:12px; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size:13px; }
"""

_TITLES = {"training": "Training curves", "profile": "Width profile",
           "trajectories": "Particle trajectories", "latent": "Latent codes",
           "reconstructions": "Reconstructions", "controls": "Controls θ(t)"}


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _num(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value == int(value) and abs(value) < 1e6:
            return f"{value:.1f}" if abs(value) < 10 and value != 0 else f"{int(value)}"
        return f"{value:.{digits}g}"
    return str(value)


def _ratio(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _status(status: Optional[str]) -> str:
    cls = "bad" if status == "diverged" else "warn" if status in ("stopped", "initialised") else ""
    return f'<span class="status {cls}">{_e(status or "unknown")}</span>'


def _metrics_table(metrics: dict) -> str:
    head = ("", "train MSE", "test MSE", "ratio to PCA", "final J", "PMP residual",
            "iterations", "sweeps", "time (s)", "status")
    rows = []
    main = metrics
    entries = [(f"{main.get('method')} (this run)", main, "main")]
    if metrics.get("comparison"):
        comp = metrics["comparison"]
        entries.append((f"{comp.get('method')} (comparison)", comp, ""))
    for name, m, cls in entries:
        rows.append(
            f'<tr class="{cls}"><td>{_e(name)}</td><td>{_num(m.get("train_mse"))}</td>'
            f'<td>{_num(m.get("test_mse"))}</td><td>{_ratio(m.get("ratio_to_pca"))}</td>'
            f'<td>{_num(m.get("J"))}</td><td>{_num(m.get("residual"), 3)}</td>'
            f'<td>{_num(m.get("iterations"))}</td><td>{_num(m.get("sweeps"))}</td>'
            f'<td>{_num(m.get("wall_time_s"), 3)}</td><td>{_status(m.get("status"))}</td></tr>')
    k = metrics.get("latent_dim")
    rows.append(
        f'<tr><td>PCA (k = {_e(k)})</td><td>{_num(metrics.get("pca_train_mse"))}</td>'
        f'<td>{_num(metrics.get("pca_test_mse"))}</td>'
        f'<td>{"1.000" if metrics.get("pca_test_mse") or metrics.get("pca_train_mse") else "–"}</td>'
        f'<td>–</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td></tr>')
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _kv_table(pairs) -> str:
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def _config_pairs(config: dict) -> list:
    scaling = config.get("scaling")
    kind = scaling.get("kind") if isinstance(scaling, dict) else scaling
    widths = config.get("widths")
    pairs = [
        ("widths", " → ".join(map(str, widths)) if isinstance(widths, list) else widths),
        ("latent dimension k", config.get("latent_dim")),
        ("steps per width", config.get("steps_per_width")),
        ("final time T", config.get("T")),
        ("field / activation", f"{config.get('field')} / {config.get('activation')}"),
        ("solver", config.get("solver")),
        ("method", config.get("method")),
        ("λ (Tikhonov)", config.get("lam")),
        ("iterations", config.get("iters")),
        ("learning rate", config.get("lr") if config.get("lr") is not None else "method default"),
        ("batch size", config.get("batch_size") or "full batch"),
        ("comparison", config.get("compare") or "none"),
    ]
    data_pairs = [
        ("data", config.get("data")),
        ("samples used", config.get("n") if config.get("n") is not None else "all"),
        ("scaling", kind),
        ("test fraction", config.get("test_fraction")),
        ("seed", config.get("seed")),
        ("device / dtype", f"{config.get('device')} / {config.get('dtype')}"),
        ("command", config.get("command")),
        ("autoencode version", config.get("autoencode")),
    ]
    return pairs, data_pairs


def _summary(metrics: dict) -> str:
    method, k = metrics.get("method"), metrics.get("latent_dim")
    ratio = metrics.get("ratio_to_pca")
    test = metrics.get("test_mse")
    which = "test" if test is not None else "training"
    mse = test if test is not None else metrics.get("train_mse")
    text = (f"{_e(method)} reached a {which} MSE of <b>{_num(mse)}</b> per component "
            f"with a k = {_e(k)} dimensional bottleneck")
    if ratio is not None:
        if ratio < 1:
            text += f", <b>{(1 - ratio) * 100:.0f}% below</b> PCA with the same k"
        else:
            text += f", <b>{(ratio - 1) * 100:.0f}% above</b> PCA with the same k"
    comp = metrics.get("comparison")
    if comp and comp.get("ratio_to_pca") is not None and comp.get(f"{which}_mse") is not None:
        text += (f"; {_e(comp.get('method'))} reached {_num(comp.get(f'{which}_mse'))} "
                 f"in {_num(comp.get('sweeps'))} sweeps")
    text += "."
    if metrics.get("status") == "diverged":
        text += (f" Training <b>diverged</b> at iteration {_e(metrics.get('diverged_at'))}; the "
                 f"model holds the last controls with a finite objective.")
    return f'<p class="summary">{text}</p>'


def render_report(config: dict, metrics: dict, figures) -> str:
    """The HTML page. ``figures``: ``(name, png_bytes, caption)`` triples, in order."""
    title = f"AutoencODE run: {metrics.get('data_name') or config.get('data')}"
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    model_pairs, data_pairs = _config_pairs(config)
    data_pairs = [("features d", metrics.get("d")), ("training samples", metrics.get("n_train")),
                  ("test samples", metrics.get("n_test"))] + data_pairs
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(metrics.get("method"))} · widths '
        f'{_e(" → ".join(map(str, metrics.get("widths") or [])))} · λ = {_e(metrics.get("lam"))}'
        f' · status {_status(metrics.get("status"))}</p>',
        _summary(metrics),
        "<h2>Results</h2>",
        _metrics_table(metrics),
        '<p class="note">MSE: mean squared reconstruction error per component, in the scaled '
        'units the model sees. Ratio to PCA: test MSE divided by the test MSE of PCA with the '
        'same latent dimension, fitted on the training split (below 1 is better). A sweep is '
        'one forward and one costate pass over all training particles.</p>',
        "<h2>Configuration</h2>",
        f'<div class="kvgrid">{_kv_table(model_pairs)}{_kv_table(data_pairs)}</div>',
    ]
    if figures:
        parts.append("<h2>Figures</h2>")
    for name, png, text in figures:
        data = base64.b64encode(png).decode("ascii")
        heading = _TITLES.get(name, name)
        parts.append(f'<figure id="{_e(name)}"><img src="data:image/png;base64,{data}" '
                     f'alt="{_e(heading)}"><figcaption><b>{_e(heading)}.</b> {_e(text)}'
                     f"</figcaption></figure>")
    parts.append(f"<footer>Written {created} by autoencode {_e(config.get('autoencode', ''))}. "
                 f"Files: model.safetensors, model.json, config.json, metrics.json, history.csv, "
                 f"figures/*.png.</footer></main></body></html>")
    return "\n".join(parts) + "\n"


def write_report(run_dir) -> Path:
    """Write ``run_dir/report.html`` from ``config.json``, ``metrics.json`` and
    ``figures/*.png``; returns its path."""
    from .plotting import FIGURES, caption
    from .run import read_json

    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json", "run configuration")
    metrics = read_json(run_dir / "metrics.json", "run metrics")
    comp = metrics.get("comparison") or {}
    info = {"d": metrics.get("d"), "latent_dim": metrics.get("latent_dim"),
            "method": metrics.get("method"), "comparison_method": comp.get("method"),
            "split": "test split" if metrics.get("n_test") else "training split"}
    order = {name: i for i, name in enumerate(FIGURES)}
    pngs = sorted((run_dir / "figures").glob("*.png"),
                  key=lambda p: (order.get(p.stem, len(order)), p.stem))
    figures = [(p.stem, p.read_bytes(), caption(p.stem, info)) for p in pngs]
    path = run_dir / "report.html"
    atomic_write_text(path, render_report(config, metrics, figures))
    return path
