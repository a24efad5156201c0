"""A slow, independent reference renderer: one ray at a time in plain Python floats (float64).

It shares nothing with ``mvt4g.synth.raycast`` but the scene description: intersections use the
textbook formulas (quadratic roots, candidate caps and faces checked one by one), so tests can
compare the vectorised renderer's depth and masks against it, and ``benchmarks/synth.py`` uses
it as the per-pixel-loop baseline. Geometry only (no colour).
"""

from __future__ import annotations

import math

import numpy as np

from mvt4g.synth.scene import SURF_DOME, SURF_FIRST_OBJECT, SURF_GROUND, Scene


def _roots(a: float, b: float, c: float) -> list[float]:
    """Real roots of ``a t^2 + b t + c`` (``a > 0``)."""
    disc = b * b - 4 * a * c
    if disc < 0:
        return []
    s = math.sqrt(disc)
    return [(-b - s) / (2 * a), (-b + s) / (2 * a)]


def _sphere(o, d, r) -> list[float]:
    return _roots(d @ d, 2 * (o @ d), o @ o - r * r)


def _box(o, d, half) -> list[float]:
    """Hits on the six faces: the face plane's t where the other two coordinates are inside."""
    out = []
    for axis in range(3):
        if abs(d[axis]) < 1e-100:  # parallel to the face planes (hits beyond 1e100 would be dropped anyway)
            continue
        for sign in (-1.0, 1.0):
            t = (sign * half[axis] - o[axis]) / d[axis]
            if abs(t) > 1e100:
                continue
            p = o + t * d
            others = [j for j in range(3) if j != axis]
            if all(abs(p[j]) <= half[j] + 1e-12 for j in others):
                out.append(t)
    return out


def _cylinder(o, d, radius, half_height) -> list[float]:
    out = []
    a = d[0] ** 2 + d[1] ** 2
    if a > 0:
        for t in _roots(a, 2 * (o[0] * d[0] + o[1] * d[1]), o[0] ** 2 + o[1] ** 2 - radius**2):
            if abs(o[2] + t * d[2]) <= half_height:
                out.append(t)
    if abs(d[2]) >= 1e-100:  # else parallel to the caps (their hits would lie beyond any finite scene)
        for sign in (-1.0, 1.0):
            with np.errstate(over="ignore"):
                t = (sign * half_height - o[2]) / d[2]
            if abs(t) > 1e100:  # a ray all but parallel to the caps: no hit in any finite scene
                continue
            p = o + t * d
            if p[0] ** 2 + p[1] ** 2 <= radius**2:
                out.append(t)
    return out


def first_local_hit(shape: str, size: tuple[float, ...], origin, direction) -> float:
    """Smallest ``t > 0`` where a ray (object frame) meets a primitive; ``inf`` on a miss."""
    o = np.asarray(origin, dtype=np.float64)
    d = np.asarray(direction, dtype=np.float64)
    if shape == "sphere":
        hits = _sphere(o, d, size[0])
    elif shape == "box":
        hits = _box(o, d, size)
    elif shape == "cylinder":
        hits = _cylinder(o, d, *size)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return min((t for t in hits if t > 0), default=math.inf)


def first_hit(scene: Scene, rot: np.ndarray, pos: np.ndarray, origin, direction) -> tuple[float, int]:
    """``(t, surface)`` of the first hit with ``t > 0`` of one world ray at one frame.

    ``rot [K, 3, 3]`` and ``pos [K, 3]`` are the objects' poses at that frame.
    """
    o = np.asarray(origin, dtype=np.float64)
    d = np.asarray(direction, dtype=np.float64)
    best, surface = math.inf, -1
    dome = [t for t in _sphere(o, d, scene.dome_radius) if t > 0]
    if dome:
        best, surface = max(dome), SURF_DOME
    if d[2] != 0:
        t = -o[2] / d[2]
        if 0 < t < best:
            best, surface = t, SURF_GROUND
    for k, obj in enumerate(scene.objects):
        t = first_local_hit(obj.shape, obj.size, rot[k].T @ (o - pos[k]), rot[k].T @ d)
        if t < best:
            best, surface = t, SURF_FIRST_OBJECT + k
    return best, surface


def naive_depth_masks(scene: Scene, view: str, frames: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """z-depth float64 ``[F, H, W]`` and mask ids uint8 ``[F, H, W]`` of one view, pixel by pixel."""
    cams = scene.cameras[view]
    frames = list(range(scene.frames)) if frames is None else list(frames)
    rot_all, pos_all = scene.object_poses()
    depth = np.zeros((len(frames), scene.height, scene.width))
    masks = np.zeros((len(frames), scene.height, scene.width), dtype=np.uint8)
    for i, f in enumerate(frames):
        k, c2w = cams.K[f], cams.c2w[f]
        for v in range(scene.height):
            for u in range(scene.width):
                cam = np.array([(u + 0.5 - k[0, 2]) / k[0, 0], (v + 0.5 - k[1, 2]) / k[1, 1], 1.0])
                t, s = first_hit(scene, rot_all[f], pos_all[f], c2w[:3, 3], c2w[:3, :3] @ cam)
                depth[i, v, u] = t  # camera-z of the direction is 1, so t is the z-depth
                masks[i, v, u] = max(s - (SURF_FIRST_OBJECT - 1), 0)
    return depth, masks
