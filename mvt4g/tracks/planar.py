"""A real image on a plane seen by moving cameras: multi-view videos with exact tracks and depth.

The test bed for trackers on real texture with known motion. A texture image (e.g. a frame of
a real video) lies on the world plane Z = ``plane_depth`` metres, ``plane_width`` metres wide,
centred on the Z axis. V cameras start near the origin looking down +Z (OpenCV axes), spread
sideways by up to ``spread`` metres, and move smoothly over T frames (translation, dolly,
yaw, pitch and roll). Each frame is the texture warped by the exact plane-induced homography

    x_img ~ K (R_w2c A + t_w2c e3^T) (u, v, 1)^T,   A = texture pixel -> world plane point,

so every pixel's correspondence in every other view and frame is known exactly; there is no
occlusion (a plane), so visibility is just "inside the image". Cameras are resampled until every
view sees only texture (no border), which keeps the ground truth unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mvt4g.camera.rig import ViewCameras, write_cameras_json
from mvt4g.fs.atomic import write_json_atomic
from mvt4g.io.video import write_video
from mvt4g.tracks.format import TrackSet, write_tracks
from mvt4g.tracks.projection import backproject, project, to_cv


@dataclass
class PlanarScene:
    """Rendered views: ``videos[v]`` uint8 ``[T, H, W, 3]``, ``depths[v]`` float32 ``[T, H, W]``, ``cameras[v]``."""

    videos: list[np.ndarray]
    depths: list[np.ndarray]
    cameras: list[ViewCameras]
    plane_depth: float

    @property
    def views(self) -> list[str]:
        return [f"cam{v + 1:02d}" for v in range(len(self.videos))]

    def exact_tracks(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact tracks float32 ``[V, T, N, 2]`` and visibility ``[V, T, N]`` of queries ``[N, 4]``."""
        q = np.asarray(queries, np.float64)
        V, T = len(self.cameras), self.cameras[0].frames
        H, W = self.videos[0].shape[1:3]
        world = np.zeros((len(q), 3))
        for v in range(V):
            for t in range(T):
                sel = (q[:, 0] == v) & (q[:, 1] == t)
                if sel.any():
                    world[sel] = self._plane_points(v, t, q[sel, 2:4])
        tracks = np.zeros((V, T, len(q), 2))
        visible = np.zeros((V, T, len(q)), bool)
        for v, cam in enumerate(self.cameras):
            w2c = cam.w2c()
            for t in range(T):
                uv, z = project(cam.K[t], w2c[t], world)
                tracks[v, t] = uv
                visible[v, t] = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
        return tracks.astype(np.float32), visible

    def _plane_points(self, view: int, frame: int, xy: np.ndarray) -> np.ndarray:
        cam = self.cameras[view]
        K, c2w = cam.K[frame], cam.c2w[frame]
        ray = backproject(K, c2w, xy, np.ones(len(xy))) - c2w[:3, 3]
        lam = (self.plane_depth - c2w[2, 3]) / ray[:, 2]
        return c2w[:3, 3] + lam[:, None] * ray


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera rotation (c2w) from angles in radians about the camera's y, x and z axes."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def _smooth_path(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """A smooth path ``[T]`` from 0: a random cubic ease with a random end value in +-amplitude."""
    s = np.linspace(0.0, 1.0, frames)
    ease = s * s * (3 - 2 * s) if rng.random() < 0.5 else s
    bend = rng.uniform(-0.3, 0.3) * np.sin(np.pi * s)
    return amplitude * (rng.uniform(-1, 1) * ease + bend)


