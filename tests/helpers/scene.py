"""A tiny exact ray-cast scene for the evaluation tests (independent of mvt4g.synth): textured ground, back wall and boxes, one of which can rise over the clip; its checks are tests/eval/test_scene.py."""

from __future__ import annotations

import cv2
import numpy as np

from mvt4g.camera import Intrinsics, preset_trajectory

GROUND_Y = 1.5


WALL_Z = 12.0


#: (centre, half size) of the static boxes.
BOXES = [
    ((0.0, 0.6, 4.0), (0.6, 0.9, 0.6)),
    ((-1.8, 0.9, 5.6), (0.5, 0.6, 0.5)),
    ((1.7, 0.8, 3.0), (0.4, 0.7, 0.4)),
    ((0.6, 1.1, 7.0), (1.0, 0.4, 0.5)),
    ((-0.9, 1.2, 2.2), (0.3, 0.3, 0.3)),
]


MOVING_BOX = ((-1.0, 1.0, 6.0), (0.5, 0.5, 0.5))


MOVING_RISE = 1.5  # metres it rises (along -y) over the clip


TEXELS_PER_METRE = 60.0  # a 1024-texel tile spans 17 m: the wall and boxes never repeat in view


def make_texture(seed: int = 0, size: int = 1024) -> np.ndarray:
    """A float32 ``[size, size, 3]`` texture of random rectangles and discs (many corners) plus grain."""
    rng = np.random.default_rng(seed)
    # Smooth colour blotches underneath (so no area is flat), then many sharp shapes on top.
    coarse = rng.uniform(0.15, 0.85, (size // 16, size // 16, 3)).astype(np.float32)
    tex = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    for _ in range(2800):
        colour = rng.uniform(0.0, 1.0, 3).tolist()
        x, y = rng.integers(0, size, 2)
        if rng.random() < 0.5:
            w, h = rng.integers(4, 36, 2)
            cv2.rectangle(tex, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
        else:
            cv2.circle(tex, (int(x), int(y)), int(rng.integers(3, 18)), colour, -1)
    tex += rng.normal(0.0, 0.03, tex.shape).astype(np.float32)
    return np.clip(tex, 0.0, 1.0)


def _sample(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear, wrapping lookup of texel coordinates (float) -> ``[N, 3]``."""
    size = tex.shape[0]
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = (u - u0)[:, None], (v - v0)[:, None]
    u0, v0 = u0.astype(np.int64) % size, v0.astype(np.int64) % size
    u1, v1 = (u0 + 1) % size, (v0 + 1) % size
    return ((1 - fu) * (1 - fv) * tex[v0, u0] + fu * (1 - fv) * tex[v0, u1]
            + (1 - fu) * fv * tex[v1, u0] + fu * fv * tex[v1, u1])  # fmt: skip


def _boxes_at(frame: int, frames: int, moving: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    boxes = [(np.array(c), np.array(h)) for c, h in BOXES]
    if moving:
        c, h = MOVING_BOX
        shift = MOVING_RISE * frame / max(frames - 1, 1)
        boxes.append((np.array(c) - [0.0, shift, 0.0], np.array(h)))
    return boxes


def render_frame(K: np.ndarray, c2w: np.ndarray, height: int, width: int, tex: np.ndarray,
                 boxes: list[tuple[np.ndarray, np.ndarray]], supersample: int = 1, depth: bool = False):  # fmt: skip
    """uint8 ``[H, W, 3]`` image of the scene (pixel centres at +0.5, box-filtered supersampling).

    With ``depth=True`` (and ``supersample=1``) also returns the z-depth ``[H, W]`` of every
    pixel centre (the ray parameter: camera rays have z component 1).
    """
    s = supersample
    ys, xs = np.mgrid[0 : height * s, 0 : width * s]
    px = (xs.ravel() + 0.5) / s
    py = (ys.ravel() + 0.5) / s
    rays = np.stack([(px - K[0, 2]) / K[0, 0], (py - K[1, 2]) / K[1, 1], np.ones_like(px)], 1) @ c2w[:3, :3].T
    o = c2w[:3, 3]
    n = len(rays)
    d = [np.ascontiguousarray(rays[:, k], dtype=np.float32) for k in range(3)]  # contiguous float32: fast
    best_t = np.full(n, np.inf)
    best_s = np.full(n, -1)
    surfaces = [(0, 2, 0.9), (0, 1, 0.8)]  # (u axis, v axis, brightness) of the ground and the wall
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = [1.0 / dk for dk in d]
        candidates = [(GROUND_Y - o[1]) * inv[1], (WALL_Z - o[2]) * inv[2]]
        for centre, half in boxes:
            near, far = [], []
            for k in range(3):
                lo = (centre[k] - half[k] - o[k]) * inv[k]
                hi = (centre[k] + half[k] - o[k]) * inv[k]
                near.append(np.minimum(lo, hi))
                far.append(np.maximum(lo, hi))
            t_near = np.maximum(np.maximum(near[0], near[1]), near[2])
            t_far = np.minimum(np.minimum(far[0], far[1]), far[2])
            hit = (t_far >= t_near) & (t_near > 1e-6)
            for a in range(3):
                candidates.append(np.where(hit & (near[a] == t_near), t_near, np.inf))
                uv = [k for k in range(3) if k != a]
                surfaces.append((uv[0], uv[1], (0.6, 1.0, 0.8)[a]))
        for sid, t_s in enumerate(candidates):
            closer = (t_s > 1e-6) & (t_s < best_t)
            best_t[closer] = t_s[closer]
            best_s[closer] = sid
    colour = np.full((n, 3), 0.35)
    for sid, (ua, va, bright) in enumerate(surfaces):
        sel = best_s == sid
        if sel.any():
            p = o + rays[sel] * best_t[sel, None]
            off = 37.0 * sid
            colour[sel] = bright * _sample(tex, p[:, ua] * TEXELS_PER_METRE + off, p[:, va] * TEXELS_PER_METRE + 2 * off)
    img = colour.reshape(height * s, width * s, 3)
    if s > 1:
        img = cv2.resize(img.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    img = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    return (img, best_t.reshape(height * s, width * s)) if depth else img


def render_video(c2w: np.ndarray, height: int = 240, width: int = 416, fov: float = 60.0, moving: bool = False,
                 seed: int = 0) -> tuple[np.ndarray, Intrinsics]:  # fmt: skip
    """Render the scene along ``c2w [T, 4, 4]``; returns (uint8 ``[T, H, W, 3]``, intrinsics)."""
    intr = Intrinsics.from_fov(fov, width, height)
    tex = make_texture(seed)
    frames = [render_frame(intr.K, pose, height, width, tex, _boxes_at(i, len(c2w), moving)) for i, pose in enumerate(c2w)]
    return np.stack(frames), intr


def render_preset(name: str, frames: int = 41, **kwargs) -> tuple[np.ndarray, Intrinsics, np.ndarray]:
    """Render along a trajectory preset; returns (video, intrinsics, c2w)."""
    c2w = preset_trajectory(name, frames)
    video, intr = render_video(c2w, **kwargs)
    return video, intr, c2w
