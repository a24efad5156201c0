"""Rigid motion of masked objects between frames, from depth, masks, optical flow and cameras.

For object id k and consecutive frames t -> t+1, every view contributes 3D correspondences:
pixels of k at frame t (lifted with that frame's depth), carried to t+1 by the view's optical
flow (forward-backward consistent only), landing on k again, and lifted with frame t+1's depth.
A rigid transform (rotation + translation, world frame) is fitted to all views' pairs together
by RANSAC on 3-point samples (Kabsch) and refitted on the inliers; a pair is an inlier when the
transformed point is within ``inlier_px`` pixels' worth of distance (at its depth) of its match.

A step counts as fitted when at least ``min_inliers`` pairs and ``min_inlier_ratio`` of them
agree. Chaining the steps moves a point of the object from its query frame to any frame. This is
exact up to the fit's error for rigid objects (synth, Kubric); non-rigid ones fail the inlier
ratio and are left to per-point flow (mvt4g.tracks.exact.moving_objects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.tracks.exact.depth import query_depth
from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.flow.optical_flow import ViewFlows, flow_step


@dataclass
class RigidConfig:
    """Fitting settings (module docstring)."""

    samples_per_view: int = 1500
    inlier_px: float = 1.5
    min_inliers: int = 12
    min_inlier_ratio: float = 0.5
    ransac_iters: int = 200
    seed: int = 0


def kabsch(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Least-squares rigid transform ``[4, 4]`` mapping points ``X`` ``[n, 3]`` onto ``Y`` (no scaling)."""
    cx, cy = X.mean(0), Y.mean(0)
    U, _, Vt = np.linalg.svd((X - cx).T @ (Y - cy))
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    R = Vt.T @ np.diag([1.0, 1.0, d]) @ U.T
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, cy - R @ cx
    return M


def fit_rigid(X: np.ndarray, Y: np.ndarray, tau: np.ndarray, config: RigidConfig, rng: np.random.Generator):
    """RANSAC rigid fit of pairs ``X -> Y`` ``[n, 3]`` with per-pair thresholds ``tau`` ``[n]``; ``(M, inliers)`` or None."""
    n = len(X)
    if n < max(3, config.min_inliers):
        return None
    best = None
    for _ in range(config.ransac_iters):
        idx = rng.choice(n, 3, replace=False)
        if np.linalg.matrix_rank(X[idx] - X[idx].mean(0), tol=1e-6) < 2:
            continue
        M = kabsch(X[idx], Y[idx])
        inl = np.linalg.norm(X @ M[:3, :3].T + M[:3, 3] - Y, axis=1) < tau
        if best is None or inl.sum() > best.sum():
            best = inl
    if best is None or best.sum() < config.min_inliers:
        return None
    M = kabsch(X[best], Y[best])
    inl = np.linalg.norm(X @ M[:3, :3].T + M[:3, 3] - Y, axis=1) < tau
    if inl.sum() < config.min_inliers or inl.mean() < config.min_inlier_ratio:
        return None
    return kabsch(X[inl], Y[inl]), inl


def _lift(cam: ViewCameras, t: int, xy: np.ndarray, z: np.ndarray) -> np.ndarray:
    rays = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ np.linalg.inv(cam.K[t]).T
    return (rays * z[:, None]) @ cam.c2w[t, :3, :3].T + cam.c2w[t, :3, 3]


@dataclass
class ObjectMotion:
    """Per-step rigid transforms of one object: ``steps[t]`` maps frame t to t+1 (world), ``ok[t]`` whether fitted."""

    steps: np.ndarray
    ok: np.ndarray

    def between(self, s: int, t: int) -> np.ndarray | None:
        """Transform from frame s to frame t, or None when a step on the way is not fitted."""
        M = np.eye(4)
        if t >= s:
            for k in range(s, t):
                if not self.ok[k]:
                    return None
                M = self.steps[k] @ M
        else:
            for k in range(s - 1, t - 1, -1):
                if not self.ok[k]:
                    return None
                M = np.linalg.inv(self.steps[k]) @ M
        return M


def object_motions(
    cameras: list[ViewCameras],
    depths: list[np.ndarray],
    masks: list[np.ndarray],
    flows: list[ViewFlows],
    object_ids: list[int],
    config: RigidConfig | None = None,
) -> dict[int, ObjectMotion]:
    """Fit the per-step rigid motion of every listed object id (module docstring)."""
    config = config or RigidConfig()
    rng = np.random.default_rng(config.seed)
    fb = FlowConfig()
    T = depths[0].shape[0]
    out = {k: ObjectMotion(np.tile(np.eye(4), (max(T - 1, 0), 1, 1)), np.zeros(max(T - 1, 0), bool)) for k in object_ids}
    for t in range(T - 1):
        pairs: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {k: [] for k in object_ids}
        for v, cam in enumerate(cameras):
            m0 = masks[v][t]
            for k in object_ids:
                rows, cols = np.nonzero(m0 == k)
                if len(rows) < 3:
                    continue
                if len(rows) > config.samples_per_view:
                    pick = rng.choice(len(rows), config.samples_per_view, replace=False)
                    rows, cols = rows[pick], cols[pick]
                xy = np.stack([cols + 0.5, rows + 0.5], axis=1).astype(np.float64)
                moved, good = flow_step(flows[v].forward[t], flows[v].backward[t], xy, fb)
                if not good.any():
                    continue
                xy, moved = xy[good], moved[good]
                col1 = np.clip(np.floor(moved[:, 0]).astype(int), 0, m0.shape[1] - 1)
                row1 = np.clip(np.floor(moved[:, 1]).astype(int), 0, m0.shape[0] - 1)
                same = masks[v][t + 1][row1, col1] == k
                xy, moved = xy[same], moved[same]
                if len(xy) == 0:
                    continue
                z0 = depths[v][t][np.floor(xy[:, 1]).astype(int), np.floor(xy[:, 0]).astype(int)].astype(np.float64)
                z1 = query_depth(depths[v][t + 1], moved)
                fine = np.isfinite(z0) & np.isfinite(z1) & (z0 > 0) & (z1 > 0)
                X = _lift(cam, t, xy[fine], z0[fine])
                Y = _lift(cam, t + 1, moved[fine], z1[fine])
                tau = config.inlier_px * z1[fine] / float(cam.K[t + 1, 0, 0])
                pairs[k].append((X, Y, tau))
        for k in object_ids:
            if not pairs[k]:
                continue
            X = np.concatenate([p[0] for p in pairs[k]])
            Y = np.concatenate([p[1] for p in pairs[k]])
            tau = np.concatenate([p[2] for p in pairs[k]])
            fit = fit_rigid(X, Y, tau, config, rng)
            if fit is not None:
                out[k].steps[t], out[k].ok[t] = fit[0], True
    return out
