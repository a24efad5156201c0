"""SIFT tracks through a video for the pose estimator: consecutive-frame matches checked by an essential matrix.

Consecutive frames are matched with Lowe's ratio test (``mvt4g.eval.features``); a match is
kept only if it fits an essential matrix (RANSAC). Chained matches form tracks. A frame that
cannot be linked to the previous one (a blank or broken frame) is linked to the one before
that, up to :data:`MAX_GAP` frames back, so one bad frame does not cut every track.
"""

from __future__ import annotations

import cv2
import numpy as np

from mvt4g.eval.features import Features, match_features, normalized_points
from mvt4g.eval.two_view import focal_length

#: How many frames back a frame may link its tracks when the previous frame does not match.
MAX_GAP = 3


class Tracks:
    """Track ids of every keypoint of every frame, built from consecutive-frame matches."""

    def __init__(self, feats: list[Features], K: np.ndarray, ratio: float, ransac_px: float, min_matches: int):
        self.ids: list[np.ndarray] = [np.arange(len(feats[0]))]
        next_id = len(feats[0])
        for t in range(1, len(feats)):
            ids = np.full(len(feats[t]), -1, dtype=np.int64)
            # Link to the previous frame; if that fails (a blank or broken frame), to up to MAX_GAP back.
            for prev in range(t - 1, max(t - 1 - MAX_GAP, -1), -1):
                pairs = essential_filter(feats[prev], feats[t], match_features(feats[prev], feats[t], ratio), K, ransac_px)
                if len(pairs) >= min_matches:
                    ids[pairs[:, 1]] = self.ids[prev][pairs[:, 0]]
                    break
            fresh = ids < 0
            ids[fresh] = np.arange(next_id, next_id + int(fresh.sum()))
            next_id += int(fresh.sum())
            self.ids.append(ids)
        self.count = next_id
        self._order = [np.argsort(i) for i in self.ids]

    def common(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tracks seen in frames a and b: (track ids, keypoint indices in a, in b)."""
        ids, ia, ib = np.intersect1d(self.ids[a], self.ids[b], assume_unique=True, return_indices=True)
        return ids, ia, ib

    def keypoints_of(self, frame: int, track_ids: np.ndarray) -> np.ndarray:
        """Keypoint index in ``frame`` of each track (-1 where the track is not seen there)."""
        out = np.full(len(track_ids), -1, dtype=np.int64)
        order = self._order[frame]
        if len(order) == 0:
            return out
        sorted_ids = self.ids[frame][order]
        pos = np.searchsorted(sorted_ids, track_ids).clip(0, len(order) - 1)
        found = sorted_ids[pos] == track_ids
        out[found] = order[pos[found]]
        return out


def essential_filter(a: Features, b: Features, pairs: np.ndarray, K: np.ndarray, ransac_px: float) -> np.ndarray:
    """Matches that fit an essential matrix (RANSAC); fewer than 8 matches cannot be verified: none kept."""
    if len(pairs) < 8:
        return pairs[:0]
    na, nb = normalized_points(a.xy[pairs[:, 0]], K), normalized_points(b.xy[pairs[:, 1]], K)
    moved = np.linalg.norm(a.xy[pairs[:, 0]] - b.xy[pairs[:, 1]], axis=1)
    if np.median(moved) < ransac_px:
        # An (almost) still camera: the essential matrix is undefined; keep matches that did not move.
        return pairs[moved < 2 * ransac_px]
    E, mask = cv2.findEssentialMat(na, nb, np.eye(3), method=cv2.RANSAC, prob=0.999, threshold=ransac_px / focal_length(K))
    if E is None or mask is None:
        return pairs[:0]
    return pairs[mask.ravel() > 0]
