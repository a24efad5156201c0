"""Track consistency: do points that correspond at one instant keep corresponding, under the known cameras?

The epipolar proxy (``mvt4g.eval.epipolar``) re-matches every frame pair independently. This
metric follows points THROUGH TIME in both videos instead, so it also catches generated content
that drifts or "swims" against the scene while each single frame still looks plausible.

What it measures, exactly:

1. Link. At the anchor frame ``a`` (default 0), SIFT keypoints of reference frame ``a`` are
   matched to generated frame ``a`` (Lowe's ratio test, one-to-one). A match is LINKED when it
   agrees with the known cameras there: its distance under the relative geometry of the two
   cameras at frame ``a`` is below the threshold (the same geometry as the epipolar proxy:
   Sampson distance to ``F = K_g^-T [t]x R K_r^-1``, or the symmetric transfer distance of the
   rotation homography ``K_g R K_r^-1`` when the baseline is under 1 mm).
2. Track. Each linked point is tracked through its own video by chained dense optical flow
   with forward-backward checks (``mvt4g.tracks.flow``, DIS), separately in the reference and
   in the generated video. A track stops counting at the first frame whose check fails.
3. Check. At every other frame ``t`` where a point is still tracked in both videos, its two
   positions must again agree with the cameras AT ``t`` (distance as in 1). Both views are
   filmed at the same instant, so moving objects obey this too.

``track_consistency`` is the fraction of those (point, frame) checks within the threshold (1 =
every linked point stays consistent); ``track_error`` is the mean over checked frames of the
median distance (pixels of the generated video). The threshold defaults to 1 % of the
generated video's diagonal (9.6 px at 480x832).

Limits. An epipolar distance cannot see a displacement along the epipolar line (the
homography case, zero baseline, sees every displacement). In particular, under a pure
translation every pixel lies on its own epipolar line (``x^T [t]x x = 0``), so a generated
video that copies the reference passes; the camera metrics (estimated motion against the
target trajectory) catch that case. A point the flow loses is dropped, not counted as
inconsistent (``tracked_fraction`` says how many checks remained).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvt4g.camera.intrinsics import Intrinsics, stack_K
from mvt4g.camera.pose import validate_c2w
from mvt4g.errors import InputError
from mvt4g.eval.epipolar import DEFAULT_MIN_BASELINE, relative_geometry, sampson_distance, transfer_distance
from mvt4g.eval.features import DEFAULT_MAX_FEATURES, DEFAULT_RATIO, match_features, sift_features
from mvt4g.eval.inputs import MetricUnavailable, check_video
from mvt4g.tracks.flow.chains import chain_tracks
from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.flow.optical_flow import view_flows

#: Default threshold as a fraction of the generated video's diagonal.
DEFAULT_THRESHOLD_FRACTION = 0.01
#: Fewest linked points for a value.
DEFAULT_MIN_LINKS = 8

METRIC_INFO = {
    "track_consistency": {
        "source": "mvt4g track-consistency check (weight-free)",
        "settings": "SIFT ratio-test matches at frame 0 linked when within the threshold of the known geometry; "
        "tracked by DIS optical flow with forward-backward checks in each video; fraction of later "
        "(point, frame) checks within the threshold (1 % of the diagonal) under the cameras at that frame",
    },
    "track_error": {
        "source": "mvt4g track-consistency check (weight-free)",
        "settings": "mean over frames of the median Sampson (or homography transfer, baseline < 1 mm) distance in "
        "px of the linked, still-tracked points",
    },
}


@dataclass
class TrackConsistencyResult:
    """Track consistency of one video pair.

    ``per_frame_error`` float64 ``[T]`` (median distance, px; NaN at the anchor and where no
    point was checked), ``per_frame_checked`` int ``[T]`` points checked per frame.
    """

    consistency: float
    error: float
    linked: int
    checked: int
    tracked_fraction: float
    threshold_px: float
    anchor: int
    per_frame_error: np.ndarray
    per_frame_checked: np.ndarray

    def to_dict(self) -> dict:
        return {"track_consistency": self.consistency, "track_error": self.error, "linked": self.linked,
                "checked": self.checked, "tracked_fraction": self.tracked_fraction,
                "threshold_px": self.threshold_px, "anchor": self.anchor}  # fmt: skip


def _distances(model: str, M: np.ndarray, x_ref: np.ndarray, x_gen: np.ndarray) -> np.ndarray:
    return sampson_distance(M, x_ref, x_gen) if model == "fundamental" else transfer_distance(M, x_ref, x_gen)


def track_consistency(
    reference: object,
    generated: object,
    K_ref: Intrinsics | np.ndarray,
    c2w_ref: object,
    K_gen: Intrinsics | np.ndarray,
    c2w_gen: object,
    *,
    anchor: int = 0,
    threshold_px: float | None = None,
    min_links: int = DEFAULT_MIN_LINKS,
    min_baseline: float = DEFAULT_MIN_BASELINE,
    max_features: int = DEFAULT_MAX_FEATURES,
    ratio: float = DEFAULT_RATIO,
    flow: FlowConfig | None = None,
) -> TrackConsistencyResult:
    """Track consistency of ``generated`` with ``reference`` (uint8 ``[T, H, W, 3]``; sizes may differ).

    ``K_*``: :class:`Intrinsics`, ``[3, 3]`` or ``[T, 3, 3]``; ``c2w_*``: ``[T, 4, 4]`` in one
    world. Raises :class:`MetricUnavailable` when fewer than ``min_links`` points link at the
    anchor or none is still tracked in both videos at any other frame.
    """
    ref = check_video(reference, name="reference video", min_frames=2)
    gen = check_video(generated, name="generated video", min_frames=2)
    T = ref.shape[0]
    if gen.shape[0] != T:
        raise InputError(f"reference video has {T} frames but the generated video has {gen.shape[0]}")
    if not 0 <= anchor < T:
        raise InputError(f"anchor frame must be in [0, {T - 1}], got {anchor}")
    Kr, Kg = stack_K(K_ref, T), stack_K(K_gen, T)
    pr = validate_c2w(c2w_ref, name="reference camera")
    pg = validate_c2w(c2w_gen, name="generated camera")
    for name, arr in (("reference intrinsics", Kr), ("generated intrinsics", Kg), ("reference cameras", pr),
                      ("generated cameras", pg)):  # fmt: skip
        if arr.shape[0] != T:
            raise InputError(f"{name} have {arr.shape[0]} frames but the videos have {T}")
    if threshold_px is None:
        threshold_px = DEFAULT_THRESHOLD_FRACTION * float(np.hypot(*gen.shape[1:3]))
    if not threshold_px > 0:
        raise InputError(f"threshold must be positive, got {threshold_px}")

    # 1. Link at the anchor.
    fr, fg = sift_features(ref[anchor], max_features), sift_features(gen[anchor], max_features)
    pairs = match_features(fr, fg, ratio)
    xr, xg = fr.xy[pairs[:, 0]], fg.xy[pairs[:, 1]]
    model, M = relative_geometry(Kr[anchor], pr[anchor], Kg[anchor], pg[anchor], min_baseline)
    linked = _distances(model, M, xr, xg) < threshold_px if len(pairs) else np.zeros(0, bool)
    if int(linked.sum()) < min_links:
        raise MetricUnavailable(
            f"track consistency: {int(linked.sum())} of {len(pairs)} SIFT matches at frame {anchor} agree with the "
            f"cameras (within {threshold_px:.1f} px), {min_links} needed"
        )
    xr, xg = xr[linked], xg[linked]
    n = len(xr)

    # 2. Track in each video from the anchor.
    config = flow or FlowConfig()
    start = np.full(n, anchor)
    path_r, ok_r = chain_tracks(view_flows(ref, config), start, xr, config)
    path_g, ok_g = chain_tracks(view_flows(gen, config), start, xg, config)

    # 3. Check at every other frame under that frame's cameras.
    per_frame = np.full(T, np.nan)
    counts = np.zeros(T, np.int64)
    good = checked = 0
    for t in range(T):
        if t == anchor:
            continue
        alive = ok_r[t] & ok_g[t]
        if not alive.any():
            continue
        model_t, M_t = relative_geometry(Kr[t], pr[t], Kg[t], pg[t], min_baseline)
        d = _distances(model_t, M_t, path_r[t, alive], path_g[t, alive])
        per_frame[t] = float(np.median(d))
        counts[t] = int(alive.sum())
        good += int((d < threshold_px).sum())
        checked += int(alive.sum())
    if checked == 0:
        raise MetricUnavailable(f"track consistency: none of the {n} linked points is tracked in both videos past frame {anchor}")
    scored = np.isfinite(per_frame)
    return TrackConsistencyResult(
        consistency=good / checked, error=float(per_frame[scored].mean()), linked=n, checked=checked,
        tracked_fraction=checked / (n * (T - 1)), threshold_px=float(threshold_px), anchor=int(anchor),
        per_frame_error=per_frame, per_frame_checked=counts,
    )  # fmt: skip
