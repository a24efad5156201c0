import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from mvt4g.camera.pose import (
    c2w_from_opengl,
    c2w_from_w2c,
    c2w_to_opengl,
    invert_pose,
    look_at,
    orthonormalize,
    relative_to,
    validate_c2w,
    w2c_from_c2w,
)
from mvt4g.errors import CameraError

vec3 = st.lists(st.floats(-10, 10, allow_nan=False), min_size=3, max_size=3)
quat = st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1)


def pose(q, t):
    p = np.eye(4)
    p[:3, :3] = Rotation.from_quat(q).as_matrix()
    p[:3, 3] = t
    return p


@settings(max_examples=50, deadline=None)
@given(quat, vec3)
def test_invert_pose_matches_numpy_inverse(q, t):
    p = pose(q, t)
    np.testing.assert_allclose(invert_pose(p), np.linalg.inv(p), atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(quat, vec3)
def test_w2c_round_trip_and_projection(q, t):
    c2w = pose(q, t)[None]
    rot, trans = w2c_from_c2w(c2w)
    np.testing.assert_allclose(c2w_from_w2c(rot, trans), c2w, atol=1e-9)
    # The camera centre maps to the camera-frame origin.
    np.testing.assert_allclose(rot[0] @ c2w[0, :3, 3] + trans[0], 0.0, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(quat, vec3)
def test_opengl_round_trip_flips_view_axis(q, t):
    gl = pose(q, t)
    cv = c2w_from_opengl(gl)[0]
    np.testing.assert_allclose(c2w_to_opengl(cv)[0], gl, atol=1e-12)
    # OpenGL looks down -z: the OpenCV forward axis is the negated GL z axis.
    np.testing.assert_allclose(cv[:3, 2], -gl[:3, 2], atol=1e-12)
    assert np.linalg.det(cv[:3, :3]) == pytest.approx(1.0)


def test_validate_rejects_nan_nonorthonormal_and_reflection():
    p = np.eye(4)[None].repeat(3, 0)
    validate_c2w(p)
    bad = p.copy()
    bad[1, 0, 3] = np.nan
    with pytest.raises(CameraError, match="frame 1 contains NaN"):
        validate_c2w(bad)
    shear = p.copy()
    shear[2, 0, 1] = 0.1
    with pytest.raises(CameraError, match="not orthonormal"):
        validate_c2w(shear)
    mirror = p.copy()
    mirror[0, 0, 0] = -1
    with pytest.raises(CameraError, match="det"):
        validate_c2w(mirror)
    with pytest.raises(CameraError, match="shape"):
        validate_c2w(np.eye(3))


def test_orthonormalize_returns_nearest_proper_rotation():
    rng = np.random.default_rng(0)
    r = Rotation.random(5, random_state=1).as_matrix()
    noisy = r + 1e-3 * rng.standard_normal(r.shape)
    fixed = orthonormalize(noisy)
    np.testing.assert_allclose(np.swapaxes(fixed, 1, 2) @ fixed, np.eye(3)[None].repeat(5, 0), atol=1e-12)
    np.testing.assert_allclose(fixed, r, atol=1e-2)


def test_look_at_points_camera_at_target_with_image_up():
    eye, target = np.array([1.0, -2.0, -4.0]), np.array([0.5, 0.0, 3.0])
    p = look_at(eye, target)
    forward = (target - eye) / np.linalg.norm(target - eye)
    np.testing.assert_allclose(p[:3, 2], forward, atol=1e-12)
    assert np.linalg.det(p[:3, :3]) == pytest.approx(1.0)
    # World "up" is -y in OpenCV worlds: the camera's y axis (image down) has positive world y.
    assert p[1, 1] > 0
    # The target projects to the principal point (on the optical axis).
    local = invert_pose(p) @ np.append(target, 1.0)
    np.testing.assert_allclose(local[:2], 0.0, atol=1e-12)


def test_relative_to_puts_reference_at_identity():
    rng = np.random.default_rng(3)
    poses = np.stack([pose(rng.standard_normal(4), rng.standard_normal(3)) for _ in range(4)])
    rel = relative_to(poses, poses[0])
    np.testing.assert_allclose(rel[0], np.eye(4), atol=1e-12)
    np.testing.assert_allclose(rel[2], np.linalg.inv(poses[0]) @ poses[2], atol=1e-9)
