"""Target trajectories of a generation: presets or trajectory files, and the target cameras.

A ``--traj`` value is a comma-separated list of preset names (``mvt4g traj list``) and
trajectory files (mvt4g trajectory JSON, or a ReCamMaster ``camera_extrinsics.json`` with
``camera``). Every trajectory is relative to its own frame 0, and generation places that
frame at the reference camera's FIRST pose (ReCamMaster's convention).

Frame counts: presets are built for the output's frame count; a file with another count is
resampled (rotations by slerp, positions linearly, first and last pose kept) and the
metadata says so.

Output names: a preset's name; a file's stem (``-camNN`` appended when a camera was picked),
with characters outside ``[A-Za-z0-9._-]`` replaced by ``_``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectories import PRESET_NAMES, preset_trajectory
from mvt4g.camera.trajectory_files import load_trajectory_file, resample_trajectory
from mvt4g.errors import InputError


@dataclass
class TargetTrajectory:
    """One target trajectory: ``name`` (output name), ``source`` and, for files, the poses."""

    name: str
    source: str
    preset: str | None = None
    file_poses: np.ndarray | None = None  # [N, 4, 4] relative to frame 0

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
