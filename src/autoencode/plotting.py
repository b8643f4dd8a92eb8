"""Figures of a run: training curves, width profile, particle trajectories, latent codes,
reconstructions and controls.

Every function draws one figure on a standalone :class:`matplotlib.figure.Figure` with the
Agg canvas (no pyplot, so no global state is touched and nothing needs closing), writes it
atomically as a PNG and returns the path written. :func:`draw_all` draws every figure that
applies to a run; :func:`caption` gives the caption the report prints under each.

matplotlib is an optional dependency (``pip install autoencode[plot]``); a missing
matplotlib raises a one-line :class:`~autoencode.errors.ConfigError`.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .errors import ConfigError
from .io import atomic_write_bytes

__all__ = [
    "DPI",
    "new_figure",
    "FIGURES",
    "caption",
    "controls_figure",
    "draw_all",
    "is_image_data",
    "latent_figure",
    "profile_figure",
    "reconstructions_figure",
    "trajectories_figure",
    "training_figure",
]

#: Figure names, in report order.
FIGURES = ("training", "profile", "trajectories", "latent", "reconstructions", "controls")

DPI = 90
_PHASE_COLOURS = {"encoder": "#4c72b0", "bottleneck": "#dd8452", "decoder": "#55a868"}
_PHASE_FILL = {"encoder": "#e3ebf7", "bottleneck": "#fbe9dc", "decoder": "#e2f1e5"}
_METHOD_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


# --------------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------------

def new_figure(width: float, height: float):
    """A standalone figure on the Agg canvas (no pyplot state), shared by every figure of
    the library."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigError("drawing figures needs matplotlib; install it with "
                          "pip install 'autoencode[plot]'") from None
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _phases(profile):
    """``(t_bottleneck_start, t_bottleneck_end)``: the bottleneck is the steps of width k;
    its end ``t_{j*+1}`` is where the latent code is read."""
    times = profile.times()
    widths = profile.step_widths
    first = widths.index(profile.k)
    return times[first], times[profile.bottleneck_step + 1]


def _shade_phases(ax, profile, labels: bool = False):
    t0, t1 = _phases(profile)
    spans = (("encoder", 0.0, t0), ("bottleneck", t0, t1), ("decoder", t1, profile.T))
    for name, a, b in spans:
        if b > a:
            ax.axvspan(a, b, color=_PHASE_FILL[name], zorder=0, lw=0,
                       label=name if labels else None)
    ax.set_xlim(0.0, profile.T)


def _log_y(ax):
    """Log y axis labelled in plain numbers, with denser labels when the data spans less
    than a few decades (call after plotting)."""
    from matplotlib import ticker
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 10.0
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1 else (1.0, 2.0, 5.0) if decades < 3 \
        else (1.0,)
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def _is_discrete(y: np.ndarray) -> bool:
    return y.dtype.kind in "iub" or (np.all(np.isfinite(y)) and np.all(y == np.round(y))
                                     and len(np.unique(y)) <= 20)


def _coordinate_name(model) -> str:
    return "principal axis" if getattr(model, "pca_align", False) else "coordinate"


def is_image_data(d: int) -> bool:
    """Data with ``d`` features is shown as images when ``d`` is a square of a side >= 4."""
    side = math.isqrt(d)
    return side >= 4 and side * side == d


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def training_figure(histories: dict, path) -> Path:
    """Objective J, MSE and PMP residual against sweeps (top row) and wall-clock seconds
    (bottom row), one line per method, log scale.

    ``histories`` maps a method name to its list of per-iteration dicts (keys ``J``,
    ``mse``, ``residual``, ``sweeps``, ``seconds``), the first one being the run's method.
    """
    fig = new_figure(10.5, 5.8)
    axes = fig.subplots(2, 3)
    quantities = (("J", "objective J"), ("mse", "MSE per component"),
                  ("residual", "PMP residual |∇θ H|"))
    xs = (("sweeps", "sweeps (forward + costate passes)"), ("seconds", "wall-clock time (seconds)"))
    for row, (xkey, xlabel) in enumerate(xs):
        for col, (ykey, ylabel) in enumerate(quantities):
            ax = axes[row, col]
            for i, (name, history) in enumerate(histories.items()):
                x = np.array([float(h[xkey]) for h in history], dtype=float)
                y = np.array([float(h[ykey]) for h in history], dtype=float)
                keep = np.isfinite(x) & np.isfinite(y) & (y > 0)
                ax.plot(x[keep], y[keep], color=_METHOD_COLOURS[i % len(_METHOD_COLOURS)],
                        lw=1.6 if i == 0 else 1.2, label=name,
                        marker="o" if keep.sum() < 3 else None)
            _log_y(ax)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, which="major", alpha=0.3)
            if row == 0:
                ax.set_title(ylabel)
    axes[0, 0].legend(title="method", fontsize=9)
    fig.suptitle("Training: objective, reconstruction error and optimality", fontsize=12)
    return _save(fig, path)


