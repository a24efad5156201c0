"""The weight-free ``flow`` method: multi-view tracks from synchronized videos and their cameras.

For a query at (view q, frame s, x, y):

1. temporal track in view q: chained optical flow forward and backward from s, with
   forward-backward checks (mvt4g.tracks.flow); a chain that was lost is picked up again every
   ``direct_stride`` frames by flow straight from s, where s is a key frame (see 2);
2. cross-view association at a key frame f (s itself when s is a multiple of
   ``association_stride``, else the nearest one; key frames keep the number of plane sweeps
   small when queries sit on many frames): the track's point in view q at f is matched into
   every other view v by a multi-view plane sweep with a left-right check (mvt4g.tracks.mvs).
   Where the match fails (occluded in v, out of v's image, textureless, ambiguous) or the
   track was lost in view q before f, the track is not visible in v at any frame: visibility
   is never guessed (the rejected best match is kept as its position, which carries no meaning);
3. temporal tracks in the other views: chained flow from the associated point at f. Where
   such a chain is lost, the point is associated again at later key frames (every
   ``reassociate_stride``-th one) from the query-view point there, and a new chain fills the
   frames the old one does not see;
4. static points (mvt4g.tracks.static, :func:`static_points`): 3D hypotheses for the point
   are triangulated from its query-view track (over all its frames, and over the frames near
   f, where the chain has drifted least) or read from the sweep's best plane at f. One holds
   when the track follows its projection (within ``static_px``) on at least
   ``static_inlier_frac`` of its frames with enough parallax there that another depth would
   have strayed; the sweep's plane also holds without parallax (a camera that stands or only
   turns cannot tell depth) when the track follows it on ``static_still_frac`` of its frames.
   A point with a hypothesis that holds is static (the sweep's plane is preferred when it holds
   on nearly as many frames: it agrees with the other views, where a triangulation from one
   view's small motion can be off in depth). Its 3D point is then re-triangulated from
   every view and frame whose chain still follows it (kept where it reprojects within
   ``static_px`` of all of them) and its position in every view and frame is the projection
   (cameras known). Chains that stray from it lose visibility there; views that never
   associated the point check by motion whether they see it (a chain started at the
   projection must keep following it, with parallax); the visibility of a static point comes
   only from chains that follow it, never from the projection itself. Tracks that no
   hypothesis of the query view proves static, but that one world point explains in two views
   or more over several frames, are static too (:func:`mvt4g.tracks.static.fit_multiview`: the
   baselines between views fix a depth that one view's own motion cannot);
4b. best guesses where nothing is claimed: a point that is not static but whose query-view
   chain followed the sweep plane's projection while it held is most likely static scene too
   (lost at once to aliasing or an occluder); where its chains are lost, its position is that
   projection (in its own view only after one followed step). Visibility is not touched: the
   metrics score positions of hidden-by-us points as well, and this guess beats a stray chain;
4c. lost points inside a static surface (mvt4g.tracks.local_plane): a point that is not static
   but has static points all around it in its query view (a plane fitted to their world points
   fits them) gets the projection of its ray's meeting with that plane where its chains are lost
   (visibility untouched, as in 4b). Where no static points are around (far ground near the
   horizon, whose texture aliases and breaks the chains at once), a point whose sweep plane at
   the key frame lies on the ground plane (found by the sweep, mvt4g.tracks.ground) takes the
   ground's projection the same way;
5. drift check with the cameras: at every frame where the track is visible in the query view,
   its point in each other view must lie within ``epipolar_px`` of the epipolar line of the
   query-view point (same instant, synchronized cameras; moving points obey it too); a point
   that does not is marked not visible there. Points that are not static are moved onto that
   line wherever the query-view point holds (their error across it is drift);
6. points that are neither static nor on the sweep plane (4b), mostly on moving objects: a lost
   query-view chain takes the local motion of the neighbouring chains that hold and moved like
   it (mvt4g.tracks.neighbours); then the point is triangulated frame by frame from the views
   that see it at once (mvt4g.tracks.dynamic): a view that strays from the others drifted (not
   visible there), and where a view lost it the position is the projection of the per-frame
   point (on the query view's ray at an interpolated depth where fewer than two views see it).

So track n is the same physical point in every view as far as the matches and chains can
tell; points the method cannot vouch for are marked not visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.tracks.dynamic import dynamic_points
from mvt4g.tracks.flow import FlowConfig, ViewFlows, chain_tracks, view_flows
from mvt4g.tracks.local_plane import local_plane_points, on_plane
from mvt4g.tracks.mvs import Associator
from mvt4g.tracks.neighbours import neighbour_fill
from mvt4g.tracks.static import (
    first_run,
    fit_multiview,
    parallax,
    project_all,
    refine_static,
    static_points,
    verify_in_view,
)
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
    reassociated: int = 0
    notes: list[str] = field(default_factory=list)


def centres_of(cameras: list[ViewCameras], view: int, frames: np.ndarray) -> np.ndarray:
    """Camera centres ``[n, 3]`` of one view at the given frames."""
    return cameras[view].c2w[np.asarray(frames), :3, 3]


def centres_of_queries(cameras: list[ViewCameras], views: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Camera centres ``[N, 3]`` of each query's view at its frame."""
    out = np.zeros((len(views), 3))
    for v in np.unique(views):
        sel = views == v
        out[sel] = centres_of(cameras, int(v), frames[sel])
    return out


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

    # 1. Temporal chains in each query's own view (lost ones picked up again by flow straight
    #    from the query frame where that is a key frame: mvt4g.tracks.flow._reacquire).
    keys = {int(k) for k in association_frame(np.arange(T), T, config.association_stride)}
    tracks = np.zeros((V, T, N, 2))
    visible = np.zeros((V, T, N), bool)
    for v in range(V):
        sel = np.flatnonzero(qv == v)
        if len(sel):
            path, ok = chain_tracks(flows[v], qt[sel], qxy[sel], config, direct_starts=keys)
            tracks[v][:, sel], visible[v][:, sel] = path, ok

    # 2. Cross-view association at the key frame nearest each query frame (the query frame
    #    itself when it is one), from the query's chained position there.
    key = association_frame(qt, T, config.association_stride)
    start_xy = np.zeros((V, N, 2))
    start_ok = np.zeros((V, N), bool)
    assoc = Associator(videos, cameras, config.stereo, config.stereo_max_side)
    if config.refine_down:
        change = assoc.refine_down(0)
        if change is not None:
            report.notes.append(f"world down refined from the ground by {change:.1f} degrees")
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
            path, ok = chain_tracks(flows[v], key[sel], start_xy[v, sel], config, start_ok[v, sel], keys)
            tracks[v][:, sel], visible[v][:, sel] = path, ok

    # 3b. Chains lost in another view b are associated again at later key frames, from the
    #     query-view point there (where that still holds): a point hidden in b for a while, or
    #     a chain that broke, gets a new start. The new chain fills only frames where the old
    #     one is not visible.
    if config.reassociate_stride > 0:
        # Plane sweeps dominate the cost: only every reassociate_stride-th key frame.
        stride = config.association_stride * config.reassociate_stride
        again = sorted({int(k) for k in association_frame(np.arange(T), T, stride)})
        for a in range(V):
            for f in again:
                sel = np.flatnonzero((qv == a) & (key != f) & visible[a, f])
                for b in range(V):
                    if b == a or len(sel) == 0:
                        continue
                    lost = sel[~visible[b, f, sel]]
                    if len(lost) == 0:
                        continue
                    m, ok = assoc.associate(a, b, int(f), tracks[a, f, lost])
                    lost, m = lost[ok], m[ok]
                    if len(lost) == 0:
                        continue
                    path, ok = chain_tracks(flows[b], np.full(len(lost), f), m, config)
                    take = ok & ~visible[b][:, lost]
                    tracks[b][:, lost] = np.where(take[..., None], path, tracks[b][:, lost])
                    visible[b][:, lost] |= take
                    report.reassociated += len(lost)

    # 4. Static points (mvt4g.tracks.static): 3D hypotheses from the query-view track itself
    #    (triangulated over all its frames, and over the frames near the key frame, where the
    #    chain has drifted least) and from the sweep's best plane at f (accepted or not). A
    #    hypothesis holds when the track follows its projection on most of its frames with
    #    enough parallax there that another depth would have strayed (an accepted plane is
    #    vouched for by the sweep and needs no parallax, but must fit every frame).
    idx = np.arange(N)
    seen = visible[qv, :, idx]  # [N, T]: frames where the query-view chain holds
    chain_q = tracks[qv, :, idx]
    world, static, proj, front, plane_world, plane_exists = static_points(cameras, assoc, qv, key, chain_q, first_run(seen, qt), config)
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
    # 4a. Static points found across views (mvt4g.tracks.static.fit_multiview): tracks that one
    #     point explains in every view that sees them, over several frames. The wide baselines
    #     between views fix the depth of points whose own view moves too little to.
    if config.multiview_static:
        cand = ~static & (visible.any(1).sum(0) >= 2)
        mv_world, mv_holds, inliers = fit_multiview(
            cameras, tracks, visible, cand, config.static_px, config.static_min_frames, config.static_inlier_frac
        )
        if mv_holds.any():
            mv_proj, mv_front = project_all(cameras, mv_world)
            visible &= ~(mv_holds[None, None] & ~inliers)  # observations that stray from it drifted
            tracks = np.where((mv_holds[None, None] & mv_front)[..., None], mv_proj, tracks)
            static |= mv_holds
            world = np.where(mv_holds[:, None], mv_world, world)
            report.notes.append(f"{int(mv_holds.sum())} static points found across views")
    report.static = int(static.sum())

    # 4b. Best guesses where nothing is claimed (module docstring): the sweep plane's projection
    #     for points that followed it while their query-view chain held.
    weak = np.zeros(N, bool)
    if config.plane_fallback:
        pproj, pfront = project_all(cameras, plane_world)
        resid = np.linalg.norm(pproj[qv, :, idx] - chain_q, axis=-1)
        # Judged on the chain's first unbroken run from the query frame (re-acquired frames,
        # with their larger parallax, would reject points on an imprecise plane).
        run = first_run(seen, qt)
        weak = ~static & plane_exists & ~(run & (resid > config.static_px)).any(1)
        # In its own view a point lost at the first step is as often on a fast object as on
        # aliased far texture: there the chain's guess is kept unless it followed the plane a step.
        own_view = np.arange(V)[:, None] == qv[None]  # [V, N]
        weak_here = weak[None] & (~own_view | (run.sum(1) >= config.fallback_min_frames)[None])
        fill = weak_here[:, None] & pfront & ~visible
        tracks = np.where(fill[..., None], pproj, tracks)

    # 4c. Lost points inside a static surface (mvt4g.tracks.local_plane): where their chains are
    #     lost, the projection of their ray's meeting with the plane of the static points around them.
    #     (Also for points placed on the sweep plane by 4b: the static points around them give the
    #     better plane; measured on 4 dev scenes, temporal / cross-view delta_avg 0.719 / 0.525
    #     without them, 0.725 / 0.525 with.)
    if config.local_plane:
        lp_world, lp_found = local_plane_points(cameras, world, static, ~static, qv, qt, qxy, config.local_plane_radius)
        if assoc.ground is not None and config.ground_fill:
            # Where no static points are around (far ground near the horizon): the ground plane,
            # for points whose sweep plane at the key frame lies on it. (Measured on 4 dev scenes:
            # temporal / cross-view delta_avg 0.725 / 0.525 -> 0.749 / 0.545; points on moving
            # objects 0.391 -> 0.368 temporal, some sit on the ground. Also asking that a chain that
            # held followed the ground's projection: 0.744 / 0.539, more static points lost.)
            g_world, g_hit = on_plane(cameras, *assoc.ground, qv, qt, qxy)
            depth = np.linalg.norm(g_world - centres_of_queries(cameras, qv, qt), axis=1)
            near_ground = np.abs((plane_world - assoc.ground[1]) @ assoc.ground[0]) < config.ground_fill_frac * depth
            use = ~static & ~lp_found & g_hit & plane_exists & near_ground
            lp_world = np.where(use[:, None], g_world, lp_world)
            lp_found |= use
        if lp_found.any():
            lproj, lfront = project_all(cameras, lp_world)
            fill = lp_found[None, None] & lfront & ~visible
            tracks = np.where(fill[..., None], lproj, tracks)
            report.notes.append(f"{int(lp_found.sum())} lost points placed on the static surface around them")

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
    # 6. Points that are not static (and not placed on the sweep plane by 4b): lost query-view
    #    chains follow their neighbours (mvt4g.tracks.neighbours); then one world point per
    #    frame from every view that sees the point (mvt4g.tracks.dynamic): drifted chains drop
    #    out, lost ones take its projection, visible ones too where it is solved.
    fillable = ~static & ~weak
    if config.neighbour_fill:
        for v in range(V):
            sel = np.flatnonzero(qv == v)
            if len(sel):
                tracks[v][:, sel] = neighbour_fill(
                    tracks[v][:, sel], visible[v][:, sel], qt[sel], fillable[sel], config.neighbour_radius, config.neighbour_agree_px
                )[0]
    if config.dynamic_triangulate:
        tracks, visible, dropped = dynamic_points(
            cameras, tracks, visible, ~static, qv, config.dynamic_outlier_px, fillable
        )
        report.notes.append(f"{dropped} chained observations off their per-frame triangulation")
    n_all = np.arange(N)
    tracks[qv, qt, n_all] = qxy
    visible[qv, qt, n_all] = True
    return tracks.astype(np.float32), visible, report
