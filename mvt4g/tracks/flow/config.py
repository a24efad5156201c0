"""Settings of the flow method: :class:`FlowConfig` (the whole method) and :class:`MvsConfig` (its plane sweep).

Both are plain dataclasses of numbers and flags. ``FlowConfig`` is part of the key a written
``tracks.npz`` is stored with (``mvt4g.tracks.compute``): its fields and their defaults are the
method's settings, so a change to them makes earlier outputs stale. The exact (geometry) method
uses its optical-flow fields for points on moving objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MvsConfig:
    """Multi-view plane sweep settings (:mod:`mvt4g.tracks.flow.association`)."""

    window: int = 7
    top_k: int = 1
    min_score: float = 0.4
    min_view_zncc: float = 0.4
    uniqueness: float = 1.0
    lr_px: float = 3.0
    plane_families: bool = True
    step_px: float = 1.5


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
        fb_alpha, fb_beta: forward-backward check (mvt4g.tracks.flow.optical_flow); beta in pixels^2.
        stereo: the multi-view plane sweep of the cross-view association (mvt4g.tracks.flow.association).
        stereo_max_side: the sweep runs on images scaled down to this longer side at most.
        association_stride: queries are associated across views at the nearest frame that is a
            multiple of this (mvt4g.tracks.flow.pipeline); 1: at their own frame.
        static_px, static_min_frames: a point whose query-view track stays within
            ``static_px`` of its 3D point's projection on at least ``static_min_frames``
            frames is static (mvt4g.tracks.flow.pipeline); a static hypothesis must fit at least
            ``static_inlier_frac`` of the frames where the chain holds (late drift tolerated).
        static_near_frames: one static hypothesis is triangulated from the chain's frames within
            this many frames of the association frame, where it has drifted least.
        static_still_frames, static_still_frac: a track without parallax is taken as static
            (at the sweep's depth) only when it follows the projection on at least this many
            frames and this fraction of the frames where its chain holds.
        epipolar_px: a chained point farther than this from the epipolar line of the same
            track in the query view (same frame) is marked not visible (drift).
        static_refine: static points are re-triangulated from every view and frame that sees
            them, and their positions everywhere are the projections (mvt4g.tracks.flow.pipeline).
        epipolar_snap: positions of points that are not static are moved onto that epipolar
            line wherever the query-view point holds (synchronized cameras: the same instant).
        plane_fallback, fallback_min_frames: where chains are lost, points that followed the
            sweep plane's projection while their query-view chain held get that projection as
            position (in the query view itself only after ``fallback_min_frames`` frames held);
            visibility is not changed (mvt4g.tracks.flow.pipeline, step 4b).
        direct_stride: lost chains are looked for again every this many frames from a key frame
            by direct flow (mvt4g.tracks.flow.chains); 0: never.
        multiview_static: tracks that one world point explains in two views or more over
            several frames are static (mvt4g.tracks.flow.static_points.fit_multiview).
        plane_preference: the sweep's plane wins over a triangulated static hypothesis that the
            track follows on up to this fraction of its frames more.
        reassociate_stride: chains lost in other views are associated again at every this-many-th
            key frame (mvt4g.tracks.flow.pipeline, step 3); 0: never. Each such key frame costs one
            plane sweep per view (2: at 480 x 832 the whole method ran at 2.1 frames/s, against
            1.2 with 1 and 2.9 before re-association and re-acquisition existed).
        reassociate_swept: step 3b also uses every key frame whose sweeps of all views step 2 ran
            anyway (queries on many frames): no sweep more, and a point whose query-view chain
            broke before its own key frame (16-28 % of the points on moving objects of the dev
            scenes, seeds 11-13) gets a start at a later one. Measured there (synth queries):
            cross-view delta_avg / AJ / OA 0.488 / 0.263 / 0.718 -> 0.492 / 0.272 / 0.722 (moving
            objects 0.267 / 0.085 / 0.642 -> 0.273 / 0.094 / 0.645); grid queries at one frame
            are unchanged.
        dynamic_triangulate, dynamic_outlier_px: points that are not static are triangulated
            frame by frame from the views whose chains hold (mvt4g.tracks.flow.dynamic_points): with three
            views or more, a chain farther than ``dynamic_outlier_px`` from the others'
            triangulation drifted (not visible); where another view's chain is lost the position
            is the projection of the point (on the query view's ray at a depth interpolated in
            time where fewer than two views see it), and visible chains take it where solved.
        neighbour_fill, neighbour_radius, neighbour_agree_px: in its query view, a lost chain of
            a point that is not static takes the local motion of the chains around it that hold
            and moved like it did (mvt4g.tracks.flow.neighbours).
        neighbour_depth: where no two views see a point that is not static at a frame, it takes
            the median depth of the triangulated points within ``neighbour_radius`` of it in its
            query view that moved like it (within ``neighbour_agree_px``; points of one object lie
            at nearly one depth), before depths are interpolated in time
            (mvt4g.tracks.flow.neighbour_depths).

        local_plane, local_plane_radius: where the chains of a point that is not static are lost,
            its position is on the plane of the static points within this many pixels of it
            (mvt4g.tracks.flow.local_plane).
        ground_fill, ground_fill_frac: where no static points are around, the ground plane takes
            that role for points whose sweep plane at the key frame is within this fraction of
            their depth of it (mvt4g.tracks.flow.pipeline, step 4c).
        refine_down: the world's down direction (for the sweep's horizontal and vertical planes)
            is refined from the ground plane the sweep finds at frame 0 (mvt4g.tracks.flow.ground).

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
    reassociate_swept: bool = True
    dynamic_triangulate: bool = True
    dynamic_outlier_px: float = 3.0
    neighbour_fill: bool = True
    neighbour_radius: float = 12.0
    neighbour_agree_px: float = 0.7
    neighbour_depth: bool = True
    refine_down: bool = True
    local_plane: bool = True
    local_plane_radius: float = 10.0
    ground_fill: bool = True
    ground_fill_frac: float = 0.05