def profile_figure(profile, path) -> Path:
    """The active width ``w_j`` against time ``t`` (a step function), phases shaded and the
    bottleneck (where the latent code is read) marked."""
    fig = new_figure(7.5, 3.9)
    ax = fig.subplots()
    _shade_phases(ax, profile, labels=True)
    times = np.asarray(profile.times())
    widths = np.asarray(profile.step_widths)
    ax.stairs(widths, times, color="#333333", lw=2, baseline=None, label="active width")
    t0, t1 = _phases(profile)
    ax.axhline(profile.k, color=_PHASE_COLOURS["bottleneck"], ls="--", lw=1,
               label=f"latent dimension k = {profile.k}")
    ax.axvline(t1, color="#8c2d04", lw=1.2, ls=":")
    ax.annotate(f"latent code z = x(t={t1:.3g})", xy=(t1, profile.k), xytext=(6, 12),
                textcoords="offset points", fontsize=9, color="#8c2d04")
    ax.set_xlabel("time t")
    ax.set_ylabel("active width (components)")
    ax.set_ylim(0, profile.d * 1.12)
    ax.set_yticks(sorted(set(profile.widths)))
    ax.set_title(f"Width profile {tuple(profile.widths)}: K = {profile.K} steps, "
                 f"h = {profile.h:.3g}, T = {profile.T:g}", fontsize=11)
    fig.legend(loc="outside lower center", fontsize=8, ncol=5, frameon=False)
    return _save(fig, path)


