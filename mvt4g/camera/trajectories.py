"""Camera trajectories: named presets and random MultiCamVideo-like motions (files: ``trajectory_files``).

A trajectory is a stack of camera-to-world poses ``c2w [F, 4, 4]`` float64 in metres, relative to
its own frame 0: frame 0 is the identity (camera at the origin looking down +z; OpenCV axes x
right, y down, z forward). Every later frame says where the camera is relative to where the
reference video's camera started, which is how ReCamMaster conditions its model.

Presets (``PRESET_NAMES``; defaults in brackets) ::

    pan-left/right      turn in place about the camera's y axis            [20 deg]
    tilt-up/down        turn in place about the camera's x axis            [10 deg]
    zoom-in/out         dolly along the view axis, orientation kept        [2 m]
    translate-up/down/left/right
                        move sideways, keep looking at a point target_depth
                        ahead (inf: keep the orientation instead)          [1 m, 4 m]
    arc-left/right      orbit the point target_depth ahead, looking at it,
                        travelled along the straight chord or the circle   [30 deg, 4 m, chord]
    static              the camera does not move

``speed="constant"`` moves by equal steps; ``speed="ease"`` follows MultiCamVideo's profile
``L_i = L0 + (L1 - L0) (1 - exp(-a i/f)) / (1 - exp(-a))`` (f = frames - 1): fast start,
gentle stop. MultiCamVideo does not publish ``a``; we use ``EASE_RATE = 3`` (82 % of the way at
the middle frame, the last step 5 % of the first), a clearly visible but not abrupt ease-out.

ReCamMaster's 10 presets (``RECAMMASTER_CAMERAS``: cam01 = pan-right ... cam10 = arc-right)
are the defaults here. Our amplitudes are the round values (20 deg, 2 m, ...): ``--angle 30``
means the last frame has turned 30 deg. ReCamMaster's own file stops 80/80.5 of the way (its
frame i sits at i/80.5 of the move, a sampling quirk), 0.6 % short; pass
``span=RECAMMASTER_SPAN`` to reproduce that file exactly (``tests/test_trajectories.py``
compares all 81 frames of all 10 cameras).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from mvt4g.camera.choices import ARC_PATHS, MOTIONS, SPEEDS
from mvt4g.camera.pose import look_at
from mvt4g.errors import CameraError, InputError
from mvt4g.memory import check_trajectory

#: Rate ``a`` of the ease profile (MultiCamVideo leaves it unpublished; see the module docstring).
EASE_RATE = 3.0
#: Fraction of the move ReCamMaster's example file reaches at its last frame.
RECAMMASTER_SPAN = 80.0 / 80.5
#: Frame-0 camera position of ReCamMaster's example file (mvt4g world, metres); the default origin
#: of ``--format recammaster`` exports, so they line up with ReCamMaster's own file.
RECAMMASTER_ORIGIN_M = (33.9, -13.8, 2.4)
#: ReCamMaster's camera index -> our preset name (docs/FACTS.md, section 3).
RECAMMASTER_CAMERAS = {
    "cam01": "pan-right", "cam02": "pan-left", "cam03": "tilt-up", "cam04": "tilt-down",
    "cam05": "zoom-in", "cam06": "zoom-out", "cam07": "translate-up", "cam08": "translate-down",
    "cam09": "arc-left", "cam10": "arc-right",
}  # fmt: skip

_Z = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class TrajectorySpec:
    """A parametric camera motion; :func:`trajectory_from_spec` turns it into poses.

    ``direction`` (camera-0 axes, normalised on creation) means, per ``motion``:
    ``rotate`` the rotation axis (right-hand rule: +y turns right, +x tilts up);
    ``translate`` the direction of travel; ``arc`` the direction the camera starts moving
    (perpendicular to the view axis; the orbit axis is ``direction x z``).
    ``angle`` is in degrees (rotate, arc), ``distance`` in metres (translate). The camera looks at
    ``(0, 0, target_depth)`` (metres) in translate, arc and waypoints motions; ``inf`` keeps
    the frame-0 orientation instead (not for arcs). ``waypoints`` are positions (metres) the
    path passes near after the origin, smoothed into a curve. ``span`` is the fraction of the
    move reached at the last frame (1, or ``RECAMMASTER_SPAN``); ``ease_rate`` is ``a``.
    """

    name: str
    motion: str
    direction: tuple[float, float, float] = (0.0, 0.0, 0.0)
    angle: float = 0.0
    distance: float = 0.0
    target_depth: float = 4.0
    speed: str = "constant"
    path: str = "chord"
    waypoints: tuple[tuple[float, float, float], ...] = ()
    span: float = 1.0
    ease_rate: float = EASE_RATE

    def __post_init__(self) -> None:
        def bad(message: str) -> InputError:
            return InputError(f"trajectory {self.name!r}: {message}")

        if self.motion not in MOTIONS:
            raise bad(f"unknown motion {self.motion!r} (one of {', '.join(MOTIONS)})")
        if self.speed not in SPEEDS:
            raise bad(f"speed must be one of {', '.join(SPEEDS)}, got {self.speed!r}")
        if self.path not in ARC_PATHS:
            raise bad(f"path must be one of {', '.join(ARC_PATHS)}, got {self.path!r}")
        if not (0.0 < self.span <= 1.0):
            raise bad(f"span must be in (0, 1], got {self.span}")
        if not (math.isfinite(self.ease_rate) and self.ease_rate > 0):
            raise bad(f"ease_rate must be a positive number, got {self.ease_rate}")
        if not self.target_depth > 0 or math.isnan(self.target_depth):
            raise bad(f"target_depth must be > 0 metres, got {self.target_depth}")
        if self.motion in ("rotate", "translate", "arc"):
            d = np.asarray(self.direction, dtype=np.float64)
            if d.shape != (3,) or not np.isfinite(d).all() or np.linalg.norm(d) < 1e-9:
                raise bad(f"direction must be a non-zero 3-vector, got {self.direction}")
            object.__setattr__(self, "direction", tuple(float(v) for v in d / np.linalg.norm(d)))
        if self.motion == "rotate" and not (0.0 < self.angle <= 360.0):
            raise bad(f"angle must be in (0, 360] degrees, got {self.angle}")
        if self.motion == "translate" and not (0.0 < self.distance < math.inf):
            raise bad(f"distance must be a positive number of metres, got {self.distance}")
        if self.motion == "arc":
            limit = 180.0 if self.path == "chord" else 360.0
            ok = 0.0 < self.angle < limit if self.path == "chord" else 0.0 < self.angle <= limit
            if not ok:
                raise bad(f"angle must be in (0, {limit:g}{')' if self.path == 'chord' else ']'} degrees "
                          f"for a {self.path} arc, got {self.angle}")  # fmt: skip
            if not math.isfinite(self.target_depth):
                raise bad("an arc needs a finite target_depth (the point it orbits)")
            if abs(float(np.dot(self.direction, _Z))) > 1e-6:
                raise bad("an arc's direction must be perpendicular to the view axis (z)")
        if self.motion == "waypoints":
            w = np.asarray(self.waypoints, dtype=np.float64)
            if w.ndim != 2 or w.shape[1] != 3 or len(w) == 0 or not np.isfinite(w).all():
                raise bad("waypoints must be one or more finite (x, y, z) positions")


@dataclass(frozen=True)
class PresetInfo:
    """A named preset: its spec with default values and the parameters a user may change."""

    spec: TrajectorySpec
    description: str
    parameters: tuple[str, ...]


def _presets() -> dict[str, PresetInfo]:
    rot = ("angle", "speed", "span", "ease_rate")
    zoom = ("distance", "speed", "span", "ease_rate")
    move = ("distance", "target_depth", "speed", "span", "ease_rate")
    arc = ("angle", "target_depth", "speed", "path", "span", "ease_rate")
    table: dict[str, PresetInfo] = {}

    def add(name: str, description: str, parameters: tuple[str, ...], **spec: object) -> None:
        table[name] = PresetInfo(TrajectorySpec(name=name, **spec), description, parameters)  # type: ignore[arg-type]

    add("arc-left", "orbit left around the point 4 m ahead by 30 deg, looking at it", arc,
        motion="arc", direction=(-1.0, 0.0, 0.0), angle=30.0)
    add("arc-right", "orbit right around the point 4 m ahead by 30 deg, looking at it", arc,
        motion="arc", direction=(1.0, 0.0, 0.0), angle=30.0)
    add("zoom-in", "dolly 2 m forward along the view axis (no focal change)", zoom,
        motion="translate", direction=(0.0, 0.0, 1.0), distance=2.0, target_depth=math.inf)
    add("zoom-out", "dolly 2 m backward along the view axis (no focal change)", zoom,
        motion="translate", direction=(0.0, 0.0, -1.0), distance=2.0, target_depth=math.inf)
    for side, vec in (("up", (0.0, -1.0, 0.0)), ("down", (0.0, 1.0, 0.0)),
                      ("left", (-1.0, 0.0, 0.0)), ("right", (1.0, 0.0, 0.0))):
        add(f"translate-{side}", f"move 1 m {side}, looking at the point 4 m ahead", move,
            motion="translate", direction=vec, distance=1.0)
    add("pan-left", "turn left in place by 20 deg (yaw)", rot, motion="rotate", direction=(0.0, -1.0, 0.0), angle=20.0)
    add("pan-right", "turn right in place by 20 deg (yaw)", rot, motion="rotate", direction=(0.0, 1.0, 0.0), angle=20.0)
    add("tilt-up", "tilt up in place by 10 deg (pitch)", rot, motion="rotate", direction=(1.0, 0.0, 0.0), angle=10.0)
    add("tilt-down", "tilt down in place by 10 deg (pitch)", rot, motion="rotate", direction=(-1.0, 0.0, 0.0), angle=10.0)
    add("static", "the camera stays where the reference camera starts", (), motion="static")
    return table  # fmt: skip


PRESETS: dict[str, PresetInfo] = _presets()
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


def describe_presets() -> list[dict[str, object]]:
    """One dict per preset: ``name``, ``description``, ``defaults`` (user-facing parameters with
    their default values) and ``recammaster_camera`` (``"cam01"`` ... or ``None``)."""
    cams = {preset: cam for cam, preset in RECAMMASTER_CAMERAS.items()}
    rows = []
    for name, info in PRESETS.items():
        shown = [p for p in info.parameters if p not in ("span", "ease_rate")]
        rows.append({
            "name": name,
            "description": info.description,
            "defaults": {p: getattr(info.spec, p) for p in shown},
            "recammaster_camera": cams.get(name),
        })  # fmt: skip
    return rows


def preset_spec(name: str, **overrides: object) -> TrajectorySpec:
    """The spec of preset ``name`` with ``overrides`` applied (``None`` values are ignored).

    Raises :class:`InputError` for an unknown name (the message lists the valid ones) and for a
    parameter the preset does not take (e.g. ``distance`` for ``pan-left``).
    """
    info = PRESETS.get(name)
    if info is None:
        raise InputError(f"unknown trajectory preset {name!r} (valid: {', '.join(PRESET_NAMES)})")
    given = {k: v for k, v in overrides.items() if v is not None}
    extra = sorted(set(given) - set(info.parameters))
    if extra:
        takes = [p for p in info.parameters if p not in ("span", "ease_rate")]
        raise InputError(
            f"preset {name!r} does not take {', '.join(extra)} "
            f"(it takes: {', '.join(takes) if takes else 'no parameters'})"
        )
    return dataclasses.replace(info.spec, **given)  # type: ignore[arg-type]


def preset_trajectory(name: str, frames: int = 81, **overrides: object) -> np.ndarray:
    """Poses ``[frames, 4, 4]`` of preset ``name`` (see :func:`preset_spec` for ``overrides``).

    >>> preset_trajectory("arc-left", 81, angle=45, path="circle").shape
    (81, 4, 4)
    """
    return trajectory_from_spec(preset_spec(name, **overrides), frames)


def progress(frames: int, speed: str = "constant", ease_rate: float = EASE_RATE, span: float = 1.0) -> np.ndarray:
    """Fraction of the move done at each frame, ``[frames]``: 0 at frame 0, ``span`` at the last."""
    frames = _check_frames(frames)
    u = np.arange(frames, dtype=np.float64) / (frames - 1)
    if speed == "constant":
        s = u
    elif speed == "ease":
        s = -np.expm1(-ease_rate * u) / -np.expm1(-ease_rate)
    else:
        raise InputError(f"speed must be one of {', '.join(SPEEDS)}, got {speed!r}")
    return span * s


def trajectory_from_spec(spec: TrajectorySpec, frames: int = 81) -> np.ndarray:
    """Camera-to-world poses ``[frames, 4, 4]`` (frame 0 = identity) of one spec."""
    s = progress(frames, spec.speed, spec.ease_rate, spec.span)
    out = np.tile(np.eye(4), (len(s), 1, 1))
    d = np.asarray(spec.direction)
    target = np.array([0.0, 0.0, spec.target_depth])
    if spec.motion == "static":
        return out
    if spec.motion == "rotate":
        out[:, :3, :3] = Rotation.from_rotvec(np.outer(math.radians(spec.angle) * s, d)).as_matrix()
        return out
    if spec.motion == "translate":
        positions = np.outer(s * spec.distance, d)
    elif spec.motion == "arc":
        # Start offset from the target is (0, 0, -depth); orbit it about direction x z.
        axis = np.cross(d, _Z)
        offset = -target
        if spec.path == "circle":
            positions = target + Rotation.from_rotvec(np.outer(math.radians(spec.angle) * s, axis)).apply(offset)
        else:
            end = target + Rotation.from_rotvec(math.radians(spec.angle) * axis).apply(offset)
            positions = np.outer(s, end)
    else:
        positions = _along_smoothed_path(np.vstack([np.zeros(3), np.asarray(spec.waypoints)]), s)
    out[:, :3, 3] = positions
    if math.isfinite(spec.target_depth):
        try:
            out[1:] = np.stack([look_at(p, target) for p in positions[1:]])
        except CameraError as exc:
            raise InputError(f"trajectory {spec.name!r}: the camera reaches its look-at target ({exc})") from None
    return out


def _along_smoothed_path(points: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Positions ``[len(s), 3]`` at arc-length fractions ``s`` of a corner-cut (Chaikin) polyline."""
    for _ in range(5):
        cut = np.stack([0.75 * points[:-1] + 0.25 * points[1:], 0.25 * points[:-1] + 0.75 * points[1:]], 1)
        points = np.vstack([points[:1], cut.reshape(-1, 3), points[-1:]])
    length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    return np.stack([np.interp(s * length[-1], length, points[:, k]) for k in range(3)], axis=1)


