"""Dense optical flow of one view's frames, and one checked step of a point along it.

Per view, dense flow is computed between consecutive frames in both directions (OpenCV DIS;
Farneback when DIS is not available or asked for); :class:`ViewFlows` also gives flow straight
from one frame to another on demand. A point is carried by the flow sampled (bilinearly) at its
position (:func:`flow_step`), and the forward-backward check of Sundaram et al. (ECCV 2010)
decides whether the step is trustworthy:

    |w_f + w_b(x + w_f)|^2  <  fb_alpha * (|w_f|^2 + |w_b(x + w_f)|^2) + fb_beta

with w_f the forward flow at x and w_b the backward flow at the arrival point. A point fails
the check where it becomes occluded (the backward flow there belongs to the occluder) or
where flow is unreliable; it also fails when it leaves the image. Chaining the steps over
frames is :mod:`mvt4g.tracks.flow.chains`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from mvt4g.tracks.flow.config import FlowConfig


def to_gray(frame: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W]`` from RGB uint8 ``[H, W, 3]`` (or already grey)."""
    return frame if frame.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """Dense optical flow between two frames: float32 ``[H, W, 2]`` (dx, dy) in pixels of the input."""

    def __init__(self, config: FlowConfig, height: int, width: int):
        self.config = config
        side = min(height, width)
        self.scale = max(1.0, config.min_flow_side / side)
        self.size = (round(width * self.scale), round(height * self.scale))  # cv2 wants (W, H)
        self._dis = None
        if config.algorithm == "dis" and hasattr(cv2, "DISOpticalFlow_create"):
            preset = {
                "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
            }[config.dis_preset]
            self._dis = cv2.DISOpticalFlow_create(preset)
            self._dis.setUseSpatialPropagation(True)
            # Fine settings for small (upsampled) frames only: large frames keep the preset,
            # whose coarser finest level costs less at 480 x 832 (throughput unchanged there).
            fine = self.scale > 1.0
            if fine and config.dis_finest_scale is not None:
                self._dis.setFinestScale(config.dis_finest_scale)
            if fine and config.dis_patch_stride is not None:
                self._dis.setPatchStride(config.dis_patch_stride)
            if fine and config.dis_refine_iters is not None:
                self._dis.setVariationalRefinementIterations(config.dis_refine_iters)
        self.name = "dis" if self._dis is not None else "farneback"

    def _prep(self, gray: np.ndarray) -> np.ndarray:
        if self.scale == 1.0:
            return gray
        return cv2.resize(gray, self.size, interpolation=cv2.INTER_CUBIC)

    def __call__(self, gray0: np.ndarray, gray1: np.ndarray) -> np.ndarray:
        a, b = self._prep(gray0), self._prep(gray1)
        if self._dis is not None:
            flow = self._dis.calc(a, b, None)
        else:
            flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 5, 5, 1.1, 0)
        if self.scale != 1.0:
            h, w = gray0.shape
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) / self.scale
        return flow.astype(np.float32)


@dataclass
class ViewFlows:
    """Consecutive-frame flows of one view: ``forward[t]`` maps frame t to t+1, ``backward[t]`` t+1 to t; ``[T-1, H, W, 2]``.

    With ``gray`` (the view's grey frames) and ``estimator`` kept, :meth:`direct` also gives
    flows straight from one frame to another (computed on first use, cached).
    """

    forward: np.ndarray
    backward: np.ndarray
    algorithm: str
    gray: list[np.ndarray] | None = None
    estimator: FlowEstimator | None = None
    _direct: dict = field(default_factory=dict, repr=False)
    direct_seconds: float = 0.0  # wall time spent in :meth:`direct`

    @property
    def num_frames(self) -> int:
        return self.forward.shape[0] + 1

    def direct(self, s: int, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Flow from frame s straight to t and back ``([H, W, 2], [H, W, 2])``, or None without the frames."""
        if self.gray is None or self.estimator is None:
            return None
        if (s, t) not in self._direct:
            start = time.perf_counter()
            self._direct[(s, t)] = (self.estimator(self.gray[s], self.gray[t]), self.estimator(self.gray[t], self.gray[s]))
            self.direct_seconds += time.perf_counter() - start
        return self._direct[(s, t)]


def view_flows(frames: np.ndarray, config: FlowConfig | None = None) -> ViewFlows:
    """Forward and backward flows between consecutive frames of uint8 ``[T, H, W, 3]``."""
    config = config or FlowConfig()
    T, H, W = frames.shape[:3]
    est = FlowEstimator(config, H, W)
    gray = [to_gray(f) for f in frames]
    fwd = np.zeros((max(T - 1, 0), H, W, 2), np.float32)
    bwd = np.zeros_like(fwd)
    for t in range(T - 1):
        fwd[t] = est(gray[t], gray[t + 1])
        bwd[t] = est(gray[t + 1], gray[t])
    return ViewFlows(fwd, bwd, est.name, gray if config.direct_stride > 0 else None, est)


def sample_field(field: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear sample of ``[H, W, C]`` at pixel coordinates ``xy`` ``[N, 2]`` (pixel centres at +0.5; edges clamped) -> ``[N, C]``."""
    h, w = field.shape[:2]
    x = np.clip(xy[:, 0] - 0.5, 0, w - 1)
    y = np.clip(xy[:, 1] - 0.5, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = field[y0, x0] * (1 - fx) + field[y0, x1] * fx
    bottom = field[y1, x0] * (1 - fx) + field[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def flow_step(flow_a: np.ndarray, flow_b: np.ndarray, xy: np.ndarray, config: FlowConfig) -> tuple[np.ndarray, np.ndarray]:
    """One chained step by flow ``flow_a`` with its reverse ``flow_b``: new positions ``[n, 2]`` and the check ``[n]``."""
    h, w = flow_a.shape[:2]
    wf = sample_field(flow_a, xy)
    arrived = xy + wf
    wb = sample_field(flow_b, arrived)
    err = ((wf + wb) ** 2).sum(1)
    bound = config.fb_alpha * ((wf**2).sum(1) + (wb**2).sum(1)) + config.fb_beta
    inside = (arrived[:, 0] >= 0) & (arrived[:, 0] < w) & (arrived[:, 1] >= 0) & (arrived[:, 1] < h)
    return arrived, (err < bound) & inside
