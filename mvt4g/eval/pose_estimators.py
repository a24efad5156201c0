"""Which pose estimator ``mvt4g eval`` runs: ``builtin``, ``colmap`` or a plug-in ``MODULE:CALLABLE``.

``builtin`` is ``mvt4g.eval.pose_estimation`` (weight-free incremental SfM written for short
generated clips), ``colmap`` is ``mvt4g.eval.colmap_poses`` (COLMAP through pycolmap). A learned
estimator with local weights drops in as a plug-in, like ``mvt4g tracks --tracker``: ``MODULE``
is an importable module name or a path to a ``.py`` file, ``CALLABLE`` a function in it::

    def estimate(video, K):
        '''
        video: uint8 [T, H, W, 3] RGB frames
        K:     float64 [3, 3] intrinsics of every frame (pixel centres at +0.5)
        returns: c2w float [T, 4, 4] camera-to-world poses, OpenCV axes (x right, y down,
                 z forward), any world frame and scale; NaN rows for frames it could not
                 register. Or a tuple (c2w, registered bool [T]).
        '''

mvt4g re-expresses the poses relative to frame 0 (which must be registered) and scores them
like the built-in ones. A plug-in that cannot be imported or returns the wrong shape is bad
input (exit 2); an exception raised inside it is a failed metric for that video, reported with
its message. mvt4g never downloads weights.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.errors import InputError
from mvt4g.eval import pose_estimation
from mvt4g.eval.inputs import MetricUnavailable, check_video
from mvt4g.eval.pose_estimation import PoseEstimate

NAMES = ("builtin", "colmap")
DEFAULT = "builtin"

Estimator = Callable[[np.ndarray, np.ndarray], PoseEstimate]


def resolve(spec: str) -> Estimator:
    """The estimator named by ``--pose-estimator`` (raises :class:`InputError` with one line)."""
    if spec == "builtin":
        return lambda video, K: pose_estimation.estimate_poses(video, K)
    if spec == "colmap":
        try:
            import pycolmap  # noqa: F401
        except ImportError as exc:
            raise InputError(f"--pose-estimator colmap needs pycolmap (pip install pycolmap): {exc}") from None
        from mvt4g.eval.colmap_poses import estimate_poses_colmap

        return lambda video, K: estimate_poses_colmap(video, K)
    if ":" not in spec:
        raise InputError(f"--pose-estimator must be {', '.join(NAMES)} or MODULE:CALLABLE, got {spec!r}")
    from mvt4g.tracks.plugin import load_tracker

    fn = load_tracker(spec, option="--pose-estimator", kind="pose estimator")
    return lambda video, K: run_plugin(fn, video, K, spec)


def describe(spec: str) -> dict[str, str]:
    """Source and settings of the poses, for the report's metric descriptions."""
    if spec == "builtin":
        return pose_estimation.METRIC_INFO["pose_estimation"]
    if spec == "colmap":
        from mvt4g.eval.colmap_poses import METRIC_INFO

        return METRIC_INFO["pose_estimation"]
    return {"source": f"plug-in pose estimator {spec}", "settings": "poses re-expressed relative to frame 0"}


def run_plugin(fn: Callable, video: object, K: np.ndarray, spec: str = "plugin") -> PoseEstimate:
    """Call a plug-in estimator and turn what it returns into a :class:`PoseEstimate`."""
    frames = check_video(video, min_frames=2)
    T, H, W = frames.shape[:3]
    K = Intrinsics.from_K(np.asarray(K, np.float64), W, H).K
    try:
        out = fn(frames.copy(), K.copy())
    except Exception as exc:  # noqa: BLE001 (the plug-in's failure is this video's failed metric)
        raise MetricUnavailable(f"pose estimator {spec} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
    registered = None
    if isinstance(out, (tuple, list)):
        if len(out) != 2:
            raise InputError(f"pose estimator {spec} must return c2w or (c2w, registered)")
        out, registered = out
    if hasattr(out, "detach") and hasattr(out, "cpu"):
        out = out.detach().cpu().numpy()
    try:
        c2w = np.array(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"pose estimator {spec} returned a non-numeric c2w") from None
    if c2w.shape != (T, 4, 4):
        raise InputError(f"pose estimator {spec} returned c2w of shape {list(c2w.shape)}, expected {[T, 4, 4]}")
    finite = np.isfinite(c2w).all(axis=(1, 2))
    if registered is None:
        registered = finite
    else:
        registered = np.asarray(registered)
        if registered.shape != (T,) or registered.dtype.kind not in "biu" or not np.isin(registered, (0, 1)).all():
            raise InputError(f"pose estimator {spec} returned a registered array that is not boolean [{T}]")
        registered = registered.astype(bool)
        if not finite[registered].all():
            raise InputError(f"pose estimator {spec} returned NaN or inf poses for registered frames")
    if not registered[0]:
        raise MetricUnavailable(f"pose estimator {spec} did not register frame 0 ({int(registered.sum())} of {T} frames)")
    rel = np.full((T, 4, 4), np.nan)
    rel[registered] = np.linalg.inv(c2w[0]) @ c2w[registered]
    return PoseEstimate(c2w=rel, registered=registered, inliers=np.zeros(T, int), mode="plugin", start_frame=None,
                        points=0, reprojection_px=float("nan"))  # fmt: skip
