"""Random scenes: textures, object motions and cameras, all drawn from one seed.

Layout (metres, z up, see ``mvt4g.synth.scene``): objects move within a few metres of the
origin; the reference camera (cam01) looks at the scene centre from a distance that keeps
about 6 m of the scene in its field of view whatever the lens; the other views start from
random poses around the scene, also looking at the centre, and move along MultiCamVideo-like
random trajectories (``mvt4g.camera.trajectories.sample_random_trajectory``). cam01 is static
or moves slowly (a random trajectory scaled to a fifth).

Object paths are built against the reference view so that every scene has the events the
ground truth must handle: one object enters the frame from outside, one leaves it, one
passes in front of another (an occlusion), the rest wander; spheres roll, boxes and
cylinders slide and turn, some objects hop or float and tumble.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.pose import look_at
from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectories import sample_random_trajectory
from mvt4g.synth.raycast import bounding_radius
from mvt4g.synth.scene import Motion, Scene, SceneObject
from mvt4g.synth.textures import Texture

#: Named object colours (display RGB); captions use the names.
COLOURS = {
    "red": (0.85, 0.14, 0.12),
    "orange": (0.95, 0.52, 0.10),
    "yellow": (0.95, 0.84, 0.16),
    "green": (0.18, 0.65, 0.24),
    "blue": (0.14, 0.32, 0.86),
    "purple": (0.52, 0.24, 0.72),
    "pink": (0.96, 0.50, 0.70),
    "cyan": (0.18, 0.78, 0.84),
    "white": (0.93, 0.93, 0.90),
    "black": (0.10, 0.10, 0.11),
}
#: MultiCamVideo's lenses (mm, 23.76 mm sensor; docs/FACTS.md, section 3).
FOCAL_MM = (18.0, 24.0, 35.0, 50.0)
OBJECT_PATTERNS = ("checker", "stripes", "spots", "marble", "mottled")
GROUNDS = {
    "grass": ((0.16, 0.36, 0.10), (0.48, 0.62, 0.22), "dark green", "light green", 1.5),
    "tiles": ((0.46, 0.44, 0.42), (0.80, 0.76, 0.68), "grey", "beige", 0.8),
    "gravel": ((0.36, 0.33, 0.30), (0.66, 0.60, 0.52), "grey", "sand", 0.4),
}
DOME_RADIUS = 80.0
#: Scene width (metres) the reference camera frames at the scene centre.
FRAMED_WIDTH = 6.0


def sample_scene(seed: int | np.random.SeedSequence, *, views: int = 4, frames: int = 21, height: int = 96, width: int = 160,
                 num_objects: int | None = None) -> Scene:  # fmt: skip
    """Draw a random scene with ``views`` cameras (``cam01`` ... ) of ``frames`` frames at ``height x width``.

    Deterministic: the same ``seed`` gives the same scene. ``num_objects`` defaults to 3-5.
    """
    rng = np.random.default_rng(seed)
    focal = float(rng.choice(FOCAL_MM))
    intr = Intrinsics.from_focal_mm(focal, width, height)
    half_width = FRAMED_WIDTH / 2
    distance = half_width * intr.fx / (width / 2) * rng.uniform(0.9, 1.2)  # frames ~6 m at the centre
    centre = np.array([0.0, 0.0, rng.uniform(0.3, 0.7)])
    azimuth = rng.uniform(0, 2 * math.pi)
    ref_base = _orbit_pose(centre, distance, azimuth, math.radians(rng.uniform(3, 20)))
    count = int(num_objects if num_objects is not None else rng.integers(3, 6))
    objects = _sample_objects(rng, count, ref_base, distance, intr)
    scene = Scene(
        objects=objects,
        ground=_ground_texture(rng),
        dome=_dome_texture(rng),
        dome_radius=DOME_RADIUS,
        light_dir=_unit_from_angles(rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(35, 65))),
        ambient=float(rng.uniform(0.35, 0.5)),
        noise_seed=int(rng.integers(2**31)),
        frames=frames,
        height=height,
        width=width,
        focal_mm=focal,
        seed=None,
    )
    poses = {"cam01": _reference_path(rng, scene, ref_base, distance)}
    for v in range(2, views + 1):
        side = 1 if rng.random() < 0.5 else -1
        az = azimuth + side * math.radians(rng.uniform(15, 100))
        dist = distance * rng.uniform(0.8, 1.25)
        target = centre + np.append(rng.normal(0, 0.3, 2), 0.0)
        base = _orbit_pose(target, dist, az, math.radians(rng.uniform(2, 30)))
        poses[f"cam{v:02d}"] = _random_path(rng, scene, base, dist)
    scene.cameras = {name: ViewCameras(width, height, intr.K, c2w) for name, c2w in poses.items()}
    return scene


def _unit_from_angles(azimuth: float, elevation: float) -> tuple[float, float, float]:
    ce = math.cos(elevation)
    return (ce * math.cos(azimuth), ce * math.sin(azimuth), math.sin(elevation))


def _orbit_pose(target: np.ndarray, distance: float, azimuth: float, elevation: float) -> np.ndarray:
    """Camera ``distance`` from ``target`` at ``azimuth`` / ``elevation``, looking at it (z up)."""
    eye = target + distance * np.asarray(_unit_from_angles(azimuth, elevation))
    return look_at(eye, target, up=(0.0, 0.0, 1.0))


def _texture(rng, pattern, a, b, name_a, name_b, scale, noise_scale, noise_amount, octaves) -> Texture:
    direction = rng.normal(size=3)
    return Texture(
        pattern=pattern, color_a=tuple(float(c) for c in a), color_b=tuple(float(c) for c in b),
        name_a=name_a, name_b=name_b, scale=float(scale),
        direction=tuple(float(c) for c in direction / np.linalg.norm(direction)),
        noise_scale=float(noise_scale), noise_amount=float(noise_amount), octaves=int(octaves),
        offset=tuple(float(c) for c in rng.uniform(-100, 100, 3)),
    )  # fmt: skip


def _object_texture(rng) -> Texture:
    names = list(COLOURS)
    main = str(rng.choice(names))
    other = str(rng.choice([n for n in names if n != main]))
    pattern = str(rng.choice(OBJECT_PATTERNS))
    return _texture(rng, pattern, COLOURS[main], COLOURS[other], main, other, rng.uniform(0.15, 0.35),
                    rng.uniform(0.12, 0.3), rng.uniform(0.25, 0.4), 4)  # fmt: skip


def _ground_texture(rng) -> Texture:
    kind = str(rng.choice(list(GROUNDS)))
    a, b, name_a, name_b, scale = GROUNDS[kind]
    jitter = rng.uniform(0.85, 1.15, 3)
    return _texture(rng, kind, np.clip(np.asarray(a) * jitter, 0, 1), b, name_a, name_b, scale * rng.uniform(0.8, 1.25),
                    rng.uniform(0.3, 0.5), rng.uniform(0.35, 0.5), 5)  # fmt: skip


def _dome_texture(rng) -> Texture:
    sky = np.array([0.45, 0.65, 0.92]) * rng.uniform(0.9, 1.05, 3)
    hills = np.array([0.28, 0.40, 0.30]) * rng.uniform(0.8, 1.2, 3)
    return _texture(rng, "sky", np.clip(sky, 0, 1), np.clip(hills, 0, 1), "blue", "green", rng.uniform(8, 16), 3.0, 0.4, 5)


def _sample_objects(rng, count: int, ref_base: np.ndarray, distance: float, intr: Intrinsics) -> list[SceneObject]:
    """Objects whose paths make the reference view see an entry, an exit and an occlusion."""
    # Horizontal right and forward directions of the reference camera, and how far the frame
    # reaches sideways at the scene centre.
    right = ref_base[:3, 0].copy()
    right[2] = 0.0
    right /= np.linalg.norm(right)
    forward = np.array([-right[1], right[0], 0.0])
    if forward @ ref_base[:3, 2] < 0:
        forward = -forward
    half = distance * (intr.width / 2) / intr.fx
    # Ordered so that three objects already give an occlusion and an entry.
    roles = (["occluded", "occluder", "enter", "leave"] + ["wander"] * count)[:count]
    towards_cam = ref_base[:3, 3].copy()
    occluded_at = np.zeros(3)
    out = []
    for role in roles:
        shape = str(rng.choice(["sphere", "box", "cylinder"], p=[0.4, 0.35, 0.25]))
        size = _object_size(rng, shape)
        bound = bounding_radius(shape, size)
        side = 1.0 if rng.random() < 0.5 else -1.0
        if role in ("enter", "leave"):
            outside = side * (half + bound + rng.uniform(0.4, 1.2))
            inside = side * rng.uniform(-0.3, 0.5) * half
            a, b = (outside, inside) if role == "enter" else (inside, outside)
            start = right * a + forward * rng.uniform(-1.5, 1.5)
            velocity = right * (b - a) + forward * rng.uniform(-0.8, 0.8)
        elif role == "occluded":
            start = right * rng.uniform(-0.4, 0.4) * half + forward * rng.uniform(0.8, 1.8)
            velocity = _random_horizontal(rng, rng.uniform(0.2, 0.8))
            occluded_at = start + 0.5 * velocity
            towards_cam = ref_base[:3, 3] - occluded_at
            towards_cam[2] = 0.0
            towards_cam /= np.linalg.norm(towards_cam)
        elif role == "occluder":
            # Crosses the ground line from the camera to the occluded object at mid-clip, 1-2 m in
            # front of it: near enough to hide part of it from an elevated camera.
            velocity = -right * side * rng.uniform(2.0, 4.0)
            start = occluded_at + towards_cam * rng.uniform(1.0, 2.0) - 0.5 * velocity
        else:
            start = right * rng.uniform(-0.8, 0.8) * half + forward * rng.uniform(-1.5, 1.5)
            velocity = _random_horizontal(rng, rng.uniform(0.3, 2.0))
        out.append((shape, size, bound, np.asarray(start, float), np.asarray(velocity, float)))
    return [_make_object(rng, shape, size, bound, start, vel) for shape, size, bound, start, vel in out]


def _random_horizontal(rng, length: float) -> np.ndarray:
    angle = rng.uniform(0, 2 * math.pi)
    return np.array([math.cos(angle), math.sin(angle), 0.0]) * length


def _object_size(rng, shape: str) -> tuple[float, ...]:
    if shape == "sphere":
        return (float(rng.uniform(0.3, 0.65)),)
    if shape == "box":
        return tuple(float(v) for v in rng.uniform(0.2, 0.55, 3))
    return (float(rng.uniform(0.2, 0.45)), float(rng.uniform(0.3, 0.7)))


def _make_object(rng, shape, size, bound, start, velocity) -> SceneObject:
    wobble = np.append(rng.normal(0, 0.15, 2), 0.0)
    floating = shape != "sphere" and rng.random() < 0.3
    hop = float(rng.uniform(0.3, 0.9)) if (not floating and rng.random() < 0.3) else 0.0
    if shape == "sphere":
        rest = size[0]
        # Rolling without slipping: spin axis horizontal and perpendicular to the travel.
        travel = np.linalg.norm(velocity[:2])
        axis = np.array([-velocity[1], velocity[0], 0.0]) if travel > 1e-6 else np.array([1.0, 0.0, 0.0])
        spin, angle0 = travel / size[0], rng.uniform(0, 2 * math.pi)
    elif floating:
        rest = bound + rng.uniform(0.15, 0.8)
        axis = rng.normal(size=3)
        spin, angle0 = rng.choice([-1, 1]) * rng.uniform(1.0, 4.0), rng.uniform(0, 2 * math.pi)
    else:
        rest = size[2] if shape == "box" else size[1]
        axis = np.array([0.0, 0.0, 1.0])
        spin, angle0 = rng.choice([-1, 1]) * rng.uniform(0.3, 3.0), rng.uniform(0, 2 * math.pi)
    motion = Motion(
        start=(float(start[0]), float(start[1]), float(rest)),
        velocity=(float(velocity[0]), float(velocity[1]), 0.0),
        wobble=tuple(float(v) for v in wobble),
        wobble_freq=float(rng.uniform(0.5, 1.5)),
        wobble_phase=float(rng.uniform(0, 2 * math.pi)),
        hop=hop,
        hop_freq=float(rng.integers(1, 4)),
        axis=tuple(float(v) for v in axis / np.linalg.norm(axis)),
        angle0=float(angle0),
        spin=float(spin),
    )
    return SceneObject(shape, tuple(float(s) for s in size), _object_texture(rng), motion)


def _path_ok(scene: Scene, c2w: np.ndarray) -> bool:
    """A camera path stays above the ground, inside the dome and clear of every object."""
    pos = c2w[:, :3, 3]
    if pos[:, 2].min() < 0.25 or np.linalg.norm(pos, axis=1).max() > 0.7 * scene.dome_radius:
        return False
    _, centres = scene.object_poses()
    for k, obj in enumerate(scene.objects):
        if np.linalg.norm(pos - centres[:, k], axis=1).min() < obj.bounding_radius + 0.6:
            return False
    return True


def _random_path(rng, scene: Scene, base: np.ndarray, distance: float, scale: float = 1.0, tries: int = 30) -> np.ndarray:
    """``base @ trajectory`` for a random MultiCamVideo-like trajectory that passes :func:`_path_ok`.

    ``scale`` < 1 shrinks the motion (rotation angles and translations). Falls back to a static
    camera at ``base`` when no draw passes (deterministic either way).
    """
    static = np.repeat(base[None], scene.frames, axis=0)
    if scene.frames < 2:
        return static
    for _ in range(tries):
        rel = sample_random_trajectory(rng, scene.frames, subject_distance=distance)
        if scale != 1.0:
            rel = rel.copy()
            rel[:, :3, :3] = Rotation.from_rotvec(Rotation.from_matrix(rel[:, :3, :3]).as_rotvec() * scale).as_matrix()
            rel[:, :3, 3] *= scale
        c2w = base @ rel
        if _path_ok(scene, c2w):
            return c2w
    # Back the static camera away from the scene (along its view axis) until it is clear.
    for step in range(200):
        moved = static.copy()
        moved[:, :3, 3] -= 0.25 * step * base[:3, 2]
        if _path_ok(scene, moved):
            return moved
    return static


def _reference_path(rng, scene: Scene, base: np.ndarray, distance: float) -> np.ndarray:
    """cam01: static half of the time, otherwise a random trajectory shrunk to a fifth."""
    if rng.random() < 0.5:
        return np.repeat(base[None], scene.frames, axis=0)
    return _random_path(rng, scene, base, distance, scale=0.2)
