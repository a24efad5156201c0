"""Rendering a scene's views: colour, z-depth and object masks, all pixels and frames at once.

Per view, camera rays of many frames are stacked into one ``[B, R, 3]`` batch (B frames, R
rays) and cast together (``mvt4g.synth.raycast``); batches are capped at ``chunk_rays`` rays.

Shading is view-independent, so a surface point has the same colour in every view:
``colour = texture(point) * (ambient + (1 - ambient) * max(0, n . light) * lit)`` where ``lit``
is 0 when another object blocks the light (hard shadows); the dome is unlit (emissive).

Depth and masks are exact for the ray through each pixel centre ``(u + 0.5, v + 0.5)``. With
``supersample = s > 1`` the colour is the mean of an ``s x s`` grid of sub-pixel rays
(anti-aliasing) while depth and masks still come from the centre ray.

Depth is the z-depth in metres (distance along the camera's optical axis). There is no empty
background: the far dome closes the scene, so depth is finite everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mvt4g.errors import InputError, WorkFailed
from mvt4g.synth.raycast import Geometry, cast, local_normal, to_local
from mvt4g.synth.scene import SURF_DOME, SURF_FIRST_OBJECT, SURF_GROUND, Scene
from mvt4g.synth.textures import permutation_table, shade_texture

#: Shadow rays start this far (metres) along the light direction, past the surface they leave.
SHADOW_EPS = 1e-3


@dataclass
class ViewRender:
    """One rendered view.

    Attributes:
        rgb: uint8 ``[T, H, W, 3]``.
        depth: float32 ``[T, H, W]`` z-depth in metres (finite everywhere).
        masks: uint8 ``[T, H, W]`` object ids (0 = ground and dome, k + 1 = object k).
    """

    rgb: np.ndarray
    depth: np.ndarray
    masks: np.ndarray


def pixel_rays(K: np.ndarray, c2w: np.ndarray, height: int, width: int, supersample: int = 1, dtype=torch.float32):
    """World rays through pixel centres (or an ``s x s`` sub-pixel grid per pixel).

    Args:
        K, c2w: ``[F, 3, 3]`` intrinsics and ``[F, 4, 4]`` camera-to-world poses.

    Returns:
        origins, dirs: component tuples ``(x, y, z)``, each ``[F, R]`` with ``R = H * W * s^2``
        in row-major order of the ``(H * s) x (W * s)`` sub-pixel image. Directions have
        camera-z component 1, so the ray parameter of a hit is its z-depth.
    """
    s = int(supersample)
    ys = (np.arange(height * s, dtype=np.float64) + 0.5) / s
    xs = (np.arange(width * s, dtype=np.float64) + 0.5) / s
    K = np.asarray(K, dtype=np.float64)
    c2w = np.asarray(c2w, dtype=np.float64)
    x_cam = (xs[None, None, :] - K[:, 0, 2, None, None]) / K[:, 0, 0, None, None]  # [F, 1, Ws]
    y_cam = (ys[None, :, None] - K[:, 1, 2, None, None]) / K[:, 1, 1, None, None]  # [F, Hs, 1]
    frames = K.shape[0]
    rays = len(xs) * len(ys)
    dirs, origins = [], []
    for i in range(3):
        r = c2w[:, i, :3, None, None]  # row i of the rotation, [F, 3, 1, 1]
        comp = r[:, 0] * x_cam + r[:, 1] * y_cam + r[:, 2]
        dirs.append(torch.as_tensor(comp.reshape(frames, rays), dtype=dtype))
        origins.append(torch.as_tensor(c2w[:, i, 3], dtype=dtype)[:, None].expand(frames, rays))
    return tuple(origins), tuple(dirs)


class Shader:
    """Colours hits of one scene; holds the scene's textures, noise table and light."""

    def __init__(self, scene: Scene, shadows: bool = True):
        self.scene = scene
        self.geom = Geometry.of(scene)
        self.perm = permutation_table(scene.noise_seed)
        self.light = tuple(float(v) for v in scene.light_dir)
        self.ambient = float(scene.ambient)
        self.shadows = shadows

    def shade(self, o, d, t, surface, rot, centres) -> torch.Tensor:
        """Colours ``[B, R, 3]`` in [0, 1] of hits ``t, surface [B, R]`` of rays ``o, d``
        (components ``[B, R]``); object poses ``rot [B, K, 3, 3]``, ``centres [B, K, 3]``."""
        pts = tuple(o[i] + t * d[i] for i in range(3))
        rgb = torch.zeros(t.shape + (3,), dtype=t.dtype)
        lit = self._lit(pts, surface, rot, centres)  # [B, R] 0 in shadow, else 1
        dome = surface == SURF_DOME
        rgb[dome] = shade_texture(self.scene.dome, *(c[dome] for c in pts), self.perm)
        ground = surface == SURF_GROUND
        lambert = self.ambient + (1 - self.ambient) * max(self.light[2], 0.0) * lit[ground]
        rgb[ground] = shade_texture(self.scene.ground, *(c[ground] for c in pts), self.perm) * lambert[:, None]
        for k, obj in enumerate(self.scene.objects):
            sel = surface == SURF_FIRST_OBJECT + k
            if not bool(sel.any()):
                continue
            b = sel.nonzero(as_tuple=True)[0]
            r_k = rot[b, k]  # [M, 3, 3]
            local = to_local(tuple(c[sel] for c in pts), r_k, centres[b, k])
            n_loc = local_normal(obj.shape, obj.size, local)
            # World normal n = R n_local; only its dot with the light matters.
            cos = sum(self.light[i] * (r_k[:, i, 0] * n_loc[0] + r_k[:, i, 1] * n_loc[1] + r_k[:, i, 2] * n_loc[2])
                      for i in range(3)).clamp_min(0.0)  # fmt: skip
            lambert = self.ambient + (1 - self.ambient) * cos * lit[sel]
            rgb[sel] = shade_texture(obj.texture, *local, self.perm) * lambert[:, None]
        return rgb

    def _lit(self, pts, surface, rot, centres) -> torch.Tensor:
        """1 where the light reaches a point, 0 where an object shadows it: ``[B, R]``."""
        lit = torch.ones_like(pts[0])
        if not self.shadows or not self.geom.shapes:
            return lit
        # A ray from every hit towards the (directional) light; any object hit means shadow.
        dirs = tuple(torch.full_like(pts[0], v) for v in self.light)
        t, _ = cast(self.geom, pts, dirs, rot, centres, t_min=SHADOW_EPS, objects_only=True)
        lit[torch.isfinite(t) & (surface != SURF_DOME)] = 0.0
        return lit


