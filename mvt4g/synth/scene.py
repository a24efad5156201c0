"""A synthetic scene's description: surfaces, textures, motions, light and cameras.

World frame: metres, z up, the ground is the plane z = 0, and a far dome (a sphere of radius
``dome_radius`` centred at the origin) closes the scene, so every camera ray hits something
at a finite depth. Cameras are OpenCV-axes camera-to-world poses (``mvt4g.camera``).

Time: frame ``i`` of ``T`` is at clip time ``u = i / (T - 1)`` in [0, 1] (``u = 0`` when
T = 1), so a motion spans the whole clip whatever the frame count.

Surface indices (used by the renderer): 0 = dome, 1 = ground, ``2 + k`` = object ``k``. Mask
ids written to ``masks/`` are ``0`` for dome and ground and ``k + 1`` for object ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.synth.textures import Texture

SURF_DOME = 0
SURF_GROUND = 1
SURF_FIRST_OBJECT = 2

SHAPES = ("sphere", "box", "cylinder")


@dataclass(frozen=True)
class Motion:
    """A smooth rigid motion over clip time ``u`` in [0, 1].

    Position: ``start + velocity u + accel u^2 + wobble * sin(2 pi wobble_freq u + wobble_phase)``
    plus ``hop * |sin(pi hop_freq u + hop_phase)|`` along z (bouncing).
    Rotation: about the unit ``axis`` by ``angle0 + spin u`` radians.
    """

    start: tuple[float, float, float]
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    accel: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wobble: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wobble_freq: float = 0.0
    wobble_phase: float = 0.0
    hop: float = 0.0
    hop_freq: float = 0.0
    hop_phase: float = 0.0
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    angle0: float = 0.0
    spin: float = 0.0

    def position(self, u: np.ndarray) -> np.ndarray:
        """Object centre at clip times ``u [F]`` -> ``[F, 3]`` (float64)."""
        u = np.asarray(u, dtype=np.float64)[:, None]
        pos = np.asarray(self.start) + np.asarray(self.velocity) * u + np.asarray(self.accel) * u**2
        pos = pos + np.asarray(self.wobble) * np.sin(2 * np.pi * self.wobble_freq * u + self.wobble_phase)
        pos[:, 2:] += self.hop * np.abs(np.sin(np.pi * self.hop_freq * u + self.hop_phase))
        return pos

    def rotation(self, u: np.ndarray) -> np.ndarray:
        """Object-to-world rotations at clip times ``u [F]`` -> ``[F, 3, 3]`` (Rodrigues)."""
        u = np.asarray(u, dtype=np.float64)
        axis = np.asarray(self.axis, dtype=np.float64)
        axis = axis / np.linalg.norm(axis)
        angle = self.angle0 + self.spin * u
        kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
        return np.eye(3) + s * kx + (1 - c) * (kx @ kx)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class SceneObject:
    """A moving textured primitive, defined in its own frame (centred at the origin).

    ``size``: sphere ``(radius,)``; box ``(half_x, half_y, half_z)``; cylinder
    ``(radius, half_height)`` with its axis along local z.
    """

    shape: str
    size: tuple[float, ...]
    texture: Texture
    motion: Motion

    def __post_init__(self) -> None:
        want = {"sphere": 1, "box": 3, "cylinder": 2}
        if self.shape not in want:
            raise ValueError(f"unknown shape {self.shape!r}")
        if len(self.size) != want[self.shape] or min(self.size) <= 0:
            raise ValueError(f"{self.shape} needs {want[self.shape]} positive sizes, got {self.size}")

    @property
    def bounding_radius(self) -> float:
        """Radius of a sphere about the object's centre that contains it."""
        if self.shape == "sphere":
            return float(self.size[0])
        if self.shape == "box":
            return float(np.linalg.norm(self.size))
        return float(np.hypot(self.size[0], self.size[1]))

    def to_dict(self) -> dict:
        return {
            "shape": self.shape,
            "size": list(self.size),
            "texture": self.texture.to_dict(),
            "motion": self.motion.to_dict(),
        }


@dataclass
class Scene:
    """Everything needed to render a clip and its ground truth.

    Attributes:
        objects: the moving primitives (mask id ``k + 1`` for ``objects[k]``).
        ground, dome: textures of the ground plane and the far dome.
        dome_radius: metres; every camera must stay inside.
        light_dir: unit vector towards the (directional) light, world frame.
        ambient: fraction of light that reaches surfaces facing away from the light.
        noise_seed: seed of the texture noise lattice.
        frames, height, width: clip size.
        cameras: view name -> :class:`ViewCameras` (cam01 is the reference view).
        focal_mm: the lens all views share (23.76 mm sensor).
        seed: the seed the scene was sampled from (provenance).
    """

    objects: list[SceneObject]
    ground: Texture
    dome: Texture
    dome_radius: float
    light_dir: tuple[float, float, float]
    ambient: float
    noise_seed: int
    frames: int
    height: int
    width: int
    cameras: dict[str, ViewCameras] = field(default_factory=dict)
    focal_mm: float = 24.0
    seed: int | None = None

    @property
    def views(self) -> list[str]:
        return list(self.cameras)

    def clip_times(self) -> np.ndarray:
        """Clip time ``u`` of every frame, float64 ``[T]``."""
        if self.frames == 1:
            return np.zeros(1)
        return np.arange(self.frames, dtype=np.float64) / (self.frames - 1)

    def object_poses(self, frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Object-to-world rotations ``[F, K, 3, 3]`` and centres ``[F, K, 3]`` (float64).

        ``frames`` (int ``[F]``) selects frames; default all ``T``. K = 0 gives empty arrays.
        """
        u = self.clip_times() if frames is None else self.clip_times()[np.asarray(frames)]
        rot = np.zeros((len(u), len(self.objects), 3, 3))
        pos = np.zeros((len(u), len(self.objects), 3))
        for k, obj in enumerate(self.objects):
            rot[:, k] = obj.motion.rotation(u)
            pos[:, k] = obj.motion.position(u)
        return rot, pos

    def caption(self) -> str:
        """A one-sentence description, e.g. 'a red striped sphere and a blue checkered box ...'."""
        nouns = {"sphere": "sphere", "box": "box", "cylinder": "cylinder"}
        parts = [f"{_article(o.texture.name_a)} {o.texture.name_a} {o.texture.word} {nouns[o.shape]}" for o in self.objects]
        if not parts:
            things = "nothing"
        elif len(parts) == 1:
            things = parts[0]
        else:
            things = ", ".join(parts[:-1]) + " and " + parts[-1]
        verb = "moves" if len(parts) == 1 else "move"
        return f"{things} {verb} over {self.ground.word} ground under a {self.dome.word} sky with hills"

    def to_dict(self) -> dict:
        """The scene without its cameras (those go to cameras.json), for meta.json."""
        return {
            "objects": [o.to_dict() for o in self.objects],
            "ground": self.ground.to_dict(),
            "dome": self.dome.to_dict(),
            "dome_radius": self.dome_radius,
            "light_dir": list(self.light_dir),
            "ambient": self.ambient,
            "noise_seed": self.noise_seed,
            "focal_mm": self.focal_mm,
        }


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
