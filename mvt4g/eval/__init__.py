"""Evaluation metrics for generated videos (the core of ``mvt4g eval``; no CLI here).

Modules, one idea each:

* ``image_metrics``: PSNR, SSIM (Gaussian 11x11, sigma 1.5), their masked variants, VBench
  temporal flickering (weight-free, exact).
* ``pose_estimation`` (+ ``features``, ``sift_tracks``, ``two_view``, ``bundle_adjust``):
  weight-free camera poses of a video (SIFT tracks, essential matrix, PnP, bundle
  adjustment; pure-rotation fallback).
* ``camera_metrics``: RotErr, TransErr, CamMC in the ``camctrl`` and ``mean`` conventions.
* ``epipolar``: a geometric-consistency PROXY (Sampson error under the known cameras); not MEt3R.
* ``learned``: the registry of metrics that need user-supplied weights; LPIPS implemented.
* ``inputs``: shared input checks and :class:`MetricUnavailable` (a metric with no honest value).

    >>> import numpy as np
    >>> from mvt4g.eval import psnr, ssim
    >>> v = np.zeros((2, 16, 16, 3), np.uint8)
    >>> psnr(v, v), ssim(v, v)
    (inf, 1.0)

Every metric module has a ``METRIC_INFO`` dict (source and settings of each metric) so that
reports can say exactly what they computed; :data:`METRIC_INFO` merges them.
"""

from mvt4g.eval import camera_metrics, epipolar, image_metrics, pose_estimation
from mvt4g.eval.camera_metrics import (
    CONVENTIONS,
    CameraErrors,
    camera_errors,
    rotation_angles,
)
from mvt4g.eval.epipolar import EpipolarResult, epipolar_error
from mvt4g.eval.image_metrics import (
    psnr,
    psnr_per_frame,
    ssim,
    ssim_per_frame,
    temporal_flickering,
)
from mvt4g.eval.inputs import MetricUnavailable
from mvt4g.eval.learned import REGISTRY as LEARNED_METRICS
from mvt4g.eval.learned import all_statuses as learned_statuses
from mvt4g.eval.pose_estimation import PoseEstimate, PoseSettings, estimate_poses

#: Source and settings of every weight-free metric, by name.
METRIC_INFO: dict[str, dict[str, str]] = {
    **image_metrics.METRIC_INFO,
    **{f"camera_{k}": v for k, v in camera_metrics.METRIC_INFO.items()},
    **pose_estimation.METRIC_INFO,
    **epipolar.METRIC_INFO,
}

__all__ = [
    "CONVENTIONS",
    "LEARNED_METRICS",
    "METRIC_INFO",
    "CameraErrors",
    "EpipolarResult",
    "MetricUnavailable",
    "PoseEstimate",
    "PoseSettings",
    "camera_errors",
    "epipolar_error",
    "estimate_poses",
    "learned_statuses",
    "psnr",
    "psnr_per_frame",
    "rotation_angles",
    "ssim",
    "ssim_per_frame",
    "temporal_flickering",
]
