"""Weight-free camera poses of a video: SIFT tracks, an essential-matrix start, then PnP frame by frame.

Given a video and its (known, constant) intrinsics, :func:`estimate_poses` returns a
camera-to-world pose for every frame relative to frame 0 (frame 0 is the identity; OpenCV
axes), up to one global scale. It is an incremental structure-from-motion:

1. Tracks. SIFT keypoints in every frame; consecutive frames are matched with Lowe's ratio
   test and the matches are kept only if they fit an essential matrix (RANSAC, 1 px). Chained
   matches form tracks. A frame that cannot be linked to the previous one (a blank or broken
   frame) is linked to the one before that, up to 3 frames back, so one bad frame does not cut
   every track.
2. Start. Frames are paired with frame 0 in turn; for each, an essential matrix (RANSAC) and
   its relative pose (``|t| = 1``, which fixes the scale of the whole trajectory) are found and
   the matches triangulated. The first pair with real parallax starts the reconstruction: a
   pure rotation (RANSAC over 2-match Kabsch fits of the viewing rays, 1.5 px) explains under
   90 % of the tracks it shares with frame 0, and the rays of its triangulated points meet at a
   median angle of 2 degrees or more. (Both tests are needed: under a pure rotation the
   five-point solver still returns some translation, and its "triangulated" points can meet at
   about a degree; with real parallax, far points alone may still fit a rotation.)
3. Frame by frame, every other frame is registered by PnP (RANSAC, 2 px, then
   Levenberg-Marquardt on the inliers) against the triangulated points it sees; after each
   registration, tracks it shares with an earlier registered frame are triangulated when the
   rays meet at 1 degree or more, land in front of both cameras and reproject within 2 px.
   Frames that fail are retried once the map has grown.
4. Pure rotation. When no pair passes the rotation test with at least 1 degree before the
   tracks shared with frame 0 run out, there is no baseline to triangulate from and the video
   is treated as a rotating camera: each frame's rotation is fitted to its tracks shared with
   frame 0 (the same rotation RANSAC, then a refit on the inliers), or chained from the
   previous frame when those tracks are gone; translations are zero. (Known limitation: a
   camera translating a little in front of a far scene is treated the same way.)
5. Bundle adjustment (``mvt4g.eval.bundle_adjust``) of all registered cameras and the 1500
   points seen in the most frames, each time the registered frames have grown by half and at
   the end; the scale is then reset so that ``|c_start| = 1``.

Moving objects: their matches break the essential-matrix, rotation and PnP consensus and
are dropped as RANSAC outliers, as long as the static scene holds most of the matches.
Frames that cannot be registered keep NaN poses and ``registered = False``; camera metrics
refuse such poses (``PoseEstimate.require_complete``) rather than score a guess.

RANSAC uses OpenCV's global random generator, re-seeded (``cv2.setRNGSeed(0)``) at the start
of every call so results are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.errors import CameraError
from mvt4g.eval.bundle_adjust import bundle_adjust
from mvt4g.eval.features import Features, normalized_points, sift_features
from mvt4g.eval.inputs import MetricUnavailable, check_video
from mvt4g.eval.sift_tracks import Tracks
from mvt4g.eval.two_view import (
    focal_length,
    good_points,
    rotation_ransac,
    triangulate,
)

METRIC_INFO = {
    "pose_estimation": {
        "source": "mvt4g weight-free incremental SfM (OpenCV SIFT, essential matrix, PnP RANSAC)",
        "settings": "poses relative to frame 0, one global scale fixed by |t| = 1 between frame 0 and the "
        "start frame; pure-rotation fallback when no parallax",
    }
}


@dataclass(frozen=True)
class PoseSettings:
    """Tunable thresholds of :func:`estimate_poses` (defaults suit 480x832 video)."""

    max_features: int = 2000
    ratio: float = 0.8
    #: RANSAC threshold (pixels) of the essential matrices.
    ransac_px: float = 1.0
    #: Fewest correspondences for a frame pair, a start pair or a rotation fit.
    min_matches: int = 30
    #: Median triangulation angle (degrees) of a frame paired with frame 0 that starts the reconstruction.
    start_angle_deg: float = 2.0
    #: A start pair needs a pure rotation to explain less than this fraction of its shared tracks.
    max_rotation_ratio: float = 0.9
    #: Threshold (pixels) of the pure-rotation fits (RANSAC).
    rotation_px: float = 1.5
    #: PnP RANSAC and triangulation reprojection threshold (pixels).
    pnp_px: float = 2.0
    #: Fewest PnP inliers for a registered frame.
    min_pnp: int = 15
    #: Smallest angle (degrees) between the two rays of a triangulated point.
    min_angle_deg: float = 1.0
    #: Bundle-adjust when the registered frames have grown by this factor since the last time
    #: (and at the end): about log(T) adjustments rather than one every few frames.
    bundle_growth: float = 1.5
    #: Points taken into a bundle adjustment (those seen in the most frames), to bound its cost.
    bundle_points: int = 1500


@dataclass
class PoseEstimate:
    """Estimated cameras of one video.

    Attributes:
        c2w: float64 ``[T, 4, 4]`` camera-to-world poses relative to frame 0 (NaN where not
            registered), translations in an arbitrary global scale.
        registered: bool ``[T]``.
        inliers: int ``[T]`` correspondences that support each frame's pose.
        mode: ``"sfm"`` or ``"rotation-only"``.
        start_frame: the frame paired with frame 0 to start the reconstruction (sfm mode).
        points: number of triangulated 3D points.
        reprojection_px: median reprojection error (pixels) of all observations after the final
            bundle adjustment (sfm mode; NaN in rotation-only mode).
    """

    c2w: np.ndarray
    registered: np.ndarray
    inliers: np.ndarray
    mode: str
    start_frame: int | None
    points: int
    reprojection_px: float

    @property
    def complete(self) -> bool:
        return bool(self.registered.all())

    def require_complete(self) -> np.ndarray:
        """The poses, or :class:`MetricUnavailable` naming the frames that could not be registered."""
        if not self.complete:
            missing = np.flatnonzero(~self.registered)
            shown = ", ".join(str(i) for i in missing[:8]) + (" ..." if len(missing) > 8 else "")
            raise MetricUnavailable(
                f"camera poses of {len(missing)} of {len(self.registered)} frames could not be estimated (frames {shown})"
            )
        return self.c2w

    def summary(self) -> dict:
        return {
            "mode": self.mode,
            "registered": int(self.registered.sum()),
            "frames": len(self.registered),
            "start_frame": self.start_frame,
            "points": self.points,
            "reprojection_px": self.reprojection_px,
        }


# ----------------------------------------------------------------------------- estimation


def estimate_poses(video: object, intrinsics: Intrinsics | np.ndarray, settings: PoseSettings | None = None) -> PoseEstimate:
    """Camera poses of every frame of ``video`` (uint8 ``[T, H, W, 3]``) relative to frame 0.

    ``intrinsics`` is the video's :class:`Intrinsics` or a 3x3 matrix (mvt4g pixel convention),
    the same for all frames. See the module docstring for the method and its limits.
    """
    s = settings or PoseSettings()
    frames = check_video(video, min_frames=2)
    K = _as_K(intrinsics, frames.shape[2], frames.shape[1])
    cv2.setRNGSeed(0)
    feats = [sift_features(f, s.max_features) for f in frames]
    tracks = Tracks(feats, K, s.ratio, s.ransac_px, s.min_matches)
    start = _find_start(feats, tracks, K, s)
    if start is None:
        return _rotation_only(feats, tracks, K, s)
    return _incremental(feats, tracks, K, s, start)


def _as_K(intrinsics: Intrinsics | np.ndarray, width: int, height: int) -> np.ndarray:
    if isinstance(intrinsics, Intrinsics):
        if (intrinsics.width, intrinsics.height) != (width, height):
            raise CameraError(
                f"intrinsics are for {intrinsics.width}x{intrinsics.height} but the video is {width}x{height}"
            )
        return intrinsics.K
    return Intrinsics.from_K(intrinsics, width, height).K


@dataclass
class _StartPair:
    """Frame 0 and ``frame``: the relative pose ``[R | t]`` (``|t| = 1``) and its triangulated points."""

    frame: int
    pose: np.ndarray
    track_ids: np.ndarray
    points: np.ndarray
    angle_deg: float
    rotation_ratio: float


def _find_start(feats: list[Features], tracks: Tracks, K: np.ndarray, s: PoseSettings) -> _StartPair | None:
    """The first frame whose pair with frame 0 has real parallax (see the module docstring).

    A candidate qualifies when a pure rotation explains under ``max_rotation_ratio`` of the
    tracks it shares with frame 0 and the essential matrix's triangulated points meet at a
    median angle of ``start_angle_deg`` or more. When no frame qualifies before the shared
    tracks run out, the widest candidate passing the rotation test with a median angle of at
    least ``min_angle_deg`` is used; failing that the camera is taken to rotate in place.
    """
    fallback: _StartPair | None = None
    for t in range(1, len(feats)):
        ids, ia, ib = tracks.common(0, t)
        if len(ia) < s.min_matches:
            break
        pair = _start_candidate(t, ids, feats[0].xy[ia], feats[t].xy[ib], K, s)
        if pair is None or pair.rotation_ratio >= s.max_rotation_ratio:
            continue
        if pair.angle_deg >= s.start_angle_deg:
            return pair
        if pair.angle_deg >= s.min_angle_deg and (fallback is None or pair.angle_deg > fallback.angle_deg):
            fallback = pair
    return fallback


def _start_candidate(t: int, ids: np.ndarray, x0: np.ndarray, xt: np.ndarray, K: np.ndarray, s: PoseSettings):
    n0, nt = normalized_points(x0, K), normalized_points(xt, K)
    if np.median(np.linalg.norm(x0 - xt, axis=1)) < s.ransac_px:
        return None  # a still camera: no epipolar geometry to estimate
    E, mask = cv2.findEssentialMat(n0, nt, np.eye(3), method=cv2.RANSAC, prob=0.999, threshold=s.ransac_px / focal_length(K))
    if E is None or mask is None:
        return None
    best = None
    for i in range(0, E.shape[0] - 2, 3):  # OpenCV may return several stacked solutions
        count, R, tvec, pose_mask = cv2.recoverPose(E[i : i + 3], n0, nt, np.eye(3), mask=mask.copy())
        if best is None or count > best[0]:
            best = (int(count), np.c_[R, tvec.ravel() / np.linalg.norm(tvec)], pose_mask.ravel() > 0)
    if best is None or best[0] < s.min_matches:
        return None
    count, pose, inl = best
    _, rotation_inliers = rotation_ransac(x0, xt, K, s.rotation_px)
    P0 = np.c_[np.eye(3), np.zeros(3)]
    X = triangulate(P0, pose, n0[inl], nt[inl])
    rays0, rays1 = X, X - (-pose[:, :3].T @ pose[:, 3])
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = (rays0 * rays1).sum(1) / (np.linalg.norm(rays0, axis=1) * np.linalg.norm(rays1, axis=1))
    angle = float(np.degrees(np.nanmedian(np.arccos(np.clip(cos, -1.0, 1.0)))))
    good = good_points(X, [P0, pose], [n0[inl], nt[inl]], K, s.pnp_px, s.min_angle_deg)
    return _StartPair(t, pose, ids[inl][good], X[good], angle, float(rotation_inliers.mean()))


def _incremental(feats: list[Features], tracks: Tracks, K: np.ndarray, s: PoseSettings, pair: _StartPair) -> PoseEstimate:
    T = len(feats)
    start = pair.frame
    w2c = np.full((T, 3, 4), np.nan)
    inliers = np.zeros(T, dtype=np.int64)
    points = np.full((tracks.count, 3), np.nan)
    w2c[0] = np.c_[np.eye(3), np.zeros(3)]
    w2c[start] = pair.pose
    points[pair.track_ids] = pair.points
    inliers[0] = inliers[start] = len(pair.track_ids)
    if len(pair.track_ids) < s.min_pnp:
        raise MetricUnavailable(f"too few points could be triangulated from frames 0 and {start} ({len(pair.track_ids)})")

    pending = [t for t in range(1, T) if t != start]
    bundled_at = 2
    while pending:
        failed = []
        for t in pending:
            result = _register(feats[t], tracks.ids[t], points, K, s)
            if result is None:
                failed.append(t)
                continue
            w2c[t], inliers[t], _ = result
            _extend_map(t, feats, tracks, w2c, points, K, s)
            count = int(np.isfinite(w2c).all(axis=(1, 2)).sum())
            if count >= s.bundle_growth * bundled_at and count >= bundled_at + 3:
                w2c, points = _bundle(feats, tracks, w2c, points, K, s)
                bundled_at = count
        if len(failed) == len(pending):
            break
        pending = failed
    w2c, points = _bundle(feats, tracks, w2c, points, K, s)

    registered = np.isfinite(w2c).all(axis=(1, 2))
    # Restore the scale convention |c_start| = 1 (bundle adjustment leaves the scale free).
    scale = 1.0 / max(float(np.linalg.norm(_c2w(w2c[start])[:3, 3])), 1e-12)
    c2w = np.full((T, 4, 4), np.nan)
    for t in np.flatnonzero(registered):
        c2w[t] = _c2w(w2c[t])
        c2w[t, :3, 3] *= scale
    _, _, _, errors = _observations(feats, tracks, w2c, points, K)
    reproj_px = float(np.median(errors)) if len(errors) else float("nan")
    return PoseEstimate(c2w, registered, inliers, "sfm", start, int(np.isfinite(points).all(1).sum()), reproj_px)


def _observations(feats: list[Features], tracks: Tracks, w2c: np.ndarray, points: np.ndarray, K: np.ndarray):
    """Every (frame, point, pixel) of a registered frame seeing a triangulated point, and its reprojection error."""
    frames, pts, xys = [], [], []
    for t in np.flatnonzero(np.isfinite(w2c).all(axis=(1, 2))):
        ids = tracks.ids[t]
        have = np.isfinite(points[ids]).all(axis=1)
        frames.append(np.full(int(have.sum()), t))
        pts.append(ids[have])
        xys.append(feats[t].xy[have])
    f, p, xy = np.concatenate(frames), np.concatenate(pts), np.concatenate(xys)
    Xc = np.einsum("mij,mj->mi", w2c[f, :, :3], points[p]) + w2c[f, :, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        proj = np.c_[K[0, 0] * Xc[:, 0] / Xc[:, 2] + K[0, 2], K[1, 1] * Xc[:, 1] / Xc[:, 2] + K[1, 2]]
        err = np.linalg.norm(proj - xy, axis=1)
    err[~(Xc[:, 2] > 0)] = np.inf
    return f, p, xy, err


def _bundle(feats, tracks: Tracks, w2c: np.ndarray, points: np.ndarray, K: np.ndarray, s: PoseSettings):
    """Bundle-adjust the ``bundle_points`` points seen most often and the cameras that see them.

    Observations off by more than 4x the PnP threshold are left out (gross outliers). Points
    not taken in keep their positions; they only serve to register later frames.
    """
    f, p, xy, err = _observations(feats, tracks, w2c, points, K)
    keep = err < 4.0 * s.pnp_px
    f, p, xy = f[keep], p[keep], xy[keep]
    ids, counts = np.unique(p, return_counts=True)
    if len(ids) > s.bundle_points:
        order = np.lexsort((ids, -counts))  # most observed first, ties by id: deterministic
        chosen = np.zeros(tracks.count, bool)
        chosen[ids[order[: s.bundle_points]]] = True
        sel = chosen[p]
        f, p, xy = f[sel], p[sel], xy[sel]
    return bundle_adjust(w2c, points, f, p, xy, K, loss_px=s.pnp_px / 2.0)


def _register(feat: Features, ids: np.ndarray, points: np.ndarray, K: np.ndarray, s: PoseSettings):
    """PnP pose of one frame against the map: (w2c [3, 4], inlier count, reprojection errors) or None."""
    X = points[ids]
    have = np.isfinite(X).all(axis=1)
    if have.sum() < s.min_pnp:
        return None
    obj, img = X[have], feat.xy[have]
    ok, rvec, tvec, inl = cv2.solvePnPRansac(obj, img, K, None, iterationsCount=500, reprojectionError=s.pnp_px,
                                             confidence=0.999, flags=cv2.SOLVEPNP_EPNP)  # fmt: skip
    if not ok or inl is None or len(inl) < s.min_pnp:
        return None
    inl = inl.ravel()
    rvec, tvec = cv2.solvePnPRefineLM(obj[inl], img[inl], K, None, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, K, None)
    err = np.linalg.norm(proj.reshape(-1, 2) - img, axis=1)
    keep = err < s.pnp_px
    if keep.sum() < s.min_pnp:
        return None
    R, _ = cv2.Rodrigues(rvec)
    return np.c_[R, tvec.ravel()], int(keep.sum()), err[keep]


def _extend_map(t: int, feats: list[Features], tracks: Tracks, w2c: np.ndarray, points: np.ndarray,
                K: np.ndarray, s: PoseSettings) -> None:  # fmt: skip
    """Triangulate tracks of frame ``t`` without a point against their earliest registered frame."""
    ids = tracks.ids[t]
    new = ~np.isfinite(points[ids]).all(axis=1)
    todo_ids, todo_kp = ids[new], np.flatnonzero(new)
    registered = [f for f in range(len(feats)) if f != t and np.isfinite(w2c[f]).all()]
    for f in registered:
        if len(todo_ids) == 0:
            break
        kp_f = tracks.keypoints_of(f, todo_ids)
        seen = kp_f >= 0
        if not seen.any():
            continue
        nf = normalized_points(feats[f].xy[kp_f[seen]], K)
        nt = normalized_points(feats[t].xy[todo_kp[seen]], K)
        X = triangulate(w2c[f], w2c[t], nf, nt)
        good = good_points(X, [w2c[f], w2c[t]], [nf, nt], K, s.pnp_px, s.min_angle_deg)
        points[todo_ids[seen][good]] = X[good]
        # Tracks seen in f but not good enough now wait for a wider baseline later.
        keep = np.ones(len(todo_ids), bool)
        keep[np.flatnonzero(seen)] = False
        todo_ids, todo_kp = todo_ids[keep], todo_kp[keep]


def _c2w(w2c: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    R, t = w2c[:, :3], w2c[:, 3]
    out[:3, :3] = R.T
    out[:3, 3] = -R.T @ t
    return out


def _rotation_only(feats: list[Features], tracks: Tracks, K: np.ndarray, s: PoseSettings) -> PoseEstimate:
    """Rotations (zero translations) of a camera that turns in place, see the module docstring."""
    T = len(feats)
    rot = np.full((T, 3, 3), np.nan)
    rot[0] = np.eye(3)
    inliers = np.zeros(T, dtype=np.int64)
    for t in range(1, T):
        fitted = _rotation_between(feats, tracks, 0, t, K, s)
        if fitted is not None:
            rot[t], inliers[t] = fitted
            continue
        step = _rotation_between(feats, tracks, t - 1, t, K, s) if np.isfinite(rot[t - 1]).all() else None
        if step is not None:
            rot[t], inliers[t] = step[0] @ rot[t - 1], step[1]
    registered = np.isfinite(rot).all(axis=(1, 2))
    c2w = np.full((T, 4, 4), np.nan)
    for t in np.flatnonzero(registered):
        c2w[t] = np.eye(4)
        c2w[t, :3, :3] = rot[t].T  # rot maps frame-0 rays to frame-t rays (world-to-camera)
    return PoseEstimate(c2w, registered, inliers, "rotation-only", None, 0, float("nan"))


def _rotation_between(feats, tracks: Tracks, a: int, b: int, K: np.ndarray, s: PoseSettings):
    _, ia, ib = tracks.common(a, b)
    if len(ia) < s.min_matches:
        return None
    R, inl = rotation_ransac(feats[a].xy[ia], feats[b].xy[ib], K, s.rotation_px)
    if inl.sum() < s.min_matches:
        return None
    return R, int(inl.sum())
