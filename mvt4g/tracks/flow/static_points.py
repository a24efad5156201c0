"""Static points in the flow method: 3D positions from tracks and known cameras, and their checks.

A point of the static scene has one world position X. Given its 2D track in one view over
frames where the camera moves, X is the least-squares meeting point of the viewing rays
(:func:`mvt4g.tracks.projection.triangulate`); the track is static when every tracked position lies within
``static_px`` of X's projection. The depth is only pinned down when the rays are not nearly
parallel: :func:`parallax` measures how far the projections move if X slides 15 % along the
ray, and a position counts as determined when that exceeds twice ``static_px``.

With X known, the point's position in every view and frame is its projection. Whether another
view b *sees* it (rather than an occluder) is checked by motion: optical flow is chained in b
from X's projection, and b sees the point where the chained track keeps following the
projection, on enough frames and with enough parallax that a surface at another depth (or a
moving occluder) would have drifted away (:func:`verify_in_view`).

The flow method's use of these (mvt4g.tracks.flow.pipeline, step 4): :func:`static_points` tests
hypotheses for a track's query view, :func:`refine_static` re-triangulates static points from
every view that sees them, and :func:`fit_multiview` finds static points that one view alone
cannot prove, from all views' tracks together.
"""

from __future__ import annotations

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.tracks.flow.association import Associator
from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.projection import project_all, rays, triangulate

#: Relative slide of X along its ray used to measure parallax.
DEPTH_NUDGE = 1.15


def parallax(cameras: list[ViewCameras], world: np.ndarray, anchor: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """How far ``[V, T, N]`` each projection moves when X slides by ``DEPTH_NUDGE`` away from ``anchor`` ``[N, 3]``."""
    nudged, _ = project_all(cameras, anchor + DEPTH_NUDGE * (world - anchor))
    return np.linalg.norm(nudged - proj, axis=-1)


def verify_in_view(
    chain: np.ndarray, chain_ok: np.ndarray, proj: np.ndarray, moved: np.ndarray, static_px: float, min_frames: int
) -> np.ndarray:
    """Frames ``[T, n]`` at which view b sees the points: its chained track (from X's projection) follows the projection.

    Args:
        chain, chain_ok: the chained track in b ``[T, n, 2]``, ``[T, n]``.
        proj: X's projections in b ``[T, n, 2]``; moved: their parallax ``[T, n]``.

    A point is seen at frames where the chain holds and stays within ``static_px``, provided
    that happens on at least ``min_frames`` frames and the parallax over them exceeds
    ``2 * static_px`` (otherwise a surface at another depth could follow just as well).
    """
    follows = chain_ok & (np.linalg.norm(chain - proj, axis=-1) <= static_px)
    enough = (follows.sum(0) >= min_frames) & (np.where(follows, moved, 0.0).max(0) > 2 * static_px)
    return follows & enough[None]


def observation_rays(cameras: list[ViewCameras], tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres and directions ``[N, V*T, 3]`` of every observation in ``tracks`` ``[V, T, N, 2]`` (view-major)."""
    V, _, N = tracks.shape[:3]
    centres, dirs = [], []
    for v in range(V):
        c, d = rays(cameras, np.full(N, v), tracks[v].transpose(1, 0, 2))
        centres.append(c)
        dirs.append(d)
    return np.concatenate(centres, 1), np.concatenate(dirs, 1)


def fit_multiview(
    cameras: list[ViewCameras],
    tracks: np.ndarray,
    visible: np.ndarray,
    candidates: np.ndarray,
    static_px: float,
    min_frames: int,
    inlier_frac: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Static points found across views: one world point that explains a track's observations in
    every view (``tracks`` ``[V, T, N, 2]`` where ``visible``) together.

    For each candidate track ``[N]``: the rays of all its observations are triangulated; those
    that reproject within ``static_px`` are inliers and the point is re-triangulated from them.
    It holds when the inliers are at least ``inlier_frac`` of the observations, come from two
    views or more and span ``min_frames`` frames or more (a moving point seen at one instant
    by two views fits any single point; over several frames it does not).
    Wide baselines between views pin the depth down where one view's own motion cannot.

    Returns world points ``[N, 3]``, which hold ``[N]``, and the inliers ``[V, T, N]``.
    """
    V, T, N = visible.shape
    use = (visible & candidates[None, None]).transpose(2, 0, 1).reshape(N, V * T)
    centres, dirs = observation_rays(cameras, tracks)
    world, ok = triangulate(centres, dirs, use)
    inliers = np.zeros((V, T, N), bool)
    for _ in range(2):
        proj, front = project_all(cameras, world)
        err = np.linalg.norm(proj - tracks, axis=-1)
        inliers = visible & front & (err <= static_px) & (ok & candidates)[None, None]
        world, ok2 = triangulate(centres, dirs, inliers.transpose(2, 0, 1).reshape(N, V * T))
        ok &= ok2
    proj, front = project_all(cameras, world)
    inliers = visible & front & (np.linalg.norm(proj - tracks, axis=-1) <= static_px) & ok[None, None]
    count = inliers.sum((0, 1))
    holds = ok & candidates & (count >= inlier_frac * np.maximum(visible.sum((0, 1)), 1))
    holds &= (inliers.any(1).sum(0) >= 2) & (inliers.any(0).sum(0) >= min_frames)
    return world, holds, inliers


def first_run(ok: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``[N, T]``: the frames of each row's unbroken run of ``ok`` ``[N, T]`` through its start frame ``[N]``."""
    T = ok.shape[1]
    offset = np.arange(T)[None] - np.asarray(start)[:, None]
    after = np.cumprod(np.where(offset >= 0, ok, True), axis=1).astype(bool)
    before = np.cumprod(np.where(offset <= 0, ok, True)[:, ::-1], axis=1)[:, ::-1].astype(bool)
    return ok & after & before


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
        margin = config.plane_preference if still else 0.0
        better = holds & (count + margin * seen.sum(1) > best_support)
        best_world[better] = world[better]
        best_support[better] = count[better]
        static |= holds
    proj, front = project_all(cameras, best_world)
    return best_world, static, proj, front, plane_world, exists


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
