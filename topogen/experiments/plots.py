"""Drawing for the notebooks: diagrams, clouds, animations, image grids, forest plots.

These functions draw and return figures (or GIF bytes); writing them is
:mod:`topogen.reproduce.figures`' job.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..reproduce.figures import gif_bytes, png_image

__all__ = ["plot_diagram", "plot_cloud", "plot_cloud3d", "animation_gif", "image_grid", "image_grid_panels",
           "mean_ci_band", "gradient_path_figure", "deformation_figure", "forest_plot", "architecture_figure",
           "DEGREE_COLORS"]

#: One color per homology degree, used by every diagram plot.
DEGREE_COLORS = {0: "#1f77b4", 1: "#d62728", 2: "#2ca02c"}


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_diagram(persistence_or_diagrams, ax=None, *, title: str | None = None, limit: float | None = None):
    """Plot a persistence diagram: both degrees, the diagonal, infinite classes on top.

    Parameters
    ----------
    persistence_or_diagrams : Persistence or dict
        A :class:`~topogen.persistence.Persistence`, or ``{degree: (k, 2) array}``
        with an optional ``"n_infinite": (n0, n1)`` entry.
    ax : matplotlib Axes, optional
    title : str, optional
    limit : float, optional
        Axis limit (default: a little above the largest finite death).
    """
    from ..persistence import Persistence

    if isinstance(persistence_or_diagrams, Persistence):
        pers = persistence_or_diagrams
        dgms = {d: _np(pers.diagram(d)) for d in range(pers.max_dim + 1)}
        n_inf = pers.n_infinite
    else:
        dgms = {d: _np(v).reshape(-1, 2) for d, v in persistence_or_diagrams.items() if d != "n_infinite"}
        n_inf = persistence_or_diagrams.get("n_infinite", ())
    ax = ax or plt.gca()
    finite = np.concatenate([v for v in dgms.values()] + [np.zeros((1, 2))])
    top = limit if limit is not None else max(float(finite.max()) * 1.1, 1e-3)
    ax.plot([0, top], [0, top], color="0.5", lw=0.8, zorder=0)
    for d, dgm in dgms.items():
        ax.scatter(dgm[:, 0], dgm[:, 1], s=12, color=DEGREE_COLORS[d], label=f"$H_{d}$ ({len(dgm)})", zorder=2)
    for d, count in enumerate(n_inf):
        if count:
            ax.scatter([0.0] * count, [top * 0.98] * count, marker="^", s=40, color=DEGREE_COLORS.get(d, "k"),
                       label=f"$H_{d}$ infinite ({count})", zorder=3)
    ax.axhline(top * 0.98, color="0.8", lw=0.6, ls="--", zorder=0)
    ax.set_xlim(-0.02 * top, top)
    ax.set_ylim(-0.02 * top, top * 1.02)
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=7)
    if title:
        ax.set_title(title)
    return ax


def plot_cloud(points, ax=None, *, title: str | None = None, color="#1f77b4", s: float = 10, lims=None):
    """Scatter a 2-D point cloud with equal axes (a 3-D cloud needs an ``Axes3D``: :func:`plot_cloud3d`)."""
    pts = _np(points).reshape(len(points), -1)
    if pts.shape[1] == 3 and getattr(ax, "name", "") == "3d":
        return plot_cloud3d(pts, ax, title=title, color=color, s=s, lims=lims)
    if pts.shape[1] != 2:
        raise ValueError(f"plot_cloud needs 2-D points (or a 3-D axes for 3-D points), got {pts.shape[1]}-D")
    ax = ax or plt.gca()
    ax.scatter(pts[:, 0], pts[:, 1], s=s, color=color)
    if lims is not None:
        ax.set_xlim(*lims[0])
        ax.set_ylim(*lims[1])
        ax.set_aspect("equal", adjustable="box")
    else:
        ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax


def plot_cloud3d(points, ax, *, title: str | None = None, color="#1f77b4", s: float = 10, lims=None,
                 azim: float = -60.0, elev: float = 20.0):
    """Scatter a 3-D point cloud on an ``Axes3D`` (``projection="3d"``) with equal, fixed limits."""
    pts = _np(points).reshape(len(points), -1)
    if pts.shape[1] != 3:
        raise ValueError(f"plot_cloud3d needs 3-D points, got {pts.shape[1]}-D")
    ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=s, color=color, depthshade=False)
    lims = lims or _square_limits(pts)
    ax.set_xlim(*lims[0])
    ax.set_ylim(*lims[1])
    ax.set_zlim(*lims[2])
    ax.set_box_aspect((1, 1, 1))
    ax.grid(False)  # axes and ticks stay; no rotating grid and pane fills (they dominate a GIF's size)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_pane_color((1.0, 1.0, 1.0, 0.0))
    ax.view_init(elev=elev, azim=azim)
    if title:
        ax.set_title(title)
    return ax


def _square_limits(*clouds, pad: float = 0.08):
    dim = _np(clouds[0]).reshape(len(clouds[0]), -1).shape[1]
    pts = np.concatenate([_np(c).reshape(-1, dim) for c in clouds])
    lo, hi = pts.min(0), pts.max(0)
    center, half = (lo + hi) / 2, (hi - lo).max() / 2 * (1 + pad) + 1e-9
    return tuple((c - half, c + half) for c in center)


def animation_gif(clouds, steps, *, target=None, title: str = "", duration_ms: int = 70, size: float = 4.4,
                  dpi: int = 100, turns: float = 1.0) -> bytes:
    """GIF bytes of a deforming cloud with axes and a step counter; a 3-D cloud rotates slowly.

    A module-level function of plain arguments, so that the animations of a
    notebook can be rendered side by side as units of
    :func:`topogen.reproduce.sweep.run_sweep` (also on a remote cluster, whose
    workers cannot write into this machine's figures folder) and written with
    :func:`topogen.reproduce.figures.save_rendered`. The bytes do not depend on
    the process that renders them.
    """
    if len(clouds) != len(steps) or not len(clouds):
        raise ValueError("clouds and steps must be non-empty and of equal length")
    dim = _np(clouds[0]).reshape(len(clouds[0]), -1).shape[1]
    if dim not in (2, 3):
        raise ValueError(f"animation_gif draws 2-D or 3-D clouds, got {dim}-D")
    extra = [target] if target is not None and dim == 2 else []
    lims = _square_limits(*clouds, *extra)
    frames = []
    fig = plt.figure(figsize=(size, size))
    for k, (cloud, step) in enumerate(zip(clouds, steps, strict=True)):
        fig.clear()
        if dim == 2:
            ax = fig.add_subplot()
            if target is not None:
                ax.scatter(*_np(target).T, s=10, color="0.8", label="target")
            plot_cloud(cloud, ax, s=10, lims=lims)
            ax.tick_params(labelsize=8)
        else:
            ax = fig.add_subplot(projection="3d")
            plot_cloud3d(cloud, ax, s=10, lims=lims, azim=-60.0 + 360.0 * turns * k / max(1, len(clouds) - 1))
            ax.tick_params(labelsize=7)
        ax.set_title(f"{title}\nstep {step:>6,}", fontsize=10, family="monospace")
        fig.tight_layout()
        frames.append(png_image(fig, dpi))
    plt.close(fig)
    # a rotating 3-D view redraws every pixel of every frame: fewer colors keep the file small
    return gif_bytes(frames, duration_ms, 10, colors=128 if dim == 2 else 32)


def _image_rows(axes, rows: dict, n: int, fontsize: float) -> None:
    """Draw one labelled row of ``n`` 28x28 grey images per entry of ``rows`` into a grid of axes."""
    for r, (label, images) in enumerate(rows.items()):
        imgs = _np(images).reshape(len(images), 28, 28)
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=fontsize)


def image_grid(rows: dict, ax_width: float = 0.9, n: int = 10):
    """A figure with one labelled row of ``n`` 28x28 images per entry of ``rows``."""
    fig, axes = plt.subplots(len(rows), n, figsize=(n * ax_width, len(rows) * ax_width + 0.3), squeeze=False)
    _image_rows(axes, rows, n, fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.12, right=0.99, top=0.95, bottom=0.02)
    return fig


def image_grid_panels(panels: dict, n: int = 10, ax_width: float = 0.62):
    """Several :func:`image_grid` panels one above the other, each ``{title: {row label: images}}``."""
    n_rows = max(len(rows) for rows in panels.values())
    fig = plt.figure(figsize=(n * ax_width + 0.9, len(panels) * (n_rows * ax_width + 0.7)))
    subfigs = np.atleast_1d(fig.subfigures(len(panels), 1, hspace=0.02))
    for sub, (title, rows) in zip(subfigs, panels.items(), strict=True):
        _image_rows(sub.subplots(n_rows, n, squeeze=False), rows, n, fontsize=8)
        sub.suptitle(title, fontsize=9)
        sub.subplots_adjust(wspace=0.04, hspace=0.04, left=0.14, right=0.99, top=0.86, bottom=0.02)
    return fig


def mean_ci_band(ax, x, values, label: str, color=None, confidence: float = 0.95):
    """Plot the mean over rows of ``values`` (seeds x steps) with a t-based CI band."""
    from .stats import mean_ci

    values = np.asarray(values, dtype=float)
    mean, half = np.array([mean_ci(col, confidence) for col in values.T]).T
    (line,) = ax.plot(x, mean, label=label, color=color)
    ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.25, lw=0)
    return ax


def gradient_path_figure(runs, models, *, window: int, title: str, caption: str = ""):
    """Share of seeds whose topological term had a gradient, step by step, as a centred moving average.

    Parameters
    ----------
    runs : list of dict
        Per seed, model name → run history whose ``topo_grad`` flags each step.
    models : sequence of str
        The models drawn, in colours ``C1``, ``C2``, … (``C0`` is the VAE's).
    window : int
        Steps of the moving average, shortened to the run when the run is shorter.
    title, caption : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    steps = len(runs[0][models[0]].topo_grad)
    window = min(window, steps)
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(1, steps + 1)
    for i, name in enumerate(models, start=1):
        frac = np.array([r[name].topo_grad for r in runs]).mean(0)
        ax.plot(x, np.convolve(frac, np.ones(window) / window, mode="same"), label=name, color=f"C{i}")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"share of seeds with a gradient\n({window}-step moving average)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.text(0.01, 0.01, caption, fontsize=6.5, color="0.3")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def deformation_figure(history, title: str = "", caption: str = ""):
    """Initial / target / final clouds over their diagrams, and the loss curve.

    Parameters
    ----------
    history : topogen.experiments.deformation.DeformationHistory
    title : str
    caption : str
        Printed under the figure (data, seeds, settings).
    """
    fig = plt.figure(figsize=(12, 6.2))
    grid = fig.add_gridspec(2, 4, width_ratios=[1, 1, 1, 1.25], hspace=0.35, wspace=0.35)
    target = history.target
    panels = [
        ("initial", history.clouds[0], history.diagrams[0], "#1f77b4"),
        ("target", target, history.target_diagrams, "0.35"),
        (f"final (step {history.snapshot_steps[-1]})", history.clouds[-1], history.diagrams[-1], "#2ca02c"),
    ]
    top = max(max((float(d.max()) if d.size else 0.0) for d in dg.values()) for _, _, dg, _ in panels) * 1.1
    three_d = np.asarray(target).shape[1] == 3
    lims = _square_limits(*[c for _, c, _, _ in panels]) if three_d else None
    for col, (label, cloud, dgms, color) in enumerate(panels):
        ax = fig.add_subplot(grid[0, col], projection="3d" if three_d else None)
        plot_cloud(cloud, ax, title=label, color=color, s=8, lims=lims)
        ax = fig.add_subplot(grid[1, col])
        n_inf = (1,) + (0,) * (len(dgms) - 1)
        plot_diagram({**dgms, "n_infinite": n_inf}, ax, limit=top)
    ax = fig.add_subplot(grid[:, 3])
    steps = np.arange(1, len(history.loss) + 1)
    for name, values in history.terms.items():
        ax.plot(steps, values, lw=1, label=name)
    fb = np.flatnonzero(history.fallback_steps)
    if fb.size:
        ax.plot(fb + 1, np.full(fb.size, ax.get_ylim()[0]), "|", color="0.4", ms=6, label="push0 fallback")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_xlabel("step")
    ax.set_ylabel("term value")
    ax.set_title("topological loss terms")
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=13)
    if caption:
        fig.text(0.01, 0.005, caption, fontsize=7.5, color="0.3", va="bottom")
    return fig


def forest_plot(table, metrics: dict, reference: str = "vae", fig=None, ncols: int = 4):
    """Paired differences (model − reference) with 95% CIs, one panel per metric, at most ``ncols`` a row.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`topogen.experiments.stats.evaluation_table`.
    metrics : dict
        ``{metric: (label, larger_is_better)}``.
    fig : matplotlib Figure or SubFigure, optional
        Draw into it (e.g. one part of a figure with ``layout="constrained"``);
        default: a new figure.
    ncols : int
        Panels per row (4 keeps a figure readable at GitHub's 880 px).
    """
    models = [m for m in dict.fromkeys(table["model"]) if m != reference]
    steps = sorted(table["step"].unique())
    ncols = min(ncols, len(metrics))
    nrows = -(-len(metrics) // ncols)
    panel_h = 1.2 + 0.28 * len(models) * len(steps)
    if fig is None:
        fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols + 1.2, panel_h * nrows), sharey=True,
                                 squeeze=False)
        own = True
    else:
        axes, own = fig.subplots(nrows, ncols, sharey=True, squeeze=False), False
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (ax, (metric, (label, better_up))) in enumerate(zip(axes.flat, metrics.items(), strict=False)):
        sub = table[(table.metric == metric) & (table.model != reference)]
        y, ticks = 0, []
        for step in steps:
            for k, model in enumerate(models):
                row = sub[(sub.step == step) & (sub.model == model)].iloc[0]
                ax.errorbar(row["diff"], y, xerr=row["diff_ci"], fmt="o", color=colors[(k + 1) % len(colors)],
                            capsize=3, ms=4)
                ticks.append((y, f"{model} @ {step}"))
                y -= 1
            y -= 0.5
        ax.axvline(0, color="0.5", lw=0.8)
        if i % ncols == 0:
            ax.set_yticks([t[0] for t in ticks], [t[1] for t in ticks], fontsize=7)
        ax.set_title(textwrap.fill(label, 30) + f"\n({'higher' if better_up else 'lower'} is better)", fontsize=8)
        if i + ncols >= len(metrics):  # the bottom panel of its column
            ax.set_xlabel(f"difference vs {reference}", fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    if own:
        fig.tight_layout()
    return fig


def architecture_figure():
    """Schematic of TopoVAE and TopoVAE-Z: which diagrams are compared, and the total loss."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(11, 5.4))
    ax.set_xlim(0, 11)
    ax.set_ylim(0.2, 5.1)
    ax.axis("off")

    def box(x, y, w, h, text, color, fontsize=10):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05,rounding_size=0.12",
                                    fc=color, ec="0.25", lw=1.2))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)
        return x, y, w, h

    def arrow(p, q, color="0.2", style="-|>", ls="-", text=None, offset=(0, 0.12)):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle=style, mutation_scale=14, color=color, lw=1.4, ls=ls))
        if text:
            ax.text((p[0] + q[0]) / 2 + offset[0], (p[1] + q[1]) / 2 + offset[1], text, ha="center",
                    fontsize=8.5, color=color)

    def glyph(cx, cy, label, points, color):
        # a tiny persistence diagram: diagonal and a few (birth, death) points
        s = 0.55
        ax.plot([cx - s, cx + s], [cy - s, cy + s], color="0.55", lw=0.8)
        ax.plot([cx - s, cx - s, cx + s], [cy + s, cy - s, cy - s], color="0.3", lw=0.8)
        for b, d in points:
            ax.plot(cx - s + 2 * s * b, cy - s + 2 * s * d, "o", ms=3.5, color=color)
        ax.text(cx, cy - s - 0.25, label, ha="center", va="top", fontsize=10)

    box(0.2, 3.35, 1.6, 1.1, "input batch\n$X$  (B × 784)", "#e8eef7")
    box(2.4, 3.35, 1.5, 1.1, "encoder\nconv 32, 64\nfc 256", "#f4f4f4", 9)
    box(4.5, 3.35, 1.6, 1.1, "latent batch\n$Z$  (B × 10)", "#fbeee0")
    box(6.7, 3.35, 1.5, 1.1, "decoder\nfc 256\ndeconv 64, 32", "#f4f4f4", 9)
    box(8.8, 3.35, 1.9, 1.1, "output batch\n$\\hat X$  (B × 784)", "#e9f5e9")
    arrow((1.85, 3.9), (2.35, 3.9))
    arrow((3.95, 3.9), (4.45, 3.9))
    arrow((6.15, 3.9), (6.65, 3.9))
    arrow((8.25, 3.9), (8.75, 3.9))
    pts0 = [(0, 0.55), (0, 0.75), (0, 0.9), (0.2, 0.45)]
    glyph(1.0, 1.75, "$D_0$ of $X$", pts0, "#1f77b4")
    glyph(5.3, 1.75, "$D_z$ of $Z$", [(0, 0.4), (0, 0.7), (0.1, 0.3)], "#ff7f0e")
    glyph(9.75, 1.75, "$D$ of $\\hat X$", [(0, 0.35), (0, 0.5), (0, 0.6)], "#2ca02c")
    arrow((1.0, 3.3), (1.0, 2.45), text="VR persistence", offset=(0.75, 0.0))
    arrow((5.3, 3.3), (5.3, 2.45), text="VR persistence", offset=(0.75, 0.0))
    arrow((9.75, 3.3), (9.75, 2.45), text="VR persistence", offset=(-0.75, 0.0))
    arrow((9.1, 0.5), (1.7, 0.5), color="#2ca02c", style="<|-|>", text="TopoVAE: $L_{topo}(D, D_0)$",
          offset=(2.3, 0.08))
    arrow((4.65, 1.2), (1.75, 1.2), color="#ff7f0e", style="<|-|>", ls="--",
          text="TopoVAE-Z: $L_{topo}(D_z, D_0)$", offset=(0, 0.08))
    ax.text(5.5, 4.75, "$L = L_0 + L_{topo}$,   $L_0 = (\\mathrm{BCE} + \\mathrm{KLD})\\,/\\,B$,   "
            "$L_{topo} = \\sum_i w_i\\, \\ell_i(\\cdot, D_0)\\,/\\,B$", ha="center", fontsize=11)
    ax.set_title("TopoVAE and TopoVAE-Z: the diagram of a batch is compared with the diagram of the input batch",
                 fontsize=11, pad=14)
    return fig
