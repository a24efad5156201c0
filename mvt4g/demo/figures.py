"""Pictures of the demo report: frame grids, loss curves, trajectories (matplotlib's Agg canvas).

Every function reads what a stage wrote and draws one PNG atomically; none changes any data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mvt4g.fs.atomic import atomic_path
from mvt4g.io.video import read_video


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def pick_frames(count: int, n: int = 3) -> list[int]:
    """``n`` frame indices spread from the first to the last."""
    return sorted({round(i) for i in np.linspace(0, count - 1, n)})


def frame_grid(rows: dict[str, np.ndarray | None], path: Path, *, title: str, columns: list[str] | None = None,
               cell_px: int = 128) -> Path:  # fmt: skip
    """One row per labelled video (uint8 ``[T, H, W, 3]``, or None: drawn as "not available"),
    the same frames (:func:`pick_frames`) in every row. Small frames are drawn with nearest
    neighbours so their pixels stay visible."""
    videos = [v for v in rows.values() if v is not None]
    count = min(v.shape[0] for v in videos)
    frames = pick_frames(count)
    h, w = videos[0].shape[1:3]
    scale = cell_px / max(h, w)
    fig = Figure(figsize=(len(frames) * w * scale / 100 + 1.6, len(rows) * h * scale / 100 + 0.6))
    fig.suptitle(title, fontsize=10)
    axes = fig.subplots(len(rows), len(frames), squeeze=False)
    for r, (label, video) in enumerate(rows.items()):
        for c, t in enumerate(frames):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if video is None:
                ax.text(0.5, 0.5, "not available", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            else:
                ax.imshow(video[min(t, video.shape[0] - 1)], interpolation="nearest")
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == 0:
                ax.set_title(columns[c] if columns else f"frame {t}", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def read_frames(path: str | Path | None) -> np.ndarray | None:
    """A video's frames, or None when there is no such file."""
    if path is None or not Path(path).is_file():
        return None
    return read_video(path).frames


def loss_curves(runs: dict[str, list[dict]], path: Path) -> Path:
    """Training losses per step: L_diff of every run, L_track and L_corr where a run has them.
    The first run is the base the others start from; their steps are drawn after its last."""
    fig = Figure(figsize=(9, 3.2))
    ax_diff, ax_aux = fig.subplots(1, 2)
    offset = 0
    for name, records in runs.items():
        if not records:
            continue
        # Fine-tunes continue from the first run (the base): their steps follow its last one.
        steps = [offset + r["step"] for r in records]
        if name == next(iter(runs)):
            offset = steps[-1]
        ax_diff.plot(steps, _smooth([r["diff"] for r in records]), label=name)
        for key, style in (("track", "-"), ("corr", "--")):
            values = [r.get(key, 0.0) for r in records]
            if any(values):
                ax_aux.plot(steps, _smooth(values), style, label=f"{name}: L_{key}")
    if offset:
        for ax in (ax_diff, ax_aux):
            ax.axvline(offset, color="grey", lw=0.8, ls=":")
    ax_diff.set_title("L_diff (flow matching), smoothed; dotted: fine-tuning starts", fontsize=9)
    ax_aux.set_title("L_track and L_corr, smoothed", fontsize=9)
    for ax in (ax_diff, ax_aux):
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _smooth(values: list[float], window: int = 5) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if len(x) < window:
        return x
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, x[0]), x])
    return np.convolve(padded, kernel, mode="valid")


def layer_bars(pck_by_model: dict[str, list[float | None]], tap_layer: int, path: Path, *,
               se_by_model: dict[str, list[float | None]] | None = None, chance: float | None = None) -> Path:  # fmt: skip
    """Cross-view PCK per DiT layer (pooled over the analysed timesteps) of each model, with
    +-1 standard error bars and the chance level of the token grid as a dashed line."""
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    names = list(pck_by_model)
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        values = [np.nan if v is None else v for v in pck_by_model[name]]
        errors = None
        if se_by_model and name in se_by_model:
            errors = [0.0 if e is None else e for e in se_by_model[name]]
        ax.bar(np.arange(len(values)) + i * width, values, width, label=name, yerr=errors, capsize=2)
    if chance is not None:
        ax.axhline(chance, color="black", lw=0.8, ls="--", label="chance")
    layers = max(len(v) for v in pck_by_model.values())
    ax.set_xticks(np.arange(layers) + width * (len(names) - 1) / 2, [str(i) for i in range(layers)])
    ax.axvline(tap_layer + width * (len(names) - 1) / 2, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(f"DiT layer (dotted: layer {tap_layer}, where L_corr and the tracking head attach)", fontsize=8)
    ax.set_ylabel("cross-view PCK", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
