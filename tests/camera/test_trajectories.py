"""Trajectory presets, random trajectories, trajectory files and plots (mvt4g.camera.trajectories).

References are independent of the code under test: ReCamMaster's own camera file, closed-form
poses written out by hand (rotation matrices about one axis, points on a circle), and geometric
invariants checked with hypothesis.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.camera.converters import parse_unreal_matrix, read_multicamvideo_extrinsics
from mvt4g.camera.pose import relative_to
from mvt4g.camera.trajectories import (
    EASE_RATE,
    PRESET_NAMES,
    PRESETS,
    RANDOM_KINDS,
    RECAMMASTER_CAMERAS,
    RECAMMASTER_SPAN,
    describe_presets,
    preset_trajectory,
    progress,
    sample_random_spec,
    sample_random_trajectory,
)
from mvt4g.camera.trajectory_files import (
    load_trajectory_file,
    read_trajectory,
    recammaster_json,
    resample_trajectory,
    trajectory_json,
    trajectory_summary,
)
from mvt4g.errors import CameraError, InputError

SHARED = Path(__file__).resolve().parents[3] / "shared"
RECAM_FILE = SHARED / "data" / "recammaster_example" / "camera_extrinsics.json"
needs_recam_file = pytest.mark.skipif(not RECAM_FILE.exists(), reason="../shared/data/recammaster_example is absent")


def rot_y(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def angle_between(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Geodesic angle (deg) between rotation stacks [..., 3, 3], from ||Ra - Rb||_F = 2 sqrt(2) sin(angle / 2)
    (stable for small angles, unlike the arccos of the trace)."""
    dist = np.linalg.norm(np.asarray(ra) - np.asarray(rb), axis=(-2, -1))
    return np.degrees(2.0 * np.arcsin(np.clip(dist / (2.0 * math.sqrt(2.0)), 0.0, 1.0)))


def assert_proper_poses(c2w: np.ndarray) -> None:
    rot = c2w[:, :3, :3]
    assert np.abs(np.swapaxes(rot, 1, 2) @ rot - np.eye(3)).max() < 1e-9
    assert np.allclose(np.linalg.det(rot), 1.0, atol=1e-9)
    assert np.array_equal(c2w[:, 3], np.tile([0.0, 0.0, 0.0, 1.0], (len(c2w), 1)))
    assert np.array_equal(c2w[0], np.eye(4))


# --- ReCamMaster's presets ----------------------------------------------------------------------


@needs_recam_file
@pytest.mark.parametrize("camera", sorted(RECAMMASTER_CAMERAS))
def test_span_reproduces_recammaster_file_frame_by_frame(camera):
    ref = read_multicamvideo_extrinsics(RECAM_FILE)[camera]
    ref = relative_to(ref, ref[0])
    mine = preset_trajectory(RECAMMASTER_CAMERAS[camera], 81, span=RECAMMASTER_SPAN)
    # The file stores centimetres with 6 significant digits at a 33.9 m origin: ~1e-4 m.
    assert np.abs(mine[:, :3, 3] - ref[:, :3, 3]).max() < 2e-4
    assert angle_between(mine[:, :3, :3], ref[:, :3, :3]).max() < 0.005


@needs_recam_file
@pytest.mark.parametrize("camera", sorted(RECAMMASTER_CAMERAS))
def test_default_presets_within_one_percent_of_recammaster(camera):
    ref = read_multicamvideo_extrinsics(RECAM_FILE)[camera]
    ref = relative_to(ref, ref[0])
    mine = preset_trajectory(RECAMMASTER_CAMERAS[camera])
    move = np.linalg.norm(ref[-1, :3, 3])
    turn = angle_between(ref[-1, :3, :3], np.eye(3))
    if move > 0:
        assert np.linalg.norm(mine[:, :3, 3] - ref[:, :3, 3], axis=1).max() <= 0.01 * move
    if turn > 0:
        assert angle_between(mine[:, :3, :3], ref[:, :3, :3]).max() <= 0.01 * turn
    assert move > 0 or turn > 0


