"""Camera geometry both track methods and the planar test scene share: pixels to rays and world points, and back.

Pixel coordinates follow mvt4g's convention (pixel centres at +0.5); cameras are
:class:`mvt4g.camera.rig.ViewCameras` (per-frame ``K``, ``c2w``) or one frame's ``K`` and
``c2w``/``w2c``.

- one camera: :func:`backproject` (pixels at z-depths to world points) and :func:`project`
  (world points to pixels and camera z);
- every view and frame: :func:`project_all` (one world point per track, projected everywhere);
- rays: :func:`rays` (camera centres and unit directions of tracked pixels) and
  :func:`triangulate` (their least-squares meeting points);
- two cameras: :func:`relative_pose`; :func:`to_cv` moves a homography to OpenCV's pixel
  convention (centres at integers).
"""

from __future__ import annotations

import numpy as np

from mvt4g.camera.rig import ViewCameras


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


def relative_pose(c2w_a: np.ndarray, c2w_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(R, t)`` mapping camera-a coordinates to camera-b coordinates."""
    rel = np.linalg.inv(c2w_b) @ c2w_a
    return rel[:3, :3], rel[:3, 3]


def to_cv(H: np.ndarray) -> np.ndarray:
    """The same map on OpenCV's pixel coordinates (pixel centres at integers)."""
    shift = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1.0]])
    back = np.array([[1.0, 0, -0.5], [0, 1.0, -0.5], [0, 0, 1.0]])
    return back @ H @ shift
