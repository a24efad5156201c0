"""Vectorised ray casting against the scene's analytic surfaces (torch).

Rays are ``origin + t * direction`` with directions of any length; every function returns the
ray parameter ``t`` of the first hit with ``t > t_min`` (``inf`` on a miss). With camera rays
whose direction has camera-z component 1 (``R K^-1 (u, v, 1)``), ``t`` is the z-depth.

Vectors are passed as tuples of component tensors ``(x, y, z)`` of one shape (structure of
arrays): elementwise torch ops on contiguous components run several times faster on CPU than
on ``[..., 3]`` tensors.

Primitives are intersected in their own frame: a world ray becomes ``R^T (o - c)``,
``R^T d`` for an object with rotation ``R`` and centre ``c``; ``t`` is unchanged by that
rigid change of frame. Quadratics use the closest-approach form (distance of the ray's
closest point to the centre) rather than the textbook discriminant, which loses most of its
float32 digits when the ray starts metres away from a small object. Boxes and cylinders are
only intersected exactly for the rays that pass their bounding sphere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mvt4g.synth.scene import SURF_DOME, SURF_FIRST_OBJECT, SURF_GROUND

INF = float("inf")
Vec = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Geometry:
    """The scene's shapes without textures: ``shapes[k]`` is ``(shape, size)`` of object k."""

    shapes: tuple[tuple[str, tuple[float, ...]], ...]
    dome_radius: float

    @classmethod
    def of(cls, scene) -> Geometry:
        return cls(tuple((o.shape, tuple(o.size)) for o in scene.objects), float(scene.dome_radius))