def render_view(
    scene: Scene,
    view: str,
    *,
    supersample: int = 1,
    chunk_rays: int = 1 << 18,
    dtype=torch.float32,
    shadows: bool = True,
) -> ViewRender:
    """Render all frames of one view of ``scene`` (see the module docstring)."""
    cams = scene.cameras[view]
    h, w, frames = scene.height, scene.width, scene.frames
    s = int(supersample)
    if s < 1:
        raise InputError(f"supersample must be >= 1, got {supersample}")
    shader = Shader(scene, shadows=shadows)
    rot_all, pos_all = (torch.as_tensor(a, dtype=dtype) for a in scene.object_poses())
    rgb = np.empty((frames, h, w, 3), dtype=np.uint8)
    depth = np.empty((frames, h, w), dtype=np.float32)
    masks = np.empty((frames, h, w), dtype=np.uint8)
    per_frame = h * w * s * s
    step = max(1, chunk_rays // per_frame)
    for f0 in range(0, frames, step):
        sl = slice(f0, min(frames, f0 + step))
        rot, pos = rot_all[sl], pos_all[sl]
        o, d = pixel_rays(cams.K[sl], cams.c2w[sl], h, w, 1, dtype)
        t, surf = _cast_rows(shader, o, d, rot, pos, chunk_rays)
        n = t.shape[0]
        depth[sl] = t.reshape(n, h, w).numpy()
        masks[sl] = (surf - (SURF_FIRST_OBJECT - 1)).clamp_min(0).reshape(n, h, w).numpy().astype(np.uint8)
        if s == 1:
            col = _shade_rows(shader, o, d, t, surf, rot, pos, chunk_rays)
        else:
            o, d = pixel_rays(cams.K[sl], cams.c2w[sl], h, w, s, dtype)
            ts, ss = _cast_rows(shader, o, d, rot, pos, chunk_rays)
            col = _shade_rows(shader, o, d, ts, ss, rot, pos, chunk_rays)
            col = col.reshape(n, h, s, w, s, 3).mean(dim=(2, 4))
        rgb[sl] = (col.reshape(n, h, w, 3) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    if not np.isfinite(depth).all():
        # Only a camera outside the dome can see nothing; scene sampling never places one there.
        raise WorkFailed(f"view {view}: some rays hit nothing (camera outside the dome?)")
    return ViewRender(rgb=rgb, depth=depth, masks=masks)


def _row_slices(rays: int, batch: int, chunk_rays: int) -> list[slice]:
    """Split R rays so each piece of a ``[batch, R]`` tensor holds at most ~chunk_rays rays."""
    per = max(1, chunk_rays // max(batch, 1))
    return [slice(r0, min(rays, r0 + per)) for r0 in range(0, rays, per)]


def _cols(v, sl: slice):
    return tuple(c[:, sl] for c in v)


def _cast_rows(shader: Shader, o, d, rot, pos, chunk_rays):
    ts, ss = [], []
    for sl in _row_slices(o[0].shape[1], o[0].shape[0], chunk_rays):
        t, s = cast(shader.geom, _cols(o, sl), _cols(d, sl), rot, pos)
        ts.append(t)
        ss.append(s)
    return torch.cat(ts, 1), torch.cat(ss, 1)


def _shade_rows(shader: Shader, o, d, t, surf, rot, pos, chunk_rays):
    parts = [
        shader.shade(_cols(o, sl), _cols(d, sl), t[:, sl], surf[:, sl], rot, pos)
        for sl in _row_slices(o[0].shape[1], o[0].shape[0], chunk_rays)
    ]
    return torch.cat(parts, 1)


def render_scene(scene: Scene, **kwargs) -> dict[str, ViewRender]:
    """Render every view of ``scene``; keyword arguments as for :func:`render_view`."""
    return {view: render_view(scene, view, **kwargs) for view in scene.views}
