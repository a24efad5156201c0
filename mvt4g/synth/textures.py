"""Procedural solid textures, evaluated analytically at 3D surface points (torch).

Every texture is a function of a point in the surface's own frame (an object's local frame,
or world coordinates for the static ground and dome), so a texture moves with its surface
exactly and a tracked point keeps its colour in every view and frame. Patterns are smooth
(soft-edged squares, sines, value noise with smoothstep interpolation) so they alias little,
and multi-octave noise adds the fine detail optical flow and feature matching need.

Colours are display-space RGB in ``[0, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

#: Patterns a :class:`Texture` can have. ``dims`` 2 textures ignore the local z coordinate
#: (the ground), the others are solid 3D textures.
PATTERNS = ("checker", "stripes", "spots", "marble", "mottled", "grass", "tiles", "gravel", "sky")

#: Words the captions use for each pattern.
PATTERN_WORDS = {
    "checker": "checkered",
    "stripes": "striped",
    "spots": "spotted",
    "marble": "marbled",
    "mottled": "mottled",
    "grass": "grassy",
    "tiles": "tiled",
    "gravel": "gravel",
    "sky": "cloudy",
}

# Sharpness of the soft square waves: tanh(k sin) is close to a square wave but has no jump,
# so edges cover about a tenth of a period instead of an infinitely thin line.
_EDGE_SHARPNESS = 5.0


@dataclass(frozen=True)
class Texture:
    """One procedural texture.

    Attributes:
        pattern: one of :data:`PATTERNS`.
        color_a, color_b: the two colours the pattern mixes (RGB in [0, 1]).
        name_a, name_b: their names (for captions).
        scale: the pattern period in metres.
        direction: unit vector the stripes / marble bands run across.
        noise_scale: period of the coarsest noise octave in metres.
        noise_amount: how much the noise brightens or darkens the pattern (0..1).
        octaves: number of noise octaves (each half the period of the previous).
        offset: where in the noise field this texture sits (decorrelates textures).
    """

    pattern: str
    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float]
    name_a: str
    name_b: str
    scale: float
    direction: tuple[float, float, float] = (1.0, 0.0, 0.0)
    noise_scale: float = 0.5
    noise_amount: float = 0.3
    octaves: int = 4
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown texture pattern {self.pattern!r}")

    @property
    def word(self) -> str:
        return PATTERN_WORDS[self.pattern]

    def to_dict(self) -> dict:
        return {
            "pattern": self.pattern,
            "color_a": list(self.color_a),
            "color_b": list(self.color_b),
            "name_a": self.name_a,
            "name_b": self.name_b,
            "scale": self.scale,
            "direction": list(self.direction),
            "noise_scale": self.noise_scale,
            "noise_amount": self.noise_amount,
            "octaves": self.octaves,
            "offset": list(self.offset),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Texture:
        vec = ("color_a", "color_b", "direction", "offset")
        return cls(**{k: (tuple(v) if k in vec else v) for k, v in data.items()})


def permutation_table(seed: int) -> np.ndarray:
    """The lattice hash of the value noise: a permutation of 0..255, doubled, int64 ``[512]``."""
    perm = np.random.default_rng(seed).permutation(256)
    return np.concatenate([perm, perm]).astype(np.int64)


def _smooth(t: torch.Tensor) -> torch.Tensor:
    # Quintic fade: C2-continuous, so the noise has no visible lattice creases.
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def value_noise(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, perm: np.ndarray) -> torch.Tensor:
    """Smooth value noise in [0, 1] on a period-1 lattice, at points ``(x, y, z)`` (each ``[M]``).

    The lattice hash runs in numpy (``np.take`` is several times faster than torch indexing
    on CPU); the interpolation runs in torch.
    """
    fx, fy, fz = torch.floor(x), torch.floor(y), torch.floor(z)
    x0 = fx.to(torch.int64).numpy() & 255
    y0 = fy.to(torch.int64).numpy() & 255
    z0 = fz.to(torch.int64).numpy() & 255
    x1, y1, z1 = (x0 + 1) & 255, (y0 + 1) & 255, (z0 + 1) & 255
    hx = (np.take(perm, x0), np.take(perm, x1))
    hxy = [np.take(perm, h + yy) for h in hx for yy in (y0, y1)]  # x0y0, x0y1, x1y0, x1y1
    corners = [torch.from_numpy(np.take(perm, h + zz)).to(x.dtype) for h in hxy for zz in (z0, z1)]
    wx, wy, wz = _smooth(x - fx), _smooth(y - fy), _smooth(z - fz)
    # Trilinear blend: z first, then y, then x.
    c00 = torch.lerp(corners[0], corners[1], wz)
    c01 = torch.lerp(corners[2], corners[3], wz)
    c10 = torch.lerp(corners[4], corners[5], wz)
    c11 = torch.lerp(corners[6], corners[7], wz)
    return torch.lerp(torch.lerp(c00, c01, wy), torch.lerp(c10, c11, wy), wx) * (1.0 / 255.0)


def fbm(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, perm: np.ndarray, octaves: int, shift: float = 0.0) -> torch.Tensor:
    """Fractal (multi-octave) value noise in [0, 1] at ``(x, y, z)`` in units of the coarsest period."""
    total = torch.zeros_like(x)
    amp, norm, freq = 1.0, 0.0, 1.0
    for i in range(octaves):
        # A fixed shift per octave keeps octaves from sharing lattice points.
        off = shift + 17.31 * i
        total = total + amp * value_noise(x * freq + off, y * freq + off, z * freq + off, perm)
        norm += amp
        amp *= 0.55
        freq *= 2.03
    return total / norm


def _soft_square(x: torch.Tensor) -> torch.Tensor:
    """A soft square wave in [-1, 1] with period 2 (sign of sin(pi x), smoothed)."""
    return torch.tanh(_EDGE_SHARPNESS * torch.sin(math.pi * x))


def _smoothstep(lo: float, hi: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def shade_texture(tex: Texture, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, perm: np.ndarray) -> torch.Tensor:
    """Colour of ``tex`` at surface points ``(x, y, z)`` (each ``[M]``, metres, surface frame) -> ``[M, 3]``."""
    ox, oy, oz = tex.offset
    px, py, pz = x + ox, y + oy, z + oz
    inv = 1.0 / tex.noise_scale
    detail = fbm(px * inv, py * inv, pz * inv, perm, tex.octaves)  # [M] in [0, 1]
    s = 1.0 / tex.scale
    if tex.pattern == "checker":
        mix = 0.5 + 0.5 * _soft_square(px * s) * _soft_square(py * s) * _soft_square(pz * s + 0.5)
    elif tex.pattern == "tiles":
        mix = 0.5 + 0.5 * _soft_square(px * s) * _soft_square(py * s)
    elif tex.pattern == "stripes":
        along = px * tex.direction[0] + py * tex.direction[1] + pz * tex.direction[2]
        mix = 0.5 + 0.5 * _soft_square(2.0 * along * s + 0.6 * detail)
    elif tex.pattern == "marble":
        along = px * tex.direction[0] + py * tex.direction[1] + pz * tex.direction[2]
        w = s / 0.7
        warp = fbm(px * w, py * w, pz * w, perm, 3, shift=5.0)
        mix = 0.5 + 0.5 * torch.sin(2.0 * math.pi * along * s + 6.0 * warp)
    elif tex.pattern == "spots":
        mix = _smoothstep(0.52, 0.60, fbm(px * s, py * s, pz * s, perm, 2, shift=11.0))
    elif tex.pattern == "mottled":
        mix = _smoothstep(0.3, 0.7, fbm(px * s, py * s, pz * s, perm, 3, shift=3.0))
    elif tex.pattern == "grass":
        # Patches of two greens at the pattern scale, blades of fine noise on top.
        patches = fbm(px * s, py * s, pz * s, perm, 2, shift=7.0)
        mix = _smoothstep(0.35, 0.65, patches) * 0.7 + 0.3 * detail
    elif tex.pattern == "gravel":
        mix = _smoothstep(0.4, 0.6, fbm(px * s, py * s, pz * s, perm, 3, shift=2.0))
    else:  # sky: blue with clouds above a band of distant hills (z is height on the dome)
        return _sky(tex, (px, py, pz), (x, y, z), detail, perm)
    a = torch.tensor(tex.color_a, dtype=x.dtype)
    b = torch.tensor(tex.color_b, dtype=x.dtype)
    bright = 1.0 + tex.noise_amount * (2.0 * detail - 1.0)
    rgb = a + (b - a) * mix[:, None]
    return (rgb * bright[:, None]).clamp(0.0, 1.0)


def _sky(tex: Texture, p: tuple, points: tuple, detail: torch.Tensor, perm: np.ndarray) -> torch.Tensor:
    """The far dome: ``color_a`` sky with white clouds, hills in ``color_b`` along the horizon."""
    x, y, z = points
    dtype = x.dtype
    radius = torch.sqrt(x * x + y * y + z * z).clamp_min(1e-6)
    elev = z / radius  # sine of the elevation seen from the dome's centre
    s = 1.0 / tex.scale
    clouds = _smoothstep(0.45, 0.7, fbm(p[0] * s, p[1] * s, p[2] * s, perm, tex.octaves - 1))
    sky = torch.tensor(tex.color_a, dtype=dtype)[None] * (0.85 + 0.3 * elev.clamp(0, 1))[:, None]
    sky = torch.lerp(sky, torch.ones_like(sky), (clouds * 0.85)[:, None])
    # Hill line: a noisy height profile (in sine of elevation) that depends on the azimuth only.
    ax, ay = x / radius * 4.0 + 31.0, y / radius * 4.0 + 31.0
    ridge = 0.08 + 0.14 * fbm(ax, ay, torch.zeros_like(ax), perm, 3)
    hill_col = torch.tensor(tex.color_b, dtype=dtype)[None] * (0.6 + 0.8 * detail)[:, None]
    hill = _smoothstep(-0.004, 0.004, ridge - elev)
    return torch.lerp(sky, hill_col, hill[:, None]).clamp(0.0, 1.0)
