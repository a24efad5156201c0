"""Converters between other tools' camera files and mvt4g's convention (OpenCV axes, c2w, metres).

MultiCamVideo / ReCamMaster ``camera_extrinsics.json``
    ``{"frame0": {"cam01": "[r00 r01 r02 0] [..] [..] [x y z 1] ", ...}, ...}``: per frame and
    camera a row-vector 4x4 of Unreal Engine: rows are the camera's forward, right and up axes
    in world coordinates, then its position, in centimetres. Unreal's world (x forward, y right,
    z up) is left-handed, so a camera-to-world matrix in it has det(R) = -1. mvt4g negates the
    world y axis (giving a right-handed, z-up world: x forward, y left) so every pose is a
    proper rotation. Relative poses (what ReCamMaster feeds its model) are unchanged by that
    flip: ``inv(P0) @ Pt`` is the same in either world.

DyCheck (iPhone) camera JSON
    ``orientation`` (world-to-camera rotation, OpenCV axes), ``position`` (camera centre),
    ``focal_length``, ``pixel_aspect_ratio``, ``principal_point``, ``skew``, ``image_size``
    = [W, H], distortion. Pixel centres are at +0.5, as in mvt4g.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.pose import as_pose_stack, c2w_from_w2c, validate_c2w, validate_rotations
from mvt4g.errors import CameraError
from mvt4g.fs.jsonio import read_json

# Negates world y: Unreal's left-handed world -> a right-handed one (x forward, y left, z up).
_UNREAL_WORLD_FLIP = np.diag([1.0, -1.0, 1.0, 1.0])
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf", re.IGNORECASE)


def _load_json(path: Path) -> object:
    return read_json(path, what="file", expect=None)


def parse_unreal_matrix(text: str) -> np.ndarray:
    """Parse ``"[a b c d] [e f g h] [i j k l] [x y z 1]"`` into a 4x4 row-vector matrix."""
    values = [float(v) for v in _NUMBER.findall(text)]
    if len(values) != 16:
        raise CameraError(f"expected 16 numbers in a camera matrix string, found {len(values)}: {text[:60]!r}")
    return np.array(values, dtype=np.float64).reshape(4, 4)


def unreal_to_c2w(matrix: object) -> np.ndarray:
    """One Unreal row-vector camera matrix (cm) -> mvt4g c2w (OpenCV axes, metres, y-flipped world).

    ReCamMaster's own conversion is: transpose, reorder the columns to (right, up, forward,
    position), negate the up column (OpenCV y points down), divide the translation by 100.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if not np.isfinite(m).all():
        raise CameraError("camera matrix contains NaN or inf")
    cols = m.T  # columns: forward, right, up, position
    c2w = np.eye(4)
    c2w[:3, 0] = cols[:3, 1]  # x: right
    c2w[:3, 1] = -cols[:3, 2]  # y: down
    c2w[:3, 2] = cols[:3, 0]  # z: forward
    c2w[:3, 3] = cols[:3, 3] / 100.0
    c2w = _UNREAL_WORLD_FLIP @ c2w
    validate_rotations(c2w[None, :3, :3], name="camera rotation")
    return c2w


def c2w_to_unreal(c2w: object) -> np.ndarray:
    """Inverse of :func:`unreal_to_c2w` for one pose: returns the 4x4 row-vector matrix (cm)."""
    p = _UNREAL_WORLD_FLIP @ np.asarray(c2w, dtype=np.float64)
    m = np.zeros((4, 4))
    m[0, :3] = p[:3, 2]  # forward
    m[1, :3] = p[:3, 0]  # right
    m[2, :3] = -p[:3, 1]  # up
    m[3, :3] = p[:3, 3] * 100.0
    m[3, 3] = 1.0
    return m


