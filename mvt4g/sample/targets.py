"""Target trajectories of a generation: presets or trajectory files, and the target cameras.

A ``--traj`` value is a comma-separated list of preset names (``mvt4g traj list``) and
trajectory files (mvt4g trajectory JSON, or a ReCamMaster ``camera_extrinsics.json`` with
``camera``). Every trajectory is relative to its own frame 0, and generation places that
frame at the reference camera's FIRST pose (ReCamMaster's convention).

Frame counts: presets are built for the output's frame count; a file with another count is
resampled (rotations by slerp, positions linearly, first and last pose kept) and the
metadata says so.

Absolute target cameras (``--target-cameras FILE:VIEW``, :func:`parse_target_cameras`): one
camera of a ``cameras.json`` (with its intrinsics) or ``camera_extrinsics.json`` in the SAME
world as the reference's camera file. Its poses are not re-based: they are taken per input
frame like the reference's (:func:`mvt4g.sample.reference.select_poses`) and expressed in the
reference cameras' frame, so the target sits exactly where it was relative to the reference
(e.g. a synthetic clip's other view).

Output names: a preset's name; a file's stem (``-camNN`` appended when a camera was picked);
a target camera's view name; characters outside ``[A-Za-z0-9._-]`` replaced by ``_``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvt4g.camera.pose import relative_to
from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectories import PRESET_NAMES, preset_trajectory
from mvt4g.camera.trajectory_files import load_trajectory_file, resample_trajectory
from mvt4g.errors import InputError


@dataclass
class TargetTrajectory:
    """One target: ``name`` (output name), ``source``, and a preset, a trajectory file's poses
    (relative to its frame 0) or an absolute camera (``absolute``, a
    :class:`~mvt4g.sample.reference.CameraFile` in the reference camera file's world)."""

    name: str
    source: str
    preset: str | None = None
    file_poses: np.ndarray | None = None  # [N, 4, 4] relative to frame 0
    absolute: object | None = None  # CameraFile

    def cameras_for(self, reference) -> tuple[ViewCameras, np.ndarray, str | None]:
        """Target cameras for a :class:`~mvt4g.sample.reference.PreparedReference`:
        ``(ViewCameras of its T frames at its size, c2w [T, 4, 4] relative to the reference's
        first pose (what ``.trajectory.json`` records), note or None)``."""
        if self.absolute is None:
            c2w, note = self.poses(reference.num_frames)
            return target_cameras(reference.cameras, c2w), c2w, note
        target, note = absolute_target_cameras(reference, self.absolute)
        return target, relative_to(target.c2w, reference.cameras.c2w[0]), note

    def poses(self, frames: int) -> tuple[np.ndarray, str | None]:
        """``c2w [frames, 4, 4]`` relative to frame 0, and a note when a file was resampled."""
        if self.preset is not None:
            return preset_trajectory(self.preset, frames), None
        n = len(self.file_poses)
        if n == frames:
            return self.file_poses.copy(), None
        return resample_trajectory(self.file_poses, frames), f"trajectory file has {n} poses: resampled to {frames}"


def safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return name or "trajectory"


def parse_trajectories(values: list[str], camera: str | None = None) -> list[TargetTrajectory]:
    """Resolve ``--traj`` values (each possibly comma-separated); InputError for unknown ones."""
    items = [part.strip() for value in values for part in str(value).split(",")]
    if not items or any(not part for part in items):
        raise InputError("--traj needs preset names or trajectory files, separated by commas without empty entries")
    out: list[TargetTrajectory] = []
    used_camera = False
    for item in items:
        if item in PRESET_NAMES:
            out.append(TargetTrajectory(name=item, source=f"preset:{item}", preset=item))
            continue
        path = Path(item)
        if not path.exists():
            looks_like_file = path.suffix != "" or "/" in item
            if looks_like_file:
                raise InputError("no such trajectory file", path=path)
            raise InputError(f"unknown trajectory preset {item!r} (valid: {', '.join(PRESET_NAMES)})")
        _, poses = load_trajectory_file(path, camera if _is_extrinsics_file(path) else None)
        used_camera = used_camera or (camera is not None and _is_extrinsics_file(path))
        suffix = f"-{camera}" if camera is not None and _is_extrinsics_file(path) else ""
        out.append(TargetTrajectory(name=safe_name(path.stem + suffix), source=str(path) + (f":{camera}" if suffix else ""),
                                    file_poses=poses))  # fmt: skip
    if camera is not None and not used_camera:
        raise InputError(f"--camera {camera} only applies to a camera_extrinsics.json trajectory file")
    names = [t.name for t in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"trajectories would share output names: {', '.join(dupes)}")
    return out


def parse_target_cameras(values: list[str], taken: list[TargetTrajectory] = ()) -> list[TargetTrajectory]:
    """Resolve ``--target-cameras FILE[:VIEW]`` values (each read and checked now), named after
    their view; InputError when a name repeats one of ``taken`` or another value's."""
    from mvt4g.sample.reference import read_camera_file

    out = []
    for spec in values:
        cam = read_camera_file(str(spec), "target")
        view = cam.view or Path(cam.label).stem
        out.append(TargetTrajectory(name=safe_name(view), source=cam.label, absolute=cam))
    names = [t.name for t in [*taken, *out]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"targets would share output names: {', '.join(dupes)}")
    return out


def absolute_target_cameras(reference, camera) -> tuple[ViewCameras, str | None]:
    """An absolute camera (``CameraFile``, poses in the reference camera file's world) as target
    cameras of ``reference``: ``c2w [T, 4, 4]`` in the reference cameras' frame, taken at the
    reference's input frames; intrinsics the file's (resized like the frames) or, for a file
    without them, the reference's first-frame ones. Returns ``(cameras, note or None)``."""
    from mvt4g.sample.reference import select_poses

    if reference.world_from_cameras is None:
        raise InputError(
            "--target-cameras needs --ref-cameras: the reference's cameras in the same world as the target's"
        )
    T = reference.num_frames
    indices = reference.source_frames if reference.source_frames is not None else np.arange(T)
    input_frames = reference.input_frames if reference.input_frames is not None else T
    world_c2w, note = select_poses(camera.c2w, indices, input_frames, "target camera file")
    c2w = relative_to(world_c2w, reference.world_from_cameras)
    ref = reference.cameras
    if camera.K is None:
        return ViewCameras(ref.width, ref.height, np.repeat(ref.K[:1], T, axis=0), c2w), note
    K, _ = select_poses(camera.K, indices, input_frames, "target camera intrinsics")
    return ViewCameras(camera.width, camera.height, K, c2w).resized_cover(ref.width, ref.height), note


def _is_extrinsics_file(path: Path) -> bool:
    """Whether a JSON file is a ReCamMaster/MultiCamVideo camera_extrinsics.json (frameN keys)."""
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "c2w" not in data and any(str(k).startswith("frame") for k in data)


def target_cameras(reference: ViewCameras, trajectory: np.ndarray) -> ViewCameras:
    """Target cameras: ``trajectory`` (relative to its frame 0) starting at the reference's first
    pose, with the reference's first-frame intrinsics at every frame."""
    trajectory = np.asarray(trajectory, dtype=np.float64)
    if len(trajectory) != reference.frames:
        raise InputError(f"trajectory has {len(trajectory)} poses, the reference {reference.frames} frames")
    c2w = reference.c2w[0][None] @ trajectory
    K = np.repeat(reference.K[:1], len(trajectory), axis=0)
    return ViewCameras(reference.width, reference.height, K, c2w)