@needs_recam_file
def test_recammaster_file_amplitudes_are_round_values_times_80_over_80_5():
    cams = read_multicamvideo_extrinsics(RECAM_FILE)
    rel = {c: relative_to(p, p[0])[-1] for c, p in cams.items()}
    k = 80 / 80.5
    assert angle_between(rel["cam01"][:3, :3], np.eye(3)) == pytest.approx(20 * k, abs=1e-3)
    assert angle_between(rel["cam03"][:3, :3], np.eye(3)) == pytest.approx(10 * k, abs=1e-3)
    assert rel["cam05"][2, 3] == pytest.approx(2 * k, abs=1e-4)
    assert rel["cam07"][:3, 3] == pytest.approx([0, -k, 0], abs=1e-4)
    assert rel["cam09"][:3, 3] == pytest.approx([-4 * 0.5 * k, 0, (4 - 4 * math.cos(math.pi / 6)) * k], abs=1e-4)


def test_presets_against_closed_forms():
    f = 81
    pan = preset_trajectory("pan-right", f)
    for i in (1, 40, 80):
        assert np.allclose(pan[i, :3, :3], rot_y(20 * i / 80), atol=1e-12)
    assert np.allclose(preset_trajectory("pan-left")[-1, :3, :3], rot_y(-20), atol=1e-12)
    assert np.allclose(preset_trajectory("tilt-up")[-1, :3, :3], rot_x(10), atol=1e-12)
    assert preset_trajectory("tilt-up")[-1, 1, 2] < 0  # looks towards -y: up in OpenCV axes
    assert np.allclose(preset_trajectory("tilt-down")[-1, :3, :3], rot_x(-10), atol=1e-12)
    zoom = preset_trajectory("zoom-out", f, distance=3.0)
    assert np.allclose(zoom[:, :3, :3], np.eye(3))
    assert np.allclose(zoom[:, :3, 3], np.outer(np.arange(f) / 80, [0, 0, -3.0]), atol=1e-12)
    up = preset_trajectory("translate-up", f)[-1]
    assert np.allclose(up[:3, 3], [0, -1, 0]) and np.allclose(up[:3, :3], rot_x(-math.degrees(math.atan2(1, 4))))  # looks down at it
    right = preset_trajectory("translate-right", f)[-1]
    assert np.allclose(right[:3, 3], [1, 0, 0]) and np.allclose(right[:3, :3], rot_y(-math.degrees(math.atan2(1, 4))))
    keep = preset_trajectory("translate-left", f, target_depth=math.inf)
    assert np.allclose(keep[:, :3, :3], np.eye(3)) and np.allclose(keep[-1, :3, 3], [-1, 0, 0])
    arc = preset_trajectory("arc-right", f, angle=50, target_depth=3.0)[-1]
    end = [3 * math.sin(math.radians(50)), 0, 3 - 3 * math.cos(math.radians(50))]
    assert np.allclose(arc[:3, 3], end) and np.allclose(arc[:3, :3], rot_y(-50))
    circ = preset_trajectory("arc-left", 5, angle=80, path="circle")
    for i, phi in enumerate(np.linspace(0, 80, 5)):
        p = [-4 * math.sin(math.radians(phi)), 0, 4 - 4 * math.cos(math.radians(phi))]
        assert np.allclose(circ[i, :3, 3], p) and np.allclose(circ[i, :3, :3], rot_y(phi))
    assert np.array_equal(preset_trajectory("static", 7), np.tile(np.eye(4), (7, 1, 1)))


def test_ease_profile_is_multicamvideos_formula():
    f = 81
    i = np.arange(f)
    want = (1 - np.exp(-EASE_RATE * i / (f - 1))) / (1 - np.exp(-EASE_RATE))
    assert np.allclose(progress(f, "ease"), want, atol=1e-14)
    zoom = preset_trajectory("zoom-in", f, speed="ease")
    assert np.allclose(zoom[:, 2, 3], 2.0 * want, atol=1e-12)


