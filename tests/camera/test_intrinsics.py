import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.camera.intrinsics import Intrinsics, stack_K
from mvt4g.errors import CameraError


def project(K, points):
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def test_multicamvideo_focal_lengths_after_recammaster_crop():
    # docs/FACTS.md, section 3: 1280x1280 renders resized to cover 480x832 and centre-cropped.
    expected = {18: 630.3, 24: 840.4, 35: 1225.6, 50: 1750.8}
    for focal_mm, fx in expected.items():
        cam = Intrinsics.from_focal_mm(focal_mm, 1280, 1280).cover_crop(832, 480)
        assert cam.fx == pytest.approx(fx, abs=0.05)
        assert (cam.cx, cam.cy, cam.width, cam.height) == (416.0, 240.0, 832, 480)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(16, 2000), st.integers(16, 2000), st.integers(8, 1000), st.integers(8, 1000),
    st.floats(0.3, 3.0), st.floats(-0.3, 0.3), st.floats(-0.3, 0.3),
)
def test_resize_and_crop_agree_with_pixel_coordinates(w0, h0, w1, h1, fscale, ox, oy):
    cam = Intrinsics(fscale * w0, fscale * w0 * 1.1, w0 * (0.5 + ox), h0 * (0.5 + oy), w0, h0)
    pts = np.random.default_rng(0).uniform([-2, -2, 1], [2, 2, 5], (20, 3))
    uv = project(cam.K, pts)
    # Resizing scales continuous pixel coordinates (pixel centres at +0.5) by the size ratio.
    resized = cam.resized(w1, h1)
    np.testing.assert_allclose(project(resized.K, pts), uv * [w1 / w0, h1 / h0], rtol=1e-9, atol=1e-9)
    # Cropping subtracts the window origin.
    cropped = cam.cropped(7, 3, max(w0 - 7, 1), max(h0 - 3, 1))
    np.testing.assert_allclose(project(cropped.K, pts), uv - [7, 3], rtol=1e-9, atol=1e-9)


def test_cover_crop_keeps_aspect_and_centre():
    cam = Intrinsics.from_fov(60, 854, 480).cover_crop(832, 480)
    assert cam.fx == pytest.approx(cam.fy)
    assert (cam.width, cam.height) == (832, 480)
    assert cam.cx == pytest.approx(416.0) and cam.cy == pytest.approx(240.0)


def test_fov_matches_definition():
    cam = Intrinsics.from_fov(90.0, 200, 100)
    assert cam.fx == pytest.approx(100.0)


def test_invalid_intrinsics_raise_camera_error():
    with pytest.raises(CameraError, match="focal length must be > 0"):
        Intrinsics(0.0, 1.0, 1.0, 1.0, 10, 10)
    with pytest.raises(CameraError, match="NaN"):
        Intrinsics(float("nan"), 1.0, 1.0, 1.0, 10, 10)
    with pytest.raises(CameraError, match="focal length"):
        Intrinsics.from_focal_mm(-5, 10, 10)
    with pytest.raises(CameraError, match="skew|\\[\\[fx"):
        Intrinsics.from_K([[1, 0.5, 0], [0, 1, 0], [0, 0, 1]], 10, 10)
    with pytest.raises(CameraError, match="focal length"):
        stack_K(np.diag([-1.0, 1.0, 1.0]))
    with pytest.raises(CameraError, match="shape"):
        stack_K(np.eye(4))


def test_round_trip_through_K():
    cam = Intrinsics(500.0, 510.0, 320.5, 240.25, 640, 480)
    assert Intrinsics.from_K(cam.K, 640, 480) == cam
    assert stack_K(cam, frames=3).shape == (3, 3, 3)
