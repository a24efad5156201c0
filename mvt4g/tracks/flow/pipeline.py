"""The weight-free ``flow`` method: multi-view tracks from synchronized videos and their cameras.

For a query at (view q, frame s, x, y):

1. temporal track in view q: chained optical flow forward and backward from s, with
   forward-backward checks (mvt4g.tracks.flow.chains); a chain that was lost is picked up again every
   ``direct_stride`` frames by flow straight from s, where s is a key frame (see 2);
2. cross-view association at a key frame f (s itself when s is a multiple of
   ``association_stride``, else the nearest one; key frames keep the number of plane sweeps
   small when queries sit on many frames): the track's point in view q at f is matched into
   every other view v by a multi-view plane sweep with a left-right check (mvt4g.tracks.flow.association).
   Where the match fails (occluded in v, out of v's image, textureless, ambiguous) or the
   track was lost in view q before f, the track is not visible in v at any frame: visibility
   is never guessed (the rejected best match is kept as its position, which carries no meaning);
3. temporal tracks in the other views: chained flow from the associated point at f. Where
   such a chain is lost, the point is associated again at later key frames (every
   ``reassociate_stride``-th one) from the query-view point there, and a new chain fills the
   frames the old one does not see;
4. static points (mvt4g.tracks.flow.static_points): 3D hypotheses for the point
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
   or more over several frames, are static too (:func:`mvt4g.tracks.flow.static_points.fit_multiview`: the
   baselines between views fix a depth that one view's own motion cannot);
4b. best guesses where nothing is claimed: a point that is not static but whose query-view
   chain followed the sweep plane's projection while it held is most likely static scene too
   (lost at once to aliasing or an occluder); where its chains are lost, its position is that
   projection (in its own view only after one followed step). Visibility is not touched: the
   metrics score positions of hidden-by-us points as well, and this guess beats a stray chain;
4c. lost points inside a static surface (mvt4g.tracks.flow.local_plane): a point that is not static
   but has static points all around it in its query view (a plane fitted to their world points
   fits them) gets the projection of its ray's meeting with that plane where its chains are lost
   (visibility untouched, as in 4b). Where no static points are around (far ground near the
   horizon, whose texture aliases and breaks the chains at once), a point whose sweep plane at
   the key frame lies on the ground plane (found by the sweep, mvt4g.tracks.flow.ground) takes the
   ground's projection the same way;
5. drift check with the cameras: at every frame where the track is visible in the query view,
   its point in each other view must lie within ``epipolar_px`` of the epipolar line of the
   query-view point (same instant, synchronized cameras; moving points obey it too); a point
   that does not is marked not visible there. Points that are not static are moved onto that
   line wherever the query-view point holds (their error across it is drift);
6. points that are neither static nor on the sweep plane (4b), mostly on moving objects: a lost
   query-view chain takes the local motion of the neighbouring chains that hold and moved like
   it (mvt4g.tracks.flow.neighbours); then the point is triangulated frame by frame from the views
   that see it at once (mvt4g.tracks.flow.dynamic_points): a view that strays from the others drifted (not
   visible there), and where a view lost it the position is the projection of the per-frame
   point (on the query view's ray where fewer than two views see it, at the depth of the
   triangulated points around it in the query view that moved like it, else at a depth
   interpolated in time: mvt4g.tracks.flow.neighbour_depths).

So track n is the same physical point in every view as far as the matches and chains can
tell; points the method cannot vouch for are marked not visible.
"""


from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.tracks.flow.association import Associator
from mvt4g.tracks.flow.chains import chain_tracks
from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.flow.dynamic_points import dynamic_points
from mvt4g.tracks.flow.epipolar import (
    epipolar_distance,
    fundamental,
    onto_epipolar_line,
)
from mvt4g.tracks.flow.local_plane import local_plane_points, on_plane
from mvt4g.tracks.flow.neighbours import neighbour_fill
from mvt4g.tracks.flow.optical_flow import ViewFlows, view_flows
from mvt4g.tracks.flow.static_points import (
    first_run,
    fit_multiview,
    parallax,
    refine_static,
    static_points,
    verify_in_view,
)
from mvt4g.tracks.projection import project_all


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