# --- invariants ---------------------------------------------------------------------------------


@st.composite
def presets_with_overrides(draw):
    name = draw(st.sampled_from(PRESET_NAMES))
    params = PRESETS[name].parameters
    ov = {}
    if "speed" in params:
        ov["speed"] = draw(st.sampled_from(["constant", "ease"]))
    if "path" in params:
        ov["path"] = draw(st.sampled_from(["chord", "circle"]))
    if "angle" in params:
        top = 170.0 if ov.get("path", "circle") == "chord" else 360.0
        ov["angle"] = draw(st.floats(0.5, top))
    if "distance" in params:
        ov["distance"] = draw(st.floats(0.05, 5.0))
    if "target_depth" in params:
        ov["target_depth"] = draw(st.floats(0.5, 20.0))
    return name, ov, draw(st.integers(2, 90))


@settings(max_examples=120, deadline=None)
@given(presets_with_overrides())
def test_presets_are_proper_rigid_motions_from_identity(case):
    name, ov, frames = case
    c2w = preset_trajectory(name, frames, **ov)
    assert c2w.shape == (frames, 4, 4) and c2w.dtype == np.float64
    assert_proper_poses(c2w)


@settings(max_examples=120, deadline=None)
@given(presets_with_overrides())
def test_constant_speed_moves_by_equal_steps_and_reaches_the_amplitude(case):
    name, ov, frames = case
    ov["speed"] = "constant" if "speed" in PRESETS[name].parameters else None
    spec_angle = ov.get("angle", PRESETS[name].spec.angle)
    c2w = preset_trajectory(name, frames, **ov)
    steps = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1)
    turns = angle_between(c2w[:-1, :3, :3], c2w[1:, :3, :3])
    assert np.ptp(steps) < 1e-9 * max(1.0, steps.max())
    motion = PRESETS[name].spec.motion
    if motion == "rotate":
        assert np.ptp(turns) < 1e-5
        assert angle_between(c2w[-1, :3, :3], np.eye(3)) == pytest.approx(min(spec_angle, 360 - spec_angle), abs=1e-5)
    if motion == "translate":
        assert np.linalg.norm(c2w[-1, :3, 3]) == pytest.approx(ov.get("distance", PRESETS[name].spec.distance))
    if motion == "arc" and ov.get("path") == "circle":
        assert np.ptp(turns) < 1e-5
        depth = ov.get("target_depth", 4.0)
        radius = np.linalg.norm(c2w[:, :3, 3] - [0, 0, depth], axis=1)
        assert np.allclose(radius, depth)


@settings(max_examples=80, deadline=None)
@given(presets_with_overrides())
def test_arcs_and_translates_keep_looking_at_the_target_without_roll(case):
    name, ov, frames = case
    motion = PRESETS[name].spec.motion
    if "target_depth" not in PRESETS[name].parameters:
        return
    c2w = preset_trajectory(name, frames, **ov)
    target = np.array([0.0, 0.0, ov.get("target_depth", 4.0)])
    to_target = target - c2w[:, :3, 3]
    to_target /= np.linalg.norm(to_target, axis=1, keepdims=True)
    assert np.allclose(c2w[:, :3, 2], to_target, atol=1e-9)
    # No roll: the camera's x axis stays perpendicular to the world's vertical (y) axis.
    assert np.abs(c2w[:, 1, 0]).max() < 1e-9
    if motion == "arc":
        assert np.abs(c2w[:, 1, 3]).max() < 1e-12  # horizontal orbits


@settings(max_examples=80, deadline=None)
@given(presets_with_overrides())
def test_ease_progress_is_monotone_and_slows_down(case):
    name, ov, frames = case
    if "speed" not in PRESETS[name].parameters or frames < 3:
        return
    ov["speed"] = "ease"
    c2w = preset_trajectory(name, frames, **ov)
    if PRESETS[name].spec.motion == "rotate":
        done = np.radians(np.asarray(ov["angle"])) * progress(frames, "ease")
        assert np.allclose(angle_between(c2w[:, :3, :3], np.eye(3)), np.degrees(np.minimum(done, 2 * np.pi - done)), atol=1e-5)
        steps = angle_between(c2w[:-1, :3, :3], c2w[1:, :3, :3])
    else:
        steps = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1)
    assert (steps > 0).all()
    assert (np.diff(steps) < 1e-9).all()  # every step no longer than the one before
    assert steps[-1] < steps[0]


