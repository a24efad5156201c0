"""Kubric-style multi-view exports -> mvt4g clip directories.

Accepted layout (one folder per synchronized camera, in Kubric's own file names)::

    scene/
      metadata.json                 optional: {"fps": 12} (or Kubric's {"metadata": {"frame_rate": 12}})
      <view>/                       any name; views are the sub-folders holding rgba_00000.png,
                                    in sorted order (e.g. view_00, view_01, ...)
        rgba_00000.png ...          frames, RGBA or RGB (alpha is dropped), numbered from 0
        depth_00000.tiff ...        optional: float32 depth (.tiff/.tif, or .npy), one per frame
        segmentation_00000.png ...  optional: object ids, 0 = background (8- or 16-bit PNG)
        metadata.json               {"camera": {"focal_length": mm, "sensor_width": mm,
                                                "positions": [[x, y, z], ...] (one per frame),
                                                "quaternions": [[w, x, y, z], ...] (one per frame)},
                                     "depth_kind": "range" | "z" (optional, default "range")}

Conventions (Kubric renders with Blender):

- a camera's pose is its world position and a (w, x, y, z) quaternion rotating camera axes into
  the world; Blender cameras look down their -z axis with +y up (OpenGL axes), converted here
  with :func:`mvt4g.camera.pose.c2w_from_opengl`. The world frame is kept (z up, metres);
- focal length in pixels = ``focal_length / sensor_width * max(W, H)`` (Blender's "auto" sensor
  fit: the sensor width spans the longer image side), square pixels, principal point at the
  image centre;
- Kubric's depth is the distance from the camera centre along each pixel's ray ("range"); clips
  store z-depth, so it is divided by the length of the ray ``K^-1 (u + 0.5, v + 0.5, 1)``.
  ``"depth_kind": "z"`` marks depth that is z-depth already.

:func:`import_kubric` writes a clip (videos/, cameras/cameras.json, depth/, masks/, meta.json)
that every mvt4g stage reads; ``mvt4g tracks CLIP --method geometry`` then gives exact tracks for
its static points.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvt4g.camera.pose import c2w_from_opengl
from mvt4g.camera.rig import ViewCameras
from mvt4g.errors import CameraError, InputError
from mvt4g.fs.jsonio import read_json

_FRAME = re.compile(r"^rgba_(\d+)\.png$")
DEFAULT_FPS = 12.0  # Kubric's MOVi datasets render at 12 fps


@dataclass
class KubricView:
    """One camera of an export: frames uint8 ``[T, H, W, 3]``, z-depth ``[T, H, W]`` or None, ids or None."""

    name: str
    frames: np.ndarray
    cameras: ViewCameras
    depth: np.ndarray | None
    masks: np.ndarray | None


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[T, 3, 3]`` from unit quaternions ``[T, 4]`` in (w, x, y, z) order (normalised here)."""
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def _load_json(path: Path) -> dict:
    return read_json(path, what="file")


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable image ({exc})", path=path) from None


def _frame_files(folder: Path) -> list[Path]:
    numbered = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _FRAME.match(p.name)))
    if [i for i, _ in numbered] != list(range(len(numbered))):
        raise InputError("rgba_NNNNN.png frames must be numbered 0, 1, 2, ... without gaps", path=folder)
    return [p for _, p in numbered]


def kubric_cameras(meta: dict, frames: int, height: int, width: int, path: Path) -> ViewCameras:
    """:class:`ViewCameras` from a view's metadata ``camera`` block (module docstring)."""
    cam = meta.get("camera")
    if not isinstance(cam, dict):
        raise CameraError("metadata has no 'camera' object", path=path)
    missing = [k for k in ("focal_length", "sensor_width", "positions", "quaternions") if k not in cam]
    if missing:
        raise CameraError(f"camera lacks {', '.join(missing)}", path=path)
    try:
        focal, sensor = float(cam["focal_length"]), float(cam["sensor_width"])
        pos = np.asarray(cam["positions"], np.float64)
        quat = np.asarray(cam["quaternions"], np.float64)
    except (TypeError, ValueError) as exc:
        raise CameraError(f"non-numeric camera values ({exc})", path=path) from None
    if pos.shape != (frames, 3) or quat.shape != (frames, 4):
        raise CameraError(
            f"camera has positions {list(pos.shape)} and quaternions {list(quat.shape)}, expected [{frames}, 3] and [{frames}, 4]",
            path=path,
        )
    if not (np.isfinite(pos).all() and np.isfinite(quat).all()) or (np.linalg.norm(quat, axis=1) < 1e-9).any():
        raise CameraError("camera positions or quaternions contain NaN, inf or zero quaternions", path=path)
    if focal <= 0 or sensor <= 0:
        raise CameraError(f"focal_length and sensor_width must be > 0, got {focal} and {sensor}", path=path)
    gl = np.tile(np.eye(4), (frames, 1, 1))
    gl[:, :3, :3] = quaternion_to_matrix(quat)
    gl[:, :3, 3] = pos
    f_px = focal / sensor * max(width, height)
    K = np.array([[f_px, 0.0, width / 2.0], [0.0, f_px, height / 2.0], [0.0, 0.0, 1.0]])
    try:
        return ViewCameras(width, height, K, c2w_from_opengl(gl))
    except CameraError as exc:
        raise CameraError(str(exc), path=path) from None


