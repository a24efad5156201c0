"""Bundle adjustment for the weight-free pose estimator: Levenberg-Marquardt with a Schur complement.

Cameras are world-to-camera ``[R | t]``; a step updates ``R <- exp([dw]_x) R``, ``t <- t + dt``
and every point ``X <- X + dX``, from analytic Jacobians of the pinhole projection

    u = fx * x / z + cx,  v = fy * y / z + cy,  (x, y, z) = R X + t.

The normal equations are reduced to the cameras by the Schur complement of the (3x3 block
diagonal) point part, solved densely (at most a few hundred camera unknowns), and the point
steps follow by back-substitution. One camera (frame 0) is held fixed, removing the rigid
gauge freedom; the scale stays free (the Marquardt damping keeps that one flat direction
harmless) and callers restore their scale convention afterwards.

Robustness: iteratively reweighted least squares with the Huber loss on each observation's
reprojection distance (``loss_px``), so a few bad observations (moving objects that slipped
through RANSAC) bend the solution little.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve
from scipy.spatial.transform import Rotation


def _skew(v: np.ndarray) -> np.ndarray:
    out = np.zeros(v.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2], out[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    out[..., 1, 0], out[..., 2, 0], out[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    return out


class _Problem:
    """Observations and the current estimate of one bundle adjustment."""

    def __init__(self, R, t, X, cam, pt, xy, K, loss_px):
        self.R, self.t, self.X = R, t, X
        self.cam, self.pt, self.xy, self.K, self.k = cam, pt, xy, K, loss_px

    def residuals(self, R, t, X):
        Xc = np.einsum("mij,mj->mi", R[self.cam], X[self.pt]) + t[self.cam]
        z = np.where(Xc[:, 2] > 1e-9, Xc[:, 2], 1e-9)
        uv = np.c_[self.K[0, 0] * Xc[:, 0] / z + self.K[0, 2], self.K[1, 1] * Xc[:, 1] / z + self.K[1, 2]]
        return uv - self.xy, Xc, z

    def cost(self, r: np.ndarray) -> float:
        e = np.linalg.norm(r, axis=1)
        k = self.k
        return float(np.where(e <= k, e * e, 2 * k * e - k * k).sum())


def bundle_adjust(
    w2c: np.ndarray,
    points: np.ndarray,
    obs_frame: np.ndarray,
    obs_point: np.ndarray,
    obs_xy: np.ndarray,
    K: np.ndarray,
    *,
    fixed_frame: int = 0,
    loss_px: float = 1.0,
    iterations: int = 15,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine cameras and points to minimise the robust reprojection error.

    Args:
        w2c: ``[T, 3, 4]`` world-to-camera poses (frames without observations are left as they are).
        points: ``[N, 3]`` points (those without observations are left as they are).
        obs_frame, obs_point: ``[M]`` frame and point index of each observation.
        obs_xy: ``[M, 2]`` observed pixels (mvt4g convention, centres at +0.5).
        K: ``[3, 3]`` intrinsics shared by all frames.

    Returns:
        Refined ``(w2c, points)`` (new arrays).
    """
    frames = np.unique(obs_frame)
    pts = np.unique(obs_point)
    free = frames[frames != fixed_frame]
    if len(free) == 0 or len(pts) == 0:
        return w2c.copy(), points.copy()
    cam_slot = np.full(len(w2c), -1)
    cam_slot[frames] = np.arange(len(frames))
    pt_slot = np.full(len(points), -1)
    pt_slot[pts] = np.arange(len(pts))
    prob = _Problem(w2c[frames, :, :3].copy(), w2c[frames, :, 3].copy(), points[pts].copy(),
                    cam_slot[obs_frame], pt_slot[obs_point], np.asarray(obs_xy, np.float64), K, loss_px)  # fmt: skip
    is_free = frames != fixed_frame  # per camera slot
    lam = 1e-3
    r, Xc, z = prob.residuals(prob.R, prob.t, prob.X)
    cost = prob.cost(r)
    for _ in range(iterations):
        system = _normal_equations(prob, r, Xc, z, is_free)
        improved = False
        for _ in range(6):
            step = _solve(system, lam, len(frames), len(pts), is_free)
            R_new = Rotation.from_rotvec(step[0]).as_matrix() @ prob.R
            t_new, X_new = prob.t + step[1], prob.X + step[2]
            r_new, Xc_new, z_new = prob.residuals(R_new, t_new, X_new)
            cost_new = prob.cost(r_new)
            if cost_new < cost:
                improved = True
                decrease = (cost - cost_new) / max(cost, 1e-30)
                prob.R, prob.t, prob.X = R_new, t_new, X_new
                r, Xc, z, cost = r_new, Xc_new, z_new, cost_new
                lam = max(lam / 10.0, 1e-9)
                break
            lam *= 10.0
        if not improved or decrease < 1e-7:
            break
    w2c_out, points_out = w2c.copy(), points.copy()
    w2c_out[frames, :, :3] = prob.R
    w2c_out[frames, :, 3] = prob.t
    points_out[pts] = prob.X
    return w2c_out, points_out