@dataclass
class FlowRun:
    """One call of :func:`flow_tracks`: its inputs, and what each step hands on to the next.

    ``tracks`` ``[V, T, N, 2]`` and ``visible`` ``[V, T, N]`` are what every step refines. The
    queries are split into ``qv``, ``qt`` ``[N]`` (view, frame) and ``qxy`` ``[N, 2]``; ``key``
    ``[N]`` is each query's association (key) frame, ``keys`` every key frame.
    """

    videos: list[np.ndarray]
    cameras: list[ViewCameras]
    config: FlowConfig
    flows: list[ViewFlows]
    qv: np.ndarray
    qt: np.ndarray
    qxy: np.ndarray
    key: np.ndarray
    keys: set[int]
    tracks: np.ndarray
    visible: np.ndarray
    report: FlowReport
    image_size: tuple[int, int]
    assoc: Associator | None = None  # step 2
    start_xy: np.ndarray | None = None  # step 2: associated points [V, N, 2] at the key frame
    start_ok: np.ndarray | None = None  # step 2: and whether accepted [V, N]
    chain_q: np.ndarray | None = None  # step 4: the query-view chain [N, T, 2] after step 3b
    seen: np.ndarray | None = None  # step 4: where it holds [N, T]
    world: np.ndarray | None = None  # step 4: static points [N, 3]
    static: np.ndarray | None = None  # step 4: which tracks are static [N]
    plane_world: np.ndarray | None = None  # step 4: the sweep's plane point at the key frame [N, 3]
    plane_exists: np.ndarray | None = None  # step 4: whether there is one [N]
    weak: np.ndarray | None = None  # step 4b: points placed on the sweep plane [N]

    @property
    def num_tracks(self) -> int:
        return len(self.qv)


def flow_tracks(
    videos: list[np.ndarray],
    cameras: list[ViewCameras],
    queries: np.ndarray,
    config: FlowConfig | None = None,
    flows: list[ViewFlows] | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, FlowReport]:
    """Multi-view tracks by the flow method (module docstring: the steps below).

    Args:
        videos: per view, uint8 ``[T, H, W, 3]`` (same T, H, W; synchronized).
        cameras: per view, T frames.
        queries: float ``[N, 4]`` (view, frame, x, y).
        flows: precomputed per-view flows (else computed here).
        timings: if given, filled with the wall seconds of each step (:data:`STEPS` names, and
            "flow" for the dense flows; flow straight between key frames, computed on demand
            inside the chaining steps, is also counted apart as "direct flow").

    Returns:
        tracks float32 ``[V, T, N, 2]``, visible bool ``[V, T, N]``, and a report.
    """
    config = config or FlowConfig()
    clock = time.perf_counter()
    if flows is None:
        flows = compute_flows(videos, config)
    if timings is not None:
        timings["flow"] = time.perf_counter() - clock
    run = start_run(videos, cameras, queries, config, flows)
    for name, step in STEPS:
        clock = time.perf_counter()
        step(run)
        if timings is not None:
            timings[name] = time.perf_counter() - clock
    if timings is not None:
        timings["direct flow"] = sum(f.direct_seconds for f in flows)
    return finish_run(run)


def compute_flows(videos: list[np.ndarray], config: FlowConfig) -> list[ViewFlows]:
    """Every view's consecutive-frame flows (:func:`mvt4g.tracks.flow.optical_flow.view_flows`), the
    views on worker threads (OpenCV's thread count; OpenCV releases the GIL, and each view has its
    own estimator, so the flows are the same as one view after another)."""
    workers = min(len(videos), max(1, cv2.getNumThreads()))
    if workers <= 1:
        return [view_flows(video, config) for video in videos]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda video: view_flows(video, config), videos))


