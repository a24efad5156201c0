"""The reference video of a generation: frames fitted to the model, and its cameras.

Frames (``mvt4g.io.frames``): the video (an mp4 or a DAVIS frame folder) is fitted to the
requested ``frames`` (a ``4k + 1`` count) by the frame policy, then resized to cover the
requested size and centre-cropped (``resize_cover``). Frame policy:

    error (default)  a longer video keeps its first ``frames``; a shorter one is refused
    pad              a shorter video repeats its last frame up to ``frames``
    trim             a shorter video uses the largest ``4k + 1`` count it holds (the output
                     is then shorter than requested)

Clips under 5 frames are always refused. What was trimmed, padded, resized and cropped is
reported (:attr:`PreparedReference.report`, a JSON-ready dict with human sentences).

Cameras: the reference camera is static (identity at every frame) unless a camera file is
given. Intrinsics, unless that file holds them: ``fov`` (horizontal field of view in degrees)
or ``focal_mm`` (focal length in mm on a 23.76 mm-wide sensor spanning the video's width),
both describing the INPUT video; default :data:`DEFAULT_FOCAL_MM` = 24 mm (MultiCamVideo's and
``mvt4g synth``'s most common lens; 52.7 deg horizontally, fx = 840 px at 832 px wide). They
are carried through the same resize and crop as the frames.

Camera files (``PATH`` or ``PATH:camNN``, read by the camera layer's
:func:`~mvt4g.camera.trajectory_files.read_camera_file`): an mvt4g trajectory JSON, a
ReCamMaster ``camera_extrinsics.json`` (pick a camera), or a native ``cameras.json`` (pick a
view; its intrinsics are used). Its poses are per input frame: a file with as many poses as the input
video is indexed like the frames, one with as many as the output is used as is, any other
count is resampled to the input's frame count first (reported).

The reference cameras are re-based to their first pose (the reference starts at the origin);
:attr:`PreparedReference.world_from_cameras` keeps that pose, so absolute target cameras in the
camera file's world (``--target-cameras``, :mod:`mvt4g.sample.targets`) can be placed exactly.

A view of a clip directory is a reference as it is (its own frames, fps and exact cameras):
``PreparedReference.from_clip(read_clip("scene_0000"), "cam01")``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mvt4g.camera.intrinsics import MULTICAMVIDEO_SENSOR_MM, Intrinsics
from mvt4g.camera.pose import relative_to
from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectory_files import read_camera_file, resample_trajectory
from mvt4g.errors import CameraError, InputError
from mvt4g.io.captions import Caption, reference_caption
from mvt4g.io.frames import FRAME_POLICIES, fit_frame_count, resize_cover
from mvt4g.io.video import VideoInfo, probe_video, read_video

#: Focal length (mm on a 23.76 mm sensor across the input's width) when none is given.
DEFAULT_FOCAL_MM = 24.0
#: Fewest frames a reference may have, whatever the policy.
MIN_REFERENCE_FRAMES = 5


@dataclass(frozen=True)
class ReferenceOptions:
    """How a reference is fitted: output ``frames``/``height``/``width``, frame policy, camera."""

    frames: int
    height: int
    width: int
    frame_policy: str = "error"
    fov_deg: float | None = None
    focal_mm: float | None = None
    camera_file: str | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.frame_policy not in FRAME_POLICIES:
            raise InputError(f"unknown frame policy {self.frame_policy!r} (choose from: {', '.join(FRAME_POLICIES)})")
        if self.fov_deg is not None and self.focal_mm is not None:
            raise InputError("give --fov or --focal, not both")
        if self.fov_deg is not None and not 0 < self.fov_deg < 180:
            raise InputError(f"--fov must be in (0, 180) degrees, got {self.fov_deg}")
        if self.focal_mm is not None and not (self.focal_mm > 0 and math.isfinite(self.focal_mm)):
            raise InputError(f"--focal must be a positive number of mm, got {self.focal_mm}")


@dataclass
class ReferencePlan:
    """A probed reference: its input shape and the frame count the policy gives it."""

    path: Path
    info: VideoInfo
    frames: int
    frame_message: str
    caption: Caption = Caption("", None)  # its clip's or metadata.csv's: the prompt when none is given

    @property
    def stem(self) -> str:
        return reference_stem(self.path)


@dataclass
class PreparedReference:
    """A fitted reference.

    frames: uint8 ``[T, H, W, 3]``; fps; cameras: ``ViewCameras`` of T frames at ``H x W``;
    report: what the frame and size policies and the camera setup did (JSON-ready).
    world_from_cameras: ``[4, 4]`` taking ``cameras``' frame to the world of the camera file
    or clip they came from (absolute c2w = ``world_from_cameras @ cameras.c2w``); None for
    the default static camera, which has no world. source_frames: ``[T]`` the input frame
    each output frame was taken from, of ``input_frames`` (None: ``arange(T)`` of T).
    """

    path: Path
    frames: np.ndarray
    fps: float
    cameras: ViewCameras
    report: dict = field(default_factory=dict)
    world_from_cameras: np.ndarray | None = None
    source_frames: np.ndarray | None = None
    input_frames: int | None = None

    @classmethod
    def from_clip(cls, clip, view: str) -> PreparedReference:
        """View ``view`` of a clip (an :class:`mvt4g.io.clip.Clip` or its directory) as it is:
        every frame at its own size, with the clip's exact cameras in the clip's world."""
        from mvt4g.io.clip import Clip, read_clip

        clip = clip if isinstance(clip, Clip) else read_clip(clip)
        if view not in clip.views:
            raise InputError(f"no view {view!r} in the clip (views: {', '.join(clip.views)})", path=clip.root)
        frames = clip.read_video(view)
        cameras = clip.cameras[view]
        report = {"path": str(clip.videos[view]), "camera": {"motion": f"from {clip.root}:{view}"}}
        return cls(clip.videos[view], frames, clip.fps, cameras, report, np.eye(4), np.arange(len(frames)), len(frames))

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[1]), int(self.frames.shape[2])


def reference_stem(path: str | Path) -> str:
    """The name outputs of this reference go under (file stem, or the folder's name)."""
    path = Path(path)
    return path.name if path.is_dir() else path.stem


def _fit_count(count: int, options: ReferenceOptions):
    # The policy works on any array; a zero-width one costs nothing and gives the exact report.
    _, report = fit_frame_count(
        np.zeros((count, 0), np.uint8), options.frames, options.frame_policy, min_frames=MIN_REFERENCE_FRAMES
    )
    return report


def plan_reference(path: str | Path, options: ReferenceOptions) -> ReferencePlan:
    """Probe ``path`` (no decoding) and apply the frame policy to its count; InputError if unusable."""
    path = Path(path)
    info = probe_video(path, fps=options.fps)
    if MIN_REFERENCE_FRAMES <= info.frames < options.frames and options.frame_policy == "error":
        raise InputError(
            f"reference too short: {info.frames} frames, fewer than the {options.frames} requested "
            "(lower --frames, or --frame-policy pad to repeat its last frame / trim to use fewer frames)",
            path=path,
        )
    try:
        report = _fit_count(info.frames, options)
    except InputError as exc:
        raise InputError(f"reference too short: {exc}", path=path) from None
    if options.camera_file is not None:
        read_camera_file(options.camera_file)  # fail before any work
    return ReferencePlan(path, info, report.output_frames, report.message, reference_caption(path))


def source_intrinsics(width: int, height: int, options: ReferenceOptions) -> tuple[Intrinsics, str]:
    """Intrinsics of the INPUT video (``width x height``) and a sentence saying where they came from."""
    if options.fov_deg is not None:
        return Intrinsics.from_fov(options.fov_deg, width, height), f"--fov {options.fov_deg:g} deg (horizontal)"
    focal = options.focal_mm if options.focal_mm is not None else DEFAULT_FOCAL_MM
    how = "--focal" if options.focal_mm is not None else "default focal"
    sentence = f"{how} {focal:g} mm on a {MULTICAMVIDEO_SENSOR_MM} mm sensor across the width"
    return Intrinsics.from_focal_mm(focal, width, height), sentence


def select_poses(poses: np.ndarray, indices: np.ndarray, input_frames: int, what: str) -> tuple[np.ndarray, str | None]:
    """Poses (or intrinsics) for the output frames; a note when they had to be resampled."""
    n, out = len(poses), len(indices)
    if n == input_frames:
        return poses[indices], None
    if n == out:
        return poses, None
    if poses.shape[1:] == (4, 4):
        resampled = resample_trajectory(poses, input_frames)
    else:  # intrinsics: nearest pose's matrix
        resampled = poses[np.round(np.linspace(0, n - 1, input_frames)).astype(np.int64)]
    return resampled[indices], f"{what} had {n} poses for {input_frames} input frames: resampled"


def read_reference(plan: ReferencePlan, options: ReferenceOptions) -> PreparedReference:
    """Decode, fit frames and size, and set up the reference cameras (see the module docstring)."""
    video = read_video(plan.path, fps=options.fps)
    try:
        frames, count_report = fit_frame_count(
            video.frames, options.frames, options.frame_policy, min_frames=MIN_REFERENCE_FRAMES
        )
    except InputError as exc:
        raise InputError(f"reference too short: {exc}", path=plan.path) from None
    src_h, src_w = video.height, video.width
    frames, crop = resize_cover(frames, options.height, options.width)
    if (crop.resized_height, crop.resized_width) == (src_h, src_w) and (src_h, src_w) == (options.height, options.width):
        size_message = f"kept {src_w}x{src_h}"
    else:
        size_message = f"resized {src_w}x{src_h} -> {crop.resized_width}x{crop.resized_height}"
        if (crop.resized_height, crop.resized_width) != (options.height, options.width):
            size_message += f", centre-cropped to {options.width}x{options.height} at x={crop.x0}, y={crop.y0}"
    report = {
        "path": str(plan.path),
        "input_frames": video.num_frames,
        "input_size": [src_h, src_w],
        "fps": video.fps,
        "frame_policy": options.frame_policy,
        "frames": {"action": count_report.action, "output": count_report.output_frames, "message": count_report.message},
        "size": {"message": size_message, **crop.to_dict()},
    }
    cameras, world, camera_report = _reference_cameras(options, count_report.indices, video.num_frames, (src_h, src_w))
    report["camera"] = camera_report
    return PreparedReference(plan.path, np.ascontiguousarray(frames), video.fps, cameras, report, world,
                             np.asarray(count_report.indices), video.num_frames)  # fmt: skip


def _reference_cameras(
    options: ReferenceOptions, indices: np.ndarray, input_frames: int, source_size: tuple[int, int]
) -> tuple[ViewCameras, np.ndarray | None, dict]:
    """Cameras at the output size re-based to their first pose, that pose in the file's world
    ([4, 4], None without a file), and the camera report."""
    src_h, src_w = source_size
    out_frames = len(indices)
    notes = []
    world = None
    if options.camera_file is None:
        c2w = np.tile(np.eye(4), (out_frames, 1, 1))
        intr, how = source_intrinsics(src_w, src_h, options)
        K, width, height = intr.K[None].repeat(out_frames, 0), src_w, src_h
        motion = "static (no reference camera file)"
    else:
        cam = read_camera_file(options.camera_file)
        c2w, note = select_poses(cam.c2w, indices, input_frames, "reference camera file")
        notes += [note] if note else []
        world = np.array(c2w[0], dtype=np.float64)
        c2w = relative_to(c2w, world)
        c2w[0] = np.eye(4)  # exactly, not to rounding
        motion = f"from {cam.label}"
        if cam.K is not None:
            if options.fov_deg is not None or options.focal_mm is not None:
                raise InputError("the reference camera file holds intrinsics: drop --fov/--focal", path=cam.label)
            K, note = select_poses(cam.K, indices, input_frames, "reference camera intrinsics")
            width, height, how = cam.width, cam.height, f"from {cam.label}"
            if abs(width / height - src_w / src_h) > 0.02 * (src_w / src_h):
                raise CameraError(f"cameras are {width}x{height} but the video is {src_w}x{src_h}", path=cam.label)
        else:
            intr, how = source_intrinsics(src_w, src_h, options)
            K, width, height = intr.K[None].repeat(out_frames, 0), src_w, src_h
    cams = ViewCameras(width, height, K, c2w).resized_cover(options.width, options.height)
    report = {"motion": motion, "intrinsics_source": how, "intrinsics": cams.intrinsics(0).to_dict()}
    if notes:
        report["notes"] = notes
    return cams, world, report
