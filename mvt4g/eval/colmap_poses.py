"""Camera poses of a video with COLMAP (pycolmap): SIFT, sequential matching, incremental mapping.

:func:`estimate_poses_colmap` is a drop-in for ``mvt4g.eval.pose_estimation.estimate_poses``:
same inputs (a uint8 ``[T, H, W, 3]`` video and its known, constant intrinsics), same
:class:`~mvt4g.eval.pose_estimation.PoseEstimate` out (camera-to-world poses relative to frame
0, OpenCV axes, one arbitrary global scale; NaN and ``registered = False`` where a frame was not
registered).

The frames are written as PNGs to a temporary folder and COLMAP runs on them:

1. ``extract_features``: SIFT (COLMAP's own), one shared PINHOLE camera with the given
   ``fx, fy, cx, cy`` (COLMAP's pixel convention, centres at +0.5, is mvt4g's).
2. ``match_sequential``: every frame against the next ``overlap`` frames, geometric verification.
3. ``incremental_mapping`` with the intrinsics held fixed (no focal, principal-point or
   distortion refinement), one thread, a fixed random seed. When COLMAP returns several
   models, the one with the most registered frames is used; frames outside it count as not
   registered. The model's frame 0 must be registered, since poses are relative to it.

Nothing is downloaded; pycolmap ships COLMAP in its wheel (CPU).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.eval.inputs import MetricUnavailable, check_video
from mvt4g.eval.pose_estimation import PoseEstimate, _as_K

METRIC_INFO = {
    "pose_estimation": {
        "source": "COLMAP incremental SfM via pycolmap (SIFT, sequential matching, incremental mapping)",
        "settings": "known intrinsics held fixed (PINHOLE); largest model; poses relative to frame 0, one global scale",
    }
}


@dataclass(frozen=True)
class ColmapSettings:
    """Knobs of :func:`estimate_poses_colmap`."""

    max_features: int = 8192
    #: Each frame is matched against this many following frames.
    overlap: int = 10
    #: Fewest verified matches for an image pair to be used by the mapper.
    min_num_matches: int = 15
    seed: int = 0


def estimate_poses_colmap(
    video: object, intrinsics: Intrinsics | np.ndarray, settings: ColmapSettings | None = None
) -> PoseEstimate:
    """Camera poses of every frame of ``video`` relative to frame 0, estimated by COLMAP."""
    import pycolmap

    s = settings or ColmapSettings()
    frames = check_video(video, min_frames=2)
    level = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 3  # the core prints nothing: COLMAP's log (even its errors) stays quiet
    try:
        return _estimate(pycolmap, frames, intrinsics, s)
    finally:
        pycolmap.logging.minloglevel = level


def _estimate(pycolmap, frames: np.ndarray, intrinsics: Intrinsics | np.ndarray, s: ColmapSettings) -> PoseEstimate:
    T, H, W = frames.shape[:3]
    K = _as_K(intrinsics, W, H)
    with tempfile.TemporaryDirectory(prefix="mvt4g-colmap-") as tmp:
        root = Path(tmp)
        images = root / "images"
        images.mkdir()
        names = [f"{t:05d}.png" for t in range(T)]
        for name, frame in zip(names, frames, strict=True):
            cv2.imwrite(str(images / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        db = root / "database.db"
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = "PINHOLE"
        reader.camera_params = ",".join(repr(float(v)) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = 1
        extraction.use_gpu = False
        extraction.sift.max_num_features = s.max_features
        pycolmap.extract_features(db, images, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                                  reader_options=reader, extraction_options=extraction,
                                  device=pycolmap.Device.cpu)  # fmt: skip
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = s.overlap
        pairing.num_threads = 1
        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = 1
        matching.use_gpu = False
        pycolmap.match_sequential(db, matching_options=matching, pairing_options=pairing, device=pycolmap.Device.cpu)
        opts = pycolmap.IncrementalPipelineOptions()
        opts.ba_refine_focal_length = False
        opts.ba_refine_principal_point = False
        opts.ba_refine_extra_params = False
        opts.min_num_matches = s.min_num_matches
        opts.num_threads = 1
        opts.random_seed = s.seed
        (root / "sparse").mkdir()
        models = pycolmap.incremental_mapping(db, images, root / "sparse", options=opts)
    return _to_estimate(models, names)


def _to_estimate(models: dict, names: list[str]) -> PoseEstimate:
    T = len(names)
    if not models:
        raise MetricUnavailable(f"COLMAP registered no frames of {T} (no initial pair found)")
    rec = max(models.values(), key=lambda r: r.num_reg_images())
    index = {name: t for t, name in enumerate(names)}
    c2w = np.full((T, 4, 4), np.nan)
    registered = np.zeros(T, bool)
    inliers = np.zeros(T, int)
    for image in rec.images.values():
        if not image.has_pose:
            continue
        t = index[image.name]
        w2c = np.eye(4)
        w2c[:3, :] = image.cam_from_world().matrix()
        c2w[t] = np.linalg.inv(w2c)
        registered[t] = True
        inliers[t] = image.num_points3D
    if not registered[0]:
        raise MetricUnavailable(f"COLMAP did not register frame 0 ({int(registered.sum())} of {T} frames registered)")
    c2w[registered] = np.linalg.inv(c2w[0]) @ c2w[registered]
    centres = c2w[registered, :3, 3]
    scale = float(np.linalg.norm(centres, axis=1).max()) if registered.any() else 0.0
    if scale > 1e-12:  # the same convention as the builtin: unit-ish scale, the metrics rescale anyway
        c2w[registered, :3, 3] /= scale
    errors = [p.error for p in rec.points3D.values()]
    return PoseEstimate(
        c2w=c2w, registered=registered, inliers=inliers, mode="colmap", start_frame=None,
        points=len(rec.points3D), reprojection_px=float(np.median(errors)) if errors else float("nan"),
    )  # fmt: skip
