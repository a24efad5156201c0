"""A weight-free geometric-consistency PROXY: epipolar error of SIFT matches under the known cameras.

This is not MEt3R (which needs MASt3R, DINO and FeatUp weights, see ``mvt4g.eval.learned``);
it is a cheap check that a generated view agrees with the reference view's geometry.

For each scored frame ``t``, SIFT keypoints of the reference frame ``t`` are matched (Lowe's
ratio test, one-to-one, no RANSAC: the matches are judged by the known geometry, not fitted
to it) to those of the generated frame ``t``. The cameras say where the generated camera is
relative to the reference camera at that instant, ``X_gen = R X_ref + t`` with
``[R | t] = inv(c2w_gen[t]) @ c2w_ref[t]``, so a correct match must satisfy

    x_gen^T F x_ref = 0,   F = K_gen^-T [t]_x R K_ref^-1.

Each match is scored by its Sampson distance (the first-order geometric distance, pixels)
``|x_g^T F x_r| / sqrt((F x_r)_1^2 + (F x_r)_2^2 + (F^T x_g)_1^2 + (F^T x_g)_2^2)``.

Zero baseline: when ``|t|`` is below ``min_baseline`` (trajectory units, metres for the
presets; the default 1 mm moves a point 4 m away by under 0.2 px at f = 630 px) ``F`` is
degenerate, and the exact model is the rotation homography ``H = K_gen R K_ref^-1``; matches are
then scored by their symmetric transfer distance ``(|x_g - H x_r| + |x_r - H^-1 x_g|) / 2``.

Robustness: a frame's error is the MEDIAN over its matches, so wrong matches (repeated
texture) and objects whose motion the generator did not synchronise between the views, which
make up less than half of the matches, do not move it. A ``static_mask`` over the reference
frames (True = usable, e.g. DAVIS background) removes known moving objects outright. Frames
with fewer than ``min_matches`` matches are not scored. The video value is the mean of the
per-frame medians over the scored frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvt4g.camera.intrinsics import Intrinsics, stack_K
from mvt4g.camera.pose import invert_pose, validate_c2w
from mvt4g.errors import InputError
from mvt4g.eval.features import (
    DEFAULT_MAX_FEATURES,
    DEFAULT_RATIO,
    match_features,
    sift_features,
)
from mvt4g.eval.inputs import MetricUnavailable, check_mask, check_video

#: Relative translations shorter than this (trajectory units) use the homography model.
DEFAULT_MIN_BASELINE = 1e-3
DEFAULT_MIN_MATCHES = 20

METRIC_INFO = {
    "epipolar_error": {
        "source": "mvt4g geometric-consistency proxy (not MEt3R)",
        "settings": "SIFT ratio-test matches reference t <-> generated t; Sampson distance (px) under "
        "F = K_g^-T [t]x R K_r^-1 of the known cameras; rotation homography when |t| < 1 mm; "
        "median per frame, mean over frames with >= 20 matches",
    }
}


@dataclass
class EpipolarResult:
    """Epipolar proxy of one video pair.

    ``value`` is the mean of ``per_frame`` over scored frames (pixels); ``per_frame`` is float64
    ``[T]`` (NaN where a frame was not scored or not requested), ``matches`` int ``[T]``,
    ``models`` the model used per frame (``fundamental``, ``homography`` or ``""``).
    """

    value: float
    per_frame: np.ndarray
    matches: np.ndarray
    models: list[str]

    @property
    def frames_scored(self) -> int:
        return int(np.isfinite(self.per_frame).sum())

    def to_dict(self) -> dict:
        used = sorted({m for m in self.models if m})
        return {"epipolar_error": self.value, "unit": "px", "frames_scored": self.frames_scored,
                "models": used, "median_matches": float(np.median(self.matches[self.matches > 0]))
                if (self.matches > 0).any() else 0.0}  # fmt: skip


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def relative_geometry(K_ref: np.ndarray, c2w_ref: np.ndarray, K_gen: np.ndarray, c2w_gen: np.ndarray,
                      min_baseline: float = DEFAULT_MIN_BASELINE) -> tuple[str, np.ndarray]:  # fmt: skip
    """(``"fundamental"``, F) or (``"homography"``, H) mapping reference pixels to generated ones."""
    rel = invert_pose(c2w_gen) @ c2w_ref
    R, t = rel[:3, :3], rel[:3, 3]
    if np.linalg.norm(t) < min_baseline:
        return "homography", K_gen @ R @ np.linalg.inv(K_ref)
    F = np.linalg.inv(K_gen).T @ _skew(t) @ R @ np.linalg.inv(K_ref)
    return "fundamental", F / np.linalg.norm(F)


def sampson_distance(F: np.ndarray, x_ref: np.ndarray, x_gen: np.ndarray) -> np.ndarray:
    """Sampson distances (pixels, ``[N]``) of pixel matches ``[N, 2]`` under ``x_gen^T F x_ref = 0``."""
    a = np.c_[x_ref, np.ones(len(x_ref))]
    b = np.c_[x_gen, np.ones(len(x_gen))]
    Fa = a @ F.T  # F x_ref
    Fb = b @ F  # F^T x_gen
    num = np.abs((b * Fa).sum(axis=1))
    den = np.sqrt(Fa[:, 0] ** 2 + Fa[:, 1] ** 2 + Fb[:, 0] ** 2 + Fb[:, 1] ** 2)
    return num / np.maximum(den, 1e-300)


def transfer_distance(H: np.ndarray, x_ref: np.ndarray, x_gen: np.ndarray) -> np.ndarray:
    """Symmetric transfer distances (pixels, ``[N]``) of matches under ``x_gen ~ H x_ref``."""

    def apply(M: np.ndarray, x: np.ndarray) -> np.ndarray:
        p = np.c_[x, np.ones(len(x))] @ M.T
        with np.errstate(divide="ignore", invalid="ignore"):
            return p[:, :2] / p[:, 2:]

    fwd = np.linalg.norm(apply(H, x_ref) - x_gen, axis=1)
    bwd = np.linalg.norm(apply(np.linalg.inv(H), x_gen) - x_ref, axis=1)
    return np.nan_to_num((fwd + bwd) / 2.0, nan=np.inf)


def epipolar_error(
    reference: object,
    generated: object,
    K_ref: Intrinsics | np.ndarray,
    c2w_ref: object,
    K_gen: Intrinsics | np.ndarray,
    c2w_gen: object,
    *,
    frames: object | None = None,
    static_mask: object | None = None,
    min_baseline: float = DEFAULT_MIN_BASELINE,
    min_matches: int = DEFAULT_MIN_MATCHES,
    max_features: int = DEFAULT_MAX_FEATURES,
    ratio: float = DEFAULT_RATIO,
) -> EpipolarResult:
    """Epipolar proxy between reference and generated videos (uint8 ``[T, H, W, 3]``, sizes may differ).

    ``K_*``: an :class:`Intrinsics`, ``[3, 3]`` or ``[T, 3, 3]``; ``c2w_*``: ``[T, 4, 4]`` in one
    world frame (e.g. both relative to the reference camera's frame 0). ``frames``: indices
    to score (default all). ``static_mask``: ``[T, H, W]`` over the reference, True = usable.
    """
    ref = check_video(reference, name="reference video")
    gen = check_video(generated, name="generated video")
    T = ref.shape[0]
    if gen.shape[0] != T:
        raise InputError(f"reference video has {T} frames but the generated video has {gen.shape[0]}")
    Kr, Kg = _K_stack(K_ref, T, "reference"), _K_stack(K_gen, T, "generated")
    pr = validate_c2w(c2w_ref, name="reference camera")
    pg = validate_c2w(c2w_gen, name="generated camera")
    for name, poses in (("reference", pr), ("generated", pg)):
        if poses.shape[0] != T:
            raise InputError(f"{name} cameras have {poses.shape[0]} frames but the videos have {T}")
    mask = None if static_mask is None else check_mask(static_mask, *ref.shape[:3], name="static mask")
    wanted = np.arange(T) if frames is None else np.asarray(frames, dtype=np.int64).ravel()
    if wanted.size == 0 or wanted.min() < 0 or wanted.max() >= T:
        raise InputError(f"frames to score must be indices in [0, {T - 1}], got {wanted.tolist()[:8]}")

    per_frame = np.full(T, np.nan)
    counts = np.zeros(T, dtype=np.int64)
    models = [""] * T
    for t in wanted:
        fr = sift_features(ref[t], max_features, None if mask is None else mask[t])
        fg = sift_features(gen[t], max_features)
        pairs = match_features(fr, fg, ratio)
        counts[t] = len(pairs)
        if len(pairs) < min_matches:
            continue
        model, M = relative_geometry(Kr[t], pr[t], Kg[t], pg[t], min_baseline)
        xr, xg = fr.xy[pairs[:, 0]], fg.xy[pairs[:, 1]]
        dist = sampson_distance(M, xr, xg) if model == "fundamental" else transfer_distance(M, xr, xg)
        per_frame[t] = float(np.median(dist))
        models[t] = model
    scored = np.isfinite(per_frame)
    if not scored.any():
        raise MetricUnavailable(
            f"epipolar proxy: no frame has {min_matches} SIFT matches between the reference and the generated video"
        )
    return EpipolarResult(float(per_frame[scored].mean()), per_frame, counts, models)


def _K_stack(K: Intrinsics | np.ndarray, frames: int, name: str) -> np.ndarray:
    stack = stack_K(K, frames)
    if stack.shape[0] != frames:
        raise InputError(f"{name} intrinsics have {stack.shape[0]} frames but the videos have {frames}")
    return stack