def start_run(
    videos: list[np.ndarray], cameras: list[ViewCameras], queries: np.ndarray, config: FlowConfig, flows: list[ViewFlows] | None
) -> FlowRun:
    """Split the queries, compute the flows (unless given) and choose the key frames."""
    V = len(videos)
    T, H, W = videos[0].shape[:3]
    q = np.asarray(queries, np.float64)
    N = len(q)
    qt = q[:, 1].astype(np.int64)
    flows = flows if flows is not None else compute_flows(videos, config)
    report = FlowReport(algorithm=flows[0].algorithm if flows else "")
    return FlowRun(
        videos, cameras, config, flows, q[:, 0].astype(np.int64), qt, q[:, 2:4],
        key=association_frame(qt, T, config.association_stride),
        keys={int(k) for k in association_frame(np.arange(T), T, config.association_stride)},
        tracks=np.zeros((V, T, N, 2)), visible=np.zeros((V, T, N), bool), report=report, image_size=(H, W),
    )  # fmt: skip


def chain_query_views(run: FlowRun) -> None:
    """Step 1: temporal chains in each query's own view (lost ones picked up again by flow straight
    from the query frame where that is a key frame: :func:`mvt4g.tracks.flow.chains.chain_tracks`)."""
    for v in range(len(run.cameras)):
        sel = np.flatnonzero(run.qv == v)
        if len(sel):
            path, ok = chain_tracks(run.flows[v], run.qt[sel], run.qxy[sel], run.config, direct_starts=run.keys)
            run.tracks[v][:, sel], run.visible[v][:, sel] = path, ok


def associate_across_views(run: FlowRun) -> None:
    """Step 2: cross-view association at the key frame nearest each query frame (the query frame
    itself when it is one), from the query's chained position there."""
    V, N = len(run.cameras), run.num_tracks
    qv, key, report = run.qv, run.key, run.report
    run.start_xy = np.zeros((V, N, 2))
    run.start_ok = np.zeros((V, N), bool)
    run.assoc = Associator(run.videos, run.cameras, run.config.stereo, run.config.stereo_max_side)
    if run.config.refine_down:
        change = run.assoc.refine_down(0)
        if change is not None:
            report.notes.append(f"world down refined from the ground by {change:.1f} degrees")
    for a in range(V):
        for f in np.unique(key[qv == a]):
            sel = np.flatnonzero((qv == a) & (key == f))
            at_f = run.tracks[a, f, sel]
            reached = run.visible[a, f, sel]
            for b in range(V):
                if b == a:
                    continue
                m, ok = run.assoc.associate(a, b, int(f), at_f)
                run.start_xy[b, sel] = m
                run.start_ok[b, sel] = ok & reached
                report.associated += int((ok & reached).sum())
                report.association_tried += len(sel)


def chain_other_views(run: FlowRun) -> None:
    """Step 3: temporal chains in the other views from the associated points."""
    for v in range(len(run.cameras)):
        sel = np.flatnonzero(run.qv != v)
        if len(sel):
            path, ok = chain_tracks(
                run.flows[v], run.key[sel], run.start_xy[v, sel], run.config, run.start_ok[v, sel], run.keys
            )
            run.tracks[v][:, sel], run.visible[v][:, sel] = path, ok


def reassociation_frames(num_frames: int, stride: int, swept: list[set[int]] | None = None) -> list[int]:
    """Frames of step 3b, in order: every ``stride``-th frame (and the last), and the frames swept in
    every view already (``swept``, one set per view)."""
    again = {int(k) for k in association_frame(np.arange(num_frames), num_frames, stride)}
    if swept:
        again |= set.intersection(*swept)
    return sorted(again)


