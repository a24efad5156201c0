"""Two-view geometry helpers of the weight-free pose estimator (numpy; pixels in mvt4g's convention).

Cameras are 3x4 world-to-camera matrices ``[R | t]`` acting on normalised coordinates
(``K^-1 x``); observations are pixel coordinates with centres at ``+0.5``.
"""

from __future__ import annotations

import numpy as np

from mvt4g.eval.features import normalized_points


def focal_length(K: np.ndarray) -> float:
    """Mean of ``fx`` and ``fy``: converts normalised-coordinate errors to pixels."""
    return float((K[0, 0] + K[1, 1]) / 2.0)


def triangulate(P_a: np.ndarray, P_b: np.ndarray, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """Linear (DLT) triangulation of normalised points ``[N, 2]`` seen by 3x4 cameras -> ``[N, 3]``."""
    rows = np.stack([
        na[:, 0:1] * P_a[2] - P_a[0], na[:, 1:2] * P_a[2] - P_a[1],
        nb[:, 0:1] * P_b[2] - P_b[0], nb[:, 1:2] * P_b[2] - P_b[1],
    ], axis=1)  # fmt: skip
    _, _, vt = np.linalg.svd(rows)
    X = vt[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return X[:, :3] / X[:, 3:4]


def good_points(X: np.ndarray, cams: list[np.ndarray], obs: list[np.ndarray], K: np.ndarray, max_px: float,
                min_angle_deg: float) -> np.ndarray:  # fmt: skip
    """Mask ``[N]`` of points ``X [N, 3]`` in front of both cameras, reprojecting within ``max_px`` of
    their normalised observations ``obs`` (two ``[N, 2]``), whose rays meet at ``min_angle_deg`` or more."""
    ok = np.isfinite(X).all(axis=1)
    centres = []
    for P, n in zip(cams, obs):
        Xc = X @ P[:, :3].T + P[:, 3]
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.linalg.norm(Xc[:, :2] / Xc[:, 2:3] - n, axis=1) * focal_length(K)
            ok &= (Xc[:, 2] > 0) & (err < max_px)
        centres.append(-P[:, :3].T @ P[:, 3])
    ra, rb = X - centres[0], X - centres[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = (ra * rb).sum(1) / (np.linalg.norm(ra, axis=1) * np.linalg.norm(rb, axis=1))
    ok &= cos < np.cos(np.radians(min_angle_deg))
    return ok


def kabsch(bear_a: np.ndarray, bear_b: np.ndarray) -> np.ndarray:
    """Rotation ``R`` minimising ``sum |b - R a|^2`` over unit rays ``[N, 3]``."""
    u, _, vt = np.linalg.svd(bear_a.T @ bear_b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def bearings(xy: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Unit viewing rays ``[N, 3]`` (camera axes) of pixels ``[N, 2]``."""
    n = normalized_points(xy, K)
    b = np.c_[n, np.ones(len(n))]
    return b / np.linalg.norm(b, axis=1, keepdims=True)


def rotation_ransac(xa: np.ndarray, xb: np.ndarray, K: np.ndarray, threshold_px: float,
                     iterations: int = 200) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Best pure rotation ``R`` (``ray_b = R ray_a``) for pixel matches, and its inlier mask.

    Minimal samples of 2 matches (Kabsch), a fixed random seed, then a refit on the inliers.
    """
    ba, bb = bearings(xa, K), bearings(xb, K)
    n = len(xa)
    if n < 2:
        return np.eye(3), np.zeros(n, bool)
    rng = np.random.default_rng(0)

    def inliers_of(R: np.ndarray) -> np.ndarray:
        p = ba @ R.T
        with np.errstate(divide="ignore", invalid="ignore"):
            u = K[0, 0] * p[:, 0] / p[:, 2] + K[0, 2]
            v = K[1, 1] * p[:, 1] / p[:, 2] + K[1, 2]
        return (p[:, 2] > 0) & (np.hypot(u - xb[:, 0], v - xb[:, 1]) < threshold_px)

    best = np.zeros(n, bool)
    for _ in range(iterations):
        i, j = rng.choice(n, 2, replace=False)
        mask = inliers_of(kabsch(ba[[i, j]], bb[[i, j]]))
        if mask.sum() > best.sum():
            best = mask
    if best.sum() < 2:
        return np.eye(3), best
    R = kabsch(ba[best], bb[best])
    return R, inliers_of(R)
