import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from mvt4g.camera.converters import (
    c2w_to_unreal,
    dycheck_camera_dict,
    parse_unreal_matrix,
    read_dycheck_camera,
    read_multicamvideo_extrinsics,
    recammaster_extrinsics_dict,
    unreal_base_pose,
    unreal_to_c2w,
)
from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.pose import invert_pose, relative_to
from mvt4g.errors import CameraError, InputError


def rotation_deg(pose):
    return np.degrees(np.arccos(np.clip((np.trace(pose[:3, :3]) - 1) / 2, -1, 1)))


def test_recammaster_file_matches_its_documented_presets(shared_data):
    poses = read_multicamvideo_extrinsics(shared_data / "recammaster_example" / "camera_extrinsics.json")
    assert sorted(poses) == [f"cam{i:02d}" for i in range(1, 11)]
    k = 80 / 80.5  # ReCamMaster's amplitudes are round values x 80/80.5 (docs/FACTS.md, section 3)
    rel = {cam: relative_to(p, p[0])[-1] for cam, p in poses.items()}
    for cam, p in poses.items():
        assert p.shape == (81, 4, 4)
        assert np.allclose(np.linalg.det(p[:, :3, :3]), 1.0)  # proper rotations after the world flip
    assert rotation_deg(rel["cam01"]) == pytest.approx(20 * k, abs=1e-3)
    assert rotation_deg(rel["cam03"]) == pytest.approx(10 * k, abs=1e-3)
    np.testing.assert_allclose(rel["cam05"][:3, 3], [0, 0, 2 * k], atol=1e-4)  # zoom in = dolly forward
    np.testing.assert_allclose(rel["cam06"][:3, 3], [0, 0, -2 * k], atol=1e-4)
    np.testing.assert_allclose(rel["cam07"][:3, 3], [0, -1 * k, 0], atol=1e-4)  # up is -y in OpenCV
    # Arc left: 30 deg orbit about a point 4 m ahead, ending on the left (-x).
    assert rel["cam09"][0, 3] == pytest.approx(-4 * np.sin(np.radians(30 * k)), abs=2e-3)
    assert rotation_deg(rel["cam09"]) == pytest.approx(30 * k, abs=1e-2)
    # Pan right turns the forward axis towards +x (the image's right).
    assert rel["cam01"][0, 2] > 0
    # Tilt up turns the forward axis towards -y (the image's up).
    assert rel["cam03"][1, 2] < 0


def test_unreal_identity_camera_looks_along_unreal_x():
    base = unreal_base_pose()
    # Unreal x (forward) stays x in the flipped world; Unreal up (z) is the OpenCV -y axis.
    np.testing.assert_allclose(base[:3, 2], [1, 0, 0])
    np.testing.assert_allclose(base[:3, 1], [0, 0, -1])
    assert np.linalg.det(base[:3, :3]) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1),
       st.lists(st.floats(-50, 50), min_size=3, max_size=3))
def test_unreal_round_trip(q, t):
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.from_quat(q).as_matrix()
    c2w[:3, 3] = t
    np.testing.assert_allclose(unreal_to_c2w(c2w_to_unreal(c2w)), c2w, atol=1e-9)


def test_recammaster_writer_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rel = np.stack([np.eye(4)] + [np.eye(4) for _ in range(4)])
    for i in range(1, 5):
        rel[i, :3, :3] = Rotation.from_rotvec(rng.normal(size=3) * 0.2).as_matrix()
        rel[i, :3, 3] = rng.normal(size=3)
    data = recammaster_extrinsics_dict({"cam01": unreal_base_pose() @ rel}, origin_m=(33.9, -13.8, 2.4))
    path = tmp_path / "camera_extrinsics.json"
    path.write_text(json.dumps(data))
    back = read_multicamvideo_extrinsics(path)["cam01"]
    np.testing.assert_allclose(relative_to(back, back[0]), rel, atol=1e-4)  # 6 significant digits on disk


def test_bad_recammaster_files(tmp_path):
    path = tmp_path / "camera_extrinsics.json"
    path.write_text('{"frame0": {"cam01": "[1 0 0 0] [0 1 0 0] [0 0 1 0]"}}')
    with pytest.raises(CameraError, match="16 numbers"):
        read_multicamvideo_extrinsics(path)
    path.write_text('{"frame0": {"cam01": "[1 0 0 0] [0 1 0 0] [0 0 1 0] [nan 0 0 1]"}}')
    with pytest.raises(CameraError, match="NaN"):
        read_multicamvideo_extrinsics(path)
    path.write_text('{"frame0": {"cam01": "[2 0 0 0] [0 1 0 0] [0 0 1 0] [0 0 0 1]"}}')
    with pytest.raises(CameraError, match="orthonormal"):
        read_multicamvideo_extrinsics(path)
    path.write_text("not json")
    with pytest.raises(InputError, match="not a JSON file"):
        read_multicamvideo_extrinsics(path)
    with pytest.raises(InputError, match="no such file"):
        read_multicamvideo_extrinsics(tmp_path / "missing.json")
    assert parse_unreal_matrix("[1e-3 0 0 0] [0 1 0 0] [0 0 1 0] [0 0 0 1]")[0, 0] == pytest.approx(1e-3)


def test_dycheck_camera_round_trip_and_projection(tmp_path):
    intr = Intrinsics(1000.0, 1000.0, 180.0, 240.5, 368, 480)
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.from_euler("xyz", [10, -20, 5], degrees=True).as_matrix()
    c2w[:3, 3] = [0.3, -0.1, -1.2]
    path = tmp_path / "0_00000.json"
    path.write_text(json.dumps(dycheck_camera_dict(intr, c2w)))
    intr2, c2w2 = read_dycheck_camera(path)
    assert intr2 == intr
    np.testing.assert_allclose(c2w2, c2w, atol=1e-12)
    # DyCheck projects with orientation @ (X - position): the same pixel as mvt4g's camera.
    data = json.loads(path.read_text())
    X = np.array([0.2, 0.1, 1.5])
    local = np.array(data["orientation"]) @ (X - np.array(data["position"]))
    uv_dycheck = data["focal_length"] * local[:2] / local[2] + np.array(data["principal_point"])
    cam = invert_pose(c2w2) @ np.append(X, 1.0)
    uv = (intr2.K @ cam[:3])[:2] / cam[2]
    np.testing.assert_allclose(uv, uv_dycheck, atol=1e-9)


def test_bad_dycheck_cameras(tmp_path):
    intr = Intrinsics(100.0, 100.0, 50.0, 50.0, 100, 100)
    good = dycheck_camera_dict(intr, np.eye(4))
    path = tmp_path / "cam.json"
    for key, value, message in [
        ("orientation", [[1, 0, 0], [0, 1, 0], [0, 0, -1]], "det"),
        ("orientation", [[1, 0, 0], [0, 1, 0], [0, 0, float("nan")]], "NaN"),
        ("focal_length", -3.0, "focal length"),
        ("skew", 0.5, "skew"),
        ("radial_distortion", [0.1, 0, 0], "distortion"),
    ]:
        data = dict(good, **{key: value})
        path.write_text(json.dumps(data).replace("NaN", "NaN"))
        with pytest.raises(CameraError, match=message):
            read_dycheck_camera(path)
    path.write_text(json.dumps({"orientation": good["orientation"]}))
    with pytest.raises(CameraError, match="missing"):
        read_dycheck_camera(path)