def trajectories_figure(model, X, path, n_particles: Optional[int] = None, seed: int = 0) -> Path:
    """Particle trajectories ``x(t)`` in the model's (aligned) coordinates.

    For ``d <= 3`` (and d >= 2): the paths themselves in the plane or in space, coloured by
    phase (encoder, bottleneck, decoder), with start, latent and end points marked. For
    larger ``d`` (or d = 1): component traces ``x_i(t)`` of a few particles for a few
    components (the first, the last latent one, the first one switched off, the last),
    phases shaded and times where the component is inactive hatched.
    """
    profile = model.flow_.profile
    d = profile.d
    rng = np.random.default_rng(seed)
    X = np.asarray(X)
    count = min(len(X), n_particles or (60 if 2 <= d <= 3 else 6))
    index = np.sort(rng.choice(len(X), size=count, replace=False))
    traj = model.trajectory(X[index])  # (K+1, n, d)
    times = np.asarray(profile.times())
    j0 = profile.step_widths.index(profile.k)      # x_{j0} is the state entering the bottleneck
    j1 = profile.bottleneck_step + 1               # x_{j1} is the latent code
    axis = _coordinate_name(model)
    if 2 <= d <= 3:
        fig = new_figure(7.0, 6.0)
        ax = fig.add_subplot(projection="3d" if d == 3 else None)
        segments = (("encoder", 0, j0), ("bottleneck", j0, j1), ("decoder", j1, profile.K))
        start_cloud = model.trajectory(X[np.sort(rng.choice(len(X), min(len(X), 600),
                                                            replace=False))])[0]
        ax.scatter(*start_cloud.T[:d], s=4, color="#bbbbbb", alpha=0.5, label="data x(0)")
        for i in range(count):
            for name, a, b in segments:
                if b > a:
                    ax.plot(*traj[a:b + 1, i, :d].T, color=_PHASE_COLOURS[name], lw=0.9,
                            alpha=0.8, label=name if i == 0 else None)
        ax.scatter(*traj[0, :, :d].T, s=14, facecolors="none", edgecolors="#333333",
                   label="start x(0)")
        ax.scatter(*traj[j1, :, :d].T, s=22, marker="D", color=_PHASE_COLOURS["bottleneck"],
                   edgecolors="k", linewidths=0.4, label=f"latent x({times[j1]:.3g})")
        ax.scatter(*traj[-1, :, :d].T, s=22, marker="x", color="k", label=f"end x({profile.T:g})")
        ax.set_xlabel(f"{axis} 1")
        ax.set_ylabel(f"{axis} 2")
        if d == 3:
            ax.set_zlabel(f"{axis} 3")
        else:
            ax.set_aspect("equal", adjustable="datalim")
        ax.legend(fontsize=8, loc="upper left", framealpha=0.85)
        ax.set_title(f"Paths of {count} particles, d = {d} → k = {profile.k} → d "
                     f"(time t from 0 to {profile.T:g})", fontsize=11)
        return _save(fig, path)
    k = profile.k
    comps = sorted({c for c in (0, 1, k - 1, k, d - 1) if 0 <= c < d})[:5]
    fig = new_figure(8.0, 1.55 * len(comps) + 1.0)
    axes = np.atleast_1d(fig.subplots(len(comps), 1, sharex=True))
    step_widths = np.asarray(profile.step_widths)
    for ax, c in zip(axes, comps):
        _shade_phases(ax, profile, labels=ax is axes[0])
        inactive = step_widths <= c  # x_{j+1} has component c zeroed
        for j in np.flatnonzero(inactive):
            ax.axvspan(times[j], times[j + 1], facecolor="none", edgecolor="#999999",
                       hatch="///", lw=0, zorder=0.5)
        for i in range(count):
            ax.plot(times, traj[:, i, c], lw=1.2, marker=".", ms=3,
                    color=_METHOD_COLOURS[i % len(_METHOD_COLOURS)] if count <= 4 else None)
        off = np.flatnonzero(inactive)
        role = ("latent" if c < k else
                f"inactive for t in [{times[off[0]]:.3g}, {times[off[-1] + 1]:.3g}]"
                if off.size else "always active")
        ax.set_ylabel(f"x_{c + 1}(t)")
        ax.set_title(f"component {c + 1} of {d} ({role})", fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("time t")
    fig.legend(loc="outside lower center", fontsize=8, ncol=3, frameon=False)
    fig.suptitle(f"Component traces of {count} particles ({axis} coordinates); hatched: "
                 f"inactive (held at 0)", fontsize=11)
    return _save(fig, path)


def latent_figure(model, X, path, y=None, label_name: str = "label") -> Path:
    """Latent codes ``z``: the first two coordinates as a scatter coloured by ``y`` (when
    given), or a histogram when ``k == 1``."""
    Z = model.transform(X)
    k = Z.shape[1]
    fig = new_figure(6.6, 5.2)
    ax = fig.subplots()
    y = None if y is None else np.asarray(y)
    discrete = y is not None and _is_discrete(y)
    if k == 1:
        if discrete:
            classes = np.unique(y)
            data = [Z[y == c, 0] for c in classes]
            ax.hist(data, bins=40, stacked=True, label=[str(_num(c)) for c in classes],
                    color=[_tab(i, len(classes)) for i in range(len(classes))])
            ax.legend(title=label_name, fontsize=8, ncol=2 if len(classes) > 6 else 1)
        else:
            ax.hist(Z[:, 0], bins=40, color=_METHOD_COLOURS[0], alpha=0.85)
        ax.set_xlabel("latent coordinate z₁")
        ax.set_ylabel("count (particles)")
        ax.set_title(f"Latent codes (k = 1) of {len(Z)} particles", fontsize=11)
        return _save(fig, path)
    if y is None:
        ax.scatter(Z[:, 0], Z[:, 1], s=6, alpha=0.7, color=_METHOD_COLOURS[0])
    elif discrete:
        classes = np.unique(y)
        for i, c in enumerate(classes):
            sel = y == c
            ax.scatter(Z[sel, 0], Z[sel, 1], s=8, alpha=0.75, color=_tab(i, len(classes)),
                       label=str(_num(c)))
        ax.legend(title=label_name, fontsize=8, markerscale=2,
                  ncol=2 if len(classes) > 6 else 1, loc="best", framealpha=0.85)
    else:
        sc = ax.scatter(Z[:, 0], Z[:, 1], s=6, alpha=0.8, c=y, cmap="viridis")
        fig.colorbar(sc, ax=ax, label=label_name)
    ax.set_xlabel("latent coordinate z₁")
    ax.set_ylabel("latent coordinate z₂")
    shown = "k = 2" if k == 2 else f"first two of k = {k}"
    ax.set_title(f"Latent codes of {len(Z)} particles ({shown})", fontsize=11)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def _num(c):
    return int(c) if float(c).is_integer() else c


def _tab(i: int, n: int):
    from matplotlib import colormaps
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return cmap(i % cmap.N)


def reconstructions_figure(model, X, path, pca=None, scaler=None, n: int = 10) -> Optional[Path]:
    """Originals, AutoencODE reconstructions and (if ``pca`` is given) PCA reconstructions
    of the first ``n`` rows of ``X`` as square images; ``None`` (nothing written) unless
    ``d`` is a square (see :func:`is_image_data`). ``scaler`` maps back to pixel units."""
    X = np.asarray(X)
    d = X.shape[1]
    if not is_image_data(d) or len(X) == 0:
        return None
    side = math.isqrt(d)
    X = X[:n]
    rows = [("original", X), ("AutoencODE", model.reconstruct(X))]
    if pca is not None:
        rows.append((f"PCA (k = {pca.n_components_})", pca.inverse_transform(pca.transform(X))))
    unscale = (lambda a: a) if scaler is None else scaler.inverse_transform
    shown = [(name, unscale(a)) for name, a in rows]
    lo, hi = float(shown[0][1].min()), float(shown[0][1].max())
    fig = new_figure(0.95 * len(X) + 1.3, 1.05 * len(rows) + 0.6)
    axes = np.atleast_2d(fig.subplots(len(rows), len(X)))
    for r, ((name, images), (_, scaled)) in enumerate(zip(shown, rows)):
        mse = float(np.mean((scaled - X) ** 2))
        for c in range(len(X)):
            ax = axes[r, c]
            ax.imshow(images[c].reshape(side, side), cmap="gray_r", vmin=lo, vmax=hi,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        label = name if r == 0 else f"{name}\nMSE {mse:.4f}"
        axes[r, 0].set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center")
    fig.suptitle(f"Test images ({side}×{side}) and their reconstructions", fontsize=11)
    return _save(fig, path)


def _row_norms(model) -> np.ndarray:
    """``(d, K)`` map of the norm of the control acting on each state component at each step
    (NaN where the component is inactive): ``|(W_j, b_j)_i|`` for the single-layer field,
    ``|A_j[i, :]|`` (the output row) for the two-layer field."""
    profile = model.flow_.profile
    params = model.flow_.layout.split(model.theta_.detach().cpu())
    out = np.full((profile.d, profile.K), np.nan)
    for j, (w, step) in enumerate(zip(profile.step_widths, params)):
        if len(step) == 3:   # two-layer: A_j (w_j, m) writes the state
            rows = step[2].double().norm(dim=1)
        else:                # single layer: row i of W_j and b_j[i]
            W, b = step[0].double(), step[1].double()
            rows = (W.pow(2).sum(1) + b.pow(2)).sqrt()
        out[:w, j] = rows.numpy()
    return out


def controls_figure(model, path) -> Path:
    """The controls ``θ(t)``: the norm ``|θ_j|`` of each step against time, and a heat map
    of per-row norms (rows = state component, columns = step; inactive cells masked)."""
    profile = model.flow_.profile
    theta = model.theta_.detach().cpu()
    norms = model.flow_.layout.step_norms(theta).double().numpy()
    times = np.asarray(profile.times())
    rows = _row_norms(model)
    fig = new_figure(8.5, 6.2)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 2.2))
    _shade_phases(top, profile, labels=True)
    top.stairs(norms, times, color="#333333", lw=1.8, baseline=None, label="|θ_j|")
    top.set_ylabel("|θ_j| (Frobenius)")
    top.set_ylim(0, max(float(norms.max()), 1e-12) * 1.15)
    top.set_title("Control norm per step", fontsize=10, loc="left")
    top.legend(fontsize=8, ncol=4, loc="upper left", framealpha=0.9)
    top.grid(True, alpha=0.3)
    from matplotlib import colormaps
    cmap = colormaps["viridis"].with_extremes(bad="#e6e6e6")
    image = bottom.imshow(np.ma.masked_invalid(rows), aspect="auto", cmap=cmap,
                          interpolation="nearest", origin="upper",
                          extent=(0.0, profile.T, profile.d + 0.5, 0.5))
    fig.colorbar(image, ax=bottom, label="row norm |θ_j[i, :]|", pad=0.01)
    t0, t1 = _phases(profile)
    for t in (t0, t1):
        if 0 < t < profile.T:
            bottom.axvline(t, color="white", lw=1, ls="--")
    bottom.set_xlabel("time t")
    bottom.set_ylabel("state component i")
    bottom.set_title("Per-component control norm (grey: inactive component)", fontsize=10,
                     loc="left")
    fig.suptitle(f"Controls θ(t), {profile.K} steps, {model.flow_.layout.size} parameters",
                 fontsize=11)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# All figures of a run