def planar_scene(
    texture: np.ndarray,
    *,
    views: int = 3,
    frames: int = 21,
    height: int = 96,
    width: int = 160,
    seed: int = 0,
    plane_depth: float = 4.0,
    plane_width: float = 4.0,
    spread: float = 0.25,
    motion: float = 0.35,
    max_angle_deg: float = 4.0,
    fov_fraction: float = 0.5,
) -> PlanarScene:
    """Render a planar scene (module docstring).

    Args:
        texture: uint8 ``[Ht, Wt, 3]`` image placed on the plane.
        fov_fraction: fraction of the plane's width a camera at the origin sees.
        spread, motion: sideways spread of the starting cameras and the size of their motion (m).
        max_angle_deg: largest yaw / pitch / roll during the motion.
    """
    rng = np.random.default_rng(seed)
    tex_h, tex_w = texture.shape[:2]
    plane_height = plane_width * tex_h / tex_w
    # Resample the texture so one image pixel covers about one texture pixel (no aliasing).
    footprint_px = width / fov_fraction
    tex = cv2.resize(texture, (round(footprint_px), round(footprint_px * tex_h / tex_w)), interpolation=cv2.INTER_AREA)
    th, tw = tex.shape[:2]
    s = plane_width / tw
    A = np.array([[s, 0.0, -plane_width / 2], [0.0, s, -plane_height / 2], [0.0, 0.0, plane_depth]])
    focal = width / 2.0 / np.tan(np.arctan(fov_fraction * plane_width / 2.0 / plane_depth))
    K = np.array([[focal, 0, width / 2.0], [0, focal, height / 2.0], [0, 0, 1.0]])
    max_angle = np.deg2rad(max_angle_deg)
    cameras, videos, depths = [], [], []
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64)
    for v in range(views):
        for _attempt in range(200):
            start = np.array([rng.uniform(-spread, spread), rng.uniform(-spread, spread) * 0.6, rng.uniform(-0.2, 0.2)])
            path = np.stack([_smooth_path(rng, frames, a) for a in (motion, motion * 0.6, motion)], axis=1)
            angles = np.stack([_smooth_path(rng, frames, max_angle) for _ in range(3)], axis=1)
            c2w = np.tile(np.eye(4), (frames, 1, 1))
            for t in range(frames):
                c2w[t, :3, :3] = _rotation(*angles[t])
                c2w[t, :3, 3] = start + path[t]
            cam = ViewCameras(width, height, K, c2w)
            homs = [K @ (w2c[:3, :3] @ A + np.outer(w2c[:3, 3], [0, 0, 1.0])) for w2c in cam.w2c()]
            # Every image corner must land inside the texture (a 2-pixel margin for interpolation).
            inside = True
            for hom in homs:
                tex_pts = cv2.perspectiveTransform(corners[None], np.linalg.inv(hom))[0]
                inside &= bool((tex_pts[:, 0] > 2).all() and (tex_pts[:, 0] < tw - 2).all())
                inside &= bool((tex_pts[:, 1] > 2).all() and (tex_pts[:, 1] < th - 2).all())
            if inside:
                break
        else:
            raise ValueError("could not place a camera that sees only texture; lower motion or fov_fraction")
        frames_v = np.stack(
            [cv2.warpPerspective(tex, to_cv(hom), (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for hom in homs]
        )
        xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        pix = np.stack([xs.ravel(), ys.ravel()], axis=1)
        depth_v = np.empty((frames, height, width), np.float32)
        for t in range(frames):
            ray = backproject(K, c2w[t], pix, np.ones(len(pix))) - c2w[t, :3, 3]
            depth_v[t] = ((plane_depth - c2w[t, 2, 3]) / ray[:, 2]).reshape(height, width)
        cameras.append(cam)
        videos.append(frames_v)
        depths.append(depth_v)
    return PlanarScene(videos, depths, cameras, plane_depth)


def write_planar_clip(
    scene: PlanarScene, root: str | Path, queries: np.ndarray | None = None, *, fps: float = 10.0, depth: bool = True
) -> Path:
    """Write ``scene`` as a clip directory (videos, cameras, optional depth, exact tracks.npz for ``queries``).

    The exact tracks are written with method ``"planar"`` (ground truth). ``root`` must not exist.
    """
    root = Path(root)
    (root / "videos").mkdir(parents=True)
    (root / "cameras").mkdir()
    for name, video in zip(scene.views, scene.videos):
        write_video(root / "videos" / f"{name}.mp4", video, fps, crf=12)
    write_cameras_json(root / "cameras" / "cameras.json", dict(zip(scene.views, scene.cameras)))
    if depth:
        (root / "depth").mkdir()
        for name, dep in zip(scene.views, scene.depths):
            np.savez(root / "depth" / f"{name}.npz", depth=dep)
    H, W = scene.videos[0].shape[1:3]
    if queries is not None:
        tracks, visible = scene.exact_tracks(queries)
        write_tracks(root / "tracks.npz", TrackSet(tracks, visible, queries, (H, W), "planar", scene.views))
    meta = {"fps": fps, "frames": int(scene.videos[0].shape[0]), "caption": "a real image on a plane seen by moving cameras",
            "provenance": "mvt4g.tracks.planar"}
    write_json_atomic(root / "meta.json", meta)
    return root
