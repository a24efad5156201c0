"""Exact multi-view tracks from depth maps and cameras.

A query ``(x, y)`` of view q at frame s with z-depth ``d`` (:func:`query_depth`: the pixel's
depth at a pixel centre, interpolated on smooth surfaces in between) is the world point ``X = c2w[q, s] @ (d K^-1 (x, y, 1))``. It is
projected into every view v and frame t and called visible there when

- it is in front of the camera and inside the image ``[0, W) x [0, H)``, and
- it passes the depth test: its camera z matches that view's depth map either at the pixel
  that contains it or interpolated (inverse depth, bilinear) between the four nearest pixel
  centres, within a relative tolerance of ``depth_tol`` (default 1 %) plus the local relative
  depth slope (the largest relative difference to the 4-neighbour pixels, capped at
  ``MAX_SLOPE_TOL`` = 10 %). The slope term admits points on surfaces seen at grazing angles,
  whose depth changes by several percent per pixel; a point behind an occluder much nearer than
  itself still fails (the cap). Points within a pixel of a silhouette whose depth is within the
  widened tolerance of the occluder's are ambiguous at pixel resolution.

What depth and cameras alone can and cannot give:

- static points: exact at every frame of every view (the world point does not move);
- any point at its own query instant s: exact in every view (synchronized cameras, one world);
- points on moving objects at other frames: NOT determined by depth and cameras (the object
  moved). When per-view object masks exist (``masks/``, 0 = static background), such queries are
  handled as dynamic (mvt4g.tracks.moving): each object's rigid motion between frames is fitted
  from depth, masks and optical flow of all views (mvt4g.tracks.rigid) and moves the point;
  where no rigid fit holds (non-rigid objects), the point's temporal track in its query view
  comes from chained optical flow, lifted with each frame's depth. Either way the point is then
  projected into every view with the same depth test. Without a video to run flow on, a
  dynamic point is visible only at its query instant. Without masks every point is taken as
  static, which is exact for static scenes only: for dynamic scenes use masks, the clip's
  exact tracks (``mvt4g synth`` writes them) or ``--method flow``.
- a query whose depth is not finite or not positive (sky, holes) is visible only at itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.errors import InputError

DEFAULT_DEPTH_TOL = 0.01
#: Largest widening of the depth tolerance on steep depth slopes (relative).
MAX_SLOPE_TOL = 0.1


@dataclass
class GeometryReport:
    """What the geometry method did: counts of static, dynamic and depth-less queries."""

    static: int = 0
    dynamic: int = 0
    no_depth: int = 0
    notes: list[str] = field(default_factory=list)


def backproject(K: np.ndarray, c2w: np.ndarray, xy: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """World points float64 ``[N, 3]`` of pixels ``xy`` ``[N, 2]`` at z-depths ``depth`` ``[N]`` (one camera)."""
    xy = np.asarray(xy, np.float64)
    rays = np.linalg.solve(np.asarray(K, np.float64), np.concatenate([xy, np.ones((len(xy), 1))], axis=1).T).T
    cam = rays * np.asarray(depth, np.float64)[:, None]
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def project(K: np.ndarray, w2c: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``[N, 2]`` and camera z ``[N]`` of world points ``[N, 3]`` (one camera)."""
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (cam @ np.asarray(K, np.float64).T)[:, :2] / z[:, None]
    return uv, z


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


def project_all(
    cameras: list[ViewCameras],
    depths: list[np.ndarray],
    world: np.ndarray,
    frames: np.ndarray,
    depth_tol: float,
    tracks: np.ndarray,
    visible: np.ndarray,
    select: np.ndarray,
) -> None:
    """Project world points ``world[n]`` (valid at frame ``frames[n]``, or -1 for every frame) into all views.

    Writes ``tracks[v, t, n]`` and ``visible[v, t, n]`` for the tracks in ``select`` (indices):
    a point with ``frames[n] = -1`` is static (projected at every frame), otherwise only at its frame.
    """
    T = tracks.shape[1]
    for v, cam in enumerate(cameras):
        w2c = cam.w2c()
        for t in range(T):
            sel = select[(frames[select] == -1) | (frames[select] == t)]
            if len(sel) == 0:
                continue
            uv, z = project(cam.K[t], w2c[t], world[sel])
            tracks[v, t, sel] = np.where(np.isfinite(uv), uv, 0.0)
            visible[v, t, sel] = visible_in(uv, z, depths[v][t], depth_tol)


