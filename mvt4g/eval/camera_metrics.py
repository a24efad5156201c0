"""Camera accuracy of a generated video: RotErr, TransErr and CamMC in two conventions.

Inputs are two camera-to-world stacks ``[T, 4, 4]`` (OpenCV axes): the poses estimated from the
generated video (``mvt4g.eval.pose_estimation``) and the target trajectory it was asked to
follow. Papers disagree on the details, so the convention is an explicit choice and every
result says which one it used.

Common steps (both conventions)
    1. Both trajectories are expressed relative to their own frame 0 (``inv(P_0) @ P_t``), so
       frame 0 is the identity in both and no world alignment is needed.
    2. Rotations are compared by the geodesic angle ``|log(R_gt^T R_est)|`` (computed with
       ``atan2`` of the sine and cosine parts, exact near 0 and 180 degrees).
    3. Translations are the camera centres of the c2w poses (the 4th column), in frame-0
       coordinates. Monocular structure from motion only knows them up to scale, so they are
       rescaled as each convention says below before being compared.
    4. CamMC of a frame is the Frobenius norm of the difference of the 3x4 ``[R | c]`` blocks of
       the c2w poses after that rescaling.

``camctrl`` (CameraCtrl, He et al. 2024; CamI2V, Zheng et al. 2024)
    Each trajectory's centres are divided by its own largest centre distance from frame 0
    (so the farthest camera of each is at distance 1); a trajectory that never leaves its
    starting point is left at zero. RotErr is in radians. All three metrics are SUMS over the
    frames (frame 0 adds 0), so they grow with the clip length.

``mean`` (mean per frame; our reading of the paper's metrics)
    The target centres are divided by their largest distance from frame 0; the estimated
    centres are multiplied by the least-squares scale ``s = max(0, <c_gt, c_est> / <c_est,
    c_est>)`` that best fits them to those (a non-negative scale: a trajectory estimated in
    the wrong direction is not flipped into agreement). RotErr is in degrees; the metrics are
    MEANS over frames 1..T-1 (frame 0 is the identity in both by construction). When the target
    does not translate at all, TransErr is 0 whatever the estimate (any translation can be
    scaled away); ``camctrl`` does penalise a spurious translation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mvt4g.camera.pose import invert_pose, validate_c2w
from mvt4g.errors import InputError

CONVENTIONS = ("camctrl", "mean")
#: Centre distances at or below this count as "the camera did not move" (no rescaling).
STILL_EPS = 1e-12

METRIC_INFO: dict[str, dict[str, str]] = {
    "camctrl": {
        "source": "CameraCtrl (He et al. 2024) / CamI2V (Zheng et al. 2024)",
        "settings": "relative to frame 0; centres divided by each trajectory's max distance; "
        "RotErr radians; TransErr and CamMC (Frobenius of 3x4 c2w difference) in those units; sums over frames",
    },
    "mean": {
        "source": "mean per frame after normalisation (the paper's metrics, as we read them)",
        "settings": "relative to frame 0; target centres divided by their max distance, estimate scaled "
        "by the non-negative least-squares fit; RotErr degrees; means over frames 1..T-1",
    },
}


@dataclass
class CameraErrors:
    """Camera errors of one video under one convention.

    ``rot_err`` / ``trans_err`` / ``cam_mc`` are the aggregates (sums for ``camctrl``, means
    for ``mean``); the ``*_per_frame`` arrays are ``[T]`` float64 (frame 0 included, always 0).
    ``scale_estimate`` / ``scale_target`` are the factors applied to the centres.
    """

    convention: str
    rot_err: float
    trans_err: float
    cam_mc: float
    rot_err_per_frame: np.ndarray
    trans_err_per_frame: np.ndarray
    cam_mc_per_frame: np.ndarray
    scale_estimate: float
    scale_target: float
    notes: list[str] = field(default_factory=list)

    @property
    def rot_unit(self) -> str:
        return "rad" if self.convention == "camctrl" else "deg"

    def to_dict(self) -> dict:
        """JSON-ready summary (aggregates, units, scales, notes; no per-frame arrays)."""
        return {
            "convention": self.convention,
            "rot_err": self.rot_err,
            "trans_err": self.trans_err,
            "cam_mc": self.cam_mc,
            "rot_unit": self.rot_unit,
            "aggregate": "sum over frames" if self.convention == "camctrl" else "mean over frames 1..T-1",
            "scale_estimate": self.scale_estimate,
            "scale_target": self.scale_target,
            "notes": list(self.notes),
        }


def rotation_angles(rot_a: np.ndarray, rot_b: np.ndarray) -> np.ndarray:
    """Geodesic angles (radians, ``[T]``) between rotation stacks ``[T, 3, 3]``: ``|log(A^T B)|``."""
    rel = np.swapaxes(rot_a, -1, -2) @ rot_b
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0
    # |sin| from the skew part: (R - R^T) / 2 = sin(theta) [axis]_x
    skew = np.stack([rel[..., 2, 1] - rel[..., 1, 2], rel[..., 0, 2] - rel[..., 2, 0], rel[..., 1, 0] - rel[..., 0, 1]], -1)
    sin = np.linalg.norm(skew, axis=-1) / 2.0
    return np.arctan2(sin, cos)


def relative_to_first(c2w: np.ndarray) -> np.ndarray:
    """Poses ``[T, 4, 4]`` expressed in the frame of their own frame 0 (frame 0 -> identity)."""
    return invert_pose(c2w[0])[None] @ c2w


def _max_distance(centres: np.ndarray) -> float:
    return float(np.linalg.norm(centres, axis=-1).max())


def camera_errors(estimated_c2w: object, target_c2w: object, convention: str = "camctrl") -> CameraErrors:
    """RotErr, TransErr and CamMC of ``estimated_c2w`` against ``target_c2w`` (both ``[T, 4, 4]``).

    Raises :class:`~mvt4g.errors.CameraError` for NaN/inf or non-rigid poses (e.g. frames the
    pose estimator could not register) and :class:`InputError` for a length mismatch or an
    unknown convention.
    """
    if convention not in CONVENTIONS:
        raise InputError(f"unknown camera-metric convention {convention!r} (choose {' or '.join(CONVENTIONS)})")
    est = validate_c2w(estimated_c2w, name="estimated camera")
    tgt = validate_c2w(target_c2w, name="target camera")
    if est.shape[0] != tgt.shape[0]:
        raise InputError(f"estimated cameras have {est.shape[0]} frames but the target trajectory has {tgt.shape[0]}")
    if est.shape[0] < 2:
        raise InputError("camera errors need at least 2 frames")
    est, tgt = relative_to_first(est), relative_to_first(tgt)
    c_est, c_tgt = est[:, :3, 3], tgt[:, :3, 3]
    notes: list[str] = []

    d_tgt = _max_distance(c_tgt)
    scale_tgt = 1.0 / d_tgt if d_tgt > STILL_EPS else 1.0
    if d_tgt <= STILL_EPS:
        notes.append("target trajectory does not translate: its centres are left at zero")
    if convention == "camctrl":
        d_est = _max_distance(c_est)
        scale_est = 1.0 / d_est if d_est > STILL_EPS else 1.0
        if d_est <= STILL_EPS:
            notes.append("estimated trajectory does not translate: its centres are left at zero")
    else:
        c_tgt_n = c_tgt * scale_tgt
        denom = float((c_est * c_est).sum())
        scale_est = max(0.0, float((c_tgt_n * c_est).sum()) / denom) if denom > STILL_EPS**2 else 0.0
        if d_tgt <= STILL_EPS:
            notes.append("TransErr is 0 by construction when the target does not translate")

    blk_est = est[:, :3, :4].copy()
    blk_tgt = tgt[:, :3, :4].copy()
    blk_est[:, :, 3] *= scale_est
    blk_tgt[:, :, 3] *= scale_tgt
    rot = rotation_angles(tgt[:, :3, :3], est[:, :3, :3])
    trans = np.linalg.norm(blk_est[:, :, 3] - blk_tgt[:, :, 3], axis=-1)
    cam_mc = np.linalg.norm((blk_est - blk_tgt).reshape(len(est), -1), axis=-1)

    if convention == "mean":
        rot = np.degrees(rot)

    def agg(values: np.ndarray) -> float:
        return float(values.sum()) if convention == "camctrl" else float(values[1:].mean())

    return CameraErrors(convention, agg(rot), agg(trans), agg(cam_mc), rot, trans, cam_mc,
                        float(scale_est), float(scale_tgt), notes)  # fmt: skip


def rotation_error_deg(estimated_c2w: object, target_c2w: object) -> float:
    """Mean per-frame rotation error in degrees (frames 1..T-1), the number quoted in summaries."""
    return camera_errors(estimated_c2w, target_c2w, "mean").rot_err