def reassociate_lost_chains(run: FlowRun) -> None:
    """Step 3b: chains lost in another view b are associated again at later key frames, from the
    query-view point there (where that still holds): a point hidden in b for a while, or a chain
    that broke, gets a new start. The new chain fills only frames where the old one is not visible."""
    config = run.config
    if config.reassociate_stride <= 0:
        return
    T = run.tracks.shape[1]
    tracks, visible = run.tracks, run.visible
    # Plane sweeps dominate the cost: only every reassociate_stride-th key frame, and the key
    # frames whose sweeps of every view step 2 ran anyway (queries on many frames), which cost
    # nothing more and give a point whose query-view chain broke before its own key frame a start.
    stride = config.association_stride * config.reassociate_stride
    swept = [run.assoc.swept_frames(v) for v in range(len(run.cameras))] if config.reassociate_swept else None
    again = reassociation_frames(T, stride, swept)
    for a in range(len(run.cameras)):
        for f in again:
            sel = np.flatnonzero((run.qv == a) & (run.key != f) & visible[a, f])
            for b in range(len(run.cameras)):
                if b == a or len(sel) == 0:
                    continue
                lost = sel[~visible[b, f, sel]]
                if len(lost) == 0:
                    continue
                m, ok = run.assoc.associate(a, b, int(f), tracks[a, f, lost])
                lost, m = lost[ok], m[ok]
                if len(lost) == 0:
                    continue
                path, ok = chain_tracks(run.flows[b], np.full(len(lost), f), m, config)
                take = ok & ~visible[b][:, lost]
                tracks[b][:, lost] = np.where(take[..., None], path, tracks[b][:, lost])
                visible[b][:, lost] |= take
                run.report.reassociated += len(lost)


def fit_static_points(run: FlowRun) -> None:
    """Step 4: static points (:func:`mvt4g.tracks.flow.static_points.static_points`).

    3D hypotheses from the query-view track itself (triangulated over all its frames, and over
    the frames near the key frame, where the chain has drifted least) and from the sweep's best
    plane at f (accepted or not). A hypothesis holds when the track follows its projection on
    most of its frames with enough parallax there that another depth would have strayed (an
    accepted plane is vouched for by the sweep and needs no parallax, but must fit every frame).
    """
    cameras, config, qv, key = run.cameras, run.config, run.qv, run.key
    idx = np.arange(run.num_tracks)
    run.seen = run.visible[qv, :, idx]  # [N, T]: frames where the query-view chain holds
    run.chain_q = run.tracks[qv, :, idx]
    world, static, proj, front, run.plane_world, run.plane_exists = static_points(
        cameras, run.assoc, qv, key, run.chain_q, first_run(run.seen, run.qt), config
    )
    if static.any():
        far = np.linalg.norm(run.tracks - proj, axis=-1) > config.static_px
        mine = static[None, None] & front
        run.visible &= ~(mine & far)  # a chain that left its static point drifted
        verify_static_in_other_views(run, world, static, proj, front)
        if config.static_refine:
            world, proj, front = refine_static(cameras, run.tracks, run.visible, static, world, proj, front, config.static_px)
            mine = static[None, None] & front
            far = np.linalg.norm(run.tracks - proj, axis=-1) > config.static_px
            fill = mine
        else:
            fill = mine & (~run.visible | far)
        run.tracks = np.where(fill[..., None], proj, run.tracks)
    run.world, run.static = world, static


def verify_static_in_other_views(run: FlowRun, world: np.ndarray, static: np.ndarray, proj: np.ndarray, front: np.ndarray) -> None:
    """Step 4, views that never saw a static point: check by motion whether they see it after all
    (a chain started at its projection must keep following it, with parallax)."""
    cameras, config, qv, key = run.cameras, run.config, run.qv, run.key
    H, W = run.image_size
    idx = np.arange(run.num_tracks)
    for b in range(len(cameras)):
        cand = np.flatnonzero(static & (qv != b) & ~run.visible[b].any(0) & front[b, key, idx])
        start = proj[b, key[cand], cand]
        inside = (start >= 0).all(1) & (start[:, 0] < W) & (start[:, 1] < H)
        cand, start = cand[inside], start[inside]
        if len(cand) == 0:
            continue
        chain, chain_ok = chain_tracks(run.flows[b], key[cand], start, config)
        moved = parallax(cameras, world[cand], centres_of(cameras, b, key[cand]), proj[:, :, cand])[b]
        seen_b = verify_in_view(chain, chain_ok, proj[b][:, cand], moved, config.static_px, config.static_min_frames)
        run.visible[b][:, cand] = seen_b & front[b][:, cand]
        run.report.verified += int(seen_b.any(0).sum())