def _check_frames(frames: object) -> int:
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 2:
        raise InputError(f"a trajectory needs frames >= 2 (frame 0 is the reference pose), got {frames!r}")
    check_trajectory(int(frames))
    return int(frames)


# --- random trajectories (training data for `mvt4g synth`) -------------------------------------

#: Kinds of random trajectory and how often :func:`sample_random_spec` picks each.
RANDOM_KINDS = {"pan": 0.2, "tilt": 0.15, "translate": 0.2, "arc": 0.25, "waypoints": 0.15, "static": 0.05}


def sample_random_spec(rng: object, kind: str | None = None, *, subject_distance: float = 4.0) -> TrajectorySpec:
    """Draw a MultiCamVideo-like camera motion (docs/FACTS.md, section 3); ``rng``: a numpy Generator or seed.

    Ranges (D = ``subject_distance``, the depth of the point the camera looks at):
    pan 5-45 deg left/right; tilt 5-30 deg up/down; translate 0.25-1 D left/right/up/down
    looking at the subject, or forward (0.25-0.75 D, so it never reaches the subject) / backward
    (0.25-1 D) keeping the orientation; arc 15-75 deg left/right about the subject, chord or
    circle; waypoints: 1-3 points, each 0.25-0.5 D from the previous and never closer than
    0.5 D in depth to the subject, smoothed, looking at the subject; static. Half of the motions
    move at constant speed, half ease out.
    """
    rng = np.random.default_rng(rng)  # type: ignore[arg-type]
    kinds = list(RANDOM_KINDS)
    if kind is None:
        kind = str(rng.choice(kinds, p=np.array(list(RANDOM_KINDS.values()))))
    if kind not in RANDOM_KINDS:
        raise InputError(f"unknown random trajectory kind {kind!r} (valid: {', '.join(kinds)})")
    if not (math.isfinite(subject_distance) and subject_distance > 0):
        raise InputError(f"subject_distance must be > 0 metres, got {subject_distance}")
    depth = float(subject_distance)
    speed = "ease" if rng.random() < 0.5 else "constant"
    common = {"speed": speed, "target_depth": depth}
    side = int(rng.integers(2))
    if kind == "pan":
        axis = (0.0, 1.0 if side else -1.0, 0.0)
        return TrajectorySpec(f"random-pan-{'right' if side else 'left'}", "rotate", axis, float(rng.uniform(5, 45)), **common)
    if kind == "tilt":
        axis = (1.0 if side else -1.0, 0.0, 0.0)
        return TrajectorySpec(f"random-tilt-{'up' if side else 'down'}", "rotate", axis, float(rng.uniform(5, 30)), **common)
    if kind == "arc":
        direction = (1.0 if side else -1.0, 0.0, 0.0)
        path = "circle" if rng.random() < 0.5 else "chord"
        name = f"random-arc-{'right' if side else 'left'}"
        return TrajectorySpec(name, "arc", direction, float(rng.uniform(15, 75)), path=path, **common)
    if kind == "translate":
        sides = {"left": (-1, 0, 0), "right": (1, 0, 0), "up": (0, -1, 0), "down": (0, 1, 0),
                 "forward": (0, 0, 1), "backward": (0, 0, -1)}  # fmt: skip
        where = str(rng.choice(list(sides)))
        top = 0.75 if where == "forward" else 1.0
        target = math.inf if where in ("forward", "backward") else depth
        distance = float(rng.uniform(0.25, top)) * depth
        vec = tuple(float(v) for v in sides[where])
        return TrajectorySpec(f"random-translate-{where}", "translate", vec, distance=distance, speed=speed,
                              target_depth=target)  # fmt: skip
    if kind == "waypoints":
        points, here = [], np.zeros(3)
        for _ in range(int(rng.integers(1, 4))):
            step = rng.normal(size=3) * np.array([1.0, 0.6, 0.5])
            here = here + step / np.linalg.norm(step) * rng.uniform(0.25, 0.5) * depth
            here[2] = min(here[2], 0.5 * depth)
            points.append(tuple(float(v) for v in here))
        return TrajectorySpec("random-waypoints", "waypoints", waypoints=tuple(points), **common)
    return TrajectorySpec("random-static", "static", speed=speed, target_depth=depth)


def sample_random_trajectory(
    rng: object, frames: int = 81, kind: str | None = None, *, subject_distance: float = 4.0
) -> np.ndarray:
    """Poses ``[frames, 4, 4]`` of :func:`sample_random_spec` (same ``rng`` -> same trajectory)."""
    return trajectory_from_spec(sample_random_spec(rng, kind, subject_distance=subject_distance), frames)


# --- summaries, files, resampling --------------------------------------------------------------