# --- validation ---------------------------------------------------------------------------------


def test_unknown_preset_lists_the_valid_names():
    with pytest.raises(InputError) as err:
        preset_trajectory("arc-up")
    message = str(err.value)
    assert "\n" not in message and all(n in message for n in PRESET_NAMES)


@pytest.mark.parametrize(
    "name, kwargs, fragment",
    [
        ("pan-left", {"distance": 1.0}, "does not take distance"),
        ("static", {"angle": 5.0}, "no parameters"),
        ("zoom-in", {"target_depth": 3.0}, "does not take target_depth"),
        ("arc-left", {"angle": 180.0}, "(0, 180)"),
        ("arc-left", {"angle": 400.0, "path": "circle"}, "(0, 360]"),
        ("pan-right", {"angle": -5.0}, "angle"),
        ("pan-right", {"angle": float("nan")}, "angle"),
        ("translate-up", {"distance": 0.0}, "distance"),
        ("arc-right", {"target_depth": math.inf}, "finite target_depth"),
        ("tilt-up", {"speed": "fast"}, "speed"),
        ("arc-left", {"path": "spiral"}, "path"),
    ],
)
def test_bad_overrides_are_one_line_input_errors(name, kwargs, fragment):
    with pytest.raises(InputError) as err:
        preset_trajectory(name, **kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("frames", [1, 0, -3, 2.5, True])
def test_frames_must_be_an_integer_of_at_least_two(frames):
    with pytest.raises(InputError, match="frames >= 2"):
        preset_trajectory("pan-left", frames)


def test_describe_presets_lists_every_preset_with_its_defaults():
    rows = describe_presets()
    assert [r["name"] for r in rows] == list(PRESET_NAMES)
    by_name = {r["name"]: r for r in rows}
    assert by_name["arc-left"]["defaults"] == {"angle": 30.0, "target_depth": 4.0, "speed": "constant", "path": "chord"}
    assert by_name["pan-right"]["recammaster_camera"] == "cam01" and by_name["static"]["defaults"] == {}
    json.dumps(rows, allow_nan=False)  # the table is valid JSON (no inf defaults shown)


# --- random trajectories ------------------------------------------------------------------------


def test_random_specs_stay_in_the_documented_ranges():
    rng = np.random.default_rng(0)
    specs = [sample_random_spec(rng) for _ in range(600)]
    kinds = {s.name.split("-")[1] for s in specs}
    assert kinds == set(RANDOM_KINDS)
    ease = np.mean([s.speed == "ease" for s in specs])
    assert 0.4 < ease < 0.6
    for s in specs:
        kind = s.name.split("-")[1]
        if kind == "pan":
            assert 5 <= s.angle <= 45 and abs(s.direction[1]) == 1
        elif kind == "tilt":
            assert 5 <= s.angle <= 30 and abs(s.direction[0]) == 1
        elif kind == "arc":
            assert 15 <= s.angle <= 75 and s.target_depth == 4.0
        elif kind == "translate":
            top = 0.75 if s.name.endswith("forward") else 1.0
            assert 1.0 <= s.distance <= top * 4.0
        elif kind == "waypoints":
            w = np.asarray(s.waypoints)
            assert 1 <= len(w) <= 3 and (w[:, 2] <= 2.0).all()
            hops = np.linalg.norm(np.diff(np.vstack([np.zeros(3), w]), axis=0), axis=1)
            assert (hops <= 0.5 * 4.0 + 1e-9).all()


@pytest.mark.parametrize("kind", list(RANDOM_KINDS))
def test_random_trajectories_are_valid_and_reproducible(kind):
    for seed in range(8):
        a = sample_random_trajectory(np.random.default_rng(seed), 33, kind, subject_distance=3.0)
        b = sample_random_trajectory(seed, 33, kind, subject_distance=3.0)
        assert np.array_equal(a, b)
        assert_proper_poses(a)
        if kind != "static":
            assert trajectory_summary(a)["path_length_m"] + trajectory_summary(a)["rotation_deg"] > 0.1
        if kind in ("arc", "waypoints"):
            # They keep the subject 3 m ahead in view: its direction is the optical axis.
            to_subject = np.array([0, 0, 3.0]) - a[:, :3, 3]
            assert np.allclose(a[:, :3, 2], to_subject / np.linalg.norm(to_subject, axis=1, keepdims=True))


def test_random_kind_must_be_known():
    with pytest.raises(InputError, match="pan"):
        sample_random_trajectory(0, 10, "spin")


# --- files --------------------------------------------------------------------------------------


def test_trajectory_json_round_trip(tmp_path):
    c2w = preset_trajectory("arc-left", 21, angle=40, path="circle", speed="ease")
    obj = trajectory_json("arc-left", c2w)
    assert list(obj) == ["name", "convention", "pose", "units", "frames", "c2w"]
    assert (obj["convention"], obj["pose"], obj["units"], obj["frames"]) == ("opencv", "c2w", "m", 21)
    assert obj["c2w"][0] == np.eye(4).tolist()
    path = tmp_path / "t.json"
    path.write_text(json.dumps(obj))
    name, back = load_trajectory_file(path)
    assert name == "arc-left" and np.allclose(back, c2w, atol=1e-11)


def test_trajectory_file_with_absolute_poses_is_made_relative(tmp_path):
    rel = preset_trajectory("translate-down", 9)
    base = np.eye(4)
    base[:3, :3] = rot_x(30) @ rot_y(70)
    base[:3, 3] = [5.0, -2.0, 1.0]
    path = tmp_path / "abs.json"
    path.write_text(json.dumps(trajectory_json("x", base @ rel)))
    assert np.allclose(read_trajectory(path), rel, atol=1e-9)


@pytest.mark.parametrize(
    "mutate, error, fragment",
    [
        (lambda o: o["c2w"][3][1].__setitem__(2, float("nan")), CameraError, "NaN"),
        (lambda o: o["c2w"][2][0].__setitem__(0, 1.2), CameraError, "orthonormal"),
        (lambda o: o.__setitem__("convention", "opengl"), CameraError, "convention"),
        (lambda o: o.__setitem__("units", "cm"), CameraError, "units"),
        (lambda o: o.__setitem__("frames", 7), CameraError, "frames says 7"),
        (lambda o: o.update(c2w=o["c2w"][:1], frames=1), CameraError, "at least 2"),
        (lambda o: o.__setitem__("c2w", [[1, 2], [3, 4]]), CameraError, "shape"),
    ],
)
def test_invalid_trajectory_files_are_one_line_errors(tmp_path, mutate, error, fragment):
    obj = trajectory_json("t", preset_trajectory("pan-left", 5))
    mutate(obj)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(error) as err:
        read_trajectory(path)
    message = str(err.value)
    assert fragment in message and str(path) in message and "\n" not in message


def test_non_trajectory_and_missing_files(tmp_path):
    (tmp_path / "a.json").write_text('{"hello": 1}')
    (tmp_path / "b.json").write_text("not json")
    for name, fragment in (("a.json", "not a trajectory file"), ("b.json", "not a JSON file"), ("c.json", "no such")):
        with pytest.raises(InputError, match=fragment):
            read_trajectory(tmp_path / name)


def test_recammaster_export_round_trips(tmp_path):
    c2w = preset_trajectory("arc-right", 81, angle=60, path="circle", speed="ease")
    path = tmp_path / "camera_extrinsics.json"
    path.write_text(json.dumps(recammaster_json(c2w)))
    cams = read_multicamvideo_extrinsics(path)
    assert list(cams) == ["cam01"]
    back = relative_to(cams["cam01"], cams["cam01"][0])
    assert np.abs(back[:, :3, 3] - c2w[:, :3, 3]).max() < 2e-4
    assert angle_between(back[:, :3, :3], c2w[:, :3, :3]).max() < 0.005
    assert np.allclose(read_trajectory(path), back)  # one camera: no --camera needed


@needs_recam_file
def test_recammaster_export_matches_recammasters_own_file():
    ours = recammaster_json(preset_trajectory("arc-left", span=RECAMMASTER_SPAN), camera="cam09")
    theirs = json.loads(RECAM_FILE.read_text())
    for frame in ("frame0", "frame1", "frame40", "frame80"):
        a = parse_unreal_matrix(ours[frame]["cam09"])
        b = parse_unreal_matrix(theirs[frame]["cam09"])
        assert np.allclose(a[:3], b[:3], atol=2e-5) and np.allclose(a[3], b[3], atol=0.02)  # cm


@needs_recam_file
def test_reading_recammasters_file_needs_a_camera():
    with pytest.raises(InputError, match="cam01, cam02") as err:
        read_trajectory(RECAM_FILE)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="no camera 'cam11'"):
        read_trajectory(RECAM_FILE, camera="cam11")
    name, c2w = load_trajectory_file(RECAM_FILE, camera="cam09")
    assert name == "camera_extrinsics:cam09" and c2w.shape == (81, 4, 4)
    assert_proper_poses(c2w)


