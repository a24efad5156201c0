"""Trajectory and camera files: the mvt4g trajectory JSON, ReCamMaster ``camera_extrinsics.json``
export, reading either back as poses relative to frame 0, resampling to another frame count,
summaries; and one camera of any camera file (``PATH[:VIEW]``, :func:`read_camera_file`).

Picking one camera of a file that holds several (``--camera camNN``, ``PATH:VIEW``) follows one
rule everywhere (:func:`pick_camera`): the named one, else the only one, else an error naming them.

The mvt4g trajectory JSON::

    {"name": "arc-left", "convention": "opencv", "pose": "c2w", "units": "m", "frames": N,
     "c2w": [N 4x4 matrices, relative to frame 0]}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from mvt4g.camera.converters import read_multicamvideo_extrinsics, recammaster_extrinsics_dict, unreal_base_pose
from mvt4g.camera.pose import orthonormalize, relative_to, validate_c2w
from mvt4g.camera.rig import read_cameras_json
from mvt4g.camera.trajectories import RECAMMASTER_ORIGIN_M, _check_frames
from mvt4g.errors import CameraError, InputError
from mvt4g.fs.jsonio import read_json


def trajectory_summary(c2w: object) -> dict[str, float | int | list[float]]:
    """Numbers a person checks first: ``frames``, ``rotation_deg`` and ``position_m`` of the last
    frame relative to frame 0, ``path_length_m``, ``max_step_m`` and ``max_step_deg`` between frames."""
    poses = validate_c2w(c2w)
    poses = relative_to(poses, poses[0])
    rots = Rotation.from_matrix(poses[:, :3, :3])
    steps = np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1)
    turn = (rots[:-1].inv() * rots[1:]).magnitude() if len(poses) > 1 else np.zeros(0)
    return {
        "frames": int(len(poses)),
        "rotation_deg": float(np.degrees(rots[-1].magnitude())),
        "position_m": [float(v) for v in poses[-1, :3, 3]],
        "path_length_m": float(steps.sum()),
        "max_step_m": float(steps.max(initial=0.0)),
        "max_step_deg": float(np.degrees(turn.max(initial=0.0))),
    }


def trajectory_json(name: str, c2w: object) -> dict[str, object]:
    """The mvt4g trajectory file object: ``{"name", "convention": "opencv", "pose": "c2w",
    "units": "m", "frames": N, "c2w": [N nested 4x4 lists]}``."""
    poses = validate_c2w(c2w)
    # 12 decimals: exact to far below file precision elsewhere, and frame 0 prints as 1.0 / 0.0.
    rounded = np.round(poses, 12) + 0.0  # + 0.0 turns -0.0 into 0.0
    return {"name": str(name), "convention": "opencv", "pose": "c2w", "units": "m",
            "frames": int(len(poses)), "c2w": rounded.tolist()}  # fmt: skip


def recammaster_json(c2w: object, camera: str = "cam01", origin_m: object = RECAMMASTER_ORIGIN_M) -> dict:
    """A ReCamMaster ``camera_extrinsics.json`` object holding one camera moving along ``c2w``.

    Frame 0 gets Unreal's identity orientation at ``origin_m`` (ReCamMaster's layout), so
    ``relative_to`` of what :func:`read_multicamvideo_extrinsics` reads back equals ``c2w``
    relative to its frame 0 (to the file's 6 significant digits).
    """
    poses = validate_c2w(c2w)
    rel = relative_to(poses, poses[0])
    return recammaster_extrinsics_dict({camera: unreal_base_pose() @ rel}, origin_m=origin_m)


def load_trajectory_file(path: str | Path, camera: str | None = None, *, absolute: bool = False) -> tuple[str, np.ndarray]:
    """Read a trajectory file; returns ``(name, c2w [F, 4, 4] relative to frame 0)``.

    ``absolute=True`` keeps the poses in the file's world instead (OpenCV axes, metres; for a
    ``camera_extrinsics.json`` the same world for every camera of the file).

    Accepts mvt4g's trajectory JSON (:func:`trajectory_json`) and ReCamMaster / MultiCamVideo
    ``camera_extrinsics.json`` (``camera``, e.g. ``"cam09"``, is required when it holds several).
    Rotations that pass validation (``max |R^T R - I| <= 1e-3``) are snapped to the nearest exact
    rotation, so file rounding does not leak into later inversions.
    """
    path = Path(path)
    name, poses = _trajectory_poses(read_trajectory_json(path), path, camera)
    if len(poses) < 2:
        raise CameraError(f"a trajectory needs at least 2 frames, found {len(poses)}", path=path)
    # Files keep ~6 digits; snap to exact rotations so inverses by transpose stay exact downstream.
    poses = poses.copy()
    poses[:, :3, :3] = orthonormalize(poses[:, :3, :3])
    if absolute:
        return name, poses
    rel = relative_to(poses, poses[0])
    rel[0] = np.eye(4)  # exactly, not to rounding
    return name, rel


def read_trajectory_json(path: str | Path) -> object:
    """The parsed JSON of a trajectory file (one InputError if missing, a folder or not JSON)."""
    return read_json(path, what="trajectory file", expect=None)


def is_extrinsics_json(data: object) -> bool:
    """Whether parsed JSON is a ReCamMaster/MultiCamVideo camera_extrinsics.json (``frameN`` keys)."""
    return isinstance(data, dict) and "c2w" not in data and any(str(k).startswith("frame") for k in data)


def pick_camera(cameras: dict, name: str | None, *, path: Path, how: str = "(--camera)", kind: str = "camera") -> str:
    """The camera of ``cameras`` (a file's ``{name: ...}``) to use: ``name``, else the only one.
    InputError (naming the file's cameras and ``how`` to choose) for none or an unknown name;
    ``kind`` is what the file calls them ("camera", "view")."""
    if name is None:
        if len(cameras) != 1:
            raise InputError(f"holds {kind}s {', '.join(cameras)}: choose one {how}", path=path)
        return next(iter(cameras))
    if name not in cameras:
        raise InputError(f"no {kind} {name!r} (it holds {', '.join(cameras)})", path=path)
    return name


def _trajectory_poses(data: object, path: Path, camera: str | None) -> tuple[str, np.ndarray]:
    """``(name, c2w [F, 4, 4] in the file's world)`` of a parsed trajectory file."""
    if isinstance(data, dict) and "c2w" in data:
        if camera is not None:
            raise InputError("a camera name only applies to camera_extrinsics.json files", path=path)
        for key, want in (("convention", "opencv"), ("pose", "c2w"), ("units", "m")):
            if data.get(key, want) != want:
                raise CameraError(f"{key} is {data[key]!r}; mvt4g trajectories use {want!r}", path=path)
        try:
            poses = validate_c2w(data["c2w"], name="c2w")
        except (CameraError, ValueError, TypeError) as exc:
            raise CameraError(f"invalid c2w: {exc}", path=path) from None
        if "frames" in data and data["frames"] != len(poses):
            raise CameraError(f"frames says {data['frames']} but c2w holds {len(poses)} poses", path=path)
        return str(data.get("name", path.stem)), poses
    if is_extrinsics_json(data):
        cams = read_multicamvideo_extrinsics(path)
        camera = pick_camera(cams, camera, path=path)
        return f"{path.stem}:{camera}", cams[camera]
    raise InputError("not a trajectory file (expected mvt4g trajectory JSON or camera_extrinsics.json)", path=path)


def read_trajectory(path: str | Path, camera: str | None = None) -> np.ndarray:
    """Poses ``[F, 4, 4]`` relative to frame 0 from a trajectory file (see :func:`load_trajectory_file`)."""
    return load_trajectory_file(path, camera)[1]


def resample_trajectory(c2w: object, frames: int) -> np.ndarray:
    """Resample ``[F, 4, 4]`` poses to ``frames`` evenly spaced in time (first and last kept):
    rotations by slerp, positions linearly. Returns the input unchanged when the count matches."""
    poses = validate_c2w(c2w)
    frames = _check_frames(frames)
    if len(poses) < 2:
        raise CameraError("resampling needs at least 2 poses")
    if len(poses) == frames:
        return poses.copy()
    t_in = np.linspace(0.0, 1.0, len(poses))
    t_out = np.linspace(0.0, 1.0, frames)
    out = np.tile(np.eye(4), (frames, 1, 1))
    out[:, :3, :3] = Slerp(t_in, Rotation.from_matrix(poses[:, :3, :3]))(t_out).as_matrix()
    out[:, :3, 3] = np.stack([np.interp(t_out, t_in, poses[:, k, 3]) for k in range(3)], axis=1)
    return out


@dataclass
class CameraFile:
    """One camera's poses read from a file (:func:`read_camera_file`), in the file's own world."""

    c2w: np.ndarray  # [N, 4, 4] in the file's world
    K: np.ndarray | None  # [N, 3, 3] at (width, height), or None
    width: int | None
    height: int | None
    label: str  # PATH or PATH:VIEW, for messages and metadata
    view: str | None = None  # the camera picked from the file, if any


def split_camera_spec(spec: str) -> tuple[Path, str | None]:
    """``PATH`` or ``PATH:VIEW`` -> ``(path, view or None)`` (a path that exists wins over a split)."""
    path = Path(spec)
    if not path.exists() and ":" in spec:
        head, _, name = spec.rpartition(":")
        if Path(head).exists() and name:
            return Path(head), name
    return path, None


def read_camera_file(spec: str, what: str = "reference") -> CameraFile:
    """``PATH`` or ``PATH:VIEW`` of a cameras.json (intrinsics too), camera_extrinsics.json or
    mvt4g trajectory JSON: one camera's poses in the file's own world (not re-based)."""
    path, name = split_camera_spec(spec)
    if not path.is_file():
        raise InputError(f"no such {what} camera file", path=path)
    data = read_json(path, what=f"{what} camera file", expect=None)
    if isinstance(data, dict) and "views" in data:
        views = read_cameras_json(path)
        name = pick_camera(views, name, path=path, how=f"as {path}:VIEW", kind="view")
        cams = views[name]
        return CameraFile(cams.c2w, cams.K, cams.width, cams.height, f"{path}:{name}", name)
    _, c2w = load_trajectory_file(path, name, absolute=True)
    return CameraFile(c2w, None, None, None, f"{path}" + (f":{name}" if name else ""), name)
