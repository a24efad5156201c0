"""Where tracks start: query points ``[N, 4] = (view, frame, x, y)``.

Every query sits on a pixel centre ``(u + 0.5, v + 0.5)`` so that per-pixel data (depth,
masks) is read at the query exactly, without interpolating across an object's edge.

- :func:`grid_queries`: the image is cut into ``rows x cols`` equal cells (the paper's 30 x 52 on
  480 x 832, i.e. one query per 16 x 16 cell, 1,560 per frame) and the query is the pixel centre
  nearest each cell's centre; one grid per chosen view and frame.
- :func:`random_queries`: N queries uniform over the chosen views, frames and pixels.
- queries from an existing track file (``read_tracks(path).queries``), so a method can be scored
  on the ground truth's queries.
"""

from __future__ import annotations

import numpy as np

from mvt4g.errors import InputError

DEFAULT_GRID = (30, 52)


def parse_grid(text: str) -> tuple[int, int]:
    """``"30x52"`` -> ``(30, 52)`` (rows, cols)."""
    parts = str(text).lower().split("x")
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"grid must be ROWSxCOLS, e.g. 30x52; got {text!r}") from None
    if rows <= 0 or cols <= 0:
        raise InputError(f"grid must be positive, got {text!r}")
    return rows, cols


def grid_points(height: int, width: int, rows: int, cols: int) -> np.ndarray:
    """Pixel centres nearest the centres of a ``rows x cols`` grid of cells: float32 ``[rows * cols, 2]`` (x, y), row-major."""
    if rows > height or cols > width:
        raise InputError(f"grid {rows}x{cols} is finer than the {height}x{width} image")
    ys = np.floor((np.arange(rows) + 0.5) * height / rows) + 0.5
    xs = np.floor((np.arange(cols) + 0.5) * width / cols) + 0.5
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=-1).astype(np.float32)


def grid_queries(
    height: int, width: int, views: list[int], frames: list[int], grid: tuple[int, int] = DEFAULT_GRID
) -> np.ndarray:
    """A grid of queries in every listed view at every listed frame: float32 ``[len(views) * len(frames) * rows * cols, 4]``.

    Ordered by view, then frame, then grid row-major.
    """
    pts = grid_points(height, width, *grid)
    blocks = []
    for v in views:
        for t in frames:
            block = np.empty((len(pts), 4), np.float32)
            block[:, 0], block[:, 1], block[:, 2:] = v, t, pts
            blocks.append(block)
    return np.concatenate(blocks) if blocks else np.zeros((0, 4), np.float32)


def random_queries(
    height: int, width: int, views: list[int], frames: list[int], count: int, seed: int = 0
) -> np.ndarray:
    """``count`` queries drawn uniformly over the listed views, frames and pixel centres: float32 ``[count, 4]``.

    Sorted by (view, frame) so that tracks of one start group stay together; deterministic for a seed.
    """
    if count <= 0:
        raise InputError(f"number of queries must be positive, got {count}")
    rng = np.random.default_rng(seed)
    q = np.empty((count, 4), np.float32)
    q[:, 0] = rng.choice(np.asarray(views), size=count)
    q[:, 1] = rng.choice(np.asarray(frames), size=count)
    q[:, 2] = rng.integers(0, width, size=count) + 0.5
    q[:, 3] = rng.integers(0, height, size=count) + 0.5
    order = np.lexsort((q[:, 1], q[:, 0]))
    return q[order]


def check_queries(queries: np.ndarray, num_views: int, num_frames: int, height: int, width: int) -> np.ndarray:
    """Validate queries for a clip: shape ``[N, 4]``, finite, view/frame in range, (x, y) inside the image."""
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != 4 or q.shape[0] == 0:
        raise InputError(f"queries must have shape [N, 4] with N > 0, got {list(q.shape)}")
    if not np.isfinite(q).all():
        raise InputError("queries contain NaN or inf")
    if q[:, 0].min() < 0 or q[:, 0].max() >= num_views or np.any(q[:, 0] != np.round(q[:, 0])):
        raise InputError(f"query views must be integers in [0, {num_views})")
    if q[:, 1].min() < 0 or q[:, 1].max() >= num_frames or np.any(q[:, 1] != np.round(q[:, 1])):
        raise InputError(f"query frames must be integers in [0, {num_frames})")
    inside = (q[:, 2] >= 0) & (q[:, 2] < width) & (q[:, 3] >= 0) & (q[:, 3] < height)
    if not inside.all():
        raise InputError(f"{int((~inside).sum())} queries lie outside the {height}x{width} image")
    return q