def dot(a: Vec, b: Vec) -> torch.Tensor:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _inf_like(t: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
    return torch.full_like(t, sign * INF)


def _first_of_interval(t_near: torch.Tensor, t_far: torch.Tensor, t_min: float) -> torch.Tensor:
    """First ``t > t_min`` in the interval ``[t_near, t_far]`` (inf when empty or behind)."""
    hit = (t_near <= t_far) & (t_far > t_min)
    t = torch.where(t_near > t_min, t_near, t_far)
    return torch.where(hit, t, _inf_like(t))


def _sphere_interval(o: Vec, d: Vec, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit ``t`` of a sphere at the origin (``inf, -inf`` on a miss)."""
    a = dot(d, d)
    tc = -dot(o, d) / a  # parameter of the point closest to the centre
    cx, cy, cz = o[0] + tc * d[0], o[1] + tc * d[1], o[2] + tc * d[2]
    disc = radius * radius - (cx * cx + cy * cy + cz * cz)
    half = torch.sqrt(disc.clamp_min(0.0) / a)
    miss = disc < 0
    return torch.where(miss, _inf_like(tc), tc - half), torch.where(miss, _inf_like(tc, -1.0), tc + half)


def intersect_sphere(o: Vec, d: Vec, radius: float, t_min: float = 0.0, far: bool = False) -> torch.Tensor:
    """Sphere of ``radius`` at the origin. ``far=True`` returns the exit point (a camera inside
    the sphere, e.g. the dome)."""
    t_near, t_far = _sphere_interval(o, d, radius)
    if far:
        return torch.where(t_far > t_min, t_far, _inf_like(t_far))
    return _first_of_interval(t_near, t_far, t_min)


def _slab(o: torch.Tensor, d: torch.Tensor, half: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval of ``t`` where ``|o + t d| <= half`` along one axis."""
    parallel = d == 0
    inv = 1.0 / torch.where(parallel, torch.ones_like(d), d)
    t1, t2 = (-half - o) * inv, (half - o) * inv
    lo, hi = torch.minimum(t1, t2), torch.maximum(t1, t2)
    if bool(parallel.any()):
        # A ray parallel to the slab is inside it everywhere or nowhere.
        inside = o.abs() <= half
        lo = torch.where(parallel, torch.where(inside, _inf_like(lo, -1.0), _inf_like(lo)), lo)
        hi = torch.where(parallel, torch.where(inside, _inf_like(hi), _inf_like(hi, -1.0)), hi)
    return lo, hi


def intersect_box(o: Vec, d: Vec, half: tuple[float, float, float], t_min: float = 0.0) -> torch.Tensor:
    """Axis-aligned box with half-extents ``half`` centred at the origin (slab method)."""
    lo0, hi0 = _slab(o[0], d[0], half[0])
    lo1, hi1 = _slab(o[1], d[1], half[1])
    lo2, hi2 = _slab(o[2], d[2], half[2])
    t_near = torch.maximum(torch.maximum(lo0, lo1), lo2)
    t_far = torch.minimum(torch.minimum(hi0, hi1), hi2)
    return _first_of_interval(t_near, t_far, t_min)


def intersect_cylinder(o: Vec, d: Vec, radius: float, half_height: float, t_min: float = 0.0) -> torch.Tensor:
    """Closed cylinder with axis local z: ``x^2 + y^2 <= radius^2`` and ``|z| <= half_height``."""
    a = d[0] * d[0] + d[1] * d[1]
    along_axis = a <= 1e-20
    safe_a = torch.where(along_axis, torch.ones_like(a), a)
    tc = -(o[0] * d[0] + o[1] * d[1]) / safe_a
    cx, cy = o[0] + tc * d[0], o[1] + tc * d[1]
    disc = radius * radius - (cx * cx + cy * cy)
    half = torch.sqrt(disc.clamp_min(0.0) / safe_a)
    miss = disc < 0
    side_lo = torch.where(miss, _inf_like(tc), tc - half)
    side_hi = torch.where(miss, _inf_like(tc, -1.0), tc + half)
    if bool(along_axis.any()):
        # A ray along the axis is inside the infinite cylinder everywhere or nowhere.
        inside = o[0] * o[0] + o[1] * o[1] <= radius * radius
        side_lo = torch.where(along_axis, torch.where(inside, _inf_like(a, -1.0), _inf_like(a)), side_lo)
        side_hi = torch.where(along_axis, torch.where(inside, _inf_like(a), _inf_like(a, -1.0)), side_hi)
    z_lo, z_hi = _slab(o[2], d[2], half_height)
    return _first_of_interval(torch.maximum(side_lo, z_lo), torch.minimum(side_hi, z_hi), t_min)


def intersect_ground(o: Vec, d: Vec, t_min: float = 0.0) -> torch.Tensor:
    """The plane z = 0 (seen from either side)."""
    dz = d[2]
    t = -o[2] / torch.where(dz == 0, torch.ones_like(dz), dz)
    return torch.where((dz != 0) & (t > t_min), t, _inf_like(t))


def intersect_local(shape: str, size: tuple[float, ...], o: Vec, d: Vec, t_min: float = 0.0) -> torch.Tensor:
    """Dispatch on ``shape`` (rays in the object's frame)."""
    if shape == "sphere":
        return intersect_sphere(o, d, size[0], t_min)
    if shape == "box":
        return intersect_box(o, d, size, t_min)
    if shape == "cylinder":
        return intersect_cylinder(o, d, size[0], size[1], t_min)
    raise ValueError(f"unknown shape {shape!r}")


def bounding_radius(shape: str, size: tuple[float, ...]) -> float:
    if shape == "sphere":
        return float(size[0])
    if shape == "box":
        return float(sum(s * s for s in size) ** 0.5)
    return float((size[0] ** 2 + size[1] ** 2) ** 0.5)


def to_local(v: Vec, rot: torch.Tensor, centre: torch.Tensor | None) -> Vec:
    """World points (``centre`` given) or directions (``centre=None``) into an object's frame:
    ``R^T (v - c)``. ``rot [..., 3, 3]`` and ``centre [..., 3]`` broadcast against the components."""
    x, y, z = v
    if centre is not None:
        x, y, z = x - centre[..., 0], y - centre[..., 1], z - centre[..., 2]
    return tuple(x * rot[..., 0, j] + y * rot[..., 1, j] + z * rot[..., 2, j] for j in range(3))  # type: ignore[return-value]


def intersect_object(shape: str, size: tuple[float, ...], o: Vec, d: Vec, rot: torch.Tensor, centre: torch.Tensor,
                     t_min: float = 0.0) -> torch.Tensor:  # fmt: skip
    """First hit of world rays ``o, d`` (components ``[B, R]``) with one object whose pose per
    batch is ``rot [B, 3, 3]``, ``centre [B, 3]``; returns ``t [B, R]``."""
    c = centre[:, None, :]  # [B, 1, 3] broadcasts over the R rays of a batch
    o_rel = (o[0] - c[..., 0], o[1] - c[..., 1], o[2] - c[..., 2])
    if shape == "sphere":  # rotation-invariant: no change of frame needed
        return intersect_sphere(o_rel, d, size[0], t_min)
    t_in, t_out = _sphere_interval(o_rel, d, bounding_radius(shape, size))
    cand = (t_out > t_min) & (t_in <= t_out)
    t = _inf_like(t_in)
    if not bool(cand.any()):
        return t
    b = cand.nonzero(as_tuple=True)[0]
    r = rot[b]  # [M, 3, 3]
    sub = lambda comps: tuple(comp[cand] for comp in comps)
    o_loc = to_local(sub(o_rel), r, None)
    d_loc = to_local(sub(d), r, None)
    t[cand] = intersect_local(shape, size, o_loc, d_loc, t_min)
    return t


def cast(geom: Geometry, o: Vec, d: Vec, rot: torch.Tensor, centres: torch.Tensor, *, t_min: float = 0.0,
         objects_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """First hit of every ray.

    Args:
        o, d: world rays, components ``[B, R]`` (B batches, e.g. frames; R rays each).
        rot, centres: object poses per batch, ``[B, K, 3, 3]`` and ``[B, K, 3]``.
        t_min: hits at ``t <= t_min`` are ignored (shadow rays start on a surface).
        objects_only: skip the ground and the dome (shadow rays).

    Returns:
        ``t [B, R]`` (inf on a miss) and ``surface [B, R]`` int64 (see ``mvt4g.synth.scene``;
        -1 on a miss).
    """
    best_t = _inf_like(o[0])
    best_s = torch.full(o[0].shape, -1, dtype=torch.int64)

    def take(t: torch.Tensor, surface: int) -> None:
        closer = t < best_t
        torch.where(closer, t, best_t, out=best_t)
        best_s.masked_fill_(closer, surface)

    if not objects_only:
        take(intersect_sphere(o, d, geom.dome_radius, t_min, far=True), SURF_DOME)
        take(intersect_ground(o, d, t_min), SURF_GROUND)
    for k, (shape, size) in enumerate(geom.shapes):
        take(intersect_object(shape, size, o, d, rot[:, k], centres[:, k], t_min), SURF_FIRST_OBJECT + k)
    return best_t, best_s


def local_normal(shape: str, size: tuple[float, ...], p: Vec) -> Vec:
    """Outward unit normal at local surface points ``p`` (components ``[M]``) of a primitive."""
    x, y, z = p
    if shape == "sphere":
        return x / size[0], y / size[0], z / size[0]
    if shape == "box":
        rel = torch.stack([x.abs() / size[0], y.abs() / size[1], z.abs() / size[2]])
        axis = rel.argmax(dim=0)
        zero = torch.zeros_like(x)
        return tuple(torch.where(axis == j, torch.sign(c), zero) for j, c in enumerate((x, y, z)))  # type: ignore[return-value]
    if shape == "cylinder":
        radius, half_height = size
        r_xy = torch.sqrt(x * x + y * y)
        on_cap = z.abs() / half_height > r_xy / radius
        inv = 1.0 / r_xy.clamp_min(1e-12)
        zero = torch.zeros_like(x)
        return (torch.where(on_cap, zero, x * inv), torch.where(on_cap, zero, y * inv), torch.where(on_cap, torch.sign(z), zero))
    raise ValueError(f"unknown shape {shape!r}")