def range_to_z(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """z-depth ``[T, H, W]`` from distances along pixel rays (Kubric's depth)."""
    h, w = depth.shape[-2:]
    xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(K).T
    return (depth / np.linalg.norm(rays, axis=-1)).astype(np.float32)


def _read_stack(files: list[Path], what: str, shape: tuple[int, int]) -> np.ndarray:
    arrays = []
    for f in files:
        arr = np.load(f, allow_pickle=False) if f.suffix == ".npy" else _read_image(f)
        arr = np.squeeze(arr)
        if arr.shape != shape:
            raise InputError(f"{what} has shape {list(arr.shape)}, expected {list(shape)} (H, W)", path=f)
        arrays.append(arr)
    return np.stack(arrays)


def _optional_frames(folder: Path, prefix: str, suffixes: tuple[str, ...], frames: int) -> list[Path] | None:
    found = []
    for t in range(frames):
        hits = [folder / f"{prefix}_{t:05d}{s}" for s in suffixes if (folder / f"{prefix}_{t:05d}{s}").is_file()]
        found.append(hits[0] if hits else None)
    if all(f is None for f in found):
        return None
    missing = [t for t, f in enumerate(found) if f is None]
    if missing:
        raise InputError(f"{prefix} files missing for frame(s) {missing[:5]} (have rgba for {frames} frames)", path=folder)
    return found


def read_kubric_view(folder: Path) -> KubricView:
    """Read one camera folder (module docstring)."""
    files = _frame_files(folder)
    first = _read_image(files[0])
    if first.ndim != 3 or first.shape[2] not in (3, 4):
        raise InputError(f"frames must be RGB or RGBA, got shape {list(first.shape)}", path=files[0])
    h, w = first.shape[:2]
    frames = np.stack([_read_image(f)[..., :3] for f in files]) if len(files) > 1 else first[None, ..., :3]
    if frames.shape[1:] != (h, w, 3) or frames.dtype != np.uint8:
        raise InputError(f"frames differ in size or are not 8-bit ({frames.dtype})", path=folder)
    meta_path = folder / "metadata.json"
    meta = _load_json(meta_path)
    cams = kubric_cameras(meta, len(files), h, w, meta_path)
    depth_files = _optional_frames(folder, "depth", (".tiff", ".tif", ".npy"), len(files))
    depth = None
    if depth_files is not None:
        depth = _read_stack(depth_files, "depth", (h, w)).astype(np.float32)
        if not np.isfinite(depth).all():
            raise InputError("depth contains NaN or inf", path=folder)
        kind = meta.get("depth_kind", "range")
        if kind not in ("range", "z"):
            raise InputError(f"depth_kind must be 'range' or 'z', got {kind!r}", path=meta_path)
        if kind == "range":
            depth = range_to_z(depth, cams.K[0])
    seg_files = _optional_frames(folder, "segmentation", (".png",), len(files))
    masks = _read_stack(seg_files, "segmentation", (h, w)) if seg_files is not None else None
    return KubricView(folder.name, frames, cams, depth, masks)


def read_kubric(path: str | Path) -> tuple[list[KubricView], float]:
    """All views of an export and its frame rate; checks the views agree in frame count and size."""
    root = Path(path)
    if not root.is_dir():
        raise InputError("no such Kubric export folder", path=root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / "rgba_00000.png").is_file())
    if not folders:
        raise InputError("no view folders with rgba_00000.png (see mvt4g.io.kubric for the layout)", path=root)
    views = [read_kubric_view(f) for f in folders]
    ref = views[0]
    for v in views[1:]:
        if v.frames.shape != ref.frames.shape:
            raise InputError(
                f"views differ: {ref.name} has {list(ref.frames.shape[:3])} (T, H, W), {v.name} has {list(v.frames.shape[:3])}",
                path=root,
            )
    fps = DEFAULT_FPS
    if (root / "metadata.json").is_file():
        meta = _load_json(root / "metadata.json")
        fps = float(meta.get("fps", meta.get("metadata", {}).get("frame_rate", DEFAULT_FPS)))
    return views, fps


def import_kubric(src: str | Path, out: str | Path, *, overwrite: bool = False, caption: str = "") -> Path:
    """Convert a Kubric-style export into a clip directory at ``out`` (written atomically)."""
    from mvt4g.camera.rig import write_cameras_json
    from mvt4g.fs.atomic import atomic_dir, check_output_location, write_json_atomic
    from mvt4g.io.video import write_video

    out = Path(out)
    check_output_location(out)
    if out.exists() and not overwrite:
        from mvt4g.errors import OutputExistsError

        raise OutputExistsError("output exists (pass --overwrite to replace it)", path=out)
    views, fps = read_kubric(src)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for sub in ("videos", "cameras"):
            (tmp / sub).mkdir()
        for v in views:
            write_video(tmp / "videos" / f"{v.name}.mp4", v.frames, fps, crf=12, pad_to_even=False)
            if v.depth is not None:
                (tmp / "depth").mkdir(exist_ok=True)
                np.savez_compressed(tmp / "depth" / f"{v.name}.npz", depth=v.depth)
            if v.masks is not None:
                (tmp / "masks").mkdir(exist_ok=True)
                np.savez_compressed(tmp / "masks" / f"{v.name}.npz", masks=v.masks)
        write_cameras_json(tmp / "cameras" / "cameras.json", {v.name: v.cameras for v in views})
        meta = {"fps": fps, "frames": int(views[0].frames.shape[0]), "caption": caption,
                "provenance": {"source": str(Path(src)), "importer": "mvt4g.io.kubric"}}
        write_json_atomic(tmp / "meta.json", meta)
    return out