# --------------------------------------------------------------------------------------------

def draw_all(folder, model, histories: dict, X=None, y=None, pca=None, scaler=None,
             label_name: str = "label", warn: Optional[Callable[[str], None]] = None) -> list:
    """Draw every figure that applies into ``folder``; returns the paths written.

    ``X`` (scaled data, e.g. the test split) and ``y`` feed the data-dependent figures
    (trajectories, latent codes, reconstructions); without ``X`` those are skipped. A figure
    that fails to draw is reported through ``warn`` (one line) and skipped, so that a
    plotting problem never loses a trained model.
    """
    folder = Path(folder)
    trained = histories and any(len(h) for h in histories.values())
    jobs = [("training", lambda p: training_figure(histories, p)) if trained else None,
            ("profile", lambda p: profile_figure(model.flow_.profile, p)),
            ("controls", lambda p: controls_figure(model, p))]
    if X is not None and len(X) > 0:
        jobs += [("trajectories", lambda p: trajectories_figure(model, X, p)),
                 ("latent", lambda p: latent_figure(model, X, p, y=y, label_name=label_name)),
                 ("reconstructions",
                  lambda p: reconstructions_figure(model, X, p, pca=pca, scaler=scaler))]
    written = []
    for job in jobs:
        if job is None:
            continue
        name, draw = job
        try:
            path = draw(folder / f"{name}.png")
        except (ValueError, RuntimeError, TypeError, IndexError, MemoryError) as exc:
            if warn is not None:
                warn(f"could not draw {name}.png: {' '.join(str(exc).split())[:200]}")
            continue
        if path is not None:
            written.append(path)
    order = {name: i for i, name in enumerate(FIGURES)}
    return sorted(written, key=lambda p: order.get(p.stem, len(order)))