def geometry_tracks(
    cameras: list[ViewCameras],
    depths: list[np.ndarray],
    queries: np.ndarray,
    *,
    masks: list[np.ndarray] | None = None,
    videos: list[np.ndarray] | None = None,
    depth_tol: float = DEFAULT_DEPTH_TOL,
    flow_config: object | None = None,
) -> tuple[np.ndarray, np.ndarray, GeometryReport]:
    """Tracks from depth and cameras (module docstring).

    Args:
        cameras: per view (in track view order), each with T frames of size H x W.
        depths: per view, z-depth float ``[T, H, W]``.
        queries: float ``[N, 4]`` (view, frame, x, y); depth is read by :func:`query_depth`.
        masks: optional per-view object ids ``[T, H, W]`` (0 = static); marks dynamic queries.
        videos: optional per-view uint8 ``[T, H, W, 3]``; temporal tracks of dynamic queries.
        depth_tol: relative depth-test tolerance.
        flow_config: a :class:`mvt4g.tracks.flow.FlowConfig` for the dynamic queries.

    Returns:
        tracks float32 ``[V, T, N, 2]``, visible bool ``[V, T, N]``, and a report.
    """
    V = len(cameras)
    T, H, W = depths[0].shape
    for v, (cam, dep) in enumerate(zip(cameras, depths)):
        if dep.shape != (cam.frames, cam.height, cam.width) or dep.shape != (T, H, W):
            raise InputError(f"depth of view {v} has shape {list(dep.shape)}, expected {[cam.frames, cam.height, cam.width]}")
    q = np.asarray(queries, np.float64)
    N = len(q)
    qv, qt, qxy = q[:, 0].astype(np.int64), q[:, 1].astype(np.int64), q[:, 2:4]
    tracks = np.zeros((V, T, N, 2), np.float64)
    visible = np.zeros((V, T, N), bool)
    report = GeometryReport()

    qdepth = np.empty(N)
    dynamic = np.zeros(N, bool)
    world = np.zeros((N, 3))
    for v in range(V):
        for t in np.unique(qt[qv == v]):
            sel = np.flatnonzero((qv == v) & (qt == t))
            qdepth[sel] = query_depth(depths[v][t], qxy[sel])
            if masks is not None:
                dynamic[sel] = sample_nearest(masks[v][t], qxy[sel]) != 0
            good = sel[np.isfinite(qdepth[sel]) & (qdepth[sel] > 0)]
            world[good] = backproject(cameras[v].K[t], cameras[v].c2w[t], qxy[good], qdepth[good])
    has_depth = np.isfinite(qdepth) & (qdepth > 0)
    dynamic &= has_depth
    static = has_depth & ~dynamic
    report.static, report.dynamic, report.no_depth = int(static.sum()), int(dynamic.sum()), int((~has_depth).sum())

    # Static points: one world point for every frame. Dynamic points: exact at their own instant.
    frames = np.where(dynamic, qt, -1)
    project_all(cameras, depths, world, frames, depth_tol, tracks, visible, np.flatnonzero(has_depth))

    if dynamic.any():
        if videos is None:
            report.notes.append(f"{report.dynamic} queries on moving objects are tracked at their query frame only (no video for flow)")
        else:
            from mvt4g.tracks.moving import track_moving

            note = track_moving(cameras, depths, masks, videos, q, world, np.flatnonzero(dynamic), depth_tol, flow_config, tracks, visible)
            report.notes.append(note)
    # Every track is visible at its own query, exactly where it was asked.
    n = np.arange(N)
    tracks[qv, qt, n] = qxy
    visible[qv, qt, n] = True
    return tracks.astype(np.float32), visible, report