def fit_static_across_views(run: FlowRun) -> None:
    """Step 4a: static points found across views (:func:`mvt4g.tracks.flow.static_points.fit_multiview`):
    tracks that one point explains in every view that sees them, over several frames. The wide
    baselines between views fix the depth of points whose own view moves too little to."""
    config = run.config
    if config.multiview_static:
        cand = ~run.static & (run.visible.any(1).sum(0) >= 2)
        mv_world, mv_holds, inliers = fit_multiview(
            run.cameras, run.tracks, run.visible, cand, config.static_px, config.static_min_frames, config.static_inlier_frac
        )
        if mv_holds.any():
            mv_proj, mv_front = project_all(run.cameras, mv_world)
            run.visible &= ~(mv_holds[None, None] & ~inliers)  # observations that stray from it drifted
            run.tracks = np.where((mv_holds[None, None] & mv_front)[..., None], mv_proj, run.tracks)
            run.static |= mv_holds
            run.world = np.where(mv_holds[:, None], mv_world, run.world)
            run.report.notes.append(f"{int(mv_holds.sum())} static points found across views")
    run.report.static = int(run.static.sum())


def fill_from_sweep_plane(run: FlowRun) -> None:
    """Step 4b: best guesses where nothing is claimed (module docstring): the sweep plane's
    projection for points that followed it while their query-view chain held."""
    config, qv = run.config, run.qv
    N = run.num_tracks
    run.weak = np.zeros(N, bool)
    if not config.plane_fallback:
        return
    idx = np.arange(N)
    pproj, pfront = project_all(run.cameras, run.plane_world)
    resid = np.linalg.norm(pproj[qv, :, idx] - run.chain_q, axis=-1)
    # Judged on the chain's first unbroken run from the query frame (re-acquired frames,
    # with their larger parallax, would reject points on an imprecise plane).
    run_q = first_run(run.seen, run.qt)
    run.weak = ~run.static & run.plane_exists & ~(run_q & (resid > config.static_px)).any(1)
    # In its own view a point lost at the first step is as often on a fast object as on
    # aliased far texture: there the chain's guess is kept unless it followed the plane a step.
    own_view = np.arange(len(run.cameras))[:, None] == qv[None]  # [V, N]
    weak_here = run.weak[None] & (~own_view | (run_q.sum(1) >= config.fallback_min_frames)[None])
    fill = weak_here[:, None] & pfront & ~run.visible
    run.tracks = np.where(fill[..., None], pproj, run.tracks)


def fill_from_static_surface(run: FlowRun) -> None:
    """Step 4c: lost points inside a static surface (:mod:`mvt4g.tracks.flow.local_plane`).

    Where their chains are lost, the projection of their ray's meeting with the plane of the
    static points around them. (Also for points placed on the sweep plane by 4b: the static
    points around them give the better plane; measured on 4 dev scenes, temporal / cross-view
    delta_avg 0.719 / 0.525 without them, 0.725 / 0.525 with.)
    """
    config, cameras, static = run.config, run.cameras, run.static
    if not config.local_plane:
        return
    qv, qt, qxy = run.qv, run.qt, run.qxy
    lp_world, lp_found = local_plane_points(cameras, run.world, static, ~static, qv, qt, qxy, config.local_plane_radius)
    ground = run.assoc.ground
    if ground is not None and config.ground_fill:
        # Where no static points are around (far ground near the horizon): the ground plane,
        # for points whose sweep plane at the key frame lies on it. (Measured on 4 dev scenes:
        # temporal / cross-view delta_avg 0.725 / 0.525 -> 0.749 / 0.545; points on moving
        # objects 0.391 -> 0.368 temporal, some sit on the ground. Also asking that a chain that
        # held followed the ground's projection: 0.744 / 0.539, more static points lost.)
        g_world, g_hit = on_plane(cameras, *ground, qv, qt, qxy)
        depth = np.linalg.norm(g_world - centres_of_queries(cameras, qv, qt), axis=1)
        near_ground = np.abs((run.plane_world - ground[1]) @ ground[0]) < config.ground_fill_frac * depth
        use = ~static & ~lp_found & g_hit & run.plane_exists & near_ground
        lp_world = np.where(use[:, None], g_world, lp_world)
        lp_found |= use
    if lp_found.any():
        lproj, lfront = project_all(cameras, lp_world)
        fill = lp_found[None, None] & lfront & ~run.visible
        run.tracks = np.where(fill[..., None], lproj, run.tracks)
        run.report.notes.append(f"{int(lp_found.sum())} lost points placed on the static surface around them")


