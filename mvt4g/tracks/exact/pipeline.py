"""The exact (``geometry``) method: multi-view tracks from depth maps and cameras.

A query ``(x, y)`` of view q at frame s with z-depth ``d`` (:func:`mvt4g.tracks.exact.depth.query_depth`)
is the world point ``X = c2w[q, s] @ (d K^-1 (x, y, 1))``. It is projected into every view v and
frame t and called visible there when it is in front of the camera, inside the image and passes
the depth test against that view's depth map (:mod:`mvt4g.tracks.exact.depth`).

What depth and cameras alone can and cannot give:

- static points: exact at every frame of every view (the world point does not move);
- any point at its own query instant s: exact in every view (synchronized cameras, one world);
- points on moving objects at other frames: NOT determined by depth and cameras (the object
  moved). When per-view object masks exist (``masks/``, 0 = static background), such queries are
  handled as dynamic (mvt4g.tracks.exact.moving_objects): each object's rigid motion between frames is fitted
  from depth, masks and optical flow of all views (mvt4g.tracks.exact.rigid_motion) and moves the point;
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
from mvt4g.tracks.exact.depth import (
    DEFAULT_DEPTH_TOL,
    query_depth,
    sample_nearest,
    visible_in,
)
from mvt4g.tracks.exact.moving_objects import track_moving
from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.projection import backproject, project


@dataclass
class GeometryReport:
    """What the geometry method did: counts of static, dynamic and depth-less queries."""

    static: int = 0
    dynamic: int = 0
    no_depth: int = 0
    notes: list[str] = field(default_factory=list)


def project_into_views(
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
    flow_config: FlowConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, GeometryReport]:
    """Tracks from depth and cameras (module docstring).

    Args:
        cameras: per view (in track view order), each with T frames of size H x W.
        depths: per view, z-depth float ``[T, H, W]``.
        queries: float ``[N, 4]`` (view, frame, x, y); depth is read by :func:`query_depth`.
        masks: optional per-view object ids ``[T, H, W]`` (0 = static); marks dynamic queries.
        videos: optional per-view uint8 ``[T, H, W, 3]``; temporal tracks of dynamic queries.
        depth_tol: relative depth-test tolerance.
        flow_config: a :class:`mvt4g.tracks.flow.config.FlowConfig` (its optical-flow settings) for the dynamic queries.

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
    project_into_views(cameras, depths, world, frames, depth_tol, tracks, visible, np.flatnonzero(has_depth))

    if dynamic.any():
        if videos is None:
            report.notes.append(f"{report.dynamic} queries on moving objects are tracked at their query frame only (no video for flow)")
        else:
            note = track_moving(cameras, depths, masks, videos, q, world, np.flatnonzero(dynamic), depth_tol, flow_config, tracks, visible)
            report.notes.append(note)
    # Every track is visible at its own query, exactly where it was asked.
    n = np.arange(N)
    tracks[qv, qt, n] = qxy
    visible[qv, qt, n] = True
    return tracks.astype(np.float32), visible, report
