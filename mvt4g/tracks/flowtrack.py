"""The weight-free ``flow`` method: multi-view tracks from synchronized videos and their cameras.

For a query at (view q, frame s, x, y):

1. temporal track in view q: chained optical flow forward and backward from s, with
   forward-backward checks (mvt4g.tracks.flow);
2. cross-view association at a key frame f (s itself when s is a multiple of
   ``association_stride``, else the nearest one; key frames keep the number of plane sweeps
   small when queries sit on many frames): the track's point in view q at f is matched into
   every other view v by a multi-view plane sweep with a left-right check (mvt4g.tracks.mvs).
   Where the match fails (occluded in v, out of v's image, textureless, ambiguous) or the
   track was lost in view q before f, the track is not visible in v at any frame: visibility
   is never guessed (the rejected best match is kept as its position, which carries no meaning);
3. temporal tracks in the other views: chained flow from the associated point at f;
4. static points (mvt4g.tracks.static): the point's 3D position is triangulated from its
   query-view track (when the camera moved enough to pin the depth down) or taken from the
   sweep's accepted plane at f; when the track follows that position's projection (within
   ``static_px`` on at least ``static_min_frames`` frames), the point is static and its position
   in every view and frame is the projection (cameras known). Chains that stray from it lose
   visibility there; views that never associated the point check by motion whether they see
   it (a chain started at the projection must keep following it, with parallax); positions of
   frames where the point is not seen are filled with the projection (still not visible);
5. drift check with the cameras: at every frame where the track is visible in the query view,
   its point in each other view must lie within ``epipolar_px`` of the epipolar line of the
   query-view point (same instant, synchronized cameras; moving points obey it too); a point
   that does not is marked not visible there.

So track n is the same physical point in every view as far as the matches and chains can
tell; points the method cannot vouch for are marked not visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.tracks.flow import FlowConfig, ViewFlows, chain_tracks, view_flows
from mvt4g.tracks.mvs import Associator
from mvt4g.tracks.static import parallax, project_all, rays, triangulate, verify_in_view
from mvt4g.tracks.stereo import relative_pose


@dataclass
class FlowReport:
    """What the flow method did: the flow algorithm and cross-view association counts."""

    algorithm: str = ""
    associated: int = 0
    association_tried: int = 0
    drift_dropped: int = 0
    static: int = 0
    verified: int = 0
    notes: list[str] = field(default_factory=list)


def centres_of(cameras: list[ViewCameras], view: int, frames: np.ndarray) -> np.ndarray:
    """Camera centres ``[n, 3]`` of one view at the given frames."""
    return cameras[view].c2w[np.asarray(frames), :3, 3]


def association_frame(query_frames: np.ndarray, num_frames: int, stride: int) -> np.ndarray:
    """The frame at which each query is associated across views: the nearest multiple of ``stride``
    (or the last frame), so plane sweeps run on a few key frames only; ``stride`` <= 1: the query frame."""
    qt = np.asarray(query_frames, np.int64)
    if stride <= 1:
        return qt.copy()
    keys = np.unique(np.concatenate([np.arange(0, num_frames, stride), [num_frames - 1]]))
    return keys[np.abs(keys[None, :] - qt[:, None]).argmin(axis=1)]


def fundamental(K_a: np.ndarray, c2w_a: np.ndarray, K_b: np.ndarray, c2w_b: np.ndarray) -> np.ndarray:
    """F with ``x_b^T F x_a = 0`` for pixels of the same world point in cameras a and b."""
    R, t = relative_pose(c2w_a, c2w_b)
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return np.linalg.inv(K_b).T @ tx @ R @ np.linalg.inv(K_a)


def epipolar_distance(F: np.ndarray, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Distance (pixels) of points ``xb`` ``[n, 2]`` from the epipolar lines of ``xa`` ``[n, 2]``; 0 when there is no baseline."""
    ha = np.concatenate([xa, np.ones((len(xa), 1))], axis=1)
    hb = np.concatenate([xb, np.ones((len(xb), 1))], axis=1)
    lines = ha @ F.T
    norm = np.hypot(lines[:, 0], lines[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs((lines * hb).sum(1)) / norm
    return np.where(norm > 1e-12, d, 0.0)


def flow_tracks(
    videos: list[np.ndarray],
    cameras: list[ViewCameras],
    queries: np.ndarray,
    config: FlowConfig | None = None,
    flows: list[ViewFlows] | None = None,
) -> tuple[np.ndarray, np.ndarray, FlowReport]:
    """Multi-view tracks by the flow method (module docstring).

    Args:
        videos: per view, uint8 ``[T, H, W, 3]`` (same T, H, W; synchronized).
        cameras: per view, T frames.
        queries: float ``[N, 4]`` (view, frame, x, y).
        flows: precomputed per-view flows (else computed here).

    Returns:
        tracks float32 ``[V, T, N, 2]``, visible bool ``[V, T, N]``, and a report.
    """
    config = config or FlowConfig()
    V = len(videos)
    T, H, W = videos[0].shape[:3]
    q = np.asarray(queries, np.float64)
    N = len(q)
    qv, qt, qxy = q[:, 0].astype(np.int64), q[:, 1].astype(np.int64), q[:, 2:4]
    report = FlowReport()

    flows = flows if flows is not None else [view_flows(video, config) for video in videos]
    report.algorithm = flows[0].algorithm if flows else ""

    # 1. Temporal chains in each query's own view.
    tracks = np.zeros((V, T, N, 2))
    visible = np.zeros((V, T, N), bool)
    for v in range(V):
        sel = np.flatnonzero(qv == v)
        if len(sel):
            path, ok = chain_tracks(flows[v], qt[sel], qxy[sel], config)
            tracks[v][:, sel], visible[v][:, sel] = path, ok

    # 2. Cross-view association at the key frame nearest each query frame (the query frame
    #    itself when it is one), from the query's chained position there.
    key = association_frame(qt, T, config.association_stride)
    start_xy = np.zeros((V, N, 2))
    start_ok = np.zeros((V, N), bool)
    assoc = Associator(videos, cameras, config.stereo, config.stereo_max_side)
    for a in range(V):
        for f in np.unique(key[qv == a]):
            sel = np.flatnonzero((qv == a) & (key == f))
            at_f = tracks[a, f, sel]
            reached = visible[a, f, sel]
            for b in range(V):
                if b == a:
                    continue
                m, ok = assoc.associate(a, b, int(f), at_f)
                start_xy[b, sel] = m
                start_ok[b, sel] = ok & reached
                report.associated += int((ok & reached).sum())
                report.association_tried += len(sel)

    # 3. Temporal chains in the other views from the associated points.
    for v in range(V):
        sel = np.flatnonzero(qv != v)
        if len(sel):
            path, ok = chain_tracks(flows[v], key[sel], start_xy[v, sel], config, start_ok[v, sel])
            tracks[v][:, sel], visible[v][:, sel] = path, ok

    # 4. Static points (mvt4g.tracks.static): a 3D position from the query-view track itself
    #    (triangulated, when the camera moved enough) or from the accepted plane at f; when
    #    the track follows its projection, the point is static and known in every view.
    idx = np.arange(N)
    seen = visible[qv, :, idx]  # [N, T]: frames where the query-view chain holds
    chain_q = tracks[qv, :, idx]
    centres, dirs = rays(cameras, qv, chain_q)
    world, solvable = triangulate(centres, dirs, seen)
    anchor = centres[idx, key]
    proj, front = project_all(cameras, world)
    pinned = solvable & (np.where(seen, parallax(cameras, world, anchor, proj)[qv, :, idx], 0.0).max(1) > 2 * config.static_px)
    plane_world = np.zeros((N, 3))
    accepted = np.zeros(N, bool)
    for a in range(V):
        for f in np.unique(key[qv == a]):
            sel = np.flatnonzero((qv == a) & (key == f))
            plane_world[sel], accepted[sel], _ = assoc.world_points(a, int(f), tracks[a, f, sel])
    use_plane = ~pinned & accepted
    if use_plane.any():
        world = np.where(use_plane[:, None], plane_world, world)
        proj, front = project_all(cameras, world)
    resid = np.where(seen, np.linalg.norm(proj[qv, :, idx] - chain_q, axis=-1), 0.0)
    static = (pinned | use_plane) & (seen.sum(1) >= config.static_min_frames) & (resid.max(1) <= config.static_px)
    if static.any():
        far = np.linalg.norm(tracks - proj, axis=-1) > config.static_px
        mine = static[None, None] & front
        visible &= ~(mine & far)  # a chain that left its static point drifted
        for b in range(V):
            # Views that never saw the point: check by motion whether they see it after all.
            cand = np.flatnonzero(static & (qv != b) & ~visible[b].any(0) & front[b, key, idx])
            start = proj[b, key[cand], cand]
            inside = (start >= 0).all(1) & (start[:, 0] < W) & (start[:, 1] < H)
            cand, start = cand[inside], start[inside]
            if len(cand) == 0:
                continue
            chain, chain_ok = chain_tracks(flows[b], key[cand], start, config)
            moved = parallax(cameras, world[cand], centres_of(cameras, b, key[cand]), proj[:, :, cand])[b]
            seen_b = verify_in_view(chain, chain_ok, proj[b][:, cand], moved, config.static_px, config.static_min_frames)
            visible[b][:, cand] = seen_b & front[b][:, cand]
            report.verified += int(seen_b.any(0).sum())
        fill = mine & (~visible | far)
        tracks = np.where(fill[..., None], proj, tracks)
    report.static = int(static.sum())

    # 5. Drift check against the query view's point, frame by frame.
    for a in range(V):
        sel_a = qv == a
        if not sel_a.any():
            continue
        for t in range(T):
            for b in range(V):
                if b == a:
                    continue
                check = np.flatnonzero(sel_a & visible[a, t] & visible[b, t])
                if len(check) == 0:
                    continue
                F = fundamental(cameras[a].K[t], cameras[a].c2w[t], cameras[b].K[t], cameras[b].c2w[t])
                d = epipolar_distance(F, tracks[a, t, check], tracks[b, t, check])
                bad = check[d > config.epipolar_px]
                visible[b, t, bad] = False
                report.drift_dropped += len(bad)
    n_all = np.arange(N)
    tracks[qv, qt, n_all] = qxy
    visible[qv, qt, n_all] = True
    return tracks.astype(np.float32), visible, report