def test_resample_matches_generating_at_the_new_count():
    for name in ("pan-right", "tilt-down", "zoom-out"):
        assert np.allclose(resample_trajectory(preset_trajectory(name, 81), 21), preset_trajectory(name, 21), atol=1e-12)
    arc = resample_trajectory(preset_trajectory("arc-left", 81), 33)
    ref = preset_trajectory("arc-left", 33)
    assert np.abs(arc - ref).max() < 1e-3
    assert_proper_poses(arc)
    same = preset_trajectory("arc-left", 81)
    assert np.array_equal(resample_trajectory(same, 81), same)
    with pytest.raises(InputError):
        resample_trajectory(same, 1)


def test_trajectory_summary_numbers():
    s = trajectory_summary(preset_trajectory("arc-left", 81, angle=60, path="circle"))
    assert s["frames"] == 81 and s["rotation_deg"] == pytest.approx(60)
    assert s["position_m"] == pytest.approx([-4 * math.sin(math.pi / 3), 0, 4 - 4 * math.cos(math.pi / 3)])
    chord = 2 * 4 * math.sin(math.radians(60 / 80) / 2)
    assert s["path_length_m"] == pytest.approx(80 * chord) and s["max_step_m"] == pytest.approx(chord)
    assert s["max_step_deg"] == pytest.approx(60 / 80)


# --- plot ---------------------------------------------------------------------------------------


def test_plot_writes_an_image_atomically(tmp_path):
    from matplotlib.image import imread

    from mvt4g.camera.intrinsics import Intrinsics
    from mvt4g.camera.plot import frustum_corners, plot_trajectories

    out = tmp_path / "t.png"
    trajs = {"arc-left": preset_trajectory("arc-left", 41), "pan-right": preset_trajectory("pan-right", 41)}
    assert plot_trajectories(trajs, out) == out
    image = imread(out)
    assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 800
    assert image[..., :3].std() > 0.05  # something was drawn
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.png"]  # no temp file left behind
    with pytest.raises(InputError, match=".png"):
        plot_trajectories(trajs, tmp_path / "t.jpg")
    with pytest.raises(InputError):
        plot_trajectories({}, tmp_path / "e.png")
    corners = frustum_corners(Intrinsics(100.0, 100.0, 50.0, 40.0, 100, 80), 2.0)
    assert np.allclose(corners, [[-1, -0.8, 2], [1, -0.8, 2], [1, 0.8, 2], [-1, 0.8, 2]])
