"""Pinhole intrinsics and how they change when an image is resized or cropped.

Pixel centres are at ``(u + 0.5, v + 0.5)`` for integer pixel indices ``(u, v)``: the image
spans ``[0, width] x [0, height]`` in continuous pixel coordinates, and a principal point at
the image centre is ``(width / 2, height / 2)``. Under that convention a resize by ``s`` scales
``fx, fy, cx, cy`` by ``s`` exactly, and a crop at ``(x0, y0)`` subtracts ``(x0, y0)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mvt4g.errors import CameraError

#: MultiCamVideo renders with a square 23.76 mm sensor (docs/FACTS.md, section 3).
MULTICAMVIDEO_SENSOR_MM = 23.76


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one image size, in pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        vals = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(float(v)) for v in vals):
            raise CameraError(f"intrinsics contain NaN or inf: fx={self.fx} fy={self.fy} cx={self.cx} cy={self.cy}")
        if self.fx <= 0 or self.fy <= 0:
            raise CameraError(f"focal length must be > 0, got fx={self.fx} fy={self.fy}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise CameraError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def K(self) -> np.ndarray:  # noqa: N802 (the usual name of the matrix)
        """The 3x3 calibration matrix, float64."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_K(cls, K: object, width: int, height: int) -> "Intrinsics":  # noqa: N802
        """From a 3x3 matrix; skew must be zero and the last row ``[0, 0, 1]``."""
        k = np.asarray(K, dtype=np.float64)
        if k.shape != (3, 3):
            raise CameraError(f"intrinsics matrix must be 3x3, got shape {list(k.shape)}")
        if not np.isfinite(k).all():
            raise CameraError("intrinsics matrix contains NaN or inf")
        if abs(k[0, 1]) > 1e-6 or abs(k[1, 0]) > 1e-9 or np.abs(k[2] - [0, 0, 1]).max() > 1e-9:
            raise CameraError(f"intrinsics matrix must be [[fx,0,cx],[0,fy,cy],[0,0,1]], got {k.tolist()}")
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), int(width), int(height))

    @classmethod
    def from_focal_mm(
        cls, focal_mm: float, width: int, height: int, sensor_width_mm: float = MULTICAMVIDEO_SENSOR_MM
    ) -> "Intrinsics":
        """Square pixels, principal point at the centre, ``fx = f_mm / sensor_mm * width``."""
        if not focal_mm > 0 or not sensor_width_mm > 0:
            raise CameraError(f"focal length and sensor width must be > 0, got {focal_mm} mm / {sensor_width_mm} mm")
        f = focal_mm / sensor_width_mm * width
        return cls(f, f, width / 2.0, height / 2.0, int(width), int(height))

    @classmethod
    def from_fov(cls, fov_x_deg: float, width: int, height: int) -> "Intrinsics":
        """Square pixels from a horizontal field of view in degrees."""
        if not 0 < fov_x_deg < 180:
            raise CameraError(f"field of view must be in (0, 180) degrees, got {fov_x_deg}")
        f = width / 2.0 / math.tan(math.radians(fov_x_deg) / 2.0)
        return cls(f, f, width / 2.0, height / 2.0, int(width), int(height))

    def resized(self, width: int, height: int) -> "Intrinsics":
        """Intrinsics after resizing the whole image to ``width x height`` (aspect may change)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height))

    def cropped(self, x0: float, y0: float, width: int, height: int) -> "Intrinsics":
        """Intrinsics of the window ``[x0, x0 + width) x [y0, y0 + height)`` of this image."""
        return Intrinsics(self.fx, self.fy, self.cx - x0, self.cy - y0, int(width), int(height))

    def cover_crop(self, width: int, height: int) -> "Intrinsics":
        """Resize so the image covers ``width x height``, then centre-crop (see ``mvt4g.io.resize_cover``)."""
        scale = max(width / self.width, height / self.height)
        rw, rh = round(self.width * scale), round(self.height * scale)
        resized = self.resized(rw, rh)
        return resized.cropped((rw - width) // 2, (rh - height) // 2, width, height)

    def to_dict(self) -> dict:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "width": self.width, "height": self.height}


def stack_K(intrinsics: object, frames: int | None = None) -> np.ndarray:
    """Intrinsics as float64 ``[F, 3, 3]``: accepts an :class:`Intrinsics`, a 3x3 or an [F, 3, 3]."""
    if isinstance(intrinsics, Intrinsics):
        k = intrinsics.K[None]
    else:
        k = np.asarray(intrinsics, dtype=np.float64)
        if k.ndim == 2:
            k = k[None]
        if k.ndim != 3 or k.shape[1:] != (3, 3):
            raise CameraError(f"intrinsics must have shape [3, 3] or [F, 3, 3], got {list(k.shape)}")
    if not np.isfinite(k).all():
        raise CameraError("intrinsics contain NaN or inf")
    if (k[:, 0, 0] <= 0).any() or (k[:, 1, 1] <= 0).any():
        raise CameraError("focal length must be > 0")
    if frames is not None and k.shape[0] == 1 and frames != 1:
        k = np.broadcast_to(k, (frames, 3, 3)).copy()
    return k
