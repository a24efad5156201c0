"""The depth test of the exact method: a point's depth read from a depth map, and whether a view sees it.

A query's z-depth (:func:`query_depth`) is the pixel's depth at a pixel centre, interpolated on
smooth surfaces in between. A projected point is visible in a view (:func:`visible_in`) when

- it is in front of the camera and inside the image ``[0, W) x [0, H)``, and
- it passes the depth test: its camera z matches that view's depth map either at the pixel
  that contains it or interpolated (inverse depth, bilinear) between the four nearest pixel
  centres, within a relative tolerance of ``depth_tol`` (default 1 %) plus the local relative
  depth slope (the largest relative difference to the 4-neighbour pixels, capped at
  ``MAX_SLOPE_TOL`` = 10 %). The slope term admits points on surfaces seen at grazing angles,
  whose depth changes by several percent per pixel; a point behind an occluder much nearer than
  itself still fails (the cap). Points within a pixel of a silhouette whose depth is within the
  widened tolerance of the occluder's are ambiguous at pixel resolution.
"""

from __future__ import annotations

import numpy as np

DEFAULT_DEPTH_TOL = 0.01
#: Largest widening of the depth tolerance on steep depth slopes (relative).
MAX_SLOPE_TOL = 0.1


def sample_nearest(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``image[floor(y), floor(x)]`` for points inside the image (callers mask the rest), ``[N]``."""
    h, w = image.shape[:2]
    col = np.clip(np.floor(xy[:, 0]).astype(np.int64), 0, w - 1)
    row = np.clip(np.floor(xy[:, 1]).astype(np.int64), 0, h - 1)
    return image[row, col]


def query_depth(depth_map: np.ndarray, xy: np.ndarray, max_spread: float = 0.3) -> np.ndarray:
    """z-depth at points ``xy`` ``[N, 2]`` of one depth map ``[H, W]``.

    At a pixel centre this is the pixel's depth. Between centres, inverse depth is interpolated
    bilinearly from the four nearest centres (exact on planes, whose inverse depth is affine in
    the pixel coordinates) when those four look like one surface: they fit an affine function
    (``inv00 + inv11 = inv01 + inv10`` within 2 %) and differ by at most ``max_spread``
    (relative). Across an edge the depth of the pixel that contains the point is used.
    """
    near = sample_nearest(depth_map, xy)
    h, w = depth_map.shape
    x = np.clip(xy[:, 0] - 0.5, 0, w - 1)
    y = np.clip(xy[:, 1] - 0.5, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    corners = np.stack([depth_map[y0, x0], depth_map[y0, x1], depth_map[y1, x0], depth_map[y1, x1]]).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / corners
        smooth = np.isfinite(corners).all(0) & (corners > 0).all(0)
        smooth &= (corners.max(0) - corners.min(0)) <= max_spread * corners.min(0)
        smooth &= np.abs(inv[0] + inv[3] - inv[1] - inv[2]) <= 0.02 * inv.mean(0)
        fx, fy = x - x0, y - y0
        interp = 1.0 / ((inv[0] * (1 - fx) + inv[1] * fx) * (1 - fy) + (inv[2] * (1 - fx) + inv[3] * fx) * fy)
    return np.where(smooth, interp, near)


def visible_in(
    uv: np.ndarray, z: np.ndarray, depth_map: np.ndarray, depth_tol: float = DEFAULT_DEPTH_TOL
) -> np.ndarray:
    """Visibility of projected points in one image: in front, in bounds, and passing the depth test (module docstring)."""
    h, w = depth_map.shape
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(uv).all(axis=1) & (z > 0)
        ok &= (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    if not ok.any():
        return ok
    idx = np.flatnonzero(ok)
    pts, zz = uv[idx], z[idx]
    near = sample_nearest(depth_map, pts)
    interp = query_depth(depth_map, pts, max_spread=np.inf)
    # Where depth changes fast across pixels (surfaces seen at grazing angles), a small error in
    # the point's position is a large error in depth: widen the tolerance by the local relative
    # slope (capped, so that an occluder much nearer than the point still hides it).
    col = np.floor(pts[:, 0]).astype(np.int64)
    row = np.floor(pts[:, 1]).astype(np.int64)
    slope = np.zeros(len(idx))
    for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        nb = depth_map[np.clip(row + dr, 0, h - 1), np.clip(col + dc, 0, w - 1)]
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.maximum(slope, np.abs(nb - near) / near)
    tol = depth_tol + np.minimum(np.nan_to_num(slope, nan=0.0), MAX_SLOPE_TOL)
    with np.errstate(invalid="ignore"):
        match = (np.abs(near - zz) <= tol * zz) | (np.abs(interp - zz) <= tol * zz)
    ok[idx] = match
    return ok
