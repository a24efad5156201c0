"""Query points for the tracking head at generation time, and its output as a track file.

``--query-points`` values:

    grid          one point per DiT token (the token grid's cell centres) on reference frame 0;
                  the paper's MultiCamVideo tracks use this grid (30 x 52 at 480 x 832)
    grid:RxC      R rows x C columns of cell centres on reference frame 0
    FILE          a track file (``.npz``: its ``queries``), or a table of N rows
                  (``.npy``, ``.txt``/``.csv`` with commas or spaces, ``.json`` nested list)
                  of ``(view, frame, x, y)``; rows of 3 are ``(frame, x, y)`` on the reference
                  (view 0), rows of 2 ``(x, y)`` on reference frame 0

Coordinates are pixels of the OUTPUT size (after the reference's resize and crop), pixel
centres at ``+0.5``; frames are output video frames; view 0 is the reference, 1 the
generated video.

The head works per LATENT frame: latent frame ``j`` stands for video frame ``tf * j``
(``tf`` = 4, the frames the Plücker maps are computed at). A query frame is snapped to the
nearest such frame (the written ``queries`` say which), and the head's positions between
latent frames are interpolated linearly in time, visibility taken from the nearer latent
frame (the earlier one at a tie), so ``tracks.npz`` has one entry per video frame.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mvt4g.errors import InputError
from mvt4g.fs.jsonio import read_json

_GRID = re.compile(r"^grid(?::(\d+)x(\d+))?$", re.IGNORECASE)


def grid_queries(rows: int, cols: int, height: int, width: int, *, view: int = 0, frame: int = 0) -> np.ndarray:
    """``[rows * cols, 4]`` float32 (view, frame, x, y) at cell centres, row-major."""
    if rows < 1 or cols < 1:
        raise InputError(f"query grid must be at least 1x1, got {rows}x{cols}")
    ys = (np.arange(rows) + 0.5) * height / rows
    xs = (np.arange(cols) + 0.5) * width / cols
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    n = rows * cols
    return np.stack([np.full(n, view), np.full(n, frame), xx.ravel(), yy.ravel()], axis=1).astype(np.float32)


def _table_from_file(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            from mvt4g.tracks.format import read_tracks

            return np.asarray(read_tracks(path).queries, dtype=np.float64)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False).astype(np.float64)
        if suffix == ".json":
            return np.asarray(read_json(path, what="query-point table", expect=list), dtype=np.float64)
        rows = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        return np.asarray([[float(v) for v in re.split(r"[,\s]+", ln.strip())] for ln in rows], dtype=np.float64)
    except InputError:
        raise
    except (OSError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable query-point table ({type(exc).__name__}: {exc})".splitlines()[0], path=path) from None


def load_query_points(spec: str, *, height: int, width: int, frames: int, token_stride: int) -> np.ndarray:
    """Queries ``[N, 4]`` float32 (view, frame, x, y) from a ``--query-points`` value (see the module docstring)."""
    match = _GRID.match(spec.strip())
    if match:
        if match.group(1) is None:
            return grid_queries(height // token_stride, width // token_stride, height, width)
        return grid_queries(int(match.group(1)), int(match.group(2)), height, width)
    path = Path(spec)
    if not path.is_file():
        raise InputError("no such query-point file (or use grid / grid:RxC)", path=path)
    table = _table_from_file(path)
    if table.ndim == 1 and table.size in (2, 3, 4):
        table = table[None]
    if table.ndim != 2 or table.shape[1] not in (2, 3, 4) or len(table) == 0:
        raise InputError(f"query points must be N rows of (view, frame, x, y), (frame, x, y) or (x, y); got shape {list(table.shape)}", path=path)
    if table.shape[1] < 4:
        lead = np.zeros((len(table), 4 - table.shape[1]))
        table = np.concatenate([lead, table], axis=1)
    return check_queries(table, height=height, width=width, frames=frames, source=path)


def check_queries(queries: np.ndarray, *, height: int, width: int, frames: int, source: object = None) -> np.ndarray:
    """Validate (view, frame, x, y) rows against a 2-view, ``frames``-long ``height x width`` output."""
    q = np.asarray(queries, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != 4:
        raise InputError(f"queries must be [N, 4], got {list(q.shape)}", path=source)
    if not np.isfinite(q).all():
        raise InputError("query points contain NaN or inf", path=source)
    view, frame, x, y = q.T
    if np.any(view != np.round(view)) or np.any(frame != np.round(frame)):
        raise InputError("query view and frame must be integers", path=source)
    if np.any((view < 0) | (view > 1)):
        raise InputError("query view must be 0 (reference) or 1 (generated)", path=source)
    if np.any((frame < 0) | (frame >= frames)):
        raise InputError(f"query frame outside 0..{frames - 1}", path=source)
    if np.any((x < 0) | (x > width) | (y < 0) | (y > height)):
        raise InputError(f"query point outside the {width}x{height} output image", path=source)
    return q.astype(np.float32)


def to_latent_queries(queries: np.ndarray, temporal_factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Snap query frames to latent frames: ``(latent queries, the same in video frames)``, both ``[N, 4]``."""
    q = np.asarray(queries, dtype=np.float32).copy()
    # floor(f / tf + 0.5): ties go to the later latent frame, deterministic across numpy versions.
    latent = np.floor(q[:, 1] / temporal_factor + 0.5)
    snapped = q.copy()
    q[:, 1] = latent
    snapped[:, 1] = latent * temporal_factor
    return q, snapped


def latent_tracks_to_video(
    coords: np.ndarray, visible: np.ndarray, frames: int, temporal_factor: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-latent-frame tracks ``[V, F, N, 2]`` / ``[V, F, N]`` -> per-video-frame ``[V, T, N, 2]`` / ``[V, T, N]``.

    Latent frame ``j`` sits at video frame ``tf * j``; positions in between are linear in
    time, visibility is the nearer latent frame's (the earlier at a tie).
    """
    coords = np.asarray(coords, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    latent_frames = coords.shape[1]
    if (frames - 1) != temporal_factor * (latent_frames - 1):
        raise InputError(f"{latent_frames} latent frames do not cover {frames} video frames at stride {temporal_factor}")
    t = np.arange(frames) / temporal_factor
    lo = np.minimum(np.floor(t).astype(np.int64), latent_frames - 1)
    hi = np.minimum(lo + 1, latent_frames - 1)
    w = (t - lo)[None, :, None, None]
    tracks = coords[:, lo] * (1 - w) + coords[:, hi] * w
    nearest = np.where(t - lo > 0.5, hi, lo)
    return tracks.astype(np.float32), visible[:, nearest]