def check_epipolar_drift(run: FlowRun) -> None:
    """Step 5: drift check against the query view's point, frame by frame (module docstring)."""
    cameras, config, tracks, visible = run.cameras, run.config, run.tracks, run.visible
    V, T = visible.shape[:2]
    for a in range(V):
        sel_a = run.qv == a
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
                run.report.drift_dropped += len(bad)
                # Positions of moving (not static) points in b: onto the epipolar line of the
                # query-view point where that one holds (the error across the line is drift).
                snap = np.flatnonzero(sel_a & visible[a, t] & ~run.static)
                if len(snap) and config.epipolar_snap:
                    tracks[b, t, snap] = onto_epipolar_line(F, tracks[a, t, snap], tracks[b, t, snap])


def fill_moving_points(run: FlowRun) -> None:
    """Step 6: points that are not static (and not placed on the sweep plane by 4b).

    Lost query-view chains follow their neighbours (:mod:`mvt4g.tracks.flow.neighbours`); then
    one world point per frame from every view that sees the point
    (:mod:`mvt4g.tracks.flow.dynamic_points`): drifted chains drop out, lost ones take its
    projection, visible ones too where it is solved. Frames that no two views see take the depth
    of the triangulated neighbours (:mod:`mvt4g.tracks.flow.neighbour_depths`; measured on the
    dev scenes of seeds 11-13, one each, synth queries: cross-view delta_avg of points on moving
    objects 0.218 -> 0.267, all points 0.459 -> 0.488, visibility untouched).
    """
    config, qv = run.config, run.qv
    fillable = ~run.static & ~run.weak
    if config.neighbour_fill:
        for v in range(len(run.cameras)):
            sel = np.flatnonzero(qv == v)
            if len(sel):
                run.tracks[v][:, sel] = neighbour_fill(
                    run.tracks[v][:, sel], run.visible[v][:, sel], run.qt[sel], fillable[sel],
                    config.neighbour_radius, config.neighbour_agree_px,
                )[0]  # fmt: skip
    if config.dynamic_triangulate:
        run.tracks, run.visible, dropped = dynamic_points(
            run.cameras, run.tracks, run.visible, ~run.static, qv, config.dynamic_outlier_px, fillable,
            borrow=(config.neighbour_radius, config.neighbour_agree_px) if config.neighbour_depth else None,
        )  # fmt: skip
        run.report.notes.append(f"{dropped} chained observations off their per-frame triangulation")


def finish_run(run: FlowRun) -> tuple[np.ndarray, np.ndarray, FlowReport]:
    """Every track is visible at its own query, exactly where it was asked."""
    n_all = np.arange(run.num_tracks)
    run.tracks[run.qv, run.qt, n_all] = run.qxy
    run.visible[run.qv, run.qt, n_all] = True
    return run.tracks.astype(np.float32), run.visible, run.report


#: The steps of :func:`flow_tracks` after the dense flows, in order (module docstring), by name.
STEPS = (
    ("chain query views", chain_query_views),  # 1
    ("associate", associate_across_views),  # 2
    ("chain other views", chain_other_views),  # 3
    ("reassociate", reassociate_lost_chains),  # 3b
    ("static points", fit_static_points),  # 4
    ("static across views", fit_static_across_views),  # 4a
    ("fill from sweep plane", fill_from_sweep_plane),  # 4b
    ("fill from static surface", fill_from_static_surface),  # 4c
    ("epipolar check", check_epipolar_drift),  # 5
    ("moving points", fill_moving_points),  # 6
)
