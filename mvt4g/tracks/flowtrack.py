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
4. static points (mvt4g.tracks.static, :func:`static_points`): 3D hypotheses for the point
   are triangulated from its query-view track (over all its frames, and over the frames near
   f, where the chain has drifted least) or read from the sweep's best plane at f. One holds
   when the track follows its projection (within ``static_px``) on at least
   ``static_inlier_frac`` of its frames with enough parallax there that another depth would
   have strayed; the sweep's plane also holds without parallax (a camera that stands or only
   turns cannot tell depth) when the track follows it on ``static_still_frac`` of its frames.
   A point with a hypothesis that holds is static. Its 3D point is then re-triangulated from
   every view and frame whose chain still follows it (kept where it reprojects within
   ``static_px`` of all of them) and its position in every view and frame is the projection
   (cameras known). Chains that stray from it lose visibility there; views that never
   associated the point check by motion whether they see it (a chain started at the
   projection must keep following it, with parallax); the visibility of a static point comes
   only from chains that follow it, never from the projection itself;
5. drift check with the cameras: at every frame where the track is visible in the query view,
   its point in each other view must lie within ``epipolar_px`` of the epipolar line of the
   query-view point (same instant, synchronized cameras; moving points obey it too); a point
   that does not is marked not visible there. Points that are not static are moved onto that
   line wherever the query-view point holds (their error across it is drift).

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


