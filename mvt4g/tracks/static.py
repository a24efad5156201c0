"""Static points in the flow method: 3D positions from tracks and known cameras, and their checks.

A point of the static scene has one world position X. Given its 2D track in one view over
frames where the camera moves, X is the least-squares meeting point of the viewing rays
(:func:`triangulate`); the track is static when every tracked position lies within
``static_px`` of X's projection. The depth is only pinned down when the rays are not nearly
parallel: :func:`parallax` measures how far the projections move if X slides 15 % along the
ray, and a position counts as determined when that exceeds twice ``static_px``.

With X known, the point's position in every view and frame is its projection. Whether another
view b *sees* it (rather than an occluder) is checked by motion: optical flow is chained in b
from X's projection, and b sees the point where the chained track keeps following the
projection, on enough frames and with enough parallax that a surface at another depth (or a
moving occluder) would have drifted away (:func:`verify_in_view`).
"""

from __future__ import annotations

import numpy as np

from mvt4g.camera.rig import ViewCameras

#: Relative slide of X along its ray used to measure parallax.
DEPTH_NUDGE = 1.15


def rays(cameras: list[ViewCameras], views: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres and unit ray directions (world) ``[N, T, 3]`` of pixels ``xy`` ``[N, T, 2]`` in views ``views`` ``[N]``."""
    N, T = xy.shape[:2]
    centres = np.zeros((N, T, 3))
    dirs = np.zeros((N, T, 3))
    for v, cam in enumerate(cameras):
        sel = np.flatnonzero(views == v)
        if len(sel) == 0:
            continue
        pix = np.concatenate([xy[sel], np.ones((len(sel), T, 1))], axis=-1)  # [n, T, 3]
        cam_dirs = np.einsum("tij,ntj->nti", np.linalg.inv(cam.K), pix)
        world_dirs = np.einsum("tij,ntj->nti", cam.c2w[:, :3, :3], cam_dirs)
        dirs[sel] = world_dirs / np.linalg.norm(world_dirs, axis=-1, keepdims=True)
        centres[sel] = cam.c2w[None, :, :3, 3]
    return centres, dirs


def triangulate(centres: np.ndarray, dirs: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares meeting points ``[N, 3]`` of the rays ``[N, T, 3]`` where ``use`` ``[N, T]``; and whether solvable."""
    P = np.eye(3)[None, None] - dirs[..., :, None] * dirs[..., None, :]  # projectors orthogonal to each ray
    P = P * use[..., None, None]
    A = P.sum(1)
    b = np.einsum("ntij,ntj->ni", P, centres)
    eig = np.linalg.eigvalsh(A)
    ok = (use.sum(1) >= 2) & (eig[:, 0] > 1e-9)
    X = np.zeros((len(A), 3))
    if ok.any():
        X[ok] = np.linalg.solve(A[ok], b[ok][..., None])[..., 0]
    return X, ok


def project_all(cameras: list[ViewCameras], world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projections ``[V, T, N, 2]`` of world points ``[N, 3]`` into every view and frame, and whether in front ``[V, T, N]``."""
    V, T = len(cameras), cameras[0].frames
    proj = np.zeros((V, T, len(world), 2))
    front = np.zeros((V, T, len(world)), bool)
    for v, cam in enumerate(cameras):
        w2c = cam.w2c()
        for t in range(T):
            pts = world @ w2c[t, :3, :3].T + w2c[t, :3, 3]
            with np.errstate(divide="ignore", invalid="ignore"):
                uv = pts @ cam.K[t].T
                proj[v, t] = uv[:, :2] / uv[:, 2:3]
            front[v, t] = pts[:, 2] > 1e-9
    return np.where(np.isfinite(proj), proj, 0.0), front


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
