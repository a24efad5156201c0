"""Pictures of the analysis: layer x timestep heatmaps (paper Fig. 4 and 8) and one query's
attention over both views across frames (Fig. 3 and 15).

Figures are drawn with matplotlib's Agg canvas (no GUI, no pyplot global state) and written
atomically (temporary file + rename).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mvt4g.analysis.correspondence import CORRESPONDENCE_TYPES
from mvt4g.fs.atomic import atomic_path

TYPE_TITLES = {
    "ref_temporal": "(a) reference temporal",
    "tgt_temporal": "(b) target temporal",
    "cross_view": "(c) cross-view",
}
METRIC_TITLES = {
    "pck": "matching accuracy (PCK)",
    "harmonic_mean": "harmonic mean",
    "attention": "attention score",
    "confidence": "confidence score",
    "reliable": "cycle-consistent share",
}


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110)
    return path


def _ticks(count: int, most: int = 10) -> np.ndarray:
    step = max(1, int(np.ceil(count / most)))
    return np.arange(0, count, step)


def plot_layer_timestep(
    tables: dict[str, dict[str, np.ndarray]],
    layers: list[int],
    timesteps: list[float],
    metrics: tuple[str, ...],
    path: str | Path,
    *,
    title: str = "",
    curves: bool = True,
) -> Path:
    """Heatmaps ``[layer x timestep]`` for each metric (rows) and correspondence type (columns).

    ``tables[type][metric]`` is ``[L, T]``. The x axis is the (0-based) layer, the y axis the
    timestep ``t = 1000 sigma`` from noisy (top) to clean (bottom); NaN cells (no query pairs)
    are grey. With ``curves``, a last column plots the metric against the timestep for the three
    layers with the best cross-view average (the paper's right-hand column).
    """
    ncols = len(CORRESPONDENCE_TYPES) + int(curves)
    fig = Figure(figsize=(4.2 * ncols, 3.4 * len(metrics)), layout="constrained")
    cmap = colormaps["viridis"].with_extremes(bad="#bbbbbb")
    t_labels = [f"{t:.0f}" for t in timesteps]
    for row, metric in enumerate(metrics):
        for col, name in enumerate(CORRESPONDENCE_TYPES):
            ax = fig.add_subplot(len(metrics), ncols, row * ncols + col + 1)
            data = np.ma.masked_invalid(np.asarray(tables[name][metric], dtype=np.float64).T)  # [T, L]
            image = ax.imshow(data, aspect="auto", cmap=cmap, interpolation="nearest")
            fig.colorbar(image, ax=ax, shrink=0.85)
            xt, yt = _ticks(len(layers), 12), _ticks(len(timesteps), 8)
            ax.set_xticks(xt, [str(layers[i]) for i in xt])
            ax.set_yticks(yt, [t_labels[i] for i in yt])
            ax.set_xlabel("layer")
            ax.set_ylabel("timestep t")
            ax.set_title(f"{TYPE_TITLES[name]}\n{METRIC_TITLES.get(metric, metric)}", fontsize=9)
        if curves:
            ax = fig.add_subplot(len(metrics), ncols, row * ncols + ncols)
            cross = np.asarray(tables["cross_view"][metric], dtype=np.float64)
            with np.errstate(invalid="ignore"):
                score = np.array([np.nanmean(r) if np.isfinite(r).any() else -np.inf for r in cross])
            for li in np.argsort(-score, kind="stable")[: min(3, len(layers))]:
                ax.plot(np.arange(len(timesteps)), cross[li], marker="o", ms=3, label=f"layer {layers[li]}")
            xt = _ticks(len(timesteps), 6)
            ax.set_xticks(xt, [t_labels[i] for i in xt])
            ax.set_xlabel("timestep t (noisy -> clean)")
            ax.set_title(f"cross-view top layers\n{METRIC_TITLES.get(metric, metric)}", fontsize=9)
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_query_attention(
    frames_rgb: np.ndarray,
    maps: np.ndarray,
    query_frame: int,
    query_xy: tuple[float, float],
    path: str | Path,
    *,
    title: str = "",
    max_columns: int = 8,
    row_names: tuple[str, str] = ("reference", "target (generated)"),
) -> Path:
    """One query point's per-frame attention over both views, overlaid on the frames.

    ``frames_rgb`` uint8 ``[2, F, H, W, 3]`` (view 0 reference); ``maps`` ``[2, F, h, w]`` the
    query's attention re-normalised within each frame (``C_{i,j}``), drawn with each frame's own
    colour scale. The query (a target-view point in latent frame ``query_frame``) is a star;
    each frame's argmax is a circle. At most ``max_columns`` frames, evenly spaced, the query's
    frame always among them.
    """
    _, frames, height, width, _ = frames_rgb.shape
    maps = np.asarray(maps, dtype=np.float32)
    h, w = maps.shape[2:]
    columns = np.unique(np.round(np.linspace(0, frames - 1, min(frames, max_columns))).astype(int))
    if query_frame not in columns:
        columns = np.sort(np.append(columns[:-1] if len(columns) >= max_columns else columns, query_frame))
    fig = Figure(figsize=(2.1 * len(columns), 2.2 * 2 * height / max(width, 1) + 0.8), layout="constrained")
    cmap = colormaps["jet"]
    for row in range(2):
        for ci, j in enumerate(columns):
            ax = fig.add_subplot(2, len(columns), row * len(columns) + ci + 1)
            ax.imshow(frames_rgb[row, j], extent=(0, width, height, 0), interpolation="bilinear")
            attn = maps[row, j]
            peak = float(attn.max())
            ax.imshow(attn / peak if peak > 0 else attn, extent=(0, width, height, 0), cmap=cmap, alpha=0.5,
                      vmin=0.0, vmax=1.0, interpolation="nearest")  # fmt: skip
            ty, tx = np.unravel_index(int(np.argmax(attn)), (h, w))
            ax.plot((tx + 0.5) * width / w, (ty + 0.5) * height / h, "o", mfc="none", mec="white", ms=8, mew=1.5)
            if row == 1 and j == query_frame:
                ax.plot(*query_xy, "*", color="red", mec="white", ms=13)
            label = f"{row_names[row]} f{j}" if ci == 0 else f"f{j}"
            ax.set_title(label + (" (query)" if row == 1 and j == query_frame else ""), fontsize=8)
            ax.set_xlim(0, width)
            ax.set_ylim(height, 0)
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)