def onto_epipolar_line(F: np.ndarray, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Points ``xb`` ``[n, 2]`` moved orthogonally onto the epipolar lines of ``xa`` ``[n, 2]`` (unchanged without a baseline)."""
    ha = np.concatenate([xa, np.ones((len(xa), 1))], axis=1)
    lines = ha @ F.T
    norm2 = lines[:, 0] ** 2 + lines[:, 1] ** 2
    signed = lines[:, 0] * xb[:, 0] + lines[:, 1] * xb[:, 1] + lines[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(norm2 > 1e-24, signed / norm2, 0.0)
    return xb - step[:, None] * lines[:, :2]


def static_points(
    cameras: list[ViewCameras],
    assoc: Associator,
    qv: np.ndarray,
    key: np.ndarray,
    chain_q: np.ndarray,
    seen: np.ndarray,
    config: FlowConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """World points ``[N, 3]`` of the tracks that are static, which are ``[N]``, and their projections
    ``[V, T, N, 2]`` with in-front flags ``[V, T, N]`` (step 4 of the module docstring).

    Args:
        qv, key: each track's query view and association (key) frame ``[N]``.
        chain_q, seen: the query-view chain ``[N, T, 2]`` and where it holds ``[N, T]``.
    """
    N, T = seen.shape
    idx = np.arange(N)
    centres, dirs = rays(cameras, qv, chain_q)
    anchor = centres[idx, key]
    near_key = seen & (np.abs(np.arange(T)[None] - key[:, None]) <= config.static_near_frames)
    hypotheses: list[tuple[np.ndarray, np.ndarray, bool]] = []  # (world, exists, held without parallax)
    for use in (seen, near_key):
        hypotheses.append((*triangulate(centres, dirs, use), False))
    plane_world = np.zeros((N, 3))
    exists = np.zeros(N, bool)
    for a in np.unique(qv):
        for f in np.unique(key[qv == a]):
            sel = np.flatnonzero((qv == a) & (key == f))
            plane_world[sel], _, exists[sel] = assoc.world_points(int(a), int(f), chain_q[sel, f])
    # Without parallax (a camera that stands or only turns) the query view cannot tell depth:
    # a track that stays on the best plane's projection on most frames is static, at the
    # plane's depth (the sweep's winner, right for most points even when not accepted; with
    # parallax a wrong depth makes the track stray and fail). Its other views then get the
    # projection as position; whether they see it is still only claimed by association or by
    # motion (flow_tracks), never by this hypothesis.
    hypotheses.append((plane_world, exists, True))

    best_world = np.zeros((N, 3))
    best_support = np.zeros(N)
    static = np.zeros(N, bool)
    enough = seen.sum(1) >= config.static_min_frames
    for world, valid, still in hypotheses:
        proj, _ = project_all(cameras, world)
        resid = np.linalg.norm(proj[qv, :, idx] - chain_q, axis=-1)  # [N, T]
        follows = seen & (resid <= config.static_px)
        count = follows.sum(1)
        if still:
            holds = valid & enough & (count >= config.static_still_frames)
            holds &= count >= config.static_still_frac * seen.sum(1)
        else:
            moved = parallax(cameras, world, anchor, proj)[qv, :, idx]
            holds = valid & enough & (count >= config.static_min_frames)
            holds &= count >= config.static_inlier_frac * seen.sum(1)
            holds &= np.where(follows, moved, 0.0).max(1) > 2 * config.static_px
        # Prefer the hypothesis the track follows on more frames (ties: the earlier one).
        better = holds & (count > best_support)
        best_world[better] = world[better]
        best_support[better] = count[better]
        static |= holds
    proj, front = project_all(cameras, best_world)
    return best_world, static, proj, front


def refine_static(
    cameras: list[ViewCameras],
    tracks: np.ndarray,
    visible: np.ndarray,
    static: np.ndarray,
    world: np.ndarray,
    proj: np.ndarray,
    front: np.ndarray,
    static_px: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Static points re-triangulated from every view and frame that sees them (``tracks`` ``[V, T, N, 2]``
    where ``visible``): wide baselines pin the depth down better than one view's track or the
    sweep's plane. Kept only where the new point still reprojects within ``static_px`` of every
    observation used. Returns world ``[N, 3]``, projections ``[V, T, N, 2]`` and in-front flags."""
    V, _, N = visible.shape
    centres, dirs, use = [], [], []
    for v in range(V):
        c, d = rays(cameras, np.full(N, v), tracks[v].transpose(1, 0, 2))
        centres.append(c)
        dirs.append(d)
        use.append(visible[v].T & static[:, None])
    centres, dirs, use = np.concatenate(centres, 1), np.concatenate(dirs, 1), np.concatenate(use, 1)
    views_used = (visible & static[None, None]).any(1).sum(0)  # [N]
    refined, ok = triangulate(centres, dirs, use)
    ok &= views_used >= 2
    if not ok.any():
        return world, proj, front
    new_proj, new_front = project_all(cameras, refined)
    err = np.linalg.norm(new_proj - tracks, axis=-1)  # [V, T, N]
    ok &= ~(visible & (err > static_px)).any((0, 1))
    world = np.where(ok[:, None], refined, world)
    return world, np.where(ok[None, None, :, None], new_proj, proj), np.where(ok[None, None], new_front, front)


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

    # 4. Static points (mvt4g.tracks.static): 3D hypotheses from the query-view track itself
    #    (triangulated over all its frames, and over the frames near the key frame, where the
    #    chain has drifted least) and from the sweep's best plane at f (accepted or not). A
    #    hypothesis holds when the track follows its projection on most of its frames with
    #    enough parallax there that another depth would have strayed (an accepted plane is
    #    vouched for by the sweep and needs no parallax, but must fit every frame).
    idx = np.arange(N)
    seen = visible[qv, :, idx]  # [N, T]: frames where the query-view chain holds
    chain_q = tracks[qv, :, idx]
    world, static, proj, front = static_points(cameras, assoc, qv, key, chain_q, seen, config)
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
        if config.static_refine:
            world, proj, front = refine_static(cameras, tracks, visible, static, world, proj, front, config.static_px)
            mine = static[None, None] & front
            far = np.linalg.norm(tracks - proj, axis=-1) > config.static_px
            fill = mine
        else:
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
                # Positions of moving (not static) points in b: onto the epipolar line of the
                # query-view point where that one holds (the error across the line is drift).
                snap = np.flatnonzero(sel_a & visible[a, t] & ~static)
                if len(snap) and config.epipolar_snap:
                    tracks[b, t, snap] = onto_epipolar_line(F, tracks[a, t, snap], tracks[b, t, snap])
    n_all = np.arange(N)
    tracks[qv, qt, n_all] = qxy
    visible[qv, qt, n_all] = True
    return tracks.astype(np.float32), visible, report
