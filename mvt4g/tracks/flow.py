"""Weight-free temporal tracking: chained dense optical flow with forward-backward checks.

Per view, dense flow is computed between consecutive frames in both directions (OpenCV DIS;
Farneback when DIS is not available or asked for). A point is carried frame to frame by the
flow sampled (bilinearly) at its position. At every step the forward-backward check of
Sundaram et al. (ECCV 2010) decides whether the step is trustworthy:

    |w_f + w_b(x + w_f)|^2  <  fb_alpha * (|w_f|^2 + |w_b(x + w_f)|^2) + fb_beta

with w_f the forward flow at x and w_b the backward flow at the arrival point. A point fails
the check where it becomes occluded (the backward flow there belongs to the occluder) or
where flow is unreliable; it also fails when it leaves the image. From the first failure on,
the track is marked not visible for the rest of that direction: a chained position after an
occlusion would follow the occluder, so it is kept (for drawing) but never claimed visible.
Tracks run both forward and backward in time from the query frame.

Re-acquisition (``direct_stride``): a lost chain whose start frame s is one of the frames the
caller names (``direct_starts``: the flow method's key frames) is looked for again every
``direct_stride`` frames by flow computed straight from s to that frame (and back, for the same
check). A point hidden for a while, or a chain broken by one bad step (aliased texture at small
sizes), is found again without the drift of the steps in between; the chain goes on from there.
Direct flows are computed only when some chain is lost, so clean videos cost nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from mvt4g.tracks.mvs import MvsConfig


@dataclass
class FlowConfig:
    """Settings of the flow method (temporal chaining and cross-view stereo).

    Attributes:
        algorithm: "dis" (OpenCV DIS optical flow) or "farneback".
        dis_preset: "ultrafast", "fast" or "medium".
        dis_finest_scale, dis_patch_stride, dis_refine_iters: DIS settings over the preset's
            (None: the preset's), for frames upsampled to ``min_flow_side`` only (small frames
            want flow down to the finest pyramid level (0),
            dense patches and more variational refinement: fast spinning objects at 96 x 160
            are otherwise smoothed over; on 2 synth scenes moving points' temporal delta_avg
            went from 0.42 to 0.48).
        min_flow_side: frames smaller than this (shorter side, pixels) are upsampled before
            flow, since DIS works on 8 x 8 patches and needs some room.
        fb_alpha, fb_beta: forward-backward check (module docstring); beta in pixels^2.
        stereo: the multi-view plane sweep of the cross-view association (mvt4g.tracks.mvs).
        stereo_max_side: the sweep runs on images scaled down to this longer side at most.
        association_stride: queries are associated across views at the nearest frame that is a
            multiple of this (mvt4g.tracks.flowtrack); 1: at their own frame.
        static_px, static_min_frames: a point whose query-view track stays within
            ``static_px`` of its 3D point's projection on at least ``static_min_frames``
            frames is static (mvt4g.tracks.flowtrack); a static hypothesis must fit at least
            ``static_inlier_frac`` of the frames where the chain holds (late drift tolerated).
        static_near_frames: one static hypothesis is triangulated from the chain's frames within
            this many frames of the association frame, where it has drifted least.
        static_still_frames, static_still_frac: a track without parallax is taken as static
            (at the sweep's depth) only when it follows the projection on at least this many
            frames and this fraction of the frames where its chain holds.
        epipolar_px: a chained point farther than this from the epipolar line of the same
            track in the query view (same frame) is marked not visible (drift).
        static_refine: static points are re-triangulated from every view and frame that sees
            them, and their positions everywhere are the projections (mvt4g.tracks.flowtrack).
        epipolar_snap: positions of points that are not static are moved onto that epipolar
            line wherever the query-view point holds (synchronized cameras: the same instant).
        plane_fallback, fallback_min_frames: where chains are lost, points that followed the
            sweep plane's projection while their query-view chain held get that projection as
            position (in the query view itself only after ``fallback_min_frames`` frames held);
            visibility is not changed (mvt4g.tracks.flowtrack, step 4b).
        direct_stride: lost chains are looked for again every this many frames from a key frame
            by direct flow (module docstring); 0: never.
        multiview_static: tracks that one world point explains in two views or more over
            several frames are static (mvt4g.tracks.static.fit_multiview).
        plane_preference: the sweep's plane wins over a triangulated static hypothesis that the
            track follows on up to this fraction of its frames more.
        reassociate_stride: chains lost in other views are associated again at every this-many-th
            key frame (mvt4g.tracks.flowtrack, step 3); 0: never. Each such key frame costs one
            plane sweep per view (2: at 480 x 832 the whole method ran at 2.1 frames/s, against
            1.2 with 1 and 2.9 before re-association and re-acquisition existed).
        dynamic_triangulate, dynamic_outlier_px: points that are not static are triangulated
            frame by frame from the views whose chains hold (mvt4g.tracks.dynamic): with three
            views or more, a chain farther than ``dynamic_outlier_px`` from the others'
            triangulation drifted (not visible); where another view's chain is lost the position
            is the projection of the point (on the query view's ray at a depth interpolated in
            time where fewer than two views see it), and visible chains take it where solved.
        neighbour_fill, neighbour_radius, neighbour_agree_px: in its query view, a lost chain of
            a point that is not static takes the local motion of the chains around it that hold
            and moved like it did (mvt4g.tracks.neighbours).

        local_plane, local_plane_radius: where the chains of a point that is not static are lost,
            its position is on the plane of the static points within this many pixels of it
            (mvt4g.tracks.local_plane).
        ground_fill, ground_fill_frac: where no static points are around, the ground plane takes
            that role for points whose sweep plane at the key frame is within this fraction of
            their depth of it (mvt4g.tracks.flowtrack, step 4c).
        refine_down: the world's down direction (for the sweep's horizontal and vertical planes)
            is refined from the ground plane the sweep finds at frame 0 (mvt4g.tracks.ground).

    Measured on synth scenes (4 views x 21 frames, 96 x 160, grid queries at frame 0, seeds 7,
    99 and 2024, not the benchmark's): static_px 1.5 -> 2, direct_stride 4, plane_fallback,
    multiview_static and plane_preference 0.5 took temporal / cross-view delta_avg from
    0.740 / 0.579 to 0.767 / 0.612 on two scenes (0.801 / 0.589 to 0.841 / 0.617 on four
    others); reassociate_stride 2 then took cross-view delta_avg / Jaccard / occlusion accuracy
    from 0.612 / 0.338 / 0.676 to 0.623 / 0.377 / 0.710 on the two. neighbour_fill and
    dynamic_triangulate then took the six scenes of seeds 7, 99 and 2024 from 0.816 / 0.626 to
    0.817 / 0.628 (points on moving objects: 0.431 / 0.248 to 0.438 / 0.259). On the twelve
    scenes 0-2 of seeds 7, 99, 2024 and 31337, refine_down took them from 0.778 / 0.559 to
    0.784 / 0.623; local_plane then took four of them from 0.714 / 0.517 to 0.725 / 0.525, and
    ground_fill to 0.749 / 0.545.
    """

    algorithm: str = "dis"
    dis_preset: str = "medium"
    dis_finest_scale: int | None = 0
    dis_patch_stride: int | None = 2
    dis_refine_iters: int | None = 10
    min_flow_side: int = 192
    fb_alpha: float = 0.01
    fb_beta: float = 0.5
    stereo: MvsConfig = field(default_factory=MvsConfig)
    stereo_max_side: int = 320
    association_stride: int = 5
    static_px: float = 2.0
    static_min_frames: int = 3
    static_inlier_frac: float = 0.8
    static_near_frames: int = 5
    static_still_frames: int = 3
    static_still_frac: float = 0.8
    epipolar_px: float = 2.0
    static_refine: bool = True
    epipolar_snap: bool = True
    plane_fallback: bool = True
    fallback_min_frames: int = 2
    direct_stride: int = 4
    multiview_static: bool = True
    plane_preference: float = 0.5
    reassociate_stride: int = 2
    dynamic_triangulate: bool = True
    dynamic_outlier_px: float = 3.0
    neighbour_fill: bool = True
    neighbour_radius: float = 12.0
    neighbour_agree_px: float = 0.7
    refine_down: bool = True
    local_plane: bool = True
    local_plane_radius: float = 10.0
    ground_fill: bool = True
    ground_fill_frac: float = 0.05


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

    @property
    def num_frames(self) -> int:
        return self.forward.shape[0] + 1

    def direct(self, s: int, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Flow from frame s straight to t and back ``([H, W, 2], [H, W, 2])``, or None without the frames."""
        if self.gray is None or self.estimator is None:
            return None
        if (s, t) not in self._direct:
            self._direct[(s, t)] = (self.estimator(self.gray[s], self.gray[t]), self.estimator(self.gray[t], self.gray[s]))
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


def chain_tracks(
    flows: ViewFlows,
    start_frames: np.ndarray,
    start_xy: np.ndarray,
    config: FlowConfig | None = None,
    start_ok: np.ndarray | None = None,
    direct_starts: set[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Chain flow from each point's start frame forward and backward in time.

    Args:
        flows: the view's consecutive-frame flows (T frames).
        start_frames: int ``[N]``; start_xy: float ``[N, 2]`` pixel (x, y) at the start frame.
        start_ok: bool ``[N]``; points with False are not visible anywhere (default all True).
        direct_starts: start frames from which lost chains are looked for again by direct flow
            (module docstring; needs ``flows`` from :func:`view_flows` with ``direct_stride`` > 0).

    Returns:
        positions float64 ``[T, N, 2]`` and ok bool ``[T, N]`` (visible: every step from the
        start frame, or from the last re-acquisition, to t passed the forward-backward check).
    """
    config = config or FlowConfig()
    T = flows.num_frames
    start_frames = np.asarray(start_frames, np.int64)
    N = len(start_frames)
    path = np.zeros((T, N, 2))
    ok = np.zeros((T, N), bool)
    alive0 = np.ones(N, bool) if start_ok is None else np.asarray(start_ok, bool).copy()
    n_idx = np.arange(N)
    path[start_frames, n_idx] = start_xy
    ok[start_frames, n_idx] = alive0

    # Forward: a point joins at its start frame and is carried to t + 1 at every step.
    pos = np.zeros((N, 2))
    alive = np.zeros(N, bool)
    active = np.zeros(N, bool)
    for t in range(T - 1):
        joining = start_frames == t
        pos[joining] = start_xy[joining]
        alive[joining] = alive0[joining]
        active |= joining
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            continue
        new, good = flow_step(flows.forward[t], flows.backward[t], pos[idx], config)
        pos[idx] = np.clip(new, 0.0, [flows.forward.shape[2] - 1e-3, flows.forward.shape[1] - 1e-3])
        alive[idx] &= good
        _reacquire(flows, t + 1, idx, start_frames, start_xy, alive0, pos, alive, config, direct_starts)
        path[t + 1, idx] = pos[idx]
        ok[t + 1, idx] = alive[idx]

    # Backward, mirrored.
    alive[:] = False
    active[:] = False
    for t in range(T - 1, 0, -1):
        joining = start_frames == t
        pos[joining] = start_xy[joining]
        alive[joining] = alive0[joining]
        active |= joining
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            continue
        new, good = flow_step(flows.backward[t - 1], flows.forward[t - 1], pos[idx], config)
        pos[idx] = np.clip(new, 0.0, [flows.forward.shape[2] - 1e-3, flows.forward.shape[1] - 1e-3])
        alive[idx] &= good
        _reacquire(flows, t - 1, idx, start_frames, start_xy, alive0, pos, alive, config, direct_starts)
        path[t - 1, idx] = pos[idx]
        ok[t - 1, idx] = alive[idx]
    return path, ok


def _reacquire(flows, t, idx, start_frames, start_xy, alive0, pos, alive, config, direct_starts) -> None:
    """Lost chains (``idx`` with ``alive`` False) whose start frame s is in ``direct_starts`` pick their
    point up again at frame t (every ``direct_stride`` frames from s) where the flow straight from
    s to t passes the forward-backward check: a point hidden for a while, or a chain broken by
    one bad step, is found again without the drift of the steps in between. Updates ``pos``/``alive``."""
    stride = config.direct_stride
    if not direct_starts or stride <= 0:
        return
    lost = idx[~alive[idx] & alive0[idx]]
    for s in np.unique(start_frames[lost]):
        if int(s) not in direct_starts or abs(t - int(s)) % stride:
            continue
        pair = flows.direct(int(s), t)
        if pair is None:
            return
        sel = lost[start_frames[lost] == s]
        found, good = flow_step(pair[0], pair[1], start_xy[sel], config)
        pos[sel[good]] = found[good]
        alive[sel[good]] = True
