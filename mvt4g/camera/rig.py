"""Per-view, per-frame cameras and the native ``cameras/cameras.json`` file.

File format (format_version 1)::

    {"format_version": 1, "convention": "opencv", "pose": "c2w", "units": "m",
     "views": {"cam01": {"width": W, "height": H,
                         "intrinsics": [[fx,0,cx],[0,fy,cy],[0,0,1]]  (or one matrix per frame),
                         "c2w": [[[...4x4...]], ...]  (one per frame)}, ...}}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvt4g.camera.intrinsics import Intrinsics, stack_K
from mvt4g.camera.pose import invert_pose, validate_c2w
from mvt4g.errors import CameraError
from mvt4g.fs.jsonio import read_json

CAMERAS_FORMAT_VERSION = 1


@dataclass
class ViewCameras:
    """The cameras of one view over time.

    Attributes:
        width, height: image size in pixels.
        K: float64 ``[T, 3, 3]`` intrinsics, one per frame.
        c2w: float64 ``[T, 4, 4]`` camera-to-world poses (OpenCV axes, metres).
    """

    width: int
    height: int
    K: np.ndarray
    c2w: np.ndarray

    def __post_init__(self) -> None:
        self.c2w = validate_c2w(self.c2w)
        self.K = stack_K(self.K, frames=self.c2w.shape[0])
        if self.K.shape[0] != self.c2w.shape[0]:
            raise CameraError(f"{self.K.shape[0]} intrinsics for {self.c2w.shape[0]} poses")
        self.width, self.height = int(self.width), int(self.height)
        if self.width <= 0 or self.height <= 0:
            raise CameraError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def frames(self) -> int:
        return self.c2w.shape[0]

    def intrinsics(self, frame: int = 0) -> Intrinsics:
        return Intrinsics.from_K(self.K[frame], self.width, self.height)

    def w2c(self) -> np.ndarray:
        """World-to-camera poses ``[T, 4, 4]``."""
        return invert_pose(self.c2w)

    def select_frames(self, index: object) -> "ViewCameras":
        idx = np.asarray(index)
        return ViewCameras(self.width, self.height, self.K[idx], self.c2w[idx])

    def resized_cover(self, width: int, height: int) -> "ViewCameras":
        """Cameras after ``mvt4g.io.resize_cover`` of the frames to ``width x height``."""
        ks = [Intrinsics.from_K(k, self.width, self.height).cover_crop(width, height).K for k in self.K]
        return ViewCameras(width, height, np.stack(ks), self.c2w)

    def to_json(self) -> dict:
        const_k = bool(np.allclose(self.K, self.K[:1], rtol=0, atol=1e-9))
        return {
            "width": self.width,
            "height": self.height,
            "intrinsics": self.K[0].tolist() if const_k else self.K.tolist(),
            "c2w": self.c2w.tolist(),
        }


def _parse_view(name: str, entry: object, path: Path) -> ViewCameras:
    if not isinstance(entry, dict):
        raise CameraError(f"view {name!r} must be an object", path=path)
    missing = [k for k in ("width", "height", "intrinsics", "c2w") if k not in entry]
    if missing:
        raise CameraError(f"view {name!r} lacks {', '.join(missing)}", path=path)
    try:
        k = np.asarray(entry["intrinsics"], dtype=np.float64)
        c2w = np.asarray(entry["c2w"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CameraError(f"view {name!r}: non-numeric camera values ({exc})", path=path) from None
    if c2w.ndim != 3:
        raise CameraError(f"view {name!r}: c2w must be a list of 4x4 matrices, got shape {list(c2w.shape)}", path=path)
    try:
        return ViewCameras(int(entry["width"]), int(entry["height"]), k, c2w)
    except CameraError as exc:
        raise CameraError(f"view {name!r}: {exc}", path=path) from None


def read_cameras_json(path: str | Path) -> dict[str, ViewCameras]:
    """Read and validate a native ``cameras.json``; returns views in file order."""
    path = Path(path)
    data = read_json(path, what="file", expect=None)
    if not isinstance(data, dict) or "views" not in data:
        raise CameraError("not an mvt4g cameras file (no 'views' key)", path=path)
    version = data.get("format_version", CAMERAS_FORMAT_VERSION)
    if version != CAMERAS_FORMAT_VERSION:
        raise CameraError(f"unsupported format_version {version!r} (this mvt4g reads {CAMERAS_FORMAT_VERSION})", path=path)
    for key, want in (("convention", "opencv"), ("pose", "c2w"), ("units", "m")):
        if data.get(key, want) != want:
            raise CameraError(f"{key} must be {want!r}, got {data[key]!r}", path=path)
    views = data["views"]
    if not isinstance(views, dict) or not views:
        raise CameraError("'views' must be a non-empty object", path=path)
    return {name: _parse_view(name, entry, path) for name, entry in views.items()}


def cameras_json_dict(views: dict[str, ViewCameras]) -> dict:
    return {
        "format_version": CAMERAS_FORMAT_VERSION,
        "convention": "opencv",
        "pose": "c2w",
        "units": "m",
        "views": {name: cam.to_json() for name, cam in views.items()},
    }


def write_cameras_json(path: str | Path, views: dict[str, ViewCameras]) -> None:
    """Write a native ``cameras.json`` atomically."""
    from mvt4g.fs.atomic import write_json_atomic

    write_json_atomic(path, cameras_json_dict(views), indent=None)
