"""Targets of a generation: the ``--traj`` trajectories and the ``--target-cameras`` cameras.

The route of a ``--traj`` value: the CLI's ``traj`` values are resolved into
:class:`~mvt4g.camera.trajectory_source.Trajectory` objects by the camera layer (one rule set,
shared with ``mvt4g traj show``: :func:`~mvt4g.camera.trajectory_source.resolve_trajectories`),
wrapped here as :class:`Target` objects, and turned into target cameras for one reference
(:meth:`Target.cameras_for`); the pipeline turns those into Plücker maps. Every trajectory is
relative to its own frame 0, and generation places that frame at the reference camera's FIRST
pose (ReCamMaster's convention).

Frame counts: presets are built for the output's frame count; a file with another count is
resampled (rotations by slerp, positions linearly, first and last pose kept) and the
metadata says so.

Absolute target cameras (``--target-cameras FILE:VIEW``, :func:`camera_targets`): one
camera of a ``cameras.json`` (with its intrinsics) or ``camera_extrinsics.json`` in the SAME
world as the reference's camera file. Its poses are not re-based: they are taken per input
frame like the reference's (:func:`mvt4g.sample.reference.select_poses`) and expressed in the
reference cameras' frame, so the target sits exactly where it was relative to the reference
(e.g. a synthetic clip's other view).

Output names: a preset's name; a file's stem (``-camNN`` appended when a camera was picked);
a target camera's view name; characters outside ``[A-Za-z0-9._-]`` replaced by ``_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvt4g.camera.pose import relative_to
from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectory_files import CameraFile, read_camera_file
from mvt4g.camera.trajectory_source import Trajectory, resolve_trajectories, safe_name
from mvt4g.errors import InputError


@dataclass
class Target:
    """One target of a generation, named ``name`` (outputs) from ``source``: a ``trajectory``
    (relative to its frame 0, started at the reference's first pose) or an absolute ``camera``
    (in the reference camera file's world)."""

    name: str
    source: str
    trajectory: Trajectory | None = None
    camera: CameraFile | None = None

    @classmethod
    def of(cls, trajectory: Trajectory) -> Target:
        return cls(trajectory.output_name, trajectory.source, trajectory=trajectory)

    @property
    def preset(self) -> str | None:
        return self.trajectory.preset if self.trajectory is not None else None

    @property
    def file_poses(self) -> np.ndarray | None:
        return self.trajectory.file_poses if self.trajectory is not None else None

    def cameras_for(self, reference) -> tuple[ViewCameras, np.ndarray, str | None]:
        """Target cameras for a :class:`~mvt4g.sample.reference.PreparedReference`:
        ``(ViewCameras of its T frames at its size, c2w [T, 4, 4] relative to the reference's
        first pose (what ``.trajectory.json`` records), note or None)``."""
        if self.camera is None:
            c2w, note = self.poses(reference.num_frames)
            return target_cameras(reference.cameras, c2w), c2w, note
        target, note = absolute_target_cameras(reference, self.camera)
        return target, relative_to(target.c2w, reference.cameras.c2w[0]), note

    def poses(self, frames: int) -> tuple[np.ndarray, str | None]:
        """The trajectory's ``c2w [frames, 4, 4]`` relative to frame 0, and a note when a file was resampled."""
        if self.trajectory is None:
            raise InputError(f"target {self.name!r} is an absolute camera, not a trajectory")
        return self.trajectory.poses(frames)


def trajectory_targets(trajs: list[str], camera: str | None = None) -> list[Target]:
    """The ``--traj`` values (each possibly comma-separated) as targets; InputError for a bad one."""
    return [Target.of(t) for t in resolve_trajectories(trajs, camera)]


def camera_targets(specs: list[str], taken: list[Target] = ()) -> list[Target]:
    """Resolve ``--target-cameras FILE[:VIEW]`` values (each read and checked now), named after
    their view; InputError when a name repeats one of ``taken`` or another value's."""
    out = []
    for spec in specs:
        cam = read_camera_file(str(spec), "target")
        view = cam.view or Path(cam.label).stem
        out.append(Target(name=safe_name(view), source=cam.label, camera=cam))
    names = [t.name for t in [*taken, *out]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"targets would share output names: {', '.join(dupes)}")
    return out



def absolute_target_cameras(reference, camera) -> tuple[ViewCameras, str | None]:
    """An absolute camera (:class:`~mvt4g.camera.trajectory_files.CameraFile`, poses in the reference camera file's world) as target
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


def target_cameras(reference: ViewCameras, poses: np.ndarray) -> ViewCameras:
    """Target cameras: trajectory ``poses`` (relative to its frame 0) starting at the reference's
    first pose, with the reference's first-frame intrinsics at every frame."""
    poses = np.asarray(poses, dtype=np.float64)
    if len(poses) != reference.frames:
        raise InputError(f"trajectory has {len(poses)} poses, the reference {reference.frames} frames")
    c2w = reference.c2w[0][None] @ poses
    K = np.repeat(reference.K[:1], len(poses), axis=0)
    return ViewCameras(reference.width, reference.height, K, c2w)
