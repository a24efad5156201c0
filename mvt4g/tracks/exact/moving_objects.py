"""Tracks of points on moving objects, for the exact (geometry) method (depth, masks, videos, cameras).

A query on object k (its mask id at the query pixel) at frame s is the world point X_s. For
every other frame t:

1. rigid: when the fitted rigid motion of k (mvt4g.tracks.exact.rigid_motion) holds on every step between s
   and t, ``X_t = M_{s->t} X_s``;
2. otherwise per-point flow: the point is carried in its query view by chained optical flow
   (forward-backward checked, mvt4g.tracks.flow.chains), kept while the mask still shows k, and lifted
   with frame t's depth.

``X_t`` is projected into every view and tested against that view's depth (mvt4g.tracks.exact.depth);
frames where neither way gives a point leave the track not visible.
"""

from __future__ import annotations

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.tracks.exact.depth import query_depth, sample_nearest, visible_in
from mvt4g.tracks.exact.rigid_motion import object_motions
from mvt4g.tracks.flow.chains import chain_tracks
from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.flow.optical_flow import view_flows
from mvt4g.tracks.projection import backproject, project


def _project_into_all(cameras, w2c, depths, t, world, n_idx, depth_tol, tracks, visible) -> None:
    for u, cam in enumerate(cameras):
        uv, z = project(cam.K[t], w2c[u][t], world)
        tracks[u, t, n_idx] = np.where(np.isfinite(uv), uv, 0.0)
        visible[u, t, n_idx] = visible_in(uv, z, depths[u][t], depth_tol)


def track_moving(
    cameras: list[ViewCameras],
    depths: list[np.ndarray],
    masks: list[np.ndarray],
    videos: list[np.ndarray],
    queries: np.ndarray,
    world: np.ndarray,
    idx: np.ndarray,
    depth_tol: float,
    flow_config: FlowConfig | None,
    tracks: np.ndarray,
    visible: np.ndarray,
) -> str:
    """Fill ``tracks`` ``[V, T, N, 2]`` / ``visible`` ``[V, T, N]`` for the moving queries ``idx`` at frames other than their own.

    ``world`` ``[N, 3]``: each query's world point at its query frame. Returns a one-line note.
    """
    config = flow_config or FlowConfig()
    T = tracks.shape[1]
    q = np.asarray(queries, np.float64)
    qv, qt = q[:, 0].astype(np.int64), q[:, 1].astype(np.int64)
    ids = np.zeros(len(q), np.int64)
    for n in idx:
        ids[n] = masks[qv[n]][qt[n]][int(q[n, 3]), int(q[n, 2])]
    flows = [view_flows(video, config) for video in videos]
    motions = object_motions(cameras, depths, masks, flows, sorted(set(ids[idx].tolist())))
    w2c = [cam.w2c() for cam in cameras]
    done = np.zeros((T, len(q)), bool)
    # 1. Rigid motion, per (object, query frame) group.
    for k in np.unique(ids[idx]):
        for s in np.unique(qt[idx][ids[idx] == k]):
            group = idx[(ids[idx] == k) & (qt[idx] == s)]
            for t in range(T):
                M = motions[int(k)].between(int(s), t) if t != s else None
                if M is None:
                    continue
                moved = world[group] @ M[:3, :3].T + M[:3, 3]
                _project_into_all(cameras, w2c, depths, t, moved, group, depth_tol, tracks, visible)
                done[t, group] = True
    rigid_steps = int(done[:, idx].sum())
    # 2. Per-point flow where no rigid motion holds.
    for v in np.unique(qv[idx]):
        sel = idx[qv[idx] == v]
        todo = ~done[:, sel]
        todo[qt[sel], np.arange(len(sel))] = False
        if not todo.any():
            continue
        path, ok = chain_tracks(flows[v], qt[sel], q[sel, 2:4], config)
        for t in range(T):
            keep = ok[t] & todo[t]
            if not keep.any():
                continue
            pts = path[t, keep]
            d = query_depth(depths[v][t], pts)
            good = (sample_nearest(masks[v][t], pts) == ids[sel][keep]) & np.isfinite(d) & (d > 0)
            if not good.any():
                continue
            n_good = sel[keep][good]
            moved = backproject(cameras[v].K[t], cameras[v].c2w[t], pts[good], d[good])
            _project_into_all(cameras, w2c, depths, t, moved, n_good, depth_tol, tracks, visible)
            tracks[v, t, n_good] = pts[good]  # the flow position itself in the query view
    total = len(idx) * max(T - 1, 1)
    return (
        f"{len(idx)} queries on moving objects: rigid object motion for {100 * rigid_steps / total:.0f}% of their frames, "
        "per-point flow elsewhere"
    )