def caption(name: str, info: dict) -> str:
    """The report's caption for figure ``name``; ``info`` holds ``d``, ``latent_dim``,
    ``method``, ``comparison_method`` (or None) and ``split`` (which data is shown)."""
    d, k = info.get("d"), info.get("latent_dim")
    method, other = info.get("method", "the method"), info.get("comparison_method")
    shown = info.get("split", "test split")
    if name == "training":
        vs = f" and the comparison method {other}" if other else ""
        return (f"Training curves of {method}{vs}: the objective J (reconstruction error "
                f"summed over components plus the Tikhonov term), the mean squared error per "
                f"component, and the PMP residual |∇θH| (zero at a stationary point), against "
                f"sweeps (one forward + costate pass over all particles) and against wall-clock "
                f"seconds. Log scale.")
    if name == "profile":
        return (f"Width profile: the number of active state components at each time step. "
                f"Components switched off are held at zero, so the state passes through the "
                f"k = {k} dimensional bottleneck exactly; the latent code is the state at the "
                f"end of the bottleneck (dotted line).")
    if name == "trajectories":
        if d is not None and 2 <= d <= 3:
            return (f"Particle paths x(t) from the {shown} through encoder, bottleneck and "
                    f"decoder in the model's coordinates (centred and rotated to principal "
                    f"axes when PCA alignment is on). In the bottleneck only k = {k} "
                    f"coordinate(s) are free; the decoder carries the particles back.")
        return (f"Component traces x_i(t) of a few particles from the {shown} in the model's "
                f"coordinates: the first component, the last latent one, the first one "
                f"switched off and the last. Hatched spans: the component is inactive "
                f"(held at zero) there.")
    if name == "latent":
        if k == 1:
            return f"Histogram of the one-dimensional latent codes of the {shown}."
        return (f"Latent codes z (state at the end of the bottleneck) of the {shown}: the first "
                f"two of k = {k} coordinates, coloured by label where the data has labels.")
    if name == "reconstructions":
        return (f"Images from the {shown}: originals (top), AutoencODE reconstructions and "
                f"PCA reconstructions with the same k = {k}, with each row's MSE.")
    if name == "controls":
        return ("The learned controls θ(t) = (W(t), b(t)): the norm of each step's control "
                "against time (top) and the norm of the row acting on each state component "
                "(bottom; grey where the component is inactive). The Tikhonov term "
                "λ∫|θ|²dt keeps them small.")
    return name
