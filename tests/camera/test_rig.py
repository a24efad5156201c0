import json

import numpy as np
import pytest
from helpers import orbit_cameras

from mvt4g.camera.rig import ViewCameras, read_cameras_json, write_cameras_json
from mvt4g.errors import CameraError, InputError


def test_cameras_json_round_trip(tmp_path):
    cams = {"cam01": orbit_cameras(5), "cam02": orbit_cameras(5, phase=1.0)}
    # Per-frame intrinsics are kept per frame; constant ones are written once.
    cams["cam02"] = ViewCameras(64, 48, np.stack([cams["cam02"].K[0] * [[1 + 0.01 * i], [1], [1]] for i in range(5)]), cams["cam02"].c2w)
    path = tmp_path / "cameras.json"
    write_cameras_json(path, cams)
    data = json.loads(path.read_text())
    assert data["convention"] == "opencv" and data["pose"] == "c2w" and data["units"] == "m"
    assert np.asarray(data["views"]["cam01"]["intrinsics"]).shape == (3, 3)
    assert np.asarray(data["views"]["cam02"]["intrinsics"]).shape == (5, 3, 3)
    back = read_cameras_json(path)
    assert list(back) == ["cam01", "cam02"]
    for name in cams:
        np.testing.assert_array_equal(back[name].c2w, cams[name].c2w)
        np.testing.assert_array_equal(back[name].K, cams[name].K)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda v: v["c2w"][1][0].__setitem__(3, float("nan")), "NaN"),
        (lambda v: v["c2w"][0][0].__setitem__(0, -1.0), "not orthonormal|det"),
        (lambda v: v["intrinsics"][0].__setitem__(0, 0.0), "focal length"),
        (lambda v: v.pop("width"), "lacks width"),
        (lambda v: v.__setitem__("c2w", "oops"), "non-numeric|c2w"),
    ],
)
def test_invalid_cameras_files(tmp_path, mutate, message):
    path = tmp_path / "cameras.json"
    write_cameras_json(path, {"cam01": orbit_cameras(3)})
    data = json.loads(path.read_text())
    mutate(data["views"]["cam01"])
    path.write_text(json.dumps(data))
    with pytest.raises(CameraError, match=message) as info:
        read_cameras_json(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_reflection_is_rejected(tmp_path):
    path = tmp_path / "cameras.json"
    write_cameras_json(path, {"cam01": orbit_cameras(3)})
    data = json.loads(path.read_text())
    for pose in data["views"]["cam01"]["c2w"]:
        for row in pose[:3]:
            row[0] = -row[0]  # mirror the x axis: orthonormal, det -1
    path.write_text(json.dumps(data))
    with pytest.raises(CameraError, match="det"):
        read_cameras_json(path)


def test_not_a_cameras_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_cameras_json(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InputError, match="not a JSON"):
        read_cameras_json(bad)
    bad.write_text('{"views": {}, "convention": "opengl"}')
    with pytest.raises(CameraError, match="convention"):
        read_cameras_json(bad)
