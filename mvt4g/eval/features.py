"""SIFT keypoints and ratio-test matching (OpenCV), shared by pose estimation and the epipolar proxy.

Keypoint positions are returned in mvt4g's pixel convention: pixel centres at ``(u + 0.5, v +
0.5)``. OpenCV puts the centre of pixel ``(u, v)`` at ``(u, v)``, so 0.5 is added to every
coordinate OpenCV reports; with that, ``K^-1 [x, y, 1]`` is the true viewing ray for mvt4g
intrinsics.

Matching is brute force (L2, deterministic) with Lowe's ratio test; no geometric filtering
here, so callers decide what model (if any) the matches are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Lowe's ratio: a match is kept when its distance is below this fraction of the second best.
DEFAULT_RATIO = 0.8
#: Keypoints kept per frame (the strongest by SIFT's response).
DEFAULT_MAX_FEATURES = 2000


@dataclass
class Features:
    """SIFT features of one image: ``xy`` float64 ``[N, 2]`` (mvt4g pixels), ``desc`` float32 ``[N, 128]``."""

    xy: np.ndarray
    desc: np.ndarray

    def __len__(self) -> int:
        return int(self.xy.shape[0])


def sift_features(frame: np.ndarray, max_features: int = DEFAULT_MAX_FEATURES, mask: np.ndarray | None = None) -> Features:
    """SIFT keypoints of one uint8 RGB frame ``[H, W, 3]``.

    ``mask`` (``[H, W]`` bool, optional) keeps only keypoints where it is true (e.g. the
    static background).
    """
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    sift = cv2.SIFT_create(nfeatures=int(max_features))
    cv_mask = None if mask is None else np.ascontiguousarray(mask, dtype=np.uint8) * 255
    keypoints, desc = sift.detectAndCompute(gray, cv_mask)
    if desc is None or not keypoints:
        return Features(np.zeros((0, 2)), np.zeros((0, 128), np.float32))
    xy = np.array([kp.pt for kp in keypoints], dtype=np.float64) + 0.5
    return Features(xy, desc.astype(np.float32, copy=False))


def match_features(a: Features, b: Features, ratio: float = DEFAULT_RATIO) -> np.ndarray:
    """Indices ``[M, 2]`` (into ``a``, into ``b``) of ratio-test matches, one per keypoint of ``a``.

    A keypoint of ``b`` claimed by several keypoints of ``a`` keeps only the closest claim, so
    the result is one-to-one.
    """
    if len(a) < 2 or len(b) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    pairs = []
    for best in matcher.knnMatch(a.desc, b.desc, k=2):
        if len(best) == 2 and best[0].distance < ratio * best[1].distance:
            pairs.append((best[0].queryIdx, best[0].trainIdx, best[0].distance))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    arr = np.array(pairs)
    order = np.argsort(arr[:, 2], kind="stable")
    _, first = np.unique(arr[order, 1], return_index=True)
    kept = np.sort(order[first])
    return arr[kept, :2].astype(np.int64)


def normalized_points(xy: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels ``[N, 2]`` (mvt4g convention) -> normalised image coordinates ``[N, 2]`` = ``K^-1 x``."""
    xy = np.asarray(xy, dtype=np.float64)
    return np.stack([(xy[:, 0] - K[0, 2]) / K[0, 0], (xy[:, 1] - K[1, 2]) / K[1, 1]], axis=-1)