def read_multicamvideo_extrinsics(path: str | Path) -> dict[str, np.ndarray]:
    """Read a MultiCamVideo / ReCamMaster ``camera_extrinsics.json``.

    Returns ``{camera name: c2w [T, 4, 4]}`` in mvt4g's convention, cameras sorted by name and
    frames by their number (``frame0 .. frameN``).
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not data:
        raise CameraError("not a camera_extrinsics.json (expected {'frame0': {'cam01': ...}})", path=path)
    frames = []
    for key in data:
        match = re.fullmatch(r"frame(\d+)", key)
        if not match:
            raise CameraError(f"unexpected key {key!r} (expected frame0, frame1, ...)", path=path)
        frames.append((int(match.group(1)), key))
    frames.sort()
    if [f for f, _ in frames] != list(range(len(frames))):
        raise CameraError("frame keys are not consecutive from frame0", path=path)
    cams = sorted(data[frames[0][1]])
    out: dict[str, list[np.ndarray]] = {c: [] for c in cams}
    for index, key in frames:
        entry = data[key]
        if not isinstance(entry, dict) or sorted(entry) != cams:
            raise CameraError(f"{key} does not list the same cameras as frame0", path=path)
        for cam in cams:
            try:
                out[cam].append(unreal_to_c2w(parse_unreal_matrix(str(entry[cam]))))
            except CameraError as exc:
                raise CameraError(f"{key}/{cam}: {exc}", path=path) from None
    return {cam: np.stack(poses) for cam, poses in out.items()}


def recammaster_extrinsics_dict(trajectories: dict[str, object], origin_m: object = (0.0, 0.0, 0.0)) -> dict:
    """Build a ``camera_extrinsics.json`` object from mvt4g c2w trajectories.

    ``trajectories`` maps camera names to ``[T, 4, 4]`` c2w poses (all of one length). Poses
    are written as given; to reproduce ReCamMaster's layout pass poses whose frame 0 is the
    Unreal-style base orientation (see :func:`unreal_base_pose`).
    """
    stacks = {name: validate_c2w(p, name=name) for name, p in trajectories.items()}
    lengths = {p.shape[0] for p in stacks.values()}
    if len(lengths) != 1:
        raise CameraError(f"trajectories differ in length: {sorted(lengths)}")
    origin = np.asarray(origin_m, dtype=np.float64)
    out: dict[str, dict[str, str]] = {}
    for t in range(lengths.pop()):
        row = {}
        for name, poses in stacks.items():
            pose = poses[t].copy()
            pose[:3, 3] += origin
            m = c2w_to_unreal(pose)
            row[name] = " ".join("[" + " ".join(f"{v:.6g}" for v in r) + "]" for r in m) + " "
        out[f"frame{t}"] = row
    return out


def unreal_base_pose() -> np.ndarray:
    """The mvt4g c2w of an Unreal camera with identity orientation (looking along +x, z up)."""
    return unreal_to_c2w(np.eye(4))


def read_dycheck_camera(path: str | Path) -> tuple[Intrinsics, np.ndarray]:
    """Read one DyCheck / Nerfies camera JSON; returns ``(intrinsics, c2w [4, 4])``."""
    path = Path(path)
    data = _load_json(path)
    need = ("orientation", "position", "focal_length", "principal_point", "image_size")
    missing = [k for k in need if not isinstance(data, dict) or k not in data]
    if missing:
        raise CameraError(f"not a DyCheck camera file (missing {', '.join(missing)})", path=path)
    try:
        rot = np.asarray(data["orientation"], dtype=np.float64).reshape(3, 3)
        pos = np.asarray(data["position"], dtype=np.float64).reshape(3)
        focal = float(data["focal_length"])
        aspect = float(data.get("pixel_aspect_ratio", 1.0))
        cx, cy = (float(v) for v in data["principal_point"])
        width, height = (int(v) for v in data["image_size"])
        skew = float(data.get("skew", 0.0))
        dist = np.concatenate(
            [np.ravel(data.get("radial_distortion", [0.0])), np.ravel(data.get("tangential_distortion", [0.0]))]
        ).astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise CameraError(f"malformed DyCheck camera ({exc})", path=path) from None
    if abs(skew) > 1e-6:
        raise CameraError(f"skew {skew} is not supported (mvt4g cameras are skew-free pinholes)", path=path)
    if np.abs(dist).max(initial=0.0) > 1e-6:
        raise CameraError("lens distortion is not supported: undistort the frames first", path=path)
    try:
        intr = Intrinsics(focal, focal * aspect, cx, cy, width, height)
        validate_rotations(rot[None], name="orientation")
        if not np.isfinite(pos).all():
            raise CameraError("position contains NaN or inf")
        # c2w = inv([R | -R c]): the centre is the camera position.
        c2w = c2w_from_w2c(rot, -rot @ pos)[0]
    except CameraError as exc:
        raise CameraError(str(exc), path=path) from None
    return intr, c2w


def dycheck_camera_dict(intrinsics: Intrinsics, c2w: object) -> dict:
    """Inverse of :func:`read_dycheck_camera` (for writing test fixtures and exports)."""
    pose = as_pose_stack(c2w)[0]
    return {
        "orientation": pose[:3, :3].T.tolist(),
        "position": pose[:3, 3].tolist(),
        "focal_length": intrinsics.fx,
        "pixel_aspect_ratio": intrinsics.fy / intrinsics.fx,
        "principal_point": [intrinsics.cx, intrinsics.cy],
        "skew": 0.0,
        "image_size": [intrinsics.width, intrinsics.height],
        "radial_distortion": [0.0, 0.0, 0.0],
        "tangential_distortion": [0.0, 0.0],
    }