def _normal_equations(prob: _Problem, r, Xc, z, is_free):
    """Huber-weighted Gauss-Newton blocks: U [C,6,6], V [P,3,3], W [M,6,3], gc [C,6], gp [P,3]."""
    fx, fy = prob.K[0, 0], prob.K[1, 1]
    m = len(r)
    Jproj = np.zeros((m, 2, 3))
    Jproj[:, 0, 0] = fx / z
    Jproj[:, 0, 2] = -fx * Xc[:, 0] / z**2
    Jproj[:, 1, 1] = fy / z
    Jproj[:, 1, 2] = -fy * Xc[:, 1] / z**2
    RX = Xc - prob.t[prob.cam]  # R X
    dXc_dcam = np.concatenate([-_skew(RX), np.broadcast_to(np.eye(3), (m, 3, 3))], axis=2)  # [M, 3, 6]
    Jc = Jproj @ dXc_dcam  # [M, 2, 6]
    Jc[~is_free[prob.cam]] = 0.0
    Jp = Jproj @ prob.R[prob.cam]  # [M, 2, 3]
    e = np.linalg.norm(r, axis=1)
    w = np.where(e <= prob.k, 1.0, prob.k / np.maximum(e, 1e-12))[:, None, None]
    Jc_w, Jp_w = Jc * w, Jp * w
    C, P = len(prob.R), len(prob.X)
    U = np.zeros((C, 6, 6))
    np.add.at(U, prob.cam, np.swapaxes(Jc_w, 1, 2) @ Jc)
    V = np.zeros((P, 3, 3))
    np.add.at(V, prob.pt, np.swapaxes(Jp_w, 1, 2) @ Jp)
    W = np.swapaxes(Jc_w, 1, 2) @ Jp  # [M, 6, 3]
    gc = np.zeros((C, 6))
    np.add.at(gc, prob.cam, np.einsum("mki,mk->mi", Jc_w, r))
    gp = np.zeros((P, 3))
    np.add.at(gp, prob.pt, np.einsum("mki,mk->mi", Jp_w, r))
    return U, V, W, gc, gp, prob.cam, prob.pt


def _solve(system, lam: float, C: int, P: int, is_free: np.ndarray):
    """Marquardt-damped step (dw [C,3], dt [C,3], dX [P,3]) via the Schur complement on the points."""
    U, V, W, gc, gp, cam, pt = system
    eye6, eye3 = np.eye(6), np.eye(3)
    Ud = U + lam * (U * eye6 + 1e-9 * eye6)
    Ud[~is_free] = eye6  # fixed camera: identity block, zero right-hand side -> zero step
    Vd = V + lam * (V * eye3) + 1e-9 * eye3
    Vinv = np.linalg.inv(Vd)
    # Schur complement on the points: S = U - sum over points of W_a V^-1 W_b^T for every pair
    # (a, b) of that point's observations, built as one sparse product Y W^T with Y = W V^-1.
    Y = W @ Vinv[pt]  # [M, 6, 3]
    rows = np.broadcast_to(6 * cam[:, None, None] + np.arange(6)[None, :, None], W.shape)
    cols = np.broadcast_to(3 * pt[:, None, None] + np.arange(3)[None, None, :], W.shape)
    shape = (6 * C, 3 * P)
    Ym = sp.csr_matrix((Y.ravel(), (rows.ravel(), cols.ravel())), shape=shape)
    Wm = sp.csr_matrix((W.ravel(), (rows.ravel(), cols.ravel())), shape=shape)
    S = _block_diag_dense(Ud) - (Ym @ Wm.T).toarray()
    rhs = -gc.ravel() + Ym @ gp.ravel()
    free_rows = np.repeat(is_free, 6)
    S[~free_rows] = 0.0
    S[:, ~free_rows] = 0.0
    S[~free_rows, ~free_rows] = 1.0
    rhs[~free_rows] = 0.0
    try:
        dc = cho_solve(cho_factor(S), rhs)  # S is symmetric positive definite once damped
    except np.linalg.LinAlgError:
        dc = np.linalg.lstsq(S, rhs, rcond=None)[0]
    back = np.zeros((P, 3))
    np.add.at(back, pt, np.einsum("mij,mi->mj", W, dc.reshape(C, 6)[cam]))  # sum of W^T dc per point
    dX = np.einsum("pij,pj->pi", Vinv, -gp - back)
    dc = dc.reshape(C, 6)
    return dc[:, :3], dc[:, 3:], dX


def _block_diag_dense(blocks: np.ndarray) -> np.ndarray:
    n = len(blocks)
    out = np.zeros((6 * n, 6 * n))
    for i in range(n):
        out[6 * i : 6 * i + 6, 6 * i : 6 * i + 6] = blocks[i]
    return out
